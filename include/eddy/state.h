/*
 * Keyed state: what a stateful operator subtask remembers per key, with two backends
 * (memory, LevelDB), per-key timers, asynchronous snapshots and restore with rescaling.
 *
 * Model (as Flink's keyed state backends):
 *  - A *backend* (ev_state_backend) is one per process, shared by every handle; it is
 *    thread-safe. The memory backend keeps state in hash tables; the LevelDB backend in
 *    one LevelDB database (a working directory, wiped when the backend is created:
 *    durable state lives in snapshot files, not in the database).
 *  - A *handle* (ev_state) is one per operator subtask, opened with the operator's id,
 *    max_parallelism (the number of key groups) and the subtask's key-group range
 *    [first, last] (ev_key_group_range). It is used by one thread at a time (the task's).
 *  - Every access is scoped to the *current key* (bytes, with its key group: both set by
 *    ev_state_set_key) and the *current namespace* (bytes, default empty; Flink's windows
 *    are namespaces: ev_state_set_namespace).
 *  - States are registered by name (ev_state_register) and are of one kind: value, list,
 *    map, reducing or aggregating, with the semantics of Flink's ValueState, ListState,
 *    MapState, ReducingState and AggregatingState. Values, list items, map keys and map
 *    values are byte strings; the operator serializes.
 *  - Per-key timers (event time and processing time, ms) are part of the state.
 *  - ev_state_snapshot_begin captures the state (and timers) at that instant, cheaply, on
 *    the task thread; ev_state_snapshot_write then writes it to a file on any thread while
 *    the task goes on changing state. ev_state_restore reads one or more such files and
 *    takes only the key groups of the handle's range: restoring the files of parallelism
 *    2 into 3 handles redistributes the key groups (rescaling).
 *
 * Borrowed results: a pointer handed out by a get (values, list items, map entries, the
 * key of a popped timer) points into the handle's memory and stays valid until the next
 * call on that handle. Copy what you keep.
 *
 * Errors (eddy_err): EDDY_EINVAL for bad arguments or bad input (including a bad snapshot
 * file), EDDY_ENOMEM, EDDY_EIO for a failed system or LevelDB call, EDDY_ENOENT for "no
 * such value". After a failed call ev_state_errmsg tells what went wrong; a failed call
 * changed nothing (except where said). Errors of ev_state_register are the caller's bugs
 * and are also reported that way, never by assert.
 *
 * Limits: keys, namespaces and map keys up to EV_STATE_MAX_KEY bytes; values (and a whole
 * list) up to EV_STATE_MAX_VALUE bytes; EV_STATE_MAX_STATES states per handle.
 */
#ifndef EDDY_STATE_H
#define EDDY_STATE_H

#include <eddy/err.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_STATE_DEFAULT_MAX_PARALLELISM 128u
#define EV_STATE_MAX_KEY_GROUPS 32768u /* max_parallelism is 1 .. this */
#define EV_STATE_MAX_KEY 65535u        /* bytes */
#define EV_STATE_MAX_VALUE (256u << 20) /* bytes */
#define EV_STATE_MAX_STATES 1024u
#define EV_STATE_MAX_NAME 255u         /* bytes of a state name */

/* ---- key groups (as Flink's KeyGroupRangeAssignment) ---- */

/* ev_key_group_of_hash: the key group of a key whose 64-bit hash is h (the task's
 * partitioner hashes key fields with XXH3): h % max_parallelism. */
static inline uint32_t ev_key_group_of_hash(uint64_t h, uint32_t max_parallelism)
{
	return (uint32_t)(h % max_parallelism);
}

/* ev_key_group_subtask: the subtask (0 .. parallelism-1) that owns key group kg:
 * kg * parallelism / max_parallelism. */
static inline uint32_t ev_key_group_subtask(uint32_t kg, uint32_t max_parallelism,
                                            uint32_t parallelism)
{
	return (uint32_t)((uint64_t)kg * parallelism / max_parallelism);
}

/* ev_key_group_range: the key groups [*first, *last] of subtask `subtask` of
 * `parallelism` (1 <= parallelism <= max_parallelism): exactly those for which
 * ev_key_group_subtask gives `subtask`. */
