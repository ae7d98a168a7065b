/*
 * js_store.h - the join server's durable state behind one narrow interface.
 *
 * DESCRIPTION
 *	Devices (with their root-key tokens, never raw keys), per-device nonce state, session keys by
 *	SessionKeyID, and an audit log of every key release and every administrative change.
 *
 *	Two backends sit behind these calls: SQLite (a file; WAL; synchronous=FULL; schema migrations
 *	by PRAGMA user_version) and a volatile in-memory one (path NULL) for benchmarks and tests. A
 *	PostgreSQL backend can later implement the same internal operations table.
 *
 *	Nonce state changes go through js_store_submit()/js_store_commit(): compare-and-swap on the
 *	device's state version, grouped with other pending changes into one durable transaction
 *	(group commit). A commit's done callback runs only after that transaction is on disk, so the
 *	join engine answers only after the DevNonce and JoinNonce it used are durable (DESIGN.md trust
 *	rule 4). A change whose expected version is stale fails with DJ_ECONFLICT and changes nothing;
 *	the engine re-reads and re-checks, which is how two concurrent copies of one Join-request are
 *	kept from both being accepted.
 *
 *	Thread safety: every call may be made from any thread, concurrently.
 */
#ifndef DJ_JOINSERVER_JS_STORE_H
#define DJ_JOINSERVER_JS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "store/js_keystore.h"
#include "lorawan/lw_frame.h"

#define JS_DEVNONCE_HIST_MIN 16
#define JS_DEVNONCE_HIST_MAX 4096
#define JS_DEVNONCE_HIST_DEFAULT 1024
#define JS_BATCH_DEFAULT 256
#define JS_SESSION_ID_MAX 32
#define JS_SESSION_ID_LEN 11		/* DevEUI (8) | JoinNonce (3, big endian) */
#define JS_SESSION_SECRET_LEN 32	/* a session token's secret: AppSKey | SNwkSIntKey */
#define JS_AUDIT_EVENT_MAX 32
#define JS_AUDIT_ACTOR_MAX 128
#define JS_AUDIT_DETAIL_MAX 256
#define JS_OUTBOX_DEFAULT 100000	/* outbox rows kept before new events are dropped */
#define JS_OUTBOX_MAX 10000000
#define JS_EVENT_BODY_MAX 1024		/* one encoded event (ev_event.h), without its id */
#define JS_COMMIT_EVENTS_MAX 64	/* events one commit may carry */
#define JS_COMMIT_AUDIT_MAX 2		/* audit entries one commit may carry: the join-accept,
					 * the JoinAns AppSKey release */
#define JS_INSTANCE_ID_LEN 8		/* random, per store: event ids are instance | row id */

struct js_store;

/* A clock, injected so that tests can move time (STYLE.md rule 11). Unix seconds. */
typedef int64_t (*js_clock_fn)(void *arg);

/* Per-device nonce state (TS001-1.1 §6.2.4-§6.2.5). */
struct js_nonce_state {
	uint64_t version;		/* bumped by every committed change: the CAS token */
	int32_t dev_nonce_last;		/* last accepted DevNonce (counter rule); -1: none yet */
	int64_t join_nonce_last;	/* last issued JoinNonce; -1: none yet */
	int32_t rjcount1_last;		/* last accepted RJcount1; -1: none yet */
	uint32_t hist_len;		/* used DevNonces (random rule, <= 1.0.3), oldest first */
	uint16_t hist[JS_DEVNONCE_HIST_MAX];
	uint32_t sess_token_len;	/* 0: no session issued yet */
	uint8_t sess_token[JS_TOKEN_MAX];	/* the current session's token: AppSKey |
						 * SNwkSIntKey sealed with label JS_PURPOSE_SESSION |
						 * js_session_id(DevEUI, join_nonce_last); the
						 * engine checks Rejoin 0/2 MICs with it */
};

struct js_device {
	uint8_t dev_eui[LW_EUI_LEN];
	uint8_t join_eui[LW_EUI_LEN];
	enum lw_version mac_version;
	uint32_t root_token_len;
	uint8_t root_token[JS_TOKEN_MAX];	/* from js_keystore_seal_root() */
	int64_t created_at;
	struct js_nonce_state st;
	int64_t row;	/* the store's own handle of the row it was read from, for the commit's
			 * compare-and-swap (SQLite: its rowid); 0: none. Only a hint: the
			 * commit still checks dev_eui and version */
};

