/* Supervision tests: the exact children restarted per strategy and their order,
 * restart intensity and escalation, restart types, backoff on a manual clock, and the
 * three kinds of failure (callback error, explicit fail, watchdog). */
#include "actors/supervisor.h"
#include "runtime/alloc.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { CRASH = MSG_USER, EXIT_NOW, FAIL_WHY, SPIN };

#include "test_util.h"

/* ---- an event log the children write ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char events[256][48];
static int nevents;

static void note(const char *what, actor *a)
{
	const char *p = strrchr(actor_path(a), '/');
	pthread_mutex_lock(&log_mu);
	if (nevents < 256)
		snprintf(events[nevents++], sizeof(events[0]), "%s:%s", what, p ? p + 1 : "");
	pthread_mutex_unlock(&log_mu);
}

static int count_events(void)
{
	pthread_mutex_lock(&log_mu);
	int n = nevents;
	pthread_mutex_unlock(&log_mu);
	return n;
}

static void clear_events(void)
{
	pthread_mutex_lock(&log_mu);
	nevents = 0;
	pthread_mutex_unlock(&log_mu);
}

/* events_since joins the events from index `from` with spaces. */
static const char *events_since(int from)
{
	static char buf[4096];
	buf[0] = '\0';
	pthread_mutex_lock(&log_mu);
	for (int i = from; i < nevents; i++) {
		strcat(buf, events[i]);
		if (i + 1 < nevents)
			strcat(buf, " ");
	}
	pthread_mutex_unlock(&log_mu);
	return buf;
}

static _Atomic int spin_release;

static eddy_err child_init(actor *self, void *state, void *arg)
{
	(void)state;
	(void)arg;
	note("init", self);
	return EDDY_OK;
}

static eddy_err child_receive(actor *self, void *state, rt_msg *m)
{
	(void)state;
	switch (m->kind) {
	case CRASH:
		return EDDY_EFAILED;
	case EXIT_NOW:
		actor_exit(self);
		return EDDY_OK;
	case FAIL_WHY:
		actor_fail(self, "the reason given");
		return EDDY_OK;
	case SPIN:
		while (!atomic_load(&spin_release))
			usleep(100);
		return EDDY_OK;
	}
	return EDDY_OK;
}

static void child_fini(actor *self, void *state)
{
	(void)state;
	note("fini", self);
}

static const actor_ops child_ops = { .type = "child", .init = child_init,
	                              .receive = child_receive, .fini = child_fini };

/* ---- fixture ---- */

static rt_clock *clk;
static asys *sys;

static void setup(void)
{
	clear_events();
	atomic_store(&spin_release, 0);
	cr_assert_eq(clock_manual_create(0, &clk), EDDY_OK);
	asys_opts o = { .workers = 2, .clock = clk, .watchdog_check_ms = 10 };
	cr_assert_eq(asys_create(&o, &sys), EDDY_OK);
}

static void teardown(void)
{
	atomic_store(&spin_release, 1);
	asys_destroy(sys);
	clock_destroy(clk);
}

TestSuite(sup, .init = setup, .fini = teardown, .timeout = 60);

static sup_child_spec kids[4];
static char kid_paths[4][32];

static sup_spec make_spec(sup_strategy strategy, int n, const sup_restart *types)
{
	for (int i = 0; i < n; i++) {
		snprintf(kid_paths[i], sizeof(kid_paths[i]), "job/%c", 'a' + i);
		kids[i] = (sup_child_spec){
			.actor = { .path = kid_paths[i], .ops = &child_ops },
			.restart = types ? types[i] : CHILD_PERMANENT,
		};
	}
	sup_spec s;
	sup_spec_defaults(&s);
	s.strategy = strategy;
	s.backoff_initial_ms = 0; /* restart at once; backoff has its own test */
	s.intensity = 10;
	s.period_ms = 1000;
	s.children = kids;
	s.nchildren = (uint32_t)n;
	return s;
}

static actor *child(const char *name)
{
	char path[32];
	snprintf(path, sizeof(path), "job/%s", name);
	return asys_find(sys, path);
}

static void send(actor *a, uint32_t kind)
{
	rt_msg m = { .kind = kind };
	cr_assert_eq(actor_send_wait(a, &m, 1000), EDDY_OK);
}