void ev_key_group_range(uint32_t max_parallelism, uint32_t parallelism, uint32_t subtask,
                        uint32_t *first, uint32_t *last);

/* ---- backends ---- */

typedef struct ev_state_backend ev_state_backend;
typedef struct ev_state ev_state;
typedef struct ev_state_snapshot ev_state_snapshot;

typedef enum ev_state_backend_kind {
	EV_STATE_MEMORY = 0,
	EV_STATE_LEVELDB = 1
} ev_state_backend_kind;

typedef struct ev_state_backend_opts {
	ev_state_backend_kind kind;
	const char *dir;          /* LevelDB: the database directory (created; its LevelDB
	                             files are deleted at create and at destroy) */
	size_t block_cache_bytes; /* LevelDB block cache; 0: 8 MiB */
	size_t write_buffer_bytes; /* LevelDB memtable; 0: 4 MiB */
	size_t batch_bytes;       /* LevelDB: writes are buffered per handle (readable at
	                             once) and written as one batch at this size; 0: 1 MiB */
} ev_state_backend_opts;

/* ev_state_backend_create makes the process's backend. Errors: EDDY_EINVAL (bad options,
 * e.g. LevelDB without dir), EDDY_EIO (the directory or database cannot be made or
 * opened: another process holds it, permissions), EDDY_ENOMEM; then a message is written
 * to err (errlen bytes, NUL-terminated; err may be NULL). Any thread. */
eddy_err ev_state_backend_create(const ev_state_backend_opts *opts, ev_state_backend **out,
                                 char *err, size_t errlen);

/* ev_state_backend_destroy closes the backend (and deletes the LevelDB files). Every
 * handle must be closed and every snapshot released first. Safe on NULL. Any thread. */
void ev_state_backend_destroy(ev_state_backend *b);

/* ev_state_backend_kind_of: the kind b was created with. */
ev_state_backend_kind ev_state_backend_kind_of(const ev_state_backend *b);

/* ---- handles ---- */

/* ev_state_open opens the state of subtask key groups [kg_first, kg_last] of operator
 * `operator_id` (copied), with max_parallelism key groups (0: 128). The state starts
 * empty: the LevelDB backend deletes whatever a closed handle of the same operator left
 * in those key groups. Errors: EDDY_EINVAL (bad range or id), EDDY_EEXIST (an open handle
 * of the same operator holds one of these key groups), EDDY_ENOMEM, EDDY_EIO. Any
 * thread; the handle is then used by one thread at a time. */
eddy_err ev_state_open(ev_state_backend *b, const char *operator_id, uint32_t max_parallelism,
                       uint32_t kg_first, uint32_t kg_last, ev_state **out);

/* ev_state_close closes the handle and frees its memory. Snapshots begun on it stay
 * valid: they may be written and must be released, after or before the close. Safe on
 * NULL. The handle's thread. */
void ev_state_close(ev_state *st);

/* ev_state_errmsg: what the last failed call on st did wrong ("" if none yet). Valid
 * until the next call on st. */
const char *ev_state_errmsg(const ev_state *st);

/* ev_state_size_bytes: approximate bytes of state held (memory: entries and tables;
 * LevelDB: the database's estimate for the handle's key groups plus buffered writes). */
uint64_t ev_state_size_bytes(ev_state *st);

/* ev_state_handle_kind: the kind of the backend st is on. */
ev_state_backend_kind ev_state_handle_kind(const ev_state *st);

/* ev_state_key_groups: the handle's max_parallelism and range. */
void ev_state_key_groups(const ev_state *st, uint32_t *max_parallelism, uint32_t *first,
                         uint32_t *last);

/* ---- the current key and namespace ---- */

/* ev_state_set_key makes key (len bytes, copied; len 0 is a valid key) in key group kg
 * the current key of every state and timer call that follows. Errors: EDDY_EINVAL (kg
 * outside the handle's range, len > EV_STATE_MAX_KEY), EDDY_ENOMEM. Until a key is set,
 * accessors fail with EDDY_EINVAL. */
eddy_err ev_state_set_key(ev_state *st, const void *key, size_t len, uint32_t kg);

