/*
 * test_apikey.c - unit tests of the management API's keys (store/js_apikey.h) on both backends:
 * a token is checked by its salted hash only, revoked keys and wrong tokens are refused, names
 * are unique, scopes parse, create and revoke are audited without the token, keys are walked in
 * byte-wise name order, and the SQLite file keeps the keys (schema version 6) but never a token.
 * Run by with_postgres.sh, the persistent tests run again on PostgreSQL (test_store_util.h): the
 * apikeys table (schema version 2 there) never holds a token, two instances sharing the
 * database see each other's keys and revocations, and a version-1 database gains the table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dj_err.h"
#include "store/js_apikey.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "test_store_util.h"

#define T0 1700000000

#define STOP_RC 7		/* what stop_cb returns: foreach must hand it back */

static const uint8_t master[JS_MASTER_KEY_LEN] = { 0xb0, 0xb1, 0xb2 };

static bool pg_holds(struct store_ctx *c, const char *needle);

/* store_open_into - open the context's database (a second instance when one is open) */
static int store_open_into(struct store_ctx *c, struct js_store **out)
{
	struct js_store_props p = {
		.path = c->mem ? NULL : c->path,
		.conninfo = c->mem ? NULL : store_test_conninfo(c->path),
		.kcv = c->kcv,
		.clock = store_ctx_clock,
		.clock_arg = c,
	};

	return js_store_open(&p, out);
}

/* store_open - open the context's store into c->s */
static int store_open(struct store_ctx *c)
{
	return store_open_into(c, &c->s);
}

static int setup(void **state, bool mem)
{
	return store_ctx_setup(state, mem, "apikey", master, T0, store_open);
}

/* setup_sqlite - the persistent backend: SQLite, or PostgreSQL in the second group */
static int setup_sqlite(void **state) { return setup(state, false); }
static int setup_mem(void **state) { return setup(state, true); }

/* has_bytes - whether \p hay holds \p needle */
static bool has_bytes(const char *hay, size_t len, const char *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return true;
	return false;
}

static int count_cb(const struct js_apikey *k, void *arg)
{
	(void)k;
	(*(int *)arg)++;
	return 0;
}

/* The audit entries seen: their text, to look for a token in. */
struct audit_text {
	char all[4096];
	int n;
};

static int audit_cb(const struct js_audit_entry *e, void *arg)
{
	struct audit_text *t = arg;
	size_t len = strlen(t->all);

	snprintf(t->all + len, sizeof(t->all) - len, "%s|%s|%s\n", e->event, e->actor, e->detail);
	t->n++;
	return 0;
}

