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

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
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

/*
 * Rate limiting, per call site: a fault that repeats on every request (a full disk, a store
 * replaced under the daemon) must not write tens of thousands of lines. At most
 * DJ_LOG_LIMIT_BURST lines pass per DJ_LOG_LIMIT_WINDOW_MS window; the first line of a later
 * window says how many were suppressed since ("(N similar messages suppressed)").
 */
#define DJ_LOG_LIMIT_BURST 5
#define DJ_LOG_LIMIT_WINDOW_MS 10000

/* One call site's limiter; static, initialised with DJ_LOG_LIMIT_INIT. */
struct dj_log_limit {
	pthread_mutex_t lock;
	uint64_t window_start_ms;
	unsigned passed;		/* lines passed in this window */
	uint64_t suppressed;		/* lines suppressed since the last one passed */
	bool started;
};

#define DJ_LOG_LIMIT_INIT { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, false }

/*!
 * \brief The limiter's verdict for one line at \p now_ms (monotonic). \retval true the line
 *        passes; then *suppressed receives the lines suppressed before it (0: none).
 */
bool dj_log_limit_pass(struct dj_log_limit *l, uint64_t now_ms, uint64_t *suppressed);

/*! \brief dj_log() through the limiter \p l (on the monotonic clock). */
void dj_log_limited(struct dj_log_limit *l, int level, const char *fmt, ...) DJ_PRINTF(3, 4);

/* DJ_LOG_LIMITED(level, fmt, ...) - dj_log() rate-limited at this call site */
#define DJ_LOG_LIMITED(level, ...) do { \
		static struct dj_log_limit dj__site_limit = DJ_LOG_LIMIT_INIT; \
		dj_log_limited(&dj__site_limit, (level), __VA_ARGS__); \
	} while (0)
#define dj_err_limited(...) DJ_LOG_LIMITED(LOG_ERR, __VA_ARGS__)
#define dj_warn_limited(...) DJ_LOG_LIMITED(LOG_WARNING, __VA_ARGS__)

#define dj_err(...) dj_log(LOG_ERR, __VA_ARGS__)
#define dj_warn(...) dj_log(LOG_WARNING, __VA_ARGS__)
#define dj_notice(...) dj_log(LOG_NOTICE, __VA_ARGS__)
#define dj_info(...) dj_log(LOG_INFO, __VA_ARGS__)
#define dj_debug(...) dj_log(LOG_DEBUG, __VA_ARGS__)

#endif /* DJ_COMMON_DJ_LOG_H */
