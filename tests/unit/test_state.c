/*
 * Keyed state (include/eddy/state.h). Every test body in BOTH() runs twice: on the memory
 * backend (suite state_memory) and on the LevelDB backend (suite state_leveldb).
 */
#include "../../runtime/alloc.h"

#include <criterion/criterion.h>
#include <eddy/state.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#define BOTH(name)                                                                    \
	static void name##_body(ev_state_backend_kind kind);                          \
	Test(state_memory, name)                                                      \
	{                                                                             \
		name##_body(EV_STATE_MEMORY);                                         \
	}                                                                             \
	Test(state_leveldb, name)                                                     \
	{                                                                             \
		name##_body(EV_STATE_LEVELDB);                                        \
	}                                                                             \
	static void name##_body(ev_state_backend_kind kind)

/* ---- helpers ---- */

static char tmpdir[64]; /* per test: LevelDB directory and snapshot files */

static void mk_tmpdir(void)
{
	if (tmpdir[0] == '\0') {
		strcpy(tmpdir, "/tmp/eddy-state-XXXXXX");
		cr_assert_not_null(mkdtemp(tmpdir));
	}
}

static char *tmp_path(const char *name)
{
	static char buf[8][128];
	static int i;
	mk_tmpdir();
	char *p = buf[i++ % 8];
	snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, name);
	return p;
}

static void rm_tmpdir(void)
{
	if (tmpdir[0] != '\0') {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		cr_assert_eq(system(cmd), 0);
		tmpdir[0] = '\0';
	}
}

static ev_state_backend *backend_with(ev_state_backend_kind kind, size_t batch)
{
	ev_state_backend_opts o = { .kind = kind,
		                    .dir = kind == EV_STATE_LEVELDB ? tmp_path("db") : NULL,
		                    .block_cache_bytes = 1 << 20,
		                    .batch_bytes = batch };
	ev_state_backend *b = NULL;
	char err[256] = "";
	cr_assert_eq(ev_state_backend_create(&o, &b, err, sizeof(err)), EDDY_OK, "%s", err);
	return b;
}

static ev_state_backend *backend(ev_state_backend_kind kind)
{
	return backend_with(kind, 0);
}

static ev_state *open_range(ev_state_backend *b, const char *op, uint32_t first, uint32_t last)
{
	ev_state *st = NULL;
	cr_assert_eq(ev_state_open(b, op, 128, first, last, &st), EDDY_OK);
	return st;
}

static uint32_t kg_of(const void *k, size_t n)
{
	return ev_key_group_of_hash(XXH3_64bits(k, n), 128);
}

static void key(ev_state *st, const char *k)
{
	eddy_err e = ev_state_set_key(st, k, strlen(k), kg_of(k, strlen(k)));
	cr_assert_eq(e, EDDY_OK, "set_key %s: %s", k, ev_state_errmsg(st));
}

static void ns(ev_state *st, const char *n)
{
	cr_assert_eq(ev_state_set_namespace(st, n, strlen(n)), EDDY_OK);
}

static ev_state_id reg(ev_state *st, const char *name, ev_state_kind kind)
{
	ev_state_desc d = { .name = name, .kind = kind };
	ev_state_id id;
	cr_assert_eq(ev_state_register(st, &d, &id), EDDY_OK, "%s", ev_state_errmsg(st));
	return id;
}

static void put_str(ev_state *st, ev_state_id id, const char *v)
{
	cr_assert_eq(ev_value_put(st, id, v, strlen(v)), EDDY_OK, "%s", ev_state_errmsg(st));
}

/* expect_str: the value state holds v (NULL: none). */
static void expect_str(ev_state *st, ev_state_id id, const char *v)
{
	const void *p;
	size_t n;
	eddy_err e = ev_value_get(st, id, &p, &n);
	if (v == NULL) {
		cr_assert_eq(e, EDDY_ENOENT, "expected no value, got %d", e);
		return;
	}
	cr_assert_eq(e, EDDY_OK, "expected '%s': %s", v, ev_state_errmsg(st));
	cr_assert_eq(n, strlen(v), "expected '%s', got '%.*s'", v, (int)n, (const char *)p);
	cr_assert_eq(memcmp(p, v, n), 0, "expected '%s', got '%.*s'", v, (int)n,
	             (const char *)p);
}

static int64_t live_at_start;

static void finish(ev_state_backend *b)
{
	ev_state_backend_destroy(b);
	rm_tmpdir();
	cr_assert_eq(rt_alloc_live(), live_at_start, "leak: %ld blocks",
	             (long)(rt_alloc_live() - live_at_start));
}

static void start(void)
{
	live_at_start = rt_alloc_live();
}

/* u64 sum reduce / avg aggregate callbacks */
static eddy_err sum_reduce(void *ctx, const void *a, size_t alen, const void *b, size_t blen,
                           ev_state_out *out)
{
	(void)ctx;
	cr_assert_eq(alen, 8);
	cr_assert_eq(blen, 8);
	uint64_t x, y;
	memcpy(&x, a, 8);
	memcpy(&y, b, 8);
	x += y;
	return ev_state_out_set(out, &x, 8);
}

typedef struct avg_acc {
	double sum;
	int64_t n;
} avg_acc;

static int creates;

static eddy_err avg_create(void *ctx, ev_state_out *out)
{
	(void)ctx;
	creates++;
	avg_acc a = { 0, 0 };
	return ev_state_out_set(out, &a, sizeof(a));
}

static eddy_err avg_add(void *ctx, const void *acc, size_t acclen, const void *in, size_t inlen,
                        ev_state_out *out)
{
	(void)ctx;
	cr_assert_eq(acclen, sizeof(avg_acc));
	cr_assert_eq(inlen, sizeof(double));
	avg_acc a;
	double x;
	memcpy(&a, acc, sizeof(a));
	memcpy(&x, in, sizeof(x));
	a.sum += x;
	a.n++;
	avg_acc *o = ev_state_out_reserve(out, sizeof(a));
	if (o == NULL)
		return EDDY_ENOMEM;
	memcpy(o, &a, sizeof(a));
	return EDDY_OK;
}

static eddy_err avg_merge(void *ctx, const void *x, size_t xl, const void *y, size_t yl,
                          ev_state_out *out)
{
	(void)ctx;
	cr_assert_eq(xl, sizeof(avg_acc));
	cr_assert_eq(yl, sizeof(avg_acc));
	avg_acc a, b;
	memcpy(&a, x, sizeof(a));
	memcpy(&b, y, sizeof(b));
	a.sum += b.sum;
	a.n += b.n;
	return ev_state_out_set(out, &a, sizeof(a));
}

static eddy_err avg_result(void *ctx, const void *acc, size_t acclen, ev_state_out *out)
{
	(void)ctx;
	avg_acc a;
	cr_assert_eq(acclen, sizeof(a));
	memcpy(&a, acc, sizeof(a));
	double r = a.n ? a.sum / (double)a.n : 0;
	return ev_state_out_set(out, &r, sizeof(r));
}

static eddy_err failing_reduce(void *ctx, const void *a, size_t alen, const void *b,
                               size_t blen, ev_state_out *out)
{
	(void)ctx, (void)a, (void)alen, (void)b, (void)blen, (void)out;
	return EDDY_EFAILED;
}

static ev_state_id reg_sum(ev_state *st, const char *name)
{
	ev_state_desc d = { .name = name, .kind = EV_STATE_REDUCING, .reduce = sum_reduce };
	ev_state_id id;
	cr_assert_eq(ev_state_register(st, &d, &id), EDDY_OK);
	return id;
}

static ev_state_id reg_avg(ev_state *st, const char *name, bool with_merge)
{
	ev_state_desc d = { .name = name,
		            .kind = EV_STATE_AGGREGATING,
		            .create = avg_create,
		            .add = avg_add,
		            .merge = with_merge ? avg_merge : NULL,
		            .result = avg_result };
	ev_state_id id;
	cr_assert_eq(ev_state_register(st, &d, &id), EDDY_OK);
	return id;
}

static uint64_t get_u64(ev_state *st, ev_state_id id)
{
	const void *p;
	size_t n;
	cr_assert_eq(ev_reducing_get(st, id, &p, &n), EDDY_OK);
	cr_assert_eq(n, 8);
	uint64_t x;
	memcpy(&x, p, 8);
	return x;
}

static double get_avg(ev_state *st, ev_state_id id)
{
	const void *p;
	size_t n;
	cr_assert_eq(ev_agg_get(st, id, &p, &n), EDDY_OK, "%s", ev_state_errmsg(st));
	cr_assert_eq(n, sizeof(double));
	double x;
	memcpy(&x, p, 8);
	return x;
}

static void add_avg(ev_state *st, ev_state_id id, double x)
{
	cr_assert_eq(ev_agg_add(st, id, &x, sizeof(x)), EDDY_OK, "%s", ev_state_errmsg(st));
}

static void add_u64(ev_state *st, ev_state_id id, uint64_t x)
{
	cr_assert_eq(ev_reducing_add(st, id, &x, 8), EDDY_OK);
}

/* expect_list: the list holds the n strings of want. */
static void expect_list(ev_state *st, ev_state_id id, const char *const *want, size_t n)
{
	const ev_bytes *items;
	size_t got;
	cr_assert_eq(ev_list_get(st, id, &items, &got), EDDY_OK, "%s", ev_state_errmsg(st));
	cr_assert_eq(got, n, "list of %zu items, want %zu", got, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(items[i].len, strlen(want[i]), "item %zu", i);
		cr_assert_eq(memcmp(items[i].p, want[i], items[i].len), 0, "item %zu", i);
	}
}

static int cmp_entry(const void *a, const void *b)
{
	const ev_map_entry *x = a, *y = b;
	size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
	int c = memcmp(x->key.p, y->key.p, n);
	return c ? c : (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

/* map_dump renders a map as "k=v,k=v" sorted by key, in buf. */
static const char *map_dump(ev_state *st, ev_state_id id, char *buf, size_t cap)
{
	const ev_map_entry *e;
	size_t n;
	cr_assert_eq(ev_map_entries(st, id, &e, &n), EDDY_OK, "%s", ev_state_errmsg(st));
	ev_map_entry *copy = malloc((n + 1) * sizeof(*copy));
	memcpy(copy, e, n * sizeof(*copy));
	qsort(copy, n, sizeof(*copy), cmp_entry);
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%.*s=%.*s", i ? "," : "",
		                      (int)copy[i].key.len, (const char *)copy[i].key.p,
		                      (int)copy[i].value.len, (const char *)copy[i].value.p);
	free(copy);
	return buf;
}

static void map_put_str(ev_state *st, ev_state_id id, const char *k, const char *v)
{
	cr_assert_eq(ev_map_put(st, id, k, strlen(k), v, strlen(v)), EDDY_OK, "%s",
	             ev_state_errmsg(st));
}

/* ---- key groups ---- */

Test(state, key_group_ranges_match_subtask_assignment)
{
	uint32_t maxps[] = { 1, 7, 128, 1000, 32768 };
	for (size_t m = 0; m < sizeof(maxps) / sizeof(maxps[0]); m++) {
		uint32_t maxp = maxps[m];
		for (uint32_t par = 1; par <= maxp && par <= 9; par++) {
			uint32_t next = 0;
			for (uint32_t s = 0; s < par; s++) {
				uint32_t first, last;
				ev_key_group_range(maxp, par, s, &first, &last);
				cr_assert_eq(first, next, "maxp %u par %u subtask %u", maxp, par,
				             s);
				cr_assert_geq(last, first);
				for (uint32_t kg = first; kg <= last; kg += 1 + (last - first) / 50)
					cr_assert_eq(ev_key_group_subtask(kg, maxp, par), s);
				cr_assert_eq(ev_key_group_subtask(last, maxp, par), s);
				next = last + 1;
			}
			cr_assert_eq(next, maxp);
		}
	}
	/* Flink's numbers: 128 key groups on 3 subtasks */
	uint32_t f, l;
	ev_key_group_range(128, 3, 0, &f, &l);
	cr_assert(f == 0 && l == 42);
	ev_key_group_range(128, 3, 1, &f, &l);
	cr_assert(f == 43 && l == 85);
	ev_key_group_range(128, 3, 2, &f, &l);
	cr_assert(f == 86 && l == 127);
}

/* ---- the kinds of state ---- */

BOTH(value_state)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	ev_state_id a = reg(st, "a", EV_STATE_VALUE), c = reg(st, "c", EV_STATE_VALUE);
	cr_assert_eq(reg(st, "a", EV_STATE_VALUE), a, "registering again gives the same id");
	key(st, "k1");
	expect_str(st, a, NULL);
	put_str(st, a, "one");
	expect_str(st, a, "one");
	expect_str(st, c, NULL);
	put_str(st, a, "a much longer value than before, so it moves to a bigger slot");
	expect_str(st, a, "a much longer value than before, so it moves to a bigger slot");
	put_str(st, a, "x");
	expect_str(st, a, "x");
	/* a borrowed pointer may be written back */
	const void *p;
	size_t n;
	cr_assert_eq(ev_value_get(st, a, &p, &n), EDDY_OK);
	cr_assert_eq(ev_value_put(st, a, p, n), EDDY_OK);
	expect_str(st, a, "x");
	/* also once it is in the database (LevelDB) and under another key */
	ev_state_snapshot *s;
	cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK); /* flushes */
	ev_state_snapshot_release(s);
	cr_assert_eq(ev_value_get(st, a, &p, &n), EDDY_OK);
	cr_assert_eq(ev_value_put(st, a, p, n), EDDY_OK);
	expect_str(st, a, "x");
	cr_assert_eq(ev_value_get(st, a, &p, &n), EDDY_OK);
	key(st, "k3");
	cr_assert_eq(ev_value_put(st, a, p, n), EDDY_OK);
	expect_str(st, a, "x");
	cr_assert_eq(ev_state_clear(st, a), EDDY_OK);
	key(st, "k1");
	key(st, "k2");
	expect_str(st, a, NULL);
	put_str(st, a, "");
	expect_str(st, a, ""); /* empty, not absent */
	cr_assert_eq(ev_state_set_key(st, "", 0, kg_of("", 0)), EDDY_OK);
	put_str(st, a, "empty key");
	expect_str(st, a, "empty key");
	key(st, "k1");
	expect_str(st, a, "x");
	cr_assert_eq(ev_state_clear(st, a), EDDY_OK);
	expect_str(st, a, NULL);
	cr_assert_eq(ev_state_clear(st, a), EDDY_OK);
	key(st, "k2");
	expect_str(st, a, "");
	/* values bigger than the slab's largest class */
	size_t big = 300000;
	char *v = malloc(big);
	for (size_t i = 0; i < big; i++)
		v[i] = (char)(i * 7);
	cr_assert_eq(ev_value_put(st, c, v, big), EDDY_OK);
	cr_assert_eq(ev_value_get(st, c, &p, &n), EDDY_OK);
	cr_assert_eq(n, big);
	cr_assert_eq(memcmp(p, v, big), 0);
	cr_assert_eq(ev_value_put(st, c, v, 5000), EDDY_OK);
	cr_assert_eq(ev_value_get(st, c, &p, &n), EDDY_OK);
	cr_assert(n == 5000 && memcmp(p, v, 5000) == 0);
	free(v);
	cr_assert_gt(ev_state_size_bytes(st), 0);
	ev_state_close(st);
	finish(b);
}

