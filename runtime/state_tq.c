/*
 * The timer queue of a keyed-state handle: per domain, a bucket of timers per distinct
 * time, a min-heap over the buckets' times and a hash map time -> bucket (the design is in
 * state_int.h). Timers come out in the order of their keys' bytes (time, key group, key,
 * namespace), exactly as one heap over all the timers would give them.
 */
#include "state_int.h"

#include "alloc.h"

#include <assert.h>

#define TQ_MAXN (TQ_LATE - 1) /* items per bucket (ment.aux has 31 bits for the slot) */
#define TQ_RUN 16             /* the sort: runs this long are sorted by insertion */

/* ---- items ---- */

/* be64_at: the 8 key bytes of e from off, big-endian, zero-padded past its end. */
static inline uint64_t be64_at(const ment *e, uint32_t off)
{
	uint64_t v = 0;
	if (e->klen >= off + 8) {
		memcpy(&v, e->data + off, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		v = __builtin_bswap64(v);
#endif
		return v;
	}
	for (uint32_t i = off; i < off + 8; i++)
		v = v << 8 | (i < e->klen ? e->data[i] : 0);
	return v;
}

static inline st_titem item_of(ment *e)
{
	return (st_titem){ be64_at(e, ST_TK_HDR), be64_at(e, ST_TK_HDR + 8), e };
}

/* ti_before: whether x's key sorts before y's (both of one time: the bytes before
 * ST_TK_HDR are equal). */
static inline bool ti_before(const st_titem *x, const st_titem *y)
{
	if (x->pfx != y->pfx)
		return x->pfx < y->pfx;
	if (x->pfx2 != y->pfx2)
		return x->pfx2 < y->pfx2;
	const ment *a = x->e, *b = y->e;
	uint32_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = memcmp(a->data + ST_TK_HDR, b->data + ST_TK_HDR, n - ST_TK_HDR);
	return c < 0 || (c == 0 && a->klen < b->klen);
}

/* merge_sort sorts a[0, n) (no two equal) with tmp (room for n): insertion sort of runs
 * of TQ_RUN, then bottom-up merges; O(n log n) whatever the input. */
static void merge_sort(st_titem *a, size_t n, st_titem *tmp)
{
	for (size_t lo = 0; lo < n; lo += TQ_RUN) {
		size_t hi = lo + TQ_RUN < n ? lo + TQ_RUN : n;
		for (size_t i = lo + 1; i < hi; i++) {
			st_titem x = a[i];
			size_t j = i;
			for (; j > lo && ti_before(&x, &a[j - 1]); j--)
				a[j] = a[j - 1];
			a[j] = x;
		}
	}
	if (n <= TQ_RUN)
		return;
	st_titem *src = a, *dst = tmp;
	for (size_t w = TQ_RUN; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				dst[k++] = ti_before(&src[j], &src[i]) ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		st_titem *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
}

#define TQ_BINBITS 10   /* distribute: at most 1024 bins */
#define TQ_RADIX_MIN 64 /* sort_range: merge-sort ranges this short */

static inline uint64_t field(const st_titem *x, int f)
{
	return f == 0 ? x->pfx : x->pfx2;
}

/* distribute orders a[0, n) by bin (field f - lo) >> shift, of nbins (<= 2^TQ_BINBITS),
 * through tmp: a counting sort, stable. Not inlined: its counts stay off the stack of the
 * recursion. */
static __attribute__((noinline)) void distribute(st_titem *a, size_t n, st_titem *tmp, int f,
                                                 uint64_t lo, unsigned shift, size_t nbins)
{
	uint32_t start[(1u << TQ_BINBITS) + 1];
	memset(start, 0, (nbins + 1) * sizeof(start[0]));
	for (size_t i = 0; i < n; i++)
		start[((field(&a[i], f) - lo) >> shift) + 1]++;
	for (size_t k = 1; k < nbins; k++)
		start[k] += start[k - 1];
	for (size_t i = 0; i < n; i++)
		tmp[start[(field(&a[i], f) - lo) >> shift]++] = a[i];
	memcpy(a, tmp, n * sizeof(*a));
}

/* sort_range sorts a[0, n) (no two equal), whose items agree on the fields before f, with
 * tmp (room for n): an MSD radix sort on the bits in which field f varies (the key group
 * and the key's bytes, mostly), about 4 items per bin, down to ranges of TQ_RADIX_MIN that
 * are merge-sorted, as are items equal on both fields (they compare their entries' bytes).
 * A few passes of a few instructions per item and level. */
static void sort_range(st_titem *a, size_t n, st_titem *tmp, int f)
{
	if (n <= TQ_RADIX_MIN) {
		merge_sort(a, n, tmp);
		return;
	}
	uint64_t lo = field(&a[0], f), hi = lo;
	for (size_t i = 1; i < n; i++) {
		uint64_t v = field(&a[i], f);
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	if (lo == hi) {
		if (f == 0)
			sort_range(a, n, tmp, 1);
		else
			merge_sort(a, n, tmp);
		return;
	}
	unsigned bits = 64 - (unsigned)__builtin_clzll(hi - lo); /* hi - lo < 2^bits */
	unsigned want = 2;                                       /* 2^want bins: about n / 4 */
	while (want < TQ_BINBITS && (size_t)1 << (want + 3) <= n)
		want++;
	unsigned shift = bits > want ? bits - want : 0;
	distribute(a, n, tmp, f, lo, shift, (size_t)((hi - lo) >> shift) + 1);
	for (size_t i = 0; i < n;) {
		uint64_t k = (field(&a[i], f) - lo) >> shift;
		size_t j = i + 1;
		while (j < n && (field(&a[j], f) - lo) >> shift == k)
			j++;
		if (j - i > 1)
			sort_range(a + i, j - i, tmp + i, f);
		i = j;
	}
}

/* sort_items sorts a bucket's items a[0, n) with tmp (room for n). */
static void sort_items(st_titem *a, size_t n, st_titem *tmp)
{
	sort_range(a, n, tmp, 0);
}

/* ---- a bucket's late heap ---- */

static inline void late_set(st_tbucket *b, size_t i, st_titem it)
{
	b->late[i] = it;
	it.e->aux = TQ_LATE | (uint32_t)i;
}

static void late_up(st_tbucket *b, size_t i)
{
	st_titem it = b->late[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ti_before(&it, &b->late[p]))
			break;
		late_set(b, i, b->late[p]);
		i = p;
	}
	late_set(b, i, it);
}

static void late_down(st_tbucket *b, size_t i)
{
	st_titem it = b->late[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const st_titem *best = &it;
		if (l < b->nlate && ti_before(&b->late[l], best))
			m = l, best = &b->late[l];
		if (r < b->nlate && ti_before(&b->late[r], best))
			m = r;
		if (m == i)
			break;
		late_set(b, i, b->late[m]);
		i = m;
	}
	late_set(b, i, it);
}

static void late_remove(st_tbucket *b, size_t i)
{
	assert(i < b->nlate);
	st_titem last = b->late[--b->nlate];
	if (i == b->nlate)
		return;
	late_set(b, i, last);
	late_up(b, i);
	late_down(b, last.e->aux & ~TQ_LATE);
}

/* ---- the heap of buckets (by time; times are distinct) ---- */

static void hp_push(st_tq *q, st_tref r)
{
	size_t i = q->nheap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (q->heap[p].time <= r.time)
			break;
		q->heap[i] = q->heap[p];
		i = p;
	}
	q->heap[i] = r;
}

static void hp_pop(st_tq *q)
{
	assert(q->nheap > 0);
	st_tref r = q->heap[--q->nheap];
	size_t n = q->nheap, i = 0;
	for (;;) {
		size_t l = 2 * i + 1, m = l;
		if (l >= n)
			break;
		if (l + 1 < n && q->heap[l + 1].time < q->heap[l].time)
			m = l + 1;
		if (r.time <= q->heap[m].time)
			break;
		q->heap[i] = q->heap[m];
		i = m;
	}
	if (n > 0)
		q->heap[i] = r;
}

/* ---- the map time -> bucket ---- */

static inline size_t map_home(const st_tq *q, int64_t time)
{
	return (size_t)(((uint64_t)time * 0x9e3779b97f4a7c15ull) >> q->mapshift);
}

/* map_find: the bucket + 1 of time, 0 if none. */
static uint32_t map_find(const st_tq *q, int64_t time)
{
	if (q->mapcap == 0)
		return 0;
	size_t mask = q->mapcap - 1;
	for (size_t i = map_home(q, time);; i = (i + 1) & mask) {
		const st_tref *m = &q->map[i];
		if (m->b == 0 || m->time == time)
			return m->b;
	}
}

/* map_put adds time -> s (bucket + 1; time is not in the map). */
static void map_put(st_tq *q, int64_t time, uint32_t s)
{
	size_t mask = q->mapcap - 1, i = map_home(q, time);
	while (q->map[i].b != 0)
		i = (i + 1) & mask;
	q->map[i] = (st_tref){ time, s };
}

/* map_del removes time's slot (it is there), shifting back the slots after it. */
static void map_del(st_tq *q, int64_t time)
{
	size_t mask = q->mapcap - 1, i = map_home(q, time);
	while (q->map[i].time != time || q->map[i].b == 0)
		i = (i + 1) & mask;
	for (size_t j = i;;) {
		j = (j + 1) & mask;
		if (q->map[j].b == 0)
			break;
		size_t k = map_home(q, q->map[j].time);
		/* slot j may move to i if its home is not in (i, j] (cyclically) */
		if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
			q->map[i] = q->map[j];
			i = j;
		}
	}
	q->map[i].b = 0;
}

