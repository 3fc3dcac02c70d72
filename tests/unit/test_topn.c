/*
 * The top_n operator (operators/topn.c) through its op_def hooks, driven by the operator
 * harness (op_harness.h): the n best rows per window and key with SQL's RANK() (ties share
 * a rank, the next rank skips; ties at the boundary are kept), desc and asc, nulls last,
 * sliding windows, `window: input`, late rows, checkpoints restored on both state backends
 * and at another parallelism, and bad input. Every expected row is worked out by hand in
 * the test's comments.
 *
 * Input: (k int, item string, price int), keyed by k, ordered by price; the output is
 * (window_start, window_end, k, item, price, rank) with event time window_end - 1. Rows
 * are "TS|fields..." (op_harness.h), TS the event time in ms.
 */
#include "op_harness.h"

#include "../../operators/ops.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>
#include <sys/stat.h>

static struct {
	ev_schema in, out;
	expr *key[1], *order;
	topn_conf c;
	oph_opts o;
	char dir[64];
	ev_state_backend *be;
} F;

/* setup prepares a tumbling 10 ms top_n of the n best prices per k (desc or asc) on a
 * backend of `kind`; a test changes F.c before opening for other windows. */
static void setup(ev_state_backend_kind kind, uint32_t n, bool desc)
{
	memset(&F, 0, sizeof(F));
	cr_assert_eq(schema_add(&F.in, "k", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&F.in, "item", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(&F.in, "price", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&F.out, "window_start", EV_TIMESTAMP), EDDY_OK);
	cr_assert_eq(schema_add(&F.out, "window_end", EV_TIMESTAMP), EDDY_OK);
	for (uint32_t f = 0; f < F.in.n; f++)
		cr_assert_eq(schema_add(&F.out, F.in.fields[f].name, F.in.fields[f].type), EDDY_OK);
	cr_assert_eq(schema_add(&F.out, "rank", EV_INT), EDDY_OK);
	cr_assert_eq(expr_compile("k", &F.in, &F.key[0], NULL), EDDY_OK);
	cr_assert_eq(expr_compile("price", &F.in, &F.order, NULL), EDDY_OK);
	F.c = (topn_conf){.window = TOPN_TUMBLING,
	                  .size_ms = 10,
	                  .keys = F.key,
	                  .nkeys = 1,
	                  .order_by = F.order,
	                  .order_type = EV_INT,
	                  .desc = desc,
	                  .n = n,
	                  .in_off = 2,
	                  .in = &F.in,
	                  .out = &F.out};
	oph_tmpdir(F.dir);
	F.be = oph_backend(kind, F.dir);
	F.o = (oph_opts){.op = &topn_op,
	                 .conf = &F.c,
	                 .ninputs = 1,
	                 .in = {&F.in},
	                 .keys = {F.key},
	                 .nkeys = 1,
	                 .nports = 2,
	                 .backend = F.be,
	                 .state_id = "test/topn"};
}

static oph *open_topn(void)
{
	oph *h;
	OK(h, oph_open(&F.o, 0, NULL, 0, &h));
	return h;
}

static void teardown(oph *h)
{
	oph_close(h);
	ev_state_backend_destroy(F.be);
	expr_free(F.key[0]);
	expr_free(F.order);
	schema_clear(&F.in);
	schema_clear(&F.out);
	oph_rmtree(F.dir);
}

static uint64_t late_dropped(oph *h)
{
	return oph_stats(h)->late_dropped;
}

#define IN(h, ...) OK(h, oph_process(h, 0, ROWS(&F.in, __VA_ARGS__)))
#define WM(h, w) OK(h, oph_watermark(h, w))

/* The rows of most tests: key 1 in [0, 10) has prices a 5, b 9, d 7, f 7, e 3; key 2 in
 * [0, 10) has g 4; key 1 in [10, 20) has h 1. */
static const char *const rows[] = {"1|1|a|5", "2|1|b|9", "4|1|d|7", "5|1|f|7",
                                   "6|1|e|3", "3|2|g|4", "12|1|h|1"};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* feed gives the rows in one batch (by = 0) or in batches of `by` rows, in the order
 * given by perm (a permutation of the row indexes), so that both the batch's own ranking
 * and its merge into the window's state are exercised. */
static void feed(oph *h, size_t by, const size_t *perm)
{
	for (size_t i = 0; i < NROWS;) {
		size_t m = by ? by : NROWS;
		const char *part[NROWS];
		size_t k = 0;
		for (; k < m && i < NROWS; k++, i++)
			part[k] = rows[perm[i]];
		OK(h, oph_process(h, 0, oph_batch(&F.in, part, k)));
	}
}

static const size_t in_order[NROWS] = {0, 1, 2, 3, 4, 5, 6};
static const size_t reversed[NROWS] = {6, 5, 4, 3, 2, 1, 0};
static const size_t shuffled[NROWS] = {4, 2, 6, 0, 3, 5, 1};

/* check_all runs `body`'s expectations on every way of feeding the rows. */
#define EVERY_FEED(body)                                                                           \
	do {                                                                                       \
		const size_t *perms_[] = {in_order, reversed, shuffled};                           \
		for (size_t p_ = 0; p_ < 3; p_++)                                                  \
			for (size_t by_ = 0; by_ <= 3; by_++) {                                    \
				oph *h = open_topn();                                              \
				feed(h, by_, perms_[p_]);                                          \
				body;                                                              \
				oph_close(h);                                                      \
			}                                                                          \
	} while (0)

/* desc, n = 2: key 1 in [0, 10) ranks b 9 (1), d 7 and f 7 (both 2: tied, and both kept
 * at the boundary), a 5 (4: past n), e 3; key 2's g is 1; [10, 20)'s h is 1. Nothing
 * before the watermark reaches a window's end - 1. */
BOTH(topn, desc_ties_at_the_boundary_are_kept)
{
	setup(kind, 2, true);
	EVERY_FEED({
		WM(h, 8);
		EXPECT_NONE(h, 0);
		WM(h, 9);
		EXPECT(h, 0, "9|0|10|1|b|9|1", "9|0|10|1|d|7|2", "9|0|10|1|f|7|2",
		       "9|0|10|2|g|4|1");
		WM(h, 19);
		EXPECT(h, 0, "19|10|20|1|h|1|1");
	});
	teardown(NULL);
}

/* asc, n = 2: key 1 in [0, 10) ranks e 3 (1), a 5 (2); the rest is past n. */
BOTH(topn, asc_smallest_first)
{
	setup(kind, 2, false);
	EVERY_FEED({
		WM(h, 19);
		EXPECT(h, 0, "9|0|10|1|e|3|1", "9|0|10|1|a|5|2", "9|0|10|2|g|4|1",
		       "19|10|20|1|h|1|1");
	});
	teardown(NULL);
}

/* RANK(), not DENSE_RANK() nor ROW_NUMBER(): with n = 4, b 9 is 1, d 7 and f 7 share 2,
 * a 5 is 4 (1 + the 3 rows better than it), e 3 would be 5. */
BOTH(topn, rank_skips_after_ties)
{
	setup(kind, 4, true);
	EVERY_FEED({
		WM(h, 9);
		EXPECT(h, 0, "9|0|10|1|b|9|1", "9|0|10|1|d|7|2", "9|0|10|1|f|7|2", "9|0|10|1|a|5|4",
		       "9|0|10|2|g|4|1");
	});
	teardown(NULL);
}

/* n = 1 keeps every row tied for first. */
BOTH(topn, n1_keeps_all_tied_for_first)
{
	setup(kind, 1, true);
	oph *h = open_topn();
	IN(h, "1|1|a|9", "2|1|b|3");
	IN(h, "3|1|c|9", "4|1|d|8");
	WM(h, 9);
	EXPECT(h, 0, "9|0|10|1|a|9|1", "9|0|10|1|c|9|1");
	teardown(h);
}

/* A null order value ranks after every other value, in both orders (NULLS LAST). */
BOTH(topn, nulls_last_both_orders)
{
	for (int desc = 0; desc < 2; desc++) {
		setup(kind, 2, desc);
		oph *h = open_topn();
		IN(h, "1|1|n|null", "2|1|a|5", "3|1|b|3");
		WM(h, 9);
		if (desc)
			EXPECT(h, 0, "9|0|10|1|a|5|1", "9|0|10|1|b|3|2");
		else
			EXPECT(h, 0, "9|0|10|1|b|3|1", "9|0|10|1|a|5|2");
		teardown(h);
	}
}

/* A row for a window whose end - 1 the watermark passed is late: counted in
 * late_dropped without a late output, sent to port 1 (as it came) with one. */
BOTH(topn, late_rows_dropped_or_to_the_late_output)
{
	for (int out = 0; out < 2; out++) {
		setup(kind, 2, true);
		F.c.has_late_output = out;
		oph *h = open_topn();
		IN(h, "1|1|a|5");
		WM(h, 9);
		EXPECT(h, 0, "9|0|10|1|a|5|1");
		/* 9 is in [0, 10), fired; 10 is in [10, 20), open */
		IN(h, "9|1|late|100", "10|1|b|1");
		cr_assert_eq(late_dropped(h), out ? 0 : 1);
		if (out)
			EXPECT(h, 1, "9|1|late|100");
		else
			EXPECT_NONE(h, 1);
		WM(h, 19);
		EXPECT(h, 0, "19|10|20|1|b|1|1"); /* the late 100 is in no window */
		teardown(h);
	}
}

/* Sliding windows of 10 ms every 5 ms, n = 1: a row at t is in [s, s + 10) for the s
 * that are multiples of 5 in (t - 10, t]. a (3, 5) is in [-5, 5) and [0, 10); b (7, 6)
 * in [0, 10) and [5, 15). A row whose earlier window fired but whose later one is open
 * goes to the open one only, and is not late; a row with every window fired is. */
BOTH(topn, sliding_windows)
{
	setup(kind, 1, true);
	F.c.window = TOPN_SLIDING;
	F.c.slide_ms = 5;
	oph *h = open_topn();
	IN(h, "3|1|a|5", "7|1|b|6");
	WM(h, 4);
	EXPECT(h, 0, "4|-5|5|1|a|5|1");
	WM(h, 9);
	EXPECT(h, 0, "9|0|10|1|b|6|1");
	IN(h, "8|1|c|100"); /* [0, 10) fired: only [5, 15) */
	cr_assert_eq(late_dropped(h), 0);
	WM(h, 14);
	EXPECT(h, 0, "14|5|15|1|c|100|1"); /* c beats b in [5, 15) */
	IN(h, "9|1|z|1000");               /* [0, 10) and [5, 15) both fired */
	cr_assert_eq(late_dropped(h), 1);
	WM(h, 100);
	EXPECT_NONE(h, 0);
	teardown(h);
}

/* window: input reads the window from the input's window_start and window_end (a window
 * operator's output, event time window_end - 1). Without key_by, one group per window.
 * n = 1: [0, 10) has cnt 5, 8, 8: both 8 are first; [10, 20) has 2. */
BOTH(topn, window_input_without_key)
{
	setup(kind, 1, true);
	ev_schema in = {0}, out = {0};
	cr_assert_eq(schema_add(&in, "window_start", EV_TIMESTAMP), EDDY_OK);
	cr_assert_eq(schema_add(&in, "window_end", EV_TIMESTAMP), EDDY_OK);
	cr_assert_eq(schema_add(&in, "k", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&in, "cnt", EV_INT), EDDY_OK);
	cr_assert_eq(schema_copy(&out, &in), EDDY_OK);
	cr_assert_eq(schema_add(&out, "rank", EV_INT), EDDY_OK);
	expr *cnt;
	cr_assert_eq(expr_compile("cnt", &in, &cnt, NULL), EDDY_OK);
	F.c = (topn_conf){.window = TOPN_INPUT,
	                  .ws_field = 0,
	                  .we_field = 1,
	                  .order_by = cnt,
	                  .order_type = EV_INT,
	                  .desc = true,
	                  .n = 1,
	                  .has_late_output = true,
	                  .in = &in,
	                  .out = &out};
	F.o.in[0] = &in;
	F.o.nkeys = 0;
	oph *h = open_topn();
	OK(h, oph_process(h, 0, ROWS(&in, "9|0|10|1|5", "9|0|10|2|8", "19|10|20|1|2")));
	OK(h, oph_process(h, 0, ROWS(&in, "9|0|10|3|8")));
	WM(h, 9);
	EXPECT(h, 0, "9|0|10|2|8|1", "9|0|10|3|8|1");
	OK(h, oph_process(h, 0, ROWS(&in, "9|0|10|4|99"))); /* [0, 10) fired: late */
	EXPECT(h, 1, "9|0|10|4|99");
	WM(h, 19);
	EXPECT(h, 0, "19|10|20|1|2|1");
	/* bad input: a window without its end, and ones that end where or before they
	 * start */
	cr_assert_eq(oph_process(h, 0, ROWS(&in, "29|20|null|1|1")), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h), "top_n: a row without window_start or window_end "
	                                 "(window: input needs both)");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(oph_process(h, 0, ROWS(&in, i ? "29|30|20|1|1" : "29|20|20|1|1")),
		             EDDY_EFAILED);
		cr_assert_str_eq(oph_failure(h), "top_n: a row's window_end is not after its "
		                                 "window_start");
	}
	EXPECT_NONE(h, 0);
	teardown(h);
	expr_free(cnt);
	schema_clear(&in);
	schema_clear(&out);
}

