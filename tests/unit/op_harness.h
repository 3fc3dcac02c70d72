/*
 * A test harness that runs one subtask of one operator through its op_def hooks
 * (operators/task.h) without the actor system: it is the `task` the operator sees
 * (op_harness.c defines struct task and every task_* function the operator calls, in
 * place of operators/task.c, so a test binary links the operator's .c file and this one,
 * not eddy_engine). Batches go to `process`, watermarks to `watermark` (only when they
 * advance, as a task does), what the operator emits is captured per port as text rows,
 * a checkpoint is the operator's snapshot (msgpack bytes) plus its keyed state written to
 * a snapshot file (ev_state_snapshot_begin/write), and a restored subtask is opened as a
 * restored task is (operators/task.c task_init): keyed state loaded from the files, then
 * `open`, then `restore` once per old subtask's snapshot (task_rescaled when the
 * parallelism changed).
 *
 * Rows as text: "TS|f0|f1|..." — the event time (ms), then every field of the schema in
 * order: ints and timestamps as decimal ms, floats as %g, bools as true/false, strings as
 * they are, null as "null". Test inputs are written the same way (spaces around each
 * part are ignored).
 *
 * What this harness does not exercise: the task's channels and watermark valve, routing,
 * barriers and alignment, the coordinator and its files (tests/integration do: join.sh,
 * topn.sh). Its key groups are the partitioner's (the same XXH3 chain as operators/task.c's
 * hash_val). Errors: the hooks' eddy_err are returned; a task_fail reason is kept
 * (oph_failure). Harness misuse and allocation failures fail the test (cr_assert). One
 * thread.
 */
#ifndef EDDY_TESTS_OP_HARNESS_H
#define EDDY_TESTS_OP_HARNESS_H

#include "../../operators/task.h"

#include <eddy/state.h>

#define OPH_MAX_PORTS 4
#define OPH_MAX_SUBTASKS 4

/* BOTH(suite, name) { ... kind ... }: the body runs twice, on the memory backend (suite
 * suite_memory) and on LevelDB (suite suite_leveldb), as tests/unit/test_state.c. */
