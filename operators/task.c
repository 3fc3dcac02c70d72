/* The task actor: channels, watermarks, routing (operators/task.h). */
#include "task.h"

#include "../runtime/alloc.h"
#include "checkpoint.h"

#include <eddy/state.h>
#include <msgpack.h>
#include <time.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

const char *part_kind_name(part_kind k)
{
	switch (k) {
	case PART_FORWARD:
		return "forward";
	case PART_HASH:
		return "hash";
	case PART_REBALANCE:
		return "rebalance";
	}
	return "?";
}

typedef struct route_rt {
	actor **targets;     /* [ntargets] */
	ev_batch **pending;  /* PART_HASH: rows gathered per target */
	uint32_t next;       /* PART_REBALANCE: next target */
} route_rt;

struct task {
	actor *self;
	const task_node *node;
	uint32_t subtask;
	void *op_state;
	bool opened;
	task_live *lv;        /* channels, kept across restarts; published counters */
	const task_arg *arg;
	actor *coord;         /* the checkpoint coordinator, or NULL */
	uint32_t epoch;       /* its region's epoch when it started (task_region) */
	bool fresh;           /* started afresh: first start or a region restart */
	ev_state *kst;        /* keyed state (op_def.keyed_state), or NULL */
	/* outputs */
	route_rt **routes;    /* [nports][nroutes] */
	expr_scratch scratch;
};

const task_node *task_node_of(const task *t)
{
	return t->node;
}
uint32_t task_subtask(const task *t)
{
	return t->subtask;
}
actor *task_actor(task *t)
{
	return t->self;
}
job_stats *task_stats(task *t)
{
	return t->node->stats;
}
bool task_restarted(const task *t)
{
	return !t->fresh;
}
uint64_t task_last_checkpoint(const task *t)
{
	return t->lv->last_ckpt;
}
uint64_t task_restored_from(const task *t)
{
	return t->arg->restore ? t->arg->restore->checkpoint : 0;
}
void task_set_state_bytes(task *t, uint64_t bytes)
{
	atomic_store_explicit(&t->lv->state_bytes, bytes, memory_order_relaxed);
}

void task_count_dropped(task *t, uint64_t n)
{
	atomic_fetch_add_explicit(&t->lv->dropped, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->node->stats->unmatched, n, memory_order_relaxed);
}
void task_arg_init(task_arg *a)
{
	memset(&a->live, 0, sizeof(a->live));
	atomic_store(&a->live.watermark, WM_MIN);
}
void task_arg_clear(task_arg *a)
{
	if (a->hold_free)
		a->hold_free(a->hold);
	a->hold = NULL;
	a->hold_free = NULL;
	for (uint32_t i = 0; i < a->live.nheld; i++)
		msg_discard(&a->live.held[i]);
	rt_free(a->live.held);
	rt_free(a->live.align_got);
	a->live.held = NULL;
	a->live.align_got = NULL;
	a->live.nheld = a->live.held_cap = 0;
	rt_free(a->live.wm);
	rt_free(a->live.idle);
	rt_free(a->live.eos);
	a->live.wm = NULL;
	a->live.idle = a->live.eos = NULL;
}
expr_scratch *task_scratch(task *t)
{
	return &t->scratch;
}

static void drop_batch(rt_msg *m)
{
	batch_free(m->ptr);
}

ev_batch *task_new_batch(task *t, const ev_schema *schema)
{
	(void)t;
	return batch_new(schema, TASK_BATCH);
}

eddy_err task_fail(task *t, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	actor_fail(t->self, buf);
	return EDDY_EFAILED;
}

/* send to one target; a target stopped for good (shutdown) drops the message. */
static eddy_err send_to(task *t, actor *to, rt_msg *m)
{
	eddy_err err = actor_send(t->self, to, m);
	if (err == EDDY_ESTOPPED)
		return EDDY_OK;
	if (err != EDDY_OK)
		msg_discard(m);
	return err;
}

static eddy_err send_batch(task *t, actor *to, uint32_t channel, ev_batch *b)
{
	atomic_fetch_add_explicit(&t->lv->records_out, b->n, memory_order_relaxed);
	rt_msg m = { .kind = MSG_RECORDS, .flags = channel | t->epoch << TASK_EPOCH_SHIFT,
		     .ptr = b, .drop = drop_batch };
	return send_to(t, to, &m);
}

static uint32_t route_channel(const task *t, const route *r)
{
	return r->channel_base + (r->part == PART_FORWARD ? 0 : t->subtask);
}

