/*
 * da_internal.h - internals of the da_dns module shared by da_dns.c, da_answer.c, da_cache.c and
 *		   da_discover.c, and by the unit tests. Not installed.
 *
 * DESCRIPTION
 *	The module is layered:
 *	  answer  (da_answer.c)   one verdict on one (type, name): status, TTL, parsed records. It is
 *				  reference-counted, because the cache and a delivery in progress may
 *				  both hold it while a callback evicts the cache entry.
 *	  cache   (da_cache.c)    (type, name) -> answer, bounded, LRU, with an explicit clock so
 *				  that TTL logic is tested without waiting.
 *	  query   (da_dns.c)      one upstream question in flight per (type, name), with a list of
 *				  waiting lookups (coalescing) and a timer (timeout and deferred
 *				  delivery). The upstream is a backend: libunbound, or a mock in tests.
 *	  lookup  (da_dns.c)      one caller's interest: a TLSA lookup, an internal RR lookup used by
 *				  discovery, or a discovery (da_discover.c) owning its RR lookups.
 */
#ifndef DJ_BACKEND_AUTH_DA_INTERNAL_H
#define DJ_BACKEND_AUTH_DA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "backend-auth/da_dns.h"
#include "common/dj_compiler.h"
#include "common/dj_lru.h"

/* RR types we ask for (RFC 1035, RFC 2782, RFC 3403, RFC 3596, RFC 6698) */
#define DA_T_A 1
#define DA_T_TXT 16
#define DA_T_AAAA 28
#define DA_T_SRV 33
#define DA_T_NAPTR 35
#define DA_T_TLSA DJ_DNS_T_TLSA	/* common/dj_dns.h */

#define DA_QNAME_MAX 253		/* presentation form, no trailing dot (RFC 1035 §2.3.4) */
#define DA_LABEL_MAX 63		/* RFC 1035 §2.3.4 */
#define DA_REASON_MAX 256		/* one-line reasons */

/* One NAPTR record (RFC 3403 §4.1) */
struct da_naptr {
	uint16_t order, pref;
	char *flags, *service, *replacement; /* replacement canonical, no trailing dot */
};

/* One SRV record (RFC 2782) */
struct da_srv {
	uint16_t prio, weight, port;
	char *target;		/* canonical, no trailing dot; "" for "." (service not offered) */
};

/* A verdict on one (type, name). Immutable once built; shared by reference count. */
struct da_answer {
	atomic_uint refs;	/* atomic: a cache shared by resolvers of several loops */
	uint16_t type;
	enum da_status status;
	uint32_t ttl;		/* the DNS TTL (smallest in the RRset / negative TTL), before caps */
	char *why;		/* NULL or a one-line reason */
	size_t n;		/* records in the array matching type */
	struct da_tlsa *tlsa;	/* DA_T_TLSA: usable records only; data in blob */
	uint8_t *blob;
	struct da_naptr *naptr; /* DA_T_NAPTR */
	struct da_srv *srv;	/* DA_T_SRV */
	char **addr;		/* DA_T_A / DA_T_AAAA: numeric strings */
	char **txt;		/* DA_T_TXT: per record, its character-strings concatenated */
	size_t *txt_len;	/* DA_T_TXT: their lengths */
};

/* da_answer.c */
/* da__txt_join - one TXT rdata (character-strings, RFC 1035 §3.3.14) concatenated into a
 * malloc'd NUL-terminated string; DJ_EMALFORMED for bad lengths or a NUL byte inside */
int da__txt_join(const uint8_t *rd, size_t len, char **out, size_t *outlen) DJ_MUSTCHECK;
int da__name_canon(const char *in, char *out, size_t outlen) DJ_MUSTCHECK;
int da__answer_new(uint16_t type, enum da_status st, uint32_t ttl, const char *why,
		   struct da_answer **out) DJ_MUSTCHECK;
int da__answer_tlsa(enum da_status st, uint32_t ttl, const uint8_t *const *rd,
		    const size_t *rdlen, size_t n, struct da_answer **out) DJ_MUSTCHECK;
int da__answer_from_packet(uint16_t type, int rcode, const uint8_t *pkt, size_t len, int sec,
			   const char *why_bogus, uint32_t neg_ttl,
			   struct da_answer **out) DJ_MUSTCHECK;
struct da_answer *da__answer_ref(struct da_answer *a);
void da__answer_unref(struct da_answer *a);
uint32_t da__lifetime(const struct da_answer *a, uint32_t ttl_cap, uint32_t neg_ttl);
int da__status_rank(enum da_status st);

/* da_cache.c: the verdict cache, on the one LRU (common/dj_lru.h), keyed by (type, name) */
/* A hit: the answer and its life. A view filled by da__cache_get, valid until the next call on
 * the cache. */
struct da_centry {
	struct da_answer *ans;			/* the cache's reference: ref it to keep it */
	struct dj_lru_life life;
};

struct da_cache {
	pthread_mutex_t lock;			/* held by da_dns.c around every call and use of
						 * the hit: resolvers on other threads may share it
						 * (da_resolver_props.share_cache) */
	struct dj_lru *lru;			/* values: struct da_answer, one reference each */
	size_t count;				/* mirrors of the LRU's counters, after each call */
	uint64_t evictions;
	struct da_centry hit;			/* the last hit */
};

