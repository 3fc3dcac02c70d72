/*
 * The split operator (operators/ops.h): one input, several outputs by predicate. Each
 * record goes to every output whose predicate is true (null and false are not), so a
 * record may go to several; the records matching none go to the default output (port 0)
 * when there is one, and are otherwise dropped and counted (task_count_dropped). As
 * Flink's side outputs from a ProcessFunction, but declared in the job file.
 *
 * Batch in, batches out: the predicates are evaluated row by row into one bit mask per
 * row, then each output gets one batch of its rows (copied), except that an output
 * taking every row of the batch gets the batch itself. No allocation per record.
 */
#include "ops.h"

#include "../runtime/alloc.h"

typedef struct sstate {
	uint64_t *mask; /* per row of the batch: bit i = output i's predicate held */
	size_t cap;
} sstate;

static eddy_err split_open(task *t, void **state)
{
	(void)t;
	sstate *s = rt_calloc(1, sizeof(*s));
	*state = s;
	return s ? EDDY_OK : EDDY_ENOMEM;
}

static void split_close(task *t, void *state)
{
	(void)t;
	sstate *s = state;
	if (s == NULL)
		return;
	rt_free(s->mask);
	rt_free(s);
}

/* rows_of: a batch of port q's schema holding b's rows whose mask has `bit` (0: none). */
static eddy_err rows_of(task *t, const ev_batch *b, const uint64_t *mask, uint64_t bit, uint32_t n,
                        uint32_t q, ev_batch **out)
{
	ev_batch *o = batch_new(task_node_of(t)->ports[q].schema, n);
	if (o == NULL)
		return EDDY_ENOMEM;
	eddy_err err = EDDY_OK;
	for (uint32_t r = 0; r < b->n && err == EDDY_OK; r++)
		if (bit ? (mask[r] & bit) != 0 : mask[r] == 0)
			err = batch_copy_row(o, b, r);
	if (err != EDDY_OK) {
		batch_free(o);
		return err;
	}
	*out = o;
	return EDDY_OK;
}

static eddy_err split_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	(void)input;
	sstate *s = state;
	const task_node *node = task_node_of(t);
	const split_conf *c = node->conf;
	expr_scratch *sc = task_scratch(t);
	if (rt_grow((void **)&s->mask, &s->cap, b->n ? b->n : 1, sizeof(uint64_t), 1024) !=
	    EDDY_OK) {
		batch_free(b);
		return EDDY_ENOMEM;
	}
	uint32_t count[SPLIT_MAX_OUTPUTS + 1] = {0}; /* per port: 0 default, 1 + i outputs */
	for (uint32_t r = 0; r < b->n; r++) {
		uint64_t m = 0;
		for (uint32_t i = 0; i < c->n; i++) {
			expr_scratch_reset(sc);
			if (expr_eval_bool(c->preds[i], b, r, sc)) {
				m |= (uint64_t)1 << i;
				count[1 + i]++;
			}
		}
		s->mask[r] = m;
		count[0] += m == 0;
	}
	if (count[0] && !c->has_default)
		task_count_dropped(t, count[0]);
	/* the batch itself goes to the last port that takes all of it and is consumed */
	uint32_t whole = UINT32_MAX;
	for (uint32_t q = 0; q <= c->n; q++)
		if (count[q] == b->n && b->n > 0 && node->ports[q].nroutes > 0 &&
		    (q > 0 || c->has_default))
			whole = q;
	eddy_err err = EDDY_OK;
	for (uint32_t q = 0; q <= c->n && err == EDDY_OK; q++) {
		if (q == whole || count[q] == 0 || node->ports[q].nroutes == 0 ||
		    (q == 0 && !c->has_default))
			continue;
		ev_batch *o;
		if ((err = rows_of(t, b, s->mask, q ? (uint64_t)1 << (q - 1) : 0, count[q], q,
		                   &o)) == EDDY_OK)
			err = task_emit(t, q, o);
	}
	if (err == EDDY_OK && whole != UINT32_MAX) {
		b->schema = node->ports[whole].schema; /* the same layout as the input's */
		return task_emit(t, whole, b);
	}
	batch_free(b);
	return err;
}

const op_def split_op = {
    .type = "split",
    .restartable = true,
    .open = split_open,
    .process = split_process,
    .close = split_close,
};
