/*
 * Keyed state benchmarks: value state with N distinct keys (default 1,000,000; 8-byte keys,
 * 8-byte values, one handle with all 128 key groups), on each backend. Prints:
 *   BENCH state.<backend>.put_new ops_per_s=...      first put of each key
 *   BENCH state.<backend>.put ops_per_s=...          overwrite of existing keys
 *   BENCH state.<backend>.get ops_per_s=...          get of existing keys
 *   BENCH state.<backend>.put_cow ops_per_s=...      overwrite while a snapshot is open
 *   BENCH state.<backend>.snapshot_begin ms=...      the task thread's pause
 *   BENCH state.<backend>.snapshot_write mb_per_s=... bytes=...   (fsync included)
 *   BENCH state.<backend>.restore mb_per_s=...
 *   BENCH state.timers.<shape> register_ops_per_s=... pop_ops_per_s=...   (memory backend;
 *     timers are the same on both): shape "window": every key registers one timer at each
 *     of 5 times (windows ending at once), then all pop in order; "distinct": one timer
 *     per key, each at its own time (processing-time timers, sessions)
 * Keys are visited in a scrambled order (i * an odd constant mod N) each pass; every op
 * sets the key (and its key group) first, as a task does per record.
 * Usage: bench_state [keys] [dir] [memory|leveldb]   (dir: for the LevelDB database and
 * snapshot files, default /tmp; default: both backends)
 */
#include <eddy/state.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, ev_state *st)
{
	fprintf(stderr, "bench_state: %s: %s\n", what, st ? ev_state_errmsg(st) : "");
	exit(1);
}

static uint64_t n_keys;

/* scrambled visits every index of [0, n) once: (i * P + pass) mod n, P odd and prime. */
static inline uint64_t scrambled(uint64_t i, uint64_t pass)
{
	return (i * 2654435761u + pass * 7919) % n_keys;
}

static inline void set_key(ev_state *st, uint64_t k)
{
	uint32_t kg = ev_key_group_of_hash(XXH3_64bits(&k, sizeof(k)), 128);
	if (ev_state_set_key(st, &k, sizeof(k), kg) != EDDY_OK)
		die("set_key", st);
}

static double put_pass(ev_state *st, ev_state_id id, uint64_t pass)
{
	double t0 = now_s();
	for (uint64_t i = 0; i < n_keys; i++) {
		uint64_t k = scrambled(i, pass), v = k + pass;
		set_key(st, k);
		if (ev_value_put(st, id, &v, sizeof(v)) != EDDY_OK)
			die("put", st);
	}
	return (double)n_keys / (now_s() - t0);
}

static double get_pass(ev_state *st, ev_state_id id, uint64_t pass, uint64_t want_add)
{
	double t0 = now_s();
	uint64_t bad = 0;
	for (uint64_t i = 0; i < n_keys; i++) {
		uint64_t k = scrambled(i, pass), v;
		const void *p;
		size_t n;
		set_key(st, k);
		if (ev_value_get(st, id, &p, &n) != EDDY_OK || n != 8)
			die("get", st);
		memcpy(&v, p, 8);
		bad += v != k + want_add;
	}
	double r = (double)n_keys / (now_s() - t0);
	if (bad) {
		fprintf(stderr, "bench_state: %llu wrong values\n", (unsigned long long)bad);
		exit(1);
	}
	return r;
}