/* map_grow makes the map hold one more bucket at load <= 1/2. */
static eddy_err map_grow(st_tq *q)
{
	if ((q->nheap + 1) * 2 <= q->mapcap)
		return EDDY_OK;
	size_t cap = q->mapcap ? q->mapcap * 2 : 16;
	unsigned shift = 64;
	for (size_t c = cap; c > 1; c >>= 1)
		shift--;
	st_tref *m = rt_calloc(cap, sizeof(*m));
	if (m == NULL)
		return EDDY_ENOMEM;
	rt_free(q->map);
	q->map = m;
	q->mapcap = cap;
	q->mapshift = shift;
	for (size_t i = 0; i < q->nheap; i++)
		map_put(q, q->heap[i].time, q->heap[i].b + 1);
	return EDDY_OK;
}

/* ---- the queue ---- */

/* items: the bucket's items (its array, or the one inline item of a bucket that never
 * held two). */
static inline st_titem *items(st_tbucket *b)
{
	return b->cap != 0 ? b->it : &b->one;
}

/* find: the bucket + 1 of time (live or dead), 0 if none (remembered in q->last). */
static inline uint32_t find(st_tq *q, int64_t time)
{
	uint32_t s = q->last;
	if (s != 0 && q->b[s - 1].time == time)
		return s;
	if (q->nheap != 0 && q->heap[0].time == time)
		s = q->heap[0].b + 1;
	else if ((s = map_find(q, time)) == 0)
		return 0;
	q->last = s;
	return s;
}

