/*
 * The file source (operators/ops.h): a reader thread per subtask does the blocking file
 * I/O (and gunzip) and hands chunks of whole records to the source task, which parses
 * them into batches on a scheduler worker, assigns event time and emits watermarks.
 *
 * Splitting: a plain file is read by every subtask, each taking the records that start
 * in its 1 MiB blocks (block i belongs to subtask i % parallelism), so subtasks advance
 * through the file — and through event time — side by side; the reader scans record
 * boundaries (CSV quotes respected) and counts lines, so errors name the file line. A .gz
 * file cannot be split: subtask 0 reads it all, the other subtasks end at once.
 */
#include "../operators/ops.h"
#include "format.h"

#include "../runtime/alloc.h"

#include "../runtime/mp.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define READ_BYTES (256 * 1024)
#define SPLIT_BLOCK (1024 * 1024)

typedef struct chunk {
	struct chunk *next;   /* in its reader's pool */
	struct reader *owner; /* the reader whose pool it goes back to (NULL: freed) */
	size_t cap;           /* room for text */
	int64_t first_line;   /* file line of text[0]; 0: right after the previous chunk */
	int64_t end_off;      /* file offset (of the uncompressed text) just after the chunk */
	size_t len;
	char *text;       /* data, or into map */
	struct fmap *map; /* read_mapped: the mapping text points into (NULL: text is data) */
	char data[];
} chunk;

/* read_whole reads into pooled chunks of this many bytes (a longer record gets a bigger
 * chunk of its own) and sends them with no copy but the partial record at the end. */
#define CHUNK_BYTES (2 * READ_BYTES)

typedef struct reader {
	const file_source_conf *c;
	actor *to;
	job_stats *stats;
	uint32_t subtask, parallelism;
	_Atomic int stop;
	pthread_t thread;
	bool started;
	int64_t start_off;  /* where to start reading (a restored position), bytes */
	int64_t start_line; /* the file line there */
	/* chunks of CHUNK_BYTES the source task has parsed, for read_whole to fill again
	 * (a stack: pushed by the task, popped by the reader only, so no ABA) */
	_Atomic(chunk *) pool;
	/* reader thread only */
	int fd;
	gzFile gz;
	char *buf;
	size_t len, cap;
} reader;

static void drop_ptr(rt_msg *m)
{
	rt_free(m->ptr);
}

/* deliver hands m to the source task, waiting for room; false if we should stop. */
static bool deliver(reader *r, rt_msg *m)
{
	for (;;) {
		if (atomic_load(&r->stop)) {
			msg_discard(m);
			return false;
		}
		eddy_err err = actor_send_wait(r->to, m, 100);
		if (err == EDDY_OK)
			return true;
		if (err != EDDY_ETIMEDOUT) {
			msg_discard(m);
			return false;
		}
	}
}

static void send_end(reader *r, bool final, const char *error)
{
	rt_msg m = {.kind = MSG_CHUNK_END, .u64 = final, .drop = drop_ptr};
	if (error)
		m.ptr = rt_strdup(error);
	deliver(r, &m);
}

struct fmap;
static void fmap_unref(struct fmap *m);

/* chunk_new: a chunk with room for cap bytes, from the pool if it is CHUNK_BYTES (reader
 * thread); NULL: out of memory. */
static chunk *chunk_new(reader *r, size_t cap)
{
	chunk *ch = NULL;
	if (cap == CHUNK_BYTES) {
		ch = atomic_load_explicit(&r->pool, memory_order_acquire);
		while (ch && !atomic_compare_exchange_weak_explicit(&r->pool, &ch, ch->next,
		                                                    memory_order_acquire,
		                                                    memory_order_acquire))
			;
	}
	if (ch == NULL && (ch = rt_malloc(sizeof(chunk) + cap)) == NULL)
		return NULL;
	ch->owner = cap == CHUNK_BYTES ? r : NULL;
	ch->text = ch->data;
	ch->map = NULL;
	ch->cap = cap;
	ch->first_line = 0;
	ch->end_off = 0;
	ch->len = 0;
	return ch;
}

/* chunk_done gives a parsed chunk back to its reader's pool (the source task, while its
 * reader lives), or frees it. */
