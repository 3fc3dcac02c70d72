/*
 * The top_n operator (operators/ops.h): Flink SQL's Window Top-N with SQL's RANK(). Per
 * window and key (key_by; none: one group per window) it keeps the rows whose rank by
 * order_by is at most n, where rank = 1 + the number of strictly better rows, so every
 * row tied at the boundary is kept (n = 1 keeps all the rows tied for first); a null
 * order value ranks after every other value (NULLS LAST, both orders). When the
 * watermark reaches the window's end - 1 the kept rows are emitted with their rank, the
 * window's state is cleared, and a row arriving for a window that fired already is late:
 * it goes to the late side output (port 1) or is counted in job_stats.late_dropped, as
 * the window operator's late records (no allowed lateness: Flink's Window Top-N emits
 * one final result per window).
 *
 * Windows: tumbling and sliding windows are assigned from event time ([start, end),
 * aligned to the epoch, as the window operator); `window: input` reads them from the
 * input's window_start and window_end columns (the output of a window aggregate, whose
 * rows carry event time window_end - 1).
 *
 * State lives in the task's keyed state (include/eddy/state.h), so it is snapshotted
 * asynchronously with checkpoints, restored after failures and redistributed by key
 * group when rescaled, on either backend:
 *  - "rows" (value state, namespace = the window as 16 bytes: start, end): the window's
 *    candidates, best first: u32 count, then per row u32 length, its order value (a
 *    null byte, then 8 bytes — the value made order-preserving as an unsigned number,
 *    inverted for desc — or a u32 length and the bytes of a string), event time, null
 *    bits and the row's fields (8 bytes each; a string as u32 length and bytes). Only
 *    the rows that can still be in the top n are kept: at most n plus the rows tied at
 *    the boundary;
 *  - one event-time timer per (key, window) at end - 1.
 *
 * A batch is handled in one pass: each row's (key, window) assignments are gathered by
 * (key, window) in a hash table, each group keeping only its own top n as a list, best
 * first (a row outside the batch's top n cannot be in the window's; most rows cost one
 * comparison with the list's last), and each group then meets the keyed state once: one
 * read, and one write only when one of its rows gets in. No allocation per record: the
 * buffers grow with the largest batch and stay.
 */
#include "ops.h"

#include "../runtime/alloc.h"
#include "../runtime/mp.h"

#include <eddy/state.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* An order value: null, a number made order-preserving (u; smaller is better), or a
 * string (p, len; compared bytewise, reversed for desc). */
typedef struct ordv {
	uint64_t u;
	const char *p;
	uint32_t len;
	bool null;
} ordv;

/* One assignment of a batch row to a window (several for sliding windows). */
typedef struct cand {
	uint64_t gh;    /* hash of (key, window) */
	int64_t ws, we; /* the window */
	size_t koff;    /* the key's bytes in karena */
	uint32_t klen, kg;
	size_t soff; /* a string order value's bytes in karena */
	uint32_t row;
	ordv o;         /* o.p is set once karena stops growing */
	const char *kp; /* the key's bytes (set with o.p) */
	uint32_t next;  /* the next kept candidate of its group, best first; NONE ends */
} cand;

#define NONE UINT32_MAX

/* A (key, window) of a batch: its kept candidates as a list, best first, cut at the
 * batch's own rank n (ties of the n-th kept). */
typedef struct cgroup {
	uint32_t head, tail, n;
} cgroup;

/* A stored row of a window's state (borrowed from the state) or a batch row. */
typedef struct ent {
	ordv o;
	const uint8_t *p; /* stored: the entry's bytes after its length; NULL: batch row */
	uint32_t len;
	uint32_t row;
} ent;