static inline uint64_t hash_val(ev_val v, uint64_t seed)
{
	switch (v.type) {
	case EV_NULL:
		return XXH3_64bits_withSeed("", 0, seed ^ 0x9e3779b97f4a7c15ull);
	case EV_STRING:
		return XXH3_64bits_withSeed(v.s.p, v.s.len, seed);
	case EV_BOOL: {
		int64_t x = v.b;
		return XXH3_64bits_withSeed(&x, sizeof(x), seed);
	}
	case EV_FLOAT: {
		double d = v.f == 0.0 ? 0.0 : v.f; /* -0.0 and 0.0 are one key */
		return XXH3_64bits_withSeed(&d, sizeof(d), seed);
	}
	default:
		return XXH3_64bits_withSeed(&v.i, sizeof(v.i), seed);
	}
}

/* hash_row hashes the keys of row r; keyf[k] is key k's field or -1 (an expression). */
static inline uint64_t hash_row(expr *const *keys, const int *keyf, uint32_t nkeys,
                                const ev_batch *b, uint32_t r, expr_scratch *sc)
{
	uint64_t h = 0;
	for (uint32_t k = 0; k < nkeys; k++) {
		int f = keyf[k];
		ev_val v = f >= 0 ? batch_get_val(b, r, (uint32_t)f) : expr_eval(keys[k], b, r, sc);
		h = hash_val(v, h);
	}
	return h;
}


bool task_rescaled(const task *t)
{
	return t->arg->restore && t->arg->restore->rescaled;
}

uint32_t task_key_group(const task *t, const ev_val *keys, uint32_t n)
{
	uint64_t h = 0;
	for (uint32_t k = 0; k < n; k++)
		h = hash_val(keys[k], h);
	return (uint32_t)(h % t->node->max_parallelism);
}

bool task_owns_key(const task *t, const ev_val *keys, uint32_t n)
{
	const task_node *nd = t->node;
	uint32_t kg = task_key_group(t, keys, n);
	return (uint32_t)((uint64_t)kg * nd->parallelism / nd->max_parallelism) == t->subtask;
}

ev_state *task_keyed_state(task *t)
{
	return t->kst;
}

/* open_keyed_state opens the task's handle for its key groups and, when the job was
 * restored, loads its state files. */
static eddy_err open_keyed_state(task *t)
{
	const task_node *n = t->node;
	ev_state_backend *be = n->backend ? *n->backend : NULL;
	if (be == NULL)
		return task_fail(t, "operator %s keeps keyed state but the job has no state backend",
		                 n->id);
	uint32_t first, last;
	ev_key_group_range(n->max_parallelism, n->parallelism, t->subtask, &first, &last);
	eddy_err err = ev_state_open(be, n->state_id, n->max_parallelism, first, last, &t->kst);
	if (err != EDDY_OK)
		return task_fail(t, "opening keyed state: %s", eddy_strerror(err));
	const task_restore *r = t->arg->restore;
	if (r && t->fresh && r->nstate_files > 0 &&
	    (err = ev_state_restore(t->kst, r->state_files, r->nstate_files)) != EDDY_OK)
		return task_fail(t, "restoring keyed state: %s", ev_state_errmsg(t->kst));
	return EDDY_OK;
}

static eddy_err route_batch(task *t, const route *r, route_rt *rt, ev_batch *b)
{
	switch (r->part) {
	case PART_FORWARD:
		return send_batch(t, rt->targets[t->subtask % r->ntargets], route_channel(t, r), b);
	case PART_REBALANCE: {
		uint32_t i = rt->next++ % r->ntargets;
		return send_batch(t, rt->targets[i], route_channel(t, r), b);
	}
	case PART_HASH:
		if (r->ntargets == 1) /* one consumer subtask: no need to split */
			return send_batch(t, rt->targets[0], route_channel(t, r), b);
		break;
	}
	eddy_err err = EDDY_OK;
	int keyf[EV_MAX_FIELDS];
	bool exprs = false; /* a key is an expression (may use the scratch) */
	for (uint32_t k = 0; k < r->nkeys; k++)
		exprs |= (keyf[k] = expr_field(r->keys[k])) < 0;
	for (uint32_t i = 0; i < b->n && err == EDDY_OK; i++) {
		if (exprs)
			expr_scratch_reset(&t->scratch);
		uint64_t h = hash_row(r->keys, keyf, r->nkeys, b, i, &t->scratch);
		uint32_t kg = (uint32_t)(h % r->max_parallelism);
		uint32_t target = (uint32_t)((uint64_t)kg * r->ntargets / r->max_parallelism);
		ev_batch *p = rt->pending[target];
		if (p == NULL && (p = rt->pending[target] = batch_new(b->schema, TASK_BATCH)) == NULL)
			err = EDDY_ENOMEM;
		else if ((err = batch_copy_row(p, b, i)) == EDDY_OK && batch_full(p)) {
			rt->pending[target] = NULL;
			err = send_batch(t, rt->targets[target], route_channel(t, r), p);
		}
	}
	batch_free(b);
	return err;
}

