/*
 * The built-in operators and connectors, each an op_def run by a task (task.h), and the
 * compiled configurations the plan builder (config/plan.c) gives them.
 */
#ifndef EDDY_OPERATORS_OPS_H
#define EDDY_OPERATORS_OPS_H

#include "task.h"

#include "../connectors/nexmark_gen.h"

/* ---- what an operator's snapshot is (operators/shape.c) ---- */

struct msgpack_packer;
struct msgpack_object;

/* op_pack_shape packs two entries of an operator's snapshot map (count them in its size):
 * "op", the operator's type ("window", "join", "top_n"), and "shape", what the layout of
 * its keyed state depends on, in the operator's words (kind, sizes in ms, key and field
 * types...). op_shape_mismatch: NULL when snapshot snap may be restored into this operator
 * (same type and shape, or a snapshot without them: an older eddy's), else the reason,
 * naming both, written into buf (size bytes; legend says what the shape lists) and
 * returned. Either thread; no allocation. */
void op_pack_shape(struct msgpack_packer *pk, const char *type, const char *shape);
const char *op_shape_mismatch(const struct msgpack_object *snap, const char *type,
                              const char *shape, const char *legend, char *buf, size_t size);

/* filter: keeps the records for which `where` is true (null and false drop). */
typedef struct filter_conf {
	expr *where;
} filter_conf;
extern const op_def filter_op;

/* map: one output record per input record: out->fields[i] = exprs[i]. Event time kept. */
typedef struct map_conf {
	const ev_schema *out;
	expr **exprs;
	uint32_t n;
} map_conf;
extern const op_def map_op;

/* union: forwards every input (all of one schema) unchanged. */
extern const op_def union_op;

/* ---- windows (operators/window.c) ---- */

typedef enum win_kind { WIN_TUMBLING, WIN_SLIDING, WIN_SESSION, WIN_COUNT, WIN_GLOBAL } win_kind;
typedef enum agg_fn { AGG_COUNT, AGG_SUM, AGG_MIN, AGG_MAX, AGG_AVG, AGG_FIRST, AGG_LAST } agg_fn;

typedef struct agg_spec {
	agg_fn fn;
	expr *arg;    /* NULL for count() */
	ev_type type; /* the argument's type (count: none) */
} agg_spec;

/* window: keyed (or global) windows with incremental aggregates, as Flink's
 * WindowOperator with an aggregate function. Output record: window_start, window_end,
 * key fields, aggregates; its event time is window_end - 1 (Flink's maxTimestamp). Port
 * 1 is the late side output (the late records, input schema). WIN_GLOBAL is one window
 * per key over all of time (Flink's GlobalWindows) that fires once, at the end of the
 * input (the +inf watermark); its window_start/window_end are the smallest event time
 * of its records and the largest + 1 ms, and nothing is late for it. */
typedef struct window_conf {
	win_kind kind;
	int64_t size_ms;     /* tumbling, sliding */
	int64_t slide_ms;    /* sliding */
	int64_t gap_ms;      /* session */
	int64_t count;       /* count windows: records per window */
	int64_t lateness_ms; /* allowed lateness */
	bool has_late_output;
	expr **keys;
	uint32_t nkeys;
	agg_spec *aggs;
	uint32_t naggs;
	const ev_schema *out; /* window_start, window_end, keys..., aggregates... */
} window_conf;
extern const op_def window_op;

/* ---- Window Top-N (operators/topn.c) ---- */

typedef enum topn_window { TOPN_TUMBLING, TOPN_SLIDING, TOPN_INPUT } topn_window;

/* top_n: per window and key (key_by; none: one group per window) the rows ranked 1..n by
 * order_by, ties kept (rank = 1 + the number of strictly better rows, SQL's RANK()), as
 * Flink SQL's Window Top-N; emitted when the watermark passes the window's end - 1.
 * Windows are assigned from event time (tumbling, sliding; the output gets window_start,
 * window_end first) or read from the input's window_start/window_end columns (a window
 * operator's output). Output: [window_start, window_end,] the input's fields, rank; event
 * time window_end - 1. Port 1 is the late side output (input schema). */
