/*
 * js_store_sqlite_internal.h - what the files of the SQLite backend share. Not installed.
 *
 * DESCRIPTION
 *	The backend is one state (struct js_store__sq, the js_store's be) and four files:
 *	js_store_sqlite.c (connections, statement helpers, devices, sessions, audit),
 *	js_store_sqlite_schema.c (the file, the migrations, the master key's check value, rewrap),
 *	js_store_sqlite_commit.c (group-commit batches and the outbox),
 *	js_store_sqlite_ckpt.c (checkpoints, off the commit path),
 *	js_store_sqlite_vfs.c (the writer's VFS: a WAL frame in one write) and
 *	js_store_sqlite_owner.c (the ownership registry of js_store_owner.h).
 *
 *	Writer statements go through one helper: js_store__sq_stmt() hands out the statement of a
 *	static SQL text, prepared once per connection and kept (keyed by the text's address), with
 *	its parameters bound from an array of typed values; js_store__sq_release() resets it.
 *	js_store__sq_run() and js_store__sq_rows() are the whole bind/step/reset sequence for a
 *	statement without rows and one with rows. Values are always bound, never formatted into SQL.
 *
 *	Thread safety: every writer call needs wlock (js_store__sq_wbegin() takes it); readers are
 *	taken from the pool with js_store__sq_reader_get().
 */
#ifndef DJ_JOINSERVER_JS_STORE_SQLITE_INTERNAL_H
#define DJ_JOINSERVER_JS_STORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "common/dj_compiler.h"
#include "store/js_store_internal.h"

#define JS_SQ_READERS 4			/* read-only connections in the pool */
#define SQ_BUSY_TIMEOUT_MS 10000	/* how long a connection waits for a lock (busy timeout) */
#define JS_SQ_HIST_PAIR 2		/* bytes per stored DevNonce */
#define JS_SQ_CACHE_MAX 48		/* kept writer statements; beyond, prepared per use */
#define JS_SQ_MANY_N 4			/* group-read statements per reader: 4, 8, 16, 32 DevEUIs */
#define JS_SQ_MANY_MAX 32		/* DevEUIs of the largest (JS_KS_BATCH_MAX, an engine group) */

/* One pooled read-only connection with its hot statements. */
struct js_store__sq_reader {
	sqlite3 *db;
	sqlite3_stmt *dev_get;
	sqlite3_stmt *sess_get;
	sqlite3_stmt *own_head;		/* prepared on first use (js_store_sqlite_owner.c) */
	sqlite3_stmt *many[JS_SQ_MANY_N];	/* group reads of 4 << i DevEUIs, on first use */
	sqlite3_stmt *begin, *end;	/* BEGIN, COMMIT: several reads at one snapshot */
	bool busy;
};

/* A kept writer statement and the SQL text (its address) it was prepared from. */
struct js_store__sq_cached {
	const char *sql;
	sqlite3_stmt *st;
};

struct js_store__sq {
	/* writer: the committer and administrative calls, under wlock */
	pthread_mutex_t wlock;
	bool wlock_init;
	sqlite3 *w;
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *upd, *upd_row, *exists, *sess_put, *audit_put;
	sqlite3_stmt *ob_put, *ob_del;
	struct js_store__sq_cached cache[JS_SQ_CACHE_MAX];
	size_t cache_n;
	uint64_t outbox_n;		/* rows in the outbox (committed), under wlock */
	bool xo_pend;			/* js_store__sq_outbox_put in this transaction: */
	uint64_t xo_rows, xo_written, xo_dropped;	/* its tally, applied on commit */
	uint8_t histbuf[JS_SQ_HIST_PAIR * JS_DEVNONCE_HIST_MAX];	/* encoding room for upd */

	/* the files under the open store (js_store_sqlite_guard.c), under wlock */
	char *path, *wal_path;
	dev_t db_dev, wal_dev;
	ino_t db_ino, wal_ino;
	bool wal_known;			/* the log existed once: it must stay the same file */
	bool files_bad;			/* unlinked or replaced: refuse every change */
	bool wal_lost;			/* ... the log: rescue it once (guard_rescue) */
	bool disk_full;			/* the last transaction failed for a full disk */