static void chunk_done(chunk *ch)
{
	reader *r = ch->owner;
	if (ch->map != NULL) {
		fmap_unref(ch->map);
		ch->map = NULL;
	}
	if (r == NULL) {
		rt_free(ch);
		return;
	}
	ch->next = atomic_load_explicit(&r->pool, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&r->pool, &ch->next, ch, memory_order_release,
	                                              memory_order_relaxed))
		;
}

/* drop_chunk: a chunk message dropped unparsed (the task stopped) */
static void drop_chunk(rt_msg *m)
{
	chunk *ch = m->ptr;
	if (ch->map != NULL)
		fmap_unref(ch->map);
	rt_free(ch);
}

/* send_ch sends chunk ch (len, end_off set); false if we should stop. */
static bool send_ch(reader *r, chunk *ch)
{
	rt_msg m = {.kind = MSG_CHUNK, .ptr = ch, .drop = drop_chunk};
	return deliver(r, &m);
}

static bool send_chunk(reader *r, const char *p, size_t len, int64_t first_line, int64_t end_off)
{
	chunk *ch = chunk_new(r, len);
	if (ch == NULL) {
		send_end(r, false, "out of memory reading the file");
		return false;
	}
	ch->first_line = first_line;
	ch->end_off = end_off;
	ch->len = len;
	memcpy(ch->text, p, len);
	return send_ch(r, ch);
}

/* gz_reason drops zlib's "<fd:N>: " prefix from a gzerror message. */
static const char *gz_reason(const char *m)
{
	if (m && strncmp(m, "<fd:", 4) == 0) {
		const char *c = strstr(m, ": ");
		if (c)
			return c + 2;
	}
	return m ? m : "error";
}

/* fill reads up to max bytes into dst; returns bytes read, 0 at the end, -1 on error
 * (msg), -2 when asked to stop while waiting for data. */
static ssize_t fill(reader *r, char *dst, size_t max, char *msg, size_t msize)
{
	if (r->gz) {
		int n = gzread(r->gz, dst, (unsigned)max);
		int zerr = Z_OK;
		const char *zmsg = n < 0 ? gzerror(r->gz, &zerr) : NULL;
		if (n < 0) {
			snprintf(msg, msize, "%s: gzip: %s", r->c->path, gz_reason(zmsg));
			return -1;
		}
		if (n == 0) {
			zmsg = gzerror(r->gz, &zerr);
			if (zerr != Z_OK) {
				snprintf(msg, msize, "%s: gzip: %s (truncated or corrupt)",
				         r->c->path, gz_reason(zmsg));
				return -1;
			}
		}
		return n;
	}
	ssize_t n;
	for (;;) {
		/* wait in steps of 100 ms (a pipe or FIFO may stay silent) so a stop is seen */
		struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
		int pr = poll(&pfd, 1, 100);
		if (pr == 0) {
			if (atomic_load(&r->stop) || atomic_load(&r->stats->stop)) {
				snprintf(msg, msize, "stopped");
				return -2;
			}
			continue;
		}
		n = read(r->fd, dst, max);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN))
			break;
	}
	if (n < 0)
		snprintf(msg, msize, "%s: read: %s", r->c->path, strerror(errno));
	return n;
}

/* read_into stops if asked to, else reads up to max bytes into dst: returns the bytes
 * read (0 at the end of the file), or -1 once it has sent the end (stopped, or failed
 * with the reason). */
static ssize_t read_into(reader *r, char *dst, size_t max)
{
	char msg[512];
	if (atomic_load(&r->stop) || atomic_load(&r->stats->stop)) {
		send_end(r, false, NULL);
		return -1;
	}
	ssize_t n = fill(r, dst, max, msg, sizeof(msg));
	if (n < 0) {
		send_end(r, false, n == -2 ? NULL : msg);
		return -1;
	}
	return n;
}

/* refill reads more into buf (read_split): as read_into. */
static ssize_t refill(reader *r)
{
	if (r->cap - r->len < READ_BYTES) {
		size_t cap = r->cap ? r->cap * 2 : 2 * READ_BYTES;
		char *b = rt_realloc(r->buf, cap);
		if (b == NULL) {
			send_end(r, false, "out of memory reading the file");
			return -1;
		}
		r->buf = b;
		r->cap = cap;
	}
	ssize_t n = read_into(r, r->buf + r->len, READ_BYTES);
	if (n > 0)
		r->len += (size_t)n;
	return n;
}

