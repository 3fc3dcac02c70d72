/*
 * Snapshots of keyed state and restore from snapshot files.
 *
 * File format (version 2), a sequence of msgpack values:
 *   header   map {"format": "eddy-state", "version": 2, "backend": "memory"|"leveldb",
 *                 "operator": str, "max_parallelism": uint, "key_group_first": uint,
 *                 "key_group_last": uint, "states": [[name, kind], ...]}
 *            (unknown keys are skipped: later versions may add some)
 *   sections one per key group that holds state, in increasing key-group order:
 *            [kg, nrows, ntimers, xxh3 (fixed uint64), bin payload]
 *            payload = nrows rows, then ntimers timers:
 *              row    [state index, key bin, ns bin, value bin]            (not map)
 *                     [state index, key bin, ns bin, map key bin, value bin] (map)
 *              timer  [domain (0 event, 1 processing), time int (ms), key bin, ns bin]
 *   footer   [xxh3 (fixed uint64), length (fixed uint64), "EDDYEND"] = 27 bytes: the
 *            XXH3-64 and length of every byte before the footer.
 * Version 1 (read, no longer written) is the same with CRC32 (zlib) checksums packed as
 * fixed uint32s (a 23-byte footer); a file's footer tells its version. XXH3 replaced
 * CRC32 because it is ~10x faster: checksumming was 3% of a job's CPU with 1 s
 * checkpoints of 100+ MB.
 * A *delta* (an incremental snapshot, memory backend) has "parent": the path of the file
 * it builds on, relative to its own directory, in its header, and sections
 *            [kg, nrows, ntimers, xxh3, bin payload, ndel, ntdel, napp]
 *            payload = ndel deletes [state index, key bin, ns bin] (a map state: the
 *            whole map), ntdel timer deletes (as timers), nrows rows, napp appends
 *            [state index, key bin, ns bin, bytes bin] (bytes to append to the value: a
 *            list only appended to since the parent), ntimers timers: every entry
 *            changed since the parent, whole unless only appended to
 * (a changed map: a delete, then all its rows). Restoring a delta restores its parent
 * first, then applies the deletes and rows (as Flink's incremental checkpoints: each
 * checkpoint uploads what changed and names the files it shares with the ones before).
 * Lists are stored as their framed value (varint length + bytes per item), so a list is
 * one row. The writer packs with msgpack-c; the reader is a small bounds-checked decoder
 * of just these types, so a hostile length never makes it allocate or read out of range.
 */
#include "state_int.h"

#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#define SNAP_FORMAT "eddy-state"
#define SNAP_VERSION 2 /* written; 1 (CRC32 checksums) is read too */
#define FOOTER_MAGIC "EDDYEND"
#define FOOTER_LEN 27 /* version 2's; version 1's is 23 */
#define FOOTER_LEN_V1 23
#define MAX_CHAIN 1000 /* deltas a restore follows before it calls the chain circular */

static _Atomic uint64_t snap_ids; /* the last snapshot id given out */

/* ---- begin / release ---- */

eddy_err ev_state_snapshot_begin(ev_state *st, ev_state_snapshot **out)
{
	st_core *c = st->core;
	core_gc(c);
	eddy_err err = EDDY_OK;
	if (st->be->kind == EV_STATE_LEVELDB && (err = ldb_flush(st)) != EDDY_OK)
		return err;
	ev_state_snapshot *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return st_fail(st, EDDY_ENOMEM, "out of memory");
	s->be = st->be;
	s->opnum = st->opnum;
	s->maxp = st->maxp;
	s->first = st->first;
	s->last = st->last;
	s->ndefs = st->ndefs;
	if ((s->op = rt_strdup(st->op)) == NULL ||
	    (s->names = rt_calloc(st->ndefs + 1, sizeof(*s->names))) == NULL ||
	    (s->kinds = rt_calloc(st->ndefs + 1, sizeof(*s->kinds))) == NULL)
		goto oom;
	for (uint32_t i = 0; i < st->ndefs; i++) {
		if ((s->names[i] = rt_strdup(st->defs[i].name)) == NULL)
			goto oom;
		s->kinds[i] = st->defs[i].d.kind;
	}
	if (mt_snap_take(&c->timers, &s->timers) != EDDY_OK ||
	    mt_snap_take(&c->main, &s->main) != EDDY_OK)
		goto oom;
	if (st->be->kind == EV_STATE_LEVELDB) {
		s->lsnap = leveldb_create_snapshot(st->be->db);
		atomic_fetch_add(&st->be->snaps, 1);
	}
	/* from here on every entry that exists is frozen */
	s->core = c;
	atomic_fetch_add(&c->refs, 1);
	atomic_fetch_add(&c->live_snaps, 1);
	s->mem_bytes = ev_state_size_bytes(st);
	s->id = atomic_fetch_add(&snap_ids, 1) + 1;
	if (st->be->kind == EV_STATE_MEMORY) {
		/* what changed since the snapshot before: entries of a later epoch, and the
		 * tombstones, which this snapshot takes over */
		s->parent = c->track && !c->tomb_off ? c->last_snap : 0;
		c->tomb_off = false;
		s->since = c->track ? c->epoch - 1 : 0; /* the last snapshot's epoch */
		memcpy(s->tomb, c->tomb, sizeof(s->tomb));
		memset(c->tomb, 0, sizeof(c->tomb));
		c->track = true;
		c->last_snap = s->id;
	}
	c->epoch++;
	*out = s;
	return EDDY_OK;
oom:
	ev_state_snapshot_release(s);
	return st_fail(st, EDDY_ENOMEM, "out of memory");
}

void ev_state_snapshot_release(ev_state_snapshot *s)
{
	if (s == NULL)
		return;
	mt_snap_release(&s->main);
	mt_snap_release(&s->timers);
	if (s->lsnap != NULL) {
		leveldb_release_snapshot(s->be->db, s->lsnap);
		atomic_fetch_sub(&s->be->snaps, 1);
	}
	if (s->names != NULL)
		for (uint32_t i = 0; i < s->ndefs; i++)
			rt_free(s->names[i]);
	rt_free(s->names);
	rt_free(s->kinds);
	rt_free(s->op);
	rt_free(s->tomb[0].p);
	rt_free(s->tomb[1].p);
	if (s->core != NULL) {
		/* the snapshot's reads are done: the handle may free what it retired */
		atomic_fetch_sub_explicit(&s->core->live_snaps, 1, memory_order_release);
		core_unref(s->core);
	}
	rt_free(s);
}

const char *ev_state_snapshot_errmsg(const ev_state_snapshot *s)
{
	return s->err;
}

uint64_t ev_state_snapshot_id(const ev_state_snapshot *s)
{
	return s->id;
}

uint64_t ev_state_snapshot_parent(const ev_state_snapshot *s)
{
	return s->parent;
}

uint64_t ev_state_snapshot_mem_bytes(const ev_state_snapshot *s)
{
	return s->mem_bytes;
}

static eddy_err snap_fail(ev_state_snapshot *s, eddy_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static eddy_err snap_fail(ev_state_snapshot *s, eddy_err e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return e;
}

/* ---- writing ---- */

/* A buffered file writer that keeps the XXH3-64 of what went through it. */
typedef struct fwriter {
	int fd;
	uint8_t *buf;
	size_t n, cap;
	XXH3_state_t *sum;
	uint64_t total;
	int err; /* errno of the first failure */
} fwriter;

/* fw_out hashes and writes p[0, n) straight to the file. */
static void fw_out(fwriter *w, const uint8_t *p, size_t n)
{
	XXH3_64bits_update(w->sum, p, n);
	size_t o = 0;
	while (o < n && w->err == 0) {
		ssize_t k = write(w->fd, p + o, n - o);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			w->err = k < 0 ? errno : EIO;
		else
			o += (size_t)k;
	}
}

static void fw_flush(fwriter *w)
{
	fw_out(w, w->buf, w->n);
	w->n = 0;
}

static int fw_write(void *data, const char *p, size_t len)
{
	fwriter *w = data;
	if (w->err)
		return -1;
	w->total += len;
	if (len >= w->cap / 4) { /* a section's payload: not through the buffer */
		fw_flush(w);
		fw_out(w, (const uint8_t *)p, len);
		return w->err ? -1 : 0;
	}
	while (len > 0) {
		if (w->n == w->cap)
			fw_flush(w);
		if (w->err)
			return -1;
		size_t k = w->cap - w->n < len ? w->cap - w->n : len;
		memcpy(w->buf + w->n, p, k);
		w->n += k;
		p += k;
		len -= k;
	}
	return 0;
}

/* A growable memory buffer for a section's payload. */
typedef struct mbuf {
	uint8_t *p;
	size_t n, cap;
	bool oom;
} mbuf;

static int mb_write(void *data, const char *p, size_t len)
{
	mbuf *b = data;
	if (b->oom || st_reserve(&b->p, &b->cap, b->n + len) != EDDY_OK) {
		b->oom = true;
		return -1;
	}
	memcpy(b->p + b->n, p, len);
	b->n += len;
	return 0;
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, p, n);
}

