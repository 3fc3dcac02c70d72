/* Timer service: a binary min-heap of deadlines, fired by a thread or by a manual clock. */
#include "timer.h"

#include "alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

struct rt_timer {
	_Atomic uint32_t refs;
	_Atomic bool cancelled;
	int64_t deadline_ms;
	int64_t period_ms;
	uint64_t seq;       /* tie-break: arming order */
	timer_fire_fn fn;
	void *target;
	uint64_t tag;
};

struct timers {
	rt_clock *clock;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	rt_timer **heap;
	uint32_t n, cap;
	uint64_t next_seq;
	bool stop;
	bool has_thread;
	pthread_t thread;
};

static bool before(const rt_timer *a, const rt_timer *b)
{
	return a->deadline_ms < b->deadline_ms ||
	       (a->deadline_ms == b->deadline_ms && a->seq < b->seq);
}

static void heap_up(timers *ts, uint32_t i)
{
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!before(ts->heap[i], ts->heap[p]))
			break;
		rt_timer *t = ts->heap[i];
		ts->heap[i] = ts->heap[p];
		ts->heap[p] = t;
		i = p;
	}
}

static void heap_down(timers *ts, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < ts->n && before(ts->heap[l], ts->heap[m]))
			m = l;
		if (r < ts->n && before(ts->heap[r], ts->heap[m]))
			m = r;
		if (m == i)
			return;
		rt_timer *t = ts->heap[i];
		ts->heap[i] = ts->heap[m];
		ts->heap[m] = t;
		i = m;
	}
}

/* heap_push takes over one reference to t. Lock held. */
static eddy_err heap_push(timers *ts, rt_timer *t)
{
	if (ts->n == ts->cap) {
		uint32_t cap = ts->cap ? ts->cap * 2 : 64;
		rt_timer **h = rt_realloc(ts->heap, cap * sizeof(*h));
		if (h == NULL)
			return EDDY_ENOMEM;
		ts->heap = h;
		ts->cap = cap;
	}
	t->seq = ts->next_seq++;
	ts->heap[ts->n++] = t;
	heap_up(ts, ts->n - 1);
	return EDDY_OK;
}

static rt_timer *heap_pop(timers *ts)
{
	rt_timer *t = ts->heap[0];
	ts->heap[0] = ts->heap[--ts->n];
	if (ts->n > 0)
		heap_down(ts, 0);
	return t;
}

/* fire_due fires every timer whose deadline is <= now, in order. Lock held. */
static void fire_due(timers *ts)
{
	int64_t now = clock_now_ms(ts->clock);
	while (ts->n > 0 && ts->heap[0]->deadline_ms <= now) {
		rt_timer *t = heap_pop(ts);
		if (atomic_load(&t->cancelled)) {
			timer_release(t);
			continue;
		}
		t->fn(t->target, t->tag, t);
		if (t->period_ms > 0 && !atomic_load(&t->cancelled)) {
			t->deadline_ms += t->period_ms;
			if (heap_push(ts, t) != EDDY_OK)
				timer_release(t); /* cannot re-arm: the timer ends */
		} else {
			timer_release(t);
		}
	}
}

static void on_manual_advance(void *arg)
{
	timers *ts = arg;
	pthread_mutex_lock(&ts->mu);
	if (!ts->stop)
		fire_due(ts);
	pthread_mutex_unlock(&ts->mu);
}

static void *timer_thread(void *arg)
{
	timers *ts = arg;
	pthread_mutex_lock(&ts->mu);
	while (!ts->stop) {
		fire_due(ts);
		if (ts->n == 0) {
			pthread_cond_wait(&ts->cond, &ts->mu);
			continue;
		}
		int64_t wait_ms = ts->heap[0]->deadline_ms - clock_now_ms(ts->clock);
		if (wait_ms <= 0)
			continue;
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (wait_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&ts->cond, &ts->mu, &until);
	}
	pthread_mutex_unlock(&ts->mu);
	return NULL;
}

eddy_err timers_create(rt_clock *c, timers **out)
{
	timers *ts = rt_calloc(1, sizeof(*ts));
	if (ts == NULL)
		return EDDY_ENOMEM;
	ts->clock = c;
	pthread_mutex_init(&ts->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ts->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (clock_is_manual(c)) {
		eddy_err err = clock_listen(c, on_manual_advance, ts);
		if (err != EDDY_OK) {
			timers_destroy(ts);
			return err;
		}
	} else {
		if (pthread_create(&ts->thread, NULL, timer_thread, ts) != 0) {
			timers_destroy(ts);
			return EDDY_ENOMEM;
		}
		ts->has_thread = true;
	}
	*out = ts;
	return EDDY_OK;
}

void timers_destroy(timers *ts)
{
	if (ts == NULL)
		return;
	if (clock_is_manual(ts->clock))
		clock_unlisten(ts->clock, on_manual_advance, ts);
	pthread_mutex_lock(&ts->mu);
	ts->stop = true;
	pthread_cond_signal(&ts->cond);
	pthread_mutex_unlock(&ts->mu);
	if (ts->has_thread)
		pthread_join(ts->thread, NULL);
	for (uint32_t i = 0; i < ts->n; i++) {
		atomic_store(&ts->heap[i]->cancelled, true);
		timer_release(ts->heap[i]);
	}
	rt_free(ts->heap);
	pthread_cond_destroy(&ts->cond);
	pthread_mutex_destroy(&ts->mu);
	rt_free(ts);
}

eddy_err timers_start(timers *ts, int64_t delay_ms, int64_t period_ms, timer_fire_fn fn,
                      void *target, uint64_t tag, rt_timer **out)
{
	if (delay_ms < 0 || period_ms < 0 || fn == NULL)
		return EDDY_EINVAL;
	rt_timer *t = rt_calloc(1, sizeof(*t));
	if (t == NULL)
		return EDDY_ENOMEM;
	atomic_init(&t->refs, out ? 2 : 1);
	t->period_ms = period_ms;
	t->fn = fn;
	t->target = target;
	t->tag = tag;
	pthread_mutex_lock(&ts->mu);
	eddy_err err = ts->stop ? EDDY_ESTOPPED : EDDY_OK;
	if (err == EDDY_OK) {
		t->deadline_ms = clock_now_ms(ts->clock) + delay_ms;
		err = heap_push(ts, t);
	}
	if (err == EDDY_OK && ts->heap[0] == t)
		pthread_cond_signal(&ts->cond);
	pthread_mutex_unlock(&ts->mu);
	if (err != EDDY_OK) {
		rt_free(t);
		return err;
	}
	if (out)
		*out = t;
	return EDDY_OK;
}

void timer_cancel(rt_timer *t)
{
	if (t == NULL)
		return;
	atomic_store(&t->cancelled, true);
	timer_release(t);
}

bool timer_cancelled(const rt_timer *t)
{
	return atomic_load(&((rt_timer *)t)->cancelled);
}

void timer_retain(rt_timer *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void timer_release(rt_timer *t)
{
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		rt_free(t);
}

uint64_t timer_tag(const rt_timer *t)
{
	return t->tag;
}

uint32_t timers_pending(timers *ts)
{
	uint32_t live = 0;
	pthread_mutex_lock(&ts->mu);
	for (uint32_t i = 0; i < ts->n; i++)
		if (!atomic_load(&ts->heap[i]->cancelled))
			live++;
	pthread_mutex_unlock(&ts->mu);
	return live;
}
