/*
 * test_store_owner.c - the ownership registry of the store (store/js_store_owner.h), on both
 * backends: every test of the registry runs once on an SQLite store and once on an in-memory
 * one (BOTH below), so the two implementations of the ops table answer alike. Enrollment all
 * or nothing, owner rows and their walks, auth codes, transfers (next serial only, a replayed
 * serial or nonce, two unfinished transfers of one device, the batch rolled back when one item
 * is refused), the steps up to DONE and their re-runs, the outbox event of a finished
 * transfer, the cascade of a device's deletion and the argument checks. SQLite only: the
 * schema migration 3 -> 4 on a file holding devices, and an outbox row written by another
 * process counting against outbox_max.
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
#include "test_store_util.h"

#define sql_int store_test_sql_int	/* one integer from the file, outside the store */

static const uint8_t master[JS_MASTER_KEY_LEN] = { 7 };
static const uint8_t chain_a[] = { 1, 2, 3 };
static const uint8_t chain_b[] = { 4, 5, 6, 7 };

/* open_max - open the context's store with the test master key and \p outbox_max */
static int open_max(struct store_ctx *c, unsigned outbox_max)
{
	struct js_store_props p = { .path = c->mem ? NULL : c->path,
				    .conninfo = c->mem ? NULL : store_test_conninfo(c->path),
				    .kcv = c->kcv,
				    .outbox_max = outbox_max };

	return js_store_open(&p, &c->s);
}

/* open_store - open the context's store with the default outbox */
static int open_store(struct store_ctx *c)
{
	return open_max(c, 0);
}

/* device - a device row (its token sealed) and its owner row in zone \p zone */
static void device(struct store_ctx *c, uint8_t last, const char *zone, struct js_device *d,
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

static int setup(void **state, bool mem)
{
	struct store_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL || js_keystore_new(master, &c->ks) != DJ_EOK)
		return -1;
	js_keystore_kcv(c->ks, c->kcv);
	c->mem = mem;
	store_test_path(c->path, sizeof(c->path), "owner");
	*state = c;
	return 0;
}

static int setup_sqlite(void **state) { return setup(state, false); }
static int setup_mem(void **state) { return setup(state, true); }

static void test_migration_3_to_4(void **state)
{
	struct store_ctx *c = *state;
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
	assert_int_equal(sql_int(c->path, "PRAGMA user_version"), 8);	/* the newest */
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
	assert_int_equal(sql_int(c->path, "PRAGMA user_version"), 8);
}

