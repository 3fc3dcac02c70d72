/* The example job: reader (calling thread) -> parser actor -> counter actor, supervised. */
#include "flights_count.h"

#include "../actors/supervisor.h"
#include "../runtime/alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { MSG_LINES = MSG_USER + 1, MSG_ROWS, MSG_END };

#define CHUNK_BYTES (64 * 1024)
#define MAX_ROWS 4096

/* A chunk of whole lines read from the file: the reader's batch. */
typedef struct lines_batch {
	long first_line; /* file line number of the first line */
	size_t len;
	char text[];
} lines_batch;

typedef struct row {
	char origin[8];
	long long delay;
} row;

/* Parsed rows: the parser's batch. */
typedef struct rows_batch {
	size_t n;
	row rows[MAX_ROWS];
} rows_batch;

typedef struct origin_count {
	char origin[8];
	long long flights, total_delay;
} origin_count;

typedef struct job {
	const char *path;
	actor *counter;
	origin_count *result; /* set by the counter at the end */
	size_t nresult;
	_Atomic int done;
} job;

static void drop_ptr(rt_msg *m)
{
	rt_free(m->ptr);
}

/* ---- parser ---- */

typedef struct parser_state {
	job *job;
	rows_batch *out;
} parser_state;

static eddy_err parser_init(actor *self, void *state, void *arg)
{
	(void)self;
	parser_state *p = state;
	p->job = arg;
	return EDDY_OK;
}

static eddy_err flush_rows(actor *self, parser_state *p)
{
	if (p->out == NULL || p->out->n == 0)
		return EDDY_OK;
	rt_msg m = { .kind = MSG_ROWS, .ptr = p->out, .drop = drop_ptr };
	p->out = NULL;
	eddy_err err = actor_send(self, p->job->counter, &m);
	return err == EDDY_ESTOPPED ? EDDY_OK : err;
}

/* parse_line parses one data line into r; returns NULL or what is wrong. */
static const char *parse_line(char *line, row *r)
{
	char *f[5];
	int n = 0;
	for (char *s = line; s != NULL; n++) {
		if (n == 5)
			return "expected 5 fields";
		f[n] = s;
		char *c = strchr(s, ',');
		if (c)
			*c++ = '\0';
		s = c;
	}
	if (n != 5)
		return "expected 5 fields";
	char *end;
	errno = 0;
	r->delay = strtoll(f[1], &end, 10);
	if (errno || end == f[1] || *end != '\0')
		return "delay is not an integer";
	size_t ol = strlen(f[3]);
	if (ol == 0 || ol >= sizeof(r->origin))
		return "origin is empty or longer than 7 characters";
	memcpy(r->origin, f[3], ol + 1);
	return NULL;
}

static eddy_err parser_receive(actor *self, void *state, rt_msg *m)
{
	parser_state *p = state;
	if (m->kind == MSG_END) {
		eddy_err err = flush_rows(self, p);
		rt_msg end = { .kind = MSG_END };
		return err ? err : actor_send(self, p->job->counter, &end);
	}
	if (m->kind != MSG_LINES)
		return EDDY_EINVAL;
	lines_batch *b = m->ptr;
	long line_no = b->first_line;
	char *s = b->text, *limit = b->text + b->len;
	eddy_err err = EDDY_OK;
	while (s < limit && err == EDDY_OK) {
		char *nl = memchr(s, '\n', (size_t)(limit - s));
		char *e = nl ? nl : limit;
		*e = '\0';
		if (e > s && e[-1] == '\r')
			e[-1] = '\0';
		if (p->out == NULL) {
			if ((p->out = rt_malloc(sizeof(rows_batch))) == NULL) {
				err = EDDY_ENOMEM;
				break;
			}
			p->out->n = 0;
		}
		row *r = &p->out->rows[p->out->n];
		const char *why = parse_line(s, r);
		if (why) {
			char msg[256];
			snprintf(msg, sizeof(msg), "%s:%ld: %s", p->job->path, line_no, why);
			actor_fail(self, msg);
			err = EDDY_EINVAL;
			break;
		}
		if (++p->out->n == MAX_ROWS)
			err = flush_rows(self, p);
		line_no++;
		s = e + 1;
	}
	rt_free(b);
	if (err == EDDY_OK)
		err = flush_rows(self, p);
	return err;
}

