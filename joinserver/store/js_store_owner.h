/*
 * js_store_owner.h - the device registry's state in the store (schema 4): who owns each device,
 * its ownership chain, transfer auth codes (hashed), and the steps of each transfer.
 *
 * DESCRIPTION
 *	The registry (danejoin-devices enroll / authcode / transfer) keeps beside each enrolled
 *	device its current owner zone, the serial of the last link and the encoded chain
 *	(devices/dv_chain.h), plus the TXT attributes it publishes (docs/dns-records.md).
 *
 *	A transfer is a row of the transfers table that moves through steps, each recorded in its
 *	own transaction after the DNS change it stands for was acknowledged:
 *	RECORDED (verified; the new chain is stored) -> NEW_PUBLISHED (the new zone holds the
 *	records) -> OLD_REPLACED (the old name is a CNAME) -> DONE (the owner row is the new one,
 *	the auth code is gone). Each DNS change is a replace, so repeating a step after a crash is
 *	harmless; a re-run finds the unfinished rows (js_store_transfer_foreach_pending) and
 *	finishes them. UNIQUE(dev_eui, serial) and UNIQUE(dev_eui, nonce) make a replayed request
 *	and two concurrent transfers of one device collide in the database.
 *
 *	Both backends implement these calls with the same answers (js_store_internal.h: the
 *	ops->reg table); the in-memory one keeps nothing beyond the process. Every call returns
 *	DJ_EINVAL for a NULL store or pointer argument, checked before a backend is reached.
 *	Thread safety: as js_store.h.
 */
#ifndef DJ_JOINSERVER_JS_STORE_OWNER_H
#define DJ_JOINSERVER_JS_STORE_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "store/js_store.h"

#define JS_ZONE_MAX 256			/* presentation form with the trailing dot, NUL */
#define JS_OWNER_ATTRS_MAX 1024		/* "key=value" lines (devices/dv_records.h) */
#define JS_OWNER_CHAIN_MAX 16384	/* an encoded chain (DV_CHAIN_WIRE_MAX) */
#define JS_AUTHCODE_SALT_LEN 16
#define JS_AUTHCODE_HASH_LEN 32		/* PBKDF2-HMAC-SHA256 */
#define JS_TRANSFER_NONCE_LEN 16
#define JS_OWNER_ENROLL_EVENT "device-enroll"
#define JS_AUTHCODE_EVENT "authcode-set"
#define JS_AUTHCODE_REVOKE_EVENT "authcode-revoke"
#define JS_TRANSFER_EVENT "ownership-transfer"

/* The registry's record of one device. */
struct js_owner {
	uint8_t dev_eui[LW_EUI_LEN];
	char zone[JS_ZONE_MAX];		/* the current owner */
	uint64_t serial;		/* the last link's serial */
	uint8_t *chain;			/* the encoded chain: borrowed when given to the store,
					 * malloc'd by js_store_owner_get (js_owner_clear) */
	size_t chain_len;
	char attrs[JS_OWNER_ATTRS_MAX];	/* TXT attributes, "key=value" per line */
	bool published;			/* its records are in the owner's zone */
	int64_t updated_at;
};

/* A hashed auth code (devices/dv_authcode.h). Never the code itself. */
struct js_authcode {
	uint8_t dev_eui[LW_EUI_LEN];
	uint8_t salt[JS_AUTHCODE_SALT_LEN];
	uint32_t iter;
	uint8_t hash[JS_AUTHCODE_HASH_LEN];
	int64_t expires_at;
};

enum js_transfer_step {
	JS_XFER_RECORDED = 0,
	JS_XFER_NEW_PUBLISHED = 1,
	JS_XFER_OLD_REPLACED = 2,
	JS_XFER_DONE = 3,
};

struct js_transfer {
	int64_t id;			/* set by js_store_transfer_begin */
	uint8_t dev_eui[LW_EUI_LEN];
	uint64_t serial;		/* the new link's: the owner's serial + 1 */
	uint8_t nonce[JS_TRANSFER_NONCE_LEN];
	char from_zone[JS_ZONE_MAX];
	char to_zone[JS_ZONE_MAX];
	uint8_t *chain;			/* the whole new chain (as js_owner.chain) */
	size_t chain_len;
	enum js_transfer_step step;
	int64_t created_at, updated_at;
};

/*
 * The outbox event of a transfer reaching JS_XFER_DONE (MQTT, joinserver/events/): encode it
 * into \p buf (\p cap bytes, no id) and set \p len. Called inside the transaction that makes
 * the owner row the transfer's; \p t, its chain included, is borrowed for the call. Any return
 * but DJ_EOK means no event: it is logged and counted as dropped, the transfer goes on.
 */
typedef int (*js_transfer_event_fn)(const struct js_transfer *t, int64_t time_ms, uint8_t *buf,
				    size_t cap, size_t *len, void *arg);

/*!
 * \brief Have every transfer that reaches JS_XFER_DONE write an event into the outbox, in the
 *        same transaction, with the join path's rules (outbox_max: beyond it, dropped and
 *        counted; the outbox never fails a transfer). NULL stops it. Not thread-safe against a
 *        running js_store_transfer_advance(): set it once after js_store_open().
 */
void js_store_set_transfer_event(struct js_store *s, js_transfer_event_fn fn, void *arg);

/*! \brief Free what \p o holds (the chain) and wipe it. NULL is accepted. */
void js_owner_clear(struct js_owner *o);

