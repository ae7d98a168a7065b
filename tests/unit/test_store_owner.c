/*
 * test_store_owner.c - the registry tables of the store (joinserver/js_store_owner.h): the
 * schema migration 3 -> 4 on a file holding devices, enrollment all or nothing, transfers
 * (next serial only, a replayed serial or nonce, two unfinished transfers of one device, the
 * batch rolled back when one item is refused), the steps up to DONE, auth codes, and the
 * in-memory backend refusing the calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/dj_err.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "store/js_store_owner.h"

static const uint8_t master[JS_MASTER_KEY_LEN] = { 7 };
static const uint8_t chain_a[] = { 1, 2, 3 };
static const uint8_t chain_b[] = { 4, 5, 6, 7 };

struct ctx {
	char path[256];
	struct js_keystore *ks;
	uint8_t kcv[JS_KCV_LEN];
	struct js_store *s;
};

/* open_store - open c->path with the test master key */
static int open_store(struct ctx *c)
{
	struct js_store_props p = { .path = c->path, .kcv = c->kcv };

	return js_store_open(&p, &c->s);
}

/* device - a device row (its token sealed) and its owner row in zone \p zone */
static void device(struct ctx *c, uint8_t last, const char *zone, struct js_device *d,
		   struct js_owner *o)
{
	static const uint8_t appkey[16] = { 0x2b };
	size_t tlen = sizeof(d->root_token);

	memset(d, 0, sizeof(*d));
	memset(o, 0, sizeof(*o));
	memcpy(d->dev_eui, "\x70\xb3\xd5\x7e\xd0\x00\x01\x00", 8);
	d->dev_eui[7] = last;
	memcpy(d->join_eui, "\x70\xb3\xd5\x7e\xd0\x00\x00\x01", 8);
	d->mac_version = LW_V1_0_4;
	assert_int_equal(js_keystore_seal_root(c->ks, d->dev_eui, appkey, NULL, d->root_token,
					       &tlen), DJ_EOK);
	d->root_token_len = (uint32_t)tlen;
	memcpy(o->dev_eui, d->dev_eui, 8);
	strcpy(o->zone, zone);
	o->serial = 1;
	o->chain = (uint8_t *)chain_a;
	o->chain_len = sizeof(chain_a);
	strcpy(o->attrs, "v=dj1\nmodel=m");
}

static int setup(void **state)
{
	static int seq;
	struct ctx *c = calloc(1, sizeof(*c));
	const char *dir = getenv("DJ_TEST_TMPDIR");

	if (c == NULL || js_keystore_new(master, &c->ks) != DJ_EOK)
		return -1;
	js_keystore_kcv(c->ks, c->kcv);
	snprintf(c->path, sizeof(c->path), "%s/owner-%d-%d.db", dir != NULL ? dir : "/tmp",
		 (int)getpid(), seq++);
	unlink(c->path);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	js_store_close(c->s);
	js_keystore_free(c->ks);
	unlink(c->path);
	free(c);
	return 0;
}

/* sql_int - one integer from the file, outside the store */
static long long sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void test_migration_3_to_4(void **state)
{
	struct ctx *c = *state;
	struct js_device d, got;
	struct js_owner o, og;
	size_t failed = 0;
	sqlite3 *db = NULL;

	/* A store as schema 3 wrote it: migrations 1-3 are the same SQL, so open, add a device,
	 * close, and take the schema back to 3 by removing what migration 4 added. */
	assert_int_equal(open_store(c), DJ_EOK);
	device(c, 1, "opa.test.", &d, &o);
	assert_int_equal(js_store_devices_add(c->s, &d, 1, "test", &failed), DJ_EOK);
	js_store_close(c->s);
	c->s = NULL;
	assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE owners; DROP TABLE authcodes; DROP TABLE "
				      "transfers; PRAGMA user_version=3;", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(sql_int(c->path, "PRAGMA user_version"), 3);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM sqlite_master WHERE name='owners'"),
			 0);

	/* the schema-4 program migrates it, and everything of schema 3 is still there */
	assert_int_equal(open_store(c), DJ_EOK);
	assert_int_equal(sql_int(c->path, "PRAGMA user_version"), 4);
	assert_int_equal(js_store_device_get(c->s, d.dev_eui, &got), DJ_EOK);
	assert_memory_equal(got.root_token, d.root_token, d.root_token_len);
	assert_int_equal(js_store_owner_get(c->s, d.dev_eui, &og), DJ_ENOENT);
	{
		char zone[JS_ZONE_MAX];
		uint64_t serial;

		assert_int_equal(js_store_owner_head(c->s, d.dev_eui, zone, sizeof(zone), &serial),
				 DJ_ENOENT);
	}
	/* the new tables work on the migrated file */
	device(c, 2, "opa.test.", &d, &o);
	assert_int_equal(js_store_owner_enroll(c->s, &d, &o, 1, "test", &failed), DJ_EOK);
	assert_int_equal(js_store_owner_get(c->s, d.dev_eui, &og), DJ_EOK);
	assert_string_equal(og.zone, "opa.test.");
	assert_int_equal(og.chain_len, sizeof(chain_a));
	assert_false(og.published);
	js_owner_clear(&og);
	/* opening again is a no-op (no second migration) */
	js_store_close(c->s);
	c->s = NULL;
	assert_int_equal(open_store(c), DJ_EOK);
	assert_int_equal(sql_int(c->path, "PRAGMA user_version"), 4);
}