eddy_err task_emit(task *t, uint32_t port, ev_batch *b)
{
	const task_node *n = t->node;
	if (port >= n->nports || n->ports[port].nroutes == 0 || b->n == 0) {
		batch_free(b);
		return EDDY_OK;
	}
	const out_port *p = &n->ports[port];
	if (n->is_source && port == 0)
		atomic_fetch_add_explicit(&t->lv->records_in, b->n, memory_order_relaxed);
	eddy_err err = EDDY_OK;
	for (uint32_t i = 0; i < p->nroutes && err == EDDY_OK; i++) {
		ev_batch *mine = b;
		if (i + 1 < p->nroutes) { /* fan-out: every consumer but the last gets a copy */
			if ((mine = batch_new(b->schema, b->n)) == NULL)
				return EDDY_ENOMEM;
			for (uint32_t r = 0; r < b->n && err == EDDY_OK; r++)
				err = batch_copy_row(mine, b, r);
			if (err != EDDY_OK) {
				batch_free(mine);
				break;
			}
		}
		err = route_batch(t, &p->routes[i], &t->routes[port][i], mine);
		if (i + 1 == p->nroutes)
			b = NULL;
	}
	batch_free(b);
	return err;
}

/* flush sends every gathered hash-partitioned batch. */
static eddy_err flush(task *t)
{
	const task_node *n = t->node;
	for (uint32_t p = 0; p < n->nports; p++)
		for (uint32_t i = 0; i < n->ports[p].nroutes; i++) {
			const route *r = &n->ports[p].routes[i];
			route_rt *rt = &t->routes[p][i];
			if (r->part != PART_HASH)
				continue;
			for (uint32_t k = 0; k < r->ntargets; k++) {
				ev_batch *b = rt->pending[k];
				if (b == NULL || b->n == 0)
					continue;
				rt->pending[k] = NULL;
				eddy_err err = send_batch(t, rt->targets[k], route_channel(t, r), b);
				if (err != EDDY_OK)
					return err;
			}
		}
	return EDDY_OK;
}

/* broadcast sends a control element (watermark, idle, end) on every output channel. */
static eddy_err broadcast(task *t, uint32_t kind, uint64_t u64)
{
	eddy_err err = flush(t);
	const task_node *n = t->node;
	for (uint32_t p = 0; p < n->nports && err == EDDY_OK; p++)
		for (uint32_t i = 0; i < n->ports[p].nroutes && err == EDDY_OK; i++) {
			const route *r = &n->ports[p].routes[i];
			route_rt *rt = &t->routes[p][i];
			for (uint32_t k = 0; k < r->ntargets && err == EDDY_OK; k++) {
				if (r->part == PART_FORWARD && k != t->subtask % r->ntargets)
					continue;
				rt_msg m = { .kind = kind,
					     .flags = route_channel(t, r) | t->epoch << TASK_EPOCH_SHIFT,
					     .u64 = u64 };
				err = send_to(t, rt->targets[k], &m);
			}
		}
	return err;
}

eddy_err task_emit_watermark(task *t, int64_t wm)
{
	if (wm <= t->lv->cur_wm)
		return EDDY_OK;
	t->lv->cur_wm = wm;
	atomic_store_explicit(&t->lv->watermark, wm, memory_order_relaxed);
	return broadcast(t, MSG_WATERMARK, (uint64_t)wm);
}

eddy_err task_emit_idle(task *t, bool idle)
{
	if (idle == t->lv->all_idle)
		return EDDY_OK;
	t->lv->all_idle = idle;
	return broadcast(t, MSG_IDLE, idle);
}

static eddy_err take_checkpoint(task *t, uint64_t id, int64_t align_ns, bool finished);

void task_finish(task *t, bool final)
{
	if (t->lv->ended)
		return;
	t->lv->ended = true;
	eddy_err err = broadcast(t, MSG_EOS, final ? EOS_FINAL : 0);
	/* with checkpoints, a finished task leaves its final snapshot with the coordinator:
	 * later checkpoints hold it (as Flink's checkpoints after tasks finished) */
	if (err == EDDY_OK && t->node->ckpt && t->coord && final)
		err = take_checkpoint(t, 0, 0, true);
	if (err != EDDY_OK) {
		task_fail(t, "sending the end of stream: %s", eddy_strerror(err));
		return;
	}
	atomic_fetch_add(&t->node->stats->tasks_done, 1);
	t->lv->counted_done = true;
	asys_notify(actor_system(t->self)); /* `eddy run` waits for the tasks to finish */
	actor_exit(t->self);
}

/* ---- the actor ---- */

