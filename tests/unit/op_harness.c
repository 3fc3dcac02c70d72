/* The operator test harness (op_harness.h): a `task` without actors, for unit tests. */
#include "op_harness.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

struct task {
	task_node node; /* what task_node_of gives the operator */
	uint32_t subtask;
	const oph_opts *opts;
	job_stats stats;
	ev_state *kst;
	void *op_state;
	bool opened;
	bool rescaled;
	int64_t wm; /* the last watermark given to the operator */
	uint64_t records_in;
	uint64_t state_bytes;
	expr_scratch scratch;
	oph_rows out[OPH_MAX_PORTS];
	char failure[512];
};

/* ---- rows ---- */

void oph_rows_add(oph_rows *r, const char *row)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		cr_assert_not_null(r->v);
	}
	cr_assert_not_null(r->v[r->n++] = strdup(row));
}

void oph_rows_move(oph_rows *dst, oph_rows *src)
{
	for (size_t i = 0; i < src->n; i++)
		oph_rows_add(dst, src->v[i]);
	oph_rows_free(src);
}

void oph_rows_free(oph_rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	*r = (oph_rows){0};
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void oph_rows_expect(const oph_rows *got, const char *const *want, size_t n, const char *where)
{
	const char **g = malloc((got->n + 1) * sizeof(*g)), **w = malloc((n + 1) * sizeof(*w));
	cr_assert(g && w);
	if (got->n) /* got->v may be NULL */
		memcpy(g, got->v, got->n * sizeof(*g));
	if (n)
		memcpy(w, want, n * sizeof(*w));
	qsort(g, got->n, sizeof(*g), cmp_str);
	qsort(w, n, sizeof(*w), cmp_str);
	bool same = got->n == n;
	for (size_t i = 0; same && i < n; i++)
		same = strcmp(g[i], w[i]) == 0;
	if (!same) {
		char msg[8192];
		size_t o = (size_t)snprintf(msg, sizeof(msg),
		                            "%s: got %zu rows, want %zu\n got:", where, got->n, n);
		for (size_t i = 0; i < got->n && o < sizeof(msg); i++)
			o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\n  %s", g[i]);
		for (size_t i = 0; o < sizeof(msg) && i <= n; i++)
			o += (size_t)snprintf(msg + o, sizeof(msg) - o, i ? "\n  %s" : "\n want:%s",
			                      i ? w[i - 1] : "");
		free(g);
		free(w);
		cr_assert_fail("%s", msg);
	}
	free(g);
	free(w);
}

void oph_expect(oph *h, uint32_t port, const char *const *want, size_t n, const char *where)
{
	oph_rows_expect(oph_out(h, port), want, n, where);
	oph_rows_free(oph_out(h, port));
}

/* row_text writes row r of b as "TS|f0|f1|..." into buf. */
static void row_text(const ev_batch *b, uint32_t r, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "%lld", (long long)b->ts[r]);
	for (uint32_t f = 0; f < b->ncols && o < size; f++) {
		ev_val v = batch_get_val(b, r, f);
		switch (v.type) {
		case EV_INT:
		case EV_TIMESTAMP:
			o += (size_t)snprintf(buf + o, size - o, "|%lld", (long long)v.i);
			break;
		case EV_FLOAT: o += (size_t)snprintf(buf + o, size - o, "|%g", v.f); break;
		case EV_BOOL:
			o += (size_t)snprintf(buf + o, size - o, "|%s", v.b ? "true" : "false");
			break;
		case EV_STRING:
			o += (size_t)snprintf(buf + o, size - o, "|%.*s", (int)v.s.len, v.s.p);
			break;
		default: o += (size_t)snprintf(buf + o, size - o, "|null"); break;
		}
	}
	cr_assert_lt(o, size, "a row of over %zu bytes", size);
}

/* ---- batches from text ---- */

static char *trim(char *s)
{
	while (*s == ' ')
		s++;
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
	return s;
}

