/*
 * test_store.c - unit tests of js_store, run against both backends where the behaviour is shared:
 * creation and the master-key / schema guards, all-or-nothing import, the compare-and-swap
 * commit (and that it survives a reopen), group commit under 100 concurrent threads, nonce reset,
 * cascading delete, sessions, the audit log, re-wrapping under a new master key, the DevNonce
 * history round trip, and devices read as a group (fresh after a commit, no log pinned).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/dj_err.h"
#include "common/dj_log.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "store/js_store_pg_internal.h"	/* the readers' round_trips */
#include "store/js_store_sqlite_internal.h"	/* js_store__sq_ckpt_wait() */
#include "test_store_util.h"

#define sql_int store_test_sql_int	/* one integer from the file, outside the store */

#define N_THREADS 100
#define COMMITS_PER_THREAD 5
#define HIST_BIG 1000
#define T0 1700000000
#define CKPT_DEVICES 2000
#define CKPT_FRAMES 1000	/* js_store_sqlite_ckpt.c's SQ_CKPT_PAGES */
#define WAL_HDR 32
#define WAL_FRAME (24 + 4096)	/* frame header and a page of the default size */
#define GET_MANY_N 6		/* devices read as one group */
#define GROUP_N JS_KS_BATCH_MAX	/* an engine group at its largest (JS_ENGINE_BATCH_MAX) */
#define GROUP_DEVS 40		/* devices in the store of test_device_get_group */
#define GROUP_FILL 0xa5		/* what an out struct holds before a read */
#define GROUP_BAD 17		/* test_device_get_sizes: the device whose row is malformed */

static const uint8_t master_a[JS_MASTER_KEY_LEN] = { 0xa0, 0xa1, 0xa2, 0xa3 };
static const uint8_t master_b[JS_MASTER_KEY_LEN] = { 0xb0, 0xb1, 0xb2, 0xb3 };
static const uint8_t app_key[LW_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* store_open - open the context's store with a given KCV */
static int store_open(struct store_ctx *c, const uint8_t *kcv, struct js_store **out)
{
	struct js_store_props p = {
		.path = c->mem ? NULL : c->path,
		.conninfo = c->mem ? NULL : store_test_conninfo(c->path),
		.kcv = kcv,
		.clock = store_ctx_clock,
		.clock_arg = c,
	};

	return js_store_open(&p, out);
}

/* open_own - the store of a fresh context: master key A, its check value */
static int open_own(struct store_ctx *c)
{
	return store_open(c, c->kcv, &c->s);
}

/* setup_common - a fresh store (file or memory) with master key A and the fake clock */
static int setup_common(void **state, bool mem)
{
	return store_ctx_setup(state, mem, "store", master_a, T0, open_own);
}

/* setup_sqlite - the SQLite backend */
static int setup_sqlite(void **state)
{
	return setup_common(state, false);
}

/* setup_mem - the in-memory backend */
static int setup_mem(void **state)
{
	return setup_common(state, true);
}

/* reopen - close and open the file again (SQLite only) */
static void reopen(struct store_ctx *c)
{
	js_store_close(c->s);
	c->s = NULL;
	assert_int_equal(store_open(c, c->kcv, &c->s), DJ_EOK);
}

/* mk_device - a device with a real root token under ks */
static void mk_device(struct js_keystore *ks, uint32_t i, struct js_device *d)
{
	size_t len = 0;

	memset(d, 0, sizeof(*d));
	store_test_eui(i, d->dev_eui);
	memset(d->join_eui, 0x11, LW_EUI_LEN);
	d->mac_version = LW_V1_1;
	assert_int_equal(js_keystore_seal_root(ks, d->dev_eui, app_key, app_key, d->root_token,
					       &len), DJ_EOK);
	d->root_token_len = (uint32_t)len;
}

/* add_n - import devices 0..n-1 */
static void add_n(struct store_ctx *c, uint32_t n)
{
	struct js_device *d = calloc(n, sizeof(*d));
	size_t failed = 99;

	assert_non_null(d);
	for (uint32_t i = 0; i < n; i++)
		mk_device(c->ks, i, &d[i]);
	assert_int_equal(js_store_devices_add(c->s, d, n, "tester", &failed), DJ_EOK);
	free(d);
}

/* audit_add - append an audit entry to a commit */
static void audit_add(struct js_commit *m, const char *event, const char *actor,
		      const char *detail)
{
	struct js_commit_audit *a = &m->audit[m->n_audit++];

	snprintf(a->event, sizeof(a->event), "%s", event);
	snprintf(a->actor, sizeof(a->actor), "%s", actor);
	snprintf(a->detail, sizeof(a->detail), "%s", detail);
}

/* mk_commit - a commit moving device i from version v to a new state */
static struct js_commit *mk_commit(uint32_t i, uint64_t v, int32_t dev_nonce, int64_t join_nonce)
{
	struct js_commit *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	store_test_eui(i, c->dev_eui);
	c->expect_version = v;
	c->new_st.dev_nonce_last = dev_nonce;
	c->new_st.join_nonce_last = join_nonce;
	c->new_st.rjcount1_last = -1;
	return c;
}

/* --- tests ---------------------------------------------------------------------------- */

/* one_row - sqlite3_exec callback counting rows */
static int one_row(void *arg, int n, char **v, char **names)
{
	(void)n;
	(void)v;
	(void)names;
	(*(int *)arg)++;
	return 0;
}

/* open creates the file with mode 0600 and records the KCV; the guards refuse bad reopens */
static void test_open_guards(void **state)
{
	int rows = 0;
	struct store_ctx *c = *state;
	struct js_keystore *other = NULL;
	uint8_t kcv_b[JS_KCV_LEN];
	struct js_store *s2 = (struct js_store *)0x1;
	struct js_store_props p = { .path = c->path, .kcv = c->kcv, .devnonce_history = 8 };
	struct stat st;
	sqlite3 *db = NULL;

	assert_int_equal(stat(c->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(js_store_devnonce_history(c->s), JS_DEVNONCE_HIST_DEFAULT);
	assert_int_equal(js_store_now(c->s), T0);

	/* bad props */
	assert_int_equal(js_store_open(&p, &s2), DJ_EINVAL);
	p.devnonce_history = JS_DEVNONCE_HIST_MAX + 1;
	assert_int_equal(js_store_open(&p, &s2), DJ_EINVAL);
	p.devnonce_history = 0;
	p.kcv = NULL;
	assert_int_equal(js_store_open(&p, &s2), DJ_EINVAL);
	assert_ptr_equal(s2, (struct js_store *)0x1);	/* out untouched on failure */

	/* another master key */
	assert_int_equal(js_keystore_new(master_b, &other), DJ_EOK);
	js_keystore_kcv(other, kcv_b);
	js_keystore_free(other);
	js_store_close(c->s);
	c->s = NULL;
	assert_int_equal(store_open(c, kcv_b, &s2), DJ_EMASTERKEY);

	/* a newer schema */
	assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(c, c->kcv, &s2), DJ_ESCHEMA);

	/* a version-1 file (before the sessions_expires index, and the outbox of version 3) is
	 * migrated on open */
	assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP INDEX sessions_expires; DROP TABLE outbox;"
				      " DELETE FROM meta WHERE k='instance'; PRAGMA user_version=1",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(c, c->kcv, &c->s), DJ_EOK);
	assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT 1 FROM sqlite_master WHERE name='sessions_expires'"
				      " AND type='index'", one_row, &rows, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(rows, 1);
}

/* import is all or nothing; a duplicate reports its index; new devices start empty */
static void test_devices_add(void **state)
{
	struct store_ctx *c = *state;
	struct js_device d[3], *g;
	size_t failed = 99;

	add_n(c, 2);
	mk_device(c->ks, 10, &d[0]);
	mk_device(c->ks, 1, &d[1]);	/* already present */
	mk_device(c->ks, 11, &d[2]);
	assert_int_equal(js_store_devices_add(c->s, d, 3, "tester", &failed), DJ_EEXIST);
	assert_int_equal(failed, 1);
	free(store_ctx_get(c, 10, DJ_ENOENT));
	free(store_ctx_get(c, 11, DJ_ENOENT));

	/* a duplicate inside the batch */
	mk_device(c->ks, 10, &d[1]);
	failed = 99;
	assert_int_equal(js_store_devices_add(c->s, d, 2, "tester", &failed), DJ_EEXIST);
	assert_int_equal(failed, 1);
	free(store_ctx_get(c, 10, DJ_ENOENT));

	g = store_ctx_get(c, 1, DJ_EOK);
	assert_int_equal(g->st.version, 0);
	assert_int_equal(g->st.dev_nonce_last, -1);
	assert_int_equal(g->st.join_nonce_last, -1);
	assert_int_equal(g->st.rjcount1_last, -1);
	assert_int_equal(g->st.hist_len, 0);
	assert_int_equal(g->st.sess_token_len, 0);
	assert_int_equal(g->mac_version, LW_V1_1);
	assert_int_equal(g->created_at, T0);
	mk_device(c->ks, 1, &d[0]);
	assert_int_equal(g->root_token_len, d[0].root_token_len);
	assert_memory_equal(g->root_token, d[0].root_token, d[0].root_token_len);
	free(g);
}

/* CAS: a commit bumps the version; a replay of the same expected version is refused and
 * changes nothing, also after a reopen (SQLite) */
static void test_commit_cas(void **state)
{
	struct store_ctx *c = *state;
	struct js_commit *m;
	struct js_device *g, *g2;
	struct js_store_stats st;

	add_n(c, 2);
	m = mk_commit(0, 0, 5, 7);
	m->new_st.hist_len = 3;
	m->new_st.hist[0] = 0x0102;
	m->new_st.hist[1] = 0xfffe;
	m->new_st.hist[2] = 5;
	m->new_st.rjcount1_last = 3;
	m->new_st.sess_token_len = 20;
	memset(m->new_st.sess_token, 0x42, 20);
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	assert_int_equal(m->result, DJ_EOK);
	assert_null(m->done);	/* restored */

	if (!c->mem)
		reopen(c);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.version, 1);
	assert_int_equal(g->st.dev_nonce_last, 5);
	assert_int_equal(g->st.join_nonce_last, 7);
	assert_int_equal(g->st.rjcount1_last, 3);
	assert_int_equal(g->st.hist_len, 3);
	assert_int_equal(g->st.hist[0], 0x0102);
	assert_int_equal(g->st.hist[1], 0xfffe);
	assert_int_equal(g->st.hist[2], 5);
	assert_int_equal(g->st.sess_token_len, 20);
	assert_int_equal(g->st.sess_token[19], 0x42);

	/* the same change again (a replayed Join-request racing the first) */
	m->new_st.dev_nonce_last = 6;
	m->new_st.join_nonce_last = 8;
	assert_int_equal(js_store_commit(c->s, m), DJ_ECONFLICT);
	g2 = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g2->st.version, 1);
	assert_int_equal(g2->st.dev_nonce_last, 5);
	assert_int_equal(g2->st.join_nonce_last, 7);
	assert_int_equal(g2->st.hist_len, 3);

	/* device 1 untouched; unknown device */
	free(g);
	g = store_ctx_get(c, 1, DJ_EOK);
	assert_int_equal(g->st.version, 0);
	free(m);
	m = mk_commit(77, 0, 1, 1);
	assert_int_equal(js_store_commit(c->s, m), DJ_ENOENT);
	/* out of bounds item refused before it reaches a backend */
	m->new_st.hist_len = JS_DEVNONCE_HIST_DEFAULT + 1;
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);

	js_store_stats(c->s, &st);
	assert_int_equal(st.conflicts, 1);
	assert_int_equal(st.commits, c->mem ? 1 : 0);	/* SQLite: counted since the reopen */
	free(m);
	free(g);
	free(g2);
}

