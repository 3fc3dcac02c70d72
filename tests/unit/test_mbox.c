/* Mailbox tests: FIFO, bounded capacity, 8 producers x 1 consumer, control lane priority,
 * discard and waiters. */
#include "runtime/alloc.h"
#include "runtime/mbox.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static rt_msg data(uint64_t v)
{
	return (rt_msg){ .kind = MSG_USER, .u64 = v };
}

Test(mbox, fifo_single_producer)
{
	mbox mb;
	cr_assert_eq(mbox_init(&mb, 64), EDDY_OK);
	for (uint64_t round = 0; round < 10; round++) {
		for (uint64_t i = 0; i < 50; i++) {
			rt_msg m = data(round * 100 + i);
			cr_assert_eq(mbox_push(&mb, &m), EDDY_OK);
		}
		rt_msg out;
		for (uint64_t i = 0; i < 50; i++) {
			cr_assert(mbox_pop(&mb, &out));
			cr_assert_eq(out.u64, round * 100 + i);
		}
		cr_assert_not(mbox_pop(&mb, &out));
	}
	mbox_fini(&mb);
}

Test(mbox, capacity_is_never_exceeded)
{
	mbox mb;
	cr_assert_eq(mbox_init(&mb, 100), EDDY_OK);
	cr_assert_eq(mbox_capacity(&mb), 128, "capacity rounds up to a power of two");
	uint32_t pushed = 0;
	rt_msg m = data(0);
	while (mbox_push(&mb, &m) == EDDY_OK)
		pushed++;
	cr_assert_eq(pushed, 128);
	cr_assert_eq(mbox_len(&mb), 128);
	cr_assert_eq(mbox_push(&mb, &m), EDDY_EFULL);
	rt_msg out;
	cr_assert(mbox_pop_data(&mb, &out));
	cr_assert_eq(mbox_push(&mb, &m), EDDY_OK);
	cr_assert_eq(mbox_push(&mb, &m), EDDY_EFULL);
	cr_assert_eq(mbox_len(&mb), 128);
	mbox_fini(&mb);
}

Test(mbox, rejects_bad_capacity)
{
	mbox mb;
	cr_assert_eq(mbox_init(&mb, 0), EDDY_EINVAL);
	mbox_fini(&mb);
	cr_assert_eq(mbox_init(&mb, (1u << 24) + 1), EDDY_EINVAL);
	mbox_fini(&mb);
}

#define PRODUCERS 8
#define PER_PRODUCER 200000

typedef struct fan_in {
	mbox mb;
	int id;
	_Atomic uint32_t max_len;
} fan_in;

static fan_in shared;

static void *producer(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	for (uint64_t i = 0; i < PER_PRODUCER; i++) {
		rt_msg m = data(id << 32 | i);
		while (mbox_push(&shared.mb, &m) == EDDY_EFULL)
			sched_yield();
	}
	return NULL;
}

Test(mbox, eight_producers_one_consumer_lose_and_duplicate_nothing)
{
	cr_assert_eq(mbox_init(&shared.mb, 256), EDDY_OK);
	pthread_t th[PRODUCERS];
	for (uintptr_t p = 0; p < PRODUCERS; p++)
		pthread_create(&th[p], NULL, producer, (void *)p);
	uint64_t next[PRODUCERS] = { 0 };
	uint64_t total = 0;
	uint32_t max_len = 0;
	while (total < (uint64_t)PRODUCERS * PER_PRODUCER) {
		uint32_t len = mbox_len(&shared.mb);
		if (len > max_len)
			max_len = len;
		rt_msg m;
		if (!mbox_pop(&shared.mb, &m)) {
			sched_yield();
			continue;
		}
		uint64_t p = m.u64 >> 32, seq = m.u64 & 0xffffffffu;
		cr_assert_lt(p, PRODUCERS);
		cr_assert_eq(seq, next[p], "producer %lu: got %lu, expected %lu (FIFO, no loss/dup)",
		             (unsigned long)p, (unsigned long)seq, (unsigned long)next[p]);
		next[p]++;
		total++;
	}
	for (int p = 0; p < PRODUCERS; p++)
		pthread_join(th[p], NULL);
	rt_msg m;
	cr_assert_not(mbox_pop(&shared.mb, &m), "nothing extra");
	cr_assert_leq(max_len, 256, "capacity exceeded: %u", max_len);
	for (int p = 0; p < PRODUCERS; p++)
		cr_assert_eq(next[p], PER_PRODUCER);
	mbox_fini(&shared.mb);
}

