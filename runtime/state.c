/*
 * Keyed state: backends, handles, the current key and namespace, the five kinds of state
 * and per-key timers (see include/eddy/state.h and state_int.h for the design). Snapshot
 * files are in state_snap.c, the LevelDB calls in state_ldb.c, the tables in
 * state_mtab.c, the timers' queue in state_tq.c.
 */
#include "state_int.h"

#include "alloc.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

/* ---- key groups ---- */

void ev_key_group_range(uint32_t maxp, uint32_t par, uint32_t subtask, uint32_t *first,
                        uint32_t *last)
{
	assert(par >= 1 && par <= maxp && subtask < par);
	*first = (uint32_t)(((uint64_t)subtask * maxp + par - 1) / par);
	*last = (uint32_t)(((uint64_t)(subtask + 1) * maxp - 1) / par);
}

const char *ev_state_kind_name(ev_state_kind k)
{
	switch (k) {
	case EV_STATE_VALUE: return "value";
	case EV_STATE_LIST: return "list";
	case EV_STATE_MAP: return "map";
	case EV_STATE_REDUCING: return "reducing";
	case EV_STATE_AGGREGATING: return "aggregating";
	}
	return "?";
}

/* ---- errors and buffers ---- */

eddy_err st_fail(ev_state *st, eddy_err e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	return e;
}

static eddy_err oom(ev_state *st)
{
	return st_fail(st, EDDY_ENOMEM, "out of memory");
}

eddy_err st_reserve(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return EDDY_OK;
	size_t ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	uint8_t *n = rt_realloc(*p, ncap);
	if (n == NULL)
		return EDDY_ENOMEM;
	*p = n;
	*cap = ncap;
	return EDDY_OK;
}

void *ev_state_out_reserve(ev_state_out *out, size_t len)
{
	if (len > EV_STATE_MAX_VALUE || st_reserve(&out->p, &out->cap, len ? len : 1) != EDDY_OK) {
		out->oom = true;
		return NULL;
	}
	out->len = len;
	return out->p;
}

eddy_err ev_state_out_set(ev_state_out *out, const void *p, size_t len)
{
	void *d = ev_state_out_reserve(out, len);
	if (d == NULL)
		return EDDY_ENOMEM;
	if (len)
		memmove(d, p, len);
	return EDDY_OK;
}

/* ---- backends ---- */

void state_errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

eddy_err ev_state_backend_create(const ev_state_backend_opts *o, ev_state_backend **out,
                                 char *err, size_t errlen)
{
	if (o == NULL || (o->kind != EV_STATE_MEMORY && o->kind != EV_STATE_LEVELDB)) {
		state_errf(err, errlen, "state backend: unknown kind");
		return EDDY_EINVAL;
	}
	if (o->kind == EV_STATE_LEVELDB && (o->dir == NULL || o->dir[0] == '\0')) {
		state_errf(err, errlen, "state backend leveldb: no dir");
		return EDDY_EINVAL;
	}
	ev_state_backend *b = rt_calloc(1, sizeof(*b));
	if (b == NULL) {
		state_errf(err, errlen, "out of memory");
		return EDDY_ENOMEM;
	}
	b->kind = o->kind;
	pthread_mutex_init(&b->mu, NULL);
	atomic_init(&b->snaps, 0);
	if (o->kind == EV_STATE_LEVELDB) {
		eddy_err e = ldb_backend_open(b, o, err, errlen);
		if (e != EDDY_OK) {
			pthread_mutex_destroy(&b->mu);
			rt_free(b);
			return e;
		}
	}
	*out = b;
	return EDDY_OK;
}

void ev_state_backend_destroy(ev_state_backend *b)
{
	if (b == NULL)
		return;
	assert(b->nopens == 0 && atomic_load(&b->snaps) == 0);
	if (b->kind == EV_STATE_LEVELDB)
		ldb_backend_close(b);
	for (size_t i = 0; i < b->nops; i++)
		rt_free(b->ops[i].name);
	rt_free(b->ops);
	rt_free(b->opens);
	pthread_mutex_destroy(&b->mu);
	rt_free(b);
}

ev_state_backend_kind ev_state_backend_kind_of(const ev_state_backend *b)
{
	return b->kind;
}

/* register_open finds or assigns the operator's number and records the open range;
 * EDDY_EEXIST if an open handle of the operator overlaps. */
static eddy_err register_open(ev_state_backend *b, const char *op, uint32_t first, uint32_t last,
                              uint32_t *num)
{
	eddy_err err = EDDY_OK;
	pthread_mutex_lock(&b->mu);
	size_t i;
	for (i = 0; i < b->nops && strcmp(b->ops[i].name, op) != 0; i++)
		;
	if (i == b->nops) {
		if (b->nops == b->capops) {
			size_t ncap = b->capops ? b->capops * 2 : 8;
			st_opreg *n = rt_realloc(b->ops, ncap * sizeof(*n));
			if (n == NULL) {
				err = EDDY_ENOMEM;
				goto out;
			}
			b->ops = n;
			b->capops = ncap;
		}
		char *name = rt_strdup(op);
		if (name == NULL) {
			err = EDDY_ENOMEM;
			goto out;
		}
		b->ops[i] = (st_opreg){ name, (uint32_t)i + 1 };
		b->nops++;
	}
	*num = b->ops[i].num;
	for (size_t j = 0; j < b->nopens; j++) {
		const st_open *o = &b->opens[j];
		if (o->opnum == *num && o->first <= last && first <= o->last) {
			err = EDDY_EEXIST;
			goto out;
		}
	}
	if (b->nopens == b->capopens) {
		size_t ncap = b->capopens ? b->capopens * 2 : 16;
		st_open *n = rt_realloc(b->opens, ncap * sizeof(*n));
		if (n == NULL) {
			err = EDDY_ENOMEM;
			goto out;
		}
		b->opens = n;
		b->capopens = ncap;
	}
	b->opens[b->nopens++] = (st_open){ *num, first, last };
out:
	pthread_mutex_unlock(&b->mu);
	return err;
}

static void unregister_open(ev_state_backend *b, uint32_t num, uint32_t first)
{
	pthread_mutex_lock(&b->mu);
	for (size_t j = 0; j < b->nopens; j++) {
		if (b->opens[j].opnum == num && b->opens[j].first == first) {
			b->opens[j] = b->opens[--b->nopens];
			break;
		}
	}
	pthread_mutex_unlock(&b->mu);
}

/* ---- handles ---- */

static eddy_err build_key(ev_state *st, const void *key, size_t klen, uint32_t kg);