static void test_enroll_all_or_nothing(void **state)
{
	struct ctx *c = *state;
	struct js_device d[3];
	struct js_owner o[3], og;
	size_t failed = 99;

	assert_int_equal(open_store(c), DJ_EOK);
	device(c, 1, "opa.test.", &d[0], &o[0]);
	assert_int_equal(js_store_owner_enroll(c->s, d, o, 1, "test", &failed), DJ_EOK);
	device(c, 2, "opa.test.", &d[0], &o[0]);
	device(c, 1, "opa.test.", &d[1], &o[1]);	/* already enrolled */
	device(c, 3, "opa.test.", &d[2], &o[2]);
	assert_int_equal(js_store_owner_enroll(c->s, d, o, 3, "test", &failed), DJ_EEXIST);
	assert_int_equal(failed, 1);
	assert_int_equal(js_store_owner_get(c->s, d[0].dev_eui, &og), DJ_ENOENT);
	assert_int_equal(js_store_device_get(c->s, d[0].dev_eui, (struct js_device[1]){ 0 }),
			 DJ_ENOENT);
	/* published */
	assert_int_equal(js_store_owner_set_published(c->s,
		(const uint8_t (*)[LW_EUI_LEN])&d[1].dev_eui, 1), DJ_EOK);
	assert_int_equal(js_store_owner_get(c->s, d[1].dev_eui, &og), DJ_EOK);
	assert_true(og.published);
	js_owner_clear(&og);
}

/* xfer - a transfer of device \p last from \p from to \p to with \p serial, nonce byte \p nb */
static void xfer(struct js_transfer *t, uint8_t last, const char *from, const char *to,
		 uint64_t serial, uint8_t nb)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->dev_eui, "\x70\xb3\xd5\x7e\xd0\x00\x01\x00", 8);
	t->dev_eui[7] = last;
	strcpy(t->from_zone, from);
	strcpy(t->to_zone, to);
	t->serial = serial;
	memset(t->nonce, nb, sizeof(t->nonce));
	t->chain = (uint8_t *)chain_b;
	t->chain_len = sizeof(chain_b);
}

