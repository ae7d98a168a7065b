/*
 * da_cache.c - the verdict cache: (type, name) -> answer, bounded, least recently used evicted.
 *
 * SECURITY
 *	The cache is where a TTL could be stretched into "trusted forever", so its rules are few
 *	and tested: an entry lives min(TTL, cap) seconds (the caller computes the lifetime with
 *	da__lifetime: ttl_cap for secure answers, neg_ttl for every other verdict, zero for
 *	DA_TEMPFAIL, which is never stored); an expired entry is never returned, it is dropped on
 *	sight. The size is bounded (cache_max), so a peer that makes us look up many names can
 *	only evict, not exhaust memory. Time is passed in by the caller (a monotonic clock in
 *	milliseconds), which keeps wall-clock steps out and lets the unit tests move time.
 */
#include <stdlib.h>
#include <string.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"

#define MS_PER_S 1000u
#define BUCKETS_MAX (1u << 20)	/* beyond this, chains just get longer */

/* hash - FNV-1a over the type and the (canonical, lower-case) name */
static uint64_t hash(uint16_t type, const char *name)
{
	uint64_t h = 1469598103934665603ull;

	h = (h ^ (type & 0xff)) * 1099511628211ull;
	h = (h ^ (type >> 8)) * 1099511628211ull;
	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return h;
}

int da__cache_init(struct da_cache *c, size_t max)
{
	size_t nb = 16;

	memset(c, 0, sizeof(*c));
	while (nb < max && nb < BUCKETS_MAX)
		nb <<= 1;
	c->tab = calloc(nb, sizeof(*c->tab));
	if (c->tab == NULL)
		return DJ_ENOMEM;
	c->nbuckets = nb;
	c->max = max;
	return DJ_EOK;
}

/* lru_unlink - take \p e out of the LRU list */
static void lru_unlink(struct da_cache *c, struct da_centry *e)
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
static void lru_front(struct da_cache *c, struct da_centry *e)
{
	e->lprev = NULL;
	e->lnext = c->lru_head;
	if (c->lru_head != NULL)
		c->lru_head->lprev = e;
	c->lru_head = e;
	if (c->lru_tail == NULL)
		c->lru_tail = e;
}

/* slot - the hash-chain link that points at the entry for (type, name), or at the NULL end */
static struct da_centry **slot(struct da_cache *c, uint16_t type, const char *name)
{
	struct da_centry **pp = &c->tab[hash(type, name) & (c->nbuckets - 1)];

	while (*pp != NULL && ((*pp)->type != type || strcmp((*pp)->name, name) != 0))
		pp = &(*pp)->hnext;
	return pp;
}

/* drop - remove the entry that *pp points at */
static void drop(struct da_cache *c, struct da_centry **pp)
{
	struct da_centry *e = *pp;

	*pp = e->hnext;
	lru_unlink(c, e);
	da__answer_unref(e->ans);
	free(e->name);
	free(e);
	c->count--;
}

struct da_centry *da__cache_get(struct da_cache *c, uint16_t type, const char *name, uint64_t now)
{
	struct da_centry **pp = slot(c, type, name), *e = *pp;

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

int da__cache_put(struct da_cache *c, uint16_t type, const char *name, struct da_answer *a,
		  uint32_t life_s, uint64_t now)
{
	struct da_centry **pp, *e;

	pp = slot(c, type, name);
	if (*pp != NULL)
		drop(c, pp);
	if (life_s == 0 || c->max == 0)
		return DJ_EOK;	/* nothing to keep: TTL 0 or TEMPFAIL */
	while (c->count >= c->max && c->lru_tail != NULL) {
		struct da_centry *old = c->lru_tail;

		drop(c, slot(c, old->type, old->name));
		c->evictions++;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->name = strdup(name)) == NULL) {
		free(e);
		return DJ_ENOMEM;
	}
	e->type = type;
	e->ans = da__answer_ref(a);
	e->born_ms = now;
	e->expires_ms = now + (uint64_t)life_s * MS_PER_S;
	pp = slot(c, type, name);	/* evictions may have changed the chain */
	e->hnext = *pp;
	*pp = e;
	lru_front(c, e);
	c->count++;
	return DJ_EOK;
}

int da__cache_in_refresh(const struct da_centry *e, unsigned pct, uint64_t now)
{
	uint64_t life = e->expires_ms - e->born_ms;

	if (pct == 0 || now >= e->expires_ms)
		return 0;
	/* remaining <= pct% of lifetime */
	return (e->expires_ms - now) * 100u <= life * pct;
}

void da__cache_clear(struct da_cache *c)
{
	while (c->lru_head != NULL)
		drop(c, slot(c, c->lru_head->type, c->lru_head->name));
	free(c->tab);
	c->tab = NULL;
	c->nbuckets = 0;
}
