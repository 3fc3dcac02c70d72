/* Scheduler and actor tests: 10,000 actors, fairness, backpressure, shutdown with
 * messages in flight, timers delivered as messages. */
#include "actors/actor.h"
#include "runtime/alloc.h"
#include "runtime/sched.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

enum { GO = MSG_USER, HOP, DATA, MORE, PING, PONG };

#include "test_util.h"

/* ---- 10,000 actors exchanging messages ---- */

#define NACTORS 10000
#define TOKENS 10
#define HOPS 20

static actor *many[NACTORS];
static _Atomic uint64_t finished;
static _Atomic uint64_t hops_seen;

typedef struct hopper {
	uint32_t index;
	uint64_t rng;
} hopper;

static eddy_err hopper_init(actor *self, void *state, void *arg)
{
	(void)self;
	hopper *h = state;
	h->index = (uint32_t)(uintptr_t)arg;
	h->rng = h->index * 2654435761u + 1;
	return EDDY_OK;
}

static actor *pick(hopper *h)
{
	h->rng = h->rng * 6364136223846793005ull + 1442695040888963407ull;
	return many[(h->rng >> 33) % NACTORS];
}

static eddy_err hopper_receive(actor *self, void *state, rt_msg *m)
{
	hopper *h = state;
	if (m->kind == GO) {
		for (int t = 0; t < TOKENS; t++) {
			rt_msg hop = { .kind = HOP, .u64 = HOPS };
			actor_send(self, pick(h), &hop);
		}
		return EDDY_OK;
	}
	atomic_fetch_add_explicit(&hops_seen, 1, memory_order_relaxed);
	if (m->u64 == 0) {
		atomic_fetch_add(&finished, 1);
		return EDDY_OK;
	}
	rt_msg hop = { .kind = HOP, .u64 = m->u64 - 1 };
	return actor_send(self, pick(h), &hop);
}

static const actor_ops hopper_ops = {
	.type = "hopper", .state_size = sizeof(hopper),
	.init = hopper_init, .receive = hopper_receive,
};

Test(sched, ten_thousand_actors_exchanging_messages_all_finish, .timeout = 120)
{
	asys_opts o = { .workers = 2 };
	asys *sys;
	cr_assert_eq(asys_create(&o, &sys), EDDY_OK);
	for (uint32_t i = 0; i < NACTORS; i++) {
		char path[64];
		snprintf(path, sizeof(path), "many/hopper[%u]", i);
		actor_spec spec = { .path = path, .ops = &hopper_ops, .arg = (void *)(uintptr_t)i,
		                    .mailbox_capacity = 256 };
		cr_assert_eq(actor_spawn(sys, &spec, NULL, &many[i]), EDDY_OK);
	}
	for (uint32_t i = 0; i < NACTORS; i++) {
		rt_msg go = { .kind = GO };
		cr_assert_eq(actor_send_wait(many[i], &go, 10000), EDDY_OK);
	}
	uint64_t want = (uint64_t)NACTORS * TOKENS;
	cr_assert(wait_until(atomic_load(&finished) == want, 60000),
	          "finished %lu of %lu tokens", (unsigned long)atomic_load(&finished),
	          (unsigned long)want);
	cr_assert_eq(atomic_load(&hops_seen), want * (HOPS + 1));
	actor_info *infos;
	size_t n;
	cr_assert_eq(asys_list(sys, "many/*", &infos, &n), EDDY_OK);
	cr_assert_eq(n, NACTORS);
	uint64_t in = 0;
	for (size_t i = 0; i < n; i++)
		in += infos[i].msgs_in;
	cr_assert_eq(in, want * (HOPS + 1) + NACTORS, "messages delivered: %lu", (unsigned long)in);
	rt_free(infos);
	asys_destroy(sys);
}

/* ---- fairness: a busy actor does not starve another ---- */

static _Atomic uint64_t busy_count;
static _Atomic int64_t seen_at = -1;

static eddy_err busy_receive(actor *self, void *state, rt_msg *m)
{
	(void)state;
	(void)m;
	atomic_fetch_add(&busy_count, 1);
	rt_msg again = { .kind = MORE };
	return actor_send(self, self, &again); /* never runs out of work */
}