static void test_enroll_all_or_nothing(void **state)
{
	struct store_ctx *c = *state;
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
	struct store_ctx *c = *state;
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
static void done_one(struct store_ctx *c, uint8_t last, uint8_t nb)
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

/* SQLite: the event row is in the file, and a row another process wrote counts */
static void test_transfer_events_file(void **state)
{
	struct store_ctx *c = *state;
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

/* zone_count - an owner_foreach callback: owners in the zone at arg->zone */
struct zone_count {
	const char *zone;
	int n;
};

static int count_zone(const struct js_owner *o, void *arg)
{
	struct zone_count *z = arg;

	z->n += strcmp(o->zone, z->zone) == 0;
	return 0;
}

/* owners_in - how many owner rows name \p zone */
static int owners_in(struct store_ctx *c, const char *zone)
{
	struct zone_count z = { zone, 0 };

	assert_int_equal(js_store_owner_foreach(c->s, false, count_zone, &z), DJ_EOK);
	return z.n;
}

/* outbox_rows - the outbox's rows, read through the store */
static size_t outbox_rows(struct store_ctx *c, struct js_outbox_row *rows, size_t max)
{
	size_t n = 99;

	assert_int_equal(js_store_outbox_fetch(c->s, 0, rows, max, &n), DJ_EOK);
	return n;
}

static void test_transfer_events(void **state)
{
	struct store_ctx *c = *state;
	static struct js_outbox_row rows[4];
	static const uint8_t other[] = { 9 };
	struct js_event ev = { .body = other, .len = sizeof(other) };
	struct js_commit *cm = calloc(1, sizeof(*cm));
	struct js_device d[3];
	struct js_owner o[3];
	struct js_transfer found;
	struct js_store_stats st;
	size_t failed = 0;
	int64_t id = 1;

	assert_non_null(cm);
	assert_int_equal(open_max(c, 2), DJ_EOK);
	for (uint8_t i = 0; i < 3; i++)
		device(c, (uint8_t)(i + 1), "opa.test.", &d[i], &o[i]);
	assert_int_equal(js_store_owner_enroll(c->s, d, o, 3, "test", &failed), DJ_EOK);
	/* no hook: DONE writes no event */
	js_store_set_transfer_event(c->s, NULL, NULL);
	done_one(c, 1, 1);
	assert_int_equal(outbox_rows(c, rows, 4), 0);
	js_store_set_transfer_event(c->s, transfer_ev, &ev_fail);

	/* DONE writes one row with the owner's move; a re-run adds none */
	ev_fail = DJ_EOK;
	done_one(c, 2, 2);
	assert_int_equal(outbox_rows(c, rows, 4), 1);
	assert_int_equal(rows[0].len, strlen("opb.test./2"));
	assert_memory_equal(rows[0].body, "opb.test./2", rows[0].len);
	id = 2;
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, JS_XFER_DONE, "t"), DJ_EOK);
	assert_int_equal(outbox_rows(c, rows, 4), 1);
	js_store_stats(c->s, &st);
	assert_int_equal(st.events_written, 1);
	assert_int_equal(st.outbox_rows, 1);

	/* an event that cannot be encoded is dropped; the transfer goes on */
	ev_fail = DJ_ENOSPC;
	xfer(&found, 3, "opa.test.", "opb.test.", 2, 3);
	{
		int res[1];

		assert_int_equal(js_store_transfer_begin(c->s, &found, 1, "test", res), DJ_EOK);
	}
	id = found.id;
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, JS_XFER_DONE, "t"), DJ_EOK);
	assert_int_equal(outbox_rows(c, rows, 4), 1);
	assert_int_equal(owners_in(c, "opb.test."), 3);
	js_store_stats(c->s, &st);
	assert_int_equal(st.events_dropped, 1);

	/* a full outbox drops it too: fill it through the store, move device 3 back */
	assert_int_equal(js_store_owner_head(c->s, d[2].dev_eui, o[0].zone, sizeof(o[0].zone),
					     &o[0].serial), DJ_EOK);
	assert_int_equal(o[0].serial, 2);
	cm->kind = JS_COMMIT_EVENTS;
	memcpy(cm->dev_eui, d[0].dev_eui, LW_EUI_LEN);
	cm->events = &ev;
	assert_int_equal(js_store_commit(c->s, cm), DJ_EOK);
	assert_int_equal(outbox_rows(c, rows, 4), 2);
	ev_fail = DJ_EOK;
	xfer(&found, 3, "opb.test.", "opa.test.", 3, 4);
	{
		int res[1];

		assert_int_equal(js_store_transfer_begin(c->s, &found, 1, "test", res), DJ_EOK);
	}
	assert_int_equal(js_store_transfer_advance(c->s, &found.id, 1, JS_XFER_DONE, "t"),
			 DJ_EOK);
	assert_int_equal(outbox_rows(c, rows, 4), 2);
	assert_int_equal(owners_in(c, "opa.test."), 1);
	js_store_stats(c->s, &st);
	assert_int_equal(st.events_dropped, 2);
	assert_int_equal(st.outbox_rows, 2);
	free(cm);
}

/* owner_list - an owner_foreach callback: record the last byte of each DevEUI, stop at 9 */
struct owner_list {
	uint8_t last[8];
	size_t n;
};

static int list_owner(const struct js_owner *o, void *arg)
{
	struct owner_list *l = arg;

	assert_true(l->n < sizeof(l->last));
	assert_int_equal(o->chain_len, sizeof(chain_a));
	assert_memory_equal(o->chain, chain_a, sizeof(chain_a));
	l->last[l->n++] = o->dev_eui[7];
	return o->dev_eui[7] == 9 ? 42 : 0;
}