eddy_err ev_state_open(ev_state_backend *b, const char *op, uint32_t maxp, uint32_t first,
                       uint32_t last, ev_state **out)
{
	if (maxp == 0)
		maxp = EV_STATE_DEFAULT_MAX_PARALLELISM;
	if (b == NULL || op == NULL || op[0] == '\0' || strlen(op) > EV_STATE_MAX_NAME ||
	    maxp > EV_STATE_MAX_KEY_GROUPS || first > last || last >= maxp)
		return EDDY_EINVAL;
	uint32_t num;
	eddy_err err = register_open(b, op, first, last, &num);
	if (err != EDDY_OK)
		return err;
	ev_state *st = rt_calloc(1, sizeof(*st));
	if (st == NULL) {
		unregister_open(b, num, first);
		return EDDY_ENOMEM;
	}
	st->be = b;
	st->opnum = num;
	st->maxp = maxp;
	st->first = first;
	st->last = last;
	if ((st->op = rt_strdup(op)) == NULL || core_create(&st->core) != EDDY_OK ||
	    build_key(st, "", 0, first) != EDDY_OK) {
		err = EDDY_ENOMEM;
		goto fail;
	}
	st->has_key = false;
	if (b->kind == EV_STATE_LEVELDB) {
		st->wb = leveldb_writebatch_create();
		if ((err = ldb_clear_range(st, first, last)) != EDDY_OK)
			goto fail;
	}
	*out = st;
	return EDDY_OK;
fail:
	ev_state_close(st);
	return err;
}

void ev_state_close(ev_state *st)
{
	if (st == NULL)
		return;
	unregister_open(st->be, st->opnum, st->first);
	for (uint32_t i = 0; i < st->ndefs; i++)
		rt_free(st->defs[i].name);
	rt_free(st->defs);
	rt_free(st->kb);
	rt_free(st->ns);
	rt_free(st->out.p);
	rt_free(st->items);
	rt_free(st->ents);
	rt_free(st->tmp);
	rt_free(st->tk);
	tq_fini(&st->tq[0]);
	tq_fini(&st->tq[1]);
	if (st->lval)
		leveldb_free(st->lval);
	if (st->wb)
		leveldb_writebatch_destroy(st->wb);
	core_unref(st->core);
	rt_free(st->op);
	rt_free(st);
}

const char *ev_state_errmsg(const ev_state *st)
{
	return st->err;
}

void ev_state_key_groups(const ev_state *st, uint32_t *maxp, uint32_t *first, uint32_t *last)
{
	*maxp = st->maxp;
	*first = st->first;
	*last = st->last;
}

ev_state_backend_kind ev_state_handle_kind(const ev_state *st)
{
	return st->be->kind;
}

uint64_t ev_state_size_bytes(ev_state *st)
{
	st_core *c = st->core;
	uint64_t n = c->slab.bytes + mt_bytes(&c->main) + mt_bytes(&c->timers) +
	             mt_bytes(&c->overlay);
	if (st->be->kind == EV_STATE_LEVELDB)
		n += ldb_size(st);
	return n;
}

/* ---- current key and namespace ---- */

/* build_key writes kg | key | namespace into kb after the operator number. */
static eddy_err build_key(ev_state *st, const void *key, size_t klen, uint32_t kg)
{
	size_t need = 4 + 2 + 5 + klen + 5 + st->ns_len + 2;
	if (st_reserve(&st->kb, &st->kbcap, need) != EDDY_OK)
		return EDDY_ENOMEM;
	uint8_t *p = st->kb;
	p[0] = (uint8_t)(st->opnum >> 24);
	p[1] = (uint8_t)(st->opnum >> 16);
	p[2] = (uint8_t)(st->opnum >> 8);
	p[3] = (uint8_t)st->opnum;
	p[4] = (uint8_t)(kg >> 8);
	p[5] = (uint8_t)kg;
	size_t o = 6 + vput(p + 6, klen);
	if (klen)
		memmove(p + o, key, klen);
	st->key_off = o;
	st->key_len = klen;
	o += klen;
	st->ns_off = o;
	o += vput(p + o, st->ns_len);
	if (st->ns_len)
		memcpy(p + o, st->ns, st->ns_len);
	st->pfx = o + st->ns_len;
	st->kg = kg;
	st->has_key = true;
	return EDDY_OK;
}

eddy_err ev_state_set_key(ev_state *st, const void *key, size_t len, uint32_t kg)
{
	if (kg < st->first || kg > st->last)
		return st_fail(st, EDDY_EINVAL, "key group %u outside the handle's range [%u, %u]",
		               kg, st->first, st->last);
	if (len > EV_STATE_MAX_KEY)
		return st_fail(st, EDDY_EINVAL, "key of %zu bytes (at most %u)", len,
		               EV_STATE_MAX_KEY);
	const uint8_t *k = key;
	if (len && k >= st->kb && k < st->kb + st->kbcap) {
		/* a key handed out by this handle (a popped timer's): it may move */
		if (st_reserve(&st->tmp, &st->tmpcap, len) != EDDY_OK)
			return oom(st);
		memcpy(st->tmp, k, len);
		k = st->tmp;
	}
	if (build_key(st, k, len, kg) != EDDY_OK) {
		st->has_key = false;
		return oom(st);
	}
	return EDDY_OK;
}

eddy_err ev_state_set_namespace(ev_state *st, const void *ns, size_t len)
{
	if (len > EV_STATE_MAX_KEY)
		return st_fail(st, EDDY_EINVAL, "namespace of %zu bytes (at most %u)", len,
		               EV_STATE_MAX_KEY);
	if (ns != st->ns) {
		if (st_reserve(&st->ns, &st->nscap, len ? len : 1) != EDDY_OK)
			return oom(st);
		if (len)
			memmove(st->ns, ns, len);
	}
	st->ns_len = len;
	if (st_reserve(&st->kb, &st->kbcap, st->ns_off + 5 + len + 2) != EDDY_OK) {
		st->has_key = false;
		return oom(st);
	}
	size_t o = st->ns_off + vput(st->kb + st->ns_off, len);
	if (len)
		memcpy(st->kb + o, st->ns, len);
	st->pfx = o + len;
	return EDDY_OK;
}

/* ---- descriptors ---- */

static eddy_err add_def(ev_state *st, const char *name, size_t nlen, ev_state_kind kind,
                        ev_state_id *out)
{
	if (st->ndefs >= EV_STATE_MAX_STATES)
		return st_fail(st, EDDY_EFULL, "more than %u states", EV_STATE_MAX_STATES);
	if (st->ndefs == st->capdefs) {
		uint32_t ncap = st->capdefs ? st->capdefs * 2 : 8;
		st_def *n = rt_realloc(st->defs, ncap * sizeof(*n));
		if (n == NULL)
			return oom(st);
		st->defs = n;
		st->capdefs = ncap;
	}
	char *copy = rt_malloc(nlen + 1);
	if (copy == NULL)
		return oom(st);
	memcpy(copy, name, nlen);
	copy[nlen] = '\0';
	st_def *d = &st->defs[st->ndefs];
	memset(d, 0, sizeof(*d));
	d->name = copy;
	d->d.name = copy;
	d->d.kind = kind;
	*out = st->ndefs++;
	return EDDY_OK;
}