static eddy_err witness_receive(actor *self, void *state, rt_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
	atomic_store(&seen_at, (int64_t)atomic_load(&busy_count));
	return EDDY_OK;
}

static const actor_ops busy_ops = { .type = "busy", .receive = busy_receive };
static const actor_ops witness_ops = { .type = "witness", .receive = witness_receive };

Test(sched, busy_actor_does_not_starve_another, .timeout = 60)
{
	asys_opts o = { .workers = 1, .budget = 16 };
	asys *sys;
	cr_assert_eq(asys_create(&o, &sys), EDDY_OK);
	actor *busy, *witness;
	actor_spec bs = { .path = "fair/busy", .ops = &busy_ops };
	actor_spec ws = { .path = "fair/witness", .ops = &witness_ops };
	cr_assert_eq(actor_spawn(sys, &bs, NULL, &busy), EDDY_OK);
	cr_assert_eq(actor_spawn(sys, &ws, NULL, &witness), EDDY_OK);
	rt_msg kick = { .kind = MORE };
	cr_assert_eq(actor_send_wait(busy, &kick, 1000), EDDY_OK);
	cr_assert(wait_until(atomic_load(&busy_count) > 10000, 10000));
	for (int round = 0; round < 20; round++) {
		atomic_store(&seen_at, -1);
		rt_msg hello = { .kind = PING };
		cr_assert_eq(actor_send_wait(witness, &hello, 1000), EDDY_OK);
		/* the witness is queued now */
		int64_t c0 = (int64_t)atomic_load(&busy_count);
		cr_assert(wait_until(atomic_load(&seen_at) >= 0, 10000), "witness starved");
		int64_t c1 = atomic_load(&seen_at);
		/* One worker: the busy actor can finish the activation it is in and at most one
		 * more (if it was requeued just before the witness) before the witness runs. */
		cr_assert_leq(c1 - c0, 2 * 16, "busy actor ran %ld messages first", (long)(c1 - c0));
	}
	asys_destroy(sys);
}

/* ---- backpressure: a fast producer against a slow consumer ---- */

#define TOTAL 200000
#define PER_CALL 100

static _Atomic uint64_t consumed;
static _Atomic uint64_t next_expected;
static _Atomic int order_broken;
static actor *slow;

static eddy_err producer_receive(actor *self, void *state, rt_msg *m)
{
	uint64_t *sent = state;
	(void)m;
	for (int i = 0; i < PER_CALL && *sent < TOTAL; i++) {
		rt_msg d = { .kind = DATA, .u64 = (*sent)++ };
		eddy_err err = actor_send(self, slow, &d);
		if (err != EDDY_OK)
			return err;
	}
	if (*sent < TOTAL) {
		rt_msg more = { .kind = MORE };
		return actor_send(self, self, &more);
	}
	return EDDY_OK;
}

static eddy_err slow_receive(actor *self, void *state, rt_msg *m)
{
	(void)self;
	(void)state;
	if (m->u64 != atomic_load(&next_expected))
		atomic_store(&order_broken, 1);
	atomic_store(&next_expected, m->u64 + 1);
	for (volatile int spin = 0; spin < 200; spin++)
		;
	atomic_fetch_add(&consumed, 1);
	return EDDY_OK;
}

static const actor_ops producer_ops = { .type = "producer", .state_size = sizeof(uint64_t),
	                                 .receive = producer_receive };
static const actor_ops slow_ops = { .type = "slow", .receive = slow_receive };

