/*
 * The join operator (operators/ops.h: join_conf): an inner equi-join of two keyed
 * streams in event time, with the semantics of Flink's DataStream joins:
 *  - window (JoinedStreams.where().equalTo().window(): a WindowOperator over the union
 *    of both inputs): the elements of both inputs are kept per (key, window); when the
 *    watermark reaches the window's end - 1 every (left, right) pair of it is emitted with
 *    event time end - 1 (window.maxTimestamp()). Windows are tumbling, sliding or session
 *    (sessions merge over both inputs: an element of either side extends the key's
 *    session). An element is late when all its windows are past end - 1 + allowed
 *    lateness under the watermark (as the window operator). With allowed lateness a fired
 *    window is kept until end - 1 + lateness and a late element joins the other side's
 *    elements of it at once (only its new pairs: Flink re-fires the whole window,
 *    emitting the earlier pairs again; here the output is the join as if the element had
 *    been on time);
 *  - interval (KeyedStream.intervalJoin, IntervalJoinOperator): a pair when left.ts +
 *    lower <= right.ts <= left.ts + upper, emitted as soon as the second element arrives,
 *    event time max(left.ts, right.ts). An element whose timestamp is <= the watermark is
 *    late (eddy's watermark W promises no element at or before W; Flink's operator tests
 *    ts < W). Elements are kept in per-timestamp buckets and removed by an event-time
 *    timer once the watermark makes a match impossible (left: at ts + max(upper, 0),
 *    right: at ts + max(-lower, 0), as Flink's cleanup timers);
 *  - regular (Flink SQL's regular join): every arriving element joins every stored element
 *    of the other side with its key, then is stored; event time the arriving element's.
 *    With a ttl (event time, see README): elements whose timestamps differ by ttl or more
 *    do not join, an element leaves the state when the watermark reaches its ts + ttl,
 *    and one that arrives with ts + ttl <= the watermark is late.
 * A record with a null in its key joins nothing (SQL equality) and is not stored.
 *
 * State lives in the task's keyed state (include/eddy/state.h), so checkpoints snapshot
 * it asynchronously and a restore at another parallelism redistributes it by key group:
 *  - window: list states "l" and "r" (namespace = the window's start, 8 bytes; a
 *    session's id), one encoded element per item; value state "m" (same namespace: the
 *    window's start, end and whether it fired; kept only with allowed lateness or
 *    sessions); "sessions" (empty namespace) the key's open sessions; event-time timers
 *    (key, window) at end - 1 and end - 1 + lateness;
 *  - interval and regular with a ttl: map state "buf" in namespace "L" or "R" (the
 *    side): map key the element's timestamp (8 bytes), value its elements, encoded one
 *    after another; event-time timers in the same namespace remove a bucket;
 *  - regular without ttl: list state "all" in namespace "L" or "R", one item per element
 *    (nothing is ever removed).
 * An encoded element: a varint n (the bytes after it), a varint of its null bits, then
 * per non-null field: a float's 8 bytes, a string's varint length and bytes, any other
 * (int, timestamp, bool) the zigzag varint of its value — about half the bytes of fixed
 * 8-byte fields for Nexmark's bids, so half the state to hold and to checkpoint. (Its
 * event time is not kept: a join's output takes the arriving element's, or the window's,
 * or the bucket's.)
 * The operator's own snapshot is its watermark.
 */
#include "ops.h"

#include "../runtime/alloc.h"
#include "../runtime/mp.h"
#include "../runtime/varint.h"

#include <eddy/state.h>
#include <string.h>

#define ELEM_HDR 10u /* room for an element's length varint before its body */

/* A window's meta state (value "m"). */
typedef struct jmeta {
	int64_t start, end, fired;
} jmeta;

/* A session: [start, end) and the namespace its elements live in. */
typedef struct jsess {
	int64_t start, end, id;
} jsess;

typedef struct jstate {
	const join_conf *c;
	ev_state *st;
	ev_state_id list_id[2]; /* window: "l", "r" */
	ev_state_id meta_id;    /* window: "m" (only if meta) */
	bool meta;              /* window joins with lateness or sessions keep "m" */
	ev_state_id sess_id;    /* session windows: "sessions" */
	ev_state_id buf_id;     /* interval, regular with a ttl: "buf" */
	ev_state_id all_id;     /* regular without ttl: "all" */
	int64_t wm;
	uint32_t restored; /* snapshots restored (several when rescaled) */
	uint32_t batches;  /* to publish the state size now and then */
	ev_batch *out, *late[2];
	char *kbuf; /* the current key, encoded */
	size_t kcap;
	uint32_t klen, kg;
	ev_val kvals[EV_MAX_FIELDS];
	int keyf[2][EV_MAX_FIELDS]; /* per side and key: its field, or -1 */
	uint8_t *row;               /* the arriving element, encoded */
	size_t rcap;
	const uint8_t *elem; /* the arriving element: in row, elen bytes */
	uint32_t elen;
	uint8_t *tmp; /* a bucket being rewritten; the left items of a firing */
	size_t tcap;
	jsess *sess; /* the current key's sessions */
	size_t nsess, sess_cap;
} jstate;

static int64_t floor_mod(int64_t a, int64_t b)
{
	int64_t m = a % b;
	return m < 0 ? m + b : m;
}

/* sfail turns a keyed-state error into the task's failure. */
static eddy_err sfail(task *t, jstate *s, eddy_err e, const char *what)
{
	if (e == EDDY_ENOMEM)
		return e;
	return task_fail(t, "join: %s: %s", what, ev_state_errmsg(s->st));
}