int da__cache_init(struct da_cache *c, size_t max) DJ_MUSTCHECK;
void da__cache_clear(struct da_cache *c);
/* da__cache_get - a fresh entry or NULL; expired entries are dropped; a hit becomes most recent */
struct da_centry *da__cache_get(struct da_cache *c, uint16_t type, const char *name, uint64_t now);
/* da__cache_put - store (a new reference to) \p a for \p life_s seconds; replaces, evicts LRU */
int da__cache_put(struct da_cache *c, uint16_t type, const char *name, struct da_answer *a,
		  uint32_t life_s, uint64_t now) DJ_MUSTCHECK;
/* da__cache_in_refresh - whether \p e is within the last \p pct percent of its lifetime */
int da__cache_in_refresh(const struct da_centry *e, unsigned pct, uint64_t now);

/* da_dns.c: queries and lookups */
struct da_query;
struct da_disc;

/* Internal RR lookups (discovery): \p a is borrowed for the call. */
typedef void (*da_rr_cb)(const struct da_answer *a, void *arg);

/* The upstream of queries. start: begin \p q (answer later through da__query_answer); cancel:
 * forget it (no answer may follow). */
struct da_backend {
	int (*start)(struct da_query *q, const char *name, uint16_t type, void *arg);
	void (*cancel)(struct da_query *q, void *arg);
	void *arg;
};

typedef uint64_t (*da_clock_fn)(void *arg);

int da__resolver_new_backend(struct event_base *base, const struct da_resolver_props *props,
			     const struct da_backend *be, da_clock_fn clock, void *clock_arg,
			     struct da_resolver **out) DJ_MUSTCHECK;
/* da__query_answer - the backend's answer for \p q (reference taken); delivered from the loop */
void da__query_answer(struct da_query *q, struct da_answer *a);
int da__rr_lookup(struct da_resolver *r, uint16_t type, const char *name, da_rr_cb cb, void *arg,
		  struct da_lookup **handle) DJ_MUSTCHECK;
struct event_base *da__resolver_base(struct da_resolver *r);

/* One caller's interest. RR: waits on a query (TLSA for the public API, any type for
 * discovery). DISC: a discovery (da_discover.c), which owns RR lookups of its own. */
enum da_lookup_kind { DA_LK_RR, DA_LK_DISC };

struct da_lookup {
	enum da_lookup_kind kind;
	struct da_resolver *r;
	struct da_lookup *next, **pprev;	/* in its query's waiters, or a delivery list */
	struct da_query *q;
	int delivering;				/* its callback runs now: cancel is a no-op */
	char name[DA_QNAME_MAX + 1];
	da_tlsa_cb tcb;				/* public TLSA lookup, or */
	da_txt_cb xcb;				/* public TXT lookup, or */
	da_rr_cb rcb;				/* internal RR lookup */
	void *arg;
	struct da_disc *disc;			/* DA_LK_DISC */
};

struct da_resolver {
	struct event_base *base;
	struct ub_ctx *ub;		/* NULL with a test backend */
	struct da_backend be;
	da_clock_fn clock;
	void *clock_arg;
	uint32_t ttl_cap, neg_ttl, timeout_ms;
	unsigned refresh_pct;
	struct da_cache own_cache;	/* unused when sharing another resolver's */
	struct da_cache *cache;		/* own_cache, or share_cache's */
	LIST_HEAD(da_query_list, da_query) queries;	/* in flight */
	LIST_HEAD(da_disc_list, da_disc) discs;		/* alive */
	unsigned depth;			/* callbacks running (da_resolver_free is refused then) */
	struct da_stats st;
#ifdef DJ_TEST_HOOKS
	struct da_test_ub *test_ub;	/* test builds: what rebuilds libunbound after a clock jump */
#endif
};

/* One upstream query of the resolver (da_dns.c), as the backend (da_ub.c) sees it. */
struct da_query {
	struct da_resolver *r;
	LIST_ENTRY(da_query) link;	/* r->queries */
	uint16_t type;
	char name[DA_QNAME_MAX + 1];
	struct event *ev;		/* the timeout, and the deferred delivery of an answer */
	struct da_answer *result;	/* parked answer, delivered from ev */
	struct da_lookup *waiters;	/* in arrival order */
	struct da_lookup **wtail;
	int refresh;			/* a background refresh: lives without waiters */
	int upstream;			/* the backend still owes an answer */
	int async_id;			/* libunbound's id, for ub_cancel */
};

/* da_ub.c: the libunbound backend */
#define DA_DEF_TTL_CAP 3600u		/* seconds; da_resolver_props.ttl_cap 0 */
#define DA_DEF_NEG_TTL 60u		/* seconds; da_resolver_props.neg_ttl 0 */
/* da__ub_refresh - test builds: a fresh libunbound context after a test-clock jump; else nothing */
void da__ub_refresh(struct da_resolver *r);
/* da__ub_free - the resolver's libunbound context (and test state); accepts none */
void da__ub_free(struct da_resolver *r);

/* da_discover.c */
void da__disc_cancel(struct da_disc *d);

#endif /* DJ_BACKEND_AUTH_DA_INTERNAL_H */
