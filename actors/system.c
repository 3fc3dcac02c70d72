/* The actor system: scheduler + timers + registry + watchdog + event log + shutdown. */
#include "actor_int.h"

#include "../runtime/alloc.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t path_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a: registry lookups only, not data */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* table_slot finds path's slot (occupied by it, or the empty one to fill). Lock held. */
static uint32_t table_slot(asys *sys, const char *path)
{
	uint32_t mask = sys->tcap - 1;
	uint32_t i = (uint32_t)path_hash(path) & mask;
	while (sys->table[i] && strcmp(sys->table[i]->path, path) != 0)
		i = (i + 1) & mask;
	return i;
}

static eddy_err table_grow(asys *sys)
{
	uint32_t ncap = sys->tcap ? sys->tcap * 2 : 64;
	actor **nt = rt_calloc(ncap, sizeof(*nt));
	actor **na = rt_realloc(sys->actors, (ncap / 2) * sizeof(*na));
	if (nt == NULL || na == NULL) {
		rt_free(nt);
		if (na)
			sys->actors = na;
		return EDDY_ENOMEM;
	}
	sys->actors = na;
	sys->cap = ncap / 2;
	rt_free(sys->table);
	sys->table = nt;
	sys->tcap = ncap;
	for (uint32_t i = 0; i < sys->nactors; i++)
		sys->table[table_slot(sys, sys->actors[i]->path)] = sys->actors[i];
	return EDDY_OK;
}

static void watchdog_scan(void *target, uint64_t tag, rt_timer *t)
{
	(void)tag;
	(void)t;
	asys *sys = target;
	int64_t now = clock_now_ms(sys->clock);
	pthread_mutex_lock(&sys->mu);
	for (uint32_t i = 0; i < sys->nactors; i++) {
		actor *a = sys->actors[i];
		if (a->watchdog_ms < 0)
			continue;
		int64_t since = atomic_load_explicit(&a->busy_since_ms, memory_order_acquire);
		uint64_t act = atomic_load_explicit(&a->activations, memory_order_acquire);
		if (since == 0 || now - since <= a->watchdog_ms)
			continue;
		uint64_t none = 0;
		if (!atomic_compare_exchange_strong(&a->watchdog_hit, &none, act))
			continue; /* already reported */
		char why[160];
		snprintf(why, sizeof(why), "watchdog: busy for %lld ms (deadline %lld ms)",
		         (long long)(now - since), (long long)a->watchdog_ms);
		actor_record_error(a, why);
		atomic_store(&a->status, ACTOR_RESTARTING);
		asys_log_event(sys, a->path, "failed", "%s", why);
		pthread_mutex_unlock(&sys->mu);
		actor_notify_exit(a, EXIT_FAILED);
		pthread_mutex_lock(&sys->mu);
	}
	pthread_mutex_unlock(&sys->mu);
}

eddy_err asys_create(const asys_opts *opts, asys **out)
{
	asys *sys = rt_calloc(1, sizeof(*sys));
	if (sys == NULL)
		return EDDY_ENOMEM;
	sys->opts = opts ? *opts : (asys_opts){ 0 };
	asys_opts *o = &sys->opts;
	if (o->max_actors == 0)
		o->max_actors = 65536;
	if (o->mailbox_capacity == 0)
		o->mailbox_capacity = 1024;
	if (o->budget == 0)
		o->budget = 64;
	if (o->watchdog_ms == 0)
		o->watchdog_ms = 10000;
	if (o->watchdog_check_ms <= 0)
		o->watchdog_check_ms = 100;
	sys->clock = o->clock ? o->clock : clock_system();
	pthread_mutex_init(&sys->mu, NULL);
	pthread_cond_init(&sys->cond, NULL);
	pthread_mutex_init(&sys->ev_mu, NULL);
	eddy_err err = EDDY_ENOMEM;
	sys->events = rt_calloc(ASYS_EVENTS, sizeof(asys_event));
	if (sys->events == NULL || table_grow(sys) != EDDY_OK)
		goto fail;
	sched_opts so = { .workers = o->workers, .max_tasks = o->max_actors };
	if ((err = sched_create(&so, &sys->sched)) != EDDY_OK)
		goto fail;
	sched_opts io = { .workers = o->io_workers ? o->io_workers : 2,
		          .max_tasks = o->max_actors };
	if ((err = sched_create(&io, &sys->io_sched)) != EDDY_OK)
		goto fail;
	if ((err = timers_create(sys->clock, &sys->timers)) != EDDY_OK)
		goto fail;
	if (o->watchdog_ms > 0 &&
	    (err = timers_start(sys->timers, o->watchdog_check_ms, o->watchdog_check_ms,
	                        watchdog_scan, sys, 0, &sys->watchdog)) != EDDY_OK)
		goto fail;
	if ((err = sched_start(sys->sched)) != EDDY_OK ||
	    (err = sched_start(sys->io_sched)) != EDDY_OK)
		goto fail;
	*out = sys;
	return EDDY_OK;
fail:
	asys_destroy(sys);
	return err;
}