static void parser_fini(actor *self, void *state)
{
	(void)self;
	parser_state *p = state;
	rt_free(p->out);
}

static const actor_ops parser_ops = {
	.type = "parser", .state_size = sizeof(parser_state),
	.init = parser_init, .receive = parser_receive, .fini = parser_fini,
};

/* ---- counter ---- */

typedef struct counter_state {
	job *job;
	origin_count *slots; /* open addressing, cap slots */
	size_t cap, n;
} counter_state;

static eddy_err counter_init(actor *self, void *state, void *arg)
{
	(void)self;
	counter_state *c = state;
	c->job = arg;
	c->cap = 1024;
	c->slots = rt_calloc(c->cap, sizeof(*c->slots));
	return c->slots ? EDDY_OK : EDDY_ENOMEM;
}

static origin_count *counter_slot(counter_state *c, const char *origin)
{
	uint32_t h = 2166136261u;
	for (const char *s = origin; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	size_t i = h & (c->cap - 1);
	while (c->slots[i].origin[0] && strcmp(c->slots[i].origin, origin) != 0)
		i = (i + 1) & (c->cap - 1);
	return &c->slots[i];
}

static int cmp_origin(const void *a, const void *b)
{
	return strcmp(((const origin_count *)a)->origin, ((const origin_count *)b)->origin);
}

static eddy_err counter_receive(actor *self, void *state, rt_msg *m)
{
	counter_state *c = state;
	if (m->kind == MSG_ROWS) {
		rows_batch *b = m->ptr;
		for (size_t i = 0; i < b->n; i++) {
			origin_count *oc = counter_slot(c, b->rows[i].origin);
			if (oc->origin[0] == '\0') {
				if (c->n * 2 >= c->cap) {
					rt_free(b);
					actor_fail(self, "more origins than the example's table holds (512)");
					return EDDY_EFAILED;
				}
				memcpy(oc->origin, b->rows[i].origin, sizeof(oc->origin));
				c->n++;
			}
			oc->flights++;
			if (__builtin_add_overflow(oc->total_delay, b->rows[i].delay, &oc->total_delay)) {
				char why[96];
				snprintf(why, sizeof(why), "total delay of %s overflows 64 bits",
				         oc->origin);
				rt_free(b);
				actor_fail(self, why);
				return EDDY_EFAILED;
			}
		}
		rt_free(b);
		return EDDY_OK;
	}
	if (m->kind == MSG_END) {
		size_t k = 0;
		for (size_t i = 0; i < c->cap; i++)
			if (c->slots[i].origin[0])
				c->slots[k++] = c->slots[i];
		qsort(c->slots, k, sizeof(*c->slots), cmp_origin);
		c->job->result = c->slots; /* handed to the job */
		c->job->nresult = k;
		c->slots = NULL;
		atomic_store(&c->job->done, 1);
		actor_exit(self);
		return EDDY_OK;
	}
	return EDDY_EINVAL;
}

static void counter_fini(actor *self, void *state)
{
	(void)self;
	counter_state *c = state;
	rt_free(c->slots);
}

static const actor_ops counter_ops = {
	.type = "counter", .state_size = sizeof(counter_state),
	.init = counter_init, .receive = counter_receive, .fini = counter_fini,
};

/* ---- the job ---- */

static int fail_job(asys *sys, FILE *err, const char *what)
{
	char why[512];
	asys_failure(sys, why, sizeof(why));
	fprintf(err, "eddy: %s%s%s\n", what, why[0] ? ": " : "", why);
	return 1;
}

int flights_count(const char *path, unsigned workers, FILE *out, FILE *err)
{
	gzFile in = gzopen(path, "rb");
	if (in == NULL) {
		fprintf(err, "eddy: %s: cannot open: %s\n", path, strerror(errno));
		return 1;
	}
	job j = { .path = path };
	asys_opts o = { .workers = workers };
	asys *sys;
	if (asys_create(&o, &sys) != EDDY_OK) {
		gzclose(in);
		fprintf(err, "eddy: cannot start the actor system\n");
		return 1;
	}
	/* Started in order counter, parser (so the downstream exists first); a failure stops
	 * the job: intensity 0, since no snapshot can restore a counter's state yet. */
	sup_child_spec children[] = {
		{ .actor = { .path = "flights-count/counter[0]", .ops = &counter_ops, .arg = &j },
		  .restart = CHILD_TRANSIENT },
		{ .actor = { .path = "flights-count/parser[0]", .ops = &parser_ops, .arg = &j },
		  .restart = CHILD_TRANSIENT },
	};
	sup_spec spec;
	sup_spec_defaults(&spec);
	spec.strategy = SUP_ONE_FOR_ALL;
	spec.intensity = 0;
	spec.children = children;
	spec.nchildren = 2;
	int rc = 0;
	actor *parser = NULL;
	if (sup_spawn(sys, "flights-count/sup", &spec, NULL, NULL) != EDDY_OK) {
		rc = fail_job(sys, err, "cannot start the job");
		goto done;
	}
	/* The children are started by the supervisor; wait until both exist and run. */
	for (int tries = 0; tries < 10000; tries++) {
		j.counter = asys_find(sys, children[0].actor.path);
		parser = asys_find(sys, children[1].actor.path);
		if (j.counter && parser && actor_get_status(parser) == ACTOR_RUNNING)
			break;
		if (asys_wait(sys, 1) == EDDY_EFAILED)
			break;
	}
	if (parser == NULL || j.counter == NULL) {
		rc = fail_job(sys, err, "the job did not start");
		goto done;
	}
	/* Read whole lines in chunks; skip the header. */
	char line[4096];
	long line_no = 1;
	if (gzgets(in, line, sizeof(line)) == NULL) {
		fprintf(err, "eddy: %s: empty file\n", path);
		rc = 1;
		goto done;
	}
	lines_batch *b = NULL;
	for (;;) {
		char *got = gzgets(in, line, sizeof(line));
		size_t n = got ? strlen(line) : 0;
		if (got && n == sizeof(line) - 1 && line[n - 1] != '\n') {
			fprintf(err, "eddy: %s:%ld: line longer than %zu bytes\n", path, line_no + 1,
			        sizeof(line) - 2);
			rc = 1;
			break;
		}
		if (got && (n == 0 || line[n - 1] != '\n') && !gzeof(in)) {
			fprintf(err, "eddy: %s:%ld: line contains a NUL byte\n", path, line_no + 1);
			rc = 1;
			break;
		}
		if (b && (got == NULL || b->len + n > CHUNK_BYTES)) {
			rt_msg m = { .kind = MSG_LINES, .ptr = b, .drop = drop_ptr };
			eddy_err e;
			while ((e = actor_send_wait(parser, &m, 100)) == EDDY_ETIMEDOUT)
				if (asys_wait(sys, 0) == EDDY_EFAILED)
					break;
			if (e != EDDY_OK) {
				rt_free(b);
				b = NULL;
				rc = fail_job(sys, err, "the job failed");
				break;
			}
			b = NULL;
		}
		if (got == NULL)
			break;
		line_no++;
		if (b == NULL) {
			b = rt_malloc(sizeof(*b) + CHUNK_BYTES + 1);
			if (b == NULL) {
				fprintf(err, "eddy: out of memory\n");
				rc = 1;
				break;
			}
			b->first_line = line_no;
			b->len = 0;
		}
		memcpy(b->text + b->len, line, n);
		b->len += n;
	}
	rt_free(b);
	int zerr = Z_OK;
	const char *zmsg = gzerror(in, &zerr);
	if (rc == 0 && (!gzeof(in) || (zerr != Z_OK && zerr != Z_STREAM_END))) {
		fprintf(err, "eddy: %s: read error after line %ld: %s\n", path, line_no, zmsg);
		rc = 1;
	}
	if (rc == 0) {
		rt_msg end = { .kind = MSG_END };
		if (actor_send_wait(parser, &end, -1) != EDDY_OK) {
			rc = fail_job(sys, err, "the job failed");
		} else {
			while (!atomic_load(&j.done))
				if (asys_wait(sys, 5) == EDDY_EFAILED) {
					rc = fail_job(sys, err, "the job failed");
					break;
				}
		}
	}
	if (rc == 0) {
		fprintf(out, "origin,flights,total_delay\n");
		for (size_t i = 0; i < j.nresult; i++)
			fprintf(out, "%s,%lld,%lld\n", j.result[i].origin, j.result[i].flights,
			        j.result[i].total_delay);
	}
done:
	asys_shutdown(sys, 1000);
	asys_destroy(sys);
	rt_free(j.result);
	gzclose(in);
	return rc;
}
