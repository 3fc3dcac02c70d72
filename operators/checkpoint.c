/* The checkpoint coordinator (operators/checkpoint.h). Runs on the I/O pool: it writes
 * the snapshot files and manifests and deletes old checkpoints. */
#include "checkpoint.h"
#include "../runtime/fs.h"

#include "../runtime/alloc.h"

#include <eddy/state.h>

#include <dirent.h>
#include <zlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TAG_TICK 1
#define TICK_MS 20 /* how often the coordinator looks at its clock */

void ckpt_ack_free(ckpt_ack *a)
{
	if (a == NULL)
		return;
	free(a->data);
	ev_state_snapshot_release(a->state);
	rt_free(a);
}

/* ---- the shared history ---- */

void ckpt_log_init(ckpt_log *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
}

void ckpt_log_destroy(ckpt_log *l)
{
	pthread_mutex_destroy(&l->mu);
}

size_t ckpt_log_list(ckpt_log *l, ckpt_info *out, size_t max)
{
	pthread_mutex_lock(&l->mu);
	size_t k = 0;
	for (uint32_t i = 0; i < l->n && k < max; i++)
		out[k++] = l->items[(l->head + CKPT_HISTORY - 1 - i) % CKPT_HISTORY];
	pthread_mutex_unlock(&l->mu);
	return k;
}

void ckpt_log_counts(ckpt_log *l, uint64_t *completed, uint64_t *aborted)
{
	pthread_mutex_lock(&l->mu);
	*completed = l->completed;
	*aborted = l->aborted;
	pthread_mutex_unlock(&l->mu);
}

/* log_put stores info as the newest entry (new) or updates the newest one. */
static void log_put(ckpt_log *l, const ckpt_info *info, bool is_new)
{
	pthread_mutex_lock(&l->mu);
	if (is_new || l->n == 0) {
		l->head = (l->head + 1) % CKPT_HISTORY;
		if (l->n < CKPT_HISTORY)
			l->n++;
	}
	l->items[(l->head + CKPT_HISTORY - 1) % CKPT_HISTORY] = *info;
	if (strcmp(info->status, "completed") == 0)
		l->completed++;
	else if (strcmp(info->status, "aborted") == 0)
		l->aborted++;
	pthread_mutex_unlock(&l->mu);
}

/* ---- the coordinator ---- */

#define CHAIN_MAX 64 /* files in a task's chain of keyed-state files, base first */

/* The keyed-state files a task's state in a checkpoint is made of (incremental
 * checkpoints): a whole snapshot, then deltas. */
typedef struct chain {
	uint64_t head;           /* the snapshot id of the newest file (0: no chain) */
	uint64_t ids[CHAIN_MAX]; /* the checkpoint of each file, base first */
	uint32_t n;
	uint64_t bytes; /* of every file */
	double ratio;   /* the base's file bytes per byte of the state's memory */
} chain;

typedef struct coord {
	const ckpt_arg *a;
	uint64_t next_id;
	ckpt_info cur;          /* the pending checkpoint (cur.id 0: none) */
	int64_t started_mono;   /* ms, asys clock */
	int64_t last_trigger, last_end; /* ms, asys clock */
	bool stopping;                  /* coord_fini: the job is ending */
	char *tasks_json;       /* the manifest's task entries so far */
	size_t tj_len, tj_cap;
	bool done_triggering;   /* every source finished, or the job stops */
	bool now_requested;
	char *sp_req;           /* a requested savepoint's directory (owned), or NULL */
	bool sp_req_stop;       /* ... and the job stops with it */
	char cur_dir[4352];     /* the pending checkpoint's directory */
	bool cur_savepoint, cur_stop;
	bool stopped;           /* a stop-with-savepoint was triggered: the sources end with it */
	/* per task (ckpt_arg.task_paths order) */
	char **final_data;      /* a finished task's final snapshot (framed with its CRC) */
	size_t *final_len;
	ev_state_snapshot **final_state; /* ... and its keyed state, or NULL */
	bool *acked;            /* acknowledged the pending checkpoint */
	uint32_t *final_epoch;  /* the region epoch a final snapshot was taken in */
	uint32_t nfinished;
	uint64_t cur_resets;    /* gate->resets when the pending checkpoint was triggered */
	chain *chains;          /* per task: its state in the last completed checkpoint */
	chain *pend;            /* ... in the pending one (n 0: none yet) */
} coord;

/* epoch_of: the current epoch of task ti's failover region (0 without regions). */
static uint32_t epoch_of(const coord *c, uint32_t ti)
{
	const task_region *r = c->a->task_regions ? c->a->task_regions[ti] : NULL;
	return r ? atomic_load(&r->epoch) & TASK_CHANNEL_MASK : 0;
}

/* gate_resets: region restarts so far. */
static uint64_t gate_resets(const coord *c)
{
	if (c->a->gate == NULL)
		return 0;
	pthread_mutex_lock(&c->a->gate->mu);
	uint64_t n = c->a->gate->resets;
	pthread_mutex_unlock(&c->a->gate->mu);
	return n;
}