static void task_fini(actor *self, void *state)
{
	(void)self;
	task *t = state;
	if ((t->opened || t->op_state) && t->node->op->close)
		t->node->op->close(t, t->op_state); /* also a state open left half-built */
	t->opened = false;
	t->op_state = NULL;
	ev_state_close(t->kst);
	t->kst = NULL;
	const task_node *n = t->node;
	if (t->routes) {
		for (uint32_t p = 0; p < n->nports; p++) {
			if (t->routes[p] == NULL)
				continue;
			for (uint32_t i = 0; i < n->ports[p].nroutes; i++) {
				route_rt *rt = &t->routes[p][i];
				if (rt->pending)
					for (uint32_t k = 0; k < n->ports[p].routes[i].ntargets; k++)
						batch_free(rt->pending[k]);
				rt_free(rt->pending);
				rt_free(rt->targets);
			}
			rt_free(t->routes[p]);
		}
		rt_free(t->routes);
	}
	t->routes = NULL; /* the channels (t->lv) stay for a restart; the plan frees them */
	expr_scratch_free(&t->scratch);
}

/* reset_live forgets the subtask's channels, alignment and held elements: its region
 * restarts from a checkpoint, so everything in flight before is void. */
static void reset_live(task_live *lv, const task_node *n)
{
	for (uint32_t i = 0; i < lv->nheld; i++)
		msg_discard(&lv->held[i]);
	lv->nheld = 0;
	for (uint32_t c = 0; lv->wm && c < n->nchannels; c++) {
		lv->wm[c] = WM_MIN;
		lv->idle[c] = lv->eos[c] = 0;
	}
	if (lv->align_got)
		memset(lv->align_got, 0, n->nchannels ? n->nchannels : 1);
	lv->nended = 0;
	lv->cur_wm = WM_MIN;
	atomic_store(&lv->watermark, WM_MIN);
	lv->all_idle = lv->ended = false;
	lv->align_id = 0;
	lv->last_ckpt = lv->declined = 0;
	lv->held_bytes = 0;
	if (lv->counted_done) {
		atomic_fetch_sub(&n->stats->tasks_done, 1);
		lv->counted_done = false;
	}
}

static eddy_err task_init(actor *self, void *state, void *arg)
{
	task *t = state;
	task_arg *a = arg;
	const task_node *n = a->node;
	t->self = self;
	t->node = n;
	t->subtask = a->subtask;
	t->lv = &a->live;
	t->arg = a;
	if (t->lv->wm == NULL) { /* the first start (a restart keeps the channels) */
		uint32_t nc = n->nchannels ? n->nchannels : 1;
		t->lv->cur_wm = WM_MIN;
		t->lv->wm = rt_calloc(nc, sizeof(*t->lv->wm));
		t->lv->idle = rt_calloc(nc, 1);
		t->lv->eos = rt_calloc(nc, 1);
		if (t->lv->wm == NULL || t->lv->idle == NULL || t->lv->eos == NULL)
			return EDDY_ENOMEM; /* task_arg_clear frees what was allocated */
		for (uint32_t c = 0; c < n->nchannels; c++)
			t->lv->wm[c] = WM_MIN;
	}
	/* with checkpoints every restart is its failover region's: the subtask starts afresh
	 * from the checkpoint the region restarts from (task_region) */
	bool region_restart = a->region && t->lv->starts > 0;
	t->lv->starts++;
	t->fresh = t->lv->starts == 1 || region_restart;
	if (region_restart) {
		reset_live(t->lv, n);
		char why[700];
		if (a->region->load(a->region, a, why, sizeof(why)) != EDDY_OK)
			return task_fail(t, "restarting from checkpoint %llu: %s",
			                 (unsigned long long)a->region->restore_id, why);
		if (a->restore == NULL) { /* from the beginning */
			atomic_store(&t->lv->records_in, 0);
			atomic_store(&t->lv->records_out, 0);
		}
	}
	t->epoch = a->region ? atomic_load(&a->region->epoch) & TASK_CHANNEL_MASK : 0;
	if (n->ckpt) {
		if (t->lv->align_got == NULL &&
		    (t->lv->align_got = rt_calloc(n->nchannels ? n->nchannels : 1, 1)) == NULL)
			return EDDY_ENOMEM;
		if ((t->coord = asys_find(actor_system(self), n->coord_path)) == NULL)
			return task_fail(t, "no checkpoint coordinator %s", n->coord_path);
		if (t->lv->align_id != 0 || t->lv->nheld > 0) {
			/* restarted mid-alignment: that checkpoint is abandoned (it times out) and
			 * the held elements are processed first */
			t->lv->align_id = 0;
			memset(t->lv->align_got, 0, n->nchannels ? n->nchannels : 1);
			rt_msg r = { .kind = MSG_ALIGN_REPLAY };
			eddy_err e = actor_send_ctl(self, &r);
			if (e != EDDY_OK)
				return e;
		}
	}
	t->routes = rt_calloc(n->nports ? n->nports : 1, sizeof(*t->routes));
	if (t->routes == NULL)
		return EDDY_ENOMEM;
	for (uint32_t p = 0; p < n->nports; p++) {
		const out_port *op = &n->ports[p];
		if ((t->routes[p] = rt_calloc(op->nroutes ? op->nroutes : 1, sizeof(route_rt))) ==
		    NULL)
			return EDDY_ENOMEM;
		for (uint32_t i = 0; i < op->nroutes; i++) {
			const route *r = &op->routes[i];
			route_rt *rt = &t->routes[p][i];
			rt->targets = rt_calloc(r->ntargets, sizeof(actor *));
			rt->pending = rt_calloc(r->ntargets, sizeof(ev_batch *));
			rt->next = t->subtask;
			if (rt->targets == NULL || rt->pending == NULL)
				return EDDY_ENOMEM;
			for (uint32_t k = 0; k < r->ntargets; k++) {
				if (r->part == PART_FORWARD && k != t->subtask % r->ntargets)
					continue; /* never sent to (and maybe in another failover region,
					           * not started yet) */
				rt->targets[k] = asys_find(actor_system(self), r->target_paths[k]);
				if (rt->targets[k] == NULL)
					return task_fail(t, "no actor %s to send to", r->target_paths[k]);
			}
		}
	}
	if (a->restore && t->fresh) { /* the job or region starts from a checkpoint */
		atomic_store(&t->lv->records_in, a->restore->records_in);
		atomic_store(&t->lv->records_out, a->restore->records_out);
		t->lv->last_ckpt = a->restore->checkpoint;
	}
	if (n->op->keyed_state) {
		eddy_err e = open_keyed_state(t);
		if (e != EDDY_OK)
			return e;
	}
	eddy_err err = n->op->open(t, &t->op_state);
	if (err != EDDY_OK)
		return err;
	t->opened = true;
	if (a->restore && t->fresh && n->op->restore) {
		if (!a->restore->rescaled)
			return n->op->restore(t, t->op_state, a->restore->op);
		for (uint32_t i = 0; i < a->restore->nops; i++)
			if ((err = n->op->restore(t, t->op_state, a->restore->ops[i])) != EDDY_OK)
				return err;
	}
	return EDDY_OK;
}

