/*
 * js_store_sqlite_schema.c - the SQLite backend's file: its creation (mode 0600), the pragmas,
 * the schema migrations keyed by PRAGMA user_version, the master key's check value, and
 * re-wrapping every token under a new master key.
 *
 * SECURITY
 *	- The file holds wrapped root keys, nonce state and the audit log: it is created with mode
 *	  0600 before SQLite opens it (SQLite gives its -wal and -shm files the same mode).
 *	- synchronous=FULL in WAL mode makes COMMIT the durable point (DESIGN.md trust rule 4).
 *	- The meta table records the master key's check value: opening a store with another master
 *	  key (which would fail every unwrap, or worse, seal new devices under a second key) is
 *	  refused with DJ_EMASTERKEY. Re-wrapping is one transaction: old or new, never a mix.
 */
#include "store/js_store_sqlite_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dj_err.h"
#include "common/dj_log.h"

#define SQ_DB_MODE 0600			/* wrapped keys and audit data */
#define SQ_META_KCV "kcv"
#define SQ_META_INSTANCE "instance"	/* written by migration 3 */
#define SQ_SQL_MAX 64

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
	/* 5: tombstones of deleted devices: a re-import continues their nonce state, so that
	 * a JoinNonce is never issued twice for a DevEUI (js_store_device_delete()) */
	{ 5,
	  "CREATE TABLE IF NOT EXISTS tombstones("
	  " dev_eui BLOB PRIMARY KEY,"
	  " version INTEGER NOT NULL,"
	  " dev_nonce_last INTEGER NOT NULL,"
	  " join_nonce_last INTEGER NOT NULL,"
	  " rjcount1_last INTEGER NOT NULL,"
	  " dn_hist BLOB,"
	  " deleted_at INTEGER NOT NULL);" },
	/* 6: API keys of the management API (js_apikey.h): only a salted hash of each */
	{ 6,
	  "CREATE TABLE IF NOT EXISTS apikeys("
	  " name TEXT PRIMARY KEY,"
	  " scope INTEGER NOT NULL,"
	  " created_at INTEGER NOT NULL,"
	  " revoked_at INTEGER NOT NULL,"
	  " salt BLOB NOT NULL,"
	  " hash BLOB NOT NULL);" },
	/* 7: fewer B-trees written per join (docs/performance.md step 9). A SessionKeyID begins
	 * with its DevEUI (js_session_id()), so sessions are keyed (dev_eui, session_id): one
	 * index serves the lookup by SessionKeyID and the cascade of a device delete, and
	 * sessions_dev_eui goes. audit_dev_eui goes: no query used it (the audit walk's
	 * "?1 IS NULL OR dev_eui=?1" scans the table). Every row is copied. */
	{ 7,
	  "DROP INDEX IF EXISTS audit_dev_eui;"
	  "CREATE TABLE sessions_v7("
	  " session_id BLOB NOT NULL,"
	  " dev_eui BLOB NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE,"
	  " created_at INTEGER NOT NULL,"
	  " expires_at INTEGER NOT NULL,"
	  " session_token BLOB NOT NULL,"
	  " PRIMARY KEY(dev_eui, session_id));"
	  "INSERT INTO sessions_v7(session_id, dev_eui, created_at, expires_at, session_token)"
	  " SELECT session_id, dev_eui, created_at, expires_at, session_token FROM sessions;"
	  "DROP TABLE sessions;"
	  "ALTER TABLE sessions_v7 RENAME TO sessions;"
	  "CREATE INDEX sessions_expires ON sessions(expires_at);" },
	/* 8: audit without AUTOINCREMENT: no sqlite_sequence row written per entry. Audit rows
	 * are never deleted, so the next id (the largest + 1) is the one AUTOINCREMENT gave. */
	{ 8,
	  "CREATE TABLE audit_v8("
	  " id INTEGER PRIMARY KEY,"
	  " at INTEGER NOT NULL,"
	  " dev_eui BLOB,"
	  " event TEXT NOT NULL,"
	  " actor TEXT NOT NULL,"
	  " detail TEXT NOT NULL);"
	  "INSERT INTO audit_v8(id, at, dev_eui, event, actor, detail)"
	  " SELECT id, at, dev_eui, event, actor, detail FROM audit ORDER BY id;"
	  "DROP TABLE audit;"
	  "ALTER TABLE audit_v8 RENAME TO audit;" },
};

