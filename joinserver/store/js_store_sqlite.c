/*
 * js_store_sqlite.c - the SQLite backend of js_store: one file, WAL, synchronous=FULL.
 *
 * PURPOSE
 *	One writer connection, used by the committer thread (group commit) and by the administrative
 *	calls, serialised by a mutex. A small pool of read-only connections serves device_get,
 *	session_get and the walks; WAL lets them read the last committed state while the writer
 *	works. Each connection keeps its hot statements prepared, so a device read is a bind, a step
 *	and a copy. Schema changes go through a table of migration steps keyed by PRAGMA
 *	user_version.
 *
 * SECURITY
 *	- The file holds wrapped root keys, nonce state and the audit log: it is created with mode
 *	  0600 before SQLite opens it (SQLite gives its -wal and -shm files the same mode).
 *	- synchronous=FULL in WAL mode makes COMMIT the durable point; the committer reports results
 *	  only after it (DESIGN.md trust rule 4, see js_store.c).
 *	- The nonce update is a compare-and-swap on devices.version inside the transaction, so a stale
 *	  state never overwrites a newer one.
 *	- The meta table records the master key's check value: opening a store with another master
 *	  key (which would fail every unwrap, or worse, seal new devices under a second key) is
 *	  refused with DJ_EMASTERKEY. Re-wrapping is one transaction: old or new, never a mix.
 *	- Every value is bound, never formatted into SQL; rows read back are bounds-checked before a
 *	  byte is copied into the fixed-size structs of js_store.h.
 */
#include "store/js_store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "common/dj_err.h"
#include "common/dj_log.h"

#define SQ_READERS 4			/* read-only connections in the pool */
#define SQ_BUSY_TIMEOUT_MS 10000
#define SQ_DB_MODE 0600			/* wrapped keys and audit data */
#define SQ_META_KCV "kcv"
#define SQ_META_INSTANCE "instance"	/* written by migration 3 */
#define SQ_FETCH_SQL "SELECT id, at, body FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2"
#define SQ_HIST_PAIR 2			/* bytes per stored DevNonce */
#define SQ_SQL_MAX 64

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
};
#define DEV_COLS "dev_eui, join_eui, mac_version, root_token, created_at, version, " \
		 "dev_nonce_last, join_nonce_last, rjcount1_last, dn_hist, sess_token"

/* One migration step: applying \p sql to a file at version - 1 yields \p version. */
struct sq_migration {
	int version;
	const char *sql;
};

/* migrations - the schema history; later versions append entries, never edit old ones */
static const struct sq_migration migrations[] = {
	{ 1,
	  "CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB);"
	  "CREATE TABLE devices("
	  " dev_eui BLOB PRIMARY KEY,"
	  " join_eui BLOB NOT NULL,"
	  " mac_version INTEGER NOT NULL,"
	  " root_token BLOB NOT NULL,"
	  " created_at INTEGER NOT NULL,"
	  " version INTEGER NOT NULL,"
	  " dev_nonce_last INTEGER NOT NULL,"
	  " join_nonce_last INTEGER NOT NULL,"
	  " rjcount1_last INTEGER NOT NULL,"
	  " dn_hist BLOB,"
	  " sess_token BLOB);"
	  "CREATE TABLE sessions("
	  " session_id BLOB PRIMARY KEY,"
	  " dev_eui BLOB NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE,"
	  " created_at INTEGER NOT NULL,"
	  " expires_at INTEGER NOT NULL,"
	  " session_token BLOB NOT NULL);"
	  "CREATE INDEX sessions_dev_eui ON sessions(dev_eui);"
	  "CREATE TABLE audit("
	  " id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  " at INTEGER NOT NULL,"
	  " dev_eui BLOB,"
	  " event TEXT NOT NULL,"
	  " actor TEXT NOT NULL,"
	  " detail TEXT NOT NULL);"
	  "CREATE INDEX audit_dev_eui ON audit(dev_eui);" },
	{ 2, "CREATE INDEX sessions_expires ON sessions(expires_at);" },
	/* 3: the event outbox (MQTT). AUTOINCREMENT: a row id is never reused, even after the
	 * newest rows were deleted, so instance | id names one event for good. */
	{ 3,
	  "CREATE TABLE outbox("
	  " id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  " at INTEGER NOT NULL,"
	  " body BLOB NOT NULL);"
	  "INSERT OR IGNORE INTO meta(k, v) VALUES('instance', randomblob(8));" },
	/* 4: the device registry (js_store_owner.h): owners and their chains, hashed auth
	 * codes, and the steps of each ownership transfer. UNIQUE(dev_eui, serial) and
	 * UNIQUE(dev_eui, nonce) refuse a replayed or concurrent transfer in the database.
	 * IF NOT EXISTS: a file taken back to an older version by dropping only that version's
	 * objects (as the migration tests do) still migrates. */
	{ 4,
	  "CREATE TABLE IF NOT EXISTS owners("
	  " dev_eui BLOB PRIMARY KEY REFERENCES devices(dev_eui) ON DELETE CASCADE,"
	  " zone TEXT NOT NULL,"
	  " serial INTEGER NOT NULL,"
	  " chain BLOB NOT NULL,"
	  " attrs TEXT NOT NULL,"
	  " published INTEGER NOT NULL,"
	  " updated_at INTEGER NOT NULL);"
	  "CREATE INDEX IF NOT EXISTS owners_unpublished ON owners(published) WHERE published = 0;"
	  "CREATE TABLE IF NOT EXISTS authcodes("
	  " dev_eui BLOB PRIMARY KEY REFERENCES devices(dev_eui) ON DELETE CASCADE,"
	  " salt BLOB NOT NULL,"
	  " iter INTEGER NOT NULL,"
	  " hash BLOB NOT NULL,"
	  " expires_at INTEGER NOT NULL,"
	  " created_at INTEGER NOT NULL);"
	  "CREATE TABLE IF NOT EXISTS transfers("
	  " id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  " dev_eui BLOB NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE,"
	  " serial INTEGER NOT NULL,"
	  " nonce BLOB NOT NULL,"
	  " from_zone TEXT NOT NULL,"
	  " to_zone TEXT NOT NULL,"
	  " chain BLOB NOT NULL,"
	  " step INTEGER NOT NULL,"
	  " created_at INTEGER NOT NULL,"
	  " updated_at INTEGER NOT NULL,"
	  " UNIQUE(dev_eui, serial),"
	  " UNIQUE(dev_eui, nonce));"
	  "CREATE INDEX IF NOT EXISTS transfers_pending ON transfers(step) WHERE step < 3;" },
};

