/*
 * test_store_tombstone.c - unit tests of the store's tombstones (issue 12 item 1), on both
 * backends: a deleted device keeps its nonce state, a re-import (CSV import, devices_add, owner
 * enroll) continues from it so that no JoinNonce is issued twice, --forget-nonces keeps only the
 * JoinNonce, and restore-guard raises every JoinNonce (devices and tombstones) all or nothing.
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
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "store/js_store_owner.h"
#include "test_store_util.h"

#define T0 1700000000
#define OLD_DEV_NONCE 9
#define OLD_JOIN_NONCE 42
#define OLD_RJCOUNT1 4
#define MARGIN 1000

static const uint8_t master[JS_MASTER_KEY_LEN] = { 0xa0, 0xa1, 0xa2, 0xa3 };
static const uint8_t app_key[LW_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t chain[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

static int store_open(struct store_ctx *c)
{
	struct js_store_props p = {
		.path = c->mem ? NULL : c->path,
		.conninfo = c->mem ? NULL : store_test_conninfo(c->path),
		.kcv = c->kcv,
		.clock = store_ctx_clock,
		.clock_arg = c,
	};

	return js_store_open(&p, &c->s);
}

static int setup(void **state, bool mem)
{
	return store_ctx_setup(state, mem, "tomb", master, T0, store_open);
}

static int setup_sqlite(void **state) { return setup(state, false); }
static int setup_mem(void **state) { return setup(state, true); }

/* reopen - close and open again: the SQLite file keeps its tombstones (memory: no-op) */
static void reopen(struct store_ctx *c)
{
	if (c->mem)
		return;
	js_store_close(c->s);
	c->s = NULL;
	assert_int_equal(store_open(c), DJ_EOK);
}

static void mk_device(struct store_ctx *c, uint32_t i, struct js_device *d)
{
	size_t len = sizeof(d->root_token);

	memset(d, 0, sizeof(*d));
	store_test_eui(i, d->dev_eui);
	memset(d->join_eui, 0x11, LW_EUI_LEN);
	d->mac_version = LW_V1_0_3;
	assert_int_equal(js_keystore_seal_root(c->ks, d->dev_eui, app_key, NULL, d->root_token,
					       &len), DJ_EOK);
	d->root_token_len = (uint32_t)len;
}

static void add_one(struct store_ctx *c, uint32_t i, unsigned flags)
{
	struct js_device *d = calloc(1, sizeof(*d));
	size_t failed = 0;

	assert_non_null(d);
	mk_device(c, i, d);
	if (flags == 0)
		assert_int_equal(js_store_devices_add(c->s, d, 1, "t", &failed), DJ_EOK);
	else
		assert_int_equal(js_store_devices_import_flags(c->s, 1, NULL, NULL, "t", flags,
							       &failed), DJ_EINVAL);
	free(d);
}

/* get_one - js_store_devices_import() producer of one device */
static int get_one(size_t i, struct js_device *d, void *arg)
{
	(void)i;
	memcpy(d, arg, sizeof(*d));
	return DJ_EOK;
}

static void import_one(struct store_ctx *c, uint32_t i, unsigned flags)
{
	struct js_device *d = calloc(1, sizeof(*d));
	size_t failed = 0;

	assert_non_null(d);
	mk_device(c, i, d);
	assert_int_equal(js_store_devices_import_flags(c->s, 1, get_one, d, "t", flags, &failed),
			 DJ_EOK);
	free(d);
}

/* joined - device i has joined: DevNonces 5 and 9 used, JoinNonce 42, RJcount1 4, a session */
static struct js_commit *joined(struct store_ctx *c, uint32_t i)
{
	struct js_commit *m = calloc(1, sizeof(*m));
	struct js_device *g = store_ctx_get(c, i, DJ_EOK);

