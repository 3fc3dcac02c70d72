/*
 * Actors: an ops table (init, receive, fini) plus private state, a bounded mailbox, an
 * identity path ("job/operator[subtask]") and stats, run by the scheduler one
 * activation at a time (so its state needs no lock), under an actor system (asys) that
 * also owns the timers, the registry and the runtime event log.
 *
 * Lifecycle. actor_spawn registers the actor and queues MSG_START; init runs on a worker
 * in the actor's first activation. A failure — receive or init returning an error,
 * actor_fail, an injected MSG_FAIL, or the watchdog finding the actor busy past its
 * deadline — runs fini, sets status "restarting" and reports MSG_EXIT to the parent
 * supervisor, which decides whether and when to send MSG_START again (a restart: the
 * state is zeroed and init runs anew; queued messages are kept). Without a parent, a
 * failure fails the whole system (asys_wait returns EDDY_EFAILED with the reason).
 *
 * Backpressure. actor_send from inside an activation never blocks and never fails for
 * lack of room: if the target's data lane is full the message goes to the sender's
 * outbox, the sender is parked (it runs no more data messages, only control ones) and
 * is woken when the target has made room; its outbox is then flushed in order, so
 * messages from one sender to one target arrive in the order sent. The outbox keeps
 * flushing after the sender stopped or exited: what an actor sent is delivered unless
 * its target stopped for good (then it is a dead letter).
 *
 * Thread rules are given per function; "self only" means from the actor's own
 * callbacks (its activation).
 */
#ifndef EDDY_ACTORS_ACTOR_H
#define EDDY_ACTORS_ACTOR_H

#include "../runtime/clock.h"
#include "../runtime/msg.h"
#include "../runtime/timer.h"

#include <eddy/err.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct actor actor;
typedef struct asys asys;

/* The ops table of an actor type. All callbacks run on a worker thread, one at a time
 * per actor, and must not block. state points at state_size zeroed bytes. */
typedef struct actor_ops {
	const char *type;  /* e.g. "supervisor", "window" (shown by the shell) */
	size_t state_size; /* bytes of private state */
	/* init prepares state; arg is the spec's arg. An error fails the actor. */
	eddy_err (*init)(actor *self, void *state, void *arg);
	/* receive handles one message; the payload becomes the callee's (see msg.h), except
	 * for MSG_TIMER whose timer pointer stays the runtime's. An error fails the actor. */
	eddy_err (*receive)(actor *self, void *state, rt_msg *msg);
	/* fini releases what init and receive acquired; called on stop and on failure, and
	 * must cope with a state that init left half-built. May be NULL. */
	void (*fini)(actor *self, void *state);
	uint32_t flags; /* ACTOR_HANDLES_STOP */
} actor_ops;

/* With ACTOR_HANDLES_STOP, MSG_STOP and MSG_STOP_DRAIN are passed to receive instead of
 * stopping the actor; it calls actor_stop_done when it is ready (supervisors do). */
#define ACTOR_HANDLES_STOP 1u

typedef struct actor_spec {
	const char *path;          /* unique identity, copied */
	const actor_ops *ops;      /* borrowed; must outlive the actor */
	void *arg;                 /* passed to every init; borrowed */
	uint32_t mailbox_capacity; /* data lane slots (power of two); 0 = system default */
	uint32_t budget;           /* messages per activation; 0 = system default */
	int64_t watchdog_ms;       /* busy deadline per activation; 0 = default, < 0 = none */
	bool io;                   /* runs on the I/O pool: its callbacks may block on file or
	                              socket I/O without stalling the scheduler workers */
} actor_spec;

typedef enum actor_status {
	ACTOR_NEW,        /* spawned, init not yet run */
	ACTOR_RUNNING,    /* initialised, processing (or idle) */
	ACTOR_PARKED,     /* waiting for room in a full mailbox */
	ACTOR_RESTARTING, /* failed; waiting for its supervisor to restart it */
	ACTOR_STOPPED     /* stopped (by its supervisor, at the end, or for good) */
} actor_status;

const char *actor_status_name(actor_status s);

/* Exit kinds carried by MSG_EXIT (u64 & 0xff; the child's incarnation is u64 >> 8). */
enum actor_exit_kind {
	EXIT_STARTED = 1, /* init succeeded (an answer to MSG_START) */
	EXIT_STOPPED = 2, /* stopped on request (an answer to MSG_STOP / MSG_STOP_DRAIN) */
	EXIT_NORMAL = 3,  /* the actor finished by itself (actor_exit) */
	EXIT_FAILED = 4   /* the actor failed; see its last error */
};

