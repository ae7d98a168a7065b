/*
 * dj_clock.c - the one clock (dj_clock.h).
 */
#include <time.h>

#include "common/dj_clock.h"

#define MS_PER_S 1000u
#define US_PER_S 1000000u
#define NS_PER_US 1000u
#define NS_PER_MS 1000000u
#define US_PER_MS 1000u

/* now - read \p id; clock_gettime on these ids cannot fail on Linux */
static struct timespec now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts;
}

uint64_t dj_clock_mono_ms(void)
{
	struct timespec ts = now(CLOCK_MONOTONIC);

	return (uint64_t)ts.tv_sec * MS_PER_S + (uint64_t)ts.tv_nsec / NS_PER_MS;
}

uint64_t dj_clock_mono_us(void)
{
	struct timespec ts = now(CLOCK_MONOTONIC);

	return (uint64_t)ts.tv_sec * US_PER_S + (uint64_t)ts.tv_nsec / NS_PER_US;
}

double dj_clock_mono_s(void)
{
	struct timespec ts = now(CLOCK_MONOTONIC);

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
