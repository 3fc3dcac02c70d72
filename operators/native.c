/*
 * The native adapter (operators/ops.h): runs a user's ev_operator (include/eddy/operator.h)
 * as an op_def. The context is the op's state: it maps the task's hooks to the
 * operator's, keeps one output batch per port (flushed when full and after every hook),
 * pops due timers (event time when the watermark advances, processing time from a
 * one-shot actor timer armed for the earliest) and turns failures into task failures with
 * a reason.
 */
#include "ops.h"

#include "../config/cfg.h"
#include "../runtime/alloc.h"
#include "../runtime/clock.h"

#include <eddy/operator.h>
#include <eddy/state.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROC_TIMER_TAG 0x6e617469766574ull /* "nativet" */

/* A growable byte buffer (grows only for a longer content than ever before). */
typedef struct bytes {
	uint8_t *p;
	size_t len, cap;
} bytes;

struct ev_op_ctx {
	task *t;
	const task_node *node;
	const native_conf *c;
	const ev_operator *def;
	void *state; /* the operator's */
	bool opened; /* its open ran (close is due) */
	bool in_close;
	ev_state *st;            /* keyed state, or NULL */
	ev_batch **out;          /* [nports] records gathered per port */
	int keyf[EV_MAX_FIELDS]; /* key_by k's field, or -1 (an expression) */
	ev_val *kv;              /* [nkeys] the key values of ev_op_key */
	bytes key;               /* the key ev_op_key made current */
	bytes tkey, tns;         /* a timer's key and namespace (copies) */
	const bytes *cur;        /* the current key: &key or &tkey, or NULL */
	int64_t wm;              /* the watermark passed to the last watermark hook */
	rt_timer *ptimer;        /* the armed processing-time actor timer, or NULL */
	int64_t ptimer_at;       /* its processing time (ms since the epoch) */
	bool failed;
	char why[400];
};

/* ---- helpers ---- */

static eddy_err grow(bytes *b, size_t need)
{
	if (need <= b->cap)
		return EDDY_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	uint8_t *p = rt_realloc(b->p, cap);
	if (p == NULL)
		return EDDY_ENOMEM;
	b->p = p;
	b->cap = cap;
	return EDDY_OK;
}

static eddy_err copy_bytes(bytes *b, const void *p, size_t len)
{
	eddy_err err = grow(b, len ? len : 1);
	if (err != EDDY_OK)
		return err;
	if (len)
		memcpy(b->p, p, len);
	b->len = len;
	return EDDY_OK;
}

/* set_fail records the first failure reason. */
static void set_fail(ev_op_ctx *ctx, const char *fmt, va_list ap)
{
	if (ctx->failed)
		return;
	ctx->failed = true;
	vsnprintf(ctx->why, sizeof(ctx->why), fmt, ap);
}