Test(sched, fast_producer_slow_consumer_bounded_memory_no_deadlock, .timeout = 120)
{
	asys_opts o = { .workers = 2 };
	asys *sys;
	cr_assert_eq(asys_create(&o, &sys), EDDY_OK);
	actor *prod;
	actor_spec ss = { .path = "bp/slow", .ops = &slow_ops, .mailbox_capacity = 16 };
	actor_spec ps = { .path = "bp/producer", .ops = &producer_ops, .mailbox_capacity = 16 };
	cr_assert_eq(actor_spawn(sys, &ss, NULL, &slow), EDDY_OK);
	cr_assert_eq(actor_spawn(sys, &ps, NULL, &prod), EDDY_OK);
	int64_t live0 = rt_alloc_live();
	rt_msg go = { .kind = MORE };
	cr_assert_eq(actor_send_wait(prod, &go, 1000), EDDY_OK);
	int64_t max_live = 0;
	uint32_t max_len = 0;
	actor_info info;
	while (atomic_load(&consumed) < TOTAL) {
		actor_get_info(slow, &info);
		if (info.mailbox_len > max_len)
			max_len = info.mailbox_len;
		int64_t live = rt_alloc_live() - live0;
		if (live > max_live)
			max_live = live;
		usleep(200);
	}
	cr_assert_eq(atomic_load(&consumed), TOTAL);
	cr_assert_not(atomic_load(&order_broken), "messages from one producer arrived out of order");
	cr_assert_leq(max_len, 16, "consumer mailbox exceeded its capacity: %u", max_len);
	/* Memory stays bounded: at most one callback's output is held in the outbox. */
	cr_assert_lt(max_live, 64, "allocations grew to %ld blocks", (long)max_live);
	actor_get_info(prod, &info);
	cr_assert_gt(info.parks, 0, "the producer was never parked: no backpressure seen");
	cr_assert_eq(info.msgs_out, TOTAL + TOTAL / PER_CALL - 1);
	asys_destroy(sys);
}

/* ---- shutdown with messages in flight ---- */

static _Atomic int payload_live;

static void drop_payload(rt_msg *m)
{
	rt_free(m->ptr);
	atomic_fetch_sub(&payload_live, 1);
}

static eddy_err pinger_receive(actor *self, void *state, rt_msg *m)
{
	actor **peer = state;
	if (m->kind == GO) {
		*peer = m->ptr; /* the peer to bounce to */
		return EDDY_OK;
	}
	/* bounce the payload back and add a fresh one: traffic only grows */
	eddy_err err = actor_send(self, *peer, m);
	if (err != EDDY_OK && err != EDDY_ESTOPPED)
		return err;
	void *p = rt_malloc(64);
	atomic_fetch_add(&payload_live, 1);
	rt_msg extra = { .kind = PING, .ptr = p, .drop = drop_payload };
	err = actor_send(self, *peer, &extra);
	return err == EDDY_ESTOPPED ? EDDY_OK : err;
}

static const actor_ops pinger_ops = { .type = "pinger", .state_size = sizeof(actor *),
	                               .receive = pinger_receive };

static void shutdown_in_flight(int64_t drain_ms)
{
	int64_t live0 = rt_alloc_live();
	asys_opts o = { .workers = 2 };
	asys *sys;
	cr_assert_eq(asys_create(&o, &sys), EDDY_OK);
	enum { PAIRS = 50 };
	actor *a[2 * PAIRS];
	for (int i = 0; i < 2 * PAIRS; i++) {
		char path[32];
		snprintf(path, sizeof(path), "pp/%d", i);
		actor_spec s = { .path = path, .ops = &pinger_ops, .mailbox_capacity = 64 };
		cr_assert_eq(actor_spawn(sys, &s, NULL, &a[i]), EDDY_OK);
	}
	for (int i = 0; i < 2 * PAIRS; i++) {
		rt_msg go = { .kind = GO, .ptr = a[i ^ 1] };
		cr_assert_eq(actor_send_wait(a[i], &go, 1000), EDDY_OK);
	}
	for (int i = 0; i < 2 * PAIRS; i += 2) {
		atomic_fetch_add(&payload_live, 1);
		rt_msg ping = { .kind = PING, .ptr = rt_malloc(64), .drop = drop_payload };
		cr_assert_eq(actor_send_wait(a[i], &ping, 1000), EDDY_OK);
	}
	usleep(100000); /* let traffic build up until mailboxes are full and actors parked */
	asys_shutdown(sys, drain_ms);
	for (int i = 0; i < 2 * PAIRS; i++)
		cr_assert_eq(actor_get_status(a[i]), ACTOR_STOPPED, "%d not stopped", i);
	cr_assert_eq(asys_wait(sys, 0), EDDY_OK);
	asys_destroy(sys);
	/* every payload was either freed by a receiver or dropped: nothing leaked */
	cr_assert_eq(rt_alloc_live(), live0, "%ld blocks leaked", (long)(rt_alloc_live() - live0));
}

Test(sched, shutdown_now_with_messages_in_flight_ends_cleanly, .timeout = 60)
{
	shutdown_in_flight(0);
}

