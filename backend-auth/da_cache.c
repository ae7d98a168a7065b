/*
 * da_cache.c - the verdict cache: (type, name) -> answer, bounded, least recently used evicted,
 *		on the one LRU (common/dj_lru.h).
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
#include <string.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"

#define MS_PER_S 1000u
#define TYPE_LEN 2		/* the RR type, first in the key */
#define KEY_MAX (TYPE_LEN + DA_QNAME_MAX)

/* key - the LRU key of (type, name): the type's two bytes, then the name; 0 if too long */
static size_t key(uint16_t type, const char *name, uint8_t out[KEY_MAX])
{
	size_t n = strlen(name);

	if (n > DA_QNAME_MAX)
		return 0;
	out[0] = (uint8_t)(type & 0xff);
	out[1] = (uint8_t)(type >> 8);
	memcpy(out + TYPE_LEN, name, n);
	return TYPE_LEN + n;
}

/* sync - the mirrors of the LRU's counters */
static void sync(struct da_cache *c)
{
	c->count = dj_lru_count(c->lru);
	c->evictions = dj_lru_evictions(c->lru);
}

/* answer_free - the LRU's destructor: drop the cache's reference */
static void answer_free(void *v)
{
	da__answer_unref(v);
}

int da__cache_init(struct da_cache *c, size_t max)
{
	struct dj_lru_props p = { .max = max, .free_value = answer_free };

	int ret;

	memset(c, 0, sizeof(*c));
	if (pthread_mutex_init(&c->lock, NULL) != 0)
		return DJ_ENOMEM;
	ret = dj_lru_new(&p, &c->lru);
	if (ret != DJ_EOK)
		pthread_mutex_destroy(&c->lock);
	return ret;
}

struct da_centry *da__cache_get(struct da_cache *c, uint16_t type, const char *name, uint64_t now)
{
	uint8_t k[KEY_MAX];
	size_t klen = key(type, name, k);
	struct da_answer *a;

	if (klen == 0)
		return NULL;
	a = dj_lru_get(c->lru, k, klen, now, &c->hit.life);
	sync(c);
	if (a == NULL)
		return NULL;
	c->hit.ans = a;
	return &c->hit;
}

int da__cache_put(struct da_cache *c, uint16_t type, const char *name, struct da_answer *a,
		  uint32_t life_s, uint64_t now)
{
	uint8_t k[KEY_MAX];
	size_t klen = key(type, name, k);
	int ret;

	if (klen == 0)
		return DJ_EINVAL;
	if (life_s == 0) {
		/* nothing to keep (TTL 0), and the old verdict must not outlive the new one */
		dj_lru_remove(c->lru, k, klen);
		sync(c);
		return DJ_EOK;
	}
	ret = dj_lru_put(c->lru, k, klen, da__answer_ref(a), now,
			 now + (uint64_t)life_s * MS_PER_S);
	if (ret != DJ_EOK)
		da__answer_unref(a);
	sync(c);
	return ret;
}

int da__cache_in_refresh(const struct da_centry *e, unsigned pct, uint64_t now)
{
	return dj_lru_in_refresh(&e->life, pct, now);
}

void da__cache_clear(struct da_cache *c)
{
	dj_lru_free(c->lru);
	c->lru = NULL;
	sync(c);
	pthread_mutex_destroy(&c->lock);
}
