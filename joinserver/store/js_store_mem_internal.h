/*
 * js_store_mem_internal.h - what the files of the in-memory backend share. Not installed.
 *
 * DESCRIPTION
 *	The backend is one state (struct js_store__mem, the js_store's be) guarded by one mutex,
 *	and three files: js_store_mem.c (the tables, devices, sessions, audit, rewrap),
 *	js_store_mem_commit.c (commit items and the outbox) and js_store_mem_owner.c (the
 *	ownership registry of js_store_owner.h, kept beside each device record).
 *
 *	Every js_store__mem_* call below expects the lock held, unless it is an operation of the
 *	table (those take it themselves).
 */
#ifndef DJ_JOINSERVER_JS_STORE_MEM_INTERNAL_H
#define DJ_JOINSERVER_JS_STORE_MEM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "store/js_store_internal.h"

#define JS_MEM_TEXT_BLOCK 65536		/* bytes of one block of audit texts */

struct js_store__mem_reg;

/* The fixed part of a device record. */
struct js_store__mem_dev_hdr {
	uint8_t dev_eui[LW_EUI_LEN];
	uint8_t join_eui[LW_EUI_LEN];
	enum lw_version mac_version;
	uint32_t root_token_len;
	uint8_t root_token[JS_TOKEN_MAX];
	int64_t created_at;
	uint64_t version;
	int32_t dev_nonce_last;
	int64_t join_nonce_last;
	int32_t rjcount1_last;
	uint32_t sess_token_len;
	uint8_t sess_token[JS_TOKEN_MAX];
	uint32_t hist_len;
	struct js_store__mem_reg *reg;	/* the registry's rows of the device; NULL: none */
};

/* A device; hist has room for the store's DevNonce history capacity. */
struct js_store__mem_dev {
	struct js_store__mem_dev_hdr h;
	uint16_t hist[];
};

/* A session table slot: the entry and the hash of its id, which probes and rehashes compare
 * instead of following the pointer (one cache miss per probe, not two or three) */
struct js_store__mem_sslot {
	uint64_t h;
	struct js_session *p;
};

/* One audit entry; js_audit_entry is rebuilt from it when read. */
struct js_store__mem_audit {
	int64_t at;
	const char *text;		/* event \0 actor \0 detail \0, in a js_store__mem_text */
	bool has_dev_eui;
	uint8_t dev_eui[LW_EUI_LEN];
};

struct js_store__mem_text {
	struct js_store__mem_text *prev;
	size_t used;
	char buf[JS_MEM_TEXT_BLOCK];
};

/* One transfer (its chain malloc'd), linked into its device's list and the id index. */
struct js_store__mem_xfer {
	struct js_transfer t;
	struct js_store__mem_xfer *next;	/* the device's next older transfer */
};

/* The registry's rows of one enrolled device. */
struct js_store__mem_reg {
	struct js_owner own;			/* own.chain malloc'd */
	bool has_auth;
	struct js_authcode auth;
	struct js_store__mem_xfer *xfers;	/* newest first */
};

struct js_store__mem {
	pthread_mutex_t lock;
	bool lock_init;
	uint8_t kcv[JS_KCV_LEN];

	struct js_store__mem_dev **dev;	/* open addressing, linear probing; NULL = empty */
	size_t dev_slots, dev_used;

	struct js_store__mem_sslot *sess;	/* likewise, keyed on session_id */
	size_t sess_slots, sess_used;

	/* the audit log: fixed-size entries; their texts ("event\0actor\0detail\0") in
	 * blocks that never move, so a long log costs about what its texts take */
	struct js_store__mem_audit *audit;
	size_t audit_n, audit_cap;
	struct js_store__mem_text *text;	/* the block being filled; links to the previous */

	/* outbox: rows in id order from ob_head to ob_n; a deleted row has len 0 */
	struct js_outbox_row **ob;
	size_t ob_head, ob_n, ob_cap;
	size_t ob_live;
	int64_t ob_next_id;

	/* tombstones of deleted devices (js_store_device_delete()): their records, registry rows
	 * freed, unordered; a re-import of the DevEUI continues from one and consumes it */
	struct js_store__mem_dev **tomb;
	size_t tomb_n, tomb_cap;

