/*
 * Keyed state internals, shared by runtime/state*.c. Not a public header.
 *
 * Design
 * ------
 * Every handle has a *core* (st_core): a slab allocator for entries and up to three
 * hash tables (mtab): `main` (the memory backend's state), `timers` (both backends) and
 * `overlay` (the LevelDB backend's buffered writes). The core is reference counted: the
 * handle holds one reference and every open snapshot one, so a snapshot stays readable
 * after its handle closed.
 *
 * An mtab is an open-addressing table (linear probing, backward-shift deletion) whose
 * slots are entry pointers tagged with 16 bits of the hash, cut into pages of up to 1024
 * slots. A snapshot of a table copies the page directory and takes a reference on every
 * page; the table copies a page before writing to one that a snapshot shares (page-level
 * copy on write). Entries (ment) are immutable while *frozen*: created before the newest
 * snapshot began (epoch < core->epoch) while some snapshot is open (live_snaps > 0). A
 * frozen entry that changes is replaced by a copy and the old one *retired*: kept until
 * no snapshot is open (the handle's thread frees retired entries when it sees
 * live_snaps == 0). So a snapshot reads pages and entries that nobody writes, with no
 * lock; the snapshot thread only reads and drops references.
 *
 * Keys. Every access builds a composed key in the handle's buffer kb:
 *   op (4, big endian; LevelDB only) | key group (2, BE) | varint len | key |
 *   varint len | namespace | state id (2, BE) | map key (LevelDB map entries only)
 * The memory backend's main table uses it from the key group on. A memory map state is
 * one main-table entry whose value is a nested mtab (map key -> value), deep-copied when
 * written while frozen (as Flink's heap backend copies a map on write). Timers are keys
 * domain (1) | time (8, BE, sign flipped) | key group | key | namespace (as above) in the
 * timers table (both backends), ordered by those bytes: time, key group, key, namespace.
 * Lists are one value: items framed as varint length + bytes.
 *
 * Timer queue (state_tq.c): per domain, a *bucket* per distinct time holding its timers
 * (items: the entry and its 16 key bytes after the time), a min-heap over the buckets'
 * times and a hash map time -> bucket. Many timers share a time (every key's window ends
 * at once), so registering is a map lookup and an append, and a bucket is sorted once,
 * when its first timer is popped, then handed out in order. ment.aux is the timer's slot
 * in its bucket: in the items while the bucket is unsorted (delete: swap with the last)
 * or sorted (delete: a hole); with TQ_LATE set, in the bucket's *late* min-heap, where a
 * timer registered into an already sorted bucket goes (a timer set while its time is
 * firing); pop takes the smaller of the two heads. A bucket that never held two timers
 * keeps its one item inline (no array per time: processing-time timers, sessions). An
 * emptied bucket goes to a free list with its arrays if it is the earliest, else it stays
 * *dead* in heap and map until it is (a timer registered at its time revives it), so the
 * heap never needs positions; the steady state allocates nothing per timer or per time.
 * The heap and map hold (time, bucket) pairs: ordering and lookups visit no bucket.
 */
#ifndef EDDY_RUNTIME_STATE_INT_H
#define EDDY_RUNTIME_STATE_INT_H

#include <eddy/state.h>
#include <leveldb/c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "varint.h"

/* ---- entries and the slab ---- */

enum {
	MF_MAP = 1,    /* the value is an mtab * (memory map state) */
	MF_TOMB = 2,   /* overlay: a pending delete */
	MF_BORN = 4,   /* main, timers: created in its epoch (not changed from an older one) */
	MF_APPEND = 8, /* main: changed in its epoch by appends only; aux is its length before */
};

typedef struct ment {
	uint64_t hash;
	uint32_t klen;  /* key bytes at data[0] */
	uint32_t vlen;  /* value bytes at data[klen] */
	uint32_t vcap;  /* room for the value */
	uint32_t epoch; /* core epoch of its last change (creation, copy or mt_touch) */
	uint32_t aux;   /* timers: slot in its bucket (TQ_LATE: in the late heap); main with
	                 * MF_APPEND: the value's length before its epoch's appends */
	uint8_t cls;    /* slab class, SLAB_BIG for a malloc'd one */
	uint8_t flags;  /* MF_* */
	uint16_t pad;
	uint8_t data[];
} ment;

