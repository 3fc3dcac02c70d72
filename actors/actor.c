/* Actor activations, sending with backpressure (outbox + parking), lifecycle, timers. */
#include "actor_int.h"

#include "../runtime/alloc.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *actor_status_name(actor_status s)
{
	switch (s) {
	case ACTOR_NEW: return "new";
	case ACTOR_RUNNING: return "running";
	case ACTOR_PARKED: return "parked";
	case ACTOR_RESTARTING: return "restarting";
	case ACTOR_STOPPED: return "stopped";
	}
	return "unknown";
}

static int64_t sys_now_ns(void)
{
	return clock_now_ns(clock_system());
}

void actor_schedule(actor *a)
{
	if (atomic_exchange(&a->scheduled, 1) == 0) {
		eddy_err err = sched_submit(a->sched, &a->task);
		(void)err; /* EDDY_EFULL cannot happen: spawn caps actors at max_tasks */
	}
}

static void wake_waiter(void *w, void *arg)
{
	(void)arg;
	actor_schedule(w);
}

void actor_record_error(actor *a, const char *reason)
{
	pthread_mutex_lock(&a->err_mu);
	snprintf(a->last_error, sizeof(a->last_error), "%s", reason);
	a->last_error_ms = clock_wall_ms();
	pthread_mutex_unlock(&a->err_mu);
}

void actor_notify_exit(actor *a, int kind)
{
	uint32_t inc = atomic_load(&a->incarnation);
	if (a->parent == NULL) {
		if (kind == EXIT_FAILED) {
			char why[256];
			actor_last_error(a, why, sizeof(why));
			asys_top_done(a->sys, a, true, why);
		} else if (kind != EXIT_STARTED) {
			asys_top_done(a->sys, a, false, NULL);
		}
		return;
	}
	rt_msg m = { .kind = MSG_EXIT, .u64 = (uint64_t)kind | ((uint64_t)inc << 8), .from = a };
	if (actor_send_ctl(a->parent, &m) != EDDY_OK)
		asys_log_event(a->sys, a->path, "lost-exit", "could not notify the parent");
}

/* ---- sending ---- */

static eddy_err outbox_append(actor *self, actor *to, const rt_msg *m)
{
	if (self->out_len == self->out_cap) {
		uint32_t cap = self->out_cap ? self->out_cap * 2 : 16;
		outbox_entry *nb = rt_malloc(cap * sizeof(*nb));
		if (nb == NULL)
			return EDDY_ENOMEM;
		for (uint32_t i = 0; i < self->out_len; i++)
			nb[i] = self->outbox[(self->out_head + i) % self->out_cap];
		rt_free(self->outbox);
		self->outbox = nb;
		self->out_cap = cap;
		self->out_head = 0;
	}
	outbox_entry *e = &self->outbox[(self->out_head + self->out_len) % self->out_cap];
	e->to = to;
	e->msg = *m;
	self->out_len++;
	return EDDY_OK;
}

static void dead_letter(actor *to, rt_msg *m)
{
	atomic_fetch_add_explicit(&to->dead_letters, 1, memory_order_relaxed);
	msg_discard(m);
}

static void wait_on(actor *self, mbox *mb)
{
	if (self->waiting_on && self->waiting_on != mb)
		mbox_remove_waiter(self->waiting_on, self);
	self->waiting_on = mb;
	if (mbox_add_waiter(mb, self) != EDDY_OK) {
		/* Could not register: poll instead (schedule ourselves again). */
		self->waiting_on = NULL;
		actor_schedule(self);
	}
}

/* outbox_flush pushes outbox messages in order; returns true when it is empty.
 * On a full target it registers self as a waiter and retries once. */
static bool outbox_flush(actor *self)
{
	while (self->out_len > 0) {
		outbox_entry *e = &self->outbox[self->out_head];
		actor *to = e->to;
		if (atomic_load(&to->dead)) {
			dead_letter(to, &e->msg);
		} else if (mbox_push(&to->mbox, &e->msg) != EDDY_OK) {
			/* Register, then retry: room made before the registration is seen by
			 * the retry, room made after it wakes us. (A wake that comes while we
			 * still run and finds the room taken again is caught by has_work.) */
			wait_on(self, &to->mbox);
			if (mbox_push(&to->mbox, &e->msg) != EDDY_OK)
				return false;
			atomic_fetch_add_explicit(&self->msgs_out, 1, memory_order_relaxed);
			actor_schedule(to);
		} else {
			atomic_fetch_add_explicit(&self->msgs_out, 1, memory_order_relaxed);
			actor_schedule(to);
		}
		self->out_head = (self->out_head + 1) % self->out_cap;
		self->out_len--;
	}
	return true;
}

