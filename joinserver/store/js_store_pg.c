/*
 * js_store_pg.c - the PostgreSQL backend of js_store (libpq): the connections and their
 * reconnection, the statement helpers every file of the backend uses, and the device, session
 * and audit calls; js_store_pg_internal.h lists the others.
 *
 * PURPOSE
 *	Several danejoind instances share one database. Each holds a writer connection (the
 *	committer thread and the administrative calls, serialised by wlock) and a reader
 *	connection (device and session reads, walks, the outbox). A session made on one instance
 *	is read by another from the same table.
 *
 * SECURITY
 *	- Every value is bound as a parameter, never formatted into SQL; rows read back are
 *	  bounds-checked before a byte is copied into the fixed-size structs of js_store.h.
 *	- Error messages are the server's (they never carry a parameter value, so never a token);
 *	  the conninfo is never logged (it may name a passfile, never a password: js_config
 *	  refuses password= in it).
 *	- A lost connection fails the call (DJ_EIO); the next call after the backoff reconnects.
 *	  Nothing is retried behind the caller's back: a transaction whose COMMIT outcome is unknown
 *	  is reported failed, and the client's retry then meets the compare-and-swap.
 */
#include "store/js_store_pg_internal.h"

#include <arpa/inet.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_log.h"

#define PG_PARAMS_MAX 16
#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23
#define PG_OID_TEXT 25
#define PG_OID_BYTEA_ARRAY 1001
#define PG_MANY_MAX JS_KS_BATCH_MAX	/* DevEUIs per pg_device_get_many query: an engine group */
#define PG_ARRAY_HEAD 20	/* array_send: ndim, flags, element type, length, lower bound */
#define PG_CONNECT_TIMEOUT "5"

enum {
	DC_DEV_EUI, DC_JOIN_EUI, DC_MAC_VERSION, DC_ROOT_TOKEN, DC_CREATED_AT, DC_VERSION,
	DC_DEV_NONCE, DC_JOIN_NONCE, DC_RJCOUNT1, DC_HIST, DC_SESS_TOKEN,
};
#define DEV_COLS "dev_eui, join_eui, mac_version, root_token, created_at, version, " \
		 "dev_nonce_last, join_nonce_last, rjcount1_last, dn_hist, sess_token"
#define PG_DEV_INSERT "INSERT INTO devices(" DEV_COLS ") VALUES($1, $2, $3, $4, $5, 0, -1, -1," \
		      " -1, ''::bytea, NULL)"

int64_t js_store__pg_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* pg_notice - libpq notices (e.g. "relation exists, skipping") are not worth a log line */
static void pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* connect_now - one connection attempt; the conninfo is expanded over our defaults */
static PGconn *connect_now(const char *conninfo)
{
	/* defaults first: the conninfo's own settings override them. Keepalives and a TCP user
	 * timeout so that a primary that vanished (failover) fails the batch instead of hanging */
	const char *const keys[] = { "connect_timeout", "keepalives_idle", "keepalives_interval",
				     "keepalives_count", "tcp_user_timeout", "dbname", NULL };
	const char *const vals[] = { PG_CONNECT_TIMEOUT, "10", "3", "3", "15000", conninfo, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	if (c != NULL && PQstatus(c) == CONNECTION_OK)
		PQsetNoticeProcessor(c, pg_notice, NULL);
	return c;
}

/* pg_open_conn - (re)open pc now; logs the failure once per outage */
static int pg_open_conn(struct js_store__pg *q, struct js_store__pgconn *pc, bool writer)
{
	PGconn *c = connect_now(q->conninfo);

	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		if (!pc->down_logged)
			dj_err("store: cannot connect to PostgreSQL: %s",
			       c != NULL ? PQerrorMessage(c) : "out of memory");
		pc->down_logged = true;
		PQfinish(c);
		pc->backoff_ms = pc->backoff_ms == 0 ? JS_PG_BACKOFF_MIN_MS
						     : pc->backoff_ms * 2;
		if (pc->backoff_ms > JS_PG_BACKOFF_MAX_MS)
			pc->backoff_ms = JS_PG_BACKOFF_MAX_MS;
		pc->retry_at_ms = js_store__pg_ms() + pc->backoff_ms;
		return DJ_EIO;
	}
	if (writer && js_store__pg_prepare(c) != DJ_EOK) {
		dj_warn("store: PostgreSQL: preparing statements failed: %s", PQerrorMessage(c));
		PQfinish(c);
		pc->retry_at_ms = js_store__pg_ms() + JS_PG_BACKOFF_MIN_MS;
		return DJ_EIO;
	}
	if (pc->down_logged)
		dj_info("store: reconnected to PostgreSQL");
	pc->c = c;
	pc->n_stmts = 0;	/* a new connection has none of the old one's statements */
	pc->down_logged = false;
	pc->backoff_ms = 0;
	pc->leader = false;
	return DJ_EOK;
}