struct sq_reader {
	sqlite3 *db;
	sqlite3_stmt *dev_get;
	sqlite3_stmt *sess_get;
	sqlite3_stmt *own_head;	/* prepared on first use: owners exists from schema 4 */
	bool busy;
};

struct sq {
	/* writer: the committer and administrative calls, under wlock */
	pthread_mutex_t wlock;
	bool wlock_init;
	sqlite3 *w;
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *upd, *exists, *sess_put, *audit_put;
	sqlite3_stmt *ob_put, *ob_del;
	uint64_t outbox_n;		/* rows in the outbox (committed), under wlock */
	bool xo_pend;			/* js_store__sq_outbox_put in this transaction: */
	uint64_t xo_rows, xo_written, xo_dropped;	/* its tally, applied on commit */
	uint8_t histbuf[SQ_HIST_PAIR * JS_DEVNONCE_HIST_MAX];	/* encoding room for upd */

	/* readers */
	pthread_mutex_t rlock;
	pthread_cond_t rcond;
	bool rlock_init;
	struct sq_reader rd[SQ_READERS];
};

/* sq_fail - log an SQLite error of \p db (SQL text and messages never carry key material) */
static int sq_fail(sqlite3 *db, const char *what)
{
	dj_warn("store: %s: %s", what, db != NULL ? sqlite3_errmsg(db) : "no connection");
	return DJ_ESQL;
}

/* sq_exec - run SQL text with no results */
static int sq_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_fail(db, "exec");
	return DJ_EOK;
}

/* sq_prepare - prepare a statement kept for the connection's lifetime */
static int sq_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return sq_fail(db, "prepare");
	return DJ_EOK;
}

/* sq_done - step a statement that returns no row, then reset it */
static int sq_done(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? DJ_EOK : sq_fail(db, "step");

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

/* bind_blob_or_null - bind len bytes, or SQL NULL when len is 0 */
static int bind_blob_or_null(sqlite3_stmt *st, int i, const void *p, size_t len)
{
	if (len == 0)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_blob(st, i, p, (int)len, SQLITE_STATIC);
}

/* bind_text - bind a C string (NULL as "") */
static int bind_text(sqlite3_stmt *st, int i, const char *t)
{
	return sqlite3_bind_text(st, i, t != NULL ? t : "", -1, SQLITE_STATIC);
}

/* set_wal - switch the connection to WAL and check that the switch took */
static int set_wal(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int ret = DJ_ESQL;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		ret = sq_fail(db, "journal_mode");
		goto out;
	}
	mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
		dj_warn("store: the database refused WAL mode");
		goto out;
	}
	ret = DJ_EOK;
out:
	sqlite3_finalize(st);
	return ret;
}

/* ensure_file - create the database file with mode 0600 if it does not exist yet */
static int ensure_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, SQ_DB_MODE);
	int ret = DJ_EOK;

	if (fd < 0) {
		if (errno == EEXIST)
			return DJ_EOK;
		return errno == EACCES ? DJ_EACCES : DJ_EIO;
	}
	if (fchmod(fd, SQ_DB_MODE) != 0)
		ret = DJ_EIO;
	close(fd);
	return ret;
}

/* user_version - read PRAGMA user_version */
static int user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st = NULL;
	int ret = DJ_ESQL;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		ret = sq_fail(db, "user_version");
		goto out;
	}
	*out = sqlite3_column_int(st, 0);
	ret = DJ_EOK;
out:
	sqlite3_finalize(st);
	return ret;
}

/* migrate - bring the schema to the newest version, one transaction per step */
static int migrate(sqlite3 *db)
{
	const int newest = migrations[DJ_ARRAY_LEN(migrations) - 1].version;
	char sql[SQ_SQL_MAX];
	int cur = 0;
	int ret;

	ret = user_version(db, &cur);
	if (ret != DJ_EOK)
		goto out;
	if (cur > newest) {
		dj_warn("store: schema version %d is newer than this program's (%d)", cur, newest);
		ret = DJ_ESCHEMA;
		goto out;
	}
	for (size_t i = 0; i < DJ_ARRAY_LEN(migrations); i++) {
		const struct sq_migration *m = &migrations[i];

		if (m->version <= cur)
			continue;
		ret = sq_exec(db, "BEGIN IMMEDIATE");
		if (ret != DJ_EOK)
			goto out;
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", m->version);
		ret = sq_exec(db, m->sql);
		if (ret == DJ_EOK)
			ret = sq_exec(db, sql);
		if (ret == DJ_EOK)
			ret = sq_exec(db, "COMMIT");
		if (ret != DJ_EOK) {
			(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto out;
		}
		dj_info("store: schema migrated to version %d", m->version);
	}
	ret = DJ_EOK;
out:
	return ret;
}

/* meta_kcv - read the recorded key check value; DJ_ENOENT when none is recorded */
static int meta_kcv(sqlite3 *db, uint8_t kcv[JS_KCV_LEN])
{
	sqlite3_stmt *st = NULL;
	int ret = DJ_ESQL;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k=?", -1, &st, NULL) != SQLITE_OK) {
		ret = sq_fail(db, "meta");
		goto out;
	}
	sqlite3_bind_text(st, 1, SQ_META_KCV, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = DJ_ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = sq_fail(db, "meta");
		goto out;
	}
	{
		const void *p = sqlite3_column_blob(st, 0);
		if (p == NULL || sqlite3_column_bytes(st, 0) != JS_KCV_LEN) {
			ret = DJ_EMALFORMED;
			goto out;
		}
		memcpy(kcv, p, JS_KCV_LEN);
	}
	ret = DJ_EOK;
out:
	sqlite3_finalize(st);
	return ret;
}

/* meta_set_kcv - record (insert or replace) the key check value */
static int meta_set_kcv(sqlite3 *db, const uint8_t kcv[JS_KCV_LEN])
{
	sqlite3_stmt *st = NULL;
	int ret;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)", -1, &st,
			       NULL) != SQLITE_OK) {
		ret = sq_fail(db, "meta");
		goto out;
	}
	sqlite3_bind_text(st, 1, SQ_META_KCV, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, kcv, JS_KCV_LEN, SQLITE_STATIC);
	ret = sq_done(db, st);
out:
	sqlite3_finalize(st);
	return ret;
}