static void outbox_discard(actor *self)
{
	while (self->out_len > 0) {
		msg_discard(&self->outbox[self->out_head].msg);
		self->out_head = (self->out_head + 1) % self->out_cap;
		self->out_len--;
	}
}

eddy_err actor_send(actor *self, actor *to, rt_msg *m)
{
	m->from = self;
	if (atomic_load_explicit(&to->dead, memory_order_relaxed)) {
		dead_letter(to, m);
		return EDDY_ESTOPPED;
	}
	if (self->out_len == 0 && mbox_push(&to->mbox, m) == EDDY_OK) {
		atomic_fetch_add_explicit(&self->msgs_out, 1, memory_order_relaxed);
		actor_schedule(to);
		return EDDY_OK;
	}
	eddy_err err = outbox_append(self, to, m);
	if (err != EDDY_OK)
		return err;
	if (self->out_len == 1 && outbox_flush(self) == false)
		atomic_fetch_add_explicit(&self->parks, 1, memory_order_relaxed);
	return EDDY_OK;
}

bool actor_backpressured(const actor *self)
{
	return self->out_len > 0;
}

eddy_err actor_try_send(actor *to, rt_msg *m)
{
	if (atomic_load(&to->dead))
		return EDDY_ESTOPPED;
	eddy_err err = mbox_push(&to->mbox, m);
	if (err == EDDY_OK)
		actor_schedule(to);
	return err;
}

eddy_err actor_send_wait(actor *to, rt_msg *m, int64_t timeout_ms)
{
	if (sched_current_worker() >= 0)
		return EDDY_EBUSY;
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : sys_now_ns() + timeout_ms * 1000000;
	long sleep_ns = 20000;
	for (;;) {
		eddy_err err = actor_try_send(to, m);
		if (err != EDDY_EFULL)
			return err;
		if (sys_now_ns() >= deadline)
			return EDDY_ETIMEDOUT;
		struct timespec ts = { 0, sleep_ns };
		nanosleep(&ts, NULL);
		if (sleep_ns < 1000000)
			sleep_ns *= 2;
	}
}

eddy_err actor_send_ctl(actor *to, rt_msg *m)
{
	eddy_err err = mbox_push_ctl(&to->mbox, m);
	if (err == EDDY_OK)
		actor_schedule(to);
	return err;
}

/* ---- inside an actor ---- */

void actor_fail(actor *self, const char *reason)
{
	if (self->fail_reason)
		return; /* the first reason wins */
	self->fail_reason = rt_strdup(reason ? reason : "failed");
	if (self->fail_reason == NULL)
		self->fail_reason = (char *)""; /* static marker: failed, reason lost to OOM */
}

void actor_exit(actor *self)
{
	self->exit_requested = true;
}

void actor_stop_done(actor *self)
{
	self->stop_done = true;
}

static void drop_timer_msg(rt_msg *m)
{
	timer_release(m->ptr);
}

static void on_timer_fire(void *target, uint64_t tag, rt_timer *t)
{
	actor *a = target;
	timer_retain(t);
	rt_msg m = { .kind = MSG_TIMER, .u64 = tag, .ptr = t, .drop = drop_timer_msg };
	if (actor_send_ctl(a, &m) != EDDY_OK)
		timer_release(t);
}

eddy_err actor_timer_start(actor *self, int64_t delay_ms, int64_t period_ms, uint64_t tag,
                           rt_timer **out)
{
	if (self->ntimers == self->timers_cap) {
		uint32_t cap = self->timers_cap ? self->timers_cap * 2 : 4;
		rt_timer **nt = rt_realloc(self->timers, cap * sizeof(*nt));
		if (nt == NULL)
			return EDDY_ENOMEM;
		self->timers = nt;
		self->timers_cap = cap;
	}
	rt_timer *t;
	eddy_err err = timers_start(self->sys->timers, delay_ms, period_ms, on_timer_fire, self,
	                            tag, &t);
	if (err != EDDY_OK)
		return err;
	self->timers[self->ntimers++] = t;
	if (out)
		*out = t;
	return EDDY_OK;
}

