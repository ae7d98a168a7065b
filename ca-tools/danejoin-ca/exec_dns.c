/*
 * exec_dns.c - danejoin-ca: publish and rollover, the commands that change the DNS.
 *
 * publish: one RRset change = one TSIG-signed UPDATE with prerequisites (ca_update.c), then a
 * DNSSEC-validated lookup (ca_lookup.c) that must see exactly the intended RRset, securely.
 *
 * rollover (RFC 7671 §8.1, "Pre-publish"): a client may have cached the TLSA RRset as it was
 * before we touched it for up to its TTL (and a resolver may hold it up to its cache cap).
 * So the server's key changes only when every cached copy already holds the next record:
 *   1. add the next TLSA next to the current one, confirm it is served securely;
 *   2. wait at least TTL + cache cap from that confirmation;
 *   3. switch the server to the next key (--switch-cmd, or the operator and --switched);
 *   4. remove the current TLSA, confirm.
 * Each step is recorded in the state file (ca_roll.c) only after it is confirmed, and each
 * step first looks at the DNS, so a re-run after any interruption does the right next thing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "ca-tools/ca_lookup.h"
#include "ca-tools/ca_roll.h"
#include "ca-tools/ca_update.h"
#include "common/dj_dns.h"
#include "common/dj_err.h"
#include "exec.h"

#define CA_CONFIRM_MS_MIN 10000	/* how long a confirmation may wait for the signer */

/* dns_fail - one error line for a DNS command */
static int dns_fail(const char *cmd, int rc, const char *err)
{
	fprintf(stderr, "%s: %s: %s\n", CA_PROGRAM, cmd,
		err != NULL && err[0] != '\0' ? err : dj_strerror(rc));
	return exec_exit_code(rc);
}

/* confirm - validated lookup until the RRset is exactly \p expect; prints the verdict */
static int confirm(const char *cmd, const char *ta_file, const char *zone, const char *ns,
		   const char *owner, uint16_t type, const struct ca_rdset *expect,
		   unsigned timeout_ms)
{
	struct ca_lookup_props lp = { ta_file, zone, ns };
	struct ca_verdict v;
	int rc;

	rc = ca_lookup_until(&lp, owner, type, expect, timeout_ms < CA_CONFIRM_MS_MIN ?
			     CA_CONFIRM_MS_MIN : timeout_ms, &v);
	if (rc == DJ_EOK && v.matches) {
		printf("%s: confirmed by a validated lookup: %s %s, %zu record(s), %s, TTL %" PRIu32
		       "\n", cmd, owner, ldns_rr_descript(type) != NULL ?
		       ldns_rr_descript(type)->_name : "?", v.rd.n, da_status_str(v.status), v.ttl);
		ca_verdict_clear(&v);
		return CA_EXIT_OK;
	}
	fprintf(stderr, "%s: %s: NOT confirmed: the validated answer for %s is %s (rcode %d)%s%s\n",
		CA_PROGRAM, cmd, owner, rc == DJ_EOK ? da_status_str(v.status) : "missing", v.rcode,
		v.why[0] != '\0' ? ": " : "", v.why);
	ca_verdict_clear(&v);
	return rc == DJ_ECONFIG ? CA_EXIT_INPUT : CA_EXIT_VALIDATION;
}

/* server_text - "IP@PORT" for libunbound's stub */
static void server_text(const struct ca_server *s, char *out, size_t len)
{
	snprintf(out, len, "%s@%u", s->addr, s->port);
}