PGconn *js_store__pg_conn(struct js_store__pg *q, struct js_store__pgconn *pc)
{
	if (pc->c != NULL && PQstatus(pc->c) == CONNECTION_OK)
		return pc->c;
	if (pc->c != NULL) {
		PQfinish(pc->c);
		pc->c = NULL;
		pc->leader = false;
	}
	if (js_store__pg_ms() < pc->retry_at_ms)
		return NULL;
	return pg_open_conn(q, pc, pc == &q->w) == DJ_EOK ? pc->c : NULL;
}

void js_store__pg_check_conn(struct js_store__pgconn *pc)
{
	if (pc->c != NULL && PQstatus(pc->c) != CONNECTION_OK) {
		dj_warn_limited("store: the PostgreSQL connection was lost");
		PQfinish(pc->c);
		pc->c = NULL;
		pc->leader = false;
		pc->down_logged = false;
		pc->retry_at_ms = js_store__pg_ms() + JS_PG_BACKOFF_MIN_MS;
		pc->backoff_ms = JS_PG_BACKOFF_MIN_MS;
	}
}

/*
 * exec_cached - run sql on pc, prepared once per connection: the statement is named after its
 * slot in pc->stmt_sql, looked up by the address of the SQL text (every caller passes a string
 * literal, so the same text always comes with the same parameter types; a statement without
 * parameters is run as it is). When the table is full, or the prepare fails, the statement is
 * run unprepared, as before.
 */
static PGresult *exec_cached(struct js_store__pgconn *pc, const char *sql, int n,
			     const Oid *types, const char *const *vals, const int *lens,
			     const int *fmts)
{
	char name[16];
	unsigned i;

	pc->round_trips++;
	if (n == 0)	/* BEGIN, COMMIT, ROLLBACK: nothing worth planning once */
		return PQexecParams(pc->c, sql, 0, NULL, NULL, NULL, NULL, 1);
	for (i = 0; i < pc->n_stmts && pc->stmt_sql[i] != sql; i++)
		;
	if (i == pc->n_stmts && i < JS_PG_STMTS) {
		PGresult *p;

		snprintf(name, sizeof(name), "dj_x%u", i);
		p = PQprepare(pc->c, name, sql, n, types);
		pc->round_trips++;
		if (PQresultStatus(p) == PGRES_COMMAND_OK)
			pc->stmt_sql[pc->n_stmts++] = sql;
		PQclear(p);
	}
	if (i == pc->n_stmts)
		return PQexecParams(pc->c, sql, n, types, vals, lens, fmts, 1);
	snprintf(name, sizeof(name), "dj_x%u", i);
	return PQexecPrepared(pc->c, name, n, vals, lens, fmts, 1);
}

int js_store__pg_exec(struct js_store__pgconn *pc, const char *sql,
		      const struct js_store__pg_val *v, size_t n, PGresult **res)
{
	Oid types[PG_PARAMS_MAX];
	const char *vals[PG_PARAMS_MAX];
	int lens[PG_PARAMS_MAX], fmts[PG_PARAMS_MAX];
	uint64_t ints[PG_PARAMS_MAX];
	PGresult *r;
	ExecStatusType st;
	const char *state;
	int ret;

	if (res != NULL)
		*res = NULL;
	if (pc->c == NULL)
		return DJ_EIO;
	if (n > PG_PARAMS_MAX)
		return DJ_EINVAL;
	for (size_t i = 0; i < n; i++) {
		switch (v[i].type) {
		case JS_PG_TYPE_INT:
			ints[i] = htobe64((uint64_t)v[i].i);
			types[i] = PG_OID_INT8;
			vals[i] = (const char *)&ints[i];
			lens[i] = 8;
			fmts[i] = 1;
			break;
		case JS_PG_TYPE_BLOB:
			types[i] = PG_OID_BYTEA;
			vals[i] = v[i].len == 0 ? NULL : v[i].p;
			lens[i] = (int)v[i].len;
			fmts[i] = 1;
			break;
		case JS_PG_TYPE_TEXT:
			types[i] = PG_OID_TEXT;
			vals[i] = v[i].p != NULL ? v[i].p : "";
			lens[i] = 0;
			fmts[i] = 0;
			break;
		case JS_PG_TYPE_BYTEA_ARRAY:
			types[i] = PG_OID_BYTEA_ARRAY;
			vals[i] = v[i].p;
			lens[i] = (int)v[i].len;
			fmts[i] = 1;
			break;
		}
	}
	r = exec_cached(pc, sql, (int)n, types, vals, lens, fmts);
	st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (res != NULL)
			*res = r;
		else
			PQclear(r);
		return DJ_EOK;
	}
	state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (state != NULL && strncmp(state, "23", 2) == 0) {
		ret = DJ_EEXIST;	/* integrity constraint: a duplicate or a missing parent */
	} else {
		dj_warn_limited("store: PostgreSQL: %s", r != NULL ? PQresultErrorMessage(r)
								    : PQerrorMessage(pc->c));
		ret = PQstatus(pc->c) != CONNECTION_OK ? DJ_EIO : DJ_ESQL;
	}
	PQclear(r);
	js_store__pg_check_conn(pc);
	return ret;
}