static void test_owner_rows(void **state)
{
	struct store_ctx *c = *state;
	struct js_device d[3], plain;
	struct js_owner o[3], og, unused;
	struct owner_list l;
	char zone[JS_ZONE_MAX];
	uint64_t serial = 0;
	size_t failed = 0;

	assert_int_equal(open_store(c), DJ_EOK);
	device(c, 5, "opa.test.", &d[0], &o[0]);
	device(c, 2, "opb.test.", &d[1], &o[1]);
	device(c, 9, "opa.test.", &d[2], &o[2]);
	o[1].serial = 7;
	assert_int_equal(js_store_owner_enroll(c->s, d, o, 3, "test", &failed), DJ_EOK);
	/* every field comes back, the chain as a copy of the caller's own */
	assert_int_equal(js_store_owner_get(c->s, d[1].dev_eui, &og), DJ_EOK);
	assert_memory_equal(og.dev_eui, d[1].dev_eui, LW_EUI_LEN);
	assert_string_equal(og.zone, "opb.test.");
	assert_int_equal(og.serial, 7);
	assert_string_equal(og.attrs, "v=dj1\nmodel=m");
	assert_false(og.published);
	assert_ptr_not_equal(og.chain, chain_a);
	assert_memory_equal(og.chain, chain_a, sizeof(chain_a));
	js_owner_clear(&og);
	assert_null(og.chain);
	assert_int_equal(js_store_owner_head(c->s, d[1].dev_eui, zone, sizeof(zone), &serial),
			 DJ_EOK);
	assert_string_equal(zone, "opb.test.");
	assert_int_equal(serial, 7);
	/* a device without an owner row is not in the registry */
	device(c, 1, "opa.test.", &plain, &unused);
	assert_int_equal(js_store_devices_add(c->s, &plain, 1, "test", &failed), DJ_EOK);
	assert_int_equal(js_store_owner_get(c->s, plain.dev_eui, &og), DJ_ENOENT);
	assert_int_equal(js_store_owner_head(c->s, plain.dev_eui, zone, sizeof(zone), &serial),
			 DJ_ENOENT);
	/* walks in DevEUI order; a callback's non-zero return stops the walk and is returned */
	memset(&l, 0, sizeof(l));
	assert_int_equal(js_store_owner_foreach(c->s, false, list_owner, &l), 42);
	assert_int_equal(l.n, 3);
	assert_memory_equal(l.last, "\x02\x05\x09", 3);
	/* only the unpublished ones; an unknown DevEUI marks nothing and is no error */
	assert_int_equal(js_store_owner_set_published(c->s,
		(const uint8_t (*)[LW_EUI_LEN])plain.dev_eui, 1), DJ_EOK);
	assert_int_equal(js_store_owner_set_published(c->s,
		(const uint8_t (*)[LW_EUI_LEN])d[2].dev_eui, 1), DJ_EOK);
	assert_int_equal(js_store_owner_set_published(c->s, NULL, 0), DJ_EOK);
	memset(&l, 0, sizeof(l));
	assert_int_equal(js_store_owner_foreach(c->s, true, list_owner, &l), DJ_EOK);
	assert_int_equal(l.n, 2);
	assert_memory_equal(l.last, "\x02\x05", 2);
}

/* audit_count - an audit_foreach callback: entries of event arg->event, the last detail kept */
struct audit_count {
	const char *event;
	int n;
	char detail[JS_AUDIT_DETAIL_MAX];
};

static int count_audit(const struct js_audit_entry *e, void *arg)
{
	struct audit_count *a = arg;

	if (strcmp(e->event, a->event) == 0) {
		a->n++;
		strcpy(a->detail, e->detail);
	}
	return 0;
}

/* audits - the entries of \p event about \p dev_eui */
static int audits(struct store_ctx *c, const uint8_t *dev_eui, const char *event, char *detail)
{
	struct audit_count a = { .event = event };

	assert_int_equal(js_store_audit_foreach(c->s, dev_eui, count_audit, &a), DJ_EOK);
	if (detail != NULL)
		strcpy(detail, a.detail);
	return a.n;
}

