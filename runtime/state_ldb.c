/*
 * The LevelDB backend: one database per process (leveldb_t is thread-safe), keys
 * prefixed by operator number and key group (state_int.h). Each handle buffers its writes
 * in an overlay table (readable at once, deletes as tombstones) and writes them as one
 * LevelDB write batch when they reach batch_bytes, before a scan and at snapshot begin.
 */
#include "state_int.h"
#include "fs.h"

#include "alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>



eddy_err ldb_backend_open(ev_state_backend *b, const ev_state_backend_opts *o, char *err,
                          size_t errlen)
{
	int rc = fs_mkdirs(o->dir);
	if (rc != 0) {
		state_errf(err, errlen, "state backend leveldb: cannot make %s: %s", o->dir,
		     strerror(rc));
		return rc == ENOMEM ? EDDY_ENOMEM : EDDY_EIO;
	}
	if ((b->dir = rt_strdup(o->dir)) == NULL) {
		state_errf(err, errlen, "out of memory");
		return EDDY_ENOMEM;
	}
	b->batch_bytes = o->batch_bytes ? o->batch_bytes : (1u << 20);
	b->lopts = leveldb_options_create();
	b->cache = leveldb_cache_create_lru(o->block_cache_bytes ? o->block_cache_bytes
	                                                         : (8u << 20));
	leveldb_options_set_cache(b->lopts, b->cache);
	leveldb_options_set_write_buffer_size(b->lopts, o->write_buffer_bytes
	                                                    ? o->write_buffer_bytes
	                                                    : (4u << 20));
	leveldb_options_set_create_if_missing(b->lopts, 1);
	b->bloom = leveldb_filterpolicy_create_bloom(10); /* gets of absent keys skip files */
	leveldb_options_set_filter_policy(b->lopts, b->bloom);
	leveldb_options_set_max_open_files(b->lopts, 256);
	b->ropts = leveldb_readoptions_create();
	leveldb_readoptions_set_verify_checksums(b->ropts, 0);
	leveldb_readoptions_set_fill_cache(b->ropts, 1);
	b->wopts = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(b->wopts, 0);
	/* the working copy of a previous run is of no use: state comes from snapshots */
	char *lerr = NULL;
	leveldb_destroy_db(b->lopts, b->dir, &lerr);
	if (lerr == NULL)
		b->db = leveldb_open(b->lopts, b->dir, &lerr);
	if (lerr != NULL) {
		state_errf(err, errlen, "state backend leveldb: %s: %s", b->dir, lerr);
		leveldb_free(lerr);
		b->db = NULL;
		ldb_backend_close(b);
		return EDDY_EIO;
	}
	return EDDY_OK;
}

void ldb_backend_close(ev_state_backend *b)
{
	if (b->db != NULL) {
		leveldb_close(b->db);
		char *lerr = NULL;
		leveldb_destroy_db(b->lopts, b->dir, &lerr);
		if (lerr != NULL)
			leveldb_free(lerr);
		rmdir(b->dir); /* if empty */
	}
	if (b->ropts)
		leveldb_readoptions_destroy(b->ropts);
	if (b->wopts)
		leveldb_writeoptions_destroy(b->wopts);
	if (b->lopts)
		leveldb_options_destroy(b->lopts);
	if (b->cache)
		leveldb_cache_destroy(b->cache);
	if (b->bloom)
		leveldb_filterpolicy_destroy(b->bloom);
	b->bloom = NULL;
	rt_free(b->dir);
	b->db = NULL;
	b->ropts = NULL;
	b->wopts = NULL;
	b->lopts = NULL;
	b->cache = NULL;
	b->dir = NULL;
}

static eddy_err lfail(ev_state *st, const char *what, char *lerr)
{
	eddy_err e = st_fail(st, EDDY_EIO, "leveldb %s (%s): %s", what, st->be->dir, lerr);
	leveldb_free(lerr);
	return e;
}

/* range_key writes op | kg (2 bytes) into p (6 bytes). */
static void range_key(uint8_t *p, uint32_t op, uint32_t kg)
{
	p[0] = (uint8_t)(op >> 24);
	p[1] = (uint8_t)(op >> 16);
	p[2] = (uint8_t)(op >> 8);
	p[3] = (uint8_t)op;
	p[4] = (uint8_t)(kg >> 8);
	p[5] = (uint8_t)kg;
}

