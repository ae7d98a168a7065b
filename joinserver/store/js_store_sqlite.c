/*
 * js_store_sqlite.c - the SQLite backend of js_store: one file, WAL, synchronous=FULL. This file
 * holds the connections, the statement helpers every file of the backend uses, and the device,
 * session and audit calls; js_store_sqlite_internal.h lists the others.
 *
 * PURPOSE
 *	One writer connection, used by the committer thread (group commit) and by the administrative
 *	calls, serialised by a mutex. A small pool of read-only connections serves device_get,
 *	device_get_many (a group's devices in one read transaction), session_get, owner_head and the
 *	walks; WAL lets them read the last committed state while the writer works. Each connection keeps its hot statements prepared, so a device read is a bind,
 *	a step and a copy; the writer keeps every statement it ran (js_store__sq_stmt).
 *
 * SECURITY
 *	- Every value is bound, never formatted into SQL; rows read back are bounds-checked before a
 *	  byte is copied into the fixed-size structs of js_store.h.
 *	- Administrative writes run in one transaction each (js_store__sq_wbegin/wend): all of a
 *	  batch or none of it, with its audit entries.
 *	- The file's mode, the migrations, the master key's check value: js_store_sqlite_schema.c.
 *	  The compare-and-swap of the nonce state: js_store_sqlite_commit.c.
 */
#include "store/js_store_sqlite_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_log.h"


/* Columns of DEV_COLS, in order. */
enum {
	DC_DEV_EUI,
	DC_JOIN_EUI,
	DC_MAC_VERSION,
	DC_ROOT_TOKEN,
	DC_CREATED_AT,
	DC_VERSION,
	DC_DEV_NONCE,
	DC_JOIN_NONCE,
	DC_RJCOUNT1,
	DC_HIST,
	DC_SESS_TOKEN,
	DC_ROW,			/* the rowid (DEV_READ_COLS), js_device.row */
	DC_POS,			/* a group read's (many_sql): the DevEUI's place in the group */
};
#define DEV_COLS "dev_eui, join_eui, mac_version, root_token, created_at, version, " \
		 "dev_nonce_last, join_nonce_last, rjcount1_last, dn_hist, sess_token"
/* what row_device reads: DEV_COLS and the rowid, which the commit's update seeks directly (the
 * table's own key) instead of through the dev_eui index; VACUUM may renumber it, which the
 * commit then finds (no row) and retries by dev_eui (js_store_sqlite_commit.c) */
#define DEV_READ_COLS DEV_COLS ", devices.rowid"
#define SQ_DEV_INSERT "INSERT INTO devices(" DEV_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, 0, -1, -1," \
		      " -1, X'', NULL)"

int js_store__sq_fail(sqlite3 *db, const char *what)
{
	/* rate-limited: a full disk fails every commit, and must not flood the log */
	dj_warn_limited("store: %s: %s", what, db != NULL ? sqlite3_errmsg(db) : "no connection");
	return DJ_ESQL;
}

int js_store__sq_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return js_store__sq_fail(db, "exec");
	return DJ_EOK;
}

int js_store__sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return js_store__sq_fail(db, "prepare");
	return DJ_EOK;
}

int js_store__sq_done(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? DJ_EOK : js_store__sq_fail(db, "step");

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

/* bind_vals - bind v[0..n) to ?1..?n (blobs of length 0 as NULL, a NULL text as "") */
static int bind_vals(sqlite3_stmt *st, const struct js_store__sq_val *v, size_t n)
{
	int rc = SQLITE_OK;

	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		int k = (int)i + 1;

		switch (v[i].type) {
		case JS_SQ_TYPE_INT:
			rc = sqlite3_bind_int64(st, k, v[i].i);
			break;
		case JS_SQ_TYPE_BLOB:
			rc = v[i].len == 0 ? sqlite3_bind_null(st, k)
					   : sqlite3_bind_blob(st, k, v[i].p, (int)v[i].len,
							       SQLITE_STATIC);
			break;
		case JS_SQ_TYPE_TEXT:
			rc = sqlite3_bind_text(st, k, v[i].p != NULL ? v[i].p : "", -1,
					       SQLITE_STATIC);
			break;
		}
	}
	return rc == SQLITE_OK ? DJ_EOK : DJ_ESQL;
}

int js_store__sq_stmt(struct js_store__sq *q, const char *sql, const struct js_store__sq_val *v,
		      size_t n, sqlite3_stmt **st)
{
	sqlite3_stmt *p = NULL;
	size_t i;
	int ret;

	for (i = 0; i < q->cache_n && q->cache[i].sql != sql; i++)
		;
	if (i < q->cache_n) {
		p = q->cache[i].st;
	} else {
		ret = js_store__sq_prepare(q->w, sql, &p);
		if (ret != DJ_EOK)
			return ret;
		if (q->cache_n < JS_SQ_CACHE_MAX) {
			q->cache[q->cache_n].sql = sql;
			q->cache[q->cache_n++].st = p;
		}
	}
	ret = bind_vals(p, v, n);
	if (ret != DJ_EOK) {
		js_store__sq_release(q, p);
		return js_store__sq_fail(q->w, "bind");
	}
	*st = p;
	return DJ_EOK;
}

