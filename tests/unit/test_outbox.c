/*
 * test_outbox.c - the event outbox of js_store, on both backends: events written in the same
 * transaction as the state change (and not at all when the compare-and-swap fails), events-only
 * commits, deletion after delivery, the outbox_max bound (the change is made, the events are
 * dropped and counted), the notify hook, ids that never repeat across reopen, and the schema
 * migration from version 2 (no outbox) to 3.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/dj_err.h"
#include "store/js_store.h"
#include "test_store_util.h"

#define PATH_LEN 512

struct ctx {
	bool mem;
	char path[PATH_LEN];
	uint8_t kcv[JS_KCV_LEN];
	unsigned outbox_max;
	struct js_store *s;
	int notified;
};

static const uint8_t dev1[LW_EUI_LEN] = { 0x70, 0, 0, 0, 0, 0, 0, 1 };

/* open_store - open the context's store */
static int open_store(struct ctx *c)
{
	struct js_store_props p = { .path = c->mem ? NULL : c->path,
				    .conninfo = c->mem ? NULL : store_test_conninfo(c->path),
				    .kcv = c->kcv,
				    .outbox_max = c->outbox_max };

	return js_store_open(&p, &c->s);
}

/* add_dev - one device with a dummy (wrapped-looking) root token */
static void add_dev(struct ctx *c)
{
	struct js_device *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	memcpy(d->dev_eui, dev1, LW_EUI_LEN);
	d->join_eui[0] = 0x70;
	d->mac_version = LW_V1_1;
	d->root_token_len = 40;
	memset(d->root_token, 0xaa, 40);
	assert_int_equal(js_store_devices_add(c->s, d, 1, "t", NULL), DJ_EOK);
	free(d);
}

static int setup(void **state, bool mem, unsigned max)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	c->mem = mem;
	c->outbox_max = max;
	memset(c->kcv, 0x42, sizeof(c->kcv));
	store_test_path(c->path, sizeof(c->path), "outbox");
	if (open_store(c) != DJ_EOK)
		return -1;
	add_dev(c);
	*state = c;
	return 0;
}

static int setup_sqlite(void **state) { return setup(state, false, 0); }
static int setup_mem(void **state) { return setup(state, true, 0); }
static int setup_sqlite_small(void **state) { return setup(state, false, 3); }
static int setup_mem_small(void **state) { return setup(state, true, 3); }

static int teardown(void **state)
{
	struct ctx *c = *state;
	js_store_close(c->s);
	store_test_unlink(c->path);
	free(c);
	return 0;
}

/* state_commit - a nonce-state change of dev1 from version \p v, carrying \p ev */
static int state_commit(struct ctx *c, uint64_t v, const struct js_event *ev, uint32_t *dropped)
{
	struct js_commit *cm = calloc(1, sizeof(*cm));
	int ret;

	assert_non_null(cm);
	memcpy(cm->dev_eui, dev1, LW_EUI_LEN);
	cm->expect_version = v;
	cm->new_st.dev_nonce_last = (int32_t)v + 1;
	cm->new_st.join_nonce_last = (int64_t)v + 1;
	cm->new_st.rjcount1_last = -1;
	strcpy(cm->audit[0].event, "join-accept");
	cm->n_audit = 1;
	cm->events = ev;
	ret = js_store_commit(c->s, cm);
	if (dropped != NULL)
		*dropped = cm->events_dropped;
	free(cm);
	return ret;
}

/* kind_commit - an events-only or a delete commit */
static int kind_commit(struct ctx *c, enum js_commit_kind k, const struct js_event *ev,
		       const int64_t *ids, uint32_t n)
{
	struct js_commit *cm = calloc(1, sizeof(*cm));
	int ret;

	assert_non_null(cm);
	cm->kind = k;
	memcpy(cm->dev_eui, dev1, LW_EUI_LEN);
	cm->events = ev;
	cm->done_ids = ids;
	cm->n_done_ids = n;
	ret = js_store_commit(c->s, cm);
	free(cm);
	return ret;
}

/* fetch - every row after \p after */
static size_t fetch(struct ctx *c, int64_t after, struct js_outbox_row *rows, size_t max)
{
	size_t n = 99;

	assert_int_equal(js_store_outbox_fetch(c->s, after, rows, max, &n), DJ_EOK);
	return n;
}