typedef struct tstate {
	const topn_conf *c;
	ev_state *st;
	ev_state_id rows_id;
	int64_t wm;
	uint32_t restored; /* snapshots restored (several when rescaled) */
	uint32_t batches;  /* to publish the state size now and then */
	bool str;          /* order_by is a string */
	int orderf;        /* order_by's field, or -1 (an expression) */
	int keyf[EV_MAX_FIELDS];
	ev_val kvals[EV_MAX_FIELDS];
	ev_batch *out, *late;
	cand *cands; /* this batch's assignments */
	size_t ncands, ccap;
	cgroup *groups; /* this batch's (key, window) groups, in order of first row */
	size_t ngroups, gcap;
	uint32_t *slots; /* open addressing: group index + 1, 0 empty */
	size_t nslots;
	cand *sorted; /* a group's kept candidates, contiguous for apply_group */
	size_t scap;
	char *karena; /* this batch's keys and string order values */
	size_t klen, kcap;
	ent *ents; /* a window's stored rows, parsed */
	size_t nents, ecap;
	ent *merged; /* stored and batch rows, best first, cut at rank n */
	size_t mcap;
	uint8_t *buf; /* a window's state being built */
	size_t blen, bcap;
} tstate;

static int64_t floor_mod(int64_t a, int64_t b)
{
	int64_t m = a % b;
	return m < 0 ? m + b : m;
}

static eddy_err sfail(task *t, tstate *s, eddy_err e, const char *what)
{
	if (e == EDDY_ENOMEM)
		return e;
	return task_fail(t, "top_n: %s: %s", what, ev_state_errmsg(s->st));
}

/* ---- order values ---- */

/* ord_of makes v (of the order type, or null) an order value; a string stays where it
 * is (the caller copies it if it must live on). */
static ordv ord_of(const tstate *s, ev_val v)
{
	ordv o = {.null = v.type == EV_NULL};
	if (o.null)
		return o;
	if (s->str) {
		o.p = v.s.p;
		o.len = v.s.len;
		return o;
	}
	uint64_t u;
	if (s->c->order_type == EV_FLOAT) {
		double d = v.type == EV_INT ? (double)v.i : v.f;
		if (d == 0.0)
			d = 0.0; /* -0.0 and 0.0 tie */
		if (d != d)
			u = 0xfff8000000000000ull; /* every NaN ties, after +inf (as DuckDB orders)
			                            */
		else
			memcpy(&u, &d, 8);
		u = (u >> 63) ? ~u : u | (1ull << 63);
	} else {
		u = (uint64_t)v.i ^ (1ull << 63);
	}
	o.u = s->c->desc ? ~u : u;
	return o;
}

/* ord_cmp: < 0 when a ranks before b, 0 when they tie. */
static int ord_cmp(const tstate *s, const ordv *a, const ordv *b)
{
	if (a->null || b->null)
		return (int)a->null - (int)b->null;
	if (!s->str)
		return a->u < b->u ? -1 : a->u > b->u;
	uint32_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->p, b->p, n) : 0;
	if (c == 0)
		c = (a->len > b->len) - (a->len < b->len);
	return s->c->desc ? -c : c;
}

/* ---- keys: a canonical encoding of the key values (as the window operator's) ---- */

static eddy_err arena_reserve(tstate *s, size_t more)
{
	return rt_grow((void **)&s->karena, &s->kcap, s->klen + more, 1, 4096);
}

/* key_append appends row r's key to karena and sets kvals; *len gets its length. */
static eddy_err key_append(tstate *s, task *t, const ev_batch *b, uint32_t r, uint32_t *len)
{
	const topn_conf *c = s->c;
	expr_scratch *sc = task_scratch(t);
	size_t need = 0;
	for (uint32_t k = 0; k < c->nkeys; k++) {
		int f = s->keyf[k];
		ev_val v =
		    f >= 0 ? batch_get_val(b, r, (uint32_t)f) : expr_eval(c->keys[k], b, r, sc);
		s->kvals[k] = v;
		need += 9 + (v.type == EV_STRING ? v.s.len : 0);
	}
	if (arena_reserve(s, need) != EDDY_OK)
		return EDDY_ENOMEM;
	char *p0 = s->karena + s->klen, *p = p0;
	for (uint32_t k = 0; k < c->nkeys; k++) {
		ev_val v = s->kvals[k];
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
				double d = v.f == 0.0 ? 0.0 : v.f;
				memcpy(&x, &d, 8);
			}
			memcpy(p, &x, 8);
			p += 8;
		}
	}
	*len = (uint32_t)(p - p0);
	s->klen += *len;
	return EDDY_OK;
}