typedef struct topn_conf {
	topn_window window;
	int64_t size_ms, slide_ms; /* tumbling, sliding */
	int ws_field, we_field;    /* TOPN_INPUT: the input's window_start, window_end */
	expr **keys;               /* key_by (borrowed from the plan) */
	uint32_t nkeys;
	expr *order_by;
	ev_type order_type; /* int, float, timestamp or string */
	bool desc;          /* order: desc (largest first) */
	uint32_t n;
	bool has_late_output;
	uint32_t in_off; /* where the input's fields start in out: 2 or 0 */
	const ev_schema *in;
	const ev_schema *out;
} topn_conf;
extern const op_def topn_op;

/* ---- split (operators/split.c) ---- */

/* split: each record goes to every output whose predicate is true (null is false):
 * output i is port 1 + i (stream "ID.NAME"); port 0 takes the records matching none
 * (stream "ID.DEFAULT" with `default: DEFAULT`; without it they are dropped and counted,
 * task_count_dropped). Every port has the input's schema. At most 63 outputs. */
#define SPLIT_MAX_OUTPUTS 63u
typedef struct split_conf {
	expr **preds;
	uint32_t n;
	bool has_default;
} split_conf;
extern const op_def split_op;

/* ---- joins (operators/join.c) ---- */

typedef enum join_kind { JOIN_WINDOW, JOIN_INTERVAL, JOIN_REGULAR } join_kind;

/* join: an inner equi-join of two keyed streams, input 0 (left) and input 1 (right),
 * each partitioned by its own key (keys[0], keys[1]: the same count, pairwise of the
 * same type, so equal keys hash to the same key group). Output record: the left fields
 * then the right fields (renamed by the job's prefix), kept when `where` is true.
 *  - JOIN_WINDOW: Flink's window join (JoinedStreams): pairs of one key in one window
 *    (tumbling, sliding, session), emitted when the window fires, event time end - 1;
 *  - JOIN_INTERVAL: Flink's interval join: left.ts + lower <= right.ts <= left.ts +
 *    upper, emitted when the second arrives, event time the larger of the two;
 *  - JOIN_REGULAR: unbounded (Flink SQL's regular join), event time the arriving
 *    element's; with ttl_ms, elements whose event times differ by ttl or more never
 *    join and an element leaves the state when the watermark passes its time + ttl.
 * Ports: 0 the joined records, 1 and 2 the late elements of the left and the right
 * input (their schemas). */
typedef struct join_conf {
	join_kind kind;
	win_kind win;               /* JOIN_WINDOW: WIN_TUMBLING, WIN_SLIDING or WIN_SESSION */
	int64_t size_ms;            /* tumbling, sliding */
	int64_t slide_ms;           /* sliding */
	int64_t gap_ms;             /* session */
	int64_t lateness_ms;        /* window: allowed lateness */
	int64_t lower_ms, upper_ms; /* interval bounds (inclusive, may be negative) */
	int64_t ttl_ms;             /* regular: 0 keeps elements forever */
	expr **keys[2];             /* left_key, right_key (keys[0] is the plan node's) */
	uint32_t nkeys;
	expr *where;                /* over the output record, or NULL */
	bool has_late_output[2];    /* late elements of the side go to port 1 + side */
	const ev_schema *in[2];     /* the inputs' schemas */
	const ev_schema *out;       /* left fields, then right fields */
} join_conf;
extern const op_def join_op;

/* ---- user operators in shared libraries (operators/native.c, include/eddy/operator.h) ---- */

struct ev_operator;
struct cfg_node;

/* native: an ev_operator from a library dlopen()ed by the plan. Port 0 is its `output`,
 * ports 1.. its side_outputs in order (streams "ID.NAME"). native_keyed_op (with
 * key_by) keeps keyed state and timers, checkpointed by the task; native_op has none. */
