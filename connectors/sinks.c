/*
 * File and print sinks (operators/ops.h). Both run on the I/O pool (their writes block).
 * A file sink subtask writes DIR/part-<subtask>.csv (a header first) or .jsonl, in
 * buffers of 256 KiB, and closes the file at the end of its input; the print sink
 * writes the same lines to stdout, one whole buffer at a time. Both are restartable: a
 * file sink's failed subtask flushes what it took when it closes, and its restart
 * appends to the part file.
 */
#include "../operators/ops.h"
#include "format.h"

#include "../runtime/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SINK_FLUSH_BYTES (256 * 1024)

typedef struct sink_state {
	const sink_conf *c;
	int fd;
	char path[4096];
	fmt_buf buf;
	bool print;
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

/* mkdirs creates dir and its parents (mode 0755); 0 or -1 with errno. */
static int mkdirs(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof(p))
		return errno = ENAMETOOLONG, -1;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char keep = p[i];
		p[i] = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -1;
		p[i] = keep;
	}
	return 0;
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
	if (print) {
		s->fd = STDOUT_FILENO;
	} else {
		if (mkdirs(s->c->path) != 0)
			return task_fail(t, "%s: cannot create the directory: %s", s->c->path,
			                 strerror(errno));
		snprintf(s->path, sizeof(s->path), "%s/part-%u.%s", s->c->path, task_subtask(t),
		         s->c->format == FMT_CSV ? "csv" : "jsonl");
		/* a restart appends to what the failed incarnation wrote (its close flushed) */
		int mode = task_restarted(t) ? O_APPEND : O_TRUNC;
		s->fd = open(s->path, O_WRONLY | O_CREAT | mode | O_CLOEXEC, 0644);
		if (s->fd < 0)
			return task_fail(t, "%s: cannot open: %s", s->path, strerror(errno));
		if (task_restarted(t))
			return EDDY_OK; /* the header is there */
	}
	eddy_err err = fmt_write_header((fmt_kind)s->c->format, s->c->schema, &s->buf);
	if (err == EDDY_OK && print)
		err = write_all(t, s);
	return err;
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
	batch_free(b);
	if (err == EDDY_OK && (s->print || s->buf.len >= SINK_FLUSH_BYTES))
		err = write_all(t, s);
	return err;
}

static eddy_err sink_end(task *t, void *state, bool final)
{
	(void)final;
	sink_state *s = state;
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
