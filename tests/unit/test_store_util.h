/*
 * test_store_util.h - what the store's unit tests (test_store.c, test_store_owner.c,
 * test_outbox.c) share: a fresh database path for each test, and its removal with the files
 * SQLite keeps beside it. Include after <cmocka.h>.
 */
#ifndef DJ_TESTS_UNIT_TEST_STORE_UTIL_H
#define DJ_TESTS_UNIT_TEST_STORE_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/js_keystore.h"
#include "store/js_store.h"

#define STORE_TEST_SIDE_MAX 8	/* room for "-wal" / "-shm" and the NUL */

/* store_test_unlink - remove a database file and its -wal and -shm files */
static inline void store_test_unlink(const char *path)
{
	static const char *const side[] = { "", "-wal", "-shm" };
	char p[FILENAME_MAX + STORE_TEST_SIDE_MAX];

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
