/*
 * dj_lru.c - the one LRU (dj_lru.h): a chained hash table of entries, threaded on a tail queue
 *	      (<sys/queue.h>) from the most to the least recently used.
 *
 * The table has a power-of-two number of buckets, about one per entry allowed, capped: beyond
 * the cap the chains just get longer. The hash is FNV-1a over the key bytes; it is not keyed,
 * so a peer choosing keys could lengthen one chain, but never past max entries.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/dj_err.h"
#include "common/dj_lru.h"

#define BUCKETS_MIN 16u
#define BUCKETS_MAX (1u << 20)	/* beyond this, chains just get longer */
#define FNV_OFFSET 1469598103934665603ull	/* FNV-1a 64 (draft-eastlake-fnv) */
#define FNV_PRIME 1099511628211ull
#define PCT 100u

struct ent {
	struct ent *hnext;		/* hash chain */
	TAILQ_ENTRY(ent) lru;		/* LRU list, most recent first */
	void *value;
	struct dj_lru_life life;
	size_t keylen;
	unsigned char key[];
};

struct dj_lru {
	struct ent **tab;
	size_t nbuckets, count, max;
	TAILQ_HEAD(ent_list, ent) lru;
	uint64_t evictions;
	dj_lru_free_fn free_value;
};

/* hash - FNV-1a over the key */
static uint64_t hash(const unsigned char *k, size_t len)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < len; i++)
		h = (h ^ k[i]) * FNV_PRIME;
	return h;
}

int dj_lru_new(const struct dj_lru_props *p, struct dj_lru **out)
{
	struct dj_lru *l;
	size_t nb = BUCKETS_MIN;

	if (p == NULL || out == NULL)
		return DJ_EINVAL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return DJ_ENOMEM;
	while (nb < p->max && nb < BUCKETS_MAX)
		nb <<= 1;
	l->tab = calloc(nb, sizeof(*l->tab));
	if (l->tab == NULL) {
		free(l);
		return DJ_ENOMEM;
	}
	TAILQ_INIT(&l->lru);
	l->nbuckets = nb;
	l->max = p->max;
	l->free_value = p->free_value;
	*out = l;
	return DJ_EOK;
}

/* slot - the hash-chain link that points at the entry for the key, or at the NULL end */
static struct ent **slot(struct dj_lru *l, const void *key, size_t keylen)
{
	struct ent **pp = &l->tab[hash(key, keylen) & (l->nbuckets - 1)];

	while (*pp != NULL && ((*pp)->keylen != keylen || memcmp((*pp)->key, key, keylen) != 0))
		pp = &(*pp)->hnext;
	return pp;
}

/* drop - remove the entry *pp points at and free it with its value */
static void drop(struct dj_lru *l, struct ent **pp)
{
	struct ent *e = *pp;

	*pp = e->hnext;
	TAILQ_REMOVE(&l->lru, e, lru);
	if (l->free_value != NULL)
		l->free_value(e->value);
	free(e);
	l->count--;
}

void dj_lru_free(struct dj_lru *l)
{
	struct ent *e;

	if (l == NULL)
		return;
	while ((e = TAILQ_FIRST(&l->lru)) != NULL)
		drop(l, slot(l, e->key, e->keylen));
	free(l->tab);
	free(l);
}

void *dj_lru_get(struct dj_lru *l, const void *key, size_t keylen, uint64_t now_ms,
		 struct dj_lru_life *life)
{
	struct ent **pp, *e;

	if (l == NULL || key == NULL)
		return NULL;
	pp = slot(l, key, keylen);
	e = *pp;
	if (e == NULL)
		return NULL;
	if (now_ms >= e->life.expires_ms) {
		drop(l, pp);
		return NULL;
	}
	TAILQ_REMOVE(&l->lru, e, lru);	/* now the most recently used */
	TAILQ_INSERT_HEAD(&l->lru, e, lru);
	if (life != NULL)
		*life = e->life;
	return e->value;
}

void dj_lru_remove(struct dj_lru *l, const void *key, size_t keylen)
{
	struct ent **pp;

	if (l == NULL || key == NULL)
		return;
	pp = slot(l, key, keylen);
	if (*pp != NULL)
		drop(l, pp);
}

int dj_lru_put(struct dj_lru *l, const void *key, size_t keylen, void *value, uint64_t born_ms,
	       uint64_t expires_ms)
{
	struct ent **pp, *e, *old;

	if (l == NULL || key == NULL)
		return DJ_EINVAL;
	dj_lru_remove(l, key, keylen);
	if (l->max == 0) {
		/* a bound of zero keeps nothing: the value is ours, and goes at once */
		if (l->free_value != NULL)
			l->free_value(value);
		return DJ_EOK;
	}
	e = malloc(sizeof(*e) + keylen);
	if (e == NULL)
		return DJ_ENOMEM;
	while (l->count >= l->max && (old = TAILQ_LAST(&l->lru, ent_list)) != NULL) {
		drop(l, slot(l, old->key, old->keylen));
		l->evictions++;
	}
	memset(e, 0, sizeof(*e));
	memcpy(e->key, key, keylen);
	e->keylen = keylen;
	e->value = value;
	e->life.born_ms = born_ms;
	e->life.expires_ms = expires_ms;
	pp = slot(l, key, keylen);	/* at the NULL end of the key's chain */
	*pp = e;
	TAILQ_INSERT_HEAD(&l->lru, e, lru);
	l->count++;
	return DJ_EOK;
}

bool dj_lru_in_refresh(const struct dj_lru_life *life, unsigned pct, uint64_t now_ms)
{
	uint64_t span;

	if (life == NULL || pct == 0 || now_ms >= life->expires_ms)
		return false;
	span = life->born_ms < life->expires_ms ? life->expires_ms - life->born_ms : 0;
	/* remaining <= pct% of the lifetime */
	return (life->expires_ms - now_ms) * PCT <= span * pct;
}

size_t dj_lru_count(const struct dj_lru *l)
{
	return l != NULL ? l->count : 0;
}

uint64_t dj_lru_evictions(const struct dj_lru *l)
{
	return l != NULL ? l->evictions : 0;
}
