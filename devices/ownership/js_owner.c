/*
 * js_owner.c - joins authorized by ownership: fetch and verify a device's chain from the DNS,
 *		cache the verdict per device, and check each peer against the last link.
 *
 * SECURITY
 *	DESIGN.md rule 1: the chain TXT and every `_owner` TLSA count only from DNSSEC-secure
 *	answers (da_dns says DA_SECURE); insecure, bogus, absent and unusable all refuse, and a
 *	resolver failure is a temporary failure, which the caller turns into a refusal (rule 3 is
 *	fail-closed: no key leaves without a verified chain).
 *
 *	What the chain must say beyond dv_chain_verify: its DevEUI is the one asked about (a
 *	valid chain of another device copied under this name proves nothing about this one); it
 *	ends at the zone it was read from, which is the owner zone the registry holds (a chain
 *	ending elsewhere is not this zone's to publish); and its last serial is not below the
 *	registry's (an older, once valid chain replayed into the DNS).
 *
 *	The identity is the TLS-authenticated one (DESIGN.md rule 2), never a name the peer
 *	chose: its host must be the owner zone or under it, so that only the owner's servers get
 *	the device, and the SenderID must be among the rights the previous owner signed over.
 *
 *	The cache keeps a verdict no longer than the smallest TTL left on the records it rests
 *	on (capped), so a transfer, a revoked key or a tampered record is seen within one TTL,
 *	and a verdict is never served past the validity of the DNS data behind it: when the DNS
 *	is down that long, checks fail closed. A failed background refresh never extends an entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "backend-auth/da_dns.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "common/dj_lru.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_ownerkey.h"
#include "ownership/dv_records.h"
#include "ownership/js_owner.h"

#define DEF_CACHE_MAX 10000u
#define DEF_TTL_CAP 3600u
#define DEF_NEG_TTL 60u
#define DEF_REFRESH_PCT 10u	/* da_dns's default: a refresh then finds the resolver's own
				 * entry in its refresh window, and renews it too */
#define MS_PER_S 1000u
#define NS_CLIENT_LABEL "_ns-client."	/* DANCE client identities (DESIGN.md) */
#define AS_CLIENT_LABEL "_as-client."

/* One device's cached chain verdict: a value of the LRU (common/dj_lru.h), keyed by DevEUI. */
struct centry {
	char zone[DV_ZONE_MAX];		/* the owner zone = the last link's to_zone */
	bool ok;			/* verified; else refused with why */
	char why[JS_OWNER_WHY_MAX];
	uint64_t serial;		/* the last link's */
	size_t n_net_ids;
	uint8_t net_ids[DV_RIGHTS_MAX][DV_NETID_LEN];
	size_t n_as_ids;
	char *as_ids;			/* NUL-separated, n_as_ids of them */
};

/* A request waiting for a fetch. */
struct waiter {
	struct waiter *next;
	js_owner_cb cb;
	void *arg;
	bool is_ns;
	char *identity;
	char *sender_id;
};

/* One chain fetch in flight: the TXT, then the _owner TLSA of each signer, one at a time. */
struct fetch {
	struct fetch *next, *prev;	/* c->fetches */
	struct js_owner_ctx *c;
	uint8_t dev_eui[LW_EUI_LEN];
	char zone[DV_ZONE_MAX];
	uint64_t min_serial;
	struct da_lookup *lk;		/* the lookup under way */
	struct dv_chain *chain;
	size_t nz, zi;			/* signer zones, the next to look up */
	char zones[DV_CHAIN_MAX][DV_ZONE_MAX];
	EVP_PKEY *keys[DV_CHAIN_MAX];
	enum dv_key_status kst[DV_CHAIN_MAX];
	uint32_t ttl;			/* the smallest TTL left seen so far */
	bool refresh;			/* a background refresh */
	struct waiter *waiters;
	struct js_owner_inspection *ins;	/* an operator's inspection, not a join's check */
};

/* An inspection (js_owner_inspect): the fetch's stored chain checked link by link. */
struct js_owner_inspection {
	struct fetch *f;
	js_owner_report_cb cb;
	void *arg;
	struct js_owner_inspection **handle;	/* the caller's, cleared before cb */
	uint8_t *stored;			/* the stored chain's bytes */
	size_t stored_len;
	enum da_status dst[DV_CHAIN_MAX];	/* per signer zone (f->zones): the TLSA verdict */
	bool asked[DV_CHAIN_MAX];
	char dwhy[DV_CHAIN_MAX][JS_OWNER_WHY_MAX / 2];
	char pname[DV_NAME_MAX];		/* the published chain */
	enum da_status pst;
	char pwhy[JS_OWNER_WHY_MAX];
	int psame;
	uint64_t pserial;
};