BOTH(many_keys_put_overwrite_delete)
{
	start();
	ev_state_backend *b = backend_with(kind, 4096); /* LevelDB: many small batches */
	ev_state *st = open_range(b, "op", 0, 127);
	ev_state_id a = reg(st, "a", EV_STATE_VALUE);
	enum { N = 20000 };
	char k[32], v[64];
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "key-%d", i);
		snprintf(v, sizeof(v), "value-%d", i);
		key(st, k);
		put_str(st, a, v);
	}
	for (int i = 0; i < N; i += 2) {
		snprintf(k, sizeof(k), "key-%d", i);
		snprintf(v, sizeof(v), "second value of key %d", i);
		key(st, k);
		put_str(st, a, v);
	}
	for (int i = 0; i < N; i += 3) {
		snprintf(k, sizeof(k), "key-%d", i);
		key(st, k);
		cr_assert_eq(ev_state_clear(st, a), EDDY_OK);
	}
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "key-%d", i);
		key(st, k);
		if (i % 3 == 0) {
			expect_str(st, a, NULL);
			continue;
		}
		if (i % 2 == 0)
			snprintf(v, sizeof(v), "second value of key %d", i);
		else
			snprintf(v, sizeof(v), "value-%d", i);
		expect_str(st, a, v);
	}
	ev_state_close(st);
	finish(b);
}

BOTH(list_state)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	ev_state_id l = reg(st, "l", EV_STATE_LIST);
	key(st, "k");
	expect_list(st, l, NULL, 0);
	cr_assert_eq(ev_list_add(st, l, "a", 1), EDDY_OK);
	cr_assert_eq(ev_list_add(st, l, "", 0), EDDY_OK);
	ev_bytes more[] = { { "bb", 2 }, { "ccc", 3 } };
	cr_assert_eq(ev_list_add_all(st, l, more, 2), EDDY_OK);
	const char *w1[] = { "a", "", "bb", "ccc" };
	expect_list(st, l, w1, 4);
	key(st, "other");
	expect_list(st, l, NULL, 0);
	key(st, "k");
	ev_bytes upd[] = { { "x", 1 }, { "y", 1 } };
	cr_assert_eq(ev_list_update(st, l, upd, 2), EDDY_OK);
	const char *w2[] = { "x", "y" };
	expect_list(st, l, w2, 2);
	cr_assert_eq(ev_list_update(st, l, NULL, 0), EDDY_OK);
	expect_list(st, l, NULL, 0);
	/* a long list, appended one by one */
	char buf[32];
	for (int i = 0; i < 2000; i++) {
		int n = snprintf(buf, sizeof(buf), "item %d", i);
		cr_assert_eq(ev_list_add(st, l, buf, (size_t)n), EDDY_OK);
	}
	const ev_bytes *items;
	size_t n;
	cr_assert_eq(ev_list_get(st, l, &items, &n), EDDY_OK);
	cr_assert_eq(n, 2000);
	for (int i = 0; i < 2000; i++) {
		int m = snprintf(buf, sizeof(buf), "item %d", i);
		cr_assert(items[i].len == (size_t)m && memcmp(items[i].p, buf, (size_t)m) == 0);
	}
	cr_assert_eq(ev_state_clear(st, l), EDDY_OK);
	expect_list(st, l, NULL, 0);
	ev_state_close(st);
	finish(b);
}

BOTH(map_state)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	ev_state_id m = reg(st, "m", EV_STATE_MAP), v = reg(st, "v", EV_STATE_VALUE);
	char buf[4096];
	key(st, "k");
	cr_assert_str_eq(map_dump(st, m, buf, sizeof(buf)), "");
	map_put_str(st, m, "b", "2");
	map_put_str(st, m, "a", "1");
	map_put_str(st, m, "", "empty");
	put_str(st, v, "value beside the map");
	cr_assert_str_eq(map_dump(st, m, buf, sizeof(buf)), "=empty,a=1,b=2");
	const void *p;
	size_t n;
	bool found;
	cr_assert_eq(ev_map_get(st, m, "a", 1, &p, &n), EDDY_OK);
	cr_assert(n == 1 && memcmp(p, "1", 1) == 0);
	cr_assert_eq(ev_map_get(st, m, "zz", 2, &p, &n), EDDY_ENOENT);
	cr_assert_eq(ev_map_contains(st, m, "b", 1, &found), EDDY_OK);
	cr_assert(found);
	cr_assert_eq(ev_map_contains(st, m, "c", 1, &found), EDDY_OK);
	cr_assert_not(found);
	map_put_str(st, m, "a", "one");
	cr_assert_eq(ev_map_remove(st, m, "b", 1), EDDY_OK);
	cr_assert_eq(ev_map_remove(st, m, "nope", 4), EDDY_OK);
	cr_assert_str_eq(map_dump(st, m, buf, sizeof(buf)), "=empty,a=one");
	key(st, "k2");
	cr_assert_str_eq(map_dump(st, m, buf, sizeof(buf)), "");
	for (int i = 0; i < 500; i++) {
		char kk[16], vv[16];
		snprintf(kk, sizeof(kk), "%03d", i);
		snprintf(vv, sizeof(vv), "v%d", i);
		map_put_str(st, m, kk, vv);
	}
	const ev_map_entry *e;
	cr_assert_eq(ev_map_entries(st, m, &e, &n), EDDY_OK);
	cr_assert_eq(n, 500);
	for (int i = 0; i < 500; i += 2) {
		char kk[16];
		snprintf(kk, sizeof(kk), "%03d", i);
		cr_assert_eq(ev_map_remove(st, m, kk, 3), EDDY_OK);
	}
	cr_assert_eq(ev_map_entries(st, m, &e, &n), EDDY_OK);
	cr_assert_eq(n, 250);
	cr_assert_eq(ev_state_clear(st, m), EDDY_OK);
	cr_assert_eq(ev_map_entries(st, m, &e, &n), EDDY_OK);
	cr_assert_eq(n, 0);
	key(st, "k");
	cr_assert_str_eq(map_dump(st, m, buf, sizeof(buf)), "=empty,a=one");
	expect_str(st, v, "value beside the map");
	/* removing the last entry leaves an empty map */
	cr_assert_eq(ev_map_remove(st, m, "a", 1), EDDY_OK);
	cr_assert_eq(ev_map_remove(st, m, "", 0), EDDY_OK);
	cr_assert_str_eq(map_dump(st, m, buf, sizeof(buf)), "");
	expect_str(st, v, "value beside the map");
	ev_state_close(st);
	finish(b);
}

BOTH(reducing_and_aggregating_state)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	ev_state_id r = reg_sum(st, "sum"), g = reg_avg(st, "avg", true);
	key(st, "k");
	const void *p;
	size_t n;
	cr_assert_eq(ev_reducing_get(st, r, &p, &n), EDDY_ENOENT);
	cr_assert_eq(ev_agg_get(st, g, &p, &n), EDDY_ENOENT);
	for (uint64_t i = 1; i <= 100; i++)
		add_u64(st, r, i);
	cr_assert_eq(get_u64(st, r), 5050);
	creates = 0;
	add_avg(st, g, 1.0);
	add_avg(st, g, 2.0);
	add_avg(st, g, 6.0);
	cr_assert_eq(creates, 1);
	cr_assert_float_eq(get_avg(st, g), 3.0, 1e-12);
	key(st, "k2");
	add_u64(st, r, 7);
	cr_assert_eq(get_u64(st, r), 7);
	cr_assert_eq(ev_agg_get(st, g, &p, &n), EDDY_ENOENT);
	/* a failing callback changes nothing */
	ev_state_desc d = { .name = "bad", .kind = EV_STATE_REDUCING, .reduce = failing_reduce };
	ev_state_id bad;
	cr_assert_eq(ev_state_register(st, &d, &bad), EDDY_OK);
	add_u64(st, bad, 1);
	uint64_t two = 2;
	cr_assert_eq(ev_reducing_add(st, bad, &two, 8), EDDY_EFAILED);
	cr_assert(strstr(ev_state_errmsg(st), "reduce") != NULL);
	cr_assert_eq(get_u64(st, bad), 1);
	cr_assert_eq(ev_state_clear(st, r), EDDY_OK);
	cr_assert_eq(ev_reducing_get(st, r, &p, &n), EDDY_ENOENT);
	key(st, "k");
	cr_assert_eq(get_u64(st, r), 5050);
	ev_state_close(st);
	finish(b);
}

BOTH(namespaces_and_merging)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	ev_state_id v = reg(st, "v", EV_STATE_VALUE), l = reg(st, "l", EV_STATE_LIST),
		    r = reg_sum(st, "r"), g = reg_avg(st, "g", true), g2 = reg_avg(st, "g2", false),
		    m = reg(st, "m", EV_STATE_MAP);
	key(st, "k");
	put_str(st, v, "default");
	ns(st, "w1");
	expect_str(st, v, NULL);
	put_str(st, v, "in w1");
	key(st, "k"); /* setting the key keeps the namespace */
	expect_str(st, v, "in w1");
	ns(st, "");
	expect_str(st, v, "default");
	/* session windows: w1, w2, w3 merge into w1 */
	const char *wins[] = { "w1", "w2", "w3" };
	for (int w = 0; w < 3; w++) {
		ns(st, wins[w]);
		char item[8];
		snprintf(item, sizeof(item), "i%d", w);
		cr_assert_eq(ev_list_add(st, l, item, strlen(item)), EDDY_OK);
		add_u64(st, r, (uint64_t)(w + 1) * 10);
		add_avg(st, g, (double)w);
		add_avg(st, g2, (double)w);
	}
	ns(st, "elsewhere");
	ev_bytes src[] = { { "w2", 2 }, { "w3", 2 }, { "w1", 2 }, { "empty", 5 } };
	cr_assert_eq(ev_state_merge_namespaces(st, l, "w1", 2, src, 4), EDDY_OK);
	cr_assert_eq(ev_state_merge_namespaces(st, r, "w1", 2, src, 4), EDDY_OK);
	cr_assert_eq(ev_state_merge_namespaces(st, g, "w1", 2, src, 4), EDDY_OK);
	cr_assert_eq(ev_state_merge_namespaces(st, v, "w1", 2, src, 4), EDDY_EINVAL);
	cr_assert_eq(ev_state_merge_namespaces(st, m, "w1", 2, src, 4), EDDY_EINVAL);
	cr_assert_eq(ev_state_merge_namespaces(st, g2, "w1", 2, src, 4), EDDY_EINVAL);
	/* the current namespace is unchanged */
	cr_assert_eq(ev_list_add(st, l, "x", 1), EDDY_OK);
	const char *wx[] = { "x" };
	expect_list(st, l, wx, 1);
	ns(st, "w1");
	const char *w[] = { "i0", "i1", "i2" };
	expect_list(st, l, w, 3);
	cr_assert_eq(get_u64(st, r), 60);
	cr_assert_float_eq(get_avg(st, g), 1.0, 1e-12);
	ns(st, "w2");
	expect_list(st, l, NULL, 0);
	const void *p;
	size_t n;
	cr_assert_eq(ev_reducing_get(st, r, &p, &n), EDDY_ENOENT);
	cr_assert_eq(ev_agg_get(st, g, &p, &n), EDDY_ENOENT);
	/* merging into an empty target */
	ns(st, "a");
	add_u64(st, r, 5);
	ev_bytes one[] = { { "a", 1 } };
	cr_assert_eq(ev_state_merge_namespaces(st, r, "fresh", 5, one, 1), EDDY_OK);
	ns(st, "fresh");
	cr_assert_eq(get_u64(st, r), 5);
	ev_state_close(st);
	finish(b);
}

BOTH(timers_fire_in_time_order)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	ev_timer t;
	cr_assert_eq(ev_timer_pop(st, EV_TIME_EVENT, INT64_MAX, &t), EDDY_ENOENT);
	key(st, "b");
	ns(st, "w");
	cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 30), EDDY_OK);
	cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 10), EDDY_OK);
	cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 10), EDDY_OK); /* once */
	cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, -5), EDDY_OK);
	cr_assert_eq(ev_timer_register(st, EV_TIME_PROCESSING, 1), EDDY_OK);
	key(st, "a");
	ns(st, "");
	cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 20), EDDY_OK);
	cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 40), EDDY_OK);
	cr_assert_eq(ev_timer_delete(st, EV_TIME_EVENT, 40), EDDY_OK);
	cr_assert_eq(ev_timer_delete(st, EV_TIME_EVENT, 41), EDDY_OK);
	cr_assert_eq(ev_timer_count(st, EV_TIME_EVENT), 4);
	cr_assert_eq(ev_timer_count(st, EV_TIME_PROCESSING), 1);
	int64_t next;
	cr_assert_eq(ev_timer_next(st, EV_TIME_EVENT, &next), EDDY_OK);
	cr_assert_eq(next, -5);
	/* pop up to 20: -5 (b), 10 (b), 20 (a); each makes its key and namespace current */
	ev_state_id v = reg(st, "v", EV_STATE_VALUE);
	const struct {
		int64_t t;
		const char *k, *ns;
	} want[] = { { -5, "b", "w" }, { 10, "b", "w" }, { 20, "a", "" } };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ev_timer_pop(st, EV_TIME_EVENT, 20, &t), EDDY_OK);
		cr_assert_eq(t.time, want[i].t);
		cr_assert_eq(t.domain, EV_TIME_EVENT);
		cr_assert(t.key.len == strlen(want[i].k) &&
		          memcmp(t.key.p, want[i].k, t.key.len) == 0);
		cr_assert(t.ns.len == strlen(want[i].ns) &&
		          memcmp(t.ns.p, want[i].ns, t.ns.len) == 0);
		cr_assert_eq(t.key_group, kg_of(want[i].k, strlen(want[i].k)));
		put_str(st, v, want[i].k); /* state of the timer's key and namespace */
		if (i == 0) /* a timer set while firing fires too if due */
			cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 15), EDDY_OK);
		if (i == 1) {
			cr_assert_eq(ev_timer_pop(st, EV_TIME_EVENT, 20, &t), EDDY_OK);
			cr_assert_eq(t.time, 15);
		}
	}
	cr_assert_eq(ev_timer_pop(st, EV_TIME_EVENT, 20, &t), EDDY_ENOENT);
	key(st, "b");
	ns(st, "w");
	expect_str(st, v, "b");
	cr_assert_eq(ev_timer_pop(st, EV_TIME_PROCESSING, 0, &t), EDDY_ENOENT);
	cr_assert_eq(ev_timer_pop(st, EV_TIME_PROCESSING, 1, &t), EDDY_OK);
	cr_assert_eq(t.domain, EV_TIME_PROCESSING);
	/* ties: by key group, then key, then namespace */
	for (int i = 0; i < 200; i++) {
		char k[16];
		snprintf(k, sizeof(k), "t%d", i);
		key(st, k);
		ns(st, i % 2 ? "n1" : "n0");
		cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 100), EDDY_OK);
		ns(st, "n2");
		cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 100 + i % 3), EDDY_OK);
	}
	int64_t last_t = INT64_MIN;
	uint32_t last_kg = 0;
	int popped = 0;
	while (ev_timer_pop(st, EV_TIME_EVENT, 1000, &t) == EDDY_OK) {
		cr_assert_geq(t.time, last_t);
		if (t.time == last_t)
			cr_assert_geq(t.key_group, last_kg);
		last_t = t.time;
		last_kg = t.key_group;
		popped++;
	}
	cr_assert_eq(popped, 1 + 400); /* 30 (b) and the 400 */
	cr_assert_eq(ev_timer_count(st, EV_TIME_EVENT), 0);
	ev_state_close(st);
	finish(b);
}

