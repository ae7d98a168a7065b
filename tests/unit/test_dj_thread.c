/*
 * test_dj_thread.c - dj_thread_name (common/dj_thread.h): a thread names itself, and the
 * kernel's /proc/self/task/TID/comm says that name; a name of over 15 bytes is cut to its first
 * 15 (not refused, which would leave the old name); only the calling thread is renamed.
 */
#define _GNU_SOURCE	/* gettid */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/dj_thread.h"
#include "dj_test.h"

#define COMM_MAX 64

/* comm - the kernel's name of thread \p tid of this process, without the newline */
static void comm(pid_t tid, char *out, size_t cap)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(out, (int)cap, f));
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

/* One case: the name given, the name the kernel must then hold. */
struct name_case {
	const char *give, *want;
};

static const struct name_case cases[] = {
	{ "committer", "committer" },
	{ "loop 3", "loop 3" },
	{ "mqtt publisher", "mqtt publisher" },			/* 14 bytes */
	{ "fifteen-bytes-x", "fifteen-bytes-x" },		/* 15: kept whole */
	{ "sixteen-bytes-xy", "sixteen-bytes-x" },		/* 16: cut to 15 */
	{ "a much longer thread name", "a much longer t" },
};

/* What a namer thread reports: its TID and its name as the kernel has it. */
struct namer {
	const char *give;
	pid_t tid;
	char got[COMM_MAX];
};

static void *namer_main(void *arg)
{
	struct namer *n = arg;

	n->tid = gettid();
	dj_thread_name(n->give);
	comm(n->tid, n->got, sizeof(n->got));
	return NULL;
}

/* each name, given by a new thread to itself: the kernel holds it, cut to 15 bytes */
static void test_names(void **state)
{
	char main_before[COMM_MAX], main_after[COMM_MAX];

	(void)state;
	comm(gettid(), main_before, sizeof(main_before));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct namer n = { .give = cases[i].give };
		pthread_t t;

		assert_int_equal(pthread_create(&t, NULL, namer_main, &n), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_string_equal(n.got, cases[i].want);
		assert_true(strlen(n.got) <= DJ_THREAD_NAME_MAX);
	}
	/* the main thread was not renamed by its threads */
	comm(gettid(), main_after, sizeof(main_after));
	assert_string_equal(main_after, main_before);
	assert_string_not_equal(main_after, "committer");
}

/* the calling thread can rename itself again, and the second name replaces the first */
static void test_rename(void **state)
{
	char got[COMM_MAX];

	(void)state;
	dj_thread_name("first name");
	comm(gettid(), got, sizeof(got));
	assert_string_equal(got, "first name");
	dj_thread_name("second name that is long");
	comm(gettid(), got, sizeof(got));
	assert_string_equal(got, "second name tha");
	dj_thread_name("test_dj_thread");
}

DJ_TEST_MAIN(cmocka_unit_test(test_names), cmocka_unit_test(test_rename))
