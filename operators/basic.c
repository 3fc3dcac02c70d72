/* filter, map and union (operators/ops.h). */
#include "ops.h"

#include "../runtime/alloc.h"

#include <string.h>

static eddy_err no_state(task *t, void **state)
{
	(void)t;
	*state = NULL;
	return EDDY_OK;
}

/* ---- filter ---- */

static eddy_err filter_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	(void)state;
	(void)input;
	const filter_conf *c = task_node_of(t)->conf;
	expr_scratch *sc = task_scratch(t);
	uint32_t nc = b->ncols, kept = 0;
	for (uint32_t r = 0; r < b->n; r++) {
		expr_scratch_reset(sc);
		if (!expr_eval_bool(c->where, b, r, sc))
			continue;
		if (kept != r) { /* compact in place; strings stay in the arena */
			b->ts[kept] = b->ts[r];
			b->nulls[kept] = b->nulls[r];
			memcpy(&b->cols[(size_t)kept * nc], &b->cols[(size_t)r * nc],
			       nc * sizeof(uint64_t));
		}
		kept++;
	}
	b->n = kept;
	return task_emit(t, 0, b);
}

const op_def filter_op = {
	.type = "filter",
	.restartable = true,
	.open = no_state,
	.process = filter_process,
};

/* ---- map ---- */

/* map_process evaluates the expressions per record. The output batch shares the input's
 * string arena (one allocation, no copy): a bare field's slot is copied as it is, strings
 * included, and any string value that lies in the arena (coalesce, case over fields) is
 * stored by its offset; only strings made by functions (lower, concat, in the scratch)
 * are appended to it. */
static eddy_err map_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	(void)state;
	(void)input;
	const map_conf *c = task_node_of(t)->conf;
	expr_scratch *sc = task_scratch(t);
	ev_batch *out = batch_new(c->out, b->n ? b->n : 1);
	if (out == NULL) {
		batch_free(b);
		return EDDY_ENOMEM;
	}
	out->arena = b->arena; /* b keeps reading it until it is freed below */
	out->arena_len = b->arena_len;
	out->arena_cap = b->arena_cap;
	int from[EV_MAX_FIELDS];
	for (uint32_t i = 0; i < c->n; i++)
		from[i] = expr_field(c->exprs[i]);
	eddy_err err = EDDY_OK;
	for (uint32_t r = 0; r < b->n && err == EDDY_OK; r++) {
		expr_scratch_reset(sc);
		uint32_t o = batch_append_row(out);
		out->ts[o] = b->ts[r];
		for (uint32_t i = 0; i < c->n && err == EDDY_OK; i++) {
			if (from[i] >= 0) { /* a bare field: its slot as it is */
				uint32_t f = (uint32_t)from[i];
				*batch_slot(out, o, i) = batch_slot_get(b, r, f);
				if (!(b->nulls[r] >> f & 1))
					out->nulls[o] &= ~((uint64_t)1 << i);
				continue;
			}
			ev_val v = expr_eval(c->exprs[i], b, r, sc);
			uintptr_t a = (uintptr_t)out->arena, p = (uintptr_t)v.s.p;
			if (v.type == EV_STRING && c->out->fields[i].type == EV_STRING && a != 0 &&
			    p >= a && p + v.s.len <= a + out->arena_len) {
				*batch_slot(out, o, i) =
				    ((uint64_t)(p - a) << 32) | (uint32_t)v.s.len;
				out->nulls[o] &= ~((uint64_t)1 << i);
				continue;
			}
			err = batch_set_val(out, o, i, v);
			b->arena = out->arena; /* where an append may have moved it */
		}
	}
	b->arena = NULL; /* out's now */
	batch_free(b);
	if (err != EDDY_OK) {
		batch_free(out);
		return err;
	}
	return task_emit(t, 0, out);
}

const op_def map_op = {
	.type = "map",
	.restartable = true,
	.open = no_state,
	.process = map_process,
};

/* ---- union ---- */

static eddy_err union_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	(void)state;
	(void)input;
	/* the inputs' schemas are equal (checked by the plan); re-point to the output's */
	b->schema = task_node_of(t)->ports[0].schema;
	return task_emit(t, 0, b);
}

const op_def union_op = {
	.type = "union",
	.restartable = true,
	.open = no_state,
	.process = union_process,
};
