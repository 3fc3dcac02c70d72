/*
 * bench_nng.c - throughput of nng inproc pair0 sockets, as a baseline for
 * eddy's own in-process mailboxes.
 *
 * What it measures: one producer thread and one consumer thread connected by
 * a pair of nng pair0 sockets over the inproc transport
 * ("inproc://eddy-bench"). The producer sends N messages (default 2,000,000,
 * overridable by argv[1]) with a 40-byte payload, allocating each one with
 * nng_msg_alloc and handing it over with a blocking nng_sendmsg; the consumer
 * takes each with nng_recvmsg, checks that the sequence number in the first
 * 8 bytes arrives in order, and frees it with nng_msg_free. The clock
 * (CLOCK_MONOTONIC) runs from just before the first send to just after the
 * last receive.
 *
 * Why: eddy moves records between operators on different threads through
 * its own mailboxes. Before writing and maintaining those we want a number
 * for the obvious off-the-shelf alternative, measured the same way (same
 * record size, same thread layout, same timing window), so that the
 * comparison with eddy's mailbox benchmarks is like for like.
 *
 * A second run carries BATCH records of 40 bytes in each nng message and
 * counts records, not messages, to show how much of nng's cost is per
 * message rather than per byte.
 *
 * Output (one line per run):
 *   BENCH nng.inproc_pair msgs_per_s=<float> msgs=<N> secs=<float>
 *   BENCH nng.inproc_pair_batched msgs_per_s=<float> msgs=<N> secs=<float>
 *
 * Queue depth: NNG_OPT_SENDBUF and NNG_OPT_RECVBUF are set to QUEUE_DEPTH
 * (1024 messages) on both sockets. nng 1.5.2's pair0 accepts 0..8192 for
 * these options (anything else is NNG_EINVAL); the default is 0, i.e. no
 * buffering beyond the hand-off between the two pipe ends.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>

#define BENCH_URL "inproc://eddy-bench"
#define DEFAULT_MSGS 2000000ULL
#define RECORD_SIZE 40 /* bytes per record; sequence number in first 8 */
#define BATCH 64       /* records per nng message in the batched run */
#define QUEUE_DEPTH 1024

struct run {
	nng_socket tx;       /* dialer side, used by the sender */
	nng_socket rx;       /* listener side, used by the receiver */
	uint64_t records;    /* records to move */
	unsigned batch;      /* records per nng message */
	pthread_barrier_t start;
	struct timespec t0;  /* written by sender before its first send */
	struct timespec t1;  /* written by receiver after its last receive */
};

static void nng_check(int rv, const char *what)
{
	if (rv != 0) {
		fprintf(stderr, "bench_nng: %s: %s\n", what, nng_strerror(rv));
		exit(1);
	}
}

static void sys_check(int rv, const char *what)
{
	if (rv != 0) {
		fprintf(stderr, "bench_nng: %s: %s\n", what, strerror(rv));
		exit(1);
	}
}

static void now(struct timespec *ts)
{
	if (clock_gettime(CLOCK_MONOTONIC, ts) != 0) {
		fprintf(stderr, "bench_nng: clock_gettime: %s\n",
		        strerror(errno));
		exit(1);
	}
}

static void wait_start(pthread_barrier_t *b)
{
	int rv = pthread_barrier_wait(b);
	if (rv != 0 && rv != PTHREAD_BARRIER_SERIAL_THREAD)
		sys_check(rv, "pthread_barrier_wait");
}

static void *sender(void *arg)
{
	struct run *r = arg;
	uint64_t seq = 0;

	wait_start(&r->start);
	now(&r->t0);
	while (seq < r->records) {
		uint64_t left = r->records - seq;
		size_t n = left < r->batch ? (size_t)left : r->batch;
		nng_msg *m;

		nng_check(nng_msg_alloc(&m, n * RECORD_SIZE), "nng_msg_alloc");
		unsigned char *body = nng_msg_body(m);
		for (size_t i = 0; i < n; i++, seq++) {
			unsigned char *rec = body + i * RECORD_SIZE;
			memcpy(rec, &seq, sizeof seq);
			memset(rec + sizeof seq, 0xab, RECORD_SIZE - sizeof seq);
		}
		int rv = nng_sendmsg(r->tx, m, 0);
		if (rv != 0) {
			nng_msg_free(m); /* only freed by us on failure */
			nng_check(rv, "nng_sendmsg");
		}
	}
	return NULL;
}