/* input_watermark: the minimum over channels that are not idle, where a channel that
 * ended finally counts as +inf (its source emitted its last watermark, as Flink's
 * MAX_WATERMARK at the end of input) and one that ended otherwise (a stopped job) counts
 * with its last watermark; unchanged (cur) if no channel counts (every open one is idle).
 * *all_idle: every open channel is idle. */
static int64_t input_watermark(const task *t, bool *all_idle)
{
	int64_t min = WM_MAX;
	bool counted = false, any_open = false, any_active = false;
	for (uint32_t c = 0; c < t->node->nchannels; c++) {
		if (t->lv->eos[c] == 1) { /* stopped: holds at its last watermark, so windows still
		                         * waiting for its data never fire incomplete */
			counted = true;
			if (t->lv->wm[c] < min)
				min = t->lv->wm[c];
			continue;
		}
		if (t->lv->eos[c] == 2) {
			counted = true;
			continue;
		}
		any_open = true;
		if (t->lv->idle[c])
			continue;
		any_active = counted = true;
		if (t->lv->wm[c] < min)
			min = t->lv->wm[c];
	}
	*all_idle = any_open && !any_active;
	return counted ? min : t->lv->cur_wm;
}

static eddy_err advance(task *t)
{
	bool all_idle;
	int64_t wm = input_watermark(t, &all_idle);
	eddy_err err = EDDY_OK;
	bool all_ended = t->lv->nended == t->node->nchannels;
	bool final = true;
	for (uint32_t c = 0; c < t->node->nchannels; c++)
		if (t->lv->eos[c] != 2)
			final = false;
	if (all_ended && !final)
		wm = t->lv->cur_wm; /* stopped, not exhausted: no final watermark */
	if (wm > t->lv->cur_wm) {
		if (t->node->op->watermark &&
		    (err = t->node->op->watermark(t, t->op_state, wm)) != EDDY_OK)
			return err;
		if ((err = task_emit_watermark(t, wm)) != EDDY_OK)
			return err;
	}
	if (!all_ended && (err = task_emit_idle(t, all_idle)) != EDDY_OK)
		return err;
	if (all_ended && !t->lv->ended) {
		if (t->node->op->end && (err = t->node->op->end(t, t->op_state, final)) != EDDY_OK)
			return err;
		task_finish(t, final);
	}
	return EDDY_OK;
}

