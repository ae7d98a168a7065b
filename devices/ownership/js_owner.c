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
#include <time.h>

#include <openssl/evp.h>

#include "backend-auth/da_dns.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_records.h"
#include "ownership/js_owner.h"

#define DEF_CACHE_MAX 10000u
#define DEF_TTL_CAP 3600u
#define DEF_NEG_TTL 60u
#define DEF_REFRESH_PCT 10u	/* da_dns's default: a refresh then finds the resolver's own
				 * entry in its refresh window, and renews it too */
#define MS_PER_S 1000u
#define NS_PER_MS 1000000u
#define BUCKETS_MAX (1u << 20)
#define TLSA_DANE_EE 3			/* RFC 6698 §2.1.1 */
#define TLSA_SPKI 1			/* RFC 6698 §2.1.2 */
#define TLSA_FULL 0			/* RFC 6698 §2.1.3 */
#define NS_CLIENT_LABEL "_ns-client."	/* DANCE client identities (DESIGN.md) */
#define AS_CLIENT_LABEL "_as-client."

/* One device's cached chain verdict. */
struct centry {
	struct centry *hnext;
	struct centry *lprev, *lnext;	/* LRU, most recent first */
	uint8_t dev_eui[LW_EUI_LEN];
	char zone[DV_ZONE_MAX];		/* the owner zone = the last link's to_zone */
	bool ok;			/* verified; else refused with why */
	char why[JS_OWNER_WHY_MAX];
	uint64_t serial;		/* the last link's */
	size_t n_net_ids;
	uint8_t net_ids[DV_RIGHTS_MAX][DV_NETID_LEN];
	size_t n_as_ids;
	char *as_ids;			/* NUL-separated, n_as_ids of them */
	uint64_t born_ms, expires_ms;
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
};

struct js_owner_ctx {
	struct da_resolver *r;
	uint64_t (*clock)(void *arg);
	void *clock_arg;
	uint32_t ttl_cap, neg_ttl;
	unsigned refresh_pct;
	size_t max, count, nbuckets;
	struct centry **tab;
	struct centry *lru_head, *lru_tail;
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

/* mono_ms - the default clock */
static uint64_t mono_ms(void *arg)
{
	(void)arg;
	return dj_clock_mono_ms();
}

/* ---- the cache ------------------------------------------------------------------------- */

/* bucket - the hash chain of a DevEUI (FNV-1a) */
static struct centry **bucket(struct js_owner_ctx *c, const uint8_t eui[LW_EUI_LEN])
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < LW_EUI_LEN; i++)
		h = (h ^ eui[i]) * 1099511628211ull;
	return &c->tab[h & (c->nbuckets - 1)];
}

/* slot - the link that points at the entry of \p eui, or at the NULL end of its chain */
static struct centry **slot(struct js_owner_ctx *c, const uint8_t eui[LW_EUI_LEN])
{
	struct centry **pp = bucket(c, eui);