	/* transfers by id: xf[id - 1]; NULL once its device was deleted. Ids are never reused,
	 * except those of a batch that was rolled back (as SQLite's AUTOINCREMENT) */
	struct js_store__mem_xfer **xf;
	size_t xf_n, xf_cap;

	/* API keys (js_store_mem_apikey.c), in name order */
	struct js_apikey *keys;
	size_t keys_n, keys_cap;
};

/* --- js_store_mem.c ---------------------------------------------------------------------- */

/*! \brief FNV-1a 64 over a key (the hash of both tables). */
uint64_t js_store__mem_hash(const uint8_t *p, size_t len);

/*! \brief The slot holding \p dev_eui, or the empty slot where it would go. */
size_t js_store__mem_dev_find(const struct js_store__mem *m, const uint8_t dev_eui[LW_EUI_LEN]);

/*! \brief The slot holding the session id (hash \p h), or the empty slot where it would go. */
size_t js_store__mem_sess_find(const struct js_store__mem *m, const uint8_t *id, size_t len,
			       uint64_t h);

/*! \brief Double the session table when one more entry would pass the load factor. */
int js_store__mem_sess_grow(struct js_store__mem *m) DJ_MUSTCHECK;

/*!
 * \brief Make room for \p k more entries after the \p used ones in the array at \p *arrp (a
 *        pointer to the array pointer) of \p *cap entries of \p elem bytes, doubling from
 *        \p min. Nothing changes on failure. \retval DJ_EOK, DJ_ENOMEM
 */
int js_store__mem_grow(void *arrp, size_t *cap, size_t used, size_t k, size_t elem,
		       size_t min) DJ_MUSTCHECK;

/*! \brief Make room for \p k more audit entries (so that js_store__mem_audit_add cannot
 *         fail for want of an entry). */
int js_store__mem_audit_reserve(struct js_store__mem *m, size_t k) DJ_MUSTCHECK;

/*! \brief Append an audit entry. \retval DJ_EOK, DJ_ENOMEM */
int js_store__mem_audit_add(struct js_store *s, const uint8_t *dev_eui, const char *event,
			    const char *actor, const char *detail);

/*! \brief qsort order of device pointers by DevEUI. */
int js_store__mem_eui_cmp(const void *a, const void *b);

/*!
 * \brief ops->devices_add, all or nothing, continuing tombstones (\p flags: JS_IMPORT_*); with
 *        \p regs, device i also gets regs[i] as its
 *        registry rows (taken on success only). Takes the lock.
 */
int js_store__mem_devices_add(struct js_store *s, const struct js_device *devs, size_t n,
			      const char *actor, unsigned flags, size_t *failed,
			      struct js_store__mem_reg **regs);

/*! \brief The devices (only those with registry rows if \p enrolled), in DevEUI order: a
 *         malloc'd array of *n. \retval DJ_EOK, DJ_ENOMEM */
int js_store__mem_sorted(struct js_store__mem *m, bool enrolled, struct js_store__mem_dev ***list,
			 size_t *n) DJ_MUSTCHECK;

/* --- js_store_mem_commit.c --------------------------------------------------------------- */

/*! \brief ops->apply_batch: each item under the lock; a fault fails only its own item. */
int js_store__mem_apply_batch(struct js_store *s, struct js_commit *head, size_t n);

/*! \brief ops->outbox_fetch. */
int js_store__mem_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			       size_t max, size_t *n);

/*!
 * \brief Append one event to the outbox, as the join path does: a NULL or empty \p body, a
 *        full outbox (outbox_max) or a refused allocation drops it. \retval true written
 */
bool js_store__mem_outbox_put(struct js_store *s, const uint8_t *body, size_t len);

/*! \brief Free every outbox row. */
void js_store__mem_outbox_free(struct js_store__mem *m);

/* --- js_store_mem_owner.c ---------------------------------------------------------------- */

/*! \brief Free a device's registry rows and unlink its transfers from the id index (the
 *         cascade of a device's deletion). NULL is accepted. */
void js_store__mem_reg_free(struct js_store__mem *m, struct js_store__mem_reg *r);


#endif /* DJ_JOINSERVER_JS_STORE_MEM_INTERNAL_H */