typedef struct native_conf {
	const char *library; /* as given in the job file */
	const char *symbol;
	void *dl;                      /* the dlopen handle (dlclose'd by the plan) */
	const struct ev_operator *def; /* in the library */
	const struct cfg_node *params; /* the params map, or NULL */
	expr **keys;                   /* key_by (borrowed from the plan) */
	uint32_t nkeys;
	const char **side_names; /* [nports - 1] side-output names (in the tree) */
	uint32_t nports;
} native_conf;
extern const op_def native_op;
extern const op_def native_keyed_op;
/* native_parse_float reads a scalar as a number (strtod, the whole text); false if it is
 * not one. */
bool native_parse_float(const struct cfg_node *v, double *out);

/* ---- connectors (connectors/) ---- */

typedef enum on_error { ON_ERROR_FAIL, ON_ERROR_SKIP, ON_ERROR_DEAD_LETTER } on_error;

/* Event time of a source: a timestamp field with bounded out-of-orderness watermarks
 * (watermark = max event time - max_out_of_orderness - 1 ms, as Flink's
 * BoundedOutOfOrdernessWatermarks), or processing time (time_field < 0). */
typedef struct source_time {
	int time_field; /* field index, or -1: processing time */
	int64_t max_ooo_ms;
	int64_t idle_timeout_ms; /* 0: never idle */
	int64_t wm_interval_ms;  /* processing time: watermark period */
} source_time;

/* file source: CSV or JSON lines, .gz by extension; split into byte ranges across
 * subtasks when not compressed. Port 1: dead letters (file, line, error, record). */
typedef struct file_source_conf {
	const char *path;
	int format; /* fmt_kind */
	bool header;
	on_error on_error;
	const ev_schema *schema;
	const ev_schema *dead_schema;
	source_time time;
	uint32_t batch_size; /* records per batch; a watermark follows every batch */
	uint64_t live;       /* the fields the job reads (bit i: field i), set by the plan;
	                      * the others are not parsed and stay null (fmt_parse_fields) */
} file_source_conf;
extern const op_def file_source_op;

typedef enum gen_kind { GEN_SEQUENCE, GEN_RANDOM, GEN_EVENT_TIME } gen_kind;
typedef struct gen_field {
	gen_kind kind;
	int64_t min, max; /* sequence start/end, random range (strings: length) */
	char **values;    /* random string from a list, or NULL */
	uint32_t nvalues;
} gen_field;
/* datagen: rows_per_second (0: as fast as possible), count (0: unbounded) */
typedef struct datagen_conf {
	const ev_schema *schema;
	gen_field *fields;
	int64_t rows_per_second;
	int64_t count;
	uint64_t seed;
	source_time time;
} datagen_conf;
extern const op_def datagen_op;

/* nexmark: the Nexmark generator (connectors/nexmark_gen.h) as a source. Subtask s of p
 * generates the events at positions s, s + p, ... below `events`; it emits the records of
 * `kind` (a wide record with event_type for NEXMARK_ALL) and skips the others. */
#define NEXMARK_ALL 3
typedef struct nexmark_source_conf {
	nexmark_conf gen; /* seed, tps, events, out-of-order settings (checked) */
	int64_t rate;     /* positions per second of wall clock, 0: as fast as
	                   * downstream takes them */
	int kind;         /* nexmark_kind, or NEXMARK_ALL */
	const ev_schema *schema;
	source_time time;
} nexmark_source_conf;
extern const op_def nexmark_source_op;

/* file sink: a directory of part files (part-<subtask>.<ext>), CSV with a header in
 * every part or JSON lines. print sink: the same lines on stdout. */
typedef struct sink_conf {
	const char *path; /* file sink: directory */
	int format;       /* fmt_kind */
	const ev_schema *schema;
} sink_conf;
extern const op_def file_sink_op;
extern const op_def print_sink_op;

#endif