/* read_whole: one reader takes every record (p = 1 or .gz): it reads into a chunk and
 * sends the chunk's whole records, the partial one at its end copied to the next chunk
 * (a chunk too small for one record is replaced by one twice as big). */
static void read_whole(reader *r)
{
	int64_t off = r->start_off; /* file offset of the chunk's text[0] */
	chunk *ch = chunk_new(r, CHUNK_BYTES);
	for (;;) {
		if (ch == NULL) {
			send_end(r, false, "out of memory reading the file");
			return;
		}
		if (ch->cap - ch->len < READ_BYTES / 2) { /* a long record: more room */
			chunk *big = chunk_new(r, ch->cap * 2);
			if (big != NULL) {
				memcpy(big->text, ch->text, ch->len);
				big->len = ch->len;
			}
			chunk_done(ch);
			if ((ch = big) == NULL)
				continue;
		}
		size_t max = ch->cap - ch->len < READ_BYTES ? ch->cap - ch->len : READ_BYTES;
		ssize_t n = read_into(r, ch->text + ch->len, max);
		if (n < 0) {
			chunk_done(ch);
			return;
		}
		ch->len += (size_t)n;
		size_t whole =
		    n == 0 ? ch->len : fmt_frame((fmt_kind)r->c->format, ch->text, ch->len);
		if (whole > 0) {
			chunk *next = chunk_new(r, CHUNK_BYTES);
			if (next == NULL) {
				chunk_done(ch);
				send_end(r, false, "out of memory reading the file");
				return;
			}
			size_t rest =
			    ch->len - whole; /* a partial record: shorter than the chunk */
			if (rest > next->cap - READ_BYTES / 2) {
				chunk_done(next);
				if ((next = chunk_new(r, ch->cap)) == NULL) {
					chunk_done(ch);
					send_end(r, false, "out of memory reading the file");
					return;
				}
			}
			memcpy(next->text, ch->text + whole, rest);
			next->len = rest;
			/* first_line 0: the chunk continues the previous one (the parser counts) */
			off += (int64_t)whole;
			ch->len = whole;
			ch->end_off = off;
			if (!send_ch(r, ch)) {
				chunk_done(next);
				return;
			}
			ch = next;
		}
		if (n == 0) {
			chunk_done(ch);
			send_end(r, true, NULL);
			return;
		}
	}
}

/* A mapping of part of the file (read_mapped), shared by the chunks cut from it: the
 * reader holds a reference while it cuts, each chunk one until it is parsed or dropped;
 * the last to let go unmaps it. */
typedef struct fmap {
	_Atomic uint32_t refs;
	void *base;
	size_t len;
} fmap;

static void fmap_unref(fmap *m)
{
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		munmap(m->base, m->len);
		rt_free(m);
	}
}

/* MAP_WINDOW: read_mapped maps the file this many bytes at a time (more for a longer
 * record), so a mapping is made and unmapped every 16 MiB, not every chunk (an unmap
 * flushes the TLBs of every core running the process). */
#define MAP_WINDOW ((int64_t)16 << 20)

/* read_mapped: read_whole for a regular file, without copying the file: the reader maps
 * it a window at a time and sends chunks that point into the mapping (each about
 * CHUNK_BYTES of whole records), having filled their page tables (MADV_POPULATE_READ, so
 * the parsing task takes no page faults); a window is unmapped when its last chunk has
 * been parsed. The file's size is taken again at its end, so a file that grew is read on
 * (as read() would); a file that ends in a partial record is taken as still being written
 * when it grew meanwhile (read on: the record is not cut in two), else that record is its
 * last and nothing after it is read (as read_whole, which stops at the first end of file).
 * Returns false, having sent nothing, when the file is not a regular
 * one (a pipe, a FIFO): read_whole reads it.
 * As any reader of a mapped file, it assumes the file is not truncated while it reads
 * (a truncated file's pages are gone: the process gets SIGBUS); replace files by rename. */