static void pack_header(msgpack_packer *pk, const ev_state_snapshot *s, const char *parent)
{
	msgpack_pack_map(pk, parent ? 9 : 8);
	if (parent) {
		pack_cstr(pk, "parent");
		pack_cstr(pk, parent);
	}
	pack_cstr(pk, "format");
	pack_cstr(pk, SNAP_FORMAT);
	pack_cstr(pk, "version");
	msgpack_pack_uint32(pk, SNAP_VERSION);
	pack_cstr(pk, "backend");
	pack_cstr(pk, s->lsnap ? "leveldb" : "memory");
	pack_cstr(pk, "operator");
	pack_cstr(pk, s->op);
	pack_cstr(pk, "max_parallelism");
	msgpack_pack_uint32(pk, s->maxp);
	pack_cstr(pk, "key_group_first");
	msgpack_pack_uint32(pk, s->first);
	pack_cstr(pk, "key_group_last");
	msgpack_pack_uint32(pk, s->last);
	pack_cstr(pk, "states");
	msgpack_pack_array(pk, s->ndefs);
	for (uint32_t i = 0; i < s->ndefs; i++) {
		msgpack_pack_array(pk, 2);
		pack_cstr(pk, s->names[i]);
		pack_cstr(pk, ev_state_kind_name(s->kinds[i]));
	}
}

/* pack_row packs the rows of one state entry (kp: its parsed key, from the key group on;
 * v: its value). A memory map entry (map != NULL) gives one row per map entry; a LevelDB
 * map entry has its map key after the state id. Returns the rows packed, or -1 for a
 * key that does not parse. */
static int64_t pack_row(msgpack_packer *pk, const ev_state_snapshot *s, const st_kparts *kp,
                        const mtab *map, const uint8_t *v, uint32_t vl)
{
	if (kp->restlen < 2)
		return -1;
	uint32_t sid = (uint32_t)kp->rest[0] << 8 | kp->rest[1];
	if (sid >= s->ndefs)
		return -1;
	bool is_map = s->kinds[sid] == EV_STATE_MAP;
	if (map != NULL) {
		int64_t n = 0;
		for (size_t i = 0; i < map->cap; i++) {
			uintptr_t sl = mt_slot((const mt_page *const *)map->dir, map->shift, i);
			if (sl == 0)
				continue;
			ment *e = MT_PTR(sl);
			msgpack_pack_array(pk, 5);
			msgpack_pack_uint32(pk, sid);
			pack_bin(pk, kp->key, kp->klen);
			pack_bin(pk, kp->ns, kp->nslen);
			pack_bin(pk, e->data, e->klen);
			pack_bin(pk, ment_val(e), e->vlen);
			n++;
		}
		return n;
	}
	if (!is_map && kp->restlen != 2)
		return -1;
	msgpack_pack_array(pk, is_map ? 5 : 4);
	msgpack_pack_uint32(pk, sid);
	pack_bin(pk, kp->key, kp->klen);
	pack_bin(pk, kp->ns, kp->nslen);
	if (is_map)
		pack_bin(pk, kp->rest + 2, kp->restlen - 2);
	pack_bin(pk, v, vl);
	return 1;
}

/* pack_timer packs one timer of key k (kl bytes: the timers table's); false if it does
 * not parse. */
static bool pack_timer(msgpack_packer *pk, const uint8_t *k, uint32_t kl)
{
	st_kparts kp;
	if (kl < 9 || !st_parse_key(k + 9, kl - 9, &kp) || kp.restlen != 0)
		return false;
	uint64_t u = 0;
	for (int i = 1; i < 9; i++)
		u = u << 8 | k[i];
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint32(pk, k[0]);
	msgpack_pack_int64(pk, (int64_t)(u ^ (1ull << 63)));
	pack_bin(pk, kp.key, kp.klen);
	pack_bin(pk, kp.ns, kp.nslen);
	return true;
}

/* pack_del packs a delete of the main-table key k (kl bytes) for key group kg; false if
 * it does not parse. */
static bool pack_del(msgpack_packer *pk, const ev_state_snapshot *s, uint32_t kg, const uint8_t *k,
                     uint32_t kl)
{
	st_kparts kp;
	if (!st_parse_key(k, kl, &kp) || kp.kg != kg || kp.restlen != 2)
		return false;
	uint32_t sid = (uint32_t)kp.rest[0] << 8 | kp.rest[1];
	if (sid >= s->ndefs)
		return false;
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint32(pk, sid);
	pack_bin(pk, kp.key, kp.klen);
	pack_bin(pk, kp.ns, kp.nslen);
	return true;
}

/* emit_section writes a section; dels (ndel, ntdel, napp) only in a delta. */
static void emit_section(msgpack_packer *fpk, uint32_t kg, uint64_t nrows, uint64_t ntimers,
                         const mbuf *pay, const uint64_t *dels)
{
	msgpack_pack_array(fpk, dels ? 8 : 5);
	msgpack_pack_uint32(fpk, kg);
	msgpack_pack_uint64(fpk, nrows);
	msgpack_pack_uint64(fpk, ntimers);
	msgpack_pack_fix_uint64(fpk, XXH3_64bits(pay->p, pay->n));
	pack_bin(fpk, pay->p, pay->n);
	if (dels) {
		msgpack_pack_uint64(fpk, dels[0]);
		msgpack_pack_uint64(fpk, dels[1]);
		msgpack_pack_uint64(fpk, dels[2]);
	}
}

/* kg_sort sorts the m items (esz bytes each) in seq, of key groups kgs (indexes from the
 * snapshot's first), by key group, stably, into a new array *out, with (*off)[k] the
 * start of group k and (*off)[k + 1] its end. Frees seq and kgs, also on failure. */
static eddy_err kg_sort(const ev_state_snapshot *s, void *seq, uint16_t *kgs, size_t m, size_t esz,
                        void **out, size_t **off)
{
	size_t nkg = s->last - s->first + 1;
	size_t *o = rt_calloc(nkg + 2, sizeof(*o));
	uint8_t *a = rt_malloc((m ? m : 1) * esz);
	if (o == NULL || a == NULL) {
		rt_free(o);
		rt_free(a);
		rt_free(seq);
		rt_free(kgs);
		return EDDY_ENOMEM;
	}
	for (size_t i = 0; i < m; i++)
		o[kgs[i] + 2]++;
	for (size_t k = 2; k < nkg + 2; k++)
		o[k] += o[k - 1];
	for (size_t i = 0; i < m; i++)
		memcpy(a + o[kgs[i] + 1]++ * esz, (uint8_t *)seq + i * esz, esz);
	/* now o[k] is the start of group k and o[k + 1] its end */
	rt_free(seq);
	rt_free(kgs);
	*out = a;
	*off = o;
	return EDDY_OK;
}

/* kg_index: the index from the snapshot's first of key group kg (an impossible one, out
 * of the range, is the last: the writer then rejects its key). */
static uint16_t kg_index(const ev_state_snapshot *s, uint32_t kg)
{
	return (uint16_t)((kg < s->first || kg > s->last ? s->last : kg) - s->first);
}

/* by_kg sorts the entries of table snapshot ts by key group (the key group is at byte
 * kg_at of the key) into *out, bounded by *off as kg_sort's; with changed, only the
 * entries changed since the parent snapshot. */