/*
 * One event for the outbox (MQTT, see joinserver/events/), written in the same transaction as
 * the change it reports. The store assigns it a row id, which never repeats in a store
 * (AUTOINCREMENT); with the store's instance id it names the event for its readers.
 * The caller owns the memory until the commit's done has run.
 */
struct js_event {
	const uint8_t *body;		/* the encoded event, 1..JS_EVENT_BODY_MAX bytes */
	uint32_t len;
	/* an audit entry written with the row (NULL event: none), e.g. an AppSKey release; it
	 * is not written when the event is dropped (outbox full) */
	const char *audit_event, *audit_actor, *audit_detail;
	const struct js_event *next;
};

/* One audit entry of a js_commit, written with its state change. */
struct js_commit_audit {
	char event[JS_AUDIT_EVENT_MAX];	/* e.g. "join-accept", never "" */
	char actor[JS_AUDIT_ACTOR_MAX];
	char detail[JS_AUDIT_DETAIL_MAX];	/* never a key */
};

/* What a js_commit does. */
enum js_commit_kind {
	JS_COMMIT_STATE = 0,	/* a nonce-state change (CAS), with its session, audit, events */
	JS_COMMIT_EVENTS,	/* only events (a refused join: no state changes) */
	JS_COMMIT_OUTBOX_DONE,	/* delete outbox rows (delivered) */
};

/* One nonce-state change, submitted for group commit. The caller owns the memory, which must
 * stay valid until done has been called. */
struct js_commit {
	/* in */
	uint8_t dev_eui[LW_EUI_LEN];
	uint64_t expect_version;	/* the version read; the store writes expect_version + 1 */
	int64_t row;			/* js_device.row of that read (0: none) */
	struct js_nonce_state new_st;	/* the new state; its version field is ignored */
	bool has_session;		/* also record a session by SessionKeyID, which
					 * begins with dev_eui (js_session_id()) */
	uint32_t session_id_len;
	uint8_t session_id[JS_SESSION_ID_MAX];
	uint32_t session_token_len;
	uint8_t session_token[JS_TOKEN_MAX];	/* sealed with label JS_PURPOSE_SESSION |
						 * session_id (normally new_st.sess_token) */
	int64_t session_expires_at;
	/* audit entries written in the same transaction, in order (0: none), e.g. the join-accept
	 * then the AppSKey released in the JoinAns (js_join_in.release_kek); more than
	 * JS_COMMIT_AUDIT_MAX, or an entry without an event or not NUL-terminated, is refused */
	uint32_t n_audit;
	struct js_commit_audit audit[JS_COMMIT_AUDIT_MAX];
	enum js_commit_kind kind;	/* JS_COMMIT_STATE unless set */
	const struct js_event *events;	/* to the outbox, same transaction (NULL: none) */
	const int64_t *done_ids;	/* JS_COMMIT_OUTBOX_DONE: rows to delete */
	uint32_t n_done_ids;
	/* out */
	uint32_t events_dropped;	/* events not written: the outbox was full */
	int result;		/* DJ_EOK, DJ_ECONFLICT, DJ_ENOENT (device gone), or a fault */
	/* completion: called once, on the committer thread, after the transaction is durable
	 * (or failed). NULL for js_store_commit(). */
	void (*done)(struct js_commit *c, void *arg);
	void *done_arg;
	struct js_commit *priv_next;	/* private to the store */
};

/* A session kept for AppSKeyReq. */
struct js_session {
	uint8_t session_id[JS_SESSION_ID_MAX];
	uint32_t session_id_len;
	uint8_t dev_eui[LW_EUI_LEN];
	int64_t created_at;
	int64_t expires_at;
	uint32_t session_token_len;
	uint8_t session_token[JS_TOKEN_MAX];
};

struct js_audit_entry {
	int64_t id;
	int64_t at;
	bool has_dev_eui;
	uint8_t dev_eui[LW_EUI_LEN];
	char event[JS_AUDIT_EVENT_MAX];
	char actor[JS_AUDIT_ACTOR_MAX];
	char detail[JS_AUDIT_DETAIL_MAX];
};

