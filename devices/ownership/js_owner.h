/*
 * js_owner.h - joins authorized by ownership (DESIGN.md trust rule 3, issue 6 deliverable 3).
 *
 * SYNOPSIS
 *	struct js_owner_ctx *oc;
 *	js_owner_ctx_new(&(struct js_owner_props){ .resolver = r }, &oc);
 *	struct js_owner_req q = { .dev_eui = ..., .zone = "opa.test.", .serial = 2,
 *				  .identity = "_ns-client.ns1.opa.test", .sender_id = "000013",
 *				  .is_ns = true };
 *	js_owner_check(oc, &q, on_verdict, arg);	// on_verdict: allowed / refused / tempfail
 *	js_owner_ctx_free(oc);
 *
 * DESCRIPTION
 *	A request for a device is allowed only when the device's ownership chain, read from
 *	`_ownership.<deveui>._device.<owner zone>` TXT (a DNSSEC-secure answer), decodes, names
 *	this DevEUI, ends at the owner zone the registry holds (and is not older than the
 *	registry's serial), and verifies link by link (dv_chain_verify) under the `_owner` TLSA
 *	3 1 0 keys of its signers, each from a DNSSEC-secure answer; and when the peer's
 *	authenticated identity, its leading `_ns-client.` / `_as-client.` label stripped, is the
 *	last link's to_zone or a name under it; and when its SenderID is among the last link's
 *	rights (NetIDs for a network server, AS-IDs for an application server).
 *
 *	The chain's verdict (verified with its rights, or refused with the reason) is cached per
 *	device for the smallest TTL left of every record it rests on, capped by ttl_cap (refusals
 *	by neg_ttl). A check in the last refresh_pct percent of an entry's life starts a
 *	background refresh, so warm devices never wait on the DNS. A failed refresh never extends
 *	an entry: once it expires while the DNS cannot be reached, the verdict is a temporary
 *	failure, which the caller must treat as a refusal (fail closed). The peer part of the
 *	check is made per request against the cached rights.
 *
 *	Everything runs on the resolver's loop thread; callbacks may run before js_owner_check
 *	returns (a warm cache).
 */
#ifndef DJ_JOINSERVER_JS_OWNER_H
#define DJ_JOINSERVER_JS_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "common/dj_dns.h"
#include "lorawan/lw_frame.h"

struct da_resolver;
struct dv_chain;
struct js_owner_ctx;

#define JS_OWNER_WHY_MAX 200		/* one-line reasons (they go into Description) */

struct js_owner_props {
	struct da_resolver *resolver;	/* borrowed: must outlive the checker */
	unsigned cache_max;		/* devices; 0 -> 10000 */
	uint32_t ttl_cap;		/* seconds a verified chain is kept at most; 0 -> 3600 */
	uint32_t neg_ttl;		/* seconds a refused chain is kept at most; 0 -> 60 */
	unsigned refresh_pct;		/* 0 -> 10; keep it <= the resolver's */
	uint64_t (*clock)(void *arg);	/* monotonic milliseconds; NULL: CLOCK_MONOTONIC */
	void *clock_arg;
};

enum js_owner_status {
	JS_OWNER_ALLOWED = 0,
	JS_OWNER_REFUSED,	/* the chain or the peer fails a rule: why says which */
	JS_OWNER_TEMPFAIL,	/* the DNS cannot be asked now, and nothing valid is cached */
	JS_OWNER_CANCELLED,	/* js_owner_ctx_free() with the check pending: free arg only */
};

struct js_owner_verdict {
	enum js_owner_status status;
	char why[JS_OWNER_WHY_MAX];
	bool has_net_id;		/* allowed: the last link's first NetID (the home network) */
	uint8_t net_id[LW_NETID_LEN];
	bool from_cache;
};

/* One check. Every pointer is borrowed for the call of js_owner_check only. */
struct js_owner_req {
	uint8_t dev_eui[LW_EUI_LEN];
	const char *zone;		/* the current owner zone (js_store_owner_get) */
	uint64_t serial;		/* the registry's serial: an older chain in the DNS is stale */
	const char *identity;		/* the peer's authenticated identity */
	const char *sender_id;		/* NetID (6 hex digits) or AS-ID */
	bool is_ns;
};

/* \p v is valid during the call only. */
typedef void (*js_owner_cb)(const struct js_owner_verdict *v, void *arg);

/*!
 * \brief A checker on \p p->resolver.
 * \param out  set on success only.
 * \retval DJ_EOK, DJ_EINVAL (no resolver), DJ_ENOMEM
 */
int js_owner_ctx_new(const struct js_owner_props *p, struct js_owner_ctx **out) DJ_MUSTCHECK;

/*! \brief Free (NULL is accepted). Pending checks get JS_OWNER_CANCELLED. Call it before
 *         da_resolver_free(), and never from a callback of this checker. */
void js_owner_ctx_free(struct js_owner_ctx *c);

