/*
 * js_store_pg_schema.c - the PostgreSQL backend's schema: versioned migrations run under a
 * session advisory lock (two instances starting at once: one migrates, the other waits and
 * then finds the schema current), the master key's check value, the instance id, re-wrapping
 * every token under a new master key, and the restore guard's JoinNonce bump.
 *
 * SECURITY
 *	The meta table records the master key's check value: an instance started with another
 *	master key is refused (DJ_EMASTERKEY). Re-wrapping is one transaction: old or new, never
 *	a mix. Tables mirror js_store_sqlite_schema.c's; integers are bigint, blobs bytea.
 */
#include "store/js_store_pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dj_err.h"
#include "common/dj_log.h"

struct pg_migration {
	int version;
	const char *sql;
};

/* migrations - the schema history; later versions append entries, never edit old ones */
static const struct pg_migration migrations[] = {
	{ 1,
	  "CREATE TABLE meta(k text PRIMARY KEY, v bytea);"
	  "CREATE TABLE devices("
	  " dev_eui bytea PRIMARY KEY,"
	  " join_eui bytea NOT NULL,"
	  " mac_version bigint NOT NULL,"
	  " root_token bytea NOT NULL,"
	  " created_at bigint NOT NULL,"
	  " version bigint NOT NULL,"
	  " dev_nonce_last bigint NOT NULL,"
	  " join_nonce_last bigint NOT NULL,"
	  " rjcount1_last bigint NOT NULL,"
	  " dn_hist bytea,"
	  " sess_token bytea);"
	  "CREATE TABLE sessions("
	  " session_id bytea PRIMARY KEY,"
	  " dev_eui bytea NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE,"
	  " created_at bigint NOT NULL,"
	  " expires_at bigint NOT NULL,"
	  " session_token bytea NOT NULL);"
	  "CREATE INDEX sessions_dev_eui ON sessions(dev_eui);"
	  "CREATE INDEX sessions_expires ON sessions(expires_at);"
	  "CREATE TABLE audit("
	  " id bigserial PRIMARY KEY,"
	  " at bigint NOT NULL,"
	  " dev_eui bytea,"
	  " event text NOT NULL,"
	  " actor text NOT NULL,"
	  " detail text NOT NULL);"
	  "CREATE INDEX audit_dev_eui ON audit(dev_eui);"
	  /* a sequence never hands an id out twice: instance | id names one event for good */
	  "CREATE TABLE outbox("
	  " id bigserial PRIMARY KEY,"
	  " at bigint NOT NULL,"
	  " body bytea NOT NULL);"
	  "INSERT INTO meta(k, v) VALUES('instance',"
	  " substring(uuid_send(gen_random_uuid()) from 1 for 8)) ON CONFLICT DO NOTHING;"
	  "CREATE TABLE owners("
	  " dev_eui bytea PRIMARY KEY REFERENCES devices(dev_eui) ON DELETE CASCADE,"
	  " zone text NOT NULL,"
	  " serial bigint NOT NULL,"
	  " chain bytea NOT NULL,"
	  " attrs text NOT NULL,"
	  " published bigint NOT NULL,"
	  " updated_at bigint NOT NULL);"
	  "CREATE INDEX owners_unpublished ON owners(published) WHERE published = 0;"
	  "CREATE TABLE authcodes("
	  " dev_eui bytea PRIMARY KEY REFERENCES devices(dev_eui) ON DELETE CASCADE,"
	  " salt bytea NOT NULL,"
	  " iter bigint NOT NULL,"
	  " hash bytea NOT NULL,"
	  " expires_at bigint NOT NULL,"
	  " created_at bigint NOT NULL);"
	  "CREATE TABLE transfers("
	  " id bigserial PRIMARY KEY,"
	  " dev_eui bytea NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE,"
	  " serial bigint NOT NULL,"
	  " nonce bytea NOT NULL,"
	  " from_zone text NOT NULL,"
	  " to_zone text NOT NULL,"
	  " chain bytea NOT NULL,"
	  " step bigint NOT NULL,"
	  " created_at bigint NOT NULL,"
	  " updated_at bigint NOT NULL,"
	  " UNIQUE(dev_eui, serial),"
	  " UNIQUE(dev_eui, nonce));"
	  "CREATE INDEX transfers_pending ON transfers(step) WHERE step < 3;"
	  "CREATE TABLE tombstones("
	  " dev_eui bytea PRIMARY KEY,"
	  " version bigint NOT NULL,"
	  " dev_nonce_last bigint NOT NULL,"
	  " join_nonce_last bigint NOT NULL,"
	  " rjcount1_last bigint NOT NULL,"
	  " dn_hist bytea,"
	  " deleted_at bigint NOT NULL);" },
	/* 2: API keys of the management API (js_apikey.h, js_store_pg_apikey.c): only a salted
	 * hash of each; names compare and sort byte-wise, as on SQLite */
	{ 2,
	  "CREATE TABLE apikeys("
	  " name text COLLATE \"C\" PRIMARY KEY,"
	  " scope bigint NOT NULL,"
	  " created_at bigint NOT NULL,"
	  " revoked_at bigint NOT NULL,"
	  " salt bytea NOT NULL,"
	  " hash bytea NOT NULL);" },
};