/* ---- varints (runtime/varint.h); zigzag for signed values ---- */

static uint64_t zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzz(uint64_t u)
{
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* elem_size: the bytes of the element at p, its length varint included (p is in a chunk
 * chunk_ok accepted). */
static size_t elem_size(const uint8_t *p)
{
	const uint8_t *q = p;
	uint64_t n = 0;
	varint_get(&q, q + 10, &n);
	return (size_t)(q - p) + (size_t)n;
}

/* ---- keys ---- */

/* key_encode writes the key of row r of side `side` into kbuf (klen) and its values into
 * kvals: per value its type byte, then 8 bytes (int, timestamp, float bits, bool) or a
 * 4-byte length and the bytes (string). *null: a key value is null (no key made). */
static eddy_err key_encode(jstate *s, task *t, int side, const ev_batch *b, uint32_t r, bool *null)
{
	const join_conf *c = s->c;
	expr_scratch *sc = task_scratch(t);
	size_t need = 0;
	*null = false;
	for (uint32_t k = 0; k < c->nkeys; k++) {
		int f = s->keyf[side][k];
		ev_val v = f >= 0 ? batch_get_val(b, r, (uint32_t)f)
		                  : expr_eval(c->keys[side][k], b, r, sc);
		if (v.type == EV_NULL) {
			*null = true;
			return EDDY_OK;
		}
		s->kvals[k] = v;
		need += 9 + (v.type == EV_STRING ? v.s.len : 0);
	}
	if (rt_grow((void **)&s->kbuf, &s->kcap, need + 1, 1, 256) != EDDY_OK)
		return EDDY_ENOMEM;
	char *p = s->kbuf;
	for (uint32_t k = 0; k < c->nkeys; k++) {
		ev_val v = s->kvals[k];
		*p++ = (char)v.type;
		if (v.type == EV_STRING) {
			memcpy(p, &v.s.len, 4);
			memcpy(p + 4, v.s.p, v.s.len);
			p += 4 + v.s.len;
			continue;
		}
		int64_t x = v.i;
		if (v.type == EV_BOOL)
			x = v.b;
		else if (v.type == EV_FLOAT) {
			double d = v.f == 0.0 ? 0.0 : v.f; /* -0.0 and 0.0 are one key */
			memcpy(&x, &d, 8);
		}
		memcpy(p, &x, 8);
		p += 8;
	}
	s->klen = (uint32_t)(p - s->kbuf);
	s->kg = task_key_group(t, s->kvals, c->nkeys);
	return EDDY_OK;
}

static eddy_err set_key(task *t, jstate *s)
{
	eddy_err e = ev_state_set_key(s->st, s->kbuf, s->klen, s->kg);
	return e ? sfail(t, s, e, "key") : EDDY_OK;
}

static eddy_err set_ns(task *t, jstate *s, const void *ns, size_t len)
{
	eddy_err e = ev_state_set_namespace(s->st, ns, len);
	return e ? sfail(t, s, e, "namespace") : EDDY_OK;
}

static eddy_err set_win(task *t, jstate *s, const int64_t *start)
{
	return set_ns(t, s, start, sizeof(*start));
}

static const char side_ns[2] = {'L', 'R'};

static eddy_err set_side(task *t, jstate *s, int side)
{
	return set_ns(t, s, &side_ns[side], 1);
}

static eddy_err timer_set(task *t, jstate *s, int64_t time)
{
	eddy_err e = ev_timer_register(s->st, EV_TIME_EVENT, time);
	return e ? sfail(t, s, e, "registering a timer") : EDDY_OK;
}

static eddy_err timer_del(task *t, jstate *s, int64_t time)
{
	eddy_err e = ev_timer_delete(s->st, EV_TIME_EVENT, time);
	return e ? sfail(t, s, e, "deleting a timer") : EDDY_OK;
}

/* ---- elements: encoded, decoded into the output ---- */

/* encode writes row r of b (its null bits and fields) into s->row, as s->elem. */
static eddy_err encode(jstate *s, const ev_batch *b, uint32_t r)
{
	const ev_schema *sc = b->schema;
	size_t need = ELEM_HDR + 10 + (size_t)sc->n * 10;
	uint64_t nulls = b->nulls[r];
	for (uint32_t f = 0; f < sc->n; f++)
		if (sc->fields[f].type == EV_STRING && !((nulls >> f) & 1u))
			need += (uint32_t)batch_slot_get(b, r, f);
	if (need > UINT32_MAX)
		return EDDY_EINVAL;
	if (rt_grow((void **)&s->row, &s->rcap, need, 1, 256) != EDDY_OK)
		return EDDY_ENOMEM;
	uint8_t *body = s->row + ELEM_HDR, *p = body;
	p += varint_put(p, nulls);
	for (uint32_t f = 0; f < sc->n; f++) {
		if ((nulls >> f) & 1u)
			continue;
		ev_type ty = sc->fields[f].type;
		if (ty == EV_STRING) {
			uint32_t len;
			const char *str = batch_get_str(b, r, f, &len);
			p += varint_put(p, len);
			memcpy(p, str, len);
			p += len;
		} else if (ty == EV_FLOAT) {
			uint64_t v = batch_slot_get(b, r, f);
			memcpy(p, &v, 8);
			p += 8;
		} else {
			p += varint_put(p, zz((int64_t)batch_slot_get(b, r, f)));
		}
	}
	uint8_t len[10];
	size_t ll = varint_put(len, (uint64_t)(p - body));
	s->elem = body - ll;
	memcpy(s->row + ELEM_HDR - ll, len, ll);
	s->elen = (uint32_t)(p - s->elem);
	return EDDY_OK;
}

/* decode writes the encoded element e (of schema in) into fields [off, off + in->n) of
 * row o of out. EDDY_EINVAL: e is not one (another operator's state). */
static eddy_err decode(const uint8_t *e, const ev_schema *in, ev_batch *out, uint32_t o,
                       uint32_t off)
{
	const uint8_t *p = e;
	uint64_t n, nulls;
	if (!varint_get(&p, p + 10, &n))
		return EDDY_EINVAL;
	const uint8_t *end = p + n;
	if (!varint_get(&p, end, &nulls))
		return EDDY_EINVAL;
	for (uint32_t f = 0; f < in->n; f++) {
		if ((nulls >> f) & 1u)
			continue;
		ev_type ty = in->fields[f].type;
		uint64_t v;
		if (ty == EV_STRING) {
			if (!varint_get(&p, end, &v) || v > (uint64_t)(end - p))
				return EDDY_EINVAL;
			eddy_err err = batch_set_str(out, o, off + f, (const char *)p, (uint32_t)v);
			if (err != EDDY_OK)
				return err;
			p += v;
			continue;
		}
		if (ty == EV_FLOAT) {
			if (end - p < 8)
				return EDDY_EINVAL;
			memcpy(&v, p, 8);
			p += 8;
		} else {
			if (!varint_get(&p, end, &v))
				return EDDY_EINVAL;
			v = (uint64_t)unzz(v);
		}
		*batch_slot(out, o, off + f) = v;
		out->nulls[o] &= ~((uint64_t)1 << (off + f));
	}
	return p == end ? EDDY_OK : EDDY_EINVAL;
}

/* chunk_ok: the bytes [p, p + n) are whole encoded elements (each at least its null
 * bits). */
static bool chunk_ok(const uint8_t *p, size_t n)
{
	const uint8_t *q = p, *end = p + n;
	while (q < end) {
		uint64_t len;
		if (!varint_get(&q, end, &len) || len == 0 || len > (uint64_t)(end - q))
			return false;
		q += len;
	}
	return true;
}

static eddy_err emit_out(task *t, jstate *s)
{
	if (s->out == NULL || s->out->n == 0)
		return EDDY_OK;
	ev_batch *b = s->out;
	s->out = NULL;
	return task_emit(t, 0, b);
}

/* emit_pair appends the pair (left element l, right element r) with event time ts, and
 * takes it back if `where` is not true of it. */
static eddy_err emit_pair(task *t, jstate *s, const uint8_t *l, const uint8_t *r, int64_t ts)
{
	const join_conf *c = s->c;
	if (s->out && batch_full(s->out)) {
		eddy_err err = emit_out(t, s);
		if (err != EDDY_OK)
			return err;
	}
	if (s->out == NULL && (s->out = task_new_batch(t, c->out)) == NULL)
		return EDDY_ENOMEM;
	ev_batch *o = s->out;
	size_t arena = o->arena_len;
	uint32_t row = batch_append_row(o);
	o->ts[row] = ts;
	eddy_err err = decode(l, c->in[0], o, row, 0);
	if (err == EDDY_OK)
		err = decode(r, c->in[1], o, row, c->in[0]->n);
	if (err != EDDY_OK)
		return err;
	if (c->where) {
		expr_scratch *sc = task_scratch(t);
		expr_scratch_reset(sc);
		if (!expr_eval_bool(c->where, o, row, sc)) {
			o->n--;
			o->arena_len = arena; /* its strings were the last in the arena */
		}
	}
	return EDDY_OK;
}

/* emit_with emits the pairs of the element e of side `side` with every element of the
 * other side in chunk [p, p + n), with event time ts. */
static eddy_err emit_with(task *t, jstate *s, int side, const uint8_t *e, const uint8_t *p,
                          size_t n, int64_t ts)
{
	eddy_err err = EDDY_OK;
	for (size_t o = 0; o < n && err == EDDY_OK; o += elem_size(p + o))
		err = side == 0 ? emit_pair(t, s, e, p + o, ts) : emit_pair(t, s, p + o, e, ts);
	return err;
}

static eddy_err late_row(task *t, jstate *s, int side, const ev_batch *b, uint32_t r)
{
	if (!s->c->has_late_output[side]) {
		atomic_fetch_add_explicit(&task_stats(t)->late_dropped, 1, memory_order_relaxed);
		return EDDY_OK;
	}
	if (s->late[side] && batch_full(s->late[side])) {
		ev_batch *l = s->late[side];
		s->late[side] = NULL;
		eddy_err err = task_emit(t, 1 + (uint32_t)side, l);
		if (err != EDDY_OK)
			return err;
	}
	if (s->late[side] == NULL && (s->late[side] = task_new_batch(t, b->schema)) == NULL)
		return EDDY_ENOMEM;
	return batch_copy_row(s->late[side], b, r);
}

/* publish_size tells the task the state's size, every 64 batches (LevelDB's estimate
 * is not free). */
static void publish_size(task *t, jstate *s, bool now)
{
	if (now || (++s->batches & 63) == 0)
		task_set_state_bytes(t, ev_state_size_bytes(s->st));
}

/* ---- window joins ---- */

/* list_chunk copies the items of list state id (current key and namespace) into s->tmp,
 * one after another; *n gets their bytes. */
static eddy_err list_chunk(task *t, jstate *s, ev_state_id id, size_t *n)
{
	const ev_bytes *items;
	size_t k;
	eddy_err e = ev_list_get(s->st, id, &items, &k);
	if (e != EDDY_OK)
		return sfail(t, s, e, "reading a window's elements");
	size_t total = 0;
	for (size_t i = 0; i < k; i++)
		total += items[i].len;
	if (rt_grow((void **)&s->tmp, &s->tcap, total + 1, 1, 4096) != EDDY_OK)
		return EDDY_ENOMEM;
	size_t o = 0;
	for (size_t i = 0; i < k; i++) {
		memcpy(s->tmp + o, items[i].p, items[i].len);
		o += items[i].len;
	}
	if (!chunk_ok(s->tmp, o))
		return task_fail(t, "join: a window's elements are not encoded elements (another "
		                    "operator's state?)");
	*n = o;
	return EDDY_OK;
}

/* add_to_ns adds the arriving element (s->elem) of side `side` to the window in the
 * current namespace, [start, end), made with a timer at end - 1 if absent; if the window
 * fired already (allowed lateness) the element joins the other side's elements now. */
static eddy_err add_to_ns(task *t, jstate *s, int side, int64_t start, int64_t end)
{
	void *p;
	bool created;
	eddy_err e;
	if (!s->meta) { /* no lateness, not a session: a timer (registered once) and the list */
		if ((e = timer_set(t, s, end - 1)) != EDDY_OK)
			return e;
		e = ev_list_add(s->st, s->list_id[side], s->elem, s->elen);
		return e ? sfail(t, s, e, "storing an element") : EDDY_OK;
	}
	e = ev_value_ref(s->st, s->meta_id, sizeof(jmeta), &p, &created);
	if (e != EDDY_OK)
		return sfail(t, s, e, "writing a window");
	jmeta m;
	if (created) {
		m = (jmeta){.start = start, .end = end};
		memcpy(p, &m, sizeof(m));
		if ((e = timer_set(t, s, end - 1)) != EDDY_OK)
			return e;
	} else {
		memcpy(&m, p, sizeof(m));
	}
	if (m.fired) {
		const ev_bytes *items;
		size_t k;
		if ((e = ev_list_get(s->st, s->list_id[1 - side], &items, &k)) != EDDY_OK)
			return sfail(t, s, e, "reading a window's elements");
		for (size_t i = 0; i < k && e == EDDY_OK; i++)
			if (chunk_ok(items[i].p, items[i].len))
				e = emit_with(t, s, side, s->elem, items[i].p, items[i].len,
				              m.end - 1);
		if (e != EDDY_OK)
			return e;
	}
	e = ev_list_add(s->st, s->list_id[side], s->elem, s->elen);
	return e ? sfail(t, s, e, "storing an element") : EDDY_OK;
}

static eddy_err sessions_load(task *t, jstate *s)
{
	const void *v;
	size_t len;
	eddy_err e = set_ns(t, s, NULL, 0);
	if (e != EDDY_OK)
		return e;
	s->nsess = 0;
	if ((e = ev_value_get(s->st, s->sess_id, &v, &len)) == EDDY_ENOENT)
		return EDDY_OK;
	if (e != EDDY_OK)
		return sfail(t, s, e, "reading sessions");
	if (len % sizeof(jsess) != 0)
		return task_fail(t, "join: a key's session list has %zu bytes", len);
	if (rt_grow((void **)&s->sess, &s->sess_cap, len / sizeof(jsess) + 1, sizeof(jsess), 8) !=
	    EDDY_OK)
		return EDDY_ENOMEM;
	memcpy(s->sess, v, len);
	s->nsess = len / sizeof(jsess);
	return EDDY_OK;
}

static eddy_err sessions_store(task *t, jstate *s)
{
	eddy_err e = set_ns(t, s, NULL, 0);
	if (e != EDDY_OK)
		return e;
	e = s->nsess ? ev_value_put(s->st, s->sess_id, s->sess, s->nsess * sizeof(jsess))
	             : ev_state_clear(s->st, s->sess_id);
	return e ? sfail(t, s, e, "writing sessions") : EDDY_OK;
}

/* add_to_session puts the arriving element into the key's session around its time,
 * merging the sessions it touches (Flink's MergingWindowSet over both inputs; touching
 * sessions merge, as TimeWindow.intersects). Sessions have no allowed lateness (the plan
 * refuses it), so every session in the list is open. */
static eddy_err add_to_session(task *t, jstate *s, int side, int64_t ts)
{
	const join_conf *c = s->c;
	int64_t start = ts, end = ts + c->gap_ms;
	eddy_err e = sessions_load(t, s);
	if (e != EDDY_OK)
		return e;
	size_t into = SIZE_MAX;
	for (size_t i = 0; i < s->nsess && into == SIZE_MAX; i++)
		if (s->sess[i].start <= end && s->sess[i].end >= start)
			into = i;
	if (into == SIZE_MAX) { /* a new session; its id (namespace) is unique for the key */
		int64_t id = ts;
		for (bool clash = true; clash;) {
			clash = false;
			for (size_t i = 0; i < s->nsess; i++)
				clash |= s->sess[i].id == id;
			id += clash;
		}
		if (rt_grow((void **)&s->sess, &s->sess_cap, s->nsess + 1, sizeof(jsess), 8) !=
		    EDDY_OK)
			return EDDY_ENOMEM;
		s->sess[s->nsess++] = (jsess){start, end, id};
		if ((e = sessions_store(t, s)) != EDDY_OK || (e = set_win(t, s, &id)) != EDDY_OK)
			return e;
		return add_to_ns(t, s, side, start, end);
	}
	jsess old = s->sess[into];
	int64_t id = old.id;
	start = start < old.start ? start : old.start;
	end = end > old.end ? end : old.end;
	/* every other session the new extent touches merges into this one */
	size_t keep = 0;
	for (size_t i = 0; i < s->nsess; i++) {
		jsess x = s->sess[i];
		if (i == into || !(x.start <= end && x.end >= start)) {
			s->sess[keep++] = x;
			continue;
		}
		ev_bytes from = {&x.id, sizeof(x.id)};
		if ((e = set_win(t, s, &x.id)) != EDDY_OK ||
		    (e = timer_del(t, s, x.end - 1)) != EDDY_OK)
			return e;
		if ((e = ev_state_clear(s->st, s->meta_id)) != EDDY_OK ||
		    (e = ev_state_merge_namespaces(s->st, s->list_id[0], &id, sizeof(id), &from,
		                                   1)) != EDDY_OK ||
		    (e = ev_state_merge_namespaces(s->st, s->list_id[1], &id, sizeof(id), &from,
		                                   1)) != EDDY_OK)
			return sfail(t, s, e, "merging sessions");
		start = start < x.start ? start : x.start;
		end = end > x.end ? end : x.end;
	}
	s->nsess = keep;
	for (size_t i = 0; i < s->nsess; i++)
		if (s->sess[i].id == id) {
			s->sess[i].start = start;
			s->sess[i].end = end;
		}
	if ((e = sessions_store(t, s)) != EDDY_OK || (e = set_win(t, s, &id)) != EDDY_OK)
		return e;
	if (end != old.end) {
		if ((e = timer_del(t, s, old.end - 1)) != EDDY_OK ||
		    (e = timer_set(t, s, end - 1)) != EDDY_OK)
			return e;
	}
	jmeta m = {.start = start, .end = end};
	if ((e = ev_value_put(s->st, s->meta_id, &m, sizeof(m))) != EDDY_OK)
		return sfail(t, s, e, "writing a session");
	e = ev_list_add(s->st, s->list_id[side], s->elem, s->elen);
	return e ? sfail(t, s, e, "storing an element") : EDDY_OK;
}

/* window_row adds row r of side `side` (not late: is_late; its key current, encoded in
 * s->elem) to its windows. */
static eddy_err window_row(task *t, jstate *s, int side, const ev_batch *b, uint32_t r,
                           int64_t late_bound)
{
	const join_conf *c = s->c;
	int64_t ts = b->ts[r];
	eddy_err e = EDDY_OK;
	switch (c->win) {
	case WIN_TUMBLING: {
		int64_t start = ts - floor_mod(ts, c->size_ms);
		if ((e = set_win(t, s, &start)) != EDDY_OK)
			return e;
		return add_to_ns(t, s, side, start, start + c->size_ms);
	}
	case WIN_SLIDING: { /* its last window is open; earlier ones may be gone */
		int64_t last = ts - floor_mod(ts, c->slide_ms);
		for (int64_t st = last; st > ts - c->size_ms && e == EDDY_OK; st -= c->slide_ms)
			if (st + c->size_ms - 1 > late_bound && (e = set_win(t, s, &st)) == EDDY_OK)
				e = add_to_ns(t, s, side, st, st + c->size_ms);
		return e;
	}
	default: /* session */ return add_to_session(t, s, side, ts);
	}
}

/* window_fire handles the timer at `time` of the current key and window namespace ns: at
 * the window's end - 1 it emits every pair of the window (kept until end - 1 + lateness
 * if there is any), a later one purges it. A timer whose window is gone does nothing. */
static eddy_err window_fire(task *t, jstate *s, int64_t time, int64_t ns, int64_t wm)
{
	const join_conf *c = s->c;
	const void *v;
	size_t len;
	jmeta m = {.start = ns, .end = ns + c->size_ms}; /* without meta: tumbling, sliding */
	eddy_err e = s->meta ? ev_value_get(s->st, s->meta_id, &v, &len) : EDDY_OK;
	if (e == EDDY_ENOENT)
		return EDDY_OK;
	if (e != EDDY_OK)
		return sfail(t, s, e, "reading a window");
	if (s->meta && len != sizeof(jmeta))
		return task_fail(t, "join: a window's state has %zu bytes, not %zu", len,
		                 sizeof(jmeta));
	if (s->meta)
		memcpy(&m, v, sizeof(m));
	if (time < m.end - 1)
		return EDDY_OK;
	if (!m.fired && time == m.end - 1) {
		size_t nl = 0, k = 0;
		const ev_bytes *items = NULL;
		if ((e = list_chunk(t, s, s->list_id[0], &nl)) != EDDY_OK)
			return e;
		if (nl > 0 && (e = ev_list_get(s->st, s->list_id[1], &items, &k)) != EDDY_OK)
			return sfail(t, s, e, "reading a window's elements");
		for (size_t o = 0; nl > 0 && o < nl && e == EDDY_OK; o += elem_size(s->tmp + o))
			for (size_t i = 0; i < k && e == EDDY_OK; i++)
				if (chunk_ok(items[i].p, items[i].len))
					e = emit_pair(t, s, s->tmp + o, items[i].p, m.end - 1);
		if (e != EDDY_OK)
			return e;
		if (c->lateness_ms > 0 && wm != WM_MAX && m.end - 1 + c->lateness_ms > wm) {
			m.fired = 1;
			if ((e = ev_value_put(s->st, s->meta_id, &m, sizeof(m))) != EDDY_OK)
				return sfail(t, s, e, "writing a window");
			return timer_set(t, s, m.end - 1 + c->lateness_ms);
		}
	}
	if ((s->meta && (e = ev_state_clear(s->st, s->meta_id)) != EDDY_OK) ||
	    (e = ev_state_clear(s->st, s->list_id[0])) != EDDY_OK ||
	    (e = ev_state_clear(s->st, s->list_id[1])) != EDDY_OK)
		return sfail(t, s, e, "clearing a window");
	if (c->win != WIN_SESSION)
		return EDDY_OK;
	if ((e = sessions_load(t, s)) != EDDY_OK)
		return e;
	size_t keep = 0;
	for (size_t i = 0; i < s->nsess; i++)
		if (s->sess[i].id != ns)
			s->sess[keep++] = s->sess[i];
	s->nsess = keep;
	return sessions_store(t, s);
}

/* ---- interval and regular joins: per-timestamp buckets ---- */

/* bucket_key: the map key of timestamp ts (8 bytes, big-endian with the sign flipped,
 * so LevelDB keeps buckets in time order). */
static void bucket_key(int64_t ts, uint8_t k[8])
{
	uint64_t u = (uint64_t)ts ^ (1ull << 63);
	for (int i = 7; i >= 0; i--, u >>= 8)
		k[i] = (uint8_t)u;
}

static int64_t bucket_ts(const uint8_t *k)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u = u << 8 | k[i];
	return (int64_t)(u ^ (1ull << 63));
}