/*!
 * \brief Check \p q; \p cb is called exactly once (maybe before this returns) on DJ_EOK.
 * \retval DJ_EOK, DJ_EINVAL (a missing field; cb not called), DJ_ENOMEM (cb not called)
 */
int js_owner_check(struct js_owner_ctx *c, const struct js_owner_req *q, js_owner_cb cb,
		   void *arg) DJ_MUSTCHECK;

/*!
 * \brief Whether \p identity (a leading "_ns-client." or "_as-client." label stripped) is
 *        \p zone or a name under it (both compared normalized, case-insensitively).
 */
bool js_owner_host_in_zone(const char *identity, const char *zone);

/*! \brief "allowed", "refused", "temporary failure", "cancelled". */
const char *js_owner_status_str(enum js_owner_status s);

/*! \brief Counters: checks answered from the cache, chain fetches, background refreshes. */
struct js_owner_stats {
	uint64_t hits, fetches, refreshes, allowed, refused, tempfail;
	size_t cached;
};
void js_owner_stats(const struct js_owner_ctx *c, struct js_owner_stats *out);

/* ---- an operator's view: a stored chain verified link by link (the management API) ---------
 *
 *	js_owner_inspect() verifies the chain the registry holds for a device, each link on its
 *	own (dv_chain_verify_link: signed, follows the links before it, signature under its
 *	signer's `_owner` TLSA 3 1 0 key), with the same lookups and key choice as a join's check
 *	(the resolver's cache included), and reads what the DNS publishes at
 *	`_ownership.<deveui>._device.<zone>` to compare it with the stored chain. Nothing is
 *	cached here and no join waits on it. Asynchronous: the TXT, then each signer zone's key,
 *	one lookup at a time, each bounded by the resolver's timeout_ms. */

enum js_owner_link_result {
	JS_LINK_VERIFIED = 0,	/* signed, follows, its signature verifies */
	JS_LINK_BROKEN,		/* not signed, or does not follow (serial, zones, signer rule) */
	JS_LINK_BADSIG,		/* the signature does not verify under the signer's _owner key */
	JS_LINK_NOKEY,		/* the signer's _owner TLSA: NXDOMAIN, NODATA or no usable 3 1 0 */
	JS_LINK_INSECURE,	/* ... answered without DNSSEC (no chain of trust) */
	JS_LINK_BOGUS,		/* ... failed DNSSEC validation */
	JS_LINK_TEMPFAIL,	/* ... could not be looked up (resolver failure, timeout) */
};

struct js_owner_link_report {
	enum js_owner_link_result result;
	char why[JS_OWNER_WHY_MAX];	/* "verified", or the precise reason */
	bool key_asked;			/* the signer's _owner TLSA was looked up */
	enum da_status key_status;	/* ... and its verdict (key_asked only) */
};

struct js_owner_report {
	bool cancelled;				/* js_owner_ctx_free(): nothing else is set */
	const struct dv_chain *chain;		/* the stored chain, decoded */
	const struct js_owner_link_report *links;	/* chain->n of them */
	const char *published_name;		/* _ownership.<deveui>._device.<zone> */
	enum da_status published_status;	/* the verdict of its TXT lookup */
	const char *published_why;		/* why it is not comparable; "" when it is */
	int published_same;	/* 1: one secure TXT holding the stored chain, byte for byte;
				 * 0: a secure answer holding anything else; -1: not known */
	uint64_t published_serial;		/* its last link's serial; 0 if it does not decode */
};

/* \p r and everything it points to are valid during the call only. */
typedef void (*js_owner_report_cb)(const struct js_owner_report *r, void *arg);

struct js_owner_inspection;

/*!
 * \brief Verify the stored chain \p chain (\p len bytes, dv_chain_encode form; borrowed) of
 *        \p dev_eui, whose owner zone is \p zone, link by link; \p cb is called exactly once
 *        on DJ_EOK (maybe before this returns), unless cancelled.
 * \param handle  set to a handle for js_owner_inspect_cancel while pending, or to NULL before
 *                \p cb runs (so it may be a field of \p arg).
 * \retval DJ_EOK, DJ_EINVAL (a missing argument, a bad zone), DJ_EMALFORMED (the stored chain
 *         does not decode, or is empty), DJ_ENOMEM; cb not called on an error.
 */
int js_owner_inspect(struct js_owner_ctx *c, const uint8_t dev_eui[LW_EUI_LEN], const char *zone,
		     const uint8_t *chain, size_t len, js_owner_report_cb cb, void *arg,
		     struct js_owner_inspection **handle) DJ_MUSTCHECK;

/*! \brief Cancel a pending inspection; its callback is not called. NULL is fine. */
void js_owner_inspect_cancel(struct js_owner_inspection *h);

/*! \brief "verified", "broken", "bad_signature", "no_key", "insecure", "bogus", "tempfail". */
const char *js_owner_link_result_str(enum js_owner_link_result r);

#endif /* DJ_JOINSERVER_JS_OWNER_H */