	assert_non_null(m);
	store_test_eui(i, m->dev_eui);
	m->expect_version = g->st.version;
	m->new_st.dev_nonce_last = OLD_DEV_NONCE;
	m->new_st.join_nonce_last = OLD_JOIN_NONCE;
	m->new_st.rjcount1_last = OLD_RJCOUNT1;
	m->new_st.hist_len = 2;
	m->new_st.hist[0] = 5;
	m->new_st.hist[1] = OLD_DEV_NONCE;
	m->new_st.sess_token_len = 4;
	memset(m->new_st.sess_token, 0x5a, 4);
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	free(g);
	return m;
}

static void del(struct store_ctx *c, uint32_t i)
{
	uint8_t e[LW_EUI_LEN];

	store_test_eui(i, e);
	assert_int_equal(js_store_device_delete(c->s, e, "op"), DJ_EOK);
	free(store_ctx_get(c, i, DJ_ENOENT));
}

/* audit_count - counts entries of one event */
struct audit_count {
	const char *event;
	const char *detail;	/* NULL: any */
	int n;
};

static int audit_cb(const struct js_audit_entry *e, void *arg)
{
	struct audit_count *a = arg;

	if (strcmp(e->event, a->event) == 0 &&
	    (a->detail == NULL || strcmp(e->detail, a->detail) == 0))
		a->n++;
	return 0;
}

static int audit_n(struct store_ctx *c, const char *event)
{
	struct audit_count a = { .event = event };

	assert_int_equal(js_store_audit_foreach(c->s, NULL, audit_cb, &a), DJ_EOK);
	return a.n;
}

/* audit_detail_n - counts entries of one event with this detail */
static int audit_detail_n(struct store_ctx *c, const char *event, const char *detail)
{
	struct audit_count a = { .event = event, .detail = detail };

	assert_int_equal(js_store_audit_foreach(c->s, NULL, audit_cb, &a), DJ_EOK);
	return a.n;
}

/* delete then re-import keeps the whole nonce state; a CAS read before the delete is stale */
static void test_delete_reimport_keeps(void **state)
{
	struct store_ctx *c = *state;
	struct js_commit *m;
	struct js_device *g;

	add_one(c, 0, 0);
	add_one(c, 1, 0);
	m = joined(c, 0);
	del(c, 0);
	reopen(c);
	import_one(c, 0, 0);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, OLD_JOIN_NONCE);
	assert_int_equal(g->st.dev_nonce_last, OLD_DEV_NONCE);
	assert_int_equal(g->st.rjcount1_last, OLD_RJCOUNT1);
	assert_int_equal(g->st.hist_len, 2);
	assert_int_equal(g->st.hist[0], 5);
	assert_int_equal(g->st.hist[1], OLD_DEV_NONCE);
	assert_int_equal(g->st.sess_token_len, 0);	/* sessions went with the device */
	assert_true(g->st.version > m->expect_version + 1);
	free(g);
	/* the state read before the delete no longer wins a compare-and-swap */
	m->new_st.join_nonce_last = 1;
	assert_int_equal(js_store_commit(c->s, m), DJ_ECONFLICT);
	assert_int_equal(audit_n(c, "device-resume"), 1);
	assert_int_equal(audit_detail_n(c, "device-resume",
					"nonce state continued from the tombstone"), 1);

	/* the tombstone was consumed; a second delete keeps the state again (devices_add) */
	del(c, 0);
	add_one(c, 0, 0);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, OLD_JOIN_NONCE);
	assert_int_equal(g->st.hist_len, 2);
	free(g);
	/* a device never deleted starts fresh */
	g = store_ctx_get(c, 1, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, -1);
	free(g);
	/* a bad call changes nothing */
	add_one(c, 2, JS_IMPORT_FORGET_NONCES);
	free(m);
}

/* --forget-nonces: only the JoinNonce continues */
static void test_forget_nonces(void **state)
{
	struct store_ctx *c = *state;
	struct js_device *g;

	add_one(c, 0, 0);
	free(joined(c, 0));
	del(c, 0);
	import_one(c, 0, JS_IMPORT_FORGET_NONCES);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, OLD_JOIN_NONCE);
	assert_int_equal(g->st.dev_nonce_last, -1);
	assert_int_equal(g->st.rjcount1_last, -1);
	assert_int_equal(g->st.hist_len, 0);
	free(g);
	assert_int_equal(audit_n(c, "device-resume"), 1);
	assert_int_equal(audit_detail_n(c, "device-resume", "JoinNonce continued from the"
					" tombstone, DevNonces forgotten"), 1);
}