/* drop_final forgets task ti's final snapshot (its region restarted: it runs again). */
static void drop_final(coord *c, uint32_t ti)
{
	free(c->final_data[ti]);
	ev_state_snapshot_release(c->final_state[ti]);
	c->final_data[ti] = NULL;
	c->final_state[ti] = NULL;
	c->final_len[ti] = 0;
	c->nfinished--;
}

static int task_index(const coord *c, const char *path)
{
	for (uint32_t i = 0; i < c->a->ntasks; i++)
		if (strcmp(c->a->task_paths[i], path) == 0)
			return (int)i;
	return -1;
}

/* frame appends data's CRC-32 (4 bytes, big-endian); false on no memory. */
static bool frame(ckpt_ack *a)
{
	char *framed = realloc(a->data, a->len + 4);
	if (framed == NULL)
		return false;
	a->data = framed;
	uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)a->data, (uInt)a->len);
	for (int i = 0; i < 4; i++)
		a->data[a->len + (size_t)i] = (char)(crc >> (24 - 8 * i));
	a->len += 4;
	return true;
}

static int64_t now_ms(actor *self)
{
	return clock_now_ms(asys_clock(actor_system(self)));
}


/* chk_id parses "chk-<n>"; 0 if name is not one. */
static uint64_t chk_id(const char *name)
{
	if (strncmp(name, "chk-", 4) != 0 || name[4] < '1' || name[4] > '9')
		return 0;
	char *end;
	unsigned long long v = strtoull(name + 4, &end, 10);
	return *end == '\0' ? (uint64_t)v : 0;
}

/* remove_dir deletes a checkpoint directory and the files in it (it holds no
 * subdirectories). */
static void remove_dir(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		for (struct dirent *e; (e = readdir(d)) != NULL;) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char f[4352];
			snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
			unlink(f);
		}
		closedir(d);
	}
	rmdir(path);
}

/* has_file: DIR/chk-<id>/name exists. */
static bool has_file(const char *dir, uint64_t id, const char *name)
{
	char p[4352];
	snprintf(p, sizeof(p), "%s/chk-%llu/%s", dir, (unsigned long long)id, name);
	return access(p, F_OK) == 0;
}

/* manifest_needs adds the checkpoint ids checkpoint id's manifest "needs" (the older
 * checkpoints whose keyed-state files its deltas build on) to *out (*n of *cap); false if
 * out of memory. */
static bool manifest_needs(const char *dir, uint64_t id, uint64_t **out, size_t *n, size_t *cap)
{
	char p[4352];
	snprintf(p, sizeof(p), "%s/chk-%llu/MANIFEST", dir, (unsigned long long)id);
	char *text = NULL;
	size_t len = 0;
	if (fs_read_all(p, &text, &len) != 0)
		return true; /* gone or unreadable: it needs nothing we could keep */
	bool ok = true;
	const char *q = memmem(text, len, "\"needs\": [", 10);
	for (q = q ? q + 10 : NULL; q && q < text + len && *q != ']'; q++) {
		if (*q < '0' || *q > '9')
			continue;
		uint64_t v = 0;
		for (; q < text + len && *q >= '0' && *q <= '9'; q++)
			v = v * 10 + (uint64_t)(*q - '0');
		if (rt_grow((void **)out, cap, *n + 1, sizeof(**out), 16) != EDDY_OK) {
			ok = false;
			break;
		}
		(*out)[(*n)++] = v;
		q--;
	}
	free(text);
	return ok;
}

static int by_id_asc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* sweep deletes incomplete checkpoints (neither MANIFEST nor SHARED; not `keep`) and
 * completed ones older than the newest `retain`. One of those whose files a kept one
 * still builds on (its manifest's "needs") stays for those files only: its MANIFEST
 * becomes SHARED (it is no longer a checkpoint to restore or list: what it needed itself
 * may go), and goes once nothing kept needs it — as Flink keeps an incremental
 * checkpoint's shared files while a retained checkpoint refers to them. If a manifest
 * cannot be read for lack of memory nothing is deleted. Returns the newest completed id. */
static uint64_t sweep(const char *dir, uint32_t retain, uint64_t keep)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	uint64_t *done = NULL, *shared = NULL;
	size_t n = 0, cap = 0, ns = 0, caps = 0;
	bool known = true;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		uint64_t id = chk_id(e->d_name);
		if (id == 0 || id == keep)
			continue;
		char p[4352];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		bool complete = has_file(dir, id, "MANIFEST");
		if (!complete && !has_file(dir, id, "SHARED")) {
			remove_dir(p);
			continue;
		}
		uint64_t **a = complete ? &done : &shared;
		size_t *an = complete ? &n : &ns, *ac = complete ? &cap : &caps;
		if (rt_grow((void **)a, ac, *an + 1, sizeof(**a), 16) != EDDY_OK) {
			known = false;
			break;
		}
		(*a)[(*an)++] = id;
	}
	closedir(d);
	/* the newest `retain` stay; older ones go unless a kept one needs them */
	if (n > 1)
		qsort(done, n, sizeof(*done), by_id_asc);
	uint64_t newest = n ? done[n - 1] : 0, *needs = NULL;
	size_t old = n > retain ? n - retain : 0, nn = 0, capn = 0;
	for (size_t i = old; i < n && known; i++)
		known = manifest_needs(dir, done[i], &needs, &nn, &capn);
	for (size_t i = 0; i < old + ns && known; i++) {
		uint64_t id = i < old ? done[i] : shared[i - old];
		bool needed = false;
		for (size_t k = 0; k < nn && !needed; k++)
			needed = needs[k] == id;
		char p[4352], q[4352];
		snprintf(p, sizeof(p), "%s/chk-%llu", dir, (unsigned long long)id);
		if (!needed) {
			remove_dir(p);
		} else if (i < old) { /* kept for its files only */
			snprintf(p, sizeof(p), "%s/chk-%llu/MANIFEST", dir, (unsigned long long)id);
			snprintf(q, sizeof(q), "%s/chk-%llu/SHARED", dir, (unsigned long long)id);
			rename(p, q);
		}
	}
	rt_free(needs);
	rt_free(done);
	rt_free(shared);
	return newest;
}