int js_store__pg_change(struct js_store__pg *q, const char *sql,
			const struct js_store__pg_val *v, size_t n, uint64_t *changes)
{
	PGresult *r = NULL;
	int ret = js_store__pg_exec(&q->w, sql, v, n, &r);

	if (ret == DJ_EOK && changes != NULL)
		*changes = strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return ret;
}

int js_store__pg_run(struct js_store__pg *q, const char *sql, const struct js_store__pg_val *v,
		     size_t n)
{
	return js_store__pg_change(q, sql, v, n, NULL);
}

/* walk - the rows of \p r to \p row */
static int walk(PGresult *r, bool one, js_store__pg_row_fn row, void *arg)
{
	int nrows = PQntuples(r);
	int ret = DJ_EOK;

	if (one && nrows == 0)
		return DJ_ENOENT;
	for (int i = 0; i < nrows && ret == DJ_EOK; i++) {
		ret = row(r, i, arg);
		if (one)
			break;
	}
	return ret;
}

int js_store__pg_rows(struct js_store__pg *q, const char *sql, const struct js_store__pg_val *v,
		      size_t n, bool one, js_store__pg_row_fn row, void *arg)
{
	PGresult *r = NULL;
	int ret = js_store__pg_exec(&q->w, sql, v, n, &r);

	if (ret == DJ_EOK)
		ret = walk(r, one, row, arg);
	PQclear(r);
	return ret;
}

int js_store__pg_read(struct js_store__pg *q, const char *sql, const struct js_store__pg_val *v,
		      size_t n, bool one, js_store__pg_row_fn row, void *arg)
{
	PGresult *r = NULL;
	int ret;

	unsigned k = __atomic_fetch_add(&q->rnext, 1, __ATOMIC_RELAXED) % JS_PG_READERS, j;

	/* a free reader if there is one, else wait for the first one tried */
	for (j = 0; j < JS_PG_READERS; j++)
		if (pthread_mutex_trylock(&q->rlock[(k + j) % JS_PG_READERS]) == 0)
			break;
	if (j == JS_PG_READERS) {
		j = 0;
		pthread_mutex_lock(&q->rlock[k]);
	}
	k = (k + j) % JS_PG_READERS;
	ret = js_store__pg_conn(q, &q->rd[k]) != NULL ? js_store__pg_exec(&q->rd[k], sql, v, n, &r)
						       : DJ_EIO;
	pthread_mutex_unlock(&q->rlock[k]);
	/* the rows are the result's own: the walk needs no lock */
	if (ret == DJ_EOK)
		ret = walk(r, one, row, arg);
	PQclear(r);
	return ret;
}

int js_store__pg_wbegin(struct js_store__pg *q)
{
	int ret;

	pthread_mutex_lock(&q->wlock);
	ret = js_store__pg_conn(q, &q->w) != NULL ? js_store__pg_exec(&q->w, "BEGIN", JS_PG_NONE,
								      NULL)
						    : DJ_EIO;
	if (ret != DJ_EOK)
		pthread_mutex_unlock(&q->wlock);
	return ret;
}

/* commit_checked - COMMIT, and make sure it was one (a failed transaction answers ROLLBACK) */
static int commit_checked(struct js_store__pgconn *pc)
{
	PGresult *r = NULL;
	int ret = js_store__pg_exec(pc, "COMMIT", JS_PG_NONE, &r);

	if (ret == DJ_EOK && strcmp(PQcmdStatus(r), "COMMIT") != 0)
		ret = DJ_ESQL;
	PQclear(r);
	return ret;
}