#define SLAB_NCLASS 27
#define SLAB_BIG 255
#define SLAB_CHUNK (64u * 1024u)

typedef struct st_slab {
	void *free[SLAB_NCLASS]; /* free lists, linked through the first word */
	void **chunks;           /* SLAB_CHUNK blocks */
	size_t nchunks, capchunks;
	uint8_t *cur;            /* bump region in the newest chunk */
	size_t left;
	void **big;              /* malloc'd entries (bigger than the largest class) */
	size_t nbig, capbig;
	uint64_t bytes;          /* bytes of live entries (class sizes) */
} st_slab;

typedef struct st_core st_core;

/* ---- tables ---- */

typedef struct mt_page {
	_Atomic uint32_t refs; /* the table and every snapshot holding it */
	uint32_t nslots;
	uintptr_t slot[];
} mt_page;

typedef struct mtab {
	mt_page **dir;
	int8_t tomb; /* core->tomb index its removals go to (incremental snapshots); -1 none */
	size_t npages;
	unsigned shift; /* log2 slots per page */
	size_t cap;     /* slots, a power of two (0: nothing allocated) */
	size_t count;
	st_core *core;  /* its slab, epoch, retired list */
	bool cow;       /* entries may be frozen by snapshots (main, timers) */
} mtab;

/* A frozen view of an mtab. */
typedef struct mt_snap {
	mt_page **dir;
	size_t npages;
	unsigned shift;
	size_t cap, count;
} mt_snap;

/* Tombstones for incremental snapshots: the table keys of entries that were in the
 * handle's last snapshot and have been removed since, each as varint length + bytes. */
typedef struct st_tomb {
	uint8_t *p;
	size_t n, cap;
	uint64_t count;
} st_tomb;

struct st_core {
	_Atomic int refs;
	_Atomic int live_snaps;
	uint32_t epoch;
	/* incremental snapshots (memory backend): every entry's epoch is the epoch of its
	 * last change (a change in place sets it too: mt_touch), so one with epoch ==
	 * epoch changed since the last snapshot (which began epoch - 1, once `track`);
	 * MF_BORN tells one created since, and
	 * MF_APPEND one only appended to since (a delta writes just the appended bytes).
	 * Once `track`, removing an entry the last snapshot held leaves a tombstone. */
	bool track;
	uint64_t last_snap;  /* that snapshot's id */
	st_tomb tomb[2];     /* main, timers */
	bool tomb_off;       /* more removed than left since the last snapshot: no tombstones
	                      * kept, the next snapshot is no delta (mt_remove_at) */
	st_slab slab;
	ment **retired;
	size_t nretired, capretired;
	mtab main, timers, overlay;
};

/* Slots: an entry pointer (bits 0..47), the low 4 bits of its epoch (48..51: a delta
 * skips the entries of other epochs without reading them) and the hash's top 12 bits
 * (52..63: a probe skips most other keys without reading them). */
#define MT_PTR(s) ((ment *)((s) & 0x0000ffffffffffffull))
#define MT_TAG_MASK 0xfff0000000000000ull
#define MT_TAG(h) ((uintptr_t)((h) >> 52) << 52)
#define MT_SLOT(e) ((uintptr_t)(e) | MT_TAG((e)->hash) | (uintptr_t)((e)->epoch & 15u) << 48)
static inline uint32_t mt_slot_epoch(uintptr_t s)
{
	return (uint32_t)(s >> 48) & 15u;
}

static inline uintptr_t mt_slot(const mt_page *const *dir, unsigned shift, size_t i)
{
	return dir[i >> shift]->slot[i & ((1u << shift) - 1)];
}

eddy_err core_create(st_core **out);
void core_unref(st_core *c);
void core_gc(st_core *c); /* frees retired entries if no snapshot is open */

ment *ment_alloc(st_core *c, uint32_t klen, uint64_t vmin);
void ment_free(st_core *c, ment *e);
static inline uint8_t *ment_val(ment *e)
{
	return e->data + e->klen;
}
static inline mtab *ment_map(const ment *e)
{
	mtab *m;
	memcpy(&m, e->data + e->klen, sizeof(m));
	return m;
}

static inline bool ment_frozen(const st_core *c, const ment *e)
{
	return e->epoch < c->epoch &&
	       atomic_load_explicit((_Atomic int *)&c->live_snaps, memory_order_acquire) > 0;
}