struct js_store_props {
	const char *path;		/* SQLite file, created if missing; NULL: in-memory */
	const char *conninfo;		/* set: PostgreSQL (a libpq connection string), and
					 * path is ignored; an unreachable database fails the
					 * open with DJ_EIO (never a fallback) */
	const uint8_t *kcv;		/* JS_KCV_LEN bytes: a new store records it, an existing
					 * one must hold the same (else DJ_EMASTERKEY) */
	unsigned devnonce_history;	/* 0: JS_DEVNONCE_HIST_DEFAULT */
	unsigned batch_max;		/* most commits per transaction; 0: JS_BATCH_DEFAULT */
	js_clock_fn clock;		/* NULL: time() */
	void *clock_arg;
	unsigned outbox_max;		/* rows; 0: JS_OUTBOX_DEFAULT. Beyond it events are
					 * dropped (counted and logged), the change itself is
					 * still made: joins never wait on the event stream */
	bool verify;			/* a daemon's open: refuse a file that fails PRAGMA
					 * quick_check (DJ_EMALFORMED) or cannot be written
					 * (DJ_EACCES), each logged naming the file */
};

/* One outbox row as read back. */
struct js_outbox_row {
	int64_t id;
	int64_t at;
	uint32_t len;
	uint8_t body[JS_EVENT_BODY_MAX];
};

/* Group-commit figures for metrics and benchmarks. */
struct js_store_stats {
	uint64_t commits;		/* js_commit items applied */
	uint64_t transactions;		/* durable transactions that carried them */
	uint64_t batch_max_seen;	/* the largest batch so far */
	uint64_t conflicts;
	uint64_t outbox_rows;		/* events waiting in the outbox now */
	uint64_t events_written;	/* events put into the outbox */
	uint64_t events_dropped;	/* events dropped because the outbox was full */
	uint64_t events_done;		/* outbox rows deleted after delivery */
	uint64_t faults;		/* transactions that failed for a fault (not a conflict) */
	uint64_t disk_full;		/* ... of them because the disk was full */
	bool disk_full_now;		/* the last transaction failed for a full disk */
	bool files_replaced;		/* the database or its WAL was unlinked or replaced
					 * under the open store: every change is refused */
};

/*!
 * \brief The SessionKeyID of the session a device got with \p join_nonce. Unique per device and
 *        JoinNonce, because a JoinNonce is never issued twice.
 */
void js_session_id(const uint8_t dev_eui[LW_EUI_LEN], uint32_t join_nonce,
		   uint8_t out[JS_SESSION_ID_LEN]);

/*!
 * \brief Open (and create or migrate) a store. Starts the committer thread.
 * \param out  receives the store on success only.
 * \retval DJ_EOK
 * \retval DJ_EMASTERKEY  the store records another master key
 * \retval DJ_ESCHEMA     the file was written by a newer schema
 * \retval DJ_EINVAL      bad props (history size out of range, missing kcv)
 * \retval DJ_ESQL, DJ_ENOMEM, DJ_EIO
 */
int js_store_open(const struct js_store_props *props, struct js_store **out) DJ_MUSTCHECK;

/*! \brief Finish every submitted commit, stop the committer, close (NULL is accepted). */
void js_store_close(struct js_store *s);

/*! \brief The configured DevNonce history capacity. */
unsigned js_store_devnonce_history(const struct js_store *s);

/*! \brief The store's clock (the injected one, or time()). */
int64_t js_store_now(const struct js_store *s);

/*!
 * \brief Read one device. \retval DJ_EOK, DJ_ENOENT, DJ_ESQL
 */
int js_store_device_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			struct js_device *out) DJ_MUSTCHECK;

/*!
 * \brief Read \p n devices at one snapshot: js_store_device_get() for each of them, as if all
 *        were read at the moment of the call (a backend may read them in one read transaction,
 *        the SQLite one does, or in one statement, the PostgreSQL one: dev_eui = ANY($1)).
 *        Call it only for requests that arrived before the call.
 * \param dev_eui  n DevEUIs (borrowed)
 * \param out      n devices to fill (rets[i] == DJ_EOK)
 * \param rets     n results: DJ_EOK, DJ_ENOENT, or a fault (DJ_ESQL)
 * \retval DJ_EOK (the results are in rets), DJ_EINVAL
 */
