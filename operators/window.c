/*
 * The window operator (operators/ops.h): keyed tumbling, sliding, session and count
 * windows with incremental aggregates, in event time, as Flink's WindowOperator with an
 * AggregateFunction and the EventTimeTrigger:
 *  - a record is assigned to its windows ([start, end), aligned to the epoch); a window
 *    whose end - 1 + allowed_lateness <= the watermark is skipped, and a record that got
 *    no window and whose timestamp + allowed_lateness <= the watermark is late: it goes
 *    to the late side output (port 1) or is counted in job_stats.late_dropped;
 *  - a window fires when the watermark reaches end - 1; with allowed lateness its state
 *    is kept until end - 1 + lateness and every late record re-fires it (an updated row);
 *  - session windows merge when they intersect (Flink's TimeWindow.intersects, so
 *    touching sessions merge too);
 *  - count windows fire after `count` records of a key and are then purged (Flink's
 *    countWindow: a GlobalWindow with a purging CountTrigger); a partial count window
 *    never fires, also not at the end of the input. Its window_start/window_end are the
 *    smallest event time and the largest + 1 ms of its records.
 * State: one entry per (key, window) holding one accumulator per aggregate (not the
 * records), in a chained hash table, and a min-heap of firing times.
 */
#include "ops.h"

#include "../runtime/alloc.h"

#include "../runtime/mp.h"
#include <string.h>
#include <xxhash.h>

typedef struct acc {
	union {
		int64_t i;
		double f;
	};
	int64_t n;  /* values aggregated (non-null) */
	int64_t ts; /* first/last: event time of the value kept */
	char *s;    /* string values (owned) */
	uint32_t slen;
} acc;

typedef struct wentry {
	struct wentry *next; /* hash chain */
	uint64_t hash;       /* of the key (sessions, count) or of key and start */
	uint64_t khash;      /* of the key */
	int64_t start, end;
	int64_t min_ts, max_ts, records;
	uint32_t heap_refs;
	uint32_t gen;
	bool dead, fired;
	uint32_t key_len;
	char *key;           /* points after the accumulators */
	acc accs[];
} wentry;

typedef struct hitem {
	int64_t time;
	wentry *e;
	uint32_t gen;
	uint32_t pad;
} hitem;

typedef struct wstate {
	const window_conf *c;
	wentry **buckets;
	uint64_t nbuckets, nentries;
	uint64_t entry_bytes; /* bytes of live entries (without their string values) */
	uint32_t restored;    /* snapshots restored (several when rescaled) */
	hitem *heap;
	size_t nheap, heap_cap;
	int64_t wm;
	ev_batch *out, *late;
	char *kbuf;
	size_t kcap;
	int argf[EV_MAX_FIELDS];  /* per aggregate: its argument's field, or -1 */
	int keyf[EV_MAX_FIELDS];  /* per key: its field, or -1 */
} wstate;

static int64_t floor_mod(int64_t a, int64_t b)
{
	int64_t m = a % b;
	return m < 0 ? m + b : m;
}

/* ---- heap ---- */

static eddy_err heap_push(wstate *s, int64_t time, wentry *e)
{
	if (s->nheap == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 1024;
		hitem *h = rt_realloc(s->heap, cap * sizeof(*h));
		if (h == NULL)
			return EDDY_ENOMEM;
		s->heap = h;
		s->heap_cap = cap;
	}
	size_t i = s->nheap++;
	hitem it = { .time = time, .e = e, .gen = e->gen };
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (s->heap[p].time <= time)
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = it;
	e->heap_refs++;
	return EDDY_OK;
}

static hitem heap_pop(wstate *s)
{
	hitem top = s->heap[0];
	hitem last = s->heap[--s->nheap];
	size_t i = 0, n = s->nheap;
	for (;;) {
		size_t l = 2 * i + 1;
		if (l >= n)
			break;
		if (l + 1 < n && s->heap[l + 1].time < s->heap[l].time)
			l++;
		if (s->heap[l].time >= last.time)
			break;
		s->heap[i] = s->heap[l];
		i = l;
	}
	if (n > 0)
		s->heap[i] = last;
	return top;
}

/* ---- entries ---- */

static void entry_free(const window_conf *c, wentry *e)
{
	for (uint32_t a = 0; a < c->naggs; a++)
		rt_free(e->accs[a].s);
	rt_free(e);
}