/* tj_append adds a formatted task entry to the manifest being built; false if out of
 * memory (the checkpoint cannot be written then). */
static bool tj_append(coord *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool tj_append(coord *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int need = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (need < 0 || rt_grow((void **)&c->tasks_json, &c->tj_cap, c->tj_len + (size_t)need + 1,
	                        1, 4096) != EDDY_OK)
		return false;
	va_start(ap, fmt);
	vsnprintf(c->tasks_json + c->tj_len, c->tj_cap - c->tj_len, fmt, ap);
	va_end(ap);
	c->tj_len += (size_t)need;
	return true;
}

/* json_str copies s into out as a JSON string body (escaped). */
static void json_str(char *out, size_t n, const char *s)
{
	size_t k = 0;
	for (; *s && k + 7 < n; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			out[k++] = '\\', out[k++] = (char)ch;
		else if (ch < 0x20)
			k += (size_t)snprintf(out + k, n - k, "\\u%04x", ch);
		else
			out[k++] = (char)ch;
	}
	out[k] = '\0';
}

/* write_file writes len bytes to path and syncs them; 0 or an errno. */
static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			close(fd);
			return e;
		}
		p += w;
		len -= (size_t)w;
	}
	int e = fsync(fd) != 0 ? errno : 0;
	if (close(fd) != 0 && e == 0)
		e = errno;
	return e;
}

/* chk_dir: the directory of checkpoint id (the pending one: where it is being written). */
static void chk_dir(const coord *c, uint64_t id, char *out, size_t n)
{
	if (id == c->cur.id && c->cur_dir[0])
		snprintf(out, n, "%s", c->cur_dir);
	else
		snprintf(out, n, "%s/chk-%llu", c->a->conf->dir, (unsigned long long)id);
}

static void abort_pending(actor *self, coord *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void abort_pending(actor *self, coord *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->cur.why, sizeof(c->cur.why), fmt, ap);
	va_end(ap);
	char d[4352];
	chk_dir(c, c->cur.id, d, sizeof(d));
	remove_dir(d);
	c->cur.status = "aborted";
	c->cur.duration_ms = now_ms(self) - c->started_mono;
	log_put(c->a->log, &c->cur, false);
	asys_log_event(actor_system(self), actor_path(self), "checkpoint", "%llu aborted: %s",
	               (unsigned long long)c->cur.id, c->cur.why);
	if (c->a->report && !c->stopping)
		fprintf(c->a->report, "eddy run: job %s: checkpoint %llu aborted: %s\n", c->a->job,
		        (unsigned long long)c->cur.id, c->cur.why);
	for (uint32_t i = 0; i < c->a->ntasks; i++) { /* tasks still aligning it stop */
		actor *t = asys_find(actor_system(self), c->a->task_paths[i]);
		rt_msg ab = {.kind = MSG_CKPT_ABORTED, .u64 = c->cur.id};
		if (t)
			actor_send_ctl(t, &ab);
	}
	for (uint32_t i = 0; c->pend && i < c->a->ntasks; i++)
		c->pend[i].n = 0;
	c->cur.id = 0;
	c->cur_dir[0] = '\0';
	c->last_end = now_ms(self);
}

static void write_final(actor *self, coord *c, uint32_t ti);

/* read_last_id reads DIR/LAST_ID (0 if there is none). */
static uint64_t read_last_id(const char *dir)
{
	char p[4400], buf[32] = "";
	snprintf(p, sizeof(p), "%s/LAST_ID", dir);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strtoull(buf, NULL, 10);
}