/* simple - run SQL text without parameters on the writer (several statements allowed) */
static int simple(struct js_store__pg *q, const char *sql)
{
	PGresult *r = PQexec(q->w.c, sql);
	ExecStatusType st = PQresultStatus(r);
	int ret = DJ_EOK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		dj_err("store: PostgreSQL: %s", PQresultErrorMessage(r));
		ret = DJ_ESQL;
	}
	PQclear(r);
	return ret;
}

/* int0 - a row callback: column 0 as an integer */
static int int0(const PGresult *r, int i, void *arg)
{
	*(int64_t *)arg = js_store__pg_int(r, i, 0);
	return DJ_EOK;
}

/* migrate - under the advisory lock: create the version table, apply the missing steps */
static int migrate(struct js_store__pg *q)
{
	const int newest = migrations[DJ_ARRAY_LEN(migrations) - 1].version;
	int64_t cur = 0;
	char sql[96];
	int ret;

	ret = js_store__pg_run(q, "SELECT pg_advisory_lock($1)",
			       JS_PG_ARGS(JS_PG_I(JS_PG_SCHEMA_LOCK)));
	if (ret != DJ_EOK)
		return ret;
	ret = simple(q, "CREATE TABLE IF NOT EXISTS dj_schema(version bigint NOT NULL)");
	if (ret == DJ_EOK)
		ret = js_store__pg_rows(q, "SELECT coalesce(max(version), 0) FROM dj_schema",
					JS_PG_NONE, true, int0, &cur);
	if (ret == DJ_EOK && cur > newest) {
		dj_err("store: schema version %" PRId64 " is newer than this program's (%d)", cur,
		       newest);
		ret = DJ_ESCHEMA;
	}
	for (size_t i = 0; ret == DJ_EOK && i < DJ_ARRAY_LEN(migrations); i++) {
		const struct pg_migration *m = &migrations[i];

		if (m->version <= cur)
			continue;
		ret = simple(q, "BEGIN");
		if (ret == DJ_EOK)
			ret = simple(q, m->sql);
		snprintf(sql, sizeof(sql), "DELETE FROM dj_schema; INSERT INTO dj_schema VALUES(%d)",
			 m->version);
		if (ret == DJ_EOK)
			ret = simple(q, sql);
		if (ret == DJ_EOK)
			ret = simple(q, "COMMIT");
		if (ret != DJ_EOK)
			(void)simple(q, "ROLLBACK");
		else
			dj_info("store: PostgreSQL schema migrated to version %d", m->version);
	}
	if (js_store__pg_run(q, "SELECT pg_advisory_unlock($1)",
			     JS_PG_ARGS(JS_PG_I(JS_PG_SCHEMA_LOCK))) != DJ_EOK && ret == DJ_EOK)
		ret = DJ_ESQL;
	return ret;
}