static int find_def(const ev_state *st, const char *name, size_t nlen)
{
	for (uint32_t i = 0; i < st->ndefs; i++)
		if (strlen(st->defs[i].name) == nlen && memcmp(st->defs[i].name, name, nlen) == 0)
			return (int)i;
	return -1;
}

eddy_err ev_state_register(ev_state *st, const ev_state_desc *desc, ev_state_id *out)
{
	if (desc == NULL || desc->name == NULL)
		return st_fail(st, EDDY_EINVAL, "state descriptor without a name");
	size_t nlen = strlen(desc->name);
	if (nlen == 0 || nlen > EV_STATE_MAX_NAME)
		return st_fail(st, EDDY_EINVAL, "state name of %zu bytes (1 to %u)", nlen,
		               EV_STATE_MAX_NAME);
	if (desc->kind < EV_STATE_VALUE || desc->kind > EV_STATE_AGGREGATING)
		return st_fail(st, EDDY_EINVAL, "state %s: unknown kind %d", desc->name,
		               (int)desc->kind);
	if (desc->kind == EV_STATE_REDUCING && desc->reduce == NULL)
		return st_fail(st, EDDY_EINVAL, "reducing state %s without a reduce callback",
		               desc->name);
	if (desc->kind == EV_STATE_AGGREGATING && desc->add == NULL)
		return st_fail(st, EDDY_EINVAL, "aggregating state %s without an add callback",
		               desc->name);
	int i = find_def(st, desc->name, nlen);
	ev_state_id id;
	if (i >= 0) {
		if (st->defs[i].d.kind != desc->kind)
			return st_fail(st, EDDY_EINVAL, "state %s is a %s state, not %s",
			               desc->name, ev_state_kind_name(st->defs[i].d.kind),
			               ev_state_kind_name(desc->kind));
		id = (ev_state_id)i;
	} else {
		eddy_err err = add_def(st, desc->name, nlen, desc->kind, &id);
		if (err != EDDY_OK)
			return err;
	}
	st_def *d = &st->defs[id];
	d->d = *desc;
	d->d.name = d->name;
	d->registered = true;
	*out = id;
	return EDDY_OK;
}

eddy_err st_register_restored(ev_state *st, const char *name, size_t nlen, ev_state_kind kind,
                              ev_state_id *out)
{
	int i = find_def(st, name, nlen);
	if (i >= 0) {
		if (st->defs[i].d.kind != kind)
			return st_fail(st, EDDY_EINVAL,
			               "state %s is a %s state here, %s in the snapshot",
			               st->defs[i].name, ev_state_kind_name(st->defs[i].d.kind),
			               ev_state_kind_name(kind));
		*out = (ev_state_id)i;
		return EDDY_OK;
	}
	return add_def(st, name, nlen, kind, out);
}

/* ---- the key-value layer: memory main table or LevelDB ---- */

static inline bool is_ldb(const ev_state *st)
{
	return st->be->kind == EV_STATE_LEVELDB;
}

/* key_for appends state id to the current key; returns the key's length in kb. */
static inline size_t key_for(ev_state *st, ev_state_id id)
{
	st->kb[st->pfx] = (uint8_t)(id >> 8);
	st->kb[st->pfx + 1] = (uint8_t)id;
	return st->pfx + 2;
}

/* Memory keys start after the operator number. */
#define MK(st) ((st)->kb + 4)

static eddy_err kv_get(ev_state *st, size_t kl, const void **v, size_t *vl)
{
	if (is_ldb(st))
		return ldb_get(st, st->kb, kl, v, vl);
	size_t pos;
	uint32_t n = (uint32_t)(kl - 4);
	ment *e = mt_find(&st->core->main, st_hash(MK(st), n), MK(st), n, &pos);
	if (e == NULL)
		return EDDY_ENOENT;
	*v = ment_val(e);
	*vl = e->vlen;
	return EDDY_OK;
}

static eddy_err kv_put(ev_state *st, size_t kl, const void *v, size_t vl, bool append)
{
	eddy_err err;
	if (is_ldb(st)) {
		err = ldb_put(st, st->kb, kl, v, vl, append);
	} else {
		uint32_t n = (uint32_t)(kl - 4);
		err = mt_write(&st->core->main, st_hash(MK(st), n), MK(st), n, v, (uint32_t)vl,
		               append, 0, NULL);
		if (err == EDDY_EINVAL)
			return st_fail(st, err, "value over %u bytes", EV_STATE_MAX_VALUE);
		if (err == EDDY_ENOMEM)
			return oom(st);
	}
	if (err == EDDY_OK)
		st->written = true;
	return err;
}

static eddy_err kv_del(ev_state *st, size_t kl)
{
	st->written = true;
	if (is_ldb(st))
		return ldb_del(st, st->kb, kl);
	size_t pos;
	uint32_t n = (uint32_t)(kl - 4);
	ment *e = mt_find(&st->core->main, st_hash(MK(st), n), MK(st), n, &pos);
	if (e == NULL)
		return EDDY_OK;
	return mt_remove_at(&st->core->main, pos) == EDDY_OK ? EDDY_OK : oom(st);
}

/* check starts every accessor: frees retired entries if it can, checks the key, the id
 * and the kind. (The last LevelDB value read stays until the next read: a caller may
 * pass it back to a put.) */
static eddy_err check(ev_state *st, ev_state_id id, ev_state_kind kind)
{
	core_gc(st->core);
	if (!st->has_key)
		return st_fail(st, EDDY_EINVAL, "no current key (ev_state_set_key)");
	if (id >= st->ndefs || !st->defs[id].registered)
		return st_fail(st, EDDY_EINVAL, "unknown state id %u", id);
	if (kind != 0 && st->defs[id].d.kind != kind)
		return st_fail(st, EDDY_EINVAL, "state %s is a %s state, not %s", st->defs[id].name,
		               ev_state_kind_name(st->defs[id].d.kind), ev_state_kind_name(kind));
	return EDDY_OK;
}

static eddy_err check_len(ev_state *st, size_t len, size_t max, const char *what)
{
	if (len > max)
		return st_fail(st, EDDY_EINVAL, "%s of %zu bytes (at most %zu)", what, len, max);
	return EDDY_OK;
}

/* ---- memory map state: a main-table entry holding a nested table ---- */

static ment *mem_map_find(ev_state *st, size_t kl, size_t *pos)
{
	uint32_t n = (uint32_t)(kl - 4);
	return mt_find(&st->core->main, st_hash(MK(st), n), MK(st), n, pos);
}

/* mem_map_writable returns the map's entry, made if absent (create) and copied if a
 * snapshot holds it. */