BOTH(errors_are_reported)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 10, 20), *other;
	cr_assert_eq(ev_state_open(b, "op", 128, 20, 30, &other), EDDY_EEXIST);
	cr_assert_eq(ev_state_open(b, "op", 128, 21, 30, &other), EDDY_OK);
	cr_assert_eq(ev_state_open(b, "op", 128, 30, 21, &other), EDDY_EINVAL);
	cr_assert_eq(ev_state_open(b, "op", 128, 0, 128, &other), EDDY_EINVAL);
	cr_assert_eq(ev_state_open(b, "", 128, 0, 1, &other), EDDY_EINVAL);
	ev_state_id v = reg(st, "v", EV_STATE_VALUE);
	const void *p;
	size_t n;
	cr_assert_eq(ev_value_get(st, v, &p, &n), EDDY_EINVAL); /* no key yet */
	cr_assert(strstr(ev_state_errmsg(st), "no current key") != NULL);
	cr_assert_eq(ev_state_set_key(st, "k", 1, 9), EDDY_EINVAL);
	cr_assert(strstr(ev_state_errmsg(st), "outside") != NULL);
	cr_assert_eq(ev_state_set_key(st, "k", 1, 15), EDDY_OK);
	cr_assert_eq(ev_list_add(st, v, "x", 1), EDDY_EINVAL); /* wrong kind */
	cr_assert(strstr(ev_state_errmsg(st), "value state") != NULL);
	cr_assert_eq(ev_value_get(st, 99, &p, &n), EDDY_EINVAL);
	ev_state_desc d = { .name = "v", .kind = EV_STATE_LIST };
	ev_state_id id;
	cr_assert_eq(ev_state_register(st, &d, &id), EDDY_EINVAL);
	d = (ev_state_desc){ .name = "r", .kind = EV_STATE_REDUCING };
	cr_assert_eq(ev_state_register(st, &d, &id), EDDY_EINVAL); /* no reduce */
	d = (ev_state_desc){ .name = "", .kind = EV_STATE_VALUE };
	cr_assert_eq(ev_state_register(st, &d, &id), EDDY_EINVAL);
	d = (ev_state_desc){ .name = "x", .kind = 42 };
	cr_assert_eq(ev_state_register(st, &d, &id), EDDY_EINVAL);
	char *huge = calloc(1, EV_STATE_MAX_KEY + 1);
	cr_assert_eq(ev_state_set_key(st, huge, EV_STATE_MAX_KEY + 1, 15), EDDY_EINVAL);
	cr_assert_eq(ev_state_set_namespace(st, huge, EV_STATE_MAX_KEY + 1), EDDY_EINVAL);
	cr_assert_eq(ev_state_set_key(st, huge, EV_STATE_MAX_KEY, 15), EDDY_OK);
	put_str(st, v, "longest key");
	expect_str(st, v, "longest key");
	free(huge);
	cr_assert_eq(ev_timer_register(st, 7, 1), EDDY_EINVAL);
	ev_state_close(other);
	ev_state_close(st);
	/* the key groups are free again; the state starts empty */
	st = open_range(b, "op", 10, 20);
	v = reg(st, "v", EV_STATE_VALUE);
	cr_assert_eq(ev_state_set_key(st, "k", 1, 15), EDDY_OK);
	expect_str(st, v, NULL);
	ev_state_close(st);
	finish(b);
}

/* ---- snapshots ---- */

/* A model of N keys: value "v<i>.<gen>", a list, a map entry, a sum and a timer. */
enum { NK = 3000 };

static void fill(ev_state *st, int gen, int from, int to)
{
	ev_state_id v = reg(st, "v", EV_STATE_VALUE), l = reg(st, "l", EV_STATE_LIST),
		    m = reg(st, "m", EV_STATE_MAP), r = reg_sum(st, "r");
	char k[32], val[32];
	for (int i = from; i < to; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		uint32_t kg = kg_of(k, strlen(k));
		uint32_t maxp, first, last;
		ev_state_key_groups(st, &maxp, &first, &last);
		if (kg < first || kg > last)
			continue;
		key(st, k);
		ns(st, i % 2 ? "odd" : "");
		snprintf(val, sizeof(val), "v%d.%d", i, gen);
		put_str(st, v, val);
		cr_assert_eq(ev_list_add(st, l, val, strlen(val)), EDDY_OK);
		map_put_str(st, m, k, val);
		add_u64(st, r, (uint64_t)i);
		cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 1000 + i), EDDY_OK);
	}
}

/* check verifies the state of keys [from, to) as fill(gen) left it (gen < 0: absent),
 * for the keys of st's key groups. Returns how many keys it checked. */
static int check_keys(ev_state *st, int gen, int from, int to)
{
	ev_state_id v = reg(st, "v", EV_STATE_VALUE), l = reg(st, "l", EV_STATE_LIST),
		    m = reg(st, "m", EV_STATE_MAP), r = reg_sum(st, "r");
	char k[32], val[32], buf[256];
	int checked = 0;
	for (int i = from; i < to; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		uint32_t kg = kg_of(k, strlen(k)), maxp, first, last;
		ev_state_key_groups(st, &maxp, &first, &last);
		if (kg < first || kg > last)
			continue;
		checked++;
		key(st, k);
		ns(st, i % 2 ? "odd" : "");
		if (gen < 0) {
			expect_str(st, v, NULL);
			continue;
		}
		snprintf(val, sizeof(val), "v%d.%d", i, gen);
		expect_str(st, v, val);
		const char *items[] = { val };
		expect_list(st, l, items, 1);
		char want[80];
		snprintf(want, sizeof(want), "%s=%s", k, val);
		cr_assert_str_eq(map_dump(st, m, buf, sizeof(buf)), want);
		cr_assert_eq(get_u64(st, r), (uint64_t)i);
	}
	return checked;
}

/* timer_keys pops every event timer and checks each is key<i>'s (time 1000 + i);
 * marks seen[i]. Returns the count. */
static int timer_keys(ev_state *st, bool *seen)
{
	ev_timer t;
	int n = 0;
	int64_t prev = INT64_MIN;
	while (ev_timer_pop(st, EV_TIME_EVENT, INT64_MAX, &t) == EDDY_OK) {
		cr_assert_geq(t.time, prev);
		prev = t.time;
		int i = (int)(t.time - 1000);
		char k[32];
		snprintf(k, sizeof(k), "key%d", i);
		cr_assert(t.key.len == strlen(k) && memcmp(t.key.p, k, t.key.len) == 0);
		cr_assert(t.ns.len == (i % 2 ? 3u : 0u));
		cr_assert_not(seen[i], "timer of key%d twice", i);
		seen[i] = true;
		n++;
	}
	return n;
}

static void mutate(ev_state *st)
{
	/* overwrite the first half, delete the second half, add new keys */
	ev_state_id v = reg(st, "v", EV_STATE_VALUE), l = reg(st, "l", EV_STATE_LIST),
		    m = reg(st, "m", EV_STATE_MAP), r = reg_sum(st, "r");
	char k[32], val[32];
	for (int i = 0; i < NK / 2; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		key(st, k);
		ns(st, i % 2 ? "odd" : "");
		snprintf(val, sizeof(val), "v%d.2", i);
		put_str(st, v, val);
		ev_bytes item = { val, strlen(val) };
		cr_assert_eq(ev_list_update(st, l, &item, 1), EDDY_OK);
		map_put_str(st, m, k, val);
		cr_assert_eq(ev_state_clear(st, r), EDDY_OK);
		add_u64(st, r, (uint64_t)i);
		cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 1000 + i), EDDY_OK);
	}
	for (int i = NK / 2; i < NK; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		key(st, k);
		ns(st, i % 2 ? "odd" : "");
		cr_assert_eq(ev_state_clear(st, v), EDDY_OK);
		cr_assert_eq(ev_state_clear(st, l), EDDY_OK);
		cr_assert_eq(ev_map_remove(st, m, k, strlen(k)), EDDY_OK);
		cr_assert_eq(ev_state_clear(st, r), EDDY_OK);
		cr_assert_eq(ev_timer_delete(st, EV_TIME_EVENT, 1000 + i), EDDY_OK);
	}
	fill(st, 3, NK, NK + 500);
}

typedef struct writer_arg {
	ev_state_snapshot *s;
	const char *path;
	eddy_err err;
	uint64_t bytes;
} writer_arg;

static void *writer(void *p)
{
	writer_arg *a = p;
	a->err = ev_state_snapshot_write(a->s, a->path, &a->bytes);
	return NULL;
}

static void restore_and_check_gen1(ev_state_backend_kind kind, const char *path)
{
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	const char *paths[] = { path };
	cr_assert_eq(ev_state_restore(st, paths, 1), EDDY_OK, "%s", ev_state_errmsg(st));
	cr_assert_eq(check_keys(st, 1, 0, NK), NK);
	cr_assert_eq(check_keys(st, -1, NK, NK + 500), 500);
	bool *seen = calloc(NK + 500, 1);
	cr_assert_eq(timer_keys(st, seen), NK);
	free(seen);
	ev_state_close(st);
	ev_state_backend_destroy(b);
}

BOTH(snapshot_is_the_state_at_begin_while_the_task_mutates)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	fill(st, 1, 0, NK);
	ev_state_snapshot *s;
	cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
	/* write on another thread while this one changes everything */
	writer_arg wa = { s, tmp_path("snap1"), EDDY_OK, 0 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, writer, &wa), 0);
	mutate(st);
	pthread_join(th, NULL);
	cr_assert_eq(wa.err, EDDY_OK, "%s", ev_state_snapshot_errmsg(s));
	cr_assert_gt(wa.bytes, 0);
	struct stat sb;
	cr_assert_eq(stat(wa.path, &sb), 0);
	cr_assert_eq((uint64_t)sb.st_size, wa.bytes);
	/* the snapshot can be written again, also after the mutations */
	cr_assert_eq(ev_state_snapshot_write(s, tmp_path("snap1b"), NULL), EDDY_OK);
	ev_state_snapshot_release(s);
	/* the live state has the mutations */
	cr_assert_eq(check_keys(st, 2, 0, NK / 2), NK / 2);
	cr_assert_eq(check_keys(st, -1, NK / 2, NK), NK / 2);
	cr_assert_eq(check_keys(st, 3, NK, NK + 500), 500);
	ev_state_close(st);
	ev_state_backend_destroy(b);
	/* the files hold the state at begin, for either backend */
	restore_and_check_gen1(EV_STATE_MEMORY, tmp_path("snap1"));
	restore_and_check_gen1(EV_STATE_LEVELDB, tmp_path("snap1"));
	restore_and_check_gen1(kind, tmp_path("snap1b"));
	rm_tmpdir();
	cr_assert_eq(rt_alloc_live(), live_at_start);
}

BOTH(overlapping_snapshots_and_snapshot_after_close)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	fill(st, 1, 0, NK);
	ev_state_snapshot *s1, *s2;
	cr_assert_eq(ev_state_snapshot_begin(st, &s1), EDDY_OK);
	fill(st, 2, 0, NK);
	cr_assert_eq(ev_state_snapshot_begin(st, &s2), EDDY_OK);
	fill(st, 4, 0, NK);
	/* s2 is written first, s1 after the handle is gone */
	cr_assert_eq(ev_state_snapshot_write(s2, tmp_path("s2"), NULL), EDDY_OK);
	ev_state_snapshot_release(s2);
	fill(st, 5, 0, NK);
	ev_state_close(st);
	cr_assert_eq(ev_state_snapshot_write(s1, tmp_path("s1"), NULL), EDDY_OK);
	ev_state_snapshot_release(s1);
	const char *p1[] = { tmp_path("s1") }, *p2[] = { tmp_path("s2") };
	st = open_range(b, "op", 0, 127);
	cr_assert_eq(ev_state_restore(st, p1, 1), EDDY_OK, "%s", ev_state_errmsg(st));
	cr_assert_eq(check_keys(st, 1, 0, NK), NK);
	cr_assert_eq(ev_state_restore(st, p1, 1), EDDY_EBUSY); /* it holds state now */
	ev_state_close(st);
	st = open_range(b, "op", 0, 127);
	cr_assert_eq(ev_state_restore(st, p2, 1), EDDY_OK, "%s", ev_state_errmsg(st));
	ev_state_id v = reg(st, "v", EV_STATE_VALUE);
	(void)v;
	/* list and sum accumulated over gens 1 and 2 in s2: check the value only */
	char k[16], want[32];
	for (int i = 0; i < NK; i += 7) {
		snprintf(k, sizeof(k), "key%d", i);
		key(st, k);
		ns(st, i % 2 ? "odd" : "");
		snprintf(want, sizeof(want), "v%d.2", i);
		expect_str(st, v, want);
	}
	ev_state_close(st);
	/* an empty handle snapshots to a file that restores to nothing */
	st = open_range(b, "empty", 0, 127);
	ev_state_snapshot *s;
	cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_write(s, tmp_path("empty"), NULL), EDDY_OK);
	ev_state_snapshot_release(s);
	ev_state_close(st);
	st = open_range(b, "empty", 0, 127);
	const char *pe[] = { tmp_path("empty") };
	cr_assert_eq(ev_state_restore(st, pe, 1), EDDY_OK, "%s", ev_state_errmsg(st));
	cr_assert_eq(ev_timer_count(st, EV_TIME_EVENT), 0);
	ev_state_close(st);
	finish(b);
}

/* rescale writes the state of NK keys from `from` subtasks, then restores it into `to`
 * subtasks (restoring backend rkind): each gets exactly the keys of its key groups. */
static void rescale(ev_state_backend_kind kind, ev_state_backend_kind rkind, uint32_t from,
                    uint32_t to)
{
	ev_state_backend *b = backend(kind);
	char names[8][32];
	const char *paths[8];
	for (uint32_t s = 0; s < from; s++) {
		uint32_t first, last;
		ev_key_group_range(128, from, s, &first, &last);
		ev_state *st = open_range(b, "win", first, last);
		fill(st, 1, 0, NK);
		ev_state_snapshot *snap;
		cr_assert_eq(ev_state_snapshot_begin(st, &snap), EDDY_OK);
		snprintf(names[s], sizeof(names[s]), "p%u-%u-%u", from, s, (unsigned)kind);
		paths[s] = strcpy(names[s], tmp_path(names[s]));
		cr_assert_eq(ev_state_snapshot_write(snap, paths[s], NULL), EDDY_OK);
		ev_state_snapshot_release(snap);
		ev_state_close(st);
	}
	ev_state_backend_destroy(b);
	b = backend(rkind);
	bool *seen = calloc(NK, 1);
	int total = 0;
	for (uint32_t s = 0; s < to; s++) {
		uint32_t first, last;
		ev_key_group_range(128, to, s, &first, &last);
		ev_state *st = open_range(b, "win", first, last);
		cr_assert_eq(ev_state_restore(st, paths, from), EDDY_OK, "%s",
		             ev_state_errmsg(st));
		int n = check_keys(st, 1, 0, NK);
		bool *mine = calloc(NK, 1);
		cr_assert_eq(timer_keys(st, mine), n, "subtask %u of %u: %d keys", s, to, n);
		for (int i = 0; i < NK; i++) {
			if (!mine[i])
				continue;
			char k[16];
			snprintf(k, sizeof(k), "key%d", i);
			uint32_t kg = kg_of(k, strlen(k));
			cr_assert(kg >= first && kg <= last,
			          "key%d (group %u) restored into [%u, %u]", i, kg, first, last);
			cr_assert_not(seen[i]);
			seen[i] = true;
		}
		free(mine);
		total += n;
		ev_state_close(st);
	}
	cr_assert_eq(total, NK, "every key restored exactly once");
	free(seen);
	ev_state_backend_destroy(b);
}