/* kcv_row - a row callback: the meta value into the JS_KCV_LEN buffer at arg */
static int kcv_row(const PGresult *r, int i, void *arg)
{
	size_t len;
	const uint8_t *p = js_store__pg_blob(r, i, 0, &len);

	if (p == NULL || len != JS_KCV_LEN)
		return DJ_EMALFORMED;
	memcpy(arg, p, JS_KCV_LEN);
	return DJ_EOK;
}

/* instance_row - a row callback: the instance id */
static int instance_row(const PGresult *r, int i, void *arg)
{
	size_t len;
	const uint8_t *p = js_store__pg_blob(r, i, 0, &len);

	if (p == NULL || len != JS_INSTANCE_ID_LEN)
		return DJ_EMALFORMED;
	memcpy(arg, p, JS_INSTANCE_ID_LEN);
	return DJ_EOK;
}

int js_store__pg_schema_open(struct js_store *s, const uint8_t kcv[JS_KCV_LEN])
{
	struct js_store__pg *q = s->be;
	uint8_t have[JS_KCV_LEN];
	int64_t rows = 0;
	int ret;

	ret = migrate(q);
	if (ret != DJ_EOK)
		return ret;
	/* the first instance records its KCV; every later one must match it */
	ret = js_store__pg_run(q, "INSERT INTO meta(k, v) VALUES('kcv', $1) ON CONFLICT DO NOTHING",
			       JS_PG_ARGS(JS_PG_B(kcv, JS_KCV_LEN)));
	if (ret == DJ_EOK)
		ret = js_store__pg_rows(q, "SELECT v FROM meta WHERE k='kcv'", JS_PG_NONE, true,
					kcv_row, have);
	if (ret == DJ_EOK && memcmp(have, kcv, JS_KCV_LEN) != 0)
		ret = DJ_EMASTERKEY;
	if (ret == DJ_EOK)
		ret = js_store__pg_rows(q, "SELECT v FROM meta WHERE k='instance'", JS_PG_NONE,
					true, instance_row, s->instance);
	if (ret == DJ_EOK)
		ret = js_store__pg_rows(q, "SELECT count(*) FROM outbox", JS_PG_NONE, true, int0,
					&rows);
	if (ret == DJ_EOK) {
		q->outbox_n = (uint64_t)rows;
		q->outbox_counted_ms = js_store__pg_ms();
		js_store__outbox_count(s, 0, 0, 0, q->outbox_n);
	}
	return ret;
}

struct rewrap {
	struct js_store__pg *q;
	struct js_keystore *old_ks, *new_ks;
	uint64_t n;
};