int js_store_device_get_many(struct js_store *s, size_t n, const uint8_t *const dev_eui[],
			     struct js_device *const out[], int rets[]) DJ_MUSTCHECK;

/*!
 * \brief Add devices, all or nothing, with one audit entry ("device-import") each.
 *        Nonce state starts empty (version 0, every "last" field -1).
 * \param failed  on DJ_EEXIST, the index of the first device already present.
 * \retval DJ_EOK, DJ_EEXIST, DJ_ESQL
 */
int js_store_devices_add(struct js_store *s, const struct js_device *devs, size_t n,
			 const char *actor, size_t *failed) DJ_MUSTCHECK;

/* js_store_devices_import_flags() flags */
#define JS_IMPORT_FORGET_NONCES 0x1u	/* a tombstoned DevEUI keeps only its JoinNonce */

/*!
 * \brief js_store_devices_add() for large imports: device i is produced by \p get(i, d, arg)
 *        into one reused struct (wiped afterwards) inside the one transaction, so that memory
 *        does not grow with \p n (a struct js_device holds the whole DevNonce history).
 *        All or nothing; a non-DJ_EOK return from \p get rolls back and is returned, with
 *        \p failed set to its index.
 * \retval DJ_EOK, DJ_EEXIST, DJ_ESQL, or what \p get returned
 */
int js_store_devices_import(struct js_store *s, size_t n,
			    int (*get)(size_t i, struct js_device *d, void *arg), void *arg,
			    const char *actor, size_t *failed) DJ_MUSTCHECK;

/*!
 * \brief js_store_devices_import() with \p flags (JS_IMPORT_*). Every import path continues a
 *        deleted DevEUI from its tombstone (js_store_device_delete()): its JoinNonce goes on
 *        upward and, unless JS_IMPORT_FORGET_NONCES, its used DevNonces (or counter) and
 *        RJcount1 stay; audited ("device-resume"). The tombstone is then consumed.
 */
int js_store_devices_import_flags(struct js_store *s, size_t n,
				  int (*get)(size_t i, struct js_device *d, void *arg), void *arg,
				  const char *actor, unsigned flags, size_t *failed) DJ_MUSTCHECK;

/*!
 * \brief Delete a device and its sessions, audited. A tombstone keeps its DevEUI, version,
 *        last JoinNonce, DevNonce state and RJcount1, so that a later import of the same
 *        DevEUI never issues a JoinNonce again (DESIGN.md trust rule 4).
 * \retval DJ_EOK, DJ_ENOENT, DJ_ESQL
 */
int js_store_device_delete(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			   const char *actor) DJ_MUSTCHECK;

/*! \brief Call \p cb for every device in DevEUI order; a non-zero return from \p cb stops the
 *         walk and is returned. */
int js_store_device_foreach(struct js_store *s, int (*cb)(const struct js_device *d, void *arg),
			    void *arg) DJ_MUSTCHECK;

/*!
 * \brief Forget used DevNonces and RJcount1 of one device (\p dev_eui) or of all (NULL), so that
 *        a device that lost its counters can join again. The JoinNonce counter is never reset:
 *        a JoinNonce is never issued twice. One audit entry ("nonce-reset") per device.
 * \param count  receives the number of devices reset.
 * \retval DJ_EOK, DJ_ENOENT (that device does not exist), DJ_ESQL
 */
int js_store_reset_nonces(struct js_store *s, const uint8_t *dev_eui, const char *actor,
			  uint64_t *count) DJ_MUSTCHECK;

/*!
 * \brief After a backup was restored: raise the last JoinNonce of every device and every
 *        tombstone by \p margin (a device that never joined gets margin - 1), forgetting the
 *        current sessions (their SessionKeyIDs name the old JoinNonce), in one transaction with
 *        one audit entry ("restore-guard"). Nothing changes when any would pass
 *        LW_JOINNONCE_MAX.
 * \param count  receives the number of devices and tombstones raised.
 * \retval DJ_EOK, DJ_EINVAL (margin 0 or above LW_JOINNONCE_MAX), DJ_ERANGE (a JoinNonce would
 *         pass LW_JOINNONCE_MAX), DJ_ESQL
 */
int js_store_bump_join_nonces(struct js_store *s, uint32_t margin, const char *actor,
			      uint64_t *count) DJ_MUSTCHECK;