	while (*pp != NULL && memcmp((*pp)->dev_eui, eui, LW_EUI_LEN) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

/* lru_unlink - take \p e out of the LRU list */
static void lru_unlink(struct js_owner_ctx *c, struct centry *e)
{
	if (e->lprev != NULL)
		e->lprev->lnext = e->lnext;
	else
		c->lru_head = e->lnext;
	if (e->lnext != NULL)
		e->lnext->lprev = e->lprev;
	else
		c->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

/* lru_front - make \p e the most recently used */
static void lru_front(struct js_owner_ctx *c, struct centry *e)
{
	e->lnext = c->lru_head;
	if (c->lru_head != NULL)
		c->lru_head->lprev = e;
	c->lru_head = e;
	if (c->lru_tail == NULL)
		c->lru_tail = e;
}

/* drop - remove and free the entry *pp points at */
static void drop(struct js_owner_ctx *c, struct centry **pp)
{
	struct centry *e = *pp;

	*pp = e->hnext;
	lru_unlink(c, e);
	free(e->as_ids);
	free(e);
	c->count--;
}

/* cache_get - the fresh entry of \p eui or NULL (an expired one is dropped) */
static struct centry *cache_get(struct js_owner_ctx *c, const uint8_t eui[LW_EUI_LEN],
				uint64_t now)
{
	struct centry **pp = slot(c, eui), *e = *pp;

	if (e == NULL)
		return NULL;
	if (now >= e->expires_ms) {
		drop(c, pp);
		return NULL;
	}
	lru_unlink(c, e);
	lru_front(c, e);
	return e;
}

/* cache_put - replace the entry of \p e->dev_eui by \p e (taken); evicts the LRU one */
static void cache_put(struct js_owner_ctx *c, struct centry *e)
{
	struct centry **pp = slot(c, e->dev_eui);

	/* a refresh that read the resolver's own entries before they were renewed brings no
	 * later expiry: keep the old birth, so the refresh window stays where it was and the
	 * next check in it tries again (it would shrink to 10% of the few seconds left) */
	if (*pp != NULL && strcmp((*pp)->zone, e->zone) == 0 &&
	    e->expires_ms <= (*pp)->expires_ms && (*pp)->born_ms < e->born_ms)
		e->born_ms = (*pp)->born_ms;
	if (*pp != NULL)
		drop(c, pp);
	while (c->count >= c->max && c->lru_tail != NULL)
		drop(c, slot(c, c->lru_tail->dev_eui));
	pp = slot(c, e->dev_eui);
	e->hnext = *pp;
	*pp = e;
	lru_front(c, e);
	c->count++;
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

/* fetch_free - unlink and free \p f (its waiters must be gone) */
static void fetch_free(struct fetch *f)
{
	if (f->prev != NULL)
		f->prev->next = f->next;
	else if (f->c->fetches == f)
		f->c->fetches = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	for (size_t i = 0; i < f->nz; i++)
		EVP_PKEY_free(f->keys[i]);
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
	uint64_t now = c->clock(c->clock_arg);
	uint32_t life;

	f->waiters = NULL;
	/* out of the in-flight list first: a callback may start a check of the same device */
	if (f->prev != NULL)
		f->prev->next = f->next;
	else if (c->fetches == f)
		c->fetches = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	f->next = f->prev = NULL;
	if (st != JS_OWNER_TEMPFAIL) {
		e = calloc(1, sizeof(*e));
		if (e != NULL) {
			memcpy(e->dev_eui, f->dev_eui, LW_EUI_LEN);
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
			e->born_ms = now;
			e->expires_ms = now + (uint64_t)life * MS_PER_S;
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
		if (e->expires_ms > now)
			cache_put(c, e);	/* a TTL of 0: answered, not kept */
		else {
			free(e->as_ids);
			free(e);
		}
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

/* first_signed_by - the first link of f's chain signed by \p zone */
static const struct dv_link *first_signed_by(const struct fetch *f, const char *zone)
{
	for (size_t i = 0; i < f->chain->n; i++)
		if (strcmp(f->chain->links[i].signer_zone, zone) == 0)
			return &f->chain->links[i];
	return NULL;
}

/* on_owner_tlsa - the _owner TLSA of f->zones[f->zi]: the usable 3 1 0 key (during a
 * rollover with several, the one that verifies the zone's first link) */
static void on_owner_tlsa(const struct da_tlsa_set *s, void *arg)
{
	struct fetch *f = arg;
	size_t zi = f->zi;
	const struct dv_link *l;

	f->lk = NULL;
	switch (s->status) {
	case DA_SECURE:
		f->kst[zi] = DV_KEY_ABSENT;
		l = first_signed_by(f, f->zones[zi]);
		for (size_t i = 0; i < s->n; i++) {
			EVP_PKEY *k = NULL;

			if (s->rr[i].usage != TLSA_DANE_EE || s->rr[i].selector != TLSA_SPKI ||
			    s->rr[i].mtype != TLSA_FULL ||
			    dv_key_from_spki(s->rr[i].data, s->rr[i].len, &k) != DJ_EOK)
				continue;
			if (l != NULL && dv_link_verify(l, k) == DJ_EOK) {
				EVP_PKEY_free(f->keys[zi]);
				f->keys[zi] = k;
				f->kst[zi] = DV_KEY_OK;
				break;
			}
			if (f->keys[zi] == NULL) {
				f->keys[zi] = k;
				f->kst[zi] = DV_KEY_OK;
			} else {
				EVP_PKEY_free(k);
			}
		}
		min_ttl(f, s->ttl);
		break;
	case DA_TEMPFAIL:
		f->kst[zi] = DV_KEY_TEMPFAIL;
		break;
	case DA_INSECURE:
	case DA_BOGUS:
		f->kst[zi] = DV_KEY_INSECURE;
		min_ttl(f, s->ttl);
		break;
	default:
		f->kst[zi] = DV_KEY_ABSENT;
		min_ttl(f, s->ttl);
		break;
	}
	f->zi++;
	next_key(f);
}

/* next_key - look up the next signer's _owner key, or verify once all are in */
static void next_key(struct fetch *f)
{
	char name[DV_NAME_MAX];

	if (f->zi == f->nz) {
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

/* on_chain_txt - the _ownership TXT: decode, check that it is this device's and this zone's,
 * then fetch the signers' keys */
static void on_chain_txt(const struct da_txt_set *s, void *arg)
{
	struct fetch *f = arg;
	const struct dv_link *last;
	char why[JS_OWNER_WHY_MAX];
	uint8_t *bin = NULL;
	size_t blen = 0, i, j;

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
	for (i = 0; i < f->chain->n; i++) {
		const char *z = f->chain->links[i].signer_zone;

		for (j = 0; j < f->nz && strcmp(f->zones[j], z) != 0; j++)
			;
		if (j == f->nz)
			snprintf(f->zones[f->nz++], DV_ZONE_MAX, "%s", z);
	}
	f->zi = 0;
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
		if (memcmp(f->dev_eui, eui, LW_EUI_LEN) == 0 && strcmp(f->zone, zone) == 0)
			return f;
	return NULL;
}

/* in_refresh - whether \p e is in the last pct percent of its life */
static bool in_refresh(const struct centry *e, unsigned pct, uint64_t now)
{
	uint64_t life = e->expires_ms - e->born_ms;

	return now < e->expires_ms && (e->expires_ms - now) * 100u <= life * pct;
}

int js_owner_check(struct js_owner_ctx *c, const struct js_owner_req *q, js_owner_cb cb,
		   void *arg)
{
	char zone[DV_ZONE_MAX];
	struct js_owner_verdict v;
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
	e = cache_get(c, q->dev_eui, now);
	if (e != NULL && strcmp(e->zone, zone) == 0 && (!e->ok || e->serial >= q->serial)) {
		c->st.hits++;
		decide(e, q->is_ns, q->identity, q->sender_id, &v);
		v.from_cache = true;
		refresh = in_refresh(e, c->refresh_pct, now) &&
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
	size_t nb = 16;

	if (p == NULL || p->resolver == NULL || out == NULL || p->refresh_pct > 99)
		return DJ_EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return DJ_ENOMEM;
	c->r = p->resolver;
	c->clock = p->clock != NULL ? p->clock : mono_ms;
	c->clock_arg = p->clock_arg;
	c->ttl_cap = p->ttl_cap ? p->ttl_cap : DEF_TTL_CAP;
	c->neg_ttl = p->neg_ttl ? p->neg_ttl : DEF_NEG_TTL;
	c->refresh_pct = p->refresh_pct ? p->refresh_pct : DEF_REFRESH_PCT;
	c->max = p->cache_max ? p->cache_max : DEF_CACHE_MAX;
	while (nb < c->max && nb < BUCKETS_MAX)
		nb <<= 1;
	c->tab = calloc(nb, sizeof(*c->tab));
	if (c->tab == NULL) {
		free(c);
		return DJ_ENOMEM;
	}
	c->nbuckets = nb;
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
		while ((w = f->waiters) != NULL) {
			f->waiters = w->next;
			w->cb(&v, w->arg);
			waiter_free(w);
		}
		fetch_free(f);
	}
	while (c->lru_head != NULL)
		drop(c, slot(c, c->lru_head->dev_eui));
	free(c->tab);
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
	out->cached = c->count;
}