int exec_publish(const struct ca_params *p)
{
	static const char *const ops[] = { "add", "replace", "delete" };
	struct ca_tsig tsig;
	struct ca_change c;
	struct ca_update_result res;
	ldns_rr_list *rrs = NULL, *expect = NULL;
	char err[512] = "", ns[96], *owner = NULL;
	uint16_t type;
	int rc, ex;

	memset(&res, 0, sizeof(res));
	rc = ca_tsig_read(p->val[F_TSIG_FILE], &tsig, err, sizeof(err));
	if (rc != DJ_EOK)
		return dns_fail("publish", rc, err);
	rc = ca_rr_parse(p->rrs, p->nrrs, &rrs, err, sizeof(err));
	if (rc == DJ_EOK && p->nexpect > 0)
		rc = ca_rr_parse(p->expect, p->nexpect, &expect, err, sizeof(err));
	if (rc != DJ_EOK) {
		ex = dns_fail("publish", rc, err);
		goto out;
	}
	memset(&c, 0, sizeof(c));
	c.op = p->op;
	c.zone = p->zone;
	c.rrs = rrs;
	c.expect = expect;
	c.expect_given = p->nexpect > 0 || p->expect_none;
	rc = ca_update_apply(&p->server, &tsig, &c, &res, err, sizeof(err));
	if (rc != DJ_EOK) {
		ex = dns_fail("publish", rc, err);
		goto out;
	}
	owner = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(rrs, 0)));
	type = (uint16_t)ldns_rr_get_type(ldns_rr_list_rr(rrs, 0));
	printf("publish %s: %s %s: %zu record(s) before, %zu after: %s\n", ops[p->op],
	       owner != NULL ? owner : "?", ldns_rr_descript(type) != NULL ?
	       ldns_rr_descript(type)->_name : "?", res.before.n, res.after.n,
	       res.changed ? "updated (NOERROR)" : "nothing to change (prerequisites hold)");
	if (p->no_validate) {
		printf("publish: not validated (--no-validate)\n");
		ex = CA_EXIT_OK;
		goto out;
	}
	server_text(&p->server, ns, sizeof(ns));
	ex = confirm("publish", p->val[F_TA_FILE], p->zone, ns, owner, type, &res.after,
		     p->timeout_ms);
out:
	free(owner);
	ca_update_result_clear(&res);
	ldns_rr_list_deep_free(rrs);
	ldns_rr_list_deep_free(expect);
	ca_tsig_clear(&tsig);
	return ex;
}

/* Everything a rollover run works with. */
struct roll {
	struct ca_roll_state s;
	const char *state_path;
	const char *tsig_file, *ta_file;
	struct ca_server server;
	struct ca_tsig tsig;
	bool switched, no_wait;
};

/* rr_from - "OWNER TTL IN TLSA RDATA" as a one-record list */
static int rr_from(const struct roll *r, const char *rdata, ldns_rr_list **out, char *err,
		   size_t errlen)
{
	char line[CA_NAME_BUF + CA_ROLL_RDATA_MAX + 32];
	const char *lines[1] = { line };

	snprintf(line, sizeof(line), "%s %" PRIu32 " IN TLSA %s", r->s.owner, r->s.ttl, rdata);
	return ca_rr_parse(lines, 1, out, err, errlen);
}

/* rrset_has - whether the RRset \p set holds the record of \p one */
static int rrset_has(const ldns_rr_list *set, const ldns_rr_list *one, bool *has)
{
	struct ca_rdset a = { 0 }, b = { 0 };
	int rc;

	rc = ca_rdset_from_list(&a, set);
	if (rc == DJ_EOK)
		rc = ca_rdset_from_list(&b, one);
	if (rc == DJ_EOK)
		*has = b.n == 1 && ca_rdset_has(&a, b.data[0], b.len[0]);
	ca_rdset_clear(&a);
	ca_rdset_clear(&b);
	return rc;
}

/* roll_change - one guarded change (add or delete \p rdata) against the RRset read as \p cur,
 *               then its confirmation */