/* ---- a window's state ---- */

static eddy_err buf_reserve(tstate *s, size_t more)
{
	return rt_grow((void **)&s->buf, &s->bcap, s->blen + more, 1, 1024);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* ord_size: the bytes of an order value in an entry. */
static size_t ord_size(const tstate *s, const ordv *o)
{
	return 1 + (o->null ? 0 : s->str ? 4 + (size_t)o->len : 8);
}

/* row_size: the bytes of batch row r in an entry (ts, null bits, fields). */
static size_t row_size(const ev_batch *b, uint32_t r)
{
	size_t n = 16;
	for (uint32_t f = 0; f < b->ncols; f++) {
		if (batch_is_null(b, r, f))
			continue;
		n += b->schema->fields[f].type == EV_STRING ? 4 + (uint32_t)batch_slot_get(b, r, f)
		                                            : 8;
	}
	return n;
}

/* put_batch_row appends an entry for batch row e->row (order value e->o) to buf. */
static eddy_err put_batch_row(tstate *s, const ev_batch *b, const ent *e)
{
	size_t os = ord_size(s, &e->o), rs = row_size(b, e->row);
	if (buf_reserve(s, 4 + os + rs) != EDDY_OK)
		return EDDY_ENOMEM;
	uint8_t *p = s->buf + s->blen;
	put32(p, (uint32_t)(os + rs));
	p += 4;
	*p++ = e->o.null;
	if (!e->o.null && s->str) {
		put32(p, e->o.len);
		memcpy(p + 4, e->o.p, e->o.len);
		p += 4 + e->o.len;
	} else if (!e->o.null) {
		memcpy(p, &e->o.u, 8);
		p += 8;
	}
	uint32_t r = e->row;
	uint64_t nulls = b->nulls[r] & (b->ncols >= 64 ? ~0ull : (1ull << b->ncols) - 1);
	memcpy(p, &b->ts[r], 8);
	memcpy(p + 8, &nulls, 8);
	p += 16;
	for (uint32_t f = 0; f < b->ncols; f++) {
		if ((nulls >> f) & 1u)
			continue;
		if (b->schema->fields[f].type == EV_STRING) {
			uint32_t len;
			const char *sp = batch_get_str(b, r, f, &len);
			put32(p, len);
			memcpy(p + 4, sp, len);
			p += 4 + len;
		} else {
			uint64_t v = batch_slot_get(b, r, f);
			memcpy(p, &v, 8);
			p += 8;
		}
	}
	s->blen = (size_t)(p - s->buf);
	return EDDY_OK;
}

/* put_stored appends a stored entry to buf, as it is. */
static eddy_err put_stored(tstate *s, const ent *e)
{
	if (buf_reserve(s, 4 + (size_t)e->len) != EDDY_OK)
		return EDDY_ENOMEM;
	put32(s->buf + s->blen, e->len);
	memcpy(s->buf + s->blen + 4, e->p, e->len);
	s->blen += 4 + (size_t)e->len;
	return EDDY_OK;
}

/* parse reads a window's state (v, len bytes) into ents; false if it is malformed. */
static bool parse(tstate *s, const uint8_t *v, size_t len)
{
	s->nents = 0;
	if (len < 4)
		return false;
	uint32_t n = get32(v);
	if (rt_grow((void **)&s->ents, &s->ecap, n ? n : 1, sizeof(ent), 16) != EDDY_OK)
		return false;
	size_t off = 4;
	for (uint32_t i = 0; i < n; i++) {
		if (len - off < 5)
			return false;
		uint32_t el = get32(v + off);
		off += 4;
		if (el > len - off || el < 1)
			return false;
		const uint8_t *p = v + off;
		ent *e = &s->ents[s->nents++];
		*e = (ent){.p = p, .len = el, .row = UINT32_MAX};
		e->o.null = p[0] != 0;
		if (!e->o.null && s->str) {
			if (el < 5 || get32(p + 1) > el - 5)
				return false;
			e->o.len = get32(p + 1);
			e->o.p = (const char *)p + 5;
		} else if (!e->o.null) {
			if (el < 9)
				return false;
			memcpy(&e->o.u, p + 1, 8);
		}
		off += el;
	}
	return off == len;
}

/* ---- output ---- */

static eddy_err emit_out(task *t, tstate *s)
{
	if (s->out == NULL || s->out->n == 0)
		return EDDY_OK;
	ev_batch *b = s->out;
	s->out = NULL;
	return task_emit(t, 0, b);
}

/* emit_entry emits stored entry e of window [ws, we) with its rank. */
static eddy_err emit_entry(task *t, tstate *s, const ent *e, int64_t ws, int64_t we, int64_t rank)
{
	const topn_conf *c = s->c;
	if (s->out && batch_full(s->out)) {
		eddy_err err = emit_out(t, s);
		if (err != EDDY_OK)
			return err;
	}
	if (s->out == NULL && (s->out = task_new_batch(t, c->out)) == NULL)
		return EDDY_ENOMEM;
	ev_batch *o = s->out;
	const uint8_t *p = e->p + ord_size(s, &e->o), *end = e->p + e->len;
	if (end - p < 16)
		return task_fail(t, "top_n: a stored row is cut short");
	uint32_t r = batch_append_row(o);
	o->ts[r] = we - 1;
	if (c->in_off) {
		batch_set_int(o, r, 0, ws);
		batch_set_int(o, r, 1, we);
	}
	uint64_t nulls;
	p += 8; /* the row's own event time is not output */
	memcpy(&nulls, p, 8);
	p += 8;
	for (uint32_t f = 0; f < c->in->n; f++) {
		if ((nulls >> f) & 1u)
			continue;
		uint32_t col = c->in_off + f;
		if (c->in->fields[f].type == EV_STRING) {
			if (end - p < 4 || get32(p) > (size_t)(end - p - 4))
				return task_fail(t, "top_n: a stored row is cut short");
			uint32_t len = get32(p);
			eddy_err err = batch_set_str(o, r, col, (const char *)p + 4, len);
			if (err != EDDY_OK)
				return err;
			p += 4 + len;
		} else {
			if (end - p < 8)
				return task_fail(t, "top_n: a stored row is cut short");
			uint64_t v;
			memcpy(&v, p, 8);
			*batch_slot(o, r, col) = v;
			o->nulls[r] &= ~((uint64_t)1 << col);
			p += 8;
		}
	}
	batch_set_int(o, r, c->in_off + c->in->n, rank);
	return EDDY_OK;
}

static eddy_err late_row(task *t, tstate *s, const ev_batch *b, uint32_t r)
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

static void publish_size(task *t, tstate *s, bool now)
{
	if (now || (++s->batches & 63) == 0)
		task_set_state_bytes(t, ev_state_size_bytes(s->st));
}

/* ---- processing ---- */

/* add_cand records that row r (key just appended: koff, klen; order value o, a string
 * copied at soff) belongs to window [ws, we). */
static eddy_err add_cand(tstate *s, size_t koff, uint32_t klen, uint32_t kg, uint64_t kh, ordv o,
                         size_t soff, uint32_t r, int64_t ws, int64_t we)
{
	if (rt_grow((void **)&s->cands, &s->ccap, s->ncands + 1, sizeof(cand), 1024) != EDDY_OK)
		return EDDY_ENOMEM;
	uint64_t gh =
	    kh ^ ((uint64_t)ws * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)we * 0xc2b2ae3d27d4eb4full);
	s->cands[s->ncands++] = (cand){.gh = gh,
	                               .ws = ws,
	                               .we = we,
	                               .koff = koff,
	                               .klen = klen,
	                               .kg = kg,
	                               .soff = soff,
	                               .row = r,
	                               .o = o};
	return EDDY_OK;
}