static eddy_err mem_map_writable(ev_state *st, size_t kl, bool create, ment **out)
{
	st_core *c = st->core;
	size_t pos;
	uint32_t n = (uint32_t)(kl - 4);
	uint64_t h = st_hash(MK(st), n);
	ment *e = mt_find(&c->main, h, MK(st), n, &pos);
	if (e != NULL && !ment_frozen(c, e)) {
		*out = e;
		return mt_touch(&c->main, pos, false); /* changed now (incremental snapshots) */
	}
	if (e == NULL && !create)
		return EDDY_ENOENT;
	mtab *m = rt_malloc(sizeof(*m));
	if (m == NULL)
		return EDDY_ENOMEM;
	eddy_err err = e ? mt_clone(m, ment_map(e)) : (mt_init(m, c, false), EDDY_OK);
	if (err != EDDY_OK) {
		rt_free(m);
		return err;
	}
	ment *ne = ment_alloc(c, n, sizeof(m));
	if (ne == NULL) {
		mt_fini(m);
		rt_free(m);
		return EDDY_ENOMEM;
	}
	ne->hash = h;
	memcpy(ne->data, MK(st), n);
	memcpy(ment_val(ne), &m, sizeof(m));
	ne->vlen = sizeof(m);
	ne->flags = MF_MAP | (e == NULL ? MF_BORN : 0); /* (a copy: of a frozen one, older) */
	err = e ? mt_replace(&c->main, pos, e, ne) : mt_insert(&c->main, ne);
	if (err != EDDY_OK) {
		ment_free(c, ne); /* frees m */
		return err;
	}
	*out = ne;
	return EDDY_OK;
}

static eddy_err mem_map_drop_if_empty(ev_state *st, size_t kl)
{
	size_t pos;
	ment *e = mem_map_find(st, kl, &pos);
	if (e != NULL && ment_map(e)->count == 0)
		return mt_remove_at(&st->core->main, pos);
	return EDDY_OK;
}

/* ---- clear ---- */

eddy_err ev_state_clear(ev_state *st, ev_state_id id)
{
	eddy_err err = check(st, id, 0);
	if (err != EDDY_OK)
		return err;
	size_t kl = key_for(st, id);
	if (st->defs[id].d.kind == EV_STATE_MAP && is_ldb(st)) {
		size_t n;
		st->written = true;
		return ldb_scan(st, st->kb, kl, true, &n);
	}
	return kv_del(st, kl);
}

/* ---- value ---- */

eddy_err ev_value_get(ev_state *st, ev_state_id id, const void **v, size_t *len)
{
	eddy_err err = check(st, id, EV_STATE_VALUE);
	if (err != EDDY_OK)
		return err;
	return kv_get(st, key_for(st, id), v, len);
}

eddy_err ev_value_take(ev_state *st, ev_state_id id, const void **v, size_t *len)
{
	eddy_err err = check(st, id, EV_STATE_VALUE);
	if (err != EDDY_OK)
		return err;
	size_t kl = key_for(st, id);
	if (is_ldb(st)) { /* a read, a copy, a delete */
		const void *p;
		size_t n;
		if ((err = kv_get(st, kl, &p, &n)) != EDDY_OK)
			return err;
		if (st_reserve(&st->tmp, &st->tmpcap, n ? n : 1) != EDDY_OK)
			return oom(st);
		memcpy(st->tmp, p, n);
		if ((err = kv_del(st, kl)) != EDDY_OK)
			return err;
		*v = st->tmp;
		*len = n;
		return EDDY_OK;
	}
	size_t pos;
	uint32_t n = (uint32_t)(kl - 4);
	mtab *t = &st->core->main;
	ment *e = mt_find(t, st_hash(MK(st), n), MK(st), n, &pos);
	if (e == NULL)
		return EDDY_ENOENT;
	if (st_reserve(&st->tmp, &st->tmpcap, e->vlen ? e->vlen : 1) != EDDY_OK)
		return oom(st);
	memcpy(st->tmp, ment_val(e), e->vlen);
	*len = e->vlen;
	st->written = true;
	if (mt_remove_at(t, pos) != EDDY_OK) /* frees or retires e */
		return oom(st);
	*v = st->tmp;
	return EDDY_OK;
}

eddy_err ev_value_put(ev_state *st, ev_state_id id, const void *v, size_t len)
{
	eddy_err err = check(st, id, EV_STATE_VALUE);
	if (err == EDDY_OK)
		err = check_len(st, len, EV_STATE_MAX_VALUE, "value");
	if (err != EDDY_OK)
		return err;
	return kv_put(st, key_for(st, id), v, len, false);
}

eddy_err ev_value_ref(ev_state *st, ev_state_id id, size_t len, void **p, bool *created)
{
	eddy_err err = check(st, id, EV_STATE_VALUE);
	if (err == EDDY_OK && len == 0)
		err = st_fail(st, EDDY_EINVAL, "a value reference of 0 bytes");
	if (err == EDDY_OK)
		err = check_len(st, len, EV_STATE_MAX_VALUE, "value");
	if (err != EDDY_OK)
		return err;
	size_t kl = key_for(st, id);
	bool made = false;
	ment *e;
	if (is_ldb(st)) {
		err = ldb_ref(st, st->kb, kl, len, &e, &made);
		if (err != EDDY_OK)
			return err;
	} else {
		mtab *t = &st->core->main;
		uint32_t n = (uint32_t)(kl - 4);
		uint64_t h = st_hash(MK(st), n);
		size_t pos;
		e = mt_find(t, h, MK(st), n, &pos);
		if (e == NULL || e->vlen != len || ment_frozen(st->core, e)) {
			/* create, resize or copy on write: through the table's one write path */
			made = e == NULL;
			size_t keep = e ? (e->vlen < len ? e->vlen : len) : 0;
			if (st_reserve(&st->tmp, &st->tmpcap, len) != EDDY_OK)
				return oom(st);
			if (keep)
				memcpy(st->tmp, ment_val(e), keep);
			memset(st->tmp + keep, 0, len - keep);
			err = mt_write(t, h, MK(st), n, st->tmp, (uint32_t)len, false, 0, &e);
			if (err == EDDY_ENOMEM)
				return oom(st);
			if (err != EDDY_OK)
				return st_fail(st, err, "value over %u bytes", EV_STATE_MAX_VALUE);
		} else if (mt_touch(t, pos, false) != EDDY_OK) { /* the caller changes it now */
			return oom(st);
		}
	}
	st->written = true;
	*p = ment_val(e);
	if (created)
		*created = made;
	return EDDY_OK;
}

/* ---- list: one value, items framed as varint length + bytes ---- */

bool st_list_valid(const uint8_t *p, size_t n)
{
	size_t o = 0;
	while (o < n) {
		uint32_t len;
		size_t m = vget(p + o, n - o, &len);
		if (m == 0 || len > n - o - m)
			return false;
		o += m + len;
	}
	return true;
}

/* frame writes n items framed into st->tmp; *len gets the size. */
static eddy_err frame(ev_state *st, const ev_bytes *items, size_t n, size_t *len)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (items[i].len > EV_STATE_MAX_VALUE)
			return st_fail(st, EDDY_EINVAL, "list item of %zu bytes", items[i].len);
		total += 5 + items[i].len;
	}
	if (total > EV_STATE_MAX_VALUE + 5ull)
		return st_fail(st, EDDY_EINVAL, "list over %u bytes", EV_STATE_MAX_VALUE);
	if (st_reserve(&st->tmp, &st->tmpcap, total ? total : 1) != EDDY_OK)
		return oom(st);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		o += vput(st->tmp + o, items[i].len);
		if (items[i].len)
			memcpy(st->tmp + o, items[i].p, items[i].len);
		o += items[i].len;
	}
	*len = o;
	return EDDY_OK;
}