struct js_owner_ctx {
	struct da_resolver *r;
	uint64_t (*clock)(void *arg);
	void *clock_arg;
	uint32_t ttl_cap, neg_ttl;
	unsigned refresh_pct;
	struct dj_lru *cache;		/* DevEUI -> struct centry */
	struct fetch *fetches;
	struct js_owner_stats st;
};

const char *js_owner_status_str(enum js_owner_status s)
{
	switch (s) {
	case JS_OWNER_ALLOWED: return "allowed";
	case JS_OWNER_REFUSED: return "refused";
	case JS_OWNER_TEMPFAIL: return "temporary failure";
	case JS_OWNER_CANCELLED: return "cancelled";
	}
	return "unknown";
}

/* ---- the cache ------------------------------------------------------------------------- */

/* centry_free - the LRU's destructor */
static void centry_free(void *v)
{
	struct centry *e = v;

	free(e->as_ids);
	free(e);
}

/* cache_put - replace the entry of \p eui by \p e (taken, even on failure), born \p now and
 * alive until \p expires_ms; the LRU evicts the least recently used one when full */
static void cache_put(struct js_owner_ctx *c, const uint8_t eui[LW_EUI_LEN], struct centry *e,
		      uint64_t now, uint64_t expires_ms)
{
	struct dj_lru_life old;
	struct centry *o = dj_lru_get(c->cache, eui, LW_EUI_LEN, now, &old);
	uint64_t born_ms = now;

	/* a refresh that read the resolver's own entries before they were renewed brings no
	 * later expiry: keep the old birth, so the refresh window stays where it was and the
	 * next check in it tries again (it would shrink to 10% of the few seconds left) */
	if (o != NULL && strcmp(o->zone, e->zone) == 0 && expires_ms <= old.expires_ms &&
	    old.born_ms < born_ms)
		born_ms = old.born_ms;
	if (dj_lru_put(c->cache, eui, LW_EUI_LEN, e, born_ms, expires_ms) != DJ_EOK) {
		/* answered all the same; only not kept */
		dj_warn("ownership: cannot cache a verdict: out of memory");
		centry_free(e);
	}
}

/* ---- the verdict for one peer ---------------------------------------------------------- */

bool js_owner_host_in_zone(const char *identity, const char *zone)
{
	char host[DV_ZONE_MAX], z[DV_ZONE_MAX];
	size_t hl, zl;

	if (identity == NULL || zone == NULL)
		return false;
	if (strncasecmp(identity, NS_CLIENT_LABEL, strlen(NS_CLIENT_LABEL)) == 0)
		identity += strlen(NS_CLIENT_LABEL);
	else if (strncasecmp(identity, AS_CLIENT_LABEL, strlen(AS_CLIENT_LABEL)) == 0)
		identity += strlen(AS_CLIENT_LABEL);
	if (dv_zone_normalize(identity, host) != DJ_EOK || dv_zone_normalize(zone, z) != DJ_EOK)
		return false;
	hl = strlen(host);
	zl = strlen(z);
	if (hl == zl)
		return strcmp(host, z) == 0;
	return hl > zl && host[hl - zl - 1] == '.' && strcmp(host + hl - zl, z) == 0;
}

/* decide - the verdict of a verified (or refused) chain \p e for one peer */
static void decide(const struct centry *e, bool is_ns, const char *identity,
		   const char *sender_id, struct js_owner_verdict *v)
{
	uint8_t nid[DV_NETID_LEN];
	const char *p;
	size_t i;

	memset(v, 0, sizeof(*v));
	v->status = JS_OWNER_REFUSED;
	if (!e->ok) {
		snprintf(v->why, sizeof(v->why), "%s", e->why);
		return;
	}
	if (!js_owner_host_in_zone(identity, e->zone)) {
		snprintf(v->why, sizeof(v->why), "ownership: %.80s is not in the owner zone %.80s",
			 identity, e->zone);
		return;
	}
	if (is_ns) {
		if (dj_hex_parse(sender_id, nid, DV_NETID_LEN) != DJ_EOK)
			goto rights;
		for (i = 0; i < e->n_net_ids; i++)
			if (memcmp(e->net_ids[i], nid, DV_NETID_LEN) == 0)
				goto allowed;
	} else {
		for (i = 0, p = e->as_ids; i < e->n_as_ids; i++, p += strlen(p) + 1)
			if (strcmp(p, sender_id) == 0)
				goto allowed;
	}
rights:
	snprintf(v->why, sizeof(v->why), "ownership: %s %.32s is not among the rights of %.80s",
		 is_ns ? "NetID" : "AS-ID", sender_id, e->zone);
	return;
allowed:
	v->status = JS_OWNER_ALLOWED;
	snprintf(v->why, sizeof(v->why), "ownership: owner %.80s", e->zone);
	if (e->n_net_ids > 0) {
		v->has_net_id = true;
		memcpy(v->net_id, e->net_ids[0], DV_NETID_LEN);
	}
}

