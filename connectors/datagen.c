/*
 * The datagen source (operators/ops.h), as Flink's DataGen connector: rows with sequence,
 * random and timestamp fields, at rows_per_second (0: as fast as downstream takes them),
 * count rows in all (0: unbounded, until the job is stopped). Deterministic for a seed:
 * random values come from a per-subtask xorshift generator seeded by seed and subtask.
 * Row i of subtask s of p is the global row i * p + s, so sequences do not overlap.
 * A timestamp field (kind timestamp) is start + global_row * step (ms).
 */
#include "../operators/ops.h"

#include "../runtime/alloc.h"

#include "../runtime/mp.h"

#include <stdio.h>
#include <string.h>

typedef struct gen_state {
	const datagen_conf *c;
	uint64_t rng;
	int64_t next;      /* next local row */
	int64_t limit;     /* local rows in all, or -1 */
	int64_t started_ms;
	int64_t max_ts;
	bool waiting;      /* a MSG_CONTINUE is queued */
} gen_state;

static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static eddy_err gen_rows(task *t, gen_state *s, int64_t n)
{
	const datagen_conf *c = s->c;
	const task_node *node = task_node_of(t);
	uint32_t p = node->parallelism, me = task_subtask(t);
	eddy_err err = EDDY_OK;
	while (n > 0 && err == EDDY_OK && (s->limit < 0 || s->next < s->limit)) {
		ev_batch *b = task_new_batch(t, c->schema);
		if (b == NULL)
			return EDDY_ENOMEM;
		while (n > 0 && !batch_full(b) && (s->limit < 0 || s->next < s->limit) &&
		       err == EDDY_OK) {
			int64_t g = s->next * p + me;
			uint32_t r = batch_append_row(b);
			for (uint32_t f = 0; f < c->schema->n && err == EDDY_OK; f++) {
				const gen_field *gf = &c->fields[f];
				ev_type ty = c->schema->fields[f].type;
				int64_t span = gf->max - gf->min + 1;
				uint64_t x = next_rand(&s->rng);
				switch (gf->kind) {
				case GEN_SEQUENCE:
					if (ty == EV_STRING) {
						char buf[24];
						int len = snprintf(buf, sizeof(buf), "%lld", (long long)(gf->min + g));
						err = batch_set_str(b, r, f, buf, (size_t)len);
					} else if (ty == EV_FLOAT) {
						batch_set_float(b, r, f, (double)(gf->min + g));
					} else {
						batch_set_int(b, r, f, gf->min + g);
					}
					break;
				case GEN_EVENT_TIME:
					batch_set_int(b, r, f, gf->min + g * gf->max);
					break;
				case GEN_RANDOM:
					if (ty == EV_FLOAT) {
						double u = (double)(x >> 11) / 9007199254740992.0;
						batch_set_float(b, r, f, (double)gf->min + u * (double)(gf->max - gf->min));
					} else if (ty == EV_BOOL) {
						batch_set_bool(b, r, f, x & 1);
					} else if (ty == EV_STRING && gf->nvalues) {
						const char *v = gf->values[x % gf->nvalues];
						err = batch_set_str(b, r, f, v, strlen(v));
					} else if (ty == EV_STRING) {
						char buf[64];
						int64_t len = gf->min + (int64_t)(x % (uint64_t)(span > 0 ? span : 1));
						if (len > (int64_t)sizeof(buf))
							len = sizeof(buf);
						for (int64_t i = 0; i < len; i++)
							buf[i] = (char)('a' + next_rand(&s->rng) % 26);
						err = batch_set_str(b, r, f, buf, (size_t)len);
					} else {
						batch_set_int(b, r, f, gf->min + (int64_t)(x % (uint64_t)(span > 0 ? span : 1)));
					}
					break;
				}
			}
			int tf = c->time.time_field;
			b->ts[r] = tf >= 0 ? batch_get_int(b, r, (uint32_t)tf)
			                   : clock_wall_ms();
			if (b->ts[r] > s->max_ts)
				s->max_ts = b->ts[r];
			s->next++;
			n--;
		}
		atomic_fetch_add_explicit(&task_stats(t)->records_in, b->n, memory_order_relaxed);
		if (err == EDDY_OK)
			err = task_emit(t, 0, b);
		else
			batch_free(b);
	}
	if (err != EDDY_OK)
		return err;
	if (c->time.time_field >= 0 && s->max_ts != INT64_MIN)
		err = task_emit_watermark(t, s->max_ts - c->time.max_ooo_ms - 1);
	else if (c->time.time_field < 0)
		err = task_emit_watermark(t, clock_wall_ms() - 1);
	return err;
}