/* save_last_id records id as issued (temp file + rename); 0 or an errno. */
static int save_last_id(const char *dir, uint64_t id)
{
	char p[4400], tmp[4400], buf[32];
	snprintf(p, sizeof(p), "%s/LAST_ID", dir);
	snprintf(tmp, sizeof(tmp), "%s/LAST_ID.tmp", dir);
	int n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)id);
	int e = write_file(tmp, buf, (size_t)n);
	if (e == 0 && rename(tmp, p) != 0)
		e = errno;
	return e;
}

/* dir_has_entries: path exists and holds something. */
static bool dir_has_entries(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return false;
	bool any = false;
	for (struct dirent *e; !any && (e = readdir(d)) != NULL;)
		any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return any;
}

static void trigger(actor *self, coord *c)
{
	uint64_t id = c->next_id++;
	char d[4352];
	int le = save_last_id(c->a->conf->dir, id);
	memset(&c->cur, 0, sizeof(c->cur));
	c->cur_savepoint = c->sp_req != NULL;
	c->cur_stop = c->cur_savepoint && c->sp_req_stop;
	c->stopped = c->stopped || c->cur_stop;
	if (c->sp_req) { /* a savepoint: its own directory, kept until deleted */
		snprintf(c->cur_dir, sizeof(c->cur_dir), "%s", c->sp_req);
		free(c->sp_req);
		c->sp_req = NULL;
	} else {
		snprintf(c->cur_dir, sizeof(c->cur_dir), "%s/chk-%llu", c->a->conf->dir,
		         (unsigned long long)id);
	}
	snprintf(d, sizeof(d), "%s", c->cur_dir);
	c->cur.id = id;
	c->cur.savepoint = c->cur_savepoint;
	snprintf(c->cur.dir, sizeof(c->cur.dir), "%.255s", c->cur_dir);
	c->cur.status = "in_progress";
	c->cur.started_ms = clock_wall_ms();
	c->cur.tasks = c->a->ntasks;
	c->started_mono = c->last_trigger = now_ms(self);
	c->tj_len = 0;
	memset(c->acked, 0, c->a->ntasks * sizeof(*c->acked));
	log_put(c->a->log, &c->cur, true);
	if (le != 0) {
		abort_pending(self, c, "%s/LAST_ID: %s", c->a->conf->dir, strerror(le));
		return;
	}
	if (c->cur_savepoint && dir_has_entries(d)) {
		char why[160];
		snprintf(why, sizeof(why), "savepoint directory %.100s is not empty", d);
		c->cur_dir[0] = '\0'; /* not ours: keep it */
		c->cur.status = "aborted";
		snprintf(c->cur.why, sizeof(c->cur.why), "%s", why);
		log_put(c->a->log, &c->cur, false);
		asys_log_event(actor_system(self), actor_path(self), "checkpoint", "%s", why);
		c->cur.id = 0;
		return;
	}
	if (fs_mkdirs(d) != 0) {
		abort_pending(self, c, "%s: cannot create: %s", d, strerror(errno));
		return;
	}
	for (uint32_t i = 0; i < c->a->ntasks && c->cur.id == id; i++)
		if (c->final_data[i])
			write_final(self, c, i); /* finished tasks take part with their final state */
	for (uint32_t i = 0; i < c->a->nsources && c->cur.id == id; i++) {
		int ti = task_index(c, c->a->source_paths[i]);
		if (ti >= 0 && c->final_data[ti])
			continue; /* finished */
		actor *src = asys_find(actor_system(self), c->a->source_paths[i]);
		actor_status st = src ? actor_get_status(src) : ACTOR_STOPPED;
		rt_msg m = { .kind = MSG_CKPT_TRIGGER, .u64 = id,
			     .flags = (c->cur_stop ? CKPT_TRIGGER_STOP : 0) |
			              (ti >= 0 ? epoch_of(c, (uint32_t)ti) : 0) << TASK_EPOCH_SHIFT };
		if (st == ACTOR_STOPPED || st == ACTOR_RESTARTING || actor_send_ctl(src, &m) != EDDY_OK) {
			abort_pending(self, c, "source %s is %s", c->a->source_paths[i],
			              actor_status_name(st));
			return;
		}
	}
}

static bool complete_locked(actor *self, coord *c);

/* complete writes the manifest of the pending checkpoint, every task having acknowledged
 * it: under the gate, unless a region restarted since its trigger (then it is aborted). */
static void complete(actor *self, coord *c)
{
	ckpt_gate *g = c->a->gate;
	if (g)
		pthread_mutex_lock(&g->mu);
	bool ok = g == NULL || g->resets == c->cur_resets;
	if (ok)
		ok = complete_locked(self, c);
	else
		abort_pending(self, c, "a failover region restarted");
	if (ok && g) {
		g->done_id = c->cur.id;
		chk_dir(c, c->cur.id, g->done_dir, sizeof(g->done_dir));
	}
	if (g)
		pthread_mutex_unlock(&g->mu);
	if (!ok)
		return;
	for (uint32_t i = 0; i < c->a->ntasks; i++) /* the state's files, for the next deltas */
		if (c->pend[i].n > 0) {
			c->chains[i] = c->pend[i];
			c->pend[i].n = 0;
		}
	for (uint32_t i = 0; i < c->a->ntasks; i++) { /* two-phase-commit sinks commit now */
		actor *t = asys_find(actor_system(self), c->a->task_paths[i]);
		rt_msg done = { .kind = MSG_CKPT_DONE, .u64 = c->cur.id };
		if (t)
			actor_send_ctl(t, &done);
	}
	sweep(c->a->conf->dir, c->a->conf->retain, 0);
	c->cur.id = 0;
	c->cur_dir[0] = '\0';
	c->last_end = now_ms(self);
}