/* ---- checkpoints and restore ---- */

/* desc, n = 2. Uninterrupted: [0, 10) gets a 5, b 9 (key 1) and g 4 (key 2) before the
 * cut at 2 and d 7, f 7, e 3 after it; at 9 it gives b 1, d 2, f 2 (a 5 is 4th) and g 1;
 * `late` (8) is late after watermark 9; [10, 20) gives h 1 and i 1 at 19. Nothing is
 * emitted before the cut at 2, so the rows b and g exist only through the restored state. */
static const oph_step script[] = {
    {0, 0, {"1|1|a|5", "2|1|b|9", "3|2|g|4", NULL}},
    {OPH_WM, 5, {NULL}},
    /* cut: 2 */
    {0, 0, {"4|1|d|7", "5|1|f|7", "6|1|e|3", NULL}},
    {OPH_WM, 9, {NULL}},
    {0, 0, {"8|1|late|100", NULL}},
    {0, 0, {"12|1|h|1", "13|2|i|2", NULL}},
    {OPH_WM, 19, {NULL}},
};
#define NSTEPS (sizeof(script) / sizeof(script[0]))

/* The uninterrupted run, checked by hand; then cut at 2 (before anything is emitted)
 * and restored at the same parallelism and from 2 subtasks into 1; then cut at 4, after
 * the watermark 9: the restored watermark makes `late` late (else it would open [0, 10)
 * again and be emitted at 19). */