static eddy_err gen_step(task *t, gen_state *s)
{
	if (atomic_load(&task_stats(t)->stop)) {
		task_finish(t, false);
		return EDDY_OK;
	}
	if (s->limit >= 0 && s->next >= s->limit) {
		task_finish(t, true);
		return EDDY_OK;
	}
	const datagen_conf *c = s->c;
	eddy_err err;
	if (c->rows_per_second > 0) {
		int64_t now = clock_now_ms(asys_clock(actor_system(task_actor(t))));
		uint32_t p = task_node_of(t)->parallelism;
		int64_t due = (now - s->started_ms) * c->rows_per_second / 1000 / p + 1;
		err = due > s->next ? gen_rows(t, s, due - s->next) : EDDY_OK;
		if (err == EDDY_OK && s->limit >= 0 && s->next >= s->limit)
			task_finish(t, true);
		return err;
	}
	err = gen_rows(t, s, TASK_BATCH);
	if (err != EDDY_OK)
		return err;
	rt_msg m = { .kind = MSG_CONTINUE };
	return actor_send(task_actor(t), task_actor(t), &m);
}

static eddy_err gen_message(task *t, void *state, rt_msg *m)
{
	gen_state *s = state;
	if (m->kind == MSG_CONTINUE || m->kind == MSG_TIMER)
		return gen_step(t, s);
	msg_discard(m);
	return task_fail(t, "datagen: unexpected message kind %u", m->kind);
}

static eddy_err gen_open(task *t, void **state)
{
	gen_state *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	*state = s;
	const task_node *n = task_node_of(t);
	s->c = n->conf;
	s->max_ts = INT64_MIN;
	s->rng = (s->c->seed + 1) * 0x9e3779b97f4a7c15ull + task_subtask(t) * 0xbf58476d1ce4e5b9ull;
	if (s->rng == 0)
		s->rng = 1;
	if (s->c->count > 0) {
		int64_t p = n->parallelism, me = task_subtask(t);
		s->limit = s->c->count / p + (me < s->c->count % p ? 1 : 0);
	} else {
		s->limit = -1;
	}
	s->started_ms = clock_now_ms(asys_clock(actor_system(task_actor(t))));
	if (s->c->rows_per_second > 0)
		return actor_timer_start(task_actor(t), 10, 10, 0, NULL);
	rt_msg m = { .kind = MSG_CONTINUE };
	return actor_send(task_actor(t), task_actor(t), &m);
}

/* The position: rows generated so far by this subtask, the generator's state and the
 * largest event time so far. */
static eddy_err gen_snapshot(task *t, void *state, uint64_t id, msgpack_packer *pk)
{
	(void)t, (void)id;
	gen_state *s = state;
	msgpack_pack_map(pk, 3);
	msgpack_pack_str_with_body(pk, "next", 4);
	msgpack_pack_int64(pk, s->next);
	msgpack_pack_str_with_body(pk, "rng", 3);
	msgpack_pack_uint64(pk, s->rng);
	msgpack_pack_str_with_body(pk, "max_ts", 6);
	msgpack_pack_int64(pk, s->max_ts);
	return EDDY_OK;
}

static eddy_err gen_restore(task *t, void *state, const msgpack_object *o)
{
	gen_state *s = state;
	int64_t next, rng, max_ts;
	if (!mp_int(mp_get(o, "next"), &next) || !mp_int(mp_get(o, "rng"), &rng) ||
	    !mp_int(mp_get(o, "max_ts"), &max_ts) || next < 0 || rng == 0 ||
	    (s->limit >= 0 && next > s->limit))
		return task_fail(t, "datagen: the checkpoint's position is not a datagen position");
	s->next = next;
	s->rng = (uint64_t)rng;
	s->max_ts = max_ts;
	if (s->c->rows_per_second > 0) { /* go on at the rate, from the restored row */
		uint32_t p = task_node_of(t)->parallelism;
		s->started_ms -= next * p * 1000 / s->c->rows_per_second;
	}
	return EDDY_OK;
}

static void gen_close(task *t, void *state)
{
	(void)t;
	rt_free(state);
}

const op_def datagen_op = {
	.type = "datagen",
	.open = gen_open,
	.message = gen_message,
	.close = gen_close,
	.snapshot = gen_snapshot,
	.restore = gen_restore,
};