static eddy_err by_kg(const ev_state_snapshot *s, const mt_snap *ts, size_t kg_at, bool changed,
                      ment ***out, size_t **off)
{
	size_t n = ts->count ? ts->count : 1, m = 0;
	uint32_t ep = (s->since + 1) & 15u;
	ment **seq = rt_malloc(n * sizeof(*seq));
	uint16_t *kgs = rt_malloc(n * sizeof(*kgs));
	if (seq == NULL || kgs == NULL) {
		rt_free(seq);
		rt_free(kgs);
		return EDDY_ENOMEM;
	}
	/* gather the entries and their groups in slot order (prefetching ahead: entries are
	 * scattered) */
	for (size_t i = 0; i < ts->cap && m < n; i++) {
		uintptr_t sl = mt_slot((const mt_page *const *)ts->dir, ts->shift, i);
		if (i + 16 < ts->cap) {
			uintptr_t ahead =
				mt_slot((const mt_page *const *)ts->dir, ts->shift, i + 16);
			if (ahead && (!changed || mt_slot_epoch(ahead) == ep))
				__builtin_prefetch(MT_PTR(ahead));
		}
		/* changed since the parent: of epoch since + 1 (the slot tells its low bits) */
		if (sl == 0 || (changed && mt_slot_epoch(sl) != ep))
			continue;
		ment *e = MT_PTR(sl);
		if (changed && e->epoch <= s->since)
			continue;
		seq[m] = e;
		kgs[m++] = kg_index(s, (uint32_t)e->data[kg_at] << 8 | e->data[kg_at + 1]);
	}
	return kg_sort(s, seq, kgs, m, sizeof(*seq), (void **)out, off);
}

/* A tombstone: its key in the table's format. */
typedef struct tkey {
	const uint8_t *k;
	uint32_t kl;
} tkey;

/* tombs_by_kg sorts tombstone list b by key group (at byte kg_at of each key) into *out,
 * bounded as by_kg's. */
static eddy_err tombs_by_kg(const ev_state_snapshot *s, const st_tomb *b, size_t kg_at, tkey **out,
                            size_t **off)
{
	size_t n = b->count ? b->count : 1, m = 0;
	tkey *seq = rt_malloc(n * sizeof(*seq));
	uint16_t *kgs = rt_malloc(n * sizeof(*kgs));
	if (seq == NULL || kgs == NULL) {
		rt_free(seq);
		rt_free(kgs);
		return EDDY_ENOMEM;
	}
	for (size_t p = 0; p < b->n && m < n;) {
		uint32_t kl;
		size_t h = vget(b->p + p, b->n - p, &kl);
		if (h == 0 || kl > b->n - p - h)
			break; /* cannot happen: we wrote it */
		const uint8_t *k = b->p + p + h;
		seq[m] = (tkey){k, kl};
		kgs[m++] =
		    kg_index(s, kl >= kg_at + 2 ? (uint32_t)k[kg_at] << 8 | k[kg_at + 1] : s->last);
		p += h + kl;
	}
	return kg_sort(s, seq, kgs, m, sizeof(*seq), (void **)out, off);
}

/* appended: changed entry e was only appended to since the parent snapshot (a delta
 * writes the bytes appended). */
static bool appended(const ment *e)
{
	return (e->flags & (MF_APPEND | MF_BORN | MF_MAP)) == MF_APPEND && e->aux <= e->vlen;
}

/* write_memory writes the sections of a memory snapshot: every entry, or with delta only
 * what changed since the parent snapshot (deletes first). */
static eddy_err write_memory(ev_state_snapshot *s, msgpack_packer *fpk, mbuf *pay, const char *path,
                             bool delta)
{
	ment **ents = NULL, **tms = NULL;
	size_t *eo = NULL, *to = NULL, *do_ = NULL, *tdo = NULL;
	tkey *dels = NULL, *tdels = NULL;
	eddy_err err = EDDY_ENOMEM;
	if (by_kg(s, &s->main, 0, delta, &ents, &eo) != EDDY_OK ||
	    by_kg(s, &s->timers, 9, delta, &tms, &to) != EDDY_OK ||
	    (delta && (tombs_by_kg(s, &s->tomb[0], 0, &dels, &do_) != EDDY_OK ||
	               tombs_by_kg(s, &s->tomb[1], 9, &tdels, &tdo) != EDDY_OK)))
		goto out;
	msgpack_packer pk;
	msgpack_packer_init(&pk, pay, mb_write);
	err = EDDY_OK;
	for (uint32_t kg = s->first; kg <= s->last && err == EDDY_OK; kg++) {
		size_t k = kg - s->first;
		if (eo[k] == eo[k + 1] && to[k] == to[k + 1] &&
		    (!delta || (do_[k] == do_[k + 1] && tdo[k] == tdo[k + 1])))
			continue;
		pay->n = 0;
		uint64_t nrows = 0, nd[3] = {0, 0, 0};
		if (delta) {
			for (size_t i = do_[k]; i < do_[k + 1] && err == EDDY_OK; i++, nd[0]++)
				if (!pack_del(&pk, s, kg, dels[i].k, dels[i].kl))
					err = snap_fail(s, EDDY_EINVAL,
					                "%s: a removed state key does not parse",
					                path);
			/* a changed map is written whole: its old rows go first */
			for (size_t i = eo[k]; i < eo[k + 1] && err == EDDY_OK; i++) {
				ment *e = ents[i];
				if (!(e->flags & MF_MAP) || (e->flags & MF_BORN))
					continue; /* not a map, or a map made since the parent */
				if (!pack_del(&pk, s, kg, e->data, e->klen))
					err = snap_fail(s, EDDY_EINVAL,
					                "%s: a state key does not parse", path);
				nd[0]++;
			}
			for (size_t i = tdo[k]; i < tdo[k + 1] && err == EDDY_OK; i++, nd[1]++)
				if (!pack_timer(&pk, tdels[i].k, tdels[i].kl))
					err = snap_fail(s, EDDY_EINVAL,
					                "%s: a removed timer key does not parse",
					                path);
		}
		for (size_t i = eo[k]; i < eo[k + 1] && err == EDDY_OK; i++) {
			ment *e = ents[i];
			if (i + 8 < eo[k + 1])
				__builtin_prefetch(ents[i + 8]);
			if (delta && appended(e))
				continue; /* below */
			st_kparts kp;
			int64_t r = -1;
			if (st_parse_key(e->data, e->klen, &kp) && kp.kg == kg)
				r = pack_row(&pk, s, &kp, (e->flags & MF_MAP) ? ment_map(e) : NULL,
				             ment_val(e), e->vlen);
			if (r < 0) {
				err = snap_fail(s, EDDY_EINVAL, "%s: a state key does not parse",
				                path);
				break;
			}
			nrows += (uint64_t)r;
		}
		for (size_t i = eo[k]; delta && i < eo[k + 1] && err == EDDY_OK; i++) {
			ment *e = ents[i];
			if (!appended(e))
				continue;
			st_kparts kp;
			if (!st_parse_key(e->data, e->klen, &kp) || kp.kg != kg ||
			    kp.restlen != 2 ||
			    ((uint32_t)kp.rest[0] << 8 | kp.rest[1]) >= s->ndefs) {
				err = snap_fail(s, EDDY_EINVAL, "%s: a state key does not parse",
				                path);
				break;
			}
			msgpack_pack_array(&pk, 4);
			msgpack_pack_uint32(&pk, (uint32_t)kp.rest[0] << 8 | kp.rest[1]);
			pack_bin(&pk, kp.key, kp.klen);
			pack_bin(&pk, kp.ns, kp.nslen);
			pack_bin(&pk, ment_val(e) + e->aux, e->vlen - e->aux);
			nd[2]++;
		}
		for (size_t i = to[k]; i < to[k + 1] && err == EDDY_OK; i++)
			if (!pack_timer(&pk, tms[i]->data, tms[i]->klen))
				err = snap_fail(s, EDDY_EINVAL, "%s: a timer key does not parse",
				                path);
		if (pay->oom)
			err = snap_fail(s, EDDY_ENOMEM, "%s: out of memory", path);
		if (err == EDDY_OK)
			emit_section(fpk, kg, nrows, to[k + 1] - to[k], pay, delta ? nd : NULL);
	}
out:
	if (err == EDDY_ENOMEM && s->err[0] == '\0')
		snap_fail(s, err, "%s: out of memory", path);
	rt_free(ents);
	rt_free(tms);
	rt_free(eo);
	rt_free(to);
	rt_free(dels);
	rt_free(tdels);
	rt_free(do_);
	rt_free(tdo);
	return err;
}