/* cleanup_at: when the element of side `side` at ts can match nothing more. */
static int64_t cleanup_at(const join_conf *c, int side, int64_t ts)
{
	if (c->kind == JOIN_REGULAR)
		return ts + c->ttl_ms;
	int64_t after = side == 0 ? c->upper_ms : -c->lower_ms;
	return after > 0 ? ts + after : ts;
}

/* matches: the stored element of the other side at time o joins the arriving element of
 * side `side` at ts. */
static bool matches(const join_conf *c, jstate *s, int side, int64_t ts, int64_t o)
{
	if (c->kind == JOIN_INTERVAL) {
		int64_t l = side == 0 ? ts : o, r = side == 0 ? o : ts;
		return r >= l + c->lower_ms && r <= l + c->upper_ms;
	}
	if (c->ttl_ms == 0)
		return true;
	return o + c->ttl_ms > s->wm && o + c->ttl_ms > ts && ts + c->ttl_ms > o;
}

/* bucket_row handles row r of side `side` (not late: is_late; its key current, encoded in
 * s->elem): joins it with the other side's stored elements, then stores it. */
static eddy_err bucket_row(task *t, jstate *s, int side, const ev_batch *b, uint32_t r)
{
	const join_conf *c = s->c;
	int64_t ts = b->ts[r];
	const ev_map_entry *ents;
	size_t n;
	eddy_err e = set_side(t, s, 1 - side);
	if (e == EDDY_OK && (e = ev_map_entries(s->st, s->buf_id, &ents, &n)) != EDDY_OK)
		return sfail(t, s, e, "reading the other side");
	for (size_t i = 0; i < n && e == EDDY_OK; i++) {
		if (ents[i].key.len != 8 || !chunk_ok(ents[i].value.p, ents[i].value.len))
			return task_fail(t, "join: a bucket of the state is not one of a join");
		int64_t o = bucket_ts(ents[i].key.p);
		if (!matches(c, s, side, ts, o))
			continue;
		int64_t out_ts = c->kind == JOIN_INTERVAL ? (ts > o ? ts : o) : ts;
		e = emit_with(t, s, side, s->elem, ents[i].value.p, ents[i].value.len, out_ts);
	}
	if (e != EDDY_OK || (e = set_side(t, s, side)) != EDDY_OK)
		return e;
	uint8_t k[8];
	bucket_key(ts, k);
	const void *v;
	size_t len, rl = s->elen;
	e = ev_map_get(s->st, s->buf_id, k, 8, &v, &len);
	if (e == EDDY_ENOENT) {
		if ((e = ev_map_put(s->st, s->buf_id, k, 8, s->elem, rl)) != EDDY_OK)
			return sfail(t, s, e, "storing an element");
		return c->kind == JOIN_REGULAR && c->ttl_ms == 0
		           ? EDDY_OK
			   : timer_set(t, s, cleanup_at(c, side, ts));
	}
	if (e != EDDY_OK)
		return sfail(t, s, e, "reading a bucket");
	if (rt_grow((void **)&s->tmp, &s->tcap, len + rl, 1, 4096) != EDDY_OK)
		return EDDY_ENOMEM;
	memcpy(s->tmp, v, len);
	memcpy(s->tmp + len, s->elem, rl);
	e = ev_map_put(s->st, s->buf_id, k, 8, s->tmp, len + rl);
	return e ? sfail(t, s, e, "storing an element") : EDDY_OK;
}