static bool same_group(const cand *a, const cand *b)
{
	return a->gh == b->gh && a->ws == b->ws && a->we == b->we && a->klen == b->klen &&
	       (a->klen == 0 || memcmp(a->kp, b->kp, a->klen) == 0);
}

/* keep adds candidate i to group g's list, best first (ties in row order), and cuts the
 * list after the rows tied with its n-th. Most candidates are worse than a full list's
 * last and cost one comparison. */
static void keep(tstate *s, cgroup *g, uint32_t i)
{
	const uint32_t n = s->c->n;
	cand *x = &s->cands[i];
	x->next = NONE;
	if (g->n == 0) {
		g->head = g->tail = i;
		g->n = 1;
		return;
	}
	int c = ord_cmp(s, &s->cands[g->tail].o, &x->o);
	if (c <= 0) { /* at the end: worse than the last or tied with it */
		if (g->n >= n && c < 0)
			return; /* past rank n */
		s->cands[g->tail].next = i;
		g->tail = i;
		g->n++;
		return;
	}
	/* better than the last: after the rows better than or tied with it */
	uint32_t *link = &g->head;
	while (ord_cmp(s, &s->cands[*link].o, &x->o) <= 0)
		link = &s->cands[*link].next;
	x->next = *link;
	*link = i;
	g->n++;
	if (g->n <= n)
		return;
	/* cut after the n-th and its ties */
	uint32_t k = 1, p = g->head;
	for (; k < n; k++)
		p = s->cands[p].next;
	uint32_t q = s->cands[p].next;
	while (q != NONE && ord_cmp(s, &s->cands[p].o, &s->cands[q].o) == 0) {
		p = q;
		q = s->cands[q].next;
		k++;
	}
	s->cands[p].next = NONE;
	g->tail = p;
	g->n = k;
}

