/*
 * migrate.c - danejoin-devices migrate --to CONNINFO: copy an SQLite store into an empty
 * PostgreSQL database (issue 13 item 4).
 *
 * The copy is of rows, not of keys: root-key and session tokens stay wrapped under the same
 * master key, so no key is unwrapped here and the master key file is not read. The target is
 * opened once through js_store_open() (which runs the PostgreSQL schema migrations under their
 * advisory lock and records the store's key check value, or refuses a database that holds
 * another master key's store); then the rows go over one libpq connection in ONE transaction:
 *
 *	1. the SQLite file is locked for writing (BEGIN IMMEDIATE): a danejoind still running on
 *	   it is reported (busy) instead of joining behind the copy's back;
 *	2. on PostgreSQL: BEGIN, LOCK every table, refuse unless every table is empty;
 *	3. every row of every table (devices, tombstones, sessions, audit, outbox, owners,
 *	   authcodes, transfers), in foreign-key order, with its own ids; the id sequences set
 *	   past the copied ids; the SQLite store's instance id kept (stable event ids);
 *	4. the row count of every table compared on both sides; COMMIT only when all match.
 *
 * Any failure, or the process killed at any point, ends the transaction without COMMIT: the
 * target stays empty (apart from the schema, which an empty store has anyway). Progress: a bar
 * on a terminal, else a line every PROGRESS_EVERY rows on stderr.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "common/dj_err.h"
#include "exec.h"
#include "engine/js_config.h"
#include "store/js_keystore.h"
#include "store/js_store.h"

#define MG_COLS_MAX 16
#define MG_SQL_MAX 512
#define MG_INT_TEXT 24
#define PROGRESS_EVERY 10000
#define BAR_WIDTH 40

/* The tables, parents before children (foreign keys); seq: the column of a bigserial id */
static const struct {
	const char *name;
	const char *seq;
} tables[] = {
	{ "devices", NULL },	{ "tombstones", NULL }, { "sessions", NULL },
	{ "audit", "id" },	{ "outbox", "id" },	{ "owners", NULL },
	{ "authcodes", NULL },	{ "transfers", "id" },
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

/* One migration run. */
struct mg {
	sqlite3 *db;
	PGconn *pg;
	int64_t count[NTABLES];	/* rows in SQLite */
	int64_t total, done;
	bool tty;
	int shown;		/* the last percentage drawn (tty) */
	long kill_after;	/* test hook: SIGKILL after this many rows (0: never) */
};

/* pg_ok - run SQL without parameters; false (and a message naming \p what) on failure */
static bool pg_ok(struct mg *m, const char *sql, const char *what)
{
	PGresult *r = PQexec(m->pg, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		errmsg("migrate: %s: %s", what, PQerrorMessage(m->pg));
	PQclear(r);
	return ok;
}

/* pg_count - one bigint answer of \p sql into *out */
static bool pg_count(struct mg *m, const char *sql, int64_t *out)
{
	PGresult *r = PQexec(m->pg, sql);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;

	if (ok)
		*out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		errmsg("migrate: %s: %s", sql, PQerrorMessage(m->pg));
	PQclear(r);
	return ok;
}

/* sq_count - SELECT count(*) of one SQLite table */
static bool sq_count(struct mg *m, const char *table, int64_t *out)
{
	char sql[MG_SQL_MAX];
	sqlite3_stmt *st = NULL;
	bool ok;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	ok = sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) == SQLITE_OK &&
	     sqlite3_step(st) == SQLITE_ROW;
	if (ok)
		*out = sqlite3_column_int64(st, 0);
	else
		errmsg("migrate: the SQLite store: %s: %s", sql, sqlite3_errmsg(m->db));
	sqlite3_finalize(st);
	return ok;
}

/* progress - one more row copied: redraw the bar (tty) or print a line every PROGRESS_EVERY */
static void progress(struct mg *m, const char *table, bool last)
{
	int pct = m->total > 0 ? (int)(m->done * 100 / m->total) : 100;
	int fill = pct * BAR_WIDTH / 100;

	if (m->tty) {
		if (pct == m->shown && !last)
			return;
		m->shown = pct;
		fprintf(stderr, "\rmigrate: [%-*.*s] %3d%% %lld/%lld rows (%s)%s", BAR_WIDTH, fill,
			"########################################", pct, (long long)m->done,
			(long long)m->total, table, last ? "\n" : "   ");
	} else if (last || m->done % PROGRESS_EVERY == 0) {
		fprintf(stderr, "migrate: %lld/%lld rows (%d%%, %s)\n", (long long)m->done,
			(long long)m->total, pct, table);
	}
	if (m->kill_after > 0 && m->done >= m->kill_after)
		raise(SIGKILL);	/* the test of an interrupted migrate: no COMMIT was sent */
}

/* copy_table - every row of one SQLite table into the same PostgreSQL table */
static bool copy_table(struct mg *m, const char *table)
{
	static const char empty[1] = "";
	char sql[MG_SQL_MAX], ints[MG_COLS_MAX][MG_INT_TEXT];
	const char *vals[MG_COLS_MAX];
	int lens[MG_COLS_MAX], fmts[MG_COLS_MAX];
	sqlite3_stmt *st = NULL;
	PGresult *r;
	int ncol, i, n, rc;
	size_t off;
	bool ok = false;

	snprintf(sql, sizeof(sql), "SELECT * FROM %s", table);
	if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK) {
		errmsg("migrate: the SQLite store: %s: %s", sql, sqlite3_errmsg(m->db));
		return false;
	}
	ncol = sqlite3_column_count(st);
	if (ncol <= 0 || ncol > MG_COLS_MAX) {
		errmsg("migrate: the SQLite table %s has %d columns", table, ncol);
		goto out;
	}
	/* INSERT INTO table(c1, ...) VALUES($1, ...), the column names as SQLite has them */
	off = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s(", table);
	for (i = 0; i < ncol && off < sizeof(sql); i++)
		off += (size_t)snprintf(sql + off, sizeof(sql) - off, "%s%s", i ? ", " : "",
					sqlite3_column_name(st, i));
	for (i = 0; i < ncol && off < sizeof(sql); i++)
		off += (size_t)snprintf(sql + off, sizeof(sql) - off, "%s$%d",
					i ? ", " : ") VALUES(", i + 1);
	if (off + 2 >= sizeof(sql)) {
		errmsg("migrate: the SQLite table %s: statement too long", table);
		goto out;
	}
	memcpy(sql + off, ")", 2);
	r = PQprepare(m->pg, table, sql, ncol, NULL);
	n = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!n) {
		errmsg("migrate: the PostgreSQL table %s does not take the SQLite columns: %s",
		       table, PQerrorMessage(m->pg));
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < ncol; i++) {
			fmts[i] = 0;
			lens[i] = 0;
			switch (sqlite3_column_type(st, i)) {
			case SQLITE_NULL:
				vals[i] = NULL;
				break;
			case SQLITE_INTEGER:
				snprintf(ints[i], sizeof(ints[i]), "%lld",
					 (long long)sqlite3_column_int64(st, i));
				vals[i] = ints[i];
				break;
			case SQLITE_BLOB:	/* bytea, sent in binary: the bytes themselves */
				vals[i] = sqlite3_column_blob(st, i);
				lens[i] = sqlite3_column_bytes(st, i);
				if (vals[i] == NULL)
					vals[i] = empty;
				fmts[i] = 1;
				break;
			case SQLITE_TEXT:
				vals[i] = (const char *)sqlite3_column_text(st, i);
				break;
			default:
				errmsg("migrate: the SQLite table %s, column %s: a value of an "
				       "unexpected type (floating point)", table,
				       sqlite3_column_name(st, i));
				goto out;
			}
		}
		r = PQexecPrepared(m->pg, table, ncol, vals, lens, fmts, 0);
		n = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!n) {
			errmsg("migrate: copying a row of %s: %s", table, PQerrorMessage(m->pg));
			goto out;
		}
		m->done++;
		progress(m, table, false);
	}
	if (rc != SQLITE_DONE) {
		errmsg("migrate: reading the SQLite table %s: %s", table, sqlite3_errmsg(m->db));
		goto out;
	}
	ok = true;