/* the row hint (js_device.row, the rowid): used when right, and a wrong or stale one changes
 * nothing of what the commit decides (SQLite) */
static void test_commit_row_hint(void **state)
{
	struct store_ctx *c = *state;
	struct js_commit *m;
	struct js_device *g0, *g1;
	sqlite3 *db = NULL;
	int64_t row0, row1;

	add_n(c, 2);
	g0 = store_ctx_get(c, 0, DJ_EOK);
	g1 = store_ctx_get(c, 1, DJ_EOK);
	row0 = g0->row;
	row1 = g1->row;
	assert_true(row0 > 0 && row1 > 0 && row0 != row1);
	free(g0);
	free(g1);

	/* the right hint */
	m = mk_commit(0, 0, 5, 7);
	m->row = row0;
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	free(m);
	/* device 1's row (at the same version 0) as device 0's hint: device 0 gets the change,
	 * device 1 none */
	m = mk_commit(0, 1, 6, 8);
	m->row = row1;
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	free(m);
	g0 = store_ctx_get(c, 0, DJ_EOK);
	g1 = store_ctx_get(c, 1, DJ_EOK);
	assert_int_equal(g0->st.version, 2);
	assert_int_equal(g0->st.dev_nonce_last, 6);
	assert_int_equal(g1->st.version, 0);
	assert_int_equal(g1->st.dev_nonce_last, -1);
	free(g1);
	/* the rows renumbered from outside (as VACUUM may): the stale hint still commits, a stale
	 * version still conflicts */
	assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE devices SET rowid = rowid + 1000", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	m = mk_commit(0, 2, 9, 10);
	m->row = row0;
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	m->expect_version = 2;	/* read before the last commit */
	assert_int_equal(js_store_commit(c->s, m), DJ_ECONFLICT);
	free(m);
	g1 = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g1->st.version, 3);
	assert_int_equal(g1->st.dev_nonce_last, 9);
	assert_int_equal(g1->row, row0 + 1000);
	free(g0);
	free(g1);
	/* a hint for a device that is not there: DJ_ENOENT */
	m = mk_commit(77, 0, 1, 1);
	m->row = row0 + 1000;
	assert_int_equal(js_store_commit(c->s, m), DJ_ENOENT);
	free(m);
	g0 = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g0->st.version, 3);
	free(g0);
}

struct thr_arg {
	struct store_ctx *c;
	uint32_t dev;
	int failures;
};

/* committer_thread - COMMITS_PER_THREAD sequential CAS commits on one device */
static void *committer_thread(void *p)
{
	struct thr_arg *a = p;

	for (uint32_t k = 0; k < COMMITS_PER_THREAD; k++) {
		struct js_commit *m = mk_commit(a->dev, k, (int32_t)k, (int64_t)k + 100);

		audit_add(m, "join", "", "");
		if (js_store_commit(a->c->s, m) != DJ_EOK)
			a->failures++;
		free(m);
	}
	return NULL;
}

/* 100 threads commit concurrently on distinct devices: everything lands, in fewer transactions */
static void test_group_commit(void **state)
{
	struct store_ctx *c = *state;
	pthread_t t[N_THREADS];
	struct thr_arg a[N_THREADS];
	struct js_store_stats st;

	add_n(c, N_THREADS);
	for (uint32_t i = 0; i < N_THREADS; i++) {
		a[i] = (struct thr_arg){ .c = c, .dev = i };
		assert_int_equal(pthread_create(&t[i], NULL, committer_thread, &a[i]), 0);
	}
	for (uint32_t i = 0; i < N_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	for (uint32_t i = 0; i < N_THREADS; i++) {
		struct js_device *g = store_ctx_get(c, i, DJ_EOK);
		assert_int_equal(g->st.version, COMMITS_PER_THREAD);
		assert_int_equal(g->st.join_nonce_last, COMMITS_PER_THREAD - 1 + 100);
		free(g);
	}
	js_store_stats(c->s, &st);
	assert_int_equal(st.commits, N_THREADS * COMMITS_PER_THREAD);
	assert_int_equal(st.conflicts, 0);
	if (!c->mem) {
		assert_true(st.transactions < st.commits);
		assert_true(st.batch_max_seen > 1);
	}
}

struct async_state {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int done, ok;
};

/* async_done - completion callback counting results */
static void async_done(struct js_commit *cm, void *arg)
{
	struct async_state *as = arg;

	pthread_mutex_lock(&as->m);
	as->done++;
	if (cm->result == DJ_EOK)
		as->ok++;
	pthread_cond_signal(&as->cv);
	pthread_mutex_unlock(&as->m);
}

/* js_store_submit: two items for one device at the same version: exactly one wins */
static void test_submit_async(void **state)
{
	struct store_ctx *c = *state;
	struct async_state as = { .done = 0 };
	struct js_commit *m1 = mk_commit(0, 0, 1, 1), *m2 = mk_commit(0, 0, 2, 2);
	struct js_store_stats st;

	pthread_mutex_init(&as.m, NULL);
	pthread_cond_init(&as.cv, NULL);
	add_n(c, 1);
	m1->done = m2->done = async_done;
	m1->done_arg = m2->done_arg = &as;
	assert_int_equal(js_store_submit(c->s, m1), DJ_EOK);
	assert_int_equal(js_store_submit(c->s, m2), DJ_EOK);
	pthread_mutex_lock(&as.m);
	while (as.done < 2)
		pthread_cond_wait(&as.cv, &as.m);
	pthread_mutex_unlock(&as.m);
	assert_int_equal(as.ok, 1);
	assert_int_equal(m1->result, DJ_EOK);
	assert_int_equal(m2->result, DJ_ECONFLICT);
	js_store_stats(c->s, &st);
	assert_int_equal(st.conflicts, 1);
	pthread_cond_destroy(&as.cv);
	pthread_mutex_destroy(&as.m);
	free(m1);
	free(m2);
}

/* reset forgets DevNonces and RJcount1 but never the JoinNonce */
static void test_reset_nonces(void **state)
{
	struct store_ctx *c = *state;
	struct js_commit *m = mk_commit(0, 0, 9, 42);
	struct js_device *g;
	uint8_t e[LW_EUI_LEN];
	uint64_t count = 0;

	add_n(c, 3);
	m->new_st.rjcount1_last = 4;
	m->new_st.hist_len = 2;
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	store_test_eui(0, e);
	assert_int_equal(js_store_reset_nonces(c->s, e, "op", &count), DJ_EOK);
	assert_int_equal(count, 1);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.dev_nonce_last, -1);
	assert_int_equal(g->st.rjcount1_last, -1);
	assert_int_equal(g->st.hist_len, 0);
	assert_int_equal(g->st.join_nonce_last, 42);
	assert_int_equal(g->st.version, 2);
	free(g);
	/* the old version is stale now */
	assert_int_equal(js_store_commit(c->s, m), DJ_ECONFLICT);

	assert_int_equal(js_store_reset_nonces(c->s, NULL, "op", &count), DJ_EOK);
	assert_int_equal(count, 3);
	g = store_ctx_get(c, 2, DJ_EOK);
	assert_int_equal(g->st.version, 1);
	free(g);
	store_test_eui(99, e);
	count = 1234;
	assert_int_equal(js_store_reset_nonces(c->s, e, "op", &count), DJ_ENOENT);
	assert_int_equal(count, 1234);
	free(m);
}

