/*
 * ca_update.c - RFC 2136 UPDATE with TSIG and prerequisites, over TCP, with ldns.
 *
 * Why prerequisites: two operators (or an operator and a rollover in progress) may change the
 * same TLSA RRset. A plain "delete old, add new" would silently undo the other change. Each
 * message asserts the exact RRset it was computed from (RFC 2136 §2.4.2 value-dependent
 * "RRset exists", or §2.4.3 "RRset does not exist"), so the server refuses a stale change as a
 * whole (RFC 2136 §3.2: prerequisites are checked before anything is applied).
 *
 * Why TCP: the answer to a signed update must come back intact, and TCP removes the UDP
 * retransmission that could apply a change twice in a racy way.
 *
 * The TSIG secret is copied into the ldns resolver; it is wiped there before the resolver is
 * freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ca-tools/ca_update.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"

#define CA_TSIG_FUDGE 300	/* RFC 8945 §10: recommended fudge */
#define CA_TSIG_ERR_RDF 5	/* TSIG rdata: alg, time, fudge, MAC, orig id, *error*, other */

void ca_tsig_clear(struct ca_tsig *t)
{
	OPENSSL_cleanse(t, sizeof(*t));
}

int ca_tsig_read(const char *path, struct ca_tsig *out, char *err, size_t errlen)
{
	char line[512], *f[3], *p, *save = NULL;
	FILE *fp;
	int n = 0, rc = DJ_EMALFORMED;
	size_t len;

	memset(out, 0, sizeof(*out));
	fp = fopen(path, "r");
	if (fp == NULL) {
		dj_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? DJ_ENOENT : DJ_EIO;
	}
	if (fgets(line, sizeof(line), fp) == NULL) {
		dj_errbuf(err, errlen, "%s: empty TSIG key file", path);
		goto out;
	}
	line[strcspn(line, "\r\n")] = '\0';
	for (p = strtok_r(line, ":", &save); p != NULL && n < 3; p = strtok_r(NULL, ":", &save))
		f[n++] = p;
	if (p != NULL || n < 2) {
		dj_errbuf(err, errlen, "%s: expected ALGORITHM:NAME:SECRET (knsupdate -y form)", path);
		goto out;
	}
	if (n == 2) {	/* NAME:SECRET, the default algorithm */
		f[2] = f[1];
		f[1] = f[0];
		f[0] = "hmac-sha256";
	}
	len = strlen(f[0]);
	if (len > 0 && f[0][len - 1] == '.')
		f[0][--len] = '\0';
	if (strcmp(f[0], "hmac-sha256") != 0 && strcmp(f[0], "hmac-sha512") != 0) {
		dj_errbuf(err, errlen, "%s: TSIG algorithm '%.32s' is not supported (hmac-sha256, "
			  "hmac-sha512)", path, f[0]);
		rc = DJ_EINVAL;
		goto out;
	}
	snprintf(out->alg, sizeof(out->alg), "%s.", f[0]);
	if (ca_name_absolute(f[1], out->name, err, errlen) != DJ_EOK)
		goto out;
	if (strlen(f[2]) == 0 || strlen(f[2]) >= sizeof(out->secret) ||
	    strspn(f[2], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
	    strlen(f[2])) {
		dj_errbuf(err, errlen, "%s: the TSIG secret is not base64", path);
		goto out;
	}
	memcpy(out->secret, f[2], strlen(f[2]) + 1);
	rc = DJ_EOK;
out:
	OPENSSL_cleanse(line, sizeof(line));
	fclose(fp);
	if (rc != DJ_EOK)
		ca_tsig_clear(out);
	return rc;
}

int ca_server_parse(const char *text, struct ca_server *out, char *err, size_t errlen)
{
	const char *at = strrchr(text, '@');
	size_t alen = at != NULL ? (size_t)(at - text) : strlen(text);
	unsigned long port = CA_DNS_PORT;
	char *end;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(out->addr))
		goto bad;
	memcpy(out->addr, text, alen);
	if (at != NULL) {
		port = strtoul(at + 1, &end, 10);
		if (at[1] == '\0' || *end != '\0' || port == 0 || port > 65535)
			goto bad;
	}
	if (strspn(out->addr, "0123456789abcdefABCDEF.:") != alen)
		goto bad;
	out->port = (uint16_t)port;
	out->timeout_ms = CA_TIMEOUT_MS_DEFAULT;
	return DJ_EOK;
bad:
	dj_errbuf(err, errlen, "server '%.80s' is not IP[@PORT]", text);
	return DJ_EMALFORMED;
}

