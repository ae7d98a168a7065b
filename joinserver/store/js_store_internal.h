/*
 * js_store_internal.h - the operations table behind js_store.h and js_store_owner.h, shared by
 * js_store.c, js_store_owner.c and the backends (js_store_sqlite*.c, js_store_mem*.c). Not
 * installed.
 *
 * DESCRIPTION
 *	js_store.c owns what every backend shares: argument checks, the commit queue and the
 *	committer thread (group commit), the statistics and the clock. A backend implements the
 *	calls below against its own state (struct js_store.be). The PostgreSQL backend (js_store_pg*.c) is
 *	one more table of this shape.
 *
 *	apply_batch() runs on the committer thread only (or, for a backend with inline_commit, on the
 *	submitting thread under the backend's own lock). It sets c->result for each of the \p n items
 *	chained by priv_next and returns DJ_EOK when the transaction carrying them was made durable
 *	(individual items may still have DJ_ECONFLICT / DJ_ENOENT), or a fault code when the whole
 *	batch failed (every item then has that code as its result).
 *
 *	The registry calls (ops->reg: owner_*, authcode_*, transfer_*) have the semantics and
 *	return codes of the js_store_owner.h functions of the same names. js_store_owner.c has
 *	checked their arguments (non-NULL pointers, chain lengths, terminated strings, the
 *	step's range) before a backend sees them; their out-parameters are zeroed structs that
 *	js_store_owner.c clears when the call fails. Each write is one transaction: all or none.
 *	They are a table of their own, defined in each backend's *_owner.c, so that the
 *	registry's functions stay private to that file.
 */
#ifndef DJ_JOINSERVER_JS_STORE_INTERNAL_H
#define DJ_JOINSERVER_JS_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "store/js_store.h"
#include "store/js_store_owner.h"

#define JS_DEVICE_IMPORT_EVENT "device-import"
#define JS_DEVICE_DELETE_EVENT "device-delete"
#define JS_NONCE_RESET_EVENT "nonce-reset"
#define JS_REWRAP_EVENT "rewrap"
#define JS_DEVICE_RESUME_EVENT "device-resume"	/* an import continued from a tombstone */
#define JS_RESTORE_GUARD_EVENT "restore-guard"

/* the audit detail of a device-resume entry */
#define JS_RESUME_DETAIL_KEPT "nonce state continued from the tombstone"
#define JS_RESUME_DETAIL_FORGOT "JoinNonce continued from the tombstone, DevNonces forgotten"

struct js_store;

/*
 * The statements under the registry's writes, for the SQL backends (js_store_sqlite_owner.c,
 * js_store_pg_owner.c): each runs one statement of its backend inside the transaction that
 * batch opened, reads the clock (js_store_now) itself where its row records a time, and
 * returns DJ_EOK, DJ_ENOENT (the probe found no row), or a fault. The rules around them -
 * which probes a write needs, the verdicts, the audit rows and the outbox event - are the
 * shared js_store__reg_* functions of js_store_owner.c.
 */
struct js_store_reg_sql {
	/* js_store__sq_batch / js_store__pg_batch: 0..n-1 in one transaction, all or nothing */
	int (*batch)(struct js_store *s, size_t n,
		     int (*item)(struct js_store *s, size_t i, void *arg), void *arg, size_t *bad);
	int (*audit_put)(struct js_store *s, const uint8_t *dev_eui, const char *event,
			 const char *actor, const char *detail);
	void (*outbox_put)(struct js_store *s, const uint8_t *body, size_t len);
	int (*owner_insert)(struct js_store *s, const struct js_owner *o, int64_t now);
	int (*owner_publish)(struct js_store *s, const uint8_t *dev_eui);
	/* the owner row's zone and serial into \p o (a zone that does not fit: DJ_ESQL) */
	int (*owner_head)(struct js_store *s, const uint8_t *dev_eui, struct js_owner *o);
	int (*owner_exists)(struct js_store *s, const uint8_t *dev_eui);
	/* the owner row becomes the transfer's: zone, serial, chain, published */
	int (*owner_move)(struct js_store *s, const struct js_transfer *t);
	int (*authcode_write)(struct js_store *s, const struct js_authcode *a);	/* or replace */
	int (*authcode_exists)(struct js_store *s, const uint8_t *dev_eui);
	int (*authcode_delete)(struct js_store *s, const uint8_t *dev_eui);
	int (*xfer_busy)(struct js_store *s, const uint8_t *dev_eui);	/* an unfinished one */
	/* a transfer of the device with this serial or this nonce */
	int (*xfer_used)(struct js_store *s, const struct js_transfer *t);
	int (*xfer_insert)(struct js_store *s, struct js_transfer *t);	/* sets t->id */
	/* to \p step if it is further on; \p moved: the rows changed */
	int (*xfer_step)(struct js_store *s, int64_t id, enum js_transfer_step step,
			 uint64_t *moved);
	int (*xfer_exists)(struct js_store *s, int64_t id);
	/* \p cb on transfer \p id, its chain borrowed (a row that does not decode: DJ_ESQL) */
	int (*xfer_with)(struct js_store *s, int64_t id,
			 int (*cb)(struct js_store *s, const struct js_transfer *t, void *arg),
			 void *arg);
};

