/*
 * da_discover.c - LoRaWAN Backend Interfaces (TS002-1.0 §19) server discovery over DNSSEC:
 *		   the JoinEUI and NetID names, and NAPTR -> SRV -> A/AAAA.
 *
 * WHAT TS002 §19 SAYS, AND WHAT OTHERS DO
 *	§19.1: a NetID (24 bits) is 6 hex digits, high-order nibble first, under NETIDS.LORA-
 *	ALLIANCE.ORG ("00050a.netids.lora-alliance.org" for 0x00050A). A JoinEUI (EUI-64) is its
 *	16 nibbles, low-order nibble first, separated by dots, under JOINEUIS.LORA-ALLIANCE.ORG
 *	(00-00-5E-10-00-00-00-2F -> "f.2.0.0.0.0.0.0.0.1.e.5.0.0.0.0.joineuis.lora-alliance.org").
 *	The NAPTR records there name the service ("LWN": a LoRaWAN server over HTTP, "LWNS": over
 *	HTTPS) and carry flag "S" (look up SRV at the replacement); SRV (RFC 2782) then gives
 *	target and port. The Things Stack (pkg/interop JoinServerFQDN) forms the JoinEUI name
 *	exactly so ("0.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.joineuis.lora-alliance.org" for
 *	70b3d57ed0000000) and ChirpStack uses the same suffixes (join_server.resolve_domain_suffix
 *	".joineuis.lora-alliance.org", roaming.resolve_netid_domain_suffix
 *	".netids.lora-alliance.org"); both then use that name as a plain HTTPS host name rather
 *	than following NAPTR/SRV. We follow the specification (NAPTR -> SRV -> A/AAAA); the service
 *	string is the caller's ("LWNS" for TS002 over HTTPS, or a private one), matched
 *	case-insensitively, and only flag "S" is followed.
 *
 * SECURITY
 *	Every step must be DNSSEC-secure (DESIGN.md rule 1): an insecure NAPTR could send us to an
 *	attacker's host, and the TLSA lookup that follows would then be for the attacker's name.
 *	The overall status is the worst of all steps (da__status_rank: bogus, then insecure, then
 *	tempfail, then the denials), and servers are reported only when it is DA_SECURE. A missing
 *	AAAA (secure NODATA) next to a secure A is normal and does not count against the chain.
 *	The fan-out is bounded (DISC_MAX_SERVERS), so a zone cannot make us run unbounded lookups.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"

#define DISC_MAX_SERVERS 16	/* SRV targets followed per discovery */
#define DISC_MAX_ADDRS 16	/* addresses kept per target and family */
#define DISC_SERVICE_MAX 64
#define EUI64_NIBBLES 16	/* TS002 §19.1 */
#define NETID_MAX 0xffffffu	/* 24 bits, TS002 §19.1 */
#define DEFAULT_SUFFIX "lora-alliance.org"

enum step { STEP_NAPTR, STEP_SRV, STEP_A, STEP_AAAA };

struct dserver {
	char *host;
	uint16_t port, prio, weight;
	char *addr[2 * DISC_MAX_ADDRS];
	size_t n_addr;
	enum da_status st[2];		/* A, AAAA */
};

/* One outstanding step; l is NULL once it answered (the lookup is freed by its query). */
struct child {
	struct child *next;
	struct da_disc *d;
	struct da_lookup *l;
	enum step step;
	size_t idx;			/* server index for A/AAAA */
};

struct da_disc {
	struct da_resolver *r;
	LIST_ENTRY(da_disc) link;	/* r->discs */
	struct da_lookup handle;	/* the caller's handle (kind DA_LK_DISC) */
	char name[DA_QNAME_MAX + 1];
	char service[DISC_SERVICE_MAX];
	da_discovery_cb cb;
	void *arg;
	enum da_status worst;
	char why[DA_REASON_MAX];
	size_t pending;
	struct child *children;
	struct dserver srv[DISC_MAX_SERVERS];
	size_t nsrv;
};