static void test_create_check_revoke(void **state)
{
	struct store_ctx *c = *state;
	char ops[JS_APIKEY_TOKEN_MAX], viewer[JS_APIKEY_TOKEN_MAX], wrong[JS_APIKEY_TOKEN_MAX];
	struct js_apikey k;
	struct audit_text t = { .n = 0 };
	int n = 0;

	assert_int_equal(js_apikey_create(c->s, "ops", JS_SCOPE_OPERATE, "cli:t", ops), DJ_EOK);
	assert_int_equal(js_apikey_create(c->s, "viewer", JS_SCOPE_READ, "cli:t", viewer), DJ_EOK);
	assert_int_equal(strlen(ops), JS_APIKEY_TOKEN_LEN);
	assert_memory_equal(ops, "djk_", 4);
	assert_string_not_equal(ops, viewer);

	assert_int_equal(js_apikey_check(c->s, ops, &k), DJ_EOK);
	assert_string_equal(k.name, "ops");
	assert_int_equal(k.scope, JS_SCOPE_OPERATE);
	assert_int_equal(k.created_at, T0);
	assert_int_equal(js_apikey_check(c->s, viewer, &k), DJ_EOK);
	assert_string_equal(k.name, "viewer");

	/* one character off, too short, no prefix: refused */
	strcpy(wrong, ops);
	wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
	assert_int_equal(js_apikey_check(c->s, wrong, &k), DJ_EACCES);
	assert_int_equal(js_apikey_check(c->s, "djk_00", &k), DJ_EACCES);
	assert_int_equal(js_apikey_check(c->s, ops + 4, &k), DJ_EACCES);

	/* a name is taken once, revoked or not */
	assert_int_equal(js_apikey_create(c->s, "ops", JS_SCOPE_READ, "cli:t", wrong), DJ_EEXIST);
	c->now = T0 + 5;
	assert_int_equal(js_apikey_revoke(c->s, "ops", "apikey:boss"), DJ_EOK);
	assert_int_equal(js_apikey_check(c->s, ops, &k), DJ_EACCES);
	assert_int_equal(js_apikey_revoke(c->s, "ops", "apikey:boss"), DJ_ENOENT);
	assert_int_equal(js_apikey_revoke(c->s, "nobody", "apikey:boss"), DJ_ENOENT);
	assert_int_equal(js_apikey_create(c->s, "ops", JS_SCOPE_READ, "cli:t", wrong), DJ_EEXIST);
	assert_int_equal(js_apikey_check(c->s, viewer, &k), DJ_EOK);

	assert_int_equal(js_apikey_foreach(c->s, count_cb, &n), DJ_EOK);
	assert_int_equal(n, 2);

	assert_int_equal(js_store_audit_foreach(c->s, NULL, audit_cb, &t), DJ_EOK);
	assert_int_equal(t.n, 3);
	assert_non_null(strstr(t.all, "apikey-create|cli:t|name=ops scope=operate"));
	assert_non_null(strstr(t.all, "apikey-revoke|apikey:boss|name=ops"));
	assert_null(strstr(t.all, ops + 4));
	assert_null(strstr(t.all, viewer + 4));

	/* the database keeps the keys, never a token */
	if (store_test_pg) {
		js_store_close(c->s);
		c->s = NULL;
		assert_int_equal(store_open(c), DJ_EOK);
		assert_int_equal(js_apikey_check(c->s, viewer, &k), DJ_EOK);
		assert_int_equal(js_apikey_check(c->s, ops, &k), DJ_EACCES);
		assert_false(pg_holds(c, viewer + 4));
		assert_false(pg_holds(c, ops + 4));
		assert_true(pg_holds(c, "viewer"));	/* the probe can fail */
	} else if (!c->mem) {
		FILE *f;
		char *buf = calloc(1, 1 << 20);
		size_t len;

		js_store_close(c->s);
		c->s = NULL;
		assert_int_equal(store_open(c), DJ_EOK);
		assert_int_equal(js_apikey_check(c->s, viewer, &k), DJ_EOK);
		assert_int_equal(js_apikey_check(c->s, ops, &k), DJ_EACCES);
		f = fopen(c->path, "rb");
		assert_non_null(f);
		assert_non_null(buf);
		len = fread(buf, 1, (1 << 20) - 1, f);
		fclose(f);
		assert_false(has_bytes(buf, len, viewer + 4, JS_APIKEY_TOKEN_LEN - 4));
		free(buf);
	}
}

/* The names foreach gave, in order. */
struct names {
	char all[512];
};

static int names_cb(const struct js_apikey *k, void *arg)
{
	struct names *nm = arg;
	size_t len = strlen(nm->all);

	snprintf(nm->all + len, sizeof(nm->all) - len, "%s,", k->name);
	return 0;
}

static int stop_cb(const struct js_apikey *k, void *arg)
{
	(void)k;
	(*(int *)arg)++;
	return STOP_RC;
}

/* test_foreach_order - foreach walks byte-wise name order (as strcmp: "B" before "a", "-"
 * before "."), whatever the insertion order or the database's collation; a non-zero
 * callback stops the walk and is returned */