static int rewrap_col(struct rewrap *w, const PGresult *r, int i, int col, const char *purpose,
		      const uint8_t *id, size_t id_len, uint8_t *out, size_t *out_len)
{
	uint8_t label[JS_LABEL_MAX];
	size_t label_len, len;
	const uint8_t *tok = js_store__pg_blob(r, i, col, &len);
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

static int rewrap_device(const PGresult *r, int i, void *arg)
{
	struct rewrap *w = arg;
	uint8_t eui[LW_EUI_LEN], root[JS_TOKEN_MAX], sess[JS_TOKEN_MAX], sid[JS_SESSION_ID_LEN];
	size_t root_len = 0, sess_len = 0, eui_len;
	const uint8_t *p = js_store__pg_blob(r, i, 0, &eui_len);
	int ret;

	if (eui_len != LW_EUI_LEN)
		return DJ_EMALFORMED;
	memcpy(eui, p, LW_EUI_LEN);
	ret = rewrap_col(w, r, i, 1, JS_PURPOSE_ROOT, eui, LW_EUI_LEN, root, &root_len);
	js_session_id(eui, (uint32_t)js_store__pg_int(r, i, 3), sid);
	if (ret == DJ_EOK)
		ret = rewrap_col(w, r, i, 2, JS_PURPOSE_SESSION, sid, sizeof(sid), sess, &sess_len);
	if (ret == DJ_EOK)
		ret = js_store__pg_run(w->q, "UPDATE devices SET root_token=$1, sess_token=$2"
				       " WHERE dev_eui=$3",
				       JS_PG_ARGS(JS_PG_B(root, root_len), JS_PG_B(sess, sess_len),
						  JS_PG_EUI(eui)));
	return ret;
}

static int rewrap_session(const PGresult *r, int i, void *arg)
{
	struct rewrap *w = arg;
	uint8_t id[JS_SESSION_ID_MAX], tok[JS_TOKEN_MAX];
	size_t id_len, tok_len = 0;
	const uint8_t *p = js_store__pg_blob(r, i, 0, &id_len);
	int ret;

	if (id_len == 0 || id_len > JS_SESSION_ID_MAX)
		return DJ_EMALFORMED;
	memcpy(id, p, id_len);
	ret = rewrap_col(w, r, i, 1, JS_PURPOSE_SESSION, id, id_len, tok, &tok_len);
	if (ret != DJ_EOK || tok_len == 0)
		return ret;
	return js_store__pg_run(w->q, "UPDATE sessions SET session_token=$1 WHERE session_id=$2",
				JS_PG_ARGS(JS_PG_B(tok, tok_len), JS_PG_B(id, id_len)));
}

int js_store__pg_rewrap(struct js_store *s, struct js_keystore *old_ks,
			struct js_keystore *new_ks, const char *actor, uint64_t *count)
{
	struct js_store__pg *q = s->be;
	uint8_t have[JS_KCV_LEN], old_kcv[JS_KCV_LEN], new_kcv[JS_KCV_LEN];
	char detail[JS_AUDIT_DETAIL_MAX];
	struct rewrap w = { .q = q, .old_ks = old_ks, .new_ks = new_ks, .n = 0 };
	int ret;

	js_keystore_kcv(old_ks, old_kcv);
	js_keystore_kcv(new_ks, new_kcv);
	ret = js_store__pg_wbegin(q);
	if (ret != DJ_EOK)
		return ret;
	/* FOR UPDATE: a second rewrap waits, then finds the new KCV */
	ret = js_store__pg_rows(q, "SELECT v FROM meta WHERE k='kcv' FOR UPDATE", JS_PG_NONE, true,
				kcv_row, have);
	if (ret == DJ_EOK && memcmp(have, old_kcv, JS_KCV_LEN) != 0)
		ret = DJ_EMASTERKEY;
	if (ret == DJ_EOK)
		ret = js_store__pg_rows(q, "SELECT dev_eui, root_token, sess_token, join_nonce_last"
					" FROM devices FOR UPDATE", JS_PG_NONE, false,
					rewrap_device, &w);
	if (ret == DJ_EOK)
		ret = js_store__pg_rows(q, "SELECT session_id, session_token FROM sessions"
					" FOR UPDATE", JS_PG_NONE, false, rewrap_session, &w);
	if (ret == DJ_EOK)
		ret = js_store__pg_run(q, "UPDATE meta SET v=$1 WHERE k='kcv'",
				       JS_PG_ARGS(JS_PG_B(new_kcv, JS_KCV_LEN)));
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "tokens=%llu", (unsigned long long)w.n);
		ret = js_store__pg_audit_put(s, NULL, JS_REWRAP_EVENT, actor, detail);
	}
	ret = js_store__pg_wend(s, ret);
	if (ret == DJ_EOK && count != NULL)
		*count = w.n;
	return ret;
}