/* check_kcv - record the KCV in a new store, or require the same one in an existing store */
static int check_kcv(sqlite3 *db, const uint8_t kcv[JS_KCV_LEN])
{
	uint8_t have[JS_KCV_LEN];
	int ret;

	ret = sq_exec(db, "BEGIN IMMEDIATE");
	if (ret != DJ_EOK)
		goto out;
	ret = meta_kcv(db, have);
	if (ret == DJ_ENOENT)
		ret = meta_set_kcv(db, kcv);
	else if (ret == DJ_EOK && memcmp(have, kcv, JS_KCV_LEN) != 0)
		ret = DJ_EMASTERKEY;
	if (ret == DJ_EOK)
		ret = sq_exec(db, "COMMIT");
	if (ret != DJ_EOK)
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	return ret;
}

/* outbox_open - the instance id (meta) and the outbox's row count */
static int outbox_open(struct js_store *s, struct sq *q)
{
	sqlite3_stmt *st = NULL;
	const void *p;
	int ret = DJ_ESQL;

	if (sqlite3_prepare_v2(q->w, "SELECT v FROM meta WHERE k='" SQ_META_INSTANCE "'", -1, &st,
			       NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		ret = sq_fail(q->w, "instance id");
		goto out;
	}
	p = sqlite3_column_blob(st, 0);
	if (p == NULL || sqlite3_column_bytes(st, 0) != JS_INSTANCE_ID_LEN) {
		dj_warn("store: the instance id in meta is malformed");
		ret = DJ_EMALFORMED;
		goto out;
	}
	memcpy(s->instance, p, JS_INSTANCE_ID_LEN);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(q->w, "SELECT count(*) FROM outbox", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		ret = sq_fail(q->w, "outbox count");
		goto out;
	}
	q->outbox_n = (uint64_t)sqlite3_column_int64(st, 0);
	js_store__outbox_count(s, 0, 0, 0, q->outbox_n);
	ret = DJ_EOK;
out:
	sqlite3_finalize(st);
	return ret;
}

/* reader_open - one read-only pooled connection with its prepared statements */
static int reader_open(const char *path, struct sq_reader *r)
{
	int ret;

	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return sq_fail(r->db, "open reader");
	sqlite3_busy_timeout(r->db, SQ_BUSY_TIMEOUT_MS);
	ret = sq_prepare(r->db, "SELECT " DEV_COLS " FROM devices WHERE dev_eui=?", &r->dev_get);
	if (ret == DJ_EOK)
		ret = sq_prepare(r->db,
				 "SELECT dev_eui, created_at, expires_at, session_token"
				 " FROM sessions WHERE session_id=?",
				 &r->sess_get);
	return ret;
}

/* sq_close - finalise every statement and close every connection (half-built is fine) */
static void sq_close(struct js_store *s)
{
	struct sq *q = s->be;

	if (q == NULL)
		return;
	for (size_t i = 0; i < SQ_READERS; i++) {
		sqlite3_finalize(q->rd[i].dev_get);
		sqlite3_finalize(q->rd[i].sess_get);
		sqlite3_finalize(q->rd[i].own_head);
		sqlite3_close(q->rd[i].db);
	}
	sqlite3_finalize(q->begin);
	sqlite3_finalize(q->commit);
	sqlite3_finalize(q->rollback);
	sqlite3_finalize(q->upd);
	sqlite3_finalize(q->exists);
	sqlite3_finalize(q->sess_put);
	sqlite3_finalize(q->audit_put);
	sqlite3_finalize(q->ob_put);
	sqlite3_finalize(q->ob_del);
	sqlite3_close(q->w);
	if (q->wlock_init)
		pthread_mutex_destroy(&q->wlock);
	if (q->rlock_init) {
		pthread_mutex_destroy(&q->rlock);
		pthread_cond_destroy(&q->rcond);
	}
	free(q);
	s->be = NULL;
}

/* sq_open - open or create the file, migrate, check the KCV, prepare everything */
static int sq_open(struct js_store *s, const struct js_store_props *props)
{
	struct sq *q;
	int ret = DJ_ENOMEM;

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

	ret = ensure_file(props->path);
	if (ret != DJ_EOK)
		goto out;
	if (sqlite3_open_v2(props->path, &q->w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		ret = sq_fail(q->w, "open");
		goto out;
	}
	sqlite3_busy_timeout(q->w, SQ_BUSY_TIMEOUT_MS);
	ret = set_wal(q->w);
	if (ret == DJ_EOK)
		ret = sq_exec(q->w, "PRAGMA synchronous=FULL");
	if (ret == DJ_EOK)
		ret = sq_exec(q->w, "PRAGMA foreign_keys=ON");
	if (ret != DJ_EOK)
		goto out;
	ret = migrate(q->w);
	if (ret != DJ_EOK)
		goto out;
	ret = check_kcv(q->w, props->kcv);
	if (ret != DJ_EOK)
		goto out;
	ret = outbox_open(s, q);
	if (ret != DJ_EOK)
		goto out;

	ret = sq_prepare(q->w, "BEGIN IMMEDIATE", &q->begin);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w, "COMMIT", &q->commit);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w, "ROLLBACK", &q->rollback);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w,
				 "UPDATE devices SET version=version+1, dev_nonce_last=?1,"
				 " join_nonce_last=?2, rjcount1_last=?3, dn_hist=?4, sess_token=?5"
				 " WHERE dev_eui=?6 AND version=?7",
				 &q->upd);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w, "SELECT 1 FROM devices WHERE dev_eui=?", &q->exists);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w,
				 "INSERT OR REPLACE INTO sessions(session_id, dev_eui, created_at,"
				 " expires_at, session_token) VALUES(?1, ?2, ?3, ?4, ?5)",
				 &q->sess_put);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w,
				 "INSERT INTO audit(at, dev_eui, event, actor, detail)"
				 " VALUES(?1, ?2, ?3, ?4, ?5)",
				 &q->audit_put);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w, "INSERT INTO outbox(at, body) VALUES(?1, ?2)", &q->ob_put);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w, "DELETE FROM outbox WHERE id=?1", &q->ob_del);
	for (size_t i = 0; ret == DJ_EOK && i < SQ_READERS; i++)
		ret = reader_open(props->path, &q->rd[i]);
out:
	return ret;	/* on failure js_store.c calls sq_close() */
}

/* reader_get - take a free pooled reader, waiting for one if all are busy */
static struct sq_reader *reader_get(struct sq *q)
{
	struct sq_reader *r = NULL;