int ca_rr_parse(const char *const *lines, size_t n, ldns_rr_list **out, char *err, size_t errlen)
{
	ldns_rr_list *list = NULL;
	ldns_rr *rr = NULL;
	ldns_status st;
	char owner[CA_NAME_MAX + 64];
	size_t i, olen;
	int rc = DJ_EMALFORMED;

	*out = NULL;
	if (n == 0 || n > CA_RRSET_MAX) {
		dj_errbuf(err, errlen, "give 1 to %d records", CA_RRSET_MAX);
		return DJ_EMALFORMED;
	}
	list = ldns_rr_list_new();
	if (list == NULL)
		return DJ_ENOMEM;
	for (i = 0; i < n; i++) {
		/* Check the owner ourselves first, for a message that names the limit. */
		olen = strcspn(lines[i] + strspn(lines[i], " \t"), " \t");
		if (olen >= sizeof(owner)) {
			dj_errbuf(err, errlen, "record %zu: the owner name is %zu characters long "
				  "(at most %d)", i + 1, olen, CA_NAME_MAX);
			goto out;
		}
		memcpy(owner, lines[i] + strspn(lines[i], " \t"), olen);
		owner[olen] = '\0';
		if (olen == 0 || owner[olen - 1] != '.') {
			dj_errbuf(err, errlen, "record %zu: the owner '%.80s' must be absolute (end "
				  "with a dot)", i + 1, owner);
			goto out;
		}
		/* a leading "*." is a DNS wildcard owner (RFC 4592), e.g. JoinEUI names */
		if (ca_name_check(strncmp(owner, "*.", 2) == 0 ? owner + 2 : owner, err, errlen) !=
		    DJ_EOK)
			goto out;
		st = ldns_rr_new_frm_str(&rr, lines[i], 3600, NULL, NULL);
		if (st != LDNS_STATUS_OK) {
			dj_errbuf(err, errlen, "record %zu '%.80s': %s", i + 1, lines[i],
				  ldns_get_errorstr_by_id(st));
			goto out;
		}
		if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
			dj_errbuf(err, errlen, "record %zu: class must be IN", i + 1);
			goto out;
		}
		if (i > 0 && (ldns_rdf_compare(ldns_rr_owner(rr),
					       ldns_rr_owner(ldns_rr_list_rr(list, 0))) != 0 ||
			      ldns_rr_get_type(rr) != ldns_rr_get_type(ldns_rr_list_rr(list, 0)))) {
			dj_errbuf(err, errlen, "record %zu: all records of one change must have the "
				  "same owner and type", i + 1);
			goto out;
		}
		if (!ldns_rr_list_push_rr(list, rr)) {
			rc = DJ_ENOMEM;
			goto out;
		}
		rr = NULL;
	}
	*out = list;
	list = NULL;
	rc = DJ_EOK;
out:
	ldns_rr_free(rr);
	ldns_rr_list_deep_free(list);
	return rc;
}

int ca_rdset_from_list(struct ca_rdset *s, const ldns_rr_list *l)
{
	ldns_buffer *b;
	size_t i;
	int rc = DJ_EOK;

	b = ldns_buffer_new(512);
	if (b == NULL)
		return DJ_ENOMEM;
	for (i = 0; l != NULL && i < ldns_rr_list_rr_count(l) && rc == DJ_EOK; i++) {
		ldns_buffer_clear(b);
		if (ldns_rr_rdata2buffer_wire(b, ldns_rr_list_rr(l, i)) != LDNS_STATUS_OK) {
			rc = DJ_ENOMEM;
			break;
		}
		if (!ca_rdset_has(s, ldns_buffer_begin(b), ldns_buffer_position(b)))
			rc = ca_rdset_add(s, ldns_buffer_begin(b), ldns_buffer_position(b));
	}
	ldns_buffer_free(b);
	return rc;
}

