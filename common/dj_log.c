/*
 * dj_log.c - the log callback registry.
 */
#include <stdio.h>

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