static bool read_mapped(reader *r)
{
	struct stat st;
	if (r->fd < 0 || fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	const int64_t page = sysconf(_SC_PAGESIZE);
	int64_t size = st.st_size;
	int64_t off = r->start_off; /* of the next chunk's first record */
	fmap *w = NULL;             /* the current window: [w_off, w_off + w->len) */
	int64_t w_off = 0;
	size_t want = CHUNK_BYTES;
	char msg[512] = ""; /* why it failed */
	bool done = false;  /* read to the end */
	bool cut = false;   /* a record without a line end was sent as the file's last */
	for (;;) {
		if (atomic_load(&r->stop) || atomic_load(&r->stats->stop))
			break;
		if (off >= size) {
			if (!cut && fstat(r->fd, &st) == 0 && st.st_size > size) {
				size = st.st_size;
				continue;
			}
			done = true;
			break;
		}
		int64_t room = size - off < (int64_t)want ? size - off : (int64_t)want;
		if (w == NULL || off + room > w_off + (int64_t)w->len) { /* map the next window */
			if (w != NULL)
				fmap_unref(w);
			w_off = off / page * page;
			int64_t len = size - w_off < MAP_WINDOW ? size - w_off : MAP_WINDOW;
			if (len < off - w_off + room)
				len = off - w_off + room;
			w = rt_malloc(sizeof(*w));
			void *base =
			    w ? mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, r->fd, w_off)
			      : MAP_FAILED;
			if (base == MAP_FAILED) {
				snprintf(msg, sizeof(msg), "%s: %s", r->c->path,
				         w ? strerror(errno) : "out of memory reading the file");
				rt_free(w);
				w = NULL;
				break;
			}
			atomic_init(&w->refs, 1);
			w->base = base;
			w->len = (size_t)len;
		}
		char *text = (char *)w->base + (off - w_off);
		bool last = off + room >= size;
		size_t whole = fmt_frame((fmt_kind)r->c->format, text, (size_t)room);
		if (last && whole < (size_t)room) {
			/* the file ends in a partial record: when the file grew meanwhile it is
			 * being written (the rest of the record is coming), so read on rather than
			 * cut the record in two; else the file's last record has no line end */
			if (fstat(r->fd, &st) == 0 && st.st_size > size) {
				size = st.st_size;
				continue;
			}
			whole = (size_t)room;
			cut = true; /* its last record is sent: read no further (as read_whole) */
		}
		if (whole == 0) { /* a record longer than want: look further */
			want *= 2;
			continue;
		}
		want = CHUNK_BYTES;
		chunk *ch = rt_malloc(sizeof(chunk));
		if (ch == NULL) {
			snprintf(msg, sizeof(msg), "out of memory reading the file");
			break;
		}
		/* fill the chunk's page tables here, not in the parsing task (the range's
		 * start rounded down to a page: madvise wants it aligned) */
		char *pg = (char *)w->base + ((off - w_off) / page * page);
		(void)madvise(pg, (size_t)(text + whole - pg), MADV_POPULATE_READ);
		atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
		off += (int64_t)whole;
		*ch = (chunk){.map = w, .text = text, .len = whole, .cap = whole, .end_off = off};
		if (!send_ch(r, ch)) {
			fmap_unref(w);
			return true;
		}
	}
	if (w != NULL)
		fmap_unref(w);
	send_end(r, done, msg[0] ? msg : NULL);
	return true;
}