out:
	sqlite3_finalize(st);
	return ok;
}

/* keep_instance - the SQLite store's instance id becomes the database's: event ids
 * (instance | outbox id) of the copied outbox rows stay the ones subscribers may have seen */
static bool keep_instance(struct mg *m)
{
	sqlite3_stmt *st = NULL;
	PGresult *r;
	const char *vals[1];
	int lens[1], fmts[1] = { 1 };
	bool ok = true;

	if (sqlite3_prepare_v2(m->db, "SELECT v FROM meta WHERE k='instance'", -1, &st, NULL) !=
	    SQLITE_OK)
		return true;	/* a store from before the outbox: nothing to keep */
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0) {
		vals[0] = sqlite3_column_blob(st, 0);
		lens[0] = sqlite3_column_bytes(st, 0);
		r = PQexecParams(m->pg, "UPDATE meta SET v=$1 WHERE k='instance'", 1, NULL, vals,
				 lens, fmts, 0);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			errmsg("migrate: the instance id: %s", PQerrorMessage(m->pg));
		PQclear(r);
	}
	sqlite3_finalize(st);
	return ok;
}

/* read_kcv - the key check value recorded in the SQLite store */
static bool read_kcv(struct mg *m, uint8_t kcv[JS_KCV_LEN])
{
	sqlite3_stmt *st = NULL;
	bool ok;

	ok = sqlite3_prepare_v2(m->db, "SELECT v FROM meta WHERE k='kcv'", -1, &st, NULL) ==
		     SQLITE_OK &&
	     sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == JS_KCV_LEN;
	if (ok)
		memcpy(kcv, sqlite3_column_blob(st, 0), JS_KCV_LEN);
	sqlite3_finalize(st);
	return ok;
}