static void test_authcodes(void **state)
{
	struct store_ctx *c = *state;
	struct js_device d[2];
	struct js_owner o[2];
	struct js_authcode a[2], ag;
	char detail[JS_AUDIT_DETAIL_MAX];
	size_t failed = 0;

	assert_int_equal(open_store(c), DJ_EOK);
	device(c, 1, "opa.test.", &d[0], &o[0]);
	device(c, 2, "opa.test.", &d[1], &o[1]);
	assert_int_equal(js_store_owner_enroll(c->s, d, o, 1, "test", &failed), DJ_EOK);
	assert_int_equal(audits(c, d[0].dev_eui, "device-import", NULL), 1);
	memset(a, 0, sizeof(a));
	for (int i = 0; i < 2; i++) {
		memcpy(a[i].dev_eui, d[i].dev_eui, LW_EUI_LEN);
		memset(a[i].salt, 0x10 + i, sizeof(a[i].salt));
		memset(a[i].hash, 0x20 + i, sizeof(a[i].hash));
		a[i].iter = 1000;
		a[i].expires_at = 1700000000 + i;
	}
	/* an unknown device refuses the batch: the first code is not stored either */
	failed = 99;
	assert_int_equal(js_store_authcode_put(c->s, a, 2, "test", &failed), DJ_ENOENT);
	assert_int_equal(failed, 1);
	assert_int_equal(js_store_authcode_get(c->s, d[0].dev_eui, &ag), DJ_ENOENT);
	assert_int_equal(audits(c, d[0].dev_eui, JS_AUTHCODE_EVENT, NULL), 0);
	/* stored, read back whole; audited with the expiry, never the code */
	assert_int_equal(js_store_authcode_put(c->s, a, 1, "test", &failed), DJ_EOK);
	assert_int_equal(js_store_authcode_get(c->s, d[0].dev_eui, &ag), DJ_EOK);
	assert_memory_equal(&ag, &a[0], sizeof(ag));
	assert_int_equal(audits(c, d[0].dev_eui, JS_AUTHCODE_EVENT, detail), 1);
	assert_string_equal(detail, "expires_at=1700000000");
	/* a new code replaces the old one */
	a[0].expires_at = 5;
	a[0].hash[0] = 0xee;
	assert_int_equal(js_store_authcode_put(c->s, a, 1, "test", &failed), DJ_EOK);
	assert_int_equal(js_store_authcode_get(c->s, d[0].dev_eui, &ag), DJ_EOK);
	assert_int_equal(ag.expires_at, 5);
	assert_int_equal(ag.hash[0], 0xee);
	assert_int_equal(audits(c, d[0].dev_eui, JS_AUTHCODE_EVENT, detail), 2);
	assert_string_equal(detail, "expires_at=5");
	assert_int_equal(js_store_authcode_put(c->s, NULL, 0, "test", &failed), DJ_EOK);
	/* revoked: gone, audited once with its actor; a second revoke (and an unknown device)
	 * finds nothing and audits nothing */
	assert_int_equal(js_store_authcode_revoke(c->s, d[0].dev_eui, "apikey:ops"), DJ_EOK);
	assert_int_equal(js_store_authcode_get(c->s, d[0].dev_eui, &ag), DJ_ENOENT);
	assert_int_equal(audits(c, d[0].dev_eui, JS_AUTHCODE_REVOKE_EVENT, detail), 1);
	assert_string_equal(detail, "revoked");
	assert_int_equal(js_store_authcode_revoke(c->s, d[0].dev_eui, "apikey:ops"), DJ_ENOENT);
	assert_int_equal(js_store_authcode_revoke(c->s, d[1].dev_eui, "apikey:ops"), DJ_ENOENT);
	assert_int_equal(audits(c, d[0].dev_eui, JS_AUTHCODE_REVOKE_EVENT, NULL), 1);
	assert_int_equal(js_store_authcode_revoke(NULL, d[0].dev_eui, "x"), DJ_EINVAL);
}

/* pending_list - a foreach_pending callback: the ids and steps seen */
struct pending_list {
	int64_t id[4];
	enum js_transfer_step step[4];
	size_t n;
};

static int list_pending(const struct js_transfer *t, void *arg)
{
	struct pending_list *p = arg;

	assert_true(p->n < 4);
	assert_int_equal(t->chain_len, sizeof(chain_b));
	assert_memory_equal(t->chain, chain_b, sizeof(chain_b));
	p->id[p->n] = t->id;
	p->step[p->n++] = t->step;
	return 0;
}