/* sess_id - SessionKeyID DevEUI(i) | tail (tail_len bytes) into out; its length */
static uint32_t sess_id(uint32_t i, const char *tail, size_t tail_len, uint8_t *out)
{
	store_test_eui(i, out);
	memcpy(out + LW_EUI_LEN, tail, tail_len);
	return (uint32_t)(LW_EUI_LEN + tail_len);
}

/* sessions round-trip; deleting a device removes its sessions; a SessionKeyID must begin with
 * its DevEUI */
static void test_sessions_delete(void **state)
{
	struct store_ctx *c = *state;
	struct js_commit *m = mk_commit(0, 0, 1, 1), *m2 = mk_commit(1, 0, 1, 1);
	struct js_session se;
	uint8_t e[LW_EUI_LEN], id0[JS_SESSION_ID_MAX], id1[JS_SESSION_ID_MAX];
	uint32_t n0 = sess_id(0, "s0", 2, id0), n1 = sess_id(1, "s0", 2, id1);
	struct js_device *g;

	add_n(c, 2);
	m->has_session = true;
	m->session_token_len = 40;
	memset(m->session_token, 0x33, 40);
	m->session_expires_at = T0 + 3600;
	c->now = T0 + 5;
	/* refused, nothing changed: an id shorter than a DevEUI, or another device's prefix */
	m->session_id_len = 5;
	memcpy(m->session_id, "sess0", 5);
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);
	m->session_id_len = n1;
	memcpy(m->session_id, id1, n1);
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.version, 0);
	free(g);
	m->session_id_len = n0;
	memcpy(m->session_id, id0, n0);
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	*m2 = *m;
	store_test_eui(1, m2->dev_eui);
	memcpy(m2->session_id, id1, n1);	/* the same tail under another DevEUI */
	memset(m2->session_token, 0x34, 40);
	assert_int_equal(js_store_commit(c->s, m2), DJ_EOK);

	memset(&se, 0, sizeof(se));
	assert_int_equal(js_store_session_get(c->s, id0, n0, &se), DJ_EOK);
	assert_int_equal(se.session_id_len, n0);
	assert_memory_equal(se.session_id, id0, n0);
	assert_memory_equal(se.dev_eui, m->dev_eui, LW_EUI_LEN);
	assert_int_equal(se.created_at, T0 + 5);
	assert_int_equal(se.expires_at, T0 + 3600);
	assert_int_equal(se.session_token_len, 40);
	assert_memory_equal(se.session_token, m->session_token, 40);
	assert_int_equal(js_store_session_get(c->s, id1, n1, &se), DJ_EOK);
	assert_memory_equal(se.dev_eui, m2->dev_eui, LW_EUI_LEN);
	assert_memory_equal(se.session_token, m2->session_token, 40);
	/* a prefix of an id, the DevEUI alone, an id shorter than a DevEUI: no session */
	assert_int_equal(js_store_session_get(c->s, id0, n0 - 1, &se), DJ_ENOENT);
	assert_int_equal(js_store_session_get(c->s, id0, LW_EUI_LEN, &se), DJ_ENOENT);
	assert_int_equal(js_store_session_get(c->s, (const uint8_t *)"sess", 4, &se), DJ_ENOENT);

	store_test_eui(0, e);
	assert_int_equal(js_store_device_delete(c->s, e, "op"), DJ_EOK);
	free(store_ctx_get(c, 0, DJ_ENOENT));
	assert_int_equal(js_store_session_get(c->s, id0, n0, &se), DJ_ENOENT);
	assert_int_equal(js_store_session_get(c->s, id1, n1, &se), DJ_EOK);
	assert_int_equal(js_store_device_delete(c->s, e, "op"), DJ_ENOENT);
	/* a commit on the deleted device */
	m->expect_version = 1;
	assert_int_equal(js_store_commit(c->s, m), DJ_ENOENT);
	free(m);
	free(m2);
}

/* sess_commit - a commit of device i from version v recording session id with token byte tok,
 * created now and expiring at exp */
static struct js_commit *sess_commit(uint32_t i, uint64_t v, const uint8_t *id, uint32_t n,
				     uint8_t tok, int64_t exp)
{
	struct js_commit *m = mk_commit(i, v, (int32_t)v + 1, (int64_t)v + 1);

	m->has_session = true;
	m->session_id_len = n;
	memcpy(m->session_id, id, n);
	m->session_token_len = 40;
	memset(m->session_token, tok, 40);
	m->session_expires_at = exp;
	return m;
}

/* expect_session - session id holds token byte tok, created at, expiring at exp */
static void expect_session(struct store_ctx *c, const uint8_t *id, uint32_t n, uint8_t tok,
			   int64_t at, int64_t exp)
{
	struct js_session se;
	uint8_t want[40];

	memset(want, tok, sizeof(want));
	memset(&se, 0, sizeof(se));
	assert_int_equal(js_store_session_get(c->s, id, n, &se), DJ_EOK);
	assert_memory_equal(se.dev_eui, id, LW_EUI_LEN);
	assert_int_equal(se.created_at, at);
	assert_int_equal(se.expires_at, exp);
	assert_int_equal(se.session_token_len, 40);
	assert_memory_equal(se.session_token, want, 40);
}

/* a SessionKeyID recorded again (a JoinNonce issued twice, e.g. after a restore without
 * bump_join_nonces) replaces its session, in every backend: the commit and the others of its
 * batch succeed, the row holds the new token, creation time and expiry, the other sessions stay */
static void test_session_again(void **state)
{
	struct store_ctx *c = *state;
	uint8_t id0[JS_SESSION_ID_MAX], id1[JS_SESSION_ID_MAX], id2[JS_SESSION_ID_MAX];
	uint32_t n0 = sess_id(0, "s1", 2, id0), n1 = sess_id(1, "s1", 2, id1);
	uint32_t n2 = sess_id(0, "s2", 2, id2);
	struct js_commit *m[3];
	struct js_device *g;

	add_n(c, 2);
	c->now = T0 + 5;
	m[0] = sess_commit(0, 0, id0, n0, 0x41, T0 + 100);
	m[1] = sess_commit(0, 1, id2, n2, 0x42, T0 + 200);
	assert_int_equal(js_store_commit(c->s, m[0]), DJ_EOK);
	assert_int_equal(js_store_commit(c->s, m[1]), DJ_EOK);
	free(m[0]);
	free(m[1]);
	c->now = T0 + 9;
	m[0] = sess_commit(0, 2, id0, n0, 0x51, T0 + 900);	/* id0 again */
	m[1] = sess_commit(1, 0, id1, n1, 0x52, T0 + 300);	/* in the same call */
	m[2] = NULL;
	assert_int_equal(js_store_commit_many(c->s, m, 2), DJ_EOK);
	assert_int_equal(m[0]->result, DJ_EOK);
	assert_int_equal(m[1]->result, DJ_EOK);
	expect_session(c, id0, n0, 0x51, T0 + 9, T0 + 900);
	expect_session(c, id1, n1, 0x52, T0 + 9, T0 + 300);
	expect_session(c, id2, n2, 0x42, T0 + 5, T0 + 200);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.version, 3);
	free(g);
	free(m[0]);
	free(m[1]);
}

/* foreach_cb - collect DevEUIs */
static int foreach_cb(const struct js_device *d, void *arg)
{
	uint32_t *seen = arg;

	seen[1 + seen[0]++] = d->dev_eui[7];
	return seen[0] == 4 ? 77 : 0;	/* stop after four */
}