/* set_wal - switch the connection to WAL and check that the switch took */
static int set_wal(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int ret = DJ_ESQL;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		ret = js_store__sq_fail(db, "journal_mode");
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

int js_store__sq_ensure_file(const char *path)
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
		ret = js_store__sq_fail(db, "user_version");
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
		ret = js_store__sq_exec(db, "BEGIN IMMEDIATE");
		if (ret != DJ_EOK)
			goto out;
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", m->version);
		ret = js_store__sq_exec(db, m->sql);
		if (ret == DJ_EOK)
			ret = js_store__sq_exec(db, sql);
		if (ret == DJ_EOK)
			ret = js_store__sq_exec(db, "COMMIT");
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
		ret = js_store__sq_fail(db, "meta");
		goto out;
	}
	sqlite3_bind_text(st, 1, SQ_META_KCV, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = DJ_ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = js_store__sq_fail(db, "meta");
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
		ret = js_store__sq_fail(db, "meta");
		goto out;
	}
	sqlite3_bind_text(st, 1, SQ_META_KCV, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, kcv, JS_KCV_LEN, SQLITE_STATIC);
	ret = js_store__sq_done(db, st);
out:
	sqlite3_finalize(st);
	return ret;
}

/* check_kcv - record the KCV in a new store, or require the same one in an existing store */
static int check_kcv(sqlite3 *db, const uint8_t kcv[JS_KCV_LEN])
{
	uint8_t have[JS_KCV_LEN];
	int ret;

	ret = js_store__sq_exec(db, "BEGIN IMMEDIATE");
	if (ret != DJ_EOK)
		goto out;
	ret = meta_kcv(db, have);
	if (ret == DJ_ENOENT)
		ret = meta_set_kcv(db, kcv);
	else if (ret == DJ_EOK && memcmp(have, kcv, JS_KCV_LEN) != 0)
		ret = DJ_EMASTERKEY;
	if (ret == DJ_EOK)
		ret = js_store__sq_exec(db, "COMMIT");
	if (ret != DJ_EOK)
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	return ret;
}

int js_store__sq_schema_open(sqlite3 *db, const uint8_t kcv[JS_KCV_LEN])
{
	int ret = set_wal(db);

	if (ret == DJ_EOK)
		ret = js_store__sq_exec(db, "PRAGMA synchronous=FULL");
	if (ret == DJ_EOK)
		ret = js_store__sq_exec(db, "PRAGMA foreign_keys=ON");
	if (ret == DJ_EOK)
		ret = migrate(db);
	if (ret == DJ_EOK)
		ret = check_kcv(db, kcv);
	return ret;
}