static int roll_change(struct roll *r, enum ca_op op, const char *rdata, const ldns_rr_list *cur)
{
	struct ca_change c;
	struct ca_update_result res;
	ldns_rr_list *rr = NULL;
	char err[512] = "";
	int rc, ex;

	memset(&res, 0, sizeof(res));
	rc = rr_from(r, rdata, &rr, err, sizeof(err));
	if (rc != DJ_EOK)
		return dns_fail("rollover", rc, err);
	memset(&c, 0, sizeof(c));
	c.op = op;
	c.zone = r->s.zone;
	c.rrs = rr;
	c.expect = cur;
	c.expect_given = true;	/* exactly what we looked at: a concurrent change is refused */
	rc = ca_update_apply(&r->server, &r->tsig, &c, &res, err, sizeof(err));
	if (rc != DJ_EOK) {
		ex = dns_fail("rollover", rc, err);
		goto out;
	}
	printf("rollover: %s %s TLSA %s\n", op == CA_OP_ADD ? "added" : "removed", r->s.owner,
	       rdata);
	ex = confirm("rollover", r->ta_file, r->s.zone, r->s.ns, r->s.owner, LDNS_RR_TYPE_TLSA,
		     &res.after, r->server.timeout_ms);
out:
	ca_update_result_clear(&res);
	ldns_rr_list_deep_free(rr);
	return ex;
}

/* confirm_current - the RRset as read is what must be served; confirm it (a re-run whose
 *                   change was already made, but not yet confirmed) */
static int confirm_current(struct roll *r, const ldns_rr_list *cur)
{
	struct ca_rdset want = { 0 };
	int ex;

	if (ca_rdset_from_list(&want, cur) != DJ_EOK)
		return CA_EXIT_INTERNAL;
	ex = confirm("rollover", r->ta_file, r->s.zone, r->s.ns, r->s.owner, LDNS_RR_TYPE_TLSA,
		     &want, r->server.timeout_ms);
	ca_rdset_clear(&want);
	return ex;
}

/* save - record a step; a failure here stops the run */
static int save(struct roll *r, enum ca_roll_step step)
{
	char err[512] = "";
	int rc;

	r->s.step = step;
	rc = ca_roll_save(r->state_path, &r->s, err, sizeof(err));
	if (rc != DJ_EOK)
		return dns_fail("rollover", rc, err);
	printf("rollover: step '%s' recorded in %s\n", ca_roll_step_name(step), r->state_path);
	return CA_EXIT_OK;
}

/* What the server serves at the TLSA owner, as a step reads it. */
struct served {
	ldns_rr_list *cur;	/* the RRset, the step's to free */
	uint32_t ttl;
	bool has_cur, has_next;	/* it holds the current, the next record */
};

/* read_rrset - read what the server serves into \p sv (sv->cur to free, even on failure); a
 * failure is said */
static int read_rrset(struct roll *r, struct served *sv)
{
	ldns_rr_list *cur1 = NULL, *next1 = NULL;
	char err[512] = "";
	int rc;

	rc = ca_update_read(&r->server, r->s.owner, LDNS_RR_TYPE_TLSA, &sv->cur, &sv->ttl, err,
			    sizeof(err));
	if (rc == DJ_EOK)
		rc = rr_from(r, r->s.current, &cur1, err, sizeof(err));
	if (rc == DJ_EOK)
		rc = rr_from(r, r->s.next, &next1, err, sizeof(err));
	if (rc == DJ_EOK)
		rc = rrset_has(sv->cur, cur1, &sv->has_cur);
	if (rc == DJ_EOK)
		rc = rrset_has(sv->cur, next1, &sv->has_next);
	ldns_rr_list_deep_free(cur1);
	ldns_rr_list_deep_free(next1);
	return rc == DJ_EOK ? CA_EXIT_OK : dns_fail("rollover", rc, err);
}