/* foreach walks in DevEUI order and stops on a non-zero return */
static void test_foreach(void **state)
{
	struct store_ctx *c = *state;
	struct js_device d;
	uint32_t seen[16] = { 0 };

	for (int i = 5; i >= 0; i--) {
		mk_device(c->ks, (uint32_t)i, &d);
		assert_int_equal(js_store_devices_add(c->s, &d, 1, "t", NULL), DJ_EOK);
	}
	assert_int_equal(js_store_device_foreach(c->s, foreach_cb, seen), 77);
	assert_int_equal(seen[0], 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(seen[1 + i], i);
}

/* re-wrap: new key opens, old key does not, old KCV is refused afterwards */
static void test_rewrap(void **state)
{
	struct store_ctx *c = *state;
	struct js_keystore *b = NULL;
	struct js_commit *m = mk_commit(0, 0, 1, 1);
	struct js_root_keys rk;
	struct js_device *g;
	struct js_session se;
	uint8_t label[JS_LABEL_MAX], secret[64], kcv_b[JS_KCV_LEN], sid[JS_SESSION_ID_LEN];
	size_t label_len, len = 0;
	uint64_t count = 0;
	struct js_store *s2 = NULL;

	assert_int_equal(js_keystore_new(master_b, &b), DJ_EOK);
	add_n(c, 2);
	js_session_id(m->dev_eui, (uint32_t)m->new_st.join_nonce_last, sid);
	label_len = js_keystore_label(JS_PURPOSE_SESSION, sid, sizeof(sid), label);
	assert_int_equal(js_keystore_seal(c->ks, label, label_len, app_key, LW_KEY_LEN,
					  m->new_st.sess_token, &len), DJ_EOK);
	m->new_st.sess_token_len = (uint32_t)len;
	m->has_session = true;
	m->session_id_len = sess_id(0, "sid", 3, m->session_id);
	label_len = js_keystore_label(JS_PURPOSE_SESSION, m->session_id, m->session_id_len, label);
	assert_int_equal(js_keystore_seal(c->ks, label, label_len, app_key, LW_KEY_LEN,
					  m->session_token, &len), DJ_EOK);
	m->session_token_len = (uint32_t)len;
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);

	/* b is not the store's key */
	assert_int_equal(js_store_rewrap(c->s, b, b, "op", &count), DJ_EMASTERKEY);
	assert_int_equal(js_store_rewrap(c->s, c->ks, b, "op", &count), DJ_EOK);
	assert_int_equal(count, 4);	/* two root tokens, one device session token, one session row */

	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(js_keystore_open_root(b, g->dev_eui, g->root_token, g->root_token_len,
					       &rk), DJ_EOK);
	js_root_keys_wipe(&rk);
	assert_int_equal(js_keystore_open_root(c->ks, g->dev_eui, g->root_token,
					       g->root_token_len, &rk), DJ_EUNWRAP);
	js_session_id(g->dev_eui, (uint32_t)g->st.join_nonce_last, sid);
	label_len = js_keystore_label(JS_PURPOSE_SESSION, sid, sizeof(sid), label);
	assert_int_equal(js_keystore_open(b, label, label_len, g->st.sess_token,
					  g->st.sess_token_len, secret, sizeof(secret), &len),
			 DJ_EOK);
	assert_memory_equal(secret, app_key, LW_KEY_LEN);
	assert_int_equal(js_store_session_get(c->s, m->session_id, m->session_id_len, &se), DJ_EOK);
	label_len = js_keystore_label(JS_PURPOSE_SESSION, m->session_id, m->session_id_len, label);
	assert_int_equal(js_keystore_open(b, label, label_len, se.session_token,
					  se.session_token_len, secret, sizeof(secret), &len),
			 DJ_EOK);
	assert_int_equal(js_keystore_open(c->ks, label, label_len, se.session_token,
					  se.session_token_len, secret, sizeof(secret), &len),
			 DJ_EUNWRAP);
	free(g);
	/* the old key cannot rewrap again */
	assert_int_equal(js_store_rewrap(c->s, c->ks, b, "op", &count), DJ_EMASTERKEY);

	if (!c->mem) {
		js_store_close(c->s);
		c->s = NULL;
		assert_int_equal(store_open(c, c->kcv, &s2), DJ_EMASTERKEY);
		js_keystore_kcv(b, kcv_b);
		assert_int_equal(store_open(c, kcv_b, &c->s), DJ_EOK);
		g = store_ctx_get(c, 1, DJ_EOK);
		assert_int_equal(js_keystore_open_root(b, g->dev_eui, g->root_token,
						       g->root_token_len, &rk), DJ_EOK);
		js_root_keys_wipe(&rk);
		free(g);
	}
	js_keystore_free(b);
	free(m);
}

/* The audit entries seen by audit_cb. */
struct audit_seen {
	int n;
	char events[32][JS_AUDIT_EVENT_MAX];
	int64_t at[32];
	bool has_eui[32];
	char detail[32][JS_AUDIT_DETAIL_MAX];
	int64_t last_id;
	bool ordered;
};

/* audit_cb - collect audit entries, checking ids ascend */
static int audit_cb(const struct js_audit_entry *e, void *arg)
{
	struct audit_seen *a = arg;

	if (a->n > 0 && e->id <= a->last_id)
		a->ordered = false;
	a->last_id = e->id;
	if (a->n < 32) {
		strcpy(a->events[a->n], e->event);
		strcpy(a->detail[a->n], e->detail);
		a->at[a->n] = e->at;
		a->has_eui[a->n] = e->has_dev_eui;
	}
	a->n++;
	return 0;
}

/* every administrative change and audited commit leaves an entry, oldest first */
static void test_audit(void **state)
{
	struct store_ctx *c = *state;
	struct js_keystore *b = NULL;
	struct js_commit *m = mk_commit(0, 0, 1, 1);
	struct audit_seen *a = calloc(1, sizeof(*a));
	uint8_t e[LW_EUI_LEN];
	uint64_t count;

	assert_non_null(a);
	a->ordered = true;
	assert_int_equal(js_keystore_new(master_b, &b), DJ_EOK);
	add_n(c, 2);						/* 2 x device-import */
	c->now = T0 + 10;
	audit_add(m, "join-accept", "ns.example", "");
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);	/* join-accept */
	store_test_eui(0, e);
	assert_int_equal(js_store_reset_nonces(c->s, e, "op", &count), DJ_EOK);
	assert_int_equal(js_store_audit(c->s, NULL, "config-reload", "op", "x=1"), DJ_EOK);
	store_test_eui(1, e);
	assert_int_equal(js_store_device_delete(c->s, e, "op"), DJ_EOK);
	assert_int_equal(js_store_rewrap(c->s, c->ks, b, "op", &count), DJ_EOK);

	assert_int_equal(js_store_audit_foreach(c->s, NULL, audit_cb, a), DJ_EOK);
	assert_true(a->ordered);
	assert_int_equal(a->n, 7);
	assert_string_equal(a->events[0], "device-import");
	assert_string_equal(a->events[1], "device-import");
	assert_non_null(strstr(a->detail[0], "mac_version=1.1"));
	assert_non_null(strstr(a->detail[0], "join_eui=1111111111111111"));
	assert_int_equal(a->at[0], T0);
	assert_string_equal(a->events[2], "join-accept");
	assert_int_equal(a->at[2], T0 + 10);
	assert_string_equal(a->events[3], "nonce-reset");
	assert_string_equal(a->events[4], "config-reload");
	assert_false(a->has_eui[4]);
	assert_string_equal(a->events[5], "device-delete");
	assert_string_equal(a->events[6], "rewrap");
	assert_string_equal(a->detail[6], "tokens=1");

	/* one device's entries only */
	memset(a, 0, sizeof(*a));
	a->ordered = true;
	store_test_eui(0, e);
	assert_int_equal(js_store_audit_foreach(c->s, e, audit_cb, a), DJ_EOK);
	assert_int_equal(a->n, 3);
	assert_string_equal(a->events[2], "nonce-reset");
	js_keystore_free(b);
	free(a);
	free(m);
}

/* audit2 - give a commit its two audit entries: the join-accept, the JoinAns AppSKey release */
static void audit2(struct js_commit *m)
{
	m->n_audit = 0;
	audit_add(m, "join-accept", "ns.example", "join_nonce=000001");
	audit_add(m, "appskey-release", "ns.example", "session_key_id=abc kek=ns1 via=joinans");
}

/* audit_count - the store's audit entries (all devices) */
static int audit_count(struct store_ctx *c)
{
	struct audit_seen *a = calloc(1, sizeof(*a));
	int n;

	assert_non_null(a);
	assert_int_equal(js_store_audit_foreach(c->s, NULL, audit_cb, a), DJ_EOK);
	n = a->n;
	free(a);
	return n;
}

/* a commit's two audit entries land in its transaction, in order; a lost CAS writes neither,
 * and an unterminated or unnamed entry is refused (DJ_EINVAL) with nothing changed */
static void test_audit_two(void **state)
{
	struct store_ctx *c = *state;
	struct js_commit *m = mk_commit(0, 0, 1, 1);
	struct audit_seen *a = calloc(1, sizeof(*a));
	struct js_device *g;
	uint8_t e[LW_EUI_LEN];
	int base;

	assert_non_null(a);
	add_n(c, 1);
	base = audit_count(c);				/* device-import */
	audit2(m);
	m->expect_version = 7;				/* not the row's version: a lost CAS */
	assert_int_equal(js_store_commit(c->s, m), DJ_ECONFLICT);
	assert_int_equal(audit_count(c), base);
	m->expect_version = 0;
	memset(m->audit[1].detail, 'x', sizeof(m->audit[1].detail));	/* no terminator */
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);
	audit2(m);
	memset(m->audit[1].event, 'x', sizeof(m->audit[1].event));
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);
	audit2(m);
	memset(m->audit[1].actor, 'x', sizeof(m->audit[1].actor));
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);
	audit2(m);
	memset(m->audit[0].detail, 'x', sizeof(m->audit[0].detail));
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);
	audit2(m);
	m->audit[1].event[0] = '\0';			/* an entry must name its event */
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);
	assert_int_equal(audit_count(c), base);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.version, 0);		/* the refused commits changed nothing */
	free(g);

	audit2(m);
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	a->ordered = true;
	store_test_eui(0, e);
	assert_int_equal(js_store_audit_foreach(c->s, e, audit_cb, a), DJ_EOK);
	assert_true(a->ordered);
	assert_int_equal(a->n, base + 2);
	assert_string_equal(a->events[base], "join-accept");
	assert_string_equal(a->detail[base], "join_nonce=000001");
	assert_string_equal(a->events[base + 1], "appskey-release");
	assert_string_equal(a->detail[base + 1], "session_key_id=abc kek=ns1 via=joinans");
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.version, 1);
	free(g);
	free(a);
	free(m);
}

static char log_last[512];

/* log_keep - a log sink keeping the last line */
static void log_keep(int level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	snprintf(log_last, sizeof(log_last), "%s", line);
}

/* more audit entries than JS_COMMIT_AUDIT_MAX: refused (DJ_EINVAL) with a line saying so,
 * nothing written; the largest count allowed lands whole */