/*
 * The device statements under the shared import and delete rules of js_store.c
 * (js_store__dev_*), for the SQL backends, on the same terms as js_store_reg_sql.
 */
struct js_store_dev_sql {
	int (*batch)(struct js_store *s, size_t n,
		     int (*item)(struct js_store *s, size_t i, void *arg), void *arg, size_t *bad);
	int (*audit_put)(struct js_store *s, const uint8_t *dev_eui, const char *event,
			 const char *actor, const char *detail);
	int (*wbegin)(struct js_store *s);		/* a write transaction */
	int (*wend)(struct js_store *s, int ret);	/* commit on DJ_EOK, else roll back */
	/* a devices row with fresh nonce state, created at d->created_at (0: now) */
	int (*row_insert)(struct js_store *s, const struct js_device *d);
	/* continue the row from its DevEUI's tombstone (\p forget: not the DevNonce state nor
	 * RJcount1); \p n: the rows changed (0: no tombstone) */
	int (*resume)(struct js_store *s, const uint8_t *dev_eui, bool forget, uint64_t *n);
	int (*tombstone_drop)(struct js_store *s, const uint8_t *dev_eui);
	/* the device's nonce state into its tombstone (or replace it), deleted now */
	int (*tombstone_put)(struct js_store *s, const uint8_t *dev_eui);
	int (*row_delete)(struct js_store *s, const uint8_t *dev_eui, uint64_t *n);
};

/* The ownership registry's operations (js_store_owner.h), one table per backend. */
struct js_store_reg_ops {
	int (*owner_enroll)(struct js_store *s, const struct js_device *devs,
			    const struct js_owner *owners, size_t n, const char *actor,
			    size_t *failed);
	int (*owner_get)(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			 struct js_owner *out);
	int (*owner_head)(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], char *zone,
			  size_t zonelen, uint64_t *serial);
	int (*owner_foreach)(struct js_store *s, bool unpublished,
			     int (*cb)(const struct js_owner *o, void *arg), void *arg);
	int (*owner_set_published)(struct js_store *s, const uint8_t (*dev_euis)[LW_EUI_LEN],
				   size_t n);
	int (*authcode_put)(struct js_store *s, const struct js_authcode *recs, size_t n,
			    const char *actor, size_t *failed);
	int (*authcode_get)(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			    struct js_authcode *out);
	int (*authcode_revoke)(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			       const char *actor);
	int (*transfer_begin)(struct js_store *s, struct js_transfer *t, size_t n, int *results);
	/* reaching JS_XFER_DONE calls s->xfer_event for the outbox event (if set) */
	int (*transfer_advance)(struct js_store *s, const int64_t *ids, size_t n,
				enum js_transfer_step step, const char *actor);
	int (*transfer_find)(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			     const uint8_t nonce[JS_TRANSFER_NONCE_LEN], struct js_transfer *out);
	int (*transfer_foreach_pending)(struct js_store *s,
					int (*cb)(const struct js_transfer *t, void *arg),
					void *arg);
	/* the SQL backends' statements under the shared js_store__reg_* rules (else NULL) */
	const struct js_store_reg_sql *sql;
};

struct js_apikey;

/* API keys of the management API (js_apikey.h), one small table per backend, in the backend's
 * *_apikey.c. put: a new key and its "apikey-create" audit entry in one transaction (DJ_EEXIST:
 * the name is taken); revoke: set revoked_at of the key in force named so, audited
 * "apikey-revoke" (DJ_ENOENT: none); foreach: every key in name order (cb non-zero stops). */
struct js_store_apikey_ops {
	int (*put)(struct js_store *s, const struct js_apikey *k, const char *actor);
	int (*revoke)(struct js_store *s, const char *name, int64_t at, const char *actor);
	int (*foreach)(struct js_store *s, int (*cb)(const struct js_apikey *k, void *arg),
		       void *arg);
};