Test(sched, shutdown_with_drain_deadline_ends_cleanly, .timeout = 60)
{
	shutdown_in_flight(50);
}

/* ---- drain: what is queued is processed before the stop ---- */

static _Atomic uint64_t drained;

static eddy_err count_receive(actor *self, void *state, rt_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
	atomic_fetch_add(&drained, 1);
	return EDDY_OK;
}

static const actor_ops count_ops = { .type = "count", .receive = count_receive };

Test(sched, drain_processes_queued_messages_before_stopping, .timeout = 60)
{
	asys_opts o = { .workers = 1 };
	asys *sys;
	cr_assert_eq(asys_create(&o, &sys), EDDY_OK);
	actor *c;
	actor_spec s = { .path = "drain/count", .ops = &count_ops, .mailbox_capacity = 1024 };
	cr_assert_eq(actor_spawn(sys, &s, NULL, &c), EDDY_OK);
	for (int i = 0; i < 1000; i++) {
		rt_msg m = { .kind = DATA };
		cr_assert_eq(actor_send_wait(c, &m, 1000), EDDY_OK);
	}
	asys_shutdown(sys, 10000);
	cr_assert_eq(atomic_load(&drained), 1000);
	rt_msg late = { .kind = DATA };
	cr_assert_eq(actor_try_send(c, &late), EDDY_ESTOPPED);
	asys_destroy(sys);
}

/* ---- timers delivered as messages ---- */

typedef struct ticker {
	rt_timer *periodic;
	int ticks, oneshots;
} ticker;

static _Atomic int ticks_seen, oneshots_seen;

static eddy_err ticker_init(actor *self, void *state, void *arg)
{
	(void)arg;
	ticker *t = state;
	eddy_err err = actor_timer_start(self, 10, 10, 1, &t->periodic);
	if (err == EDDY_OK)
		err = actor_timer_start(self, 25, 0, 2, NULL);
	return err;
}

static eddy_err ticker_receive(actor *self, void *state, rt_msg *m)
{
	ticker *t = state;
	if (m->kind == MSG_TIMER && m->u64 == 1)
		atomic_store(&ticks_seen, ++t->ticks);
	else if (m->kind == MSG_TIMER && m->u64 == 2)
		atomic_store(&oneshots_seen, ++t->oneshots);
	else if (m->kind == DATA)
		actor_timer_cancel(self, t->periodic);
	return EDDY_OK;
}

static const actor_ops ticker_ops = { .type = "ticker", .state_size = sizeof(ticker),
	                               .init = ticker_init, .receive = ticker_receive };

Test(sched, timers_arrive_as_messages_and_cancel_stops_them, .timeout = 60)
{
	rt_clock *clk;
	cr_assert_eq(clock_manual_create(1000, &clk), EDDY_OK);
	asys_opts o = { .workers = 2, .clock = clk, .watchdog_ms = -1 };
	asys *sys;
	cr_assert_eq(asys_create(&o, &sys), EDDY_OK);
	actor *t;
	actor_spec s = { .path = "timers/ticker", .ops = &ticker_ops };
	cr_assert_eq(actor_spawn(sys, &s, NULL, &t), EDDY_OK);
	cr_assert(wait_until(actor_get_status(t) == ACTOR_RUNNING, 5000));
	clock_advance(clk, 9);
	usleep(20000);
	cr_assert_eq(atomic_load(&ticks_seen), 0, "fired early");
	clock_advance(clk, 1);
	cr_assert(wait_until(atomic_load(&ticks_seen) == 1, 5000));
	clock_advance(clk, 20); /* t = 30: ticks at 20, 30 and the one-shot at 25 */
	cr_assert(wait_until(atomic_load(&ticks_seen) == 3 && atomic_load(&oneshots_seen) == 1,
	                     5000));
	rt_msg cancel = { .kind = DATA };
	cr_assert_eq(actor_send_wait(t, &cancel, 1000), EDDY_OK);
	usleep(20000);
	clock_advance(clk, 100);
	usleep(50000);
	cr_assert_eq(atomic_load(&ticks_seen), 3, "cancelled periodic timer still delivered");
	cr_assert_eq(atomic_load(&oneshots_seen), 1);
	asys_destroy(sys);
	clock_destroy(clk);
}