ev_batch *oph_batch(const ev_schema *s, const char *const *rows, size_t n)
{
	ev_batch *b = batch_new(s, TASK_BATCH);
	cr_assert_not_null(b);
	for (size_t i = 0; i < n; i++) {
		char line[1024];
		cr_assert_lt(strlen(rows[i]), sizeof(line));
		strcpy(line, rows[i]);
		uint32_t r = batch_append_row(b);
		char *save = NULL, *part = strtok_r(line, "|", &save);
		cr_assert_not_null(part, "row '%s': no event time", rows[i]);
		char *end;
		b->ts[r] = strtoll(trim(part), &end, 10);
		cr_assert(*end == '\0', "row '%s': bad event time", rows[i]);
		for (uint32_t f = 0; f < s->n; f++) {
			part = strtok_r(NULL, "|", &save);
			cr_assert_not_null(part, "row '%s': no field %u", rows[i], f);
			char *t = trim(part);
			if (strcmp(t, "null") == 0)
				continue;
			switch (s->fields[f].type) {
			case EV_INT:
			case EV_TIMESTAMP:
				batch_set_int(b, r, f, strtoll(t, &end, 10));
				cr_assert(*end == '\0', "row '%s': field %u is no int", rows[i], f);
				break;
			case EV_FLOAT:
				batch_set_float(b, r, f, strtod(t, &end));
				cr_assert(*end == '\0', "row '%s': field %u is no float", rows[i],
				          f);
				break;
			case EV_BOOL: batch_set_bool(b, r, f, strcmp(t, "true") == 0); break;
			default: cr_assert_eq(batch_set_str(b, r, f, t, strlen(t)), EDDY_OK); break;
			}
		}
		cr_assert_null(strtok_r(NULL, "|", &save), "row '%s': too many fields", rows[i]);
	}
	return b;
}

/* ---- what operators/task.h gives an operator ---- */

const task_node *task_node_of(const task *t)
{
	return &t->node;
}

uint32_t task_subtask(const task *t)
{
	return t->subtask;
}

job_stats *task_stats(task *t)
{
	return &t->stats;
}

bool task_rescaled(const task *t)
{
	return t->rescaled;
}

ev_state *task_keyed_state(task *t)
{
	return t->kst;
}

expr_scratch *task_scratch(task *t)
{
	return &t->scratch;
}

void task_set_state_bytes(task *t, uint64_t bytes)
{
	t->state_bytes = bytes;
}

ev_batch *task_new_batch(task *t, const ev_schema *schema)
{
	(void)t;
	return batch_new(schema, TASK_BATCH);
}

eddy_err task_fail(task *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->failure, sizeof(t->failure), fmt, ap);
	va_end(ap);
	return EDDY_EFAILED;
}

eddy_err task_emit(task *t, uint32_t port, ev_batch *b)
{
	cr_assert_lt(port, t->node.nports, "emitted on port %u of %u", port, t->node.nports);
	for (uint32_t r = 0; r < b->n; r++) {
		char row[2048];
		row_text(b, r, row, sizeof(row));
		oph_rows_add(&t->out[port], row);
	}
	batch_free(b);
	return EDDY_OK;
}

/* hash_val: the partitioner's hash of one key value, as operators/task.c's (so key groups
 * here are a job's). */
static uint64_t hash_val(ev_val v, uint64_t seed)
{
	switch (v.type) {
	case EV_NULL: return XXH3_64bits_withSeed("", 0, seed ^ 0x9e3779b97f4a7c15ull);
	case EV_STRING: return XXH3_64bits_withSeed(v.s.p, v.s.len, seed);
	case EV_BOOL: {
		int64_t x = v.b;
		return XXH3_64bits_withSeed(&x, sizeof(x), seed);
	}
	case EV_FLOAT: {
		double d = v.f == 0.0 ? 0.0 : v.f;
		return XXH3_64bits_withSeed(&d, sizeof(d), seed);
	}
	default: return XXH3_64bits_withSeed(&v.i, sizeof(v.i), seed);
	}
}

uint32_t oph_key_group(const oph *h, const ev_val *keys, uint32_t n)
{
	uint64_t x = 0;
	for (uint32_t k = 0; k < n; k++)
		x = hash_val(keys[k], x);
	return (uint32_t)(x % h->node.max_parallelism);
}

uint32_t task_key_group(const task *t, const ev_val *keys, uint32_t n)
{
	return oph_key_group(t, keys, n);
}

bool task_owns_key(const task *t, const ev_val *keys, uint32_t n)
{
	uint32_t kg = task_key_group(t, keys, n);
	return ev_key_group_subtask(kg, t->node.max_parallelism, t->node.parallelism) == t->subtask;
}

/* ---- the subtask ---- */