eddy_err ldb_clear_range(ev_state *st, uint32_t first, uint32_t last)
{
	ev_state_backend *b = st->be;
	uint8_t lo[6], hi[6];
	range_key(lo, st->opnum, first);
	/* last + 1 may be 65536 for the largest key group: then the next operator */
	if (last + 1 > 0xffff)
		range_key(hi, st->opnum + 1, 0);
	else
		range_key(hi, st->opnum, last + 1);
	leveldb_iterator_t *it = leveldb_create_iterator(b->db, b->ropts);
	leveldb_writebatch_clear(st->wb);
	size_t n = 0;
	char *lerr = NULL;
	for (leveldb_iter_seek(it, (const char *)lo, 6); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		size_t kl;
		const char *k = leveldb_iter_key(it, &kl);
		size_t m = kl < 6 ? kl : 6;
		int c = memcmp(k, hi, m);
		if (c > 0 || (c == 0 && kl >= 6))
			break;
		leveldb_writebatch_delete(st->wb, k, kl);
		if (++n % 10000 == 0) {
			leveldb_write(b->db, b->wopts, st->wb, &lerr);
			leveldb_writebatch_clear(st->wb);
			if (lerr != NULL)
				break;
		}
	}
	if (lerr == NULL)
		leveldb_iter_get_error(it, &lerr);
	leveldb_iter_destroy(it);
	if (lerr == NULL && n % 10000 != 0)
		leveldb_write(b->db, b->wopts, st->wb, &lerr);
	leveldb_writebatch_clear(st->wb);
	return lerr ? lfail(st, "clear", lerr) : EDDY_OK;
}

/* ldb_walk writes the handle's buffered changes, then calls fn with every stored key of
 * the handle's key groups, from the key group on (the operator number cut off), and its
 * value. */
eddy_err ldb_walk(ev_state *st,
                  eddy_err (*fn)(void *ctx, const uint8_t *k, size_t kl, const void *v, size_t vl),
                  void *ctx)
{
	eddy_err err = ldb_flush(st);
	if (err != EDDY_OK)
		return err;
	ev_state_backend *b = st->be;
	uint8_t lo[6];
	range_key(lo, st->opnum, st->first);
	leveldb_iterator_t *it = leveldb_create_iterator(b->db, b->ropts);
	char *lerr = NULL;
	for (leveldb_iter_seek(it, (const char *)lo, 6); leveldb_iter_valid(it) && err == EDDY_OK;
	     leveldb_iter_next(it)) {
		size_t kl;
		const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &kl);
		if (kl < 6 || memcmp(k, lo, 4) != 0 || ((uint32_t)k[4] << 8 | k[5]) > st->last)
			break;
		size_t vl;
		const char *v = leveldb_iter_value(it, &vl);
		err = fn(ctx, k + 4, kl - 4, v, vl);
	}
	leveldb_iter_get_error(it, &lerr);
	leveldb_iter_destroy(it);
	if (lerr != NULL)
		return lfail(st, "walk", lerr);
	return err;
}

eddy_err ldb_flush(ev_state *st)
{
	mtab *t = &st->core->overlay;
	if (t->count == 0)
		return EDDY_OK;
	leveldb_writebatch_clear(st->wb);
	for (size_t i = 0; i < t->cap; i++) {
		uintptr_t s = mt_slot((const mt_page *const *)t->dir, t->shift, i);
		if (s == 0)
			continue;
		ment *e = MT_PTR(s);
		if (e->flags & MF_TOMB)
			leveldb_writebatch_delete(st->wb, (const char *)e->data, e->klen);
		else
			leveldb_writebatch_put(st->wb, (const char *)e->data, e->klen,
			                       (const char *)ment_val(e), e->vlen);
	}
	char *lerr = NULL;
	leveldb_write(st->be->db, st->be->wopts, st->wb, &lerr);
	leveldb_writebatch_clear(st->wb);
	if (lerr != NULL)
		return lfail(st, "write", lerr);
	mt_clear(t);
	st->overlay_bytes = 0;
	return EDDY_OK;
}

static void drop_lval(ev_state *st)
{
	if (st->lval != NULL) {
		leveldb_free(st->lval);
		st->lval = NULL;
	}
}