/* read_split: this subtask's records of a plain file (see the top of the file). */
static void read_split(reader *r)
{
	int64_t line = r->start_line; /* line of buf[pos] */
	int64_t off = r->start_off;   /* file offset of buf[0] */
	size_t pos = 0;               /* next record start in buf */
	bool csv = r->c->format == FMT_CSV;
	size_t run_start = 0; /* start of the pending run of our records in buf */
	int64_t run_line = 0;
	bool in_run = false;
	for (;;) {
		ssize_t n = refill(r);
		if (n < 0)
			return;
		/* walk the complete records; without quotes in the buffer a record ends at the
		 * next newline (memchr), otherwise quotes are tracked byte by byte */
		bool quotes = csv && memchr(r->buf + pos, '"', r->len - pos) != NULL;
		for (;;) {
			int64_t nl = 0;
			size_t end = 0;
			bool found = false;
			if (!quotes) {
				const char *e = memchr(r->buf + pos, '\n', r->len - pos);
				if (e) {
					end = (size_t)(e - r->buf) + 1;
					nl = 1;
					found = true;
				}
			} else {
				const char *e = fmt_csv_end(r->buf + pos, r->buf + r->len, &nl);
				if (e) {
					end = (size_t)(e - r->buf) + 1;
					nl++;
					found = true;
				}
			}
			if (!found) {
				if (n == 0 && pos < r->len) { /* last record without a newline */
					end = r->len;
					found = true;
				} else {
					break;
				}
			}
			bool mine =
			    ((uint64_t)(off + (int64_t)pos) / SPLIT_BLOCK) % r->parallelism ==
			    r->subtask;
			if (mine && !in_run) {
				in_run = true;
				run_start = pos;
				run_line = line;
			} else if (!mine && in_run) {
				if (!send_chunk(r, r->buf + run_start, pos - run_start, run_line,
				                off + (int64_t)pos))
					return;
				in_run = false;
			}
			line += nl;
			pos = end;
			if (in_run && pos - run_start >= READ_BYTES) {
				if (!send_chunk(r, r->buf + run_start, pos - run_start, run_line,
				                off + (int64_t)pos))
					return;
				in_run = false;
			}
		}
		/* keep only what is still needed: the pending run or the partial record */
		size_t keep = in_run ? run_start : pos;
		memmove(r->buf, r->buf + keep, r->len - keep);
		r->len -= keep;
		off += (int64_t)keep;
		pos -= keep;
		if (in_run)
			run_start = 0;
		if (n == 0) {
			if (in_run && !send_chunk(r, r->buf, pos, run_line, off + (int64_t)pos))
				return;
			send_end(r, true, NULL);
			return;
		}
	}
}

static void *reader_main(void *arg)
{
	reader *r = arg;
	const char *path = r->c->path;
	size_t pl = strlen(path);
	bool gz = pl > 3 && strcmp(path + pl - 3, ".gz") == 0;
	if (gz && r->subtask != 0) { /* not splittable: subtask 0 reads it all */
		send_end(r, true, NULL);
		return NULL;
	}
	char msg[512];
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		snprintf(msg, sizeof(msg), "%s: cannot open: %s", path, strerror(errno));
		send_end(r, false, msg);
		return NULL;
	}
	if (gz) {
		r->gz = gzdopen(r->fd, "rb");
		if (r->gz == NULL) {
			close(r->fd);
			r->fd = -1;
			snprintf(msg, sizeof(msg), "%s: gzip: cannot open", path);
			send_end(r, false, msg);
			return NULL;
		}
		r->fd = -1;
		gzbuffer(r->gz, 128 * 1024);
		if (r->start_off > 0 &&
		    gzseek(r->gz, (z_off_t)r->start_off, SEEK_SET) != r->start_off) {
			snprintf(msg, sizeof(msg),
			         "%s: gzip: cannot resume at byte %lld of the data", path,
			         (long long)r->start_off);
			gzclose(r->gz);
			r->gz = NULL;
			send_end(r, false, msg);
			return NULL;
		}
	} else if (r->start_off > 0 && lseek(r->fd, r->start_off, SEEK_SET) != r->start_off) {
		snprintf(msg, sizeof(msg), "%s: cannot resume at byte %lld: %s", path,
		         (long long)r->start_off, strerror(errno));
		close(r->fd);
		r->fd = -1;
		send_end(r, false, msg);
		return NULL;
	}
	if (gz || r->parallelism == 1) {
		if (gz || !read_mapped(r))
			read_whole(r);
	} else
		read_split(r);
	if (r->gz)
		gzclose(r->gz);
	if (r->fd >= 0)
		close(r->fd);
	r->gz = NULL;
	r->fd = -1;
	return NULL;
}

/* ---- the source task's side ---- */

typedef struct src_state {
	const file_source_conf *c;
	reader *rd;
	ev_batch *b, *dead;
	bool header_pending;
	bool at_file_start; /* the next chunk starts the file (subtask 0) */
	int64_t next_line;  /* line after the last chunk parsed */
	int64_t pos;        /* file offset after the last chunk parsed */
	int64_t max_ts;
	uint64_t records;
	int64_t last_record_ms; /* processing time of the last record, for idleness */
	bool idle;
} src_state;