/* count - statistics of one answered check */
static void count(struct js_owner_ctx *c, const struct js_owner_verdict *v)
{
	if (v->status == JS_OWNER_ALLOWED)
		c->st.allowed++;
	else if (v->status == JS_OWNER_REFUSED)
		c->st.refused++;
	else if (v->status == JS_OWNER_TEMPFAIL)
		c->st.tempfail++;
}

/* ---- fetches --------------------------------------------------------------------------- */

/* waiter_free - free one waiter */
static void waiter_free(struct waiter *w)
{
	if (w == NULL)
		return;
	free(w->identity);
	free(w->sender_id);
	free(w);
}

/* fetch_unlink - take \p f out of its context's list of fetches in flight (idempotent) */
static void fetch_unlink(struct fetch *f)
{
	if (f->prev != NULL)
		f->prev->next = f->next;
	else if (f->c->fetches == f)
		f->c->fetches = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	f->next = f->prev = NULL;
}

/* fetch_free - unlink and free \p f (its waiters must be gone) */
static void fetch_free(struct fetch *f)
{
	fetch_unlink(f);
	for (size_t i = 0; i < f->nz; i++)
		EVP_PKEY_free(f->keys[i]);
	if (f->ins != NULL)
		free(f->ins->stored);
	free(f->ins);
	free(f->chain);
	free(f);
}

/* min_ttl - keep the smallest TTL */
static void min_ttl(struct fetch *f, uint32_t ttl)
{
	if (ttl < f->ttl)
		f->ttl = ttl;
}

/* finish - the chain's verdict: cache it (unless a temporary failure), answer the waiters,
 * free \p f. \p ok: verified (rights from f->chain's last link); else \p st with \p why. */
static void finish(struct fetch *f, enum js_owner_status st, const char *why)
{
	struct js_owner_ctx *c = f->c;
	struct centry *e = NULL;
	struct waiter *w, *list = f->waiters;
	struct js_owner_verdict v;
	uint64_t now = c->clock(c->clock_arg), expires = now;
	uint32_t life;

	f->waiters = NULL;
	/* out of the in-flight list first: a callback may start a check of the same device */
	fetch_unlink(f);
	if (st != JS_OWNER_TEMPFAIL) {
		e = calloc(1, sizeof(*e));
		if (e != NULL) {
			snprintf(e->zone, sizeof(e->zone), "%s", f->zone);
			e->ok = st == JS_OWNER_ALLOWED;
			snprintf(e->why, sizeof(e->why), "%s", why);
		}
		if (e != NULL && e->ok) {
			const struct dv_link *l = &f->chain->links[f->chain->n - 1];
			size_t total = 1;
			char *p;

			e->serial = l->serial;
			e->n_net_ids = l->n_net_ids;
			memcpy(e->net_ids, l->net_ids, sizeof(e->net_ids));
			for (size_t i = 0; i < l->n_as_ids; i++)
				total += strlen(l->as_ids[i]) + 1;
			e->as_ids = p = malloc(total);
			if (p == NULL) {
				free(e);
				e = NULL;
			} else {
				for (size_t i = 0; i < l->n_as_ids; i++) {
					size_t n = strlen(l->as_ids[i]) + 1;

					memcpy(p, l->as_ids[i], n);
					p += n;
				}
				*p = '\0';
				e->n_as_ids = l->n_as_ids;
			}
		}
		if (e == NULL) {
			/* no memory: no verdict either way, the request is refused for now */
			st = JS_OWNER_TEMPFAIL;
			why = "ownership: out of memory";
		} else {
			life = f->ttl;
			if (life > (e->ok ? c->ttl_cap : c->neg_ttl))
				life = e->ok ? c->ttl_cap : c->neg_ttl;
			expires = now + (uint64_t)life * MS_PER_S;
		}
	}
	if (st == JS_OWNER_TEMPFAIL)
		dj_warn("ownership of %02x%02x%02x%02x%02x%02x%02x%02x in %s: %s",
			f->dev_eui[0], f->dev_eui[1], f->dev_eui[2], f->dev_eui[3], f->dev_eui[4],
			f->dev_eui[5], f->dev_eui[6], f->dev_eui[7], f->zone, why);
	while ((w = list) != NULL) {
		list = w->next;
		if (e != NULL) {
			decide(e, w->is_ns, w->identity, w->sender_id, &v);
		} else {
			memset(&v, 0, sizeof(v));
			v.status = JS_OWNER_TEMPFAIL;
			snprintf(v.why, sizeof(v.why), "%s", why);
		}
		count(c, &v);
		w->cb(&v, w->arg);
		waiter_free(w);
	}
	if (e != NULL) {
		if (expires > now)
			cache_put(c, f->dev_eui, e, now, expires);
		else
			centry_free(e);	/* a TTL of 0: answered, not kept */
	}
	for (size_t i = 0; i < f->nz; i++)
		EVP_PKEY_free(f->keys[i]);
	free(f->chain);
	free(f);
}