static eddy_err table_grow(wstate *s)
{
	uint64_t n = s->nbuckets ? s->nbuckets * 2 : 1024;
	wentry **b = rt_calloc(n, sizeof(*b));
	if (b == NULL)
		return EDDY_ENOMEM;
	for (uint64_t i = 0; i < s->nbuckets; i++)
		for (wentry *e = s->buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	rt_free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
	return EDDY_OK;
}

static void table_unlink(wstate *s, wentry *e)
{
	wentry **pp = &s->buckets[e->hash & (s->nbuckets - 1)];
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = e->next;
		s->nentries--;
	}
	e->dead = true;
}

/* release drops a dead entry once no heap item points at it. */
static void release(wstate *s, wentry *e)
{
	if (e->dead && e->heap_refs == 0) {
		s->entry_bytes -= sizeof(wentry) + s->c->naggs * sizeof(acc) + e->key_len;
		entry_free(s->c, e);
	}
}

/* publish_size tells the task the state's size: entries, hash table and timer heap. */
static void publish_size(task *t, const wstate *s)
{
	task_set_state_bytes(t, s->entry_bytes + s->nbuckets * sizeof(wentry *) +
	                            s->heap_cap * sizeof(hitem));
}

static uint64_t entry_hash(const window_conf *c, uint64_t khash, int64_t start)
{
	if (c->kind == WIN_SESSION || c->kind == WIN_COUNT)
		return khash;
	return khash ^ ((uint64_t)start * 0x9e3779b97f4a7c15ull);
}

static wentry *entry_new(wstate *s, uint64_t khash, const char *key, uint32_t klen,
                         int64_t start, int64_t end)
{
	const window_conf *c = s->c;
	if (s->nentries >= s->nbuckets && table_grow(s) != EDDY_OK)
		return NULL;
	size_t sz = sizeof(wentry) + c->naggs * sizeof(acc) + klen;
	wentry *e = rt_calloc(1, sz);
	if (e == NULL)
		return NULL;
	s->entry_bytes += sz;
	e->khash = khash;
	e->hash = entry_hash(c, khash, start);
	e->start = start;
	e->end = end;
	e->min_ts = INT64_MAX;
	e->max_ts = INT64_MIN;
	e->key = (char *)&e->accs[c->naggs];
	e->key_len = klen;
	if (klen) /* a global window has an empty key */
		memcpy(e->key, key, klen);
	uint64_t bi = e->hash & (s->nbuckets - 1);
	e->next = s->buckets[bi];
	s->buckets[bi] = e;
	s->nentries++;
	return e;
}