BOTH(restore_rescales_by_key_group)
{
	start();
	rescale(kind, kind, 2, 1);
	rescale(kind, kind, 2, 2);
	rescale(kind, kind, 2, 3);
	rescale(kind, kind, 3, 2);
	rescale(kind, kind == EV_STATE_MEMORY ? EV_STATE_LEVELDB : EV_STATE_MEMORY, 1, 3);
	rm_tmpdir();
	cr_assert_eq(rt_alloc_live(), live_at_start);
}

/* ---- bad snapshot files ---- */

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

static uint8_t *read_all(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc(*n + 1);
	cr_assert_eq(fread(p, 1, *n, f), *n);
	fclose(f);
	return p;
}

/* refused: restoring from path fails with err, a message naming the file and containing
 * what, and leaves the handle empty and restorable. */
static void refused(ev_state_backend *b, const char *path, eddy_err err, const char *what,
                    const char *good)
{
	ev_state *st = open_range(b, "op", 0, 127);
	const char *paths[] = { path };
	eddy_err e = ev_state_restore(st, paths, 1);
	cr_assert_eq(e, err, "%s: got %d (%s), want %d", path, e, ev_state_errmsg(st), err);
	cr_assert(strstr(ev_state_errmsg(st), path) != NULL, "message '%s' names no file",
	          ev_state_errmsg(st));
	if (what != NULL)
		cr_assert(strstr(ev_state_errmsg(st), what) != NULL, "message '%s' lacks '%s'",
		          ev_state_errmsg(st), what);
	cr_assert_eq(check_keys(st, -1, 0, 50), 50, "nothing restored");
	cr_assert_eq(ev_timer_count(st, EV_TIME_EVENT), 0);
	const char *gp[] = { good };
	cr_assert_eq(ev_state_restore(st, gp, 1), EDDY_OK, "%s", ev_state_errmsg(st));
	cr_assert_eq(check_keys(st, 1, 0, 50), 50);
	ev_state_close(st);
}

/* footer_fix recomputes the checksum in the footer of a file image as eddy writes them
 * (version 2: XXH3-64, 27 bytes), after a deliberate edit. */
static void footer_fix(uint8_t *p, size_t n)
{
	uint64_t sum = XXH3_64bits(p, n - 27);
	for (int i = 0; i < 8; i++)
		p[n - 27 + 2 + i] = (uint8_t)(sum >> (56 - 8 * i));
}

BOTH(corrupted_and_truncated_files_are_refused)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	fill(st, 1, 0, 200);
	ev_state_snapshot *s;
	cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
	char good[128];
	strcpy(good, tmp_path("good"));
	cr_assert_eq(ev_state_snapshot_write(s, good, NULL), EDDY_OK);
	ev_state_snapshot_release(s);
	ev_state_close(st);
	size_t n;
	uint8_t *img = read_all(good, &n);
	const char *bad = tmp_path("bad");
	/* truncated: at many lengths, down to empty */
	size_t cuts[] = {n - 1, n - 26, n - 27, n - 28, n - 23, n / 2, 100, 28, 27, 24, 23, 1, 0};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		write_bytes(bad, img, cuts[i]);
		refused(b, bad, EDDY_EINVAL, NULL, good);
	}
	write_bytes(bad, img, n - 27);
	refused(b, bad, EDDY_EINVAL, "no footer", good);
	write_bytes(bad, img, 0);
	refused(b, bad, EDDY_EINVAL, "empty", good);
	/* a flipped bit anywhere */
	for (size_t i = 0; i < 40; i++) {
		size_t at = i * (n - 1) / 39;
		img[at] ^= 0x10;
		write_bytes(bad, img, n);
		refused(b, bad, EDDY_EINVAL, NULL, good);
		img[at] ^= 0x10;
	}
	img[n / 2] ^= 1;
	write_bytes(bad, img, n);
	refused(b, bad, EDDY_EINVAL, "checksum", good);
	img[n / 2] ^= 1;
	/* a flipped bit in a section with the file's checksum fixed: the section's CRC */
	img[n / 2] ^= 1;
	footer_fix(img, n);
	write_bytes(bad, img, n);
	refused(b, bad, EDDY_EINVAL, "checksum mismatch", good);
	img[n / 2] ^= 1;
	footer_fix(img, n);
	/* garbage after the end */
	uint8_t *longer = malloc(n + 10);
	memcpy(longer, img, n);
	memset(longer + n, 0xab, 10);
	write_bytes(bad, longer, n + 10);
	refused(b, bad, EDDY_EINVAL, NULL, good);
	free(longer);
	/* unreadable: missing, a directory */
	refused(b, tmp_path("missing"), EDDY_EIO, "No such file", good);
	refused(b, tmpdir, EDDY_EINVAL, "regular file", good);
	/* not a snapshot at all */
	write_bytes(bad, "hello, this is not a snapshot file at all....", 45);
	refused(b, bad, EDDY_EINVAL, NULL, good);
	/* the same key groups twice */
	st = open_range(b, "op", 0, 127);
	const char *twice[] = { good, good };
	cr_assert_eq(ev_state_restore(st, twice, 2), EDDY_EINVAL);
	cr_assert(strstr(ev_state_errmsg(st), "also in") != NULL, "%s", ev_state_errmsg(st));
	ev_state_close(st);
	/* another operator's or another max_parallelism's file */
	st = open_range(b, "other", 0, 127);
	const char *gp[] = { good };
	cr_assert_eq(ev_state_restore(st, gp, 1), EDDY_EINVAL);
	cr_assert(strstr(ev_state_errmsg(st), "operator") != NULL, "%s", ev_state_errmsg(st));
	ev_state_close(st);
	cr_assert_eq(ev_state_open(b, "op", 256, 0, 255, &st), EDDY_OK);
	cr_assert_eq(ev_state_restore(st, gp, 1), EDDY_EINVAL);
	cr_assert(strstr(ev_state_errmsg(st), "max_parallelism") != NULL, "%s",
	          ev_state_errmsg(st));
	ev_state_close(st);
	/* a state of another kind under the same name */
	st = open_range(b, "op", 0, 127);
	reg(st, "v", EV_STATE_LIST);
	cr_assert_eq(ev_state_restore(st, gp, 1), EDDY_EINVAL);
	cr_assert(strstr(ev_state_errmsg(st), "state v") != NULL, "%s", ev_state_errmsg(st));
	ev_state_close(st);
	free(img);
	finish(b);
}

/* Hand-made files with valid checksums but bad contents. */

typedef struct fbuf {
	uint8_t p[1 << 16];
	size_t n;
} fbuf;

static void fb(fbuf *f, const void *p, size_t n)
{
	memcpy(f->p + f->n, p, n);
	f->n += n;
}

static void fb_u8(fbuf *f, uint8_t c)
{
	fb(f, &c, 1);
}

static void fb_str(fbuf *f, const char *s)
{
	fb_u8(f, (uint8_t)(0xa0 | strlen(s)));
	fb(f, s, strlen(s));
}

static void fb_bin(fbuf *f, const void *p, uint8_t n)
{
	fb_u8(f, 0xc4);
	fb_u8(f, n);
	fb(f, p, n);
}

static void fb_header(fbuf *f, const char *kind)
{
	fb_u8(f, 0x87);
	fb_str(f, "format");
	fb_str(f, "eddy-state");
	fb_str(f, "version");
	fb_u8(f, 1);
	fb_str(f, "operator");
	fb_str(f, "op");
	fb_str(f, "max_parallelism");
	fb_u8(f, 0xcc);
	fb_u8(f, 128);
	fb_str(f, "key_group_first");
	fb_u8(f, 0);
	fb_str(f, "key_group_last");
	fb_u8(f, 127);
	fb_str(f, "states");
	fb_u8(f, 0x91);
	fb_u8(f, 0x92);
	fb_str(f, "s");
	fb_str(f, kind);
}

static void fb_section(fbuf *f, uint8_t kg, uint8_t nrows, uint8_t ntimers, const fbuf *pay)
{
	fb_u8(f, 0x95);
	fb_u8(f, kg);
	fb_u8(f, nrows);
	fb_u8(f, ntimers);
	uint32_t crc = (uint32_t)crc32(0, pay->p, (uInt)pay->n);
	fb_u8(f, 0xce);
	for (int i = 0; i < 4; i++)
		fb_u8(f, (uint8_t)(crc >> (24 - 8 * i)));
	fb_u8(f, 0xc6); /* bin32 */
	for (int i = 0; i < 4; i++)
		fb_u8(f, (uint8_t)(pay->n >> (24 - 8 * i)));
	fb(f, pay->p, pay->n);
}

static void fb_footer(fbuf *f)
{
	uint32_t crc = (uint32_t)crc32(0, f->p, (uInt)f->n);
	uint64_t len = f->n;
	fb_u8(f, 0x93);
	fb_u8(f, 0xce);
	for (int i = 0; i < 4; i++)
		fb_u8(f, (uint8_t)(crc >> (24 - 8 * i)));
	fb_u8(f, 0xcf);
	for (int i = 0; i < 8; i++)
		fb_u8(f, (uint8_t)(len >> (56 - 8 * i)));
	fb_str(f, "EDDYEND");
}

/* a row [0, key, "", value] of state 0 */
static void fb_row(fbuf *p, const char *k, const void *v, uint8_t vl)
{
	fb_u8(p, 0x94);
	fb_u8(p, 0);
	fb_bin(p, k, (uint8_t)strlen(k));
	fb_bin(p, "", 0);
	fb_bin(p, v, vl);
}

static void try_file(ev_state_backend *b, const fbuf *f, eddy_err want, const char *what)
{
	const char *path = tmp_path("made");
	write_bytes(path, f->p, f->n);
	ev_state *st = open_range(b, "op", 0, 127);
	const char *paths[] = { path };
	eddy_err e = ev_state_restore(st, paths, 1);
	cr_assert_eq(e, want, "%s: got %d: %s", what, e, ev_state_errmsg(st));
	if (want != EDDY_OK) {
		cr_assert(strstr(ev_state_errmsg(st), path) != NULL);
		ev_state_id v = reg(st, "s", EV_STATE_VALUE);
		key(st, "k");
		expect_str(st, v, NULL);
	}
	ev_state_close(st);
}

BOTH(hostile_files_with_valid_checksums_are_refused)
{
	start();
	ev_state_backend *b = backend(kind);
	uint8_t kgk = (uint8_t)kg_of("k", 1);
	fbuf *f = calloc(1, sizeof(*f)), *p = calloc(1, sizeof(*p));
	/* a good one first: the builder is right */
	fb_header(f, "value");
	fb_row(p, "k", "val", 3);
	fb_section(f, kgk, 1, 0, p);
	fb_footer(f);
	try_file(b, f, EDDY_OK, "good");
	/* a row that claims more rows than there are */
	f->n = p->n = 0;
	fb_header(f, "value");
	fb_row(p, "k", "val", 3);
	fb_section(f, kgk, 2, 0, p);
	fb_footer(f);
	try_file(b, f, EDDY_EINVAL, "too few rows");
	/* an array of 2^32-1 items in a tiny payload */
	f->n = p->n = 0;
	fb_header(f, "value");
	fb(p, "\xdd\xff\xff\xff\xff", 5);
	fb_section(f, kgk, 1, 0, p);
	fb_footer(f);
	try_file(b, f, EDDY_EINVAL, "huge array");
	/* a bin longer than the payload */
	f->n = p->n = 0;
	fb_header(f, "value");
	fb(p, "\x94\x00\xc6\x7f\xff\xff\xff", 7);
	fb_section(f, kgk, 1, 0, p);
	fb_footer(f);
	try_file(b, f, EDDY_EINVAL, "huge bin");
	/* a state index beyond the states */
	f->n = p->n = 0;
	fb_header(f, "value");
	fb(p, "\x94\x05", 2);
	fb_bin(p, "k", 1);
	fb_bin(p, "", 0);
	fb_bin(p, "v", 1);
	fb_section(f, kgk, 1, 0, p);
	fb_footer(f);
	try_file(b, f, EDDY_EINVAL, "state index");
	/* a list value that is not a framed list */
	f->n = p->n = 0;
	fb_header(f, "list");
	fb_row(p, "k", "\x09xy", 3);
	fb_section(f, kgk, 1, 0, p);
	fb_footer(f);
	try_file(b, f, EDDY_EINVAL, "bad list");
	/* a 4-field row for a map state */
	f->n = p->n = 0;
	fb_header(f, "map");
	fb_row(p, "k", "v", 1);
	fb_section(f, kgk, 1, 0, p);
	fb_footer(f);
	try_file(b, f, EDDY_EINVAL, "map row");
	/* sections out of order */
	f->n = p->n = 0;
	fb_header(f, "value");
	fb_section(f, 9, 0, 0, p);
	fb_section(f, 8, 0, 0, p);
	fb_footer(f);
	try_file(b, f, EDDY_EINVAL, "order");
	/* a bad timer domain */
	f->n = p->n = 0;
	fb_header(f, "value");
	fb(p, "\x94\x07\x01", 3);
	fb_bin(p, "k", 1);
	fb_bin(p, "", 0);
	fb_section(f, kgk, 0, 1, p);
	fb_footer(f);
	try_file(b, f, EDDY_EINVAL, "timer domain");
	/* a wrong version */
	f->n = p->n = 0;
	fb_header(f, "value");
	f->p[1 + 7 + 11 + 8] = 2; /* the version's value */
	fb_footer(f);
	try_file(b, f, EDDY_EINVAL, "version");
	free(f);
	free(p);
	finish(b);
}

/* ---- allocation failures ---- */

/* ops runs a fixed mix of operations with a snapshot open (copy on write), updating a
 * model only for calls that succeeded; a failed call must change nothing. */
typedef struct model {
	char val[64][16]; /* value of key i, "" = none */
	int sum[64];
	int nmap[64];
	bool timer[64];
} model;

static void ops(ev_state *st, model *m, bool inject, int64_t fail_at)
{
	ev_state_desc dv = { .name = "v", .kind = EV_STATE_VALUE };
	ev_state_desc dr = { .name = "r", .kind = EV_STATE_REDUCING, .reduce = sum_reduce };
	ev_state_desc dm = { .name = "m", .kind = EV_STATE_MAP };
	ev_state_id v, r, mp;
	if (inject)
		rt_alloc_fail_after(fail_at);
	if (ev_state_register(st, &dv, &v) != EDDY_OK ||
	    ev_state_register(st, &dr, &r) != EDDY_OK ||
	    ev_state_register(st, &dm, &mp) != EDDY_OK) {
		rt_alloc_fail_after(-1);
		return;
	}
	ev_state_snapshot *snap = NULL;
	char k[16], val[16];
	for (int round = 0; round < 3; round++) {
		if (round == 1 && ev_state_snapshot_begin(st, &snap) != EDDY_OK)
			snap = NULL;
		for (int i = 0; i < 64; i++) {
			snprintf(k, sizeof(k), "k%d", i);
			eddy_err e = ev_state_set_key(st, k, strlen(k), kg_of(k, strlen(k)));
			if (e != EDDY_OK) {
				cr_assert_eq(e, EDDY_ENOMEM);
				continue;
			}
			snprintf(val, sizeof(val), "%d-%d", i, round);
			if ((e = ev_value_put(st, v, val, strlen(val))) == EDDY_OK)
				strcpy(m->val[i], val);
			cr_assert(e == EDDY_OK || e == EDDY_ENOMEM);
			uint64_t one = 1;
			if ((e = ev_reducing_add(st, r, &one, 8)) == EDDY_OK)
				m->sum[i]++;
			cr_assert(e == EDDY_OK || e == EDDY_ENOMEM);
			if ((e = ev_map_put(st, mp, val, strlen(val), "x", 1)) == EDDY_OK)
				m->nmap[i]++;
			cr_assert(e == EDDY_OK || e == EDDY_ENOMEM);
			if (i % 3 == round) {
				if ((e = ev_state_clear(st, v)) == EDDY_OK)
					m->val[i][0] = '\0';
				cr_assert(e == EDDY_OK || e == EDDY_ENOMEM);
			}
			if (round == 0 && (e = ev_timer_register(st, EV_TIME_EVENT, i)) == EDDY_OK)
				m->timer[i] = true;
			if (round == 2 && i % 2 &&
			    (e = ev_timer_delete(st, EV_TIME_EVENT, i)) == EDDY_OK)
				m->timer[i] = false;
			cr_assert(e == EDDY_OK || e == EDDY_ENOMEM);
		}
	}
	if (snap != NULL) {
		eddy_err e = ev_state_snapshot_write(snap, tmp_path("oom"), NULL);
		cr_assert(e == EDDY_OK || e == EDDY_ENOMEM);
		ev_state_snapshot_release(snap);
	}
	rt_alloc_fail_after(-1);
}

