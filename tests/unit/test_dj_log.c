/*
 * test_dj_log.c - unit tests of dj_log's per-call-site rate limiter (issue 12 item 4): a burst
 * passes, the excess is suppressed and counted, the next window reports the count once, and a
 * flood of 50,000 lines in 16 s writes a handful.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/dj_log.h"

#define FLOOD_LINES 50000
#define FLOOD_MS 16000
#define FLOOD_MAX_LINES (DJ_LOG_LIMIT_BURST * (FLOOD_MS / DJ_LOG_LIMIT_WINDOW_MS + 1))

/* What the sink received. */
static int lines;
static char last[1100];

static void sink(int level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	lines++;
	snprintf(last, sizeof(last), "%s", line);
}

/* the limiter alone, on an explicit clock */
static void test_limit_pass(void **state)
{
	struct dj_log_limit l = DJ_LOG_LIMIT_INIT;
	uint64_t sup = 99;
	uint64_t t = 1000;

	(void)state;
	for (int i = 0; i < DJ_LOG_LIMIT_BURST; i++) {
		assert_true(dj_log_limit_pass(&l, t + (uint64_t)i, &sup));
		assert_int_equal(sup, 0);
	}
	for (int i = 0; i < 7; i++)
		assert_false(dj_log_limit_pass(&l, t + 100, &sup));
	/* still inside the window */
	assert_false(dj_log_limit_pass(&l, t + DJ_LOG_LIMIT_WINDOW_MS - 1, &sup));
	/* a new window: passes and reports the 8 suppressed lines, once */
	assert_true(dj_log_limit_pass(&l, t + DJ_LOG_LIMIT_WINDOW_MS, &sup));
	assert_int_equal(sup, 8);
	assert_true(dj_log_limit_pass(&l, t + DJ_LOG_LIMIT_WINDOW_MS + 1, &sup));
	assert_int_equal(sup, 0);
}

/* a flood at one call site over 16 s of clock: a bounded number of lines */
static void test_limit_flood(void **state)
{
	struct dj_log_limit l = DJ_LOG_LIMIT_INIT;
	uint64_t sup, total_sup = 0;
	int passed = 0;

	(void)state;
	for (int i = 0; i < FLOOD_LINES; i++) {
		if (dj_log_limit_pass(&l, (uint64_t)i * FLOOD_MS / FLOOD_LINES, &sup)) {
			passed++;
			total_sup += sup;
		}
	}
	assert_true(passed <= FLOOD_MAX_LINES);
	assert_true(passed >= DJ_LOG_LIMIT_BURST);
	/* every line is either written or counted in a later line, except the last window's */
	assert_true(total_sup + (uint64_t)passed <= FLOOD_LINES);
	assert_true(total_sup + (uint64_t)passed >= FLOOD_LINES - FLOOD_LINES / 2);
}

/* the macro: each call site has its own limiter; the sink sees the burst only */
static void test_limit_macro(void **state)
{
	(void)state;
	dj_log_set(sink, NULL, LOG_DEBUG);
	lines = 0;
	for (int i = 0; i < 1000; i++)
		dj_err_limited("store: disk full (%d)", i);
	assert_int_equal(lines, DJ_LOG_LIMIT_BURST);
	assert_string_equal(last, "store: disk full (4)");
	for (int i = 0; i < 3; i++)
		dj_warn_limited("another site %d", i);	/* not limited by the first site */
	assert_int_equal(lines, DJ_LOG_LIMIT_BURST + 3);
	dj_log_set(NULL, NULL, LOG_NOTICE);
}

/* the count of suppressed lines is written with the next line that passes */
static void test_limit_report(void **state)
{
	struct dj_log_limit l = DJ_LOG_LIMIT_INIT;

	(void)state;
	dj_log_set(sink, NULL, LOG_DEBUG);
	lines = 0;
	/* a window that began long ago: fill it, then suppress, then age it out by hand */
	for (int i = 0; i < DJ_LOG_LIMIT_BURST + 4; i++)
		dj_log_limited(&l, LOG_ERR, "x");
	assert_int_equal(lines, DJ_LOG_LIMIT_BURST);
	l.window_start_ms -= DJ_LOG_LIMIT_WINDOW_MS;
	dj_log_limited(&l, LOG_ERR, "y");
	assert_int_equal(lines, DJ_LOG_LIMIT_BURST + 1);
	assert_string_equal(last, "y (4 similar messages suppressed)");
	dj_log_set(NULL, NULL, LOG_NOTICE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_pass),
		cmocka_unit_test(test_limit_flood),
		cmocka_unit_test(test_limit_macro),
		cmocka_unit_test(test_limit_report),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