eddy_err ev_list_add(ev_state *st, ev_state_id id, const void *v, size_t len)
{
	ev_bytes b = { v, len };
	return ev_list_add_all(st, id, &b, 1);
}

eddy_err ev_list_add_all(ev_state *st, ev_state_id id, const ev_bytes *items, size_t n)
{
	eddy_err err = check(st, id, EV_STATE_LIST);
	size_t len;
	if (err != EDDY_OK || n == 0 || (err = frame(st, items, n, &len)) != EDDY_OK)
		return err;
	return kv_put(st, key_for(st, id), st->tmp, len, true);
}

eddy_err ev_list_update(ev_state *st, ev_state_id id, const ev_bytes *items, size_t n)
{
	eddy_err err = check(st, id, EV_STATE_LIST);
	size_t len;
	if (err != EDDY_OK)
		return err;
	if (n == 0)
		return kv_del(st, key_for(st, id));
	if ((err = frame(st, items, n, &len)) != EDDY_OK)
		return err;
	return kv_put(st, key_for(st, id), st->tmp, len, false);
}

static eddy_err grow_items(ev_state *st, size_t n)
{
	return rt_grow((void **)&st->items, &st->capitems, n, sizeof(*st->items), 16);
}

eddy_err ev_list_get(ev_state *st, ev_state_id id, const ev_bytes **items, size_t *n)
{
	eddy_err err = check(st, id, EV_STATE_LIST);
	if (err != EDDY_OK)
		return err;
	static const ev_bytes none[1];
	const void *v;
	size_t vl;
	*n = 0;
	*items = none;
	if ((err = kv_get(st, key_for(st, id), &v, &vl)) == EDDY_ENOENT)
		return EDDY_OK;
	if (err != EDDY_OK)
		return err;
	const uint8_t *p = v;
	size_t o = 0, k = 0;
	while (o < vl) {
		uint32_t len;
		size_t m = vget(p + o, vl - o, &len);
		if (m == 0 || len > vl - o - m)
			return st_fail(st, EDDY_EINVAL, "list state %s: corrupt value",
			               st->defs[id].name);
		if (grow_items(st, k + 1) != EDDY_OK)
			return oom(st);
		st->items[k++] = (ev_bytes){ p + o + m, len };
		o += m + len;
	}
	*items = k ? st->items : none;
	*n = k;
	return EDDY_OK;
}

/* ---- map ---- */

/* ldb_map_key appends map key uk after the state id; returns the whole key's length. */
static eddy_err ldb_map_key(ev_state *st, size_t kl, const void *uk, size_t uklen, size_t *len)
{
	if (st_reserve(&st->kb, &st->kbcap, kl + uklen) != EDDY_OK)
		return oom(st);
	if (uklen)
		memcpy(st->kb + kl, uk, uklen);
	*len = kl + uklen;
	return EDDY_OK;
}

static eddy_err map_check(ev_state *st, ev_state_id id, size_t uklen)
{
	eddy_err err = check(st, id, EV_STATE_MAP);
	if (err == EDDY_OK)
		err = check_len(st, uklen, EV_STATE_MAX_KEY, "map key");
	return err;
}

eddy_err ev_map_get(ev_state *st, ev_state_id id, const void *uk, size_t uklen, const void **v,
                    size_t *len)
{
	eddy_err err = map_check(st, id, uklen);
	if (err != EDDY_OK)
		return err;
	size_t kl = key_for(st, id), pos;
	if (is_ldb(st)) {
		if ((err = ldb_map_key(st, kl, uk, uklen, &kl)) != EDDY_OK)
			return err;
		return ldb_get(st, st->kb, kl, v, len);
	}
	ment *m = mem_map_find(st, kl, &pos);
	if (m == NULL)
		return EDDY_ENOENT;
	ment *e = mt_find(ment_map(m), st_hash(uk, uklen), uk, (uint32_t)uklen, &pos);
	if (e == NULL)
		return EDDY_ENOENT;
	*v = ment_val(e);
	*len = e->vlen;
	return EDDY_OK;
}

eddy_err ev_map_contains(ev_state *st, ev_state_id id, const void *uk, size_t uklen,
                         bool *found)
{
	const void *v;
	size_t len;
	eddy_err err = ev_map_get(st, id, uk, uklen, &v, &len);
	*found = err == EDDY_OK;
	return err == EDDY_ENOENT ? EDDY_OK : err;
}

eddy_err ev_map_put(ev_state *st, ev_state_id id, const void *uk, size_t uklen, const void *v,
                    size_t len)
{
	eddy_err err = map_check(st, id, uklen);
	if (err == EDDY_OK)
		err = check_len(st, len, EV_STATE_MAX_VALUE, "map value");
	if (err != EDDY_OK)
		return err;
	size_t kl = key_for(st, id);
	if (is_ldb(st)) {
		if ((err = ldb_map_key(st, kl, uk, uklen, &kl)) != EDDY_OK)
			return err;
		return kv_put(st, kl, v, len, false);
	}
	ment *m;
	if ((err = mem_map_writable(st, kl, true, &m)) != EDDY_OK)
		return oom(st);
	st->written = true;
	err = mt_write(ment_map(m), st_hash(uk, uklen), uk, (uint32_t)uklen, v, (uint32_t)len,
	               false, 0, NULL);
	if (err != EDDY_OK) {
		mem_map_drop_if_empty(st, kl);
		return oom(st);
	}
	return EDDY_OK;
}

eddy_err ev_map_remove(ev_state *st, ev_state_id id, const void *uk, size_t uklen)
{
	eddy_err err = map_check(st, id, uklen);
	if (err != EDDY_OK)
		return err;
	size_t kl = key_for(st, id), pos;
	if (is_ldb(st)) {
		if ((err = ldb_map_key(st, kl, uk, uklen, &kl)) != EDDY_OK)
			return err;
		return kv_del(st, kl);
	}
	ment *m = mem_map_find(st, kl, &pos);
	uint64_t h = st_hash(uk, uklen);
	if (m == NULL || mt_find(ment_map(m), h, uk, (uint32_t)uklen, &pos) == NULL)
		return EDDY_OK;
	if (mem_map_writable(st, kl, false, &m) != EDDY_OK)
		return oom(st);
	st->written = true;
	mtab *t = ment_map(m);
	mt_find(t, h, uk, (uint32_t)uklen, &pos);
	if (mt_remove_at(t, pos) != EDDY_OK || mem_map_drop_if_empty(st, kl) != EDDY_OK)
		return oom(st);
	return EDDY_OK;
}

static eddy_err grow_ents(ev_state *st, size_t n)
{
	return rt_grow((void **)&st->ents, &st->capents, n, sizeof(*st->ents), 16);
}

