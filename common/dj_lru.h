/*
 * dj_lru.h - the one LRU of the project: a bounded key -> value map whose entries expire on the
 *	      caller's clock, the least recently used evicted first.
 *
 * SYNOPSIS
 *	struct dj_lru *l;
 *	struct dj_lru_life life;
 *
 *	dj_lru_new(&(struct dj_lru_props){ .max = 1000, .free_value = free }, &l);
 *	dj_lru_put(l, key, keylen, value, now, now + ttl_ms);
 *	v = dj_lru_get(l, key, keylen, now, &life);
 *	if (v != NULL && dj_lru_in_refresh(&life, 10, now)) ... start a refresh ...
 *	dj_lru_free(l);
 *
 * DESCRIPTION
 *	Behind the DNS verdict cache (backend-auth/da_cache.c) and the ownership verdict cache
 *	(devices/ownership/js_owner.c); Unbound has one lruhash behind every cache, and so do we.
 *
 *	Time is a parameter: every call that looks at expiry takes \p now_ms, read from the
 *	caller's clock (monotonic milliseconds in production, a variable in tests), so TTL logic is
 *	tested without waiting and wall-clock steps cannot stretch an entry. An expired entry is
 *	never returned: it is dropped on sight. A hit makes the entry the most recently used; when
 *	the map is full, a put evicts the least recently used entries first. The bound keeps a peer
 *	that makes us cache many keys from exhausting memory: it can only evict.
 *
 *	"Refresh on hit": the caller asks dj_lru_in_refresh() whether a hit is within the last
 *	pct percent of its life, and if so starts a background refresh whose put replaces the
 *	entry; the LRU keeps the birth time of each entry for that.
 *
 *	Values are opaque; the LRU owns each value it holds and gives it to free_value when the
 *	entry is replaced, expires, is evicted or removed, or the LRU is freed. Keys are bytes,
 *	copied. Not thread-safe: one owner, one thread (or the owner's lock).
 */
#ifndef DJ_COMMON_DJ_LRU_H
#define DJ_COMMON_DJ_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"

struct dj_lru;

/* The destructor of values; called with each value the LRU drops. */
typedef void (*dj_lru_free_fn)(void *value);

struct dj_lru_props {
	size_t max;			/* entries kept at most; 0 keeps none */
	dj_lru_free_fn free_value;	/* NULL: values are not owned (nothing is called) */
};

/* The life of one entry, in the caller's clock. */
struct dj_lru_life {
	uint64_t born_ms;		/* when it was put (or the birth the caller gave) */
	uint64_t expires_ms;		/* first instant at which it is no longer returned */
};

/*!
 * \brief A new, empty LRU.
 * \param p    sizes and the value destructor (borrowed for the call).
 * \param out  the LRU, the caller's (dj_lru_free); written on success only.
 * \retval DJ_EOK, DJ_EINVAL (NULL argument), DJ_ENOMEM.
 */
int dj_lru_new(const struct dj_lru_props *p, struct dj_lru **out) DJ_MUSTCHECK;

/*! \brief Free \p l and every value in it. Accepts NULL. */
void dj_lru_free(struct dj_lru *l);

/*!
 * \brief The value of a fresh entry for \p key, or NULL.
 *
 * An entry with now_ms >= expires_ms is dropped (its value freed) and NULL returned. A hit
 * becomes the most recently used entry.
 * \param life  NULL, or where the entry's times go on a hit.
 * \return the value, borrowed: valid until the next call that may drop entries (a put, a
 *	   remove, or a get of another key that finds it expired).
 */
void *dj_lru_get(struct dj_lru *l, const void *key, size_t keylen, uint64_t now_ms,
		 struct dj_lru_life *life);

/*!
 * \brief Store \p value under \p key, alive from \p born_ms until \p expires_ms.
 *
 * Any entry already under \p key is replaced (its value freed). When the LRU is full, the least
 * recently used entries are evicted (counted in dj_lru_evictions). With max 0 the value is
 * freed at once.
 * \param value  taken on success only.
 * \retval DJ_EOK, DJ_EINVAL (NULL LRU or key), DJ_ENOMEM (nothing changed but the replaced
 *	   entry's removal).
 */
int dj_lru_put(struct dj_lru *l, const void *key, size_t keylen, void *value, uint64_t born_ms,
	       uint64_t expires_ms) DJ_MUSTCHECK;

/*! \brief Drop the entry for \p key (its value freed), if there is one. */
void dj_lru_remove(struct dj_lru *l, const void *key, size_t keylen);

/*!
 * \brief Whether an entry of life \p life is within the last \p pct percent of its life at
 * \p now_ms: time for a background refresh. False for pct 0 and for an expired life.
 */
bool dj_lru_in_refresh(const struct dj_lru_life *life, unsigned pct, uint64_t now_ms);

/*! \brief Entries held now (expired ones not yet seen included). */
size_t dj_lru_count(const struct dj_lru *l);

/*! \brief Entries evicted for room since dj_lru_new (not replacements nor expiries). */
uint64_t dj_lru_evictions(const struct dj_lru *l);

#endif /* DJ_COMMON_DJ_LRU_H */