/* group_cands gathers the batch's candidates by (key, window) into s->groups, each cut
 * at the batch's own rank n (a row outside it cannot be in the window's top n). */
static eddy_err group_cands(tstate *s)
{
	size_t want = 16;
	while (want < 2 * s->ncands)
		want *= 2;
	if (want > s->nslots) {
		uint32_t *n = rt_realloc(s->slots, want * sizeof(*n));
		if (n == NULL)
			return EDDY_ENOMEM;
		s->slots = n;
		s->nslots = want;
	}
	memset(s->slots, 0, want * sizeof(*s->slots));
	if (rt_grow((void **)&s->groups, &s->gcap, s->ncands, sizeof(cgroup), 64) != EDDY_OK)
		return EDDY_ENOMEM;
	s->ngroups = 0;
	size_t mask = want - 1;
	for (size_t i = 0; i < s->ncands; i++) {
		const cand *x = &s->cands[i];
		size_t j = x->gh & mask;
		uint32_t g;
		for (;; j = (j + 1) & mask) {
			g = s->slots[j];
			if (g == 0) {
				s->groups[s->ngroups] = (cgroup){.head = NONE, .tail = NONE};
				g = s->slots[j] = (uint32_t)++s->ngroups;
				break;
			}
			if (same_group(&s->cands[s->groups[g - 1].head], x))
				break;
		}
		keep(s, &s->groups[g - 1], (uint32_t)i);
	}
	size_t most = 0;
	for (size_t g = 0; g < s->ngroups; g++)
		if (s->groups[g].n > most)
			most = s->groups[g].n;
	return rt_grow((void **)&s->sorted, &s->scap, most, sizeof(cand), 64);
}

/* apply_group merges the batch's rows of one (key, window), g[0 .. m) best first and cut
 * at the batch's own rank n, into the window's state. */