/* start_tree starts a root supervisor with (a copy of) spec and waits until n children
 * started. The copy is static: a spec must outlive its supervisor, which runs until the
 * teardown, after the test's own frame is gone (a restart finishing then read a dead
 * spec's on_restarted and crashed, 1 run in ~50 under load). */
static sup_spec tree_spec;

static actor *start_tree(const sup_spec *spec, int n)
{
	actor *root;
	tree_spec = *spec;
	cr_assert_eq(sup_spawn(sys, "job/sup", &tree_spec, NULL, &root), EDDY_OK);
	cr_assert(wait_until(count_events() == n, 5000), "children did not start: %s",
	          events_since(0));
	return root;
}

static void expect_events(int from, int n, const char *want)
{
	cr_assert(wait_until(count_events() >= from + n, 5000), "got only: %s",
	          events_since(from));
	usleep(20000); /* nothing more may follow */
	cr_assert_str_eq(events_since(from), want);
}

Test(sup, children_start_in_order)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 3, NULL);
	start_tree(&spec, 3);
	cr_assert_str_eq(events_since(0), "init:a init:b init:c");
}

Test(sup, one_for_one_restarts_only_the_failed_child)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 3, NULL);
	start_tree(&spec, 3);
	send(child("b"), CRASH);
	expect_events(3, 2, "fini:b init:b");
	cr_assert_eq(actor_restarts(child("b")), 1);
	cr_assert_eq(actor_restarts(child("a")), 0);
	cr_assert_eq(actor_restarts(child("c")), 0);
}

Test(sup, one_for_all_stops_the_rest_in_reverse_and_restarts_all_in_order)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ALL, 3, NULL);
	start_tree(&spec, 3);
	send(child("b"), CRASH);
	expect_events(3, 6, "fini:b fini:c fini:a init:a init:b init:c");
}

Test(sup, rest_for_one_restarts_the_failed_child_and_those_after_it)
{
	sup_spec spec = make_spec(SUP_REST_FOR_ONE, 4, NULL);
	start_tree(&spec, 4);
	send(child("b"), CRASH);
	expect_events(4, 6, "fini:b fini:d fini:c init:b init:c init:d");
	cr_assert_eq(actor_restarts(child("a")), 0);
}

Test(sup, queued_messages_survive_a_restart)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 1, NULL);
	start_tree(&spec, 1);
	actor *a = child("a");
	send(a, CRASH);
	send(a, EXIT_NOW); /* processed by the next incarnation: a permanent child restarts */
	expect_events(1, 4, "fini:a init:a fini:a init:a");
	cr_assert_eq(actor_restarts(a), 2);
}

Test(sup, intensity_exceeded_escalates_and_the_root_fails_the_system)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 3, NULL);
	spec.intensity = 2;
	spec.period_ms = 1000;
	start_tree(&spec, 3);
	for (int i = 0; i < 2; i++) {
		send(child("b"), CRASH);
		cr_assert(wait_until(actor_restarts(child("b")) == (uint64_t)i + 1, 5000));
	}
	cr_assert_eq(asys_wait(sys, 0), EDDY_ETIMEDOUT, "two restarts are within intensity 2");
	int from = count_events();
	send(child("b"), CRASH); /* the third restart in the period is one too many */
	cr_assert_eq(asys_wait(sys, 5000), EDDY_EFAILED);
	char why[512];
	asys_failure(sys, why, sizeof(why));
	cr_assert(strstr(why, "job/sup") && strstr(why, "max restart intensity") &&
	          strstr(why, "job/b"), "failure: %s", why);
	/* the supervisor stopped the others in reverse start order and restarted nobody */
	expect_events(from, 3, "fini:b fini:c fini:a");
	asys_event ev[16];
	size_t n = asys_events(sys, ev, 16);
	int escalated = 0;
	for (size_t i = 0; i < n; i++)
		escalated += strcmp(ev[i].what, "escalated") == 0;
	cr_assert_eq(escalated, 1);
}