/* all_row handles row r of side `side` of a regular join without ttl (its key current,
 * encoded in s->elem): nothing is ever removed, so each side is one list ("all",
 * namespace the side): one read of the other side's, one append to its own. */
static eddy_err all_row(task *t, jstate *s, int side, const ev_batch *b, uint32_t r)
{
	const ev_bytes *items;
	size_t n;
	eddy_err e = set_side(t, s, 1 - side);
	if (e == EDDY_OK && (e = ev_list_get(s->st, s->all_id, &items, &n)) != EDDY_OK)
		return sfail(t, s, e, "reading the other side");
	for (size_t i = 0; i < n && e == EDDY_OK; i++) {
		if (!chunk_ok(items[i].p, items[i].len))
			return task_fail(t, "join: an element of the state is not one of a join");
		e = emit_with(t, s, side, s->elem, items[i].p, items[i].len, b->ts[r]);
	}
	if (e != EDDY_OK || (e = set_side(t, s, side)) != EDDY_OK)
		return e;
	e = ev_list_add(s->st, s->all_id, s->elem, s->elen);
	return e ? sfail(t, s, e, "storing an element") : EDDY_OK;
}

/* bucket_cleanup: the timer at `time` of the current key and side ns removes the bucket
 * whose elements can match nothing more. */