static void check_model(ev_state *st, const model *m)
{
	ev_state_id v = reg(st, "v", EV_STATE_VALUE), r = reg_sum(st, "r"),
		    mp = reg(st, "m", EV_STATE_MAP);
	char k[16];
	for (int i = 0; i < 64; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		key(st, k);
		expect_str(st, v, m->val[i][0] ? m->val[i] : NULL);
		const void *p;
		size_t n;
		if (m->sum[i] == 0)
			cr_assert_eq(ev_reducing_get(st, r, &p, &n), EDDY_ENOENT);
		else
			cr_assert_eq(get_u64(st, r), (uint64_t)m->sum[i]);
		const ev_map_entry *e;
		cr_assert_eq(ev_map_entries(st, mp, &e, &n), EDDY_OK);
		cr_assert_eq(n, (size_t)m->nmap[i], "key %d: %zu map entries, model %d", i, n,
		             m->nmap[i]);
	}
	int want = 0;
	for (int i = 0; i < 64; i++)
		want += m->timer[i];
	cr_assert_eq(ev_timer_count(st, EV_TIME_EVENT), (size_t)want);
}

BOTH(allocation_failures_change_nothing_and_leak_nothing)
{
	start();
	ev_state_backend *b = backend(kind);
	int failures = 0;
	for (int64_t at = 0; at < 100000; at += at < 400 ? 1 : 37) {
		model m = { 0 };
		ev_state *st = NULL;
		char op[32]; /* a fresh operator: LevelDB is slow over many deleted keys */
		snprintf(op, sizeof(op), "op%ld", (long)at);
		rt_alloc_fail_after(at);
		eddy_err e = ev_state_open(b, op, 128, 0, 127, &st);
		rt_alloc_fail_after(-1);
		if (e != EDDY_OK) {
			cr_assert_eq(e, EDDY_ENOMEM);
			failures++;
			continue;
		}
		int64_t live = rt_alloc_live();
		ops(st, &m, true, at);
		check_model(st, &m);
		ev_state_close(st);
		(void)live;
		/* done once nothing failed any more */
		model full = { 0 };
		bool all = true;
		snprintf(op, sizeof(op), "full%ld", (long)at);
		st = open_range(b, op, 0, 127);
		ops(st, &full, false, 0);
		ev_state_close(st);
		for (int i = 0; i < 64 && all; i++)
			all = strcmp(full.val[i], m.val[i]) == 0 && full.sum[i] == m.sum[i] &&
			      full.nmap[i] == m.nmap[i] && full.timer[i] == m.timer[i];
		if (all && at > 400)
			break;
		failures += !all;
	}
	cr_assert_gt(failures, 10);
	/* restore with failures */
	ev_state *st = open_range(b, "op", 0, 127);
	fill(st, 1, 0, 300);
	ev_state_snapshot *s;
	cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
	const char *path = tmp_path("r");
	cr_assert_eq(ev_state_snapshot_write(s, path, NULL), EDDY_OK);
	ev_state_snapshot_release(s);
	ev_state_close(st);
	for (int64_t at = 0;; at += at < 200 ? 1 : 50) {
		st = open_range(b, "op", 0, 127);
		const char *paths[] = { path };
		rt_alloc_fail_after(at);
		eddy_err e = ev_state_restore(st, paths, 1);
		rt_alloc_fail_after(-1);
		if (e == EDDY_OK) {
			cr_assert_eq(check_keys(st, 1, 0, 300), 300);
			ev_state_close(st);
			break;
		}
		cr_assert_eq(e, EDDY_ENOMEM, "%s", ev_state_errmsg(st));
		cr_assert_eq(check_keys(st, -1, 0, 300), 300, "a failed restore leaves nothing");
		ev_state_close(st);
	}
	finish(b);
}

/* The memory backend does not allocate to overwrite a value that fits its slot. */
Test(state_memory, overwrite_does_not_allocate)
{
	start();
	ev_state_backend *b = backend(EV_STATE_MEMORY);
	ev_state *st = open_range(b, "op", 0, 127);
	ev_state_id v = reg(st, "v", EV_STATE_VALUE);
	char k[16];
	uint64_t x = 1;
	for (int i = 0; i < 10000; i++) {
		snprintf(k, sizeof(k), "%d", i);
		key(st, k);
		cr_assert_eq(ev_value_put(st, v, &x, 8), EDDY_OK);
	}
	rt_alloc_fail_after(0); /* any allocation now fails */
	for (int i = 0; i < 10000; i++) {
		snprintf(k, sizeof(k), "%d", i);
		key(st, k);
		x = (uint64_t)i;
		cr_assert_eq(ev_value_put(st, v, &x, 8), EDDY_OK);
		const void *p;
		size_t n;
		cr_assert_eq(ev_value_get(st, v, &p, &n), EDDY_OK);
		cr_assert(n == 8 && memcmp(p, &x, 8) == 0);
	}
	rt_alloc_fail_after(-1);
	ev_state_close(st);
	finish(b);
}

Test(state, backend_errors)
{
	start();
	ev_state_backend *b;
	char err[256];
	ev_state_backend_opts o = { .kind = EV_STATE_LEVELDB };
	cr_assert_eq(ev_state_backend_create(&o, &b, err, sizeof(err)), EDDY_EINVAL);
	cr_assert(strstr(err, "dir") != NULL);
	o.dir = "/proc/no/such/dir";
	cr_assert_eq(ev_state_backend_create(&o, &b, err, sizeof(err)), EDDY_EIO);
	cr_assert(strstr(err, "/proc/no/such/dir") != NULL, "%s", err);
	/* a second backend on the same directory: LevelDB's lock */
	o.dir = tmp_path("db");
	ev_state_backend *b1;
	cr_assert_eq(ev_state_backend_create(&o, &b1, err, sizeof(err)), EDDY_OK);
	cr_assert_eq(ev_state_backend_create(&o, &b, err, sizeof(err)), EDDY_EIO);
	cr_assert(strstr(err, "lock") != NULL || strstr(err, "LOCK") != NULL, "%s", err);
	ev_state_backend_destroy(b1);
	finish(NULL);
}

/* ---- timers against a model ----
 *
 * Random sequences of timer registrations, deletions and pops (with registrations and
 * deletions while popping, as an on_timer does) on both domains, each pop and
 * ev_timer_next checked against a model: a sorted array per domain of the timers' keys
 * encoded here as the order is defined (time, key group, key, namespace, as the bytes
 * time (8, BE, sign flipped) | kg (2, BE) | varint len | key | varint len | namespace).
 * Few distinct times (large buckets), many (one timer per time), extreme times, keys and
 * namespaces that agree on their first 16 bytes and more. Then a snapshot taken in the
 * middle is restored (with the timers pending at its begin) into one handle and into two
 * (rescaling: each keeps its key groups' timers) and checked the same way. */

#define TM_KEYS 1500
#define TM_NS 7

static uint8_t tm_key[TM_KEYS][48];
static size_t tm_klen[TM_KEYS];
static uint32_t tm_kg[TM_KEYS];
static uint8_t tm_ns[TM_NS][24];
static size_t tm_nslen[TM_NS];
static uint64_t tm_seed;

static uint32_t tm_first = 0, tm_last = 127; /* the key groups of the handle under test */

static uint64_t tm_rnd(void)
{
	tm_seed ^= tm_seed << 13;
	tm_seed ^= tm_seed >> 7;
	tm_seed ^= tm_seed << 17;
	return tm_seed;
}

static void tm_sets(void)
{
	tm_seed = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < TM_KEYS; i++) {
		uint8_t *k = tm_key[i];
		size_t n = 0;
		switch (i % 4) {
		case 0: /* the canonical encoding of an int (tag, 8 bytes BE) */
			k[n++] = 2;
			for (int j = 7; j >= 0; j--)
				k[n++] = (uint8_t)((uint64_t)(i * 7919) >> (8 * j));
			break;
		case 1: /* short, any bytes (0 and 255 too) */
			for (size_t j = tm_rnd() % 4; j > 0; j--)
				k[n++] = (uint8_t)(tm_rnd() % 3 == 0   ? 0
				                   : tm_rnd() % 3 == 0 ? 255
				                                       : tm_rnd());
			break;
		case 2: /* 20 shared bytes, then the difference */
			memset(k, 'p', 20);
			n = 20;
			break;
		default: /* long, any bytes */
			for (size_t j = 7 + tm_rnd() % 30; j > 0; j--)
				k[n++] = (uint8_t)tm_rnd();
			break;
		}
		if (i > 0) { /* unique: ends with i */
			k[n++] = (uint8_t)(i >> 8);
			k[n++] = (uint8_t)i;
		}
		tm_klen[i] = n;
		/* a third by hash; the rest crowd two key groups (large runs of one key group
		 * in a bucket: the sort goes past the key group) */
		tm_kg[i] = i % 3 == 0 ? kg_of(k, n) : 5 + (uint32_t)(i % 2) * 60;
	}
	const int64_t starts[2] = { 1000, 3000 };
	tm_nslen[0] = 0;
	tm_ns[1][0] = 0;
	tm_nslen[1] = 1;
	for (int j = 0; j < 2; j++) { /* window starts, 8 bytes little-endian */
		memcpy(tm_ns[2 + j], &starts[j], 8);
		tm_nslen[2 + j] = 8;
	}
	tm_ns[4][0] = 'n';
	tm_nslen[4] = 1;
	memset(tm_ns[5], 'q', 20);
	tm_ns[5][20] = 'x';
	tm_nslen[5] = 21;
	memset(tm_ns[6], 'q', 20);
	tm_nslen[6] = 20;
}

typedef struct mtimer {
	int64_t time;
	int k, n; /* key and namespace (indices) */
	size_t len;
	uint8_t enc[8 + 2 + 5 + 48 + 5 + 24];
} mtimer;

typedef struct tmodel {
	mtimer **a[2]; /* per domain, sorted */
	size_t n[2], cap[2];
} tmodel;

static size_t tm_varint(uint8_t *p, size_t v)
{
	size_t n = 0;
	for (; v >= 0x80; v >>= 7)
		p[n++] = (uint8_t)(v | 0x80);
	p[n++] = (uint8_t)v;
	return n;
}

static void tm_encode(mtimer *t)
{
	uint64_t u = (uint64_t)t->time ^ (1ull << 63);
	uint8_t *p = t->enc;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(u >> (56 - 8 * i));
	p[8] = (uint8_t)(tm_kg[t->k] >> 8);
	p[9] = (uint8_t)tm_kg[t->k];
	size_t o = 10 + tm_varint(p + 10, tm_klen[t->k]);
	memcpy(p + o, tm_key[t->k], tm_klen[t->k]);
	o += tm_klen[t->k];
	o += tm_varint(p + o, tm_nslen[t->n]);
	memcpy(p + o, tm_ns[t->n], tm_nslen[t->n]);
	t->len = o + tm_nslen[t->n];
}

static int tm_cmp(const mtimer *x, const mtimer *y)
{
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->enc, y->enc, n);
	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* tm_find: whether t is in the model's domain d; *pos: where it is or would go. */