/* write_leveldb writes the sections of a LevelDB snapshot: its database range in key
 * order (so by key group), merged with the timers grouped by key group. */
static eddy_err write_leveldb(ev_state_snapshot *s, msgpack_packer *fpk, mbuf *pay,
                              const char *path)
{
	ment **tms = NULL;
	size_t *to = NULL;
	if (by_kg(s, &s->timers, 9, false, &tms, &to) != EDDY_OK)
		return snap_fail(s, EDDY_ENOMEM, "%s: out of memory", path);
	leveldb_readoptions_t *ro = leveldb_readoptions_create();
	leveldb_readoptions_set_snapshot(ro, s->lsnap);
	leveldb_readoptions_set_fill_cache(ro, 0);
	leveldb_iterator_t *it = leveldb_create_iterator(s->be->db, ro);
	uint8_t lo[6] = { (uint8_t)(s->opnum >> 24), (uint8_t)(s->opnum >> 16),
		          (uint8_t)(s->opnum >> 8),  (uint8_t)s->opnum,
		          (uint8_t)(s->first >> 8),  (uint8_t)s->first };
	leveldb_iter_seek(it, (const char *)lo, 6);
	msgpack_packer pk;
	msgpack_packer_init(&pk, pay, mb_write);
	eddy_err err = EDDY_OK;
	const uint32_t none = UINT32_MAX;
	uint32_t tg = 0; /* the next timer group to look at (index from first) */
	for (;;) {
		/* the key group of the iterator's entry, if it is one of ours */
		uint32_t ikg = none;
		st_kparts kp;
		size_t kl = 0;
		const uint8_t *k = NULL;
		if (leveldb_iter_valid(it)) {
			k = (const uint8_t *)leveldb_iter_key(it, &kl);
			if (kl >= 6 && memcmp(k, lo, 4) == 0) {
				if (!st_parse_key(k + 4, kl - 4, &kp)) {
					err = snap_fail(s, EDDY_EINVAL,
					                "%s: a state key does not parse", path);
					break;
				}
				if (kp.kg <= s->last)
					ikg = kp.kg;
			}
		}
		uint32_t tkg = none;
		for (; tg <= s->last - s->first; tg++)
			if (to[tg] != to[tg + 1]) {
				tkg = s->first + tg;
				break;
			}
		uint32_t kg = ikg < tkg ? ikg : tkg;
		if (kg == none)
			break;
		pay->n = 0;
		uint64_t nrows = 0;
		while (ikg == kg) {
			size_t vl;
			const uint8_t *v = (const uint8_t *)leveldb_iter_value(it, &vl);
			int64_t r = pack_row(&pk, s, &kp, NULL, v, (uint32_t)vl);
			if (r < 0) {
				err = snap_fail(s, EDDY_EINVAL, "%s: a state key does not parse",
				                path);
				break;
			}
			nrows += (uint64_t)r;
			leveldb_iter_next(it);
			ikg = none;
			if (leveldb_iter_valid(it)) {
				k = (const uint8_t *)leveldb_iter_key(it, &kl);
				if (kl >= 6 && memcmp(k, lo, 4) == 0 &&
				    st_parse_key(k + 4, kl - 4, &kp) && kp.kg == kg)
					ikg = kg;
			}
		}
		if (err != EDDY_OK)
			break;
		size_t g = kg - s->first;
		uint64_t ntimers = to[g + 1] - to[g];
		for (size_t i = to[g]; i < to[g + 1] && err == EDDY_OK; i++)
			if (!pack_timer(&pk, tms[i]->data, tms[i]->klen))
				err = snap_fail(s, EDDY_EINVAL, "%s: a timer key does not parse",
				                path);
		if (tkg == kg)
			tg++; /* this group's timers are done */
		if (pay->oom)
			err = snap_fail(s, EDDY_ENOMEM, "%s: out of memory", path);
		if (err != EDDY_OK)
			break;
		emit_section(fpk, kg, nrows, ntimers, pay, NULL);
	}
	char *lerr = NULL;
	leveldb_iter_get_error(it, &lerr);
	leveldb_iter_destroy(it);
	leveldb_readoptions_destroy(ro);
	if (lerr != NULL) {
		if (err == EDDY_OK)
			err = snap_fail(s, EDDY_EIO, "%s: leveldb: %s", path, lerr);
		leveldb_free(lerr);
	}
	rt_free(tms);
	rt_free(to);
	return err;
}

/* snap_write writes the snapshot to path: whole (parent NULL), or the changes since its
 * parent snapshot in a delta naming the file parent (empty: no changes, the parent is
 * this snapshot's own earlier file). */
static eddy_err snap_write(ev_state_snapshot *s, const char *path, const char *parent, bool empty,
                           uint64_t *bytes)
{
	fwriter w = {.fd = -1, .cap = 1024 * 1024};
	mbuf pay = { 0 };
	eddy_err err = EDDY_OK;
	if ((w.buf = rt_malloc(w.cap)) == NULL || (w.sum = XXH3_createState()) == NULL) {
		rt_free(w.buf);
		return snap_fail(s, EDDY_ENOMEM, "%s: out of memory", path);
	}
	XXH3_64bits_reset(w.sum);
	w.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w.fd < 0) {
		err = snap_fail(s, EDDY_EIO, "%s: cannot create: %s", path, strerror(errno));
		rt_free(w.buf);
		XXH3_freeState(w.sum);
		return err;
	}
	msgpack_packer fpk;
	msgpack_packer_init(&fpk, &w, fw_write);
	pack_header(&fpk, s, parent);
	if (!empty)
		err = s->lsnap ? write_leveldb(s, &fpk, &pay, path)
		               : write_memory(s, &fpk, &pay, path, parent != NULL);
	if (err == EDDY_OK && w.err == 0) {
		/* the footer: XXH3-64 and length of everything before it */
		fw_flush(&w);
		uint8_t f[FOOTER_LEN];
		uint64_t sum = XXH3_64bits_digest(w.sum), len = w.total;
		f[0] = 0x93;
		f[1] = 0xcf;
		for (int i = 0; i < 8; i++)
			f[2 + i] = (uint8_t)(sum >> (56 - 8 * i));
		f[10] = 0xcf;
		for (int i = 0; i < 8; i++)
			f[11 + i] = (uint8_t)(len >> (56 - 8 * i));
		f[19] = 0xa7;
		memcpy(f + 20, FOOTER_MAGIC, 7);
		fw_out(&w, f, sizeof(f)); /* (its own bytes hashed after the digest: unused) */
		w.total += sizeof(f);
		if (w.err == 0 && fsync(w.fd) != 0)
			w.err = errno;
	}
	if (err == EDDY_OK && w.err != 0)
		err = snap_fail(s, EDDY_EIO, "%s: write failed: %s", path, strerror(w.err));
	if (close(w.fd) != 0 && err == EDDY_OK)
		err = snap_fail(s, EDDY_EIO, "%s: close failed: %s", path, strerror(errno));
	if (err != EDDY_OK)
		unlink(path);
	else if (bytes != NULL)
		*bytes = w.total;
	rt_free(w.buf);
	XXH3_freeState(w.sum);
	rt_free(pay.p);
	return err;
}

eddy_err ev_state_snapshot_write(ev_state_snapshot *s, const char *path, uint64_t *bytes)
{
	s->err[0] = '\0';
	return snap_write(s, path, NULL, false, bytes);
}

eddy_err ev_state_snapshot_write_delta(ev_state_snapshot *s, const char *path, const char *parent,
                                       uint64_t parent_id, uint64_t *bytes)
{
	s->err[0] = '\0';
	if (parent == NULL || parent[0] == '\0' || parent_id == 0 ||
	    (parent_id != s->parent && parent_id != s->id))
		return snap_fail(
		    s, EDDY_EINVAL,
		    "%s: no delta against snapshot %llu (this is %llu, its parent %llu)", path,
		    (unsigned long long)parent_id, (unsigned long long)s->id,
		    (unsigned long long)s->parent);
	return snap_write(s, path, parent, parent_id == s->id, bytes);
}

/* ---- reading: a bounds-checked msgpack decoder ---- */

typedef struct rd {
	const uint8_t *p, *end;
} rd;