Test(sup, restarts_outside_the_period_do_not_count)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 1, NULL);
	spec.intensity = 1;
	spec.period_ms = 100;
	start_tree(&spec, 1);
	for (int i = 0; i < 5; i++) {
		send(child("a"), CRASH);
		cr_assert(wait_until(actor_restarts(child("a")) == (uint64_t)i + 1, 5000));
		clock_advance(clk, 150);
	}
	cr_assert_eq(asys_wait(sys, 0), EDDY_ETIMEDOUT, "the system failed");
}

static sup_child_spec inner_kids[2];
static sup_spec inner_spec;

Test(sup, nested_supervisor_escalates_to_its_parent_which_restarts_it)
{
	for (int i = 0; i < 2; i++)
		inner_kids[i] = (sup_child_spec){
			.actor = { .path = i ? "job/y" : "job/x", .ops = &child_ops },
			.restart = CHILD_PERMANENT };
	sup_spec_defaults(&inner_spec);
	inner_spec.intensity = 1;
	inner_spec.period_ms = 1000;
	inner_spec.backoff_initial_ms = 0;
	inner_spec.children = inner_kids;
	inner_spec.nchildren = 2;
	static sup_child_spec outer_kids[1];
	outer_kids[0] = (sup_child_spec){
		.actor = { .path = "job/inner", .ops = &sup_ops, .arg = &inner_spec },
		.restart = CHILD_PERMANENT };
	sup_spec outer;
	sup_spec_defaults(&outer);
	outer.backoff_initial_ms = 0;
	outer.children = outer_kids;
	outer.nchildren = 1;
	start_tree(&outer, 2);
	send(child("x"), CRASH);
	cr_assert(wait_until(actor_restarts(child("x")) == 1, 5000));
	int from = count_events();
	send(child("x"), CRASH); /* inner: 2 > intensity 1 -> escalate to outer */
	expect_events(from, 4, "fini:x fini:y init:x init:y");
	cr_assert_eq(actor_restarts(asys_find(sys, "job/inner")), 1);
	cr_assert_eq(asys_wait(sys, 0), EDDY_ETIMEDOUT, "the root must not have failed");
}

Test(sup, transient_child_is_not_restarted_after_a_normal_exit)
{
	sup_restart types[2] = { CHILD_TRANSIENT, CHILD_TRANSIENT };
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 2, types);
	start_tree(&spec, 2);
	send(child("a"), CRASH);
	expect_events(2, 2, "fini:a init:a"); /* restarted after a failure */
	send(child("a"), EXIT_NOW);
	expect_events(4, 1, "fini:a"); /* not after a normal exit */
	cr_assert(wait_until(actor_try_send(child("a"), &(rt_msg){ .kind = CRASH }) ==
	                     EDDY_ESTOPPED, 5000), "a removed child still takes messages");
	cr_assert_eq(actor_get_status(child("a")), ACTOR_STOPPED);
}

Test(sup, temporary_child_is_never_restarted)
{
	sup_restart types[2] = { CHILD_TEMPORARY, CHILD_PERMANENT };
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 2, types);
	start_tree(&spec, 2);
	send(child("a"), CRASH);
	expect_events(2, 1, "fini:a");
	cr_assert_eq(actor_restarts(child("a")), 0);
}

Test(sup, permanent_child_is_restarted_even_after_a_normal_exit)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 1, NULL);
	start_tree(&spec, 1);
	send(child("a"), EXIT_NOW);
	expect_events(1, 2, "fini:a init:a");
}

Test(sup, temporary_sibling_is_removed_not_restarted_by_one_for_all)
{
	sup_restart types[3] = { CHILD_PERMANENT, CHILD_TEMPORARY, CHILD_PERMANENT };
	sup_spec spec = make_spec(SUP_ONE_FOR_ALL, 3, types);
	start_tree(&spec, 3);
	send(child("a"), CRASH);
	expect_events(3, 5, "fini:a fini:c fini:b init:a init:c");
}

