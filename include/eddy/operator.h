/*
 * The C operator SDK: user operators in shared libraries, run by eddy's tasks like the
 * built-in ones (as Flink's KeyedProcessFunction: records in, keyed state, timers,
 * records out on a main and named side outputs).
 *
 * A library exports one `const ev_operator` (any number of them, under different names)
 * and a job file names it:
 *
 *     operators:
 *       - id: fraud
 *         type: native
 *         input: transactions
 *         library: build/examples/fraud/libfraud.so   # dlopen()ed when the plan is built
 *         symbol: fraud_detector                      # the ev_operator's symbol
 *         key_by: account_id                          # optional: keyed state and timers
 *         params: {small: 1.00, large: 500.00, window: 1m}
 *         output:                                     # port 0, fields in order
 *           - {name: account_id, type: int}
 *         side_outputs:                               # optional: ports 1.. in order,
 *           big: [{name: amount, type: float}]        # stream "fraud.big"
 *
 * The plan checks all of this before the job starts (exit 2 with FILE:LINE:COL): the
 * library must load with every symbol it uses resolved (RTLD_NOW; the functions below
 * and those of <eddy/value.h> and <eddy/state.h> are eddy's own), the symbol must exist
 * and be an ev_operator of this EV_OPERATOR_ABI with a name and a process hook, params
 * must be those the operator declares (when it declares them) with values of their
 * kinds, output schemas must be given. Build a library with the headers of include/ and
 * nothing else to link: `add_library(x MODULE x.c)` (see examples/fraud/).
 *
 * Running: each subtask of the operator calls open once, then process for every input
 * batch, on_timer for every timer due, on_watermark when the task's watermark advances
 * (after the event-time timers it made due), and close at the end (also after a failure,
 * and after open failed having set *state). All hooks of a subtask run on that subtask's
 * task, one at a time, on a scheduler worker thread: they must not block (no sleeping,
 * no waiting on locks held elsewhere, no blocking I/O) and must not keep the context or
 * borrowed pointers beyond the call. Different subtasks run concurrently: global
 * variables of the library are shared by all of them.
 *
 * State and checkpoints. With key_by, the task keeps keyed state for the operator
 * (<eddy/state.h>): register states in open (ev_state_register on ev_op_state), make a
 * record's key current with ev_op_key before reading or writing state, register timers
 * with ev_timer_register(ev_op_state(ctx), EV_TIME_EVENT or EV_TIME_PROCESSING, ms).
 * Keyed state and timers are checkpointed and restored by eddy (and redistributed by key
 * group when the job is restored at another parallelism). Anything the operator keeps
 * elsewhere (its *state, globals) is NOT checkpointed: after a failure the job restarts
 * from its last checkpoint and open runs anew with empty private state; keep what must
 * survive in keyed state. Without key_by there is no keyed state (ev_op_state is NULL).
 *
 * Timers. Event-time timers fire when the task's watermark reaches their time (a timer
 * at t fires once the watermark is >= t, so records with timestamp t come first), in time
 * order, each with its key (and namespace) current; at the end of a bounded input the
 * watermark goes to +inf (INT64_MAX) and every event-time timer fires. Processing-time
 * timers (ms since the Unix epoch, as ev_op_now_ms) fire from an actor timer armed for
 * the earliest one, a few ms late at most; those pending when the input ends are dropped.
 *
 * Errors: a hook returns EDDY_OK or an error, which fails the subtask and so the job (with
 * checkpoints: the job restarts from the last one). Call ev_op_fail first to give the
 * reason; otherwise the reason is the hook's name and the error's.
 */
#ifndef EDDY_OPERATOR_H
#define EDDY_OPERATOR_H

#include <eddy/err.h>
#include <eddy/state.h>
#include <eddy/value.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* EV_OPERATOR_ABI: the version of ev_operator and of the functions below. A library built
 * against another version is refused when the plan is built. */
#define EV_OPERATOR_ABI 1u

/* EV_OPERATOR_EXPORT marks the exported ev_operator of a library built with hidden
 * visibility: `EV_OPERATOR_EXPORT const ev_operator my_op = { ... };`. */
#define EV_OPERATOR_EXPORT __attribute__((visibility("default")))

/* The context of a subtask: opaque, valid inside the hooks it is passed to. */
typedef struct ev_op_ctx ev_op_ctx;

/* The kinds of params an operator may declare (checked when the plan is built). */
typedef enum ev_param_kind {
	EV_PARAM_STRING = 1, /* any scalar */
	EV_PARAM_INT,        /* a decimal integer */
	EV_PARAM_FLOAT,      /* a number (strtod) */
	EV_PARAM_BOOL,       /* true/false, yes/no, on/off */
	EV_PARAM_DURATION    /* 250ms, 10s, 5m, 1h, 1d (ms) */
} ev_param_kind;

typedef struct ev_op_param {
	const char *name; /* NULL ends the list */
	ev_param_kind kind;
} ev_op_param;

