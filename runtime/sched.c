/* Scheduler: workers around a bounded MPMC run queue (Vyukov), spin-then-sleep idling. */
#include "sched.h"

#include "alloc.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

typedef struct runq_cell {
	_Atomic uint64_t seq;
	sched_task *task;
} runq_cell;

struct sched {
	alignas(64) _Atomic uint64_t head;
	alignas(64) _Atomic uint64_t tail;
	alignas(64) runq_cell *cells;
	uint64_t mask;
	_Atomic uint32_t sleepers;
	_Atomic bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	uint32_t nworkers;
	uint32_t spin_us;
	pthread_t *threads;
	uint32_t started;
};

static _Thread_local int current_worker = -1;

typedef struct worker_arg {
	sched *s;
	int index;
} worker_arg;

static bool runq_push(sched *s, sched_task *t)
{
	uint64_t pos = atomic_load_explicit(&s->head, memory_order_relaxed);
	runq_cell *c;
	for (;;) {
		c = &s->cells[pos & s->mask];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&s->head, &pos, pos + 1,
			                                          memory_order_relaxed,
			                                          memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return false;
		} else {
			pos = atomic_load_explicit(&s->head, memory_order_relaxed);
		}
	}
	c->task = t;
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
	return true;
}

static sched_task *runq_pop(sched *s)
{
	uint64_t pos = atomic_load_explicit(&s->tail, memory_order_relaxed);
	runq_cell *c;
	for (;;) {
		c = &s->cells[pos & s->mask];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - (pos + 1));
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&s->tail, &pos, pos + 1,
			                                          memory_order_relaxed,
			                                          memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return NULL;
		} else {
			pos = atomic_load_explicit(&s->tail, memory_order_relaxed);
		}
	}
	sched_task *t = c->task;
	atomic_store_explicit(&c->seq, pos + s->mask + 1, memory_order_release);
	return t;
}

static bool runq_maybe_nonempty(sched *s)
{
	return atomic_load_explicit(&s->head, memory_order_seq_cst) !=
	       atomic_load_explicit(&s->tail, memory_order_seq_cst);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *worker_main(void *arg)
{
	worker_arg wa = *(worker_arg *)arg;
	rt_free(arg);
	sched *s = wa.s;
	current_worker = wa.index;
	while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
		sched_task *t = runq_pop(s);
		if (t) {
			t->run(t);
			continue;
		}
		/* Idle: poll for spin_us, then sleep until a submit wakes us. */
		int64_t until = mono_ns() + (int64_t)s->spin_us * 1000;
		bool found = false;
		do {
			for (int i = 0; i < 64; i++) {
				if (runq_maybe_nonempty(s)) {
					found = true;
					break;
				}
				cpu_relax();
			}
		} while (!found && mono_ns() < until &&
		         !atomic_load_explicit(&s->stop, memory_order_relaxed));
		if (found)
			continue;
		pthread_mutex_lock(&s->mu);
		atomic_fetch_add_explicit(&s->sleepers, 1, memory_order_seq_cst);
		if (!runq_maybe_nonempty(s) && !atomic_load(&s->stop))
			pthread_cond_wait(&s->cond, &s->mu);
		atomic_fetch_sub_explicit(&s->sleepers, 1, memory_order_seq_cst);
		pthread_mutex_unlock(&s->mu);
	}
	current_worker = -1;
	return NULL;
}

eddy_err sched_create(const sched_opts *opts, sched **out)
{
	sched_opts o = opts ? *opts : (sched_opts){ 0 };
	if (o.workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o.workers = n > 0 ? (uint32_t)n : 1;
	}
	if (o.max_tasks == 0)
		o.max_tasks = 65536;
	if (o.spin_us == 0) {
		const char *e = getenv("EDDY_SPIN_US");
		o.spin_us = e ? (uint32_t)atoi(e) : 10;
	}
	if (o.workers > 1024 || o.max_tasks > (1u << 24))
		return EDDY_EINVAL;
	sched *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	uint64_t cap = 2;
	while (cap < o.max_tasks)
		cap <<= 1;
	s->cells = rt_malloc(cap * sizeof(runq_cell));
	s->threads = rt_calloc(o.workers, sizeof(pthread_t));
	if (s->cells == NULL || s->threads == NULL) {
		rt_free(s->cells);
		rt_free(s->threads);
		rt_free(s);
		return EDDY_ENOMEM;
	}
	for (uint64_t i = 0; i < cap; i++)
		atomic_init(&s->cells[i].seq, i);
	s->mask = cap - 1;
	s->nworkers = o.workers;
	s->spin_us = o.spin_us;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	*out = s;
	return EDDY_OK;
}

eddy_err sched_start(sched *s)
{
	for (uint32_t i = 0; i < s->nworkers; i++) {
		worker_arg *wa = rt_malloc(sizeof(*wa));
		if (wa == NULL)
			goto fail;
		wa->s = s;
		wa->index = (int)i;
		if (pthread_create(&s->threads[i], NULL, worker_main, wa) != 0) {
			rt_free(wa);
			goto fail;
		}
		s->started++;
	}
	return EDDY_OK;
fail:
	sched_stop(s);
	return EDDY_ENOMEM;
}

eddy_err sched_submit(sched *s, sched_task *t)
{
	if (!runq_push(s, t))
		return EDDY_EFULL;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&s->sleepers, memory_order_seq_cst) > 0) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->mu);
	}
	return EDDY_OK;
}

void sched_stop(sched *s)
{
	atomic_store(&s->stop, true);
	pthread_mutex_lock(&s->mu);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	for (uint32_t i = 0; i < s->started; i++)
		pthread_join(s->threads[i], NULL);
	s->started = 0;
}

void sched_destroy(sched *s)
{
	if (s == NULL)
		return;
	sched_stop(s);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	rt_free(s->cells);
	rt_free(s->threads);
	rt_free(s);
}

uint32_t sched_workers(const sched *s)
{
	return s->nworkers;
}

int sched_current_worker(void)
{
	return current_worker;
}