static void failf(ev_op_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(ev_op_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_fail(ctx, fmt, ap);
	va_end(ap);
}

/* flush_port hands port p's gathered records downstream. */
static eddy_err flush_port(ev_op_ctx *ctx, uint32_t p)
{
	ev_batch *b = ctx->out[p];
	if (b == NULL || b->n == 0)
		return EDDY_OK;
	ctx->out[p] = NULL;
	return task_emit(ctx->t, p, b);
}

/* arm_proc keeps a one-shot actor timer armed for the earliest processing-time timer. */
static eddy_err arm_proc(ev_op_ctx *ctx)
{
	int64_t next;
	if (ctx->st == NULL || ev_timer_next(ctx->st, EV_TIME_PROCESSING, &next) != EDDY_OK)
		return EDDY_OK;
	if (ctx->ptimer && ctx->ptimer_at <= next)
		return EDDY_OK;
	actor *self = task_actor(ctx->t);
	if (ctx->ptimer)
		actor_timer_cancel(self, ctx->ptimer);
	ctx->ptimer = NULL;
	int64_t delay = next - clock_wall_ms();
	eddy_err err =
	    actor_timer_start(self, delay > 0 ? delay : 0, 0, PROC_TIMER_TAG, &ctx->ptimer);
	if (err != EDDY_OK)
		return err;
	ctx->ptimer_at = next;
	return EDDY_OK;
}

static const char *err_name(eddy_err e)
{
	return eddy_strerror(e);
}

/* after runs after every hook of the operator: the failure it reported, or its error, or
 * the records it emitted are sent and the processing-time timer re-armed. */
static eddy_err after(ev_op_ctx *ctx, eddy_err err, const char *hook)
{
	if (err == EDDY_OK && !ctx->failed)
		for (uint32_t p = 0; p < ctx->c->nports && err == EDDY_OK; p++)
			err = flush_port(ctx, p);
	if (err == EDDY_OK && !ctx->failed)
		err = arm_proc(ctx);
	ctx->cur = NULL;
	if (ctx->failed)
		return task_fail(ctx->t, "%s: %s", ctx->def->name, ctx->why);
	if (err != EDDY_OK)
		return task_fail(ctx->t, "%s: %s failed: %s", ctx->def->name, hook, err_name(err));
	return EDDY_OK;
}

/* fire pops the timers of domain d up to `upto` and calls on_timer for each. */
static eddy_err fire(ev_op_ctx *ctx, ev_time_domain d, int64_t upto)
{
	ev_timer tm;
	eddy_err err;
	while ((err = ev_timer_pop(ctx->st, d, upto, &tm)) == EDDY_OK) {
		if (ctx->def->on_timer == NULL)
			continue;
		if ((err = copy_bytes(&ctx->tkey, tm.key.p, tm.key.len)) != EDDY_OK ||
		    (err = copy_bytes(&ctx->tns, tm.ns.p, tm.ns.len)) != EDDY_OK)
			return err;
		tm.key = (ev_bytes){ctx->tkey.p, ctx->tkey.len};
		tm.ns = (ev_bytes){ctx->tns.p, ctx->tns.len};
		ctx->cur = &ctx->tkey;
		err = ctx->def->on_timer(ctx, ctx->state, &tm);
		ctx->cur = NULL;
		if (err != EDDY_OK)
			failf(ctx, "on_timer failed: %s", eddy_strerror(err)); /* unless it said why */
		if (err != EDDY_OK || ctx->failed)
			return err ? err : EDDY_EFAILED;
	}
	if (err != EDDY_ENOENT) {
		failf(ctx, "timers: %s", ev_state_errmsg(ctx->st));
		return err;
	}
	return EDDY_OK;
}

/* ---- the op_def ---- */

static void native_close(task *t, void *state);

static eddy_err native_open(task *t, void **state)
{
	const task_node *n = task_node_of(t);
	const native_conf *c = n->conf;
	ev_op_ctx *ctx = rt_calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return EDDY_ENOMEM;
	*state = ctx; /* close frees it, also when open fails */
	ctx->t = t;
	ctx->node = n;
	ctx->c = c;
	ctx->def = c->def;
	ctx->st = task_keyed_state(t);
	ctx->wm = WM_MIN;
	ctx->out = rt_calloc(c->nports ? c->nports : 1, sizeof(ev_batch *));
	ctx->kv = rt_calloc(c->nkeys ? c->nkeys : 1, sizeof(ev_val));
	if (ctx->out == NULL || ctx->kv == NULL)
		return EDDY_ENOMEM;
	for (uint32_t k = 0; k < c->nkeys; k++)
		ctx->keyf[k] = expr_field(c->keys[k]);
	eddy_err err = EDDY_OK;
	ctx->opened = true;
	if (ctx->def->open)
		err = ctx->def->open(ctx, &ctx->state);
	return after(ctx, err, "open");
}

static eddy_err native_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	ev_op_ctx *ctx = state;
	(void)t;
	eddy_err err = ctx->def->process(ctx, ctx->state, b, input);
	batch_free(b);
	return after(ctx, err, "process");
}

static eddy_err native_watermark(task *t, void *state, int64_t wm)
{
	ev_op_ctx *ctx = state;
	(void)t;
	ctx->wm = wm;
	eddy_err err = EDDY_OK;
	if (ctx->st)
		err = fire(ctx, EV_TIME_EVENT, wm);
	if (err == EDDY_OK && !ctx->failed && ctx->def->on_watermark)
		err = ctx->def->on_watermark(ctx, ctx->state, wm);
	return after(ctx, err, "on_watermark");
}

static eddy_err native_message(task *t, void *state, rt_msg *m)
{
	ev_op_ctx *ctx = state;
	if (m->kind != MSG_TIMER) {
		msg_discard(m);
		return task_fail(t, "%s: unexpected message kind %u", ctx->def->name, m->kind);
	}
	if (m->ptr != ctx->ptimer || ctx->ptimer == NULL)
		return EDDY_OK;                         /* the timer pointer stays the runtime's */
	actor_timer_cancel(task_actor(t), ctx->ptimer); /* fired: give back its reference */
	ctx->ptimer = NULL;
	eddy_err err = ctx->st ? fire(ctx, EV_TIME_PROCESSING, clock_wall_ms()) : EDDY_OK;
	return after(ctx, err, "on_timer");
}