int js_store__pg_wend(struct js_store *s, int ret)
{
	struct js_store__pg *q = s->be;
	bool pend = q->xo_pend;
	uint64_t rows = q->xo_rows, written = q->xo_written, dropped = q->xo_dropped;

	q->xo_pend = false;
	q->xo_rows = q->xo_written = q->xo_dropped = 0;
	if (ret == DJ_EOK)
		ret = commit_checked(&q->w);
	if (ret != DJ_EOK && q->w.c != NULL && PQtransactionStatus(q->w.c) != PQTRANS_IDLE)
		if (js_store__pg_exec(&q->w, "ROLLBACK", JS_PG_NONE, NULL) != DJ_EOK)
			js_store__pg_check_conn(&q->w);
	if (ret == DJ_EOK && pend)
		q->outbox_n = rows;
	pthread_mutex_unlock(&q->wlock);
	if (ret == DJ_EOK && pend)
		js_store__outbox_count(s, written, dropped, 0, rows);
	return ret;
}

int js_store__pg_batch(struct js_store *s, size_t n,
		       int (*item)(struct js_store *s, size_t i, void *arg), void *arg, size_t *bad)
{
	size_t i = 0;
	int ret = js_store__pg_wbegin(s->be);

	if (ret != DJ_EOK)
		return ret;
	for (; i < n; i++) {
		ret = item(s, i, arg);
		if (ret != DJ_EOK)
			break;
	}
	*bad = i < n ? i : 0;
	return js_store__pg_wend(s, ret);
}

const uint8_t *js_store__pg_blob(const PGresult *res, int i, int col, size_t *len)
{
	if (PQgetisnull(res, i, col)) {
		*len = 0;
		return NULL;
	}
	*len = (size_t)PQgetlength(res, i, col);
	return (const uint8_t *)PQgetvalue(res, i, col);
}

int64_t js_store__pg_int(const PGresult *res, int i, int col)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(res, i, col);
	int len = PQgetlength(res, i, col);
	uint64_t u = 0;

	if (PQgetisnull(res, i, col))
		return -1;
	if (PQfformat(res, col) == 0)		/* text (not asked for; be safe) */
		return strtoll((const char *)p, NULL, 10);
	for (int k = 0; k < len && k < 8; k++)
		u = (u << 8) | p[k];
	switch (len) {
	case 1:
		return (int64_t)(int8_t)u;
	case 2:
		return (int64_t)(int16_t)u;
	case 4:
		return (int64_t)(int32_t)u;
	default:
		return (int64_t)u;
	}
}

/* pg_close - close both connections and free the state (half-built is fine) */
static void pg_close(struct js_store *s)
{
	struct js_store__pg *q = s->be;

	if (q == NULL)
		return;
	PQfinish(q->w.c);
	PQfinish(q->ob.c);
	for (size_t i = 0; i < JS_PG_READERS; i++)
		PQfinish(q->rd[i].c);
	if (q->conninfo != NULL) {
		OPENSSL_cleanse(q->conninfo, strlen(q->conninfo));
		free(q->conninfo);
	}
	if (q->locks_init) {
		pthread_mutex_destroy(&q->wlock);
		pthread_mutex_destroy(&q->oblock);
		for (size_t i = 0; i < JS_PG_READERS; i++)
			pthread_mutex_destroy(&q->rlock[i]);
	}
	free(q);
	s->be = NULL;
}

/* pg_open - connect (an unreachable database is an error, never a fallback), migrate, check
 * the KCV */
static int pg_open(struct js_store *s, const struct js_store_props *props)
{
	struct js_store__pg *q = calloc(1, sizeof(*q));
	int ret;

	if (q == NULL)
		return DJ_ENOMEM;
	s->be = q;
	q->conninfo = strdup(props->conninfo);
	if (q->conninfo == NULL)
		return DJ_ENOMEM;
	if (pthread_mutex_init(&q->wlock, NULL) != 0)
		return DJ_ENOMEM;
	/* mutexes with default attributes cannot fail to initialise on Linux (no allocation) */
	(void)pthread_mutex_init(&q->oblock, NULL);
	for (size_t i = 0; i < JS_PG_READERS; i++)
		(void)pthread_mutex_init(&q->rlock[i], NULL);
	q->locks_init = true;
	/* the schema first: the writer's statements refer to its tables */
	q->w.c = connect_now(q->conninfo);
	if (q->w.c == NULL || PQstatus(q->w.c) != CONNECTION_OK) {
		dj_err("store: cannot connect to PostgreSQL: %s",
		       q->w.c != NULL ? PQerrorMessage(q->w.c) : "out of memory");
		return DJ_EIO;
	}
	ret = js_store__pg_schema_open(s, props->kcv);
	if (ret != DJ_EOK)
		return ret;
	if (js_store__pg_prepare(q->w.c) != DJ_EOK) {
		dj_err("store: PostgreSQL: preparing statements failed: %s",
		       PQerrorMessage(q->w.c));
		return DJ_ESQL;
	}
	/* the readers and the outbox connection open on first use */
	return DJ_EOK;
}

