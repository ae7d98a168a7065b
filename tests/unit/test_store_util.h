/*
 * test_store_util.h - what the store's unit tests (test_store.c, test_store_owner.c,
 * test_outbox.c) share: a fresh database path for each test, and its removal with the files
 * SQLite keeps beside it. Include after <cmocka.h>.
 *
 * Both persistent backends: main() runs the SQLite group, then, when DJ_TEST_PG_CONNINFO names
 * a PostgreSQL server (tests/unit/with_postgres.sh starts one), the same tests again with
 * store_test_pg set: store_test_conninfo() then maps each test's path to a schema of its own
 * (search_path), created on first use and dropped by store_test_unlink().
 */
#ifndef DJ_TESTS_UNIT_TEST_STORE_UTIL_H
#define DJ_TESTS_UNIT_TEST_STORE_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/js_keystore.h"
#include "store/js_store.h"

#define STORE_TEST_SIDE_MAX 8	/* room for "-wal" / "-shm" and the NUL */

/* the persistent backend under test: false SQLite (path), true PostgreSQL (conninfo) */
static bool store_test_pg;

#define STORE_TEST_CONNINFO_MAX 1024

/* store_test_sql_int - the first column of the first row of \p sql on the SQLite file
 * \p path, read outside the store (-1: no row) */
static inline int64_t store_test_sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* store_test_schema - the schema name of a test path: djt_ and its base name's alphanumerics */
static inline void store_test_schema(const char *path, char *out, size_t cap)
{
	const char *b = strrchr(path, '/');
	size_t k = 0;

	b = b != NULL ? b + 1 : path;
	k = (size_t)snprintf(out, cap, "djt_");
	for (; *b != '\0' && k + 1 < cap; b++)
		if ((*b >= 'a' && *b <= 'z') || (*b >= '0' && *b <= '9'))
			out[k++] = *b;
		else if (*b == '-' || *b == '_')
			out[k++] = '_';
	out[k] = '\0';
}

/* store_test_quiet - drop the server's notices ("does not exist, skipping") */
static inline void store_test_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* store_test_pg_sql - run one statement on DJ_TEST_PG_CONNINFO's database; true on success */
static inline bool store_test_pg_sql(const char *sql)
{
	PGconn *c = PQconnectdb(getenv("DJ_TEST_PG_CONNINFO"));
	PGresult *r;

	PQsetNoticeProcessor(c, store_test_quiet, NULL);
	r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
	bool ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok)
		fprintf(stderr, "store_test_pg_sql: %s\n", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok;
}

/* store_test_conninfo - in PostgreSQL mode the conninfo of the test's own schema (created if
 * missing), else NULL (SQLite at path). A static buffer: js_store_open copies it. */
static inline const char *store_test_conninfo(const char *path)
{
	static char ci[STORE_TEST_CONNINFO_MAX];
	char schema[128], sql[256];

	if (!store_test_pg)
		return NULL;
	store_test_schema(path, schema, sizeof(schema));
	snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", schema);
	if (!store_test_pg_sql(sql))
		return NULL;
	snprintf(ci, sizeof(ci), "%s options='-csearch_path=%s'", getenv("DJ_TEST_PG_CONNINFO"),
		 schema);
	return ci;
}

/* store_test_main - run \p tests (SQLite/memory), then again on PostgreSQL when
 * DJ_TEST_PG_CONNINFO is set; the exit status of main() */
static inline int store_test_main(const char *name, const struct CMUnitTest *tests, size_t n,
				  const struct CMUnitTest *pg_tests, size_t pg_n)
{
	int rc = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
	const char *ci = getenv("DJ_TEST_PG_CONNINFO");

	if (ci == NULL || ci[0] == '\0' || pg_n == 0) {
		printf("%s: PostgreSQL variant not run (DJ_TEST_PG_CONNINFO unset)\n", name);
		return rc;
	}
	store_test_pg = true;
	rc |= _cmocka_run_group_tests("postgresql", pg_tests, pg_n, NULL, NULL);
	store_test_pg = false;
	return rc;
}