/* step_publish - START -> PUBLISHED */
static int step_publish(struct roll *r)
{
	struct served sv = { 0 };
	int ex;

	ex = read_rrset(r, &sv);
	if (ex != CA_EXIT_OK)
		goto out;
	/* The wait must cover what clients cached before our change: the RRset's TTL then. */
	if (sv.ttl > r->s.ttl)
		r->s.ttl = sv.ttl;
	if (sv.has_next) {
		printf("rollover: the next TLSA is already published at %s\n", r->s.owner);
		ex = confirm_current(r, sv.cur);
	} else if (!sv.has_cur) {
		fprintf(stderr, "%s: rollover: the current TLSA (%s) is not published at %s; "
			"publish it first (nothing was changed)\n", CA_PROGRAM, r->s.current,
			r->s.owner);
		ex = CA_EXIT_CONFLICT;
		goto out;
	} else {
		ex = roll_change(r, CA_OP_ADD, r->s.next, sv.cur);
	}
	if (ex != CA_EXIT_OK)
		goto out;
	r->s.published_at = (int64_t)time(NULL);
	ex = save(r, CA_ROLL_PUBLISHED);
out:
	ldns_rr_list_deep_free(sv.cur);
	return ex;
}

/* run_switch - the operator's command that installs the next key on the server */
static int run_switch(const struct roll *r)
{
	int st;

	printf("rollover: switching: %s\n", r->s.switch_cmd);
	fflush(stdout);
	st = system(r->s.switch_cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: rollover: the switch command failed (status %d); the state is "
			"kept at 'published', run again when it is fixed\n", CA_PROGRAM,
			st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		return CA_EXIT_PENDING;
	}
	return CA_EXIT_OK;
}

/* step_switch - PUBLISHED -> [wait] -> SWITCHED */
static int step_switch(struct roll *r)
{
	uint64_t wait = (uint64_t)r->s.ttl + r->s.cache_cap;
	int64_t ready, now;
	struct timespec pause = { 0, 200000000L };

	if (wait < r->s.min_wait)
		wait = r->s.min_wait;
	ready = r->s.published_at + (int64_t)wait;
	now = (int64_t)time(NULL);
	if (now < ready) {
		if (r->no_wait) {
			printf("rollover: waiting for caches: the switch is allowed in %" PRId64
			       " s (TTL %" PRIu32 " + cache cap %" PRIu32 ")\n", ready - now,
			       r->s.ttl, r->s.cache_cap);
			return CA_EXIT_PENDING;
		}
		printf("rollover: waiting %" PRId64 " s (TTL %" PRIu32 " + cache cap %" PRIu32
		       ") before the switch\n", ready - now, r->s.ttl, r->s.cache_cap);
		fflush(stdout);
		while ((int64_t)time(NULL) < ready)
			nanosleep(&pause, NULL);
	}
	if (r->s.switch_cmd[0] != '\0') {
		int ex = run_switch(r);

		if (ex != CA_EXIT_OK)
			return ex;
	} else if (!r->switched) {
		printf("rollover: ready: install the next certificate on the server now, then run "
		       "again with --switched\n");
		return CA_EXIT_PENDING;
	}
	r->s.switched_at = (int64_t)time(NULL);
	return save(r, CA_ROLL_SWITCHED);
}

/* step_retire - SWITCHED -> DONE */
static int step_retire(struct roll *r)
{
	struct served sv = { 0 };
	int ex;

	ex = read_rrset(r, &sv);
	if (ex != CA_EXIT_OK)
		goto out;
	if (!sv.has_next) {
		fprintf(stderr, "%s: rollover: the next TLSA is no longer published at %s; refusing "
			"to retire the current one (nothing was changed)\n", CA_PROGRAM, r->s.owner);
		ex = CA_EXIT_CONFLICT;
		goto out;
	}
	if (!sv.has_cur) {
		printf("rollover: the current TLSA is already retired\n");
		ex = confirm_current(r, sv.cur);
	} else {
		ex = roll_change(r, CA_OP_DELETE, r->s.current, sv.cur);
	}
	if (ex == CA_EXIT_OK)
		ex = save(r, CA_ROLL_DONE);
out:
	ldns_rr_list_deep_free(sv.cur);
	return ex;
}