int js_store__sq_outbox_open(struct js_store *s)
{
	struct js_store__sq *q = s->be;
	sqlite3_stmt *st = NULL;
	const void *p;
	int ret = DJ_ESQL;

	if (sqlite3_prepare_v2(q->w, "SELECT v FROM meta WHERE k='" SQ_META_INSTANCE "'", -1, &st,
			       NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		ret = js_store__sq_fail(q->w, "instance id");
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
		ret = js_store__sq_fail(q->w, "outbox count");
		goto out;
	}
	q->outbox_n = (uint64_t)sqlite3_column_int64(st, 0);
	js_store__outbox_count(s, 0, 0, 0, q->outbox_n);
	ret = DJ_EOK;
out:
	sqlite3_finalize(st);
	return ret;
}

#define SQ_REWRAP_DEV_SEL "SELECT dev_eui, root_token, sess_token, join_nonce_last FROM devices"
#define SQ_REWRAP_DEV_UPD "UPDATE devices SET root_token=?1, sess_token=?2 WHERE dev_eui=?3"
#define SQ_REWRAP_SESS_SEL "SELECT session_id, session_token, rowid FROM sessions"
#define SQ_REWRAP_SESS_UPD "UPDATE sessions SET session_token=?1 WHERE rowid=?2"

/* The state of one rewrap: the keys, and the tokens re-sealed so far. */
struct rewrap {
	struct js_store__sq *q;
	struct js_keystore *old_ks, *new_ks;
	uint64_t n;
};

/* rewrap_col - re-seal the token in column \p col of the current row of \p sel, if any */
static int rewrap_col(struct rewrap *w, sqlite3_stmt *sel, int col, const char *purpose,
		      const uint8_t *id, size_t id_len, uint8_t *out, size_t *out_len)
{
	uint8_t label[JS_LABEL_MAX];
	size_t label_len, len;
	const uint8_t *tok = js_store__sq_blob_col(sel, col, &len);
	int ret;

	*out_len = 0;
	if (len == 0)
		return DJ_EOK;
	label_len = js_keystore_label(purpose, id, id_len, label);
	if (label_len == 0)
		return DJ_EMALFORMED;
	ret = js_keystore_rewrap(w->old_ks, w->new_ks, label, label_len, tok, len, out, out_len);
	if (ret == DJ_EOK)
		w->n++;
	return ret;
}

/* rewrap_device - re-seal a devices row's root and current-session tokens (a row callback) */
static int rewrap_device(sqlite3_stmt *sel, void *arg)
{
	struct rewrap *w = arg;
	uint8_t eui[LW_EUI_LEN], root[JS_TOKEN_MAX], sess[JS_TOKEN_MAX], sid[JS_SESSION_ID_LEN];
	size_t root_len = 0, sess_len = 0, eui_len;
	const uint8_t *p = js_store__sq_blob_col(sel, 0, &eui_len);
	int ret;

	if (eui_len != LW_EUI_LEN)
		return DJ_EMALFORMED;
	memcpy(eui, p, LW_EUI_LEN);
	ret = rewrap_col(w, sel, 1, JS_PURPOSE_ROOT, eui, LW_EUI_LEN, root, &root_len);
	js_session_id(eui, (uint32_t)sqlite3_column_int64(sel, 3), sid);
	if (ret == DJ_EOK)
		ret = rewrap_col(w, sel, 2, JS_PURPOSE_SESSION, sid, sizeof(sid), sess, &sess_len);
	if (ret == DJ_EOK)
		ret = js_store__sq_run(w->q, SQ_REWRAP_DEV_UPD,
				       JS_SQ_ARGS(JS_SQ_B(root, root_len), JS_SQ_B(sess, sess_len),
						  JS_SQ_EUI(eui)));
	return ret;
}

/* rewrap_session - re-seal a sessions row's AppSKey token (a row callback) */
static int rewrap_session(sqlite3_stmt *sel, void *arg)
{
	struct rewrap *w = arg;
	uint8_t id[JS_SESSION_ID_MAX], tok[JS_TOKEN_MAX];
	size_t id_len, tok_len = 0;
	const uint8_t *p = js_store__sq_blob_col(sel, 0, &id_len);
	int ret;

	if (id_len == 0 || id_len > JS_SESSION_ID_MAX)
		return DJ_EMALFORMED;
	memcpy(id, p, id_len);
	ret = rewrap_col(w, sel, 1, JS_PURPOSE_SESSION, id, id_len, tok, &tok_len);
	if (ret != DJ_EOK || tok_len == 0)
		return ret;
	return js_store__sq_run(w->q, SQ_REWRAP_SESS_UPD,
				JS_SQ_ARGS(JS_SQ_B(tok, tok_len),
					   JS_SQ_I(sqlite3_column_int64(sel, 2))));
}

int js_store__sq_rewrap(struct js_store *s, struct js_keystore *old_ks,
			struct js_keystore *new_ks, const char *actor, uint64_t *count)
{
	struct js_store__sq *q = s->be;
	uint8_t have[JS_KCV_LEN], old_kcv[JS_KCV_LEN], new_kcv[JS_KCV_LEN];
	char detail[JS_AUDIT_DETAIL_MAX];
	struct rewrap w = { .q = q, .old_ks = old_ks, .new_ks = new_ks, .n = 0 };
	int ret;

	js_keystore_kcv(old_ks, old_kcv);
	js_keystore_kcv(new_ks, new_kcv);
	ret = js_store__sq_wbegin(q);
	if (ret != DJ_EOK)
		return ret;
	ret = meta_kcv(q->w, have);
	if (ret != DJ_EOK)
		goto out;
	if (memcmp(have, old_kcv, JS_KCV_LEN) != 0) {
		ret = DJ_EMASTERKEY;
		goto out;
	}
	ret = js_store__sq_rows(q, SQ_REWRAP_DEV_SEL, JS_SQ_NONE, false, rewrap_device, &w);
	if (ret == DJ_EOK)
		ret = js_store__sq_rows(q, SQ_REWRAP_SESS_SEL, JS_SQ_NONE, false, rewrap_session,
					&w);
	if (ret == DJ_EOK)
		ret = meta_set_kcv(q->w, new_kcv);
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "tokens=%llu", (unsigned long long)w.n);
		ret = js_store__sq_audit_put(s, NULL, JS_REWRAP_EVENT, actor, detail);
	}