/* row_device - check a DEV_COLS row against the struct's bounds, then copy it into out */
static int row_device(const PGresult *r, int i, struct js_device *out)
{
	size_t eui_len, join_len, root_len, hist_len, sess_len;
	const uint8_t *eui = js_store__pg_blob(r, i, DC_DEV_EUI, &eui_len);
	const uint8_t *join = js_store__pg_blob(r, i, DC_JOIN_EUI, &join_len);
	const uint8_t *root = js_store__pg_blob(r, i, DC_ROOT_TOKEN, &root_len);
	const uint8_t *hist = js_store__pg_blob(r, i, DC_HIST, &hist_len);
	const uint8_t *sess = js_store__pg_blob(r, i, DC_SESS_TOKEN, &sess_len);
	int64_t mv = js_store__pg_int(r, i, DC_MAC_VERSION);

	if (eui_len != LW_EUI_LEN || join_len != LW_EUI_LEN || root_len > JS_TOKEN_MAX ||
	    hist_len % JS_PG_HIST_PAIR != 0 || hist_len / JS_PG_HIST_PAIR > JS_DEVNONCE_HIST_MAX ||
	    sess_len > JS_TOKEN_MAX || mv < LW_V1_0_0 || mv > LW_V1_1) {
		dj_warn("store: a devices row is malformed");
		return DJ_EMALFORMED;
	}
	memcpy(out->dev_eui, eui, LW_EUI_LEN);
	memcpy(out->join_eui, join, LW_EUI_LEN);
	out->mac_version = (enum lw_version)mv;
	out->root_token_len = (uint32_t)root_len;
	if (root_len > 0)
		memcpy(out->root_token, root, root_len);
	out->created_at = js_store__pg_int(r, i, DC_CREATED_AT);
	out->st.version = (uint64_t)js_store__pg_int(r, i, DC_VERSION);
	out->st.dev_nonce_last = (int32_t)js_store__pg_int(r, i, DC_DEV_NONCE);
	out->st.join_nonce_last = js_store__pg_int(r, i, DC_JOIN_NONCE);
	out->st.rjcount1_last = (int32_t)js_store__pg_int(r, i, DC_RJCOUNT1);
	out->st.hist_len = (uint32_t)(hist_len / JS_PG_HIST_PAIR);
	if (hist_len > 0)
		js_store__hist_decode(hist, out->st.hist_len, out->st.hist);
	out->st.sess_token_len = (uint32_t)sess_len;
	if (sess_len > 0)
		memcpy(out->st.sess_token, sess, sess_len);
	out->row = 0;	/* the commit finds the row by dev_eui */
	return DJ_EOK;
}

/* dev_copy - a row callback: the device into arg */
static int dev_copy(const PGresult *r, int i, void *arg)
{
	return row_device(r, i, arg);
}

static int pg_device_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			 struct js_device *out)
{
	return js_store__pg_read(s->be, "SELECT " DEV_COLS " FROM devices WHERE dev_eui=$1",
				 JS_PG_ARGS(JS_PG_EUI(dev_eui)), true, dev_copy, out);
}

/* put_be32 - a big-endian 32-bit word at p; the next byte */
static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
	return p + sizeof(v);
}

/*
 * eui_array - \p n DevEUIs as a one-dimensional bytea[] in PostgreSQL's binary form
 * (array_send: dimensions, no-NULL flag, element type, length and lower bound, then each
 * element's length and bytes) into \p buf (PG_ARRAY_HEAD + n * (4 + LW_EUI_LEN) bytes); its
 * length
 */
static size_t eui_array(const uint8_t *const dev_eui[], size_t n, uint8_t *buf)
{
	uint8_t *p = buf;

	p = put_be32(p, 1);
	p = put_be32(p, 0);
	p = put_be32(p, PG_OID_BYTEA);
	p = put_be32(p, (uint32_t)n);
	p = put_be32(p, 1);
	for (size_t i = 0; i < n; i++) {
		p = put_be32(p, LW_EUI_LEN);
		memcpy(p, dev_eui[i], LW_EUI_LEN);
		p += LW_EUI_LEN;
	}
	return (size_t)(p - buf);
}

/* The requests of one pg_device_get_many query, for its row callback. */
struct many_req {
	size_t n;
	const uint8_t *const *dev_eui;
	struct js_device *const *out;
	int *rets;
};

/*
 * many_row - a row callback: the device of row i into every request that names its DevEUI (a
 * DevEUI asked twice gets the row twice), decoded by row_device as a single read decodes it.
 * A malformed row fails those requests only, as it fails a single read.
 */