/* prepare_target - open the target through the store (schema migrations, the key check value);
 * a database holding another master key's store is refused there */
static int prepare_target(const char *conninfo, const uint8_t kcv[JS_KCV_LEN])
{
	struct js_store_props props;
	struct js_store *s = NULL;
	int rc;

	memset(&props, 0, sizeof(props));
	props.conninfo = conninfo;
	props.kcv = kcv;
	rc = js_store_open(&props, &s);
	if (rc == DJ_EMASTERKEY) {
		errmsg("migrate: the target database holds a store of another master key; "
		       "refusing to copy into it");
		return DV_EXIT_STORE;
	}
	if (rc != DJ_EOK) {
		errmsg("migrate: cannot open the target database: %s", dj_strerror(rc));
		return DV_EXIT_STORE;
	}
	js_store_close(s);
	return DV_EXIT_OK;
}

/* run - steps 2 to 4 of the header, inside the open PostgreSQL transaction */
static int run(struct mg *m)
{
	char sql[MG_SQL_MAX];
	int64_t have;
	size_t i;

	/* no instance may write while we look and copy: the emptiness check stays true */
	if (!pg_ok(m, "LOCK TABLE devices, tombstones, sessions, audit, outbox, owners, "
		      "authcodes, transfers IN ACCESS EXCLUSIVE MODE", "locking the tables"))
		return DV_EXIT_STORE;
	for (i = 0; i < NTABLES; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1) x",
			 tables[i].name);
		if (!pg_count(m, sql, &have))
			return DV_EXIT_STORE;
		if (have != 0) {
			errmsg("migrate: the target database is not empty (table %s has rows); "
			       "refusing to copy into it: migrate needs a database without devices, "
			       "sessions, audit, outbox or registry rows", tables[i].name);
			return DV_EXIT_STORE;
		}
	}
	for (i = 0; i < NTABLES; i++)
		if (!copy_table(m, tables[i].name))
			return DV_EXIT_STORE;
	progress(m, "done", true);
	for (i = 0; i < NTABLES; i++) {
		if (tables[i].seq == NULL)
			continue;
		snprintf(sql, sizeof(sql),
			 "SELECT setval(pg_get_serial_sequence('%s', '%s'), "
			 "(SELECT COALESCE(max(%s), 0) + 1 FROM %s), false)", tables[i].name,
			 tables[i].seq, tables[i].seq, tables[i].name);
		if (!pg_ok(m, sql, "setting an id sequence"))
			return DV_EXIT_STORE;
	}
	if (!keep_instance(m))
		return DV_EXIT_STORE;
	for (i = 0; i < NTABLES; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i].name);
		if (!pg_count(m, sql, &have))
			return DV_EXIT_STORE;
		if (have != m->count[i]) {
			errmsg("migrate: table %s: %lld rows in SQLite but %lld in PostgreSQL; "
			       "nothing committed", tables[i].name, (long long)m->count[i],
			       (long long)have);
			return DV_EXIT_STORE;
		}
	}
	return DV_EXIT_OK;
}