int ca_resolver_new(const struct ca_server *srv, const struct ca_tsig *tsig,
			ldns_resolver **out)
{
	ldns_resolver *r;
	ldns_rdf *addr;
	struct timeval tv;

	*out = NULL;
	r = ldns_resolver_new();
	if (r == NULL)
		return DJ_ENOMEM;
	addr = ldns_rdf_new_frm_str(strchr(srv->addr, ':') != NULL ? LDNS_RDF_TYPE_AAAA :
				    LDNS_RDF_TYPE_A, srv->addr);
	if (addr == NULL || ldns_resolver_push_nameserver(r, addr) != LDNS_STATUS_OK) {
		ldns_rdf_deep_free(addr);
		ldns_resolver_deep_free(r);
		return DJ_EINVAL;
	}
	ldns_rdf_deep_free(addr);
	ldns_resolver_set_port(r, srv->port);
	ldns_resolver_set_usevc(r, true);
	ldns_resolver_set_recursive(r, false);
	ldns_resolver_set_retry(r, 1);
	ldns_resolver_set_fail(r, true);
	tv = dj_clock_tv_ms(srv->timeout_ms);
	ldns_resolver_set_timeout(r, tv);
	if (tsig != NULL) {
		ldns_resolver_set_tsig_keyname(r, tsig->name);
		ldns_resolver_set_tsig_algorithm(r, tsig->alg);
		ldns_resolver_set_tsig_keydata(r, tsig->secret);
	}
	*out = r;
	return DJ_EOK;
}

void ca_resolver_free(ldns_resolver *r)
{
	char *kd;

	if (r == NULL)
		return;
	kd = (char *)ldns_resolver_tsig_keydata(r);
	if (kd != NULL)
		OPENSSL_cleanse(kd, strlen(kd));
	ldns_resolver_deep_free(r);
}

/* net_error - the message for a failed send */
static int net_error(const struct ca_server *srv, ldns_status st, char *err, size_t errlen)
{
	dj_errbuf(err, errlen, "no answer from %s port %u (server down or unreachable: %s)",
		  srv->addr, srv->port, ldns_get_errorstr_by_id(st));
	return DJ_EAGAIN;
}

int ca_update_read(const struct ca_server *srv, const char *owner, uint16_t type,
		   ldns_rr_list **out, uint32_t *ttl, char *err, size_t errlen)
{
	ldns_resolver *r = NULL;
	ldns_pkt *q = NULL, *a = NULL;
	ldns_rr_list *list = NULL, *rrs;
	ldns_rdf *name = NULL;
	ldns_status st;
	size_t i;
	int rc;

	*out = NULL;
	*ttl = 0;
	rc = ca_resolver_new(srv, NULL, &r);
	if (rc != DJ_EOK)
		return rc;
	rc = DJ_ENOMEM;
	name = ldns_dname_new_frm_str(owner);
	if (name == NULL) {
		dj_errbuf(err, errlen, "bad owner name '%.80s'", owner);
		rc = DJ_EMALFORMED;
		goto out;
	}
	q = ldns_pkt_query_new(ldns_rdf_clone(name), (ldns_rr_type)type, LDNS_RR_CLASS_IN, 0);
	list = ldns_rr_list_new();
	if (q == NULL || list == NULL)
		goto out;
	ldns_pkt_set_random_id(q);
	st = ldns_send(&a, r, q);
	if (st != LDNS_STATUS_OK || a == NULL) {
		rc = net_error(srv, st, err, errlen);
		goto out;
	}
	switch (ldns_pkt_get_rcode(a)) {
	case LDNS_RCODE_NOERROR:
	case LDNS_RCODE_NXDOMAIN:
		break;
	case LDNS_RCODE_REFUSED:
		dj_errbuf(err, errlen, "%s port %u refused the query for %s: not authoritative?",
			  srv->addr, srv->port, owner);
		rc = DJ_EACCES;
		goto out;
	default:
		dj_errbuf(err, errlen, "reading %s: rcode %d", owner, ldns_pkt_get_rcode(a));
		rc = DJ_EIO;
		goto out;
	}
	rrs = ldns_pkt_answer(a);
	for (i = 0; rrs != NULL && i < ldns_rr_list_rr_count(rrs); i++) {
		ldns_rr *rr = ldns_rr_list_rr(rrs, i);

		if (ldns_rr_get_type(rr) != type || ldns_dname_compare(ldns_rr_owner(rr), name) != 0)
			continue;
		if (*ttl == 0 || ldns_rr_ttl(rr) < *ttl)
			*ttl = ldns_rr_ttl(rr);
		if (!ldns_rr_list_push_rr(list, ldns_rr_clone(rr)))
			goto out;
	}
	*out = list;
	list = NULL;
	rc = DJ_EOK;
out:
	ldns_rr_list_deep_free(list);
	ldns_rdf_deep_free(name);
	ldns_pkt_free(q);
	ldns_pkt_free(a);
	ca_resolver_free(r);
	return rc;
}

