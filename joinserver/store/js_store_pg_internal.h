/*
 * js_store_pg_internal.h - what the files of the PostgreSQL backend share. Not installed.
 *
 * DESCRIPTION
 *	The backend is one state (struct js_store__pg, the js_store's be) and five files:
 *	js_store_pg.c (connections, reconnection, statement helpers, devices, sessions, audit),
 *	js_store_pg_schema.c (the migrations under an advisory lock, the master key's check value,
 *	rewrap, the restore guard), js_store_pg_commit.c (group commit in one pipelined
 *	transaction, the outbox and its single publisher), js_store_pg_owner.c (the ownership
 *	registry of js_store_owner.h) and js_store_pg_apikey.c (the management API's keys,
 *	js_apikey.h). libpq only; every value is a bound parameter.
 *
 *	Connections: the writer (committer and administrative calls, under wlock), a pool of
 *	JS_PG_READERS readers (device and session reads, walks; each under its own lock, so the
 *	engine's threads read in parallel) and the outbox connection, which holds the publisher's
 *	advisory lock while this instance publishes (under oblock). A connection that
 *	fails is dropped and opened again on a later call, with a growing backoff; until then the
 *	calls fail at once with DJ_EIO (a fault: the daemon answers JoinReqFailed / 503).
 */
#ifndef DJ_JOINSERVER_JS_STORE_PG_INTERNAL_H
#define DJ_JOINSERVER_JS_STORE_PG_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/dj_compiler.h"
#include "store/js_store_internal.h"

#define JS_PG_READERS 4		/* reader connections per instance */
#define JS_PG_HIST_PAIR 2		/* bytes per stored DevNonce */
#define JS_PG_BACKOFF_MIN_MS 100
#define JS_PG_BACKOFF_MAX_MS 5000
#define JS_PG_OUTBOX_LOCK 0x646a6f7574626f78LL	/* pg_try_advisory_lock key: "djoutbox" */
#define JS_PG_SCHEMA_LOCK 0x646a736368656d61LL	/* pg_advisory_lock key: "djschema" */
#define JS_PG_OUTBOX_ORDER_LOCK 7235718219891369061	/* pg_advisory_xact_lock: "djoborde" */
#define DJ_STR_(x) #x
#define DJ_STR(x) DJ_STR_(x)

/* One connection, with its reconnection state. */
#define JS_PG_STMTS 32		/* statements prepared per connection by js_store__pg_exec */

struct js_store__pgconn {
	PGconn *c;
	bool prepared;			/* the pipelined statements exist on c */
	bool leader;			/* reader: holds the outbox publisher lock */
	int64_t retry_at_ms;		/* monotonic: no reconnect before */
	unsigned backoff_ms;
	bool down_logged;
	/* statements prepared on c by js_store__pg_exec, by the address of their SQL text (a
	 * string literal): parsed and planned once per connection, not once per call */
	const char *stmt_sql[JS_PG_STMTS];
	unsigned n_stmts;
	/* round trips js_store__pg_exec made on this connection (a first PQprepare counts as
	 * one), under the connection's lock; read by tests and benches */
	uint64_t round_trips;
};

struct js_store__pg {
	char *conninfo;
	pthread_mutex_t wlock, oblock;
	pthread_mutex_t rlock[JS_PG_READERS];
	bool locks_init;
	unsigned rnext;			/* where the next read starts looking (racy hint) */
	struct js_store__pgconn w, ob;
	struct js_store__pgconn rd[JS_PG_READERS];
	uint64_t outbox_n;		/* rows in the outbox (last count), under wlock */
	int64_t outbox_counted_ms;	/* when outbox_n was last counted */
	bool xo_pend;			/* js_store__pg_outbox_put in this transaction: */
	uint64_t xo_rows, xo_written, xo_dropped;	/* its tally, applied on commit */
	uint8_t histbuf[JS_PG_HIST_PAIR * JS_DEVNONCE_HIST_MAX];
};

enum js_store__pg_type {
	JS_PG_TYPE_INT,			/* int8 */
	JS_PG_TYPE_BLOB,		/* bytea; SQL NULL when len is 0 */
	JS_PG_TYPE_TEXT,		/* text; NULL binds "" */
	JS_PG_TYPE_BYTEA_ARRAY,		/* bytea[], p/len its binary form (array_send) */
};

struct js_store__pg_val {
	enum js_store__pg_type type;
	const void *p;
	size_t len;
	int64_t i;
};

#define JS_PG_I(v) { .type = JS_PG_TYPE_INT, .i = (int64_t)(v) }
#define JS_PG_B(b, n) { .type = JS_PG_TYPE_BLOB, .p = (b), .len = (n) }
#define JS_PG_EUI(b) JS_PG_B((b), LW_EUI_LEN)
#define JS_PG_T(t) { .type = JS_PG_TYPE_TEXT, .p = (t) }
#define JS_PG_BYTEA_ARRAY(b, n) { .type = JS_PG_TYPE_BYTEA_ARRAY, .p = (b), .len = (n) }
#define JS_PG_ARGS(...) (const struct js_store__pg_val[]){ __VA_ARGS__ }, \
	DJ_ARRAY_LEN(((const struct js_store__pg_val[]){ __VA_ARGS__ }))
#define JS_PG_NONE NULL, 0

/* A row callback: row \p i of \p res; non-zero stops the walk and is returned. */
typedef int (*js_store__pg_row_fn)(const PGresult *res, int i, void *arg);