/* complete_locked writes and renames the manifest; false if it could not (aborted). */
static bool complete_locked(actor *self, coord *c)
{
	char d[4352], tmp[4400], fin[4400], job[256];
	chk_dir(c, c->cur.id, d, sizeof(d));
	c->cur.duration_ms = now_ms(self) - c->started_mono;
	json_str(job, sizeof(job), c->a->job);
	char *m = NULL;
	size_t mlen = 0;
	FILE *f = open_memstream(&m, &mlen);
	if (f == NULL) {
		abort_pending(self, c, "out of memory");
		return false;
	}
	/* the older checkpoints whose keyed-state files this one's deltas build on: every
	 * chain's files but its newest (this checkpoint's), each id once */
	fprintf(f, "{\"needs\": [");
	uint64_t *ids = NULL;
	size_t nids = 0, capids = 0;
	bool oom = false;
	for (uint32_t i = 0; i < c->a->ntasks; i++)
		for (uint32_t k = 0; k + 1 < c->pend[i].n; k++)
			if (rt_grow((void **)&ids, &capids, nids + 1, sizeof(*ids), 64) == EDDY_OK)
				ids[nids++] = c->pend[i].ids[k];
			else
				oom = true;
	if (nids > 1)
		qsort(ids, nids, sizeof(*ids), by_id_asc);
	for (size_t i = 0; i < nids; i++)
		if (i == 0 || ids[i] != ids[i - 1])
			fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)ids[i]);
	rt_free(ids);
	if (oom) { /* a need left out would let the sweep delete what this one reads */
		fclose(f);
		free(m);
		abort_pending(self, c, "out of memory");
		return false;
	}
	fprintf(f,
	        "],\n \"job\": \"%s\", \"checkpoint\": %llu, \"savepoint\": %s, \"mode\": \"%s\", "
	        "\"started_ms\": %lld, "
	        "\"duration_ms\": %lld, \"bytes\": %llu, \"alignment_ms\": %lld,\n \"tasks\": "
	        "[\n%s\n]}\n",
	        job, (unsigned long long)c->cur.id, c->cur_savepoint ? "true" : "false",
	        c->a->conf->mode == CKPT_EXACTLY_ONCE ? "exactly_once" : "at_least_once",
	        (long long)c->cur.started_ms, (long long)c->cur.duration_ms,
	        (unsigned long long)c->cur.bytes, (long long)c->cur.alignment_ms,
	        c->tasks_json ? c->tasks_json : "");
	fclose(f);
	snprintf(tmp, sizeof(tmp), "%s/MANIFEST.tmp", d);
	snprintf(fin, sizeof(fin), "%s/MANIFEST", d);
	int e = write_file(tmp, m, mlen);
	free(m);
	if (e != 0 || rename(tmp, fin) != 0) {
		abort_pending(self, c, "%s: %s", fin, strerror(e ? e : errno));
		return false;
	}
	int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* the rename is durable */
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	c->cur.status = "completed";
	log_put(c->a->log, &c->cur, false);
	if (c->cur_savepoint)
		asys_log_event(actor_system(self), actor_path(self), "checkpoint",
		               "savepoint %llu written to %s", (unsigned long long)c->cur.id, d);
	return true;
}

static void write_ack(actor *self, coord *c, uint32_t ti, ckpt_ack *a, ev_state_snapshot *state);

/* write_final counts finished task ti's final snapshot as its part of the pending
 * checkpoint. */
static void write_final(actor *self, coord *c, uint32_t ti)
{
	ckpt_ack *a = rt_calloc(1, sizeof(*a));
	char *copy = malloc(c->final_len[ti]);
	if (a == NULL || copy == NULL) {
		rt_free(a);
		free(copy);
		abort_pending(self, c, "out of memory");
		return;
	}
	memcpy(copy, c->final_data[ti], c->final_len[ti]);
	a->id = c->cur.id;
	a->finished = true;
	snprintf(a->path, sizeof(a->path), "%s", c->a->task_paths[ti]);
	a->data = copy;
	a->len = c->final_len[ti];
	a->watermark = WM_MIN;
	c->acked[ti] = true;
	write_ack(self, c, ti, a, c->final_state[ti]);
}

