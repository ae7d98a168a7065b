/*
 * dj_log.c - the log callback registry.
 */
#include <stdio.h>

#include "common/dj_clock.h"
#include "common/dj_log.h"

static dj_log_cb log_cb;
static void *log_arg;
static int log_max = LOG_NOTICE;

void dj_log_set(dj_log_cb cb, void *arg, int max_level)
{
	log_cb = cb;
	log_arg = arg;
	log_max = max_level;
}

int dj_log_enabled(int level)
{
	return log_cb != NULL && level <= log_max;
}

void dj_vlog(int level, const char *fmt, va_list ap)
{
	char line[1024];

	if (!dj_log_enabled(level))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	log_cb(level, line, log_arg);
}

void dj_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dj_vlog(level, fmt, ap);
	va_end(ap);
}

void dj_log_stderr(int level, const char *line, void *arg)
{
	static const char *const names[] = { "emerg", "alert", "crit", "error",
					     "warning", "notice", "info", "debug" };
	(void)arg;
	fprintf(stderr, "%s: %s\n", names[level & 7], line);
}

bool dj_log_limit_pass(struct dj_log_limit *l, uint64_t now_ms, uint64_t *suppressed)
{
	bool pass;

	pthread_mutex_lock(&l->lock);
	if (!l->started || now_ms - l->window_start_ms >= DJ_LOG_LIMIT_WINDOW_MS) {
		l->started = true;
		l->window_start_ms = now_ms;
		l->passed = 0;
	}
	pass = l->passed < DJ_LOG_LIMIT_BURST;
	if (pass) {
		l->passed++;
		*suppressed = l->suppressed;
		l->suppressed = 0;
	} else {
		l->suppressed++;
	}
	pthread_mutex_unlock(&l->lock);
	return pass;
}

void dj_log_limited(struct dj_log_limit *l, int level, const char *fmt, ...)
{
	char line[1024];
	uint64_t suppressed = 0;
	va_list ap;

	if (!dj_log_enabled(level) || !dj_log_limit_pass(l, dj_clock_mono_ms(), &suppressed))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (suppressed > 0)
		dj_log(level, "%s (%llu similar messages suppressed)", line,
		       (unsigned long long)suppressed);
	else
		dj_log(level, "%s", line);
}
