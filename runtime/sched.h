/*
 * The scheduler: N worker threads that run ready tasks (an actor is a task) from one
 * shared lock-free run queue, FIFO, so every ready task gets its turn.
 *
 * A task is queued at most once at a time; the layer above (actors/actor.c) guarantees
 * it with a per-actor "scheduled" flag. A worker that finds no task spins for a short
 * while (spin_us) before it sleeps, so a message sent to an idle actor is picked up in
 * about a microsecond; a submit wakes one sleeping worker. Nothing on the submit or run
 * path takes a lock unless a worker is asleep.
 */
#ifndef EDDY_RUNTIME_SCHED_H
#define EDDY_RUNTIME_SCHED_H

#include <eddy/err.h>
#include <stdint.h>

typedef struct sched sched;
typedef struct sched_task sched_task;

struct sched_task {
	void (*run)(sched_task *t); /* runs on a worker; may re-submit the task */
};

typedef struct sched_opts {
	uint32_t workers;   /* worker threads; 0 = number of online cores */
	uint32_t max_tasks; /* run queue size: tasks that may be ready at once; 0 = 65536 */
	uint32_t spin_us;   /* how long an idle worker polls before sleeping; 0 = the
	                       environment's EDDY_SPIN_US, else 10 */
} sched_opts;

/* sched_create makes a scheduler (threads are started by sched_start). opts may be NULL
 * for defaults. Errors: EDDY_ENOMEM, EDDY_EINVAL. */
eddy_err sched_create(const sched_opts *opts, sched **out);

/* sched_start starts the worker threads. Errors: EDDY_ENOMEM (then none runs). */
eddy_err sched_start(sched *s);

/* sched_submit queues t to run once on some worker. t must not be queued already.
 * Errors: EDDY_EFULL if more than max_tasks are ready (a sizing error). Any thread. */
eddy_err sched_submit(sched *s, sched_task *t);

/* sched_stop makes the workers exit once they finish the task in hand, and joins them.
 * Tasks still queued stay queued (not run). Not from a worker thread. */
void sched_stop(sched *s);

/* sched_destroy stops (if needed) and frees. Safe on NULL. */
void sched_destroy(sched *s);

/* sched_workers returns the number of worker threads. */
uint32_t sched_workers(const sched *s);

/* sched_current_worker returns the index of the calling worker thread, or -1 when the
 * caller is not a worker thread of any scheduler. */
int sched_current_worker(void);

#endif