static eddy_err bucket_cleanup(task *t, jstate *s, int side, int64_t time)
{
	const join_conf *c = s->c;
	int64_t ts;
	if (c->kind == JOIN_REGULAR)
		ts = time - c->ttl_ms;
	else {
		int64_t after = side == 0 ? c->upper_ms : -c->lower_ms;
		ts = after > 0 ? time - after : time;
	}
	uint8_t k[8];
	bucket_key(ts, k);
	eddy_err e = ev_map_remove(s->st, s->buf_id, k, 8);
	return e ? sfail(t, s, e, "removing a bucket") : EDDY_OK;
}

/* ---- hooks ---- */

/* is_late: an element at ts can join nothing any more (late_bound: the watermark - the
 * allowed lateness). Window joins: its last window is past end - 1 + lateness under the
 * watermark; interval: ts <= the watermark; regular with a ttl: ts + ttl <= the
 * watermark. Nothing is late before the first watermark. */
static bool is_late(const join_conf *c, const jstate *s, int64_t ts, int64_t late_bound)
{
	if (s->wm == WM_MIN)
		return false;
	switch (c->kind) {
	case JOIN_WINDOW:
		switch (c->win) {
		case WIN_TUMBLING:
			return ts - floor_mod(ts, c->size_ms) + c->size_ms - 1 <= late_bound;
		case WIN_SLIDING:
			return ts - floor_mod(ts, c->slide_ms) + c->size_ms - 1 <= late_bound;
		default: return ts + c->gap_ms - 1 <= late_bound;
		}
	case JOIN_INTERVAL: return ts <= s->wm;
	default: return c->ttl_ms > 0 && ts + c->ttl_ms <= s->wm;
	}
}