Test(sup, backoff_delays_grow_exponentially_on_the_manual_clock)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 1, NULL);
	spec.backoff_initial_ms = 10;
	spec.backoff_multiplier = 2.0;
	spec.backoff_max_ms = 40;
	spec.intensity = 100;
	spec.period_ms = 100000;
	start_tree(&spec, 1);
	int64_t want[] = { 10, 20, 40, 40 };
	for (int i = 0; i < 4; i++) {
		send(child("a"), CRASH);
		cr_assert(wait_until(actor_get_status(child("a")) == ACTOR_RESTARTING, 5000));
		usleep(20000); /* the supervisor has armed its backoff timer by now */
		clock_advance(clk, want[i] - 1);
		usleep(30000);
		cr_assert_eq(actor_restarts(child("a")), (uint64_t)i,
		             "restart %d came before its %ld ms delay", i + 1, (long)want[i]);
		clock_advance(clk, 1);
		cr_assert(wait_until(actor_restarts(child("a")) == (uint64_t)i + 1, 5000),
		          "restart %d did not come after %ld ms", i + 1, (long)want[i]);
	}
}

Test(sup, backoff_resets_after_a_stable_period)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 1, NULL);
	spec.backoff_initial_ms = 10;
	spec.backoff_multiplier = 3.0;
	spec.backoff_max_ms = 1000;
	spec.intensity = 100;
	spec.period_ms = 500;
	start_tree(&spec, 1);
	send(child("a"), CRASH);
	usleep(20000);
	clock_advance(clk, 10);
	cr_assert(wait_until(actor_restarts(child("a")) == 1, 5000));
	clock_advance(clk, 600); /* ran longer than period: the next delay is initial again */
	send(child("a"), CRASH);
	cr_assert(wait_until(actor_get_status(child("a")) == ACTOR_RESTARTING, 5000));
	usleep(20000);
	clock_advance(clk, 10);
	cr_assert(wait_until(actor_restarts(child("a")) == 2, 5000), "delay did not reset");
}

Test(sup, explicit_fail_records_the_reason)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 1, NULL);
	start_tree(&spec, 1);
	send(child("a"), FAIL_WHY);
	cr_assert(wait_until(actor_restarts(child("a")) == 1, 5000));
	actor_info info;
	actor_get_info(child("a"), &info);
	cr_assert_str_eq(info.last_error, "the reason given");
	cr_assert_gt(info.last_error_ms, 0);
	cr_assert_str_eq(info.parent, "job/sup");
}

Test(sup, callback_error_is_a_failure_with_a_reason)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 1, NULL);
	start_tree(&spec, 1);
	send(child("a"), CRASH);
	cr_assert(wait_until(actor_restarts(child("a")) == 1, 5000));
	char why[256];
	actor_last_error(child("a"), why, sizeof(why));
	cr_assert(strstr(why, "receive") && strstr(why, "failed"), "reason: %s", why);
}

static void free_ptr(rt_msg *m)
{
	rt_free(m->ptr);
}

Test(sup, injected_failure_message_restarts_the_actor)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 1, NULL);
	start_tree(&spec, 1);
	rt_msg kill = { .kind = MSG_FAIL, .ptr = rt_strdup("test kill"), .drop = free_ptr };
	cr_assert_eq(actor_send_ctl(child("a"), &kill), EDDY_OK);
	cr_assert(wait_until(actor_restarts(child("a")) == 1, 5000));
	char why[256];
	actor_last_error(child("a"), why, sizeof(why));
	cr_assert_str_eq(why, "killed: test kill");
}

Test(sup, watchdog_fails_an_actor_busy_past_its_deadline)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 1, NULL);
	kids[0].actor.watchdog_ms = 50;
	start_tree(&spec, 1);
	send(child("a"), SPIN);
	usleep(20000); /* it is busy now */
	clock_advance(clk, 40);
	usleep(20000);
	char why[256];
	actor_last_error(child("a"), why, sizeof(why));
	cr_assert_str_eq(why, "", "watchdog fired before the deadline");
	clock_advance(clk, 30); /* busy 70 ms > 50 ms */
	cr_assert(wait_until((actor_last_error(child("a"), why, sizeof(why)), why[0] != 0), 5000));
	cr_assert(strstr(why, "watchdog") != NULL, "reason: %s", why);
	cr_assert_eq(actor_get_status(child("a")), ACTOR_RESTARTING);
	atomic_store(&spin_release, 1); /* the callback returns; the restart can proceed */
	cr_assert(wait_until(actor_restarts(child("a")) == 1, 5000));
	expect_events(1, 2, "fini:a init:a");
}