eddy_err actor_spawn(asys *sys, const actor_spec *spec, actor *parent, actor **out)
{
	if (spec == NULL || spec->path == NULL || spec->path[0] == '\0' || spec->ops == NULL ||
	    spec->ops->receive == NULL)
		return EDDY_EINVAL;
	actor *a;
	eddy_err err = actor_create(sys, spec, parent, &a);
	if (err != EDDY_OK)
		return err;
	pthread_mutex_lock(&sys->mu);
	if (sys->stopping)
		err = EDDY_ESTOPPED;
	else if (sys->nactors >= sys->opts.max_actors)
		err = EDDY_EFULL;
	else if (sys->table[table_slot(sys, a->path)])
		err = EDDY_EEXIST;
	else if ((sys->nactors + 1) * 2 > sys->tcap)
		err = table_grow(sys);
	if (err == EDDY_OK) {
		a->index = sys->nactors;
		sys->actors[sys->nactors++] = a;
		sys->table[table_slot(sys, a->path)] = a;
		if (parent == NULL)
			sys->live++;
	}
	pthread_mutex_unlock(&sys->mu);
	if (err != EDDY_OK) {
		actor_free(a);
		return err;
	}
	rt_msg start = { .kind = MSG_START };
	if (actor_send_ctl(a, &start) != EDDY_OK) {
		/* Registered but cannot be started: report it as failed to whoever watches. */
		actor_record_error(a, "spawn: out of memory queueing the start");
		actor_notify_exit(a, EXIT_FAILED);
	}
	if (out)
		*out = a;
	return EDDY_OK;
}

actor *asys_find(asys *sys, const char *path)
{
	pthread_mutex_lock(&sys->mu);
	actor *a = sys->table[table_slot(sys, path)];
	pthread_mutex_unlock(&sys->mu);
	return a;
}

eddy_err asys_list(asys *sys, const char *glob, actor_info **out, size_t *n)
{
	pthread_mutex_lock(&sys->mu);
	uint32_t total = sys->nactors;
	actor_info *infos = rt_malloc((total ? total : 1) * sizeof(*infos));
	if (infos == NULL) {
		pthread_mutex_unlock(&sys->mu);
		return EDDY_ENOMEM;
	}
	size_t k = 0;
	for (uint32_t i = 0; i < total; i++) {
		actor *a = sys->actors[i];
		if (glob && fnmatch(glob, a->path, 0) != 0)
			continue;
		actor_get_info(a, &infos[k++]);
	}
	pthread_mutex_unlock(&sys->mu);
	*out = infos;
	*n = k;
	return EDDY_OK;
}

