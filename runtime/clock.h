/*
 * Clocks. Everything in the runtime that reads time (timers, busy time, the watchdog,
 * restart backoff) reads it from an rt_clock, so that tests can drive time by hand.
 */
#ifndef EDDY_RUNTIME_CLOCK_H
#define EDDY_RUNTIME_CLOCK_H

#include <eddy/err.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rt_clock rt_clock;

/* clock_system returns the process-wide monotonic clock (CLOCK_MONOTONIC). It is never
 * destroyed; clock_destroy on it does nothing. Any thread. */
rt_clock *clock_system(void);

/* clock_manual_create makes a clock that only moves when clock_advance is called,
 * starting at start_ms. Errors: EDDY_ENOMEM. The caller owns *out. */
eddy_err clock_manual_create(int64_t start_ms, rt_clock **out);

/* clock_destroy frees a manual clock; safe on NULL and on the system clock. */
void clock_destroy(rt_clock *c);

/* clock_now_ns / clock_now_ms read the clock (nanoseconds / milliseconds). Any thread. */
int64_t clock_now_ns(const rt_clock *c);
int64_t clock_now_ms(const rt_clock *c);

/* clock_is_manual tells whether c is a manual clock. */
bool clock_is_manual(const rt_clock *c);

/* clock_advance moves a manual clock forward by ms (>= 0) and then calls every listener
 * in the calling thread (the timer service fires due timers there). Returns EDDY_EINVAL
 * on the system clock or for ms < 0. Call from one thread at a time. */
eddy_err clock_advance(rt_clock *c, int64_t ms);

/* clock_listen registers fn(arg) to be called after each clock_advance (manual clocks
 * only; at most 8 listeners). clock_unlisten removes it. Errors: EDDY_EINVAL, EDDY_EFULL. */
eddy_err clock_listen(rt_clock *c, void (*fn)(void *), void *arg);
void clock_unlisten(rt_clock *c, void (*fn)(void *), void *arg);

/* clock_wall_ms is the wall-clock time (ms since the Unix epoch) for log lines. */
int64_t clock_wall_ms(void);

#endif