/* key_of - dv_chain_verify's key callback: the keys fetched for \p zone */
static enum dv_key_status key_of(const char *zone, void *arg, EVP_PKEY **out)
{
	struct fetch *f = arg;

	for (size_t i = 0; i < f->nz; i++) {
		if (strcmp(f->zones[i], zone) != 0)
			continue;
		if (f->kst[i] != DV_KEY_OK)
			return f->kst[i];
		if (EVP_PKEY_up_ref(f->keys[i]) != 1)
			return DV_KEY_TEMPFAIL;
		*out = f->keys[i];
		return DV_KEY_OK;
	}
	return DV_KEY_ABSENT;
}

/* verify - every key is in: verify the chain and finish */
static void verify(struct fetch *f)
{
	struct dv_chain_verdict v;
	char why[JS_OWNER_WHY_MAX];
	int rc;

	rc = dv_chain_verify(f->chain, key_of, f, &v);
	if (rc != DJ_EOK) {
		snprintf(why, sizeof(why), "ownership: chain verification failed: %s",
			 dj_strerror(rc));
		finish(f, JS_OWNER_TEMPFAIL, why);
		return;
	}
	if (v.status == DV_CHAIN_OK) {
		finish(f, JS_OWNER_ALLOWED, "ok");
		return;
	}
	snprintf(why, sizeof(why), "ownership: %s: %.150s", dv_chain_status_name(v.status),
		 v.why);
	finish(f, v.status == DV_CHAIN_TEMPFAIL ? JS_OWNER_TEMPFAIL : JS_OWNER_REFUSED, why);
}

static void next_key(struct fetch *f);
static void inspect_done(struct fetch *f);

/* first_signed_by - the first link of f's chain signed by \p zone */
static const struct dv_link *first_signed_by(const struct fetch *f, const char *zone)
{
	for (size_t i = 0; i < f->chain->n; i++)
		if (strcmp(f->chain->links[i].signer_zone, zone) == 0)
			return &f->chain->links[i];
	return NULL;
}

/* on_owner_tlsa - the _owner TLSA of f->zones[f->zi]: its key (dv_ownerkey: during a
 * rollover with several, the one that verifies the zone's first link) */
static void on_owner_tlsa(const struct da_tlsa_set *s, void *arg)
{
	struct fetch *f = arg;
	size_t zi = f->zi;

	f->lk = NULL;
	if (f->ins != NULL) {
		f->ins->asked[zi] = true;
		f->ins->dst[zi] = s->status;
		snprintf(f->ins->dwhy[zi], sizeof(f->ins->dwhy[zi]), "%s",
			 s->why != NULL ? s->why : "");
	}
	f->kst[zi] = dv_ownerkey_status(s->status);
	if (f->kst[zi] == DV_KEY_OK &&
	    dv_ownerkey_from_tlsa(s->rr, s->n, first_signed_by(f, f->zones[zi]), &f->keys[zi]) !=
	    DJ_EOK)
		f->kst[zi] = DV_KEY_ABSENT;
	if (s->status != DA_TEMPFAIL)
		min_ttl(f, s->ttl);	/* a verdict rests on the record, a failure on nothing */
	f->zi++;
	next_key(f);
}

/* next_key - look up the next signer's _owner key, or verify once all are in */
static void next_key(struct fetch *f)
{
	char name[DV_NAME_MAX];

	if (f->zi == f->nz) {
		if (f->ins != NULL)
			inspect_done(f);
		else
			verify(f);
		return;
	}
	if (dv_owner_name(f->zones[f->zi], name) != DJ_EOK ||
	    da_tlsa_lookup(f->c->r, name, on_owner_tlsa, f, &f->lk) != DJ_EOK) {
		f->kst[f->zi] = DV_KEY_ABSENT;
		f->zi++;
		next_key(f);
	}
	/* f may be gone here: the lookup may have answered from the cache */
}

