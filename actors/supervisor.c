/* Supervisors: a state machine that starts, stops and restarts children one at a time. */
#include "supervisor.h"

#include "../runtime/alloc.h"

#include <stdio.h>
#include <string.h>

#define TAG_RESTART 1

enum sup_phase {
	PH_IDLE,
	PH_STARTING, /* starting group[pos..] in order, waiting for EXIT_STARTED */
	PH_STOPPING, /* stopping the group in reverse before a restart */
	PH_DELAY,    /* waiting for the backoff timer */
	PH_SHUTDOWN, /* stopping every child before stopping ourselves */
	PH_ESCALATE  /* stopping every child before failing ourselves */
};

typedef struct sup_child {
	const sup_child_spec *spec;
	actor *a;
	uint32_t starts;     /* MSG_STARTs sent = the child's current incarnation */
	bool alive;          /* started and not known to have exited */
	bool removed;        /* done for good (temporary, transient after normal exit) */
	bool done;           /* exited normally, kept for the next restart (keep_done) */
	int64_t delay_ms;    /* next backoff delay */
	int64_t started_ms;  /* when it last started (asys clock) */
} sup_child;

typedef struct pending_exit {
	uint32_t child;
	int kind;
	uint32_t inc;
} pending_exit;

typedef struct sup_state {
	const sup_spec *spec;
	sup_child *c;
	uint32_t n;
	int64_t *restarts;   /* ring of the last intensity+1 restart times */
	uint32_t nrestarts, rhead;
	int phase;
	uint32_t *group;     /* child indexes in start order */
	uint32_t ngroup;
	uint32_t pos;        /* STARTING: next to start; stopping phases: 1 + next to stop */
	int waiting;         /* child whose answer we wait for, -1 none */
	uint32_t trigger;    /* the failed child of the current restart */
	bool restarting;     /* the current start is a restart (on_restarted follows) */
	pending_exit *pend;
	uint32_t npend, pend_cap;
	rt_timer *delay_timer;
	bool pending_stop;
	uint32_t stop_kind, stop_flags;
	char reason[384];
} sup_state;

const char *sup_strategy_name(sup_strategy s)
{
	switch (s) {
	case SUP_ONE_FOR_ONE: return "one_for_one";
	case SUP_ONE_FOR_ALL: return "one_for_all";
	case SUP_REST_FOR_ONE: return "rest_for_one";
	}
	return "unknown";
}

const char *sup_restart_name(sup_restart r)
{
	switch (r) {
	case CHILD_PERMANENT: return "permanent";
	case CHILD_TRANSIENT: return "transient";
	case CHILD_TEMPORARY: return "temporary";
	case CHILD_CRITICAL: return "critical";
	}
	return "unknown";
}

void sup_spec_defaults(sup_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	spec->strategy = SUP_ONE_FOR_ONE;
	spec->intensity = 3;
	spec->period_ms = 5000;
	spec->backoff_initial_ms = 10;
	spec->backoff_multiplier = 2.0;
	spec->backoff_max_ms = 10000;
}

static int64_t now_ms(actor *self)
{
	return clock_now_ms(asys_clock(actor_system(self)));
}

static void start_next(actor *self, sup_state *s);
static void stop_next(actor *self, sup_state *s);
static void process_pending(actor *self, sup_state *s);

static eddy_err send_ctl(actor *to, uint32_t kind, uint64_t u64)
{
	rt_msg m = { .kind = kind, .u64 = u64 };
	return actor_send_ctl(to, &m);
}

static void defer_exit(sup_state *s, uint32_t child, int kind, uint32_t inc)
{
	if (s->npend == s->pend_cap) {
		uint32_t cap = s->pend_cap ? s->pend_cap * 2 : 8;
		pending_exit *np = rt_realloc(s->pend, cap * sizeof(*np));
		if (np == NULL)
			return; /* the child stays down; the failure was logged by the runtime */
		s->pend = np;
		s->pend_cap = cap;
	}
	s->pend[s->npend++] = (pending_exit){ child, kind, inc };
}

/* remove_child ends a child for good: no restart, later sends are dead letters. */
static void remove_child(sup_state *s, uint32_t i)
{
	s->c[i].removed = true;
	s->c[i].alive = false;
	send_ctl(s->c[i].a, MSG_STOP, STOP_FINAL | STOP_DISCARD);
}

static void set_group_all(sup_state *s)
{
	s->ngroup = 0;
	for (uint32_t i = 0; i < s->n; i++)
		s->group[s->ngroup++] = i;
}

/* ---- starting ---- */