static bool tm_find(const tmodel *m, int d, const mtimer *t, size_t *pos)
{
	size_t lo = 0, hi = m->n[d];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = tm_cmp(m->a[d][mid], t);
		if (c == 0) {
			*pos = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return false;
}

static void tm_model_add(tmodel *m, int d, const mtimer *t)
{
	size_t pos;
	if (tm_find(m, d, t, &pos))
		return;
	if (m->n[d] == m->cap[d]) {
		m->cap[d] = m->cap[d] ? m->cap[d] * 2 : 256;
		m->a[d] = realloc(m->a[d], m->cap[d] * sizeof(*m->a[d]));
		cr_assert_not_null(m->a[d]);
	}
	mtimer *c = malloc(sizeof(*c));
	cr_assert_not_null(c);
	*c = *t;
	memmove(&m->a[d][pos + 1], &m->a[d][pos], (m->n[d] - pos) * sizeof(*m->a[d]));
	m->a[d][pos] = c;
	m->n[d]++;
}

static void tm_model_del_at(tmodel *m, int d, size_t pos)
{
	free(m->a[d][pos]);
	memmove(&m->a[d][pos], &m->a[d][pos + 1], (m->n[d] - pos - 1) * sizeof(*m->a[d]));
	m->n[d]--;
}

/* tm_model_copy: a copy of m with only the timers of key groups [first, last]. */
static tmodel tm_model_copy(const tmodel *m, uint32_t first, uint32_t last)
{
	tmodel c = { 0 };
	for (int d = 0; d < 2; d++)
		for (size_t i = 0; i < m->n[d]; i++) {
			uint32_t kg = tm_kg[m->a[d][i]->k];
			if (kg >= first && kg <= last)
				tm_model_add(&c, d, m->a[d][i]);
		}
	return c;
}

static void tm_model_free(tmodel *m)
{
	for (int d = 0; d < 2; d++) {
		for (size_t i = 0; i < m->n[d]; i++)
			free(m->a[d][i]);
		free(m->a[d]);
	}
	memset(m, 0, sizeof(*m));
}

/* tm_pick: a key (index) of the handle's key groups, from a random number. */
static int tm_pick(uint64_t r)
{
	int k = (int)(r % TM_KEYS);
	while (tm_kg[k] < tm_first || tm_kg[k] > tm_last)
		k = (k + 1) % TM_KEYS;
	return k;
}

static eddy_err tm_set(ev_state *st, int k, int n)
{
	eddy_err e = ev_state_set_key(st, tm_key[k], tm_klen[k], tm_kg[k]);
	if (e == EDDY_OK)
		e = ev_state_set_namespace(st, tm_ns[n], tm_nslen[n]);
	return e;
}

/* tm_register registers timer (d, time, key k, namespace n) in st and, if that succeeded,
 * in the model; returns the call's result. */
static eddy_err tm_register(ev_state *st, tmodel *m, int d, int64_t time, int k, int n)
{
	eddy_err e = tm_set(st, k, n);
	if (e == EDDY_OK)
		e = ev_timer_register(st, (ev_time_domain)d, time);
	if (e == EDDY_OK) {
		mtimer t = { .time = time, .k = k, .n = n };
		tm_encode(&t);
		tm_model_add(m, d, &t);
	}
	return e;
}

static eddy_err tm_delete(ev_state *st, tmodel *m, int d, int64_t time, int k, int n)
{
	eddy_err e = tm_set(st, k, n);
	if (e == EDDY_OK)
		e = ev_timer_delete(st, (ev_time_domain)d, time);
	if (e == EDDY_OK) {
		mtimer t = { .time = time, .k = k, .n = n };
		tm_encode(&t);
		size_t pos;
		if (tm_find(m, d, &t, &pos))
			tm_model_del_at(m, d, pos);
	}
	return e;
}

/* tm_check_next checks ev_timer_next and ev_timer_count of both domains. */
static void tm_check_next(ev_state *st, const tmodel *m)
{
	for (int d = 0; d < 2; d++) {
		int64_t next;
		eddy_err e = ev_timer_next(st, (ev_time_domain)d, &next);
		cr_assert_eq(ev_timer_count(st, (ev_time_domain)d), m->n[d],
		             "domain %d: %zu timers, model %zu", d,
		             ev_timer_count(st, (ev_time_domain)d), m->n[d]);
		if (m->n[d] == 0) {
			cr_assert_eq(e, EDDY_ENOENT, "domain %d: next without timers", d);
			continue;
		}
		cr_assert_eq(e, EDDY_OK);
		cr_assert_eq(next, m->a[d][0]->time, "domain %d: next %lld, model %lld", d,
		             (long long)next, (long long)m->a[d][0]->time);
	}
}

/* tm_pop pops one timer <= upto of domain d and checks it against the model; returns the
 * call's result (EDDY_ENOMEM allowed only when ENOMEM_ok: then nothing changed). */
static eddy_err tm_pop(ev_state *st, tmodel *m, int d, int64_t upto, bool enomem_ok)
{
	ev_timer t;
	eddy_err e = ev_timer_pop(st, (ev_time_domain)d, upto, &t);
	if (e == EDDY_ENOMEM && enomem_ok)
		return e;
	if (m->n[d] == 0 || m->a[d][0]->time > upto) {
		cr_assert_eq(e, EDDY_ENOENT, "domain %d upto %lld: a timer popped, model has none",
		             d, (long long)upto);
		return e;
	}
	const mtimer *w = m->a[d][0];
	cr_assert_eq(e, EDDY_OK, "domain %d: pop: %s", d, ev_state_errmsg(st));
	cr_assert_eq(t.domain, (ev_time_domain)d);
	cr_assert_eq(t.time, w->time, "domain %d: popped time %lld, model %lld", d,
	             (long long)t.time, (long long)w->time);
	cr_assert_eq(t.key_group, tm_kg[w->k]);
	cr_assert(t.key.len == tm_klen[w->k] && memcmp(t.key.p, tm_key[w->k], t.key.len) == 0,
	          "domain %d time %lld: popped another key than the model's key %d", d,
	          (long long)w->time, w->k);
	cr_assert(t.ns.len == tm_nslen[w->n] && memcmp(t.ns.p, tm_ns[w->n], t.ns.len) == 0,
	          "domain %d time %lld key %d: popped another namespace than %d", d,
	          (long long)w->time, w->k, w->n);
	tm_model_del_at(m, d, 0);
	return e;
}

/* tm_time: a timer time near base: few distinct times (every key's window ending at
 * once), many, or extreme. */
static int64_t tm_time(int64_t base, bool few)
{
	uint64_t r = tm_rnd();
	if (r % 997 == 0) {
		const int64_t x[] = { INT64_MIN, INT64_MIN + 1, -1, 0, INT64_MAX - 1, INT64_MAX };
		return x[(r >> 10) % 6];
	}
	if (few)
		return base + (int64_t)((r >> 10) % 6) * 1000 - 1;
	return base + (int64_t)((r >> 10) % 20000) - 1000;
}

/* tm_drain pops every timer <= upto of domain d, registering and deleting timers
 * between pops as an on_timer may; returns the pops. */
static size_t tm_drain(ev_state *st, tmodel *m, int d, int64_t upto)
{
	size_t pops = 0;
	while (tm_pop(st, m, d, upto, false) == EDDY_OK) {
		pops++;
		/* the popped timer: the model's one just removed; its key is current */
		uint64_t r = tm_rnd();
		int k = tm_pick(r >> 8), n = (int)((r >> 24) % TM_NS);
		int64_t now = upto == INT64_MAX ? 0 : upto;
		switch (r % 16) {
		case 0: /* the same time: the bucket being handed out (sorted) */
		case 1:
			cr_assert_eq(tm_register(st, m, d, upto == INT64_MAX ? upto : now, k, n),
			             EDDY_OK);
			break;
		case 2: /* an earlier time, due now */
			cr_assert_eq(tm_register(st, m, d, now - (int64_t)((r >> 32) % 5000), k, n),
			             EDDY_OK);
			break;
		case 3: /* later, maybe due */
			cr_assert_eq(tm_register(st, m, d, tm_time(now, (r >> 40) & 1), k, n),
			             EDDY_OK);
			break;
		case 4: /* delete a pending timer, often of the bucket being handed out */
		case 5:
			if (m->n[d] > 0) {
				size_t i = (r >> 32) % (m->n[d] < 50 ? m->n[d] : 50);
				const mtimer *w = m->a[d][i];
				cr_assert_eq(tm_delete(st, m, d, w->time, w->k, w->n), EDDY_OK);
			}
			break;
		case 6: /* the other domain */
			cr_assert_eq(tm_register(st, m, 1 - d, tm_time(now, true), k, n), EDDY_OK);
			break;
		default: break;
		}
		if (r % 7 == 0)
			tm_check_next(st, m);
	}
	return pops;
}

/* tm_ops runs nops random operations on st, checking them against m; returns the number
 * of timers popped. *base (the moving "watermark") advances. */
static size_t tm_ops(ev_state *st, tmodel *m, int nops, int64_t *base)
{
	size_t pops = 0;
	for (int op = 0; op < nops; op++) {
		if (op % 1000 == 999)
			*base += 2000;
		bool few = (op / 5000) % 2 == 0;
		uint64_t r = tm_rnd();
		int d = (r >> 60) % 4 == 0 ? EV_TIME_PROCESSING : EV_TIME_EVENT;
		int k = tm_pick(r >> 8), n = (int)((r >> 24) % TM_NS);
		unsigned what = (unsigned)(r % 100);
		if (what < 55) {
			cr_assert_eq(tm_register(st, m, d, tm_time(*base, few), k, n), EDDY_OK,
			             "%s", ev_state_errmsg(st));
		} else if (what < 65) { /* a pending timer */
			if (m->n[d] > 0) {
				const mtimer *w = m->a[d][(r >> 32) % m->n[d]];
				cr_assert_eq(tm_delete(st, m, d, w->time, w->k, w->n), EDDY_OK);
			}
		} else if (what < 72) { /* mostly absent */
			cr_assert_eq(tm_delete(st, m, d, tm_time(*base, few), k, n), EDDY_OK);
		} else if (what < 88) { /* one pop: a bucket partly handed out */
			int64_t upto = m->n[d] > 0 && (r >> 32) % 4 != 0 ? m->a[d][0]->time
			                                                 : tm_time(*base, few);
			pops += tm_pop(st, m, d, upto, false) == EDDY_OK;
		} else if (what < 90) { /* everything due at the watermark */
			pops += tm_drain(st, m, d, *base);
		} else if (what < 91) {
			pops += tm_drain(st, m, d, (r >> 32) % 50 == 0 ? INT64_MAX : *base + 5000);
		} else if (what < 92 && (r >> 40) % 10 == 0) { /* a window's end for many keys */
			int64_t time = tm_time(*base, true);
			for (int i = 0; i < TM_KEYS; i++) {
				uint64_t x = tm_rnd();
				cr_assert_eq(tm_register(st, m, d, time, tm_pick(x),
				                         (int)((x >> 32) % TM_NS)),
				             EDDY_OK);
			}
		}
		tm_check_next(st, m);
	}
	return pops;
}

/* tm_drain_all pops every timer of both domains and checks the model is then empty. */
static size_t tm_drain_all(ev_state *st, tmodel *m)
{
	size_t pops = 0;
	for (int round = 0; round < 2 || m->n[0] + m->n[1] > 0; round++)
		for (int d = 0; d < 2; d++)
			pops += tm_drain(st, m, d, INT64_MAX);
	tm_check_next(st, m);
	return pops;
}

BOTH(timers_pop_in_the_order_of_a_model)
{
	start();
	tm_sets();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "tm", 0, 127);
	tmodel m = { 0 }, at_snap = { 0 };
	int64_t base = 100000;
	size_t pops = tm_ops(st, &m, 40000, &base);
	/* a snapshot with timers pending, written while the handle goes on (copy on write) */
	ev_state_snapshot *s;
	cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
	at_snap = tm_model_copy(&m, 0, 127);
	int64_t base_at_snap = base;
	cr_assert_gt(at_snap.n[0], 500, "%zu event timers pending", at_snap.n[0]);
	cr_assert_gt(at_snap.n[1], 0);
	pops += tm_ops(st, &m, 30000, &base);
	const char *path = tmp_path("tm");
	cr_assert_eq(ev_state_snapshot_write(s, path, NULL), EDDY_OK, "%s",
	             ev_state_snapshot_errmsg(s));
	ev_state_snapshot_release(s);
	pops += tm_ops(st, &m, 40000, &base);
	pops += tm_drain_all(st, &m);
	cr_assert_gt(pops, 50000, "%zu pops", pops);
	ev_state_close(st);
	tm_model_free(&m);

	/* restore: the timers pending at the snapshot's begin, in order, and the handle
	 * works on */
	const char *paths[] = { path };
	st = open_range(b, "tm", 0, 127);
	cr_assert_eq(ev_state_restore(st, paths, 1), EDDY_OK, "%s", ev_state_errmsg(st));
	m = tm_model_copy(&at_snap, 0, 127);
	tm_check_next(st, &m);
	base = base_at_snap;
	tm_ops(st, &m, 20000, &base);
	tm_drain_all(st, &m);
	ev_state_close(st);
	tm_model_free(&m);

	/* rescaling: two handles, each with its key groups' timers only */
	ev_state *lo = open_range(b, "tm", 0, 63), *hi = open_range(b, "tm", 64, 127);
	cr_assert_eq(ev_state_restore(lo, paths, 1), EDDY_OK, "%s", ev_state_errmsg(lo));
	cr_assert_eq(ev_state_restore(hi, paths, 1), EDDY_OK, "%s", ev_state_errmsg(hi));
	tmodel mlo = tm_model_copy(&at_snap, 0, 63), mhi = tm_model_copy(&at_snap, 64, 127);
	cr_assert_gt(mlo.n[0], 0);
	cr_assert_gt(mhi.n[0], 0);
	cr_assert_eq(mlo.n[0] + mhi.n[0], at_snap.n[0]);
	tm_check_next(lo, &mlo);
	tm_check_next(hi, &mhi);
	tm_first = 0, tm_last = 63;
	tm_drain_all(lo, &mlo);
	tm_first = 64, tm_last = 127;
	tm_drain_all(hi, &mhi);
	tm_first = 0, tm_last = 127;
	ev_state_close(lo);
	ev_state_close(hi);
	tm_model_free(&mlo);
	tm_model_free(&mhi);
	tm_model_free(&at_snap);
	finish(b);
}

/* Timer calls whose allocations fail (an injected failure before about half the calls,
 * with a snapshot open so that removals copy on write) return EDDY_ENOMEM and change
 * nothing: the model, updated only for calls that succeeded, stays the truth for every
 * pop, ev_timer_next and count. */
BOTH(timer_allocation_failures_change_nothing)
{
	start();
	tm_sets();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "tmo", 0, 127);
	tmodel m = {0};
	int64_t base = 0;
	ev_state_snapshot *s = NULL;
	size_t failed = 0, popped = 0;
	for (int op = 0; op < 40000; op++) {
		if (op % 1000 == 999)
			base += 2000;
		if (op % 4000 == 0) {
			ev_state_snapshot_release(s);
			cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
		}
		uint64_t r = tm_rnd();
		int d = (r >> 60) % 4 == 0 ? EV_TIME_PROCESSING : EV_TIME_EVENT;
		int k = tm_pick(r >> 8), n = (int)((r >> 24) % TM_NS);
		bool few = (op / 3000) % 2 == 0;
		unsigned what = (unsigned)(r % 100);
		if ((r >> 50) % 2 == 0)
			rt_alloc_fail_after((int64_t)((r >> 52) % 3));
		eddy_err e = EDDY_OK;
		if (what < 50) {
			e = tm_register(st, &m, d, tm_time(base, few), k, n);
		} else if (what < 62) {
			if (m.n[d] > 0) {
				const mtimer *w = m.a[d][(r >> 32) % m.n[d]];
				e = tm_delete(st, &m, d, w->time, w->k, w->n);
			}
		} else if (what < 97) {
			int64_t upto = m.n[d] > 0 && what < 90 ? m.a[d][0]->time : base;
			e = tm_pop(st, &m, d, upto, true);
			popped += e == EDDY_OK;
		} else if (what == 97) { /* a burst at one time: a large bucket */
			int64_t time = tm_time(base, true);
			for (int i = 0; i < 300 && e != EDDY_ENOMEM; i++) {
				uint64_t x = tm_rnd();
				e = tm_register(st, &m, d, time, tm_pick(x),
				                (int)((x >> 32) % TM_NS));
			}
		}
		rt_alloc_fail_after(-1);
		cr_assert(e == EDDY_OK || e == EDDY_ENOMEM || e == EDDY_ENOENT, "op %d: %d %s", op,
		          e, ev_state_errmsg(st));
		failed += e == EDDY_ENOMEM;
		tm_check_next(st, &m);
	}
	ev_state_snapshot_release(s);
	popped += tm_drain_all(st, &m);
	cr_assert_gt(failed, 100, "%zu calls failed", failed);
	cr_assert_gt(popped, 10000, "%zu pops", popped);
	ev_state_close(st);
	tm_model_free(&m);
	finish(b);
}

/* ---- incremental snapshots (deltas) ---- */

/* A model of a handle's state over IK keys x INS namespaces: a value, a list, a map, an
 * 8-byte counter changed in place (ev_value_ref) and event timers at ITM times. */
#define IK 61
#define INS 2
#define IMK 8
#define ITM 6

typedef struct imodel {
	char val[IK][INS][16];   /* "" = none */
	char list[IK][INS][100]; /* items joined by ',' ("" = none) */
	char map[IK][INS][IMK][8];
	uint64_t ref[IK][INS]; /* 0 = none */
	bool timer[IK][INS][ITM];
} imodel;

typedef struct ids {
	ev_state_id val, list, map, ref;
} ids;

static uint64_t inc_rnd_s = 88172645463325252ull;
static uint64_t inc_rnd(void)
{
	inc_rnd_s ^= inc_rnd_s << 13;
	inc_rnd_s ^= inc_rnd_s >> 7;
	inc_rnd_s ^= inc_rnd_s << 17;
	return inc_rnd_s;
}

static const char *const ins_names[INS] = {"a", "bb"};

static ids inc_reg(ev_state *st)
{
	return (ids){reg(st, "val", EV_STATE_VALUE), reg(st, "list", EV_STATE_LIST),
	             reg(st, "map", EV_STATE_MAP), reg(st, "ref", EV_STATE_VALUE)};
}

static void inc_at(ev_state *st, int k, int n)
{
	char kb[16];
	snprintf(kb, sizeof(kb), "k%d", k);
	key(st, kb);
	ns(st, ins_names[n]);
}