/* ev_state_set_namespace makes ns (len bytes, copied) the current namespace; the default
 * is the empty namespace. Setting a key keeps the namespace. Errors: EDDY_EINVAL (len >
 * EV_STATE_MAX_KEY), EDDY_ENOMEM. */
eddy_err ev_state_set_namespace(ev_state *st, const void *ns, size_t len);

/* ---- state descriptors ---- */

typedef enum ev_state_kind {
	EV_STATE_VALUE = 1,
	EV_STATE_LIST = 2,
	EV_STATE_MAP = 3,
	EV_STATE_REDUCING = 4,
	EV_STATE_AGGREGATING = 5
} ev_state_kind;

/* ev_state_kind_name: "value", "list", "map", "reducing", "aggregating" ("?" else). */
const char *ev_state_kind_name(ev_state_kind k);

/* Where a callback writes its result: ev_state_out_reserve gives len writable bytes
 * (the result is then exactly those len bytes; NULL if out of memory), ev_state_out_set
 * copies len bytes from p (EDDY_ENOMEM). A callback that writes nothing yields an empty
 * result. The buffer belongs to the handle. */
typedef struct ev_state_out ev_state_out;
void *ev_state_out_reserve(ev_state_out *out, size_t len);
eddy_err ev_state_out_set(ev_state_out *out, const void *p, size_t len);

/* Callbacks run on the handle's thread inside the call that needs them; they must not
 * call back into the handle. A callback's error is returned by that call, which then
 * changed nothing. The input pointers are borrowed for the callback's duration. */
typedef eddy_err (*ev_reduce_fn)(void *ctx, const void *a, size_t alen, const void *b,
                                 size_t blen, ev_state_out *out);
typedef eddy_err (*ev_agg_create_fn)(void *ctx, ev_state_out *out);
typedef eddy_err (*ev_agg_add_fn)(void *ctx, const void *acc, size_t acclen, const void *in,
                                  size_t inlen, ev_state_out *out);
typedef eddy_err (*ev_agg_merge_fn)(void *ctx, const void *a, size_t alen, const void *b,
                                    size_t blen, ev_state_out *out);
typedef eddy_err (*ev_agg_result_fn)(void *ctx, const void *acc, size_t acclen,
                                     ev_state_out *out);

typedef struct ev_state_desc {
	const char *name;        /* unique per handle; 1 .. EV_STATE_MAX_NAME bytes */
	ev_state_kind kind;
	ev_reduce_fn reduce;     /* REDUCING: combines two values into one (required) */
	ev_agg_create_fn create; /* AGGREGATING: a new accumulator (NULL: empty bytes) */
	ev_agg_add_fn add;       /* AGGREGATING: acc + input -> acc (required) */
	ev_agg_merge_fn merge;   /* AGGREGATING: acc + acc -> acc (only for merging
	                            namespaces; may be NULL) */
	ev_agg_result_fn result; /* AGGREGATING: acc -> result (NULL: the accumulator) */
	void *ctx;               /* passed to the callbacks */
} ev_state_desc;

typedef uint32_t ev_state_id;

/* ev_state_register declares a state and gives its id for the accessors. Registering a
 * name again with the same kind returns the same id (with the new callbacks); a name
 * restored from a snapshot before it was registered is attached here. Errors: EDDY_EINVAL
 * (bad name or kind, missing callback, same name with another kind), EDDY_EFULL
 * (EV_STATE_MAX_STATES), EDDY_ENOMEM. The descriptor is copied (not ctx's target). */
eddy_err ev_state_register(ev_state *st, const ev_state_desc *desc, ev_state_id *out);

/* Every accessor below works on state `id` for the current key and namespace and fails
 * with EDDY_EINVAL when no key is set, id is unknown or of another kind, or a length is
 * over its limit. */

/* ev_state_clear removes the state's value (any kind) for the current key and
 * namespace. No error if there is none. */
eddy_err ev_state_clear(ev_state *st, ev_state_id id);

/* ---- value state (Flink's ValueState) ---- */

/* ev_value_get: the value (borrowed) or EDDY_ENOENT if none. */
eddy_err ev_value_get(ev_state *st, ev_state_id id, const void **v, size_t *len);
/* ev_value_take: the value (copied to the handle: borrowed until the next call on it) and
 * removes it, in one lookup (a window firing and purging); EDDY_ENOENT if none. */
