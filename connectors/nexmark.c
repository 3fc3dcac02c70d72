/*
 * The nexmark source (operators/ops.h): the events of connectors/nexmark_gen.h as
 * records, in batches, as Flink's Nexmark table source ('connector' = 'nexmark') but
 * deterministic. Subtask s of p takes the positions s, s + p, s + 2p, ... below `events`,
 * so every parallelism produces the same multiset of events; with `kind` one of person,
 * auction, bid it emits those events (the positions of other kinds are skipped without
 * being generated), with `all` every event as one wide record. `rate` (positions per
 * second over all subtasks) paces the wall clock; 0 runs as fast as downstream takes the
 * batches. The snapshot is the position, so a restore resumes exactly.
 */
#include "../operators/ops.h"

#include "../runtime/alloc.h"
#include "../runtime/mp.h"

#include <string.h>

/* positions looked at per activation at most (a person stream keeps 1 in 50) */
#define NX_STEP_POSITIONS (64u * TASK_BATCH)

typedef struct nx_state {
	const nexmark_source_conf *c;
	uint64_t next;      /* the next local position k (global position k * p + s) */
	uint64_t limit;     /* local positions in all; UINT64_MAX: unbounded */
	int64_t started_ms; /* wall clock of local position 0 (rate) */
	int64_t max_ts;     /* the largest event time emitted */
	nexmark_event ev;
} nx_state;

static eddy_err set_str(ev_batch *b, uint32_t r, uint32_t c, nexmark_str s)
{
	return batch_set_str(b, r, c, s.p, s.len);
}

/* fill writes e into record r: the fields of its kind from column `at` on. */
static eddy_err fill(ev_batch *b, uint32_t r, uint32_t at, const nexmark_event *e)
{
	eddy_err err = EDDY_OK;
	switch (e->kind) {
	case NEXMARK_PERSON:
		batch_set_int(b, r, at, e->person.id);
		if ((err = set_str(b, r, at + 1, e->person.name)) ||
		    (err = set_str(b, r, at + 2, e->person.email_address)) ||
		    (err = set_str(b, r, at + 3, e->person.credit_card)) ||
		    (err = set_str(b, r, at + 4, e->person.city)) ||
		    (err = set_str(b, r, at + 5, e->person.state)))
			return err;
		batch_set_int(b, r, at + 6, e->date_time);
		return set_str(b, r, at + 7, e->person.extra);
	case NEXMARK_AUCTION:
		batch_set_int(b, r, at, e->auction.id);
		if ((err = set_str(b, r, at + 1, e->auction.item_name)) ||
		    (err = set_str(b, r, at + 2, e->auction.description)))
			return err;
		batch_set_int(b, r, at + 3, e->auction.initial_bid);
		batch_set_int(b, r, at + 4, e->auction.reserve);
		batch_set_int(b, r, at + 5, e->date_time);
		batch_set_int(b, r, at + 6, e->auction.expires);
		batch_set_int(b, r, at + 7, e->auction.seller);
		batch_set_int(b, r, at + 8, e->auction.category);
		return set_str(b, r, at + 9, e->auction.extra);
	case NEXMARK_BID:
		batch_set_int(b, r, at, e->bid.auction);
		batch_set_int(b, r, at + 1, e->bid.bidder);
		batch_set_int(b, r, at + 2, e->bid.price);
		if ((err = set_str(b, r, at + 3, e->bid.channel)) ||
		    (err = set_str(b, r, at + 4, e->bid.url)))
			return err;
		batch_set_int(b, r, at + 5, e->date_time);
		return set_str(b, r, at + 6, e->bid.extra);
	}
	return EDDY_OK;
}

/* The wide record of kind all: event_type, dateTime, then 8 person_, 10 auction_ and 7
 * bid_ columns. */
static const uint32_t wide_at[3] = {2, 10, 20};

/* produce looks at up to `positions` positions, emitting full batches as it goes and
 * the rest with a watermark at the end. */