/*! \brief Free what \p t holds (the chain). NULL is accepted. */
void js_transfer_clear(struct js_transfer *t);

/*!
 * \brief Enroll devices: js_store_devices_add() and the owner rows (published = false), all in
 *        one transaction, all or nothing. Audited per device ("device-import").
 * \param failed  on DJ_EEXIST, the index of the first device already present.
 * \retval DJ_EOK, DJ_EEXIST, DJ_EINVAL, DJ_ESQL
 */
int js_store_owner_enroll(struct js_store *s, const struct js_device *devs,
			  const struct js_owner *owners, size_t n, const char *actor,
			  size_t *failed) DJ_MUSTCHECK;

/*! \brief One owner row; out->chain is malloc'd. \retval DJ_EOK, DJ_ENOENT, DJ_ESQL */
int js_store_owner_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
		       struct js_owner *out) DJ_MUSTCHECK;

/*!
 * \brief Only the current owner zone and serial of a device (for every join with [js]
 *        ownership on): read on a reader connection, so it never waits for the writer.
 * \retval DJ_EOK, DJ_ENOENT (not in the registry), DJ_EMALFORMED (the zone does not fit
 *         \p zonelen), DJ_EINVAL
 */
int js_store_owner_head(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], char *zone,
			size_t zonelen, uint64_t *serial) DJ_MUSTCHECK;

/*!
 * \brief Call \p cb for every owner row (only unpublished ones if \p unpublished), in DevEUI
 *        order; o->chain is borrowed for the call. A non-zero return stops and is returned.
 *        \p cb runs with the store's writer locked: it must not call the store.
 */
int js_store_owner_foreach(struct js_store *s, bool unpublished,
			   int (*cb)(const struct js_owner *o, void *arg), void *arg) DJ_MUSTCHECK;

/*! \brief Mark \p n owner rows published, in one transaction. \retval DJ_EOK, DJ_ESQL */
int js_store_owner_set_published(struct js_store *s, const uint8_t (*dev_euis)[LW_EUI_LEN],
				 size_t n) DJ_MUSTCHECK;

/*!
 * \brief Set (replace) the auth codes of \p n devices in one transaction; audited
 *        ("authcode-set", with the expiry, never the code).
 * \param failed  on DJ_ENOENT, the index of the first device that is not enrolled.
 * \retval DJ_EOK, DJ_ENOENT, DJ_ESQL
 */
int js_store_authcode_put(struct js_store *s, const struct js_authcode *recs, size_t n,
			  const char *actor, size_t *failed) DJ_MUSTCHECK;

/*! \brief The auth code of a device. \retval DJ_EOK, DJ_ENOENT (none set), DJ_ESQL */
int js_store_authcode_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			  struct js_authcode *out) DJ_MUSTCHECK;

/*!
 * \brief Delete the auth code of a device (a revocation); audited ("authcode-revoke").
 * \retval DJ_EOK, DJ_ENOENT (none was set: nothing changes), DJ_ESQL
 */
int js_store_authcode_revoke(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			     const char *actor) DJ_MUSTCHECK;

/*!
 * \brief Record \p n verified transfers (step RECORDED) in one transaction. Each item gets its
 *        own result in \p results[i]:
 *        DJ_EOK (recorded; t[i].id set), DJ_ENOENT (no owner row), DJ_ECONFLICT (the owner
 *        is not t->from_zone, or t->serial is not its serial + 1, or another transfer of the
 *        device is unfinished), DJ_EEXIST (this serial or nonce was used for the device).
 *        All or nothing: if any item is refused, none is recorded.
 * \retval DJ_EOK (all recorded), DJ_ECONFLICT (some refused: see results; none recorded),
 *         DJ_ESQL (nothing recorded)
 */
int js_store_transfer_begin(struct js_store *s, struct js_transfer *t, size_t n,
			    const char *actor, int *results) DJ_MUSTCHECK;

/*!
 * \brief Move transfers \p ids to \p step in one transaction. Reaching JS_XFER_DONE also makes
 *        the owner row the transfer's (zone, serial, chain, published), deletes the device's
 *        auth code and writes the audit entry ("ownership-transfer"), and, with
 *        js_store_set_transfer_event(), the outbox event. A transfer already at \p step or
 *        beyond is left as it is (a re-run after a crash). \p step is NEW_PUBLISHED..DONE.
 * \retval DJ_EOK, DJ_ENOENT (an id that does not exist: none is moved), DJ_EINVAL, DJ_ESQL
 */
int js_store_transfer_advance(struct js_store *s, const int64_t *ids, size_t n,
			      enum js_transfer_step step, const char *actor) DJ_MUSTCHECK;

/*!
 * \brief The transfer of \p dev_eui that used \p nonce, if any; out->chain is malloc'd.
 * \retval DJ_EOK, DJ_ENOENT, DJ_ESQL
 */
int js_store_transfer_find(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			   const uint8_t nonce[JS_TRANSFER_NONCE_LEN],
			   struct js_transfer *out) DJ_MUSTCHECK;

/*!
 * \brief Call \p cb for every unfinished transfer (step < DONE), oldest first; t->chain is
 *        borrowed for the call. A non-zero return stops and is returned. \p cb must not
 *        call the store.
 */
int js_store_transfer_foreach_pending(struct js_store *s,
				      int (*cb)(const struct js_transfer *t, void *arg),
				      void *arg) DJ_MUSTCHECK;

#endif /* DJ_JOINSERVER_JS_STORE_OWNER_H */