eddy_err ev_value_take(ev_state *st, ev_state_id id, const void **v, size_t *len);
/* ev_value_put sets the value to len bytes from v (copied; v may be a borrowed pointer
 * from this handle). The memory backend does not allocate to overwrite a value of an
 * existing key with one that fits its slot (except once per key after a snapshot began:
 * copy on write). */
eddy_err ev_value_put(ev_state *st, ev_state_id id, const void *v, size_t len);

/* ev_value_ref gives a writable pointer (*p) to the value of the current key and
 * namespace, exactly len bytes (1 .. EV_STATE_MAX_VALUE), for changing it in place:
 * absent, it is created zero-filled (*created = true); of another length, it is resized
 * (the common prefix kept, the rest zero-filled). The pointer is valid until the next
 * call on the handle: write through it before that, and the change is the state's (the
 * memory backend copies a value a snapshot holds first; LevelDB keeps it in the
 * handle's write buffer). This is the hot path of operators that keep fixed-size
 * accumulators (the window operator): one lookup per record, no copy. Errors as
 * ev_value_put; created may be NULL. */
eddy_err ev_value_ref(ev_state *st, ev_state_id id, size_t len, void **p, bool *created);

/* ---- list state (Flink's ListState) ---- */

typedef struct ev_bytes {
	const void *p;
	size_t len;
} ev_bytes;

/* ev_list_add appends one item. */
eddy_err ev_list_add(ev_state *st, ev_state_id id, const void *v, size_t len);
/* ev_list_add_all appends n items in order. */
eddy_err ev_list_add_all(ev_state *st, ev_state_id id, const ev_bytes *items, size_t n);
/* ev_list_update replaces the list with n items (n = 0 clears it). */
eddy_err ev_list_update(ev_state *st, ev_state_id id, const ev_bytes *items, size_t n);
/* ev_list_get: the items in insertion order (*items and each item borrowed); *n = 0 for
 * an empty or absent list (not an error). */
eddy_err ev_list_get(ev_state *st, ev_state_id id, const ev_bytes **items, size_t *n);

/* ---- map state (Flink's MapState) ---- */

typedef struct ev_map_entry {
	ev_bytes key, value;
} ev_map_entry;

/* ev_map_get: the value under map key uk (borrowed) or EDDY_ENOENT. */
eddy_err ev_map_get(ev_state *st, ev_state_id id, const void *uk, size_t uklen, const void **v,
                    size_t *len);
eddy_err ev_map_put(ev_state *st, ev_state_id id, const void *uk, size_t uklen, const void *v,
                    size_t len);
/* ev_map_remove: no error if uk is absent. */
eddy_err ev_map_remove(ev_state *st, ev_state_id id, const void *uk, size_t uklen);
eddy_err ev_map_contains(ev_state *st, ev_state_id id, const void *uk, size_t uklen,
                         bool *found);
/* ev_map_entries: every entry (borrowed), in no particular order; *n = 0 if empty. */
eddy_err ev_map_entries(ev_state *st, ev_state_id id, const ev_map_entry **entries,
                        size_t *n);

/* ---- reducing state (Flink's ReducingState) ---- */

/* ev_reducing_add: the value becomes v if there was none, else reduce(value, v). */
eddy_err ev_reducing_add(ev_state *st, ev_state_id id, const void *v, size_t len);
/* ev_reducing_get: the reduced value (borrowed) or EDDY_ENOENT. */
eddy_err ev_reducing_get(ev_state *st, ev_state_id id, const void **v, size_t *len);

/* ---- aggregating state (Flink's AggregatingState) ---- */

/* ev_agg_add: acc = add(acc or create(), in). */
eddy_err ev_agg_add(ev_state *st, ev_state_id id, const void *in, size_t len);
/* ev_agg_get: result(acc) (borrowed) or EDDY_ENOENT if nothing was added. */
eddy_err ev_agg_get(ev_state *st, ev_state_id id, const void **out, size_t *len);