static void start_done(actor *self, sup_state *s)
{
	s->phase = PH_IDLE;
	s->waiting = -1;
	if (s->restarting) {
		s->restarting = false;
		if (s->spec->on_restarted)
			s->spec->on_restarted(self, s->spec->hook_arg);
	}
	if (s->pending_stop) {
		s->phase = PH_SHUTDOWN;
		set_group_all(s);
		s->pos = s->ngroup;
		stop_next(self, s);
		return;
	}
	process_pending(self, s);
}

static void start_next(actor *self, sup_state *s)
{
	while (s->pos < s->ngroup) {
		uint32_t i = s->group[s->pos];
		sup_child *c = &s->c[i];
		if (c->removed || c->alive) {
			s->pos++;
			continue;
		}
		eddy_err err;
		if (c->a == NULL) {
			c->a = asys_find(actor_system(self), c->spec->actor.path);
			if (c->a && actor_parent(c->a) != self) {
				snprintf(s->reason, sizeof(s->reason),
				         "child path %s is taken by another actor", c->spec->actor.path);
				actor_fail(self, s->reason);
				return;
			}
		}
		if (c->a == NULL) {
			err = actor_spawn(actor_system(self), &c->spec->actor, self, &c->a);
			c->starts = 1;
		} else {
			c->starts = actor_incarnation(c->a) + 1;
			c->done = false;
			err = send_ctl(c->a, MSG_START, c->starts);
		}
		if (err != EDDY_OK) {
			snprintf(s->reason, sizeof(s->reason), "cannot start child %s: %s",
			         c->spec->actor.path, eddy_strerror(err));
			actor_fail(self, s->reason);
			return;
		}
		s->waiting = (int)i;
		return;
	}
	start_done(self, s);
}

/* ---- stopping ---- */

static void stopping_done(actor *self, sup_state *s)
{
	s->waiting = -1;
	switch (s->phase) {
	case PH_STOPPING: {
		if (s->pending_stop) {
			s->phase = PH_SHUTDOWN;
			set_group_all(s);
			s->pos = s->ngroup;
			stop_next(self, s);
			return;
		}
		sup_child *t = &s->c[s->trigger];
		int64_t delay = t->delay_ms;
		double next = (double)t->delay_ms * s->spec->backoff_multiplier;
		t->delay_ms = next > (double)s->spec->backoff_max_ms ? s->spec->backoff_max_ms
		                                                     : (int64_t)next;
		s->phase = PH_DELAY;
		if (delay <= 0 ||
		    actor_timer_start(self, delay, 0, TAG_RESTART, &s->delay_timer) != EDDY_OK) {
			s->delay_timer = NULL;
			s->phase = PH_STARTING;
			s->pos = 0;
			start_next(self, s);
		}
		return;
	}
	case PH_SHUTDOWN:
		actor_stop_done(self);
		return;
	case PH_ESCALATE:
		if (s->pending_stop)
			actor_stop_done(self);
		else
			actor_fail(self, s->reason);
		return;
	default:
		return;
	}
}

static void stop_next(actor *self, sup_state *s)
{
	while (s->pos > 0) {
		uint32_t i = s->group[s->pos - 1];
		sup_child *c = &s->c[i];
		bool stop;
		uint32_t kind = MSG_STOP, flags = 0;
		if (s->phase == PH_SHUTDOWN) {
			stop = c->a != NULL && !(c->removed && !c->alive);
			kind = s->stop_kind;
			flags = s->stop_flags;
		} else {
			stop = c->alive && c->a != NULL;
			if (s->phase == PH_STOPPING && s->spec->discard_on_restart) {
				/* also the failed and the finished ones: nothing queued for an
				 * earlier incarnation may reach the next */
				stop = c->a != NULL && !c->removed;
				flags = STOP_DISCARD;
			}
			if (s->phase == PH_STOPPING && c->spec->restart == CHILD_TEMPORARY) {
				flags = STOP_FINAL | STOP_DISCARD;
				c->removed = true; /* OTP: temporary siblings are not restarted */
			}
		}
		if (!stop || send_ctl(c->a, kind, flags) != EDDY_OK) {
			c->alive = false;
			s->pos--;
			continue;
		}
		s->waiting = (int)i;
		return;
	}
	stopping_done(self, s);
}

/* ---- failures ---- */

/* escalate stops every child and then fails the supervisor; critical: the restart would
 * have included critical child `crit` (else the intensity was exceeded). */
