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
 *    smallest event time and the largest + 1 ms of its records;
 *  - global windows (Flink's GlobalWindows) hold every record of a key and fire once,
 *    when the watermark reaches +inf at the end of the input (a timer at WM_MAX), with
 *    window_start/window_end as a count window's; nothing is late for them. This is
 *    the final result of a non-windowed GROUP BY over a bounded input (Nexmark q4).
 *
 * State lives in the task's keyed state (include/eddy/state.h, memory or LevelDB backend),
 * so checkpoints snapshot it asynchronously and a restore at another parallelism
 * redistributes it by key group. As Flink's WindowOperator, the window is the namespace:
 *  - "acc" (value state, namespace = the window's start, 8 bytes; a session's own id;
 *    empty for count and global windows): a fixed-size record, whdr then one accf per aggregate,
 *    changed in place (ev_value_ref: one lookup per record and window);
 *  - "s<i>" (value state, same namespace): the string of aggregate i when it is a
 *    min/max/first/last of a string;
 *  - "sessions" (value state, empty namespace; session windows): the key's open
 *    sessions as {start, end, id} triples (Flink's MergingWindowSet);
 *  - event-time timers (key, namespace) at end - 1 (fire) and end - 1 + lateness (purge).
 * A tumbling window, or a sliding one whose size is a multiple of its slide, without
 * allowed lateness and string aggregates keeps *panes* instead (as Flink SQL's slicing
 * window aggregates), with no timers:
 *  - "panes" (value state, namespace = the pane's start, 8 bytes): a pane is a slide-long
 *    slice [start, start + slide) of time; its value is a whdr and its accfs (as "acc").
 *    A batch's records are aggregated per (key, pane) in a table that gathers batches
 *    until a window fires, a checkpoint is taken or 65,536 groups wait (a mini-batch,
 *    as Flink SQL's), then each group is merged into its pane: one state access per
 *    group. Window [E - size, E) is the merge of the panes in it. When the watermark passes the
 *    end - 1 of one or more windows, a walk over every pane (ev_state_entries) merges each
 *    into the windows it is in that have just passed, those windows are emitted, and the
 *    panes of no later window are removed.
 */
#include "ops.h"

#include "../runtime/alloc.h"
#include "../runtime/mp.h"

#include <eddy/state.h>
#include <string.h>
#include <xxhash.h>

/* The fixed part of a window's state (stored unaligned: copied in and out). */
typedef struct whdr {
	int64_t start, end;
	int64_t min_ts, max_ts, records;
	int64_t fired;
} whdr;

/* One aggregate's accumulator (strings: the value is in state "s<i>"). */
typedef struct accf {
	union {
		int64_t i;
		double f;
	};
	int64_t n;  /* values aggregated (non-null) */
	int64_t ts; /* first/last: event time of the value kept */
} accf;

/* A session: [start, end) and the namespace its state lives in. */
typedef struct sess {
	int64_t start, end, id;
} sess;

typedef struct wstate {
	const window_conf *c;
	ev_state *st;
	ev_state_id acc_id, sess_id;
	ev_state_id str_id[EV_MAX_FIELDS]; /* per aggregate with a string value */
	bool is_str[EV_MAX_FIELDS];
	bool any_str;
	size_t vlen;          /* sizeof(whdr) + naggs * sizeof(accf) */
	whdr *h;              /* the working copy of one window's state (aligned) */
	accf *a;              /* its accumulators (after h) */
	whdr *h2;             /* a second one (merging sessions) */
	accf *a2;
	sess *sess;           /* the current key's sessions */
	size_t nsess, sess_cap;
	char *sbuf;           /* a string copied out of the state */
	size_t scap;
	int64_t wm;
	uint32_t restored;    /* snapshots restored (several when rescaled) */
	uint32_t batches;     /* to publish the state size now and then */
	ev_batch *out, *late;
	char *kbuf;
	size_t kcap;
	uint32_t klen, kg;    /* the current key */
	int argf[EV_MAX_FIELDS];  /* per aggregate: its argument's field, or -1 */
	int keyf[EV_MAX_FIELDS];  /* per key: its field, or -1 */
	bool keys_are_fields;     /* every key is a field (key_encode's fast path) */
	ev_val kvals[EV_MAX_FIELDS]; /* the current record's key values */
	/* per-batch pre-aggregation (tumbling, sliding): one group per (key, window) */
	uint32_t *slots;      /* open addressing: group index + 1, 0 empty */
	size_t nslots;        /* this batch's table: a power of two, at most slots_cap */
	size_t slots_cap;
	struct wgroup *groups;
	uint32_t ngroups;
	size_t gcap;
	char *garena;         /* the groups' keys */
	size_t garena_len, garena_cap;
	uint8_t *gvals;       /* the groups' working copies, vlen bytes each (aligned) */
	size_t gvcap;
	/* panes (see "panes" below) */
	bool panes; /* this window keeps panes */
	bool pending; /* groups holds (key, pane) groups not yet merged into their panes */
	ev_state_id panes_id;
	int64_t step;      /* a pane's length: the slide (tumbling: the size) */
	int64_t crossed;   /* the end of the last window the watermark passed */
	size_t scan_groups; /* windows fired by the last scan (its table's size) */
	int64_t *carry;    /* a scan's groups: per aggregate, the wraps of an int sum */
	size_t ncarry, carrycap; /* groups whose carries are set */
	struct pref *gone; /* a scan's panes to remove (keys in gone_keys) */
	size_t ngone, gonecap;
	char *gone_keys;
	size_t gklen, gkcap;
	/* LevelDB: a walk reads every version of its keys still in the memtable, so on
	 * LevelDB the window keeps its own list of panes (as the timers it replaces were kept
	 * in memory); after a restore, not known until a scan walked them */
	bool own_panes, panes_known;
	struct pref *own;
	size_t nown, owncap;
	char *own_keys;
	size_t oklen, okcap;
} wstate;

/* A pane by reference: its key's bytes (at off in an arena), key group and start. */
typedef struct pref {
	size_t off;
	uint32_t len, kg;
	int64_t start;
} pref;

/* One (key, window) of a batch — or, for a sliding window, one (key, slice): the rows of
 * one slide-long slice of time, which belong to the same size/slide windows — and its
 * rows' aggregates so far (a window found fired already takes its rows one by one: each
 * re-fires it). */
typedef struct wgroup {
	uint64_t hash;
	size_t koff;
	uint32_t klen, kg;
	int64_t start; /* the window's start, or the slice's */
	bool slice;
} wgroup;

static int64_t floor_mod(int64_t a, int64_t b)
{
	int64_t m = a % b;
	return m < 0 ? m + b : m;
}

/* sfail turns a keyed-state error into the task's failure. */
static eddy_err sfail(task *t, wstate *s, eddy_err e, const char *what)
{
	if (e == EDDY_ENOMEM)
		return e;
	return task_fail(t, "window: %s: %s", what, ev_state_errmsg(s->st));
}

/* ---- keys: a canonical byte encoding of the key values ---- */

static eddy_err key_reserve(wstate *s, size_t need)
{
	return rt_grow((void **)&s->kbuf, &s->kcap, need, 1, 256);
}

/* key_encode writes row r's key into kbuf (s->klen) and its values into kvals: per
 * value its type byte, then 8 bytes (int, timestamp, float bits, bool) or a 4-byte length
 * and the bytes (string). */
static eddy_err key_encode_fields(wstate *s, const ev_batch *b, uint32_t r);

static eddy_err key_encode(wstate *s, task *t, const ev_batch *b, uint32_t r)
{
	const window_conf *c = s->c;
	if (s->keys_are_fields)
		return key_encode_fields(s, b, r);
	expr_scratch *sc = task_scratch(t);
	ev_val *vals = s->kvals;
	size_t need = 0;
	for (uint32_t k = 0; k < c->nkeys; k++) {
		int f = s->keyf[k];
		ev_val v = f >= 0 ? batch_get_val(b, r, (uint32_t)f) : expr_eval(c->keys[k], b, r, sc);
		vals[k] = v;
		need += 9 + (v.type == EV_STRING ? v.s.len : 0);
	}
	if (need > s->kcap && key_reserve(s, need) != EDDY_OK)
		return EDDY_ENOMEM;
	char *p = s->kbuf;
	for (uint32_t k = 0; k < c->nkeys; k++) {
		ev_val v = vals[k];
		*p++ = (char)v.type;
		if (v.type == EV_STRING) {
			memcpy(p, &v.s.len, 4);
			memcpy(p + 4, v.s.p, v.s.len);
			p += 4 + v.s.len;
		} else if (v.type != EV_NULL) {
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
	}
	s->klen = (uint32_t)(p - s->kbuf);
	return EDDY_OK;
}

/* key_encode_fields is key_encode when every key is a field: one pass over the record's
 * slots (the same bytes; kvals filled too). */
static eddy_err key_encode_fields(wstate *s, const ev_batch *b, uint32_t r)
{
	uint32_t nk = s->c->nkeys;
	uint64_t nulls = b->nulls[r];
	const uint64_t *slots = &b->cols[(size_t)r * b->ncols];
	size_t o = 0;
	for (uint32_t k = 0; k < nk; k++) {
		uint32_t f = (uint32_t)s->keyf[k];
		ev_val *v = &s->kvals[k];
		if ((nulls >> f) & 1u) {
			v->type = EV_NULL;
			if (o + 1 > s->kcap && key_reserve(s, o + 1) != EDDY_OK)
				return EDDY_ENOMEM;
			s->kbuf[o++] = (char)EV_NULL;
			continue;
		}
		v->type = b->schema->fields[f].type;
		uint64_t x = slots[f];
		if (v->type == EV_STRING) {
			v->s.len = (uint32_t)x;
			v->s.p = b->arena + (x >> 32);
			if (o + 5 + v->s.len > s->kcap && key_reserve(s, o + 5 + v->s.len) != EDDY_OK)
				return EDDY_ENOMEM;
			s->kbuf[o] = (char)EV_STRING;
			memcpy(s->kbuf + o + 1, &v->s.len, 4);
			memcpy(s->kbuf + o + 5, v->s.p, v->s.len);
			o += 5 + v->s.len;
			continue;
		}
		if (o + 9 > s->kcap && key_reserve(s, o + 9) != EDDY_OK)
			return EDDY_ENOMEM;
		if (v->type == EV_FLOAT) {
			memcpy(&v->f, &x, 8);
			if (v->f == 0.0) /* -0.0 and 0.0 are one key */
				x = 0;
		} else if (v->type == EV_BOOL) {
			v->b = x != 0;
			x = v->b;
		} else {
			v->i = (int64_t)x;
		}
		s->kbuf[o] = (char)v->type;
		memcpy(s->kbuf + o + 1, &x, 8);
		o += 9;
	}
	s->klen = (uint32_t)o;
	return EDDY_OK;
}

/* key_decode writes the key values of the current key (kbuf) into out's fields
 * [2, 2 + nkeys). */
static eddy_err key_decode(const wstate *s, ev_batch *out, uint32_t o)
{
	const char *p = s->kbuf;
	for (uint32_t k = 0; k < s->c->nkeys; k++) {
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

/* set_key makes the key in kbuf current; set_ns the window namespace (8 bytes, or none
 * for count windows and the sessions list). */
static eddy_err set_key(task *t, wstate *s)
{
	eddy_err e = ev_state_set_key(s->st, s->kbuf, s->klen, s->kg);
	return e ? sfail(t, s, e, "key") : EDDY_OK;
}

static eddy_err set_ns(task *t, wstate *s, const int64_t *ns)
{
	eddy_err e = ev_state_set_namespace(s->st, ns, ns ? sizeof(*ns) : 0);
	return e ? sfail(t, s, e, "namespace") : EDDY_OK;
}

/* ---- a window's state: loaded into a working copy, stored back ---- */

/* load reads the current namespace's window into h (its accumulators follow it), and
 * with take removes it (ev_value_take); *found false if none (then h is a fresh
 * window's). */
static eddy_err load(task *t, wstate *s, whdr *h, bool *found, bool take)
{
	const void *v;
	size_t len;
	eddy_err e = take ? ev_value_take(s->st, s->acc_id, &v, &len)
	                  : ev_value_get(s->st, s->acc_id, &v, &len);
	if (e == EDDY_ENOENT) {
		*found = false;
		memset(h, 0, s->vlen);
		h->min_ts = INT64_MAX;
		h->max_ts = INT64_MIN;
		return EDDY_OK;
	}
	if (e != EDDY_OK)
		return sfail(t, s, e, "reading a window");
	if (len != s->vlen)
		return task_fail(t, "window: a window's state has %zu bytes, not %zu (another "
		                 "operator's state?)", len, s->vlen);
	*found = true;
	memcpy(h, v, s->vlen);
	return EDDY_OK;
}

/* store writes (h, a) as the current namespace's window. */
static eddy_err store(task *t, wstate *s, const whdr *h)
{
	void *p;
	eddy_err e = ev_value_ref(s->st, s->acc_id, s->vlen, &p, NULL);
	if (e != EDDY_OK)
		return sfail(t, s, e, "writing a window");
	memcpy(p, h, s->vlen);
	return EDDY_OK;
}

/* clear_window removes the current namespace's window (and its strings). */
static eddy_err clear_window(task *t, wstate *s)
{
	eddy_err e = ev_state_clear(s->st, s->acc_id);
	for (uint32_t i = 0; s->any_str && i < s->c->naggs && e == EDDY_OK; i++)
		if (s->is_str[i])
			e = ev_state_clear(s->st, s->str_id[i]);
	return e ? sfail(t, s, e, "clearing a window") : EDDY_OK;
}

/* str_get: aggregate i's string in the current namespace, copied to sbuf (NULL, 0 if
 * none). */
static eddy_err str_get(task *t, wstate *s, uint32_t i, const char **p, uint32_t *len)
{
	const void *v;
	size_t n;
	eddy_err e = ev_value_get(s->st, s->str_id[i], &v, &n);
	if (e == EDDY_ENOENT) {
		*p = NULL;
		*len = 0;
		return EDDY_OK;
	}
	if (e != EDDY_OK)
		return sfail(t, s, e, "reading a string aggregate");
	if (rt_grow((void **)&s->sbuf, &s->scap, n + 1, 1, 64) != EDDY_OK)
		return EDDY_ENOMEM;
	memcpy(s->sbuf, v, n);
	*p = s->sbuf;
	*len = (uint32_t)n;
	return EDDY_OK;
}

static eddy_err str_put(task *t, wstate *s, uint32_t i, const char *p, uint32_t len)
{
	eddy_err e = ev_value_put(s->st, s->str_id[i], p, len);
	return e ? sfail(t, s, e, "writing a string aggregate") : EDDY_OK;
}

/* ---- aggregates ---- */

static bool is_str_agg(const agg_spec *g)
{
	return g->type == EV_STRING && (g->fn == AGG_MIN || g->fn == AGG_MAX ||
	                                g->fn == AGG_FIRST || g->fn == AGG_LAST);
}

static int num_cmp(ev_type t, const accf *a, ev_val v)
{
	switch (t) {
	case EV_FLOAT:
		return a->f < v.f ? -1 : a->f > v.f;
	case EV_BOOL:
		return (int)(a->i != 0) - (int)v.b;
	default:
		return a->i < v.i ? -1 : a->i > v.i;
	}
}

static int str_cmp(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	uint32_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	return c ? c : (alen > blen) - (alen < blen);
}

static void num_set(accf *a, ev_type t, ev_val v)
{
	if (t == EV_FLOAT)
		a->f = v.type == EV_INT ? (double)v.i : v.f;
	else if (t == EV_BOOL)
		a->i = v.b;
	else
		a->i = v.i;
}

/* take: whether aggregate g replaces its value (a, the current one's string cur) by v
 * at time ts (min, max, first, last). */
static bool take(const agg_spec *g, const accf *a, const char *cur, uint32_t curlen, ev_val v,
                 int64_t ts)
{
	if (a->n == 0)
		return true;
	switch (g->fn) {
	case AGG_MIN:
	case AGG_MAX: {
		int c = g->type == EV_STRING ? str_cmp(cur, curlen, v.s.p, v.s.len)
		                             : num_cmp(g->type, a, v);
		return g->fn == AGG_MIN ? c > 0 : c < 0;
	}
	case AGG_FIRST:
		return ts < a->ts;
	case AGG_LAST:
		return ts >= a->ts;
	default:
		return false;
	}
}

/* acc_add adds v (event time ts) to aggregate i of the working copy; strings go to the
 * state of the current namespace. */
static eddy_err acc_add(task *t, wstate *s, uint32_t i, accf *a, ev_val v, int64_t ts)
{
	const agg_spec *g = &s->c->aggs[i];
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
	default: { /* min, max, first, last */
		const char *cur = NULL;
		uint32_t curlen = 0;
		eddy_err e;
		if (s->is_str[i] && a->n > 0 && (g->fn == AGG_MIN || g->fn == AGG_MAX) &&
		    (e = str_get(t, s, i, &cur, &curlen)) != EDDY_OK)
			return e;
		if (take(g, a, cur, curlen, v, ts)) {
			a->ts = ts;
			if (s->is_str[i]) {
				if ((e = str_put(t, s, i, v.s.p, v.s.len)) != EDDY_OK)
					return e;
			} else {
				num_set(a, g->type, v);
			}
		}
		a->n++;
		return EDDY_OK;
	}
	}
}

/* update adds record r to the working copy (h, a) of the current namespace's window. */
static eddy_err update(task *t, wstate *s, whdr *h, accf *a, const ev_batch *b, uint32_t r)
{
	const window_conf *c = s->c;
	int64_t ts = b->ts[r];
	expr_scratch *sc = task_scratch(t);
	for (uint32_t i = 0; i < c->naggs; i++) {
		const agg_spec *g = &c->aggs[i];
		accf *x = &a[i];
		int f = s->argf[i];
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
		ev_val v = f >= 0 ? batch_get_val(b, r, (uint32_t)f) : expr_eval(g->arg, b, r, sc);
		if (g->type == EV_FLOAT && v.type == EV_INT) {
			v.type = EV_FLOAT;
			v.f = (double)v.i;
		}
		eddy_err err = acc_add(t, s, i, x, v, ts);
		if (err != EDDY_OK)
			return err;
	}
	if (ts < h->min_ts)
		h->min_ts = ts;
	if (ts > h->max_ts)
		h->max_ts = ts;
	h->records++;
	return EDDY_OK;
}

/* merge_into folds the window (sh, sa) of namespace `from` into (h, a) of namespace
 * `into` (sessions); the current namespace is `into` after. */
/* merge_hdr folds window sh's extent and counts into h. */
static void merge_hdr(whdr *h, const whdr *sh)
{
	if (sh->min_ts < h->min_ts)
		h->min_ts = sh->min_ts;
	if (sh->max_ts > h->max_ts)
		h->max_ts = sh->max_ts;
	h->records += sh->records;
	h->fired = h->fired || sh->fired;
}

static eddy_err merge_into(task *t, wstate *s, whdr *h, accf *a, const whdr *sh, const accf *sa,
                           int64_t from, int64_t into, int64_t *carry)
{
	const window_conf *c = s->c;
	for (uint32_t i = 0; i < c->naggs; i++) {
		const agg_spec *g = &c->aggs[i];
		const accf *src = &sa[i];
		accf *dst = &a[i];
		if (src->n == 0)
			continue;
		if (g->fn == AGG_COUNT) {
			dst->n += src->n;
			continue;
		}
		if (g->fn == AGG_SUM || g->fn == AGG_AVG) {
			if (g->type == EV_FLOAT) {
				dst->f += src->f;
			} else if (__builtin_add_overflow(dst->i, src->i, &dst->i)) {
				/* the wrapped sum is kept; with carry, the wraps are counted (a
				 * window merged from panes in any order overflows only if its
				 * whole sum does: carry != 0 at the end) */
				if (carry == NULL)
					return task_fail(t, "sum overflows a 64-bit integer");
				carry[i] += src->i > 0 ? 1 : -1;
			}
			dst->n += src->n;
			continue;
		}
		ev_val v = { .type = g->type };
		eddy_err e;
		if (s->is_str[i]) { /* the source's string, then the target's */
			const char *sp;
			uint32_t sl;
			if ((e = set_ns(t, s, &from)) != EDDY_OK || (e = str_get(t, s, i, &sp, &sl)) != EDDY_OK)
				return e;
			char *copy = rt_malloc(sl ? sl : 1); /* merges are rare: sessions only */
			if (copy == NULL)
				return EDDY_ENOMEM;
			memcpy(copy, sp, sl);
			const char *dp = NULL;
			uint32_t dl = 0;
			if ((e = set_ns(t, s, &into)) == EDDY_OK && dst->n > 0 &&
			    (g->fn == AGG_MIN || g->fn == AGG_MAX))
				e = str_get(t, s, i, &dp, &dl);
			v.s.p = copy;
			v.s.len = sl;
			if (e == EDDY_OK && take(g, dst, dp, dl, v, src->ts)) {
				dst->ts = src->ts;
				e = str_put(t, s, i, copy, sl);
			}
			rt_free(copy);
			if (e != EDDY_OK)
				return e;
		} else {
			if (g->type == EV_FLOAT)
				v.f = src->f;
			else if (g->type == EV_BOOL)
				v.b = src->i != 0;
			else
				v.i = src->i;
			if (take(g, dst, NULL, 0, v, src->ts)) {
				dst->ts = src->ts;
				num_set(dst, g->type, v);
			}
		}
		dst->n += src->n;
	}
	merge_hdr(h, sh);
	return s->any_str ? set_ns(t, s, &into) : EDDY_OK;
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

/* emit_row emits window [start, end) of the current key with the working copy's
 * aggregates (strings read from the current namespace). */
static eddy_err emit_row(task *t, wstate *s, const accf *a, int64_t start, int64_t end)
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
	eddy_err err = key_decode(s, o, r);
	for (uint32_t i = 0; i < c->naggs && err == EDDY_OK; i++) {
		const agg_spec *g = &c->aggs[i];
		const accf *x = &a[i];
		ev_val v = { .type = EV_NULL };
		if (g->fn == AGG_COUNT) {
			v.type = EV_INT;
			v.i = x->n;
		} else if (x->n == 0) {
			/* null */
		} else if (g->fn == AGG_AVG) {
			v.type = EV_FLOAT;
			v.f = g->type == EV_FLOAT ? x->f / (double)x->n : (double)x->i / (double)x->n;
		} else if (s->is_str[i]) {
			const char *p;
			uint32_t len;
			if ((err = str_get(t, s, i, &p, &len)) != EDDY_OK)
				break;
			v.type = EV_STRING;
			v.s.p = p ? p : "";
			v.s.len = len;
		} else {
			v.type = g->type;
			if (g->type == EV_FLOAT)
				v.f = x->f;
			else if (g->type == EV_BOOL)
				v.b = x->i != 0;
			else
				v.i = x->i;
		}
		err = batch_set_val(o, r, 2 + c->nkeys + i, v);
	}
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

static eddy_err timer_set(task *t, wstate *s, int64_t time)
{
	eddy_err e = ev_timer_register(s->st, EV_TIME_EVENT, time);
	return e ? sfail(t, s, e, "registering a timer") : EDDY_OK;
}

static eddy_err timer_del(task *t, wstate *s, int64_t time)
{
	eddy_err e = ev_timer_delete(s->st, EV_TIME_EVENT, time);
	return e ? sfail(t, s, e, "deleting a timer") : EDDY_OK;
}

/* publish_size tells the task the state's size, every 64 batches (LevelDB's estimate
 * is not free). */
static void publish_size(task *t, wstate *s, bool now)
{
	if (now || (++s->batches & 63) == 0)
		task_set_state_bytes(t, ev_state_size_bytes(s->st));
}

/* ---- processing ---- */

/* add_to_ns adds record r to the window in the current namespace (made as [start, end)
 * with a timer at end - 1 if absent: with_timer) and re-fires it if it fired already (a
 * late record within the allowed lateness). */
static eddy_err add_to_ns(task *t, wstate *s, int64_t start, int64_t end, bool with_timer,
                          const ev_batch *b, uint32_t r, whdr **out)
{
	void *p;
	bool created;
	eddy_err e = ev_value_ref(s->st, s->acc_id, s->vlen, &p, &created);
	if (e != EDDY_OK)
		return sfail(t, s, e, "writing a window");
	memcpy(s->h, p, s->vlen);
	if (created) {
		s->h->start = start;
		s->h->end = end;
		s->h->min_ts = INT64_MAX;
		s->h->max_ts = INT64_MIN;
	}
	if ((e = update(t, s, s->h, s->a, b, r)) != EDDY_OK)
		return e;
	if (s->any_str) /* the string states moved the handle on: look the window up again */
		e = store(t, s, s->h);
	else
		memcpy(p, s->h, s->vlen);
	if (e == EDDY_OK && created && with_timer)
		e = timer_set(t, s, end - 1);
	if (e == EDDY_OK && s->h->fired)
		e = emit_row(t, s, s->a, s->h->start, s->h->end);
	if (out)
		*out = s->h;
	return e;
}

static eddy_err add_to_window(task *t, wstate *s, int64_t start, int64_t end, const ev_batch *b,
                              uint32_t r)
{
	eddy_err e = set_ns(t, s, &start);
	return e ? e : add_to_ns(t, s, start, end, true, b, r, NULL);
}

/* ---- sessions (Flink's MergingWindowSet: the key's sessions in state "sessions") ---- */

static eddy_err sessions_load(task *t, wstate *s)
{
	const void *v;
	size_t len;
	eddy_err e = set_ns(t, s, NULL);
	if (e != EDDY_OK)
		return e;
	e = ev_value_get(s->st, s->sess_id, &v, &len);
	s->nsess = 0;
	if (e == EDDY_ENOENT)
		return EDDY_OK;
	if (e != EDDY_OK)
		return sfail(t, s, e, "reading sessions");
	if (len % sizeof(sess) != 0)
		return task_fail(t, "window: a key's session list has %zu bytes", len);
	size_t n = len / sizeof(sess);
	if (rt_grow((void **)&s->sess, &s->sess_cap, n, sizeof(sess), 8) != EDDY_OK)
		return EDDY_ENOMEM;
	memcpy(s->sess, v, len);
	s->nsess = n;
	return EDDY_OK;
}

static eddy_err sessions_store(task *t, wstate *s)
{
	eddy_err e = set_ns(t, s, NULL);
	if (e != EDDY_OK)
		return e;
	e = s->nsess ? ev_value_put(s->st, s->sess_id, s->sess, s->nsess * sizeof(sess))
	             : ev_state_clear(s->st, s->sess_id);
	return e ? sfail(t, s, e, "writing sessions") : EDDY_OK;
}

static eddy_err sessions_add(wstate *s, sess x)
{
	if (rt_grow((void **)&s->sess, &s->sess_cap, s->nsess + 1, sizeof(sess), 8) != EDDY_OK)
		return EDDY_ENOMEM;
	s->sess[s->nsess++] = x;
	return EDDY_OK;
}

/* drop_timers deletes the timers of window h in the current namespace. */
static eddy_err drop_timers(task *t, wstate *s, const whdr *h)
{
	eddy_err e = timer_del(t, s, h->end - 1);
	if (e == EDDY_OK && h->fired && s->c->lateness_ms > 0)
		e = timer_del(t, s, h->end - 1 + s->c->lateness_ms);
	return e;
}

static eddy_err add_to_session(task *t, wstate *s, const ev_batch *b, uint32_t r)
{
	const window_conf *c = s->c;
	int64_t ts = b->ts[r];
	int64_t start = ts, end = ts + c->gap_ms;
	eddy_err e = sessions_load(t, s);
	if (e != EDDY_OK)
		return e;
	size_t into = SIZE_MAX;
	for (size_t i = 0; i < s->nsess; i++)
		if (s->sess[i].start <= end && s->sess[i].end >= start) {
			into = i;
			break;
		}
	if (into == SIZE_MAX) { /* a new session; its id (namespace) is unique for the key */
		int64_t id = ts;
		for (bool clash = true; clash;) {
			clash = false;
			for (size_t i = 0; i < s->nsess; i++)
				clash |= s->sess[i].id == id;
			id += clash;
		}
		if ((e = sessions_add(s, (sess){ start, end, id })) != EDDY_OK ||
		    (e = sessions_store(t, s)) != EDDY_OK || (e = set_ns(t, s, &id)) != EDDY_OK)
			return e;
		return add_to_ns(t, s, start, end, true, b, r, NULL);
	}
	int64_t id = s->sess[into].id;
	bool found;
	if ((e = set_ns(t, s, &id)) != EDDY_OK || (e = load(t, s, s->h, &found, false)) != EDDY_OK)
		return e;
	if (!found)
		return task_fail(t, "window: session %lld of a key has no state", (long long)id);
	whdr old = *s->h;
	start = start < old.start ? start : old.start;
	end = end > old.end ? end : old.end;
	/* every other session the new one touches merges into this one */
	size_t keep = 0;
	for (size_t i = 0; i < s->nsess; i++) {
		sess x = s->sess[i];
		if (i == into || !(x.start <= end && x.end >= start)) {
			s->sess[keep++] = x;
			continue;
		}
		if ((e = set_ns(t, s, &x.id)) != EDDY_OK ||
		    (e = load(t, s, s->h2, &found, false)) != EDDY_OK)
			return e;
		if (found &&
		    ((e = drop_timers(t, s, s->h2)) != EDDY_OK ||
		     (e = merge_into(t, s, s->h, s->a, s->h2, s->a2, x.id, id, NULL)) != EDDY_OK ||
		     (e = set_ns(t, s, &x.id)) != EDDY_OK || (e = clear_window(t, s)) != EDDY_OK))
			return e;
		start = start < x.start ? start : x.start;
		end = end > x.end ? end : x.end;
	}
	s->nsess = keep;
	for (size_t i = 0; i < s->nsess; i++)
		if (s->sess[i].id == id) {
			s->sess[i].start = start;
			s->sess[i].end = end;
		}
	if ((e = sessions_store(t, s)) != EDDY_OK || (e = set_ns(t, s, &id)) != EDDY_OK)
		return e;
	if (start != old.start || end != old.end) {
		if ((e = drop_timers(t, s, &old)) != EDDY_OK || (e = timer_set(t, s, end - 1)) != EDDY_OK)
			return e;
	}
	s->h->start = start;
	s->h->end = end;
	if ((e = update(t, s, s->h, s->a, b, r)) != EDDY_OK || (e = store(t, s, s->h)) != EDDY_OK)
		return e;
	return s->h->fired ? emit_row(t, s, s->a, start, end) : EDDY_OK;
}

/* sessions_remove drops session id from the current key's list. */
static eddy_err sessions_remove(task *t, wstate *s, int64_t id)
{
	eddy_err e = sessions_load(t, s);
	if (e != EDDY_OK)
		return e;
	size_t keep = 0;
	for (size_t i = 0; i < s->nsess; i++)
		if (s->sess[i].id != id)
			s->sess[keep++] = s->sess[i];
	s->nsess = keep;
	return sessions_store(t, s);
}

static eddy_err add_to_count(task *t, wstate *s, const ev_batch *b, uint32_t r)
{
	whdr *h;
	eddy_err e = set_ns(t, s, NULL);
	if (e == EDDY_OK)
		e = add_to_ns(t, s, 0, 0, false, b, r, &h);
	if (e == EDDY_OK && h->records >= s->c->count) {
		e = emit_row(t, s, s->a, h->min_ts, h->max_ts + 1);
		if (e == EDDY_OK)
			e = clear_window(t, s);
	}
	return e;
}

/* add_to_global adds record r to its key's global window, made with a timer at WM_MAX
 * (the end of the input) when it is new. */
static eddy_err add_to_global(task *t, wstate *s, const ev_batch *b, uint32_t r)
{
	whdr *h;
	eddy_err e = set_ns(t, s, NULL);
	if (e == EDDY_OK)
		e = add_to_ns(t, s, 0, 0, false, b, r, &h);
	if (e == EDDY_OK && h->records == 1)
		e = timer_set(t, s, WM_MAX);
	return e;
}

/* ---- per-batch pre-aggregation (tumbling and sliding windows without string
 * aggregates): the batch's rows are first aggregated per (key, window) in a table of the
 * batch, then each group meets the keyed state once (one lookup instead of one per row);
 * a window that fired already (allowed lateness) takes its rows one by one, re-firing on
 * each as without grouping. Sums of floats may round differently (added per group). */

/* key_hash: the hash of an encoded key for the window's own tables (never stored, never
 * routed by): a key of one 8-byte value (9 bytes: its type and value) is mixed with
 * splitmix64's finalizer, any other with XXH3. */
static inline uint64_t key_hash(const char *k, uint32_t klen)
{
	if (klen != 9)
		return XXH3_64bits(k, klen);
	uint64_t x;
	memcpy(&x, k + 1, 8);
	x ^= (uint64_t)(unsigned char)k[0] << 56;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* keys_equal: a group's key is the current one (both klen bytes). */
static inline bool keys_equal(const char *a, const char *b, uint32_t klen)
{
	if (klen == 9) {
		uint64_t x, y;
		memcpy(&x, a + 1, 8);
		memcpy(&y, b + 1, 8);
		return x == y && a[0] == b[0];
	}
	return memcmp(a, b, klen) == 0;
}

static inline uint64_t group_hash(uint64_t kh, int64_t start)
{
	return kh ^ ((uint64_t)start * 0x9e3779b97f4a7c15ull);
}

/* slots_reset makes the group table of a batch n slots (a power of two), empty. */
static eddy_err slots_reset(wstate *s, size_t n)
{
	if (rt_grow((void **)&s->slots, &s->slots_cap, n, sizeof(*s->slots), 16) != EDDY_OK)
		return EDDY_ENOMEM;
	s->nslots = n;
	memset(s->slots, 0, n * sizeof(*s->slots));
	return EDDY_OK;
}

/* slots_double doubles the group table (kept at most half full) and puts the groups back. */
static eddy_err slots_double(wstate *s)
{
	eddy_err e = slots_reset(s, s->nslots * 2);
	size_t mask = s->nslots - 1;
	for (uint32_t g = 0; g < s->ngroups && e == EDDY_OK; g++) {
		size_t i = s->groups[g].hash & mask;
		while (s->slots[i] != 0)
			i = (i + 1) & mask;
		s->slots[i] = g + 1;
	}
	return e;
}

/* group_of finds or makes the group of the current key (kbuf, hash kh, key group kg;
 * UINT32_MAX: of the current record's kvals) and window start (slice: the start of a
 * slice of a sliding window). */
static eddy_err group_of(task *t, wstate *s, uint64_t kh, int64_t start, bool slice, uint32_t kg,
                         wgroup **out)
{
	uint64_t h = group_hash(kh, start) ^ slice;
	if (2 * ((size_t)s->ngroups + 1) > s->nslots && slots_double(s) != EDDY_OK)
		return EDDY_ENOMEM;
	size_t mask = s->nslots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t g = s->slots[i];
		if (g == 0) {
			size_t n = (size_t)s->ngroups + 1;
			if (rt_grow((void **)&s->groups, &s->gcap, n, sizeof(wgroup), 64) != EDDY_OK ||
			    rt_grow((void **)&s->gvals, &s->gvcap, n, s->vlen, 64) != EDDY_OK ||
			    rt_grow((void **)&s->garena, &s->garena_cap, s->garena_len + s->klen, 1,
			            4096) != EDDY_OK)
				return EDDY_ENOMEM;
			wgroup *w = &s->groups[s->ngroups];
			*w = (wgroup){
			    .hash = h,
			    .koff = s->garena_len,
			    .klen = s->klen,
			    .kg = kg != UINT32_MAX ? kg : task_key_group(t, s->kvals, s->c->nkeys),
			    .start = start,
			    .slice = slice};
			memcpy(s->garena + s->garena_len, s->kbuf, s->klen);
			s->garena_len += s->klen;
			whdr *gh = (whdr *)(s->gvals + (size_t)s->ngroups * s->vlen);
			memset(gh, 0, s->vlen);
			gh->start = start;
			gh->end = start + s->c->size_ms;
			gh->min_ts = INT64_MAX;
			gh->max_ts = INT64_MIN;
			s->slots[i] = ++s->ngroups;
			*out = w;
			return EDDY_OK;
		}
		wgroup *w = &s->groups[g - 1];
		if (w->hash == h && w->start == start && w->slice == slice && w->klen == s->klen &&
		    keys_equal(s->garena + w->koff, s->kbuf, s->klen)) {
			*out = w;
			return EDDY_OK;
		}
	}
}

/* group_add adds row r to group w's aggregates. */
static eddy_err group_add(task *t, wstate *s, wgroup *w, const ev_batch *b, uint32_t r)
{
	uint32_t gi = (uint32_t)(w - s->groups);
	whdr *gh = (whdr *)(s->gvals + (size_t)gi * s->vlen);
	return update(t, s, gh, (accf *)(gh + 1), b, r);
}

/* group_apply meets group w's window in the keyed state — a slice's: each of the
 * size/slide windows it belongs to. Its windows have not fired (their end - 1 is after
 * the watermark: process_grouped takes rows of fired windows one by one), so its rows
 * merge into one update per window. */
static eddy_err group_apply(task *t, wstate *s, wgroup *w)
{
	const window_conf *c = s->c;
	whdr *gh = (whdr *)(s->gvals + (size_t)(w - s->groups) * s->vlen);
	memcpy(s->kbuf, s->garena + w->koff, w->klen); /* kbuf holds the largest key: fits */
	s->klen = w->klen;
	s->kg = w->kg;
	eddy_err e = set_key(t, s);
	int64_t n = w->slice ? c->size_ms / c->slide_ms : 1;
	for (int64_t k = 0; k < n && e == EDDY_OK; k++) {
		int64_t start = w->slice ? w->start - k * c->slide_ms : w->start;
		void *p;
		bool created;
		if ((e = set_ns(t, s, &start)) != EDDY_OK)
			return e;
		if ((e = ev_value_ref(s->st, s->acc_id, s->vlen, &p, &created)) != EDDY_OK)
			return sfail(t, s, e, "writing a window");
		if (created) {
			memcpy(s->h, gh, s->vlen);
			s->h->start = start;
			s->h->end = start + c->size_ms;
			memcpy(p, s->h, s->vlen);
			e = timer_set(t, s, start + c->size_ms - 1);
			continue;
		}
		memcpy(s->h, p, s->vlen);
		if (s->h->fired)
			return task_fail(
			    t, "window [%lld, %lld) fired before the watermark passed its end",
			    (long long)start, (long long)(start + c->size_ms));
		if ((e = merge_into(t, s, s->h, s->a, gh, (const accf *)(gh + 1), 0, 0, NULL)) !=
		    EDDY_OK)
			return e;
		memcpy(p, s->h, s->vlen);
	}
	return e;
}

/* add_fired adds row r (key in kbuf) to window [start, start + size), which the
 * watermark has passed (within the allowed lateness): one by one, as without grouping,
 * so every row fires it again, as Flink's late firings. */
static eddy_err add_fired(task *t, wstate *s, int64_t start, const ev_batch *b, uint32_t r)
{
	s->kg = task_key_group(t, s->kvals, s->c->nkeys);
	eddy_err e = set_key(t, s);
	return e ? e : add_to_window(t, s, start, start + s->c->size_ms, b, r);
}

/* ---- panes: one entry per (key, pane), fired by a walk over them (see the top) ---- */

/* crossed_of: the end of the last window the watermark wm has passed (windows are aligned
 * to the epoch: their ends are multiples of the pane length); INT64_MIN none, INT64_MAX
 * every one (the end of the input). */
static int64_t crossed_of(const wstate *s, int64_t wm)
{
	if (wm == WM_MIN)
		return INT64_MIN;
	if (wm >= INT64_MAX - s->step)
		return INT64_MAX;
	return wm + 1 - floor_mod(wm + 1, s->step);
}

/* pref_add appends pane (key, kg, start) to a list of panes (keys in an arena). */
static eddy_err pref_add(pref **r, size_t *n, size_t *cap, char **a, size_t *alen, size_t *acap,
                         const void *key, uint32_t klen, uint32_t kg, int64_t start)
{
	if (rt_grow((void **)r, cap, *n + 1, sizeof(pref), 64) != EDDY_OK ||
	    rt_grow((void **)a, acap, *alen + klen + 1, 1, 4096) != EDDY_OK)
		return EDDY_ENOMEM;
	(*r)[(*n)++] = (pref){.off = *alen, .len = klen, .kg = kg, .start = start};
	memcpy(*a + *alen, key, klen);
	*alen += klen;
	return EDDY_OK;
}

/* pane_key makes pane reference r's key (keys in arena a) current. */
static eddy_err pane_key(task *t, wstate *s, const pref *r, const char *a)
{
	eddy_err e = key_reserve(s, r->len + 1);
	if (e != EDDY_OK)
		return e;
	memcpy(s->kbuf, a + r->off, r->len);
	s->klen = r->len;
	s->kg = r->kg;
	if ((e = set_key(t, s)) != EDDY_OK)
		return e;
	return set_ns(t, s, &r->start);
}

/* pane_add merges group w (one key's rows of one pane, of a batch) into its pane: one
 * lookup. */
static eddy_err pane_add(task *t, wstate *s, wgroup *w)
{
	whdr *gh = (whdr *)(s->gvals + (size_t)(w - s->groups) * s->vlen);
	memcpy(s->kbuf, s->garena + w->koff, w->klen); /* kbuf holds the largest key: fits */
	s->klen = w->klen;
	s->kg = w->kg;
	void *p;
	bool created;
	eddy_err e = set_key(t, s);
	if (e == EDDY_OK)
		e = set_ns(t, s, &w->start);
	if (e != EDDY_OK)
		return e;
	if ((e = ev_value_ref(s->st, s->panes_id, s->vlen, &p, &created)) != EDDY_OK)
		return sfail(t, s, e, "writing a pane");
	if (created) {
		gh->end = w->start + s->step;
		memcpy(p, gh, s->vlen);
		if (s->own_panes && s->panes_known)
			return pref_add(&s->own, &s->nown, &s->owncap, &s->own_keys, &s->oklen,
			                &s->okcap, s->kbuf, s->klen, s->kg, w->start);
		return EDDY_OK;
	}
	memcpy(s->h, p, s->vlen);
	if ((e = merge_into(t, s, s->h, s->a, gh, (const accf *)(gh + 1), 0, 0, NULL)) == EDDY_OK)
		memcpy(p, s->h, s->vlen);
	return e;
}

/* PANES_PENDING_MAX: the (key, pane) groups a window gathers over batches before it
 * merges them into their panes (panes_flush) even though no window fires. */
#define PANES_PENDING_MAX 65536u

/* panes_flush merges the pending groups — the (key, pane) aggregates of the batches since
 * the last flush (a mini-batch, as Flink SQL's mini-batch aggregation: one state access
 * per group, not per record or per batch) — into their panes. Called before a scan fires
 * windows, before a checkpoint's snapshot, and when PANES_PENDING_MAX groups wait. */
static eddy_err panes_flush(task *t, wstate *s)
{
	eddy_err e = EDDY_OK;
	for (uint32_t g = 0; g < s->ngroups && e == EDDY_OK; g++)
		e = pane_add(t, s, &s->groups[g]);
	s->ngroups = 0;
	s->garena_len = 0;
	s->pending = false; /* the table is reset before its next use */
	return e;
}

/* A scan in progress (panes_fire). */
typedef struct pscan {
	task *t;
	wstate *s;
	int64_t upto; /* the end of the last window passed now */
	bool collect; /* LevelDB after a restore: the panes that stay go to the own list */
} pscan;

/* pane_visit merges one pane into each window it is in that the watermark has just
 * passed (a group of the scan per (key, window)), and notes it for removal once no later
 * window holds it (ev_state_entries' callback: the state is not touched). The windows
 * ending at s->crossed or before fired at earlier scans, with or without it (a pane made
 * after a window passed is in none of the windows that fired without it). */
static eddy_err pane_visit(void *ctx, const ev_state_entry *en)
{
	pscan *sc = ctx;
	task *t = sc->t;
	wstate *s = sc->s;
	const int64_t size = s->c->size_ms, step = s->step;
	if (en->vlen != s->vlen || en->nslen != sizeof(int64_t))
		return task_fail(t,
		                 "window: a pane of %zu bytes in a namespace of %zu, not %zu and "
		                 "8 (another operator's state?)",
		                 en->vlen, en->nslen, s->vlen);
	memcpy(s->h2, en->v, s->vlen);
	int64_t start = s->h2->start, from = s->crossed;
	eddy_err e = key_reserve(s, en->klen + 1);
	if (e != EDDY_OK)
		return e;
	memcpy(s->kbuf, en->key, en->klen);
	s->klen = (uint32_t)en->klen;
	/* its windows end at start + step .. start + size; those after `from` up to upto
	 * fire now */
	int64_t end = start + step, last = start + size < sc->upto ? start + size : sc->upto;
	if (from != INT64_MIN && from + step > end)
		end = from + step;
	uint64_t kh = end <= last ? key_hash(s->kbuf, s->klen) : 0;
	for (; end <= last && e == EDDY_OK; end += step) {
		wgroup *w;
		if ((e = group_of(t, s, kh, end - size, false, en->kg, &w)) != EDDY_OK)
			break;
		size_t g = (size_t)(w - s->groups), na = s->c->naggs;
		if (g >= s->ncarry) { /* a new group of the scan: no wraps yet */
			if (rt_grow((void **)&s->carry, &s->carrycap, (g + 1) * na + 1,
			            sizeof(int64_t), 256) != EDDY_OK)
				return EDDY_ENOMEM;
			memset(s->carry + s->ncarry * na, 0,
			       (g + 1 - s->ncarry) * na * sizeof(int64_t));
			s->ncarry = g + 1;
		}
		whdr *gh = (whdr *)(s->gvals + g * s->vlen);
		e = merge_into(t, s, gh, (accf *)(gh + 1), s->h2, s->a2, 0, 0, s->carry + g * na);
	}
	if (e != EDDY_OK)
		return e;
	if (start <= sc->upto - size) /* its last window has passed */
		return pref_add(&s->gone, &s->ngone, &s->gonecap, &s->gone_keys, &s->gklen,
		                &s->gkcap, s->kbuf, s->klen, en->kg, start);
	if (sc->collect)
		return pref_add(&s->own, &s->nown, &s->owncap, &s->own_keys, &s->oklen, &s->okcap,
		                s->kbuf, s->klen, en->kg, start);
	return EDDY_OK;
}

/* own_visit visits the window's own list of panes (LevelDB) and keeps those that stay. */
static eddy_err own_visit(task *t, wstate *s, pscan *sc)
{
	eddy_err e = EDDY_OK;
	size_t keep = 0;
	for (size_t i = 0; i < s->nown && e == EDDY_OK; i++) {
		const pref *r = &s->own[i];
		const void *v;
		size_t len;
		if (r->start > sc->upto - s->step) { /* in no window that passed: not read */
			s->own[keep++] = *r;
			continue;
		}
		if ((e = pane_key(t, s, r, s->own_keys)) != EDDY_OK)
			break;
		if ((e = ev_value_get(s->st, s->panes_id, &v, &len)) != EDDY_OK)
			return sfail(t, s, e, "reading a pane");
		ev_state_entry en = {s->own_keys + r->off, r->len, r->kg, &r->start,
		                     sizeof(r->start),     v,      len};
		if ((e = pane_visit(sc, &en)) == EDDY_OK && r->start > sc->upto - s->c->size_ms)
			s->own[keep++] = *r; /* stays (its key stays in the arena) */
	}
	s->nown = keep;
	/* the removed panes' keys stay in the arena: compact it once they are most of it */
	size_t live = 0;
	for (size_t i = 0; i < keep; i++)
		live += s->own[i].len;
	if (e == EDDY_OK && s->oklen > 2 * live + 4096) {
		char *a = rt_malloc(live + 1);
		if (a == NULL)
			return EDDY_ENOMEM;
		size_t o = 0;
		for (size_t i = 0; i < keep; i++) {
			memcpy(a + o, s->own_keys + s->own[i].off, s->own[i].len);
			s->own[i].off = o;
			o += s->own[i].len;
		}
		rt_free(s->own_keys);
		s->own_keys = a;
		s->oklen = o;
		s->okcap = live + 1;
	}
	return e;
}

/* panes_fire fires the windows that the watermark wm has passed since the last scan (none
 * passed: nothing to do): a walk over the panes merges each into its windows that passed,
 * then those are emitted (in the order the walk met them) and the panes of no later
 * window removed. */
static eddy_err panes_fire(task *t, wstate *s, int64_t wm)
{
	pscan sc = {t, s, crossed_of(s, wm), false};
	if (sc.upto <= s->crossed)
		return EDDY_OK;
	eddy_err e = s->pending ? panes_flush(t, s) : EDDY_OK;
	if (e != EDDY_OK)
		return e;
	size_t want = 1024; /* room for as many windows as the last scan fired */
	while (want < 2 * s->scan_groups)
		want *= 2;
	if (slots_reset(s, want) != EDDY_OK)
		return EDDY_ENOMEM;
	s->ngroups = 0;
	s->garena_len = 0;
	s->ngone = s->gklen = 0;
	s->ncarry = 0;
	if (s->own_panes && s->panes_known) {
		e = own_visit(t, s, &sc);
	} else {
		sc.collect = s->own_panes;
		s->nown = s->oklen = 0;
		e = ev_state_entries(s->st, s->panes_id, NULL, 0, pane_visit, &sc);
		if (e != EDDY_OK && e != EDDY_ENOMEM && e != EDDY_EFAILED) /* not the visit's */
			return sfail(t, s, e, "reading the panes");
		s->panes_known = e == EDDY_OK;
	}
	for (uint32_t g = 0; g < s->ngroups && e == EDDY_OK; g++) {
		const wgroup *w = &s->groups[g];
		const whdr *gh = (const whdr *)(s->gvals + (size_t)g * s->vlen);
		for (uint32_t i = 0; i < s->c->naggs; i++)
			if (s->carry[(size_t)g * s->c->naggs + i] != 0)
				return task_fail(t, "sum overflows a 64-bit integer");
		memcpy(s->kbuf, s->garena + w->koff, w->klen); /* kbuf holds the largest key */
		s->klen = w->klen;
		e = emit_row(t, s, (const accf *)(gh + 1), w->start, w->start + s->c->size_ms);
	}
	for (size_t i = 0; i < s->ngone && e == EDDY_OK; i++) {
		if ((e = pane_key(t, s, &s->gone[i], s->gone_keys)) != EDDY_OK)
			break;
		if ((e = ev_state_clear(s->st, s->panes_id)) != EDDY_OK)
			e = sfail(t, s, e, "removing a pane");
	}
	if (e != EDDY_OK)
		return e;
	s->scan_groups = s->ngroups;
	s->crossed = sc.upto;
	return EDDY_OK;
}

/* process_grouped handles a batch of a tumbling or sliding window without strings. */
static eddy_err process_grouped(task *t, wstate *s, const ev_batch *b, int64_t late_bound)
{
	const window_conf *c = s->c;
	if (!s->pending) {        /* panes: the groups of earlier batches wait in the table */
		size_t want = 16; /* grows with the groups (slots_double) */
		while (want < 2 * (size_t)b->n)
			want *= 2;
		if (slots_reset(s, want) != EDDY_OK)
			return EDDY_ENOMEM;
		s->ngroups = 0;
		s->garena_len = 0;
	}
	eddy_err err = EDDY_OK;
	/* a sliding window whose size is a multiple of its slide: a record's windows are the
	 * size/slide ones holding its slice (as Flink SQL's slicing window aggregates) */
	bool sliced = c->kind == WIN_SLIDING && c->size_ms % c->slide_ms == 0;
	int64_t bound = s->wm > late_bound ? s->wm : late_bound;
	for (uint32_t r = 0; r < b->n && err == EDDY_OK; r++) {
		expr_scratch_reset(task_scratch(t));
		if ((err = key_encode(s, t, b, r)) != EDDY_OK)
			break;
		uint64_t kh = key_hash(s->kbuf, s->klen);
		int64_t ts = b->ts[r];
		wgroup *w;
		if (s->panes) { /* its pane; late if every window holding it has fired */
			int64_t p = ts - floor_mod(ts, s->step);
			if (p + c->size_ms - 1 <= s->wm)
				err = late_row(t, s, b, r);
			else if ((err = group_of(t, s, kh, p, true, UINT32_MAX, &w)) == EDDY_OK)
				err = group_add(t, s, w, b, r);
			continue;
		}
		if (c->kind == WIN_TUMBLING) {
			int64_t start = ts - floor_mod(ts, c->size_ms);
			if (start + c->size_ms - 1 <= late_bound)
				err = ts <= late_bound ? late_row(t, s, b, r) : EDDY_OK;
			else if (start + c->size_ms - 1 <= s->wm)
				err = add_fired(t, s, start, b, r);
			else if ((err = group_of(t, s, kh, start, false, UINT32_MAX, &w)) ==
			         EDDY_OK)
				err = group_add(t, s, w, b, r);
			continue;
		}
		bool assigned = false;
		int64_t last = ts - floor_mod(ts, c->slide_ms);
		if (sliced && last + c->slide_ms - 1 > bound) {
			/* its oldest window, [last + slide - size, last + slide), has neither
			 * fired nor is late, so none has: one group for its slice */
			if ((err = group_of(t, s, kh, last, true, UINT32_MAX, &w)) == EDDY_OK)
				err = group_add(t, s, w, b, r);
			continue;
		}
		for (int64_t st = last; st > ts - c->size_ms && err == EDDY_OK; st -= c->slide_ms) {
			if (st + c->size_ms - 1 <= late_bound)
				continue;
			assigned = true;
			if (st + c->size_ms - 1 <= s->wm)
				err = add_fired(t, s, st, b, r);
			else if ((err = group_of(t, s, kh, st, false, UINT32_MAX, &w)) == EDDY_OK)
				err = group_add(t, s, w, b, r);
		}
		if (err == EDDY_OK && !assigned && ts <= late_bound)
			err = late_row(t, s, b, r);
	}
	if (s->panes) { /* merged into their panes later (panes_flush) */
		s->pending = s->ngroups > 0;
		return err == EDDY_OK && s->ngroups >= PANES_PENDING_MAX ? panes_flush(t, s) : err;
	}
	for (uint32_t g = 0; g < s->ngroups && err == EDDY_OK; g++)
		err = group_apply(t, s, &s->groups[g]);
	return err;
}

static eddy_err window_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	(void)input;
	wstate *s = state;
	const window_conf *c = s->c;
	eddy_err err = EDDY_OK;
	int64_t late_bound = s->wm == WM_MIN ? WM_MIN : s->wm - c->lateness_ms;
	bool grouped = (c->kind == WIN_TUMBLING || c->kind == WIN_SLIDING) && !s->any_str;
	if (grouped)
		err = process_grouped(t, s, b, late_bound);
	for (uint32_t r = 0; !grouped && r < b->n && err == EDDY_OK; r++) {
		expr_scratch_reset(task_scratch(t));
		if ((err = key_encode(s, t, b, r)) != EDDY_OK)
			break;
		s->kg = task_key_group(t, s->kvals, c->nkeys);
		if ((err = set_key(t, s)) != EDDY_OK)
			break;
		int64_t ts = b->ts[r];
		switch (c->kind) {
		case WIN_TUMBLING: {
			int64_t start = ts - floor_mod(ts, c->size_ms);
			if (start + c->size_ms - 1 <= late_bound)
				err = ts <= late_bound ? late_row(t, s, b, r) : EDDY_OK;
			else
				err = add_to_window(t, s, start, start + c->size_ms, b, r);
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
				err = add_to_window(t, s, st, st + c->size_ms, b, r);
			}
			if (err == EDDY_OK && !assigned && ts <= late_bound)
				err = late_row(t, s, b, r);
			break;
		}
		case WIN_SESSION:
			if (ts + c->gap_ms - 1 <= late_bound)
				err = ts <= late_bound ? late_row(t, s, b, r) : EDDY_OK;
			else
				err = add_to_session(t, s, b, r);
			break;
		case WIN_COUNT:
			err = add_to_count(t, s, b, r);
			break;
		case WIN_GLOBAL: err = add_to_global(t, s, b, r); break;
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
	publish_size(t, s, false);
	return err;
}

/* fire handles the timer at `time` of the current key and namespace ns: the window's
 * end - 1 fires it (kept until end - 1 + lateness if there is any), a later one purges
 * it; a global window's (at WM_MAX) fires and purges it. A timer whose window is gone
 * does nothing. */
static eddy_err fire(task *t, wstate *s, int64_t time, int64_t ns, int64_t wm)
{
	const window_conf *c = s->c;
	bool found;
	/* without lateness a tumbling or sliding window is fired and purged at once: read
	 * and removed in one lookup */
	bool take = c->lateness_ms == 0 && !s->any_str &&
	            (c->kind == WIN_TUMBLING || c->kind == WIN_SLIDING);
	eddy_err e = load(t, s, s->h, &found, take);
	if (e != EDDY_OK || !found)
		return e;
	if (take) {
		if (s->h->fired || time != s->h->end - 1)
			return task_fail(t, "window [%lld, %lld): a timer at %lld",
			                 (long long)s->h->start, (long long)s->h->end,
			                 (long long)time);
		return emit_row(t, s, s->a, s->h->start, s->h->end);
	}
	whdr *h = s->h;
	if (c->kind == WIN_GLOBAL) { /* the end of the input: fire and purge */
		if ((e = emit_row(t, s, s->a, h->min_ts, h->max_ts + 1)) != EDDY_OK)
			return e;
		return clear_window(t, s);
	}
	if (!h->fired && time == h->end - 1) {
		if ((e = emit_row(t, s, s->a, h->start, h->end)) != EDDY_OK)
			return e;
		h->fired = 1;
		if (c->lateness_ms > 0 && wm != WM_MAX && h->end - 1 + c->lateness_ms > wm) {
			if ((e = store(t, s, h)) != EDDY_OK)
				return e;
			return timer_set(t, s, h->end - 1 + c->lateness_ms);
		}
	}
	if (time < h->end - 1)
		return EDDY_OK; /* not this window's timer (cannot happen: timers are deleted) */
	if ((e = clear_window(t, s)) != EDDY_OK)
		return e;
	return c->kind == WIN_SESSION ? sessions_remove(t, s, ns) : EDDY_OK;
}

static eddy_err window_watermark(task *t, void *state, int64_t wm)
{
	wstate *s = state;
	s->wm = wm;
	eddy_err err = s->panes ? panes_fire(t, s, wm) : EDDY_OK;
	ev_timer tm;
	while (!s->panes && err == EDDY_OK &&
	       (err = ev_timer_pop(s->st, EV_TIME_EVENT, wm, &tm)) == EDDY_OK) {
		/* the timer's key and namespace are current; keep copies (they are borrowed) */
		if ((err = key_reserve(s, tm.key.len + 1)) != EDDY_OK)
			break;
		memcpy(s->kbuf, tm.key.p, tm.key.len);
		s->klen = (uint32_t)tm.key.len;
		s->kg = tm.key_group;
		int64_t ns = 0;
		if (tm.ns.len == sizeof(ns))
			memcpy(&ns, tm.ns.p, sizeof(ns));
		err = fire(t, s, tm.time, ns, wm);
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

static void window_close(task *t, void *state)
{
	(void)t;
	wstate *s = state;
	if (s == NULL)
		return;
	rt_free(s->h);
	rt_free(s->h2);
	rt_free(s->slots);
	rt_free(s->groups);
	rt_free(s->garena);
	rt_free(s->gvals);
	rt_free(s->gone);
	rt_free(s->gone_keys);
	rt_free(s->carry);
	rt_free(s->own);
	rt_free(s->own_keys);
	rt_free(s->sess);
	rt_free(s->sbuf);
	rt_free(s->kbuf);
	batch_free(s->out);
	batch_free(s->late);
	rt_free(s);
}

static eddy_err reg(task *t, wstate *s, const char *name, ev_state_id *id)
{
	ev_state_desc d = { .name = name, .kind = EV_STATE_VALUE };
	eddy_err e = ev_state_register(s->st, &d, id);
	return e ? sfail(t, s, e, "registering state") : EDDY_OK;
}

static eddy_err window_open(task *t, void **state)
{
	wstate *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	*state = s;
	const window_conf *c = s->c = task_node_of(t)->conf;
	s->st = task_keyed_state(t);
	s->wm = WM_MIN;
	s->vlen = sizeof(whdr) + c->naggs * sizeof(accf);
	s->h = rt_calloc(1, s->vlen);
	s->h2 = rt_calloc(1, s->vlen);
	if (s->h == NULL || s->h2 == NULL)
		return EDDY_ENOMEM;
	s->a = (accf *)(s->h + 1);
	s->a2 = (accf *)(s->h2 + 1);
	for (uint32_t a = 0; a < c->naggs; a++)
		s->argf[a] = c->aggs[a].arg ? expr_field(c->aggs[a].arg) : -1;
	s->keys_are_fields = true;
	for (uint32_t k = 0; k < c->nkeys; k++) {
		s->keyf[k] = expr_field(c->keys[k]);
		s->keys_are_fields = s->keys_are_fields && s->keyf[k] >= 0;
	}
	eddy_err e = reg(t, s, "acc", &s->acc_id);
	for (uint32_t a = 0; a < c->naggs && e == EDDY_OK; a++) {
		if (!(s->is_str[a] = is_str_agg(&c->aggs[a])))
			continue;
		char name[16];
		snprintf(name, sizeof(name), "s%u", a);
		s->any_str = true;
		e = reg(t, s, name, &s->str_id[a]);
	}
	if (e == EDDY_OK && c->kind == WIN_SESSION)
		e = reg(t, s, "sessions", &s->sess_id);
	s->step = c->kind == WIN_TUMBLING ? c->size_ms : c->slide_ms;
	s->panes = (c->kind == WIN_TUMBLING ||
	            (c->kind == WIN_SLIDING && c->size_ms % c->slide_ms == 0)) &&
	           c->lateness_ms == 0 && !s->any_str;
	s->crossed = INT64_MIN;
	s->own_panes = ev_state_handle_kind(s->st) == EV_STATE_LEVELDB;
	s->panes_known = true; /* none yet (a restore makes them unknown) */
	if (e == EDDY_OK && s->panes)
		e = reg(t, s, "panes", &s->panes_id);
	/* kbuf and garena are never NULL, also for a global window's empty key (memcpy and
	 * memcmp of 0 bytes still want valid pointers) */
	if (e == EDDY_OK && rt_grow((void **)&s->garena, &s->garena_cap, 1, 1, 4096) != EDDY_OK)
		e = EDDY_ENOMEM;
	return e ? e : key_reserve(s, 256);
}

/* ---- checkpoints ----
 * The windows are keyed state (the task snapshots them asynchronously to the task's
 * .state file); the operator's own snapshot is {"v": 2, "wm": W, "panes": P, "shape": S}:
 * its watermark, whether its state is panes (absent: false) and what its state depends on
 * (window_shape; absent in older checkpoints: not checked). A restore into a window of
 * another shape fails naming both (Flink checks its state serializers' compatibility). A restore at
 * another parallelism takes the lowest watermark of the old subtasks: with exactly_once checkpoints
 * they are equal (watermarks and barriers go down every channel in the same order, and a snapshot
 * waits for every channel's barrier), so no pane's window fires twice. */

/* window_shape writes what a window's state depends on into buf: its kind, lengths (ms),
 * key types and aggregates, e.g. "sliding 10000/2000/0/0 keys int aggs count sum:int". */
static void window_shape(const window_conf *c, char *buf, size_t size)
{
	static const char *const kinds[] = {"tumbling", "sliding", "session", "count", "global"};
	static const char *const fns[] = {"count", "sum", "min", "max", "avg", "first", "last"};
	size_t o = (size_t)snprintf(buf, size, "%s %lld/%lld/%lld/%lld keys", kinds[c->kind],
	                            (long long)c->size_ms, (long long)c->slide_ms,
	                            (long long)c->gap_ms, (long long)c->count);
	for (uint32_t k = 0; k < c->nkeys && o < size; k++)
		o += (size_t)snprintf(buf + o, size - o, " %s",
		                      ev_type_name(c->out->fields[2 + k].type));
	if (o < size)
		o += (size_t)snprintf(buf + o, size - o, " aggs");
	for (uint32_t a = 0; a < c->naggs && o < size; a++)
		o += (size_t)snprintf(buf + o, size - o, c->aggs[a].arg ? " %s:%s" : " %s",
		                      fns[c->aggs[a].fn], ev_type_name(c->aggs[a].type));
}

static eddy_err window_snapshot(task *t, void *state, uint64_t id, msgpack_packer *pk)
{
	(void)id;
	wstate *s = state;
	if (s->pending) { /* the keyed state is snapshotted next: it must hold every pane */
		eddy_err e = panes_flush(t, s);
		if (e != EDDY_OK)
			return e;
	}
	publish_size(t, s, true);
	char shape[512];
	window_shape(s->c, shape, sizeof(shape));
	msgpack_pack_map(pk, 5);
	msgpack_pack_str_with_body(pk, "v", 1);
	msgpack_pack_uint8(pk, 2);
	msgpack_pack_str_with_body(pk, "wm", 2);
	msgpack_pack_int64(pk, s->wm);
	msgpack_pack_str_with_body(pk, "panes", 5);
	if (s->panes)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	op_pack_shape(pk, "window", shape);
	return EDDY_OK;
}

static eddy_err window_restore(task *t, void *state, const msgpack_object *o)
{
	wstate *s = state;
	char shape[512], why[1280];
	window_shape(s->c, shape, sizeof(shape));
	if (op_shape_mismatch(o, "window", shape,
	                      "kind, size/slide/gap/count in ms, key types, aggregates", why,
	                      sizeof(why)))
		return task_fail(t, "%s", why);
	const msgpack_object *v = o ? mp_get(o, "v") : NULL, *wm = o ? mp_get(o, "wm") : NULL;
	int64_t w;
	if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 2 ||
	    wm == NULL || !mp_int(wm, &w))
		return task_fail(t, "window: the checkpoint holds no window state of version 2 (a "
		                 "checkpoint of an older eddy?)");
	const msgpack_object *pn = mp_get(o, "panes");
	bool panes = pn != NULL && pn->type == MSGPACK_OBJECT_BOOLEAN && pn->via.boolean;
	if (panes != s->panes)
		return task_fail(
		    t,
		    "window: the checkpoint keeps %s, this window keeps %s (panes: "
		    "tumbling or sliding windows without allowed_lateness or string "
		    "aggregates; the checkpoint is of another window or an older eddy)",
		    panes ? "panes" : "one state per window",
		    s->panes ? "panes" : "one state per window");
	if (!task_rescaled(t) || s->restored == 0 || w < s->wm)
		s->wm = w; /* rescaled: the lowest of the old subtasks' (a key's panes know
		            * the windows fired for it) */
	s->crossed = s->panes ? crossed_of(s, s->wm) : INT64_MIN;
	s->panes_known = false; /* the first scan walks the restored panes */
	s->restored++;
	publish_size(t, s, true);
	return EDDY_OK;
}

const op_def window_op = {
	.type = "window",
	.open = window_open,
	.process = window_process,
	.snapshot = window_snapshot,
	.restore = window_restore,
	.rescalable = true,
	.keyed_state = true,
	.watermark = window_watermark,
	.close = window_close,
};