/* signer_zones - f->zones: the signer zones of f->chain, each once, in order; none asked yet */
static void signer_zones(struct fetch *f)
{
	size_t i, j;

	for (i = 0; i < f->chain->n; i++) {
		const char *z = f->chain->links[i].signer_zone;

		for (j = 0; j < f->nz && strcmp(f->zones[j], z) != 0; j++)
			;
		if (j == f->nz)
			snprintf(f->zones[f->nz++], DV_ZONE_MAX, "%s", z);
	}
	f->zi = 0;
}

/* on_chain_txt - the _ownership TXT: decode, check that it is this device's and this zone's,
 * then fetch the signers' keys */
static void on_chain_txt(const struct da_txt_set *s, void *arg)
{
	struct fetch *f = arg;
	const struct dv_link *last;
	char why[JS_OWNER_WHY_MAX];
	uint8_t *bin = NULL;
	size_t blen = 0;

	f->lk = NULL;
	if (s->status == DA_TEMPFAIL) {
		snprintf(why, sizeof(why), "ownership: DNS unavailable (%.120s)", s->why);
		finish(f, JS_OWNER_TEMPFAIL, why);
		return;
	}
	f->ttl = s->ttl;
	if (s->status != DA_SECURE) {
		snprintf(why, sizeof(why), "ownership: no secure chain at %.100s (%s)", s->name,
			 da_status_str(s->status));
		finish(f, JS_OWNER_REFUSED, why);
		return;
	}
	if (s->n != 1) {
		snprintf(why, sizeof(why), "ownership: %zu TXT records at %.100s, want one", s->n,
			 s->name);
		finish(f, JS_OWNER_REFUSED, why);
		return;
	}
	f->chain = calloc(1, sizeof(*f->chain));
	if (f->chain == NULL) {
		finish(f, JS_OWNER_TEMPFAIL, "ownership: out of memory");
		return;
	}
	if (dv_b64_decode(s->txt[0], s->len[0], &bin, &blen) != DJ_EOK ||
	    dv_chain_decode(bin, blen, f->chain) != DJ_EOK || f->chain->n == 0) {
		free(bin);
		finish(f, JS_OWNER_REFUSED, "ownership: malformed chain");
		return;
	}
	free(bin);
	last = &f->chain->links[f->chain->n - 1];
	if (memcmp(last->dev_eui, f->dev_eui, LW_EUI_LEN) != 0) {
		finish(f, JS_OWNER_REFUSED, "ownership: the chain is another device's");
		return;
	}
	if (strcmp(last->to_zone, f->zone) != 0) {
		snprintf(why, sizeof(why), "ownership: the chain ends at %.80s, not at %.80s",
			 last->to_zone, f->zone);
		finish(f, JS_OWNER_REFUSED, why);
		return;
	}
	if (last->serial < f->min_serial) {
		snprintf(why, sizeof(why), "ownership: stale chain (serial %llu, registry %llu)",
			 (unsigned long long)last->serial, (unsigned long long)f->min_serial);
		finish(f, JS_OWNER_REFUSED, why);
		return;
	}
	signer_zones(f);
	next_key(f);
}

/* fetch_start - a new fetch of (\p eui, \p zone) with \p w (may be NULL: a refresh) */
static int fetch_start(struct js_owner_ctx *c, const uint8_t eui[LW_EUI_LEN], const char *zone,
		       uint64_t min_serial, struct waiter *w)
{
	char name[DV_NAME_MAX];
	struct fetch *f;
	int ret;

	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return DJ_ENOMEM;
	f->c = c;
	memcpy(f->dev_eui, eui, LW_EUI_LEN);
	if (dv_zone_normalize(zone, f->zone) != DJ_EOK ||
	    dv_chain_name(eui, f->zone, name) != DJ_EOK) {
		free(f);
		return DJ_EINVAL;
	}
	f->min_serial = min_serial;
	f->ttl = UINT32_MAX;
	f->refresh = w == NULL;
	f->waiters = w;
	f->next = c->fetches;
	if (c->fetches != NULL)
		c->fetches->prev = f;
	c->fetches = f;
	c->st.fetches++;
	ret = da_txt_lookup(c->r, name, on_chain_txt, f, &f->lk);
	if (ret != DJ_EOK) {
		f->waiters = NULL;
		fetch_free(f);
		return ret;
	}
	return DJ_EOK;	/* f may be gone: answered from the cache */
}

/* find_fetch - the fetch in flight for (\p eui, \p zone), or NULL */
static struct fetch *find_fetch(struct js_owner_ctx *c, const uint8_t eui[LW_EUI_LEN],
				const char *zone)
{
	for (struct fetch *f = c->fetches; f != NULL; f = f->next)
		if (f->ins == NULL && memcmp(f->dev_eui, eui, LW_EUI_LEN) == 0 &&
		    strcmp(f->zone, zone) == 0)
			return f;
	return NULL;
}