/* the ownership enroll path continues a tombstone too */
static void test_enroll_continues(void **state)
{
	struct store_ctx *c = *state;
	struct js_device *d = calloc(1, sizeof(*d)), *g;
	struct js_owner o;
	size_t failed = 0;

	assert_non_null(d);
	add_one(c, 0, 0);
	free(joined(c, 0));
	del(c, 0);
	mk_device(c, 0, d);
	memset(&o, 0, sizeof(o));
	memcpy(o.dev_eui, d->dev_eui, LW_EUI_LEN);
	strcpy(o.zone, "opa.test.");
	o.serial = 1;
	o.chain = (uint8_t *)chain;
	o.chain_len = sizeof(chain);
	assert_int_equal(js_store_owner_enroll(c->s, d, &o, 1, "t", &failed), DJ_EOK);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, OLD_JOIN_NONCE);
	assert_int_equal(g->st.hist_len, 2);
	free(g);
	free(d);
}

/* restore-guard raises devices and tombstones, all or nothing, below the 24-bit limit */
static void test_bump(void **state)
{
	struct store_ctx *c = *state;
	struct js_commit *m;
	struct js_device *g;
	uint64_t count = 0;

	add_one(c, 0, 0);
	add_one(c, 1, 0);	/* never joined */
	add_one(c, 2, 0);
	free(joined(c, 2));
	del(c, 2);		/* a tombstone at 42 */
	m = joined(c, 0);
	assert_int_equal(js_store_bump_join_nonces(c->s, 0, "op", &count), DJ_EINVAL);
	assert_int_equal(js_store_bump_join_nonces(c->s, MARGIN, "op", &count), DJ_EOK);
	assert_int_equal(count, 3);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, OLD_JOIN_NONCE + MARGIN);
	assert_int_equal(g->st.dev_nonce_last, OLD_DEV_NONCE);	/* only the JoinNonce moves */
	assert_int_equal(g->st.sess_token_len, 0);
	free(g);
	assert_int_equal(js_store_commit(c->s, m), DJ_ECONFLICT);	/* stale after the bump */
	g = store_ctx_get(c, 1, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, MARGIN - 1);
	free(g);
	reopen(c);
	import_one(c, 2, 0);
	g = store_ctx_get(c, 2, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, OLD_JOIN_NONCE + MARGIN);
	free(g);
	assert_int_equal(audit_n(c, "restore-guard"), 1);

	/* past LW_JOINNONCE_MAX: refused, nothing changes */
	assert_int_equal(js_store_bump_join_nonces(c->s, LW_JOINNONCE_MAX - MARGIN, "op", &count),
			 DJ_ERANGE);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, OLD_JOIN_NONCE + MARGIN);
	free(g);
	assert_int_equal(js_store_bump_join_nonces(c->s, LW_JOINNONCE_MAX - MARGIN -
						   OLD_JOIN_NONCE, "op", &count), DJ_EOK);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.join_nonce_last, LW_JOINNONCE_MAX);
	free(g);
	assert_int_equal(audit_n(c, "restore-guard"), 2);
	free(m);
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_sqlite, store_ctx_teardown), \
		cmocka_unit_test_setup_teardown(t, setup_mem, store_ctx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_delete_reimport_keeps),
		BOTH(test_forget_nonces),
		BOTH(test_enroll_continues),
		BOTH(test_bump),
	};

	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_delete_reimport_keeps, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_forget_nonces, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_enroll_continues, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_bump, setup_sqlite, store_ctx_teardown),
	};

	return store_test_main("store_tombstone", tests, DJ_ARRAY_LEN(tests), pg_tests,
			       DJ_ARRAY_LEN(pg_tests));
}