static void test_audit_max(void **state)
{
	struct store_ctx *c = *state;
	struct js_commit *m = mk_commit(0, 0, 1, 1);
	struct js_device *g;
	char want[128];
	int base;

	add_n(c, 1);
	base = audit_count(c);
	for (uint32_t i = 0; i < JS_COMMIT_AUDIT_MAX; i++)
		audit_add(m, "join-accept", "ns.example", "x");
	m->n_audit = JS_COMMIT_AUDIT_MAX + 1;		/* one past the array */
	log_last[0] = '\0';
	dj_log_set(log_keep, NULL, LOG_ERR);
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);
	dj_log_set(NULL, NULL, LOG_NOTICE);
	snprintf(want, sizeof(want), "commit carries %d audit entries, at most %d: refused",
		 JS_COMMIT_AUDIT_MAX + 1, JS_COMMIT_AUDIT_MAX);
	assert_non_null(strstr(log_last, want));
	m->n_audit = UINT32_MAX;
	assert_int_equal(js_store_commit(c->s, m), DJ_EINVAL);
	assert_int_equal(audit_count(c), base);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.version, 0);
	free(g);

	m->n_audit = JS_COMMIT_AUDIT_MAX;
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	assert_int_equal(audit_count(c), base + JS_COMMIT_AUDIT_MAX);
	free(m);
}

/* a 1000-entry DevNonce history round-trips exactly (and across a reopen for SQLite) */
static void test_hist_1000(void **state)
{
	struct store_ctx *c = *state;
	struct js_commit *m = mk_commit(0, 0, -1, 0);
	struct js_device *g;

	add_n(c, 1);
	m->new_st.hist_len = HIST_BIG;
	for (uint32_t i = 0; i < HIST_BIG; i++)
		m->new_st.hist[i] = (uint16_t)(i * 40503u + 17u);
	m->new_st.hist[HIST_BIG] = 0xdead;	/* beyond hist_len: must not be stored */
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	if (!c->mem)
		reopen(c);
	g = store_ctx_get(c, 0, DJ_EOK);
	assert_int_equal(g->st.hist_len, HIST_BIG);
	assert_memory_equal(g->st.hist, m->new_st.hist, HIST_BIG * sizeof(uint16_t));
	assert_int_equal(g->st.hist[HIST_BIG], 0);
	free(g);
	free(m);
}

/* wal_frames - the frames in the store's write-ahead log, from its size */
static long wal_frames(const struct store_ctx *c)
{
	char wal[STORE_TEST_PATH_LEN + STORE_TEST_SIDE_MAX];
	struct stat st;

	snprintf(wal, sizeof(wal), "%s-wal", c->path);
	if (stat(wal, &st) != 0 || st.st_size < WAL_HDR)
		return 0;
	return (long)((st.st_size - WAL_HDR) / WAL_FRAME);
}

/* file_copy - copy \p from to \p to (the database file alone, without its log) */
static void file_copy(const char *from, const char *to)
{
	char buf[65536];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* get_many_versions - read devices 0..n-1 with js_store_device_get_many: each found, and its
 * version into v[] */
static void get_many_versions(struct store_ctx *c, uint32_t n, uint64_t v[])
{
	uint8_t eui[GET_MANY_N][LW_EUI_LEN];
	const uint8_t *ep[GET_MANY_N];
	struct js_device *dp[GET_MANY_N];
	int rets[GET_MANY_N];

	for (uint32_t i = 0; i < n; i++) {
		store_test_eui(i, eui[i]);
		ep[i] = eui[i];
		dp[i] = calloc(1, sizeof(*dp[i]));
		assert_non_null(dp[i]);
	}
	assert_int_equal(js_store_device_get_many(c->s, n, ep, dp, rets), DJ_EOK);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(rets[i], DJ_EOK);
		v[i] = dp[i]->st.version;
		free(dp[i]);
	}
}

/* js_store_device_get_many reads what js_store_device_get reads, a missing device as
 * DJ_ENOENT among found ones; after a commit, the next group (and a single read) sees the
 * committed state: no reader keeps an old snapshot */
static void test_device_get_many(void **state)
{
	struct store_ctx *c = *state;
	uint8_t eui[4][LW_EUI_LEN];
	const uint8_t *ep[4];
	struct js_device *dp[4], *g;
	int rets[4] = { 99, 99, 99, 99 };
	uint64_t v[GET_MANY_N];

	add_n(c, GET_MANY_N);
	for (uint32_t i = 0; i < 4; i++) {
		store_test_eui(i == 1 ? 777 : i, eui[i]);	/* 777: never added */
		ep[i] = eui[i];
		dp[i] = calloc(1, sizeof(*dp[i]));
		assert_non_null(dp[i]);
	}
	assert_int_equal(js_store_device_get_many(c->s, 4, ep, dp, rets), DJ_EOK);
	assert_int_equal(rets[0], DJ_EOK);
	assert_int_equal(rets[1], DJ_ENOENT);
	assert_int_equal(rets[2], DJ_EOK);
	assert_int_equal(rets[3], DJ_EOK);
	for (uint32_t i = 0; i < 4; i++) {
		if (i == 1)
			continue;	/* the missing one */
		g = store_ctx_get(c, i, DJ_EOK);
		assert_memory_equal(g->dev_eui, dp[i]->dev_eui, LW_EUI_LEN);
		assert_int_equal(g->root_token_len, dp[i]->root_token_len);
		assert_memory_equal(g->root_token, dp[i]->root_token, g->root_token_len);
		assert_int_equal(g->created_at, dp[i]->created_at);
		free(g);
	}
	/* bad arguments: refused, nothing read */
	assert_int_equal(js_store_device_get_many(NULL, 4, ep, dp, rets), DJ_EINVAL);
	assert_int_equal(js_store_device_get_many(c->s, 4, NULL, dp, rets), DJ_EINVAL);
	assert_int_equal(js_store_device_get_many(c->s, 4, ep, NULL, rets), DJ_EINVAL);
	assert_int_equal(js_store_device_get_many(c->s, 4, ep, dp, NULL), DJ_EINVAL);
	ep[2] = NULL;
	assert_int_equal(js_store_device_get_many(c->s, 4, ep, dp, rets), DJ_EINVAL);
	assert_int_equal(js_store_device_get_many(c->s, 0, NULL, NULL, NULL), DJ_EOK);
	for (uint32_t i = 0; i < 4; i++)
		free(dp[i]);

	/* each round: a group, a commit on device k, a group that must see it */
	for (uint32_t k = 0; k < GET_MANY_N; k++) {
		struct js_commit *m = mk_commit(k, 0, (int32_t)k, 1);

		get_many_versions(c, GET_MANY_N, v);
		assert_int_equal(v[k], 0);
		assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
		free(m);
		get_many_versions(c, GET_MANY_N, v);
		for (uint32_t i = 0; i < GET_MANY_N; i++)
			assert_int_equal(v[i], i <= k ? 1 : 0);
		g = store_ctx_get(c, k, DJ_EOK);
		assert_int_equal(g->st.version, 1);
		assert_int_equal(g->st.dev_nonce_last, (int32_t)k);
		free(g);
	}
}

/* group_read - js_store_device_get_many on devices ids[0..n-1] into d[] (each filled with
 * GROUP_FILL first) and rets[] */
static void group_read(struct store_ctx *c, size_t n, const uint32_t ids[], struct js_device d[],
		       int rets[])
{
	uint8_t eui[GROUP_DEVS][LW_EUI_LEN];
	const uint8_t *ep[GROUP_DEVS];
	struct js_device *dp[GROUP_DEVS];

	assert_true(n <= GROUP_DEVS);
	for (size_t i = 0; i < n; i++) {
		store_test_eui(ids[i], eui[i]);
		ep[i] = eui[i];
		memset(&d[i], GROUP_FILL, sizeof(d[i]));
		dp[i] = &d[i];
		rets[i] = 99;
	}
	assert_int_equal(js_store_device_get_many(c->s, n, ep, dp, rets), DJ_EOK);
}

/* expect_single - what a group gave for device id (d, ret) is what a single read gives: the
 * same result and, both starting from GROUP_FILL, the same bytes (every field filled alike; a
 * missing device's struct left alone by both) */
static void expect_single(struct store_ctx *c, uint32_t id, const struct js_device *d, int ret)
{
	struct js_device *g = malloc(sizeof(*g));
	uint8_t e[LW_EUI_LEN];

	assert_non_null(g);
	memset(g, GROUP_FILL, sizeof(*g));
	store_test_eui(id, e);
	assert_int_equal(ret, js_store_device_get(c->s, e, g));
	assert_memory_equal(g, d, sizeof(*g));
	if (ret == DJ_EOK)
		assert_memory_equal(d->dev_eui, e, LW_EUI_LEN);
	free(g);
}

/* pg_round_trips - the statements the PostgreSQL store's readers have sent (0 on the others) */
static uint64_t pg_round_trips(struct store_ctx *c)
{
	struct js_store__pg *q = c->s->be;
	uint64_t n = 0;

	if (!store_test_pg)
		return 0;
	for (size_t k = 0; k < JS_PG_READERS; k++)
		n += q->rd[k].round_trips;
	return n;
}

/* A group of 32 in no order of the store's, with two missing devices among present ones and a
 * DevEUI asked three times: each result and struct is the single read's. On PostgreSQL the
 * group is one round trip (32 single reads are 32). A device deleted between two group reads
 * is DJ_ENOENT in the second, the others unchanged. */