/* ev_state_merge_namespaces merges the state of the current key in each of the n source
 * namespaces into namespace `target` and clears the sources (Flink's mergeNamespaces, for
 * merging session windows): lists are concatenated in source order, reducing values
 * reduced, accumulators merged (the state needs a merge callback). A source equal to
 * target is skipped. The current namespace is unchanged. Errors: EDDY_EINVAL (a value or
 * map state, an aggregating state without merge). */
eddy_err ev_state_merge_namespaces(ev_state *st, ev_state_id id, const void *target,
                                   size_t tlen, const ev_bytes *sources, size_t n);

/* ---- walks ---- */

/* One entry of a state, as a walk hands it out (all borrowed for the call). */
typedef struct ev_state_entry {
	const void *key;
	size_t klen;
	uint32_t kg; /* the key's key group */
	const void *ns;
	size_t nslen;
	const void *v; /* the value (value states; lists: their encoded items) */
	size_t vlen;
} ev_state_entry;

typedef eddy_err (*ev_entry_fn)(void *ctx, const ev_state_entry *e);

/* ev_state_entries calls fn once for every (key, namespace) of the handle that has a value
 * of state id — in namespace ns (nslen bytes, 0 for none) only, or in any namespace when
 * ns is NULL — with that value, in no particular order: Flink's
 * KeyedStateBackend.getKeys(state, namespace) and getKeysAndNamespaces(state). The window
 * operator's panes fire by it instead of a timer per key and window. fn must not call the
 * handle (note what to change, and change it after the walk); an error it returns stops
 * the walk and is returned. The current key and namespace stay. Cost: the memory backend
 * reads every entry of the handle; LevelDB first writes its buffered changes, then reads
 * the handle's key groups — every version of a key still in its memtable, so a caller that
 * changes its entries and walks often keeps its own list of them (the window does on
 * LevelDB, after one walk at a restore). Errors: EDDY_EINVAL (unknown id, a map state),
 * EDDY_EIO (LevelDB), fn's. Thread: the handle's. */
eddy_err ev_state_entries(ev_state *st, ev_state_id id, const void *ns, size_t nslen,
                          ev_entry_fn fn, void *ctx);

/* ---- timers ---- */

typedef enum ev_time_domain {
	EV_TIME_EVENT = 0,
	EV_TIME_PROCESSING = 1
} ev_time_domain;

typedef struct ev_timer {
	ev_time_domain domain;
	int64_t time;       /* ms */
	uint32_t key_group;
	ev_bytes key;       /* borrowed */
	ev_bytes ns;        /* borrowed */
} ev_timer;

/* ev_timer_register sets a timer at time_ms for the current key and namespace in that
 * domain. One timer per (domain, time, key, namespace): registering it again does
 * nothing. Errors: EDDY_EINVAL, EDDY_ENOMEM. */
eddy_err ev_timer_register(ev_state *st, ev_time_domain d, int64_t time_ms);
/* ev_timer_delete removes that timer; no error if there is none. */
eddy_err ev_timer_delete(ev_state *st, ev_time_domain d, int64_t time_ms);
/* ev_timer_pop removes the earliest timer of domain d whose time is <= upto, makes its
 * key and namespace current and describes it in *out (key and ns borrowed); EDDY_ENOENT
 * if there is none. Call it until ENOENT to fire all timers <= upto in time order (ties:
 * by key group, then key, then namespace bytes); timers registered meanwhile are
 * included if due. */
eddy_err ev_timer_pop(ev_state *st, ev_time_domain d, int64_t upto, ev_timer *out);
/* ev_timer_next: the earliest time in domain d, or EDDY_ENOENT. */
eddy_err ev_timer_next(ev_state *st, ev_time_domain d, int64_t *time_ms);
/* ev_timer_count: the number of timers in domain d. */
size_t ev_timer_count(const ev_state *st, ev_time_domain d);

/* ---- snapshots and restore ---- */

/* ev_state_snapshot_begin captures the handle's state and timers as they are now.
 * Memory backend: a frozen generation, copy on write afterwards (cost: proportional to
 * the table's size / 1024; later writes copy a table page or an entry once). LevelDB:
 * buffered writes are flushed, then a LevelDB snapshot. Several snapshots may be open at
 * once. Errors: EDDY_ENOMEM, EDDY_EIO. The handle's thread. */
eddy_err ev_state_snapshot_begin(ev_state *st, ev_state_snapshot **out);