	/* the checkpointer (js_store_sqlite_ckpt.c): its connection and thread */
	sqlite3 *ck;
	pthread_t ck_thread;
	pthread_mutex_t ck_lock;
	pthread_cond_t ck_cond;
	bool ck_init, ck_started;
	bool ck_want, ck_stop;		/* under ck_lock: a pass asked for or running; stop */
	bool ck_tail;			/* under ck_lock: a run ended; the writer restarts the log */
	uint64_t ck_runs;		/* wake-ups handled, under ck_lock */

	/* readers */
	pthread_mutex_t rlock;
	pthread_cond_t rcond;
	bool rlock_init;
	struct js_store__sq_reader rd[JS_SQ_READERS];
};

/* The type of a bound value. */
enum js_store__sq_type {
	JS_SQ_TYPE_INT,
	JS_SQ_TYPE_BLOB,		/* SQL NULL when len is 0 */
	JS_SQ_TYPE_TEXT,		/* NULL binds "" */
};

/* One parameter value: ?1 is the first of the array. Pointers are borrowed until release. */
struct js_store__sq_val {
	enum js_store__sq_type type;
	const void *p;
	size_t len;
	int64_t i;
};

#define JS_SQ_I(v) { .type = JS_SQ_TYPE_INT, .i = (int64_t)(v) }
#define JS_SQ_B(b, n) { .type = JS_SQ_TYPE_BLOB, .p = (b), .len = (n) }
#define JS_SQ_EUI(b) JS_SQ_B((b), LW_EUI_LEN)
#define JS_SQ_T(t) { .type = JS_SQ_TYPE_TEXT, .p = (t) }
/* JS_SQ_ARGS(v, ...) - the array of values and its length, as two arguments */
#define JS_SQ_ARGS(...) (const struct js_store__sq_val[]){ __VA_ARGS__ }, \
	DJ_ARRAY_LEN(((const struct js_store__sq_val[]){ __VA_ARGS__ }))
#define JS_SQ_NONE NULL, 0

/* A row callback of js_store__sq_rows(): non-zero stops the walk and is returned. */
typedef int (*js_store__sq_row_fn)(sqlite3_stmt *st, void *arg);

/* --- js_store_sqlite.c ------------------------------------------------------------------ */

/*! \brief Log an SQLite error of \p db (messages never carry key material). \retval DJ_ESQL */
int js_store__sq_fail(sqlite3 *db, const char *what);

/*! \brief Run SQL text with no results (pragmas, migrations). \retval DJ_EOK, DJ_ESQL */
int js_store__sq_exec(sqlite3 *db, const char *sql) DJ_MUSTCHECK;

/*! \brief Prepare a statement kept for the connection's lifetime. */
int js_store__sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) DJ_MUSTCHECK;

/*! \brief Step a statement that returns no row, then reset it. \retval DJ_EOK, DJ_ESQL */
int js_store__sq_done(sqlite3 *db, sqlite3_stmt *st);

/*!
 * \brief The writer's statement for the static text \p sql, with \p v[0..n) bound to ?1..?n.
 *        Call with wlock held; give it back with js_store__sq_release().
 * \retval DJ_EOK, DJ_ESQL
 */
int js_store__sq_stmt(struct js_store__sq *q, const char *sql, const struct js_store__sq_val *v,
		      size_t n, sqlite3_stmt **st) DJ_MUSTCHECK;

/*! \brief Reset a statement of js_store__sq_stmt() (finalise it if it is not kept). */
void js_store__sq_release(struct js_store__sq *q, sqlite3_stmt *st);

/*!
 * \brief Bind and step a statement without rows once; with \p changes, the rows it changed.
 * \retval DJ_EOK, DJ_EEXIST (a constraint refused it), DJ_ESQL
 */
int js_store__sq_change(struct js_store__sq *q, const char *sql,
			const struct js_store__sq_val *v, size_t n, uint64_t *changes) DJ_MUSTCHECK;

/*! \brief js_store__sq_change() without the count. */
int js_store__sq_run(struct js_store__sq *q, const char *sql, const struct js_store__sq_val *v,
		     size_t n) DJ_MUSTCHECK;