static eddy_err flush_batches(task *t, src_state *s)
{
	eddy_err err = EDDY_OK;
	if (s->b && s->b->n) {
		atomic_fetch_add_explicit(&task_stats(t)->records_in, s->b->n,
		                          memory_order_relaxed);
		err = task_emit(t, 0, s->b);
		s->b = NULL;
	}
	if (err == EDDY_OK && s->dead && s->dead->n) {
		err = task_emit(t, 1, s->dead);
		s->dead = NULL;
	}
	return err;
}

/* bad_record applies on_error to one malformed record. */
static eddy_err bad_record(task *t, src_state *s, const fmt_error *e)
{
	const file_source_conf *c = s->c;
	switch (c->on_error) {
	case ON_ERROR_FAIL:
		if (e->col > 0)
			return task_fail(t, "%s:%lld:%lld: %s", c->path, (long long)e->line,
			                 (long long)e->col, e->msg);
		return task_fail(t, "%s:%lld: %s", c->path, (long long)e->line, e->msg);
	case ON_ERROR_SKIP:
		atomic_fetch_add_explicit(&task_stats(t)->skipped, 1, memory_order_relaxed);
		return EDDY_OK;
	case ON_ERROR_DEAD_LETTER: break;
	}
	atomic_fetch_add_explicit(&task_stats(t)->dead_letters, 1, memory_order_relaxed);
	if (s->dead && batch_full(s->dead)) {
		eddy_err err = task_emit(t, 1, s->dead);
		s->dead = NULL;
		if (err != EDDY_OK)
			return err;
	}
	if (s->dead == NULL && (s->dead = task_new_batch(t, c->dead_schema)) == NULL)
		return EDDY_ENOMEM;
	ev_batch *d = s->dead;
	uint32_t r = batch_append_row(d);
	d->ts[r] = s->max_ts == INT64_MIN ? 0 : s->max_ts;
	char why[300];
	if (e->col > 0)
		snprintf(why, sizeof(why), "column %lld: %s", (long long)e->col, e->msg);
	else
		snprintf(why, sizeof(why), "%s", e->msg);
	eddy_err err = batch_set_str(d, r, 0, c->path, strlen(c->path));
	batch_set_int(d, r, 1, e->line);
	if (err == EDDY_OK)
		err = batch_set_str(d, r, 2, why, strlen(why));
	if (err == EDDY_OK)
		err = batch_set_str(d, r, 3, e->rec ? e->rec : "", e->rec ? e->rec_len : 0);
	return err;
}

static eddy_err emit_progress(task *t, src_state *s)
{
	eddy_err err = flush_batches(t, s);
	if (err != EDDY_OK)
		return err;
	const source_time *tm = &s->c->time;
	if (tm->time_field < 0)
		return task_emit_watermark(t, clock_wall_ms() - 1);
	if (s->max_ts == INT64_MIN)
		return EDDY_OK;
	return task_emit_watermark(t, s->max_ts - tm->max_ooo_ms - 1);
}

