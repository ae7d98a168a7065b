/*
 * test_store_util.h - what the store's unit tests (test_store.c, test_store_owner.c,
 * test_outbox.c) share: a fresh database path for each test, and its removal with the files
 * SQLite keeps beside it. Include after <cmocka.h>.
 */
#ifndef DJ_TESTS_UNIT_TEST_STORE_UTIL_H
#define DJ_TESTS_UNIT_TEST_STORE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

#endif /* DJ_TESTS_UNIT_TEST_STORE_UTIL_H */
