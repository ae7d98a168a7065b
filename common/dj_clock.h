/*
 * dj_clock.h - the one clock of the project: monotonic and wall time in the units callers use.
 *
 * DESCRIPTION
 *	Timeouts, TTLs and rates use the monotonic clock (CLOCK_MONOTONIC: immune to wall-clock
 *	steps). Wall time (CLOCK_REALTIME) is for timestamps that leave the process: audit rows,
 *	events, certificate validity. Modules that must be testable without waiting take a clock
 *	callback (da_resolver_props, js_owner_props) whose default is one of these.
 */
#ifndef DJ_COMMON_DJ_CLOCK_H
#define DJ_COMMON_DJ_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

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