/* inc_ops applies nops random operations to st and m. */
static void inc_ops(ev_state *st, const ids *id, imodel *m, int nops)
{
	char b[32];
	for (int o = 0; o < nops; o++) {
		int k = (int)(inc_rnd() % IK), n = (int)(inc_rnd() % INS);
		inc_at(st, k, n);
		unsigned r = (unsigned)(inc_rnd() % 100), x = (unsigned)(inc_rnd() % 1000);
		if (r < 20) {
			snprintf(b, sizeof(b), "v%u", x);
			put_str(st, id->val, b);
			strcpy(m->val[k][n], b);
		} else if (r < 27) {
			cr_assert_eq(ev_state_clear(st, id->val), EDDY_OK);
			m->val[k][n][0] = '\0';
		} else if (r < 40) {
			char *l = m->list[k][n];
			if (strlen(l) > 80) {
				cr_assert_eq(ev_state_clear(st, id->list), EDDY_OK);
				l[0] = '\0';
			}
			snprintf(b, sizeof(b), "i%u", x);
			cr_assert_eq(ev_list_add(st, id->list, b, strlen(b)), EDDY_OK);
			if (l[0])
				strcat(l, ",");
			strcat(l, b);
		} else if (r < 44) {
			cr_assert_eq(ev_state_clear(st, id->list), EDDY_OK);
			m->list[k][n][0] = '\0';
		} else if (r < 58) {
			char mk[4] = {'m', (char)('0' + x % IMK), 0};
			snprintf(b, sizeof(b), "w%u", x);
			map_put_str(st, id->map, mk, b);
			strcpy(m->map[k][n][x % IMK], b);
		} else if (r < 64) {
			char mk[4] = {'m', (char)('0' + x % IMK), 0};
			cr_assert_eq(ev_map_remove(st, id->map, mk, 2), EDDY_OK);
			m->map[k][n][x % IMK][0] = '\0';
		} else if (r < 67) {
			cr_assert_eq(ev_state_clear(st, id->map), EDDY_OK);
			memset(m->map[k][n], 0, sizeof(m->map[k][n]));
		} else if (r < 78) {
			void *p;
			cr_assert_eq(ev_value_ref(st, id->ref, 8, &p, NULL), EDDY_OK);
			uint64_t v;
			memcpy(&v, p, 8);
			v += 1 + x;
			memcpy(p, &v, 8);
			m->ref[k][n] = v;
		} else if (r < 81) {
			cr_assert_eq(ev_state_clear(st, id->ref), EDDY_OK);
			m->ref[k][n] = 0;
		} else if (r < 92) {
			cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 10 * (1 + x % ITM)),
			             EDDY_OK);
			m->timer[k][n][x % ITM] = true;
		} else if (r < 97) {
			cr_assert_eq(ev_timer_delete(st, EV_TIME_EVENT, 10 * (1 + x % ITM)),
			             EDDY_OK);
			m->timer[k][n][x % ITM] = false;
		} else {
			/* fire the earliest times: pops remove timers */
			ev_timer t;
			int64_t upto = 10 * (1 + x % 3);
			while (ev_timer_pop(st, EV_TIME_EVENT, upto, &t) == EDDY_OK) {
				int tk = atoi((const char *)t.key.p + 1),
				    tn = t.ns.len == 1 ? 0 : 1;
				cr_assert(m->timer[tk][tn][t.time / 10 - 1]);
				m->timer[tk][tn][t.time / 10 - 1] = false;
			}
		}
	}
}

/* inc_check: st (restored, keys in key groups first..last only) holds what m says. Pops
 * st's timers. */
static void inc_check(ev_state *st, const imodel *m, uint32_t first, uint32_t last,
                      const char *what)
{
	ids id = inc_reg(st);
	char b[128], w[128];
	size_t want_timers = 0;
	for (int k = 0; k < IK; k++)
		for (int n = 0; n < INS; n++) {
			char kb[16];
			snprintf(kb, sizeof(kb), "k%d", k);
			uint32_t kg = kg_of(kb, strlen(kb));
			if (kg < first || kg > last)
				continue;
			inc_at(st, k, n);
			expect_str(st, id.val, m->val[k][n][0] ? m->val[k][n] : NULL);
			const ev_bytes *it;
			size_t ni, o = 0;
			cr_assert_eq(ev_list_get(st, id.list, &it, &ni), EDDY_OK);
			b[0] = '\0';
			for (size_t i = 0; i < ni; i++)
				o += (size_t)snprintf(b + o, sizeof(b) - o, "%s%.*s", i ? "," : "",
				                      (int)it[i].len, (const char *)it[i].p);
			cr_assert_str_eq(b, m->list[k][n], "%s: k%d/%d list", what, k, n);
			o = 0;
			w[0] = '\0';
			for (int i = 0; i < IMK; i++)
				if (m->map[k][n][i][0])
					o += (size_t)snprintf(w + o, sizeof(w) - o, "%sm%d=%s",
					                      o ? "," : "", i, m->map[k][n][i]);
			cr_assert_str_eq(map_dump(st, id.map, b, sizeof(b)), w, "%s: k%d/%d map",
			                 what, k, n);
			const void *p;
			size_t len;
			eddy_err e = ev_value_get(st, id.ref, &p, &len);
			if (m->ref[k][n] == 0) {
				cr_assert_eq(e, EDDY_ENOENT, "%s: k%d/%d ref", what, k, n);
			} else {
				uint64_t v;
				cr_assert_eq(e, EDDY_OK);
				memcpy(&v, p, 8);
				cr_assert_eq(v, m->ref[k][n], "%s: k%d/%d ref", what, k, n);
			}
			for (int t = 0; t < ITM; t++)
				want_timers += m->timer[k][n][t];
		}
	cr_assert_eq(ev_timer_count(st, EV_TIME_EVENT), want_timers, "%s: timers", what);
	ev_timer t;
	while (ev_timer_pop(st, EV_TIME_EVENT, INT64_MAX, &t) == EDDY_OK) {
		int tk = atoi((const char *)t.key.p + 1), tn = t.ns.len == 1 ? 0 : 1;
		cr_assert(m->timer[tk][tn][t.time / 10 - 1], "%s: a timer k%d/%d at %lld", what, tk,
		          tn, (long long)t.time);
	}
}

static void inc_restore_check(ev_state_backend *b, const char *path, const imodel *m,
                              const char *what)
{
	const char *paths[] = {path};
	ev_state *r = open_range(b, "inc", 0, 127);
	cr_assert_eq(ev_state_restore(r, paths, 1), EDDY_OK, "%s: %s", what, ev_state_errmsg(r));
	inc_check(r, m, 0, 127, what);
	ev_state_close(r);
	/* rescaled: each half of the key groups from the same chain */
	for (int h = 0; h < 2; h++) {
		r = open_range(b, "inc", h ? 64 : 0, h ? 127 : 63);
		cr_assert_eq(ev_state_restore(r, paths, 1), EDDY_OK, "%s", ev_state_errmsg(r));
		inc_check(r, m, h ? 64 : 0, h ? 127 : 63, what);
		ev_state_close(r);
	}
}

/* Random changes between snapshots, each written whole or as a delta against the one
 * before (some taken and never written, as an aborted checkpoint's; some written while
 * the handle goes on changing), and every file restored (into this test's backend, whole
 * and rescaled) must give the state as it was when its snapshot was taken. */
BOTH(deltas_restore_what_was_snapshotted)
{
	start();
	ev_state_backend *mem = backend(EV_STATE_MEMORY), *rb = backend(kind);
	ev_state *st = open_range(mem, "inc", 0, 127);
	ids id = inc_reg(st);
	static imodel m, at;
	memset(&m, 0, sizeof(m));
	inc_rnd_s = 88172645463325252ull;
	uint64_t prev_id = 0; /* the last snapshot written, and its file */
	char prev[32] = "";
	int deltas = 0, fulls = 0, refused = 0;
	for (int round = 0; round < 60; round++) {
		inc_ops(st, &id, &m, round == 0 ? 400 : (int)(inc_rnd() % 150));
		ev_state_snapshot *s;
		cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
		at = m;
		bool skip = inc_rnd() % 8 == 0, late = inc_rnd() % 3 == 0;
		if (late) /* the handle changes while the snapshot is written */
			inc_ops(st, &id, &m, 100);
		if (skip) {
			ev_state_snapshot_release(s);
			continue;
		}
		char name[32];
		snprintf(name, sizeof(name), "inc-%d", round);
		const char *path = tmp_path(name);
		uint64_t bytes = 0;
		eddy_err e = EDDY_EINVAL;
		if (prev_id != 0 && inc_rnd() % 6 != 0) {
			e = ev_state_snapshot_write_delta(s, path, prev, prev_id, &bytes);
			if (ev_state_snapshot_parent(s) != prev_id) {
				cr_assert_eq(e, EDDY_EINVAL,
				             "a delta against a snapshot not its parent");
				refused++;
			} else {
				cr_assert_eq(e, EDDY_OK, "%s", ev_state_snapshot_errmsg(s));
				deltas++;
			}
		}
		if (e != EDDY_OK) {
			cr_assert_eq(ev_state_snapshot_write(s, path, &bytes), EDDY_OK);
			fulls++;
		}
		prev_id = ev_state_snapshot_id(s);
		strcpy(prev, name);
		ev_state_snapshot_release(s);
		char file_err[256];
		cr_assert_eq(ev_state_file_check(path, file_err, sizeof(file_err)), EDDY_OK, "%s",
		             file_err);
		inc_restore_check(rb, path, &at, name);
	}
	cr_assert_gt(deltas, 20);
	cr_assert_gt(fulls, 3);
	cr_assert_gt(refused, 0);
	ev_state_close(st);
	ev_state_backend_destroy(mem);
	finish(rb);
}

/* A delta holds what changed, not the state: a few changes to a large state write a
 * small file; the same snapshot again (nothing changed) an empty delta. A chain with a
 * file missing or damaged is refused, naming the file. */
Test(state_memory, delta_is_small_and_its_chain_checked)
{
	start();
	ev_state_backend *b = backend(EV_STATE_MEMORY);
	ev_state *st = open_range(b, "inc", 0, 127);
	ids id = inc_reg(st);
	static imodel m;
	memset(&m, 0, sizeof(m));
	char v[64];
	for (int k = 0; k < 5000; k++) { /* 5,000 keys beyond the model's */
		snprintf(v, sizeof(v), "big%d", k);
		key(st, v);
		put_str(st, id.val, "a value of some thirty bytes..");
	}
	ev_state_snapshot *s0, *s1;
	uint64_t full = 0, delta = 0, empty = 0;
	cr_assert_eq(ev_state_snapshot_begin(st, &s0), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_parent(s0), 0);
	char path0[128], path1[128], path2[128];
	strcpy(path0, tmp_path("full"));
	strcpy(path1, tmp_path("d1"));
	strcpy(path2, tmp_path("d2"));
	cr_assert_eq(ev_state_snapshot_write_delta(s0, path1, "full", 1234, NULL), EDDY_EINVAL);
	cr_assert_eq(ev_state_snapshot_write(s0, path0, &full), EDDY_OK);
	inc_ops(st, &id, &m, 30);
	key(st, "big7"); /* one of the old keys goes */
	ns(st, "");
	cr_assert_eq(ev_state_clear(st, id.val), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_begin(st, &s1), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_parent(s1), ev_state_snapshot_id(s0));
	cr_assert_eq(
	    ev_state_snapshot_write_delta(s1, path1, "full", ev_state_snapshot_id(s0), &delta),
	    EDDY_OK, "%s", ev_state_snapshot_errmsg(s1));
	cr_assert_eq(
	    ev_state_snapshot_write_delta(s1, path2, "d1", ev_state_snapshot_id(s1), &empty),
	    EDDY_OK);
	cr_assert_lt(delta * 20, full, "delta %llu bytes, full %llu", (unsigned long long)delta,
	             (unsigned long long)full);
	cr_assert_lt(empty, 400);
	ev_state_snapshot_release(s0);
	ev_state_snapshot_release(s1);
	/* the chain restores: model keys, the 4,999 others, not big7 */
	const char *paths[] = {path2};
	ev_state_backend *rb = backend(EV_STATE_MEMORY);
	ev_state *r = open_range(rb, "inc", 0, 127);
	cr_assert_eq(ev_state_restore(r, paths, 1), EDDY_OK, "%s", ev_state_errmsg(r));
	ids rid = inc_reg(r);
	for (int k = 0; k < 5000; k++) {
		snprintf(v, sizeof(v), "big%d", k);
		key(r, v);
		ns(r, "");
		expect_str(r, rid.val, k == 7 ? NULL : "a value of some thirty bytes..");
	}
	inc_check(r, &m, 0, 127, "chain");
	ev_state_close(r);
	/* the middle file damaged, then missing */
	char err[512];
	size_t n;
	uint8_t *d1 = read_all(path1, &n);
	d1[n / 2] ^= 0x40;
	write_bytes(path1, d1, n);
	cr_assert_eq(ev_state_file_check(path2, err, sizeof(err)), EDDY_EINVAL);
	cr_assert(strstr(err, "d1") && strstr(err, "checksum"), "%s", err);
	r = open_range(rb, "inc", 0, 127);
	cr_assert_eq(ev_state_restore(r, paths, 1), EDDY_EINVAL);
	cr_assert(strstr(ev_state_errmsg(r), path1) && strstr(ev_state_errmsg(r), "checksum"), "%s",
	          ev_state_errmsg(r));
	ev_state_close(r);
	unlink(path1);
	cr_assert_eq(ev_state_file_check(path2, err, sizeof(err)), EDDY_EIO);
	cr_assert(strstr(err, "d1") && strstr(err, "cannot open"), "%s", err);
	free(d1);
	ev_state_close(st);
	ev_state_backend_destroy(rb);
	finish(b);
}

/* A list only appended to since the parent goes into a delta as the bytes appended (not
 * the whole list again); any other change to it, whole. */