/* db_get reads k from the database: EDDY_OK with the value in st->lval, or ENOENT. */
static eddy_err db_get(ev_state *st, const uint8_t *k, size_t kl, size_t *vl)
{
	drop_lval(st);
	char *lerr = NULL;
	st->lval = leveldb_get(st->be->db, st->be->ropts, (const char *)k, kl, vl, &lerr);
	if (lerr != NULL)
		return lfail(st, "get", lerr);
	return st->lval ? EDDY_OK : EDDY_ENOENT;
}

eddy_err ldb_get(ev_state *st, const uint8_t *k, size_t kl, const void **v, size_t *vl)
{
	size_t pos;
	ment *e = mt_find(&st->core->overlay, st_hash(k, kl), k, (uint32_t)kl, &pos);
	if (e != NULL) {
		if (e->flags & MF_TOMB)
			return EDDY_ENOENT;
		*v = ment_val(e);
		*vl = e->vlen;
		return EDDY_OK;
	}
	eddy_err err = db_get(st, k, kl, vl);
	if (err == EDDY_OK)
		*v = st->lval;
	return err;
}

static eddy_err overlay_write(ev_state *st, const uint8_t *k, size_t kl, uint64_t h,
                              const void *v, size_t vl, bool append, uint8_t flags)
{
	eddy_err err = mt_write(&st->core->overlay, h, k, (uint32_t)kl, v, (uint32_t)vl, append,
	                        flags, NULL);
	if (err == EDDY_EINVAL)
		return st_fail(st, err, "value over %u bytes", EV_STATE_MAX_VALUE);
	if (err != EDDY_OK)
		return st_fail(st, err, "out of memory");
	st->overlay_bytes += kl + vl + sizeof(ment);
	if (st->overlay_bytes >= st->be->batch_bytes)
		return ldb_flush(st);
	return EDDY_OK;
}

eddy_err ldb_put(ev_state *st, const uint8_t *k, size_t kl, const void *v, size_t vl,
                 bool append)
{
	uint64_t h = st_hash(k, kl);
	size_t pos;
	if (append && mt_find(&st->core->overlay, h, k, (uint32_t)kl, &pos) == NULL) {
		/* bring the stored value into the overlay, then append there */
		size_t ol;
		eddy_err err = db_get(st, k, kl, &ol);
		if (err == EDDY_OK) {
			if ((uint64_t)ol + vl > EV_STATE_MAX_VALUE)
				return st_fail(st, EDDY_EINVAL, "value over %u bytes",
				               EV_STATE_MAX_VALUE);
			err = mt_write(&st->core->overlay, h, k, (uint32_t)kl, st->lval,
			               (uint32_t)ol, false, 0, NULL);
			drop_lval(st);
			if (err != EDDY_OK)
				return st_fail(st, err, "out of memory");
		} else if (err != EDDY_ENOENT) {
			return err;
		}
	}
	return overlay_write(st, k, kl, h, v, vl, append, 0);
}

eddy_err ldb_ref(ev_state *st, const uint8_t *k, size_t kl, size_t len, ment **out,
                 bool *created)
{
	uint64_t h = st_hash(k, kl);
	size_t pos;
	ment *e = mt_find(&st->core->overlay, h, k, (uint32_t)kl, &pos);
	if (e != NULL && !(e->flags & MF_TOMB) && e->vlen == len) {
		*out = e;
		*created = false;
		return EDDY_OK;
	}
	/* the buffer is written out before, not after, so the entry stays where it is until
	 * the caller's next call */
	if (st->overlay_bytes >= st->be->batch_bytes) {
		eddy_err err = ldb_flush(st);
		if (err != EDDY_OK)
			return err;
		e = NULL;
	}
	if (st_reserve(&st->tmp, &st->tmpcap, len) != EDDY_OK)
		return st_fail(st, EDDY_ENOMEM, "out of memory");
	size_t have = 0;
	const void *old = NULL;
	if (e != NULL && !(e->flags & MF_TOMB)) {
		old = ment_val(e);
		have = e->vlen;
	} else if (e == NULL) {
		eddy_err err = db_get(st, k, kl, &have);
		if (err == EDDY_OK)
			old = st->lval;
		else if (err != EDDY_ENOENT)
			return err;
		else
			have = 0;
	}
	size_t keep = have < len ? have : len;
	if (keep)
		memcpy(st->tmp, old, keep);
	memset(st->tmp + keep, 0, len - keep);
	*created = old == NULL;
	drop_lval(st);
	eddy_err err = mt_write(&st->core->overlay, h, k, (uint32_t)kl, st->tmp, (uint32_t)len,
	                        false, 0, out);
	if (err != EDDY_OK)
		return st_fail(st, err, "out of memory");
	st->overlay_bytes += kl + len + sizeof(ment);
	return EDDY_OK;
}