void js_store__sq_release(struct js_store__sq *q, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < q->cache_n; i++) {
		if (q->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	}
	sqlite3_finalize(st);	/* the cache was full */
}

int js_store__sq_change(struct js_store__sq *q, const char *sql,
			const struct js_store__sq_val *v, size_t n, uint64_t *changes)
{
	sqlite3_stmt *st = NULL;
	int ret, rc;

	ret = js_store__sq_stmt(q, sql, v, n, &st);
	if (ret != DJ_EOK)
		return ret;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		ret = DJ_EOK;
	else if (rc == SQLITE_CONSTRAINT)
		ret = DJ_EEXIST;
	else
		ret = js_store__sq_fail(q->w, "step");
	js_store__sq_release(q, st);
	if (ret == DJ_EOK && changes != NULL)
		*changes = (uint64_t)sqlite3_changes(q->w);
	return ret;
}

int js_store__sq_run(struct js_store__sq *q, const char *sql, const struct js_store__sq_val *v,
		     size_t n)
{
	return js_store__sq_change(q, sql, v, n, NULL);
}

/* walk - step a bound query on \p db, calling \p row for each row (only the first if \p one) */
static int walk(sqlite3 *db, sqlite3_stmt *st, bool one, js_store__sq_row_fn row, void *arg)
{
	int ret, rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = row(st, arg);
		if (ret != DJ_EOK || one)
			return ret;
	}
	if (rc != SQLITE_DONE)
		return js_store__sq_fail(db, "query");
	return one ? DJ_ENOENT : DJ_EOK;
}

int js_store__sq_rows(struct js_store__sq *q, const char *sql, const struct js_store__sq_val *v,
		      size_t n, bool one, js_store__sq_row_fn row, void *arg)
{
	sqlite3_stmt *st = NULL;
	int ret = js_store__sq_stmt(q, sql, v, n, &st);

	if (ret == DJ_EOK)
		ret = walk(q->w, st, one, row, arg);
	js_store__sq_release(q, st);
	return ret;
}

int js_store__sq_read(struct js_store__sq *q, const char *sql, const struct js_store__sq_val *v,
		      size_t n, js_store__sq_row_fn row, void *arg)
{
	struct js_store__sq_reader *r = js_store__sq_reader_get(q);
	sqlite3_stmt *st = NULL;
	int ret;

	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		ret = js_store__sq_fail(r->db, "prepare");
	else if (bind_vals(st, v, n) != DJ_EOK)
		ret = js_store__sq_fail(r->db, "bind");
	else
		ret = walk(r->db, st, false, row, arg);
	sqlite3_finalize(st);
	js_store__sq_reader_put(q, r);
	return ret;
}

/* reader_open - one read-only pooled connection with its prepared statements */
static int reader_open(const char *path, struct js_store__sq_reader *r)
{
	int ret;

	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return js_store__sq_fail(r->db, "open reader");
	sqlite3_busy_timeout(r->db, SQ_BUSY_TIMEOUT_MS);
	ret = js_store__sq_prepare(r->db, "SELECT " DEV_READ_COLS " FROM devices WHERE dev_eui=?",
				   &r->dev_get);
	if (ret == DJ_EOK)
		ret = js_store__sq_prepare(r->db,
					   "SELECT dev_eui, created_at, expires_at, session_token"
					   " FROM sessions WHERE dev_eui=substr(?1, 1, 8)"
					   " AND session_id=?1",
					   &r->sess_get);
	if (ret == DJ_EOK)
		ret = js_store__sq_prepare(r->db, "BEGIN", &r->begin);
	if (ret == DJ_EOK)
		ret = js_store__sq_prepare(r->db, "COMMIT", &r->end);
	return ret;
}

/* The writer's hot statements, prepared once at open: each is the member at off. */
static const struct {
	size_t off;
	const char *sql;
} kept[] = {
	{ offsetof(struct js_store__sq, begin), "BEGIN IMMEDIATE" },
	{ offsetof(struct js_store__sq, commit), "COMMIT" },
	{ offsetof(struct js_store__sq, rollback), "ROLLBACK" },
	{ offsetof(struct js_store__sq, upd),
	  "UPDATE devices SET version=version+1, dev_nonce_last=?1, join_nonce_last=?2,"
	  " rjcount1_last=?3, dn_hist=?4, sess_token=?5 WHERE dev_eui=?6 AND version=?7" },
	/* the same, the row sought by the rowid the read gave (js_device.row) */
	{ offsetof(struct js_store__sq, upd_row),
	  "UPDATE devices SET version=version+1, dev_nonce_last=?1, join_nonce_last=?2,"
	  " rjcount1_last=?3, dn_hist=?4, sess_token=?5 WHERE rowid=?8 AND dev_eui=?6"
	  " AND version=?7" },
	{ offsetof(struct js_store__sq, exists), "SELECT 1 FROM devices WHERE dev_eui=?" },
	/* an upsert, not INSERT OR REPLACE: the same row when the SessionKeyID is known (as the
	 * other backends), but no statement journal and no delete path on each insert */
	{ offsetof(struct js_store__sq, sess_put),
	  "INSERT INTO sessions(session_id, dev_eui, created_at, expires_at, session_token)"
	  " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(dev_eui, session_id) DO UPDATE SET"
	  " created_at=excluded.created_at, expires_at=excluded.expires_at,"
	  " session_token=excluded.session_token" },
	{ offsetof(struct js_store__sq, ob_put), "INSERT INTO outbox(at, body) VALUES(?1, ?2)" },
	{ offsetof(struct js_store__sq, ob_del), "DELETE FROM outbox WHERE id=?1" },
};

