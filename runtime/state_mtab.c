/*
 * The memory side of keyed state: a slab allocator for entries, hash tables with
 * page-level copy on write, frozen entries and the retired list (see state_int.h).
 * Everything here runs on the handle's thread, except mt_snap_release and the last
 * core_unref, which may run on a snapshot's thread once the handle is done with it.
 */
#include "state_int.h"

#include "alloc.h"

#include <assert.h>
#include <xxhash.h>

uint64_t st_hash(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

/* ---- slab ---- */

static const uint16_t cls_size[SLAB_NCLASS] = { 32,   48,   64,   80,   96,   112,  128,
	                                        160,  192,  224,  256,  320,  384,  448,
	                                        512,  640,  768,  896,  1024, 1280, 1536,
	                                        1792, 2048, 2560, 3072, 3584, 4096 };

static int cls_for(size_t need)
{
	if (need > cls_size[SLAB_NCLASS - 1])
		return -1;
	int lo = 0, hi = SLAB_NCLASS - 1;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (cls_size[mid] >= need)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

#define BIG_HDR 16 /* a big entry's allocation starts with its index in slab.big */

ment *ment_alloc(st_core *c, uint32_t klen, uint64_t vmin)
{
	st_slab *s = &c->slab;
	size_t need = sizeof(ment) + klen + vmin;
	int k = cls_for(need);
	ment *e;
	if (k >= 0) {
		void *p = s->free[k];
		if (p != NULL) {
			memcpy(&s->free[k], p, sizeof(void *));
		} else {
			size_t sz = cls_size[k];
			if (s->left < sz) {
				if (s->nchunks == s->capchunks) {
					size_t ncap = s->capchunks ? s->capchunks * 2 : 16;
					void **n = rt_realloc(s->chunks, ncap * sizeof(*n));
					if (n == NULL)
						return NULL;
					s->chunks = n;
					s->capchunks = ncap;
				}
				uint8_t *ch = rt_malloc(SLAB_CHUNK);
				if (ch == NULL)
					return NULL;
				s->chunks[s->nchunks++] = ch;
				s->cur = ch;
				s->left = SLAB_CHUNK;
			}
			p = s->cur;
			s->cur += sz;
			s->left -= sz;
		}
		e = p;
		e->cls = (uint8_t)k;
		e->vcap = (uint32_t)(cls_size[k] - sizeof(ment) - klen);
		s->bytes += cls_size[k];
	} else {
		if (vmin > 2 * (uint64_t)EV_STATE_MAX_VALUE)
			return NULL;
		if (s->nbig == s->capbig) {
			size_t ncap = s->capbig ? s->capbig * 2 : 16;
			void **n = rt_realloc(s->big, ncap * sizeof(*n));
			if (n == NULL)
				return NULL;
			s->big = n;
			s->capbig = ncap;
		}
		uint8_t *raw = rt_malloc(BIG_HDR + need);
		if (raw == NULL)
			return NULL;
		size_t idx = s->nbig++;
		memcpy(raw, &idx, sizeof(idx));
		s->big[idx] = raw;
		e = (ment *)(raw + BIG_HDR);
		e->cls = SLAB_BIG;
		e->vcap = (uint32_t)vmin;
		s->bytes += need;
	}
	assert(((uintptr_t)e >> 48) == 0); /* slots keep a tag in the top 16 bits */
	e->klen = klen;
	e->vlen = 0;
	e->epoch = c->epoch;
	e->aux = 0;
	e->flags = 0;
	e->pad = 0;
	return e;
}

void ment_free(st_core *c, ment *e)
{
	st_slab *s = &c->slab;
	if (e->flags & MF_MAP) {
		mtab *m = ment_map(e);
		mt_fini(m);
		rt_free(m);
	}
	if (e->cls == SLAB_BIG) {
		uint8_t *raw = (uint8_t *)e - BIG_HDR;
		size_t idx;
		memcpy(&idx, raw, sizeof(idx));
		assert(idx < s->nbig && s->big[idx] == raw);
		s->big[idx] = s->big[--s->nbig];
		memcpy(s->big[idx], &idx, sizeof(idx));
		s->bytes -= sizeof(ment) + e->klen + e->vcap;
		rt_free(raw);
		return;
	}
	s->bytes -= cls_size[e->cls];
	memcpy(e, &s->free[e->cls], sizeof(void *));
	s->free[e->cls] = e;
}

static void slab_fini(st_slab *s)
{
	for (size_t i = 0; i < s->nchunks; i++)
		rt_free(s->chunks[i]);
	for (size_t i = 0; i < s->nbig; i++)
		rt_free(s->big[i]);
	rt_free(s->chunks);
	rt_free(s->big);
	memset(s, 0, sizeof(*s));
}

/* ---- core ---- */

eddy_err core_create(st_core **out)
{
	st_core *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	atomic_init(&c->refs, 1);
	atomic_init(&c->live_snaps, 0);
	mt_init(&c->main, c, true);
	mt_init(&c->timers, c, true);
	mt_init(&c->overlay, c, false);
	c->main.tomb = 0;
	c->timers.tomb = 1;
	*out = c;
	return EDDY_OK;
}

void core_unref(st_core *c)
{
	if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* no handle, no snapshot: every entry is ours alone */
	assert(atomic_load(&c->live_snaps) == 0);
	for (size_t i = 0; i < c->nretired; i++)
		ment_free(c, c->retired[i]);
	rt_free(c->retired);
	rt_free(c->tomb[0].p);
	rt_free(c->tomb[1].p);
	mt_fini(&c->main);
	mt_fini(&c->timers);
	mt_fini(&c->overlay);
	slab_fini(&c->slab);
	rt_free(c);
}

void core_gc(st_core *c)
{
	if (c->nretired == 0 || atomic_load_explicit(&c->live_snaps, memory_order_acquire) > 0)
		return;
	for (size_t i = 0; i < c->nretired; i++)
		ment_free(c, c->retired[i]);
	c->nretired = 0;
}

eddy_err core_reserve_retire(st_core *c)
{
	if (c->nretired < c->capretired)
		return EDDY_OK;
	size_t ncap = c->capretired ? c->capretired * 2 : 64;
	ment **n = rt_realloc(c->retired, ncap * sizeof(*n));
	if (n == NULL)
		return EDDY_ENOMEM;
	c->retired = n;
	c->capretired = ncap;
	return EDDY_OK;
}

/* drop frees e, or retires it if a snapshot may read it (room reserved). */
static void drop(mtab *t, ment *e)
{
	st_core *c = t->core;
	if (t->cow && ment_frozen(c, e)) {
		assert(c->nretired < c->capretired);
		c->retired[c->nretired++] = e;
	} else {
		ment_free(c, e);
	}
}

/* ---- tables ---- */

#define MT_PAGE_SHIFT 10

void mt_init(mtab *t, st_core *c, bool cow)
{
	memset(t, 0, sizeof(*t));
	t->core = c;
	t->cow = cow;
	t->tomb = -1;
}

static void page_unref(mt_page *p)
{
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		rt_free(p);
}

static void dir_free(mt_page **dir, size_t npages)
{
	for (size_t i = 0; i < npages; i++)
		if (dir[i] != NULL)
			page_unref(dir[i]);
	rt_free(dir);
}

static eddy_err dir_alloc(size_t cap, mt_page ***out, size_t *npages, unsigned *shift)
{
	unsigned sh = 0;
	while (sh < MT_PAGE_SHIFT && ((size_t)1 << sh) < cap)
		sh++;
	size_t per = (size_t)1 << sh, np = cap / per;
	mt_page **dir = rt_calloc(np, sizeof(*dir));
	if (dir == NULL)
		return EDDY_ENOMEM;
	for (size_t i = 0; i < np; i++) {
		dir[i] = rt_calloc(1, sizeof(mt_page) + per * sizeof(uintptr_t));
		if (dir[i] == NULL) {
			dir_free(dir, np);
			return EDDY_ENOMEM;
		}
		atomic_init(&dir[i]->refs, 1);
		dir[i]->nslots = (uint32_t)per;
	}
	*out = dir;
	*npages = np;
	*shift = sh;
	return EDDY_OK;
}

void mt_fini(mtab *t)
{
	for (size_t i = 0; i < t->cap; i++) {
		uintptr_t s = mt_slot((const mt_page *const *)t->dir, t->shift, i);
		if (s)
			ment_free(t->core, MT_PTR(s));
	}
	dir_free(t->dir, t->npages);
	mt_init(t, t->core, t->cow);
}

void mt_clear(mtab *t)
{
	mt_fini(t);
}

static inline uintptr_t *slotp(const mtab *t, size_t i)
{
	return &t->dir[i >> t->shift]->slot[i & ((1u << t->shift) - 1)];
}

/* own_page makes page pi the table's alone (copying it if a snapshot shares it). */
static eddy_err own_page(mtab *t, size_t pi)
{
	mt_page *p = t->dir[pi];
	if (!t->cow || atomic_load_explicit(&p->refs, memory_order_acquire) == 1)
		return EDDY_OK;
	size_t sz = sizeof(mt_page) + (size_t)p->nslots * sizeof(uintptr_t);
	mt_page *n = rt_malloc(sz);
	if (n == NULL)
		return EDDY_ENOMEM;
	/* not the refs field: a snapshot's thread may be dropping its reference */
	memcpy(n->slot, p->slot, (size_t)p->nslots * sizeof(uintptr_t));
	n->nslots = p->nslots;
	atomic_init(&n->refs, 1);
	t->dir[pi] = n;
	page_unref(p);
	return EDDY_OK;
}

ment *mt_find(const mtab *t, uint64_t h, const void *k, uint32_t kl, size_t *pos)
{
	if (t->cap == 0) {
		*pos = 0;
		return NULL;
	}
	size_t mask = t->cap - 1;
	uintptr_t tag = MT_TAG(h);
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uintptr_t s = *slotp(t, i);
		if (s == 0) {
			*pos = i;
			return NULL;
		}
		if ((s & MT_TAG_MASK) == tag) {
			ment *e = MT_PTR(s);
			if (e->hash == h && e->klen == kl && memcmp(e->data, k, kl) == 0) {
				*pos = i;
				return e;
			}
		}
	}
}

static eddy_err mt_grow(mtab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 8;
	mt_page **dir;
	size_t np;
	unsigned sh;
	eddy_err err = dir_alloc(ncap, &dir, &np, &sh);
	if (err != EDDY_OK)
		return err;
	size_t mask = ncap - 1, per_mask = ((size_t)1 << sh) - 1;
	for (size_t i = 0; i < t->cap; i++) {
		uintptr_t s = *slotp(t, i);
		if (s == 0)
			continue;
		size_t j = MT_PTR(s)->hash & mask;
		while (dir[j >> sh]->slot[j & per_mask] != 0)
			j = (j + 1) & mask;
		dir[j >> sh]->slot[j & per_mask] = s;
	}
	dir_free(t->dir, t->npages);
	t->dir = dir;
	t->npages = np;
	t->shift = sh;
	t->cap = ncap;
	return EDDY_OK;
}

static inline bool need_grow(const mtab *t)
{
	return (t->count + 1) * 4 > t->cap * 3;
}

eddy_err mt_insert(mtab *t, ment *e)
{
	eddy_err err;
	if (need_grow(t) && (err = mt_grow(t)) != EDDY_OK)
		return err;
	size_t mask = t->cap - 1, i = e->hash & mask;
	while (*slotp(t, i) != 0)
		i = (i + 1) & mask;
	if ((err = own_page(t, i >> t->shift)) != EDDY_OK)
		return err;
	*slotp(t, i) = MT_SLOT(e);
	t->count++;
	return EDDY_OK;
}

eddy_err mt_replace(mtab *t, size_t pos, ment *e, ment *n)
{
	eddy_err err = own_page(t, pos >> t->shift);
	if (err == EDDY_OK && t->cow && ment_frozen(t->core, e))
		err = core_reserve_retire(t->core);
	if (err != EDDY_OK)
		return err;
	assert(MT_PTR(*slotp(t, pos)) == e);
	*slotp(t, pos) = MT_SLOT(n);
	drop(t, e);
	return EDDY_OK;
}

/* note_change sets n's MF_BORN, MF_APPEND and aux for a change (an append or not) in
 * epoch ep of entry e, as it was (n: its copy, or e itself before its epoch is set). */
static void note_change(const ment *e, ment *n, uint32_t ep, bool append)
{
	bool first = e->epoch != ep; /* e is as the last snapshot holds it */
	uint8_t keep = first ? MF_APPEND : e->flags & (MF_BORN | MF_APPEND);
	n->aux = first ? e->vlen : e->aux;
	if (!append)
		keep &= (uint8_t)~MF_APPEND;
	n->flags = (uint8_t)((n->flags & ~(MF_BORN | MF_APPEND)) | keep);
}

eddy_err mt_write(mtab *t, uint64_t h, const void *k, uint32_t kl, const void *v, uint32_t vl,
                  bool append, uint8_t flags, ment **out)
{
	size_t pos;
	ment *e = mt_find(t, h, k, kl, &pos);
	eddy_err err;
	if (e == NULL) {
		if (need_grow(t) && (err = mt_grow(t)) != EDDY_OK)
			return err;
		ment *n = ment_alloc(t->core, kl, vl);
		if (n == NULL)
			return EDDY_ENOMEM;
		n->hash = h;
		memcpy(n->data, k, kl);
		if (vl)
			memcpy(ment_val(n), v, vl);
		n->vlen = vl;
		n->flags = flags | (t->cow ? MF_BORN : 0);
		if ((err = mt_insert(t, n)) != EDDY_OK) {
			ment_free(t->core, n);
			return err;
		}
		if (out)
			*out = n;
		return EDDY_OK;
	}
	assert(!(e->flags & MF_MAP));
	uint32_t old = append && !(e->flags & MF_TOMB) ? e->vlen : 0;
	uint64_t nl = (uint64_t)old + vl;
	if (nl > EV_STATE_MAX_VALUE)
		return EDDY_EINVAL;
	if (nl <= e->vcap && !(t->cow && ment_frozen(t->core, e))) {
		if (t->cow && (err = mt_touch(t, pos, append)) != EDDY_OK)
			return err;
		if (vl)
			memmove(ment_val(e) + old, v, vl);
		e->vlen = (uint32_t)nl;
		e->flags = flags | (e->flags & (MF_BORN | MF_APPEND));
		if (out)
			*out = e;
		return EDDY_OK;
	}
	uint64_t want = append ? nl + nl / 2 : nl;
	if (want > EV_STATE_MAX_VALUE)
		want = nl;
	ment *n = ment_alloc(t->core, kl, want);
	if (n == NULL)
		return EDDY_ENOMEM;
	n->hash = h;
	memcpy(n->data, e->data, kl);
	if (old)
		memcpy(ment_val(n), ment_val(e), old);
	if (vl)
		memcpy(ment_val(n) + old, v, vl);
	n->vlen = (uint32_t)nl;
	n->flags = flags;
	if (t->cow) /* a change of e: what it was before this epoch's changes */
		note_change(e, n, t->core->epoch, append);
	if ((err = mt_replace(t, pos, e, n)) != EDDY_OK) {
		ment_free(t->core, n);
		return err;
	}
	if (out)
		*out = n;
	return EDDY_OK;
}

eddy_err mt_touch(mtab *t, size_t pos, bool append)
{
	ment *e = MT_PTR(*slotp(t, pos));
	uint32_t ep = t->core->epoch;
	eddy_err err = e->epoch != ep ? own_page(t, pos >> t->shift) : EDDY_OK;
	if (err != EDDY_OK)
		return err;
	note_change(e, e, ep, append);
	if (e->epoch != ep) { /* its first change since the last snapshot */
		e->epoch = ep;
		*slotp(t, pos) = MT_SLOT(e);
	}
	return EDDY_OK;
}

/* tomb_add appends key k (kl bytes) to tombstone list b. */
static eddy_err tomb_add(st_tomb *b, const uint8_t *k, uint32_t kl)
{
	if (st_reserve(&b->p, &b->cap, b->n + 5 + kl) != EDDY_OK)
		return EDDY_ENOMEM;
	b->n += vput(b->p + b->n, kl);
	memcpy(b->p + b->n, k, kl);
	b->n += kl;
	b->count++;
	return EDDY_OK;
}

eddy_err mt_remove_at(mtab *t, size_t pos)
{
	size_t mask = t->cap - 1;
	ment *e = MT_PTR(*slotp(t, pos));
	eddy_err err;
	/* own every page the shift will write before writing any */
	size_t last_page = (size_t)-1;
	for (size_t j = pos;; j = (j + 1) & mask) {
		if ((j >> t->shift) != last_page) {
			last_page = j >> t->shift;
			if ((err = own_page(t, last_page)) != EDDY_OK)
				return err;
		}
		if (*slotp(t, (j + 1) & mask) == 0)
			break;
	}
	if (t->cow && ment_frozen(t->core, e) && (err = core_reserve_retire(t->core)) != EDDY_OK)
		return err;
	st_core *c = t->core;
	if (t->tomb >= 0 && c->track && !c->tomb_off &&
	    !(e->epoch == c->epoch && (e->flags & MF_BORN))) {
		/* it is in the last snapshot: a delta must say it is gone — unless more has gone
		 * than is left (a churning state: windows fired, timers popped), where a delta
		 * would be no smaller than the state: then none is kept until the next snapshot,
		 * which cannot be a delta (memory stays bounded by the state's) */
		if (c->tomb[0].count + c->tomb[1].count >= 1024 + c->main.count + c->timers.count) {
			for (int k = 0; k < 2; k++) {
				rt_free(c->tomb[k].p);
				c->tomb[k] = (st_tomb){0};
			}
			c->tomb_off = true;
		} else if ((err = tomb_add(&c->tomb[t->tomb], e->data, e->klen)) != EDDY_OK) {
			return err;
		}
	}
	size_t i = pos, j = pos;
	for (;;) {
		j = (j + 1) & mask;
		uintptr_t s = *slotp(t, j);
		if (s == 0)
			break;
		size_t home = MT_PTR(s)->hash & mask;
		/* the entry at j may move to the hole at i unless its home lies in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			*slotp(t, i) = s;
			i = j;
		}
	}
	*slotp(t, i) = 0;
	t->count--;
	drop(t, e);
	return EDDY_OK;
}

eddy_err mt_clone(mtab *dst, const mtab *src)
{
	mt_init(dst, src->core, false);
	if (src->cap == 0)
		return EDDY_OK;
	eddy_err err = dir_alloc(src->cap, &dst->dir, &dst->npages, &dst->shift);
	if (err != EDDY_OK)
		return err;
	dst->cap = src->cap;
	for (size_t i = 0; i < src->cap; i++) {
		uintptr_t s = *slotp(src, i);
		if (s == 0)
			continue;
		ment *e = MT_PTR(s);
		assert(!(e->flags & MF_MAP));
		ment *n = ment_alloc(src->core, e->klen, e->vlen);
		if (n == NULL) {
			mt_fini(dst);
			return EDDY_ENOMEM;
		}
		n->hash = e->hash;
		n->vlen = e->vlen;
		n->flags = e->flags;
		memcpy(n->data, e->data, (size_t)e->klen + e->vlen);
		*slotp(dst, i) = MT_SLOT(n);
		dst->count++;
	}
	return EDDY_OK;
}

uint64_t mt_bytes(const mtab *t)
{
	return t->cap * sizeof(uintptr_t) + t->npages * (sizeof(mt_page) + sizeof(mt_page *));
}

eddy_err mt_snap_take(mtab *t, mt_snap *s)
{
	memset(s, 0, sizeof(*s));
	if (t->cap == 0)
		return EDDY_OK;
	s->dir = rt_malloc(t->npages * sizeof(*s->dir));
	if (s->dir == NULL)
		return EDDY_ENOMEM;
	memcpy(s->dir, t->dir, t->npages * sizeof(*s->dir));
	for (size_t i = 0; i < t->npages; i++)
		atomic_fetch_add_explicit(&t->dir[i]->refs, 1, memory_order_relaxed);
	s->npages = t->npages;
	s->shift = t->shift;
	s->cap = t->cap;
	s->count = t->count;
	return EDDY_OK;
}

void mt_snap_release(mt_snap *s)
{
	if (s->dir != NULL)
		dir_free(s->dir, s->npages);
	memset(s, 0, sizeof(*s));
}

bool st_parse_key(const uint8_t *p, size_t n, st_kparts *out)
{
	if (n < 2)
		return false;
	out->kg = (uint32_t)p[0] << 8 | p[1];
	size_t o = 2, m;
	if ((m = vget(p + o, n - o, &out->klen)) == 0 || out->klen > n - o - m)
		return false;
	o += m;
	out->key = p + o;
	o += out->klen;
	if ((m = vget(p + o, n - o, &out->nslen)) == 0 || out->nslen > n - o - m)
		return false;
	o += m;
	out->ns = p + o;
	o += out->nslen;
	out->rest = p + o;
	out->restlen = (uint32_t)(n - o);
	return true;
}