int da_joineui_name(uint64_t join_eui, const char *suffix, char *out, size_t outlen)
{
	char canon[DA_QNAME_MAX + 1], buf[2 * EUI64_NIBBLES + 1];
	size_t i, n;

	if (out == NULL)
		return DJ_EINVAL;
	if (da__name_canon(suffix && *suffix ? suffix : DEFAULT_SUFFIX, canon, sizeof(canon)) !=
	    DJ_EOK)
		return DJ_EINVAL;
	for (i = 0; i < EUI64_NIBBLES; i++) {	/* low-order nibble first */
		buf[2 * i] = "0123456789abcdef"[(join_eui >> (4 * i)) & 0xf];
		buf[2 * i + 1] = '.';
	}
	buf[2 * EUI64_NIBBLES] = '\0';
	n = (size_t)snprintf(NULL, 0, "%sjoineuis.%s", buf, canon);
	if (n + 1 > outlen)
		return DJ_ERANGE;
	snprintf(out, outlen, "%sjoineuis.%s", buf, canon);
	return DJ_EOK;
}

int da_netid_name(uint32_t net_id, const char *suffix, char *out, size_t outlen)
{
	char canon[DA_QNAME_MAX + 1];
	size_t n;

	if (out == NULL || net_id > NETID_MAX)
		return DJ_EINVAL;
	if (da__name_canon(suffix && *suffix ? suffix : DEFAULT_SUFFIX, canon, sizeof(canon)) !=
	    DJ_EOK)
		return DJ_EINVAL;
	n = (size_t)snprintf(NULL, 0, "%06" PRIx32 ".netids.%s", net_id, canon);
	if (n + 1 > outlen)
		return DJ_ERANGE;
	snprintf(out, outlen, "%06" PRIx32 ".netids.%s", net_id, canon);
	return DJ_EOK;
}

/* worsen - fold a step's verdict into the overall one; \p what names the step */
static void worsen(struct da_disc *d, enum da_status st, const char *what, const char *why)
{
	if (da__status_rank(st) <= da__status_rank(d->worst))
		return;
	d->worst = st;
	dj_errbuf(d->why, sizeof(d->why), "%s: %s", what, why ? why : da_status_str(st));
}

static void child_cb(const struct da_answer *a, void *arg);

/* child_start - look up (type, name) as one step of \p d */
static void child_start(struct da_disc *d, enum step step, uint16_t type, const char *name,
			size_t idx)
{
	struct child *c;
	int ret;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		worsen(d, DA_TEMPFAIL, name, "out of memory");
		return;
	}
	c->d = d;
	c->step = step;
	c->idx = idx;
	c->next = d->children;
	d->children = c;
	d->pending++;
	ret = da__rr_lookup(d->r, type, name, child_cb, c, &c->l);
	if (ret != DJ_EOK) {
		d->pending--;
		c->l = NULL;
		worsen(d, ret == DJ_EINVAL ? DA_UNUSABLE : DA_TEMPFAIL, name,
		       ret == DJ_EINVAL ? "malformed name" : dj_strerror(ret));
	}
}

/* on_naptr - pick the NAPTRs for our service (lowest order, flag S) and follow them to SRV */
static void on_naptr(struct da_disc *d, const struct da_answer *a)
{
	size_t i, j, match = 0, other_flags = 0;
	uint32_t best = UINT32_MAX;

	for (i = 0; i < a->n; i++) {
		if (strcasecmp(a->naptr[i].service, d->service) != 0)
			continue;
		if (strcasecmp(a->naptr[i].flags, "S") != 0) {
			other_flags++;
			continue;
		}
		match++;
		if (a->naptr[i].order < best)
			best = a->naptr[i].order;
	}
	if (match == 0) {
		worsen(d, DA_UNUSABLE, d->name,
		       other_flags ? "NAPTR for the service without flag S (only S is followed)"
				   : "no NAPTR for the service");
		return;
	}
	d->pending++;	/* hold: a cached step may answer inside child_start */
	for (i = 0; i < a->n; i++) {
		const struct da_naptr *n = &a->naptr[i];
		int dup = 0;

		if (n->order != best || strcasecmp(n->service, d->service) != 0 ||
		    strcasecmp(n->flags, "S") != 0)
			continue;
		for (j = 0; j < i; j++)
			if (a->naptr[j].order == best &&
			    strcmp(a->naptr[j].replacement, n->replacement) == 0 &&
			    strcasecmp(a->naptr[j].service, d->service) == 0 &&
			    strcasecmp(a->naptr[j].flags, "S") == 0)
				dup = 1;
		if (dup)
			continue;
		if (n->replacement[0] == '\0') {
			worsen(d, DA_UNUSABLE, d->name, "NAPTR replacement is the root");
			continue;
		}
		child_start(d, STEP_SRV, DA_T_SRV, n->replacement, 0);
	}
	d->pending--;
}

