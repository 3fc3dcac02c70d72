/*
 * The join operator (operators/join.c) through its op_def hooks, driven by the operator
 * harness (op_harness.h): window joins (tumbling, sliding, session, allowed lateness),
 * interval joins on their bounds, regular joins with and without ttl, late elements,
 * checkpoints restored on both state backends and at another parallelism, and state of
 * another operator. Every expected row is worked out by hand in the test's comments.
 *
 * Streams: left (k int, lv string), right (k int, rv string), joined on k; the output is
 * (k, lv, rk, rv). Rows are "TS|fields..." (op_harness.h), TS the event time in ms.
 */
#include "op_harness.h"

#include "../../operators/ops.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>
#include <sys/stat.h>

static struct {
	ev_schema l, r, out;
	expr *lk[1], *rk[1];
	join_conf c;
	oph_opts o;
	char dir[64];
	ev_state_backend *be;
} F;

/* setup prepares a join of conf's kind and options (keys, schemas and ports are set
 * here) on a backend of `kind`. */
static void setup(ev_state_backend_kind kind, join_conf conf)
{
	memset(&F, 0, sizeof(F));
	cr_assert_eq(schema_add(&F.l, "k", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&F.l, "lv", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(&F.r, "k", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&F.r, "rv", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(&F.out, "k", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&F.out, "lv", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(&F.out, "rk", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&F.out, "rv", EV_STRING), EDDY_OK);
	cr_assert_eq(expr_compile("k", &F.l, &F.lk[0], NULL), EDDY_OK);
	cr_assert_eq(expr_compile("k", &F.r, &F.rk[0], NULL), EDDY_OK);
	F.c = conf;
	F.c.keys[0] = F.lk;
	F.c.keys[1] = F.rk;
	F.c.nkeys = 1;
	F.c.in[0] = &F.l;
	F.c.in[1] = &F.r;
	F.c.out = &F.out;
	oph_tmpdir(F.dir);
	F.be = oph_backend(kind, F.dir);
	F.o = (oph_opts){.op = &join_op,
	                 .conf = &F.c,
	                 .ninputs = 2,
	                 .in = {&F.l, &F.r},
	                 .keys = {F.lk, F.rk},
	                 .nkeys = 1,
	                 .nports = 3,
	                 .backend = F.be,
	                 .state_id = "test/join"};
}

static oph *open_join(void)
{
	oph *h;
	OK(h, oph_open(&F.o, 0, NULL, 0, &h));
	return h;
}

static void teardown(oph *h)
{
	oph_close(h);
	ev_state_backend_destroy(F.be);
	expr_free(F.c.where);
	expr_free(F.lk[0]);
	expr_free(F.rk[0]);
	schema_clear(&F.l);
	schema_clear(&F.r);
	schema_clear(&F.out);
	oph_rmtree(F.dir);
}

static uint64_t late_dropped(oph *h)
{
	return oph_stats(h)->late_dropped;
}

#define L(h, ...) OK(h, oph_process(h, 0, ROWS(&F.l, __VA_ARGS__)))
#define R(h, ...) OK(h, oph_process(h, 1, ROWS(&F.r, __VA_ARGS__)))
#define WM(h, w) OK(h, oph_watermark(h, w))

/* int_key: the join's encoding of the int key v (join.c key_encode: type byte, 8 bytes) */
static size_t int_key(int64_t v, char out[9])
{
	out[0] = (char)EV_INT;
	memcpy(out + 1, &v, 8);
	return 9;
}

static void set_int_key(oph *h, int64_t v)
{
	char key[9];
	ev_val kv = {.type = EV_INT, .i = v};
	cr_assert_eq(ev_state_set_key(oph_state(h), key, int_key(v, key), oph_key_group(h, &kv, 1)),
	             EDDY_OK);
}

/* expect_no_buckets: key k has no element left on either side (map state "buf") and no
 * timer is left: the state was cleaned up. */
static void expect_no_buckets(oph *h, int64_t k)
{
	ev_state *st = oph_state(h);
	ev_state_id buf;
	ev_state_desc d = {.name = "buf", .kind = EV_STATE_MAP};
	cr_assert_eq(ev_state_register(st, &d, &buf), EDDY_OK);
	set_int_key(h, k);
	for (int side = 0; side < 2; side++) {
		const ev_map_entry *e;
		size_t n;
		cr_assert_eq(ev_state_set_namespace(st, side ? "R" : "L", 1), EDDY_OK);
		cr_assert_eq(ev_map_entries(st, buf, &e, &n), EDDY_OK);
		cr_assert_eq(n, 0, "key %lld: %zu timestamps left on side %c", (long long)k, n,
		             side ? 'R' : 'L');
	}
	cr_assert_eq(ev_timer_count(st, EV_TIME_EVENT), 0, "%zu timers left",
	             ev_timer_count(st, EV_TIME_EVENT));
}

/* expect_window_gone: key k's window starting at `start` holds nothing any more (lists
 * "l" and "r", meta "m") and no timer is left: the window was purged. */
static void expect_window_gone(oph *h, int64_t k, int64_t start)
{
	ev_state *st = oph_state(h);
	ev_state_id id[3];
	const char *names[3] = {"l", "r", "m"};
	for (int i = 0; i < 3; i++) {
		ev_state_desc d = {.name = names[i],
		                   .kind = i < 2 ? EV_STATE_LIST : EV_STATE_VALUE};
		cr_assert_eq(ev_state_register(st, &d, &id[i]), EDDY_OK);
	}
	set_int_key(h, k);
	cr_assert_eq(ev_state_set_namespace(st, &start, sizeof(start)), EDDY_OK);
	for (int i = 0; i < 2; i++) {
		const ev_bytes *items;
		size_t n;
		cr_assert_eq(ev_list_get(st, id[i], &items, &n), EDDY_OK);
		cr_assert_eq(n, 0, "list %s of the window still has %zu items", names[i], n);
	}
	const void *v;
	size_t len;
	cr_assert_eq(ev_value_get(st, id[2], &v, &len), EDDY_ENOENT, "the window's meta is left");
	cr_assert_eq(ev_timer_count(st, EV_TIME_EVENT), 0, "%zu timers left",
	             ev_timer_count(st, EV_TIME_EVENT));
}

/* ---- window joins ---- */

static const join_conf tumbling10 = {.kind = JOIN_WINDOW, .win = WIN_TUMBLING, .size_ms = 10};

/* Tumbling windows of 10 ms: [0, 10), [10, 20), ... A pair is two elements of one key in
 * one window, emitted when the watermark reaches end - 1 with event time end - 1. */
BOTH(join, tumbling_pairs_per_window_and_late_elements_dropped)
{
	setup(kind, tumbling10);
	oph *h = open_join();
	L(h, "1|1|a", "5|2|b", "12|1|c", "3|3|x");
	R(h, "2|1|A", "9|1|B", "11|1|C", "4|2|D", "15|4|E");
	EXPECT_NONE(h, 0); /* nothing before a window fires */
	WM(h, 8);
	EXPECT_NONE(h, 0); /* [0, 10) fires at 9, not 8 */
	/* [0, 10): k1 a x {A, B}; k2 b x D; k3's x has no right element. a and C (k1, but C
	 * at 11 is in [10, 20)) are no pair. */
	WM(h, 9);
	EXPECT(h, 0, "9|1|a|1|A", "9|1|a|1|B", "9|2|b|2|D");
	/* [10, 20): k1 c x C; k4's E has no left element */
	WM(h, 19);
	EXPECT(h, 0, "19|1|c|1|C");
	/* late: [0, 10) is past 9 + 0 (no allowed lateness) under watermark 19, and so is
	 * [10, 20) for an element at 19 (end - 1 = 19 <= 19): dropped and counted */
	L(h, "5|1|late");
	R(h, "19|1|late");
	cr_assert_eq(late_dropped(h), 2);
	/* on time again: [20, 30) */
	L(h, "20|1|d");
	R(h, "25|1|F");
	WM(h, 29);
	EXPECT(h, 0, "29|1|d|1|F");
	EXPECT_NONE(h, 1); /* no late output configured: nothing on the late ports */
	EXPECT_NONE(h, 2);
	teardown(h);
}

/* With late_output {left, right} the late elements go to ports 1 and 2 as they came. */
BOTH(join, tumbling_late_elements_to_the_late_outputs)
{
	join_conf c = tumbling10;
	c.has_late_output[0] = c.has_late_output[1] = true;
	setup(kind, c);
	oph *h = open_join();
	L(h, "1|1|a");
	R(h, "2|1|A");
	WM(h, 9);
	EXPECT(h, 0, "9|1|a|1|A");
	/* 9 and 0 are in [0, 10), past at watermark 9; 10 is in [10, 20), open */
	L(h, "9|1|late-left", "10|1|on-time");
	R(h, "0|1|late-right");
	EXPECT(h, 1, "9|1|late-left");
	EXPECT(h, 2, "0|1|late-right");
	cr_assert_eq(late_dropped(h), 0); /* sent to the late outputs, not dropped */
	R(h, "15|1|B");
	WM(h, 19);
	EXPECT(h, 0, "19|1|on-time|1|B");
	teardown(h);
}

/* `where` runs on the joined row: a false pair is not emitted. */
BOTH(join, where_filters_pairs)
{
	setup(kind, tumbling10);
	expr_error err;
	cr_assert_eq(expr_compile("rv != 'B'", &F.out, &F.c.where, &err), EDDY_OK, "%s", err.msg);
	oph *h = open_join();
	L(h, "1|1|a");
	R(h, "2|1|A", "3|1|B", "4|1|C");
	WM(h, 9);
	EXPECT(h, 0, "9|1|a|1|A", "9|1|a|1|C"); /* a x B is false */
	teardown(h);
}

/* Allowed lateness 5 ms: a window fires at end - 1 and is kept until end - 1 + 5; an
 * element for it in between joins the other side's elements of it at once (only its new
 * pairs, as join.c documents), then it is purged and later elements are late. */
BOTH(join, allowed_lateness_joins_late_elements_once)
{
	join_conf c = tumbling10;
	c.lateness_ms = 5;
	setup(kind, c);
	oph *h = open_join();
	L(h, "1|1|a");
	R(h, "2|1|A");
	WM(h, 9);
	EXPECT(h, 0, "9|1|a|1|A");
	/* watermark 9, lateness 5: [0, 10) is kept until 14; b joins A now, with the
	 * window's time 9 */
	L(h, "7|1|b");
	EXPECT(h, 0, "9|1|b|1|A");
	/* B joins a and b (not A again: only new pairs) */
	R(h, "8|1|B");
	EXPECT(h, 0, "9|1|a|1|B", "9|1|b|1|B");
	cr_assert_eq(late_dropped(h), 0);
	WM(h, 14); /* 9 + 5: purged */
	EXPECT_NONE(h, 0);
	expect_window_gone(h, 1, 0);
	L(h, "6|1|c"); /* 9 <= 14 - 5: late */
	EXPECT_NONE(h, 0);
	cr_assert_eq(late_dropped(h), 1);
	teardown(h);
}

/* Sliding windows of 10 ms every 5 ms: an element at t is in [s, s + 10) for the s that
 * are multiples of 5 in (t - 10, t]. a (3) is in [-5, 5) and [0, 10); A (4) in [-5, 5)
 * and [0, 10); B (7) in [0, 10) and [5, 15); C (5, on a slide) in [0, 10) and [5, 15),
 * not [-5, 5). Pairs: a x A in [-5, 5) (time 4) and again in [0, 10) (time 9), a x B and
 * a x C in [0, 10) (time 9); [5, 15) has no left element. */
BOTH(join, sliding_pairs_once_per_shared_window)
{
	join_conf c = {.kind = JOIN_WINDOW, .win = WIN_SLIDING, .size_ms = 10, .slide_ms = 5};
	setup(kind, c);
	oph *h = open_join();
	L(h, "3|1|a");
	R(h, "4|1|A", "7|1|B", "5|1|C");
	WM(h, 4);
	EXPECT(h, 0, "4|1|a|1|A");
	WM(h, 9);
	EXPECT(h, 0, "9|1|a|1|A", "9|1|a|1|B", "9|1|a|1|C");
	WM(h, 14);
	EXPECT_NONE(h, 0);
	/* late: t = 9 has [0, 10) and [5, 15), both past at watermark 14; t = 12 has
	 * [5, 15) (past) and [10, 20) (open): not late, it goes to [10, 20) only */
	L(h, "9|1|late", "12|1|b");
	cr_assert_eq(late_dropped(h), 1);
	R(h, "12|1|B");
	WM(h, 19);
	EXPECT(h, 0, "19|1|b|1|B");
	teardown(h);
}

/* Session windows, gap 5 ms: an element at t is the session [t, t + 5); sessions of a
 * key that touch or overlap merge (as Flink's TimeWindow.intersects), over both inputs. */
BOTH(join, session_windows_merge_across_inputs)
{
	join_conf c = {.kind = JOIN_WINDOW, .win = WIN_SESSION, .gap_ms = 5};
	setup(kind, c);
	oph *h = open_join();
	/* k1: a [1, 6) and A [9, 14) are apart; c [5, 10) touches both: one session
	 * [1, 14), which fires at 13 with a x A and c x A.
	 * k2: b [1, 6) and B [9, 14) stay apart: no pair.
	 * k3: t [1, 6) and T [6, 11) touch at 6: one session [1, 11), fires at 10. */
	L(h, "1|1|a", "1|2|b", "1|3|t");
	R(h, "9|1|A", "9|2|B", "6|3|T");
	L(h, "5|1|c");
	WM(h, 9);
	EXPECT_NONE(h, 0); /* no session ends by 9 (k2's [1, 6) has no right element) */
	WM(h, 10);
	EXPECT(h, 0, "10|3|t|3|T");
	WM(h, 12);
	EXPECT_NONE(h, 0);
	WM(h, 13);
	EXPECT(h, 0, "13|1|a|1|A", "13|1|c|1|A");
	/* late: a session [t, t + 5) past under watermark 13: t + 4 <= 13 */
	R(h, "9|1|late");
	cr_assert_eq(late_dropped(h), 1);
	teardown(h);
}

/* ---- interval joins ---- */

/* lower -2, upper 3: a pair when left.ts - 2 <= right.ts <= left.ts + 3 (both bounds
 * inclusive, as Flink's IntervalJoinOperator), emitted when its second element arrives,
 * with the larger of the two times. */
BOTH(join, interval_bounds_are_inclusive)
{
	join_conf c = {.kind = JOIN_INTERVAL, .lower_ms = -2, .upper_ms = 3};
	setup(kind, c);
	oph *h = open_join();
	/* left a at 10 takes right times 8 .. 13: 7 is one ms before, 14 one after */
	L(h, "10|1|a");
	EXPECT_NONE(h, 0);
	R(h, "7|1|R7", "8|1|R8", "13|1|R13", "14|1|R14", "10|9|other-key");
	EXPECT(h, 0, "10|1|a|1|R8", "13|1|a|1|R13");
	/* the right element first: S at 20 matches left times 17 .. 22 */
	R(h, "20|2|S20");
	L(h, "22|2|b", "17|2|c", "16|2|d", "23|2|e");
	EXPECT(h, 0, "22|2|b|2|S20", "20|2|c|2|S20");
	teardown(h);
}

/* An interval join's element is late when its time is at or before the watermark; the
 * state of an element stays until no later element can match it. */
BOTH(join, interval_late_elements_and_cleanup)
{
	join_conf c = {.kind = JOIN_INTERVAL, .lower_ms = -2, .upper_ms = 3};
	setup(kind, c);
	oph *h = open_join();
	L(h, "22|2|b", "23|2|e", "17|2|c");
	WM(h, 20);
	L(h, "20|2|late"); /* 20 <= 20 */
	cr_assert_eq(late_dropped(h), 1);
	/* S at 21 (not late) matches left times 18 .. 23: b (22) and e (23), kept past the
	 * watermark (their right partners can come until 22 + 3 and 23 + 3); c (17) would
	 * not match anyway */
	R(h, "21|2|S21");
	EXPECT(h, 0, "22|2|b|2|S21", "23|2|e|2|S21");
	/* after watermark 30 every left element is gone: a right element at 31 matches left
	 * times 28 .. 33 only, and there are none */
	WM(h, 30);
	R(h, "31|2|S31");
	EXPECT_NONE(h, 0);
	L(h, "30|2|late2"); /* 30 <= 30 */
	cr_assert_eq(late_dropped(h), 2);
	/* S31 can match left times up to 33: it is kept until then; after that the key's
	 * state and timers are all gone */
	WM(h, 33);
	expect_no_buckets(h, 2);
	teardown(h);
}

/* ---- regular joins ---- */

/* Without ttl every element joins every element of the other side with its key, at any
 * time apart, with the arriving element's time; nothing is ever late. A null key joins
 * nothing (SQL equality). */
BOTH(join, regular_joins_across_time)
{
	join_conf c = {.kind = JOIN_REGULAR};
	setup(kind, c);
	oph *h = open_join();
	L(h, "1|1|a");
	R(h, "1000000|1|A");
	EXPECT(h, 0, "1000000|1|a|1|A");
	WM(h, 5000000);
	L(h, "2|1|b"); /* joins A, with its own time */
	EXPECT(h, 0, "2|1|b|1|A");
	R(h, "3|2|B"); /* no left element of key 2 */
	EXPECT_NONE(h, 0);
	L(h, "4|null|n");
	R(h, "5|null|N");
	EXPECT_NONE(h, 0);
	R(h, "6000000|1|C"); /* both left elements are still there */
	EXPECT(h, 0, "6000000|1|a|1|C", "6000000|1|b|1|C");
	cr_assert_eq(late_dropped(h), 0);
	teardown(h);
}

/* With ttl 100 ms: elements whose times differ by 100 or more never join; an element
 * leaves the state when the watermark reaches its time + 100; one that arrives with time
 * + 100 <= the watermark is late. */
BOTH(join, regular_ttl_expires_state)
{
	join_conf c = {.kind = JOIN_REGULAR, .ttl_ms = 100};
	setup(kind, c);
	oph *h = open_join();
	L(h, "0|1|a");
	R(h, "99|1|A", "100|1|B"); /* 99 apart: a pair; 100 apart: none */
	EXPECT(h, 0, "99|1|a|1|A");
	L(h, "50|2|b");
	WM(h, 149); /* b (50) stays until 150 */
	R(h, "140|2|C");
	EXPECT(h, 0, "140|2|b|2|C");
	WM(h, 150);      /* b expires */
	R(h, "145|2|D"); /* 95 from b: it would join, but b is gone */
	EXPECT_NONE(h, 0);
	R(h, "40|2|E"); /* 40 + 100 <= 150: late */
	cr_assert_eq(late_dropped(h), 1);
	WM(h, 245); /* 145 + 100: D, the last one, expires too */
	expect_no_buckets(h, 2);
	teardown(h);
}

/* ---- checkpoints and restore ---- */

/* A window join with allowed lateness: a fired window kept for late elements, open
 * windows and their timers, and the watermark are all in the checkpoint.
 * Uninterrupted: [0, 10) fires at 9 with a x A and b x B; A2 joins a late (9|1|a|1|A2);
 * at 14 it is purged; [10, 20) gets c, C and D, then (after the cut) late is late
 * (9 <= 14 - 5: only if the watermark 14 was restored), d joins D, [10, 20) fires at 19
 * with c x C and d x D, C2 joins c late, and x is late after watermark 30. */
static const oph_step window_script[] = {
    {0, 0, {"1|1|a", "3|2|b", "12|1|c", NULL}},
    {1, 0, {"2|1|A", "4|2|B", NULL}},
    {OPH_WM, 9, {NULL}},
    {1, 0, {"8|1|A2", NULL}},
    {OPH_WM, 14, {NULL}},
    {1, 0, {"15|1|C", "13|2|D", NULL}},
    /* cut: 6 */
    {0, 0, {"3|1|late", NULL}},
    {0, 0, {"18|2|d", NULL}},
    {OPH_WM, 19, {NULL}},
    {1, 0, {"11|1|C2", NULL}},
    {OPH_WM, 30, {NULL}},
    {0, 0, {"16|1|x", NULL}},
};
#define NSTEPS(s) (sizeof(s) / sizeof((s)[0]))

/* The uninterrupted run, checked by hand; then cut at 6 by a checkpoint, restored at the
 * same parallelism and from 2 subtasks into 1 (keys 1 and 2 are on different subtasks of
 * 2: the harness checks that every old subtask had rows). */
BOTH(join, window_checkpoint_restore)
{
	join_conf c = tumbling10;
	c.lateness_ms = 5;
	setup(kind, c);
	oph *h = open_join();
	oph_run(&h, 1, window_script, 0, NSTEPS(window_script));
	EXPECT(h, 0, "9|1|a|1|A", "9|2|b|2|B", "9|1|a|1|A2", "19|1|c|1|C", "19|2|d|2|D",
	       "19|1|c|1|C2");
	cr_assert_eq(late_dropped(h), 2);
	oph_close(h);
	oph_check_restore(&F.o, kind, window_script, NSTEPS(window_script), 6, 1, 1);
	oph_check_restore(&F.o, kind, window_script, NSTEPS(window_script), 6, 2, 1);
	teardown(NULL);
}

/* Interval join (lower -2, upper 3). Uninterrupted: R8 joins a (10|1|a|1|R8); S12 joins
 * b (12|2|b|2|S12); after the cut R13 joins the restored a (13), 9 is late under the
 * restored watermark 9, c (11) joins the restored S12 (12); after watermark 20, S21 finds
 * nothing (left elements 10, 11 were cleaned up; they would not match 21 anyway). */
static const oph_step interval_script[] = {
    {0, 0, {"10|1|a", "10|2|b", NULL}},
    {1, 0, {"8|1|R8", NULL}},
    {OPH_WM, 9, {NULL}},
    {1, 0, {"12|2|S12", NULL}},
    /* cut: 4 */
    {1, 0, {"13|1|R13", NULL}},
    {0, 0, {"9|1|late", NULL}},
    {0, 0, {"11|2|c", NULL}},
    {OPH_WM, 20, {NULL}},
    {1, 0, {"21|2|S21", NULL}},
};

/* the uninterrupted run by hand, then restored at 1 and rescaled from 1 to 2 */
BOTH(join, interval_checkpoint_restore)
{
	setup(kind, (join_conf){.kind = JOIN_INTERVAL, .lower_ms = -2, .upper_ms = 3});
	oph *h = open_join();
	oph_run(&h, 1, interval_script, 0, NSTEPS(interval_script));
	EXPECT(h, 0, "10|1|a|1|R8", "12|2|b|2|S12", "13|1|a|1|R13", "12|2|c|2|S12");
	cr_assert_eq(late_dropped(h), 1);
	oph_close(h);
	oph_check_restore(&F.o, kind, interval_script, NSTEPS(interval_script), 4, 1, 1);
	oph_check_restore(&F.o, kind, interval_script, NSTEPS(interval_script), 4, 1, 2);
	teardown(NULL);
}

/* Regular join with ttl 100. Uninterrupted: A joins a (99); after the cut C joins the
 * restored b (140), B is 100 from a (no pair), the watermark 150 expires both, D finds
 * nothing, E is late. */
static const oph_step regular_script[] = {
    {0, 0, {"0|1|a", "50|2|b", NULL}},
    {1, 0, {"99|1|A", NULL}},
    {OPH_WM, 60, {NULL}},
    /* cut: 3 */
    {1, 0, {"140|2|C", NULL}},
    {1, 0, {"100|1|B", NULL}},
    {OPH_WM, 150, {NULL}},
    {1, 0, {"145|2|D", NULL}},
    {1, 0, {"40|2|E", NULL}},
};

/* the uninterrupted run by hand, then rescaled from 2 to 1 */
BOTH(join, regular_checkpoint_restore)
{
	setup(kind, (join_conf){.kind = JOIN_REGULAR, .ttl_ms = 100});
	oph *h = open_join();
	oph_run(&h, 1, regular_script, 0, NSTEPS(regular_script));
	EXPECT(h, 0, "99|1|a|1|A", "140|2|b|2|C");
	cr_assert_eq(late_dropped(h), 1);
	oph_close(h);
	oph_check_restore(&F.o, kind, regular_script, NSTEPS(regular_script), 3, 2, 1);
	teardown(NULL);
}

/* Restored at another parallelism, the join takes the lowest watermark of the old
 * subtasks (their state may still wait for elements the lowest one allows). Interval
 * join: subtask 0 (key 1) had watermark 9, subtask 1 (key 2) watermark 20; restored into
 * one subtask, A at 15 is not late (15 > 9) and joins the restored a (13); B at 24 joins
 * the restored b (22). */
BOTH(join, rescaled_restore_takes_the_lowest_watermark)
{
	setup(kind, (join_conf){.kind = JOIN_INTERVAL, .lower_ms = -2, .upper_ms = 3});
	F.o.parallelism = 2;
	oph *h[2];
	oph_snap s[2];
	for (uint32_t k = 0; k < 2; k++)
		OK(h[k], oph_open(&F.o, k, NULL, 0, &h[k]));
	ev_val one = {.type = EV_INT, .i = 1};
	cr_assert_eq(ev_key_group_subtask(oph_key_group(h[0], &one, 1), 128, 2), 0);
	oph_run(h, 2, (const oph_step[]){{0, 0, {"13|1|a", "22|2|b", NULL}}}, 0, 1);
	cr_assert_eq(oph_records_in(h[0]), 1); /* key 2 is on subtask 1 */
	OK(h[0], oph_watermark(h[0], 9));
	OK(h[1], oph_watermark(h[1], 20));
	for (uint32_t k = 0; k < 2; k++) {
		OK(h[k], oph_snapshot(h[k], 1, F.dir, &s[k]));
		oph_close(h[k]);
	}
	F.o.parallelism = 1;
	ev_state_backend_destroy(F.be);
	char db[128];
	snprintf(db, sizeof(db), "%s/b", F.dir);
	cr_assert_eq(mkdir(db, 0700), 0);
	F.be = F.o.backend = oph_backend(kind, db);
	oph *r;
	OK(r, oph_open(&F.o, 0, s, 2, &r));
	R(r, "15|1|A", "24|2|B");
	EXPECT(r, 0, "15|1|a|1|A", "24|2|b|2|B");
	cr_assert_eq(late_dropped(r), 0);
	R(r, "9|1|late"); /* 9 <= 9 */
	cr_assert_eq(late_dropped(r), 1);
	oph_snap_free(&s[0]);
	oph_snap_free(&s[1]);
	teardown(r);
}

/* Without ttl the state is one list per side ("all"): also restored. Left a before the
 * cut, A after it must still find a. */
static const oph_step all_script[] = {
    {0, 0, {"1|1|a", "2|2|b", NULL}},
    {1, 0, {"3|2|B", NULL}},
    /* cut: 2 */
    {1, 0, {"4|1|A", NULL}},
    {0, 0, {"5|2|b2", NULL}},
};

BOTH(join, regular_without_ttl_restore_equals_uninterrupted)
{
	setup(kind, (join_conf){.kind = JOIN_REGULAR});
	oph *h = open_join();
	oph_run(&h, 1, all_script, 0, NSTEPS(all_script));
	EXPECT(h, 0, "3|2|b|2|B", "4|1|a|1|A", "5|2|b2|2|B");
	oph_close(h);
	oph_check_restore(&F.o, kind, all_script, NSTEPS(all_script), 2, 1, 1);
	teardown(NULL);
}

/* ---- bad state ---- */

/* snap_of takes a checkpoint of a fresh join (an empty keyed state) into *s, then
 * replaces its op part with the msgpack value {"v": v, "wm": 0} (v < 0: nil). */
static void snap_with_version(oph_snap *s, int v)
{
	oph *h = open_join();
	OK(h, oph_snapshot(h, 1, F.dir, s));
	oph_close(h);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (v < 0) {
		msgpack_pack_nil(&pk);
	} else {
		msgpack_pack_map(&pk, 2);
		msgpack_pack_str_with_body(&pk, "v", 1);
		msgpack_pack_int(&pk, v);
		msgpack_pack_str_with_body(&pk, "wm", 2);
		msgpack_pack_int(&pk, 0);
	}
	oph_snap_free(s);
	s->len = sb.size;
	s->op = msgpack_sbuffer_release(&sb);
}

/* A restore from a snapshot that is not a join's of version 1 fails, saying so. */
BOTH(join, restore_refuses_another_snapshot)
{
	setup(kind, tumbling10);
	for (int v = -1; v <= 2; v += 3) { /* nil, then version 2 */
		oph_snap s;
		snap_with_version(&s, v);
		oph *h;
		cr_assert_eq(oph_open(&F.o, 0, &s, 1, &h), EDDY_EFAILED);
		cr_assert_str_eq(oph_failure(h),
		                 "join: the checkpoint holds no join state of version 1");
		oph_close(h);
		oph_snap_free(&s);
	}
	teardown(NULL);
}

/* A checkpoint of a join of another shape (a 10 ms window restored into a 20 ms one, an
 * interval join's into a window join) or of another operator (a top_n's, under the same
 * id) is refused naming both; allowed lateness may change. */
BOTH(join, restore_refuses_another_shape_or_operator)
{
	setup(kind, tumbling10);
	oph *h = open_join();
	R(h, "2|1|A");
	oph_snap s;
	OK(h, oph_snapshot(h, 1, F.dir, &s));
	oph_close(h);
	F.c.size_ms = 20;
	cr_assert_eq(oph_open(&F.o, 0, &s, 1, &h), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h),
	                 "join: the checkpoint's join is 'window tumbling 10/0/0 left int string "
	                 "right int string', this one is 'window tumbling 20/0/0 left int string "
	                 "right int string' (kind, window size/slide/gap, bounds or ttl in ms, "
	                 "the inputs' field types): its state cannot be restored into it");
	oph_close(h);
	F.c = (join_conf){.kind = JOIN_INTERVAL,
	                  .lower_ms = -5,
	                  .upper_ms = 5,
	                  .keys = {F.lk, F.rk},
	                  .nkeys = 1,
	                  .in = {&F.l, &F.r},
	                  .out = &F.out};
	cr_assert_eq(oph_open(&F.o, 0, &s, 1, &h), EDDY_EFAILED);
	cr_assert(strstr(oph_failure(h), "this one is 'interval -5..5 left int string") != NULL,
	          "%s", oph_failure(h));
	oph_close(h);
	F.c = tumbling10;
	F.c.lateness_ms = 100; /* the same shape: lateness is not part of it */
	F.c.keys[0] = F.lk;
	F.c.keys[1] = F.rk;
	F.c.nkeys = 1;
	F.c.in[0] = &F.l;
	F.c.in[1] = &F.r;
	F.c.out = &F.out;
	OK(h, oph_open(&F.o, 0, &s, 1, &h));
	oph_close(h);
	oph_snap_free(&s);
	/* another operator's snapshot under this id */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "wm", 2);
	msgpack_pack_int64(&pk, 0);
	op_pack_shape(&pk, "top_n", "tumbling 10/0 order int desc n 1 keys 1 in int");
	oph_snap t = {.len = sb.size};
	t.op = msgpack_sbuffer_release(&sb);
	snprintf(t.path, sizeof(t.path), "%s", s.path);
	t.parallelism = s.parallelism;
	cr_assert_eq(oph_open(&F.o, 0, &t, 1, &h), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h), "join: the checkpoint holds the state of a top_n, not of "
	                                 "a join (an operator of this id changed type): it cannot "
	                                 "be restored into it");
	oph_snap_free(&t);
	teardown(h);
}