/* pending - the unfinished transfers, oldest first */
static size_t pending(struct store_ctx *c, struct pending_list *p)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(js_store_transfer_foreach_pending(c->s, list_pending, p), DJ_EOK);
	return p->n;
}

/* A crash between any two steps leaves rows that a re-run finds and finishes: each step is
 * recorded once, repeating one changes nothing, and the owner row moves only at DONE. */
static void test_transfer_steps(void **state)
{
	struct store_ctx *c = *state;
	struct js_device d[2];
	struct js_owner o[2], og;
	struct js_transfer t[2], found;
	struct pending_list p;
	char detail[JS_AUDIT_DETAIL_MAX];
	int64_t ids[2], bad[2];
	int res[2];
	size_t failed = 0;

	assert_int_equal(open_store(c), DJ_EOK);
	device(c, 1, "opa.test.", &d[0], &o[0]);
	device(c, 2, "opa.test.", &d[1], &o[1]);
	assert_int_equal(js_store_owner_enroll(c->s, d, o, 2, "test", &failed), DJ_EOK);
	assert_int_equal(pending(c, &p), 0);
	xfer(&t[0], 2, "opa.test.", "opb.test.", 2, 1);
	xfer(&t[1], 1, "opa.test.", "opb.test.", 2, 2);
	assert_int_equal(js_store_transfer_begin(c->s, t, 2, "test", res), DJ_EOK);
	assert_int_equal(res[0], DJ_EOK);
	assert_int_equal(res[1], DJ_EOK);
	assert_true(t[0].id > 0);
	assert_true(t[1].id > t[0].id);
	assert_int_equal(t[0].step, JS_XFER_RECORDED);
	ids[0] = t[0].id;
	ids[1] = t[1].id;
	/* oldest first, each at RECORDED */
	assert_int_equal(pending(c, &p), 2);
	assert_int_equal(p.id[0], ids[0]);
	assert_int_equal(p.id[1], ids[1]);
	assert_int_equal(p.step[0], JS_XFER_RECORDED);
	/* a step, then the same step again (a re-run after a crash): no change */
	assert_int_equal(js_store_transfer_advance(c->s, ids, 1, JS_XFER_NEW_PUBLISHED, "t"),
			 DJ_EOK);
	assert_int_equal(js_store_transfer_advance(c->s, ids, 1, JS_XFER_NEW_PUBLISHED, "t"),
			 DJ_EOK);
	assert_int_equal(js_store_transfer_advance(c->s, ids, 1, JS_XFER_OLD_REPLACED, "t"),
			 DJ_EOK);
	/* going back is not a step: a late re-run of an earlier one leaves it where it is */
	assert_int_equal(js_store_transfer_advance(c->s, ids, 1, JS_XFER_NEW_PUBLISHED, "t"),
			 DJ_EOK);
	assert_int_equal(js_store_transfer_advance(c->s, ids, 1, JS_XFER_RECORDED, "t"),
			 DJ_EINVAL);
	assert_int_equal(js_store_transfer_find(c->s, t[0].dev_eui, t[0].nonce, &found), DJ_EOK);
	assert_int_equal(found.step, JS_XFER_OLD_REPLACED);
	assert_int_equal(found.id, ids[0]);
	assert_int_equal(found.serial, 2);
	assert_string_equal(found.from_zone, "opa.test.");
	assert_string_equal(found.to_zone, "opb.test.");
	assert_memory_equal(found.chain, chain_b, sizeof(chain_b));
	js_transfer_clear(&found);
	assert_int_equal(pending(c, &p), 2);
	assert_int_equal(p.step[0], JS_XFER_OLD_REPLACED);
	assert_int_equal(p.step[1], JS_XFER_RECORDED);
	/* an id that does not exist fails the batch: the good one is not moved either */
	bad[0] = ids[1];
	bad[1] = ids[1] + 1000;
	assert_int_equal(js_store_transfer_advance(c->s, bad, 2, JS_XFER_DONE, "t"), DJ_ENOENT);
	assert_int_equal(pending(c, &p), 2);
	assert_int_equal(js_store_owner_get(c->s, d[0].dev_eui, &og), DJ_EOK);
	assert_string_equal(og.zone, "opa.test.");
	js_owner_clear(&og);
	/* both to DONE in one call (the second skipping its middle steps), then again */
	assert_int_equal(js_store_transfer_advance(c->s, ids, 2, JS_XFER_DONE, "t"), DJ_EOK);
	assert_int_equal(js_store_transfer_advance(c->s, ids, 2, JS_XFER_DONE, "t"), DJ_EOK);
	assert_int_equal(pending(c, &p), 0);
	assert_int_equal(owners_in(c, "opb.test."), 2);
	assert_int_equal(js_store_owner_get(c->s, d[1].dev_eui, &og), DJ_EOK);
	assert_true(og.published);
	assert_int_equal(og.serial, 2);
	assert_memory_equal(og.chain, chain_b, sizeof(chain_b));
	js_owner_clear(&og);
	/* one audit entry per finished transfer, with the move and the serial */
	assert_int_equal(audits(c, d[1].dev_eui, JS_TRANSFER_EVENT, detail), 1);
	assert_string_equal(detail, "from=opa.test. to=opb.test. serial=2");
	assert_int_equal(audits(c, d[0].dev_eui, JS_TRANSFER_EVENT, NULL), 1);
	assert_int_equal(js_store_transfer_advance(c->s, NULL, 0, JS_XFER_DONE, "t"), DJ_EOK);
}