void mt_init(mtab *t, st_core *c, bool cow);
void mt_fini(mtab *t); /* frees its entries (nested maps too) and pages */
void mt_clear(mtab *t); /* mt_fini, keeping the table usable */
ment *mt_find(const mtab *t, uint64_t h, const void *k, uint32_t kl, size_t *pos);
/* mt_write sets key k's value to v (append: the old value followed by v) with flags.
 * Copies a frozen entry. v may point into the old entry. *out (may be NULL) the entry. */
eddy_err mt_write(mtab *t, uint64_t h, const void *k, uint32_t kl, const void *v, uint32_t vl,
                  bool append, uint8_t flags, ment **out);
/* mt_insert adds a new entry e (whose key is not in t). */
eddy_err mt_insert(mtab *t, ment *e);
/* mt_replace puts n in the slot of e (same key) and frees or retires e. n must have been
 * made with the retire room reserved (core_reserve_retire). */
eddy_err mt_replace(mtab *t, size_t pos, ment *e, ment *n);
/* mt_remove_at removes the entry at pos (found by mt_find) and frees or retires it. */
eddy_err mt_remove_at(mtab *t, size_t pos); /* leaves a tombstone if tracked */
/* mt_touch marks the entry at pos (not frozen) as changed now (its epoch and its slot's;
 * MF_BORN, MF_APPEND and aux) before the caller changes it in place: by appending to its
 * value (append) or otherwise. EDDY_ENOMEM: nothing changed. */
eddy_err mt_touch(mtab *t, size_t pos, bool append);
eddy_err core_reserve_retire(st_core *c);
eddy_err mt_clone(mtab *dst, const mtab *src); /* deep copy of a nested map */
uint64_t mt_bytes(const mtab *t);

eddy_err mt_snap_take(mtab *t, mt_snap *s);
void mt_snap_release(mt_snap *s);

uint64_t st_hash(const void *p, size_t n);

/* ---- varints (varint.h) ---- */

static inline size_t vput(uint8_t *p, uint64_t v)
{
	return varint_put(p, v);
}

/* vget reads a varint of at most 5 bytes (values < 2^32) from p[0..n); 0 if bad. */
static inline size_t vget(const uint8_t *p, size_t n, uint32_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < n && i < 5; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			if (x > UINT32_MAX)
				return 0;
			*v = (uint32_t)x;
			return i + 1;
		}
	}
	return 0;
}

/* A parsed composed key (from the key group on). */
typedef struct st_kparts {
	uint32_t kg;
	const uint8_t *key, *ns, *rest; /* rest: after the namespace (state id, map key) */
	uint32_t klen, nslen, restlen;
} st_kparts;
bool st_parse_key(const uint8_t *p, size_t n, st_kparts *out);

/* ---- backend and handle ---- */

typedef struct st_opreg {
	char *name;
	uint32_t num;
} st_opreg;

typedef struct st_open {
	uint32_t opnum, first, last;
} st_open;

struct ev_state_backend {
	ev_state_backend_kind kind;
	pthread_mutex_t mu; /* the registries below */
	st_opreg *ops;
	size_t nops, capops;
	st_open *opens;
	size_t nopens, capopens;
	_Atomic int snaps; /* open LevelDB snapshots (checked at destroy) */
	/* LevelDB */
	char *dir;
	leveldb_t *db;
	leveldb_options_t *lopts;
	leveldb_cache_t *cache;
	leveldb_filterpolicy_t *bloom;
	leveldb_readoptions_t *ropts;
	leveldb_writeoptions_t *wopts;
	size_t batch_bytes;
};

typedef struct st_def {
	char *name;
	ev_state_desc d; /* d.name points to name */
	bool registered; /* false: known from a restored file only */
} st_def;