/* Flags of MSG_STOP's u64. */
#define STOP_DISCARD 1u /* drop queued data messages */
#define STOP_FINAL 2u   /* for good: later sends are dead letters, never restarted */

/* A copy of one actor's identity and stats, as the registry lists them. */
typedef struct actor_info {
	char path[128];
	char type[32];
	char parent[128];       /* "" for a top-level actor */
	actor_status status;
	uint32_t mailbox_len;   /* data messages queued */
	uint32_t mailbox_cap;
	uint32_t control_len;   /* control messages queued */
	uint64_t msgs_in;       /* messages delivered to receive */
	uint64_t msgs_out;      /* messages sent */
	uint64_t busy_ns;       /* time spent in activations, ns (system clock) */
	uint64_t restarts;      /* restart attempts: times init ran again after the first
	                           start, whether it succeeded or failed */
	uint64_t dead_letters;  /* messages sent to it after it stopped for good, dropped */
	uint64_t parks;         /* times it was parked by a full mailbox */
	uint32_t outbox_len;    /* messages waiting in its outbox (parked) */
	char last_error[256];   /* "" if it never failed */
	int64_t last_error_ms;  /* wall clock, ms since the epoch; 0 if never */
} actor_info;

/* ---- sending (ownership as in runtime/msg.h) ---- */

/* actor_send sends m to `to` from inside self's activation. The message (and payload) is
 * the runtime's once this returns EDDY_OK (delivered, queued, or held in the outbox —
 * then self is parked after its callback returns) or EDDY_ESTOPPED (`to` stopped for
 * good; the message was dropped and counted as a dead letter). EDDY_ENOMEM: the outbox
 * could not grow; the caller keeps the message. Self only. */
eddy_err actor_send(actor *self, actor *to, rt_msg *m);

/* actor_try_send pushes m into to's data lane from any thread, without parking anyone.
 * EDDY_OK: the mailbox owns it. EDDY_EFULL: nothing taken. EDDY_ESTOPPED: `to` stopped
 * for good; nothing taken. */
eddy_err actor_try_send(actor *to, rt_msg *m);

/* actor_send_wait is actor_try_send for threads that are not scheduler workers (I/O
 * threads, main, tests): it waits (sleeping in steps of at most 1 ms) up to timeout_ms
 * (< 0: forever) for room. Errors as actor_try_send plus EDDY_ETIMEDOUT, and EDDY_EBUSY
 * when called on a worker thread (that would block a worker). */
eddy_err actor_send_wait(actor *to, rt_msg *m, int64_t timeout_ms);

/* actor_send_ctl queues m on to's control lane (it overtakes data). Any thread.
 * EDDY_OK: the mailbox owns it; EDDY_ENOMEM: the caller keeps it. */
eddy_err actor_send_ctl(actor *to, rt_msg *m);

/* ---- inside an actor ---- */

/* actor_backpressured tells whether a send of self's is waiting in its outbox (a
 * target's mailbox was full): self will be parked when its callback returns. A producer
 * that loops (a source) stops producing when this turns true. Self only. */
bool actor_backpressured(const actor *self);

/* actor_fail marks self failed with reason (copied); the failure is handled when the
 * current callback returns, whatever it returns. Self only. */
void actor_fail(actor *self, const char *reason);

/* actor_exit makes self stop normally (EXIT_NORMAL) when the current callback returns.
 * Self only. */
void actor_exit(actor *self);

/* actor_stop_done, for ACTOR_HANDLES_STOP actors, finishes a stop that receive was
 * handed: fini runs and the stop is acknowledged. Self only. */
void actor_stop_done(actor *self);

/* actor_timer_start arms a timer that delivers MSG_TIMER (u64 = tag, ptr = the timer)
 * to self's control lane after delay_ms, then every period_ms if > 0. The timer is
 * cancelled automatically when self stops or fails. *out (optional) is for
 * actor_timer_cancel. Errors: as timers_start. Self only. */
eddy_err actor_timer_start(actor *self, int64_t delay_ms, int64_t period_ms, uint64_t tag,
                           rt_timer **out);

/* actor_timer_cancel cancels a timer self started; no MSG_TIMER of it is delivered
 * afterwards, not even one already queued. Self only. */
void actor_timer_cancel(actor *self, rt_timer *t);

/* ---- identity and inspection (any thread) ---- */