static eddy_err apply_group(task *t, tstate *s, const ev_batch *b, const cand *g, size_t m)
{
	const topn_conf *c = s->c;
	int64_t ns[2] = {g->ws, g->we};
	eddy_err e = ev_state_set_key(s->st, g->kp, g->klen, g->kg);
	if (e == EDDY_OK)
		e = ev_state_set_namespace(s->st, ns, sizeof(ns));
	if (e != EDDY_OK)
		return sfail(t, s, e, "key");
	const void *v;
	size_t len;
	e = ev_value_get(s->st, s->rows_id, &v, &len);
	bool fresh = e == EDDY_ENOENT;
	if (e != EDDY_OK && !fresh)
		return sfail(t, s, e, "reading a window");
	s->nents = 0;
	if (!fresh && !parse(s, v, len))
		return task_fail(t,
		                 "top_n: a window's state (%zu bytes) is malformed (another "
		                 "operator's state?)",
		                 len);
	/* nothing gets in when n stored rows are strictly better than the batch's best */
	if (s->nents >= c->n && ord_cmp(s, &s->ents[c->n - 1].o, &g[0].o) < 0)
		return EDDY_OK;
	if (rt_grow((void **)&s->merged, &s->mcap, s->nents + m, sizeof(ent), 64) != EDDY_OK)
		return EDDY_ENOMEM;
	size_t i = 0, j = 0, k = 0, from_batch = 0;
	while (i < s->nents || j < m) {
		ent x;
		if (j == m || (i < s->nents && ord_cmp(s, &s->ents[i].o, &g[j].o) <= 0)) {
			x = s->ents[i++];
		} else {
			x = (ent){.o = g[j].o, .row = g[j].row};
			j++;
		}
		/* rank = 1 + the rows strictly before: past n, only ties of the last one stay */
		if (k >= c->n && ord_cmp(s, &s->merged[k - 1].o, &x.o) != 0)
			break;
		from_batch += x.p == NULL;
		s->merged[k++] = x;
	}
	if (from_batch == 0)
		return EDDY_OK;
	s->blen = 0;
	if (buf_reserve(s, 4) != EDDY_OK)
		return EDDY_ENOMEM;
	put32(s->buf, (uint32_t)k);
	s->blen = 4;
	for (size_t q = 0; q < k; q++) {
		e = s->merged[q].p ? put_stored(s, &s->merged[q])
		                   : put_batch_row(s, b, &s->merged[q]);
		if (e != EDDY_OK)
			return e;
	}
	if (s->blen > EV_STATE_MAX_VALUE)
		return task_fail(t,
		                 "top_n: a window's top %u rows take %zu bytes, over the state's "
		                 "limit of %u",
		                 c->n, s->blen, EV_STATE_MAX_VALUE);
	if ((e = ev_value_put(s->st, s->rows_id, s->buf, s->blen)) != EDDY_OK)
		return sfail(t, s, e, "writing a window");
	if (fresh && (e = ev_timer_register(s->st, EV_TIME_EVENT, g->we - 1)) != EDDY_OK)
		return sfail(t, s, e, "registering a timer");
	return EDDY_OK;
}

/* assign finds row r's windows and records a candidate per window; late rows go to
 * late_row. */
static eddy_err assign(task *t, tstate *s, const ev_batch *b, uint32_t r)
{
	const topn_conf *c = s->c;
	expr_scratch *sc = task_scratch(t);
	int64_t ts = b->ts[r], wm = s->wm;
	int64_t ws = 0, we = 0;
	if (c->window == TOPN_INPUT) {
		if (batch_is_null(b, r, (uint32_t)c->ws_field) ||
		    batch_is_null(b, r, (uint32_t)c->we_field))
			return task_fail(t,
			                 "top_n: a row without window_start or window_end (window: "
			                 "input needs both)");
		ws = batch_get_int(b, r, (uint32_t)c->ws_field);
		we = batch_get_int(b, r, (uint32_t)c->we_field);
		if (we <= ws)
			return task_fail(t,
			                 "top_n: a row's window_end is not after its window_start");
		if (wm != WM_MIN && we - 1 <= wm)
			return late_row(t, s, b, r);
	} else if (c->window == TOPN_TUMBLING) {
		ws = ts - floor_mod(ts, c->size_ms);
		we = ws + c->size_ms;
		if (wm != WM_MIN && we - 1 <= wm)
			return late_row(t, s, b, r);
	}
	size_t koff = s->klen;
	uint32_t klen;
	eddy_err e = key_append(s, t, b, r, &klen);
	if (e != EDDY_OK)
		return e;
	uint32_t kg = task_key_group(t, s->kvals, c->nkeys);
	uint64_t kh = XXH3_64bits(s->karena + koff, klen);
	ev_val ov = s->orderf >= 0 ? batch_get_val(b, r, (uint32_t)s->orderf)
	                           : expr_eval(c->order_by, b, r, sc);
	ordv o = ord_of(s, ov);
	size_t soff = 0;
	if (s->str && !o.null) { /* copied: it may live in the scratch */
		if (arena_reserve(s, o.len) != EDDY_OK)
			return EDDY_ENOMEM;
		soff = s->klen;
		memcpy(s->karena + soff, o.p, o.len);
		s->klen += o.len;
	}
	if (c->window != TOPN_SLIDING)
		return add_cand(s, koff, klen, kg, kh, o, soff, r, ws, we);
	bool assigned = false;
	int64_t last = ts - floor_mod(ts, c->slide_ms);
	for (int64_t st = last; st > ts - c->size_ms && e == EDDY_OK; st -= c->slide_ms) {
		if (wm != WM_MIN && st + c->size_ms - 1 <= wm)
			continue;
		assigned = true;
		e = add_cand(s, koff, klen, kg, kh, o, soff, r, st, st + c->size_ms);
	}
	if (e == EDDY_OK && !assigned && wm != WM_MIN && ts <= wm)
		e = late_row(t, s, b, r);
	return e;
}