Test(sched, worker_count_defaults_to_cores)
{
	sched *s;
	cr_assert_eq(sched_create(NULL, &s), EDDY_OK);
	cr_assert_eq(sched_workers(s), (uint32_t)sysconf(_SC_NPROCESSORS_ONLN));
	sched_destroy(s);
	sched_opts o = { .workers = 3 };
	cr_assert_eq(sched_create(&o, &s), EDDY_OK);
	cr_assert_eq(sched_workers(s), 3);
	sched_destroy(s);
	cr_assert_eq(sched_current_worker(), -1);
}

/* ---- many parked producers on one small mailbox (a lost wake-up hung this once) ---- */

#define FAN_PRODUCERS 8
#define FAN_EACH 50000

static actor *fan_sink;
static _Atomic uint64_t fan_received;
static _Atomic int fan_order_broken;

static eddy_err fan_producer_receive(actor *self, void *state, rt_msg *m)
{
	uint64_t *sent = state;
	uint64_t id = m->u64 >> 32; /* the kick carries the producer id */
	for (int i = 0; i < 64 && (*sent & 0xffffffffu) < FAN_EACH; i++) {
		rt_msg d = { .kind = DATA, .u64 = id << 32 | (*sent & 0xffffffffu) };
		(*sent)++;
		eddy_err err = actor_send(self, fan_sink, &d);
		if (err != EDDY_OK)
			return err;
	}
	if ((*sent & 0xffffffffu) < FAN_EACH) {
		rt_msg more = { .kind = MORE, .u64 = id << 32 };
		return actor_send(self, self, &more);
	}
	return EDDY_OK;
}

static eddy_err fan_sink_receive(actor *self, void *state, rt_msg *m)
{
	(void)self;
	uint64_t *next = state; /* FAN_PRODUCERS counters */
	uint64_t id = m->u64 >> 32, seq = m->u64 & 0xffffffffu;
	if (id >= FAN_PRODUCERS || seq != next[id])
		atomic_store(&fan_order_broken, 1);
	else
		next[id]++;
	atomic_fetch_add(&fan_received, 1);
	return EDDY_OK;
}

static const actor_ops fan_producer_ops = { .type = "producer", .state_size = sizeof(uint64_t),
	                                     .receive = fan_producer_receive };
static const actor_ops fan_sink_ops = { .type = "sink",
	                                 .state_size = FAN_PRODUCERS * sizeof(uint64_t),
	                                 .receive = fan_sink_receive };

Test(sched, many_parked_producers_on_a_tiny_mailbox_all_finish, .timeout = 120)
{
	asys_opts o = { .workers = 2 };
	asys *sys;
	cr_assert_eq(asys_create(&o, &sys), EDDY_OK);
	actor_spec ss = { .path = "fan/sink", .ops = &fan_sink_ops, .mailbox_capacity = 4 };
	cr_assert_eq(actor_spawn(sys, &ss, NULL, &fan_sink), EDDY_OK);
	actor *p[FAN_PRODUCERS];
	for (uint64_t i = 0; i < FAN_PRODUCERS; i++) {
		char path[32];
		snprintf(path, sizeof(path), "fan/producer[%lu]", (unsigned long)i);
		actor_spec ps = { .path = path, .ops = &fan_producer_ops, .mailbox_capacity = 4 };
		cr_assert_eq(actor_spawn(sys, &ps, NULL, &p[i]), EDDY_OK);
	}
	for (uint64_t i = 0; i < FAN_PRODUCERS; i++) {
		rt_msg go = { .kind = MORE, .u64 = i << 32 };
		cr_assert_eq(actor_send_wait(p[i], &go, 1000), EDDY_OK);
	}
	uint64_t want = (uint64_t)FAN_PRODUCERS * FAN_EACH;
	cr_assert(wait_until(atomic_load(&fan_received) == want, 60000),
	          "received %lu of %lu: a parked producer was never woken",
	          (unsigned long)atomic_load(&fan_received), (unsigned long)want);
	cr_assert_not(atomic_load(&fan_order_broken), "per-producer order broken");
	uint64_t parks = 0;
	for (int i = 0; i < FAN_PRODUCERS; i++) {
		actor_info info;
		actor_get_info(p[i], &info);
		parks += info.parks;
	}
	cr_assert_gt(parks, 0, "no producer was ever parked: the test did not test backpressure");
	asys_destroy(sys);
}