static void escalate(actor *self, sup_state *s, uint32_t i, int crit)
{
	char why[256];
	actor_last_error(s->c[i].a, why, sizeof(why));
	if (crit >= 0 && (uint32_t)crit == i)
		snprintf(s->reason, sizeof(s->reason),
		         "%s failed and cannot be restarted (critical: its state would be lost): %s",
		         actor_path(s->c[i].a), why);
	else if (crit >= 0)
		snprintf(s->reason, sizeof(s->reason),
		         "restarting %s under %s would restart critical %s; last failure: %s: %s",
		         actor_path(s->c[i].a), sup_strategy_name(s->spec->strategy),
		         actor_path(s->c[crit].a), actor_path(s->c[i].a), why);
	else
		snprintf(s->reason, sizeof(s->reason),
		         "reached max restart intensity (%u in %lld ms); last failure: %s: %s",
		         s->spec->intensity, (long long)s->spec->period_ms, actor_path(s->c[i].a),
		         why);
	asys_log_event(actor_system(self), actor_path(self), "escalated", "%s", s->reason);
	s->phase = PH_ESCALATE;
	set_group_all(s);
	s->pos = s->ngroup;
	stop_next(self, s);
}

/* intensity_exceeded records a restart now and tells whether that makes too many. */
static bool intensity_exceeded(actor *self, sup_state *s)
{
	int64_t now = now_ms(self);
	uint32_t cap = s->spec->intensity + 1;
	s->restarts[s->rhead] = now;
	s->rhead = (s->rhead + 1) % cap;
	if (s->nrestarts < cap)
		s->nrestarts++;
	uint32_t recent = 0;
	for (uint32_t k = 0; k < s->nrestarts; k++)
		if (now - s->restarts[k] < s->spec->period_ms || s->spec->period_ms <= 0)
			recent++;
	return recent > s->spec->intensity;
}

static void handle_exit(actor *self, sup_state *s, uint32_t i, int kind)
{
	sup_child *c = &s->c[i];
	c->alive = false;
	if (c->removed)
		return;
	if (kind != EXIT_FAILED && s->spec->keep_done && c->spec->restart != CHILD_PERMANENT &&
	    c->spec->restart != CHILD_TEMPORARY) {
		c->done = true; /* stays stopped, not removed: the group's next restart runs it */
		return;
	}
	if (kind != EXIT_FAILED && c->spec->restart != CHILD_PERMANENT) {
		remove_child(s, i);
		return;
	}
	if (kind == EXIT_FAILED && c->spec->restart == CHILD_TEMPORARY) {
		remove_child(s, i);
		return;
	}
	int crit = -1;
	s->ngroup = 0;
	for (uint32_t k = 0; k < s->n; k++) {
		bool in = s->spec->strategy == SUP_ONE_FOR_ALL ||
		          (s->spec->strategy == SUP_REST_FOR_ONE && k >= i) || k == i;
		if (!in)
			continue;
		s->group[s->ngroup++] = k;
		if (crit < 0 && s->c[k].spec->restart == CHILD_CRITICAL && !s->c[k].removed)
			crit = (int)k;
	}
	if (crit >= 0 || intensity_exceeded(self, s)) {
		escalate(self, s, i, crit);
		return;
	}
	if (now_ms(self) - c->started_ms >= s->spec->period_ms)
		c->delay_ms = s->spec->backoff_initial_ms;
	s->restarting = true;
	if (s->spec->on_restart)
		s->spec->on_restart(self, s->spec->hook_arg, c->spec->actor.path);
	s->trigger = i;
	s->phase = PH_STOPPING;
	s->pos = s->ngroup;
	stop_next(self, s);
}

static void process_pending(actor *self, sup_state *s)
{
	while (s->phase == PH_IDLE && s->npend > 0) {
		pending_exit p = s->pend[0];
		memmove(s->pend, s->pend + 1, (s->npend - 1) * sizeof(*s->pend));
		s->npend--;
		if (p.inc == s->c[p.child].starts)
			handle_exit(self, s, p.child, p.kind);
	}
}

static void on_exit_msg(actor *self, sup_state *s, actor *from, uint64_t u64)
{
	int kind = (int)(u64 & 0xff);
	uint32_t inc = (uint32_t)(u64 >> 8);
	uint32_t i = 0;
	while (i < s->n && s->c[i].a != from)
		i++;
	if (i == s->n || inc != s->c[i].starts)
		return; /* not ours, or an earlier incarnation's */
	sup_child *c = &s->c[i];
	bool awaited = s->waiting == (int)i;
	switch (s->phase) {
	case PH_STARTING:
		if (awaited) {
			s->pos++;
			s->waiting = -1;
			if (kind == EXIT_STARTED) {
				c->alive = true;
				c->started_ms = now_ms(self);
			} else {
				c->alive = false;
				defer_exit(s, i, kind, inc);
			}
			start_next(self, s);
			return;
		}
		break;
	case PH_STOPPING:
	case PH_SHUTDOWN:
	case PH_ESCALATE:
		if (awaited && kind != EXIT_STARTED) {
			c->alive = false;
			s->pos--;
			s->waiting = -1;
			stop_next(self, s);
			return;
		}
		break;
	case PH_IDLE:
		if (kind == EXIT_STARTED || kind == EXIT_STOPPED)
			return;
		handle_exit(self, s, i, kind);
		return;
	default:
		break;
	}
	if (kind == EXIT_FAILED || kind == EXIT_NORMAL) {
		c->alive = false;
		if (s->phase != PH_SHUTDOWN && s->phase != PH_ESCALATE)
			defer_exit(s, i, kind, inc);
	}
}