struct js_store_ops {
	const char *name;
	/* Commits are applied on the submitting thread, and done runs inline (no committer). */
	bool inline_commit;
	int (*open)(struct js_store *s, const struct js_store_props *props);
	void (*close)(struct js_store *s);	/* accepts a half-opened backend */
	int (*device_get)(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			  struct js_device *out);
	/* optional: js_store_device_get_many() at one snapshot (NULL: device_get each) */
	int (*device_get_many)(struct js_store *s, size_t n, const uint8_t *const dev_eui[],
			       struct js_device *const out[], int rets[]);
	int (*devices_add)(struct js_store *s, const struct js_device *devs, size_t n,
			   const char *actor, unsigned flags, size_t *failed);
	/* optional: js_store_devices_import() in one pass (NULL: built on devices_add) */
	int (*devices_import)(struct js_store *s, size_t n,
			      int (*get)(size_t i, struct js_device *d, void *arg), void *arg,
			      const char *actor, unsigned flags, size_t *failed);
	int (*device_delete)(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			     const char *actor);
	int (*device_foreach)(struct js_store *s,
			      int (*cb)(const struct js_device *d, void *arg), void *arg);
	int (*reset_nonces)(struct js_store *s, const uint8_t *dev_eui, const char *actor,
			    uint64_t *count);
	int (*bump_join_nonces)(struct js_store *s, uint32_t margin, const char *actor,
				uint64_t *count);
	int (*apply_batch)(struct js_store *s, struct js_commit *head, size_t n);
	int (*sessions_expire)(struct js_store *s, int64_t now, uint64_t *count);
	int (*session_get)(struct js_store *s, const uint8_t *session_id, size_t len,
			   struct js_session *out);
	int (*audit)(struct js_store *s, const uint8_t *dev_eui, const char *event,
		     const char *actor, const char *detail);
	int (*audit_foreach)(struct js_store *s, const uint8_t *dev_eui,
			     int (*cb)(const struct js_audit_entry *e, void *arg), void *arg);
	int (*rewrap)(struct js_store *s, struct js_keystore *old_ks, struct js_keystore *new_ks,
		      const char *actor, uint64_t *count);
	int (*outbox_fetch)(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			    size_t max, size_t *n);
	/* optional (NULL: nothing to check) */
	int (*check)(struct js_store *s, bool full, void (*cb)(const char *line, void *arg),
		     void *arg);

	/* the ownership registry (js_store_owner.h), in the backend's *_owner.c */
	const struct js_store_reg_ops *reg;
	/* the SQL backends' device statements under js_store__dev_* (else NULL) */
	const struct js_store_dev_sql *dev_sql;
	/* API keys (js_apikey.h); NULL: the backend keeps none */
	const struct js_store_apikey_ops *apikey;
};

struct js_store {
	const struct js_store_ops *ops;
	void *be;			/* the backend's state */
	unsigned hist_cap;		/* DevNonce history capacity */
	unsigned batch_max;
	js_clock_fn clock;
	void *clock_arg;

	/* group commit (unused by inline_commit backends) */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;		/* the committer waits for work */
	struct js_commit *qhead, *qtail;
	bool closing;			/* js_store_close() has begun: refuse new submissions */
	bool thread_started;
	bool sync_init;			/* qlock/qcond/slock initialised */
	pthread_t committer;

	pthread_mutex_t slock;		/* guards stats, the notify hook and the drop log */
	struct js_store_stats stats;

	/* outbox (set by the backend's open) */
	unsigned outbox_max;
	uint8_t instance[JS_INSTANCE_ID_LEN];
	void (*notify)(void *arg);
	void *notify_arg;
	pthread_mutex_t nlock;		/* held while notify runs: unsetting waits for it */
	int64_t drop_logged_at;		/* rate limit of the "outbox full" error */
	uint64_t drop_logged_n;

	/* the outbox event of a finished ownership transfer (js_store_owner.h); NULL: none */
	js_transfer_event_fn xfer_event;
	void *xfer_event_arg;
};

extern const struct js_store_ops js_store__sqlite_ops;
extern const struct js_store_ops js_store__mem_ops;
extern const struct js_store_ops js_store__pg_ops;
extern const struct js_store_reg_ops js_store__sqlite_reg_ops;
extern const struct js_store_reg_ops js_store__mem_reg_ops;
extern const struct js_store_apikey_ops js_store__sqlite_apikey_ops;
extern const struct js_store_apikey_ops js_store__mem_apikey_ops;

/*! \brief Record one applied batch in the statistics (thread-safe). */
void js_store__count(struct js_store *s, const struct js_commit *head, size_t n, int batch_ret);

/*! \brief Count an applied batch's outbox effects: \p written rows in, \p dropped refused
 *         (logged loudly, at most every JS_OUTBOX_LOG_SECONDS), \p done deleted; \p rows is the
 *         outbox size after the batch. */