static int many_row(const PGresult *r, int i, void *arg)
{
	struct many_req *m = arg;
	size_t len;
	const uint8_t *eui = js_store__pg_blob(r, i, DC_DEV_EUI, &len);

	for (size_t k = 0; len == LW_EUI_LEN && k < m->n; k++)
		if (memcmp(m->dev_eui[k], eui, LW_EUI_LEN) == 0)
			m->rets[k] = row_device(r, i, m->out[k]);
	return DJ_EOK;
}

#define PG_GET_MANY "SELECT " DEV_COLS " FROM devices WHERE dev_eui = ANY($1)"

/*
 * pg_device_get_many - n devices in one query per PG_MANY_MAX of them (an engine group is
 * one): dev_eui = ANY($1) with a bytea[] parameter, one round trip and one snapshot instead of
 * one of each per device. The rows come back in no particular order and once per DevEUI; each
 * is mapped back to the requests that name it. A DevEUI without a row is DJ_ENOENT, and a
 * failed query (DJ_EIO, DJ_ESQL) fails every request of its part, as each single read would
 * have failed. The root tokens stay as stored (wrapped), as in pg_device_get.
 */
static int pg_device_get_many(struct js_store *s, size_t n, const uint8_t *const dev_eui[],
			      struct js_device *const out[], int rets[])
{
	uint8_t buf[PG_ARRAY_HEAD + PG_MANY_MAX * (4 + LW_EUI_LEN)];

	for (size_t at = 0; at < n; at += PG_MANY_MAX) {
		size_t k = n - at < PG_MANY_MAX ? n - at : PG_MANY_MAX;
		struct many_req m = { k, dev_eui + at, out + at, rets + at };
		size_t len = eui_array(m.dev_eui, k, buf);
		int ret;

		for (size_t i = 0; i < k; i++)
			m.rets[i] = DJ_ENOENT;
		ret = js_store__pg_read(s->be, PG_GET_MANY, JS_PG_ARGS(JS_PG_BYTEA_ARRAY(buf, len)),
					false, many_row, &m);
		for (size_t i = 0; ret != DJ_EOK && i < k; i++)
			m.rets[i] = ret;
	}
	return DJ_EOK;
}

#define PG_AUDIT_INSERT "INSERT INTO audit(at, dev_eui, event, actor, detail) VALUES($1, $2, $3," \
			" $4, $5)"

int js_store__pg_audit_put(struct js_store *s, const uint8_t *dev_eui, const char *event,
			   const char *actor, const char *detail)
{
	return js_store__pg_run(s->be, PG_AUDIT_INSERT,
				JS_PG_ARGS(JS_PG_I(js_store_now(s)),
					   JS_PG_B(dev_eui, dev_eui != NULL ? LW_EUI_LEN : 0),
					   JS_PG_T(event), JS_PG_T(actor), JS_PG_T(detail)));
}

#define PG_DEV_RESUME "UPDATE devices SET version=t.version+1, join_nonce_last=t.join_nonce_last," \
		      " dev_nonce_last=CASE WHEN $2<>0 THEN -1 ELSE t.dev_nonce_last END," \
		      " rjcount1_last=CASE WHEN $2<>0 THEN -1 ELSE t.rjcount1_last END," \
		      " dn_hist=CASE WHEN $2<>0 THEN ''::bytea ELSE t.dn_hist END" \
		      " FROM tombstones AS t WHERE devices.dev_eui=$1 AND t.dev_eui=$1"

/* --- the statements under the shared device rules (js_store_dev_sql) ---------------------- */

static int pg_dev_wbegin(struct js_store *s)
{
	return js_store__pg_wbegin(s->be);
}

static int pg_dev_row_insert(struct js_store *s, const struct js_device *d)
{
	return js_store__pg_run(s->be, PG_DEV_INSERT,
				JS_PG_ARGS(JS_PG_EUI(d->dev_eui), JS_PG_EUI(d->join_eui),
					   JS_PG_I(d->mac_version),
					   JS_PG_B(d->root_token, d->root_token_len),
					   JS_PG_I(d->created_at != 0 ? d->created_at
								      : js_store_now(s))));
}

static int pg_dev_resume(struct js_store *s, const uint8_t *dev_eui, bool forget, uint64_t *n)
{
	return js_store__pg_change(s->be, PG_DEV_RESUME,
				   JS_PG_ARGS(JS_PG_EUI(dev_eui), JS_PG_I(forget)), n);
}

static int pg_dev_tombstone_drop(struct js_store *s, const uint8_t *dev_eui)
{
	return js_store__pg_run(s->be, "DELETE FROM tombstones WHERE dev_eui=$1",
				JS_PG_ARGS(JS_PG_EUI(dev_eui)));
}