static eddy_err parse_chunk(task *t, src_state *s, chunk *ch)
{
	const file_source_conf *c = s->c;
	fmt_cursor cur = {.p = ch->text,
	                  .end = ch->text + ch->len,
	                  .line = ch->first_line ? ch->first_line : s->next_line};
	fmt_error fe;
	eddy_err err = EDDY_OK;
	if (s->at_file_start) { /* a UTF-8 byte order mark is not data (as DuckDB, pandas) */
		s->at_file_start = false;
		if (ch->len >= 3 && memcmp(ch->text, "\xEF\xBB\xBF", 3) == 0)
			cur.p += 3;
	}
	if (s->header_pending) {
		memset(&fe, 0, sizeof(fe));
		eddy_err he = fmt_check_header(c->schema, &cur, &fe);
		/* EDDY_EEMPTY: only blank lines (or a byte order mark) so far: the header is
		 * still to come, or the file has none and no records (as an empty file) */
		if (he != EDDY_OK && he != EDDY_EEMPTY)
			return task_fail(t, "%s:%lld:%lld: %s", c->path, (long long)fe.line,
			                 (long long)fe.col, fe.msg);
		s->header_pending = he == EDDY_EEMPTY;
	}
	int tf = c->time.time_field;
	int64_t now = tf < 0 ? clock_wall_ms() : 0;
	memset(&fe, 0, sizeof(fe)); /* again after each bad record (the parser fills it then) */
	for (;;) {
		if (s->b && batch_full(s->b) && (err = emit_progress(t, s)) != EDDY_OK)
			return err;
		if (s->b == NULL && (s->b = batch_new(c->schema, c->batch_size)) == NULL)
			return EDDY_ENOMEM;
		const char *rec = cur.p;
		err = fmt_parse_fields((fmt_kind)c->format, c->schema, c->live, &cur, s->b, &fe);
		if (err == EDDY_EEMPTY)
			break;
		if (err == EDDY_EINVAL) {
			err = bad_record(t, s, &fe);
			memset(&fe, 0, sizeof(fe));
			if (err != EDDY_OK)
				return err;
			continue;
		}
		if (err != EDDY_OK)
			return err;
		uint32_t r = s->b->n - 1;
		if (tf < 0) {
			s->b->ts[r] = now;
			continue;
		}
		if (batch_is_null(s->b, r, (uint32_t)tf)) {
			s->b->n--;
			fe.line = cur.line - 1;
			fe.col = 0;
			while (rec < cur.end && (*rec == '\n' || *rec == '\r'))
				rec++;              /* blank lines the parser skipped */
			if (c->format == FMT_CSV) { /* the start of the field (unquoted records) */
				const char *f = rec;
				for (int k = 0; k < tf && f < cur.end && *f != '\n'; f++)
					if (*f == ',')
						k++;
				fe.col = f - rec + 1;
			}
			const char *nl = memchr(rec, '\n', (size_t)(cur.end - rec));
			fe.rec = rec;
			fe.rec_len = (size_t)((nl ? nl : cur.end) - rec);
			snprintf(fe.msg, sizeof(fe.msg), "field '%s' (the event time) is empty",
			         c->schema->fields[tf].name);
			err = bad_record(t, s, &fe);
			memset(&fe, 0, sizeof(fe));
			if (err != EDDY_OK)
				return err;
			continue;
		}
		int64_t ts = batch_get_int(s->b, r, (uint32_t)tf);
		s->b->ts[r] = ts;
		if (ts > s->max_ts)
			s->max_ts = ts;
	}
	s->next_line = cur.line;
	s->pos = ch->end_off;
	return emit_progress(t, s);
}

static eddy_err src_message(task *t, void *state, rt_msg *m)
{
	src_state *s = state;
	int64_t now = clock_now_ms(asys_clock(actor_system(task_actor(t))));
	switch (m->kind) {
	case MSG_CHUNK: {
		chunk *ch = m->ptr;
		s->last_record_ms = now;
		eddy_err err = EDDY_OK;
		if (s->idle) {
			s->idle = false;
			err = task_emit_idle(t, false);
		}
		if (err == EDDY_OK)
			err = parse_chunk(t, s, ch);
		chunk_done(ch);
		return err;
	}
	case MSG_CHUNK_END: {
		const char *error = m->ptr;
		if (error) {
			eddy_err err = task_fail(t, "%s", error);
			rt_free(m->ptr);
			return err;
		}
		eddy_err err = flush_batches(t, s);
		if (err == EDDY_OK)
			task_finish(t, m->u64 != 0);
		return err;
	}
	case MSG_TIMER: {
		const source_time *tm = &s->c->time;
		if (tm->time_field < 0)
			return task_emit_watermark(t, clock_wall_ms() - 1);
		if (tm->idle_timeout_ms > 0 && !s->idle &&
		    now - s->last_record_ms >= tm->idle_timeout_ms) {
			s->idle = true;
			return task_emit_idle(t, true);
		}
		return EDDY_OK;
	}
	default:
		msg_discard(m);
		return task_fail(t, "file source: unexpected message kind %u", m->kind);
	}
}