eddy_err oph_open(const oph_opts *o, uint32_t subtask, const oph_snap *snaps, uint32_t nsnaps,
                  oph **out)
{
	oph *h = calloc(1, sizeof(*h));
	cr_assert_not_null(h);
	*out = h;
	cr_assert_leq(o->nports, OPH_MAX_PORTS);
	h->opts = o;
	h->subtask = subtask;
	h->wm = WM_MIN;
	h->node = (task_node){.job = "test",
	                      .id = o->state_id,
	                      .op = o->op,
	                      .conf = o->conf,
	                      .parallelism = o->parallelism ? o->parallelism : 1,
	                      .max_parallelism = o->max_parallelism ? o->max_parallelism : 128,
	                      .ninputs = o->ninputs,
	                      .in_schemas = (const ev_schema **)o->in,
	                      .nports = o->nports,
	                      .stats = &h->stats,
	                      .state_id = o->state_id};
	cr_assert_lt(subtask, h->node.parallelism);
	uint32_t first, last;
	ev_key_group_range(h->node.max_parallelism, h->node.parallelism, subtask, &first, &last);
	eddy_err e =
	    ev_state_open(o->backend, o->state_id, h->node.max_parallelism, first, last, &h->kst);
	if (e != EDDY_OK) {
		snprintf(h->failure, sizeof(h->failure), "opening keyed state: %s",
		         eddy_strerror(e));
		return e;
	}
	const char *paths[OPH_MAX_SUBTASKS];
	cr_assert_leq(nsnaps, OPH_MAX_SUBTASKS);
	for (uint32_t i = 0; i < nsnaps; i++) {
		paths[i] = snaps[i].path;
		h->rescaled |= snaps[i].parallelism != h->node.parallelism;
	}
	if (nsnaps > 0 && (e = ev_state_restore(h->kst, paths, nsnaps)) != EDDY_OK) {
		snprintf(h->failure, sizeof(h->failure), "restoring keyed state: %s",
		         ev_state_errmsg(h->kst));
		return e;
	}
	if ((e = o->op->open(h, &h->op_state)) != EDDY_OK)
		return e;
	h->opened = true;
	for (uint32_t i = 0; i < nsnaps && o->op->restore; i++) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		size_t off = 0;
		cr_assert_eq(msgpack_unpack_next(&u, snaps[i].op, snaps[i].len, &off),
		             MSGPACK_UNPACK_SUCCESS);
		e = o->op->restore(h, h->op_state, &u.data);
		msgpack_unpacked_destroy(&u);
		if (e != EDDY_OK)
			return e;
	}
	return EDDY_OK;
}

void oph_close(oph *h)
{
	if (h == NULL)
		return;
	if ((h->opened || h->op_state) && h->opts->op->close)
		h->opts->op->close(h, h->op_state);
	ev_state_close(h->kst);
	expr_scratch_free(&h->scratch);
	for (uint32_t p = 0; p < OPH_MAX_PORTS; p++)
		oph_rows_free(&h->out[p]);
	free(h);
}

eddy_err oph_process(oph *h, uint32_t input, ev_batch *b)
{
	cr_assert_lt(input, h->node.ninputs);
	h->records_in += b->n;
	return h->opts->op->process(h, h->op_state, b, input);
}

eddy_err oph_watermark(oph *h, int64_t wm)
{
	if (wm <= h->wm)
		return EDDY_OK;
	h->wm = wm;
	return h->opts->op->watermark ? h->opts->op->watermark(h, h->op_state, wm) : EDDY_OK;
}

eddy_err oph_snapshot(oph *h, uint64_t id, const char *dir, oph_snap *out)
{
	*out = (oph_snap){.parallelism = h->node.parallelism};
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	eddy_err e = h->opts->op->snapshot(h, h->op_state, id, &pk);
	if (e != EDDY_OK) {
		msgpack_sbuffer_destroy(&sb);
		return e;
	}
	out->len = sb.size;
	out->op = msgpack_sbuffer_release(&sb);
	snprintf(out->path, sizeof(out->path), "%s/%llu-%u.state", dir, (unsigned long long)id,
	         h->subtask);
	ev_state_snapshot *s;
	if ((e = ev_state_snapshot_begin(h->kst, &s)) != EDDY_OK)
		return e;
	e = ev_state_snapshot_write(s, out->path, NULL);
	cr_assert_eq(e, EDDY_OK, "writing %s: %s", out->path, ev_state_snapshot_errmsg(s));
	ev_state_snapshot_release(s);
	return EDDY_OK;
}

void oph_snap_free(oph_snap *s)
{
	free(s->op);
	s->op = NULL;
}

oph_rows *oph_out(oph *h, uint32_t port)
{
	cr_assert_lt(port, OPH_MAX_PORTS);
	return &h->out[port];
}

uint64_t oph_records_in(const oph *h)
{
	return h->records_in;
}

const char *oph_failure(const oph *h)
{
	return h->failure;
}

job_stats *oph_stats(oph *h)
{
	return &h->stats;
}

ev_state *oph_state(oph *h)
{
	return h->kst;
}