static void on_ack(actor *self, coord *c, ckpt_ack *a)
{
	int ti = task_index(c, a->path);
	if (ti < 0 || a->epoch != epoch_of(c, (uint32_t)ti)) { /* or from before a restart */
		ckpt_ack_free(a);
		return;
	}
	if (c->cur.id != 0 && gate_resets(c) != c->cur_resets)
		abort_pending(self, c, "a failover region restarted");
	if (a->finished) { /* kept for this and every later checkpoint */
		if (c->final_data[ti] == NULL && frame(a)) {
			c->final_data[ti] = a->data;
			c->final_len[ti] = a->len;
			c->final_state[ti] = a->state;
			c->final_epoch[ti] = a->epoch;
			a->data = NULL;
			a->state = NULL;
			c->nfinished++;
		}
		ckpt_ack_free(a);
		if (c->cur.id != 0 && !c->acked[ti])
			write_final(self, c, (uint32_t)ti);
		return;
	}
	if (a->id != c->cur.id || c->cur.id == 0 || c->acked[ti]) { /* an aborted one's */
		ckpt_ack_free(a);
		return;
	}
	if (a->declined) {
		abort_pending(self, c, "%s declined it: %s", a->path, a->why);
		ckpt_ack_free(a);
		return;
	}
	c->acked[ti] = true;
	write_ack(self, c, (uint32_t)ti, a, a->state);
}

#define BG_NICE 10 /* the keyed-state writer's nice value */

/* A keyed-state file to write (bg_main). */
typedef struct bg_write {
	ev_state_snapshot *s;
	const char *file, *parent; /* parent NULL: whole, else a delta over parent_id */
	uint64_t parent_id, bytes;
	eddy_err err;
} bg_write;

/* bg_run writes w's file (on the thread bg_main or, failing that, the caller's). */
static void *bg_run(void *p)
{
	bg_write *w = p;
	w->err = w->parent ? ev_state_snapshot_write_delta(w->s, w->file, w->parent, w->parent_id,
	                                                   &w->bytes)
	                   : ev_state_snapshot_write(w->s, w->file, &w->bytes);
	return NULL;
}

static void *bg_main(void *p)
{
	/* below the task threads: the job's processing first, the checkpoint with the CPU
	 * left over (as RocksDB's low-priority background threads); under full load a
	 * checkpoint takes longer rather than the job running slower */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), BG_NICE);
	return bg_run(p);
}

/* write_bg writes w on a thread of background priority, and waits for it (the
 * coordinator is on the I/O pool: it may block). */
static eddy_err write_bg(bg_write *w)
{
	pthread_t th;
	if (pthread_create(&th, NULL, bg_main, w) != 0)
		bg_run(w);
	else
		pthread_join(th, NULL);
	return w->err;
}

/* write_state writes task ti's keyed state to file (its name: the task's file name): a
 * delta over its chain in the last completed checkpoint when incremental checkpoints are
 * on, the snapshot can be one (its parent is that chain's head, or it is the head: a
 * finished task's) and the chain stays short enough (CHAIN_MAX files, at most twice the
 * state's estimated size), else whole. Sets the task's pending chain, parent (the
 * delta's parent file, relative, or "") and *bytes; false if the write failed (see
 * ev_state_snapshot_errmsg). */
static bool write_state(coord *c, uint32_t ti, ev_state_snapshot *s, const char *file,
                        const char *name, char *parent, size_t pn, uint64_t *bytes)
{
	const chain *cm = &c->chains[ti];
	chain *pd = &c->pend[ti];
	uint64_t sid = ev_state_snapshot_id(s), par = ev_state_snapshot_parent(s);
	double est = cm->ratio * (double)ev_state_snapshot_mem_bytes(s);
	bool same = cm->head == sid;
	bool delta = c->a->conf->incremental && !c->cur_savepoint && cm->n > 0 &&
	             cm->n < CHAIN_MAX && (same || (par != 0 && par == cm->head)) &&
	             (same || (double)cm->bytes <= 2.0 * est);
	parent[0] = '\0';
	if (delta)
		snprintf(parent, pn, "../chk-%llu/%s.state", (unsigned long long)cm->ids[cm->n - 1],
		         name);
	bg_write w = {.s = s, .file = file, .parent = delta ? parent : NULL, .parent_id = cm->head};
	if (write_bg(&w) != EDDY_OK)
		return false;
	*bytes = w.bytes;
	if (delta) {
		*pd = *cm;
	} else {
		uint64_t mem = ev_state_snapshot_mem_bytes(s);
		*pd = (chain){.ratio = (double)*bytes / (double)(mem ? mem : 1)};
	}
	pd->ids[pd->n++] = c->cur.id;
	pd->bytes += *bytes;
	pd->head = sid;
	if (c->cur_savepoint)
		pd->n = 0; /* a savepoint is no base: the user may delete it */
	return true;
}

/* write_ack writes a task's snapshot (and its keyed state, if any: written here, off the
 * task's thread, while the task goes on) and counts its acknowledgement. */