/* on_srv - every SRV target becomes a server; look up its addresses */
static void on_srv(struct da_disc *d, const struct da_answer *a)
{
	size_t i, k;

	d->pending++;
	for (i = 0; i < a->n; i++) {
		const struct da_srv *s = &a->srv[i];
		struct dserver *sv;

		if (s->target[0] == '\0')
			continue;	/* "." : decidedly not offered (RFC 2782) */
		if (d->nsrv == DISC_MAX_SERVERS) {
			worsen(d, DA_UNUSABLE, s->target, "too many SRV targets");
			break;
		}
		sv = &d->srv[d->nsrv];
		sv->host = strdup(s->target);
		if (sv->host == NULL) {
			worsen(d, DA_TEMPFAIL, s->target, "out of memory");
			break;
		}
		sv->port = s->port;
		sv->prio = s->prio;
		sv->weight = s->weight;
		sv->st[0] = sv->st[1] = DA_TEMPFAIL;
		k = d->nsrv++;
		child_start(d, STEP_A, DA_T_A, sv->host, k);
		child_start(d, STEP_AAAA, DA_T_AAAA, sv->host, k);
	}
	d->pending--;
}

/* on_addr - keep the addresses of a secure A/AAAA answer */
static void on_addr(struct da_disc *d, size_t idx, int fam, const struct da_answer *a)
{
	struct dserver *sv = &d->srv[idx];
	size_t i;

	sv->st[fam] = a->status;
	if (a->status != DA_SECURE)
		return;
	for (i = 0; i < a->n && i < DISC_MAX_ADDRS; i++) {
		sv->addr[sv->n_addr] = strdup(a->addr[i]);
		if (sv->addr[sv->n_addr] == NULL) {
			worsen(d, DA_TEMPFAIL, sv->host, "out of memory");
			return;
		}
		sv->n_addr++;
	}
}

/* disc_release - free \p d and what it owns (its lookups must be gone) */
static void disc_release(struct da_disc *d)
{
	struct child *c;
	size_t i, k;

	while ((c = d->children) != NULL) {
		d->children = c->next;
		free(c);
	}
	for (i = 0; i < d->nsrv; i++) {
		free(d->srv[i].host);
		for (k = 0; k < d->srv[i].n_addr; k++)
			free(d->srv[i].addr[k]);
	}
	free(d);
}

/* srv_cmp - priority ascending, then weight descending (RFC 2782), then name */
static int srv_cmp(const void *x, const void *y)
{
	const struct dserver *a = x, *b = y;

	if (a->prio != b->prio)
		return a->prio < b->prio ? -1 : 1;
	if (a->weight != b->weight)
		return a->weight > b->weight ? -1 : 1;
	return strcmp(a->host, b->host);
}