out:
	ret = js_store__sq_wend(s, ret);
	if (ret == DJ_EOK && count != NULL)
		*count = w.n;
	return ret;
}

/* int_col0 - a row callback: column 0 as an integer (SQL NULL: -1) */
static int int_col0(sqlite3_stmt *st, void *arg)
{
	*(int64_t *)arg = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1
								    : sqlite3_column_int64(st, 0);
	return DJ_EOK;
}

int js_store__sq_bump_join_nonces(struct js_store *s, uint32_t margin, const char *actor,
				  uint64_t *count)
{
	struct js_store__sq *q = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	uint64_t nd = 0, nt = 0;
	int64_t top = -1;
	int ret = js_store__sq_wbegin(q);

	if (ret != DJ_EOK)
		return ret;
	ret = js_store__sq_rows(q, "SELECT max(m) FROM (SELECT max(join_nonce_last) AS m FROM devices"
				" UNION ALL SELECT max(join_nonce_last) FROM tombstones)",
				JS_SQ_NONE, true, int_col0, &top);
	/* all or nothing: one JoinNonce past the 24-bit counter would refuse its device for good */
	if (ret == DJ_EOK && top + (int64_t)margin > (int64_t)LW_JOINNONCE_MAX)
		ret = DJ_ERANGE;
	if (ret == DJ_EOK)
		ret = js_store__sq_change(q, "UPDATE devices SET join_nonce_last=join_nonce_last+?1,"
					  " version=version+1, sess_token=NULL",
					  JS_SQ_ARGS(JS_SQ_I(margin)), &nd);
	if (ret == DJ_EOK)
		ret = js_store__sq_change(q, "UPDATE tombstones SET"
					  " join_nonce_last=join_nonce_last+?1",
					  JS_SQ_ARGS(JS_SQ_I(margin)), &nt);
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "margin=%u devices=%" PRIu64 " tombstones=%" PRIu64,
			 margin, nd, nt);
		ret = js_store__sq_audit_put(s, NULL, JS_RESTORE_GUARD_EVENT, actor, detail);
	}
	ret = js_store__sq_wend(s, ret);
	if (ret == DJ_EOK && count != NULL)
		*count = nd + nt;
	return ret;
}
