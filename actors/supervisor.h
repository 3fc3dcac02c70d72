/*
 * Supervisors, as in Erlang/OTP's supervisor behaviour: an actor that starts child
 * actors in order, watches them, and restarts them when they fail.
 *
 *  - Strategies: one_for_one (restart the failed child), one_for_all (stop the others in
 *    reverse start order, restart all in start order), rest_for_one (the failed child and
 *    those started after it).
 *  - Restart types: permanent (always restarted), transient (restarted only after a
 *    failure, not after a normal exit), temporary (never restarted; also not when a
 *    sibling's failure stops it under one_for_all / rest_for_one: it is removed), and
 *    critical — eddy's own, for a child whose state a restart would lose (a window
 *    without a checkpoint): never restarted; a restart that would include it (its own
 *    failure, or a sibling's under one_for_all / rest_for_one) escalates at once, as if
 *    the intensity were exceeded. A normal exit removes it, as transient.
 *  - Restart intensity: more than `intensity` restarts within `period_ms` and the
 *    supervisor stops all its children (reverse start order) and fails itself with the
 *    reason, so its own parent decides; a root supervisor (no parent) fails the system.
 *  - Restart delay: before restarting, the supervisor waits the failed child's backoff
 *    delay: initial, then × multiplier per restart up to max (as Flink's exponential-delay
 *    restart strategy); it falls back to initial after the child ran `period_ms` without
 *    failing. Defaults: 10 ms, ×2, 10 s.
 *  - Children stop in reverse start order, one at a time (each acknowledged).
 * Stopping a child to restart it keeps its queued messages (they are processed by the new
 * incarnation) unless the spec says discard_on_restart; stopping for good drops them.
 * A spec with keep_done keeps children that exited normally and restarts them with the
 * group (a failover region whose finished tasks must run again from a checkpoint).
 */
#ifndef EDDY_ACTORS_SUPERVISOR_H
#define EDDY_ACTORS_SUPERVISOR_H

#include "actor.h"

typedef enum sup_strategy { SUP_ONE_FOR_ONE, SUP_ONE_FOR_ALL, SUP_REST_FOR_ONE } sup_strategy;
typedef enum sup_restart {
	CHILD_PERMANENT,
	CHILD_TRANSIENT,
	CHILD_TEMPORARY,
	CHILD_CRITICAL
} sup_restart;

const char *sup_strategy_name(sup_strategy s);
const char *sup_restart_name(sup_restart r);

typedef struct sup_child_spec {
	actor_spec actor;    /* the child: path, ops, arg, mailbox, budget, watchdog */
	sup_restart restart;
} sup_child_spec;

typedef struct sup_spec {
	sup_strategy strategy;
	uint32_t intensity;          /* restarts allowed within period_ms (0: none allowed) */
	int64_t period_ms;           /* the intensity window, ms */
	int64_t backoff_initial_ms;  /* first restart delay, ms (0: restart at once) */
	double backoff_multiplier;   /* delay growth per restart (>= 1) */
	int64_t backoff_max_ms;      /* delay cap, ms */
	const sup_child_spec *children; /* borrowed, in start order; must outlive the sup */
	uint32_t nchildren;
	/* A restart group (eddy's failover regions, as Flink's region failover): the children
	 * must always restart together, fresh. keep_done: a child that exits normally is not
	 * removed; it is started again with the group's next restart. discard_on_restart:
	 * stopping a child for a restart drops its queued data messages. */
	bool keep_done;
	bool discard_on_restart;
	/* Hooks, on the supervisor's thread (must not block for long): on_restart when a
	 * restart of the group is decided (before any child is stopped; not on escalation),
	 * on_restarted once every child of that restart has started. May be NULL. */
	void (*on_restart)(actor *sup, void *hook_arg, const char *failed_path);
	void (*on_restarted)(actor *sup, void *hook_arg);
	void *hook_arg;
} sup_spec;

/* sup_spec_defaults sets spec to eddy's defaults: one_for_one, intensity 3 in 5000 ms
 * (OTP's 1 in 5 s is too strict for streaming), backoff 10 ms × 2 up to 10 s; no
 * children, no restart-group flags, no hooks (the caller sets children after). */
void sup_spec_defaults(sup_spec *spec);

/* sup_ops is the ops table of supervisors; a child spec whose ops is &sup_ops and whose
 * arg is a sup_spec is a nested supervisor. */
extern const actor_ops sup_ops;

/* sup_spec_of returns the spec of supervisor a (its immutable arg), or NULL if a is not
 * a supervisor. Any thread (the spec outlives the supervisor). */
const sup_spec *sup_spec_of(const actor *a);

/* sup_child_restart finds the restart type of the child at path in sup's spec; false if
 * there is none. Any thread. */
bool sup_child_restart(const sup_spec *sup, const char *path, sup_restart *out);

/* sup_spawn starts a supervisor at path under parent (NULL: a root supervisor) that
 * starts spec's children in order. spec is borrowed and must outlive the supervisor.
 * Errors: as actor_spawn. Any thread. */
eddy_err sup_spawn(asys *sys, const char *path, const sup_spec *spec, actor *parent,
                   actor **out);

#endif