static wentry *entry_find(wstate *s, uint64_t khash, const char *key, uint32_t klen,
                          int64_t start)
{
	if (s->nbuckets == 0)
		return NULL;
	uint64_t h = entry_hash(s->c, khash, start);
	for (wentry *e = s->buckets[h & (s->nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && e->start == start && e->key_len == klen &&
		    memcmp(e->key, key, klen) == 0)
			return e;
	return NULL;
}

/* ---- keys: a canonical byte encoding of the key values ---- */

static eddy_err key_reserve(wstate *s, size_t need)
{
	if (need <= s->kcap)
		return EDDY_OK;
	size_t cap = s->kcap ? s->kcap : 256;
	while (cap < need)
		cap *= 2;
	char *k = rt_realloc(s->kbuf, cap);
	if (k == NULL)
		return EDDY_ENOMEM;
	s->kbuf = k;
	s->kcap = cap;
	return EDDY_OK;
}

static eddy_err key_encode(wstate *s, task *t, const ev_batch *b, uint32_t r, uint32_t *len)
{
	const window_conf *c = s->c;
	size_t n = 0;
	expr_scratch *sc = task_scratch(t);
	for (uint32_t k = 0; k < c->nkeys; k++) {
		int f = s->keyf[k];
		ev_val v = f >= 0 ? batch_get_val(b, r, (uint32_t)f) : expr_eval(c->keys[k], b, r, sc);
		size_t need = n + 1 + 8 + (v.type == EV_STRING ? v.s.len : 0);
		if (key_reserve(s, need) != EDDY_OK)
			return EDDY_ENOMEM;
		s->kbuf[n++] = (char)v.type;
		switch (v.type) {
		case EV_NULL:
			break;
		case EV_STRING:
			memcpy(s->kbuf + n, &v.s.len, 4);
			memcpy(s->kbuf + n + 4, v.s.p, v.s.len);
			n += 4 + v.s.len;
			break;
		case EV_BOOL: {
			int64_t x = v.b;
			memcpy(s->kbuf + n, &x, 8);
			n += 8;
			break;
		}
		case EV_FLOAT: {
			double d = v.f == 0.0 ? 0.0 : v.f;
			memcpy(s->kbuf + n, &d, 8);
			n += 8;
			break;
		}
		default:
			memcpy(s->kbuf + n, &v.i, 8);
			n += 8;
		}
	}
	*len = (uint32_t)n;
	return EDDY_OK;
}

/* key_decode writes the key values of e into out's fields [2, 2 + nkeys). */
static eddy_err key_decode(const wentry *e, ev_batch *out, uint32_t o, uint32_t nkeys)
{
	const char *p = e->key;
	for (uint32_t k = 0; k < nkeys; k++) {
		ev_val v = { .type = (ev_type)*p++ };
		switch (v.type) {
		case EV_NULL:
			break;
		case EV_STRING:
			memcpy(&v.s.len, p, 4);
			v.s.p = p + 4;
			p += 4 + v.s.len;
			break;
		case EV_BOOL: {
			int64_t x;
			memcpy(&x, p, 8);
			v.b = x != 0;
			p += 8;
			break;
		}
		case EV_FLOAT:
			memcpy(&v.f, p, 8);
			p += 8;
			break;
		default:
			memcpy(&v.i, p, 8);
			p += 8;
		}
		eddy_err err = batch_set_val(out, o, 2 + k, v);
		if (err != EDDY_OK)
			return err;
	}
	return EDDY_OK;
}

/* ---- aggregates ---- */

static int val_cmp(ev_type t, const acc *a, ev_val v)
{
	switch (t) {
	case EV_FLOAT:
		return a->f < v.f ? -1 : a->f > v.f;
	case EV_STRING: {
		uint32_t n = a->slen < v.s.len ? a->slen : v.s.len;
		int c = memcmp(a->s, v.s.p, n);
		return c ? c : (a->slen > v.s.len) - (a->slen < v.s.len);
	}
	case EV_BOOL:
		return (int)(a->i != 0) - (int)v.b;
	default:
		return a->i < v.i ? -1 : a->i > v.i;
	}
}

static eddy_err acc_set(acc *a, ev_type t, ev_val v)
{
	switch (t) {
	case EV_FLOAT:
		a->f = v.type == EV_INT ? (double)v.i : v.f;
		return EDDY_OK;
	case EV_STRING: {
		char *s = rt_realloc(a->s, v.s.len ? v.s.len : 1);
		if (s == NULL)
			return EDDY_ENOMEM;
		memcpy(s, v.s.p, v.s.len);
		a->s = s;
		a->slen = v.s.len;
		return EDDY_OK;
	}
	case EV_BOOL:
		a->i = v.b;
		return EDDY_OK;
	default:
		a->i = v.i;
		return EDDY_OK;
	}
}

static eddy_err acc_add(task *t, const agg_spec *g, acc *a, ev_val v, int64_t ts)
{
	if (g->fn == AGG_COUNT) {
		if (g->arg == NULL || v.type != EV_NULL)
			a->n++;
		return EDDY_OK;
	}
	if (v.type == EV_NULL)
		return EDDY_OK;
	switch (g->fn) {
	case AGG_SUM:
	case AGG_AVG:
		if (g->type == EV_FLOAT) {
			a->f += v.f;
		} else if (__builtin_add_overflow(a->i, v.i, &a->i)) {
			return task_fail(t, "%s overflows a 64-bit integer",
			                 g->fn == AGG_SUM ? "sum" : "avg");
		}
		a->n++;
		return EDDY_OK;
	case AGG_MIN:
	case AGG_MAX:
		if (a->n++ == 0)
			return acc_set(a, g->type, v);
		if ((g->fn == AGG_MIN) == (val_cmp(g->type, a, v) > 0))
			return acc_set(a, g->type, v);
		return EDDY_OK;
	case AGG_FIRST:
		if (a->n++ == 0 || ts < a->ts) {
			a->ts = ts;
			return acc_set(a, g->type, v);
		}
		return EDDY_OK;
	case AGG_LAST:
		if (a->n++ == 0 || ts >= a->ts) {
			a->ts = ts;
			return acc_set(a, g->type, v);
		}
		return EDDY_OK;
	default:
		return EDDY_OK;
	}
}

static ev_val acc_val(const agg_spec *g, const acc *a)
{
	ev_val v = { .type = EV_NULL };
	if (g->fn == AGG_COUNT) {
		v.type = EV_INT;
		v.i = a->n;
		return v;
	}
	if (a->n == 0)
		return v;
	if (g->fn == AGG_AVG) {
		v.type = EV_FLOAT;
		v.f = g->type == EV_FLOAT ? a->f / (double)a->n : (double)a->i / (double)a->n;
		return v;
	}
	v.type = g->type;
	switch (g->type) {
	case EV_FLOAT:
		v.f = a->f;
		break;
	case EV_STRING:
		v.s.p = a->s;
		v.s.len = a->slen;
		break;
	case EV_BOOL:
		v.b = a->i != 0;
		break;
	default:
		v.i = a->i;
	}
	return v;
}

/* acc_merge folds src into dst (session windows). */
static eddy_err acc_merge(task *t, const agg_spec *g, acc *dst, const acc *src)
{
	if (src->n == 0)
		return EDDY_OK;
	if (g->fn == AGG_COUNT) {
		dst->n += src->n;
		return EDDY_OK;
	}
	if (g->fn == AGG_SUM || g->fn == AGG_AVG) {
		if (g->type == EV_FLOAT)
			dst->f += src->f;
		else if (__builtin_add_overflow(dst->i, src->i, &dst->i))
			return task_fail(t, "sum overflows a 64-bit integer");
		dst->n += src->n;
		return EDDY_OK;
	}
	ev_val v = acc_val(g, src);
	int64_t n = dst->n;
	eddy_err err = EDDY_OK;
	bool take = n == 0;
	if (!take) {
		if (g->fn == AGG_MIN)
			take = val_cmp(g->type, dst, v) > 0;
		else if (g->fn == AGG_MAX)
			take = val_cmp(g->type, dst, v) < 0;
		else if (g->fn == AGG_FIRST)
			take = src->ts < dst->ts;
		else
			take = src->ts >= dst->ts;
	}
	if (take) {
		dst->ts = src->ts;
		err = acc_set(dst, g->type, v);
	}
	dst->n = n + src->n;
	return err;
}

/* ---- output ---- */

static eddy_err emit_out(task *t, wstate *s)
{
	if (s->out == NULL || s->out->n == 0)
		return EDDY_OK;
	ev_batch *b = s->out;
	s->out = NULL;
	return task_emit(t, 0, b);
}

static eddy_err emit_row(task *t, wstate *s, wentry *e, int64_t start, int64_t end)
{
	const window_conf *c = s->c;
	if (s->out && batch_full(s->out)) {
		eddy_err err = emit_out(t, s);
		if (err != EDDY_OK)
			return err;
	}
	if (s->out == NULL && (s->out = task_new_batch(t, c->out)) == NULL)
		return EDDY_ENOMEM;
	ev_batch *o = s->out;
	uint32_t r = batch_append_row(o);
	o->ts[r] = end - 1;
	batch_set_int(o, r, 0, start);
	batch_set_int(o, r, 1, end);
	eddy_err err = key_decode(e, o, r, c->nkeys);
	for (uint32_t a = 0; a < c->naggs && err == EDDY_OK; a++)
		err = batch_set_val(o, r, 2 + c->nkeys + a, acc_val(&c->aggs[a], &e->accs[a]));
	return err;
}

static eddy_err late_row(task *t, wstate *s, const ev_batch *b, uint32_t r)
{
	if (!s->c->has_late_output) {
		atomic_fetch_add_explicit(&task_stats(t)->late_dropped, 1, memory_order_relaxed);
		return EDDY_OK;
	}
	if (s->late && batch_full(s->late)) {
		ev_batch *l = s->late;
		s->late = NULL;
		eddy_err err = task_emit(t, 1, l);
		if (err != EDDY_OK)
			return err;
	}
	if (s->late == NULL && (s->late = task_new_batch(t, b->schema)) == NULL)
		return EDDY_ENOMEM;
	return batch_copy_row(s->late, b, r);
}

/* ---- processing ---- */

static eddy_err update(task *t, wstate *s, wentry *e, const ev_batch *b, uint32_t r)
{
	const window_conf *c = s->c;
	int64_t ts = b->ts[r];
	expr_scratch *sc = task_scratch(t);
	for (uint32_t a = 0; a < c->naggs; a++) {
		const agg_spec *g = &c->aggs[a];
		acc *x = &e->accs[a];
		int f = s->argf[a];
		if (g->arg == NULL) { /* count() */
			x->n++;
			continue;
		}
		if (f >= 0 && g->type == EV_INT && g->fn <= AGG_AVG) { /* an int field: inline */
			if (batch_is_null(b, r, (uint32_t)f))
				continue;
			int64_t v = batch_get_int(b, r, (uint32_t)f);
			switch (g->fn) {
			case AGG_COUNT:
				break;
			case AGG_MIN:
				if (x->n == 0 || v < x->i)
					x->i = v;
				break;
			case AGG_MAX:
				if (x->n == 0 || v > x->i)
					x->i = v;
				break;
			default: /* sum, avg */
				if (__builtin_add_overflow(x->i, v, &x->i))
					return task_fail(t, "%s overflows a 64-bit integer",
					                 g->fn == AGG_SUM ? "sum" : "avg");
			}
			x->n++;
			continue;
		}
		ev_val v = { .type = EV_NULL };
		{
			v = f >= 0 ? batch_get_val(b, r, (uint32_t)f) : expr_eval(g->arg, b, r, sc);
			if (g->type == EV_FLOAT && v.type == EV_INT) {
				v.type = EV_FLOAT;
				v.f = (double)v.i;
			}
		}
		eddy_err err = acc_add(t, g, x, v, ts);
		if (err != EDDY_OK)
			return err;
	}
	if (ts < e->min_ts)
		e->min_ts = ts;
	if (ts > e->max_ts)
		e->max_ts = ts;
	e->records++;
	return EDDY_OK;
}

/* add_to_window adds record r to window [start, end) of the key. */
static eddy_err add_to_window(task *t, wstate *s, uint64_t kh, uint32_t klen, int64_t start,
                              int64_t end, const ev_batch *b, uint32_t r)
{
	wentry *e = entry_find(s, kh, s->kbuf, klen, start);
	if (e == NULL) {
		if ((e = entry_new(s, kh, s->kbuf, klen, start, end)) == NULL)
			return EDDY_ENOMEM;
		eddy_err err = heap_push(s, end - 1, e);
		if (err != EDDY_OK)
			return err;
	}
	eddy_err err = update(t, s, e, b, r);
	if (err == EDDY_OK && e->fired) /* a late record within the allowed lateness */
		err = emit_row(t, s, e, e->start, e->end);
	return err;
}

static eddy_err add_to_session(task *t, wstate *s, uint64_t kh, uint32_t klen,
                               const ev_batch *b, uint32_t r)
{
	const window_conf *c = s->c;
	int64_t ts = b->ts[r];
	int64_t start = ts, end = ts + c->gap_ms;
	wentry *into = NULL;
	bool changed = false;
	if (s->nbuckets) {
		uint64_t h = entry_hash(c, kh, 0);
		wentry *e = s->buckets[h & (s->nbuckets - 1)], *next;
		for (; e; e = next) {
			next = e->next;
			if (e->hash != h || e->key_len != klen || memcmp(e->key, s->kbuf, klen) != 0)
				continue;
			if (!(e->start <= end && e->end >= start))
				continue;
			if (into == NULL) {
				into = e;
				changed = start < e->start || end > e->end;
				start = start < e->start ? start : e->start;
				end = end > e->end ? end : e->end;
				continue;
			}
			/* a second intersecting session: merge e into `into` */
			for (uint32_t a = 0; a < c->naggs; a++) {
				eddy_err err = acc_merge(t, &c->aggs[a], &into->accs[a], &e->accs[a]);
				if (err != EDDY_OK)
					return err;
			}
			into->records += e->records;
			into->fired = into->fired || e->fired;
			start = start < e->start ? start : e->start;
			end = end > e->end ? end : e->end;
			changed = true;
			table_unlink(s, e);
			release(s, e);
		}
	}
	if (into == NULL) {
		if ((into = entry_new(s, kh, s->kbuf, klen, start, end)) == NULL)
			return EDDY_ENOMEM;
		changed = true;
	}
	into->start = start;
	into->end = end;
	if (changed) {
		into->gen++;
		eddy_err err = heap_push(s, end - 1, into);
		if (err != EDDY_OK)
			return err;
	}
	eddy_err err = update(t, s, into, b, r);
	if (err == EDDY_OK && into->fired)
		err = emit_row(t, s, into, into->start, into->end);
	return err;
}

static eddy_err add_to_count(task *t, wstate *s, uint64_t kh, uint32_t klen,
                             const ev_batch *b, uint32_t r)
{
	wentry *e = entry_find(s, kh, s->kbuf, klen, 0);
	if (e == NULL && (e = entry_new(s, kh, s->kbuf, klen, 0, 0)) == NULL)
		return EDDY_ENOMEM;
	eddy_err err = update(t, s, e, b, r);
	if (err == EDDY_OK && e->records >= s->c->count) {
		err = emit_row(t, s, e, e->min_ts, e->max_ts + 1);
		table_unlink(s, e);
		release(s, e);
	}
	return err;
}

static eddy_err window_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	(void)input;
	wstate *s = state;
	const window_conf *c = s->c;
	eddy_err err = EDDY_OK;
	int64_t late_bound = s->wm == WM_MIN ? WM_MIN : s->wm - c->lateness_ms;
	for (uint32_t r = 0; r < b->n && err == EDDY_OK; r++) {
		expr_scratch_reset(task_scratch(t));
		uint32_t klen;
		if ((err = key_encode(s, t, b, r, &klen)) != EDDY_OK)
			break;
		uint64_t kh = XXH3_64bits(s->kbuf, klen);
		int64_t ts = b->ts[r];
		switch (c->kind) {
		case WIN_TUMBLING: {
			int64_t start = ts - floor_mod(ts, c->size_ms);
			if (start + c->size_ms - 1 <= late_bound)
				err = ts <= late_bound ? late_row(t, s, b, r) : EDDY_OK;
			else
				err = add_to_window(t, s, kh, klen, start, start + c->size_ms, b, r);
			break;
		}
		case WIN_SLIDING: {
			bool assigned = false;
			int64_t last = ts - floor_mod(ts, c->slide_ms);
			for (int64_t st = last; st > ts - c->size_ms && err == EDDY_OK;
			     st -= c->slide_ms) {
				if (st + c->size_ms - 1 <= late_bound)
					continue;
				assigned = true;
				err = add_to_window(t, s, kh, klen, st, st + c->size_ms, b, r);
			}
			if (err == EDDY_OK && !assigned && ts <= late_bound)
				err = late_row(t, s, b, r);
			break;
		}
		case WIN_SESSION:
			if (ts + c->gap_ms - 1 <= late_bound)
				err = ts <= late_bound ? late_row(t, s, b, r) : EDDY_OK;
			else
				err = add_to_session(t, s, kh, klen, b, r);
			break;
		case WIN_COUNT:
			err = add_to_count(t, s, kh, klen, b, r);
			break;
		}
	}
	batch_free(b);
	if (err == EDDY_OK && s->late && s->late->n) {
		ev_batch *l = s->late;
		s->late = NULL;
		err = task_emit(t, 1, l);
	}
	if (err == EDDY_OK)
		err = emit_out(t, s); /* late firings */
	publish_size(t, s);
	return err;
}

static eddy_err window_watermark(task *t, void *state, int64_t wm)
{
	wstate *s = state;
	const window_conf *c = s->c;
	s->wm = wm;
	eddy_err err = EDDY_OK;
	while (s->nheap > 0 && s->heap[0].time <= wm && err == EDDY_OK) {
		hitem it = heap_pop(s);
		wentry *e = it.e;
		e->heap_refs--;
		if (e->dead || it.gen != e->gen) {
			release(s, e);
			continue;
		}
		if (!e->fired) {
			err = emit_row(t, s, e, e->start, e->end);
			e->fired = true;
			if (c->lateness_ms > 0 && wm != WM_MAX && e->end - 1 + c->lateness_ms > wm) {
				if (err == EDDY_OK)
					err = heap_push(s, e->end - 1 + c->lateness_ms, e);
				continue;
			}
		}
		table_unlink(s, e);
		release(s, e);
	}
	if (err == EDDY_OK)
		err = emit_out(t, s);
	publish_size(t, s);
	return err;
}

static eddy_err window_open(task *t, void **state)
{
	wstate *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	s->c = task_node_of(t)->conf;
	s->wm = WM_MIN;
	for (uint32_t a = 0; a < s->c->naggs; a++)
		s->argf[a] = s->c->aggs[a].arg ? expr_field(s->c->aggs[a].arg) : -1;
	for (uint32_t k = 0; k < s->c->nkeys; k++)
		s->keyf[k] = expr_field(s->c->keys[k]);
	*state = s;
	/* kbuf is never NULL, also for a global window's empty key */
	return key_reserve(s, 256);
}

static void window_close(task *t, void *state)
{
	(void)t;
	wstate *s = state;
	if (s == NULL)
		return;
	/* entries already unlinked (dead) live until their last heap item goes */
	for (size_t i = 0; i < s->nheap; i++) {
		wentry *e = s->heap[i].e;
		if (e->dead && --e->heap_refs == 0)
			entry_free(s->c, e);
	}
	for (uint64_t i = 0; i < s->nbuckets; i++)
		for (wentry *e = s->buckets[i], *next; e; e = next) {
			next = e->next;
			entry_free(s->c, e);
		}
	rt_free(s->buckets);
	rt_free(s->heap);
	rt_free(s->kbuf);
	batch_free(s->out);
	batch_free(s->late);
	rt_free(s);
}

/* ---- checkpoints ----
 * The snapshot: {"v": 1, "wm": W, "entries": [[khash, key, start, end, min_ts, max_ts,
 * records, fired, [[bits, n, ts, str|nil], ...]], ...]} — every live (key, window) entry
 * with its accumulators (bits: the int64 or the double's bits). The firing heap is
 * rebuilt from it on restore. */

static eddy_err window_snapshot(task *t, void *state, uint64_t id, msgpack_packer *pk)
{
	(void)t, (void)id;
	wstate *s = state;
	const window_conf *c = s->c;
	msgpack_pack_map(pk, 3);
	msgpack_pack_str_with_body(pk, "v", 1);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_str_with_body(pk, "wm", 2);
	msgpack_pack_int64(pk, s->wm);
	msgpack_pack_str_with_body(pk, "entries", 7);
	msgpack_pack_array(pk, (size_t)s->nentries);
	for (uint64_t b = 0; b < s->nbuckets; b++)
		for (const wentry *e = s->buckets[b]; e; e = e->next) {
			msgpack_pack_array(pk, 9);
			msgpack_pack_uint64(pk, e->khash);
			msgpack_pack_bin_with_body(pk, e->key, e->key_len);
			msgpack_pack_int64(pk, e->start);
			msgpack_pack_int64(pk, e->end);
			msgpack_pack_int64(pk, e->min_ts);
			msgpack_pack_int64(pk, e->max_ts);
			msgpack_pack_int64(pk, e->records);
			if (e->fired)
				msgpack_pack_true(pk);
			else
				msgpack_pack_false(pk);
			msgpack_pack_array(pk, c->naggs);
			for (uint32_t a = 0; a < c->naggs; a++) {
				const acc *x = &e->accs[a];
				msgpack_pack_array(pk, 4);
				msgpack_pack_int64(pk, x->i);
				msgpack_pack_int64(pk, x->n);
				msgpack_pack_int64(pk, x->ts);
				if (x->s)
					msgpack_pack_bin_with_body(pk, x->s, x->slen);
				else
					msgpack_pack_nil(pk);
			}
		}
	return EDDY_OK;
}

/* key_values decodes an encoded key (key_encode) into vals; false if it is malformed. */
static bool key_values(const char *p, uint32_t len, uint32_t nkeys, ev_val *vals)
{
	const char *end = p + len;
	for (uint32_t k = 0; k < nkeys; k++) {
		if (p >= end)
			return false;
		ev_val v = { .type = (ev_type)(unsigned char)*p++ };
		if (v.type == EV_STRING) {
			uint32_t sl;
			if (end - p < 4)
				return false;
			memcpy(&sl, p, 4);
			if ((uint32_t)(end - p - 4) < sl)
				return false;
			v.s.p = p + 4;
			v.s.len = sl;
			p += 4 + sl;
		} else if (v.type != EV_NULL) {
			if (end - p < 8)
				return false;
			if (v.type == EV_FLOAT)
				memcpy(&v.f, p, 8);
			else if (v.type == EV_BOOL) {
				int64_t x;
				memcpy(&x, p, 8);
				v.b = x != 0;
			} else
				memcpy(&v.i, p, 8);
			p += 8;
		}
		vals[k] = v;
	}
	return p == end;
}

/* restore_entry rebuilds one entry and its place in the firing heap (when the job was
 * rescaled: only if its key is now this subtask's). */
static eddy_err restore_entry(task *t, wstate *s, const msgpack_object *o)
{
	const window_conf *c = s->c;
	const msgpack_object *f = o->via.array.ptr;
	int64_t khash, start, end, min_ts, max_ts, records;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 9 || !mp_int(&f[0], &khash) ||
	    f[1].type != MSGPACK_OBJECT_BIN || !mp_int(&f[2], &start) || !mp_int(&f[3], &end) ||
	    !mp_int(&f[4], &min_ts) || !mp_int(&f[5], &max_ts) || !mp_int(&f[6], &records) ||
	    f[7].type != MSGPACK_OBJECT_BOOLEAN || f[8].type != MSGPACK_OBJECT_ARRAY ||
	    f[8].via.array.size != c->naggs)
		return task_fail(t, "window: a checkpoint entry has the wrong shape");
	if (task_rescaled(t)) {
		ev_val keys[EV_MAX_FIELDS];
		if (!key_values(f[1].via.bin.ptr, f[1].via.bin.size, c->nkeys, keys))
			return task_fail(t, "window: a checkpoint entry has a malformed key");
		if (!task_owns_key(t, keys, c->nkeys))
			return EDDY_OK; /* another subtask's key group now */
	}
	wentry *e = entry_new(s, (uint64_t)khash, f[1].via.bin.ptr, f[1].via.bin.size, start, end);
	if (e == NULL)
		return EDDY_ENOMEM;
	e->min_ts = min_ts;
	e->max_ts = max_ts;
	e->records = records;
	e->fired = f[7].via.boolean;
	for (uint32_t a = 0; a < c->naggs; a++) {
		const msgpack_object *x = &f[8].via.array.ptr[a];
		const msgpack_object *xf = x->via.array.ptr;
		acc *ac = &e->accs[a];
		if (x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size != 4 || !mp_int(&xf[0], &ac->i) ||
		    !mp_int(&xf[1], &ac->n) || !mp_int(&xf[2], &ac->ts) ||
		    (xf[3].type != MSGPACK_OBJECT_BIN && xf[3].type != MSGPACK_OBJECT_NIL))
			return task_fail(t, "window: a checkpoint accumulator has the wrong shape");
		if (xf[3].type == MSGPACK_OBJECT_BIN) {
			if ((ac->s = rt_malloc(xf[3].via.bin.size ? xf[3].via.bin.size : 1)) == NULL)
				return EDDY_ENOMEM;
			memcpy(ac->s, xf[3].via.bin.ptr, xf[3].via.bin.size);
			ac->slen = xf[3].via.bin.size;
		}
	}
	if (c->kind == WIN_COUNT)
		return EDDY_OK; /* count windows fire on records, not on time */
	return heap_push(s, e->fired ? end - 1 + c->lateness_ms : end - 1, e);
}

static eddy_err window_restore(task *t, void *state, const msgpack_object *o)
{
	wstate *s = state;
	const msgpack_object *v = o ? mp_get(o, "v") : NULL, *wm = o ? mp_get(o, "wm") : NULL;
	const msgpack_object *es = o ? mp_get(o, "entries") : NULL;
	int64_t w;
	if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 1 ||
	    wm == NULL || !mp_int(wm, &w) || es == NULL || es->type != MSGPACK_OBJECT_ARRAY)
		return task_fail(t, "window: the checkpoint holds no window state of version 1");
	if (!task_rescaled(t) || s->restored == 0 || w < s->wm)
		s->wm = w; /* rescaled: the lowest of the old subtasks' */
	s->restored++;
	for (uint32_t i = 0; i < es->via.array.size; i++) {
		eddy_err err = restore_entry(t, s, &es->via.array.ptr[i]);
		if (err != EDDY_OK)
			return err;
	}
	publish_size(t, s);
	return EDDY_OK;
}

const op_def window_op = {
	.type = "window",
	.open = window_open,
	.process = window_process,
	.snapshot = window_snapshot,
	.restore = window_restore,
	.rescalable = true,
	.watermark = window_watermark,
	.close = window_close,
};