eddy_err ldb_del(ev_state *st, const uint8_t *k, size_t kl)
{
	return overlay_write(st, k, kl, st_hash(k, kl), NULL, 0, false, MF_TOMB);
}

eddy_err ldb_scan(ev_state *st, const uint8_t *k, size_t kl, bool del, size_t *n)
{
	eddy_err err = ldb_flush(st);
	*n = 0;
	if (err != EDDY_OK)
		return err;
	ev_state_backend *b = st->be;
	leveldb_iterator_t *it = leveldb_create_iterator(b->db, b->ropts);
	leveldb_writebatch_clear(st->wb);
	/* entries are copied to tmp as (key length, value length, key, value) records,
	 * turned into pointers at the end (tmp may move while it grows) */
	size_t used = 0, count = 0;
	char *lerr = NULL;
	for (leveldb_iter_seek(it, (const char *)k, kl); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		size_t ikl, ivl;
		const char *ik = leveldb_iter_key(it, &ikl);
		if (ikl < kl || memcmp(ik, k, kl) != 0)
			break;
		count++;
		if (del) {
			leveldb_writebatch_delete(st->wb, ik, ikl);
			continue;
		}
		const char *iv = leveldb_iter_value(it, &ivl);
		size_t uk = ikl - kl, need = used + 2 * sizeof(size_t) + uk + ivl;
		if (st_reserve(&st->tmp, &st->tmpcap, need) != EDDY_OK) {
			err = st_fail(st, EDDY_ENOMEM, "out of memory");
			break;
		}
		memcpy(st->tmp + used, &uk, sizeof(size_t));
		memcpy(st->tmp + used + sizeof(size_t), &ivl, sizeof(size_t));
		used += 2 * sizeof(size_t);
		memcpy(st->tmp + used, ik + kl, uk);
		memcpy(st->tmp + used + uk, iv, ivl);
		used += uk + ivl;
	}
	leveldb_iter_get_error(it, &lerr);
	leveldb_iter_destroy(it);
	if (lerr != NULL)
		return lfail(st, "scan", lerr);
	if (err != EDDY_OK)
		return err;
	if (del) {
		if (count > 0)
			leveldb_write(b->db, b->wopts, st->wb, &lerr);
		leveldb_writebatch_clear(st->wb);
		return lerr ? lfail(st, "write", lerr) : EDDY_OK;
	}
	if (rt_grow((void **)&st->ents, &st->capents, count, sizeof(*st->ents), 16) != EDDY_OK)
		return st_fail(st, EDDY_ENOMEM, "out of memory");
	size_t o = 0;
	for (size_t i = 0; i < count; i++) {
		size_t uk, vl;
		memcpy(&uk, st->tmp + o, sizeof(size_t));
		memcpy(&vl, st->tmp + o + sizeof(size_t), sizeof(size_t));
		o += 2 * sizeof(size_t);
		st->ents[i] = (ev_map_entry){ { st->tmp + o, uk }, { st->tmp + o + uk, vl } };
		o += uk + vl;
	}
	*n = count;
	return EDDY_OK;
}

uint64_t ldb_size(ev_state *st)
{
	uint8_t lo[6], hi[6];
	range_key(lo, st->opnum, st->first);
	if (st->last + 1 > 0xffff)
		range_key(hi, st->opnum + 1, 0);
	else
		range_key(hi, st->opnum, st->last + 1);
	const char *s = (const char *)lo, *l = (const char *)hi;
	size_t sl = 6, ll = 6;
	uint64_t size = 0;
	leveldb_approximate_sizes(st->be->db, 1, &s, &sl, &l, &ll, &size);
	return size + st->overlay_bytes;
}