static void test_transfers(void **state)
{
	struct ctx *c = *state;
	struct js_device d[2];
	struct js_owner o[2], og;
	struct js_transfer t[2], found;
	struct js_authcode a, ag;
	int res[2];
	size_t failed = 0;
	int64_t id;

	assert_int_equal(open_store(c), DJ_EOK);
	device(c, 1, "opa.test.", &d[0], &o[0]);
	device(c, 2, "opa.test.", &d[1], &o[1]);
	assert_int_equal(js_store_owner_enroll(c->s, d, o, 2, "test", &failed), DJ_EOK);
	memset(&a, 0, sizeof(a));
	memcpy(a.dev_eui, d[0].dev_eui, 8);
	a.iter = 1;
	a.expires_at = 100;
	a.hash[0] = 0xaa;
	assert_int_equal(js_store_authcode_put(c->s, &a, 1, "test", &failed), DJ_EOK);
	assert_int_equal(js_store_authcode_get(c->s, d[0].dev_eui, &ag), DJ_EOK);
	assert_memory_equal(&a, &ag, sizeof(a));

	/* the wrong serial, and the wrong giver: refused, and the good one in the same batch
	 * is rolled back with them */
	xfer(&t[0], 1, "opa.test.", "opb.test.", 2, 1);
	xfer(&t[1], 2, "opa.test.", "opb.test.", 3, 2);
	assert_int_equal(js_store_transfer_begin(c->s, t, 2, "test", res), DJ_ECONFLICT);
	assert_int_equal(res[0], DJ_EOK);
	assert_int_equal(res[1], DJ_ECONFLICT);
	assert_int_equal(js_store_transfer_find(c->s, t[0].dev_eui, t[0].nonce, &found), DJ_ENOENT);
	xfer(&t[1], 2, "opc.test.", "opb.test.", 2, 2);
	assert_int_equal(js_store_transfer_begin(c->s, &t[1], 1, "test", res), DJ_ECONFLICT);

	/* recorded; a second transfer of the device while it is unfinished is refused */
	assert_int_equal(js_store_transfer_begin(c->s, &t[0], 1, "test", res), DJ_EOK);
	id = t[0].id;
	xfer(&t[1], 1, "opa.test.", "opc.test.", 2, 9);
	assert_int_equal(js_store_transfer_begin(c->s, &t[1], 1, "test", res), DJ_ECONFLICT);
	assert_int_equal(res[0], DJ_ECONFLICT);
	/* the owner row stays until DONE */
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, JS_XFER_NEW_PUBLISHED, "t"),
			 DJ_EOK);
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, JS_XFER_OLD_REPLACED, "t"),
			 DJ_EOK);
	assert_int_equal(js_store_owner_get(c->s, d[0].dev_eui, &og), DJ_EOK);
	assert_string_equal(og.zone, "opa.test.");
	js_owner_clear(&og);
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, JS_XFER_DONE, "t"), DJ_EOK);
	assert_int_equal(js_store_owner_get(c->s, d[0].dev_eui, &og), DJ_EOK);
	assert_string_equal(og.zone, "opb.test.");
	assert_int_equal(og.serial, 2);
	{
		/* the reader-side head (what every join reads) sees the committed transfer */
		char zone[JS_ZONE_MAX];
		uint64_t serial = 0;

		assert_int_equal(js_store_owner_head(c->s, d[0].dev_eui, zone, sizeof(zone),
						     &serial),
				 DJ_EOK);
		assert_string_equal(zone, "opb.test.");
		assert_int_equal(serial, 2);
		assert_int_equal(js_store_owner_head(c->s, d[1].dev_eui, zone, 4, &serial),
				 DJ_EMALFORMED);
	}
	assert_memory_equal(og.chain, chain_b, sizeof(chain_b));
	js_owner_clear(&og);
	/* the auth code is gone with the transfer; DONE twice changes nothing */
	assert_int_equal(js_store_authcode_get(c->s, d[0].dev_eui, &ag), DJ_ENOENT);
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, JS_XFER_DONE, "t"), DJ_EOK);
	assert_int_equal(js_store_transfer_find(c->s, t[0].dev_eui, t[0].nonce, &found), DJ_EOK);
	assert_int_equal(found.step, JS_XFER_DONE);
	js_transfer_clear(&found);

	/* replays: the same serial, or the same nonce with the next serial */
	xfer(&t[1], 1, "opb.test.", "opc.test.", 2, 7);
	assert_int_equal(js_store_transfer_begin(c->s, &t[1], 1, "test", res), DJ_ECONFLICT);
	assert_int_equal(res[0], DJ_EEXIST);
	xfer(&t[1], 1, "opb.test.", "opc.test.", 3, 1);
	assert_int_equal(js_store_transfer_begin(c->s, &t[1], 1, "test", res), DJ_ECONFLICT);
	assert_int_equal(res[0], DJ_EEXIST);
	xfer(&t[1], 1, "opb.test.", "opc.test.", 3, 3);
	assert_int_equal(js_store_transfer_begin(c->s, &t[1], 1, "test", res), DJ_EOK);
}

static int ev_fail;	/* transfer_ev returns this */