	pthread_mutex_lock(&q->rlock);
	for (;;) {
		for (size_t i = 0; i < SQ_READERS; i++) {
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

/* reader_put - return a reader to the pool */
static void reader_put(struct sq *q, struct sq_reader *r)
{
	pthread_mutex_lock(&q->rlock);
	r->busy = false;
	pthread_cond_signal(&q->rcond);
	pthread_mutex_unlock(&q->rlock);
}

/* blob_col - a blob column and its length; NULL reads as empty */
static const uint8_t *blob_col(sqlite3_stmt *st, int col, size_t *len)
{
	const uint8_t *p = sqlite3_column_blob(st, col);

	*len = p != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;
	return p;
}

/* row_device - check a DEV_COLS row against the struct's bounds, then copy it into out */
static int row_device(sqlite3_stmt *st, struct js_device *out)
{
	size_t eui_len, join_len, root_len, hist_len, sess_len;
	const uint8_t *eui = blob_col(st, DC_DEV_EUI, &eui_len);
	const uint8_t *join = blob_col(st, DC_JOIN_EUI, &join_len);
	const uint8_t *root = blob_col(st, DC_ROOT_TOKEN, &root_len);
	const uint8_t *hist = blob_col(st, DC_HIST, &hist_len);
	const uint8_t *sess = blob_col(st, DC_SESS_TOKEN, &sess_len);
	int64_t mv = sqlite3_column_int64(st, DC_MAC_VERSION);

	if (eui_len != LW_EUI_LEN || join_len != LW_EUI_LEN || root_len > JS_TOKEN_MAX ||
	    hist_len % SQ_HIST_PAIR != 0 || hist_len / SQ_HIST_PAIR > JS_DEVNONCE_HIST_MAX ||
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
	out->st.hist_len = (uint32_t)(hist_len / SQ_HIST_PAIR);
	js_store__hist_decode(hist, out->st.hist_len, out->st.hist);
	out->st.sess_token_len = (uint32_t)sess_len;
	if (sess_len > 0)
		memcpy(out->st.sess_token, sess, sess_len);
	return DJ_EOK;
}

/* sq_device_get - one device through a pooled reader's prepared statement */
static int sq_device_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			 struct js_device *out)
{
	struct sq *q = s->be;
	struct sq_reader *r = reader_get(q);
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
		ret = sq_fail(r->db, "device_get");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	reader_put(q, r);
	return ret;
}

/* audit_put - append an audit row on the writer (inside the caller's transaction, if any) */
static int audit_put(struct js_store *s, const uint8_t *dev_eui, const char *event,
		     const char *actor, const char *detail)
{
	struct sq *q = s->be;

	sqlite3_bind_int64(q->audit_put, 1, js_store_now(s));
	if (dev_eui != NULL)
		sqlite3_bind_blob(q->audit_put, 2, dev_eui, LW_EUI_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_null(q->audit_put, 2);
	bind_text(q->audit_put, 3, event);
	bind_text(q->audit_put, 4, actor);
	bind_text(q->audit_put, 5, detail);
	return sq_done(q->w, q->audit_put);
}

/* Outbox effects of one batch, applied to the totals only once the batch is durable. */
struct ob_tally {
	uint64_t rows, written, dropped, done;
};

/* events_put - write a commit's events (and their audit entries) while the outbox has room */
static int events_put(struct js_store *s, struct js_commit *c, struct ob_tally *t)
{
	struct sq *q = s->be;
	int ret = DJ_EOK;

	for (const struct js_event *e = c->events; e != NULL && ret == DJ_EOK; e = e->next) {
		if (t->rows >= s->outbox_max) {
			c->events_dropped++;
			t->dropped++;
			continue;
		}
		sqlite3_bind_int64(q->ob_put, 1, js_store_now(s));
		sqlite3_bind_blob(q->ob_put, 2, e->body, (int)e->len, SQLITE_STATIC);
		ret = sq_done(q->w, q->ob_put);
		if (ret == DJ_EOK && e->audit_event != NULL)
			ret = audit_put(s, c->dev_eui, e->audit_event, e->audit_actor,
					e->audit_detail);
		if (ret == DJ_EOK) {
			t->rows++;
			t->written++;
		}
	}
	return ret;
}

/* outbox_done - delete delivered rows (a row already gone is no error: a duplicate ack) */
static int outbox_done(struct sq *q, const struct js_commit *c, struct ob_tally *t)
{
	int ret = DJ_EOK;

	for (uint32_t i = 0; i < c->n_done_ids && ret == DJ_EOK; i++) {
		sqlite3_bind_int64(q->ob_del, 1, c->done_ids[i]);
		ret = sq_done(q->w, q->ob_del);
		if (ret == DJ_EOK && sqlite3_changes(q->w) > 0) {
			if (t->rows > 0)	/* rows another process wrote are not counted */
				t->rows--;
			t->done++;
		}
	}
	return ret;
}

/* commit_one - apply one commit item inside the open transaction; sets c->result */
static int commit_one(struct js_store *s, struct js_commit *c, struct ob_tally *t)
{
	struct sq *q = s->be;
	const struct js_nonce_state *ns = &c->new_st;
	size_t hbytes = (size_t)ns->hist_len * SQ_HIST_PAIR;
	int ret;
	int rc;

	c->events_dropped = 0;
	if (c->kind != JS_COMMIT_STATE) {
		ret = c->kind == JS_COMMIT_EVENTS ? events_put(s, c, t) : outbox_done(q, c, t);
		if (ret == DJ_EOK)
			c->result = DJ_EOK;
		return ret;
	}
	sqlite3_bind_int64(q->upd, 1, ns->dev_nonce_last);
	sqlite3_bind_int64(q->upd, 2, ns->join_nonce_last);
	sqlite3_bind_int64(q->upd, 3, ns->rjcount1_last);
	js_store__hist_encode(ns->hist, ns->hist_len, q->histbuf);	/* hist_len entries only */
	if (hbytes > 0)
		sqlite3_bind_blob(q->upd, 4, q->histbuf, (int)hbytes, SQLITE_STATIC);
	else
		sqlite3_bind_zeroblob(q->upd, 4, 0);
	bind_blob_or_null(q->upd, 5, ns->sess_token, ns->sess_token_len);
	sqlite3_bind_blob(q->upd, 6, c->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(q->upd, 7, (sqlite3_int64)c->expect_version);
	ret = sq_done(q->w, q->upd);
	if (ret != DJ_EOK)
		goto out;
	if (sqlite3_changes(q->w) == 0) {
		/* Either the version moved (someone else won) or the device is gone. */
		sqlite3_bind_blob(q->exists, 1, c->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		rc = sqlite3_step(q->exists);
		sqlite3_reset(q->exists);
		sqlite3_clear_bindings(q->exists);
		if (rc == SQLITE_ROW)
			c->result = DJ_ECONFLICT;
		else if (rc == SQLITE_DONE)
			c->result = DJ_ENOENT;
		else
			ret = sq_fail(q->w, "exists");
		goto out;
	}
	if (c->has_session) {
		sqlite3_bind_blob(q->sess_put, 1, c->session_id, (int)c->session_id_len,
				  SQLITE_STATIC);
		sqlite3_bind_blob(q->sess_put, 2, c->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(q->sess_put, 3, js_store_now(s));
		sqlite3_bind_int64(q->sess_put, 4, c->session_expires_at);
		sqlite3_bind_blob(q->sess_put, 5, c->session_token, (int)c->session_token_len,
				  SQLITE_STATIC);
		ret = sq_done(q->w, q->sess_put);
		if (ret != DJ_EOK)
			goto out;
	}
	if (c->audit_event[0] != '\0') {
		ret = audit_put(s, c->dev_eui, c->audit_event, c->audit_actor, c->audit_detail);
		if (ret != DJ_EOK)
			goto out;
	}
	ret = events_put(s, c, t);
	if (ret != DJ_EOK)
		goto out;
	c->result = DJ_EOK;
out:
	return ret;
}

/* sq_apply_batch - one transaction for the whole batch; results stand only after COMMIT */
static int sq_apply_batch(struct js_store *s, struct js_commit *head, size_t n)
{
	struct sq *q = s->be;
	struct js_commit *c;
	struct ob_tally t = { 0, 0, 0, 0 };
	int ret;

	(void)n;
	pthread_mutex_lock(&q->wlock);
	t.rows = q->outbox_n;
	ret = sq_done(q->w, q->begin);
	if (ret != DJ_EOK)
		goto out;
	for (c = head; c != NULL && ret == DJ_EOK; c = c->priv_next)
		ret = commit_one(s, c, &t);
	if (ret == DJ_EOK)
		ret = sq_done(q->w, q->commit);	/* synchronous=FULL: durable from here */
	if (ret != DJ_EOK && sqlite3_get_autocommit(q->w) == 0)
		(void)sq_done(q->w, q->rollback);
	if (ret == DJ_EOK) {
		q->outbox_n = t.rows;
		if (t.written + t.dropped + t.done > 0)
			js_store__outbox_count(s, t.written, t.dropped, t.done, t.rows);
	}
out:
	pthread_mutex_unlock(&q->wlock);
	if (ret != DJ_EOK)
		for (c = head; c != NULL; c = c->priv_next)
			c->result = ret;
	return ret;
}

/* begin_w - lock the writer and open a write transaction */
static int begin_w(struct sq *q)
{
	int ret;

	pthread_mutex_lock(&q->wlock);
	ret = sq_done(q->w, q->begin);
	if (ret != DJ_EOK)
		pthread_mutex_unlock(&q->wlock);
	return ret;
}

/* end_w - commit (ret == DJ_EOK) or roll back, and unlock the writer; returns the outcome */
static int end_w(struct sq *q, int ret)
{
	if (ret == DJ_EOK)
		ret = sq_done(q->w, q->commit);
	if (ret != DJ_EOK && sqlite3_get_autocommit(q->w) == 0)
		(void)sq_done(q->w, q->rollback);
	pthread_mutex_unlock(&q->wlock);
	return ret;
}

/* sq_devices_import - insert every device or none; device i comes from get() into one struct */
static int sq_devices_import(struct js_store *s, size_t n,
			     int (*get)(size_t i, struct js_device *d, void *arg), void *arg,
			     const char *actor, size_t *failed)
{
	struct sq *q = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	sqlite3_stmt *ins = NULL;
	struct js_device *d;
	size_t bad = 0;
	int ret;

	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return DJ_ENOMEM;
	ret = begin_w(q);
	if (ret != DJ_EOK) {
		free(d);
		return ret;
	}
	ret = sq_prepare(q->w,
			 "INSERT INTO devices(" DEV_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, 0, -1, -1,"
			 " -1, X'', NULL)",
			 &ins);
	for (size_t i = 0; ret == DJ_EOK && i < n; i++) {
		int rc;

		ret = get(i, d, arg);
		if (ret == DJ_EOK && d->root_token_len > JS_TOKEN_MAX)
			ret = DJ_EINVAL;
		if (ret != DJ_EOK) {
			bad = i;
			break;
		}
		sqlite3_bind_blob(ins, 1, d->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(ins, 2, d->join_eui, LW_EUI_LEN, SQLITE_STATIC);
		sqlite3_bind_int(ins, 3, (int)d->mac_version);
		sqlite3_bind_blob(ins, 4, d->root_token, (int)d->root_token_len, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 5, d->created_at != 0 ? d->created_at : js_store_now(s));
		rc = sqlite3_step(ins);
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		if (rc == SQLITE_CONSTRAINT) {
			bad = i;
			ret = DJ_EEXIST;
			break;
		}
		if (rc != SQLITE_DONE) {
			ret = sq_fail(q->w, "devices_add");
			break;
		}
		js_store__import_detail(d, detail, sizeof(detail));
		ret = audit_put(s, d->dev_eui, JS_DEVICE_IMPORT_EVENT, actor, detail);
	}
	sqlite3_finalize(ins);
	ret = end_w(q, ret);
	OPENSSL_cleanse(d, sizeof(*d));
	free(d);
	if (ret != DJ_EOK && failed != NULL)
		*failed = bad;
	return ret;
}

/* devs_get - js_store_devices_import() over an array */
static int devs_get(size_t i, struct js_device *d, void *arg)
{
	memcpy(d, &((const struct js_device *)arg)[i], sizeof(*d));
	return DJ_EOK;
}

/* sq_devices_add - insert every device or none */
static int sq_devices_add(struct js_store *s, const struct js_device *devs, size_t n,
			  const char *actor, size_t *failed)
{
	return sq_devices_import(s, n, devs_get, (void *)devs, actor, failed);
}

/* sq_device_delete - delete one device (its sessions cascade) and audit it */
static int sq_device_delete(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			    const char *actor)
{
	struct sq *q = s->be;
	sqlite3_stmt *del = NULL;
	int ret;

	ret = begin_w(q);
	if (ret != DJ_EOK)
		return ret;
	ret = sq_prepare(q->w, "DELETE FROM devices WHERE dev_eui=?", &del);
	if (ret == DJ_EOK) {
		sqlite3_bind_blob(del, 1, dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		ret = sq_done(q->w, del);
	}
	if (ret == DJ_EOK && sqlite3_changes(q->w) == 0)
		ret = DJ_ENOENT;
	if (ret == DJ_EOK)
		ret = audit_put(s, dev_eui, JS_DEVICE_DELETE_EVENT, actor, "");
	sqlite3_finalize(del);
	return end_w(q, ret);
}

/* sq_sessions_expire - delete the sessions whose expiry has passed */
static int sq_sessions_expire(struct js_store *s, int64_t now, uint64_t *count)
{
	struct sq *q = s->be;
	sqlite3_stmt *del = NULL;
	int ret;

	ret = begin_w(q);
	if (ret != DJ_EOK)
		return ret;
	ret = sq_prepare(q->w, "DELETE FROM sessions WHERE expires_at <= ?", &del);
	if (ret == DJ_EOK) {
		sqlite3_bind_int64(del, 1, now);
		ret = sq_done(q->w, del);
	}
	if (ret == DJ_EOK)
		*count = (uint64_t)sqlite3_changes(q->w);
	sqlite3_finalize(del);
	return end_w(q, ret);
}

/* sq_device_foreach - walk devices in DevEUI order on a pooled reader */
static int sq_device_foreach(struct js_store *s, int (*cb)(const struct js_device *d, void *arg),
			     void *arg)
{
	struct sq *q = s->be;
	struct sq_reader *r = reader_get(q);
	struct js_device *d = NULL;
	sqlite3_stmt *st = NULL;
	int ret = DJ_ENOMEM;
	int rc;

	d = malloc(sizeof(*d));
	if (d == NULL)
		goto out;
	ret = sq_prepare(r->db, "SELECT " DEV_COLS " FROM devices ORDER BY dev_eui", &st);
	if (ret != DJ_EOK)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = row_device(st, d);
		if (ret != DJ_EOK)
			goto out;
		ret = cb(d, arg);
		if (ret != 0)
			goto out;
	}
	ret = rc == SQLITE_DONE ? DJ_EOK : sq_fail(r->db, "device_foreach");
out:
	sqlite3_finalize(st);
	reader_put(q, r);
	free(d);	/* root tokens are wrapped; nothing secret to wipe */
	return ret;
}

/* sq_reset_nonces - forget DevNonces and RJcount1 of one device or all, keep JoinNonce */
static int sq_reset_nonces(struct js_store *s, const uint8_t *dev_eui, const char *actor,
			   uint64_t *count)
{
	struct sq *q = s->be;
	sqlite3_stmt *upd = NULL, *aud = NULL;
	uint64_t n = 0;
	int ret;

	ret = begin_w(q);
	if (ret != DJ_EOK)
		return ret;
	ret = sq_prepare(q->w,
			 "UPDATE devices SET dev_nonce_last=-1, rjcount1_last=-1, dn_hist=X'',"
			 " version=version+1 WHERE ?1 IS NULL OR dev_eui=?1",
			 &upd);
	if (ret != DJ_EOK)
		goto out;
	bind_blob_or_null(upd, 1, dev_eui, dev_eui != NULL ? LW_EUI_LEN : 0);
	ret = sq_done(q->w, upd);
	if (ret != DJ_EOK)
		goto out;
	n = (uint64_t)sqlite3_changes(q->w);
	if (dev_eui != NULL && n == 0) {
		ret = DJ_ENOENT;
		goto out;
	}
	ret = sq_prepare(q->w,
			 "INSERT INTO audit(at, dev_eui, event, actor, detail)"
			 " SELECT ?1, dev_eui, ?2, ?3, '' FROM devices"
			 " WHERE ?4 IS NULL OR dev_eui=?4 ORDER BY dev_eui",
			 &aud);
	if (ret != DJ_EOK)
		goto out;
	sqlite3_bind_int64(aud, 1, js_store_now(s));
	bind_text(aud, 2, JS_NONCE_RESET_EVENT);
	bind_text(aud, 3, actor);
	bind_blob_or_null(aud, 4, dev_eui, dev_eui != NULL ? LW_EUI_LEN : 0);
	ret = sq_done(q->w, aud);
out:
	sqlite3_finalize(upd);
	sqlite3_finalize(aud);
	ret = end_w(q, ret);
	if (ret == DJ_EOK && count != NULL)
		*count = n;
	return ret;
}

/* sq_session_get - one session through a pooled reader */
static int sq_session_get(struct js_store *s, const uint8_t *session_id, size_t len,
			  struct js_session *out)
{
	struct sq *q = s->be;
	struct sq_reader *r = reader_get(q);
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
		ret = sq_fail(r->db, "session_get");
		goto out;
	}
	eui = blob_col(st, 0, &eui_len);
	tok = blob_col(st, 3, &tok_len);
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
	reader_put(q, r);
	return ret;
}

/* sq_audit - append one administrative audit entry (its own transaction) */
static int sq_audit(struct js_store *s, const uint8_t *dev_eui, const char *event,
		    const char *actor, const char *detail)
{
	struct sq *q = s->be;
	int ret;

	pthread_mutex_lock(&q->wlock);
	ret = audit_put(s, dev_eui, event, actor, detail);
	pthread_mutex_unlock(&q->wlock);
	return ret;
}

/* sq_audit_foreach - walk the audit log, oldest first */
static int sq_audit_foreach(struct js_store *s, const uint8_t *dev_eui,
			    int (*cb)(const struct js_audit_entry *e, void *arg), void *arg)
{
	struct sq *q = s->be;
	struct sq_reader *r = reader_get(q);
	struct js_audit_entry e;
	sqlite3_stmt *st = NULL;
	int ret;
	int rc;

	ret = sq_prepare(r->db,
			 "SELECT id, at, dev_eui, event, actor, detail FROM audit"
			 " WHERE ?1 IS NULL OR dev_eui=?1 ORDER BY id",
			 &st);
	if (ret != DJ_EOK)
		goto out;
	bind_blob_or_null(st, 1, dev_eui, dev_eui != NULL ? LW_EUI_LEN : 0);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t eui_len;
		const uint8_t *eui = blob_col(st, 2, &eui_len);

		memset(&e, 0, sizeof(e));
		e.id = sqlite3_column_int64(st, 0);
		e.at = sqlite3_column_int64(st, 1);
		e.has_dev_eui = eui_len == LW_EUI_LEN;
		if (e.has_dev_eui)
			memcpy(e.dev_eui, eui, LW_EUI_LEN);
		js_store__strlcpy(e.event, (const char *)sqlite3_column_text(st, 3),
				  sizeof(e.event));
		js_store__strlcpy(e.actor, (const char *)sqlite3_column_text(st, 4),
				  sizeof(e.actor));
		js_store__strlcpy(e.detail, (const char *)sqlite3_column_text(st, 5),
				  sizeof(e.detail));
		ret = cb(&e, arg);
		if (ret != 0)
			goto out;
	}
	ret = rc == SQLITE_DONE ? DJ_EOK : sq_fail(r->db, "audit_foreach");
out:
	sqlite3_finalize(st);
	reader_put(q, r);
	return ret;
}

/* rewrap_col - re-seal the token in column \p col of the current row of \p sel, if any */
static int rewrap_col(struct js_keystore *old_ks, struct js_keystore *new_ks, sqlite3_stmt *sel,
		      int col, const char *purpose, const uint8_t *id, size_t id_len,
		      uint8_t *out, size_t *out_len)
{
	uint8_t label[JS_LABEL_MAX];
	size_t label_len, len;
	const uint8_t *tok = blob_col(sel, col, &len);

	*out_len = 0;
	if (len == 0)
		return DJ_EOK;
	label_len = js_keystore_label(purpose, id, id_len, label);
	if (label_len == 0)
		return DJ_EMALFORMED;
	return js_keystore_rewrap(old_ks, new_ks, label, label_len, tok, len, out, out_len);
}

/* rewrap_devices - re-seal every root and current-session token; counts tokens into *n */
static int rewrap_devices(struct sq *q, struct js_keystore *old_ks, struct js_keystore *new_ks,
			  uint64_t *n)
{
	uint8_t root[JS_TOKEN_MAX], sess[JS_TOKEN_MAX], sid[JS_SESSION_ID_LEN];
	size_t root_len = 0, sess_len = 0;
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int ret;
	int rc;

	ret = sq_prepare(q->w, "SELECT dev_eui, root_token, sess_token, join_nonce_last"
			       " FROM devices", &sel);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w, "UPDATE devices SET root_token=?1, sess_token=?2"
				       " WHERE dev_eui=?3", &upd);
	if (ret != DJ_EOK)
		goto out;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		size_t eui_len;
		const uint8_t *eui = blob_col(sel, 0, &eui_len);

		ret = DJ_EMALFORMED;
		if (eui_len != LW_EUI_LEN)
			goto out;
		ret = rewrap_col(old_ks, new_ks, sel, 1, JS_PURPOSE_ROOT, eui, eui_len, root,
				 &root_len);
		js_session_id(eui, (uint32_t)sqlite3_column_int64(sel, 3), sid);
		if (ret == DJ_EOK)
			ret = rewrap_col(old_ks, new_ks, sel, 2, JS_PURPOSE_SESSION, sid, sizeof(sid),
					 sess, &sess_len);
		if (ret != DJ_EOK)
			goto out;
		*n += (root_len > 0) + (sess_len > 0);
		bind_blob_or_null(upd, 1, root, root_len);
		bind_blob_or_null(upd, 2, sess, sess_len);
		sqlite3_bind_blob(upd, 3, eui, LW_EUI_LEN, SQLITE_TRANSIENT);
		ret = sq_done(q->w, upd);
		if (ret != DJ_EOK)
			goto out;
	}
	ret = rc == SQLITE_DONE ? DJ_EOK : sq_fail(q->w, "rewrap");
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return ret;
}

/* rewrap_sessions - re-seal every AppSKey token; counts tokens into *n */
static int rewrap_sessions(struct sq *q, struct js_keystore *old_ks, struct js_keystore *new_ks,
			   uint64_t *n)
{
	uint8_t tok[JS_TOKEN_MAX];
	size_t tok_len = 0;
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int ret;
	int rc;

	ret = sq_prepare(q->w, "SELECT session_id, session_token FROM sessions", &sel);
	if (ret == DJ_EOK)
		ret = sq_prepare(q->w, "UPDATE sessions SET session_token=?1"
				       " WHERE session_id=?2", &upd);
	if (ret != DJ_EOK)
		goto out;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		size_t id_len;
		const uint8_t *id = blob_col(sel, 0, &id_len);

		ret = DJ_EMALFORMED;
		if (id_len == 0 || id_len > JS_SESSION_ID_MAX)
			goto out;
		ret = rewrap_col(old_ks, new_ks, sel, 1, JS_PURPOSE_SESSION, id, id_len, tok,
				 &tok_len);
		if (ret != DJ_EOK)
			goto out;
		if (tok_len == 0)
			continue;
		(*n)++;
		sqlite3_bind_blob(upd, 1, tok, (int)tok_len, SQLITE_STATIC);
		sqlite3_bind_blob(upd, 2, id, (int)id_len, SQLITE_TRANSIENT);
		ret = sq_done(q->w, upd);
		if (ret != DJ_EOK)
			goto out;
	}
	ret = rc == SQLITE_DONE ? DJ_EOK : sq_fail(q->w, "rewrap");
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return ret;
}

/* sq_rewrap - re-seal every token under new_ks and record its KCV, in one transaction */
static int sq_rewrap(struct js_store *s, struct js_keystore *old_ks, struct js_keystore *new_ks,
		     const char *actor, uint64_t *count)
{
	struct sq *q = s->be;
	uint8_t have[JS_KCV_LEN], old_kcv[JS_KCV_LEN], new_kcv[JS_KCV_LEN];
	char detail[JS_AUDIT_DETAIL_MAX];
	uint64_t n = 0;
	int ret;

	js_keystore_kcv(old_ks, old_kcv);
	js_keystore_kcv(new_ks, new_kcv);
	ret = begin_w(q);
	if (ret != DJ_EOK)
		return ret;
	ret = meta_kcv(q->w, have);
	if (ret != DJ_EOK)
		goto out;
	if (memcmp(have, old_kcv, JS_KCV_LEN) != 0) {
		ret = DJ_EMASTERKEY;
		goto out;
	}
	ret = rewrap_devices(q, old_ks, new_ks, &n);
	if (ret == DJ_EOK)
		ret = rewrap_sessions(q, old_ks, new_ks, &n);
	if (ret == DJ_EOK)
		ret = meta_set_kcv(q->w, new_kcv);
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "tokens=%llu", (unsigned long long)n);
		ret = audit_put(s, NULL, JS_REWRAP_EVENT, actor, detail);
	}
out:
	ret = end_w(q, ret);
	if (ret == DJ_EOK && count != NULL)
		*count = n;
	return ret;
}

/* sq_outbox_fetch - outbox rows after an id, oldest first, on a pooled reader */
static int sq_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			   size_t max, size_t *n)
{
	struct sq *q = s->be;
	struct sq_reader *r = reader_get(q);
	sqlite3_stmt *st = NULL;
	size_t k = 0;
	int ret;
	int rc = SQLITE_DONE;

	ret = sq_prepare(r->db, SQ_FETCH_SQL, &st);
	if (ret != DJ_EOK)
		goto out;
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	while (k < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t len;
		const uint8_t *body = blob_col(st, 2, &len);

		if (len == 0 || len > JS_EVENT_BODY_MAX) {
			dj_warn("store: an outbox row is malformed");
			ret = DJ_EMALFORMED;
			goto out;
		}
		rows[k].id = sqlite3_column_int64(st, 0);
		rows[k].at = sqlite3_column_int64(st, 1);
		rows[k].len = (uint32_t)len;
		memcpy(rows[k].body, body, len);
		k++;
	}
	if (k < max && rc != SQLITE_DONE) {
		ret = sq_fail(r->db, "outbox_fetch");
		goto out;
	}
	*n = k;
	ret = DJ_EOK;
out:
	sqlite3_finalize(st);
	reader_put(q, r);
	return ret;
}