Test(mbox, control_messages_overtake_data)
{
	mbox mb;
	cr_assert_eq(mbox_init(&mb, 16), EDDY_OK);
	for (uint64_t i = 0; i < 10; i++) {
		rt_msg m = data(i);
		mbox_push(&mb, &m);
	}
	rt_msg stop = { .kind = MSG_STOP, .u64 = 7 };
	cr_assert_eq(mbox_push_ctl(&mb, &stop), EDDY_OK);
	rt_msg out;
	cr_assert(mbox_pop(&mb, &out));
	cr_assert_eq(out.kind, MSG_STOP);
	cr_assert_eq(out.u64, 7);
	for (uint64_t i = 0; i < 10; i++) {
		cr_assert(mbox_pop(&mb, &out));
		cr_assert_eq(out.u64, i);
	}
	mbox_fini(&mb);
}

Test(mbox, control_lane_is_fifo_and_full_data_lane_does_not_block_it)
{
	mbox mb;
	cr_assert_eq(mbox_init(&mb, 2), EDDY_OK);
	rt_msg m = data(1);
	while (mbox_push(&mb, &m) == EDDY_OK)
		;
	for (uint64_t i = 0; i < 100; i++) {
		rt_msg c = { .kind = MSG_TIMER, .u64 = i };
		cr_assert_eq(mbox_push_ctl(&mb, &c), EDDY_OK);
	}
	cr_assert_eq(mbox_ctl_len(&mb), 100);
	rt_msg out;
	for (uint64_t i = 0; i < 100; i++) {
		cr_assert(mbox_pop(&mb, &out));
		cr_assert_eq(out.kind, MSG_TIMER);
		cr_assert_eq(out.u64, i);
	}
	mbox_fini(&mb);
}

static _Atomic int dropped;

static void count_drop(rt_msg *m)
{
	rt_free(m->ptr);
	atomic_fetch_add(&dropped, 1);
}

Test(mbox, discarded_messages_are_dropped_not_leaked)
{
	int64_t live0 = rt_alloc_live();
	atomic_store(&dropped, 0);
	mbox mb;
	cr_assert_eq(mbox_init(&mb, 8), EDDY_OK);
	for (int i = 0; i < 5; i++) {
		rt_msg m = { .kind = MSG_USER, .ptr = rt_malloc(32), .drop = count_drop };
		cr_assert_eq(mbox_push(&mb, &m), EDDY_OK);
	}
	rt_msg c = { .kind = MSG_FAIL, .ptr = rt_malloc(8), .drop = count_drop };
	mbox_push_ctl(&mb, &c);
	cr_assert_eq(mbox_discard_data(&mb), 5);
	cr_assert_eq(atomic_load(&dropped), 5);
	mbox_fini(&mb); /* drops the control message */
	cr_assert_eq(atomic_load(&dropped), 6);
	cr_assert_eq(rt_alloc_live(), live0);
}

static int woken[4];

static void wake_rec(void *w, void *arg)
{
	(void)arg;
	woken[(uintptr_t)w]++;
}

Test(mbox, waiters_are_registered_once_and_woken_once)
{
	mbox mb;
	cr_assert_eq(mbox_init(&mb, 2), EDDY_OK);
	cr_assert_eq(mbox_wake_waiters(&mb, wake_rec, NULL), 0);
	mbox_add_waiter(&mb, (void *)1);
	mbox_add_waiter(&mb, (void *)1);
	mbox_add_waiter(&mb, (void *)2);
	mbox_add_waiter(&mb, (void *)3);
	mbox_remove_waiter(&mb, (void *)3);
	cr_assert_eq(mbox_wake_waiters(&mb, wake_rec, NULL), 2);
	cr_assert_eq(woken[1], 1);
	cr_assert_eq(woken[2], 1);
	cr_assert_eq(woken[3], 0);
	cr_assert_eq(mbox_wake_waiters(&mb, wake_rec, NULL), 0);
	mbox_fini(&mb);
}

Test(mbox, allocation_failure_leaves_the_message_with_the_caller)
{
	mbox mb;
	cr_assert_eq(mbox_init(&mb, 2), EDDY_OK);
	rt_msg c = { .kind = MSG_STOP };
	rt_alloc_fail_after(0);
	cr_assert_eq(mbox_push_ctl(&mb, &c), EDDY_ENOMEM);
	cr_assert_eq(mbox_ctl_len(&mb), 0);
	cr_assert_eq(mbox_push_ctl(&mb, &c), EDDY_OK);
	mbox_fini(&mb);
}