static eddy_err join_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	jstate *s = state;
	const join_conf *c = s->c;
	int side = input == 0 ? 0 : 1;
	int64_t late_bound = s->wm == WM_MIN ? WM_MIN : s->wm - c->lateness_ms;
	eddy_err err = EDDY_OK;
	for (uint32_t r = 0; r < b->n && err == EDDY_OK; r++) {
		expr_scratch_reset(task_scratch(t));
		if (is_late(c, s, b->ts[r], late_bound)) { /* whatever its key */
			err = late_row(t, s, side, b, r);
			continue;
		}
		bool null;
		if ((err = key_encode(s, t, side, b, r, &null)) != EDDY_OK || null)
			continue; /* a null key equals nothing: no pair, nothing stored */
		if ((err = encode(s, b, r)) == EDDY_EINVAL) {
			err = task_fail(t, "join: a record of over 4 GiB");
			break;
		}
		if (err != EDDY_OK || (err = set_key(t, s)) != EDDY_OK)
			break;
		if (c->kind == JOIN_WINDOW)
			err = window_row(t, s, side, b, r, late_bound);
		else if (c->kind == JOIN_REGULAR && c->ttl_ms == 0)
			err = all_row(t, s, side, b, r);
		else
			err = bucket_row(t, s, side, b, r);
	}
	batch_free(b);
	for (int k = 0; k < 2 && err == EDDY_OK; k++)
		if (s->late[k] && s->late[k]->n) {
			ev_batch *l = s->late[k];
			s->late[k] = NULL;
			err = task_emit(t, 1 + (uint32_t)k, l);
		}
	if (err == EDDY_OK)
		err = emit_out(t, s);
	publish_size(t, s, false);
	return err;
}