static void test_foreach_order(void **state)
{
	static const char *const in[] = { "b", "a", "B", "a.1", "a-1", "_x", "Z9", "0" };
	struct store_ctx *c = *state;
	char tok[JS_APIKEY_TOKEN_MAX];
	struct names nm = { .all = "" };
	int n = 0;

	for (size_t i = 0; i < DJ_ARRAY_LEN(in); i++)
		assert_int_equal(js_apikey_create(c->s, in[i], JS_SCOPE_READ, "t", tok), DJ_EOK);
	assert_int_equal(js_apikey_revoke(c->s, "a", "t"), DJ_EOK);	/* revoked ones too */
	assert_int_equal(js_apikey_foreach(c->s, names_cb, &nm), DJ_EOK);
	assert_string_equal(nm.all, "0,B,Z9,_x,a,a-1,a.1,b,");
	assert_int_equal(js_apikey_foreach(c->s, stop_cb, &n), STOP_RC);
	assert_int_equal(n, 1);
}

static void test_bad_input(void **state)
{
	struct store_ctx *c = *state;
	char tok[JS_APIKEY_TOKEN_MAX];
	enum js_apikey_scope s = JS_SCOPE_NONE;
	int n = 0;

	assert_int_equal(js_apikey_create(c->s, "", JS_SCOPE_READ, "t", tok), DJ_EINVAL);
	assert_int_equal(js_apikey_create(c->s, "a b", JS_SCOPE_READ, "t", tok), DJ_EINVAL);
	assert_int_equal(js_apikey_create(c->s, "<img>", JS_SCOPE_READ, "t", tok), DJ_EINVAL);
	assert_int_equal(js_apikey_create(c->s, "x", JS_SCOPE_NONE, "t", tok), DJ_EINVAL);
	assert_int_equal(js_apikey_create(c->s, "x", (enum js_apikey_scope)9, "t", tok), DJ_EINVAL);
	{
		char long_name[JS_APIKEY_NAME_MAX + 1];

		memset(long_name, 'a', sizeof(long_name) - 1);
		long_name[sizeof(long_name) - 1] = '\0';
		assert_int_equal(js_apikey_create(c->s, long_name, JS_SCOPE_READ, "t", tok),
				 DJ_EINVAL);
		long_name[JS_APIKEY_NAME_MAX - 1] = '\0';
		assert_int_equal(js_apikey_create(c->s, long_name, JS_SCOPE_READ, "t", tok),
				 DJ_EOK);
	}
	assert_int_equal(js_apikey_foreach(c->s, count_cb, &n), DJ_EOK);
	assert_int_equal(n, 1);
	assert_int_equal(js_apikey_scope_parse("operate", &s), DJ_EOK);
	assert_int_equal(s, JS_SCOPE_OPERATE);
	assert_int_equal(js_apikey_scope_parse("root", &s), DJ_EINVAL);
	assert_int_equal(js_apikey_scope_parse("none", &s), DJ_EINVAL);
	assert_int_equal(js_apikey_scope_parse(NULL, &s), DJ_EINVAL);
	assert_string_equal(js_apikey_scope_name(JS_SCOPE_ADMIN), "admin");
	assert_true(JS_SCOPE_READ < JS_SCOPE_OPERATE && JS_SCOPE_OPERATE < JS_SCOPE_ADMIN);
}

/* pg_query_text - the text of every row of \p sql on the test's schema, concatenated */
static void pg_query_text(struct store_ctx *c, const char *sql, char *out, size_t cap)
{
	PGconn *pc = PQconnectdb(store_test_conninfo(c->path));
	PGresult *r;
	size_t len = 0;

	out[0] = '\0';
	assert_int_equal(PQstatus(pc), CONNECTION_OK);
	r = PQexec(pc, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	for (int i = 0; i < PQntuples(r); i++)
		for (int j = 0; j < PQnfields(r); j++)
			len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s|",
						PQgetvalue(r, i, j));
	assert_true(len < cap);
	PQclear(r);
	PQfinish(pc);
}