/* grow makes *p (*cap elements of elem bytes) hold need. */
static inline eddy_err grow(void **p, size_t *cap, size_t need, size_t elem, size_t min)
{
	return need <= *cap ? EDDY_OK : rt_grow(p, cap, need, elem, min);
}

/* recycle_top moves the earliest bucket (empty) to the free list, keeping its arrays. */
static void recycle_top(st_tq *q)
{
	uint32_t s = q->heap[0].b + 1;
	st_tbucket *b = &q->b[s - 1];
	assert(b->live == 0 && b->n == 0 && b->nlate == 0 && !b->sorted);
	hp_pop(q);
	map_del(q, b->time);
	b->next = q->free;
	q->free = s;
	if (q->last == s)
		q->last = 0;
}

/* drop_dead recycles the dead buckets at the top of the heap. */
static inline void drop_dead(st_tq *q)
{
	while (q->nheap != 0 && q->b[q->heap[0].b].live == 0)
		recycle_top(q);
}

eddy_err tq_reserve(st_tq *q, int64_t time, uint32_t *where)
{
	uint32_t s = find(q, time);
	st_tbucket *b;
	*where = s;
	if (s != 0) {
		b = &q->b[s - 1];
		if (b->sorted)
			return b->nlate >= TQ_MAXN ? EDDY_ENOMEM
			                           : grow((void **)&b->late, &b->caplate,
			                                  b->nlate + 1, sizeof(*b->late), 4);
	} else {
		/* a new bucket: a free one, a heap slot, a map slot */
		if (q->free == 0) {
			if (q->nb >= UINT32_MAX - 1 ||
			    grow((void **)&q->b, &q->capb, q->nb + 1, sizeof(*q->b), 8) != EDDY_OK)
				return EDDY_ENOMEM;
			b = &q->b[q->nb];
			memset(b, 0, sizeof(*b));
			b->next = q->free;
			q->free = (uint32_t)++q->nb;
		}
		if (grow((void **)&q->heap, &q->capheap, q->nheap + 1, sizeof(*q->heap), 16) !=
		        EDDY_OK ||
		    map_grow(q) != EDDY_OK)
			return EDDY_ENOMEM;
		b = &q->b[q->free - 1];
		assert(b->n == 0);
		return EDDY_OK; /* room for one: its array or the inline item */
	}
	if (b->n >= TQ_MAXN)
		return EDDY_ENOMEM;
	if (b->n + 1 > (b->cap != 0 ? b->cap : 1)) {
		bool was_inline = b->cap == 0;
		if (rt_grow((void **)&b->it, &b->cap, b->n + 1, sizeof(*b->it), 4) != EDDY_OK)
			return EDDY_ENOMEM;
		if (was_inline && b->n != 0) {
			b->it[0] = b->one;
			b->it[0].e->aux = 0;
		}
	}
	/* the sort needs room for n items from TQ_RUN + 1 on */
	return b->n + 1 <= TQ_RUN
	           ? EDDY_OK
		   : grow((void **)&q->scratch, &q->capscratch, b->n + 1, sizeof(*q->scratch), 64);
}