static void write_ack(actor *self, coord *c, uint32_t ti, ckpt_ack *a, ev_state_snapshot *state)
{
	char d[4352], name[160], file[4600];
	chk_dir(c, a->id, d, sizeof(d));
	size_t k = 0;
	for (const char *p = a->path; *p && k + 1 < sizeof(name); p++)
		name[k++] = *p == '/' ? '.' : *p;
	name[k] = '\0';
	snprintf(file, sizeof(file), "%s/%s.snap", d, name);
	/* the snapshot, then its CRC-32 (4 bytes, big-endian): a restore can tell a cut or
	 * damaged file */
	if (!a->finished && !frame(a)) { /* a final snapshot is framed already */
		abort_pending(self, c, "out of memory");
		ckpt_ack_free(a);
		return;
	}
	int e = write_file(file, a->data, a->len);
	if (e != 0) {
		abort_pending(self, c, "%s: %s", file, strerror(e));
		ckpt_ack_free(a);
		return;
	}
	char path[300], fname[400], wm[32] = "null", sfield[1200] = "";
	json_str(path, sizeof(path), a->path);
	json_str(fname, sizeof(fname), name);
	uint64_t sbytes = 0;
	if (state != NULL) {
		snprintf(file, sizeof(file), "%s/%s.state", d, name);
		char parent[300] = "";
		if (!write_state(c, ti, state, file, name, parent, sizeof(parent), &sbytes)) {
			abort_pending(self, c, "%s", ev_state_snapshot_errmsg(state));
			ckpt_ack_free(a);
			return;
		}
		char pj[600] = "";
		json_str(pj, sizeof(pj), parent);
		snprintf(sfield, sizeof(sfield),
		         ", \"state\": \"%s.state\", \"state_bytes\": %llu%s%s%s", fname,
		         (unsigned long long)sbytes, parent[0] ? ", \"state_parent\": \"" : "", pj,
		         parent[0] ? "\"" : "");
	}
	if (a->watermark != WM_MIN)
		snprintf(wm, sizeof(wm), "%lld", (long long)a->watermark);
	if (!tj_append(c,
	          "%s  {\"path\": \"%s\", \"file\": \"%s.snap\", \"bytes\": %zu%s, \"records_in\": %llu, "
	          "\"records_out\": %llu, \"watermark\": %s, \"alignment_ms\": %.3f}",
	          c->cur.acks ? ",\n" : "", path, fname, a->len, sfield,
	          (unsigned long long)a->records_in, (unsigned long long)a->records_out, wm,
	          (double)a->alignment_ns / 1e6)) {
		abort_pending(self, c, "out of memory writing the manifest");
		ckpt_ack_free(a);
		return;
	}
	c->cur.acks++;
	c->cur.bytes += a->len + sbytes;
	if (a->alignment_ns / 1000000 > c->cur.alignment_ms)
		c->cur.alignment_ms = a->alignment_ns / 1000000;
	ckpt_ack_free(a);
	c->cur.duration_ms = now_ms(self) - c->started_mono;
	log_put(c->a->log, &c->cur, false);
	if (c->cur.acks == c->cur.tasks)
		complete(self, c);
}

/* sources_ready: every source that has not finished runs, so a trigger can reach it. A
 * source that just finished is stopped before its final snapshot reaches us (it is then
 * counted as finished), and one restarting with its region comes back: wait for either
 * rather than start a checkpoint (or a savepoint: the request would be lost) bound to
 * abort. */
static bool sources_ready(actor *self, const coord *c)
{
	for (uint32_t i = 0; i < c->a->nsources; i++) {
		int ti = task_index(c, c->a->source_paths[i]);
		if (ti >= 0 && c->final_data[ti])
			continue;
		actor *src = asys_find(actor_system(self), c->a->source_paths[i]);
		actor_status st = src ? actor_get_status(src) : ACTOR_STOPPED;
		if (st == ACTOR_STOPPED || st == ACTOR_RESTARTING || st == ACTOR_NEW)
			return false;
	}
	return true;
}

static void tick(actor *self, coord *c)
{
	int64_t now = now_ms(self);
	const ckpt_conf *cf = c->a->conf;
	for (uint32_t i = 0; c->nfinished > 0 && i < c->a->ntasks; i++)
		if (c->final_data[i] && c->final_epoch[i] != epoch_of(c, i))
			drop_final(c, i); /* its region restarted: it runs again */
	if (c->cur.id != 0 && gate_resets(c) != c->cur_resets)
		abort_pending(self, c, "a failover region restarted");
	if (c->cur.id != 0) {
		if (now - c->started_mono > cf->timeout_ms)
			abort_pending(self, c, "timed out after %lld ms (%u of %u tasks acknowledged)",
			              (long long)cf->timeout_ms, c->cur.acks, c->cur.tasks);
		return;
	}
	uint32_t live_sources = 0;
	for (uint32_t i = 0; i < c->a->nsources; i++) {
		int ti = task_index(c, c->a->source_paths[i]);
		live_sources += ti < 0 || c->final_data[ti] == NULL;
	}
	c->done_triggering = live_sources == 0 || atomic_load(&c->a->stats->stop) || c->stopped;
	if (c->done_triggering)
		return; /* nothing left to inject barriers (until a region restarts) */
	bool due = now - c->last_trigger >= cf->interval_ms && now - c->last_end >= cf->min_pause_ms;
	if (due || c->now_requested || c->sp_req) {
		ckpt_gate *g = c->a->gate;
		if (g) {
			pthread_mutex_lock(&g->mu);
			uint32_t resetting = g->resetting;
			c->cur_resets = g->resets;
			pthread_mutex_unlock(&g->mu);
			if (resetting > 0)
				return; /* a region is restarting: once it runs again */
		}
		if (!sources_ready(self, c))
			return; /* next tick */
		c->now_requested = false;
		trigger(self, c);
	}
}