static bool rd_need(rd *r, size_t n)
{
	return (size_t)(r->end - r->p) >= n;
}

static uint64_t be_n(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* rd_int reads any msgpack integer into *v (uint64 over INT64_MAX fails). */
static bool rd_int(rd *r, int64_t *v)
{
	if (!rd_need(r, 1))
		return false;
	uint8_t t = *r->p;
	int n;
	bool sign = false;
	if (t <= 0x7f || t >= 0xe0) {
		*v = (int8_t)t;
		r->p++;
		return true;
	}
	switch (t) {
	case 0xcc: n = 1; break;
	case 0xcd: n = 2; break;
	case 0xce: n = 4; break;
	case 0xcf: n = 8; break;
	case 0xd0: n = 1, sign = true; break;
	case 0xd1: n = 2, sign = true; break;
	case 0xd2: n = 4, sign = true; break;
	case 0xd3: n = 8, sign = true; break;
	default: return false;
	}
	if (!rd_need(r, 1 + (size_t)n))
		return false;
	uint64_t u = be_n(r->p + 1, n);
	if (sign) {
		int shift = 64 - 8 * n;
		*v = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
	} else {
		if (u > INT64_MAX)
			return false;
		*v = (int64_t)u;
	}
	r->p += 1 + n;
	return true;
}

static bool rd_uint(rd *r, uint64_t max, uint64_t *v)
{
	int64_t x;
	if (!rd_int(r, &x) || x < 0 || (uint64_t)x > max)
		return false;
	*v = (uint64_t)x;
	return true;
}

/* rd_len reads the header of a container or byte string of kind want ('b' bin, 's' str,
 * 'a' array, 'm' map) and its length. */
static bool rd_len(rd *r, char want, uint32_t *len)
{
	if (!rd_need(r, 1))
		return false;
	uint8_t t = *r->p;
	char kind;
	int n = 0;
	uint32_t fix = 0;
	if (t >= 0xa0 && t <= 0xbf)
		kind = 's', fix = t & 0x1f;
	else if (t >= 0x90 && t <= 0x9f)
		kind = 'a', fix = t & 0x0f;
	else if (t >= 0x80 && t <= 0x8f)
		kind = 'm', fix = t & 0x0f;
	else {
		switch (t) {
		case 0xc4: kind = 'b', n = 1; break;
		case 0xc5: kind = 'b', n = 2; break;
		case 0xc6: kind = 'b', n = 4; break;
		case 0xd9: kind = 's', n = 1; break;
		case 0xda: kind = 's', n = 2; break;
		case 0xdb: kind = 's', n = 4; break;
		case 0xdc: kind = 'a', n = 2; break;
		case 0xdd: kind = 'a', n = 4; break;
		case 0xde: kind = 'm', n = 2; break;
		case 0xdf: kind = 'm', n = 4; break;
		default: return false;
		}
	}
	if (kind != want || !rd_need(r, 1 + (size_t)n))
		return false;
	*len = n ? (uint32_t)be_n(r->p + 1, n) : fix;
	r->p += 1 + n;
	/* a byte string must fit; each container item takes at least one byte */
	return (size_t)(r->end - r->p) >= *len;
}

static bool rd_bytes(rd *r, char want, uint32_t max, const uint8_t **p, uint32_t *n)
{
	if (!rd_len(r, want, n) || *n > max)
		return false;
	*p = r->p;
	r->p += *n;
	return true;
}

static bool rd_streq(rd *r, const char *s)
{
	const uint8_t *p;
	uint32_t n;
	return rd_bytes(r, 's', UINT32_MAX, &p, &n) && n == strlen(s) && memcmp(p, s, n) == 0;
}

/* rd_skip skips one value of any type, nested at most depth deep. */
static bool rd_skip(rd *r, int depth)
{
	if (!rd_need(r, 1) || depth <= 0)
		return false;
	uint8_t t = *r->p;
	int64_t i;
	uint32_t n;
	const uint8_t *p;
	if (t <= 0x7f || t >= 0xe0 || (t >= 0xcc && t <= 0xd3))
		return rd_int(r, &i);
	if (t == 0xc0 || t == 0xc2 || t == 0xc3) {
		r->p++;
		return true;
	}
	if (t == 0xca || t == 0xcb) {
		size_t w = t == 0xca ? 5 : 9;
		if (!rd_need(r, w))
			return false;
		r->p += w;
		return true;
	}
	if ((t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb))
		return rd_bytes(r, 's', UINT32_MAX, &p, &n);
	if (t >= 0xc4 && t <= 0xc6)
		return rd_bytes(r, 'b', UINT32_MAX, &p, &n);
	bool map = (t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf;
	bool arr = (t >= 0x90 && t <= 0x9f) || t == 0xdc || t == 0xdd;
	if (!map && !arr)
		return false; /* ext types are never written */
	if (!rd_len(r, map ? 'm' : 'a', &n))
		return false;
	for (uint64_t k = 0; k < (uint64_t)n * (map ? 2 : 1); k++)
		if (!rd_skip(r, depth - 1))
			return false;
	return true;
}

/* ---- restore ---- */

typedef struct sstate {
	const uint8_t *name;
	uint32_t nlen;
	ev_state_kind kind;
	ev_state_id id; /* in the handle (apply pass) */
} sstate;

typedef struct sfile {
	const char *path;
	uint8_t *map;
	size_t size;
	const uint8_t *body, *body_end; /* sections: after the header, before the footer */
	uint32_t maxp, first, last;
	uint32_t nstates;
	sstate *states;
	int version;           /* 2: XXH3-64 checksums, 1: CRC32 */
	const uint8_t *parent; /* a delta: the file it builds on (relative to its directory) */
	uint32_t parent_len;
	char *own_path; /* path, if we made it (a parent's) */
} sfile;

/* The footer of a file image: its version (2: XXH3-64 checksums, 1: CRC32), the
 * checksum of the bytes before it and their length. */
typedef struct footer {
	int version;
	uint64_t sum;
	size_t body; /* bytes before the footer */
} footer;

/* footer_read finds the footer of m (size bytes); NULL, or what is wrong. */
static const char *footer_read(const uint8_t *m, size_t size, footer *out)
{
	const uint8_t *ft = size >= FOOTER_LEN ? m + size - FOOTER_LEN : NULL;
	if (ft && ft[0] == 0x93 && ft[1] == 0xcf && ft[10] == 0xcf && ft[19] == 0xa7 &&
	    memcmp(ft + 20, FOOTER_MAGIC, 7) == 0) {
		*out = (footer){2, be_n(ft + 2, 8), size - FOOTER_LEN};
		return be_n(ft + 11, 8) == out->body ? NULL : "length mismatch";
	}
	ft = size >= FOOTER_LEN_V1 ? m + size - FOOTER_LEN_V1 : NULL;
	if (ft && ft[0] == 0x93 && ft[1] == 0xce && ft[6] == 0xcf && ft[15] == 0xa7 &&
	    memcmp(ft + 16, FOOTER_MAGIC, 7) == 0) {
		*out = (footer){1, be_n(ft + 2, 4), size - FOOTER_LEN_V1};
		return be_n(ft + 7, 8) == out->body ? NULL : "length mismatch";
	}
	return "truncated or not an eddy state snapshot (no footer)";
}

/* sum_of: the checksum of p[0, n) in a file of version v. */
static uint64_t sum_of(int v, const void *p, size_t n)
{
	return v == 1 ? (uint32_t)crc32_z(0, p, n) : XXH3_64bits(p, n);
}

/* rd_fix_sum reads a section's checksum: a uint64 packed with msgpack_pack_fix_uint64
 * (version 2) or a uint32 with msgpack_pack_fix_uint32 (version 1). */
static bool rd_fix_sum(rd *r, int version, uint64_t *v)
{
	int w = version == 1 ? 4 : 8;
	if (!rd_need(r, 1 + (size_t)w) || r->p[0] != (version == 1 ? 0xce : 0xcf))
		return false;
	*v = be_n(r->p + 1, w);
	r->p += 1 + w;
	return true;
}

static eddy_err bad(ev_state *st, const sfile *f, const char *what)
{
	return st_fail(st, EDDY_EINVAL, "snapshot %s: %s", f->path, what);
}

static bool kind_parse(const uint8_t *p, uint32_t n, ev_state_kind *k)
{
	for (int i = EV_STATE_VALUE; i <= EV_STATE_AGGREGATING; i++) {
		const char *name = ev_state_kind_name((ev_state_kind)i);
		if (strlen(name) == n && memcmp(name, p, n) == 0) {
			*k = (ev_state_kind)i;
			return true;
		}
	}
	return false;
}

static eddy_err read_header(ev_state *st, sfile *f, rd *r)
{
	uint32_t n;
	if (!rd_len(r, 'm', &n))
		return bad(st, f, "not an eddy state snapshot (no header)");
	bool format = false, version = false, op = false, maxp = false, first = false,
	     last = false, states = false;
	uint64_t v;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *k;
		uint32_t kl;
		if (!rd_bytes(r, 's', 64, &k, &kl))
			return bad(st, f, "corrupt header");
#define KEY(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
		if (KEY("format")) {
			if (!rd_streq(r, SNAP_FORMAT))
				return bad(st, f, "not an eddy state snapshot (format)");
			format = true;
		} else if (KEY("version")) {
			if (!rd_uint(r, UINT32_MAX, &v))
				return bad(st, f, "corrupt header (version)");
			if (v != (uint64_t)f->version)
				return st_fail(st, EDDY_EINVAL,
				               "snapshot %s: format version %llu, its footer's "
				               "is %d's (this eddy reads 1 and %d)",
				               f->path, (unsigned long long)v, f->version,
				               SNAP_VERSION);
			version = true;
		} else if (KEY("operator")) {
			const uint8_t *p;
			uint32_t pl;
			if (!rd_bytes(r, 's', EV_STATE_MAX_NAME, &p, &pl))
				return bad(st, f, "corrupt header (operator)");
			if (pl != strlen(st->op) || memcmp(p, st->op, pl) != 0)
				return st_fail(st, EDDY_EINVAL,
				               "snapshot %s: of operator '%.*s', not '%s'", f->path,
				               (int)pl, (const char *)p, st->op);
			op = true;
		} else if (KEY("parent")) {
			if (!rd_bytes(r, 's', 4096, &f->parent, &f->parent_len) ||
			    f->parent_len == 0)
				return bad(st, f, "corrupt header (parent)");
		} else if (KEY("max_parallelism")) {
			if (!rd_uint(r, EV_STATE_MAX_KEY_GROUPS, &v) || v == 0)
				return bad(st, f, "corrupt header (max_parallelism)");
			f->maxp = (uint32_t)v;
			maxp = true;
		} else if (KEY("key_group_first")) {
			if (!rd_uint(r, EV_STATE_MAX_KEY_GROUPS, &v))
				return bad(st, f, "corrupt header (key_group_first)");
			f->first = (uint32_t)v;
			first = true;
		} else if (KEY("key_group_last")) {
			if (!rd_uint(r, EV_STATE_MAX_KEY_GROUPS, &v))
				return bad(st, f, "corrupt header (key_group_last)");
			f->last = (uint32_t)v;
			last = true;
		} else if (KEY("states")) {
			uint32_t ns;
			if (!rd_len(r, 'a', &ns) || ns > EV_STATE_MAX_STATES)
				return bad(st, f, "corrupt header (states)");
			f->states = rt_calloc(ns + 1, sizeof(*f->states));
			if (f->states == NULL)
				return st_fail(st, EDDY_ENOMEM, "out of memory");
			f->nstates = ns;
			for (uint32_t j = 0; j < ns; j++) {
				sstate *s = &f->states[j];
				const uint8_t *kp;
				uint32_t kn, two;
				if (!rd_len(r, 'a', &two) || two != 2 ||
				    !rd_bytes(r, 's', EV_STATE_MAX_NAME, &s->name, &s->nlen) ||
				    s->nlen == 0 || !rd_bytes(r, 's', 32, &kp, &kn) ||
				    !kind_parse(kp, kn, &s->kind))
					return bad(st, f, "corrupt header (states)");
				for (uint32_t q = 0; q < j; q++)
					if (f->states[q].nlen == s->nlen &&
					    memcmp(f->states[q].name, s->name, s->nlen) == 0)
						return bad(st, f, "state listed twice");
				/* a state registered here must be of the same kind */
				for (uint32_t q = 0; q < st->ndefs; q++)
					if (strlen(st->defs[q].name) == s->nlen &&
					    memcmp(st->defs[q].name, s->name, s->nlen) == 0 &&
					    st->defs[q].d.kind != s->kind)
						return st_fail(
							st, EDDY_EINVAL,
							"snapshot %s: state %s is a %s state "
							"there, %s here",
							f->path, st->defs[q].name,
							ev_state_kind_name(s->kind),
							ev_state_kind_name(st->defs[q].d.kind));
			}
			states = true;
		} else if (!rd_skip(r, 16)) {
			return bad(st, f, "corrupt header");
		}
#undef KEY
	}
	if (!format || !version)
		return bad(st, f, "not an eddy state snapshot (format, version)");
	if (!op || !maxp || !first || !last || !states)
		return bad(st, f, "header incomplete");
	if (f->maxp != st->maxp)
		return st_fail(st, EDDY_EINVAL,
		               "snapshot %s: max_parallelism %u, the operator has %u (key groups "
		               "cannot be remapped)",
		               f->path, f->maxp, st->maxp);
	if (f->first > f->last || f->last >= f->maxp)
		return bad(st, f, "corrupt header (key group range)");
	return EDDY_OK;
}

/* walk_timers checks (apply false) or loads (apply true) n timers of key group kg at r:
 * registered, or with del removed (a delta's timer deletes). */
static eddy_err walk_timers(ev_state *st, const sfile *f, uint32_t kg, rd *r, uint64_t n, bool del,
                            bool apply)
{
	for (uint64_t i = 0; i < n; i++) {
		uint32_t m, kl, nl;
		uint64_t d;
		int64_t time;
		const uint8_t *k, *ns;
		if (!rd_len(r, 'a', &m) || m != 4 || !rd_uint(r, 1, &d) || !rd_int(r, &time) ||
		    !rd_bytes(r, 'b', EV_STATE_MAX_KEY, &k, &kl) ||
		    !rd_bytes(r, 'b', EV_STATE_MAX_KEY, &ns, &nl)) {
			char what[96];
			snprintf(what, sizeof(what), "key group %u: timer%s %llu is corrupt", kg,
			         del ? " delete" : "", (unsigned long long)i);
			return bad(st, f, what);
		}
		if (!apply)
			continue;
		eddy_err err =
		    del ? st_restore_timer_del(st, (ev_time_domain)d, time, k, kl, kg, ns, nl)
		        : st_restore_timer(st, (ev_time_domain)d, time, k, kl, kg, ns, nl);
		if (err != EDDY_OK)
			return err;
	}
	return EDDY_OK;
}

/* walk_section checks (apply false) or loads (apply true) a section's rows and timers. */
static eddy_err walk_section(ev_state *st, const sfile *f, uint32_t kg, const uint8_t *p,
                             uint32_t len, uint64_t nrows, uint64_t ntimers, const uint64_t *dels,
                             bool apply)
{
	rd r = { p, p + len };
	char what[96];
	for (uint64_t i = 0; dels && i < dels[0]; i++) {
		uint32_t n, kl, nl;
		uint64_t sid;
		const uint8_t *k, *ns;
		if (!rd_len(&r, 'a', &n) || n != 3 || f->nstates == 0 ||
		    !rd_uint(&r, f->nstates - 1, &sid) ||
		    !rd_bytes(&r, 'b', EV_STATE_MAX_KEY, &k, &kl) ||
		    !rd_bytes(&r, 'b', EV_STATE_MAX_KEY, &ns, &nl)) {
			snprintf(what, sizeof(what), "key group %u: delete %llu is corrupt", kg,
			         (unsigned long long)i);
			return bad(st, f, what);
		}
		if (apply) {
			eddy_err err = st_restore_del(st, f->states[sid].id, k, kl, kg, ns, nl);
			if (err != EDDY_OK)
				return err;
		}
	}
	eddy_err err = dels ? walk_timers(st, f, kg, &r, dels[1], true, apply) : EDDY_OK;
	if (err != EDDY_OK)
		return err;
	for (uint64_t i = 0; i < nrows; i++) {
		uint32_t n, kl, nl, ukl = 0, vl;
		uint64_t sid;
		const uint8_t *k, *ns, *uk = NULL, *v;
		if (!rd_len(&r, 'a', &n) || (n != 4 && n != 5) ||
		    !rd_uint(&r, f->nstates ? f->nstates - 1 : 0, &sid) || f->nstates == 0)
			goto bad_row;
		ev_state_kind kind = f->states[sid].kind;
		if ((kind == EV_STATE_MAP) != (n == 5) ||
		    !rd_bytes(&r, 'b', EV_STATE_MAX_KEY, &k, &kl) ||
		    !rd_bytes(&r, 'b', EV_STATE_MAX_KEY, &ns, &nl) ||
		    (n == 5 && !rd_bytes(&r, 'b', EV_STATE_MAX_KEY, &uk, &ukl)) ||
		    !rd_bytes(&r, 'b', EV_STATE_MAX_VALUE, &v, &vl) ||
		    (kind == EV_STATE_LIST && !st_list_valid(v, vl)))
			goto bad_row;
		if (apply && (err = st_restore_row(st, f->states[sid].id, k, kl, kg, ns, nl, uk,
		                                   ukl, v, vl)) != EDDY_OK)
			return err;
		continue;
bad_row:
		snprintf(what, sizeof(what), "key group %u: row %llu is corrupt", kg,
		         (unsigned long long)i);
		return bad(st, f, what);
	}
	for (uint64_t i = 0; dels && i < dels[2]; i++) {
		uint32_t n, kl, nl, vl;
		uint64_t sid;
		const uint8_t *k, *ns, *v;
		if (!rd_len(&r, 'a', &n) || n != 4 || f->nstates == 0 ||
		    !rd_uint(&r, f->nstates - 1, &sid) || f->states[sid].kind == EV_STATE_MAP ||
		    !rd_bytes(&r, 'b', EV_STATE_MAX_KEY, &k, &kl) ||
		    !rd_bytes(&r, 'b', EV_STATE_MAX_KEY, &ns, &nl) ||
		    !rd_bytes(&r, 'b', EV_STATE_MAX_VALUE, &v, &vl) ||
		    (f->states[sid].kind == EV_STATE_LIST && !st_list_valid(v, vl))) {
			snprintf(what, sizeof(what), "key group %u: append %llu is corrupt", kg,
			         (unsigned long long)i);
			return bad(st, f, what);
		}
		if (apply && (err = st_restore_append(st, f->states[sid].id, k, kl, kg, ns, nl, v,
		                                      vl)) != EDDY_OK)
			return err;
	}
	if ((err = walk_timers(st, f, kg, &r, ntimers, false, apply)) != EDDY_OK)
		return err;
	if (r.p != r.end) {
		snprintf(what, sizeof(what), "key group %u: bytes after the last entry", kg);
		return bad(st, f, what);
	}
	return EDDY_OK;
}

/* walk_file goes through the sections of f (files[fidx]): checks them (owner[kg - first]:
 * the file that holds that key group of the handle's range, -1 if none yet; updated) or
 * loads those of the handle's range. */
static eddy_err walk_file(ev_state *st, const sfile *f, int32_t fidx, int32_t *owner,
                          const sfile *files, bool apply)
{
	rd r = { f->body, f->body_end };
	int64_t prev = -1;
	while (r.p < r.end) {
		uint32_t n, plen;
		uint64_t kg, nrows, ntimers, dels[3] = {0, 0, 0}, sum;
		const uint8_t *pay;
		if (!rd_len(&r, 'a', &n) || n != (f->parent ? 8u : 5u) ||
		    !rd_uint(&r, f->maxp - 1, &kg) || !rd_uint(&r, UINT32_MAX, &nrows) ||
		    !rd_uint(&r, UINT32_MAX, &ntimers) || !rd_fix_sum(&r, f->version, &sum) ||
		    !rd_bytes(&r, 'b', UINT32_MAX, &pay, &plen) ||
		    (f->parent &&
		     (!rd_uint(&r, UINT32_MAX, &dels[0]) || !rd_uint(&r, UINT32_MAX, &dels[1]) ||
		      !rd_uint(&r, UINT32_MAX, &dels[2]))))
			return bad(st, f, "corrupt section");
		if ((int64_t)kg <= prev || kg < f->first || kg > f->last)
			return bad(st, f, "sections out of order or outside the file's key groups");
		prev = (int64_t)kg;
		if (kg < st->first || kg > st->last)
			continue;
		if (!apply) {
			char what[128];
			if (sum_of(f->version, pay, plen) != sum) {
				snprintf(what, sizeof(what), "key group %u: checksum mismatch",
				         (uint32_t)kg);
				return bad(st, f, what);
			}
			/* a key group is in one full file; deltas change what their base holds */
			int32_t *o = &owner[kg - st->first];
			if (f->parent == NULL && *o >= 0)
				return st_fail(st, EDDY_EINVAL,
				               "snapshot %s: key group %u is also in %s", f->path,
				               (uint32_t)kg, files[*o].path);
			if (f->parent == NULL)
				*o = fidx;
		}
		eddy_err err = walk_section(st, f, (uint32_t)kg, pay, plen, nrows, ntimers,
		                            f->parent ? dels : NULL, apply);
		if (err != EDDY_OK)
			return err;
	}
	return EDDY_OK;
}

/* open_file maps f->path and checks its footer, length, CRC and header. */
static eddy_err open_file(ev_state *st, sfile *f)
{
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return st_fail(st, EDDY_EIO, "snapshot %s: cannot open: %s", f->path,
		               strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		eddy_err e = st_fail(st, EDDY_EIO, "snapshot %s: %s", f->path, strerror(errno));
		close(fd);
		return e;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return bad(st, f, "not a regular file");
	}
	if (sb.st_size < FOOTER_LEN_V1 + 1) {
		close(fd);
		return bad(st, f, sb.st_size == 0 ? "empty file" : "truncated (too short)");
	}
	f->size = (size_t)sb.st_size;
	void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		f->size = 0;
		return st_fail(st, EDDY_EIO, "snapshot %s: cannot map: %s", f->path,
		               strerror(errno));
	}
	f->map = m;
	footer ft;
	const char *why = footer_read(f->map, f->size, &ft);
	if (why != NULL)
		return bad(st, f, why);
	f->version = ft.version;
	if (sum_of(ft.version, f->map, ft.body) != ft.sum)
		return bad(st, f, "checksum mismatch (corrupted)");
	rd r = {f->map, f->map + ft.body};
	eddy_err err = read_header(st, f, &r);
	if (err != EDDY_OK)
		return err;
	f->body = r.p;
	f->body_end = f->map + ft.body;
	return EDDY_OK;
}