/*!
 * \brief Queue a nonce-state change for group commit; c->done is called once it is durable.
 * \retval DJ_EOK (queued), DJ_ESHUTDOWN
 */
int js_store_submit(struct js_store *s, struct js_commit *c) DJ_MUSTCHECK;

/*! \brief Submit and wait; returns c->result. */
int js_store_commit(struct js_store *s, struct js_commit *c) DJ_MUSTCHECK;

/*!
 * \brief js_store_commit() for n changes, applied in order; each c[i]->result says how its own
 *        went (a lost compare-and-swap fails only that item). A store that applies on the
 *        caller's thread (in memory) applies them as one batch under one lock, looking up all
 *        their rows before changing any; the others commit them one by one. c[i]->done must
 *        be NULL.
 * \retval DJ_EOK (see each result), DJ_EINVAL, DJ_ESHUTDOWN
 */
int js_store_commit_many(struct js_store *s, struct js_commit *const c[], size_t n) DJ_MUSTCHECK;

/*! \brief Look a session up by SessionKeyID. \retval DJ_EOK, DJ_ENOENT, DJ_ESQL */
int js_store_session_get(struct js_store *s, const uint8_t *session_id, size_t len,
			 struct js_session *out) DJ_MUSTCHECK;

/*!
 * \brief Delete every session whose expiry (js_store_now()) has passed: housekeeping that keeps
 *        the sessions table bounded by the AppSKey lifetime. AppSKeyReq refuses an expired
 *        session either way.
 * \param count  receives the number deleted.
 * \retval DJ_EOK, DJ_ESQL
 */
int js_store_sessions_expire(struct js_store *s, uint64_t *count) DJ_MUSTCHECK;

/*! \brief Append one audit entry outside a commit (administrative events). */
int js_store_audit(struct js_store *s, const uint8_t *dev_eui, const char *event,
		   const char *actor, const char *detail) DJ_MUSTCHECK;

/*! \brief Walk the audit log, oldest first, for one device or all (NULL). */
int js_store_audit_foreach(struct js_store *s, const uint8_t *dev_eui,
			   int (*cb)(const struct js_audit_entry *e, void *arg),
			   void *arg) DJ_MUSTCHECK;

/*!
 * \brief Re-wrap every token (root keys, session keys) from \p old_ks to \p new_ks and record
 *        the new key check value, in one transaction: a crash at any point leaves either the
 *        old state or the new one, never a mix. Audited ("rewrap").
 * \retval DJ_EOK, DJ_EMASTERKEY (\p old_ks is not the store's key), DJ_EUNWRAP, DJ_ESQL
 */
int js_store_rewrap(struct js_store *s, struct js_keystore *old_ks, struct js_keystore *new_ks,
		    const char *actor, uint64_t *count) DJ_MUSTCHECK;

/*!
 * \brief Read up to \p max outbox rows with id > \p after_id, oldest first.
 * \param n  receives the number of rows read.
 * \retval DJ_EOK, DJ_ESQL, DJ_EMALFORMED
 */
int js_store_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			  size_t max, size_t *n) DJ_MUSTCHECK;

/*! \brief The store's random instance id (fixed for the life of the file). */
void js_store_instance_id(const struct js_store *s, uint8_t out[JS_INSTANCE_ID_LEN]);

/*!
 * \brief Have \p fn called (on the committer thread) after every transaction that put events
 *        into the outbox; NULL stops it. Returns once no call to the previous one is running.
 */
void js_store_set_outbox_notify(struct js_store *s, void (*fn)(void *arg), void *arg);

/*!
 * \brief Run SQLite's PRAGMA integrity_check (\p full) or quick_check on the store's file and
 *        call \p cb with each line of its report (a line "ok" when there is nothing wrong).
 *        PostgreSQL: the schema version, every row against the row readers' bounds and the
 *        references, with \p full every B-tree index (amcheck). The in-memory store reports
 *        "ok".
 * \retval DJ_EOK the file is sound, DJ_EMALFORMED problems were reported, DJ_ESQL
 */
int js_store_check(struct js_store *s, bool full, void (*cb)(const char *line, void *arg),
		   void *arg) DJ_MUSTCHECK;

/*! \brief Group-commit figures so far. */
void js_store_stats(struct js_store *s, struct js_store_stats *out);

#endif /* DJ_JOINSERVER_JS_STORE_H */