void actor_timer_cancel(actor *self, rt_timer *t)
{
	for (uint32_t i = 0; i < self->ntimers; i++)
		if (self->timers[i] == t) {
			self->timers[i] = self->timers[--self->ntimers];
			timer_cancel(t);
			return;
		}
}

static void cancel_all_timers(actor *self)
{
	for (uint32_t i = 0; i < self->ntimers; i++)
		timer_cancel(self->timers[i]);
	self->ntimers = 0;
}

/* ---- lifecycle, on the actor's own thread ---- */

static void run_fini(actor *a)
{
	cancel_all_timers(a);
	if (a->inited && a->ops->fini)
		a->ops->fini(a, a->state);
	a->inited = false;
}

/* do_fail handles a failure: fini, status, last error, and (unless the watchdog has
 * already reported it) the report to the parent. */
static void do_fail(actor *a, const char *reason, bool reported)
{
	if (!reported)
		actor_record_error(a, reason);
	atomic_store(&a->status, ACTOR_RESTARTING);
	run_fini(a);
	if (!reported) {
		asys_log_event(a->sys, a->path, "failed", "%s", reason);
		actor_notify_exit(a, EXIT_FAILED);
	}
}

static void take_failure(actor *a, eddy_err err, const char *what)
{
	char buf[300];
	const char *reason = a->fail_reason;
	if (reason == NULL || reason[0] == '\0') {
		snprintf(buf, sizeof(buf), "%s returned: %s", what, eddy_strerror(err));
		reason = buf;
	}
	do_fail(a, reason, false);
	if (a->fail_reason && a->fail_reason[0])
		rt_free(a->fail_reason);
	a->fail_reason = NULL;
}

/* do_stop stops a on request (flags: STOP_*) and acknowledges with EXIT_STOPPED. */
static void do_stop(actor *a, uint32_t flags, int kind)
{
	run_fini(a);
	a->stop_when_empty = false;
	atomic_store(&a->status, ACTOR_STOPPED);
	if (flags & (STOP_DISCARD | STOP_FINAL))
		mbox_discard_data(&a->mbox);
	if (flags & STOP_FINAL) {
		/* What a stopped actor sent before it stopped is still delivered: its outbox
		 * keeps flushing (it stays registered as a waiter of a full target). So an
		 * end-of-stream sent just before a normal exit is never lost. */
		atomic_store(&a->dead, true);
		/* Parked senders must learn that we are gone. */
		mbox_wake_waiters(&a->mbox, wake_waiter, NULL);
	}
	actor_notify_exit(a, kind);
}

static bool watchdog_took_over(actor *a);

static void do_start(actor *a)
{
	if (atomic_load(&a->dead))
		return;
	if (a->inited)
		run_fini(a);
	uint32_t inc = atomic_fetch_add(&a->incarnation, 1) + 1;
	memset(a->state, 0, a->ops->state_size);
	a->exit_requested = a->stop_done = false;
	a->stop_when_empty = false;
	if (inc > 1) /* an attempt counts, also one whose init fails (a crash loop shows) */
		atomic_fetch_add(&a->restarts, 1);
	eddy_err err = a->ops->init ? a->ops->init(a, a->state, a->arg) : EDDY_OK;
	a->inited = true; /* fini must see what init half-built */
	if (watchdog_took_over(a))
		return;
	if (err != EDDY_OK || a->fail_reason) {
		take_failure(a, err, "init");
		return;
	}
	if (inc > 1)
		asys_log_event(a->sys, a->path, "restarted", "incarnation %u", inc);
	atomic_store(&a->status, a->out_len ? ACTOR_PARKED : ACTOR_RUNNING);
	if (a->parent)
		actor_notify_exit(a, EXIT_STARTED);
}

/* watchdog_took_over finishes a failure the watchdog already reported for the current
 * activation (the callback has returned now); true if it did. */
static bool watchdog_took_over(actor *a)
{
	uint64_t act = a->cur_act;
	if (atomic_load_explicit(&a->watchdog_hit, memory_order_acquire) != act)
		return false;
	atomic_store(&a->watchdog_hit, 0);
	if (a->fail_reason && a->fail_reason[0])
		rt_free(a->fail_reason);
	a->fail_reason = NULL;
	do_fail(a, "watchdog", true);
	return true;
}

/* after_callback applies what a callback asked for or caused. */
static void after_callback(actor *a, eddy_err err)
{
	if (watchdog_took_over(a))
		return;
	if (err != EDDY_OK || a->fail_reason) {
		take_failure(a, err, "receive");
	} else if (a->stop_done) {
		a->stop_done = false;
		do_stop(a, a->stop_flags, EXIT_STOPPED);
	} else if (a->exit_requested) {
		a->exit_requested = false;
		do_stop(a, a->parent ? 0 : STOP_FINAL, EXIT_NORMAL);
	}
}