/* Deleting a device takes its registry rows with it; its DevEUI can be enrolled afresh. */
static void test_delete_cascade(void **state)
{
	struct store_ctx *c = *state;
	struct js_device d;
	struct js_owner o, og;
	struct js_authcode a, ag;
	struct js_transfer t, found;
	struct pending_list p;
	int64_t id;
	int res[1];
	size_t failed = 0;

	assert_int_equal(open_store(c), DJ_EOK);
	device(c, 1, "opa.test.", &d, &o);
	assert_int_equal(js_store_owner_enroll(c->s, &d, &o, 1, "test", &failed), DJ_EOK);
	memset(&a, 0, sizeof(a));
	memcpy(a.dev_eui, d.dev_eui, LW_EUI_LEN);
	assert_int_equal(js_store_authcode_put(c->s, &a, 1, "test", &failed), DJ_EOK);
	xfer(&t, 1, "opa.test.", "opb.test.", 2, 1);
	assert_int_equal(js_store_transfer_begin(c->s, &t, 1, "test", res), DJ_EOK);
	id = t.id;
	assert_int_equal(js_store_device_delete(c->s, d.dev_eui, "test"), DJ_EOK);
	assert_int_equal(js_store_owner_get(c->s, d.dev_eui, &og), DJ_ENOENT);
	assert_int_equal(js_store_authcode_get(c->s, d.dev_eui, &ag), DJ_ENOENT);
	assert_int_equal(js_store_transfer_find(c->s, d.dev_eui, t.nonce, &found), DJ_ENOENT);
	assert_int_equal(pending(c, &p), 0);
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, JS_XFER_DONE, "t"), DJ_ENOENT);
	assert_int_equal(js_store_authcode_put(c->s, &a, 1, "test", &failed), DJ_ENOENT);
	assert_int_equal(failed, 0);
	xfer(&t, 1, "opa.test.", "opb.test.", 2, 1);
	assert_int_equal(js_store_transfer_begin(c->s, &t, 1, "test", res), DJ_ECONFLICT);
	assert_int_equal(res[0], DJ_ENOENT);
	/* enrolled again: the same serial and nonce are new to it; ids are not reused */
	assert_int_equal(js_store_owner_enroll(c->s, &d, &o, 1, "test", &failed), DJ_EOK);
	assert_int_equal(js_store_transfer_begin(c->s, &t, 1, "test", res), DJ_EOK);
	assert_true(t.id > id);
}