/* ---- checkpoints ---- */

static void drop_ack(rt_msg *m)
{
	ckpt_ack_free(m->ptr);
}

/* take_checkpoint snapshots the task for checkpoint id, forwards the barrier on every
 * output channel (after what was emitted before it) and acknowledges to the
 * coordinator. The snapshot holds the task's position: records in and out and its
 * watermark (operator state comes with the state backends). */
static eddy_err take_checkpoint(task *t, uint64_t id, int64_t align_ns, bool finished)
{
	task_live *lv = t->lv;
	ckpt_ack *a = rt_calloc(1, sizeof(*a));
	if (a == NULL)
		return EDDY_ENOMEM;
	a->id = id;
	a->finished = finished;
	snprintf(a->path, sizeof(a->path), "%s", actor_path(t->self));
	a->records_in = atomic_load_explicit(&lv->records_in, memory_order_relaxed);
	a->records_out = atomic_load_explicit(&lv->records_out, memory_order_relaxed);
	a->watermark = lv->cur_wm;
	a->alignment_ns = align_ns;
	a->epoch = t->epoch;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 8);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_str_with_body(&pk, "task", 4);
	msgpack_pack_str_with_body(&pk, a->path, strlen(a->path));
	msgpack_pack_str_with_body(&pk, "checkpoint", 10);
	msgpack_pack_uint64(&pk, finished ? lv->last_ckpt : id);
	msgpack_pack_str_with_body(&pk, "finished", 8);
	if (finished)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	msgpack_pack_str_with_body(&pk, "records_in", 10);
	msgpack_pack_uint64(&pk, a->records_in);
	msgpack_pack_str_with_body(&pk, "records_out", 11);
	msgpack_pack_uint64(&pk, a->records_out);
	msgpack_pack_str_with_body(&pk, "watermark", 9);
	if (a->watermark == WM_MIN)
		msgpack_pack_nil(&pk);
	else
		msgpack_pack_int64(&pk, a->watermark);
	msgpack_pack_str_with_body(&pk, "op", 2);
	eddy_err serr = EDDY_OK;
	if (t->node->op->snapshot)
		serr = t->node->op->snapshot(t, t->op_state, id, &pk);
	else
		msgpack_pack_nil(&pk);
	if (serr == EDDY_OK && t->kst && ev_state_snapshot_begin(t->kst, &a->state) != EDDY_OK)
		serr = task_fail(t, "checkpoint %llu: keyed state: %s", (unsigned long long)id,
		                 ev_state_errmsg(t->kst));
	if (serr != EDDY_OK || sb.data == NULL) {
		msgpack_sbuffer_destroy(&sb);
		ev_state_snapshot_release(a->state);
		rt_free(a);
		return serr ? serr : EDDY_ENOMEM;
	}
	a->len = sb.size;
	a->data = msgpack_sbuffer_release(&sb);
	if (!finished) {
		lv->last_ckpt = id;
		eddy_err err = broadcast(t, MSG_BARRIER, id);
		if (err != EDDY_OK) {
			ckpt_ack_free(a);
			return err;
		}
	}
	rt_msg m = { .kind = MSG_CKPT_ACK, .ptr = a, .drop = drop_ack };
	if (actor_send_ctl(t->coord, &m) != EDDY_OK)
		ckpt_ack_free(a);
	return EDDY_OK;
}

static eddy_err task_receive(actor *self, void *state, rt_msg *m);

/* replay_held processes the held elements in order, as if they arrived now (some may be
 * held again by a new alignment). If one fails, the ones after it stay held. */
static eddy_err replay_held(task *t)
{
	task_live *lv = t->lv;
	rt_msg *msgs = lv->held;
	uint32_t n = lv->nheld;
	lv->held = NULL;
	lv->nheld = lv->held_cap = 0;
	lv->held_bytes = 0; /* what is held again is counted again */
	eddy_err err = EDDY_OK;
	uint32_t i = 0;
	for (; i < n && err == EDDY_OK; i++)
		err = task_receive(t->self, t, &msgs[i]);
	for (; i < n; i++) { /* after a failure: keep the rest, after anything held anew */
		if (rt_grow((void **)&lv->held, &lv->held_cap, lv->nheld + 1, sizeof(rt_msg), 16) !=
		    EDDY_OK) {
			for (; i < n; i++)
				msg_discard(&msgs[i]);
			break;
		}
		lv->held[lv->nheld++] = msgs[i];
	}
	rt_free(msgs);
	return err;
}

/* align_done: every channel gave its barrier or ended. */
static bool align_done(const task *t)
{
	for (uint32_t c = 0; c < t->node->nchannels; c++)
		if (!t->lv->align_got[c] && t->lv->eos[c] == 0)
			return false;
	return true;
}