static void deliver(actor *a, rt_msg *m)
{
	atomic_fetch_add_explicit(&a->msgs_in, 1, memory_order_relaxed);
	eddy_err err = a->ops->receive(a, a->state, m);
	after_callback(a, err);
}

static void handle_ctl(actor *a, rt_msg *m)
{
	switch (m->kind) {
	case MSG_START:
		do_start(a);
		return;
	case MSG_STOP:
	case MSG_STOP_DRAIN:
		if ((a->ops->flags & ACTOR_HANDLES_STOP) && a->inited) {
			a->stop_flags = m->kind == MSG_STOP ? (uint32_t)m->u64 : STOP_FINAL;
			deliver(a, m);
		} else if (m->kind == MSG_STOP) {
			do_stop(a, (uint32_t)m->u64, EXIT_STOPPED);
		} else if (!a->inited) {
			do_stop(a, STOP_FINAL, EXIT_STOPPED);
		} else {
			a->stop_when_empty = true;
		}
		return;
	case MSG_FAIL: {
		char buf[300];
		snprintf(buf, sizeof(buf), "killed: %s", m->ptr ? (char *)m->ptr : "no reason");
		msg_discard(m);
		if (a->inited)
			do_fail(a, buf, false);
		return;
	}
	case MSG_TIMER: {
		rt_timer *t = m->ptr;
		bool live = !timer_cancelled(t) && a->inited;
		if (live)
			deliver(a, m);
		timer_release(t);
		return;
	}
	default:
		if (a->inited)
			deliver(a, m);
		else
			msg_discard(m);
	}
}

static bool can_run_data(const actor *a)
{
	return a->inited && a->out_len == 0;
}

static bool has_work(actor *a)
{
	if (mbox_has_ctl(&a->mbox))
		return true;
	if (a->out_len > 0) {
		/* Parked: run again if the target has room, or if a wake-up consumed our
		 * registration (room was made, then taken by another producer) — otherwise
		 * nobody would ever wake us. */
		actor *to = a->outbox[a->out_head].to;
		return atomic_load(&to->dead) || mbox_len(&to->mbox) < mbox_capacity(&to->mbox) ||
		       !mbox_is_waiter(&to->mbox, a);
	}
	if (!a->inited)
		return false;
	return a->stop_when_empty || mbox_has_data(&a->mbox);
}

/* actor_run is one activation: control messages first, then the outbox, then up to
 * budget data messages. */
static void actor_run(sched_task *t)
{
	actor *a = (actor *)t;
	int64_t t0 = sys_now_ns();
	a->cur_act = atomic_fetch_add_explicit(&a->activations, 1, memory_order_relaxed) + 1;
	atomic_store_explicit(&a->busy_since_ms, clock_now_ms(a->sys->clock) | 1,
	                      memory_order_release);
	uint32_t n = 0, ndata = 0;
	rt_msg m;
	while (n < a->budget) {
		if (mbox_pop_ctl(&a->mbox, &m)) {
			handle_ctl(a, &m);
			n++;
			continue;
		}
		if (a->out_len > 0 && !outbox_flush(a))
			break;
		if (!can_run_data(a))
			break;
		if (!mbox_pop_data(&a->mbox, &m)) {
			if (a->stop_when_empty)
				do_stop(a, STOP_FINAL, EXIT_STOPPED);
			break;
		}
		ndata++;
		n++;
		deliver(a, &m);
		if (!a->inited)
			break; /* failed or stopped: the supervisor decides what comes next */
	}
	atomic_store_explicit(&a->busy_since_ms, 0, memory_order_release);
	watchdog_took_over(a);
	if (ndata > 0)
		mbox_wake_waiters(&a->mbox, wake_waiter, NULL);
	int st = atomic_load(&a->status);
	if (st == ACTOR_RUNNING && a->out_len > 0)
		atomic_store(&a->status, ACTOR_PARKED);
	else if (st == ACTOR_PARKED && a->out_len == 0)
		atomic_store(&a->status, ACTOR_RUNNING);
	atomic_fetch_add_explicit(&a->busy_ns, (uint64_t)(sys_now_ns() - t0), memory_order_relaxed);
	atomic_store_explicit(&a->out_len_pub, a->out_len, memory_order_relaxed);

	if (has_work(a)) {
		sched_submit(a->sched, &a->task);
		return;
	}
	atomic_store(&a->scheduled, 0);
	atomic_thread_fence(memory_order_seq_cst);
	if (has_work(a) && atomic_exchange(&a->scheduled, 1) == 0)
		sched_submit(a->sched, &a->task);
}