/* parent_path: the path of the parent named rel (rl bytes) by the file at child: rel
 * itself if absolute, else relative to child's directory, each leading "../" of rel
 * taking off a last directory of child's that is not ".." or "." (so a chain's paths
 * stay short: DIR/chk-6/../chk-5/x is DIR/chk-5/x). NULL: out of memory. */
static char *parent_path(const char *child, const uint8_t *rel, uint32_t rl)
{
	const char *slash = strrchr(child, '/');
	size_t dl = rel[0] == '/' ? 0 : slash ? (size_t)(slash - child) : 0; /* without the / */
	while (dl > 0 && rl >= 3 && memcmp(rel, "../", 3) == 0) {
		size_t b = dl;
		while (b > 0 && child[b - 1] != '/')
			b--;
		size_t cl = dl - b; /* the last directory: child[b, dl) */
		if (cl == 0 || (cl == 1 && child[b] == '.') ||
		    (cl == 2 && child[b] == '.' && child[b + 1] == '.') || b == 0)
			break;
		dl = b - 1; /* without it and its slash */
		rel += 3;
		rl -= 3;
	}
	size_t sep = rel[0] == '/' || !slash ? 0 : 1;
	char *p = rt_malloc(dl + sep + rl + 1);
	if (p != NULL) {
		memcpy(p, child, dl);
		if (sep)
			p[dl] = '/';
		memcpy(p + dl + sep, rel, rl);
		p[dl + sep + rl] = '\0';
	}
	return p;
}