static void native_close(task *t, void *state)
{
	ev_op_ctx *ctx = state;
	if (ctx == NULL)
		return;
	if (ctx->opened && ctx->def->close) {
		ctx->in_close = true;
		ctx->def->close(ctx, ctx->state);
	}
	if (ctx->ptimer)
		actor_timer_cancel(task_actor(t), ctx->ptimer);
	for (uint32_t p = 0; ctx->out && p < ctx->c->nports; p++)
		batch_free(ctx->out[p]);
	rt_free(ctx->out);
	rt_free(ctx->kv);
	rt_free(ctx->key.p);
	rt_free(ctx->tkey.p);
	rt_free(ctx->tns.p);
	rt_free(ctx);
}

/* Restarting a subtask in place would lose the operator's private state and its output
 * position: with checkpoints the job restarts from the last one instead. Keyed state is
 * the task's (snapshot and restore by key group), so the keyed kind is rescalable. */
const op_def native_op = {
    .type = "native",
    .open = native_open,
    .process = native_process,
    .watermark = native_watermark,
    .message = native_message,
    .close = native_close,
};

const op_def native_keyed_op = {
    .type = "native",
    .open = native_open,
    .process = native_process,
    .watermark = native_watermark,
    .message = native_message,
    .close = native_close,
    .rescalable = true,
    .keyed_state = true,
};

/* ---- params ---- */

static const cfg_node *param(ev_op_ctx *ctx, const char *name)
{
	const cfg_node *v = cfg_get(ctx->c->params, name);
	if (v == NULL || (v->kind == CFG_SCALAR && v->str[0] == '\0' && !v->quoted))
		return NULL; /* absent or null */
	return v;
}

/* param_what: param `name`'s node (NULL if absent) and its label for messages. */
static const cfg_node *param_what(ev_op_ctx *ctx, const char *name, char *what, size_t n)
{
	snprintf(what, n, "'params.%s'", name);
	return param(ctx, name);
}

/* param_fail fails the subtask with a cfg message (FILE:LINE:COL). */
static void param_fail(ev_op_ctx *ctx, const cfg_error *ce)
{
	failf(ctx, "%s", ce->msg);
}

const char *ev_op_param_str(ev_op_ctx *ctx, const char *name, const char *dflt)
{
	char what[300];
	const cfg_node *v = param_what(ctx, name, what, sizeof(what));
	const char *s = dflt;
	cfg_error ce;
	if (v && cfg_node_str(v, what, &s, &ce) != EDDY_OK) {
		param_fail(ctx, &ce);
		return dflt;
	}
	return s;
}

int64_t ev_op_param_int(ev_op_ctx *ctx, const char *name, int64_t dflt)
{
	char what[300];
	const cfg_node *v = param_what(ctx, name, what, sizeof(what));
	int64_t x = dflt;
	cfg_error ce;
	if (v && cfg_node_int(v, what, INT64_MIN, INT64_MAX, &x, &ce) != EDDY_OK) {
		param_fail(ctx, &ce);
		return dflt;
	}
	return x;
}

bool ev_op_param_bool(ev_op_ctx *ctx, const char *name, bool dflt)
{
	char what[300];
	const cfg_node *v = param_what(ctx, name, what, sizeof(what));
	bool x = dflt;
	cfg_error ce;
	if (v && cfg_node_bool(v, what, &x, &ce) != EDDY_OK) {
		param_fail(ctx, &ce);
		return dflt;
	}
	return x;
}

int64_t ev_op_param_duration_ms(ev_op_ctx *ctx, const char *name, int64_t dflt)
{
	char what[300];
	const cfg_node *v = param_what(ctx, name, what, sizeof(what));
	int64_t x = dflt;
	cfg_error ce;
	if (v && cfg_node_duration_ms(v, what, &x, &ce) != EDDY_OK) {
		param_fail(ctx, &ce);
		return dflt;
	}
	return x;
}

