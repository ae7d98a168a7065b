/*
 * test_apikey.c - unit tests of the management API's keys (store/js_apikey.h) on both backends:
 * a token is checked by its salted hash only, revoked keys and wrong tokens are refused, names
 * are unique, scopes parse, create and revoke are audited without the token, and the SQLite
 * file keeps the keys (schema version 6) but never a token.
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

static const uint8_t master[JS_MASTER_KEY_LEN] = { 0xb0, 0xb1, 0xb2 };

static int store_open(struct store_ctx *c)
{
	struct js_store_props p = {
		.path = c->mem ? NULL : c->path,
		.kcv = c->kcv,
		.clock = store_ctx_clock,
		.clock_arg = c,
	};

	return js_store_open(&p, &c->s);
}

static int setup(void **state, bool mem)
{
	return store_ctx_setup(state, mem, "apikey", master, T0, store_open);
}

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

	/* the file keeps the keys, never a token */
	if (!c->mem) {
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

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_sqlite, store_ctx_teardown), \
		cmocka_unit_test_setup_teardown(t, setup_mem, store_ctx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_create_check_revoke),
		BOTH(test_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
