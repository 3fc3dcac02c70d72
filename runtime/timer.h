/*
 * Timers: one-shot and periodic, millisecond resolution, read from an rt_clock.
 *
 * A timer service owns a min-heap of deadlines. With the system clock a dedicated timer
 * thread sleeps until the earliest deadline; with a manual clock, due timers fire inside
 * clock_advance, in the thread that advanced it, so tests are deterministic. Timers fire
 * in deadline order, ties in the order they were armed; a periodic timer that is several
 * periods behind fires once per missed period, each at its own deadline (fixed rate).
 *
 * A firing calls fn(target, tag, timer) on the timer thread (or the clock_advance
 * thread) with the service's lock held: fn must be quick and must not call back into
 * this service except timer_retain/timer_release/timer_cancelled. The actor layer's fn
 * turns a firing into a MSG_TIMER control message (see actors/actor.h).
 */
#ifndef EDDY_RUNTIME_TIMER_H
#define EDDY_RUNTIME_TIMER_H

#include "clock.h"

#include <eddy/err.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct timers timers;
typedef struct rt_timer rt_timer;

typedef void (*timer_fire_fn)(void *target, uint64_t tag, rt_timer *t);

/* timers_create starts a timer service on clock c (borrowed: it must outlive the
 * service). With the system clock it starts the timer thread. Errors: EDDY_ENOMEM,
 * EDDY_EFULL (a manual clock has no free listener slot). */
eddy_err timers_create(rt_clock *c, timers **out);

/* timers_destroy stops the thread, cancels every timer and frees the service. No timer
 * fires after it returns. Safe on NULL. Not from a firing. */
void timers_destroy(timers *ts);

/* timers_start arms a timer that fires first after delay_ms (>= 0), then every
 * period_ms if period_ms > 0. If out is not NULL the caller gets a handle holding one
 * reference, given back with timer_cancel or timer_release. Errors: EDDY_EINVAL,
 * EDDY_ENOMEM, EDDY_ESTOPPED (service destroyed). Any thread. */
eddy_err timers_start(timers *ts, int64_t delay_ms, int64_t period_ms, timer_fire_fn fn,
                      void *target, uint64_t tag, rt_timer **out);

/* timer_cancel stops t from firing again and releases the caller's reference. A firing
 * already under way may still complete; its consumers check timer_cancelled. Any thread. */
void timer_cancel(rt_timer *t);

/* timer_cancelled tells whether t was cancelled. Any thread. */
bool timer_cancelled(const rt_timer *t);

/* timer_retain / timer_release take and give back a reference (a message carrying a
 * timer holds one). The last release frees it. Any thread. */
void timer_retain(rt_timer *t);
void timer_release(rt_timer *t);

/* timer_tag returns the tag given to timers_start. */
uint64_t timer_tag(const rt_timer *t);

/* timers_pending returns the number of armed, uncancelled timers (for tests). */
uint32_t timers_pending(timers *ts);

#endif