static void test_device_get_group(void **state)
{
	struct store_ctx *c = *state;
	struct js_device *d = calloc(GROUP_N, sizeof(*d));
	uint32_t ids[GROUP_N];
	int rets[GROUP_N];
	size_t found = 0;
	uint64_t rt;

	assert_non_null(d);
	add_n(c, GROUP_DEVS);
	for (uint32_t i = 0; i < 4; i++) {	/* nonce state, DevNonce history, versions apart */
		struct js_commit *m = mk_commit(3 + 7 * i, 0, (int32_t)(100 + i), 5 + i);

		assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
		free(m);
	}
	for (uint32_t i = 0; i < GROUP_N; i++)
		ids[i] = GROUP_DEVS - 3 - i;		/* 37 down to 6 */
	ids[5] = 900;					/* never added */
	ids[20] = 901;
	ids[30] = ids[31] = ids[13];			/* device 24, asked three times */
	/* every reader connected, both statements prepared on each */
	for (int pass = 0; pass < JS_PG_READERS; pass++)
		group_read(c, GROUP_N, ids, d, rets);
	for (int pass = 0; pass < JS_PG_READERS; pass++)
		expect_single(c, ids[0], &d[0], rets[0]);
	rt = pg_round_trips(c);
	group_read(c, GROUP_N, ids, d, rets);
	if (store_test_pg)
		assert_int_equal(pg_round_trips(c) - rt, 1);
	for (size_t i = 0; i < GROUP_N; i++) {
		expect_single(c, ids[i], &d[i], rets[i]);
		found += rets[i] == DJ_EOK;
	}
	assert_int_equal(rets[5], DJ_ENOENT);
	assert_int_equal(rets[20], DJ_ENOENT);
	assert_int_equal(found, GROUP_N - 2);
	assert_int_equal(d[30].st.version, 1);		/* device 24: committed once */
	assert_int_equal(d[31].st.dev_nonce_last, 103);
	if (store_test_pg)	/* the single reads above: one round trip each */
		assert_int_equal(pg_round_trips(c) - rt, 1 + GROUP_N);

	/* a device deleted between two group reads */
	uint8_t e[LW_EUI_LEN];

	store_test_eui(ids[1], e);
	assert_int_equal(js_store_device_delete(c->s, e, "tester"), DJ_EOK);
	group_read(c, GROUP_N, ids, d, rets);
	assert_int_equal(rets[1], DJ_ENOENT);
	for (size_t i = 0; i < GROUP_N; i++) {
		expect_single(c, ids[i], &d[i], rets[i]);
		if (i != 1 && i != 5 && i != 20)
			assert_int_equal(rets[i], DJ_EOK);
	}
	free(d);
}

/* More DevEUIs than one group (the store's API has no limit): every one read (on PostgreSQL in
 * one query per 32, two here), each the single read's. And on PostgreSQL, a query that fails
 * (its table renamed away) fails every request with the single read's fault, DJ_ESQL. */
static void test_device_get_over_group(void **state)
{
	struct store_ctx *c = *state;
	struct js_device *d = calloc(GROUP_DEVS, sizeof(*d));
	uint32_t ids[GROUP_DEVS];
	int rets[GROUP_DEVS];
	char schema[128], sql[256];
	uint64_t rt;

	assert_non_null(d);
	add_n(c, GROUP_DEVS);
	for (uint32_t i = 0; i < GROUP_DEVS; i++)
		ids[i] = (i * 7) % GROUP_DEVS;		/* each once, in another order */
	for (int pass = 0; pass < JS_PG_READERS; pass++)
		group_read(c, GROUP_DEVS, ids, d, rets);
	rt = pg_round_trips(c);
	group_read(c, GROUP_DEVS, ids, d, rets);
	if (store_test_pg)
		assert_int_equal(pg_round_trips(c) - rt, 2);
	for (size_t i = 0; i < GROUP_DEVS; i++) {
		assert_int_equal(rets[i], DJ_EOK);
		expect_single(c, ids[i], &d[i], rets[i]);
	}
	if (store_test_pg) {
		store_test_schema(c->path, schema, sizeof(schema));
		snprintf(sql, sizeof(sql), "ALTER TABLE %s.devices RENAME TO gone", schema);
		assert_true(store_test_pg_sql(sql));
		group_read(c, GROUP_N, ids, d, rets);
		for (size_t i = 0; i < GROUP_N; i++)
			expect_single(c, ids[i], &d[i], rets[i]);
		for (size_t i = 0; i < GROUP_N; i++)
			assert_int_equal(rets[i], DJ_ESQL);
		snprintf(sql, sizeof(sql), "ALTER TABLE %s.gone RENAME TO devices", schema);
		assert_true(store_test_pg_sql(sql));
	}
	free(d);
}

/* SQLite: a group of every size from 2 to GROUP_DEVS, each with a DevEUI asked twice (first and
 * last), one never added and one whose row is malformed (mac_version 99, written from outside):
 * each result and struct is the single read's, the malformed one DJ_EMALFORMED without harm to
 * the others; sizes rising, then falling (a statement's places bound for a larger group must
 * not stay bound). The store reads a group of up to 32 with one statement of 4, 8, 16 or 32
 * places (more: one per 32): all four were prepared, so no size fell back to the reads one by
 * one. */
static void test_device_get_sizes(void **state)
{
	struct store_ctx *c = *state;
	struct js_store__sq *q = c->s->be;
	struct js_device *d = calloc(GROUP_DEVS, sizeof(*d));
	uint32_t ids[GROUP_DEVS];
	int rets[GROUP_DEVS];
	uint8_t bad[LW_EUI_LEN];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t malformed = 0;

	assert_non_null(d);
	add_n(c, GROUP_DEVS);
	for (uint32_t i = 0; i < 3; i++) {	/* nonce states apart */
		struct js_commit *m = mk_commit(2 + 9 * i, 0, (int32_t)(40 + i), 3 + i);

		assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
		free(m);
	}
	store_test_eui(GROUP_BAD, bad);
	assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE devices SET mac_version=99 WHERE dev_eui=?",
					    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_bind_blob(st, 1, bad, LW_EUI_LEN, SQLITE_STATIC), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* up, then down: a statement used for a larger group before must not keep its places */
	for (uint32_t r = 0; r < 2 * (GROUP_DEVS - 1); r++) {
		uint32_t n = r < GROUP_DEVS - 1 ? r + 2 : 2 * GROUP_DEVS - r - 1;

		for (uint32_t i = 0; i < n; i++)
			ids[i] = (i * 7 + n) % GROUP_DEVS;
		ids[n / 2] = GROUP_BAD;
		if (n >= 3)
			ids[n - 1] = ids[0];
		if (n >= 4)
			ids[1] = 900;			/* never added */
		group_read(c, n, ids, d, rets);
		for (uint32_t i = 0; i < n; i++) {
			expect_single(c, ids[i], &d[i], rets[i]);
			if (ids[i] == GROUP_BAD) {
				assert_int_equal(rets[i], DJ_EMALFORMED);
				malformed++;
			} else {
				assert_int_equal(rets[i], ids[i] == 900 ? DJ_ENOENT : DJ_EOK);
			}
		}
		if (n >= 3)
			assert_memory_equal(&d[0], &d[n - 1], sizeof(d[0]));
	}
	assert_true(malformed >= 2 * (GROUP_DEVS - 1));
	for (size_t k = 0; k < JS_SQ_MANY_N; k++) {
		bool prepared = false;

		for (size_t i = 0; i < JS_SQ_READERS; i++)
			prepared |= q->rd[i].many[k] != NULL;
		assert_true(prepared);
	}
	free(d);
}

/* ckpt_passive - on a connection of its own, a PASSIVE checkpoint of c's file: the frames in
 * the log, and how many of them it could copy */
static void ckpt_passive(struct store_ctx *c, int *log, int *copied)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	/* a first read opens the log (before it, the connection reports -1, -1) */
	assert_int_equal(sqlite3_exec(db, "SELECT 1 FROM meta LIMIT 1", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, log,
						   copied), SQLITE_OK);
	sqlite3_close(db);
}

/* wal_index - the log's last frame (mxFrame, the wal-index header) and how many of its frames
 * are copied into the database file (nBackfill, the checkpoint info after the two copies of the
 * header), read from c's -shm file; both native-endian u32 (SQLite's wal.c) */
static void wal_index(struct store_ctx *c, uint32_t *mx_frame, uint32_t *backfill)
{
	char shm[STORE_TEST_PATH_LEN + STORE_TEST_SIDE_MAX];
	uint8_t b[100];
	int fd;

	snprintf(shm, sizeof(shm), "%s-shm", c->path);
	fd = open(shm, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, sizeof(b), 0), (ssize_t)sizeof(b));
	close(fd);
	memcpy(mx_frame, b + 16, 4);
	memcpy(backfill, b + 96, 4);
}

/* SQLite: a group read leaves no read transaction behind. One left open would pin the log at
 * its snapshot: a checkpoint could not copy what was committed after it. */
static void test_get_many_unpins(void **state)
{
	struct store_ctx *c = *state;
	struct js_store__sq *q = c->s->be;
	uint64_t v[GET_MANY_N];
	int log = -1, copied = -1;

	add_n(c, GET_MANY_N);
	for (uint32_t k = 0; k < GET_MANY_N; k++) {
		struct js_commit *m = mk_commit(k, 0, 1, 1);

		get_many_versions(c, GET_MANY_N, v);
		for (size_t i = 0; i < JS_SQ_READERS; i++)
			assert_true(sqlite3_get_autocommit(q->rd[i].db));
		assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
		free(m);
		ckpt_passive(c, &log, &copied);
		assert_true(log > 0);
		assert_int_equal(copied, log);
	}
}

/* SQLite: once the log passes CKPT_FRAMES, the checkpointer thread (not the writer) copies every
 * committed change into the database file: a copy of that file alone holds them all */
