/* Timer tests on a manual clock: order, ties, periodic catch-up, cancellation. */
#include "runtime/alloc.h"
#include "runtime/timer.h"

#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

typedef struct fire {
	uint64_t tag;
	int64_t at;
} fire;

static fire log_[64];
static int nlog;
static rt_clock *clk;

static void record(void *target, uint64_t tag, rt_timer *t)
{
	(void)target;
	(void)t;
	if (nlog < 64)
		log_[nlog++] = (fire){ tag, clock_now_ms(clk) };
}

static void setup(void)
{
	nlog = 0;
	cr_assert_eq(clock_manual_create(0, &clk), EDDY_OK);
}

static void teardown(void)
{
	clock_destroy(clk);
}

TestSuite(timer, .init = setup, .fini = teardown);

Test(timer, fire_in_deadline_order_at_the_right_times)
{
	timers *ts;
	cr_assert_eq(timers_create(clk, &ts), EDDY_OK);
	rt_timer *periodic;
	cr_assert_eq(timers_start(ts, 30, 0, record, NULL, 1, NULL), EDDY_OK);
	cr_assert_eq(timers_start(ts, 10, 0, record, NULL, 2, NULL), EDDY_OK);
	cr_assert_eq(timers_start(ts, 15, 15, record, NULL, 3, &periodic), EDDY_OK);
	cr_assert_eq(timers_start(ts, 15, 0, record, NULL, 4, NULL), EDDY_OK);
	for (int ms = 0; ms < 60; ms++) {
		clock_advance(clk, 1);
		/* nothing fires early */
		for (int i = 0; i < nlog; i++)
			cr_assert_leq(log_[i].at, ms + 1);
	}
	fire want[] = { { 2, 10 }, { 3, 15 }, { 4, 15 }, { 1, 30 }, { 3, 30 }, { 3, 45 }, { 3, 60 } };
	cr_assert_eq(nlog, 7, "fired %d times", nlog);
	for (int i = 0; i < 7; i++) {
		cr_assert_eq(log_[i].tag, want[i].tag, "firing %d: tag %lu, want %lu", i,
		             (unsigned long)log_[i].tag, (unsigned long)want[i].tag);
		cr_assert_eq(log_[i].at, want[i].at, "firing %d (tag %lu) at %ld, want %ld", i,
		             (unsigned long)log_[i].tag, (long)log_[i].at, (long)want[i].at);
	}
	cr_assert_eq(timers_pending(ts), 1);
	timer_cancel(periodic);
	cr_assert_eq(timers_pending(ts), 0);
	clock_advance(clk, 100);
	cr_assert_eq(nlog, 7, "a cancelled periodic timer fired again");
	timers_destroy(ts);
}

Test(timer, periodic_timer_catches_up_once_per_missed_period)
{
	timers *ts;
	cr_assert_eq(timers_create(clk, &ts), EDDY_OK);
	rt_timer *t;
	cr_assert_eq(timers_start(ts, 10, 10, record, NULL, 9, &t), EDDY_OK);
	cr_assert_eq(timers_start(ts, 25, 0, record, NULL, 8, NULL), EDDY_OK);
	clock_advance(clk, 35);
	/* deadlines 10, 20, (25), 30 all passed in one step: fired in deadline order */
	cr_assert_eq(nlog, 4);
	cr_assert_eq(log_[0].tag, 9);
	cr_assert_eq(log_[1].tag, 9);
	cr_assert_eq(log_[2].tag, 8);
	cr_assert_eq(log_[3].tag, 9);
	timer_cancel(t);
	timers_destroy(ts);
}

Test(timer, zero_delay_fires_on_next_advance_and_bad_arguments_are_refused)
{
	timers *ts;
	cr_assert_eq(timers_create(clk, &ts), EDDY_OK);
	cr_assert_eq(timers_start(ts, -1, 0, record, NULL, 1, NULL), EDDY_EINVAL);
	cr_assert_eq(timers_start(ts, 0, -5, record, NULL, 1, NULL), EDDY_EINVAL);
	cr_assert_eq(timers_start(ts, 0, 0, NULL, NULL, 1, NULL), EDDY_EINVAL);
	cr_assert_eq(timers_start(ts, 0, 0, record, NULL, 5, NULL), EDDY_OK);
	cr_assert_eq(nlog, 0);
	clock_advance(clk, 0);
	cr_assert_eq(nlog, 1);
	cr_assert_eq(log_[0].at, 0);
	timers_destroy(ts);
}

Test(timer, destroy_releases_every_timer)
{
	int64_t live0 = rt_alloc_live();
	timers *ts;
	cr_assert_eq(timers_create(clk, &ts), EDDY_OK);
	rt_timer *keep;
	cr_assert_eq(timers_start(ts, 5, 5, record, NULL, 1, &keep), EDDY_OK);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(timers_start(ts, 1000 + i, 0, record, NULL, 2, NULL), EDDY_OK);
	timers_destroy(ts);
	cr_assert(timer_cancelled(keep));
	timer_cancel(keep);
	cr_assert_eq(rt_alloc_live(), live0);
}

Test(timer, system_clock_timer_fires)
{
	timers *ts;
	clock_destroy(clk);
	clk = clock_system();
	cr_assert_eq(timers_create(clk, &ts), EDDY_OK);
	int64_t t0 = clock_now_ms(clk);
	cr_assert_eq(timers_start(ts, 20, 0, record, NULL, 7, NULL), EDDY_OK);
	for (int i = 0; i < 2000 && __atomic_load_n(&nlog, __ATOMIC_ACQUIRE) == 0; i++)
		usleep(1000);
	cr_assert_eq(nlog, 1);
	cr_assert_geq(log_[0].at - t0, 20, "fired after %ld ms", (long)(log_[0].at - t0));
	timers_destroy(ts);
}