/* open_chain opens the file at path and, if it is a delta, the files it builds on,
 * appending them to *files (*n of *cap) base first, and checks that a delta's key groups
 * are its parent's. */
static eddy_err open_chain(ev_state *st, const char *path, sfile **files, size_t *n, size_t *cap)
{
	size_t start = *n;
	const char *p = path;
	char *own = NULL;
	for (;;) {
		if (*n - start > MAX_CHAIN) {
			rt_free(own);
			return st_fail(st, EDDY_EINVAL,
			               "snapshot %s: more than %d deltas before a full snapshot "
			               "(circular?)",
			               path, MAX_CHAIN);
		}
		if (rt_grow((void **)files, cap, *n + 1, sizeof(**files), 8) != EDDY_OK) {
			rt_free(own);
			return st_fail(st, EDDY_ENOMEM, "out of memory");
		}
		sfile *f = &(*files)[(*n)++];
		memset(f, 0, sizeof(*f));
		f->path = p;
		f->own_path = own;
		eddy_err err = open_file(st, f);
		if (err != EDDY_OK)
			return err;
		if (f->parent == NULL)
			break;
		if ((own = parent_path(f->path, f->parent, f->parent_len)) == NULL)
			return st_fail(st, EDDY_ENOMEM, "out of memory");
		p = own;
	}
	for (size_t i = start, j = *n - 1; i < j; i++, j--) {
		sfile t = (*files)[i];
		(*files)[i] = (*files)[j];
		(*files)[j] = t;
	}
	for (size_t i = start + 1; i < *n; i++) {
		const sfile *f = &(*files)[i], *b = &(*files)[i - 1];
		if (f->first != b->first || f->last != b->last)
			return st_fail(st, EDDY_EINVAL,
			               "snapshot %s: key groups %u-%u, its parent %s has %u-%u",
			               f->path, f->first, f->last, b->path, b->first, b->last);
	}
	return EDDY_OK;
}