eddy_err ev_map_entries(ev_state *st, ev_state_id id, const ev_map_entry **entries, size_t *n)
{
	eddy_err err = check(st, id, EV_STATE_MAP);
	if (err != EDDY_OK)
		return err;
	static const ev_map_entry none[1];
	size_t kl = key_for(st, id), pos;
	*n = 0;
	*entries = none;
	if (is_ldb(st)) {
		err = ldb_scan(st, st->kb, kl, false, n);
		if (*n > 0)
			*entries = st->ents;
		return err;
	}
	ment *m = mem_map_find(st, kl, &pos);
	if (m == NULL)
		return EDDY_OK;
	mtab *t = ment_map(m);
	if (grow_ents(st, t->count) != EDDY_OK)
		return oom(st);
	size_t k = 0;
	for (size_t i = 0; i < t->cap; i++) {
		uintptr_t s = mt_slot((const mt_page *const *)t->dir, t->shift, i);
		if (s == 0)
			continue;
		ment *e = MT_PTR(s);
		st->ents[k++] = (ev_map_entry){ { e->data, e->klen }, { ment_val(e), e->vlen } };
	}
	*entries = k ? st->ents : none;
	*n = k;
	return EDDY_OK;
}

/* ---- walks ---- */

typedef struct keys_walk {
	uint8_t id[2];
	const void *ns; /* NULL: any */
	size_t nslen;
	ev_entry_fn fn;
	void *ctx;
} keys_walk;

/* keys_match calls the walk's fn if composed key k (from the key group on) is of its
 * state and namespace. */
static eddy_err keys_match(void *ctx, const uint8_t *k, size_t kl, const void *v, size_t vl)
{
	keys_walk *w = ctx;
	st_kparts kp;
	if (!st_parse_key(k, kl, &kp) || kp.restlen != 2 || memcmp(kp.rest, w->id, 2) != 0 ||
	    (w->ns && (kp.nslen != w->nslen || (w->nslen && memcmp(kp.ns, w->ns, w->nslen) != 0))))
		return EDDY_OK;
	ev_state_entry e = {kp.key, kp.klen, kp.kg, kp.ns, kp.nslen, v, vl};
	return w->fn(w->ctx, &e);
}

/* prefetch_entry asks for the cache line of entry e's header and key (NULL: none): a
 * hint, never a fault. */
static inline void prefetch_entry(const ment *e)
{
	if (e != NULL)
		__builtin_prefetch(e);
}

eddy_err ev_state_entries(ev_state *st, ev_state_id id, const void *ns, size_t nslen,
                          ev_entry_fn fn, void *ctx)
{
	core_gc(st->core);
	if (id >= st->ndefs || !st->defs[id].registered)
		return st_fail(st, EDDY_EINVAL, "unknown state id %u", id);
	if (st->defs[id].d.kind == EV_STATE_MAP)
		return st_fail(st, EDDY_EINVAL, "ev_state_entries: state %s is a map state",
		               st->defs[id].name);
	keys_walk w = {{(uint8_t)(id >> 8), (uint8_t)id}, ns, nslen, fn, ctx};
	if (is_ldb(st))
		return ldb_walk(st, keys_match, &w);
	const mtab *t = &st->core->main;
	eddy_err err = EDDY_OK;
	/* the entries are spread over the heap in no order: fetch the ones a few slots ahead
	 * while matching this one (a walk is otherwise a cache miss per entry) */
	const mt_page *const *dir = (const mt_page *const *)t->dir;
	enum { AHEAD = 8 };
	for (size_t i = 0; i < t->cap && i < AHEAD; i++)
		prefetch_entry(MT_PTR(mt_slot(dir, t->shift, i)));
	for (size_t i = 0; i < t->cap && err == EDDY_OK; i++) {
		if (i + AHEAD < t->cap)
			prefetch_entry(MT_PTR(mt_slot(dir, t->shift, i + AHEAD)));
		uintptr_t s = mt_slot(dir, t->shift, i);
		ment *e = MT_PTR(s);
		if (s != 0)
			err = keys_match(&w, e->data, e->klen, ment_val(e), e->vlen);
	}
	return err;
}

/* ---- reducing and aggregating ---- */

static void out_reset(ev_state *st)
{
	st->out.len = 0;
	st->out.oom = false;
}

/* cb_result checks a callback's outcome. */
static eddy_err cb_result(ev_state *st, eddy_err err, const char *what)
{
	if (err != EDDY_OK)
		return st_fail(st, err, "%s callback failed: %s", what, eddy_strerror(err));
	if (st->out.oom)
		return oom(st);
	return EDDY_OK;
}

eddy_err ev_reducing_add(ev_state *st, ev_state_id id, const void *v, size_t len)
{
	eddy_err err = check(st, id, EV_STATE_REDUCING);
	if (err == EDDY_OK)
		err = check_len(st, len, EV_STATE_MAX_VALUE, "value");
	if (err != EDDY_OK)
		return err;
	size_t kl = key_for(st, id);
	const void *a;
	size_t alen;
	if ((err = kv_get(st, kl, &a, &alen)) == EDDY_ENOENT)
		return kv_put(st, kl, v, len, false);
	if (err != EDDY_OK)
		return err;
	const st_def *d = &st->defs[id];
	out_reset(st);
	if ((err = cb_result(st, d->d.reduce(d->d.ctx, a, alen, v, len, &st->out), "reduce")) !=
	    EDDY_OK)
		return err;
	return kv_put(st, kl, st->out.p, st->out.len, false);
}

eddy_err ev_reducing_get(ev_state *st, ev_state_id id, const void **v, size_t *len)
{
	eddy_err err = check(st, id, EV_STATE_REDUCING);
	if (err != EDDY_OK)
		return err;
	return kv_get(st, key_for(st, id), v, len);
}

eddy_err ev_agg_add(ev_state *st, ev_state_id id, const void *in, size_t len)
{
	eddy_err err = check(st, id, EV_STATE_AGGREGATING);
	if (err != EDDY_OK)
		return err;
	const st_def *d = &st->defs[id];
	size_t kl = key_for(st, id);
	const void *acc;
	size_t alen;
	err = kv_get(st, kl, &acc, &alen);
	if (err == EDDY_ENOENT) {
		acc = "";
		alen = 0;
		if (d->d.create != NULL) {
			out_reset(st);
			if ((err = cb_result(st, d->d.create(d->d.ctx, &st->out), "create")) !=
			    EDDY_OK)
				return err;
			/* the add below writes to out too: keep the new accumulator in tmp */
			if (st_reserve(&st->tmp, &st->tmpcap, st->out.len ? st->out.len : 1) !=
			    EDDY_OK)
				return oom(st);
			memcpy(st->tmp, st->out.p, st->out.len);
			acc = st->tmp;
			alen = st->out.len;
		}
	} else if (err != EDDY_OK) {
		return err;
	}
	out_reset(st);
	if ((err = cb_result(st, d->d.add(d->d.ctx, acc, alen, in, len, &st->out), "add")) !=
	    EDDY_OK)
		return err;
	return kv_put(st, kl, st->out.p, st->out.len, false);
}