/* kept_stmt - the member of \p q that holds kept[i] */
static sqlite3_stmt **kept_stmt(struct js_store__sq *q, size_t i)
{
	return (sqlite3_stmt **)(void *)((char *)q + kept[i].off);
}

/* sq_close - finalise every statement and close every connection (half-built is fine) */
static void sq_close(struct js_store *s)
{
	struct js_store__sq *q = s->be;

	if (q == NULL)
		return;
	js_store__sq_ckpt_close(q);
	for (size_t i = 0; i < JS_SQ_READERS; i++) {
		sqlite3_finalize(q->rd[i].dev_get);
		sqlite3_finalize(q->rd[i].sess_get);
		sqlite3_finalize(q->rd[i].own_head);
		for (size_t k = 0; k < JS_SQ_MANY_N; k++)
			sqlite3_finalize(q->rd[i].many[k]);
		sqlite3_finalize(q->rd[i].begin);
		sqlite3_finalize(q->rd[i].end);
		sqlite3_close(q->rd[i].db);
	}
	for (size_t i = 0; i < DJ_ARRAY_LEN(kept); i++)
		sqlite3_finalize(*kept_stmt(q, i));
	for (size_t i = 0; i < q->cache_n; i++)
		sqlite3_finalize(q->cache[i].st);
	sqlite3_close(q->w);
	free(q->path);
	free(q->wal_path);
	if (q->wlock_init)
		pthread_mutex_destroy(&q->wlock);
	if (q->rlock_init) {
		pthread_mutex_destroy(&q->rlock);
		pthread_cond_destroy(&q->rcond);
	}
	free(q);
	s->be = NULL;
}

static pthread_once_t sq_config_once = PTHREAD_ONCE_INIT;

/*
 * sq_config - once per process, before SQLite's first use: no memory statistics. With them on,
 * every sqlite3_malloc and sqlite3_free takes a process-wide mutex to count bytes that nothing
 * here reads (no sqlite3_memory_used, sqlite3_status or soft heap limit); about 26 of each per
 * JoinReq (docs/performance.md, step 18). If SQLite was already initialised in this
 * process (a program that used it before opening the store), the call is refused and nothing
 * changes.
 */
static void sq_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* sq_open - open or create the file, migrate, check the KCV, prepare everything */
static int sq_open(struct js_store *s, const struct js_store_props *props)
{
	struct js_store__sq *q;
	int ret = DJ_ENOMEM;

	pthread_once(&sq_config_once, sq_config);
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		goto out;
	s->be = q;
	if (pthread_mutex_init(&q->wlock, NULL) != 0)
		goto out;
	q->wlock_init = true;
	if (pthread_mutex_init(&q->rlock, NULL) != 0)
		goto out;
	if (pthread_cond_init(&q->rcond, NULL) != 0) {
		pthread_mutex_destroy(&q->rlock);
		goto out;
	}
	q->rlock_init = true;

	ret = js_store__sq_ensure_file(props->path);
	if (ret != DJ_EOK)
		goto out;
	/* the writer's VFS writes a WAL frame in one call (js_store_sqlite_vfs.c) */
	if (sqlite3_open_v2(props->path, &q->w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    js_store__sq_vfs()) != SQLITE_OK) {
		ret = js_store__sq_fail(q->w, "open");
		goto out;
	}
	sqlite3_busy_timeout(q->w, SQ_BUSY_TIMEOUT_MS);
	/* a daemon checks the file before anything reads its tables */
	ret = props->verify ? js_store__sq_verify_sound(q->w, props->path) : DJ_EOK;
	if (ret == DJ_EOK)
		ret = js_store__sq_schema_open(q->w, props->kcv);
	if (ret == DJ_EOK && props->verify)
		ret = js_store__sq_verify_writable(s, props->path);
	if (ret == DJ_EOK)
		ret = js_store__sq_outbox_open(s);
	if (ret == DJ_EOK)
		ret = js_store__sq_guard_open(s, props->path);
	if (ret != DJ_EOK)
		goto out;
	/* synchronous=FULL is set (schema_open) and the log is open: one write per commit */
	if (js_store__sq_vfs_defer(q->w) != DJ_EOK)
		dj_warn("store: %s: the log's frames are written one by one", props->path);

	for (size_t i = 0; ret == DJ_EOK && i < DJ_ARRAY_LEN(kept); i++)
		ret = js_store__sq_prepare(q->w, kept[i].sql, kept_stmt(q, i));
	for (size_t i = 0; ret == DJ_EOK && i < JS_SQ_READERS; i++)
		ret = reader_open(props->path, &q->rd[i]);
	if (ret == DJ_EOK)
		ret = js_store__sq_ckpt_open(s, props->path);
out:
	return ret;	/* on failure js_store.c calls sq_close() */
}