static eddy_err join_watermark(task *t, void *state, int64_t wm)
{
	jstate *s = state;
	if (wm > s->wm)
		s->wm = wm;
	eddy_err err = EDDY_OK;
	ev_timer tm;
	while (err == EDDY_OK && (err = ev_timer_pop(s->st, EV_TIME_EVENT, wm, &tm)) == EDDY_OK) {
		/* the timer's key and namespace are current */
		if (s->c->kind == JOIN_WINDOW) {
			int64_t ns = 0;
			if (tm.ns.len == sizeof(ns))
				memcpy(&ns, tm.ns.p, sizeof(ns));
			err = window_fire(t, s, tm.time, ns, wm);
		} else {
			int side = tm.ns.len == 1 && *(const char *)tm.ns.p == 'R';
			err = bucket_cleanup(t, s, side, tm.time);
		}
	}
	if (err == EDDY_ENOENT)
		err = EDDY_OK;
	else if (err != EDDY_OK && err != EDDY_EFAILED && err != EDDY_ENOMEM)
		err = sfail(t, s, err, "timers");
	if (err == EDDY_OK)
		err = emit_out(t, s);
	publish_size(t, s, false);
	return err;
}

static void join_close(task *t, void *state)
{
	(void)t;
	jstate *s = state;
	if (s == NULL)
		return;
	batch_free(s->out);
	batch_free(s->late[0]);
	batch_free(s->late[1]);
	rt_free(s->kbuf);
	rt_free(s->row);
	rt_free(s->tmp);
	rt_free(s->sess);
	rt_free(s);
}