/*!
 * \brief Bind and step a query, calling \p row for each row (only the first if \p one).
 * \retval DJ_EOK, DJ_ENOENT (\p one and no row), DJ_ESQL, or what \p row returned
 */
int js_store__sq_rows(struct js_store__sq *q, const char *sql, const struct js_store__sq_val *v,
		      size_t n, bool one, js_store__sq_row_fn row, void *arg) DJ_MUSTCHECK;

/*!
 * \brief js_store__sq_rows() on a pooled reader (the last committed state, never waiting for
 *        the writer), every row. \retval DJ_EOK, DJ_ESQL, or what \p row returned
 */
int js_store__sq_read(struct js_store__sq *q, const char *sql, const struct js_store__sq_val *v,
		      size_t n, js_store__sq_row_fn row, void *arg) DJ_MUSTCHECK;

/*! \brief Lock the writer and open a write transaction. \retval DJ_EOK, DJ_ESQL */
int js_store__sq_wbegin(struct js_store__sq *q) DJ_MUSTCHECK;

/*!
 * \brief Commit (\p ret == DJ_EOK) or roll back, apply the outbox tally of
 *        js_store__sq_outbox_put() on commit, unlock the writer; returns the outcome.
 */
int js_store__sq_wend(struct js_store *s, int ret) DJ_MUSTCHECK;

/*!
 * \brief Apply \p item to 0..n-1 in one write transaction, stopping at the first that fails;
 *        commit when all succeeded, else roll back. \p bad gets the index of the item that
 *        failed (0 when none did).
 * \retval DJ_EOK, what the failed item returned, or DJ_ESQL (the transaction)
 */
int js_store__sq_batch(struct js_store *s, size_t n,
		       int (*item)(struct js_store *s, size_t i, void *arg), void *arg,
		       size_t *bad) DJ_MUSTCHECK;

/*! \brief Take a free pooled reader, waiting for one if all are busy. */
struct js_store__sq_reader *js_store__sq_reader_get(struct js_store__sq *q);

/*! \brief Return a reader to the pool. */
void js_store__sq_reader_put(struct js_store__sq *q, struct js_store__sq_reader *r);

/*! \brief A blob column and its length; NULL reads as empty. */
const uint8_t *js_store__sq_blob_col(sqlite3_stmt *st, int col, size_t *len);

/*! \brief Append an audit row on the writer, inside the caller's transaction. */
int js_store__sq_audit_put(struct js_store *s, const uint8_t *dev_eui, const char *event,
			   const char *actor, const char *detail) DJ_MUSTCHECK;

/* --- js_store_sqlite_schema.c ----------------------------------------------------------- */

/*! \brief Create the file with mode 0600 unless it exists. \retval DJ_EOK, DJ_EACCES, DJ_EIO */
int js_store__sq_ensure_file(const char *path) DJ_MUSTCHECK;

/*!
 * \brief Set up the writer connection: WAL, synchronous=FULL, foreign keys, the migrations,
 *        the master key's check value (recorded, or required to match).
 * \retval DJ_EOK, DJ_ESQL, DJ_ESCHEMA, DJ_EMASTERKEY, DJ_EMALFORMED
 */
int js_store__sq_schema_open(sqlite3 *db, const uint8_t kcv[JS_KCV_LEN]) DJ_MUSTCHECK;

/*! \brief Read the instance id into s->instance and count the outbox rows. */
int js_store__sq_outbox_open(struct js_store *s) DJ_MUSTCHECK;

/*! \brief ops->rewrap: re-seal every token under \p new_ks and record its KCV, in one
 *         transaction. */
int js_store__sq_rewrap(struct js_store *s, struct js_keystore *old_ks,
			struct js_keystore *new_ks, const char *actor, uint64_t *count);

/*! \brief ops->bump_join_nonces, in one transaction. */
int js_store__sq_bump_join_nonces(struct js_store *s, uint32_t margin, const char *actor,
				  uint64_t *count);

/* --- js_store_sqlite_commit.c ----------------------------------------------------------- */

/*! \brief ops->apply_batch: one transaction for the whole batch. */
int js_store__sq_apply_batch(struct js_store *s, struct js_commit *head, size_t n);

/*! \brief ops->outbox_fetch: rows after an id, oldest first, on a pooled reader. */
int js_store__sq_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			      size_t max, size_t *n);