static void test_checkpointer(void **state)
{
	struct store_ctx *c = *state;
	char copy[STORE_TEST_PATH_LEN + STORE_TEST_SIDE_MAX];
	struct js_commit *m;
	sqlite3 *db;
	uint32_t k = 0;
	uint32_t log = 0, copied = 0;
	int rows = 0;

	add_n(c, CKPT_DEVICES);
	/* each commit grows one row by a 2000-byte history: a page or more of log each */
	for (; k < CKPT_DEVICES && wal_frames(c) < CKPT_FRAMES; k++) {
		m = mk_commit(k, 0, -1, 1);
		m->new_st.hist_len = HIST_BIG;
		for (uint32_t i = 0; i < HIST_BIG; i++)
			m->new_st.hist[i] = (uint16_t)(i + k);
		assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
		free(m);
	}
	assert_true(wal_frames(c) >= CKPT_FRAMES);
	assert_true(k < CKPT_DEVICES);
	assert_true(js_store__sq_ckpt_wait(c->s, 1) >= 1);
	snprintf(copy, sizeof(copy), "%s-copy", c->path);
	file_copy(c->path, copy);
	assert_int_equal(sqlite3_open_v2(copy, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT 1 FROM devices WHERE version=1 AND"
				      " length(dn_hist)=2000", one_row, &rows, NULL), SQLITE_OK);
	sqlite3_close(db);
	unlink(copy);
	assert_int_equal(rows, (int)k);
	/* after the run, the writer's next commit copies its own frames too (a RESTART checkpoint
	 * in its WAL hook, which waits out the readers of older snapshots): every frame is in the
	 * database file, so the commit after it restarts the log. Before, the next commit's
	 * frames stayed uncopied, the log could restart only at a BEGIN that found every frame
	 * copied, and under load it stayed past CKPT_FRAMES, the checkpointer woken by every
	 * commit for one commit's frames (issue 15) */
	m = mk_commit(k, 0, -1, 1);
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	free(m);
	wal_index(c, &log, &copied);
	assert_true(log > 0);
	assert_int_equal(copied, log);
}

/* test_sessions_expire - sessions past their expiry go, the others stay (injected clock) */
static void test_sessions_expire(void **state)
{
	struct store_ctx *c = *state;
	struct js_session se;
	uint64_t count = 99;

	add_n(c, 1);
	for (uint32_t k = 0; k < 40; k++) {
		struct js_commit *m = mk_commit(0, k, (int32_t)k + 1, (int64_t)k + 1);

		m->has_session = true;
		m->session_id_len = sess_id(0, (const char *)&k, 4, m->session_id);
		m->session_token_len = 8;
		memset(m->session_token, 0x44, 8);
		m->session_expires_at = T0 + (k % 2 ? 100 : 1000);	/* odd ones expire first */
		assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
		free(m);
	}
	c->now = T0 + 99;
	assert_int_equal(js_store_sessions_expire(c->s, &count), DJ_EOK);
	assert_int_equal(count, 0);
	c->now = T0 + 100;
	assert_int_equal(js_store_sessions_expire(c->s, &count), DJ_EOK);
	assert_int_equal(count, 20);
	for (uint32_t k = 0; k < 40; k++) {
		uint8_t id[JS_SESSION_ID_MAX];
		uint32_t n = sess_id(0, (const char *)&k, 4, id);

		assert_int_equal(js_store_session_get(c->s, id, n, &se),
				 k % 2 ? DJ_ENOENT : DJ_EOK);
	}
	c->now = T0 + 5000;
	assert_int_equal(js_store_sessions_expire(c->s, &count), DJ_EOK);
	assert_int_equal(count, 20);
}

/* --- SQLite only: migrations 7 (sessions keyed by DevEUI, two indexes fewer) and 8 (audit
 * without AUTOINCREMENT) ------------------------------------------------------------------ */

/* The file taken back to schema 6: sessions keyed by session_id, with the two indexes that
 * migration 7 drops, and audit with AUTOINCREMENT (the SQL of migrations 1 and 2). */
#define SQ_BACK_TO_6 \
	"CREATE TABLE s6(session_id BLOB PRIMARY KEY," \
	" dev_eui BLOB NOT NULL REFERENCES devices(dev_eui) ON DELETE CASCADE," \
	" created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, session_token BLOB NOT NULL);" \
	"INSERT INTO s6 SELECT session_id, dev_eui, created_at, expires_at, session_token" \
	" FROM sessions;" \
	"DROP TABLE sessions; ALTER TABLE s6 RENAME TO sessions;" \
	"CREATE INDEX sessions_dev_eui ON sessions(dev_eui);" \
	"CREATE INDEX sessions_expires ON sessions(expires_at);" \
	"CREATE TABLE a6(id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, dev_eui BLOB," \
	" event TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL);" \
	"INSERT INTO a6 SELECT id, at, dev_eui, event, actor, detail FROM audit;" \
	"DROP TABLE audit; ALTER TABLE a6 RENAME TO audit;" \
	"CREATE INDEX audit_dev_eui ON audit(dev_eui);" \
	"PRAGMA user_version=6;"

#define MIG_DEVS 3
#define MIG_JOINS 2	/* sessions per device */

/* mig_join - join k of device i: a session DevEUI | JoinNonce k + 1, token bytes 16 * i + k */
static void mig_join(struct store_ctx *c, uint32_t i, uint32_t k)
{
	struct js_commit *m = mk_commit(i, k, (int32_t)k + 1, (int64_t)k + 1);

	m->has_session = true;
	js_session_id(m->dev_eui, k + 1, m->session_id);
	m->session_id_len = JS_SESSION_ID_LEN;
	m->session_token_len = 24;
	memset(m->session_token, (int)(16 * i + k), 24);
	m->session_expires_at = T0 + 1000 + k;
	audit_add(m, "join-accept", "ns.example", "");
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	free(m);
}

/* mig_check_sessions - every session of mig_join() reads back whole */
static void mig_check_sessions(struct store_ctx *c)
{
	struct js_session se;
	uint8_t sid[JS_SESSION_ID_LEN], e[LW_EUI_LEN], tok[24];

	for (uint32_t i = 0; i < MIG_DEVS; i++) {
		store_test_eui(i, e);
		for (uint32_t k = 0; k < MIG_JOINS; k++) {
			js_session_id(e, k + 1, sid);
			memset(tok, (int)(16 * i + k), sizeof(tok));
			assert_int_equal(js_store_session_get(c->s, sid, sizeof(sid), &se), DJ_EOK);
			assert_memory_equal(se.dev_eui, e, LW_EUI_LEN);
			assert_int_equal(se.expires_at, T0 + 1000 + k);
			assert_int_equal(se.session_token_len, sizeof(tok));
			assert_memory_equal(se.session_token, tok, sizeof(tok));
		}
	}
}

/* a schema-6 file with devices, sessions and audit rows is migrated to 8 on open: every row
 * kept, the two indexes and the audit sequence gone, lookups, the cascade and the audit ids
 * as before */
static void test_migration_6_to_8(void **state)
{
	struct store_ctx *c = *state;
	struct audit_seen *a = calloc(1, sizeof(*a));
	uint8_t e[LW_EUI_LEN];
	int64_t max_id;
	char *err = NULL;
	sqlite3 *db = NULL;

	assert_non_null(a);
	add_n(c, MIG_DEVS);
	for (uint32_t i = 0; i < MIG_DEVS; i++)
		for (uint32_t k = 0; k < MIG_JOINS; k++)
			mig_join(c, i, k);
	js_store_close(c->s);
	c->s = NULL;
	assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, SQ_BACK_TO_6, NULL, NULL, &err), SQLITE_OK);
	sqlite3_free(err);
	sqlite3_close(db);
	assert_int_equal(sql_int(c->path, "PRAGMA user_version"), 6);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM sqlite_master WHERE name IN"
				 " ('sessions_dev_eui', 'audit_dev_eui')"), 2);
	max_id = sql_int(c->path, "SELECT max(id) FROM audit");
	assert_int_equal(sql_int(c->path, "SELECT seq FROM sqlite_sequence WHERE name='audit'"),
			 max_id);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM audit"),
			 MIG_DEVS * (1 + MIG_JOINS));

	reopen(c);	/* migrates */
	assert_int_equal(sql_int(c->path, "PRAGMA user_version"), 8);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM sqlite_master WHERE name IN"
				 " ('sessions_dev_eui', 'audit_dev_eui', 'sessions_v7',"
				 " 'audit_v8')"), 0);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM sqlite_master WHERE"
				 " name='audit' AND sql LIKE '%AUTOINCREMENT%'"), 0);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM sqlite_sequence WHERE"
				 " name='audit'"), 0);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM sqlite_master WHERE"
				 " name='sessions_expires'"), 1);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM devices"), MIG_DEVS);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM sessions"), MIG_DEVS * MIG_JOINS);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM audit"),
			 MIG_DEVS * (1 + MIG_JOINS));
	assert_int_equal(sql_int(c->path, "SELECT max(id) FROM audit"), max_id);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	mig_check_sessions(c);
	for (uint32_t i = 0; i < MIG_DEVS; i++)
		free(store_ctx_get(c, i, DJ_EOK));

	/* the foreign key survived: deleting a device deletes its sessions, only its */
	store_test_eui(0, e);
	assert_int_equal(js_store_device_delete(c->s, e, "op"), DJ_EOK);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM sessions"),
			 (MIG_DEVS - 1) * MIG_JOINS);
	/* audit ids go on ascending after the old ones */
	a->ordered = true;
	assert_int_equal(js_store_audit_foreach(c->s, NULL, audit_cb, a), DJ_EOK);
	assert_true(a->ordered);
	assert_int_equal(a->n, MIG_DEVS * (1 + MIG_JOINS) + 1);
	assert_true(a->last_id > max_id);
	/* opening again does not migrate again */
	reopen(c);
	assert_int_equal(sql_int(c->path, "PRAGMA user_version"), 8);
	assert_int_equal(sql_int(c->path, "SELECT count(*) FROM sessions"),
			 (MIG_DEVS - 1) * MIG_JOINS);
	free(a);
}

