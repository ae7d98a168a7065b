/*
 * test_js_engine.h - the fixture shared by the join engine's tests (test_js_engine.c,
 * test_js_engine_many.c): a key store, a store (memory or SQLite), an engine, enrolled devices
 * with their simulators. Include after <cmocka.h>.
 */
#ifndef DJ_TESTS_UNIT_TEST_JS_ENGINE_H
#define DJ_TESTS_UNIT_TEST_JS_ENGINE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "engine/js_engine.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "lorawan/lw_sim.h"

struct fx {
	struct js_keystore *ks;
	struct js_store *st;
	struct js_engine *e;
	struct lw_crypto *cx;
	uint8_t kcv[JS_KCV_LEN];
	char path[512];
	unsigned next_dev;
	int64_t clock_shift;		/* seconds the store's clock runs ahead of time() */
};

static const uint8_t JOIN_EUI[8] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x00, 0x00, 0x01 };

/* fx_clock - the store's clock: time(), shifted by the test */
static inline int64_t fx_clock(void *arg)
{
	return (int64_t)time(NULL) + ((struct fx *)arg)->clock_shift;
}

/* open_store - (re)open the fixture's store: SQLite when fx->path is set, else memory */
static inline void open_store(struct fx *f, unsigned hist)
{
	struct js_store_props sp = { .path = f->path[0] ? f->path : NULL, .kcv = f->kcv,
				     .devnonce_history = hist, .clock = fx_clock, .clock_arg = f };
	struct js_engine_props ep = { .session_lifetime = 3600 };

	assert_int_equal(js_store_open(&sp, &f->st), DJ_EOK);
	ep.store = f->st;
	ep.ks = f->ks;
	assert_int_equal(js_engine_new(&ep, &f->e), DJ_EOK);
}

static inline void close_store(struct fx *f)
{
	js_engine_free(f->e);
	js_store_close(f->st);
	f->e = NULL;
	f->st = NULL;
}

static inline int setup_common(void **state, bool sqlite)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t master[JS_MASTER_KEY_LEN];
	const char *tmp = getenv("DJ_TEST_TMPDIR");

	assert_non_null(f);
	assert_int_equal(RAND_bytes(master, sizeof(master)), 1);
	assert_int_equal(js_keystore_new(master, &f->ks), DJ_EOK);
	js_keystore_kcv(f->ks, f->kcv);
	assert_int_equal(lw_crypto_new(&f->cx), DJ_EOK);
	if (sqlite) {
		snprintf(f->path, sizeof(f->path), "%s/engine-%d-%u.db", tmp ? tmp : "/tmp",
			 (int)getpid(), (unsigned)rand());
		unlink(f->path);
	}
	open_store(f, 32);
	*state = f;
	return 0;
}

static inline int setup_mem(void **state) { return setup_common(state, false); }
static inline int setup_sql(void **state) { return setup_common(state, true); }

static inline int teardown(void **state)
{
	struct fx *f = *state;
	char p[600];

	close_store(f);
	if (f->path[0]) {
		unlink(f->path);
		snprintf(p, sizeof(p), "%s-wal", f->path);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", f->path);
		unlink(p);
	}
	lw_crypto_free(f->cx);
	js_keystore_free(f->ks);
	free(f);
	return 0;
}

/* enroll - add one device with random keys to the store and set up its simulator */
static inline void enroll(struct fx *f, enum lw_version v, struct lw_sim_device *sim)
{
	struct js_device d;
	uint8_t app[16], nwk[16];
	size_t tl = 0, failed;

	memset(&d, 0, sizeof(d));
	assert_int_equal(RAND_bytes(app, 16), 1);
	assert_int_equal(RAND_bytes(nwk, 16), 1);
	dj_be_put(0x00a0000000000000ull + ++f->next_dev, d.dev_eui, 8);
	memcpy(d.join_eui, JOIN_EUI, 8);
	d.mac_version = v;
	assert_int_equal(js_keystore_seal_root(f->ks, d.dev_eui, app, v >= LW_V1_1 ? nwk : NULL,
					       d.root_token, &tl), DJ_EOK);
	d.root_token_len = (uint32_t)tl;
	assert_int_equal(js_store_devices_add(f->st, &d, 1, "test", &failed), DJ_EOK);
	assert_int_equal(lw_sim_init(f->cx, sim, d.dev_eui, JOIN_EUI, v, app,
				     v >= LW_V1_1 ? nwk : NULL), DJ_EOK);
}

/* version_of - the device's state version */
static inline uint64_t version_of(struct fx *f, const uint8_t *dev_eui)
{
	static struct js_device d;

	assert_int_equal(js_store_device_get(f->st, dev_eui, &d), DJ_EOK);
	return d.st.version;
}


/* BOTH - a test on the memory store and on SQLite */
#define BOTH(t)                                                                                    \
	cmocka_unit_test_setup_teardown(t, setup_mem, teardown),                                  \
		cmocka_unit_test_setup_teardown(t, setup_sql, teardown)

#endif /* DJ_TESTS_UNIT_TEST_JS_ENGINE_H */