struct ev_state_out {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

/* ---- the timer queue (state_tq.c) ---- */

#define ST_TK_HDR 9 /* a timer key's domain (1) | time (8) */

/* st_tk_time: the time (ms) of timer entry e. */
static inline int64_t st_tk_time(const ment *e)
{
	uint64_t u = 0;
	for (int i = 1; i < ST_TK_HDR; i++)
		u = u << 8 | e->data[i];
	return (int64_t)(u ^ (1ull << 63));
}

#define TQ_LATE 0x80000000u /* ment.aux: in the bucket's late heap */

/* A timer in a bucket. */
typedef struct st_titem {
	uint64_t pfx, pfx2; /* the 16 key bytes after domain and time, big-endian, zero-padded:
	                     * most ties of one time order without visiting the entries (key
	                     * group, key length and a short key's first bytes) */
	ment *e;            /* NULL: a hole (deleted or handed out, sorted buckets only) */
} st_titem;

/* The timers of one time. */
typedef struct st_tbucket {
	int64_t time;        /* ms */
	st_titem *it;        /* the items if cap != 0, else the one item is `one` */
	size_t n, cap, head; /* unsorted: items [0, n) in arrival order; sorted: [head, n) in
	                      * order */
	st_titem one;        /* a bucket that never held two timers: its item (no array) */
	st_titem *late;      /* sorted: timers registered since, a min-heap */
	size_t nlate, caplate;
	size_t live;   /* timers in the items and late; 0: dead or free */
	uint32_t next; /* free: the next free bucket + 1 (0: none) */
	bool sorted;
} st_tbucket;

/* A time and its bucket (heap items; map slots, where b is the bucket + 1, 0: empty). */
typedef struct st_tref {
	int64_t time;
	uint32_t b;
} st_tref;

/* The timers of one domain of a handle. Used by the handle's thread only. */
typedef struct st_tq {
	st_tbucket *b; /* buckets: live, dead (empty, in heap and map until they are the
	                * earliest) and free (indices are stable) */
	size_t nb, capb;
	uint32_t free; /* first free bucket + 1 (0: none) */
	uint32_t last; /* the bucket last looked up + 1 (0: none) */
	st_tref *heap; /* live and dead buckets, a min-heap by time */
	size_t nheap, capheap;
	st_tref *map;      /* time -> bucket + 1, linear probing, load <= 1/2 */
	size_t mapcap;     /* a power of two, or 0 */
	unsigned mapshift; /* 64 - log2(mapcap) */
	st_titem *scratch; /* for sorting: room for the largest unsorted bucket */
	size_t capscratch;
	size_t count; /* timers */
} st_tq;

/* tq_reserve makes room for one more timer at time (ms), so that the tq_add after it
 * cannot fail; *where is for that tq_add (nothing may change the queue in between).
 * EDDY_ENOMEM: the queue holds the same timers (some room may have been made). */
eddy_err tq_reserve(st_tq *q, int64_t time, uint32_t *where);
/* tq_add adds timer entry e (key in the timers table's format) at time, with the *where
 * of the tq_reserve just before; sets e->aux. */
void tq_add(st_tq *q, uint32_t where, int64_t time, ment *e);
/* tq_remove removes the timer at time whose entry's aux was aux (the entry itself is not
 * read: it may be freed already). */
void tq_remove(st_tq *q, int64_t time, uint32_t aux);
/* tq_peek: the earliest timer's entry if its time is <= upto, else NULL. Sorts the
 * earliest bucket on its first peek (no allocation: tq_reserve made the room). */
ment *tq_peek(st_tq *q, int64_t upto);
/* tq_next: false if empty, else true and the earliest time in *time. */
bool tq_next(st_tq *q, int64_t *time);
/* tq_fini frees the queue's memory (not the entries); safe on a zeroed queue. */
void tq_fini(st_tq *q);

struct ev_state {
	ev_state_backend *be;
	char *op;
	uint32_t opnum, maxp, first, last;
	st_core *core;
	st_def *defs;
	uint32_t ndefs, capdefs;
	/* current key: kb = op | kg | varint | key | varint | ns, then room for id, map key */
	uint8_t *kb;
	size_t kbcap;
	size_t key_off, key_len; /* the key's bytes in kb */
	size_t ns_off;           /* offset of the namespace's varint */
	size_t pfx;              /* bytes up to the end of the namespace */
	uint8_t *ns;             /* the current namespace (a copy) */
	size_t ns_len, nscap;
	uint32_t kg;
	bool has_key;
	bool written;            /* state changed since open (restore refuses then) */
	/* scratch for results */
	ev_state_out out;        /* callback results */
	ev_bytes *items;         /* list items, map entries */
	size_t capitems;
	ev_map_entry *ents;
	size_t capents;
	uint8_t *tmp;            /* copies of borrowed values (merges, LevelDB scans) */
	size_t tmpcap;
	uint8_t *tk;             /* a timer key */
	size_t tkcap;
	st_tq tq[2]; /* timers per domain */
	/* LevelDB */
	char *lval;              /* the last leveldb_get result (leveldb_free) */
	leveldb_writebatch_t *wb;
	uint64_t overlay_bytes;
	char err[512];
};

struct ev_state_snapshot {
	st_core *core;
	ev_state_backend *be;
	char *op;
	uint32_t opnum, maxp, first, last;
	uint32_t ndefs;
	char **names;
	ev_state_kind *kinds;
	mt_snap main, timers;
	const leveldb_snapshot_t *lsnap;
	uint64_t id;        /* unique in the process, from 1 */
	uint64_t parent;    /* the id of the handle's snapshot before, if a delta can be written
	                     * against it (memory backend), else 0 */
	uint32_t since;     /* entries with epoch > since changed after the parent */
	st_tomb tomb[2];    /* removed since the parent (owned) */
	uint64_t mem_bytes; /* the handle's ev_state_size_bytes when taken */
	char err[512];
};

eddy_err st_fail(ev_state *st, eddy_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
eddy_err st_reserve(uint8_t **p, size_t *cap, size_t need);

/* LevelDB pieces (state_ldb.c) */
eddy_err ldb_backend_open(ev_state_backend *b, const ev_state_backend_opts *o, char *err,
                          size_t errlen);
void ldb_backend_close(ev_state_backend *b);
eddy_err ldb_clear_range(ev_state *st, uint32_t first, uint32_t last);
eddy_err ldb_flush(ev_state *st);
eddy_err ldb_walk(ev_state *st,
                  eddy_err (*fn)(void *ctx, const uint8_t *k, size_t kl, const void *v, size_t vl),
                  void *ctx);
eddy_err ldb_get(ev_state *st, const uint8_t *k, size_t kl, const void **v, size_t *vl);
eddy_err ldb_put(ev_state *st, const uint8_t *k, size_t kl, const void *v, size_t vl,
                 bool append);
eddy_err ldb_del(ev_state *st, const uint8_t *k, size_t kl);
/* ldb_ref: the write-buffer entry of k holding exactly len bytes (made from the stored
 * value, zero-filled, if needed) for ev_value_ref; stays put until the next call. */
eddy_err ldb_ref(ev_state *st, const uint8_t *k, size_t kl, size_t len, ment **out,
                 bool *created);
/* ldb_scan lists the map entries under prefix k (map keys after kl bytes) into
 * st->ents; with del, deletes them instead. */
eddy_err ldb_scan(ev_state *st, const uint8_t *k, size_t kl, bool del, size_t *n);
uint64_t ldb_size(ev_state *st);

/* restore helpers (state.c) */
eddy_err st_register_restored(ev_state *st, const char *name, size_t nlen, ev_state_kind kind,
                              ev_state_id *out);
eddy_err st_restore_row(ev_state *st, ev_state_id id, const uint8_t *key, uint32_t klen,
                        uint32_t kg, const uint8_t *ns, uint32_t nslen, const uint8_t *uk,
                        uint32_t uklen, const uint8_t *v, uint32_t vlen);
eddy_err st_restore_timer(ev_state *st, ev_time_domain d, int64_t time, const uint8_t *key,
                          uint32_t klen, uint32_t kg, const uint8_t *ns, uint32_t nslen);
/* st_restore_del removes state id of (key, ns) in key group kg (a whole map for a map
 * state); st_restore_timer_del the timer of (key, ns) at time: a delta's tombstones. */
eddy_err st_restore_del(ev_state *st, ev_state_id id, const uint8_t *key, uint32_t klen,
                        uint32_t kg, const uint8_t *ns, uint32_t nslen);
eddy_err st_restore_append(ev_state *st, ev_state_id id, const uint8_t *key, uint32_t klen,
                           uint32_t kg, const uint8_t *ns, uint32_t nslen, const uint8_t *v,
                           uint32_t vlen); /* appends v to the value: a delta's appends */
eddy_err st_restore_timer_del(ev_state *st, ev_time_domain d, int64_t time, const uint8_t *key,
                              uint32_t klen, uint32_t kg, const uint8_t *ns, uint32_t nslen);
void st_reset(ev_state *st);
bool st_list_valid(const uint8_t *p, size_t n);

/* errf formats an error message into err (errlen bytes; NULL: none wanted). */
void state_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