BOTH(topn, checkpoint_restore)
{
	setup(kind, 2, true);
	oph *h = open_topn();
	oph_run(&h, 1, script, 0, NSTEPS);
	EXPECT(h, 0, "9|0|10|1|b|9|1", "9|0|10|1|d|7|2", "9|0|10|1|f|7|2", "9|0|10|2|g|4|1",
	       "19|10|20|1|h|1|1", "19|10|20|2|i|2|1");
	cr_assert_eq(late_dropped(h), 1);
	oph_close(h);
	oph_check_restore(&F.o, kind, script, NSTEPS, 2, 1, 1);
	oph_check_restore(&F.o, kind, script, NSTEPS, 2, 2, 1);
	oph_check_restore(&F.o, kind, script, NSTEPS, 4, 1, 1);
	teardown(NULL);
}

/* Restored at another parallelism, the top_n takes the lowest watermark of the old
 * subtasks: subtask 0 had watermark 5, subtask 1 watermark 20; restored into one, a row
 * at 8 (window [0, 10)) is not late and ranks with the restored rows of its key. */
BOTH(topn, rescaled_restore_takes_the_lowest_watermark)
{
	setup(kind, 2, true);
	F.o.parallelism = 2;
	oph *h[2];
	oph_snap s[2];
	for (uint32_t k = 0; k < 2; k++)
		OK(h[k], oph_open(&F.o, k, NULL, 0, &h[k]));
	oph_run(h, 2, (const oph_step[]){{0, 0, {"1|1|a|5", "2|2|b|4", NULL}}}, 0, 1);
	cr_assert_eq(oph_records_in(h[0]), 1); /* keys 1 and 2 are on different subtasks */
	OK(h[0], oph_watermark(h[0], 5));
	OK(h[1], oph_watermark(h[1], 20)); /* fires subtask 1's [0, 10): its rows are out */
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
	IN(r, "8|1|c|6", "8|2|d|1");
	cr_assert_eq(late_dropped(r), 0);
	WM(r, 9);
	/* key 1 or key 2 (whichever was on subtask 0) still has its window; the other's
	 * fired on subtask 1 before the checkpoint, so its new row ranks alone */
	const char *k1[] = {"9|0|10|1|c|6|1", "9|0|10|1|a|5|2", "9|0|10|2|d|1|1"};
	const char *k2[] = {"9|0|10|1|c|6|1", "9|0|10|2|b|4|1", "9|0|10|2|d|1|2"};
	ev_val one = {.type = EV_INT, .i = 1};
	bool key1_on_0 = ev_key_group_subtask(oph_key_group(r, &one, 1), 128, 2) == 0;
	oph_rows_expect(oph_out(r, 0), key1_on_0 ? k1 : k2, 3, "restored 2 -> 1");
	oph_snap_free(&s[0]);
	oph_snap_free(&s[1]);
	teardown(r);
}