static eddy_err topn_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	(void)input;
	tstate *s = state;
	eddy_err err = EDDY_OK;
	s->ncands = 0;
	s->klen = 0;
	for (uint32_t r = 0; r < b->n && err == EDDY_OK; r++) {
		expr_scratch_reset(task_scratch(t));
		err = assign(t, s, b, r);
	}
	if (err == EDDY_OK && s->ncands > 0) {
		for (size_t i = 0; i < s->ncands; i++) { /* karena stopped growing */
			cand *x = &s->cands[i];
			x->kp = s->karena + x->koff;
			if (s->str && !x->o.null)
				x->o.p = s->karena + x->soff;
		}
		err = group_cands(s);
		for (size_t g = 0; g < s->ngroups && err == EDDY_OK; g++) {
			size_t m = 0;
			for (uint32_t i = s->groups[g].head; i != NONE; i = s->cands[i].next)
				s->sorted[m++] = s->cands[i];
			err = apply_group(t, s, b, s->sorted, m);
		}
	}
	batch_free(b);
	if (err == EDDY_OK && s->late && s->late->n) {
		ev_batch *l = s->late;
		s->late = NULL;
		err = task_emit(t, 1, l);
	}
	publish_size(t, s, false);
	return err;
}

/* fire emits the window of the current key and namespace (ws, we) and clears it. */
static eddy_err fire(task *t, tstate *s, int64_t ws, int64_t we)
{
	const void *v;
	size_t len;
	eddy_err e = ev_value_get(s->st, s->rows_id, &v, &len);
	if (e == EDDY_ENOENT)
		return EDDY_OK;
	if (e != EDDY_OK)
		return sfail(t, s, e, "reading a window");
	if (!parse(s, v, len))
		return task_fail(t, "top_n: a window's state (%zu bytes) is malformed", len);
	size_t tie_start = 0;
	for (size_t i = 0; i < s->nents && e == EDDY_OK; i++) {
		if (i > 0 && ord_cmp(s, &s->ents[i - 1].o, &s->ents[i].o) != 0)
			tie_start = i;
		e = emit_entry(t, s, &s->ents[i], ws, we, (int64_t)tie_start + 1);
	}
	if (e == EDDY_OK && (e = ev_state_clear(s->st, s->rows_id)) != EDDY_OK)
		return sfail(t, s, e, "clearing a window");
	return e;
}