static int pg_dev_tombstone_put(struct js_store *s, const uint8_t *dev_eui)
{
	return js_store__pg_run(s->be, "INSERT INTO tombstones(dev_eui, version, dev_nonce_last,"
				" join_nonce_last, rjcount1_last, dn_hist, deleted_at)"
				" SELECT dev_eui, version, dev_nonce_last, join_nonce_last,"
				" rjcount1_last, dn_hist, $2 FROM devices WHERE dev_eui=$1"
				" ON CONFLICT (dev_eui) DO UPDATE SET version=EXCLUDED.version,"
				" dev_nonce_last=EXCLUDED.dev_nonce_last,"
				" join_nonce_last=EXCLUDED.join_nonce_last,"
				" rjcount1_last=EXCLUDED.rjcount1_last, dn_hist=EXCLUDED.dn_hist,"
				" deleted_at=EXCLUDED.deleted_at",
				JS_PG_ARGS(JS_PG_EUI(dev_eui), JS_PG_I(js_store_now(s))));
}

static int pg_dev_row_delete(struct js_store *s, const uint8_t *dev_eui, uint64_t *n)
{
	return js_store__pg_change(s->be, "DELETE FROM devices WHERE dev_eui=$1",
				   JS_PG_ARGS(JS_PG_EUI(dev_eui)), n);
}

static const struct js_store_dev_sql pg_dev_sql = {
	.batch = js_store__pg_batch,
	.audit_put = js_store__pg_audit_put,
	.wbegin = pg_dev_wbegin,
	.wend = js_store__pg_wend,
	.row_insert = pg_dev_row_insert,
	.resume = pg_dev_resume,
	.tombstone_drop = pg_dev_tombstone_drop,
	.tombstone_put = pg_dev_tombstone_put,
	.row_delete = pg_dev_row_delete,
};


static int pg_sessions_expire(struct js_store *s, int64_t now, uint64_t *count)
{
	int ret = js_store__pg_wbegin(s->be);

	if (ret != DJ_EOK)
		return ret;
	return js_store__pg_wend(s, js_store__pg_change(s->be, "DELETE FROM sessions WHERE"
							 " expires_at <= $1",
							 JS_PG_ARGS(JS_PG_I(now)), count));
}

struct dev_walk {
	int (*cb)(const struct js_device *d, void *arg);
	void *arg;
	struct js_device d;
};

static int dev_row(const PGresult *r, int i, void *arg)
{
	struct dev_walk *w = arg;
	int ret = row_device(r, i, &w->d);

	return ret != DJ_EOK ? ret : w->cb(&w->d, w->arg);
}

static int pg_device_foreach(struct js_store *s, int (*cb)(const struct js_device *d, void *arg),
			     void *arg)
{
	struct dev_walk *w = malloc(sizeof(*w));
	int ret;

	if (w == NULL)
		return DJ_ENOMEM;
	w->cb = cb;
	w->arg = arg;
	ret = js_store__pg_read(s->be, "SELECT " DEV_COLS " FROM devices ORDER BY dev_eui",
				JS_PG_NONE, false, dev_row, w);
	free(w);
	return ret;
}

static int pg_reset_nonces(struct js_store *s, const uint8_t *dev_eui, const char *actor,
			   uint64_t *count)
{
	struct js_store__pg *q = s->be;
	size_t eui_len = dev_eui != NULL ? LW_EUI_LEN : 0;
	uint64_t n = 0;
	int ret;

	ret = js_store__pg_wbegin(q);
	if (ret != DJ_EOK)
		return ret;
	ret = js_store__pg_change(q, "UPDATE devices SET dev_nonce_last=-1, rjcount1_last=-1,"
				  " dn_hist=''::bytea, version=version+1"
				  " WHERE $1::bytea IS NULL OR dev_eui=$1",
				  JS_PG_ARGS(JS_PG_B(dev_eui, eui_len)), &n);
	if (ret == DJ_EOK && dev_eui != NULL && n == 0)
		ret = DJ_ENOENT;
	if (ret == DJ_EOK)
		ret = js_store__pg_run(q, "INSERT INTO audit(at, dev_eui, event, actor, detail)"
				       " SELECT $1, dev_eui, $2, $3, '' FROM devices"
				       " WHERE $4::bytea IS NULL OR dev_eui=$4 ORDER BY dev_eui",
				       JS_PG_ARGS(JS_PG_I(js_store_now(s)),
						  JS_PG_T(JS_NONCE_RESET_EVENT), JS_PG_T(actor),
						  JS_PG_B(dev_eui, eui_len)));
	ret = js_store__pg_wend(s, ret);
	if (ret == DJ_EOK && count != NULL)
		*count = n;
	return ret;
}