struct js_store__sq_reader *js_store__sq_reader_get(struct js_store__sq *q)
{
	struct js_store__sq_reader *r = NULL;

	pthread_mutex_lock(&q->rlock);
	for (;;) {
		for (size_t i = 0; i < JS_SQ_READERS; i++) {
			if (!q->rd[i].busy) {
				r = &q->rd[i];
				break;
			}
		}
		if (r != NULL)
			break;
		pthread_cond_wait(&q->rcond, &q->rlock);
	}
	r->busy = true;
	pthread_mutex_unlock(&q->rlock);
	return r;
}

void js_store__sq_reader_put(struct js_store__sq *q, struct js_store__sq_reader *r)
{
	pthread_mutex_lock(&q->rlock);
	r->busy = false;
	pthread_cond_signal(&q->rcond);
	pthread_mutex_unlock(&q->rlock);
}

const uint8_t *js_store__sq_blob_col(sqlite3_stmt *st, int col, size_t *len)
{
	const uint8_t *p = sqlite3_column_blob(st, col);

	*len = p != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;
	return p;
}

/* row_device - check a DEV_COLS row against the struct's bounds, then copy it into out */
static int row_device(sqlite3_stmt *st, struct js_device *out)
{
	size_t eui_len, join_len, root_len, hist_len, sess_len;
	const uint8_t *eui = js_store__sq_blob_col(st, DC_DEV_EUI, &eui_len);
	const uint8_t *join = js_store__sq_blob_col(st, DC_JOIN_EUI, &join_len);
	const uint8_t *root = js_store__sq_blob_col(st, DC_ROOT_TOKEN, &root_len);
	const uint8_t *hist = js_store__sq_blob_col(st, DC_HIST, &hist_len);
	const uint8_t *sess = js_store__sq_blob_col(st, DC_SESS_TOKEN, &sess_len);
	int64_t mv = sqlite3_column_int64(st, DC_MAC_VERSION);

	if (eui_len != LW_EUI_LEN || join_len != LW_EUI_LEN || root_len > JS_TOKEN_MAX ||
	    hist_len % JS_SQ_HIST_PAIR != 0 || hist_len / JS_SQ_HIST_PAIR > JS_DEVNONCE_HIST_MAX ||
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
	out->created_at = sqlite3_column_int64(st, DC_CREATED_AT);
	out->st.version = (uint64_t)sqlite3_column_int64(st, DC_VERSION);
	out->st.dev_nonce_last = (int32_t)sqlite3_column_int64(st, DC_DEV_NONCE);
	out->st.join_nonce_last = sqlite3_column_int64(st, DC_JOIN_NONCE);
	out->st.rjcount1_last = (int32_t)sqlite3_column_int64(st, DC_RJCOUNT1);
	out->st.hist_len = (uint32_t)(hist_len / JS_SQ_HIST_PAIR);
	js_store__hist_decode(hist, out->st.hist_len, out->st.hist);
	out->st.sess_token_len = (uint32_t)sess_len;
	if (sess_len > 0)
		memcpy(out->st.sess_token, sess, sess_len);
	out->row = sqlite3_column_int64(st, DC_ROW);
	return DJ_EOK;
}

/* dev_read - one device on reader r (in its open read transaction, or in one of its own) */
static int dev_read(struct js_store__sq_reader *r, const uint8_t dev_eui[LW_EUI_LEN],
		    struct js_device *out)
{
	sqlite3_stmt *st = r->dev_get;
	int ret;
	int rc;

	sqlite3_bind_blob(st, 1, dev_eui, LW_EUI_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = row_device(st, out);
	else if (rc == SQLITE_DONE)
		ret = DJ_ENOENT;
	else
		ret = js_store__sq_fail(r->db, "device_get");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

/* sq_device_get - one device through a pooled reader's prepared statement */
static int sq_device_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			 struct js_device *out)
{
	struct js_store__sq *q = s->be;
	struct js_store__sq_reader *r = js_store__sq_reader_get(q);
	int ret = dev_read(r, dev_eui, out);

	js_store__sq_reader_put(q, r);
	return ret;
}

/*
 * read_end - end the read transaction of r (BEGIN ... COMMIT), so that a reader always goes
 * back to the pool in autocommit mode: one left in a transaction would read its old snapshot
 * for good and pin the log against the checkpointer. SQLite may have ended it already (an
 * error rolls back); a COMMIT that fails is followed by a ROLLBACK.
 */
static void read_end(struct js_store__sq_reader *r)
{
	if (!sqlite3_get_autocommit(r->db) && js_store__sq_done(r->db, r->end) != DJ_EOK)
		(void)sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * many_sql - the group read of k DevEUIs: a VALUES list of (place, ?place+1) walked in order (a
 * co-routine, CROSS JOIN keeps it the outer loop), each looked up in the devices' key index
 * ("SEARCH devices USING INDEX sqlite_autoindex_devices_1 (dev_eui=?)"). One row per DevEUI
 * found, carrying its place, so a DevEUI asked twice has two rows and a missing one none; an
 * unbound (NULL) parameter matches nothing. The places are this text's own constants; the
 * DevEUIs are bound.
 */
static int many_sql(char *buf, size_t len, unsigned k)
{
	size_t off = 0;
	int w = snprintf(buf, len, "SELECT " DEV_READ_COLS ", v.column1 FROM (VALUES");

	for (unsigned i = 0; w > 0 && (size_t)w < len - off && i < k; i++) {
		off += (size_t)w;
		w = snprintf(buf + off, len - off, "%s(%u,?%u)", i > 0 ? "," : "", i, i + 1);
	}
	if (w > 0 && (size_t)w < len - off) {
		off += (size_t)w;
		w = snprintf(buf + off, len - off,
			     ") v CROSS JOIN devices ON devices.dev_eui=v.column2");
	}
	return w > 0 && (size_t)w < len - off ? DJ_EOK : DJ_ENOMEM;
}

_Static_assert(JS_SQ_MANY_MAX == 4 << (JS_SQ_MANY_N - 1), "the largest group statement");

/* many_stmt - reader r's group read for at most k = 4 << i DevEUIs, prepared on first use */
static sqlite3_stmt *many_stmt(struct js_store__sq_reader *r, size_t i)
{
	char sql[1024];

	if (r->many[i] == NULL && (many_sql(sql, sizeof(sql), 4u << i) != DJ_EOK ||
				   js_store__sq_prepare(r->db, sql, &r->many[i]) != DJ_EOK))
		return NULL;
	return r->many[i];
}

/*
 * many_read - devices dev_eui[0..n) (n <= JS_SQ_MANY_MAX) with one statement of r: one step per
 * device found instead of a statement run per device (its start, halt, reset and bindings:
 * ~2.8 k instructions each, docs/performance.md step 22). Each row goes to the place it
 * carries; a place without a row is DJ_ENOENT. If the walk fails, the places not reached get
 * the single read's fault, DJ_ESQL. Returns DJ_ENOENT when there is no statement (not
 * prepared): nothing was read.
 */
static int many_read(struct js_store__sq_reader *r, size_t n, const uint8_t *const dev_eui[],
		     struct js_device *const out[], int rets[])
{
	bool seen[JS_SQ_MANY_MAX] = { false };
	sqlite3_stmt *st;
	size_t i = 0;
	int rc;

	while ((4u << i) < n)
		i++;
	st = many_stmt(r, i);
	if (st == NULL)
		return DJ_ENOENT;
	for (i = 0; i < n; i++) {
		sqlite3_bind_blob(st, (int)i + 1, dev_eui[i], LW_EUI_LEN, SQLITE_STATIC);
		rets[i] = DJ_ENOENT;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t pos = sqlite3_column_int64(st, DC_POS);

		if (pos < 0 || (size_t)pos >= n || seen[pos]) {
			rc = SQLITE_CORRUPT;	/* not a row this statement makes */
			break;
		}
		seen[pos] = true;
		rets[pos] = row_device(st, out[pos]);
	}
	if (rc != SQLITE_DONE) {
		(void)js_store__sq_fail(r->db, "device_get_many");
		for (i = 0; i < n; i++)
			if (!seen[i])
				rets[i] = DJ_ESQL;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);	/* a smaller group next: its places past n are NULL */
	return DJ_EOK;
}

/*
 * sq_device_get_many - n devices on one pooled reader at one snapshot: up to JS_SQ_MANY_MAX (an
 * engine group) with one statement, its own read transaction; more in one read transaction
 * (BEGIN ... COMMIT) of one statement per JS_SQ_MANY_MAX. The WAL read lock, the check of the
 * log's header (and the page cache reset it brings after a commit) are paid once, not once per
 * device. The snapshot is that of the first read, taken after every request of the group
 * arrived; the committer's compare-and-swap on version catches a state that moved since, as it
 * does for a single read. If BEGIN fails, each statement is its own transaction; if a group
 * statement cannot be prepared, each device is read by itself, as in sq_device_get.
 */
static int sq_device_get_many(struct js_store *s, size_t n, const uint8_t *const dev_eui[],
			      struct js_device *const out[], int rets[])
{
	struct js_store__sq *q = s->be;
	struct js_store__sq_reader *r = js_store__sq_reader_get(q);

	if (n > JS_SQ_MANY_MAX)
		(void)js_store__sq_done(r->db, r->begin);
	for (size_t i = 0; i < n; i += JS_SQ_MANY_MAX) {
		size_t k = n - i < JS_SQ_MANY_MAX ? n - i : JS_SQ_MANY_MAX;

		if (many_read(r, k, dev_eui + i, out + i, rets + i) == DJ_EOK)
			continue;
		if (sqlite3_get_autocommit(r->db))
			(void)js_store__sq_done(r->db, r->begin);
		for (size_t j = i; j < i + k; j++)
			rets[j] = dev_read(r, dev_eui[j], out[j]);
	}
	read_end(r);
	js_store__sq_reader_put(q, r);
	return DJ_EOK;
}

#define SQ_AUDIT_INSERT "INSERT INTO audit(at, dev_eui, event, actor, detail) VALUES(?1, ?2, ?3," \
			" ?4, ?5)"

int js_store__sq_audit_put(struct js_store *s, const uint8_t *dev_eui, const char *event,
			   const char *actor, const char *detail)
{
	return js_store__sq_run(s->be, SQ_AUDIT_INSERT,
				JS_SQ_ARGS(JS_SQ_I(js_store_now(s)),
					   JS_SQ_B(dev_eui, dev_eui != NULL ? LW_EUI_LEN : 0),
					   JS_SQ_T(event), JS_SQ_T(actor), JS_SQ_T(detail)));
}

int js_store__sq_wbegin(struct js_store__sq *q)
{
	int ret;

	pthread_mutex_lock(&q->wlock);
	ret = js_store__sq_done(q->w, q->begin);
	if (ret != DJ_EOK)
		pthread_mutex_unlock(&q->wlock);
	return ret;
}

int js_store__sq_wend(struct js_store *s, int ret)
{
	struct js_store__sq *q = s->be;
	bool pend = q->xo_pend;
	uint64_t rows = q->xo_rows, written = q->xo_written, dropped = q->xo_dropped;

	q->xo_pend = false;
	q->xo_rows = q->xo_written = q->xo_dropped = 0;
	if (ret == DJ_EOK)
		ret = js_store__sq_guard_check(s);
	if (ret == DJ_EOK)
		ret = js_store__sq_done(q->w, q->commit);
	if (ret != DJ_EOK && sqlite3_get_autocommit(q->w) == 0)
		(void)js_store__sq_done(q->w, q->rollback);
	if (ret != DJ_EOK)
		js_store__sq_guard_rescue(s);
	if (ret == DJ_EOK && pend)
		q->outbox_n = rows;
	pthread_mutex_unlock(&q->wlock);
	if (ret == DJ_EOK && pend)
		js_store__outbox_count(s, written, dropped, 0, rows);
	return ret;
}

int js_store__sq_batch(struct js_store *s, size_t n,
		       int (*item)(struct js_store *s, size_t i, void *arg), void *arg, size_t *bad)
{
	size_t i = 0;
	int ret = js_store__sq_wbegin(s->be);

	if (ret != DJ_EOK)
		return ret;
	for (; i < n; i++) {
		ret = item(s, i, arg);
		if (ret != DJ_EOK)
			break;
	}
	*bad = i < n ? i : 0;
	return js_store__sq_wend(s, ret);
}

/* The tombstone of a re-imported DevEUI carried into its new row: the version moves on (so that
 * a compare-and-swap read before the delete fails), the JoinNonce always continues, the
 * DevNonce state and RJcount1 unless ?2 (JS_IMPORT_FORGET_NONCES). */
#define SQ_DEV_RESUME "UPDATE devices SET version=t.version+1, join_nonce_last=t.join_nonce_last," \
		      " dev_nonce_last=CASE WHEN ?2 THEN -1 ELSE t.dev_nonce_last END," \
		      " rjcount1_last=CASE WHEN ?2 THEN -1 ELSE t.rjcount1_last END," \
		      " dn_hist=CASE WHEN ?2 THEN X'' ELSE t.dn_hist END" \
		      " FROM tombstones AS t WHERE devices.dev_eui=?1 AND t.dev_eui=?1"

/* --- the statements under the shared device rules (js_store_dev_sql) ---------------------- */

static int sq_dev_wbegin(struct js_store *s)
{
	return js_store__sq_wbegin(s->be);
}

static int sq_dev_row_insert(struct js_store *s, const struct js_device *d)
{
	return js_store__sq_run(s->be, SQ_DEV_INSERT,
				JS_SQ_ARGS(JS_SQ_EUI(d->dev_eui), JS_SQ_EUI(d->join_eui),
					   JS_SQ_I(d->mac_version),
					   JS_SQ_B(d->root_token, d->root_token_len),
					   JS_SQ_I(d->created_at != 0 ? d->created_at
								      : js_store_now(s))));
}

static int sq_dev_resume(struct js_store *s, const uint8_t *dev_eui, bool forget, uint64_t *n)
{
	return js_store__sq_change(s->be, SQ_DEV_RESUME,
				   JS_SQ_ARGS(JS_SQ_EUI(dev_eui), JS_SQ_I(forget)), n);
}

static int sq_dev_tombstone_drop(struct js_store *s, const uint8_t *dev_eui)
{
	return js_store__sq_run(s->be, "DELETE FROM tombstones WHERE dev_eui=?1",
				JS_SQ_ARGS(JS_SQ_EUI(dev_eui)));
}

static int sq_dev_tombstone_put(struct js_store *s, const uint8_t *dev_eui)
{
	return js_store__sq_run(s->be, "INSERT OR REPLACE INTO tombstones(dev_eui, version,"
				" dev_nonce_last, join_nonce_last, rjcount1_last, dn_hist, deleted_at)"
				" SELECT dev_eui, version, dev_nonce_last, join_nonce_last,"
				" rjcount1_last, dn_hist, ?2 FROM devices WHERE dev_eui=?1",
				JS_SQ_ARGS(JS_SQ_EUI(dev_eui), JS_SQ_I(js_store_now(s))));
}

static int sq_dev_row_delete(struct js_store *s, const uint8_t *dev_eui, uint64_t *n)
{
	return js_store__sq_change(s->be, "DELETE FROM devices WHERE dev_eui=?1",
				   JS_SQ_ARGS(JS_SQ_EUI(dev_eui)), n);
}

static const struct js_store_dev_sql sq_dev_sql = {
	.batch = js_store__sq_batch,
	.audit_put = js_store__sq_audit_put,
	.wbegin = sq_dev_wbegin,
	.wend = js_store__sq_wend,
	.row_insert = sq_dev_row_insert,
	.resume = sq_dev_resume,
	.tombstone_drop = sq_dev_tombstone_drop,
	.tombstone_put = sq_dev_tombstone_put,
	.row_delete = sq_dev_row_delete,
};

/* sq_sessions_expire - delete the sessions whose expiry has passed */
static int sq_sessions_expire(struct js_store *s, int64_t now, uint64_t *count)
{
	int ret = js_store__sq_wbegin(s->be);

	if (ret != DJ_EOK)
		return ret;
	return js_store__sq_wend(s, js_store__sq_change(s->be, "DELETE FROM sessions WHERE"
							 " expires_at <= ?1",
							 JS_SQ_ARGS(JS_SQ_I(now)), count));
}

/* A device walk: the caller's callback and the struct each row is read into. */
struct dev_walk {
	int (*cb)(const struct js_device *d, void *arg);
	void *arg;
	struct js_device d;
};

/* dev_row - a row callback: one devices row to the caller */
static int dev_row(sqlite3_stmt *st, void *arg)
{
	struct dev_walk *w = arg;
	int ret = row_device(st, &w->d);

	return ret != DJ_EOK ? ret : w->cb(&w->d, w->arg);
}

/* sq_device_foreach - walk devices in DevEUI order on a pooled reader */
static int sq_device_foreach(struct js_store *s, int (*cb)(const struct js_device *d, void *arg),
			     void *arg)
{
	struct dev_walk *w = malloc(sizeof(*w));
	int ret;

	if (w == NULL)
		return DJ_ENOMEM;
	w->cb = cb;
	w->arg = arg;
	ret = js_store__sq_read(s->be, "SELECT " DEV_READ_COLS " FROM devices ORDER BY dev_eui",
				JS_SQ_NONE, dev_row, w);
	free(w);	/* root tokens are wrapped; nothing secret to wipe */
	return ret;
}

/* sq_reset_nonces - forget DevNonces and RJcount1 of one device or all, keep JoinNonce */
static int sq_reset_nonces(struct js_store *s, const uint8_t *dev_eui, const char *actor,
			   uint64_t *count)
{
	struct js_store__sq *q = s->be;
	size_t eui_len = dev_eui != NULL ? LW_EUI_LEN : 0;	/* 0: NULL, every device */
	uint64_t n = 0;
	int ret;

	ret = js_store__sq_wbegin(q);
	if (ret != DJ_EOK)
		return ret;
	ret = js_store__sq_change(q, "UPDATE devices SET dev_nonce_last=-1, rjcount1_last=-1,"
				  " dn_hist=X'', version=version+1 WHERE ?1 IS NULL OR dev_eui=?1",
				  JS_SQ_ARGS(JS_SQ_B(dev_eui, eui_len)), &n);
	if (ret == DJ_EOK && dev_eui != NULL && n == 0)
		ret = DJ_ENOENT;
	if (ret == DJ_EOK)
		ret = js_store__sq_run(q, "INSERT INTO audit(at, dev_eui, event, actor, detail)"
				       " SELECT ?1, dev_eui, ?2, ?3, '' FROM devices"
				       " WHERE ?4 IS NULL OR dev_eui=?4 ORDER BY dev_eui",
				       JS_SQ_ARGS(JS_SQ_I(js_store_now(s)),
						  JS_SQ_T(JS_NONCE_RESET_EVENT), JS_SQ_T(actor),
						  JS_SQ_B(dev_eui, eui_len)));
	ret = js_store__sq_wend(s, ret);
	if (ret == DJ_EOK && count != NULL)
		*count = n;
	return ret;
}

/* sq_session_get - one session through a pooled reader */
static int sq_session_get(struct js_store *s, const uint8_t *session_id, size_t len,
			  struct js_session *out)
{
	struct js_store__sq *q = s->be;
	struct js_store__sq_reader *r = js_store__sq_reader_get(q);
	sqlite3_stmt *st = r->sess_get;
	const uint8_t *eui, *tok;
	size_t eui_len, tok_len;
	int ret;
	int rc;

	sqlite3_bind_blob(st, 1, session_id, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = DJ_ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = js_store__sq_fail(r->db, "session_get");
		goto out;
	}
	eui = js_store__sq_blob_col(st, 0, &eui_len);
	tok = js_store__sq_blob_col(st, 3, &tok_len);
	if (eui_len != LW_EUI_LEN || tok_len > JS_TOKEN_MAX) {
		ret = DJ_EMALFORMED;
		goto out;
	}
	memcpy(out->session_id, session_id, len);
	out->session_id_len = (uint32_t)len;
	memcpy(out->dev_eui, eui, LW_EUI_LEN);
	out->created_at = sqlite3_column_int64(st, 1);
	out->expires_at = sqlite3_column_int64(st, 2);
	out->session_token_len = (uint32_t)tok_len;
	if (tok_len > 0)
		memcpy(out->session_token, tok, tok_len);
	ret = DJ_EOK;
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	js_store__sq_reader_put(q, r);
	return ret;
}

/* sq_audit - append one administrative audit entry (its own transaction) */
static int sq_audit(struct js_store *s, const uint8_t *dev_eui, const char *event,
		    const char *actor, const char *detail)
{
	int ret = js_store__sq_wbegin(s->be);

	if (ret != DJ_EOK)
		return ret;
	return js_store__sq_wend(s, js_store__sq_audit_put(s, dev_eui, event, actor, detail));
}

/* An audit walk: the caller's callback. */
struct audit_walk {
	int (*cb)(const struct js_audit_entry *e, void *arg);
	void *arg;
};

/* audit_row - a row callback: one audit row to the caller */
static int audit_row(sqlite3_stmt *st, void *arg)
{
	const struct audit_walk *w = arg;
	struct js_audit_entry e;
	size_t eui_len;
	const uint8_t *eui = js_store__sq_blob_col(st, 2, &eui_len);

	memset(&e, 0, sizeof(e));
	e.id = sqlite3_column_int64(st, 0);
	e.at = sqlite3_column_int64(st, 1);
	e.has_dev_eui = eui_len == LW_EUI_LEN;
	if (e.has_dev_eui)
		memcpy(e.dev_eui, eui, LW_EUI_LEN);
	js_store__strlcpy(e.event, (const char *)sqlite3_column_text(st, 3), sizeof(e.event));
	js_store__strlcpy(e.actor, (const char *)sqlite3_column_text(st, 4), sizeof(e.actor));
	js_store__strlcpy(e.detail, (const char *)sqlite3_column_text(st, 5), sizeof(e.detail));
	return w->cb(&e, w->arg);
}

/* sq_audit_foreach - walk the audit log, oldest first, on a pooled reader */
static int sq_audit_foreach(struct js_store *s, const uint8_t *dev_eui,
			    int (*cb)(const struct js_audit_entry *e, void *arg), void *arg)
{
	struct audit_walk w = { cb, arg };

	return js_store__sq_read(s->be, "SELECT id, at, dev_eui, event, actor, detail FROM audit"
				 " WHERE ?1 IS NULL OR dev_eui=?1 ORDER BY id",
				 JS_SQ_ARGS(JS_SQ_B(dev_eui, dev_eui != NULL ? LW_EUI_LEN : 0)),
				 audit_row, &w);
}

const struct js_store_ops js_store__sqlite_ops = {
	.name = "sqlite",
	.inline_commit = false,
	.open = sq_open,
	.close = sq_close,
	.device_get = sq_device_get,
	.device_get_many = sq_device_get_many,
	.devices_add = js_store__dev_add,
	.devices_import = js_store__dev_import,
	.device_delete = js_store__dev_delete,
	.device_foreach = sq_device_foreach,
	.reset_nonces = sq_reset_nonces,
	.bump_join_nonces = js_store__sq_bump_join_nonces,
	.apply_batch = js_store__sq_apply_batch,
	.sessions_expire = sq_sessions_expire,
	.session_get = sq_session_get,
	.audit = sq_audit,
	.audit_foreach = sq_audit_foreach,
	.rewrap = js_store__sq_rewrap,
	.outbox_fetch = js_store__sq_outbox_fetch,
	.check = js_store__sq_check,
	.reg = &js_store__sqlite_reg_ops,
	.dev_sql = &sq_dev_sql,
	.apikey = &js_store__sqlite_apikey_ops,
};