static eddy_err reg(task *t, jstate *s, const char *name, ev_state_kind kind, ev_state_id *id)
{
	ev_state_desc d = {.name = name, .kind = kind};
	eddy_err e = ev_state_register(s->st, &d, id);
	return e ? sfail(t, s, e, "registering state") : EDDY_OK;
}

static eddy_err join_open(task *t, void **state)
{
	jstate *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	*state = s;
	const join_conf *c = s->c = task_node_of(t)->conf;
	s->st = task_keyed_state(t);
	s->wm = WM_MIN;
	for (int side = 0; side < 2; side++)
		for (uint32_t k = 0; k < c->nkeys; k++)
			s->keyf[side][k] = expr_field(c->keys[side][k]);
	eddy_err e;
	if (c->kind == JOIN_WINDOW) {
		e = reg(t, s, "l", EV_STATE_LIST, &s->list_id[0]);
		if (e == EDDY_OK)
			e = reg(t, s, "r", EV_STATE_LIST, &s->list_id[1]);
		s->meta = c->win == WIN_SESSION || c->lateness_ms > 0;
		if (e == EDDY_OK && s->meta)
			e = reg(t, s, "m", EV_STATE_VALUE, &s->meta_id);
		if (e == EDDY_OK && c->win == WIN_SESSION)
			e = reg(t, s, "sessions", EV_STATE_VALUE, &s->sess_id);
	} else if (c->kind == JOIN_REGULAR && c->ttl_ms == 0) {
		e = reg(t, s, "all", EV_STATE_LIST, &s->all_id);
	} else {
		e = reg(t, s, "buf", EV_STATE_MAP, &s->buf_id);
	}
	return e;
}

/* ---- checkpoints: the state is keyed (the task snapshots it); the operator's own
 * snapshot is {"v": 1, "wm": W}, its watermark. */

/* join_shape: what the join's state layout depends on — its kind and window, bounds or
 * ttl (ms), and the types of both inputs' fields (its stored elements are encoded by
 * them). Allowed lateness may change across a restore (as a window's). */
static void join_shape(const join_conf *c, char *buf, size_t size)
{
	static const char *const wins[] = {"tumbling", "sliding", "session", "count", "global"};
	size_t o;
	if (c->kind == JOIN_WINDOW)
		o = (size_t)snprintf(buf, size, "window %s %lld/%lld/%lld", wins[c->win],
		                     (long long)c->size_ms, (long long)c->slide_ms,
		                     (long long)c->gap_ms);
	else if (c->kind == JOIN_INTERVAL)
		o = (size_t)snprintf(buf, size, "interval %lld..%lld", (long long)c->lower_ms,
		                     (long long)c->upper_ms);
	else
		o = (size_t)snprintf(buf, size, "regular ttl %lld", (long long)c->ttl_ms);
	for (int side = 0; side < 2; side++) {
		if (o < size)
			o += (size_t)snprintf(buf + o, size - o, side ? " right" : " left");
		for (uint32_t f = 0; f < c->in[side]->n && o < size; f++)
			o += (size_t)snprintf(buf + o, size - o, " %s",
			                      ev_type_name(c->in[side]->fields[f].type));
	}
}

static eddy_err join_snapshot(task *t, void *state, uint64_t id, msgpack_packer *pk)
{
	(void)id;
	jstate *s = state;
	publish_size(t, s, true);
	char shape[1024];
	join_shape(s->c, shape, sizeof(shape));
	msgpack_pack_map(pk, 4);
	msgpack_pack_str_with_body(pk, "v", 1);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_str_with_body(pk, "wm", 2);
	msgpack_pack_int64(pk, s->wm);
	op_pack_shape(pk, "join", shape);
	return EDDY_OK;
}

static eddy_err join_restore(task *t, void *state, const msgpack_object *o)
{
	jstate *s = state;
	char shape[1024], why[2560];
	join_shape(s->c, shape, sizeof(shape));
	if (op_shape_mismatch(o, "join", shape,
	                      "kind, window size/slide/gap, bounds or ttl in ms, the inputs' "
	                      "field types",
	                      why, sizeof(why)))
		return task_fail(t, "%s", why);
	const msgpack_object *v = o ? mp_get(o, "v") : NULL, *wm = o ? mp_get(o, "wm") : NULL;
	int64_t w;
	if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 1 ||
	    wm == NULL || !mp_int(wm, &w))
		return task_fail(t, "join: the checkpoint holds no join state of version 1");
	if (!task_rescaled(t) || s->restored == 0 || w < s->wm)
		s->wm = w; /* rescaled: the lowest of the old subtasks' */
	s->restored++;
	publish_size(t, s, true);
	return EDDY_OK;
}

const op_def join_op = {
    .type = "join",
    .open = join_open,
    .process = join_process,
    .watermark = join_watermark,
    .close = join_close,
    .snapshot = join_snapshot,
    .restore = join_restore,
    .rescalable = true,
    .keyed_state = true,
};