static void run(ev_state_backend_kind kind, const char *dir)
{
	const char *name = kind == EV_STATE_MEMORY ? "memory" : "leveldb";
	char dbdir[512], snap[512], err[256];
	snprintf(dbdir, sizeof(dbdir), "%s/bench-state-db-%d", dir, (int)getpid());
	snprintf(snap, sizeof(snap), "%s/bench-state-%s-%d.snap", dir, name, (int)getpid());
	ev_state_backend_opts o = { .kind = kind, .dir = dbdir, .block_cache_bytes = 64 << 20,
		                    .write_buffer_bytes = 16 << 20, .batch_bytes = 4 << 20 };
	ev_state_backend *b;
	if (ev_state_backend_create(&o, &b, err, sizeof(err)) != EDDY_OK) {
		fprintf(stderr, "bench_state: %s\n", err);
		exit(1);
	}
	ev_state *st;
	if (ev_state_open(b, "bench", 128, 0, 127, &st) != EDDY_OK)
		die("open", NULL);
	ev_state_desc d = { .name = "count", .kind = EV_STATE_VALUE };
	ev_state_id id;
	if (ev_state_register(st, &d, &id) != EDDY_OK)
		die("register", st);

	printf("BENCH state.%s.put_new ops_per_s=%.0f\n", name, put_pass(st, id, 0));
	printf("BENCH state.%s.put ops_per_s=%.0f\n", name, put_pass(st, id, 1));
	printf("BENCH state.%s.get ops_per_s=%.0f\n", name, get_pass(st, id, 2, 1));
	fflush(stdout);

	double t0 = now_s();
	ev_state_snapshot *s;
	if (ev_state_snapshot_begin(st, &s) != EDDY_OK)
		die("snapshot_begin", st);
	double begin_ms = (now_s() - t0) * 1e3;
	printf("BENCH state.%s.snapshot_begin ms=%.3f\n", name, begin_ms);
	/* copy on write: overwriting every key once while the snapshot is open */
	printf("BENCH state.%s.put_cow ops_per_s=%.0f\n", name, put_pass(st, id, 3));
	uint64_t bytes = 0;
	t0 = now_s();
	if (ev_state_snapshot_write(s, snap, &bytes) != EDDY_OK) {
		fprintf(stderr, "bench_state: %s\n", ev_state_snapshot_errmsg(s));
		exit(1);
	}
	double w = now_s() - t0;
	printf("BENCH state.%s.snapshot_write mb_per_s=%.1f bytes=%llu seconds=%.3f\n", name,
	       (double)bytes / 1e6 / w, (unsigned long long)bytes, w);
	ev_state_snapshot_release(s);
	ev_state_close(st);
	fflush(stdout);

	if (ev_state_open(b, "bench", 128, 0, 127, &st) != EDDY_OK)
		die("open", NULL);
	t0 = now_s();
	const char *paths[] = { snap };
	if (ev_state_restore(st, paths, 1) != EDDY_OK)
		die("restore", st);
	double r = now_s() - t0;
	printf("BENCH state.%s.restore mb_per_s=%.1f seconds=%.3f\n", name,
	       (double)bytes / 1e6 / r, r);
	if (ev_state_register(st, &d, &id) != EDDY_OK)
		die("register", st);
	get_pass(st, id, 4, 1); /* the snapshot holds pass 1's values */
	fflush(stdout);
	ev_state_close(st);
	ev_state_backend_destroy(b);
	unlink(snap);
}

/* timers registers a timer for each of N keys at each of ntimes times (distinct: one
 * per key at time k), pops them all and prints the rates. */
static void timers(const char *shape, uint64_t ntimes, int distinct)
{
	char err[256];
	ev_state_backend_opts o = {.kind = EV_STATE_MEMORY};
	ev_state_backend *b;
	ev_state *st;
	if (ev_state_backend_create(&o, &b, err, sizeof(err)) != EDDY_OK ||
	    ev_state_open(b, "timers", 128, 0, 127, &st) != EDDY_OK)
		die("timers: open", NULL);
	uint64_t ns = 1000; /* a namespace: the window's start, 8 bytes */
	double t0 = now_s();
	for (uint64_t t = 0; t < ntimes; t++)
		for (uint64_t i = 0; i < n_keys; i++) {
			uint64_t k = scrambled(i, t);
			set_key(st, k);
			if (ev_state_set_namespace(st, &ns, sizeof(ns)) != EDDY_OK ||
			    ev_timer_register(st, EV_TIME_EVENT,
			                      distinct ? (int64_t)k : (int64_t)(t * 2000 + 1999)) !=
			        EDDY_OK)
				die("timers: register", st);
		}
	double reg = now_s() - t0;
	uint64_t n = ntimes * n_keys, popped = 0;
	ev_timer tm;
	t0 = now_s();
	while (ev_timer_pop(st, EV_TIME_EVENT, INT64_MAX, &tm) == EDDY_OK)
		popped++;
	double pop = now_s() - t0;
	if (popped != n)
		die("timers: popped fewer than registered", st);
	printf("BENCH state.timers.%s register_ops_per_s=%.0f pop_ops_per_s=%.0f timers=%llu\n",
	       shape, (double)n / reg, (double)n / pop, (unsigned long long)n);
	fflush(stdout);
	ev_state_close(st);
	ev_state_backend_destroy(b);
}

int main(int argc, char **argv)
{
	n_keys = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	const char *dir = argc > 2 ? argv[2] : "/tmp";
	if (n_keys == 0 || n_keys % 2654435761u == 0) {
		fprintf(stderr, "usage: bench_state [keys] [dir] [memory|leveldb]\n");
		return 2;
	}
	const char *only = argc > 3 ? argv[3] : "";
	if (strcmp(only, "leveldb") != 0) {
		timers("window", 5, 0);
		timers("distinct", 1, 1);
		run(EV_STATE_MEMORY, dir);
	}
	if (strcmp(only, "memory") != 0)
		run(EV_STATE_LEVELDB, dir);
	return 0;
}