/* ---- bad state ---- */

/* A restore from a snapshot that is not a top_n's of version 1 fails, saying so. */
BOTH(topn, restore_refuses_another_snapshot)
{
	setup(kind, 2, true);
	oph *h = open_topn();
	oph_snap s;
	OK(h, oph_snapshot(h, 1, F.dir, &s));
	oph_close(h);
	oph_snap_free(&s);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1); /* a version but no watermark */
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 1);
	s.len = sb.size;
	s.op = msgpack_sbuffer_release(&sb);
	cr_assert_eq(oph_open(&F.o, 0, &s, 1, &h), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h), "top_n: the checkpoint holds no top_n state of version 1");
	oph_snap_free(&s);
	teardown(h);
}

/* A window's state that is not a top_n's (another operator's state under this one's
 * name): the next row of that window fails with a clear reason, and so does its firing. */
BOTH(topn, malformed_window_state_fails_clearly)
{
	setup(kind, 2, true);
	oph *h = open_topn();
	ev_state *st = oph_state(h);
	ev_state_id id;
	ev_state_desc d = {.name = "rows", .kind = EV_STATE_VALUE};
	cr_assert_eq(ev_state_register(st, &d, &id), EDDY_OK);
	char key[9] = {(char)EV_INT}; /* topn.c key_append: type byte, 8 bytes */
	int64_t one = 1, ns[2] = {0, 10};
	memcpy(key + 1, &one, 8);
	ev_val kv = {.type = EV_INT, .i = 1};
	cr_assert_eq(ev_state_set_key(st, key, 9, oph_key_group(h, &kv, 1)), EDDY_OK);
	cr_assert_eq(ev_state_set_namespace(st, ns, sizeof(ns)), EDDY_OK);
	cr_assert_eq(ev_value_put(st, id, "\x05\0\0", 3), EDDY_OK);
	cr_assert_eq(ev_timer_register(st, EV_TIME_EVENT, 9), EDDY_OK);
	cr_assert_eq(oph_process(h, 0, ROWS(&F.in, "1|1|a|5")), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h), "top_n: a window's state (3 bytes) is malformed "
	                                 "(another operator's state?)");
	cr_assert_eq(oph_watermark(h, 9), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h), "top_n: a window's state (3 bytes) is malformed");
	EXPECT_NONE(h, 0);
	teardown(h);
}

