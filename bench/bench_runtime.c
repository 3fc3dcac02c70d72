/*
 * Runtime benchmarks. Prints one line per benchmark:
 *   BENCH mailbox.one_to_one msgs_per_s=...   two actors on two worker threads
 *   BENCH mailbox.fan_in msgs_per_s=...       8 producer actors into one consumer
 *   BENCH actor.pingpong p50_us=... p99_us=... round trip between two actors
 * Usage: bench_runtime [scale]   (scale multiplies message counts; default 1)
 * Targets (issue 2): >= 10 million messages/s one-to-one, ping-pong p50 <= 5 us.
 */
#include "actors/actor.h"
#include "runtime/alloc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { DATA = MSG_USER, MORE, PING, PONG };

#define PER_CALL 256

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- throughput: producers -> one consumer ---- */

static actor *sink;
static uint64_t per_producer;
static _Atomic uint64_t received;
static _Atomic int64_t done_ns;
static uint64_t expected;

static eddy_err producer_receive(actor *self, void *state, rt_msg *m)
{
	uint64_t *sent = state;
	(void)m;
	for (int i = 0; i < PER_CALL && *sent < per_producer; i++) {
		rt_msg d = { .kind = DATA, .u64 = (*sent)++ };
		actor_send(self, sink, &d);
	}
	if (*sent < per_producer) {
		rt_msg more = { .kind = MORE };
		actor_send(self, self, &more);
	}
	return EDDY_OK;
}

static eddy_err sink_receive(actor *self, void *state, rt_msg *m)
{
	(void)self;
	uint64_t *n = state;
	*n += m->kind == DATA;
	if (*n == expected) {
		atomic_store(&done_ns, now_ns());
		atomic_store(&received, *n);
	}
	return EDDY_OK;
}

static const actor_ops producer_ops = { .type = "producer", .state_size = sizeof(uint64_t),
	                                 .receive = producer_receive };
static const actor_ops sink_ops = { .type = "sink", .state_size = sizeof(uint64_t),
	                             .receive = sink_receive };

static double run_throughput(int producers, uint64_t total)
{
	asys_opts o = { .workers = 2, .budget = 256 };
	asys *sys;
	if (asys_create(&o, &sys) != EDDY_OK)
		exit(1);
	per_producer = total / (uint64_t)producers;
	expected = per_producer * (uint64_t)producers;
	atomic_store(&received, 0);
	actor_spec ss = { .path = "bench/sink", .ops = &sink_ops, .mailbox_capacity = 4096 };
	actor_spawn(sys, &ss, NULL, &sink);
	actor *prod[16];
	for (int p = 0; p < producers; p++) {
		char path[32];
		snprintf(path, sizeof(path), "bench/producer[%d]", p);
		actor_spec ps = { .path = path, .ops = &producer_ops, .mailbox_capacity = 64 };
		actor_spawn(sys, &ps, NULL, &prod[p]);
	}
	usleep(10000);
	int64_t t0 = now_ns();
	for (int p = 0; p < producers; p++) {
		rt_msg go = { .kind = MORE };
		actor_send_wait(prod[p], &go, -1);
	}
	while (atomic_load(&received) != expected)
		usleep(1000);
	double secs = (double)(atomic_load(&done_ns) - t0) / 1e9;
	asys_destroy(sys);
	return (double)expected / secs;
}

/* ---- latency: ping-pong ---- */

typedef struct pinger {
	actor *peer;
	int64_t sent_at;
	uint32_t n;
} pinger;

static int64_t *samples;
static uint32_t nsamples, warmup;
static _Atomic int pp_done;

static eddy_err ping_receive(actor *self, void *state, rt_msg *m)
{
	pinger *p = state;
	if (m->kind == MORE) {
		p->peer = m->ptr;
	} else if (m->kind == PONG) {
		int64_t t = now_ns();
		if (p->n >= warmup)
			samples[p->n - warmup] = t - p->sent_at;
		if (++p->n == warmup + nsamples) {
			atomic_store(&pp_done, 1);
			return EDDY_OK;
		}
	}
	p->sent_at = now_ns();
	rt_msg ping = { .kind = PING };
	return actor_send(self, p->peer, &ping);
}

static eddy_err pong_receive(actor *self, void *state, rt_msg *m)
{
	(void)state;
	rt_msg pong = { .kind = PONG };
	return actor_send(self, m->from, &pong);
}

static const actor_ops ping_ops = { .type = "ping", .state_size = sizeof(pinger),
	                             .receive = ping_receive };
static const actor_ops pong_ops = { .type = "pong", .receive = pong_receive };

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void run_pingpong(uint32_t n)
{
	asys_opts o = { .workers = 2 };
	asys *sys;
	if (asys_create(&o, &sys) != EDDY_OK)
		exit(1);
	nsamples = n;
	warmup = n / 10;
	samples = calloc(n, sizeof(*samples));
	actor *a, *b;
	actor_spec as = { .path = "bench/ping", .ops = &ping_ops };
	actor_spec bs = { .path = "bench/pong", .ops = &pong_ops };
	actor_spawn(sys, &as, NULL, &a);
	actor_spawn(sys, &bs, NULL, &b);
	rt_msg go = { .kind = MORE, .ptr = b };
	actor_send_wait(a, &go, -1);
	while (!atomic_load(&pp_done))
		usleep(1000);
	qsort(samples, n, sizeof(*samples), cmp64);
	printf("BENCH actor.pingpong p50_us=%.2f p99_us=%.2f round_trips=%u\n",
	       (double)samples[n / 2] / 1000.0, (double)samples[(uint64_t)n * 99 / 100] / 1000.0,
	       n);
	free(samples);
	asys_destroy(sys);
}

int main(int argc, char **argv)
{
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	if (scale <= 0)
		scale = 1.0;
	uint64_t total = (uint64_t)(20000000 * scale);
	printf("BENCH mailbox.one_to_one msgs_per_s=%.0f msgs=%llu\n", run_throughput(1, total),
	       (unsigned long long)total);
	printf("BENCH mailbox.fan_in msgs_per_s=%.0f msgs=%llu producers=8\n",
	       run_throughput(8, total), (unsigned long long)total);
	run_pingpong((uint32_t)(200000 * scale));
	return 0;
}