/* file_check1 checks one file as ev_state_file_check does; *parent gets the path of the
 * file it builds on (a delta; caller frees) or NULL. */
static eddy_err file_check1(const char *path, char *err, size_t errlen, char **parent)
{
	*parent = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		state_errf(err, errlen, "snapshot %s: cannot open: %s", path, strerror(errno));
		return EDDY_EIO;
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		state_errf(err, errlen, "snapshot %s: %s", path, strerror(errno));
		close(fd);
		return EDDY_EIO;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size < FOOTER_LEN_V1 + 1) {
		state_errf(err, errlen, "snapshot %s: %s", path,
		           !S_ISREG(sb.st_mode) ? "not a regular file" : "truncated (too short)");
		close(fd);
		return EDDY_EINVAL;
	}
	size_t size = (size_t)sb.st_size;
	const uint8_t *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		state_errf(err, errlen, "snapshot %s: cannot map: %s", path, strerror(errno));
		return EDDY_EIO;
	}
	eddy_err e = EDDY_EINVAL;
	footer ft;
	const char *why = footer_read(m, size, &ft);
	uint32_t n;
	rd r = {m, m + (why ? 0 : ft.body)};
	if (why != NULL) {
		state_errf(err, errlen, "snapshot %s: %s", path, why);
	} else if (sum_of(ft.version, m, ft.body) != ft.sum) {
		state_errf(err, errlen, "snapshot %s: checksum mismatch (corrupted)", path);
	} else if (!rd_len(&r, 'm', &n)) {
		state_errf(err, errlen, "snapshot %s: not an eddy state snapshot (no header)",
		           path);
	} else {
		/* the header's parent, if any (the rest is checked by a restore) */
		e = EDDY_OK;
		for (uint32_t i = 0; i < n && e == EDDY_OK; i++) {
			const uint8_t *k, *v;
			uint32_t kl, vl;
			if (!rd_bytes(&r, 's', 64, &k, &kl)) {
				e = EDDY_EINVAL;
			} else if (kl == 6 && memcmp(k, "parent", 6) == 0) {
				if (!rd_bytes(&r, 's', 4096, &v, &vl) || vl == 0)
					e = EDDY_EINVAL;
				else if ((*parent = parent_path(path, v, vl)) == NULL)
					e = EDDY_ENOMEM;
			} else if (!rd_skip(&r, 16)) {
				e = EDDY_EINVAL;
			}
		}
		if (e != EDDY_OK)
			state_errf(err, errlen, "snapshot %s: %s", path,
			           e == EDDY_ENOMEM ? "out of memory" : "corrupt header");
	}
	munmap((void *)m, size);
	return e;
}

eddy_err ev_state_file_check(const char *path, char *err, size_t errlen)
{
	char *own = NULL;
	const char *p = path;
	eddy_err e = EDDY_OK;
	for (int depth = 0; e == EDDY_OK; depth++) {
		char *parent;
		if (depth > MAX_CHAIN) {
			state_errf(err, errlen,
			           "snapshot %s: more than %d deltas before a full snapshot "
			           "(circular?)",
			           path, MAX_CHAIN);
			e = EDDY_EINVAL;
			break;
		}
		e = file_check1(p, err, errlen, &parent);
		rt_free(own);
		own = parent;
		p = parent;
		if (p == NULL)
			break;
	}
	rt_free(own);
	return e;
}

eddy_err ev_state_restore(ev_state *st, const char *const *paths, size_t n)
{
	if (st->written)
		return st_fail(st, EDDY_EBUSY, "restore into a handle that holds state already");
	if (n == 0 || paths == NULL)
		return st_fail(st, EDDY_EINVAL, "restore from no files");
	if (st->lval != NULL) {
		leveldb_free(st->lval);
		st->lval = NULL;
	}
	uint32_t nkg = st->last - st->first + 1;
	sfile *files = NULL;
	size_t nfiles = 0, capfiles = 0;
	int32_t *owner = rt_malloc(nkg * sizeof(*owner));
	st_core *old = st->core, *fresh = NULL;
	st_tq oldq[2] = {st->tq[0], st->tq[1]};
	eddy_err err = EDDY_OK;
	if (owner == NULL || n > INT32_MAX / (MAX_CHAIN + 2)) {
		err = st_fail(st, EDDY_ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t k = 0; k < nkg; k++)
		owner[k] = -1;
	/* pass 1: check every file whole (and the files each delta builds on, base first) */
	for (size_t i = 0; i < n && err == EDDY_OK; i++)
		err = open_chain(st, paths[i], &files, &nfiles, &capfiles);
	for (size_t i = 0; i < nfiles && err == EDDY_OK; i++)
		err = walk_file(st, &files[i], (int32_t)i, owner, files, false);
	if (err != EDDY_OK)
		goto out;
	/* pass 2: load into a fresh core, swapped in on success */
	if (core_create(&fresh) != EDDY_OK) {
		err = st_fail(st, EDDY_ENOMEM, "out of memory");
		goto out;
	}
	st->core = fresh;
	memset(st->tq, 0, sizeof(st->tq));
	for (size_t i = 0; i < nfiles && err == EDDY_OK; i++) {
		sfile *f = &files[i];
		for (uint32_t j = 0; j < f->nstates && err == EDDY_OK; j++)
			err = st_register_restored(st, (const char *)f->states[j].name,
			                           f->states[j].nlen, f->states[j].kind,
			                           &f->states[j].id);
		if (err == EDDY_OK)
			err = walk_file(st, f, (int32_t)i, owner, files, true);
	}
	if (err == EDDY_OK && st->be->kind == EV_STATE_LEVELDB)
		err = ldb_flush(st);
	if (err != EDDY_OK) {
		char msg[sizeof(st->err)];
		memcpy(msg, st->err, sizeof(msg));
		tq_fini(&st->tq[0]);
		tq_fini(&st->tq[1]);
		core_unref(fresh);
		st->core = old;
		st->tq[0] = oldq[0];
		st->tq[1] = oldq[1];
		if (st->be->kind == EV_STATE_LEVELDB)
			ldb_clear_range(st, st->first, st->last);
		memcpy(st->err, msg, sizeof(msg));
		goto out;
	}
	tq_fini(&oldq[0]);
	tq_fini(&oldq[1]);
	core_unref(old);
	st->written = true;
	st->has_key = false;
out:
	for (size_t i = 0; i < nfiles; i++) {
		if (files[i].map != NULL)
			munmap(files[i].map, files[i].size);
		rt_free(files[i].states);
		rt_free(files[i].own_path);
	}
	rt_free(files);
	rt_free(owner);
	if (err != EDDY_OK)
		st->written = false;
	return err;
}
