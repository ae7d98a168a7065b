/*
 * dj_clock.h - the one clock of the project: monotonic and wall time in the units callers use.
 *
 * DESCRIPTION
 *	Timeouts, TTLs and rates use the monotonic clock (CLOCK_MONOTONIC: immune to wall-clock
 *	steps). Wall time (CLOCK_REALTIME) is for timestamps that leave the process: audit rows,
 *	events, certificate validity. Modules that must be testable without waiting take a clock
 *	callback (da_resolver_props, js_owner_props) whose default is one of these.
 *
 * TEST CLOCK
 *	In a build configured with -DDJ_TEST_HOOKS=ON (tests/run's builds; never an installed
 *	one: the option is off by default), the environment variable DJ_TEST_CLOCK_FILE names a
 *	file holding a millisecond offset ("10000" or "+10000") that every monotonic reading
 *	adds. An integration test writes a larger offset to let a TTL or a cache lifetime run
 *	out in a running daemon instead of sleeping through it (Unbound's testbound has
 *	TIME_PASSES for the same reason). The file is read at every reading; a missing or
 *	unreadable file, or a smaller offset than one seen before, leaves the clock where it
 *	was, so monotonic time never goes back. Wall time is never shifted. Without the option
 *	the variable is ignored and the code is not compiled in. libunbound's own cache runs on
 *	the wall clock: a test clock does not move it.
 */
#ifndef DJ_COMMON_DJ_CLOCK_H
#define DJ_COMMON_DJ_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/*!
 * \brief The test clock's offset in milliseconds: what DJ_TEST_CLOCK_FILE has moved monotonic
 *        time ahead by (it never goes back). Always 0 outside DJ_TEST_HOOKS builds. A module
 *        whose time lives in another library (libunbound's cache runs on the wall clock) uses a
 *        change of it to drop that library's state, in test builds only.
 */
uint64_t dj_clock_test_offset_ms(void);

/*! \brief Monotonic time in milliseconds. */
uint64_t dj_clock_mono_ms(void);

/*! \brief Monotonic time in microseconds. */
uint64_t dj_clock_mono_us(void);

/*! \brief Monotonic time in seconds, with a fraction (for rates and durations printed). */
double dj_clock_mono_s(void);

/*! \brief Wall time in milliseconds since the Unix epoch. */
int64_t dj_clock_real_ms(void);

/*!
 * \brief dj_clock_mono_ms in the shape of an injectable clock callback (\p arg unused): the
 * default of da_resolver_props and js_owner_props, which tests replace with their own.
 */
uint64_t dj_clock_mono_ms_cb(void *arg);

/*! \brief A duration of \p ms milliseconds as the struct timeval libevent and sockets take. */
struct timeval dj_clock_tv_ms(uint64_t ms);

#endif /* DJ_COMMON_DJ_CLOCK_H */
