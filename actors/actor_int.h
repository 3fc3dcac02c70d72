/*
 * Private structures of the actor layer, shared by actor.c (activations, sending,
 * lifecycle) and system.c (the actor system, registry, watchdog, event log).
 */
#ifndef EDDY_ACTORS_ACTOR_INT_H
#define EDDY_ACTORS_ACTOR_INT_H

#include "actor.h"

#include "../runtime/mbox.h"
#include "../runtime/sched.h"

#include <pthread.h>

typedef struct outbox_entry {
	actor *to;
	rt_msg msg;
} outbox_entry;

struct actor {
	sched_task task;        /* first: a task pointer is an actor pointer */
	mbox mbox;
	asys *sys;
	sched *sched;           /* the system's worker pool or its I/O pool */
	const actor_ops *ops;
	void *state;
	void *arg;
	char *path;
	actor *parent;
	uint32_t budget;
	int64_t watchdog_ms;
	uint32_t index;         /* spawn order */
	_Atomic int scheduled;  /* 1 while queued or running */

	/* Owned by the actor's activation. */
	bool inited;
	bool stop_when_empty;   /* MSG_STOP_DRAIN seen */
	bool exit_requested;    /* actor_exit */
	bool stop_done;         /* actor_stop_done */
	uint32_t stop_flags;    /* of the stop handed to receive */
	char *fail_reason;      /* actor_fail, not yet handled */
	outbox_entry *outbox;   /* ring */
	uint32_t out_head, out_len, out_cap;
	_Atomic uint32_t out_len_pub; /* out_len as of the end of the last activation */
	mbox *waiting_on;       /* mailbox we are registered as a waiter of */
	rt_timer **timers;
	uint32_t ntimers, timers_cap;

	/* Read by other threads. */
	_Atomic uint32_t incarnation;
	_Atomic int status;               /* actor_status */
	_Atomic bool dead;                /* stopped for good */
	_Atomic bool top_done;            /* top-level: counted out of sys->live */
	_Atomic int64_t busy_since_ms;    /* asys clock ms at activation start; 0 idle */
	_Atomic uint64_t activations;     /* activation counter */
	_Atomic uint64_t watchdog_hit;    /* activation the watchdog reported, 0 none */
	uint64_t cur_act;                 /* the activation running now (owner only) */
	_Atomic uint64_t msgs_in, msgs_out, busy_ns, restarts, dead_letters, parks;
	pthread_mutex_t err_mu;
	char last_error[256];
	int64_t last_error_ms;
};

#define ASYS_EVENTS 1024

struct asys {
	asys_opts opts;
	rt_clock *clock;
	sched *sched;
	sched *io_sched;          /* the I/O pool: actors whose callbacks may block */
	timers *timers;
	rt_timer *watchdog;

	pthread_mutex_t mu;       /* guards the registry, live, failure */
	pthread_cond_t cond;      /* signalled when live drops or the system fails */
	actor **actors;           /* spawn order */
	uint32_t nactors, cap;
	actor **table;            /* open addressing by path hash; size tcap */
	uint32_t tcap;
	uint32_t live;            /* top-level actors not yet done */
	uint64_t notes;           /* asys_notify calls */
	bool failed;
	bool stopping;
	char failure[512];

	pthread_mutex_t ev_mu;
	asys_event *events;       /* ring of ASYS_EVENTS */
	uint64_t nevents;
};

/* actor_schedule queues a for an activation unless it is queued or running already. */
void actor_schedule(actor *a);

/* actor_record_error stores reason as a's last error with the current wall time. */
void actor_record_error(actor *a, const char *reason);

/* actor_notify_exit reports an exit of a (kind) to its parent as MSG_EXIT, or, for a
 * top-level actor, to the system (a failure fails the system). */
void actor_notify_exit(actor *a, int kind);

/* asys_top_done counts a top-level actor out of sys->live (once); failed = it failed
 * with reason. */
void asys_top_done(asys *sys, actor *a, bool failed, const char *reason);

/* actor_create allocates an actor (not registered, not started). Errors: EDDY_ENOMEM,
 * EDDY_EINVAL (bad mailbox capacity). */
eddy_err actor_create(asys *sys, const actor_spec *spec, actor *parent, actor **out);

/* actor_free releases everything of an actor; workers must be stopped. */
void actor_free(actor *a);

#endif