eddy_err ev_agg_get(ev_state *st, ev_state_id id, const void **out, size_t *len)
{
	eddy_err err = check(st, id, EV_STATE_AGGREGATING);
	if (err != EDDY_OK)
		return err;
	const st_def *d = &st->defs[id];
	const void *acc;
	size_t alen;
	if ((err = kv_get(st, key_for(st, id), &acc, &alen)) != EDDY_OK)
		return err;
	if (d->d.result == NULL) {
		*out = acc;
		*len = alen;
		return EDDY_OK;
	}
	out_reset(st);
	if ((err = cb_result(st, d->d.result(d->d.ctx, acc, alen, &st->out), "result")) !=
	    EDDY_OK)
		return err;
	*out = st->out.p;
	*len = st->out.len;
	return EDDY_OK;
}

/* ---- merging namespaces ---- */

eddy_err ev_state_merge_namespaces(ev_state *st, ev_state_id id, const void *target,
                                   size_t tlen, const ev_bytes *sources, size_t n)
{
	eddy_err err = check(st, id, 0);
	if (err != EDDY_OK)
		return err;
	const st_def *d = &st->defs[id];
	ev_state_kind kind = d->d.kind;
	if (kind == EV_STATE_VALUE || kind == EV_STATE_MAP ||
	    (kind == EV_STATE_AGGREGATING && d->d.merge == NULL))
		return st_fail(st, EDDY_EINVAL, "state %s (%s) cannot merge namespaces", d->name,
		               ev_state_kind_name(kind));
	if (tlen > EV_STATE_MAX_KEY)
		return check_len(st, tlen, EV_STATE_MAX_KEY, "namespace");
	/* copy the current namespace, the target and the sources: they may point into this
	 * handle's buffers, which the calls below change */
	size_t total = st->ns_len + tlen + 1;
	for (size_t k = 0; k < n; k++) {
		if (sources[k].len > EV_STATE_MAX_KEY)
			return check_len(st, sources[k].len, EV_STATE_MAX_KEY, "namespace");
		total += sources[k].len;
	}
	uint8_t *saved = rt_malloc(total);
	ev_bytes *src = rt_malloc((n + 1) * sizeof(*src));
	if (saved == NULL || src == NULL) {
		rt_free(saved);
		rt_free(src);
		return oom(st);
	}
	size_t saved_len = st->ns_len, o = saved_len + tlen;
	memcpy(saved, st->ns, saved_len);
	memcpy(saved + saved_len, target, tlen);
	const uint8_t *tgt = saved + saved_len;
	for (size_t k = 0; k < n; k++) {
		if (sources[k].len)
			memcpy(saved + o, sources[k].p, sources[k].len);
		src[k] = (ev_bytes){ saved + o, sources[k].len };
		o += sources[k].len;
	}
	sources = src;
	/* the merged value accumulates in acc */
	uint8_t *acc = NULL;
	size_t acclen = 0, acccap = 0;
	bool have = false;
	const void *v;
	size_t vl;
	size_t k;
	for (k = 0; k <= n; k++) {
		const void *ns = k == 0 ? (const void *)tgt : sources[k - 1].p;
		size_t nl = k == 0 ? tlen : sources[k - 1].len;
		if (k > 0 && nl == tlen && memcmp(ns, tgt, tlen) == 0)
			continue;
		if ((err = ev_state_set_namespace(st, ns, nl)) != EDDY_OK)
			goto out;
		if ((err = kv_get(st, key_for(st, id), &v, &vl)) == EDDY_ENOENT)
			continue;
		if (err != EDDY_OK)
			goto out;
		if (!have || kind == EV_STATE_LIST) {
			if (acclen + vl > EV_STATE_MAX_VALUE) {
				err = st_fail(st, EDDY_EINVAL, "merged list over %u bytes",
				              EV_STATE_MAX_VALUE);
				goto out;
			}
			if (st_reserve(&acc, &acccap, acclen + vl + 1) != EDDY_OK) {
				err = oom(st);
				goto out;
			}
			memcpy(acc + acclen, v, vl);
			acclen += vl;
			have = true;
			continue;
		}
		out_reset(st);
		if (kind == EV_STATE_REDUCING)
			err = cb_result(st, d->d.reduce(d->d.ctx, acc, acclen, v, vl, &st->out),
			                "reduce");
		else
			err = cb_result(st, d->d.merge(d->d.ctx, acc, acclen, v, vl, &st->out),
			                "merge");
		if (err != EDDY_OK)
			goto out;
		if (st_reserve(&acc, &acccap, st->out.len + 1) != EDDY_OK) {
			err = oom(st);
			goto out;
		}
		memcpy(acc, st->out.p, st->out.len);
		acclen = st->out.len;
	}
	/* write the target, then clear the sources */
	if (have) {
		if ((err = ev_state_set_namespace(st, tgt, tlen)) != EDDY_OK ||
		    (err = kv_put(st, key_for(st, id), acc, acclen, false)) != EDDY_OK)
			goto out;
	}
	for (k = 0; k < n; k++) {
		if (sources[k].len == tlen && memcmp(sources[k].p, tgt, tlen) == 0)
			continue;
		if ((err = ev_state_set_namespace(st, sources[k].p, sources[k].len)) != EDDY_OK ||
		    (err = kv_del(st, key_for(st, id))) != EDDY_OK)
			goto out;
	}
out:
	rt_free(acc);
	if (ev_state_set_namespace(st, saved, saved_len) != EDDY_OK && err == EDDY_OK)
		err = oom(st);
	rt_free(saved);
	rt_free(src);
	return err;
}

/* ---- timers ---- */

/* timer_key builds domain | time | kg | key | ns in st->tk; returns its length. */
static eddy_err timer_key(ev_state *st, ev_time_domain d, int64_t time, size_t *len)
{
	size_t body = st->pfx - 4;
	if (st_reserve(&st->tk, &st->tkcap, ST_TK_HDR + body) != EDDY_OK)
		return oom(st);
	uint64_t u = (uint64_t)time ^ (1ull << 63);
	st->tk[0] = (uint8_t)d;
	for (int i = 8; i >= 1; i--, u >>= 8)
		st->tk[i] = (uint8_t)u;
	memcpy(st->tk + ST_TK_HDR, st->kb + 4, body);
	*len = ST_TK_HDR + body;
	return EDDY_OK;
}

static eddy_err timer_check(ev_state *st, ev_time_domain d)
{
	core_gc(st->core);
	if (d != EV_TIME_EVENT && d != EV_TIME_PROCESSING)
		return st_fail(st, EDDY_EINVAL, "unknown time domain %d", (int)d);
	return EDDY_OK;
}