Test(state_memory, delta_of_an_appended_list_is_the_appended_items)
{
	start();
	ev_state_backend *b = backend(EV_STATE_MEMORY), *rb = backend(EV_STATE_MEMORY);
	ev_state *st = open_range(b, "inc", 0, 127);
	ev_state_id l = reg(st, "list", EV_STATE_LIST);
	key(st, "k");
	char item[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(item, sizeof(item), "item-%05d-xxxxxxxxx", i);
		cr_assert_eq(ev_list_add(st, l, item, strlen(item)), EDDY_OK);
	}
	char p0[128], p1[128], p2[128];
	strcpy(p0, tmp_path("l0"));
	strcpy(p1, tmp_path("l1"));
	strcpy(p2, tmp_path("l2"));
	ev_state_snapshot *s0, *s1, *s2;
	uint64_t full, d1, d2;
	cr_assert_eq(ev_state_snapshot_begin(st, &s0), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_write(s0, p0, &full), EDDY_OK);
	uint64_t id0 = ev_state_snapshot_id(s0);
	/* appended to while s0 is open (a copy on write) and after (in place) */
	cr_assert_eq(ev_list_add(st, l, "new-1", 5), EDDY_OK);
	ev_state_snapshot_release(s0);
	cr_assert_eq(ev_list_add(st, l, "new-2", 5), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_begin(st, &s1), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_parent(s1), id0);
	cr_assert_eq(ev_state_snapshot_write_delta(s1, p1, "l0", id0, &d1), EDDY_OK, "%s",
	             ev_state_snapshot_errmsg(s1));
	ev_state_snapshot_release(s1);
	cr_assert_lt(d1, 300, "a delta of %llu bytes for two items (the list: %llu)",
	             (unsigned long long)d1, (unsigned long long)full);
	/* replaced: whole */
	ev_bytes one = {"only", 4};
	cr_assert_eq(ev_list_update(st, l, &one, 1), EDDY_OK);
	cr_assert_eq(ev_list_add(st, l, "after", 5), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_begin(st, &s2), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_write_delta(s2, p2, "l1", ev_state_snapshot_parent(s2), &d2),
	             EDDY_OK);
	ev_state_snapshot_release(s2);
	/* each file of the chain restores what was snapshotted */
	const char *heads[] = {p1, p2};
	for (int h = 0; h < 2; h++) {
		ev_state *r = open_range(rb, "inc", 0, 127);
		const char *paths[] = {heads[h]};
		cr_assert_eq(ev_state_restore(r, paths, 1), EDDY_OK, "%s", ev_state_errmsg(r));
		ev_state_id rl = reg(r, "list", EV_STATE_LIST);
		key(r, "k");
		const ev_bytes *items;
		size_t n;
		cr_assert_eq(ev_list_get(r, rl, &items, &n), EDDY_OK);
		if (h == 0) {
			cr_assert_eq(n, 2002);
			cr_assert_eq(memcmp(items[0].p, "item-00000", 10), 0);
			cr_assert_eq(memcmp(items[2000].p, "new-1", 5), 0);
			cr_assert_eq(memcmp(items[2001].p, "new-2", 5), 0);
		} else {
			const char *want[] = {"only", "after"};
			expect_list(r, rl, want, 2);
		}
		ev_state_close(r);
	}
	ev_state_close(st);
	ev_state_backend_destroy(rb);
	finish(b);
}

/* ev_value_take reads a value and removes it; a snapshot taken before still holds it. */
BOTH(value_take_reads_and_removes)
{
	start();
	ev_state_backend *b = backend(kind);
	ev_state *st = open_range(b, "op", 0, 127);
	ev_state_id v = reg(st, "v", EV_STATE_VALUE);
	key(st, "a");
	put_str(st, v, "alpha");
	key(st, "b");
	put_str(st, v, "beta");
	ev_state_snapshot *s;
	cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
	key(st, "a");
	const void *p;
	size_t n;
	cr_assert_eq(ev_value_take(st, v, &p, &n), EDDY_OK, "%s", ev_state_errmsg(st));
	cr_assert_eq(n, 5);
	cr_assert_eq(memcmp(p, "alpha", 5), 0);
	expect_str(st, v, NULL);
	cr_assert_eq(ev_value_take(st, v, &p, &n), EDDY_ENOENT);
	key(st, "b");
	expect_str(st, v, "beta");
	const char *path = tmp_path("take");
	cr_assert_eq(ev_state_snapshot_write(s, path, NULL), EDDY_OK);
	ev_state_snapshot_release(s);
	ev_state_close(st);
	st = open_range(b, "op", 0, 127);
	const char *paths[] = {path};
	cr_assert_eq(ev_state_restore(st, paths, 1), EDDY_OK, "%s", ev_state_errmsg(st));
	v = reg(st, "v", EV_STATE_VALUE);
	key(st, "a");
	expect_str(st, v, "alpha");
	ev_state_close(st);
	finish(b);
}

/* A map row removed between two snapshots stays removed when the delta is restored,
 * whatever the handle's epoch (a helper found it back while the epoch was below 8: a
 * changed map's whole-map delete was decided on a field that had changed meaning). Also
 * a map made since the parent is written without a delete, and one cleared is gone. */
Test(state_memory, delta_of_a_map_with_a_row_removed)
{
	start();
	ev_state_backend *b = backend(EV_STATE_MEMORY), *rb = backend(EV_STATE_MEMORY);
	for (int warm = 0; warm <= 10; warm++) {
		char op[16];
		snprintf(op, sizeof(op), "m%d", warm);
		ev_state *st = open_range(b, op, 0, 127);
		ev_state_id m = reg(st, "m", EV_STATE_MAP);
		key(st, "k");
		map_put_str(st, m, "a", "1");
		map_put_str(st, m, "b", "2");
		key(st, "gone");
		map_put_str(st, m, "x", "1");
		char prev[32] = "", name[32];
		uint64_t prev_id = 0;
		for (int i = 0; i <= warm + 1; i++) {
			if (i == warm + 1) {
				key(st, "k");
				cr_assert_eq(ev_map_remove(st, m, "a", 1), EDDY_OK);
				key(st, "gone");
				cr_assert_eq(ev_state_clear(st, m), EDDY_OK);
				key(st, "new");
				map_put_str(st, m, "n", "3");
			}
			ev_state_snapshot *s;
			cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
			snprintf(name, sizeof(name), "%s-%d", op, i);
			if (prev_id != 0)
				cr_assert_eq(ev_state_snapshot_write_delta(s, tmp_path(name), prev,
				                                           prev_id, NULL),
				             EDDY_OK, "%s", ev_state_snapshot_errmsg(s));
			else
				cr_assert_eq(ev_state_snapshot_write(s, tmp_path(name), NULL),
				             EDDY_OK);
			prev_id = ev_state_snapshot_id(s);
			strcpy(prev, name);
			ev_state_snapshot_release(s);
		}
		ev_state_close(st);
		ev_state *r = open_range(rb, op, 0, 127);
		const char *paths[] = {tmp_path(name)};
		cr_assert_eq(ev_state_restore(r, paths, 1), EDDY_OK, "%s", ev_state_errmsg(r));
		m = reg(r, "m", EV_STATE_MAP);
		char buf[64];
		key(r, "k");
		cr_assert_str_eq(map_dump(r, m, buf, sizeof(buf)), "b=2", "after %d snapshots",
		                 warm);
		key(r, "gone");
		cr_assert_str_eq(map_dump(r, m, buf, sizeof(buf)), "", "after %d snapshots", warm);
		key(r, "new");
		cr_assert_str_eq(map_dump(r, m, buf, sizeof(buf)), "n=3", "after %d snapshots",
		                 warm);
		ev_state_close(r);
	}
	ev_state_backend_destroy(rb);
	finish(b);
}

/* When more entries are removed between two snapshots than are left (a churning state),
 * the handle stops keeping tombstones and the next snapshot cannot be a delta (it is
 * written whole); the one after it can again, and the chain restores exactly. */
Test(state_memory, churn_stops_tombstones_until_the_next_snapshot)
{
	start();
	ev_state_backend *b = backend(EV_STATE_MEMORY), *rb = backend(EV_STATE_MEMORY);
	ev_state *st = open_range(b, "churn", 0, 127);
	ev_state_id v = reg(st, "v", EV_STATE_VALUE);
	char k[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		key(st, k);
		put_str(st, v, k);
	}
	ev_state_snapshot *s0, *s1, *s2;
	char p0[128], p1[128], p2[128];
	strcpy(p0, tmp_path("c0"));
	strcpy(p1, tmp_path("c1"));
	strcpy(p2, tmp_path("c2"));
	cr_assert_eq(ev_state_snapshot_begin(st, &s0), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_write(s0, p0, NULL), EDDY_OK);
	uint64_t id0 = ev_state_snapshot_id(s0);
	ev_state_snapshot_release(s0);
	for (int i = 0; i < 2500; i++) { /* more go than stay */
		snprintf(k, sizeof(k), "key%d", i);
		key(st, k);
		cr_assert_eq(ev_state_clear(st, v), EDDY_OK);
	}
	cr_assert_eq(ev_state_snapshot_begin(st, &s1), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_parent(s1), 0, "a delta after the tombstones were dropped");
	cr_assert_eq(ev_state_snapshot_write_delta(s1, p1, "c0", id0, NULL), EDDY_EINVAL);
	cr_assert_eq(ev_state_snapshot_write(s1, p1, NULL), EDDY_OK);
	key(st, "key2999");
	cr_assert_eq(ev_state_clear(st, v), EDDY_OK);
	key(st, "new");
	put_str(st, v, "n");
	cr_assert_eq(ev_state_snapshot_begin(st, &s2), EDDY_OK);
	cr_assert_eq(ev_state_snapshot_parent(s2), ev_state_snapshot_id(s1));
	cr_assert_eq(ev_state_snapshot_write_delta(s2, p2, "c1", ev_state_snapshot_id(s1), NULL),
	             EDDY_OK);
	ev_state_snapshot_release(s1);
	ev_state_snapshot_release(s2);
	ev_state *r = open_range(rb, "churn", 0, 127);
	const char *paths[] = {p2};
	cr_assert_eq(ev_state_restore(r, paths, 1), EDDY_OK, "%s", ev_state_errmsg(r));
	v = reg(r, "v", EV_STATE_VALUE);
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		key(r, k);
		expect_str(r, v, i < 2500 || i == 2999 ? NULL : k);
	}
	key(r, "new");
	expect_str(r, v, "n");
	ev_state_close(r);
	ev_state_close(st);
	ev_state_backend_destroy(rb);
	finish(b);
}

/* ---- ev_state_entries ---- */

#define WK_N 600

typedef struct wk_seen {
	int calls;
	int stop_after;         /* return EDDY_EIO after this many calls (0: never) */
	uint8_t count[WK_N][2]; /* namespace "" and "x" */
	bool bad;
} wk_seen;

/* wk_fn records one entry of a walk: key "k<i>" with value "v<i>" in namespace "" or
 * "x<i>" in namespace "x". */
static eddy_err wk_fn(void *ctx, const ev_state_entry *e)
{
	wk_seen *w = ctx;
	w->calls++;
	char k[16], want[16];
	int i;
	bool x = e->nslen == 1 && ((const char *)e->ns)[0] == 'x';
	if (e->klen >= sizeof(k) ||
	    (memcpy(k, e->key, e->klen), k[e->klen] = '\0', sscanf(k, "k%d", &i)) != 1 || i < 0 ||
	    i >= WK_N || e->kg != kg_of(e->key, e->klen) || (e->nslen != 0 && !x)) {
		w->bad = true;
		return EDDY_OK;
	}
	w->count[i][x]++;
	snprintf(want, sizeof(want), "%c%d", x ? 'x' : 'v', i);
	if (e->vlen != strlen(want) || memcmp(e->v, want, e->vlen) != 0)
		w->bad = true;
	return w->stop_after && w->calls >= w->stop_after ? EDDY_EIO : EDDY_OK;
}

/* wk_expect walks state id in namespace n (NULL: all) and checks that exactly the entries
 * (i, "") with has(i) and (i, "x") with has_x(i) came, once each. */
static void wk_expect(ev_state *st, ev_state_id id, const char *n, bool (*has)(int),
                      bool (*has_x)(int), const char *what)
{
	wk_seen w = {0};
	cr_assert_eq(ev_state_entries(st, id, n, n ? strlen(n) : 0, wk_fn, &w), EDDY_OK, "%s: %s",
	             what, ev_state_errmsg(st));
	cr_assert(!w.bad, "%s: a key, namespace or value not put there", what);
	for (int i = 0; i < WK_N; i++)
		for (int x = 0; x < 2; x++) {
			bool (*want)(int) = x ? has_x : has;
			cr_assert_eq(w.count[i][x], want && want(i) ? 1 : 0,
			             "%s: key k%d in namespace '%s' came %d times", what, i,
			             x ? "x" : "", w.count[i][x]);
		}
}

static bool wk_in_range(int i)
{
	char k[16];
	snprintf(k, sizeof(k), "k%d", i);
	return kg_of(k, strlen(k)) < 64;
}
static bool wk_v(int i)
{
	return wk_in_range(i) && i % 3 != 0 && i % 7 != 0;
}
static bool wk_x(int i)
{
	return wk_in_range(i) && i % 5 == 0;
}
static bool wk_w(int i)
{
	return wk_in_range(i);
}

BOTH(entries_walk_lists_each_key_and_namespace_of_a_state_once)
{
	start();
	ev_state_backend *b = backend(kind);
	/* this handle has key groups 0..63; another subtask of the operator has 64..127 and
	 * another operator all: their keys must not come */
	ev_state *st = open_range(b, "op", 0, 63), *hi = open_range(b, "op", 64, 127),
	         *other = open_range(b, "op2", 0, 127);
	ev_state_id v = reg(st, "v", EV_STATE_VALUE), w = reg(st, "w", EV_STATE_VALUE),
	            l = reg(st, "l", EV_STATE_LIST), m = reg(st, "m", EV_STATE_MAP);
	ev_state_id hv = reg(hi, "v", EV_STATE_VALUE), ov = reg(other, "v", EV_STATE_VALUE);
	char k[16], val[16];
	for (int i = 0; i < WK_N; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		ev_state *dst = wk_in_range(i) ? st : hi;
		ev_state_id dv = wk_in_range(i) ? v : hv;
		key(dst, k);
		key(other, k);
		snprintf(val, sizeof(val), "v%d", i);
		put_str(other, ov, val);
		if (i % 3 != 0)
			put_str(dst, dv, val);
		if (dst != st)
			continue;
		put_str(st, w, val);
		cr_assert_eq(ev_list_add(st, l, "item", 4), EDDY_OK);
		cr_assert_eq(ev_map_put(st, m, "uk", 2, "mv", 2), EDDY_OK);
		if (i % 5 == 0) {
			ns(st, "x");
			snprintf(val, sizeof(val), "x%d", i);
			put_str(st, v, val);
			ns(st, "");
		}
		if (i ==
		    WK_N / 2) { /* LevelDB: the first half in the database, the rest buffered */
			ev_state_snapshot *s;
			cr_assert_eq(ev_state_snapshot_begin(st, &s), EDDY_OK);
			ev_state_snapshot_release(s);
		}
	}
	for (int i = 0; i < WK_N; i += 7) { /* removed again */
		snprintf(k, sizeof(k), "k%d", i);
		if (!wk_in_range(i))
			continue;
		key(st, k);
		cr_assert_eq(ev_state_clear(st, v), EDDY_OK);
	}
	ev_state *flush[] = {hi, other}; /* LevelDB: their keys in the database too */
	for (int i = 0; i < 2; i++) {
		ev_state_snapshot *s;
		cr_assert_eq(ev_state_snapshot_begin(flush[i], &s), EDDY_OK);
		ev_state_snapshot_release(s);
	}
	int cur = 1;
	while (!wk_v(cur))
		cur++;
	snprintf(k, sizeof(k), "k%d", cur);
	key(st, k);
	wk_expect(st, v, "", wk_v, NULL, "v");
	wk_expect(st, v, "x", NULL, wk_x, "v in namespace x");
	wk_expect(st, v, NULL, wk_v, wk_x, "v in any namespace");
	wk_expect(st, w, "", wk_w, NULL, "w");
	snprintf(val, sizeof(val), "v%d", cur);
	expect_str(st, v, val); /* the current key and namespace stayed */
	/* a map state cannot be walked (LevelDB keeps one entry per map key) */
	wk_seen none = {0};
	cr_assert_eq(ev_state_entries(st, m, "", 0, wk_fn, &none), EDDY_EINVAL);
	cr_assert_eq(ev_state_entries(st, 999, "", 0, wk_fn, &none), EDDY_EINVAL);
	cr_assert_eq(none.calls, 0);
	/* fn's error stops the walk */
	wk_seen stop = {.stop_after = 3};
	cr_assert_eq(ev_state_entries(st, w, "", 0, wk_fn, &stop), EDDY_EIO);
	cr_assert_eq(stop.calls, 3);
	ev_state_close(st);
	ev_state_close(hi);
	ev_state_close(other);
	finish(b);
}