/* ---- scripts ---- */

/* owner: the subtask of h's operator that owns row r of input `input`. */
static uint32_t owner(const oph *h, uint32_t input, const ev_batch *b, uint32_t r)
{
	const oph_opts *o = h->opts;
	ev_val k[EV_MAX_FIELDS];
	for (uint32_t i = 0; i < o->nkeys; i++) {
		int f = expr_field(o->keys[input][i]);
		cr_assert_geq(f, 0, "oph_run routes by key fields only");
		k[i] = batch_get_val(b, r, (uint32_t)f);
	}
	return ev_key_group_subtask(oph_key_group(h, k, o->nkeys), h->node.max_parallelism,
	                            h->node.parallelism);
}

void oph_run(oph *const *h, uint32_t n, const oph_step *steps, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		const oph_step *s = &steps[i];
		if (s->input == OPH_WM) {
			for (uint32_t k = 0; k < n; k++)
				OK(h[k], oph_watermark(h[k], s->wm));
			continue;
		}
		size_t nrows = 0;
		while (s->rows[nrows])
			nrows++;
		ev_batch *all = oph_batch(h[0]->opts->in[s->input], s->rows, nrows);
		for (uint32_t k = 0; k < n; k++) {
			cr_assert_eq(h[k]->node.parallelism, n);
			ev_batch *mine = batch_new(all->schema, TASK_BATCH);
			cr_assert_not_null(mine);
			for (uint32_t r = 0; r < all->n; r++)
				if (n == 1 || owner(h[k], (uint32_t)s->input, all, r) == k)
					cr_assert_eq(batch_copy_row(mine, all, r), EDDY_OK);
			if (mine->n == 0) { /* a task is never handed an empty batch */
				batch_free(mine);
				continue;
			}
			OK(h[k], oph_process(h[k], (uint32_t)s->input, mine));
		}
		batch_free(all);
	}
}

/* ---- files ---- */