eddy_err ev_timer_register(ev_state *st, ev_time_domain d, int64_t time)
{
	eddy_err err = timer_check(st, d);
	if (err != EDDY_OK)
		return err;
	if (!st->has_key)
		return st_fail(st, EDDY_EINVAL, "no current key (ev_state_set_key)");
	size_t len, pos;
	if ((err = timer_key(st, d, time, &len)) != EDDY_OK)
		return err;
	mtab *t = &st->core->timers;
	uint64_t h = st_hash(st->tk, len);
	if (mt_find(t, h, st->tk, (uint32_t)len, &pos) != NULL)
		return EDDY_OK;
	uint32_t where;
	if (tq_reserve(&st->tq[d], time, &where) != EDDY_OK)
		return oom(st);
	ment *e = ment_alloc(st->core, (uint32_t)len, 0);
	if (e == NULL)
		return oom(st);
	e->hash = h;
	e->flags = MF_BORN;
	memcpy(e->data, st->tk, len);
	if (mt_insert(t, e) != EDDY_OK) {
		ment_free(st->core, e);
		return oom(st);
	}
	tq_add(&st->tq[d], where, time, e); /* cannot fail after tq_reserve */
	st->written = true;
	return EDDY_OK;
}

/* timer_remove removes timer entry e (at pos in the table) from the table and its queue;
 * on failure from neither. */
static eddy_err timer_remove(ev_state *st, ev_time_domain d, ment *e, size_t pos)
{
	int64_t time = st_tk_time(e);
	uint32_t aux = e->aux;
	if (mt_remove_at(&st->core->timers, pos) != EDDY_OK) /* frees or retires e */
		return oom(st);
	tq_remove(&st->tq[d], time, aux);
	st->written = true;
	return EDDY_OK;
}

eddy_err ev_timer_delete(ev_state *st, ev_time_domain d, int64_t time)
{
	eddy_err err = timer_check(st, d);
	if (err != EDDY_OK)
		return err;
	if (!st->has_key)
		return st_fail(st, EDDY_EINVAL, "no current key (ev_state_set_key)");
	size_t len, pos;
	if ((err = timer_key(st, d, time, &len)) != EDDY_OK)
		return err;
	ment *e = mt_find(&st->core->timers, st_hash(st->tk, len), st->tk, (uint32_t)len, &pos);
	return e == NULL ? EDDY_OK : timer_remove(st, d, e, pos);
}

eddy_err ev_timer_pop(ev_state *st, ev_time_domain d, int64_t upto, ev_timer *out)
{
	eddy_err err = timer_check(st, d);
	if (err != EDDY_OK)
		return err;
	ment *e = tq_peek(&st->tq[d], upto);
	if (e == NULL)
		return EDDY_ENOENT;
	st_kparts kp;
	if (!st_parse_key(e->data + ST_TK_HDR, e->klen - ST_TK_HDR, &kp))
		return st_fail(st, EDDY_EINVAL, "corrupt timer");
	if ((err = ev_state_set_namespace(st, kp.ns, kp.nslen)) != EDDY_OK ||
	    (err = ev_state_set_key(st, kp.key, kp.klen, kp.kg)) != EDDY_OK)
		return err;
	int64_t time = st_tk_time(e);
	size_t pos;
	ment *f = mt_find(&st->core->timers, e->hash, e->data, e->klen, &pos);
	assert(f == e);
	(void)f;
	if ((err = timer_remove(st, d, e, pos)) != EDDY_OK)
		return err;
	out->domain = d;
	out->time = time;
	out->key_group = st->kg;
	out->key = (ev_bytes){ st->kb + st->key_off, st->key_len };
	out->ns = (ev_bytes){ st->ns, st->ns_len };
	return EDDY_OK;
}

eddy_err ev_timer_next(ev_state *st, ev_time_domain d, int64_t *time)
{
	eddy_err err = timer_check(st, d);
	if (err != EDDY_OK)
		return err;
	return tq_next(&st->tq[d], time) ? EDDY_OK : EDDY_ENOENT;
}

size_t ev_timer_count(const ev_state *st, ev_time_domain d)
{
	return d == EV_TIME_EVENT || d == EV_TIME_PROCESSING ? st->tq[d].count : 0;
}

/* ---- restore helpers (state_snap.c) ---- */

static eddy_err set_key_ns(ev_state *st, const uint8_t *key, uint32_t klen, uint32_t kg,
                           const uint8_t *ns, uint32_t nslen)
{
	eddy_err err = ev_state_set_namespace(st, ns, nslen);
	if (err == EDDY_OK)
		err = ev_state_set_key(st, key, klen, kg);
	return err;
}

eddy_err st_restore_row(ev_state *st, ev_state_id id, const uint8_t *key, uint32_t klen,
                        uint32_t kg, const uint8_t *ns, uint32_t nslen, const uint8_t *uk,
                        uint32_t uklen, const uint8_t *v, uint32_t vlen)
{
	eddy_err err = set_key_ns(st, key, klen, kg, ns, nslen);
	if (err != EDDY_OK)
		return err;
	bool reg = st->defs[id].registered;
	st->defs[id].registered = true; /* restored states may not be registered yet */
	if (st->defs[id].d.kind == EV_STATE_MAP)
		err = ev_map_put(st, id, uk, uklen, v, vlen);
	else
		err = kv_put(st, key_for(st, id), v, vlen, false);
	st->defs[id].registered = reg;
	return err;
}

eddy_err st_restore_timer(ev_state *st, ev_time_domain d, int64_t time, const uint8_t *key,
                          uint32_t klen, uint32_t kg, const uint8_t *ns, uint32_t nslen)
{
	eddy_err err = set_key_ns(st, key, klen, kg, ns, nslen);
	if (err == EDDY_OK)
		err = ev_timer_register(st, d, time);
	return err;
}

eddy_err st_restore_del(ev_state *st, ev_state_id id, const uint8_t *key, uint32_t klen,
                        uint32_t kg, const uint8_t *ns, uint32_t nslen)
{
	eddy_err err = set_key_ns(st, key, klen, kg, ns, nslen);
	if (err != EDDY_OK)
		return err;
	bool reg = st->defs[id].registered;
	st->defs[id].registered = true;
	err = ev_state_clear(st, id);
	st->defs[id].registered = reg;
	return err;
}

eddy_err st_restore_append(ev_state *st, ev_state_id id, const uint8_t *key, uint32_t klen,
                           uint32_t kg, const uint8_t *ns, uint32_t nslen, const uint8_t *v,
                           uint32_t vlen)
{
	eddy_err err = set_key_ns(st, key, klen, kg, ns, nslen);
	if (err == EDDY_OK)
		err = kv_put(st, key_for(st, id), v, vlen, true);
	return err;
}

eddy_err st_restore_timer_del(ev_state *st, ev_time_domain d, int64_t time, const uint8_t *key,
                              uint32_t klen, uint32_t kg, const uint8_t *ns, uint32_t nslen)
{
	eddy_err err = set_key_ns(st, key, klen, kg, ns, nslen);
	if (err == EDDY_OK)
		err = ev_timer_delete(st, d, time);
	return err;
}