int js_store__pg_bump_join_nonces(struct js_store *s, uint32_t margin, const char *actor,
				  uint64_t *count)
{
	struct js_store__pg *q = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	uint64_t nd = 0, nt = 0;
	int64_t top = -1;
	int ret = js_store__pg_wbegin(q);

	if (ret != DJ_EOK)
		return ret;
	/* the table locks keep a concurrent join from slipping between the check and the bump */
	ret = js_store__pg_run(q, "LOCK TABLE devices, tombstones IN EXCLUSIVE MODE", JS_PG_NONE);
	if (ret == DJ_EOK)
		ret = js_store__pg_rows(q, "SELECT max(m) FROM (SELECT max(join_nonce_last) AS m"
					" FROM devices UNION ALL SELECT max(join_nonce_last)"
					" FROM tombstones) AS x", JS_PG_NONE, true, int0, &top);
	if (ret == DJ_EOK && top + (int64_t)margin > (int64_t)LW_JOINNONCE_MAX)
		ret = DJ_ERANGE;
	if (ret == DJ_EOK)
		ret = js_store__pg_change(q, "UPDATE devices SET join_nonce_last=join_nonce_last+$1,"
					  " version=version+1, sess_token=NULL",
					  JS_PG_ARGS(JS_PG_I(margin)), &nd);
	if (ret == DJ_EOK)
		ret = js_store__pg_change(q, "UPDATE tombstones SET"
					  " join_nonce_last=join_nonce_last+$1",
					  JS_PG_ARGS(JS_PG_I(margin)), &nt);
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "margin=%u devices=%" PRIu64 " tombstones=%" PRIu64,
			 margin, nd, nt);
		ret = js_store__pg_audit_put(s, NULL, JS_RESTORE_GUARD_EVENT, actor, detail);
	}
	ret = js_store__pg_wend(s, ret);
	if (ret == DJ_EOK && count != NULL)
		*count = nd + nt;
	return ret;
}

/* --- danejoin-devices check ------------------------------------------------------------- */

#define PG_CHECK_LINE_MAX 512
#define PG_SQLSTATE_NO_PRIVILEGE "42501"	/* insufficient_privilege */
#define PG_CHECK_FN_MAX 256	/* "SELECT <quoted schema>.bt_index_check($1::oid)" */
#define PG_MV_MIN 0		/* LW_V1_0_0 .. LW_V1_1, as numbers for the SQL text */
#define PG_MV_MAX 5
_Static_assert(LW_V1_0_0 == PG_MV_MIN && LW_V1_1 == PG_MV_MAX, "PG_MV_* follow enum lw_version");
_Static_assert(LW_JOINNONCE_MAX == 16777215, "the JoinNonce bound in the check's SQL");
#define PG_CHECK_ROWS_MAX 100	/* problem rows reported per rule; the rest are counted */
#define PG_CHECK_LIMIT " LIMIT " DJ_STR(PG_CHECK_ROWS_MAX) " + 1"
#define PG_NO_DEVICE(t) "SELECT encode(dev_eui, 'hex') FROM " t " x WHERE NOT EXISTS" \
			" (SELECT 1 FROM devices d WHERE d.dev_eui = x.dev_eui)" PG_CHECK_LIMIT

/* One row-level rule: \p sql selects the key (hex text) of every row breaking it. */
struct pg_rule {
	const char *table, *rule, *sql;
};

/* rules - what js_store_pg.c's row reader and the SQLite schema require of every row; a
 * problem is named by its table, its key and the rule, never by a token's bytes */