/* pg_holds - whether \p needle appears in any row of the apikeys or audit tables (as text) */
static bool pg_holds(struct store_ctx *c, const char *needle)
{
	char *buf = calloc(1, 1 << 16);
	bool found;

	assert_non_null(buf);
	pg_query_text(c, "SELECT t::text FROM apikeys t UNION ALL SELECT a::text FROM audit a",
		      buf, 1 << 16);
	found = strstr(buf, needle) != NULL;
	free(buf);
	return found;
}

/* test_pg_two_instances - two instances on one database: a key made on one works on the
 * other, a name is taken for both, a revocation on one holds on the other */
static void test_pg_two_instances(void **state)
{
	struct store_ctx *c = *state;
	struct js_store *a = c->s, *b = NULL;
	char tok[JS_APIKEY_TOKEN_MAX], tok2[JS_APIKEY_TOKEN_MAX];
	struct js_apikey k;

	assert_int_equal(store_open_into(c, &b), DJ_EOK);
	assert_int_equal(js_apikey_create(a, "ci", JS_SCOPE_ADMIN, "cli:a", tok), DJ_EOK);
	assert_int_equal(js_apikey_check(b, tok, &k), DJ_EOK);
	assert_int_equal(k.scope, JS_SCOPE_ADMIN);
	assert_int_equal(js_apikey_create(b, "ci", JS_SCOPE_READ, "cli:b", tok2), DJ_EEXIST);
	assert_int_equal(js_apikey_revoke(b, "ci", "cli:b"), DJ_EOK);
	assert_int_equal(js_apikey_check(a, tok, &k), DJ_EACCES);
	assert_int_equal(js_apikey_revoke(a, "ci", "cli:a"), DJ_ENOENT);
	js_store_close(b);
}

/* test_pg_migrate - a database at schema version 1 (before API keys) gains the apikeys table
 * when opened, and keeps its audit log */
static void test_pg_migrate(void **state)
{
	struct store_ctx *c = *state;
	char tok[JS_APIKEY_TOKEN_MAX], buf[256], sql[384], schema[128];
	struct js_apikey k;
	struct audit_text t = { .n = 0 };

	assert_int_equal(js_store_audit(c->s, NULL, "before", "t", "x"), DJ_EOK);
	js_store_close(c->s);
	c->s = NULL;
	store_test_schema(c->path, schema, sizeof(schema));
	snprintf(sql, sizeof(sql), "DROP TABLE %s.apikeys; UPDATE %s.dj_schema SET version = 1",
		 schema, schema);
	assert_true(store_test_pg_sql(sql));
	pg_query_text(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'apikeys'"
		      " AND schemaname = current_schema()", buf, sizeof(buf));
	assert_string_equal(buf, "0|");
	assert_int_equal(store_open(c), DJ_EOK);
	pg_query_text(c, "SELECT version FROM dj_schema", buf, sizeof(buf));
	assert_string_equal(buf, "2|");
	assert_int_equal(js_apikey_create(c->s, "late", JS_SCOPE_OPERATE, "t", tok), DJ_EOK);
	assert_int_equal(js_apikey_check(c->s, tok, &k), DJ_EOK);
	assert_int_equal(js_store_audit_foreach(c->s, NULL, audit_cb, &t), DJ_EOK);
	assert_int_equal(t.n, 2);
	assert_non_null(strstr(t.all, "before|t|x"));
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_sqlite, store_ctx_teardown), \
		cmocka_unit_test_setup_teardown(t, setup_mem, store_ctx_teardown)

#define PG(t) cmocka_unit_test_setup_teardown(t, setup_sqlite, store_ctx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_create_check_revoke),
		BOTH(test_foreach_order),
		BOTH(test_bad_input),
	};
	const struct CMUnitTest pg_tests[] = {
		PG(test_create_check_revoke),
		PG(test_foreach_order),
		PG(test_bad_input),
		PG(test_pg_two_instances),
		PG(test_pg_migrate),
	};

	return store_test_main("apikey", tests, DJ_ARRAY_LEN(tests), pg_tests,
			       DJ_ARRAY_LEN(pg_tests));
}
