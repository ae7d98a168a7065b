/*
 * da_dns.h - DNSSEC-validated lookups for DANE: TLSA records and the TS002 §19 discovery chain
 *	      (NAPTR -> SRV -> A/AAAA), through libunbound on a libevent loop, with a bounded TTL cache.
 *
 * SYNOPSIS
 *	struct da_resolver *r;
 *	da_resolver_new(base, &props, &r, err, sizeof(err));
 *	da_tlsa_lookup(r, "_ns-client.ns1.lorawan.test", on_tlsa, arg, &handle);
 *	...
 *	da_resolver_free(r);
 *
 * DESCRIPTION
 *	One resolver per event loop: it owns one libunbound context, resolves asynchronously and is
 *	driven by ub_fd() on that loop. Every function must be called on the loop's thread.
 *
 *	Trust (DESIGN.md rule 1): only an answer libunbound validated as secure counts. Bogus, insecure
 *	(no chain of trust) and absent (secure NXDOMAIN / NODATA) records all give a verdict that
 *	authenticates nobody. A resolver failure or a timeout is DA_TEMPFAIL: "try again later", never
 *	"accept". An AD bit set by an upstream is never trusted: libunbound validates by itself.
 *	Only DANE-TA(2) and DANE-EE(3) records are kept; a secure RRset without any of them is
 *	DA_UNUSABLE.
 *
 *	Cache: answers are kept until min(TTL, ttl_cap); negative verdicts (NXDOMAIN, NODATA, insecure,
 *	bogus, unusable) for min(TTL, neg_ttl); DA_TEMPFAIL is never cached, but a positive entry past
 *	its expiry is not served either (it is a TEMPFAIL if the refresh fails). At most cache_max
 *	names (least recently used evicted). Concurrent lookups of one name share one query. A hit in
 *	the last refresh_pct percent of its lifetime starts a background refresh, so names in use
 *	never expire while the DNS answers.
 */
#ifndef DJ_BACKEND_AUTH_DA_DNS_H
#define DJ_BACKEND_AUTH_DA_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/dj_compiler.h"
#include "common/dj_dns.h"	/* enum da_status, the TLSA numbers */

struct event_base;
struct da_resolver;
struct da_lookup;


/* One TLSA record. data points into the owning da_tlsa_set. */
struct da_tlsa {
	uint8_t usage, selector, mtype;
	const uint8_t *data;
	size_t len;
};

/*!
 * \brief Parse one TLSA rdata (RFC 6698 §2.1) with explicit lengths: usage 0..3, selector 0..1,
 *        matching type 0..2, SHA2-256 data exactly 32 bytes, SHA2-512 exactly 64, Full data
 *        non-empty. Every usage is accepted here; the caller decides which it uses.
 * \param out  set on DJ_EOK only; out->data points into \p rd (borrowed).
 * \retval DJ_EOK, DJ_EMALFORMED
 */
int da_tlsa_parse(const uint8_t *rd, size_t len, struct da_tlsa *out) DJ_MUSTCHECK;

/* The verdict on one TLSA owner name. Valid only during the callback (copy what you keep). */
struct da_tlsa_set {
	const char *name;	/* the owner name looked up, without the trailing dot */
	enum da_status status;
	uint32_t ttl;		/* seconds the verdict stays valid from now (0 for DA_TEMPFAIL) */
	size_t n;		/* usable records (status DA_SECURE: n >= 1) */
	const struct da_tlsa *rr;
	const char *why;	/* for status != DA_SECURE: a one-line reason ("bogus: DS hash ...") */
	int from_cache;		/* 1 if answered from the cache without a query */
};

/* The verdict on one TXT owner name (CNAMEs followed by the resolver, the whole chain
 * validated). Valid only during the callback (copy what you keep). */
struct da_txt_set {
	const char *name;	/* the owner name looked up, without the trailing dot */
	enum da_status status;
	uint32_t ttl;		/* seconds the verdict stays valid from now (0 for DA_TEMPFAIL) */
	size_t n;		/* records (status DA_SECURE: n >= 1) */
	const char *const *txt;	/* per record: its character-strings concatenated, in order
				 * (RFC 1035 §3.3.14), NUL-terminated; a record holding a NUL
				 * byte is skipped as malformed */
	const size_t *len;	/* their lengths */
	const char *why;	/* for status != DA_SECURE: a one-line reason */
	int from_cache;		/* 1 if answered from the cache without a query */
};

/* One discovered server (SRV target with its addresses). */
struct da_server {
	const char *host;	/* SRV target, without the trailing dot */
	uint16_t port;
	uint16_t priority, weight;
	size_t n_addr;
	const char *const *addr; /* numeric IPv4/IPv6 addresses */
};

/* The result of a discovery (JoinEUI -> JS, NetID -> NS). Valid only during the callback. */
struct da_discovery {
	const char *name;	/* the NAPTR owner name queried */
	enum da_status status;	/* DA_SECURE only if every step (NAPTR, SRV, A/AAAA) was secure */
	size_t n;		/* servers, in priority/weight order */
	const struct da_server *srv;
	const char *why;
};

struct da_resolver_props {
	/* Trust anchors: at least one of these (or builtin_root). */
	const char *ta_file;	    /* DS or DNSKEY lines (ub_ctx_add_ta_file) */
	const char *auto_ta_file;   /* RFC 5011 managed anchor file (ub_ctx_add_ta_autr) */
	int builtin_root;	    /* 1: use /usr/share/dns/root.key */
	/* Where to ask: stubs "zone@addr[@port]" separated by spaces or commas (e.g. a private test
	 * zone on loopback); forwarders "addr[@port] ..."; neither: full recursion from the root. */
	const char *stubs;
	const char *forwarders;
	unsigned cache_max;	/* names; 0 -> 10000 */
	unsigned ttl_cap;	/* seconds; 0 -> 3600 */
	unsigned neg_ttl;	/* seconds; 0 -> 60 */
	unsigned timeout_ms;	/* per lookup; 0 -> 5000 */
	unsigned refresh_pct;	/* 0 -> 10 */
	/* Several event loops: another resolver (on another loop's thread) whose verdict cache
	 * this one uses too, so that what one loop learnt serves every loop (cache_max is then
	 * that resolver's). It must outlive this one. NULL: a cache of its own. The cache is
	 * locked; everything else of a resolver stays on its own loop. */
	struct da_resolver *share_cache;
};