/* finish_alignment takes the checkpoint and lets the held elements go. */
static eddy_err finish_alignment(task *t)
{
	task_live *lv = t->lv;
	uint64_t id = lv->align_id;
	int64_t took = clock_now_ns(clock_system()) - lv->align_start_ns;
	lv->align_id = 0;
	memset(lv->align_got, 0, t->node->nchannels ? t->node->nchannels : 1);
	eddy_err err = take_checkpoint(t, id, took, false);
	return err ? err : replay_held(t);
}

/* stop_aligning gives up the alignment in progress: its held elements go on. */
static eddy_err stop_aligning(task *t)
{
	t->lv->align_id = 0;
	memset(t->lv->align_got, 0, t->node->nchannels ? t->node->nchannels : 1);
	return replay_held(t);
}

/* on_barrier: barrier id on channel ch (as Flink's aligner; a newer barrier than the one
 * being aligned abandons that one: its held elements go on first). */
static eddy_err on_barrier(task *t, uint64_t id, uint32_t ch)
{
	task_live *lv = t->lv;
	if ((id <= lv->last_ckpt || id <= lv->declined) && lv->align_id == 0)
		return EDDY_OK; /* an abandoned or declined checkpoint's late barrier */
	if (lv->align_id != 0 && id < lv->align_id)
		return EDDY_OK;
	if (lv->align_id != 0 && id > lv->align_id) {
		eddy_err err = stop_aligning(t);
		if (err != EDDY_OK)
			return err;
	}
	if (lv->align_id == 0) {
		lv->align_id = id;
		lv->align_start_ns = clock_now_ns(clock_system());
	}
	lv->align_got[ch] = 1;
	return align_done(t) ? finish_alignment(t) : EDDY_OK;
}

/* decline_alignment gives up aligning checkpoint lv->align_id: the coordinator is told
 * (it aborts the checkpoint), the barriers still to come for it are ignored, and the held
 * elements go on (as Flink's aligner past task.checkpoint.alignment.max-size). */
static eddy_err decline_alignment(task *t)
{
	task_live *lv = t->lv;
	uint64_t id = lv->align_id;
	ckpt_ack *a = rt_calloc(1, sizeof(*a));
	if (a == NULL)
		return EDDY_ENOMEM;
	a->id = id;
	a->declined = true;
	a->epoch = t->epoch;
	snprintf(a->path, sizeof(a->path), "%s", actor_path(t->self));
	snprintf(
	    a->why, sizeof(a->why),
	    "its alignment held %zu bytes of records, over checkpoint.max_alignment (%lld bytes)",
	    lv->held_bytes, (long long)t->node->ckpt->max_alignment_bytes);
	rt_msg m = {.kind = MSG_CKPT_ACK, .ptr = a, .drop = drop_ack};
	if (actor_send_ctl(t->coord, &m) != EDDY_OK)
		ckpt_ack_free(a);
	lv->declined = id;
	return stop_aligning(t);
}

/* on_aborted: the coordinator aborted checkpoint id. Its barriers still to come are
 * dropped (they would start an alignment nobody completes); if it is being aligned, the
 * held elements go on. */
static eddy_err on_aborted(task *t, uint64_t id)
{
	task_live *lv = t->lv;
	if (id > lv->declined)
		lv->declined = id;
	if (lv->align_id == 0 || lv->align_id > id)
		return EDDY_OK;
	return stop_aligning(t);
}

/* hold keeps an element of a channel whose barrier came (exactly_once alignment); past
 * checkpoint.max_alignment bytes of held batches the checkpoint is declined. */
static eddy_err hold(task *t, rt_msg *m)
{
	task_live *lv = t->lv;
	if (rt_grow((void **)&lv->held, &lv->held_cap, lv->nheld + 1, sizeof(rt_msg), 16) !=
	    EDDY_OK) {
		msg_discard(m);
		return task_fail(t, "out of memory holding elements during checkpoint alignment");
	}
	if (m->kind == MSG_RECORDS) {
		const ev_batch *b = m->ptr;
		lv->held_bytes +=
		    sizeof(*b) + (size_t)b->cap * (2 + b->ncols) * sizeof(uint64_t) + b->arena_cap;
	}
	lv->held[lv->nheld++] = *m;
	if (lv->held_bytes > (uint64_t)t->node->ckpt->max_alignment_bytes)
		return decline_alignment(t);
	return EDDY_OK;
}

static bool is_element(uint32_t kind)
{
	return kind == MSG_RECORDS || kind == MSG_WATERMARK || kind == MSG_IDLE || kind == MSG_EOS ||
	       kind == MSG_BARRIER;
}

