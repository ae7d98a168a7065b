/*
 * dj_log.h - logging for libraries and programs.
 *
 * DESCRIPTION
 *	Libraries never print (STYLE.md rule 6). They call dj_log(), which hands the line to the
 *	callback the program registered with dj_log_set(), filtered by a level mask. With no callback
 *	registered, nothing is emitted. Levels are syslog's.
 *
 *	Never pass key material to these functions.
 */
#ifndef DJ_COMMON_DJ_LOG_H
#define DJ_COMMON_DJ_LOG_H

#include <stdarg.h>
#include <syslog.h>

#include "common/dj_compiler.h"

/*! Receives one formatted line (no trailing newline). \p arg is the one given to dj_log_set(). */
typedef void (*dj_log_cb)(int level, const char *line, void *arg);

/*!
 * \brief Register the log sink. \p max_level is the least severe level passed on (LOG_DEBUG = all).
 *        Not thread-safe against concurrent dj_log(); call at start-up.
 */
void dj_log_set(dj_log_cb cb, void *arg, int max_level);

/*! \brief Whether a line at \p level would be emitted (to skip costly formatting). */
int dj_log_enabled(int level);

void dj_log(int level, const char *fmt, ...) DJ_PRINTF(2, 3);
void dj_vlog(int level, const char *fmt, va_list ap) DJ_PRINTF(2, 0);

/*! A ready-made sink for programs: "LEVEL: line" on stderr. */
void dj_log_stderr(int level, const char *line, void *arg);

#define dj_err(...) dj_log(LOG_ERR, __VA_ARGS__)
#define dj_warn(...) dj_log(LOG_WARNING, __VA_ARGS__)
#define dj_notice(...) dj_log(LOG_NOTICE, __VA_ARGS__)
#define dj_info(...) dj_log(LOG_INFO, __VA_ARGS__)
#define dj_debug(...) dj_log(LOG_DEBUG, __VA_ARGS__)

#endif /* DJ_COMMON_DJ_LOG_H */