/* finish - judge the addresses, call the caller, free \p d */
static void finish(struct da_disc *d)
{
	struct da_server out[DISC_MAX_SERVERS];
	struct da_discovery res;
	struct da_resolver *r = d->r;
	size_t i, f;

	for (i = 0; i < d->nsrv; i++) {
		struct dserver *sv = &d->srv[i];

		/* a failure of either family counts; a denial only if there is no address */
		for (f = 0; f < 2; f++)
			if (da__status_rank(sv->st[f]) >= da__status_rank(DA_TEMPFAIL))
				worsen(d, sv->st[f], sv->host,
				       f == 0 ? "A lookup failed" : "AAAA lookup failed");
		if (sv->n_addr == 0)
			worsen(d, da__status_rank(sv->st[0]) >= da__status_rank(sv->st[1])
					  ? sv->st[0] : sv->st[1],
			       sv->host, "no address");
	}
	if (d->worst == DA_SECURE && d->nsrv == 0)
		worsen(d, DA_UNUSABLE, d->name, "no server offered");
	qsort(d->srv, d->nsrv, sizeof(d->srv[0]), srv_cmp);
	memset(&res, 0, sizeof(res));
	res.name = d->name;
	res.status = d->worst;
	res.why = d->worst == DA_SECURE ? NULL : d->why;
	if (d->worst == DA_SECURE) {
		for (i = 0; i < d->nsrv; i++) {
			out[i].host = d->srv[i].host;
			out[i].port = d->srv[i].port;
			out[i].priority = d->srv[i].prio;
			out[i].weight = d->srv[i].weight;
			out[i].n_addr = d->srv[i].n_addr;
			out[i].addr = (const char *const *)d->srv[i].addr;
		}
		res.n = d->nsrv;
		res.srv = out;
	}
	LIST_REMOVE(d, link);	/* off its resolver's list */
	d->handle.delivering = 1;
	r->depth++;
	d->cb(&res, d->arg);
	r->depth--;
	disc_release(d);
}

/* child_cb - one step answered */
static void child_cb(const struct da_answer *a, void *arg)
{
	struct child *c = arg;
	struct da_disc *d = c->d;

	c->l = NULL;	/* its query frees the lookup after this returns */
	switch (c->step) {
	case STEP_NAPTR:
		if (a->status != DA_SECURE)
			worsen(d, a->status, d->name, a->why);
		else
			on_naptr(d, a);
		break;
	case STEP_SRV:
		if (a->status != DA_SECURE)
			worsen(d, a->status, "SRV", a->why);
		else
			on_srv(d, a);
		break;
	case STEP_A:
	case STEP_AAAA:
		on_addr(d, c->idx, c->step == STEP_A ? 0 : 1, a);
		break;
	}
	if (--d->pending == 0)
		finish(d);
}

void da__disc_cancel(struct da_disc *d)
{
	struct child *c;

	if (d == NULL || d->handle.delivering)
		return;
	for (c = d->children; c != NULL; c = c->next)
		if (c->l != NULL) {
			struct da_lookup *l = c->l;

			c->l = NULL;
			da_lookup_cancel(l);
		}
	LIST_REMOVE(d, link);	/* off its resolver's list */
	disc_release(d);
}

int da_discover(struct da_resolver *r, const char *naptr_name, const char *service,
		da_discovery_cb cb, void *arg, struct da_lookup **handle)
{
	struct da_disc *d;

	if (handle != NULL)
		*handle = NULL;
	if (r == NULL || cb == NULL || service == NULL || *service == '\0' ||
	    strlen(service) >= DISC_SERVICE_MAX)
		return DJ_EINVAL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return DJ_ENOMEM;
	if (da__name_canon(naptr_name, d->name, sizeof(d->name)) != DJ_EOK) {
		free(d);
		return DJ_EINVAL;
	}
	snprintf(d->service, sizeof(d->service), "%s", service);
	d->r = r;
	d->cb = cb;
	d->arg = arg;
	d->worst = DA_SECURE;
	d->handle.kind = DA_LK_DISC;
	d->handle.r = r;
	d->handle.disc = d;
	LIST_INSERT_HEAD(&r->discs, d, link);
	d->pending = 1;	/* hold while the first step starts (it may be cached) */
	child_start(d, STEP_NAPTR, DA_T_NAPTR, d->name, 0);
	if (--d->pending == 0) {
		finish(d);	/* every step was cached: answered already */
		return DJ_EOK;
	}
	if (handle != NULL)
		*handle = &d->handle;
	return DJ_EOK;
}