void js_store__outbox_count(struct js_store *s, uint64_t written, uint64_t dropped, uint64_t done,
			    uint64_t rows);

#define JS_OUTBOX_LOG_SECONDS 10

/*! \brief Count a failed transaction (\p disk_full: the disk was full) or, with \p ok, note
 *         one that succeeded (clearing the disk-full state); thread-safe. */
void js_store__fault(struct js_store *s, bool ok, bool disk_full);

/*! \brief Record that the store's files were replaced under it (sticky); thread-safe. */
void js_store__files_replaced(struct js_store *s);

/*!
 * \brief Encode the outbox event of transfer \p t reaching JS_XFER_DONE with s->xfer_event
 *        into \p buf (JS_EVENT_BODY_MAX bytes). \retval false no hook is set; true: an event
 *        is due, *len is its length, 0 when it could not be encoded (logged; to be counted as
 *        dropped).
 */
bool js_store__xfer_event(struct js_store *s, const struct js_transfer *t, uint8_t *buf,
			  size_t *len);

/*!
 * \brief The body of a backend's transfer_begin inside its transaction: \p one checks and
 *        records t[i] and answers for it in results[i] (DJ_EOK, DJ_ENOENT, DJ_ECONFLICT,
 *        DJ_EEXIST); any other code is a fault, which stops the batch and is returned.
 * \retval DJ_EOK (all recorded), DJ_ECONFLICT (some refused: the backend rolls the batch
 *         back), or the fault
 */
int js_store__xfer_begin_each(struct js_store *s, struct js_transfer *t, size_t n, int *results,
			      int (*one)(struct js_store *s, struct js_transfer *t));

/*
 * The registry's write rules on the statements of s->ops->reg->sql (the SQL backends): each has
 * the signature and semantics of the ops->reg call of the same name; a backend's table points
 * at them. js_store__reg_begin_one is the \p one of js_store__xfer_begin_each(), inside the
 * backend's transaction.
 */
int js_store__reg_owner_enroll(struct js_store *s, const struct js_device *devs,
			       const struct js_owner *owners, size_t n, const char *actor,
			       size_t *failed);
int js_store__reg_owner_set_published(struct js_store *s, const uint8_t (*dev_euis)[LW_EUI_LEN],
				      size_t n);
int js_store__reg_authcode_put(struct js_store *s, const struct js_authcode *recs, size_t n,
			       const char *actor, size_t *failed);
int js_store__reg_authcode_revoke(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
				  const char *actor);
int js_store__reg_begin_one(struct js_store *s, struct js_transfer *t);
int js_store__reg_transfer_advance(struct js_store *s, const int64_t *ids, size_t n,
				   enum js_transfer_step step, const char *actor);

/*! \brief The audit detail of a finished transfer ("from=… to=… serial=…"). */
void js_store__xfer_detail(const struct js_transfer *t, char *out, size_t cap);

/*! \brief The audit detail of a stored auth code ("expires_at=…"; never the code). */
void js_store__authcode_detail(const struct js_authcode *a, char *out, size_t cap);

/*! \brief Copy \p src into the fixed buffer \p dst of \p cap bytes, truncating; NULL gives "". */
void js_store__strlcpy(char *dst, const char *src, size_t cap);

/*! \brief Encode \p n DevNonces as little-endian uint16 pairs into \p out (2n bytes). */
void js_store__hist_encode(const uint16_t *hist, uint32_t n, uint8_t *out);

/*! \brief Decode \p n little-endian uint16 pairs from \p in. */
void js_store__hist_decode(const uint8_t *in, uint32_t n, uint16_t *hist);

/*
 * The device rules of the SQL backends on the statements of s->ops->dev_sql.
 * js_store__dev_insert: one devices row and its "device-import" audit entry inside the caller's
 * transaction; a tombstone of its DevEUI is continued and consumed (\p flags: JS_IMPORT_*).
 * \retval DJ_EOK, DJ_EEXIST, DJ_ESQL. The others have the semantics of the ops of their names.
 */
int js_store__dev_insert(struct js_store *s, const struct js_device *d, const char *actor,
			 unsigned flags);
int js_store__dev_import(struct js_store *s, size_t n,
			 int (*get)(size_t i, struct js_device *d, void *arg), void *arg,
			 const char *actor, unsigned flags, size_t *failed);
int js_store__dev_add(struct js_store *s, const struct js_device *devs, size_t n,
		      const char *actor, unsigned flags, size_t *failed);
int js_store__dev_delete(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			 const char *actor);

/*! \brief Print "mac_version=… join_eui=…" for the import audit entry. */
void js_store__import_detail(const struct js_device *d, char *out, size_t cap);

#endif /* DJ_JOINSERVER_JS_STORE_INTERNAL_H */