/* A window's element list holding something else than encoded elements (another
 * operator's state under this one's name): the firing fails with a clear reason. */
BOTH(join, window_with_foreign_elements_fails_clearly)
{
	setup(kind, tumbling10);
	oph *h = open_join();
	R(h, "2|1|A"); /* window [0, 10) of key 1, its timer at 9 */
	ev_state *st = oph_state(h);
	ev_state_id l;
	ev_state_desc d = {.name = "l", .kind = EV_STATE_LIST};
	cr_assert_eq(ev_state_register(st, &d, &l), EDDY_OK);
	set_int_key(h, 1);
	int64_t ns = 0;
	cr_assert_eq(ev_state_set_namespace(st, &ns, sizeof(ns)), EDDY_OK);
	cr_assert_eq(ev_list_add(st, l, "\x7f", 1), EDDY_OK); /* says 127 bytes follow */
	cr_assert_eq(oph_watermark(h, 9), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h), "join: a window's elements are not encoded elements "
	                                 "(another operator's state?)");
	EXPECT_NONE(h, 0);
	teardown(h);
}

/* An interval join's bucket of another shape: the arriving element's join fails clearly. */
BOTH(join, interval_with_foreign_bucket_fails_clearly)
{
	setup(kind, (join_conf){.kind = JOIN_INTERVAL, .lower_ms = -2, .upper_ms = 3});
	oph *h = open_join();
	ev_state *st = oph_state(h);
	ev_state_id buf;
	ev_state_desc d = {.name = "buf", .kind = EV_STATE_MAP};
	cr_assert_eq(ev_state_register(st, &d, &buf), EDDY_OK);
	set_int_key(h, 1);
	cr_assert_eq(ev_state_set_namespace(st, "R", 1), EDDY_OK);
	cr_assert_eq(ev_map_put(st, buf, "abc", 3, "x", 1), EDDY_OK); /* a 3-byte map key */
	cr_assert_eq(oph_process(h, 0, ROWS(&F.l, "10|1|a")), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h), "join: a bucket of the state is not one of a join");
	EXPECT_NONE(h, 0);
	teardown(h);
}