static int count_audit(const struct js_audit_entry *e, void *arg)
{
	if (strcmp(e->event, "appskey-release") == 0)
		(*(int *)arg)++;
	return 0;
}

static void kick(void *arg)
{
	((struct ctx *)arg)->notified++;
}

/* events ride the state change; a lost compare-and-swap writes none; delete after delivery */
static void test_outbox_commit(void **state)
{
	struct ctx *c = *state;
	static struct js_outbox_row rows[8];
	struct js_event e2 = { .body = (const uint8_t *)"second", .len = 6,
			       .audit_event = "appskey-release", .audit_actor = "as1",
			       .audit_detail = "kek=x via=mqtt" };
	struct js_event e1 = { .body = (const uint8_t *)"first", .len = 5, .next = &e2 };
	struct js_store_stats st;
	int64_t ids[2];
	int audits = 0;

	js_store_set_outbox_notify(c->s, kick, c);
	assert_int_equal(fetch(c, 0, rows, 8), 0);
	assert_int_equal(state_commit(c, 0, &e1, NULL), DJ_EOK);
	assert_int_equal(c->notified, 1);
	assert_int_equal(fetch(c, 0, rows, 8), 2);
	assert_true(rows[0].id < rows[1].id);
	assert_memory_equal(rows[0].body, "first", 5);
	assert_int_equal(rows[1].len, 6);
	assert_int_equal(js_store_audit_foreach(c->s, NULL, count_audit, &audits), DJ_EOK);
	assert_int_equal(audits, 1);
	/* stale version: DJ_ECONFLICT, and nothing in the outbox */
	assert_int_equal(state_commit(c, 0, &e1, NULL), DJ_ECONFLICT);
	assert_int_equal(fetch(c, 0, rows, 8), 2);
	assert_int_equal(fetch(c, rows[0].id, rows + 2, 6), 1);	/* after an id */
	/* events only (a refused join) */
	assert_int_equal(kind_commit(c, JS_COMMIT_EVENTS, &e2, NULL, 0), DJ_EOK);
	assert_int_equal(fetch(c, 0, rows, 8), 3);
	js_store_stats(c->s, &st);
	assert_int_equal(st.outbox_rows, 3);
	assert_int_equal(st.events_written, 3);
	/* delivered: deleted; a second delete of the same ids is no error */
	ids[0] = rows[0].id;
	ids[1] = rows[2].id;
	assert_int_equal(kind_commit(c, JS_COMMIT_OUTBOX_DONE, NULL, ids, 2), DJ_EOK);
	assert_int_equal(kind_commit(c, JS_COMMIT_OUTBOX_DONE, NULL, ids, 2), DJ_EOK);
	assert_int_equal(fetch(c, 0, rows + 4, 4), 1);
	assert_int_equal(rows[4].id, rows[1].id);
	js_store_stats(c->s, &st);
	assert_int_equal(st.outbox_rows, 1);
	assert_int_equal(st.events_done, 2);
	/* bad items are refused before the store sees them */
	assert_int_equal(kind_commit(c, JS_COMMIT_OUTBOX_DONE, NULL, NULL, 0), DJ_EINVAL);
	assert_int_equal(kind_commit(c, JS_COMMIT_EVENTS, NULL, NULL, 0), DJ_EINVAL);
	e1.len = 0;
	assert_int_equal(kind_commit(c, JS_COMMIT_EVENTS, &e1, NULL, 0), DJ_EINVAL);
	js_store_set_outbox_notify(c->s, NULL, NULL);
}

/* outbox_max: the change is made, the events beyond the bound are dropped and counted */
static void test_outbox_full(void **state)
{
	struct ctx *c = *state;
	static struct js_outbox_row rows[8];
	struct js_event e[5];
	struct js_store_stats st;
	struct js_device *d = calloc(1, sizeof(*d));
	uint32_t dropped = 0;
	int audits = 0;

	assert_non_null(d);
	for (int i = 0; i < 5; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].body = (const uint8_t *)"ev";
		e[i].len = 2;
		e[i].audit_event = "appskey-release";
		e[i].next = i < 4 ? &e[i + 1] : NULL;
	}
	assert_int_equal(state_commit(c, 0, &e[0], &dropped), DJ_EOK);
	assert_int_equal(dropped, 2);
	assert_int_equal(js_store_device_get(c->s, dev1, d), DJ_EOK);
	assert_int_equal(d->st.version, 1);	/* the join itself went through */
	assert_int_equal(fetch(c, 0, rows, 8), 3);
	js_store_stats(c->s, &st);
	assert_int_equal(st.events_dropped, 2);
	assert_int_equal(st.outbox_rows, 3);
	/* no audit entry for a release that was dropped */
	assert_int_equal(js_store_audit_foreach(c->s, NULL, count_audit, &audits), DJ_EOK);
	assert_int_equal(audits, 3);
	free(d);
}