static eddy_err coord_init(actor *self, void *state, void *arg)
{
	coord *c = state;
	c->a = arg;
	const ckpt_conf *cf = c->a->conf;
	uint32_t nt = c->a->ntasks ? c->a->ntasks : 1;
	c->final_data = rt_calloc(nt, sizeof(*c->final_data));
	c->final_len = rt_calloc(nt, sizeof(*c->final_len));
	c->final_state = rt_calloc(nt, sizeof(*c->final_state));
	c->acked = rt_calloc(nt, sizeof(*c->acked));
	c->final_epoch = rt_calloc(nt, sizeof(*c->final_epoch));
	c->chains = rt_calloc(nt, sizeof(*c->chains));
	c->pend = rt_calloc(nt, sizeof(*c->pend));
	if (c->final_data == NULL || c->final_len == NULL || c->acked == NULL ||
	    c->final_state == NULL || c->final_epoch == NULL || c->chains == NULL ||
	    c->pend == NULL)
		return EDDY_ENOMEM;
	if (fs_mkdirs(cf->dir) != 0) {
		char why[512];
		snprintf(why, sizeof(why), "checkpoint directory %s: %s", cf->dir, strerror(errno));
		actor_fail(self, why);
		return EDDY_EFAILED;
	}
	/* incomplete checkpoints of an earlier run go; ids go on after every id ever issued
	 * here (DIR/LAST_ID: savepoints elsewhere and checkpoints swept away count too) and
	 * after the checkpoint the job was restored from: an id is never reused, so a sink's
	 * part-<s>-<id> file names one point of one history */
	uint64_t newest = sweep(cf->dir, cf->retain, 0);
	uint64_t last = read_last_id(cf->dir);
	c->next_id = (newest > last ? newest : last) + 1;
	if (c->next_id <= c->a->restored_from)
		c->next_id = c->a->restored_from + 1;
	c->last_trigger = c->last_end = now_ms(self);
	return actor_timer_start(self, TICK_MS, TICK_MS, TAG_TICK, NULL);
}

static eddy_err coord_receive(actor *self, void *state, rt_msg *m)
{
	coord *c = state;
	switch (m->kind) {
	case MSG_TIMER:
		tick(self, c); /* also once done triggering: a region restart may start again */
		break;
	case MSG_CKPT_ACK:
		on_ack(self, c, m->ptr);
		break;
	case MSG_CKPT_NOW:
		if (m->ptr) { /* a savepoint into this directory */
			free(c->sp_req);
			c->sp_req = m->ptr;
			c->sp_req_stop = (m->flags & CKPT_TRIGGER_STOP) != 0;
			m->ptr = NULL;
		}
		c->now_requested = true;
		if (!c->done_triggering && c->cur.id == 0)
			tick(self, c);
		break;
	default:
		msg_discard(m);
	}
	return EDDY_OK;
}

static void coord_fini(actor *self, void *state)
{
	coord *c = state;
	c->stopping = true; /* the job ends: not worth a line of its own */
	if (c->a && c->cur.id != 0)
		abort_pending(self, c, "the coordinator stopped");
	rt_free(c->tasks_json);
	c->tasks_json = NULL;
	if (c->sp_req && c->a)
		asys_log_event(actor_system(self), actor_path(self), "checkpoint",
		               "the savepoint into %s was not taken: the job stopped or restarted first",
		               c->sp_req);
	free(c->sp_req);
	c->sp_req = NULL;
	for (uint32_t i = 0; c->final_data && i < c->a->ntasks; i++)
		free(c->final_data[i]);
	for (uint32_t i = 0; c->final_state && i < c->a->ntasks; i++)
		ev_state_snapshot_release(c->final_state[i]);
	rt_free(c->final_state);
	c->final_state = NULL;
	rt_free(c->final_data);
	rt_free(c->final_len);
	rt_free(c->acked);
	rt_free(c->chains);
	rt_free(c->pend);
	c->chains = c->pend = NULL;
	rt_free(c->final_epoch);
	c->final_epoch = NULL;
	c->final_data = NULL;
}

const actor_ops ckpt_coord_ops = {
	.type = "checkpoint-coordinator",
	.state_size = sizeof(coord),
	.init = coord_init,
	.receive = coord_receive,
	.fini = coord_fini,
};