double ev_op_param_float(ev_op_ctx *ctx, const char *name, double dflt)
{
	const cfg_node *v = param(ctx, name);
	if (v == NULL)
		return dflt;
	double x;
	if (!native_parse_float(v, &x)) {
		cfg_error ce;
		cfg_errorf(&ce, v, "'params.%s' must be a number, got %s%s%s", name,
		           v->kind == CFG_SCALAR ? "'" : "",
		           v->kind == CFG_SCALAR ? v->str : cfg_kind_name(v->kind),
		           v->kind == CFG_SCALAR ? "'" : "");
		param_fail(ctx, &ce);
		return dflt;
	}
	return x;
}

bool native_parse_float(const cfg_node *v, double *out)
{
	if (v->kind != CFG_SCALAR || v->str[0] == '\0')
		return false;
	char *end = NULL;
	errno = 0;
	double x = strtod(v->str, &end);
	if (end == v->str || *end != '\0' || errno == ERANGE)
		return false;
	*out = x;
	return true;
}

/* ---- schemas, the subtask, time ---- */

const ev_schema *ev_op_input_schema(ev_op_ctx *ctx)
{
	return ctx->node->ninputs ? ctx->node->in_schemas[0] : NULL;
}

const ev_schema *ev_op_output_schema(ev_op_ctx *ctx, uint32_t port)
{
	return port < ctx->node->nports ? ctx->node->ports[port].schema : NULL;
}

uint32_t ev_op_nports(ev_op_ctx *ctx)
{
	return ctx->c->nports;
}

int ev_op_port(ev_op_ctx *ctx, const char *name)
{
	if (name == NULL || name[0] == '\0')
		return 0;
	for (uint32_t i = 0; i + 1 < ctx->c->nports; i++)
		if (strcmp(ctx->c->side_names[i], name) == 0)
			return (int)i + 1;
	return -1;
}

uint32_t ev_op_subtask(ev_op_ctx *ctx)
{
	return task_subtask(ctx->t);
}

uint32_t ev_op_parallelism(ev_op_ctx *ctx)
{
	return ctx->node->parallelism;
}

const char *ev_op_id(ev_op_ctx *ctx)
{
	return ctx->node->id;
}

int64_t ev_op_watermark(ev_op_ctx *ctx)
{
	return ctx->wm;
}

int64_t ev_op_now_ms(ev_op_ctx *ctx)
{
	(void)ctx;
	return clock_wall_ms();
}

/* ---- keys ---- */

ev_state *ev_op_state(ev_op_ctx *ctx)
{
	return ctx->st;
}

/* Key encoding: per value a tag byte, then int/timestamp/float 8 bytes big-endian, a
 * bool 1 byte, a string 4 bytes of length (big-endian) and its bytes, a null nothing. */
enum { KEY_NULL = 0, KEY_INT = 1, KEY_FLOAT = 2, KEY_BOOL = 3, KEY_STRING = 4, KEY_TS = 5 };

static uint8_t *put_u64(uint8_t *p, uint64_t x)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(x >> (i * 8));
	return p;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = x << 8 | p[i];
	return x;
}

eddy_err ev_op_key(ev_op_ctx *ctx, const ev_batch *b, uint32_t row)
{
	const native_conf *c = ctx->c;
	if (ctx->st == NULL || c->nkeys == 0 || b == NULL || row >= b->n)
		return EDDY_EINVAL;
	expr_scratch *sc = task_scratch(ctx->t);
	expr_scratch_reset(sc);
	size_t need = 0;
	for (uint32_t k = 0; k < c->nkeys; k++) {
		int f = ctx->keyf[k];
		ev_val v =
		    f >= 0 ? batch_get_val(b, row, (uint32_t)f) : expr_eval(c->keys[k], b, row, sc);
		ctx->kv[k] = v;
		need += 1 + (v.type == EV_STRING ? 4 + (size_t)v.s.len
		             : v.type == EV_BOOL ? 1
		             : v.type == EV_NULL ? 0
		                                 : 8);
	}
	eddy_err err = grow(&ctx->key, need ? need : 1);
	if (err != EDDY_OK)
		return err;
	uint8_t *p = ctx->key.p;
	for (uint32_t k = 0; k < c->nkeys; k++) {
		ev_val v = ctx->kv[k];
		switch (v.type) {
		case EV_INT:
		case EV_TIMESTAMP:
			*p++ = v.type == EV_INT ? KEY_INT : KEY_TS;
			p = put_u64(p, (uint64_t)v.i);
			break;
		case EV_FLOAT: {
			double d = v.f == 0.0 ? 0.0 : v.f; /* -0.0 and 0.0: one key, as the hash */
			uint64_t u;
			memcpy(&u, &d, sizeof(u));
			*p++ = KEY_FLOAT;
			p = put_u64(p, u);
			break;
		}
		case EV_BOOL:
			*p++ = KEY_BOOL;
			*p++ = v.b ? 1 : 0;
			break;
		case EV_STRING:
			*p++ = KEY_STRING;
			for (int i = 3; i >= 0; i--)
				*p++ = (uint8_t)(v.s.len >> (i * 8));
			if (v.s.len)
				memcpy(p, v.s.p, v.s.len);
			p += v.s.len;
			break;
		default: *p++ = KEY_NULL;
		}
	}
	ctx->key.len = need;
	uint32_t kg = task_key_group(ctx->t, ctx->kv, c->nkeys);
	if ((err = ev_state_set_key(ctx->st, ctx->key.p, ctx->key.len, kg)) != EDDY_OK) {
		ctx->cur = NULL;
		return err;
	}
	ctx->cur = &ctx->key;
	return EDDY_OK;
}