/* rows, ids and the instance survive a reopen; ids never repeat (AUTOINCREMENT) */
static void test_outbox_reopen(void **state)
{
	struct ctx *c = *state;
	static struct js_outbox_row rows[8];
	struct js_event e = { .body = (const uint8_t *)"x", .len = 1 };
	uint8_t inst[JS_INSTANCE_ID_LEN], inst2[JS_INSTANCE_ID_LEN];
	int64_t last;
	struct js_store_stats st;

	js_store_instance_id(c->s, inst);
	assert_int_equal(kind_commit(c, JS_COMMIT_EVENTS, &e, NULL, 0), DJ_EOK);
	assert_int_equal(kind_commit(c, JS_COMMIT_EVENTS, &e, NULL, 0), DJ_EOK);
	assert_int_equal(fetch(c, 0, rows, 8), 2);
	last = rows[1].id;
	assert_int_equal(kind_commit(c, JS_COMMIT_OUTBOX_DONE, NULL, &last, 1), DJ_EOK);
	js_store_close(c->s);
	assert_int_equal(open_store(c), DJ_EOK);
	js_store_instance_id(c->s, inst2);
	assert_memory_equal(inst, inst2, JS_INSTANCE_ID_LEN);
	js_store_stats(c->s, &st);
	assert_int_equal(st.outbox_rows, 1);
	assert_int_equal(kind_commit(c, JS_COMMIT_EVENTS, &e, NULL, 0), DJ_EOK);
	assert_int_equal(fetch(c, 0, rows, 8), 2);
	assert_true(rows[1].id > last);	/* the deleted newest id is not reused */
}

/* exec_sql - run SQL on the file with a separate connection */
static void exec_sql(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int one_int(void *arg, int n, char **v, char **names)
{
	(void)n;
	(void)names;
	*(int *)arg = atoi(v[0]);
	return 0;
}

/* a version-2 file (no outbox, no instance id) is migrated to 3 on open, its devices kept */
static void test_migration_v2(void **state)
{
	struct ctx *c = *state;
	static struct js_outbox_row rows[2];
	struct js_event e = { .body = (const uint8_t *)"x", .len = 1 };
	struct js_device *d = calloc(1, sizeof(*d));
	sqlite3 *db;
	int v = 0, n = -1;

	assert_non_null(d);
	js_store_close(c->s);
	c->s = NULL;
	exec_sql(c->path, "DROP TABLE outbox; DELETE FROM meta WHERE k='instance';"
			  "DELETE FROM sqlite_sequence WHERE name='outbox'; PRAGMA user_version=2");
	assert_int_equal(open_store(c), DJ_EOK);
	assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version", one_int, &v, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT length(v) FROM meta WHERE k='instance'", one_int,
				      &n, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(v, 8);	/* the newest schema (8: audit without AUTOINCREMENT) */
	assert_int_equal(n, JS_INSTANCE_ID_LEN);
	assert_int_equal(js_store_device_get(c->s, dev1, d), DJ_EOK);	/* kept */
	assert_int_equal(state_commit(c, 0, &e, NULL), DJ_EOK);
	assert_int_equal(fetch(c, 0, rows, 2), 1);
	free(d);
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_sqlite, teardown), \
		cmocka_unit_test_setup_teardown(t, setup_mem, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_outbox_commit),
		cmocka_unit_test_setup_teardown(test_outbox_full, setup_sqlite_small, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_full, setup_mem_small, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_reopen, setup_sqlite, teardown),
		cmocka_unit_test_setup_teardown(test_migration_v2, setup_sqlite, teardown),
	};

	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_outbox_commit, setup_sqlite, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_full, setup_sqlite_small, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_reopen, setup_sqlite, teardown),
	};

	return store_test_main("outbox", tests, DJ_ARRAY_LEN(tests), pg_tests,
			       DJ_ARRAY_LEN(pg_tests));
}