const char *actor_path(const actor *a);
actor *actor_parent(const actor *a);
asys *actor_system(const actor *a);
void *actor_state(actor *a); /* self only */
const actor_ops *actor_ops_of(const actor *a);
void *actor_arg(const actor *a); /* the spec's arg (borrowed, as given to actor_spawn) */
actor_status actor_get_status(const actor *a);
uint64_t actor_restarts(const actor *a);
uint32_t actor_incarnation(const actor *a); /* times MSG_START has been handled */
/* actor_get_info fills *info with a copy of a's identity and stats. */
void actor_get_info(actor *a, actor_info *info);
/* actor_last_error copies a's last error into buf (size bytes, NUL-terminated). */
void actor_last_error(actor *a, char *buf, size_t size);

/* ---- the actor system ---- */

typedef struct asys_opts {
	uint32_t workers;          /* scheduler threads; 0 = number of cores */
	uint32_t io_workers;       /* threads of the I/O pool (actors with spec.io); 0 = 2 */
	uint32_t max_actors;       /* 0 = 65536 */
	uint32_t mailbox_capacity; /* default data lane size; 0 = 1024 */
	uint32_t budget;           /* default messages per activation; 0 = 64 */
	int64_t watchdog_ms;       /* default busy deadline; 0 = 10000, < 0 = no watchdog */
	int64_t watchdog_check_ms; /* how often the watchdog looks; 0 = 100 */
	rt_clock *clock;           /* NULL = clock_system(); borrowed */
	bool log_stderr;           /* also print runtime events on stderr */
} asys_opts;

/* asys_create starts a scheduler, a timer service and the watchdog. opts may be NULL.
 * Errors: EDDY_ENOMEM, EDDY_EINVAL. Not from a worker thread. */
eddy_err asys_create(const asys_opts *opts, asys **out);

/* actor_spawn creates an actor, registers it under spec->path and queues its start.
 * parent is its supervisor or NULL for a top-level actor. Errors: EDDY_EEXIST (path
 * taken), EDDY_EFULL (max_actors), EDDY_EINVAL, EDDY_ENOMEM, EDDY_ESTOPPED (shutting
 * down). Any thread. */
eddy_err actor_spawn(asys *sys, const actor_spec *spec, actor *parent, actor **out);

/* asys_find returns the actor registered under path, or NULL. Any thread. */
actor *asys_find(asys *sys, const char *path);

/* asys_list copies the info of every actor whose path matches glob (fnmatch; NULL = all)
 * in spawn order into a new array (*out, rt_free it) of *n entries. Errors: EDDY_ENOMEM. */
eddy_err asys_list(asys *sys, const char *glob, actor_info **out, size_t *n);

/* asys_wait waits until every top-level actor has stopped or exited (EDDY_OK), a
 * top-level actor failed (EDDY_EFAILED; asys_failure tells why), or timeout_ms passed
 * (EDDY_ETIMEDOUT; < 0 waits forever). Not from a worker thread. */
eddy_err asys_wait(asys *sys, int64_t timeout_ms);

/* asys_notify wakes every asys_wait in progress: each returns EDDY_ETIMEDOUT as at its
 * timeout (a caller waiting for something else than the actors' end — `eddy run` for its
 * tasks to finish — then looks again at once). Any thread. */
void asys_notify(asys *sys);

/* asys_failure copies the reason the system failed ("" if it has not) into buf. */
void asys_failure(asys *sys, char *buf, size_t size);

/* asys_shutdown stops every top-level actor (supervisors stop their children in reverse
 * start order first): with drain_ms > 0 each actor first processes what is queued
 * (MSG_STOP_DRAIN) for up to drain_ms, then whatever is left is stopped at once and its
 * queued messages dropped; then the workers are joined. Not from a worker thread. */
void asys_shutdown(asys *sys, int64_t drain_ms);

/* asys_destroy shuts down (without draining) if needed and frees every actor, message
 * and timer. Safe on NULL. Not from a worker thread. */
void asys_destroy(asys *sys);

rt_clock *asys_clock(asys *sys);
timers *asys_timers(asys *sys);

/* Runtime events (failures, restarts, escalations, stops), kept in a ring of the last
 * 1024 for the shell's `log`. */
typedef struct asys_event {
	int64_t wall_ms;
	char path[128];
	char what[32];  /* "failed", "restarted", "escalated", "stopped", "system-failed" */
	char detail[256];
} asys_event;

/* asys_log_event appends an event. Any thread. */
void asys_log_event(asys *sys, const char *path, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* asys_events copies the last (up to max) events, oldest first, into out; returns how
 * many. Any thread. */
size_t asys_events(asys *sys, asys_event *out, size_t max);

/* asys_import_events appends events (as they are, times kept) — the history of an
 * earlier actor system a job restarted from. Any thread. */
void asys_import_events(asys *sys, const asys_event *ev, size_t n);

#endif