int exec_migrate(const struct js_config *cfg, const struct dv_params *p)
{
	struct mg m;
	uint8_t kcv[JS_KCV_LEN];
	const char *env;
	size_t i;
	int ex = DV_EXIT_STORE;

	memset(&m, 0, sizeof(m));
	m.tty = isatty(STDERR_FILENO) == 1;
	m.shown = -1;
#ifdef DJ_TEST_HOOKS
	env = getenv("DJ_TEST_MIGRATE_KILL_AFTER");
	m.kill_after = env != NULL ? strtol(env, NULL, 10) : 0;
#else
	(void)env;
#endif
	if (cfg->store_conninfo != NULL) {
		errmsg("migrate: copies an SQLite store, but the configuration's [store] backend "
		       "is postgresql: give the configuration of the SQLite store");
		return DV_EXIT_CONFIG;
	}
	if (cfg->store_path == NULL) {
		errmsg("migrate: the configuration names no SQLite store ([store] path)");
		return DV_EXIT_CONFIG;
	}
	if (sqlite3_open_v2(cfg->store_path, &m.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		errmsg("migrate: cannot open the SQLite store %s: %s", cfg->store_path,
		       m.db != NULL ? sqlite3_errmsg(m.db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(m.db, 5000);
	/* the write lock: nothing changes the source while we copy it */
	if (sqlite3_exec(m.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		errmsg("migrate: cannot lock the SQLite store %s (%s): stop danejoind first",
		       cfg->store_path, sqlite3_errmsg(m.db));
		goto out;
	}
	if (!read_kcv(&m, kcv)) {
		errmsg("migrate: %s is not a danejoin store (no key check value)", cfg->store_path);
		goto out;
	}
	for (i = 0; i < NTABLES; i++) {
		if (!sq_count(&m, tables[i].name, &m.count[i]))
			goto out;
		m.total += m.count[i];
	}
	ex = prepare_target(p->to, kcv);
	if (ex != DV_EXIT_OK)
		goto out;
	ex = DV_EXIT_STORE;
	m.pg = PQconnectdb(p->to);
	if (PQstatus(m.pg) != CONNECTION_OK) {
		errmsg("migrate: cannot connect to the target database: %s", PQerrorMessage(m.pg));
		goto out;
	}
	if (!pg_ok(&m, "BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN"))
		goto out;
	ex = run(&m);
	if (ex != DV_EXIT_OK) {
		(void)pg_ok(&m, "ROLLBACK", "ROLLBACK");
		goto out;
	}
	if (!pg_ok(&m, "COMMIT", "COMMIT (nothing was copied)"))
		goto out;
	printf("migrated %s to PostgreSQL in one transaction:", cfg->store_path);
	for (i = 0; i < NTABLES; i++)
		printf(" %lld %s%s", (long long)m.count[i], tables[i].name,
		       i + 1 < NTABLES ? "," : "\n");
	printf("counts checked on both sides. Set [store] backend = postgresql and conninfo in the "
	       "configuration, keep the same master key file, and start danejoind.\n");
	ex = DV_EXIT_OK;
out:
	if (m.pg != NULL)
		PQfinish(m.pg);
	if (m.db != NULL) {
		sqlite3_exec(m.db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(m.db);
	}
	return ex;
}