int js_owner_check(struct js_owner_ctx *c, const struct js_owner_req *q, js_owner_cb cb,
		   void *arg)
{
	char zone[DV_ZONE_MAX];
	struct js_owner_verdict v;
	struct dj_lru_life life;
	struct centry *e;
	struct fetch *f;
	struct waiter *w;
	uint64_t now;
	bool refresh;
	int ret;

	if (c == NULL || q == NULL || cb == NULL || q->zone == NULL || q->identity == NULL ||
	    q->sender_id == NULL || dv_zone_normalize(q->zone, zone) != DJ_EOK)
		return DJ_EINVAL;
	now = c->clock(c->clock_arg);
	e = dj_lru_get(c->cache, q->dev_eui, LW_EUI_LEN, now, &life);
	if (e != NULL && strcmp(e->zone, zone) == 0 && (!e->ok || e->serial >= q->serial)) {
		c->st.hits++;
		decide(e, q->is_ns, q->identity, q->sender_id, &v);
		v.from_cache = true;
		refresh = dj_lru_in_refresh(&life, c->refresh_pct, now) &&
			  find_fetch(c, q->dev_eui, zone) == NULL;
		/* e may be replaced by the refresh (a warm resolver answers at once): copied */
		if (refresh) {
			c->st.refreshes++;
			if (fetch_start(c, q->dev_eui, zone, q->serial, NULL) != DJ_EOK)
				dj_warn("ownership: cannot start a refresh");
		}
		count(c, &v);
		cb(&v, arg);
		return DJ_EOK;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return DJ_ENOMEM;
	w->cb = cb;
	w->arg = arg;
	w->is_ns = q->is_ns;
	w->identity = strdup(q->identity);
	w->sender_id = strdup(q->sender_id);
	if (w->identity == NULL || w->sender_id == NULL) {
		waiter_free(w);
		return DJ_ENOMEM;
	}
	f = find_fetch(c, q->dev_eui, zone);
	if (f != NULL) {
		w->next = f->waiters;
		f->waiters = w;
		return DJ_EOK;
	}
	ret = fetch_start(c, q->dev_eui, zone, q->serial, w);
	if (ret != DJ_EOK)
		waiter_free(w);
	return ret;
}

int js_owner_ctx_new(const struct js_owner_props *p, struct js_owner_ctx **out)
{
	struct js_owner_ctx *c;
	struct dj_lru_props lp = { .max = DEF_CACHE_MAX, .free_value = centry_free };

	if (p == NULL || p->resolver == NULL || out == NULL || p->refresh_pct > 99)
		return DJ_EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return DJ_ENOMEM;
	c->r = p->resolver;
	c->clock = p->clock != NULL ? p->clock : dj_clock_mono_ms_cb;
	c->clock_arg = p->clock_arg;
	c->ttl_cap = p->ttl_cap ? p->ttl_cap : DEF_TTL_CAP;
	c->neg_ttl = p->neg_ttl ? p->neg_ttl : DEF_NEG_TTL;
	c->refresh_pct = p->refresh_pct ? p->refresh_pct : DEF_REFRESH_PCT;
	if (p->cache_max != 0)
		lp.max = p->cache_max;
	if (dj_lru_new(&lp, &c->cache) != DJ_EOK) {
		free(c);
		return DJ_ENOMEM;
	}
	*out = c;
	return DJ_EOK;
}

void js_owner_ctx_free(struct js_owner_ctx *c)
{
	struct js_owner_verdict v;
	struct fetch *f;
	struct waiter *w;

	if (c == NULL)
		return;
	memset(&v, 0, sizeof(v));
	v.status = JS_OWNER_CANCELLED;
	snprintf(v.why, sizeof(v.why), "ownership: shutting down");
	while ((f = c->fetches) != NULL) {
		da_lookup_cancel(f->lk);
		if (f->ins != NULL) {
			struct js_owner_report r = { .cancelled = true };

			if (f->ins->handle != NULL)
				*f->ins->handle = NULL;
			f->ins->cb(&r, f->ins->arg);
		}
		while ((w = f->waiters) != NULL) {
			f->waiters = w->next;
			w->cb(&v, w->arg);
			waiter_free(w);
		}
		fetch_free(f);
	}
	dj_lru_free(c->cache);
	free(c);
}

void js_owner_stats(const struct js_owner_ctx *c, struct js_owner_stats *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return;
	*out = c->st;
	out->cached = dj_lru_count(c->cache);
}

/* ---- an operator's view: the stored chain, link by link -------------------------------- */

const char *js_owner_link_result_str(enum js_owner_link_result r)
{
	switch (r) {
	case JS_LINK_VERIFIED: return "verified";
	case JS_LINK_BROKEN: return "broken";
	case JS_LINK_BADSIG: return "bad_signature";
	case JS_LINK_NOKEY: return "no_key";
	case JS_LINK_INSECURE: return "insecure";
	case JS_LINK_BOGUS: return "bogus";
	case JS_LINK_TEMPFAIL: return "tempfail";
	}
	return "unknown";
}

/* key_reason - why the key of signer zone \p z (f->zones index; f->nz: none) gave no verdict
 * on a signature, from the verdict of its _owner TLSA lookup */
static void key_reason(const struct fetch *f, size_t z, const char *name,
		       struct js_owner_link_report *lr)
{
	const struct js_owner_inspection *ins = f->ins;
	const char *why = z < f->nz ? ins->dwhy[z] : "";
	enum js_owner_link_result res = JS_LINK_NOKEY;
	char text[JS_OWNER_WHY_MAX];

	if (z == f->nz || !ins->asked[z]) {
		snprintf(text, sizeof(text), "signer key not found: %.120s was not looked up", name);
	} else {
		switch (ins->dst[z]) {
		case DA_NXDOMAIN:
		case DA_NODATA:
			snprintf(text, sizeof(text), "signer key not found: %.120s TLSA: %s (secure "
				 "denial)", name, ins->dst[z] == DA_NXDOMAIN ? "NXDOMAIN" : "NODATA");
			break;
		case DA_INSECURE:
			res = JS_LINK_INSECURE;
			snprintf(text, sizeof(text), "insecure: %.120s is not DNSSEC-signed (no chain "
				 "of trust)", name);
			break;
		case DA_BOGUS:
			res = JS_LINK_BOGUS;
			snprintf(text, sizeof(text), "bogus: %.90s failed DNSSEC validation (%.70s)",
				 name, why);
			break;
		case DA_TEMPFAIL:
			res = JS_LINK_TEMPFAIL;
			snprintf(text, sizeof(text), "lookup failed: %.90s (%.80s)", name, why);
			break;
		default:	/* DA_UNUSABLE, or secure without a usable 3 1 0 key */
			snprintf(text, sizeof(text), "signer key not found: no usable TLSA 3 1 0 "
				 "(EC P-256 or Ed25519 SPKI) at %.120s", name);
			break;
		}
	}
	lr->result = res;
	snprintf(lr->why, sizeof(lr->why), "%s", text);
}

/* link_report - the verdict on link \p i of f's (stored) chain, the keys all looked up */
static void link_report(struct fetch *f, size_t i, struct js_owner_link_report *lr)
{
	const struct dv_link *l = &f->chain->links[i];
	struct dv_chain_verdict v;
	char name[DV_NAME_MAX];
	size_t z;
	int rc;

	memset(lr, 0, sizeof(*lr));
	for (z = 0; z < f->nz && strcmp(f->zones[z], l->signer_zone) != 0; z++)
		;
	if (z < f->nz && f->ins->asked[z]) {
		lr->key_asked = true;
		lr->key_status = f->ins->dst[z];
	}
	if (dv_owner_name(l->signer_zone, name) != DJ_EOK)
		snprintf(name, sizeof(name), "_owner.%.200s", l->signer_zone);
	rc = dv_chain_verify_link(f->chain, i, key_of, f, &v);
	if (rc != DJ_EOK) {
		lr->result = JS_LINK_TEMPFAIL;
		snprintf(lr->why, sizeof(lr->why), "not verified: %s", dj_strerror(rc));
		return;
	}
	switch (v.status) {
	case DV_CHAIN_OK:
		lr->result = JS_LINK_VERIFIED;
		snprintf(lr->why, sizeof(lr->why), "verified");
		break;
	case DV_CHAIN_MALFORMED:
	case DV_CHAIN_BROKEN:
		lr->result = JS_LINK_BROKEN;
		snprintf(lr->why, sizeof(lr->why), "structure broken: %.170s", v.why);
		break;
	case DV_CHAIN_BADSIG:
		lr->result = JS_LINK_BADSIG;
		snprintf(lr->why, sizeof(lr->why), "bad signature: it does not verify under the key "
			 "at %.120s TLSA 3 1 0", name);
		break;
	default:
		key_reason(f, z, name, lr);
		break;
	}
}

/* inspect_done - every key is in: a verdict per link, the report to the caller, free \p f */
static void inspect_done(struct fetch *f)
{
	struct js_owner_inspection *ins = f->ins;
	struct js_owner_link_report *lr;
	struct js_owner_report r = { 0 };

	/* out of the list first: the callback may start another inspection */
	fetch_unlink(f);
	lr = calloc(f->chain->n, sizeof(*lr));
	if (ins->handle != NULL)
		*ins->handle = NULL;
	if (lr == NULL) {
		r.cancelled = true;	/* out of memory: no report */
		ins->cb(&r, ins->arg);
		fetch_free(f);
		return;
	}
	for (size_t i = 0; i < f->chain->n; i++)
		link_report(f, i, &lr[i]);
	r.chain = f->chain;
	r.links = lr;
	r.published_name = ins->pname;
	r.published_status = ins->pst;
	r.published_why = ins->pwhy;
	r.published_same = ins->psame;
	r.published_serial = ins->pserial;
	ins->cb(&r, ins->arg);
	free(lr);
	fetch_free(f);
}

/* on_inspect_txt - the chain the DNS publishes: compared with the stored one; then the keys */
static void on_inspect_txt(const struct da_txt_set *s, void *arg)
{
	struct fetch *f = arg;
	struct js_owner_inspection *ins = f->ins;
	struct dv_chain *pub;
	uint8_t *bin = NULL;
	size_t blen = 0;

	f->lk = NULL;
	ins->pst = s->status;
	if (s->status != DA_SECURE) {
		snprintf(ins->pwhy, sizeof(ins->pwhy), "%.190s",
			 s->why != NULL ? s->why : da_status_str(s->status));
	} else if (s->n != 1) {
		ins->psame = 0;
		snprintf(ins->pwhy, sizeof(ins->pwhy), "%zu TXT records, want one", s->n);
	} else if (dv_b64_decode(s->txt[0], s->len[0], &bin, &blen) != DJ_EOK) {
		ins->psame = 0;
		snprintf(ins->pwhy, sizeof(ins->pwhy), "the TXT record is not base64");
	} else {
		/* one encoding per chain (dv_chain.h): the same chain is the same bytes */
		ins->psame = blen == ins->stored_len && memcmp(bin, ins->stored, blen) == 0;
		pub = calloc(1, sizeof(*pub));
		if (pub != NULL && dv_chain_decode(bin, blen, pub) == DJ_EOK && pub->n > 0)
			ins->pserial = pub->links[pub->n - 1].serial;
		else
			snprintf(ins->pwhy, sizeof(ins->pwhy), "the published chain does not decode");
		free(pub);
	}
	free(bin);
	next_key(f);
}

int js_owner_inspect(struct js_owner_ctx *c, const uint8_t dev_eui[LW_EUI_LEN], const char *zone,
		     const uint8_t *chain, size_t len, js_owner_report_cb cb, void *arg,
		     struct js_owner_inspection **handle)
{
	struct js_owner_inspection *ins;
	struct fetch *f;
	int ret = DJ_ENOMEM;

	if (handle != NULL)
		*handle = NULL;
	if (c == NULL || dev_eui == NULL || zone == NULL || chain == NULL || cb == NULL ||
	    handle == NULL)
		return DJ_EINVAL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return DJ_ENOMEM;
	f->c = c;
	f->ins = ins = calloc(1, sizeof(*ins));
	f->chain = calloc(1, sizeof(*f->chain));
	if (ins == NULL || f->chain == NULL || (ins->stored = malloc(len ? len : 1)) == NULL)
		goto out;
	ret = DJ_EINVAL;
	memcpy(f->dev_eui, dev_eui, LW_EUI_LEN);
	if (dv_zone_normalize(zone, f->zone) != DJ_EOK ||
	    dv_chain_name(dev_eui, f->zone, ins->pname) != DJ_EOK)
		goto out;
	ret = DJ_EMALFORMED;
	if (dv_chain_decode(chain, len, f->chain) != DJ_EOK || f->chain->n == 0)
		goto out;
	memcpy(ins->stored, chain, len);
	ins->stored_len = len;
	ins->f = f;
	ins->cb = cb;
	ins->arg = arg;
	ins->handle = handle;
	ins->pst = DA_TEMPFAIL;
	ins->psame = -1;
	f->ttl = UINT32_MAX;
	signer_zones(f);
	f->next = c->fetches;
	if (c->fetches != NULL)
		c->fetches->prev = f;
	c->fetches = f;
	*handle = ins;
	ret = da_txt_lookup(c->r, ins->pname, on_inspect_txt, f, &f->lk);
	if (ret == DJ_EOK)
		return DJ_EOK;	/* f may be gone: answered from the cache */
	*handle = NULL;
out:
	fetch_free(f);
	return ret;
}

void js_owner_inspect_cancel(struct js_owner_inspection *h)
{
	if (h == NULL)
		return;
	da_lookup_cancel(h->f->lk);
	fetch_free(h->f);
}
