/*
 * dj_clock.c - the one clock (dj_clock.h), and in test builds the test clock's offset.
 */
#include <time.h>

#ifdef DJ_TEST_HOOKS
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#endif

#include "common/dj_clock.h"

#define MS_PER_S 1000u
#define US_PER_S 1000000u
#define NS_PER_US 1000u
#define NS_PER_MS 1000000u
#define US_PER_MS 1000u
#define NS_PER_S 1000000000u

/* now - read \p id; clock_gettime on these ids cannot fail on Linux */
static struct timespec now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts;
}

#ifdef DJ_TEST_HOOKS
#define TEST_CLOCK_ENV "DJ_TEST_CLOCK_FILE"
#define TEST_CLOCK_MAX 32	/* an offset in decimal, a sign and a newline */

/* test_offset_ms - the largest offset DJ_TEST_CLOCK_FILE has held so far (0: none); the
 * maximum, so that a half-written or smaller value never moves monotonic time back */
static uint64_t test_offset_ms(void)
{
	static _Atomic uint64_t seen;
	const char *path = getenv(TEST_CLOCK_ENV);
	char buf[TEST_CLOCK_MAX], *end;
	unsigned long long v;
	uint64_t old;
	FILE *f;
	size_t n;

	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return atomic_load(&seen);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	v = strtoull(buf[0] == '+' ? buf + 1 : buf, &end, 10);
	if (end == buf || (*end != '\0' && *end != '\n'))
		return atomic_load(&seen);
	old = atomic_load(&seen);
	while (v > old && !atomic_compare_exchange_weak(&seen, &old, (uint64_t)v))
		;
	return atomic_load(&seen);
}
#else
/* test_offset_ms - no test clock in this build */
static uint64_t test_offset_ms(void)
{
	return 0;
}
#endif

uint64_t dj_clock_test_offset_ms(void)
{
	return test_offset_ms();
}

/* mono - CLOCK_MONOTONIC, plus the test clock's offset in a test build */
static struct timespec mono(void)
{
	struct timespec ts = now(CLOCK_MONOTONIC);
	uint64_t off = test_offset_ms();

	if (off != 0) {
		ts.tv_sec += (time_t)(off / MS_PER_S);
		ts.tv_nsec += (long)(off % MS_PER_S) * (long)NS_PER_MS;
		if (ts.tv_nsec >= (long)NS_PER_S) {
			ts.tv_sec++;
			ts.tv_nsec -= (long)NS_PER_S;
		}
	}
	return ts;
}

uint64_t dj_clock_mono_ms(void)
{
	struct timespec ts = mono();

	return (uint64_t)ts.tv_sec * MS_PER_S + (uint64_t)ts.tv_nsec / NS_PER_MS;
}

uint64_t dj_clock_mono_us(void)
{
	struct timespec ts = mono();

	return (uint64_t)ts.tv_sec * US_PER_S + (uint64_t)ts.tv_nsec / NS_PER_US;
}

double dj_clock_mono_s(void)
{
	struct timespec ts = mono();

	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t dj_clock_real_ms(void)
{
	struct timespec ts = now(CLOCK_REALTIME);

	return (int64_t)ts.tv_sec * MS_PER_S + ts.tv_nsec / NS_PER_MS;
}

uint64_t dj_clock_mono_ms_cb(void *arg)
{
	(void)arg;
	return dj_clock_mono_ms();
}

struct timeval dj_clock_tv_ms(uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / MS_PER_S);
	tv.tv_usec = (suseconds_t)((ms % MS_PER_S) * US_PER_MS);
	return tv;
}