static eddy_err topn_watermark(task *t, void *state, int64_t wm)
{
	tstate *s = state;
	s->wm = wm;
	eddy_err err = EDDY_OK;
	ev_timer tm;
	while (err == EDDY_OK && (err = ev_timer_pop(s->st, EV_TIME_EVENT, wm, &tm)) == EDDY_OK) {
		int64_t ns[2];
		if (tm.ns.len != sizeof(ns))
			return task_fail(t, "top_n: a timer's window has %zu bytes, not 16",
			                 tm.ns.len);
		memcpy(ns, tm.ns.p, sizeof(ns));
		err = fire(t, s, ns[0], ns[1]);
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

static void topn_close(task *t, void *state)
{
	(void)t;
	tstate *s = state;
	if (s == NULL)
		return;
	rt_free(s->cands);
	rt_free(s->groups);
	rt_free(s->slots);
	rt_free(s->sorted);
	rt_free(s->karena);
	rt_free(s->ents);
	rt_free(s->merged);
	rt_free(s->buf);
	batch_free(s->out);
	batch_free(s->late);
	rt_free(s);
}

static eddy_err topn_open(task *t, void **state)
{
	tstate *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	*state = s;
	const topn_conf *c = s->c = task_node_of(t)->conf;
	s->st = task_keyed_state(t);
	s->wm = WM_MIN;
	s->str = c->order_type == EV_STRING;
	s->orderf = expr_field(c->order_by);
	for (uint32_t k = 0; k < c->nkeys; k++)
		s->keyf[k] = expr_field(c->keys[k]);
	ev_state_desc d = {.name = "rows", .kind = EV_STATE_VALUE};
	eddy_err e = ev_state_register(s->st, &d, &s->rows_id);
	if (e != EDDY_OK)
		return sfail(t, s, e, "registering state");
	return arena_reserve(s, 256); /* karena is never NULL, also for an empty key */
}

/* ---- checkpoints: the windows are keyed state (snapshotted by the task); the
 * operator's own snapshot is {"v": 1, "wm": W}, its watermark. */

/* topn_shape: what the top_n's state layout depends on — its window (ms), the order
 * value's type, n, and the types of the input's fields (its rows are stored by them). */
static void topn_shape(const topn_conf *c, char *buf, size_t size)
{
	static const char *const wins[] = {"tumbling", "sliding", "input"};
	size_t o =
	    (size_t)snprintf(buf, size, "%s %lld/%lld order %s %s n %u keys %u in", wins[c->window],
	                     (long long)c->size_ms, (long long)c->slide_ms,
	                     ev_type_name(c->order_type), c->desc ? "desc" : "asc", c->n, c->nkeys);
	for (uint32_t f = 0; f < c->in->n && o < size; f++)
		o +=
		    (size_t)snprintf(buf + o, size - o, " %s", ev_type_name(c->in->fields[f].type));
}

static eddy_err topn_snapshot(task *t, void *state, uint64_t id, msgpack_packer *pk)
{
	(void)id;
	tstate *s = state;
	publish_size(t, s, true);
	char shape[1024];
	topn_shape(s->c, shape, sizeof(shape));
	msgpack_pack_map(pk, 4);
	msgpack_pack_str_with_body(pk, "v", 1);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_str_with_body(pk, "wm", 2);
	msgpack_pack_int64(pk, s->wm);
	op_pack_shape(pk, "top_n", shape);
	return EDDY_OK;
}

static eddy_err topn_restore(task *t, void *state, const msgpack_object *o)
{
	tstate *s = state;
	char shape[1024], why[2560];
	topn_shape(s->c, shape, sizeof(shape));
	if (op_shape_mismatch(o, "top_n", shape,
	                      "window and its size/slide in ms, order type and direction, n, "
	                      "key count, the input's field types",
	                      why, sizeof(why)))
		return task_fail(t, "%s", why);
	const msgpack_object *v = o ? mp_get(o, "v") : NULL, *wm = o ? mp_get(o, "wm") : NULL;
	int64_t w;
	if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 1 ||
	    wm == NULL || !mp_int(wm, &w))
		return task_fail(t, "top_n: the checkpoint holds no top_n state of version 1");
	if (!task_rescaled(t) || s->restored == 0 || w < s->wm)
		s->wm = w; /* rescaled: the lowest of the old subtasks' */
	s->restored++;
	publish_size(t, s, true);
	return EDDY_OK;
}

const op_def topn_op = {
    .type = "top_n",
    .open = topn_open,
    .process = topn_process,
    .watermark = topn_watermark,
    .close = topn_close,
    .snapshot = topn_snapshot,
    .restore = topn_restore,
    .rescalable = true,
    .keyed_state = true,
};