/* A checkpoint of a window join restored into a top_n of the same name (a job whose
 * operator changed type): the restore fails naming both types; and with a snapshot that
 * does not say its type (an older eddy's), the join's timers name 8-byte windows and the
 * top_n says so instead of reading them as its own. */
BOTH(topn, restore_from_a_join_checkpoint_fails_clearly)
{
	setup(kind, 2, true);
	ev_schema js = {0}, jout = {0};
	cr_assert_eq(schema_add(&js, "k", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&jout, "k", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&jout, "rk", EV_INT), EDDY_OK);
	expr *jk;
	cr_assert_eq(expr_compile("k", &js, &jk, NULL), EDDY_OK);
	expr *jkeys[1] = {jk};
	join_conf jc = {.kind = JOIN_WINDOW,
	                .win = WIN_TUMBLING,
	                .size_ms = 10,
	                .keys = {jkeys, jkeys},
	                .nkeys = 1,
	                .in = {&js, &js},
	                .out = &jout};
	oph_opts jo = F.o;
	jo.op = &join_op;
	jo.conf = &jc;
	jo.ninputs = 2;
	jo.in[0] = jo.in[1] = &js;
	jo.keys[0] = jo.keys[1] = jkeys;
	jo.nports = 3;
	oph *j;
	OK(j, oph_open(&jo, 0, NULL, 0, &j));
	OK(j, oph_process(j, 0, ROWS(&js, "1|1")));
	oph_snap s;
	OK(j, oph_snapshot(j, 1, F.dir, &s));
	oph_close(j);
	oph *h;
	cr_assert_eq(oph_open(&F.o, 0, &s, 1, &h), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h), "top_n: the checkpoint holds the state of a join, not of "
	                                 "a top_n (an operator of this id changed type): it "
	                                 "cannot be restored into it");
	oph_close(h);
	/* the same keyed state under a snapshot of an older eddy: {"v": 1, "wm": none} */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "wm", 2);
	msgpack_pack_int64(&pk, INT64_MIN);
	oph_snap_free(&s);
	s.len = sb.size;
	s.op = msgpack_sbuffer_release(&sb);
	OK(h, oph_open(&F.o, 0, &s, 1, &h)); /* the same snapshot shape: accepted */
	cr_assert_eq(oph_watermark(h, 9), EDDY_EFAILED);
	cr_assert_str_eq(oph_failure(h), "top_n: a timer's window has 8 bytes, not 16");
	EXPECT_NONE(h, 0);
	oph_snap_free(&s);
	teardown(h);
	expr_free(jk);
	schema_clear(&js);
	schema_clear(&jout);
}