typedef struct ev_operator {
	uint32_t abi;     /* EV_OPERATOR_ABI */
	const char *name; /* for messages and the plan printout */
	/* params: the params it takes (a list ended by {NULL}); NULL: any, unchecked. */
	const ev_op_param *params;
	/* open: sets *state (may stay NULL). Read params, look up fields, register keyed
	 * states here. May be NULL. */
	eddy_err (*open)(ev_op_ctx *ctx, void **state);
	/* process: a batch arrived on input `input` (0.. in the order of the job file's
	 * `input`; all inputs have one schema). The batch is borrowed for the call: read it,
	 * do not change or keep it. Required. */
	eddy_err (*process)(ev_op_ctx *ctx, void *state, const ev_batch *in, uint32_t input);
	/* on_timer: a timer is due; its key (and namespace) is current in ev_op_state, its
	 * key and ns bytes (t->key, t->ns) stay valid for the call. May be NULL (timers are
	 * then removed silently). */
	eddy_err (*on_timer)(ev_op_ctx *ctx, void *state, const ev_timer *t);
	/* on_watermark: the watermark advanced to wm (ms; INT64_MAX: the input ended), after
	 * the event-time timers up to wm fired. No key is current. May be NULL. */
	eddy_err (*on_watermark)(ev_op_ctx *ctx, void *state, int64_t wm);
	/* close: frees *state (also a half-built one). Must not emit. May be NULL. */
	void (*close)(ev_op_ctx *ctx, void *state);
} ev_operator;

/* ---- params (the job file's `params:` map of the operator) ---- */

/* ev_op_param_str: params.name as text (owned by the plan, valid while the job runs), or
 * dflt when absent. ev_op_param_int / _float / _bool / _duration_ms: the value read as
 * that kind (durations in ms), or dflt when absent. A value of the wrong form (possible
 * only for a param the operator did not declare) gives dflt and fails the subtask when
 * the hook returns, with "FILE:LINE:COL: params.NAME must be ...". Any hook. */
const char *ev_op_param_str(ev_op_ctx *ctx, const char *name, const char *dflt);
int64_t ev_op_param_int(ev_op_ctx *ctx, const char *name, int64_t dflt);
double ev_op_param_float(ev_op_ctx *ctx, const char *name, double dflt);
bool ev_op_param_bool(ev_op_ctx *ctx, const char *name, bool dflt);
int64_t ev_op_param_duration_ms(ev_op_ctx *ctx, const char *name, int64_t dflt);

/* ---- schemas and the subtask ---- */

/* ev_op_input_schema: the schema of the input streams (borrowed, immutable, valid while
 * the job runs). */
const ev_schema *ev_op_input_schema(ev_op_ctx *ctx);
/* ev_op_output_schema: the schema of output port `port` (0 main, 1.. side outputs in the
 * order of side_outputs), or NULL if there is no such port. */
const ev_schema *ev_op_output_schema(ev_op_ctx *ctx, uint32_t port);
/* ev_op_nports: 1 + the number of side outputs. */
uint32_t ev_op_nports(ev_op_ctx *ctx);
/* ev_op_port: the port of the side output called name (1..), 0 for "" or NULL (the main
 * output), or -1 if there is none. */
int ev_op_port(ev_op_ctx *ctx, const char *name);
/* ev_op_subtask, ev_op_parallelism: this subtask's index (0..) and how many there are. */
uint32_t ev_op_subtask(ev_op_ctx *ctx);
uint32_t ev_op_parallelism(ev_op_ctx *ctx);
/* ev_op_id: the operator's id in the job file. */
const char *ev_op_id(ev_op_ctx *ctx);

/* ---- time ---- */

/* ev_op_watermark: the task's current watermark (ms; INT64_MIN before the first one). */
int64_t ev_op_watermark(ev_op_ctx *ctx);
/* ev_op_now_ms: processing time, ms since the Unix epoch (the system's wall clock). */
int64_t ev_op_now_ms(ev_op_ctx *ctx);

/* ---- keyed state ---- */

/* ev_op_state: the subtask's keyed-state handle (register states in open), or NULL
 * without key_by. The hooks' thread only; see <eddy/state.h> for its calls. */
ev_state *ev_op_state(ev_op_ctx *ctx);

/* ev_op_key makes the key of record `row` of b (its key_by values, in order) the current
 * key of ev_op_state: its key group as the partitioner computes it, and a canonical
 * encoding as the key bytes (ints, floats, bools, strings, nulls each tagged, so 1 and
 * 1.0 and "1" are different keys). No allocation, except to grow a buffer for a longer
 * key than any before. Errors: EDDY_EINVAL (no key_by, row out of range), EDDY_ENOMEM,
 * and ev_state_set_key's. process only (b is its batch). */
eddy_err ev_op_key(ev_op_ctx *ctx, const ev_batch *b, uint32_t row);

/* ev_op_key_values decodes the current key (set by ev_op_key or by a timer) into vals
 * (n entries, the number of key_by expressions): strings point into the context and
 * stay valid until the next ev_op_key or the hook returns. Errors: EDDY_EINVAL (no
 * current key, n too small). */
eddy_err ev_op_key_values(ev_op_ctx *ctx, ev_val *vals, uint32_t n);

/* ---- output ---- */

/* ev_op_emit appends one record to output port `port` (0 main, 1.. side outputs):
 * fields[i] for field i of the port's schema (all of them, in order; EV_NULL for null;
 * an int is taken for a float field), event time ts (ms). Records are gathered in a
 * batch per port (strings copied) and handed downstream when it is full and after
 * every hook, in order; no allocation per record. Errors (the record is not added):
 * EDDY_EINVAL (no such port, a value of the wrong type; ev_op_fail's reason is set),
 * EDDY_ENOMEM. Any hook but close. */
eddy_err ev_op_emit(ev_op_ctx *ctx, uint32_t port, const ev_val *fields, int64_t ts);

/* ---- errors ---- */

/* ev_op_fail sets the reason the subtask fails with (printf format; the ev_operator's name
 * is prefixed) and returns EDDY_EFAILED: `return ev_op_fail(ctx, "bad amount %g", x);`. The
 * subtask fails when the hook returns, whatever it returns. */
eddy_err ev_op_fail(ev_op_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