/* ev_state_snapshot_write writes the snapshot to the file at path (created or replaced,
 * then fsync'd): one msgpack file with a header (format version, operator, key groups,
 * states), one section per key group with state (its entries and timers, with an XXH3-64)
 * and a footer with the XXH3-64 and length of everything before it. *bytes (if not NULL)
 * gets the file's size. May run on any thread, concurrently with the handle's use (but
 * one call at a time per snapshot); may be called more than once. Errors: EDDY_EIO (the
 * file is removed), EDDY_ENOMEM; see ev_state_snapshot_errmsg. */
eddy_err ev_state_snapshot_write(ev_state_snapshot *s, const char *path, uint64_t *bytes);

/* ev_state_snapshot_write_delta writes an incremental snapshot (memory backend): only the
 * state changed since the handle's snapshot before this one (its parent,
 * ev_state_snapshot_parent) — every entry changed, whole, and a delete for every entry
 * removed — into a file whose header names parent, the path of the parent's file
 * relative to path's directory (or absolute). With parent_id == ev_state_snapshot_id(s)
 * it writes an empty delta over s's own earlier file (nothing changed: a finished task's
 * state in a later checkpoint). A restore of the file restores the chain of files it
 * builds on first (as Flink's incremental checkpoints share the files of earlier ones).
 * The caller keeps the parent's file (and its chain) as long as the delta's. Same thread
 * rules as ev_state_snapshot_write. Errors: EDDY_EINVAL (parent_id is neither the parent
 * nor s, or s has no parent: the first snapshot of a handle, a LevelDB one), EDDY_EIO,
 * EDDY_ENOMEM. */
eddy_err ev_state_snapshot_write_delta(ev_state_snapshot *s, const char *path, const char *parent,
                                       uint64_t parent_id, uint64_t *bytes);

/* ev_state_snapshot_id: the snapshot's id, unique in the process (from 1). */
uint64_t ev_state_snapshot_id(const ev_state_snapshot *s);

/* ev_state_snapshot_parent: the id of the same handle's snapshot taken before this one,
 * if a delta against it can be written (memory backend), else 0. */
uint64_t ev_state_snapshot_parent(const ev_state_snapshot *s);

/* ev_state_snapshot_mem_bytes: the handle's ev_state_size_bytes when s was taken. */
uint64_t ev_state_snapshot_mem_bytes(const ev_state_snapshot *s);

/* ev_state_snapshot_errmsg: what the last failed write did wrong. */
const char *ev_state_snapshot_errmsg(const ev_state_snapshot *s);

/* ev_state_snapshot_release frees the snapshot. Any thread, once. Safe on NULL. */
void ev_state_snapshot_release(ev_state_snapshot *s);

/* ev_state_restore loads the state of the handle's key groups from n snapshot files of
 * the same operator and max_parallelism (any backend, any key-group ranges: the files of
 * another parallelism restore too); key groups outside the handle's range are skipped.
 * A delta brings the files it builds on (each of the n files is its own chain, applied
 * base first).
 * The handle must not have been written to since it was opened (EDDY_EBUSY). Every file
 * is checked whole (footer, length, checksum, structure) before anything is loaded, so a
 * truncated, corrupted or foreign file gives EDDY_EINVAL, an unreadable one EDDY_EIO,
 * with a message naming the file and the problem, and nothing is restored. A key group
 * found in two files is EDDY_EINVAL. States named in the files that are not registered
 * yet are registered with their kind (attach callbacks with ev_state_register). If
 * loading fails half-way (EDDY_ENOMEM, EDDY_EIO) the handle is emptied. The handle's
 * thread. */
eddy_err ev_state_restore(ev_state *st, const char *const *paths, size_t n);

/* ev_state_file_check checks a snapshot file's footer, length and checksum without loading
 * it (what a restore checks first), and those of the files a delta builds on, so a job
 * can refuse a damaged checkpoint before it starts. EDDY_OK, or EDDY_EINVAL (truncated, corrupted,
 * not a snapshot) / EDDY_EIO (cannot open or read) with a message naming the file in err (errlen
 * bytes). Any thread. */
eddy_err ev_state_file_check(const char *path, char *err, size_t errlen);

#endif