/* --- PostgreSQL only: several instances on one database ---------------------------------- */

/* open_second - a second store (another instance) on the context's database */
static int open_second(struct store_ctx *c, struct js_store **out)
{
	return store_open(c, c->kcv, out);
}

/* What each opener thread opens: the conninfo (copied once: store_test_conninfo is not
 * thread-safe) and the KCV. */
struct opener_arg {
	char conninfo[STORE_TEST_CONNINFO_MAX];
	const uint8_t *kcv;
};

/* opener - a thread opening a store on the same fresh schema (the migration race) */
static void *opener(void *arg)
{
	const struct opener_arg *a = arg;
	struct js_store_props p = { .conninfo = a->conninfo, .kcv = a->kcv };
	struct js_store *s = NULL;
	intptr_t rc = js_store_open(&p, &s);

	js_store_close(s);
	return (void *)rc;
}

/* test_pg_two_instances - two stores on one database: the CAS decides between them, sessions
 * made by one are read by the other, one publisher of the outbox at a time, and instances
 * starting at once migrate the schema once */
static void test_pg_two_instances(void **state)
{
	struct store_ctx *c = *state;
	struct js_store *b = NULL, *s3 = NULL;
	struct js_commit *m;
	struct js_session se;
	struct js_outbox_row rows[4];
	struct js_event ev = { .body = (const uint8_t *)"evt", .len = 3 };
	size_t n = 9;
	uint8_t sid[JS_SESSION_ID_LEN];
	pthread_t t[4];
	struct opener_arg *oa;
	void *rc;

	add_n(c, 1);
	assert_int_equal(open_second(c, &b), DJ_EOK);
	/* A wins version 0; B, which read version 0 too, loses the CAS and changes nothing */
	m = mk_commit(0, 0, 1, 1);
	m->has_session = true;
	js_session_id(m->dev_eui, 1, sid);
	memcpy(m->session_id, sid, sizeof(sid));
	m->session_id_len = sizeof(sid);
	m->session_token_len = 16;
	memset(m->session_token, 0x33, 16);
	m->session_expires_at = T0 + 100;
	m->events = &ev;
	assert_int_equal(js_store_commit(c->s, m), DJ_EOK);
	free(m);
	m = mk_commit(0, 0, 2, 1);
	assert_int_equal(js_store_commit(b, m), DJ_ECONFLICT);
	free(m);
	m = mk_commit(0, 1, 2, 2);	/* on fresh state it goes through */
	assert_int_equal(js_store_commit(b, m), DJ_EOK);
	free(m);
	/* the session made on A is read on B */
	assert_int_equal(js_store_session_get(b, sid, sizeof(sid), &se), DJ_EOK);
	assert_int_equal(se.session_token_len, 16);
	assert_int_equal(se.session_token[0], 0x33);
	/* the outbox: the first to fetch publishes, the other sees nothing until it goes */
	assert_int_equal(js_store_outbox_fetch(c->s, 0, rows, 4, &n), DJ_EOK);
	assert_int_equal(n, 1);
	assert_memory_equal(rows[0].body, "evt", 3);
	assert_int_equal(js_store_outbox_fetch(b, 0, rows, 4, &n), DJ_EOK);
	assert_int_equal(n, 0);
	js_store_close(c->s);
	c->s = NULL;
	/* the server drops A's lock when A's backend has ended: poll for it, bounded */
	for (int k = 0; k < 250; k++) {
		assert_int_equal(js_store_outbox_fetch(b, 0, rows, 4, &n), DJ_EOK);
		if (n != 0)
			break;
		usleep(20000);
	}
	assert_int_equal(n, 1);	/* B took over */
	js_store_close(b);
	/* four instances starting at once on a fresh database: one migration, all open */
	store_test_unlink(c->path);
	oa = calloc(1, sizeof(*oa));
	assert_non_null(oa);
	snprintf(oa->conninfo, sizeof(oa->conninfo), "%s", store_test_conninfo(c->path));
	oa->kcv = c->kcv;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, opener, oa), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_int_equal((intptr_t)rc, DJ_EOK);
	}
	free(oa);
	assert_int_equal(open_second(c, &s3), DJ_EOK);
	c->s = s3;
}

/* check_lines - a js_store_check callback: the report, one line after another */
static void check_lines(const char *line, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 4096 - n, "%s\n", line);
}

/* test_pg_check - danejoin-devices check on PostgreSQL: ok on a sound store; a JoinNonce out
 * of range and a session without its device each named by table, DevEUI and rule */
static void test_pg_check(void **state)
{
	struct store_ctx *c = *state;
	char out[4096] = "", schema[128], sql[1024], ci[STORE_TEST_CONNINFO_MAX + 32];
	struct js_store_props p = { .kcv = c->kcv };
	struct js_store *lim = NULL;

	add_n(c, 2);
	assert_int_equal(js_store_check(c->s, true, check_lines, out), DJ_EOK);
	assert_non_null(strstr(out, "ok\n"));
	assert_null(strstr(out, "bt_index_check"));
	/* a role that may not run amcheck (not a superuser): said so, and not a failure */
	store_test_schema(c->path, schema, sizeof(schema));
	snprintf(sql, sizeof(sql), "DO $$ BEGIN CREATE ROLE djt_check LOGIN; EXCEPTION WHEN"
		 " duplicate_object THEN NULL; END $$; GRANT ALL ON SCHEMA %s TO djt_check;"
		 " GRANT ALL ON ALL TABLES IN SCHEMA %s TO djt_check;"
		 " GRANT ALL ON ALL SEQUENCES IN SCHEMA %s TO djt_check", schema, schema, schema);
	assert_true(store_test_pg_sql(sql));
	snprintf(ci, sizeof(ci), "%s user=djt_check", store_test_conninfo(c->path));
	p.conninfo = ci;
	assert_int_equal(js_store_open(&p, &lim), DJ_EOK);
	out[0] = '\0';
	assert_int_equal(js_store_check(lim, true, check_lines, out), DJ_EOK);
	js_store_close(lim);
	assert_non_null(strstr(out, "amcheck not available: indexes not checked\nok\n"));
	snprintf(sql, sizeof(sql), "UPDATE %s.devices SET join_nonce_last = 99999999 WHERE"
		 " dev_eui = '\\x7000000000000001'", schema);
	assert_true(store_test_pg_sql(sql));
	snprintf(sql, sizeof(sql), "ALTER TABLE %s.sessions DROP CONSTRAINT sessions_dev_eui_fkey;"
		 " INSERT INTO %s.sessions VALUES('\\x00000000000009990000', '\\x0000000000000999',"
		 " 0, 0, '\\x00')", schema, schema);
	assert_true(store_test_pg_sql(sql));
	out[0] = '\0';
	assert_int_equal(js_store_check(c->s, false, check_lines, out), DJ_EMALFORMED);
	assert_non_null(strstr(out, "devices: DevEUI 7000000000000001: join_nonce_last is neither"));
	assert_non_null(strstr(out, "sessions: DevEUI 0000000000000999: its device does not exist"));
	assert_null(strstr(out, "7000000000000000:"));	/* the sound device is not named */
	assert_null(strstr(out, "ok\n"));
}

/* test_pg_down - an unreachable database: open fails with DJ_EIO (no fallback) */
static void test_pg_down(void **state)
{
	struct store_ctx *c = *state;
	struct js_store_props p = { .conninfo = "host=/nonexistent-dj-socket-dir dbname=dj "
				    "connect_timeout=2", .kcv = c->kcv, .path = c->path };
	struct js_store *s = NULL;

	assert_int_equal(js_store_open(&p, &s), DJ_EIO);
	assert_null(s);
	assert_int_equal(access(c->path, F_OK), -1);	/* no SQLite file made instead */
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_sqlite, store_ctx_teardown), \
		cmocka_unit_test_setup_teardown(t, setup_mem, store_ctx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_guards, setup_sqlite, store_ctx_teardown),
		BOTH(test_devices_add),
		BOTH(test_commit_cas),
		BOTH(test_group_commit),
		BOTH(test_submit_async),
		BOTH(test_reset_nonces),
		BOTH(test_sessions_delete),
		BOTH(test_session_again),
		BOTH(test_sessions_expire),
		BOTH(test_foreach),
		BOTH(test_rewrap),
		BOTH(test_audit),
		BOTH(test_audit_two),
		BOTH(test_audit_max),
		BOTH(test_hist_1000),
		BOTH(test_device_get_many),
		BOTH(test_device_get_group),
		BOTH(test_device_get_over_group),
		cmocka_unit_test_setup_teardown(test_get_many_unpins, setup_sqlite,
						store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_device_get_sizes, setup_sqlite,
						store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_commit_row_hint, setup_sqlite,
						store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_checkpointer, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_migration_6_to_8, setup_sqlite,
						store_ctx_teardown),
	};

	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test_setup_teardown(test_devices_add, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_commit_cas, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_submit_async, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_reset_nonces, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_sessions_delete, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_session_again, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_sessions_expire, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_foreach, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_rewrap, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_audit, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_audit_two, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_audit_max, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_hist_1000, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_device_get_many, setup_sqlite,
						store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_device_get_group, setup_sqlite,
						store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_device_get_over_group, setup_sqlite,
						store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_pg_two_instances, setup_sqlite,
						store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_pg_down, setup_sqlite, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_pg_check, setup_sqlite, store_ctx_teardown),
	};

	return store_test_main("store", tests, DJ_ARRAY_LEN(tests), pg_tests,
			       DJ_ARRAY_LEN(pg_tests));
}