/* roll_setup - the state: loaded (--resume, or a matching file) or new */
static int roll_setup(const struct ca_params *p, struct roll *r)
{
	struct ca_roll_state want;
	char err[512] = "", *cur = NULL, *next = NULL;
	int rc, ex;

	if (p->val[F_RESUME] != NULL) {
		r->state_path = p->val[F_RESUME];
		rc = ca_roll_load(r->state_path, &r->s, err, sizeof(err));
		if (rc == DJ_ENOENT)
			dj_errbuf(err, sizeof(err), "%s: no such state file", r->state_path);
		return rc == DJ_EOK ? CA_EXIT_OK : dns_fail("rollover", rc, err);
	}
	r->state_path = p->val[F_STATE];
	ex = exec_tlsa_of_cert(p->val[F_CURRENT_CERT], p->usage, p->selector, p->mtype, &cur);
	if (ex == CA_EXIT_OK)
		ex = exec_tlsa_of_cert(p->val[F_NEXT_CERT], p->usage, p->selector, p->mtype, &next);
	if (ex != CA_EXIT_OK)
		goto out;
	if (strcmp(cur, next) == 0) {
		fprintf(stderr, "%s: rollover: the current and next certificates give the same "
			"TLSA record %s\n", CA_PROGRAM, cur);
		ex = CA_EXIT_INPUT;
		goto out;
	}
	if (strlen(cur) >= CA_ROLL_RDATA_MAX || strlen(next) >= CA_ROLL_RDATA_MAX ||
	    strlen(p->val[F_TSIG_FILE]) >= CA_ROLL_PATH_MAX ||
	    strlen(p->val[F_TA_FILE]) >= CA_ROLL_PATH_MAX ||
	    (p->val[F_SWITCH_CMD] != NULL && strlen(p->val[F_SWITCH_CMD]) >= CA_ROLL_PATH_MAX)) {
		fprintf(stderr, "%s: rollover: a record (use --mtype 1 or 2), path or command is "
			"too long\n", CA_PROGRAM);
		ex = CA_EXIT_INPUT;
		goto out;
	}
	memset(&want, 0, sizeof(want));
	snprintf(want.owner, sizeof(want.owner), "%s", p->owner);
	snprintf(want.zone, sizeof(want.zone), "%s", p->zone);
	snprintf(want.current, sizeof(want.current), "%s", cur);
	snprintf(want.next, sizeof(want.next), "%s", next);
	want.ttl = p->ttl;
	want.cache_cap = p->cache_cap;
	want.min_wait = p->min_wait;
	server_text(&p->server, want.ns, sizeof(want.ns));
	snprintf(want.tsig_file, sizeof(want.tsig_file), "%s", p->val[F_TSIG_FILE]);
	snprintf(want.ta_file, sizeof(want.ta_file), "%s", p->val[F_TA_FILE]);
	snprintf(want.switch_cmd, sizeof(want.switch_cmd), "%s",
		 p->val[F_SWITCH_CMD] != NULL ? p->val[F_SWITCH_CMD] : "");
	want.timeout_ms = p->timeout_ms;

	rc = ca_roll_load(r->state_path, &r->s, err, sizeof(err));
	if (rc == DJ_ENOENT) {
		r->s = want;
		ex = save(r, CA_ROLL_START);
		goto out;
	}
	if (rc != DJ_EOK) {
		ex = dns_fail("rollover", rc, err);
		goto out;
	}
	if (strcmp(r->s.owner, want.owner) != 0 || strcmp(r->s.current, want.current) != 0 ||
	    strcmp(r->s.next, want.next) != 0 || strcmp(r->s.zone, want.zone) != 0) {
		fprintf(stderr, "%s: rollover: %s belongs to another rollover (%s: %s -> %s); "
			"finish it or use another --state\n", CA_PROGRAM, r->state_path, r->s.owner,
			r->s.current, r->s.next);
		ex = CA_EXIT_INPUT;
		goto out;
	}
	printf("rollover: continuing from step '%s' recorded in %s\n",
	       ca_roll_step_name(r->s.step), r->state_path);
	ex = CA_EXIT_OK;
out:
	free(cur);
	free(next);
	return ex;
}

