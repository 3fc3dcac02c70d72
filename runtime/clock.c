/* The system clock and the manual clock used by tests. */
#include "clock.h"

#include "alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define CLOCK_MAX_LISTENERS 8

struct rt_clock {
	bool manual;
	_Atomic int64_t now_ns;           /* manual clocks only */
	pthread_mutex_t mu;               /* guards listeners */
	struct {
		void (*fn)(void *);
		void *arg;
	} listeners[CLOCK_MAX_LISTENERS];
};

static rt_clock system_clock = { .manual = false };

rt_clock *clock_system(void)
{
	return &system_clock;
}

eddy_err clock_manual_create(int64_t start_ms, rt_clock **out)
{
	rt_clock *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	c->manual = true;
	atomic_store(&c->now_ns, start_ms * 1000000);
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return EDDY_OK;
}

void clock_destroy(rt_clock *c)
{
	if (c == NULL || !c->manual)
		return;
	pthread_mutex_destroy(&c->mu);
	rt_free(c);
}

int64_t clock_now_ns(const rt_clock *c)
{
	if (c->manual)
		return atomic_load_explicit(&((rt_clock *)c)->now_ns, memory_order_acquire);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_now_ms(const rt_clock *c)
{
	return clock_now_ns(c) / 1000000;
}

bool clock_is_manual(const rt_clock *c)
{
	return c->manual;
}

eddy_err clock_advance(rt_clock *c, int64_t ms)
{
	if (!c->manual || ms < 0)
		return EDDY_EINVAL;
	atomic_fetch_add_explicit(&c->now_ns, ms * 1000000, memory_order_acq_rel);
	struct {
		void (*fn)(void *);
		void *arg;
	} copy[CLOCK_MAX_LISTENERS];
	int n = 0;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < CLOCK_MAX_LISTENERS; i++)
		if (c->listeners[i].fn) {
			copy[n].fn = c->listeners[i].fn;
			copy[n].arg = c->listeners[i].arg;
			n++;
		}
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < n; i++)
		copy[i].fn(copy[i].arg);
	return EDDY_OK;
}

eddy_err clock_listen(rt_clock *c, void (*fn)(void *), void *arg)
{
	if (!c->manual)
		return EDDY_EINVAL;
	eddy_err err = EDDY_EFULL;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < CLOCK_MAX_LISTENERS; i++)
		if (c->listeners[i].fn == NULL) {
			c->listeners[i].fn = fn;
			c->listeners[i].arg = arg;
			err = EDDY_OK;
			break;
		}
	pthread_mutex_unlock(&c->mu);
	return err;
}

void clock_unlisten(rt_clock *c, void (*fn)(void *), void *arg)
{
	if (!c->manual)
		return;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < CLOCK_MAX_LISTENERS; i++)
		if (c->listeners[i].fn == fn && c->listeners[i].arg == arg)
			c->listeners[i].fn = NULL;
	pthread_mutex_unlock(&c->mu);
}

int64_t clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