/*!
 * \brief Put one event into the outbox inside the open transaction (js_store__sq_wbegin), as
 *        the join path does: when the outbox holds outbox_max rows (counted in the file, so
 *        rows other processes wrote count too), or \p body is NULL, the event is dropped and
 *        counted. The totals are applied when js_store__sq_wend() commits. Never fails: a
 *        failed insert is logged and counted as dropped.
 */
void js_store__sq_outbox_put(struct js_store *s, const uint8_t *body, size_t len);

/* --- js_store_sqlite_guard.c ------------------------------------------------------------ */

/*! \brief Set journal_size_limit and record the identities of the file and its log. */
int js_store__sq_guard_open(struct js_store *s, const char *path) DJ_MUSTCHECK;

/*!
 * \brief Before a COMMIT (wlock held): are the file and its log still those opened? Logs once
 *        and refuses for good when not. \retval DJ_EOK, DJ_EIO
 */
int js_store__sq_guard_check(struct js_store *s) DJ_MUSTCHECK;

/*! \brief After the transaction a failed guard check refused has rolled back: when the log
 *         was lost, copy what it holds into the database file (once). */
void js_store__sq_guard_rescue(struct js_store *s);

/*! \brief The connection's last error was a full disk. */
bool js_store__sq_is_full(sqlite3 *db);

/*! \brief Account one group-commit transaction's outcome (\p full: it failed for a full
 *         disk): the fault counters and the disk-full state, logged on each change. */
void js_store__sq_fault(struct js_store *s, int ret, bool full);

/*! \brief ops->check: PRAGMA integrity_check or quick_check on the writer. */
int js_store__sq_check(struct js_store *s, bool full, void (*cb)(const char *line, void *arg),
		       void *arg);

/*! \brief props->verify at open: PRAGMA quick_check, logged naming \p path.
 *         \retval DJ_EOK, DJ_EMALFORMED */
int js_store__sq_verify_sound(sqlite3 *db, const char *path) DJ_MUSTCHECK;

/*! \brief props->verify at open: one real write. \retval DJ_EOK, DJ_EACCES, DJ_ENOSPC */
int js_store__sq_verify_writable(struct js_store *s, const char *path) DJ_MUSTCHECK;

/* --- js_store_sqlite_ckpt.c ------------------------------------------------------------- */

/*!
 * \brief Open the checkpointer's connection, start its thread and hook the writer's commits
 *        (which replaces the writer's wal_autocheckpoint). Call once the writer is set up.
 * \retval DJ_EOK, DJ_ESQL, DJ_ENOMEM
 */
int js_store__sq_ckpt_open(struct js_store *s, const char *path) DJ_MUSTCHECK;

/*! \brief Unhook the writer, stop and join the thread, close its connection (half-built is
 *         fine). Call before the writer is closed. */
void js_store__sq_ckpt_close(struct js_store__sq *q);

/*! \brief Wait until the checkpointer has handled \p n wake-ups (tests); returns how many. */
uint64_t js_store__sq_ckpt_wait(struct js_store *s, uint64_t n);

/* --- js_store_sqlite_vfs.c -------------------------------------------------------------- */

/*! \brief The name of the VFS that writes a WAL frame with one call (registered on first use,
 *         not as the default), or NULL when it could not be registered. */
const char *js_store__sq_vfs(void);

/*! \brief Write calls on a log that went down inside another write, in this process (tests). */
unsigned long js_store__sq_vfs_joined(void);

/*! \brief Writes made on logs of this VFS, in this process (tests). */
unsigned long js_store__sq_vfs_writes(void);

/*! \brief Hold the whole commit's frames of \p db's log until it is synced: one write per
 *         commit. Only under synchronous=FULL or EXTRA (DJ_EINVAL otherwise), and only when
 *         \p db has its log open through this VFS (DJ_ENOENT otherwise); nothing changes then. */
int js_store__sq_vfs_defer(sqlite3 *db);

/* --- js_store_sqlite_owner.c: the ops of the registry (js_store_internal.h) -------------- */


#endif /* DJ_JOINSERVER_JS_STORE_SQLITE_INTERNAL_H */