static eddy_err produce(task *t, nx_state *s, uint64_t positions)
{
	const nexmark_source_conf *c = s->c;
	const nexmark_conf *g = &c->gen;
	uint64_t p = task_node_of(t)->parallelism, me = task_subtask(t);
	int tf = c->time.time_field;
	ev_batch *b = NULL;
	eddy_err err = EDDY_OK;
	while (positions > 0 && s->next < s->limit) {
		uint64_t n = s->next * p + me;
		s->next++;
		positions--;
		if (c->kind != NEXMARK_ALL &&
		    nexmark_kind_of(g, nexmark_event_id(g, n)) != (nexmark_kind)c->kind)
			continue;
		if (b == NULL && (b = task_new_batch(t, c->schema)) == NULL)
			return EDDY_ENOMEM;
		nexmark_gen(g, n, &s->ev);
		uint32_t r = batch_append_row(b);
		if (c->kind == NEXMARK_ALL) {
			batch_set_int(b, r, 0, s->ev.kind);
			batch_set_int(b, r, 1, s->ev.date_time);
			err = fill(b, r, wide_at[s->ev.kind], &s->ev);
		} else {
			err = fill(b, r, 0, &s->ev);
		}
		if (err != EDDY_OK)
			break;
		if (tf < 0)
			b->ts[r] = clock_wall_ms();
		else if (batch_is_null(b, r, (uint32_t)tf)) /* all: another kind's time field */
			b->ts[r] = s->ev.date_time;
		else
			b->ts[r] = batch_get_int(b, r, (uint32_t)tf);
		if (b->ts[r] > s->max_ts)
			s->max_ts = b->ts[r];
		if (batch_full(b)) {
			atomic_fetch_add_explicit(&task_stats(t)->records_in, b->n,
			                          memory_order_relaxed);
			err = task_emit(t, 0, b);
			b = NULL;
			if (err != EDDY_OK)
				return err;
		}
	}
	if (err != EDDY_OK) {
		batch_free(b);
		return err;
	}
	if (b != NULL) {
		atomic_fetch_add_explicit(&task_stats(t)->records_in, b->n, memory_order_relaxed);
		if ((err = task_emit(t, 0, b)) != EDDY_OK)
			return err;
	}
	if (tf >= 0 && s->max_ts != INT64_MIN)
		return task_emit_watermark(t, s->max_ts - c->time.max_ooo_ms - 1);
	if (tf < 0)
		return task_emit_watermark(t, clock_wall_ms() - 1);
	return EDDY_OK;
}

static eddy_err nx_step(task *t, nx_state *s)
{
	if (atomic_load(&task_stats(t)->stop)) {
		task_finish(t, false);
		return EDDY_OK;
	}
	if (s->next >= s->limit) {
		task_finish(t, true);
		return EDDY_OK;
	}
	const nexmark_source_conf *c = s->c;
	eddy_err err;
	if (c->rate > 0) {
		int64_t now = clock_now_ms(asys_clock(actor_system(task_actor(t))));
		uint64_t p = task_node_of(t)->parallelism;
		int64_t el = now - s->started_ms;
		uint64_t due = (uint64_t)(el / 1000 * c->rate + el % 1000 * c->rate / 1000) / p + 1;
		uint64_t want = due > s->next ? due - s->next : 0;
		err = want > 0 ? produce(t, s, want) : EDDY_OK;
		if (err == EDDY_OK && s->next >= s->limit)
			task_finish(t, true);
		return err;
	}
	if ((err = produce(t, s, NX_STEP_POSITIONS)) != EDDY_OK)
		return err;
	rt_msg m = {.kind = MSG_CONTINUE};
	return actor_send(task_actor(t), task_actor(t), &m);
}

static eddy_err nx_message(task *t, void *state, rt_msg *m)
{
	nx_state *s = state;
	if (m->kind == MSG_CONTINUE || m->kind == MSG_TIMER)
		return nx_step(t, s);
	msg_discard(m);
	return task_fail(t, "nexmark: unexpected message kind %u", m->kind);
}

static eddy_err nx_open(task *t, void **state)
{
	nx_state *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	*state = s;
	const task_node *n = task_node_of(t);
	s->c = n->conf;
	s->max_ts = INT64_MIN;
	uint64_t events = s->c->gen.events, p = n->parallelism, me = task_subtask(t);
	s->limit = events > 0 ? events / p + (me < events % p ? 1 : 0) : UINT64_MAX;
	s->started_ms = clock_now_ms(asys_clock(actor_system(task_actor(t))));
	if (s->c->rate > 0)
		return actor_timer_start(task_actor(t), 10, 10, 0, NULL);
	rt_msg m = {.kind = MSG_CONTINUE};
	return actor_send(task_actor(t), task_actor(t), &m);
}

/* The position: local positions done, and the largest event time so far (for the next
 * watermark). Everything else follows from the configuration. */
static eddy_err nx_snapshot(task *t, void *state, uint64_t id, msgpack_packer *pk)
{
	(void)t, (void)id;
	nx_state *s = state;
	msgpack_pack_map(pk, 2);
	msgpack_pack_str_with_body(pk, "next", 4);
	msgpack_pack_uint64(pk, s->next);
	msgpack_pack_str_with_body(pk, "max_ts", 6);
	msgpack_pack_int64(pk, s->max_ts);
	return EDDY_OK;
}

static eddy_err nx_restore(task *t, void *state, const msgpack_object *o)
{
	nx_state *s = state;
	int64_t next, max_ts;
	if (!mp_int(mp_get(o, "next"), &next) || !mp_int(mp_get(o, "max_ts"), &max_ts) ||
	    next < 0 || (uint64_t)next > s->limit)
		return task_fail(t, "nexmark: the checkpoint's position is not a nexmark position");
	s->next = (uint64_t)next;
	s->max_ts = max_ts;
	if (s->c->rate > 0) { /* go on at the rate from the restored position */
		uint64_t p = task_node_of(t)->parallelism;
		s->started_ms -= (int64_t)((uint64_t)next * p * 1000 / (uint64_t)s->c->rate);
	}
	return EDDY_OK;
}

static void nx_close(task *t, void *state)
{
	(void)t;
	rt_free(state);
}

const op_def nexmark_source_op = {
    .type = "nexmark",
    .open = nx_open,
    .message = nx_message,
    .close = nx_close,
    .snapshot = nx_snapshot,
    .restore = nx_restore,
};