/* Callbacks run on the loop, possibly before da_*_lookup returns (a cache hit). */
typedef void (*da_tlsa_cb)(const struct da_tlsa_set *set, void *arg);
typedef void (*da_txt_cb)(const struct da_txt_set *set, void *arg);
typedef void (*da_discovery_cb)(const struct da_discovery *d, void *arg);

/*!
 * \brief Create a resolver on \p base.
 * \param out  set on success only; free with da_resolver_free.
 * \retval DJ_EOK, DJ_ECONFIG (bad props or anchor file; \p err names what), DJ_ENOMEM.
 */
int da_resolver_new(struct event_base *base, const struct da_resolver_props *props,
		    struct da_resolver **out, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Cancel every pending lookup (their callbacks are not called) and free. NULL is fine.
 *         Not from inside a callback of \p r (asserted). Call it before event_base_free(). */
void da_resolver_free(struct da_resolver *r);

/*!
 * \brief Look up TLSA at \p name (presentation form, trailing dot optional).
 *
 * \p cb is called exactly once unless the lookup is cancelled: at once (before this returns)
 * on a cache hit or a malformed name (DA_TEMPFAIL is never used for a malformed name: that is
 * DJ_EINVAL), or later from the loop.
 * \param handle  if not NULL, set to a handle for da_lookup_cancel while the lookup is pending,
 *                or to NULL if \p cb already ran.
 * \retval DJ_EOK, DJ_EINVAL (malformed name; cb not called), DJ_ENOMEM.
 */
int da_tlsa_lookup(struct da_resolver *r, const char *name, da_tlsa_cb cb, void *arg,
		   struct da_lookup **handle) DJ_MUSTCHECK;

/*!
 * \brief Look up TXT at \p name, with the same trust rules, cache and callback rules as
 *        da_tlsa_lookup (only DA_SECURE carries records; a secure RRset whose records are all
 *        malformed is DA_UNUSABLE).
 * \retval DJ_EOK, DJ_EINVAL (malformed name; cb not called), DJ_ENOMEM.
 */
int da_txt_lookup(struct da_resolver *r, const char *name, da_txt_cb cb, void *arg,
		  struct da_lookup **handle) DJ_MUSTCHECK;

/*!
 * \brief Cached verdict for \p name without any query: DJ_EOK and a call of \p cb if a fresh
 *        entry exists, DJ_ENOENT otherwise.
 */
int da_tlsa_peek(struct da_resolver *r, const char *name, da_tlsa_cb cb, void *arg);

/*!
 * \brief Discover the servers for a NAPTR owner name: NAPTR (service field matched
 *        case-insensitively against \p service, e.g. "x-lorawan-js") -> SRV -> A/AAAA.
 *        Same callback rules as da_tlsa_lookup. TS002 §19.1 names the services "LWN" (HTTP)
 *        and "LWNS" (HTTPS); only NAPTR flag "S" is followed, at the lowest matching order.
 *        Servers are listed (priority ascending, weight descending) only when the status is
 *        DA_SECURE; a secure NODATA for one address family is not a failure.
 */
int da_discover(struct da_resolver *r, const char *naptr_name, const char *service,
		da_discovery_cb cb, void *arg, struct da_lookup **handle) DJ_MUSTCHECK;

/*! \brief The TS002 §19 names: JoinEUI as reversed nibbles + ".joineuis." + suffix; NetID as
 *         6 hex digits + ".netids." + suffix. A NULL or empty \p suffix means
 *         "lora-alliance.org"; a trailing dot is dropped; lower-case hex.
 *         \retval DJ_EOK, DJ_ERANGE (buffer too small), DJ_EINVAL (malformed suffix, NetID
 *         above 24 bits). */
int da_joineui_name(uint64_t join_eui, const char *suffix, char *out, size_t outlen) DJ_MUSTCHECK;
int da_netid_name(uint32_t net_id, const char *suffix, char *out, size_t outlen) DJ_MUSTCHECK;

/*! \brief Cancel a pending lookup; its callback is not called. NULL is fine. A handle is valid
 *         only until its callback starts (cancelling it from its own callback is a no-op). */
void da_lookup_cancel(struct da_lookup *l);

/*! \brief Counters for metrics. queries: upstream queries started (refreshes included);
 *         cache_hits/cache_misses: per lookup (discovery steps included); coalesced: lookups that
 *         joined a query in flight; secure..tempfail: verdicts of upstream queries (not of cache
 *         hits); cached: entries now. */
struct da_stats {
	uint64_t queries, cache_hits, cache_misses, coalesced, refreshes, evictions;
	uint64_t secure, insecure, bogus, nxdomain, nodata, unusable, tempfail;
	size_t cached;
};
void da_resolver_stats(const struct da_resolver *r, struct da_stats *out);

/*!
 * \brief Run \p base until every lookup started through \p r has completed (for CLIs that need
 *        an answer before going on). \retval DJ_EOK, DJ_EIO (the loop failed).
 */
int da_resolver_wait(struct da_resolver *r) DJ_MUSTCHECK;

#endif /* DJ_BACKEND_AUTH_DA_DNS_H */