int exec_rollover(const struct ca_params *p)
{
	struct roll r;
	char err[512] = "";
	int lock = -1, rc, ex;
	const char *path;

	memset(&r, 0, sizeof(r));
	path = p->val[F_RESUME] != NULL ? p->val[F_RESUME] : p->val[F_STATE];
	rc = ca_roll_lock(path, &lock, err, sizeof(err));
	if (rc != DJ_EOK)
		return dns_fail("rollover", rc, err);
	ex = roll_setup(p, &r);
	if (ex != CA_EXIT_OK)
		goto out;
	r.switched = p->switched;
	r.no_wait = p->no_wait;
	r.tsig_file = p->val[F_TSIG_FILE] != NULL ? p->val[F_TSIG_FILE] : r.s.tsig_file;
	r.ta_file = p->val[F_TA_FILE] != NULL ? p->val[F_TA_FILE] : r.s.ta_file;
	rc = ca_server_parse(r.s.ns, &r.server, err, sizeof(err));
	if (rc == DJ_EOK) {
		r.server.timeout_ms = r.s.timeout_ms > 0 ? r.s.timeout_ms : CA_TIMEOUT_MS_DEFAULT;
		rc = ca_tsig_read(r.tsig_file, &r.tsig, err, sizeof(err));
	}
	if (rc != DJ_EOK) {
		ex = dns_fail("rollover", rc, err);
		goto out;
	}
	while (ex == CA_EXIT_OK && r.s.step != CA_ROLL_DONE) {
		switch (r.s.step) {
		case CA_ROLL_START:
			ex = step_publish(&r);
			break;
		case CA_ROLL_PUBLISHED:
			ex = step_switch(&r);
			break;
		default:
			ex = step_retire(&r);
			break;
		}
	}
	if (ex == CA_EXIT_OK)
		printf("rollover: %s complete: %s now holds TLSA %s only in place of %s\n",
		       r.s.owner, r.s.owner, r.s.next, r.s.current);
out:
	ca_tsig_clear(&r.tsig);
	ca_roll_unlock(lock);
	return ex;
}

#define JOINEUI_RR_MAX 512	/* characters of one "OWNER TTL IN TYPE RDATA" line */

/* publish_rrset - one RRset (zone-file lines) through ca_update_apply, then confirmed unless
 * --no-validate; prints what happened */
static int publish_rrset(const struct ca_params *p, const struct ca_tsig *tsig,
			 const char *const *lines, size_t n)
{
	static const char *const ops[] = { "add", "replace", "delete" };
	struct ca_change c;
	struct ca_update_result res;
	ldns_rr_list *rrs = NULL;
	char err[512] = "", ns[96], *owner = NULL;
	uint16_t type;
	int rc, ex;

	memset(&res, 0, sizeof(res));
	rc = ca_rr_parse(lines, n, &rrs, err, sizeof(err));
	if (rc != DJ_EOK)
		return dns_fail("publish-joineui", rc, err);
	memset(&c, 0, sizeof(c));
	c.op = p->op;
	c.zone = p->zone;
	c.rrs = rrs;
	rc = ca_update_apply(&p->server, tsig, &c, &res, err, sizeof(err));
	if (rc != DJ_EOK) {
		ex = dns_fail("publish-joineui", rc, err);
		goto out;
	}
	owner = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(rrs, 0)));
	type = (uint16_t)ldns_rr_get_type(ldns_rr_list_rr(rrs, 0));
	printf("publish-joineui %s: %s %s: %zu record(s) before, %zu after: %s\n", ops[p->op],
	       owner != NULL ? owner : "?", ldns_rr_descript(type) != NULL ?
	       ldns_rr_descript(type)->_name : "?", res.before.n, res.after.n,
	       res.changed ? "updated (NOERROR)" : "nothing to change");
	ex = CA_EXIT_OK;
	if (!p->no_validate && owner != NULL) {
		server_text(&p->server, ns, sizeof(ns));
		ex = confirm("publish-joineui", p->val[F_TA_FILE], p->zone, ns, owner, type,
			     &res.after, p->timeout_ms);
	}