static void *receiver(void *arg)
{
	struct run *r = arg;
	uint64_t expect = 0;

	wait_start(&r->start);
	while (expect < r->records) {
		nng_msg *m;

		nng_check(nng_recvmsg(r->rx, &m, 0), "nng_recvmsg");
		size_t len = nng_msg_len(m);
		if (len == 0 || len % RECORD_SIZE != 0 ||
		    len / RECORD_SIZE > r->batch) {
			fprintf(stderr,
			        "bench_nng: bad message length %zu "
			        "(expected a multiple of %d, at most %u records)\n",
			        len, RECORD_SIZE, r->batch);
			exit(1);
		}
		const unsigned char *body = nng_msg_body(m);
		for (size_t off = 0; off < len; off += RECORD_SIZE) {
			uint64_t seq;
			memcpy(&seq, body + off, sizeof seq);
			if (seq != expect) {
				fprintf(stderr,
				        "bench_nng: out of order: got seq %" PRIu64
				        ", expected %" PRIu64 "\n",
				        seq, expect);
				exit(1);
			}
			expect++;
		}
		nng_msg_free(m);
	}
	now(&r->t1);
	return NULL;
}

static void set_depth(nng_socket s, const char *who)
{
	char what[64];

	snprintf(what, sizeof what, "%s: set " NNG_OPT_SENDBUF, who);
	nng_check(nng_socket_set_int(s, NNG_OPT_SENDBUF, QUEUE_DEPTH), what);
	snprintf(what, sizeof what, "%s: set " NNG_OPT_RECVBUF, who);
	nng_check(nng_socket_set_int(s, NNG_OPT_RECVBUF, QUEUE_DEPTH), what);
}

/* One complete run on fresh sockets; returns elapsed seconds. */
static double run_once(uint64_t records, unsigned batch)
{
	struct run r;
	pthread_t ts, tr;

	memset(&r, 0, sizeof r);
	r.records = records;
	r.batch = batch;

	nng_check(nng_pair0_open(&r.rx), "nng_pair0_open (listener)");
	nng_check(nng_pair0_open(&r.tx), "nng_pair0_open (dialer)");
	set_depth(r.rx, "listener");
	set_depth(r.tx, "dialer");
	nng_check(nng_listen(r.rx, BENCH_URL, NULL, 0), "nng_listen");
	nng_check(nng_dial(r.tx, BENCH_URL, NULL, 0), "nng_dial");

	sys_check(pthread_barrier_init(&r.start, NULL, 2),
	          "pthread_barrier_init");
	sys_check(pthread_create(&tr, NULL, receiver, &r),
	          "pthread_create (receiver)");
	sys_check(pthread_create(&ts, NULL, sender, &r),
	          "pthread_create (sender)");
	sys_check(pthread_join(ts, NULL), "pthread_join (sender)");
	sys_check(pthread_join(tr, NULL), "pthread_join (receiver)");
	sys_check(pthread_barrier_destroy(&r.start), "pthread_barrier_destroy");

	/* Close only after both threads are done, so that nothing still
	 * queued in the sender's buffer is dropped. */
	nng_check(nng_close(r.tx), "nng_close (dialer)");
	nng_check(nng_close(r.rx), "nng_close (listener)");

	return (double)(r.t1.tv_sec - r.t0.tv_sec) +
	       (double)(r.t1.tv_nsec - r.t0.tv_nsec) / 1e9;
}

static void report(const char *name, uint64_t records, double secs)
{
	printf("BENCH %s msgs_per_s=%.1f msgs=%" PRIu64 " secs=%.6f\n", name,
	       secs > 0 ? (double)records / secs : 0.0, records, secs);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	uint64_t n = DEFAULT_MSGS;

	if (argc > 2) {
		fprintf(stderr, "usage: %s [messages]\n", argv[0]);
		return 1;
	}
	if (argc == 2) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(argv[1], &end, 10);
		if (errno != 0 || end == argv[1] || *end != '\0' || v == 0 ||
		    argv[1][0] == '-') {
			fprintf(stderr,
			        "bench_nng: bad message count '%s' "
			        "(want a positive integer)\n",
			        argv[1]);
			return 1;
		}
		n = v;
	}

	report("nng.inproc_pair", n, run_once(n, 1));
	report("nng.inproc_pair_batched", n, run_once(n, BATCH));

	nng_fini();
	return 0;
}