/* list_has - whether \p l holds a record with the same rdata as \p rr */
static bool list_has(const ldns_rr_list *l, const ldns_rr *rr)
{
	size_t i;

	for (i = 0; l != NULL && i < ldns_rr_list_rr_count(l); i++)
		if (ldns_rr_compare_no_rdata(ldns_rr_list_rr(l, i), rr) == 0 &&
		    ldns_rr_compare(ldns_rr_list_rr(l, i), rr) == 0)
			return true;
	return false;
}

/* push_copy - push a clone of \p rr with class \p cls and TTL \p ttl (and no rdata if \p bare) */
static int push_copy(ldns_rr_list *l, const ldns_rr *rr, ldns_rr_class cls, uint32_t ttl,
		     bool bare)
{
	ldns_rr *c;

	if (bare) {
		c = ldns_rr_new();
		if (c == NULL)
			return DJ_ENOMEM;
		ldns_rr_set_owner(c, ldns_rdf_clone(ldns_rr_owner(rr)));
		ldns_rr_set_type(c, ldns_rr_get_type(rr));
		ldns_rr_set_question(c, false);
	} else {
		c = ldns_rr_clone(rr);
		if (c == NULL)
			return DJ_ENOMEM;
	}
	ldns_rr_set_class(c, cls);
	ldns_rr_set_ttl(c, ttl);
	if (!ldns_rr_list_push_rr(l, c)) {
		ldns_rr_free(c);
		return DJ_ENOMEM;
	}
	return DJ_EOK;
}

int ca_update_sign_send(ldns_resolver *r, ldns_pkt *q, ldns_pkt **a, ldns_status *st, char *err,
			size_t errlen)
{
	*a = NULL;
	ldns_pkt_set_random_id(q);
	if (ldns_update_pkt_tsig_add(q, r) != LDNS_STATUS_OK) {
		dj_errbuf(err, errlen, "cannot TSIG-sign the update (bad key?)");
		return DJ_EINVAL;
	}
	*st = ldns_send(a, r, q);
	return DJ_EOK;
}

int ca_update_rcode_error(int rcode, const char *zone, char *err, size_t errlen)
{
	switch (rcode) {
	case LDNS_RCODE_YXRRSET:
		dj_errbuf(err, errlen, "prerequisite failed (YXRRSET): the RRset exists although "
			  "we expected none; someone changed it, nothing was changed");
		return DJ_ECONFLICT;
	case LDNS_RCODE_NXRRSET:
		dj_errbuf(err, errlen, "prerequisite failed (NXRRSET): the RRset is not the one we "
			  "read; someone changed it, nothing was changed");
		return DJ_ECONFLICT;
	case LDNS_RCODE_YXDOMAIN:
	case LDNS_RCODE_NXDOMAIN:
		dj_errbuf(err, errlen, "prerequisite failed (rcode %d), nothing was changed", rcode);
		return DJ_ECONFLICT;
	case LDNS_RCODE_NOTAUTH:
		dj_errbuf(err, errlen, "the server refused the update (NOTAUTH): TSIG key not "
			  "accepted or not authoritative for %s", zone);
		return DJ_EACCES;
	case LDNS_RCODE_REFUSED:
		dj_errbuf(err, errlen, "the server refused the update (REFUSED): the key may not "
			  "update %s", zone);
		return DJ_EACCES;
	case LDNS_RCODE_NOTZONE:
		dj_errbuf(err, errlen, "a record is outside zone %s (NOTZONE)", zone);
		return DJ_EINVAL;
	default:
		dj_errbuf(err, errlen, "the update of %s failed with rcode %d", zone, rcode);
		return DJ_EIO;
	}
}