/* The checks of js_store_owner.c, before any backend. */
static void test_bad_arguments(void **state)
{
	struct store_ctx *c = *state;
	struct js_device d;
	struct js_owner o, og;
	struct js_transfer t;
	struct js_authcode ag;
	char zone[JS_ZONE_MAX];
	uint64_t serial;
	int64_t id = 1;
	int res[1];
	size_t failed = 0;

	assert_int_equal(open_store(c), DJ_EOK);
	device(c, 1, "opa.test.", &d, &o);
	assert_int_equal(js_store_owner_enroll(NULL, &d, &o, 1, "t", &failed), DJ_EINVAL);
	assert_int_equal(js_store_owner_enroll(c->s, &d, &o, 0, "t", &failed), DJ_EINVAL);
	o.chain_len = 0;
	assert_int_equal(js_store_owner_enroll(c->s, &d, &o, 1, "t", &failed), DJ_EINVAL);
	o.chain_len = JS_OWNER_CHAIN_MAX + 1;
	assert_int_equal(js_store_owner_enroll(c->s, &d, &o, 1, "t", &failed), DJ_EINVAL);
	o.chain_len = sizeof(chain_a);
	memset(o.zone, 'a', sizeof(o.zone));	/* not terminated */
	assert_int_equal(js_store_owner_enroll(c->s, &d, &o, 1, "t", &failed), DJ_EINVAL);
	strcpy(o.zone, "opa.test.");
	o.dev_eui[0] ^= 1;			/* not the device's */
	assert_int_equal(js_store_owner_enroll(c->s, &d, &o, 1, "t", &failed), DJ_EINVAL);
	o.dev_eui[0] ^= 1;
	assert_int_equal(js_store_owner_get(c->s, d.dev_eui, &og), DJ_ENOENT);	/* nothing in */
	assert_int_equal(js_store_owner_get(c->s, NULL, &og), DJ_EINVAL);
	assert_int_equal(js_store_owner_head(c->s, d.dev_eui, NULL, sizeof(zone), &serial),
			 DJ_EINVAL);
	assert_int_equal(js_store_owner_foreach(c->s, false, NULL, NULL), DJ_EINVAL);
	assert_int_equal(js_store_owner_set_published(c->s, NULL, 1), DJ_EINVAL);
	assert_int_equal(js_store_authcode_put(c->s, NULL, 1, "t", &failed), DJ_EINVAL);
	assert_int_equal(js_store_authcode_get(c->s, d.dev_eui, NULL), DJ_EINVAL);
	xfer(&t, 1, "opa.test.", "opb.test.", 2, 1);
	t.chain = NULL;
	assert_int_equal(js_store_transfer_begin(c->s, &t, 1, "t", res), DJ_EINVAL);
	t.chain = (uint8_t *)chain_b;
	assert_int_equal(js_store_transfer_begin(c->s, &t, 1, "t", NULL), DJ_EINVAL);
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, JS_XFER_RECORDED, "t"),
			 DJ_EINVAL);
	assert_int_equal(js_store_transfer_advance(c->s, &id, 1, (enum js_transfer_step)4, "t"),
			 DJ_EINVAL);
	assert_int_equal(js_store_transfer_advance(c->s, NULL, 1, JS_XFER_DONE, "t"), DJ_EINVAL);
	assert_int_equal(js_store_transfer_find(c->s, d.dev_eui, NULL, &t), DJ_EINVAL);
	assert_int_equal(js_store_transfer_foreach_pending(c->s, NULL, NULL), DJ_EINVAL);
	assert_int_equal(js_store_authcode_get(NULL, d.dev_eui, &ag), DJ_EINVAL);
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_sqlite, store_ctx_teardown), \
		cmocka_unit_test_setup_teardown(t, setup_mem, store_ctx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_enroll_all_or_nothing),
		BOTH(test_owner_rows),
		BOTH(test_authcodes),
		BOTH(test_transfers),
		BOTH(test_transfer_steps),
		BOTH(test_transfer_events),
		BOTH(test_delete_cascade),
		BOTH(test_bad_arguments),
		/* SQLite only: the file itself */
		cmocka_unit_test_setup_teardown(test_migration_3_to_4, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_transfer_events_file, setup_sqlite, store_ctx_teardown),
	};

	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_enroll_all_or_nothing, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_owner_rows, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_authcodes, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_transfers, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_transfer_steps, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_transfer_events, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_delete_cascade, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup_sqlite, store_ctx_teardown),
	};

	return store_test_main("store_owner", tests, DJ_ARRAY_LEN(tests), pg_tests,
			       DJ_ARRAY_LEN(pg_tests));
}