static eddy_err start_reader(task *t, src_state *s)
{
	if (pthread_create(&s->rd->thread, NULL, reader_main, s->rd) != 0)
		return task_fail(t, "%s: cannot start the reader thread", s->c->path);
	s->rd->started = true;
	return EDDY_OK;
}

static eddy_err src_open(task *t, void **state)
{
	const task_node *n = task_node_of(t);
	src_state *s = rt_calloc(1, sizeof(*s));
	reader *r = rt_calloc(1, sizeof(*r));
	if (s == NULL || r == NULL) {
		rt_free(s);
		rt_free(r);
		return EDDY_ENOMEM;
	}
	*state = s;
	s->c = n->conf;
	s->rd = r;
	s->max_ts = INT64_MIN;
	s->next_line = 1;
	s->header_pending = s->c->header && task_subtask(t) == 0;
	s->at_file_start = task_subtask(t) == 0;
	s->last_record_ms = clock_now_ms(asys_clock(actor_system(task_actor(t))));
	r->c = s->c;
	r->to = task_actor(t);
	r->stats = n->stats;
	r->subtask = task_subtask(t);
	r->parallelism = n->parallelism;
	r->fd = -1;
	const source_time *tm = &s->c->time;
	int64_t period = tm->time_field < 0
	                     ? tm->wm_interval_ms
	                     : (tm->idle_timeout_ms > 0 ? tm->idle_timeout_ms / 2 : 0);
	if (period > 0) {
		eddy_err err = actor_timer_start(task_actor(t), period, period, 0, NULL);
		if (err != EDDY_OK)
			return err;
	}
	r->start_line = 1;
	if (task_restored_from(t) > 0 && !task_restarted(t))
		return EDDY_OK; /* the reader starts in src_restore, at the restored position */
	return start_reader(t, s);
}

static void src_close(task *t, void *state)
{
	(void)t;
	src_state *s = state;
	if (s == NULL)
		return;
	if (s->rd) {
		atomic_store(&s->rd->stop, 1);
		if (s->rd->started)
			pthread_join(s->rd->thread, NULL);
		for (chunk *ch = atomic_load(&s->rd->pool), *next; ch; ch = next) {
			next = ch->next;
			rt_free(ch);
		}
		rt_free(s->rd->buf);
		rt_free(s->rd);
	}
	batch_free(s->b);
	batch_free(s->dead);
	rt_free(s);
}

/* ---- checkpoints: the position is the end of the last chunk parsed ---- */

static eddy_err src_snapshot(task *t, void *state, uint64_t id, msgpack_packer *pk)
{
	(void)t, (void)id;
	src_state *s = state;
	msgpack_pack_map(pk, 5);
	msgpack_pack_str_with_body(pk, "pos", 3);
	msgpack_pack_int64(pk, s->pos);
	msgpack_pack_str_with_body(pk, "line", 4);
	msgpack_pack_int64(pk, s->next_line);
	msgpack_pack_str_with_body(pk, "max_ts", 6);
	msgpack_pack_int64(pk, s->max_ts);
	msgpack_pack_str_with_body(pk, "header_pending", 14);
	s->header_pending ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	msgpack_pack_str_with_body(pk, "at_file_start", 13);
	s->at_file_start ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	return EDDY_OK;
}

static eddy_err src_restore(task *t, void *state, const msgpack_object *o)
{
	src_state *s = state;
	int64_t pos, line, max_ts;
	bool hp, afs;
	if (!mp_int(mp_get(o, "pos"), &pos) || !mp_int(mp_get(o, "line"), &line) ||
	    !mp_int(mp_get(o, "max_ts"), &max_ts) || !mp_bool(mp_get(o, "header_pending"), &hp) ||
	    !mp_bool(mp_get(o, "at_file_start"), &afs) || pos < 0 || line < 1)
		return task_fail(t, "%s: the checkpoint's position is not a file-source position",
		                 s->c->path);
	s->pos = s->rd->start_off = pos;
	s->next_line = s->rd->start_line = line;
	s->max_ts = max_ts;
	s->header_pending = hp;
	s->at_file_start = afs;
	return start_reader(t, s);
}

const op_def file_source_op = {
    .type = "file-source",
    .open = src_open,
    .message = src_message,
    .close = src_close,
    .snapshot = src_snapshot,
    .restore = src_restore,
};