Test(sup, shutdown_stops_children_in_reverse_start_order)
{
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 3, NULL);
	start_tree(&spec, 3);
	asys_shutdown(sys, 0);
	cr_assert_str_eq(events_since(3), "fini:c fini:b fini:a");
	cr_assert_eq(actor_get_status(asys_find(sys, "job/sup")), ACTOR_STOPPED);
}

/* ---- what an actor sent before it exited is delivered ---- */

static _Atomic uint64_t drained;
static actor *slow_sink;

static eddy_err burst_receive(actor *self, void *state, rt_msg *m)
{
	(void)state;
	(void)m;
	/* far more than the sink's mailbox holds: most wait in the outbox */
	for (int i = 0; i < 1000; i++) {
		rt_msg d = { .kind = MSG_USER + 7, .u64 = (uint64_t)i };
		actor_send(self, slow_sink, &d);
	}
	actor_exit(self);
	return EDDY_OK;
}

static eddy_err slow_receive(actor *self, void *state, rt_msg *m)
{
	(void)self;
	uint64_t *next = state;
	cr_assert_eq(m->u64, *next, "in order");
	(*next)++;
	usleep(50);
	atomic_fetch_add(&drained, 1);
	return EDDY_OK;
}

static const actor_ops burst_ops = { .type = "burst", .receive = burst_receive };
static const actor_ops slow_ops = { .type = "slow", .state_size = sizeof(uint64_t),
	                            .receive = slow_receive };

Test(supervisor, an_exited_childs_outbox_is_still_delivered, .timeout = 60)
{
	asys_opts o = { .workers = 2 };
	asys *xs;
	cr_assert_eq(asys_create(&o, &xs), EDDY_OK);
	atomic_store(&drained, 0);
	sup_child_spec burst_kids[] = {
		{ .actor = { .path = "job/slow", .ops = &slow_ops, .mailbox_capacity = 4 },
		  .restart = CHILD_TRANSIENT },
		{ .actor = { .path = "job/burst", .ops = &burst_ops }, .restart = CHILD_TRANSIENT },
	};
	sup_spec spec;
	sup_spec_defaults(&spec);
	spec.strategy = SUP_ONE_FOR_ALL;
	spec.children = burst_kids;
	spec.nchildren = 2;
	cr_assert_eq(sup_spawn(xs, "job", &spec, NULL, NULL), EDDY_OK);
	cr_assert(wait_until(asys_find(xs, "job/burst") != NULL, 5000));
	slow_sink = asys_find(xs, "job/slow");
	rt_msg go = { .kind = MSG_USER };
	cr_assert_eq(actor_send_wait(asys_find(xs, "job/burst"), &go, 1000), EDDY_OK);
	/* burst exits normally at once; its supervisor removes it (a transient child) */
	cr_assert(wait_until(actor_get_status(asys_find(xs, "job/burst")) == ACTOR_STOPPED, 5000));
	cr_assert(wait_until(atomic_load(&drained) == 1000, 20000),
	          "delivered %llu of 1000", (unsigned long long)atomic_load(&drained));
	asys_destroy(xs);
}

Test(sup, critical_child_failure_escalates_at_once)
{
	sup_restart types[3] = { CHILD_PERMANENT, CHILD_CRITICAL, CHILD_PERMANENT };
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 3, types);
	spec.intensity = 100; /* the intensity is not what escalates */
	actor *root = start_tree(&spec, 3);
	send(child("a"), CRASH); /* a permanent sibling still restarts under one_for_one */
	expect_events(3, 2, "fini:a init:a");
	int from = count_events();
	send(child("b"), CRASH);
	cr_assert_eq(asys_wait(sys, 5000), EDDY_EFAILED);
	char why[512];
	asys_failure(sys, why, sizeof(why));
	cr_assert(strstr(why, "job/b failed and cannot be restarted (critical"), "failure: %s",
	          why);
	expect_events(from, 3, "fini:b fini:c fini:a");
	cr_assert_eq(actor_restarts(child("b")), 0);
	const sup_spec *got = sup_spec_of(root);
	cr_assert_eq(got, &tree_spec, "sup_spec_of gives the supervisor's spec");
	cr_assert_null(sup_spec_of(child("a")), "a child is not a supervisor");
	sup_restart r;
	cr_assert(sup_child_restart(got, "job/b", &r));
	cr_assert_eq(r, CHILD_CRITICAL);
	cr_assert_not(sup_child_restart(got, "job/zz", &r));
}