void asys_top_done(asys *sys, actor *a, bool failed, const char *reason)
{
	if (atomic_exchange(&a->top_done, true))
		return;
	pthread_mutex_lock(&sys->mu);
	sys->live--;
	if (failed && !sys->failed) {
		sys->failed = true;
		snprintf(sys->failure, sizeof(sys->failure), "%s: %s", a->path, reason);
	}
	pthread_cond_broadcast(&sys->cond);
	pthread_mutex_unlock(&sys->mu);
	if (failed)
		asys_log_event(sys, a->path, "system-failed", "%s", reason);
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* wait_until waits (lock held) until live == 0 or (if stop_on_failure) a failure; with
 * notes, an asys_notify also ends it (EDDY_ETIMEDOUT: asys_wait's callers look again; the
 * shutdown's own waits must not end early). */
static eddy_err wait_until(asys *sys, int64_t timeout_ms, bool stop_on_failure, bool notes_end)
{
	struct timespec until;
	if (timeout_ms >= 0)
		deadline_after(&until, timeout_ms);
	uint64_t notes = sys->notes;
	while (sys->live > 0 && !(stop_on_failure && sys->failed)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&sys->cond, &sys->mu);
		else if (pthread_cond_timedwait(&sys->cond, &sys->mu, &until) != 0)
			return EDDY_ETIMEDOUT;
		if (notes_end && timeout_ms >= 0 && sys->notes != notes)
			return EDDY_ETIMEDOUT; /* asys_notify: look again */
	}
	return EDDY_OK;
}

void asys_notify(asys *sys)
{
	pthread_mutex_lock(&sys->mu);
	sys->notes++;
	pthread_cond_broadcast(&sys->cond);
	pthread_mutex_unlock(&sys->mu);
}

eddy_err asys_wait(asys *sys, int64_t timeout_ms)
{
	pthread_mutex_lock(&sys->mu);
	eddy_err err = wait_until(sys, timeout_ms, true, true);
	if (err == EDDY_OK && sys->failed)
		err = EDDY_EFAILED;
	pthread_mutex_unlock(&sys->mu);
	return err;
}

void asys_failure(asys *sys, char *buf, size_t size)
{
	pthread_mutex_lock(&sys->mu);
	snprintf(buf, size, "%s", sys->failed ? sys->failure : "");
	pthread_mutex_unlock(&sys->mu);
}

/* stop_top sends kind to every top-level actor not yet done, newest first. */
static void stop_top(asys *sys, uint32_t kind, uint64_t flags)
{
	pthread_mutex_lock(&sys->mu);
	uint32_t n = sys->nactors;
	pthread_mutex_unlock(&sys->mu);
	for (uint32_t i = n; i-- > 0;) {
		actor *a = sys->actors[i];
		if (a->parent || atomic_load(&a->top_done))
			continue;
		rt_msg m = { .kind = kind, .u64 = flags };
		actor_send_ctl(a, &m);
	}
}

void asys_shutdown(asys *sys, int64_t drain_ms)
{
	pthread_mutex_lock(&sys->mu);
	bool again = sys->stopping;
	sys->stopping = true;
	pthread_mutex_unlock(&sys->mu);
	if (!again) {
		if (drain_ms > 0) {
			stop_top(sys, MSG_STOP_DRAIN, 0);
			pthread_mutex_lock(&sys->mu);
			wait_until(sys, drain_ms, false, false);
			pthread_mutex_unlock(&sys->mu);
		}
		stop_top(sys, MSG_STOP, STOP_FINAL | STOP_DISCARD);
		pthread_mutex_lock(&sys->mu);
		eddy_err err = wait_until(sys, 10000, false, false);
		pthread_mutex_unlock(&sys->mu);
		if (err != EDDY_OK)
			asys_log_event(sys, "", "stuck", "shutdown: top-level actors did not stop in 10 s");
	}
	if (sys->watchdog) {
		timer_cancel(sys->watchdog);
		sys->watchdog = NULL;
	}
	sched_stop(sys->sched);
	if (sys->io_sched)
		sched_stop(sys->io_sched);
}

void asys_destroy(asys *sys)
{
	if (sys == NULL)
		return;
	if (sys->sched)
		asys_shutdown(sys, 0);
	/* No worker runs any more: free timers first (they point at actors), then actors —
	 * in spawn order, so a supervisor's fini still reaches its children, and before the
	 * schedulers, which take (and never run) what it sends them — then the schedulers. */
	timers_destroy(sys->timers);
	for (uint32_t i = 0; i < sys->nactors; i++)
		actor_free(sys->actors[i]);
	sched_destroy(sys->sched);
	sched_destroy(sys->io_sched);
	rt_free(sys->actors);
	rt_free(sys->table);
	rt_free(sys->events);
	pthread_cond_destroy(&sys->cond);
	pthread_mutex_destroy(&sys->mu);
	pthread_mutex_destroy(&sys->ev_mu);
	rt_free(sys);
}

rt_clock *asys_clock(asys *sys) { return sys->clock; }
timers *asys_timers(asys *sys) { return sys->timers; }

void asys_log_event(asys *sys, const char *path, const char *what, const char *fmt, ...)
{
	asys_event ev = { .wall_ms = clock_wall_ms() };
	snprintf(ev.path, sizeof(ev.path), "%s", path);
	snprintf(ev.what, sizeof(ev.what), "%s", what);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ev.detail, sizeof(ev.detail), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&sys->ev_mu);
	sys->events[sys->nevents % ASYS_EVENTS] = ev;
	sys->nevents++;
	pthread_mutex_unlock(&sys->ev_mu);
	if (sys->opts.log_stderr)
		fprintf(stderr, "eddy: %s %s: %s\n", ev.path, ev.what, ev.detail);
}

size_t asys_events(asys *sys, asys_event *out, size_t max)
{
	pthread_mutex_lock(&sys->ev_mu);
	uint64_t n = sys->nevents < ASYS_EVENTS ? sys->nevents : ASYS_EVENTS;
	if (n > max)
		n = max;
	uint64_t first = sys->nevents - n;
	for (uint64_t i = 0; i < n; i++)
		out[i] = sys->events[(first + i) % ASYS_EVENTS];
	pthread_mutex_unlock(&sys->ev_mu);
	return (size_t)n;
}

void asys_import_events(asys *sys, const asys_event *ev, size_t n)
{
	pthread_mutex_lock(&sys->ev_mu);
	for (size_t i = 0; i < n; i++) {
		sys->events[sys->nevents % ASYS_EVENTS] = ev[i];
		sys->nevents++;
	}
	pthread_mutex_unlock(&sys->ev_mu);
}