static void on_stop_msg(actor *self, sup_state *s, const rt_msg *m)
{
	s->stop_kind = m->kind;
	s->stop_flags = m->kind == MSG_STOP ? (uint32_t)m->u64 : STOP_FINAL;
	if (s->phase == PH_DELAY) {
		actor_timer_cancel(self, s->delay_timer);
		s->delay_timer = NULL;
		s->phase = PH_IDLE;
	}
	if (s->phase != PH_IDLE) {
		s->pending_stop = true;
		return;
	}
	s->phase = PH_SHUTDOWN;
	set_group_all(s);
	s->pos = s->ngroup;
	stop_next(self, s);
}

static eddy_err sup_init(actor *self, void *state, void *arg)
{
	sup_state *s = state;
	const sup_spec *spec = arg;
	if (spec == NULL || spec->nchildren == 0 || spec->children == NULL ||
	    spec->backoff_multiplier < 1.0)
		return EDDY_EINVAL;
	s->spec = spec;
	s->n = spec->nchildren;
	s->waiting = -1;
	s->c = rt_calloc(s->n, sizeof(*s->c));
	s->group = rt_calloc(s->n, sizeof(*s->group));
	s->restarts = rt_calloc(spec->intensity + 1, sizeof(*s->restarts));
	if (s->c == NULL || s->group == NULL || s->restarts == NULL)
		return EDDY_ENOMEM;
	for (uint32_t i = 0; i < s->n; i++) {
		s->c[i].spec = &spec->children[i];
		s->c[i].delay_ms = spec->backoff_initial_ms;
	}
	s->phase = PH_STARTING;
	set_group_all(s);
	s->pos = 0;
	start_next(self, s);
	return EDDY_OK;
}

static eddy_err sup_receive(actor *self, void *state, rt_msg *m)
{
	sup_state *s = state;
	switch (m->kind) {
	case MSG_EXIT:
		on_exit_msg(self, s, m->from, m->u64);
		break;
	case MSG_STOP:
	case MSG_STOP_DRAIN:
		on_stop_msg(self, s, m);
		break;
	case MSG_TIMER:
		if (m->u64 == TAG_RESTART && s->phase == PH_DELAY) {
			s->delay_timer = NULL;
			s->phase = PH_STARTING;
			s->pos = 0;
			start_next(self, s);
		}
		break;
	default:
		msg_discard(m);
		break;
	}
	return EDDY_OK;
}

static void sup_fini(actor *self, void *state)
{
	(void)self;
	sup_state *s = state;
	/* As in OTP, children do not outlive their supervisor: stop the live ones. The next
	 * incarnation starts them again (their control lane keeps STOP before START). */
	for (uint32_t i = 0; s->c && i < s->n; i++)
		if (s->c[i].alive && s->c[i].a)
			send_ctl(s->c[i].a, MSG_STOP, 0);
	rt_free(s->c);
	rt_free(s->group);
	rt_free(s->restarts);
	rt_free(s->pend);
}

const actor_ops sup_ops = {
	.type = "supervisor",
	.state_size = sizeof(sup_state),
	.init = sup_init,
	.receive = sup_receive,
	.fini = sup_fini,
	.flags = ACTOR_HANDLES_STOP,
};

const sup_spec *sup_spec_of(const actor *a)
{
	return actor_ops_of(a) == &sup_ops ? actor_arg(a) : NULL;
}

bool sup_child_restart(const sup_spec *sup, const char *path, sup_restart *out)
{
	for (uint32_t i = 0; sup && i < sup->nchildren; i++)
		if (strcmp(sup->children[i].actor.path, path) == 0) {
			*out = sup->children[i].restart;
			return true;
		}
	return false;
}

eddy_err sup_spawn(asys *sys, const char *path, const sup_spec *spec, actor *parent,
                   actor **out)
{
	actor_spec as = { .path = path, .ops = &sup_ops, .arg = (void *)spec };
	return actor_spawn(sys, &as, parent, out);
}