/* --- js_store_pg.c ---------------------------------------------------------------------- */

/*! \brief Monotonic milliseconds. */
int64_t js_store__pg_ms(void);

/*! \brief The connection, (re)opened when needed and due; NULL while the database is down
 *         (logged once per outage). Call with the connection's lock held. */
PGconn *js_store__pg_conn(struct js_store__pg *q, struct js_store__pgconn *pc);

/*! \brief After a failure on \p pc: when the connection is gone, drop it (reconnect later). */
void js_store__pg_check_conn(struct js_store__pgconn *pc);

/*!
 * \brief Run \p sql with \p v bound ($1..$n), binary results; *res (may be NULL: cleared) holds
 *        the result on success. \p sql must be a string literal (or live as long as the
 *        connection, never reused for other text): a statement with parameters is prepared
 *        once per connection and found again by its address. \retval DJ_EOK, DJ_EEXIST (an integrity constraint refused it),
 *        DJ_EIO (no connection), DJ_ESQL
 */
int js_store__pg_exec(struct js_store__pgconn *pc, const char *sql,
		      const struct js_store__pg_val *v, size_t n, PGresult **res) DJ_MUSTCHECK;

/*! \brief On the writer (wlock held, inside wbegin): a statement; *changes the rows it changed. */
int js_store__pg_change(struct js_store__pg *q, const char *sql,
			const struct js_store__pg_val *v, size_t n, uint64_t *changes) DJ_MUSTCHECK;

/*! \brief js_store__pg_change() without the count. */
int js_store__pg_run(struct js_store__pg *q, const char *sql, const struct js_store__pg_val *v,
		     size_t n) DJ_MUSTCHECK;

/*! \brief On the writer: call \p row per row (only the first with \p one).
 *         \retval DJ_EOK, DJ_ENOENT (\p one, no row), a fault, or what \p row returned */
int js_store__pg_rows(struct js_store__pg *q, const char *sql, const struct js_store__pg_val *v,
		      size_t n, bool one, js_store__pg_row_fn row, void *arg) DJ_MUSTCHECK;

/*! \brief js_store__pg_rows() on the reader (committed state), every row, or the first with
 *         \p one. */
int js_store__pg_read(struct js_store__pg *q, const char *sql, const struct js_store__pg_val *v,
		      size_t n, bool one, js_store__pg_row_fn row, void *arg) DJ_MUSTCHECK;

/*! \brief Lock the writer and BEGIN. \retval DJ_EOK, DJ_EIO, DJ_ESQL */
int js_store__pg_wbegin(struct js_store__pg *q) DJ_MUSTCHECK;

/*! \brief COMMIT (\p ret == DJ_EOK) or ROLLBACK, apply the outbox tally, unlock. */
int js_store__pg_wend(struct js_store *s, int ret) DJ_MUSTCHECK;

/*! \brief Items 0..n-1 in one transaction, as js_store__sq_batch(). */
int js_store__pg_batch(struct js_store *s, size_t n,
		       int (*item)(struct js_store *s, size_t i, void *arg), void *arg,
		       size_t *bad) DJ_MUSTCHECK;

/*! \brief A bytea column (NULL reads as empty). */
const uint8_t *js_store__pg_blob(const PGresult *res, int i, int col, size_t *len);

/*! \brief An integer column of any width (bool, int2, int4, int8); NULL reads as -1. */
int64_t js_store__pg_int(const PGresult *res, int i, int col);

/*! \brief Append an audit row inside the open writer transaction. */
int js_store__pg_audit_put(struct js_store *s, const uint8_t *dev_eui, const char *event,
			   const char *actor, const char *detail) DJ_MUSTCHECK;


/* --- js_store_pg_schema.c --------------------------------------------------------------- */

/*! \brief On a fresh writer connection: the migrations (under an advisory lock, safe when
 *         several instances start at once), the KCV, the instance id, the outbox count. */
int js_store__pg_schema_open(struct js_store *s, const uint8_t kcv[JS_KCV_LEN]) DJ_MUSTCHECK;

int js_store__pg_rewrap(struct js_store *s, struct js_keystore *old_ks,
			struct js_keystore *new_ks, const char *actor, uint64_t *count);

int js_store__pg_bump_join_nonces(struct js_store *s, uint32_t margin, const char *actor,
				  uint64_t *count);

/*! \brief danejoin-devices check: the schema version, every row against the rules of the row
 *         readers and of the SQLite schema, with \p full every B-tree index (amcheck). */
int js_store__pg_check(struct js_store *s, bool full, void (*cb)(const char *line, void *arg),
		       void *arg);

/* --- js_store_pg_commit.c --------------------------------------------------------------- */

/*! \brief Prepare the pipelined statements of apply_batch on the writer connection. */
int js_store__pg_prepare(PGconn *c) DJ_MUSTCHECK;

int js_store__pg_apply_batch(struct js_store *s, struct js_commit *head, size_t n);

int js_store__pg_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			      size_t max, size_t *n);

/*! \brief As js_store__sq_outbox_put(). */
void js_store__pg_outbox_put(struct js_store *s, const uint8_t *body, size_t len);

/* --- js_store_pg_owner.c ---------------------------------------------------------------- */

extern const struct js_store_reg_ops js_store__pg_reg_ops;

/* --- js_store_pg_apikey.c --------------------------------------------------------------- */

extern const struct js_store_apikey_ops js_store__pg_apikey_ops;

#endif /* DJ_JOINSERVER_JS_STORE_PG_INTERNAL_H */