#define BOTH(suite, name)                                                                          \
	static void suite##_##name##_body(ev_state_backend_kind kind);                             \
	Test(suite##_memory, name)                                                                 \
	{                                                                                          \
		suite##_##name##_body(EV_STATE_MEMORY);                                            \
	}                                                                                          \
	Test(suite##_leveldb, name)                                                                \
	{                                                                                          \
		suite##_##name##_body(EV_STATE_LEVELDB);                                           \
	}                                                                                          \
	static void suite##_##name##_body(ev_state_backend_kind kind)

/* Captured or expected rows (text, owned). */
typedef struct oph_rows {
	char **v;
	size_t n, cap;
} oph_rows;

void oph_rows_add(oph_rows *r, const char *row);
/* oph_rows_move appends src's rows to dst and empties src. */
void oph_rows_move(oph_rows *dst, oph_rows *src);
void oph_rows_free(oph_rows *r);
/* oph_rows_expect fails the test (naming `where`) unless got holds exactly the rows of
 * want (n of them), in any order (a multiset compare: both sorted), printing both. */
void oph_rows_expect(const oph_rows *got, const char *const *want, size_t n, const char *where);

/* The operator under test and its subtask. */
typedef struct oph_opts {
	const op_def *op;
	const void *conf;       /* the operator's compiled configuration */
	uint32_t ninputs;       /* 1 or 2 */
	const ev_schema *in[2]; /* the inputs' schemas */
	expr *const *keys[2];   /* each input's key (routes rows at parallelism > 1) */
	uint32_t nkeys;
	uint32_t nports;          /* output ports (<= OPH_MAX_PORTS) */
	uint32_t parallelism;     /* 0: 1 */
	uint32_t max_parallelism; /* 0: 128 */
	ev_state_backend *backend;
	const char *state_id; /* the operator's name in the backend ("job/op") */
} oph_opts;

typedef struct task oph; /* one subtask under test: the task its operator sees */

/* A checkpoint of one subtask: the operator's snapshot (msgpack bytes, owned) and the
 * keyed state's snapshot file. */
typedef struct oph_snap {
	char *op;
	size_t len;
	char path[256];
	uint32_t parallelism; /* of the subtask's operator when taken */
} oph_snap;

/* oph_open opens subtask `subtask` of o's operator: its keyed state (the key groups of
 * the subtask), then, with nsnaps > 0, the state of those snapshots' files, then the
 * operator's open, then its restore with each snapshot's op part (the job is rescaled when
 * the snapshots were taken at another parallelism). *out is set even on error (read
 * oph_failure, then oph_close it). Errors: the hooks' and ev_state's. */
eddy_err oph_open(const oph_opts *o, uint32_t subtask, const oph_snap *snaps, uint32_t nsnaps,
                  oph **out);
/* oph_close closes the operator (its close hook) and its keyed state. Safe on NULL. */
void oph_close(oph *h);

/* oph_process hands b (owned) to the operator's process hook as input `input`. */
eddy_err oph_process(oph *h, uint32_t input, ev_batch *b);
/* oph_watermark gives the operator watermark wm (ms) if it advances the subtask's. */
eddy_err oph_watermark(oph *h, int64_t wm);
/* oph_snapshot takes checkpoint id of the subtask: the op snapshot and the keyed state,
 * written to DIR/ID-SUBTASK.state. */
eddy_err oph_snapshot(oph *h, uint64_t id, const char *dir, oph_snap *out);
void oph_snap_free(oph_snap *s);

/* oph_out: the rows captured on port `port` since they were last taken. */
oph_rows *oph_out(oph *h, uint32_t port);
/* oph_records_in: the records given to the subtask's process hook. */
uint64_t oph_records_in(const oph *h);
/* oph_failure: the reason the operator gave task_fail ("" if none). */
const char *oph_failure(const oph *h);
/* oph_stats: the job's counters (late_dropped, ...), one per subtask here. */
job_stats *oph_stats(oph *h);
/* oph_state: the subtask's keyed state (for tests that plant bad state). */
ev_state *oph_state(oph *h);
/* oph_key_group: the key group of these key values, as the operator's task computes it. */
uint32_t oph_key_group(const oph *h, const ev_val *keys, uint32_t n);

/* oph_batch makes a batch of schema s from text rows (n of them; see above). */
ev_batch *oph_batch(const ev_schema *s, const char *const *rows, size_t n);

/* A scripted input: a watermark (input OPH_WM) or rows for one input. */
#define OPH_WM (-1)
typedef struct oph_step {
	int input;
	int64_t wm;
	const char *rows[12]; /* NULL-terminated */
} oph_step;

/* oph_run feeds steps [from, to) to the subtasks h[0 .. n) of one operator: a watermark
 * to each of them, rows to the subtask that owns their key (its key group). Fails the
 * test if a hook fails. */
void oph_run(oph *const *h, uint32_t n, const oph_step *steps, size_t from, size_t to);

/* oph_check_restore checks that a checkpoint loses and repeats nothing: the rows (every
 * port) and late_dropped of steps [0, n) run uninterrupted at parallelism 1 must equal
 * those of [0, cut) at parallelism from_p, a checkpoint of every subtask, then new
 * instances on a new backend of the same kind, restored at parallelism to_p (rescaled
 * when they differ), running [cut, n). It also checks that the test can fail: running
 * [cut, n) without the restore must give something else, and [0, cut) must not give
 * every row. o->backend and o->parallelism are ignored. */
void oph_check_restore(const oph_opts *o, ev_state_backend_kind kind, const oph_step *steps,
                       size_t n, size_t cut, uint32_t from_p, uint32_t to_p);

/* Temporary directories (mkdtemp under /dev/shm, else /tmp) and backends for tests. */
void oph_tmpdir(char dir[64]);
void oph_rmtree(const char *dir);
/* oph_backend: a backend of kind (LevelDB: in DIR/db). */
ev_state_backend *oph_backend(ev_state_backend_kind kind, const char *dir);

/* oph_expect checks the rows of port `port` (any order) and forgets them:
 * EXPECT(h, port, "row", ...), EXPECT_NONE(h, port). */
void oph_expect(oph *h, uint32_t port, const char *const *want, size_t n, const char *where);
#define OPH_STR2(x) #x
#define OPH_STR(x) OPH_STR2(x)
#define OPH_WHERE __FILE__ ":" OPH_STR(__LINE__)
#define EXPECT(h, port, ...)                                                                       \
	oph_expect((h), (port), (const char *const[]){__VA_ARGS__},                                \
	           sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *), OPH_WHERE)
#define EXPECT_NONE(h, port) oph_expect((h), (port), NULL, 0, OPH_WHERE)
/* ROWS(schema, "row", ...): a batch of those rows. */
#define ROWS(s, ...)                                                                               \
	oph_batch((s), (const char *const[]){__VA_ARGS__},                                         \
	          sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
/* OK(call): the hook succeeded (else the test fails with the operator's reason). */
#define OK(h, call)                                                                                \
	do {                                                                                       \
		eddy_err ok_e_ = (call);                                                           \
		cr_assert_eq(ok_e_, EDDY_OK, "%s: %s: %s (%s)", OPH_WHERE, #call,                  \
		             eddy_strerror(ok_e_), oph_failure(h));                                \
	} while (0)

#endif