/* tsig_error_name - the TSIG error field of an answer (RFC 8945 §5.3.2), if any */
static const char *tsig_error_name(const ldns_pkt *a)
{
	const ldns_rr *t = ldns_pkt_tsig(a);
	const ldns_rdf *e;

	if (t == NULL || ldns_rr_rd_count(t) <= CA_TSIG_ERR_RDF)
		return "no TSIG in the answer";
	e = ldns_rr_rdf(t, CA_TSIG_ERR_RDF);
	switch (ldns_rdf2native_int16(e)) {
	case 16:
		return "BADSIG";
	case 17:
		return "BADKEY";
	case 18:
		return "BADTIME";
	case 22:
		return "BADTRUNC";
	default:
		return "TSIG of the answer does not verify";
	}
}

int ca_update_apply(const struct ca_server *srv, const struct ca_tsig *tsig,
		    const struct ca_change *c, struct ca_update_result *res, char *err,
		    size_t errlen)
{
	ldns_resolver *r = NULL;
	ldns_rr_list *cur = NULL, *pre = NULL, *upd = NULL, *after = NULL;
	ldns_pkt *q = NULL, *a = NULL;
	ldns_rdf *zone = NULL;
	const ldns_rr *first;
	char *owner = NULL;
	uint32_t ttl;
	ldns_status st;
	size_t i;
	bool same;
	int rc;

	memset(res, 0, sizeof(*res));
	first = ldns_rr_list_rr(c->rrs, 0);
	owner = ldns_rdf2str(ldns_rr_owner(first));
	if (owner == NULL)
		return DJ_ENOMEM;
	if (!ca_name_in_zone(owner, c->zone)) {
		dj_errbuf(err, errlen, "%s is not in zone %s", owner, c->zone);
		rc = DJ_EINVAL;
		goto out;
	}
	/* 1. The RRset as it is now (or as the caller says it is). */
	if (c->expect_given) {
		cur = c->expect != NULL ? ldns_rr_list_clone(c->expect) : ldns_rr_list_new();
		rc = cur != NULL ? DJ_EOK : DJ_ENOMEM;
	} else {
		rc = ca_update_read(srv, owner, ldns_rr_get_type(first), &cur, &ttl, err, errlen);
	}
	if (rc != DJ_EOK)
		goto out;
	rc = DJ_ENOMEM;
	pre = ldns_rr_list_new();
	upd = ldns_rr_list_new();
	after = ldns_rr_list_new();
	zone = ldns_dname_new_frm_str(c->zone);
	if (pre == NULL || upd == NULL || after == NULL || zone == NULL)
		goto out;

	/* 2. Prerequisites: exactly that RRset (RFC 2136 §2.4.2), or none (§2.4.3). */
	if (ldns_rr_list_rr_count(cur) == 0)
		rc = push_copy(pre, first, LDNS_RR_CLASS_NONE, 0, true);
	else
		for (i = 0, rc = DJ_EOK; i < ldns_rr_list_rr_count(cur) && rc == DJ_EOK; i++)
			rc = push_copy(pre, ldns_rr_list_rr(cur, i), LDNS_RR_CLASS_IN, 0, false);
	if (rc != DJ_EOK)
		goto out;

	/* 3. Updates (RFC 2136 §2.5) and the RRset we expect afterwards. */
	for (i = 0; i < ldns_rr_list_rr_count(cur) && rc == DJ_EOK; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(cur, i);

		if (c->op == CA_OP_ADD || (c->op == CA_OP_DELETE && !list_has(c->rrs, rr)))
			rc = push_copy(after, rr, LDNS_RR_CLASS_IN, ldns_rr_ttl(rr), false);
	}
	for (i = 0; i < ldns_rr_list_rr_count(c->rrs) && rc == DJ_EOK; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(c->rrs, i);

		if (c->op == CA_OP_ADD && !list_has(cur, rr)) {
			rc = push_copy(upd, rr, LDNS_RR_CLASS_IN, ldns_rr_ttl(rr), false);
			if (rc == DJ_EOK)
				rc = push_copy(after, rr, LDNS_RR_CLASS_IN, ldns_rr_ttl(rr), false);
		} else if (c->op == CA_OP_DELETE && list_has(cur, rr)) {
			rc = push_copy(upd, rr, LDNS_RR_CLASS_NONE, 0, false);	/* §2.5.4 */
		} else if (c->op == CA_OP_REPLACE) {
			rc = push_copy(after, rr, LDNS_RR_CLASS_IN, ldns_rr_ttl(rr), false);
		}
	}
	if (rc != DJ_EOK)
		goto out;
	if (c->op == CA_OP_REPLACE) {
		same = ldns_rr_list_rr_count(cur) == ldns_rr_list_rr_count(c->rrs);
		for (i = 0; same && i < ldns_rr_list_rr_count(c->rrs); i++)
			same = list_has(cur, ldns_rr_list_rr(c->rrs, i)) &&
			       ldns_rr_ttl(ldns_rr_list_rr(c->rrs, i)) ==
			       ldns_rr_ttl(ldns_rr_list_rr(cur, 0));
		if (!same) {
			rc = push_copy(upd, first, LDNS_RR_CLASS_ANY, 0, true);	/* §2.5.2 */
			for (i = 0; i < ldns_rr_list_rr_count(c->rrs) && rc == DJ_EOK; i++)
				rc = push_copy(upd, ldns_rr_list_rr(c->rrs, i), LDNS_RR_CLASS_IN,
					       ldns_rr_ttl(ldns_rr_list_rr(c->rrs, i)), false);
			if (rc != DJ_EOK)
				goto out;
		}
	}
	rc = ca_rdset_from_list(&res->before, cur);
	if (rc == DJ_EOK)
		rc = ca_rdset_from_list(&res->after, after);
	if (rc != DJ_EOK)
		goto out;

	/* 4. One message, TSIG-signed; the answer's TSIG is verified by ldns_send(). */
	rc = ca_resolver_new(srv, tsig, &r);
	if (rc != DJ_EOK)
		goto out;
	rc = DJ_ENOMEM;
	q = ldns_update_pkt_new(zone, LDNS_RR_CLASS_IN, pre, upd, NULL);
	zone = NULL;	/* taken by the packet */
	if (q == NULL)
		goto out;
	rc = ca_update_sign_send(r, q, &a, &st, err, errlen);
	if (rc != DJ_EOK)
		goto out;
	if (a == NULL) {
		rc = net_error(srv, st, err, errlen);
		goto out;
	}
	res->rcode = ldns_pkt_get_rcode(a);
	if (st == LDNS_STATUS_CRYPTO_TSIG_BOGUS) {
		if (res->rcode == LDNS_RCODE_NOTAUTH)
			dj_errbuf(err, errlen, "the server refused our TSIG key %s (NOTAUTH, %s); "
				  "nothing was changed", tsig->name, tsig_error_name(a));
		else
			dj_errbuf(err, errlen, "the TSIG of the answer does not verify (rcode %d); "
				  "the outcome is unknown", res->rcode);
		rc = DJ_EACCES;
		goto out;
	}
	if (st != LDNS_STATUS_OK) {
		rc = net_error(srv, st, err, errlen);
		goto out;
	}
	if (res->rcode != LDNS_RCODE_NOERROR) {
		rc = ca_update_rcode_error(res->rcode, c->zone, err, errlen);
		goto out;
	}
	res->changed = ldns_rr_list_rr_count(upd) > 0;
	rc = DJ_EOK;
out:
	if (rc != DJ_EOK) {
		ca_rdset_clear(&res->before);
		ca_rdset_clear(&res->after);
	}
	free(owner);
	ldns_rdf_deep_free(zone);
	ldns_rr_list_deep_free(cur);
	ldns_rr_list_deep_free(pre);
	ldns_rr_list_deep_free(upd);
	ldns_rr_list_deep_free(after);
	ldns_pkt_free(q);
	ldns_pkt_free(a);
	ca_resolver_free(r);
	return rc;
}

void ca_update_result_clear(struct ca_update_result *r)
{
	ca_rdset_clear(&r->before);
	ca_rdset_clear(&r->after);
}
