/*
 * File and print sinks (operators/ops.h). Both run on the I/O pool (their writes block).
 * A file sink subtask writes DIR/part-<subtask>.csv (a header first) or .jsonl, in
 * buffers of 256 KiB, and closes the file at the end of its input; the print sink
 * writes the same lines to stdout, one whole buffer at a time. Both are restartable: a
 * file sink's failed subtask flushes what it took when it closes, and its restart
 * appends to the part file.
 */
#include "../operators/ops.h"
#include "../runtime/fs.h"
#include "format.h"

#include "../runtime/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SINK_FLUSH_BYTES (256 * 1024)

typedef struct sink_state {
	const sink_conf *c;
	int fd;
	char path[4096]; /* the file being written */
	fmt_buf buf;
	bool print;
	bool txn;        /* two-phase commit (the job has checkpoints) */
	uint32_t subtask;
	uint64_t rows;   /* rows in the file being written */
} sink_state;

static eddy_err write_all(task *t, sink_state *s)
{
	size_t off = 0;
	while (off < s->buf.len) {
		ssize_t n = write(s->fd, s->buf.p + off, s->buf.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return task_fail(t, "%s: write: %s", s->print ? "stdout" : s->path,
			                 strerror(errno));
		off += (size_t)n;
	}
	s->buf.len = 0;
	return EDDY_OK;
}


static const char *ext(const sink_state *s)
{
	return s->c->format == FMT_CSV ? "csv" : "jsonl";
}

/* ---- two-phase commit (a job with checkpoints) ----
 * Rows go to DIR/.part-<s>.inprogress (hidden). At a barrier n the file is flushed,
 * closed and renamed DIR/.part-<s>-<n>.pending (pre-committed; a new in-progress file
 * follows). When checkpoint n completes, pending files up to n are renamed
 * DIR/part-<s>-<n>.<ext> (committed). At the end of the input everything is committed.
 * A job restored from checkpoint n finds the directory set back to n by the plan
 * (config/plan.c, sink_cleanup: files after n are rolled back, hidden, not deleted, so a
 * savepoint after n can still be restored). Renames are atomic, so a reader of DIR sees
 * whole files. */

static void pending_name(const sink_state *s, uint64_t id, char *out, size_t n)
{
	snprintf(out, n, "%s/.part-%u-%llu.pending", s->c->path, s->subtask, (unsigned long long)id);
}

static void committed_name(const sink_state *s, uint64_t id, char *out, size_t n)
{
	snprintf(out, n, "%s/part-%u-%llu.%s", s->c->path, s->subtask, (unsigned long long)id, ext(s));
}

/* parse_own: a file of this subtask: kind 'p' pending / 'c' committed with its id. */
static bool parse_own(const sink_state *s, const char *name, char *kind, uint64_t *id)
{
	char pre[64];
	int n = snprintf(pre, sizeof(pre), ".part-%u-", s->subtask);
	*kind = 'p';
	if (strncmp(name, pre, (size_t)n) != 0) {
		n = snprintf(pre, sizeof(pre), "part-%u-", s->subtask);
		*kind = 'c';
		if (strncmp(name, pre, (size_t)n) != 0)
			return false;
	}
	char *end;
	unsigned long long v = strtoull(name + n, &end, 10);
	if (end == name + n)
		return false;
	*id = v;
	if (*kind == 'p')
		return strcmp(end, ".pending") == 0;
	return end[0] == '.' && strcmp(end + 1, ext(s)) == 0;
}

/* commit_upto renames this subtask's pending files up to id (all: UINT64_MAX) into
 * place. */
static eddy_err commit_upto(task *t, sink_state *s, uint64_t id)
{
	DIR *d = opendir(s->c->path);
	if (d == NULL)
		return task_fail(t, "%s: %s", s->c->path, strerror(errno));
	eddy_err err = EDDY_OK;
	for (struct dirent *e; (e = readdir(d)) != NULL && err == EDDY_OK;) {
		char kind, from[4352], to[4352];
		uint64_t m;
		if (!parse_own(s, e->d_name, &kind, &m))
			continue;
		if (m > id || kind != 'p')
			continue;
		snprintf(from, sizeof(from), "%s/%s", s->c->path, e->d_name);
		committed_name(s, m, to, sizeof(to));
		if (rename(from, to) != 0)
			err = task_fail(t, "%s: cannot commit: %s", from, strerror(errno));
	}
	closedir(d);
	return err;
}

static eddy_err write_all(task *t, sink_state *s);

/* open_file opens s->path for appending, writing the header if it is new or empty. */
static eddy_err open_file(task *t, sink_state *s, bool truncate)
{
	s->fd = open(s->path, O_WRONLY | O_CREAT | (truncate ? O_TRUNC : O_APPEND) | O_CLOEXEC, 0644);
	if (s->fd < 0)
		return task_fail(t, "%s: cannot open: %s", s->path, strerror(errno));
	struct stat st;
	if (fstat(s->fd, &st) == 0 && st.st_size > 0) {
		s->rows = 1; /* a restart appends to rows the failed incarnation wrote (a count
		              * above 0 is what matters: the file is pre-committed, not dropped) */
		return EDDY_OK; /* the header is there */
	}
	return fmt_write_header((fmt_kind)s->c->format, s->c->schema, &s->buf);
}

/* precommit closes the in-progress file as checkpoint id's pending file. */
static eddy_err precommit(task *t, sink_state *s, uint64_t id)
{
	eddy_err err = write_all(t, s);
	if (err != EDDY_OK)
		return err;
	if (s->fd >= 0 && close(s->fd) != 0)
		return task_fail(t, "%s: close: %s", s->path, strerror(errno));
	s->fd = -1;
	char to[4352];
	if (s->rows > 0) {
		pending_name(s, id, to, sizeof(to));
		if (rename(s->path, to) != 0)
			return task_fail(t, "%s: cannot pre-commit: %s", s->path, strerror(errno));
	} else {
		unlink(s->path); /* nothing since the last barrier: no file */
	}
	s->rows = 0;
	return EDDY_OK;
}

/* At a barrier: pre-commit (the snapshot itself is nil: the files are the state). */
static eddy_err sink_snapshot(task *t, void *state, uint64_t id, msgpack_packer *pk)
{
	sink_state *s = state;
	msgpack_pack_nil(pk);
	if (!s->txn || s->fd < 0)
		return EDDY_OK;
	eddy_err err = precommit(t, s, id);
	return err ? err : open_file(t, s, true);
}

static eddy_err sink_checkpoint_done(task *t, void *state, uint64_t id)
{
	sink_state *s = state;
	return s->txn ? commit_upto(t, s, id) : EDDY_OK;
}

static eddy_err open_common(task *t, void **state, bool print)
{
	sink_state *s = rt_calloc(1, sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	*state = s;
	s->c = task_node_of(t)->conf;
	s->print = print;
	s->fd = -1;
	s->subtask = task_subtask(t);
	if (print) {
		s->fd = STDOUT_FILENO;
		eddy_err err = fmt_write_header((fmt_kind)s->c->format, s->c->schema, &s->buf);
		return err ? err : write_all(t, s);
	}
	if (fs_mkdirs(s->c->path) != 0)
		return task_fail(t, "%s: cannot create the directory: %s", s->c->path,
		                 strerror(errno));
	s->txn = task_node_of(t)->ckpt != NULL;
	if (!s->txn) {
		snprintf(s->path, sizeof(s->path), "%s/part-%u.%s", s->c->path, s->subtask, ext(s));
		/* a restart appends to what the failed incarnation wrote (its close flushed) */
		return open_file(t, s, !task_restarted(t));
	}
	snprintf(s->path, sizeof(s->path), "%s/.part-%u.inprogress", s->c->path, s->subtask);
	/* a job restored from a checkpoint: the plan has already set the directory back to it
	 * (config/plan.c, sink_cleanup) */
	return open_file(t, s, !task_restarted(t));
}

static eddy_err file_open(task *t, void **state)
{
	return open_common(t, state, false);
}

static eddy_err print_open(task *t, void **state)
{
	return open_common(t, state, true);
}

static eddy_err sink_process(task *t, void *state, ev_batch *b, uint32_t input)
{
	(void)input;
	sink_state *s = state;
	eddy_err err = EDDY_OK;
	for (uint32_t r = 0; r < b->n && err == EDDY_OK; r++)
		err = fmt_write_row((fmt_kind)s->c->format, b, r, &s->buf);
	atomic_fetch_add_explicit(&task_stats(t)->records_out, b->n, memory_order_relaxed);
	s->rows += b->n;
	batch_free(b);
	if (err == EDDY_OK && (s->print || s->buf.len >= SINK_FLUSH_BYTES))
		err = write_all(t, s);
	return err;
}

static eddy_err sink_end(task *t, void *state, bool final)
{
	(void)final;
	sink_state *s = state;
	if (s->txn) { /* the end of the input: everything is committed */
		uint64_t last = task_last_checkpoint(t) + 1;
		eddy_err err = precommit(t, s, last);
		return err ? err : commit_upto(t, s, UINT64_MAX);
	}
	eddy_err err = write_all(t, s);
	if (err == EDDY_OK && !s->print) {
		if (close(s->fd) != 0)
			err = task_fail(t, "%s: close: %s", s->path, strerror(errno));
		s->fd = -1;
	}
	return err;
}

static void sink_close(task *t, void *state)
{
	(void)t;
	sink_state *s = state;
	if (s == NULL)
		return;
	if (!s->print && s->fd >= 0) {
		/* closed before its end (a failure, a stop): the rows it took are written, best
		 * effort, so that a restart goes on after them and a stop loses none */
		for (size_t off = 0; off < s->buf.len;) {
			ssize_t n = write(s->fd, s->buf.p + off, s->buf.len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		close(s->fd);
	}
	fmt_buf_free(&s->buf);
	rt_free(s);
}

const op_def file_sink_op = {
	.type = "file-sink",
	.snapshot = sink_snapshot,
	.checkpoint_done = sink_checkpoint_done,
	.restartable = true,
	.io = true,
	.open = file_open,
	.process = sink_process,
	.end = sink_end,
	.close = sink_close,
};

const op_def print_sink_op = {
	.type = "print",
	.restartable = true,
	.io = true,
	.open = print_open,
	.process = sink_process,
	.end = sink_end,
	.close = sink_close,
};