Test(sup, one_for_all_escalates_when_the_group_holds_a_critical_sibling)
{
	sup_restart types[3] = { CHILD_PERMANENT, CHILD_CRITICAL, CHILD_PERMANENT };
	sup_spec spec = make_spec(SUP_ONE_FOR_ALL, 3, types);
	spec.intensity = 100;
	start_tree(&spec, 3);
	int from = count_events();
	send(child("c"), CRASH);
	cr_assert_eq(asys_wait(sys, 5000), EDDY_EFAILED);
	char why[512];
	asys_failure(sys, why, sizeof(why));
	cr_assert(strstr(why, "would restart critical job/b"), "failure: %s", why);
	expect_events(from, 3, "fini:c fini:b fini:a");
}

Test(sup, a_critical_child_that_exits_normally_is_removed)
{
	sup_restart types[2] = { CHILD_CRITICAL, CHILD_PERMANENT };
	sup_spec spec = make_spec(SUP_ONE_FOR_ONE, 2, types);
	start_tree(&spec, 2);
	send(child("a"), EXIT_NOW);
	expect_events(2, 1, "fini:a");
	cr_assert(wait_until(actor_get_status(child("a")) == ACTOR_STOPPED, 5000));
	cr_assert_eq(asys_wait(sys, 50), EDDY_ETIMEDOUT, "a normal exit is not a failure");
}

/* ---- restart groups (keep_done, discard_on_restart, hooks: eddy's failover regions) ---- */

static _Atomic int hook_restarts, hook_restarted;
static char hook_failed[64];

static void on_group_restart(actor *sup, void *arg, const char *failed)
{
	(void)sup;
	cr_assert_eq(arg, &hook_restarts);
	snprintf(hook_failed, sizeof(hook_failed), "%s", failed);
	note("hook-restart", sup);
	atomic_fetch_add(&hook_restarts, 1);
}

static void on_group_restarted(actor *sup, void *arg)
{
	(void)arg;
	note("hook-restarted", sup);
	atomic_fetch_add(&hook_restarted, 1);
}

Test(sup, restart_group_restarts_finished_children_and_calls_its_hooks)
{
	sup_restart types[3] = {CHILD_TRANSIENT, CHILD_TRANSIENT, CHILD_TRANSIENT};
	sup_spec spec = make_spec(SUP_ONE_FOR_ALL, 3, types);
	spec.keep_done = spec.discard_on_restart = true;
	spec.on_restart = on_group_restart;
	spec.on_restarted = on_group_restarted;
	spec.hook_arg = &hook_restarts;
	atomic_store(&hook_restarts, 0);
	atomic_store(&hook_restarted, 0);
	start_tree(&spec, 3);
	cr_assert_eq(atomic_load(&hook_restarted), 0, "the first start is not a restart");
	send(child("c"), EXIT_NOW); /* c finishes: kept, not removed */
	expect_events(3, 1, "fini:c");
	cr_assert_eq(actor_get_status(child("c")), ACTOR_STOPPED);
	cr_assert_eq(actor_try_send(child("c"), &(rt_msg){.kind = EXIT_NOW}), EDDY_OK,
	             "a finished child of a restart group still takes messages");
	send(child("a"), CRASH);
	/* a's failure ends it; then the hook; b stopped (c already was: only its queue is
	 * dropped); all three start again, c included; the group is told it runs again */
	expect_events(4, 7,
	              "fini:a hook-restart:sup fini:b init:a init:b init:c hook-restarted:sup");
	cr_assert_str_eq(hook_failed, "job/a");
	cr_assert_eq(atomic_load(&hook_restarts), 1);
	cr_assert_eq(atomic_load(&hook_restarted), 1);
	/* the EXIT_NOW queued for c's finished incarnation was dropped with the restart */
	usleep(20000);
	cr_assert_eq(actor_get_status(child("c")), ACTOR_RUNNING);
}