eddy_err ev_op_key_values(ev_op_ctx *ctx, ev_val *vals, uint32_t n)
{
	const bytes *kb = ctx->cur;
	if (kb == NULL || n < ctx->c->nkeys)
		return EDDY_EINVAL;
	const uint8_t *p = kb->p, *end = kb->p + kb->len;
	for (uint32_t k = 0; k < ctx->c->nkeys; k++) {
		if (p >= end)
			return EDDY_EINVAL;
		uint8_t tag = *p++;
		ev_val v = {.type = EV_NULL};
		switch (tag) {
		case KEY_INT:
		case KEY_TS:
		case KEY_FLOAT:
			if (end - p < 8)
				return EDDY_EINVAL;
			if (tag == KEY_FLOAT) {
				uint64_t u = get_u64(p);
				v.type = EV_FLOAT;
				memcpy(&v.f, &u, sizeof(v.f));
			} else {
				v.type = tag == KEY_INT ? EV_INT : EV_TIMESTAMP;
				v.i = (int64_t)get_u64(p);
			}
			p += 8;
			break;
		case KEY_BOOL:
			if (end - p < 1)
				return EDDY_EINVAL;
			v.type = EV_BOOL;
			v.b = *p++ != 0;
			break;
		case KEY_STRING: {
			if (end - p < 4)
				return EDDY_EINVAL;
			uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			               (uint32_t)p[2] << 8 | p[3];
			p += 4;
			if ((size_t)(end - p) < len)
				return EDDY_EINVAL;
			v.type = EV_STRING;
			v.s.p = (const char *)p;
			v.s.len = len;
			p += len;
			break;
		}
		case KEY_NULL: break;
		default: return EDDY_EINVAL;
		}
		vals[k] = v;
	}
	return EDDY_OK;
}

/* ---- output ---- */

eddy_err ev_op_emit(ev_op_ctx *ctx, uint32_t port, const ev_val *fields, int64_t ts)
{
	if (ctx->in_close) {
		failf(ctx, "ev_op_emit called in close");
		return EDDY_EINVAL;
	}
	if (port >= ctx->c->nports) {
		failf(ctx, "ev_op_emit: no output port %u (the operator has %u)", port,
		      ctx->c->nports);
		return EDDY_EINVAL;
	}
	const ev_schema *s = ctx->node->ports[port].schema;
	ev_batch *b = ctx->out[port];
	if (b == NULL && (b = ctx->out[port] = task_new_batch(ctx->t, s)) == NULL)
		return EDDY_ENOMEM;
	uint32_t r = batch_append_row(b);
	b->ts[r] = ts;
	for (uint32_t i = 0; i < s->n; i++) {
		eddy_err err = batch_set_val(b, r, i, fields[i]);
		if (err != EDDY_OK) {
			b->n--; /* the record is not added (its strings stay in the arena) */
			if (err == EDDY_EINVAL)
				failf(ctx, "ev_op_emit: port %u field %u '%s' is %s, got %s", port,
				      i, s->fields[i].name, ev_type_name(s->fields[i].type),
				      ev_type_name(fields[i].type));
			return err;
		}
	}
	return batch_full(b) ? flush_port(ctx, port) : EDDY_OK;
}

/* ---- errors ---- */

eddy_err ev_op_fail(ev_op_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_fail(ctx, fmt, ap);
	va_end(ap);
	return EDDY_EFAILED;
}