void oph_tmpdir(char dir[64])
{
	/* in memory when it can be: snapshot files and LevelDB are fsync'd, and the disk's
	 * latency would be most of a test's time */
	struct stat st;
	bool shm =
	    stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0;
	strcpy(dir, shm ? "/dev/shm/eddy-op-XXXXXX" : "/tmp/eddy-op-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void oph_rmtree(const char *dir)
{
	/* not system("rm -rf"): a shell per test is most of a sanitizer build's time */
	cr_assert_eq(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0, "removing %s", dir);
}

ev_state_backend *oph_backend(ev_state_backend_kind kind, const char *dir)
{
	char db[128];
	snprintf(db, sizeof(db), "%s/db", dir);
	ev_state_backend_opts o = {.kind = kind,
	                           .dir = kind == EV_STATE_LEVELDB ? db : NULL,
	                           .block_cache_bytes = 1 << 20,
	                           .write_buffer_bytes = 1 << 20};
	ev_state_backend *b = NULL;
	char err[256] = "";
	cr_assert_eq(ev_state_backend_create(&o, &b, err, sizeof(err)), EDDY_OK, "%s", err);
	return b;
}

/* ---- checkpoints against an uninterrupted run ---- */

/* run_part runs steps [from, to) at parallelism p on a new backend of kind in dir (made),
 * restored from snaps (nsnaps; 0: fresh); with snap_dir it takes checkpoint 1 of every
 * subtask at the end into snaps_out[0 .. p). The rows of every port go to rows[port]; late_dropped
 * is added. */
static void run_part(const oph_opts *o0, ev_state_backend_kind kind, const char *dir, uint32_t p,
                     const oph_snap *snaps, uint32_t nsnaps, const oph_step *steps, size_t from,
                     size_t to, const char *snap_dir, oph_snap *snaps_out, oph_rows *rows,
                     uint64_t *late)
{
	cr_assert_eq(mkdir(dir, 0700), 0);
	oph_opts o = *o0;
	o.parallelism = p;
	o.backend = oph_backend(kind, dir);
	oph *h[OPH_MAX_SUBTASKS] = {0};
	cr_assert_leq(p, OPH_MAX_SUBTASKS);
	for (uint32_t k = 0; k < p; k++) {
		/* not rescaled: a subtask restores its own snapshot; rescaled: every one */
		bool same = nsnaps == p && snaps[0].parallelism == p;
		OK(h[k], oph_open(&o, k, same ? &snaps[k] : snaps, same ? 1 : nsnaps, &h[k]));
	}
	oph_run(h, p, steps, from, to);
	for (uint32_t k = 0; k < p; k++) {
		if (snap_dir) {
			if (p > 1)
				cr_assert_gt(h[k]->records_in, 0,
				             "subtask %u of %u got no rows: pick keys that spread",
				             k, p);
			OK(h[k], oph_snapshot(h[k], 1, snap_dir, &snaps_out[k]));
		}
		for (uint32_t port = 0; port < o.nports; port++)
			oph_rows_move(&rows[port], &h[k]->out[port]);
		*late += h[k]->stats.late_dropped;
		oph_close(h[k]);
	}
	ev_state_backend_destroy(o.backend);
}

static bool same_rows(const oph_rows *a, const oph_rows *b)
{
	if (a->n != b->n)
		return false;
	const char **x = malloc((a->n + 1) * sizeof(*x)), **y = malloc((a->n + 1) * sizeof(*y));
	cr_assert(x && y);
	if (a->n) { /* v may be NULL */
		memcpy(x, a->v, a->n * sizeof(*x));
		memcpy(y, b->v, b->n * sizeof(*y));
	}
	qsort(x, a->n, sizeof(*x), cmp_str);
	qsort(y, b->n, sizeof(*y), cmp_str);
	bool same = true;
	for (size_t i = 0; same && i < a->n; i++)
		same = strcmp(x[i], y[i]) == 0;
	free(x);
	free(y);
	return same;
}

void oph_check_restore(const oph_opts *o, ev_state_backend_kind kind, const oph_step *steps,
                       size_t n, size_t cut, uint32_t from_p, uint32_t to_p)
{
	char dir[64], sub[128];
	oph_tmpdir(dir);
	oph_rows ref[OPH_MAX_PORTS] = {0}, got[OPH_MAX_PORTS] = {0}, fresh[OPH_MAX_PORTS] = {0};
	uint64_t ref_late = 0, got_late = 0, fresh_late = 0;
	/* the uninterrupted run */
	snprintf(sub, sizeof(sub), "%s/ref", dir);
	run_part(o, kind, sub, 1, NULL, 0, steps, 0, n, NULL, NULL, ref, &ref_late);
	/* the first part, a checkpoint, then a new backend and new instances restored */
	oph_snap snaps[OPH_MAX_SUBTASKS] = {0};
	snprintf(sub, sizeof(sub), "%s/a", dir);
	run_part(o, kind, sub, from_p, NULL, 0, steps, 0, cut, dir, snaps, got, &got_late);
	oph_rows first[OPH_MAX_PORTS] = {0};
	for (uint32_t port = 0; port < o->nports; port++)
		for (size_t i = 0; i < got[port].n; i++) {
			oph_rows_add(&first[port], got[port].v[i]);
			oph_rows_add(&fresh[port], got[port].v[i]);
		}
	fresh_late = got_late;
	snprintf(sub, sizeof(sub), "%s/b", dir);
	run_part(o, kind, sub, to_p, snaps, from_p, steps, cut, n, NULL, NULL, got, &got_late);
	for (uint32_t port = 0; port < o->nports; port++) {
		char where[64];
		snprintf(where, sizeof(where), "restored %u -> %u, port %u", from_p, to_p, port);
		oph_rows_expect(&got[port], (const char *const *)ref[port].v, ref[port].n, where);
	}
	cr_assert_eq(got_late, ref_late, "late records dropped: %llu restored, %llu uninterrupted",
	             (unsigned long long)got_late, (unsigned long long)ref_late);
	/* the same second part without the restore must come out otherwise (else the
	 * checkpoint carried nothing this test could see) */
	snprintf(sub, sizeof(sub), "%s/c", dir);
	run_part(o, kind, sub, to_p, NULL, 0, steps, cut, n, NULL, NULL, fresh, &fresh_late);
	bool differs = fresh_late != ref_late;
	for (uint32_t port = 0; port < o->nports; port++)
		differs |= !same_rows(&fresh[port], &ref[port]);
	cr_assert(differs, "the run without the restore gave the same rows: a useless test");
	/* and the first part alone is not the whole */
	bool partial = false;
	for (uint32_t port = 0; port < o->nports; port++)
		partial |= first[port].n < ref[port].n;
	cr_assert(partial, "every row came before the checkpoint: a useless test");
	for (uint32_t port = 0; port < OPH_MAX_PORTS; port++) {
		oph_rows_free(&ref[port]);
		oph_rows_free(&got[port]);
		oph_rows_free(&fresh[port]);
		oph_rows_free(&first[port]);
	}
	for (uint32_t k = 0; k < from_p; k++)
		oph_snap_free(&snaps[k]);
	oph_rmtree(dir);
}