/* transfer_ev - a stand-in encoder: "<to_zone>/<serial>", after checking the borrowed chain */
static int transfer_ev(const struct js_transfer *t, int64_t time_ms, uint8_t *buf, size_t cap,
		       size_t *len, void *arg)
{
	int n;

	(void)time_ms;
	assert_ptr_equal(arg, &ev_fail);
	assert_int_equal(t->chain_len, sizeof(chain_b));
	assert_memory_equal(t->chain, chain_b, sizeof(chain_b));
	if (ev_fail != DJ_EOK)
		return ev_fail;
	n = snprintf((char *)buf, cap, "%s/%llu", t->to_zone, (unsigned long long)t->serial);
	*len = (size_t)n;
	return DJ_EOK;
}

/* done_one - transfer device \p last from opa to opb and take it to DONE */
static void done_one(struct ctx *c, uint8_t last, uint8_t nb)
{
	struct js_transfer t;
	int res[1];

	xfer(&t, last, "opa.test.", "opb.test.", 2, nb);
	assert_int_equal(js_store_transfer_begin(c->s, &t, 1, "test", res), DJ_EOK);
	for (int step = JS_XFER_NEW_PUBLISHED; step <= JS_XFER_DONE; step++)
		assert_int_equal(js_store_transfer_advance(c->s, &t.id, 1,
							   (enum js_transfer_step)step, "t"),
				 DJ_EOK);
}

static void test_transfer_events(void **state)
{
	struct ctx *c = *state;
	struct js_store_props p = { .path = c->path, .kcv = c->kcv, .outbox_max = 2 };
	struct js_device d[3];
	struct js_owner o[3];
	struct js_outbox_row rows[4];
	struct js_store_stats st;
	size_t failed = 0, n = 0;
	int64_t id;
	char sql[128];

	assert_int_equal(js_store_open(&p, &c->s), DJ_EOK);
	for (uint8_t i = 0; i < 3; i++)
		device(c, (uint8_t)(i + 1), "opa.test.", &d[i], &o[i]);
	assert_int_equal(js_store_owner_enroll(c->s, d, o, 3, "test", &failed), DJ_EOK);
	js_store_set_transfer_event(c->s, transfer_ev, &ev_fail);

	/* DONE writes one row, in the transaction that moves the owner; a re-run adds none */
	ev_fail = DJ_EOK;
	done_one(c, 1, 1);
	assert_int_equal(js_store_outbox_fetch(c->s, 0, rows, 4, &n), DJ_EOK);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].len, strlen("opb.test./2"));
	assert_memory_equal(rows[0].body, "opb.test./2", rows[0].len);
	id = 1;
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM transfers WHERE step = 3"), 1);
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, JS_XFER_DONE, "t"), DJ_EOK);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM outbox"), 1);
	js_store_stats(c->s, &st);
	assert_int_equal(st.events_written, 1);
	assert_int_equal(st.outbox_rows, 1);

	/* an event that cannot be encoded is dropped; the transfer goes on */
	ev_fail = DJ_ENOSPC;
	done_one(c, 2, 2);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM outbox"), 1);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM owners WHERE zone = 'opb.test.'"),
			 2);
	js_store_stats(c->s, &st);
	assert_int_equal(st.events_dropped, 1);

	/* a full outbox (counted in the file: a row another process wrote counts) drops it too */
	ev_fail = DJ_EOK;
	snprintf(sql, sizeof(sql), "INSERT INTO outbox(at, body) VALUES(0, x'01')");
	{
		sqlite3 *db = NULL;

		assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
		sqlite3_busy_timeout(db, 5000);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	done_one(c, 3, 3);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM outbox"), 2);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM owners WHERE zone = 'opb.test.'"),
			 3);
	js_store_stats(c->s, &st);
	assert_int_equal(st.events_written, 1);
	assert_int_equal(st.events_dropped, 2);
	assert_int_equal(st.outbox_rows, 2);
}

static void test_memory_backend_refuses(void **state)
{
	struct ctx *c = *state;
	struct js_store_props p = { .path = NULL, .kcv = c->kcv };
	struct js_owner og;

	assert_int_equal(js_store_open(&p, &c->s), DJ_EOK);
	assert_int_equal(js_store_owner_get(c->s, (const uint8_t *)"12345678", &og), DJ_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migration_3_to_4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transfer_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_backend_refuses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