static eddy_err task_receive(actor *self, void *state, rt_msg *m)
{
	(void)self;
	task *t = state;
	const task_node *n = t->node;
	uint32_t ch = m->flags & TASK_CHANNEL_MASK;
	eddy_err err;
	if (is_element(m->kind) && m->flags >> TASK_EPOCH_SHIFT != t->epoch) {
		msg_discard(m); /* in flight from an incarnation of the region before a restart */
		return EDDY_OK;
	}
	if (n->ckpt && is_element(m->kind) && !n->is_source && ch < n->nchannels &&
	    t->lv->align_id != 0 && t->lv->align_got[ch] && n->ckpt->mode == CKPT_EXACTLY_ONCE &&
	    !(m->kind == MSG_BARRIER && m->u64 > t->lv->align_id))
		return hold(t, m);
	switch (m->kind) {
	case MSG_BARRIER:
		if (n->is_source || ch >= n->nchannels || n->ckpt == NULL)
			return task_fail(t, "barrier on unknown channel %u", ch);
		return on_barrier(t, m->u64, ch);
	case MSG_CKPT_TRIGGER:
		if (!n->is_source || n->ckpt == NULL || t->lv->ended ||
		    m->flags >> TASK_EPOCH_SHIFT != t->epoch)
			return EDDY_OK; /* a finished source takes no more checkpoints; a trigger sent
			                 * before its region restarted is void */
		err = take_checkpoint(t, m->u64, 0, false);
		if (err == EDDY_OK && (m->flags & CKPT_TRIGGER_STOP))
			task_finish(t, false); /* stop with a savepoint: nothing after its barrier */
		return err;
	case MSG_ALIGN_REPLAY:
		return replay_held(t);
	case MSG_CKPT_ABORTED: return n->ckpt && !n->is_source ? on_aborted(t, m->u64) : EDDY_OK;
	case MSG_CKPT_DONE:
		if (n->op->checkpoint_done && t->opened)
			return n->op->checkpoint_done(t, t->op_state, m->u64);
		return EDDY_OK;
	case MSG_RECORDS:
		if (n->is_source || ch >= n->nchannels) {
			batch_free(m->ptr);
			return task_fail(t, "batch on unknown channel %u", ch);
		}
		uint32_t nrec = ((ev_batch *)m->ptr)->n;
		atomic_fetch_add_explicit(&t->lv->records_in, nrec, memory_order_relaxed);
		err = n->op->process(t, t->op_state, m->ptr, n->channel_input[ch]);
		if (err == EDDY_OK && n->is_sink) /* what a sink took it wrote */
			atomic_fetch_add_explicit(&t->lv->records_out, nrec, memory_order_relaxed);
		return err ? err : flush(t);
	case MSG_WATERMARK:
		if (n->is_source || ch >= n->nchannels)
			return task_fail(t, "watermark on unknown channel %u", ch);
		if ((int64_t)m->u64 > t->lv->wm[ch])
			t->lv->wm[ch] = (int64_t)m->u64;
		return advance(t);
	case MSG_IDLE:
		if (n->is_source || ch >= n->nchannels)
			return task_fail(t, "idleness on unknown channel %u", ch);
		t->lv->idle[ch] = m->u64 != 0;
		return advance(t);
	case MSG_EOS:
		if (n->is_source || ch >= n->nchannels)
			return task_fail(t, "end of stream on unknown channel %u", ch);
		if (t->lv->eos[ch] == 0) {
			t->lv->eos[ch] = (m->u64 & EOS_FINAL) ? 2 : 1;
			t->lv->nended++;
		}
		if (n->ckpt && t->lv->align_id != 0 && align_done(t) &&
		    (err = finish_alignment(t)) != EDDY_OK) /* an ended channel counts as aligned */
			return err;
		return advance(t);
	default:
		if (n->op->message == NULL) {
			msg_discard(m);
			return task_fail(t, "unexpected message kind %u", m->kind);
		}
		err = n->op->message(t, t->op_state, m);
		return err ? err : flush(t);
	}
}

/* task_receive_published is task_receive, then publishes the alignment for the control
 * plane (actors --json: aligning, held). */
static eddy_err task_receive_published(actor *self, void *state, rt_msg *m)
{
	task *t = state;
	eddy_err err = task_receive(self, state, m);
	atomic_store_explicit(&t->lv->aligning, t->lv->align_id, memory_order_relaxed);
	atomic_store_explicit(&t->lv->nheld_pub, t->lv->nheld, memory_order_relaxed);
	return err;
}

const actor_ops task_ops = {
    .type = "task",
    .state_size = sizeof(task),
    .init = task_init,
    .receive = task_receive_published,
    .fini = task_fini,
};