/* ---- creation and inspection ---- */

eddy_err actor_create(asys *sys, const actor_spec *spec, actor *parent, actor **out)
{
	actor *a = rt_calloc(1, sizeof(*a));
	if (a == NULL)
		return EDDY_ENOMEM;
	pthread_mutex_init(&a->err_mu, NULL);
	a->task.run = actor_run;
	a->sys = sys;
	a->sched = spec->io ? sys->io_sched : sys->sched;
	a->ops = spec->ops;
	a->arg = spec->arg;
	a->parent = parent;
	a->budget = spec->budget ? spec->budget : sys->opts.budget;
	a->watchdog_ms = spec->watchdog_ms ? spec->watchdog_ms : sys->opts.watchdog_ms;
	a->path = rt_strdup(spec->path);
	a->state = rt_calloc(1, spec->ops->state_size ? spec->ops->state_size : 1);
	eddy_err err = EDDY_ENOMEM;
	if (a->path == NULL || a->state == NULL)
		goto fail;
	err = mbox_init(&a->mbox, spec->mailbox_capacity ? spec->mailbox_capacity
	                                                 : sys->opts.mailbox_capacity);
	if (err != EDDY_OK)
		goto fail;
	atomic_init(&a->status, ACTOR_NEW);
	*out = a;
	return EDDY_OK;
fail:
	actor_free(a);
	return err;
}

void actor_free(actor *a)
{
	if (a == NULL)
		return;
	if (a->inited && a->ops->fini)
		a->ops->fini(a, a->state);
	cancel_all_timers(a);
	rt_free(a->timers);
	outbox_discard(a);
	rt_free(a->outbox);
	mbox_fini(&a->mbox);
	if (a->fail_reason && a->fail_reason[0])
		rt_free(a->fail_reason);
	rt_free(a->state);
	rt_free(a->path);
	pthread_mutex_destroy(&a->err_mu);
	rt_free(a);
}

const char *actor_path(const actor *a) { return a->path; }
actor *actor_parent(const actor *a) { return a->parent; }
asys *actor_system(const actor *a) { return a->sys; }
void *actor_state(actor *a) { return a->state; }
const actor_ops *actor_ops_of(const actor *a) { return a->ops; }
void *actor_arg(const actor *a) { return a->arg; }
actor_status actor_get_status(const actor *a) { return atomic_load(&((actor *)a)->status); }
uint64_t actor_restarts(const actor *a) { return atomic_load(&((actor *)a)->restarts); }
uint32_t actor_incarnation(const actor *a) { return atomic_load(&((actor *)a)->incarnation); }

void actor_last_error(actor *a, char *buf, size_t size)
{
	pthread_mutex_lock(&a->err_mu);
	snprintf(buf, size, "%s", a->last_error);
	pthread_mutex_unlock(&a->err_mu);
}

void actor_get_info(actor *a, actor_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->path, sizeof(info->path), "%s", a->path);
	snprintf(info->type, sizeof(info->type), "%s", a->ops->type ? a->ops->type : "");
	snprintf(info->parent, sizeof(info->parent), "%s", a->parent ? a->parent->path : "");
	info->status = atomic_load(&a->status);
	info->mailbox_len = mbox_len(&a->mbox);
	info->mailbox_cap = mbox_capacity(&a->mbox);
	info->control_len = mbox_ctl_len(&a->mbox);
	info->msgs_in = atomic_load(&a->msgs_in);
	info->msgs_out = atomic_load(&a->msgs_out);
	info->busy_ns = atomic_load(&a->busy_ns);
	info->restarts = atomic_load(&a->restarts);
	info->dead_letters = atomic_load(&a->dead_letters);
	info->parks = atomic_load(&a->parks);
	info->outbox_len = atomic_load_explicit(&a->out_len_pub, memory_order_relaxed);
	pthread_mutex_lock(&a->err_mu);
	snprintf(info->last_error, sizeof(info->last_error), "%s", a->last_error);
	info->last_error_ms = a->last_error_ms;
	pthread_mutex_unlock(&a->err_mu);
}