out:
	free(owner);
	ca_update_result_clear(&res);
	ldns_rr_list_deep_free(rrs);
	return ex;
}

/* joineui_name - A, AAAA and TLSA at one JoinEUI name (ca_joineui.h); a "*." name carries
 * its TLSA itself, since a DNS wildcard also answers _PORT._tcp.<one label>.REST */
static int joineui_name(const struct ca_params *p, const struct ca_tsig *tsig, const char *name,
			const char *tlsa)
{
	char *lines[CA_MULTI_MAX];
	const char *v4[CA_MULTI_MAX], *v6[CA_MULTI_MAX];
	size_t n4 = 0, n6 = 0, i;
	char tlsa_line[JOINEUI_RR_MAX];
	const char *one[1] = { tlsa_line };
	int ex = CA_EXIT_INTERNAL;

	memset(lines, 0, sizeof(lines));
	for (i = 0; i < p->naddrs; i++) {
		const char *a = p->addrs[i];

		lines[i] = malloc(JOINEUI_RR_MAX);
		if (lines[i] == NULL)
			goto out;
		snprintf(lines[i], JOINEUI_RR_MAX, "%s %" PRIu32 " IN %s %s", name, p->ttl,
			 strchr(a, ':') != NULL ? "AAAA" : "A", a);
		if (strchr(a, ':') != NULL)
			v6[n6++] = lines[i];
		else
			v4[n4++] = lines[i];
	}
	ex = CA_EXIT_OK;
	if (n4 > 0)
		ex = publish_rrset(p, tsig, v4, n4);
	if (ex == CA_EXIT_OK && n6 > 0)
		ex = publish_rrset(p, tsig, v6, n6);
	if (ex != CA_EXIT_OK)
		goto out;
	if (strncmp(name, "*.", 2) == 0)
		snprintf(tlsa_line, sizeof(tlsa_line), "%s %" PRIu32 " IN TLSA %s", name, p->ttl,
			 tlsa);
	else
		snprintf(tlsa_line, sizeof(tlsa_line), "_%u._tcp.%s %" PRIu32 " IN TLSA %s",
			 p->port, name, p->ttl, tlsa);
	ex = publish_rrset(p, tsig, one, 1);
out:
	for (i = 0; i < p->naddrs; i++)
		free(lines[i]);
	return ex;
}

int exec_publish_joineui(const struct ca_params *p)
{
	struct ca_tsig tsig;
	char err[512] = "", *tlsa = NULL;
	int rc, ex;

	ex = exec_tlsa_of_cert(p->val[F_CERT], DJ_TLSA_USAGE_DANE_EE, DJ_TLSA_SEL_SPKI,
			       DJ_TLSA_MT_SHA256, &tlsa);
	if (ex != CA_EXIT_OK)
		return ex;
	rc = ca_tsig_read(p->val[F_TSIG_FILE], &tsig, err, sizeof(err));
	if (rc != DJ_EOK) {
		free(tlsa);
		return dns_fail("publish-joineui", rc, err);
	}
	for (size_t j = 0; j < p->njnames && ex == CA_EXIT_OK; j++)
		for (size_t m = 0; m < p->jnames[j].n && ex == CA_EXIT_OK; m++)
			ex = joineui_name(p, &tsig, p->jnames[j].v[m], tlsa);
	ca_tsig_clear(&tsig);
	free(tlsa);
	return ex;
}