void tq_add(st_tq *q, uint32_t where, int64_t time, ment *e)
{
	uint32_t s = where;
	st_tbucket *b;
	if (s == 0) {
		s = q->free;
		assert(s != 0);
		b = &q->b[s - 1];
		q->free = b->next;
		b->time = time;
		assert(b->n == 0 && b->nlate == 0 && !b->sorted);
		hp_push(q, (st_tref){ time, s - 1 });
		map_put(q, time, s);
		q->last = s;
	}
	b = &q->b[s - 1];
	assert(b->time == time);
	if (b->sorted) {
		assert(b->nlate < b->caplate);
		b->late[b->nlate] = item_of(e);
		late_up(b, b->nlate++);
	} else {
		assert(b->n < (b->cap != 0 ? b->cap : 1));
		items(b)[b->n] = item_of(e);
		e->aux = (uint32_t)b->n++;
	}
	b->live++;
	q->count++;
}

void tq_remove(st_tq *q, int64_t time, uint32_t aux)
{
	uint32_t s = find(q, time);
	assert(s != 0);
	st_tbucket *b = &q->b[s - 1];
	st_titem *it = items(b);
	if (aux & TQ_LATE) {
		late_remove(b, aux & ~TQ_LATE);
	} else if (b->sorted) {
		assert(aux < b->n && it[aux].e != NULL);
		it[aux].e = NULL;
	} else {
		assert(aux < b->n);
		st_titem last = it[--b->n];
		if (aux != b->n) {
			it[aux] = last;
			last.e->aux = aux;
		}
	}
	q->count--;
	if (--b->live != 0)
		return;
	/* empty: recycled now if it is the earliest, else dead until it surfaces (a timer
	 * registered at its time meanwhile revives it) */
	b->n = b->head = b->nlate = 0;
	b->sorted = false;
	if (q->heap[0].b == s - 1)
		recycle_top(q);
}

ment *tq_peek(st_tq *q, int64_t upto)
{
	drop_dead(q);
	if (q->nheap == 0 || q->heap[0].time > upto)
		return NULL;
	st_tbucket *b = &q->b[q->heap[0].b];
	st_titem *it = items(b);
	if (!b->sorted) {
		if (b->n > 1) {
			sort_items(it, b->n, q->scratch);
			for (size_t i = 0; i < b->n; i++)
				it[i].e->aux = (uint32_t)i;
		}
		b->sorted = true;
		b->head = 0;
	}
	while (b->head < b->n && it[b->head].e == NULL)
		b->head++;
	const st_titem *x = b->head < b->n ? &it[b->head] : NULL;
	if (b->nlate != 0 && (x == NULL || ti_before(&b->late[0], x)))
		x = &b->late[0];
	assert(x != NULL);
	return x->e;
}

bool tq_next(st_tq *q, int64_t *time)
{
	drop_dead(q);
	if (q->nheap == 0)
		return false;
	*time = q->heap[0].time;
	return true;
}

void tq_fini(st_tq *q)
{
	for (size_t i = 0; i < q->nb; i++) {
		rt_free(q->b[i].it);
		rt_free(q->b[i].late);
	}
	rt_free(q->b);
	rt_free(q->heap);
	rt_free(q->map);
	rt_free(q->scratch);
	memset(q, 0, sizeof(*q));
}