static const struct pg_rule rules[] = {
	{ "devices", "dev_eui is not 8 bytes",
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE length(dev_eui) <> 8" PG_CHECK_LIMIT },
	{ "devices", "join_eui is not 8 bytes",
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE length(join_eui) <> 8" PG_CHECK_LIMIT },
	{ "devices", "root_token is empty or longer than " DJ_STR(JS_TOKEN_MAX) " bytes",
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE length(root_token) NOT BETWEEN 1 AND "
	  DJ_STR(JS_TOKEN_MAX) PG_CHECK_LIMIT },
	{ "devices", "sess_token is longer than " DJ_STR(JS_TOKEN_MAX) " bytes",
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE length(sess_token) > "
	  DJ_STR(JS_TOKEN_MAX) PG_CHECK_LIMIT },
	{ "devices", "dn_hist is not whole DevNonces or holds more than "
	  DJ_STR(JS_DEVNONCE_HIST_MAX),
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE length(dn_hist) % 2 <> 0"
	  " OR length(dn_hist) > 2 * " DJ_STR(JS_DEVNONCE_HIST_MAX) PG_CHECK_LIMIT },
	{ "devices", "version is negative",
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE version < 0" PG_CHECK_LIMIT },
	{ "devices", "join_nonce_last is neither -1 nor within 0..16777215",
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE join_nonce_last NOT BETWEEN -1 AND"
	  " 16777215" PG_CHECK_LIMIT },
	{ "devices", "dev_nonce_last is neither -1 nor within 0..65535",
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE dev_nonce_last NOT BETWEEN -1 AND"
	  " 65535" PG_CHECK_LIMIT },
	{ "devices", "rjcount1_last is neither -1 nor within 0..65535",
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE rjcount1_last NOT BETWEEN -1 AND"
	  " 65535" PG_CHECK_LIMIT },
	{ "devices", "mac_version is not a known LoRaWAN version",
	  "SELECT encode(dev_eui, 'hex') FROM devices WHERE mac_version NOT BETWEEN "
	  DJ_STR(PG_MV_MIN) " AND " DJ_STR(PG_MV_MAX) PG_CHECK_LIMIT },
	{ "tombstones", "join_nonce_last is neither -1 nor within 0..16777215",
	  "SELECT encode(dev_eui, 'hex') FROM tombstones WHERE join_nonce_last NOT BETWEEN -1 AND"
	  " 16777215" PG_CHECK_LIMIT },
	{ "sessions", "its device does not exist", PG_NO_DEVICE("sessions") },
	{ "owners", "its device does not exist", PG_NO_DEVICE("owners") },
	{ "authcodes", "its device does not exist", PG_NO_DEVICE("authcodes") },
	{ "transfers", "its device does not exist", PG_NO_DEVICE("transfers") },
	{ "outbox", "id is above its sequence",
	  "SELECT id::text FROM outbox WHERE id > (SELECT last_value FROM outbox_id_seq)"
	  PG_CHECK_LIMIT },
};

/* query - \p sql (no parameters, text results) on \p c; NULL after reporting the error */
static PGresult *query(PGconn *c, const char *sql, const char *what,
		       void (*cb)(const char *line, void *arg), void *arg)
{
	char line[PG_CHECK_LINE_MAX];
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	size_t n;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return r;
	snprintf(line, sizeof(line), "%s: %s", what, PQresultErrorMessage(r));
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < ' ')
			line[i] = ' ';
	cb(line, arg);
	PQclear(r);
	return NULL;
}

/* check_schema - the schema version is the one this program writes */
static int check_schema(PGconn *c, void (*cb)(const char *line, void *arg), void *arg)
{
	const int newest = migrations[DJ_ARRAY_LEN(migrations) - 1].version;
	char line[PG_CHECK_LINE_MAX];
	PGresult *r = query(c, "SELECT count(*), coalesce(max(version), 0) FROM dj_schema",
			    "dj_schema", cb, arg);
	long rows, v;
	int ret = DJ_EOK;

	if (r == NULL)
		return DJ_EMALFORMED;
	rows = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	v = strtol(PQgetvalue(r, 0, 1), NULL, 10);
	if (rows != 1 || v != newest) {
		snprintf(line, sizeof(line), "dj_schema: version %ld (%ld rows): this program "
			 "expects version %d in one row", v, rows, newest);
		cb(line, arg);
		ret = DJ_EMALFORMED;
	}
	PQclear(r);
	return ret;
}

/* check_rule - one row-level rule: a line per breaking row (at most PG_CHECK_ROWS_MAX) */
static int check_rule(PGconn *c, const struct pg_rule *u,
		      void (*cb)(const char *line, void *arg), void *arg)
{
	char line[PG_CHECK_LINE_MAX];
	PGresult *r = query(c, u->sql, u->table, cb, arg);
	int n;

	if (r == NULL)
		return DJ_EMALFORMED;
	n = PQntuples(r);
	for (int i = 0; i < n && i < PG_CHECK_ROWS_MAX; i++) {
		snprintf(line, sizeof(line), "%s: %s %s: %s", u->table,
			 strcmp(u->table, "outbox") == 0 ? "id" : "DevEUI", PQgetvalue(r, i, 0),
			 u->rule);
		cb(line, arg);
	}
	if (n > PG_CHECK_ROWS_MAX) {
		snprintf(line, sizeof(line), "%s: more rows where %s (not listed)", u->table,
			 u->rule);
		cb(line, arg);
	}
	PQclear(r);
	return n > 0 ? DJ_EMALFORMED : DJ_EOK;
}

/* check_indexes - bt_index_check on every B-tree index of the schema, when amcheck can be had */
static int check_indexes(PGconn *c, void (*cb)(const char *line, void *arg), void *arg)
{
	char line[PG_CHECK_LINE_MAX], fn[PG_CHECK_FN_MAX];
	const char *pv[1], *sqlstate;
	PGresult *r, *x;
	int ret = DJ_EOK;

	r = PQexec(c, "CREATE EXTENSION IF NOT EXISTS amcheck");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		cb("amcheck not available: indexes not checked", arg);
		return DJ_EOK;
	}
	PQclear(r);
	/* the extension may live in another schema than the store's (search_path): qualify */
	r = query(c, "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n"
		  " ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'", "amcheck", cb, arg);
	if (r == NULL || PQntuples(r) != 1) {
		PQclear(r);
		cb("amcheck not available: indexes not checked", arg);
		return DJ_EOK;
	}
	snprintf(fn, sizeof(fn), "SELECT %s.bt_index_check($1::oid)", PQgetvalue(r, 0, 0));
	PQclear(r);
	r = query(c, "SELECT c.oid::text, c.relname FROM pg_index i"
		  " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
		  " WHERE a.amname = 'btree' AND c.relnamespace = current_schema()::regnamespace"
		  " ORDER BY c.relname", "indexes", cb, arg);
	if (r == NULL)
		return DJ_EMALFORMED;
	for (int i = 0; i < PQntuples(r); i++) {
		pv[0] = PQgetvalue(r, i, 0);
		x = PQexecParams(c, fn, 1, NULL, pv, NULL, NULL, 0);
		sqlstate = PQresultErrorField(x, PG_DIAG_SQLSTATE);
		if (PQresultStatus(x) != PGRES_TUPLES_OK && sqlstate != NULL &&
		    strcmp(sqlstate, PG_SQLSTATE_NO_PRIVILEGE) == 0) {
			/* installed, but this role may not run it: not the store's fault */
			PQclear(x);
			cb("amcheck not available: indexes not checked", arg);
			break;
		}
		if (PQresultStatus(x) != PGRES_TUPLES_OK) {
			snprintf(line, sizeof(line), "index %s: bt_index_check: %s",
				 PQgetvalue(r, i, 1), PQresultErrorMessage(x));
			for (size_t k = 0; line[k] != '\0'; k++)
				if ((unsigned char)line[k] < ' ')
					line[k] = ' ';
			cb(line, arg);
			ret = DJ_EMALFORMED;
		}
		PQclear(x);
	}
	PQclear(r);
	return ret;
}

int js_store__pg_check(struct js_store *s, bool full, void (*cb)(const char *line, void *arg),
		       void *arg)
{
	struct js_store__pg *q = s->be;
	PGconn *c;
	int ret = DJ_EOK;

	pthread_mutex_lock(&q->wlock);
	c = js_store__pg_conn(q, &q->w);
	if (c == NULL) {
		pthread_mutex_unlock(&q->wlock);
		return DJ_EIO;
	}
	if (check_schema(c, cb, arg) != DJ_EOK)
		ret = DJ_EMALFORMED;
	for (size_t i = 0; i < DJ_ARRAY_LEN(rules); i++)
		if (check_rule(c, &rules[i], cb, arg) != DJ_EOK)
			ret = DJ_EMALFORMED;
	if (full && check_indexes(c, cb, arg) != DJ_EOK)
		ret = DJ_EMALFORMED;
	if (PQstatus(c) != CONNECTION_OK) {
		js_store__pg_check_conn(&q->w);
		ret = DJ_EIO;
	}
	pthread_mutex_unlock(&q->wlock);
	if (ret == DJ_EOK)
		cb("ok", arg);
	return ret;
}