int js_store__sq_begin(struct js_store *s, sqlite3 **db)
{
	struct sq *q;
	int ret;

	if (s == NULL || s->ops != &js_store__sqlite_ops)
		return DJ_EINVAL;
	q = s->be;
	ret = begin_w(q);
	if (ret == DJ_EOK)
		*db = q->w;
	return ret;
}

int js_store__sq_owner_head(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], char *zone,
			    size_t zonelen, uint64_t *serial)
{
	struct sq_reader *r;
	const unsigned char *z;
	struct sq *q;
	int ret, rc, n;

	if (s == NULL || s->ops != &js_store__sqlite_ops)
		return DJ_EINVAL;
	q = s->be;
	r = reader_get(q);
	ret = r->own_head != NULL ? DJ_EOK
				  : sq_prepare(r->db, "SELECT zone, serial FROM owners WHERE dev_eui=?",
					       &r->own_head);
	if (ret == DJ_EOK) {
		sqlite3_bind_blob(r->own_head, 1, dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		rc = sqlite3_step(r->own_head);
		if (rc == SQLITE_ROW) {
			z = sqlite3_column_text(r->own_head, 0);
			n = sqlite3_column_bytes(r->own_head, 0);
			if (z == NULL || n <= 0 || (size_t)n >= zonelen) {
				ret = DJ_EMALFORMED;
			} else {
				memcpy(zone, z, (size_t)n);
				zone[n] = '\0';
				*serial = (uint64_t)sqlite3_column_int64(r->own_head, 1);
			}
		} else if (rc == SQLITE_DONE) {
			ret = DJ_ENOENT;
		} else {
			ret = sq_fail(r->db, "owner_head");
		}
		sqlite3_reset(r->own_head);
		sqlite3_clear_bindings(r->own_head);
	}
	reader_put(q, r);
	return ret;
}

int js_store__sq_end(struct js_store *s, int ret)
{
	struct sq *q = s->be;
	bool pend = q->xo_pend;
	uint64_t rows = q->xo_rows, written = q->xo_written, dropped = q->xo_dropped;

	q->xo_pend = false;
	q->xo_rows = q->xo_written = q->xo_dropped = 0;
	if (!pend)
		return end_w(q, ret);
	if (ret == DJ_EOK)
		ret = sq_done(q->w, q->commit);
	if (ret != DJ_EOK && sqlite3_get_autocommit(q->w) == 0)
		(void)sq_done(q->w, q->rollback);
	if (ret == DJ_EOK)
		q->outbox_n = rows;
	pthread_mutex_unlock(&q->wlock);
	if (ret == DJ_EOK)
		js_store__outbox_count(s, written, dropped, 0, rows);
	return ret;
}

void js_store__sq_outbox_put(struct js_store *s, const uint8_t *body, size_t len)
{
	struct sq *q = s->be;
	sqlite3_stmt *st = NULL;

	if (!q->xo_pend) {
		/* the file's count: danejoind and danejoin-devices both write this outbox */
		q->xo_rows = q->outbox_n;
		if (sqlite3_prepare_v2(q->w, "SELECT count(*) FROM outbox", -1, &st, NULL) ==
			    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			q->xo_rows = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		q->xo_pend = true;
	}
	if (body == NULL || len == 0 || len > JS_EVENT_BODY_MAX || q->xo_rows >= s->outbox_max) {
		q->xo_dropped++;
		return;
	}
	sqlite3_bind_int64(q->ob_put, 1, js_store_now(s));
	sqlite3_bind_blob(q->ob_put, 2, body, (int)len, SQLITE_STATIC);
	if (sq_done(q->w, q->ob_put) != DJ_EOK) {
		q->xo_dropped++;	/* logged by sq_done; the change itself goes on */
		return;
	}
	q->xo_rows++;
	q->xo_written++;
}

int js_store__sq_audit(struct js_store *s, const uint8_t *dev_eui, const char *event,
		       const char *actor, const char *detail)
{
	return audit_put(s, dev_eui, event, actor, detail);
}

const struct js_store_ops js_store__sqlite_ops = {
	.name = "sqlite",
	.inline_commit = false,
	.open = sq_open,
	.close = sq_close,
	.device_get = sq_device_get,
	.devices_add = sq_devices_add,
	.devices_import = sq_devices_import,
	.device_delete = sq_device_delete,
	.device_foreach = sq_device_foreach,
	.reset_nonces = sq_reset_nonces,
	.apply_batch = sq_apply_batch,
	.sessions_expire = sq_sessions_expire,
	.session_get = sq_session_get,
	.audit = sq_audit,
	.audit_foreach = sq_audit_foreach,
	.rewrap = sq_rewrap,
	.outbox_fetch = sq_outbox_fetch,
};