/* store_test_unlink - remove a database file and its -wal and -shm files (PostgreSQL mode:
 * drop the test's schema) */
static inline void store_test_unlink(const char *path)
{
	static const char *const side[] = { "", "-wal", "-shm" };
	char p[FILENAME_MAX + STORE_TEST_SIDE_MAX];

	if (store_test_pg) {
		char schema[128], sql[256];

		store_test_schema(path, schema, sizeof(schema));
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
		(void)store_test_pg_sql(sql);
		return;
	}
	for (size_t i = 0; i < sizeof(side) / sizeof(side[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, side[i]);
		unlink(p);
	}
}

/* store_test_path - a path no other test uses, in $DJ_TEST_TMPDIR (or /tmp): name-pid-seq.db,
 * with nothing left there from an earlier run */
static inline void store_test_path(char *path, size_t cap, const char *name)
{
	static int seq;
	const char *dir = getenv("DJ_TEST_TMPDIR");

	snprintf(path, cap, "%s/%s-%d-%d.db", dir != NULL ? dir : "/tmp", name, (int)getpid(),
		 seq++);
	store_test_unlink(path);
}

#define STORE_TEST_PATH_LEN 512

/* One test's context in test_store.c, test_store_owner.c and test_store_tombstone.c: a backend
 * (an SQLite file at path, or memory), a keystore, a settable clock. */
struct store_ctx {
	bool mem;
	char path[STORE_TEST_PATH_LEN];
	struct js_keystore *ks;
	uint8_t kcv[JS_KCV_LEN];
	int64_t now;
	struct js_store *s;
};

/* store_ctx_clock - the injected clock: the context's now */
static inline int64_t store_ctx_clock(void *arg)
{
	return ((struct store_ctx *)arg)->now;
}

/* store_ctx_teardown - close the store, free the keystore, remove the files */
static inline int store_ctx_teardown(void **state)
{
	struct store_ctx *c = *state;

	js_store_close(c->s);
	js_keystore_free(c->ks);
	store_test_unlink(c->path);
	free(c);
	return 0;
}

/* store_test_eui - the DevEUI of device i: 70 00 00 00 and i, big-endian */
static inline void store_test_eui(uint32_t i, uint8_t out[LW_EUI_LEN])
{
	memset(out, 0, LW_EUI_LEN);
	out[0] = 0x70;
	out[4] = (uint8_t)(i >> 24);
	out[5] = (uint8_t)(i >> 16);
	out[6] = (uint8_t)(i >> 8);
	out[7] = (uint8_t)i;
}

/* store_ctx_get - read device i (malloc'd, the caller frees it); its return code must be
 * \p expect */
static inline struct js_device *store_ctx_get(struct store_ctx *c, uint32_t i, int expect)
{
	struct js_device *d = calloc(1, sizeof(*d));
	uint8_t e[LW_EUI_LEN];

	assert_non_null(d);
	store_test_eui(i, e);
	assert_int_equal(js_store_device_get(c->s, e, d), expect);
	return d;
}

/* store_ctx_setup - a fresh context in *state: a new path named after \p name, a keystore
 * under \p master, the clock at \p now, and the store opened by \p open; -1 on failure */
static inline int store_ctx_setup(void **state, bool mem, const char *name,
				  const uint8_t master[JS_MASTER_KEY_LEN], int64_t now,
				  int (*open)(struct store_ctx *c))
{
	struct store_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	c->mem = mem;
	c->now = now;
	store_test_path(c->path, sizeof(c->path), name);
	if (js_keystore_new(master, &c->ks) != DJ_EOK)
		return -1;
	js_keystore_kcv(c->ks, c->kcv);
	if (open(c) != DJ_EOK)
		return -1;
	*state = c;
	return 0;
}

#endif /* DJ_TESTS_UNIT_TEST_STORE_UTIL_H */