/* A session read: the id asked for, and where the row goes. */
struct sess_read {
	const uint8_t *id;
	size_t len;
	struct js_session *out;
};

static int sess_row(const PGresult *r, int i, void *arg)
{
	struct sess_read *sr = arg;
	size_t eui_len, tok_len;
	const uint8_t *eui = js_store__pg_blob(r, i, 0, &eui_len);
	const uint8_t *tok = js_store__pg_blob(r, i, 3, &tok_len);

	if (eui_len != LW_EUI_LEN || tok_len > JS_TOKEN_MAX)
		return DJ_EMALFORMED;
	memcpy(sr->out->session_id, sr->id, sr->len);
	sr->out->session_id_len = (uint32_t)sr->len;
	memcpy(sr->out->dev_eui, eui, LW_EUI_LEN);
	sr->out->created_at = js_store__pg_int(r, i, 1);
	sr->out->expires_at = js_store__pg_int(r, i, 2);
	sr->out->session_token_len = (uint32_t)tok_len;
	if (tok_len > 0)
		memcpy(sr->out->session_token, tok, tok_len);
	return DJ_EOK;
}

static int pg_session_get(struct js_store *s, const uint8_t *session_id, size_t len,
			  struct js_session *out)
{
	struct sess_read sr = { session_id, len, out };

	return js_store__pg_read(s->be, "SELECT dev_eui, created_at, expires_at, session_token"
				 " FROM sessions WHERE session_id=$1",
				 JS_PG_ARGS(JS_PG_B(session_id, len)), true, sess_row, &sr);
}

static int pg_audit(struct js_store *s, const uint8_t *dev_eui, const char *event,
		    const char *actor, const char *detail)
{
	int ret = js_store__pg_wbegin(s->be);

	if (ret != DJ_EOK)
		return ret;
	return js_store__pg_wend(s, js_store__pg_audit_put(s, dev_eui, event, actor, detail));
}

struct audit_walk {
	int (*cb)(const struct js_audit_entry *e, void *arg);
	void *arg;
};

static int audit_row(const PGresult *r, int i, void *arg)
{
	const struct audit_walk *w = arg;
	struct js_audit_entry e;
	size_t eui_len;
	const uint8_t *eui = js_store__pg_blob(r, i, 2, &eui_len);

	memset(&e, 0, sizeof(e));
	e.id = js_store__pg_int(r, i, 0);
	e.at = js_store__pg_int(r, i, 1);
	e.has_dev_eui = eui_len == LW_EUI_LEN;
	if (e.has_dev_eui)
		memcpy(e.dev_eui, eui, LW_EUI_LEN);
	js_store__strlcpy(e.event, PQgetvalue(r, i, 3), sizeof(e.event));
	js_store__strlcpy(e.actor, PQgetvalue(r, i, 4), sizeof(e.actor));
	js_store__strlcpy(e.detail, PQgetvalue(r, i, 5), sizeof(e.detail));
	return w->cb(&e, w->arg);
}

static int pg_audit_foreach(struct js_store *s, const uint8_t *dev_eui,
			    int (*cb)(const struct js_audit_entry *e, void *arg), void *arg)
{
	struct audit_walk w = { cb, arg };

	return js_store__pg_read(s->be, "SELECT id, at, dev_eui, event, actor, detail FROM audit"
				 " WHERE $1::bytea IS NULL OR dev_eui=$1 ORDER BY id",
				 JS_PG_ARGS(JS_PG_B(dev_eui, dev_eui != NULL ? LW_EUI_LEN : 0)),
				 false, audit_row, &w);
}

const struct js_store_ops js_store__pg_ops = {
	.name = "postgresql",
	.inline_commit = false,
	.open = pg_open,
	.close = pg_close,
	.device_get = pg_device_get,
	.device_get_many = pg_device_get_many,
	.devices_add = js_store__dev_add,
	.devices_import = js_store__dev_import,
	.device_delete = js_store__dev_delete,
	.device_foreach = pg_device_foreach,
	.reset_nonces = pg_reset_nonces,
	.bump_join_nonces = js_store__pg_bump_join_nonces,
	.apply_batch = js_store__pg_apply_batch,
	.sessions_expire = pg_sessions_expire,
	.session_get = pg_session_get,
	.audit = pg_audit,
	.audit_foreach = pg_audit_foreach,
	.rewrap = js_store__pg_rewrap,
	.outbox_fetch = js_store__pg_outbox_fetch,
	.check = js_store__pg_check,
	.reg = &js_store__pg_reg_ops,
	.dev_sql = &pg_dev_sql,
	.apikey = &js_store__pg_apikey_ops,
};
