/* The plan builder (config/plan.h). */
#include "plan.h"

#include "../connectors/format.h"
#include "../runtime/alloc.h"
#include "../runtime/fs.h"

#include <eddy/operator.h>
#include <eddy/state.h>
#include <dlfcn.h>
#include <stdio.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include "../runtime/mp.h"
#include <zlib.h>
#include <dirent.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum role { ROLE_SOURCE, ROLE_OP, ROLE_SINK } role;

typedef struct pnode {
	role role;
	const char *id;
	const cfg_node *cfg;
	const op_def *op;
	uint32_t parallelism;
	/* inputs: stream indexes */
	int *inputs;
	const cfg_node **input_nodes;
	uint32_t ninputs;
	expr **keys;           /* keyed consumers */
	uint32_t nkeys;
	expr **const *in_keys; /* [ninputs] each input's keys (a join's left_key and
	                          right_key), or NULL: `keys` for every input */
	int visit;             /* 0 new, 1 in progress, 2 done */
	ev_schema *schemas;    /* [nports] output schemas (owned) */
	uint32_t nports;
	void *conf;
	task_node tn;
	char *state_id;        /* "JOB/OP" (keyed-state operators) */
	task_arg *args;
	uint32_t topo;         /* topological position */
} pnode;

typedef struct pstream {
	char *name;
	int node;              /* producer */
	uint32_t port;
	const cfg_node *where; /* where it is declared */
} pstream;

struct plan {
	const cfg_node *root;
	const char *name;
	const char *file;
	uint32_t parallelism, max_parallelism;
	bool processing_time;
	pnode *nodes;
	uint32_t nnodes;
	pstream *streams;
	uint32_t nstreams;
	uint32_t *order;       /* topological order of nodes */
	uint32_t norder;
	job_stats stats;
	sup_child_spec *children;
	sup_spec sup;
	uint32_t ntasks;
	char **paths;          /* every task path (owned) */
	ev_schema dead_schema;
	char job_path[160];
	plan_control control;
	bool checkpointing;
	ckpt_conf ckpt;
	char ckpt_dir[300];
	ckpt_log ckpt_log;
	ckpt_arg ckpt_arg;
	char coord_path[200];
	uint64_t restored;           /* the checkpoint restored from, 0: none */
	task_restore *restores;      /* [ntasks] */
	const struct msgpack_object **op_lists; /* [ntasks][max_ops] rescaled tasks' snapshots */
	uint32_t max_ops;
	struct old_snap *old;        /* the checkpoint's snapshots (they point into these) */
	uint32_t nold;
	const char **state_lists;    /* [ntasks][max_ops] keyed-state files per task */
	/* keyed state: the `state:` section and the backend (opened by plan_start) */
	ev_state_backend_opts sopts;
	char state_dir[320];         /* LevelDB's working directory */
	bool state_dir_tmp;          /* made by us under $TMPDIR: removed at the end */
	ev_state_backend *backend;
	/* failover regions (with checkpoints): the connected parts of the task graph, each
	 * under its own one_for_all supervisor "JOB/region[r]" */
	task_region *regions;
	uint32_t nregions;
	sup_spec *region_sups;
	sup_child_spec *region_children; /* the tasks, grouped by region */
	char **region_paths;
	task_region **task_regions;      /* [ntasks] in wire's order */
	ckpt_gate gate;
	FILE *report;                    /* region restarts are told here (or NULL) */
};

void plan_set_report(plan *p, FILE *f)
{
	p->report = f;
	p->ckpt_arg.report = f;
}

job_stats *plan_stats(plan *p)
{
	return &p->stats;
}
uint32_t plan_tasks(const plan *p)
{
	return p->ntasks;
}
const char *plan_name(const plan *p)
{
	return p->name;
}

static const char *const root_keys[] = { "job",       "parallelism", "max_parallelism",
	                                 "time",      "sources",     "operators",
	                                 "sinks",     "supervision", "control",
	                                 "checkpoint", "state", NULL };

/* ---- supervision and control ---- */

static const char *const supervision_keys[] = { "strategy", "intensity", "period", "backoff",
	                                        NULL };
static const char *const backoff_keys[] = { "initial", "multiplier", "max", NULL };
static const char *const control_keys[] = { "address", "secret_file", "metrics", NULL };
static const char *const state_keys[] = { "backend", "dir", "block_cache", "write_buffer",
	                                  NULL };
static const char *const checkpoint_keys[] = {"interval",      "mode",        "dir",
                                              "retain",        "timeout",     "min_pause",
                                              "max_alignment", "incremental", NULL};

/* opt: a keyed accessor's result where the key may be absent. */
static eddy_err opt(eddy_err e)
{
	return e == EDDY_ENOENT ? EDDY_OK : e;
}

/* parse_supervision reads `supervision:` into p->sup (defaults: sup_spec_defaults). */
static eddy_err parse_supervision(plan *p, cfg_error *err)
{
	sup_spec_defaults(&p->sup);
	const cfg_node *m = cfg_get(p->root, "supervision");
	if (m == NULL)
		return EDDY_OK;
	eddy_err e = cfg_check_keys(m, supervision_keys, "supervision", err);
	static const char *const strategies[] = { "one_for_one", "one_for_all", "rest_for_one",
		                                  NULL };
	int st = 0;
	int64_t intensity = p->sup.intensity;
	if (e == EDDY_OK && (e = opt(cfg_enum(m, "strategy", false, strategies, &st, err))) ==
	                        EDDY_OK)
		p->sup.strategy = st == 0 ? SUP_ONE_FOR_ONE
		                          : st == 1 ? SUP_ONE_FOR_ALL : SUP_REST_FOR_ONE;
	if (e == EDDY_OK)
		e = opt(cfg_int(m, "intensity", false, 0, 1000000, &intensity, err));
	p->sup.intensity = (uint32_t)intensity;
	if (e == EDDY_OK)
		e = opt(cfg_duration_ms(m, "period", false, &p->sup.period_ms, err));
	if (e == EDDY_OK && p->sup.period_ms <= 0)
		e = cfg_errorf(err, cfg_get(m, "period"), "'period' must be more than 0");
	const cfg_node *b = cfg_get(m, "backoff");
	if (e == EDDY_OK && b)
		e = cfg_check_keys(b, backoff_keys, "supervision.backoff", err);
	if (e == EDDY_OK && b)
		e = opt(cfg_duration_ms(b, "initial", false, &p->sup.backoff_initial_ms, err));
	if (e == EDDY_OK && b)
		e = opt(cfg_duration_ms(b, "max", false, &p->sup.backoff_max_ms, err));
	const cfg_node *mul = b ? cfg_get(b, "multiplier") : NULL;
	if (e == EDDY_OK && mul) {
		char *end = NULL;
		double v = mul->kind == CFG_SCALAR && mul->str ? strtod(mul->str, &end) : 0;
		if (end == NULL || end == mul->str || *end != '\0' || !(v >= 1.0 && v <= 1000.0))
			e = cfg_errorf(err, mul, "'multiplier' must be a number from 1 to 1000");
		else
			p->sup.backoff_multiplier = v;
	}
	return e;
}

/* parse_control reads `control:` (the same as eddy run's --control, --secret-file,
 * --metrics). */
static eddy_err parse_control(plan *p, cfg_error *err)
{
	const cfg_node *m = cfg_get(p->root, "control");
	if (m == NULL)
		return EDDY_OK;
	eddy_err e = cfg_check_keys(m, control_keys, "control", err);
	if (e == EDDY_OK)
		e = opt(cfg_str(m, "address", false, &p->control.address, err));
	if (e == EDDY_OK)
		e = opt(cfg_str(m, "secret_file", false, &p->control.secret_file, err));
	if (e == EDDY_OK)
		e = opt(cfg_str(m, "metrics", false, &p->control.metrics, err));
	return e;
}

/* parse_checkpoint reads `checkpoint:` (absent: no checkpoints). */
static eddy_err parse_checkpoint(plan *p, cfg_error *err)
{
	const cfg_node *m = cfg_get(p->root, "checkpoint");
	if (m == NULL)
		return EDDY_OK;
	ckpt_conf *c = &p->ckpt;
	*c = (ckpt_conf){.interval_ms = 1000,
	                 .mode = CKPT_EXACTLY_ONCE,
	                 .retain = 3,
	                 .timeout_ms = 60000,
	                 .min_pause_ms = 0,
	                 .max_alignment_bytes = (int64_t)256 << 20,
	                 .incremental = true};
	eddy_err e = cfg_check_keys(m, checkpoint_keys, "checkpoint", err);
	static const char *const modes[] = { "exactly_once", "at_least_once", NULL };
	int mode = 0;
	int64_t retain = 3;
	if (e == EDDY_OK)
		e = opt(cfg_duration_ms(m, "interval", false, &c->interval_ms, err));
	if (e == EDDY_OK && c->interval_ms < 10)
		e = cfg_errorf(err, cfg_get(m, "interval"), "'interval' must be at least 10ms");
	if (e == EDDY_OK)
		e = opt(cfg_enum(m, "mode", false, modes, &mode, err));
	c->mode = mode == 0 ? CKPT_EXACTLY_ONCE : CKPT_AT_LEAST_ONCE;
	if (e == EDDY_OK)
		e = opt(cfg_int(m, "retain", false, 1, 1000, &retain, err));
	c->retain = (uint32_t)retain;
	if (e == EDDY_OK)
		e = opt(cfg_duration_ms(m, "timeout", false, &c->timeout_ms, err));
	if (e == EDDY_OK && c->timeout_ms < 10)
		e = cfg_errorf(err, cfg_get(m, "timeout"), "'timeout' must be at least 10ms");
	if (e == EDDY_OK)
		e = opt(cfg_duration_ms(m, "min_pause", false, &c->min_pause_ms, err));
	if (e == EDDY_OK)
		e = opt(cfg_size_bytes(m, "max_alignment", false, &c->max_alignment_bytes, err));
	if (e == EDDY_OK && c->max_alignment_bytes < 1)
		e = cfg_errorf(err, cfg_get(m, "max_alignment"),
		               "'max_alignment' must be at least 1B");
	if (e == EDDY_OK)
		e = opt(cfg_bool(m, "incremental", false, &c->incremental, err));
	if (e == EDDY_OK)
		e = opt(cfg_str(m, "dir", false, &c->dir, err));
	if (e == EDDY_OK && c->dir && c->dir[0] == '\0')
		e = cfg_errorf(err, cfg_get(m, "dir"), "'dir' must not be empty");
	if (e == EDDY_OK && c->dir == NULL) {
		snprintf(p->ckpt_dir, sizeof(p->ckpt_dir), "checkpoints/%s", p->name);
		c->dir = p->ckpt_dir;
	}
	p->checkpointing = e == EDDY_OK;
	return e;
}

/* parse_state reads `state:` (absent: the memory backend). */
static eddy_err parse_state(plan *p, cfg_error *err)
{
	p->sopts = (ev_state_backend_opts){ .kind = EV_STATE_MEMORY };
	const cfg_node *m = cfg_get(p->root, "state");
	if (m == NULL)
		return EDDY_OK;
	eddy_err e = cfg_check_keys(m, state_keys, "state", err);
	static const char *const kinds[] = { "memory", "leveldb", NULL };
	int kind = 0;
	const char *dir = NULL;
	int64_t cache = 0, wbuf = 0;
	if (e == EDDY_OK)
		e = opt(cfg_enum(m, "backend", false, kinds, &kind, err));
	if (e == EDDY_OK)
		e = opt(cfg_str(m, "dir", false, &dir, err));
	if (e == EDDY_OK && dir && (dir[0] == '\0' || strlen(dir) >= sizeof(p->state_dir)))
		e = cfg_errorf(err, cfg_get(m, "dir"), "'dir' must be a path of 1 to %zu bytes",
		               sizeof(p->state_dir) - 1);
	if (e == EDDY_OK)
		e = opt(cfg_size_bytes(m, "block_cache", false, &cache, err));
	if (e == EDDY_OK)
		e = opt(cfg_size_bytes(m, "write_buffer", false, &wbuf, err));
	if (e == EDDY_OK && kind == 0 && (dir || cache || wbuf))
		e = cfg_errorf(err, m, "'dir', 'block_cache' and 'write_buffer' are options of "
		               "backend: leveldb");
	if (e != EDDY_OK)
		return e;
	p->sopts.kind = kind == 1 ? EV_STATE_LEVELDB : EV_STATE_MEMORY;
	p->sopts.block_cache_bytes = (size_t)cache;
	p->sopts.write_buffer_bytes = (size_t)wbuf;
	if (dir)
		snprintf(p->state_dir, sizeof(p->state_dir), "%s", dir);
	return EDDY_OK;
}

/* open_state makes the job's keyed-state backend, if an operator keeps keyed state and it
 * is not open yet. LevelDB works in state.dir, or in a directory of its own under $TMPDIR
 * (removed when the plan is freed). */
static eddy_err open_state(plan *p)
{
	bool keyed = false;
	for (uint32_t i = 0; i < p->nnodes; i++)
		keyed |= p->nodes[i].op->keyed_state;
	if (!keyed || p->backend != NULL)
		return EDDY_OK;
	if (p->sopts.kind == EV_STATE_LEVELDB && p->state_dir[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		snprintf(p->state_dir, sizeof(p->state_dir), "%s/eddy-%s-%ld.leveldb",
		         tmp && *tmp ? tmp : "/tmp", p->name, (long)getpid());
		p->state_dir_tmp = true;
	}
	p->sopts.dir = p->state_dir[0] ? p->state_dir : NULL;
	char why[512];
	eddy_err e = ev_state_backend_create(&p->sopts, &p->backend, why, sizeof(why));
	if (e != EDDY_OK)
		fprintf(stderr, "eddy run: job %s: state backend: %s\n", p->name, why);
	return e;
}

const ckpt_conf *plan_checkpoint_conf(const plan *p)
{
	return p->checkpointing ? &p->ckpt : NULL;
}

ckpt_log *plan_checkpoint_log(plan *p)
{
	return p->checkpointing ? &p->ckpt_log : NULL;
}

const char *plan_task_path(const plan *p, uint32_t i)
{
	return p->paths && i < p->ntasks ? p->paths[i] : NULL;
}

const char *plan_coordinator_path(const plan *p)
{
	return p->coord_path;
}

const plan_control *plan_control_conf(const plan *p)
{
	return &p->control;
}

/* ---- small helpers ---- */

static int find_stream(const plan *p, const char *name)
{
	for (uint32_t i = 0; i < p->nstreams; i++)
		if (strcmp(p->streams[i].name, name) == 0)
			return (int)i;
	return -1;
}

static eddy_err add_stream(plan *p, const char *name, int node, uint32_t port,
                           const cfg_node *where, cfg_error *err)
{
	int prev = find_stream(p, name);
	if (prev >= 0) {
		const cfg_node *w = p->streams[prev].where;
		return cfg_errorf(err, where, "the id '%s' is taken (first at %d:%d)", name,
		                  w ? w->line : 0, w ? w->col : 0);
	}
	pstream *s = rt_realloc(p->streams, (p->nstreams + 1) * sizeof(*s));
	if (s == NULL)
		return EDDY_ENOMEM;
	p->streams = s;
	char *copy = rt_strdup(name);
	if (copy == NULL)
		return EDDY_ENOMEM;
	s[p->nstreams++] = (pstream){ .name = copy, .node = node, .port = port, .where = where };
	return EDDY_OK;
}

/* expr_at compiles text found at node n, turning an expression error into a located
 * config error: FILE:LINE:COL where COL points into the expression when it is on one
 * line. */
static eddy_err expr_at(const cfg_node *n, const char *text, int offset, const char *what,
                        const ev_schema *in, expr **out, cfg_error *err)
{
	expr_error ee;
	memset(&ee, 0, sizeof(ee));
	eddy_err e = expr_compile(text, in, out, &ee);
	if (e == EDDY_ENOMEM)
		return e;
	if (e != EDDY_OK) {
		cfg_node at = *n;
		if (at.line > 0)
			at.col = n->col + (n->quoted ? 1 : 0) + offset + (ee.col > 0 ? ee.col - 1 : 0);
		return cfg_errorf(err, &at, "%s: %s", what, ee.msg);
	}
	return EDDY_OK;
}

static eddy_err need_scalar(const cfg_node *n, const char *what, cfg_error *err)
{
	if (n == NULL || n->kind != CFG_SCALAR)
		return cfg_errorf(err, n, "%s must be a scalar, got %s", what,
		                  n ? cfg_kind_name(n->kind) : "nothing");
	return EDDY_OK;
}

static eddy_err parallelism_of(plan *p, const cfg_node *m, uint32_t dflt, uint32_t *out,
                               cfg_error *err)
{
	int64_t v = dflt;
	eddy_err e = cfg_int(m, "parallelism", false, 1, p->max_parallelism, &v, err);
	if (e != EDDY_OK && e != EDDY_ENOENT)
		return e;
	*out = (uint32_t)v;
	return EDDY_OK;
}

/* ---- sources ---- */

static const char *const file_source_keys[] = { "id", "connector", "path", "format", "header",
	                                        "on_error", "schema", "watermark",
	                                        "parallelism", "batch_size", NULL };
static const char *const datagen_keys[] = { "id", "connector", "rows_per_second", "count",
	                                    "seed", "fields", "watermark", "parallelism", NULL };
static const char *const watermark_keys[] = { "event_time", "max_out_of_orderness",
	                                      "idle_timeout", NULL };
static const char *const nexmark_keys[] = {"id",
                                           "connector",
                                           "events",
                                           "rate",
                                           "seed",
                                           "kind",
                                           "tps",
                                           "out_of_order_group_size",
                                           "delayed_fraction",
                                           "max_delay",
                                           "watermark",
                                           "parallelism",
                                           NULL};
static const char *const source_connectors[] = {"file", "datagen", "nexmark", NULL};

static eddy_err source_time_of(plan *p, pnode *n, const ev_schema *schema, source_time *tm,
                               cfg_error *err)
{
	tm->time_field = -1;
	tm->wm_interval_ms = 200;
	const cfg_node *wm = cfg_get(n->cfg, "watermark");
	if (p->processing_time) {
		if (wm)
			return cfg_errorf(err, wm,
			                  "watermark is for event time; this job runs in processing "
			                  "time (time: processing)");
		return EDDY_OK;
	}
	if (wm == NULL)
		return cfg_errorf(err, n->cfg,
		                  "source '%s' needs a watermark with event_time (or set time: "
		                  "processing for the job)",
		                  n->id);
	eddy_err e = cfg_check_keys(wm, watermark_keys, "watermark", err);
	const char *field = NULL;
	if (e == EDDY_OK)
		e = cfg_str(wm, "event_time", true, &field, err);
	if (e != EDDY_OK)
		return e;
	int f = schema_find(schema, field);
	if (f < 0) {
		const char *names[EV_MAX_FIELDS + 1];
		for (uint32_t i = 0; i < schema->n; i++)
			names[i] = schema->fields[i].name;
		names[schema->n] = NULL;
		const char *near = cfg_nearest(field, names);
		return cfg_errorf(err, cfg_get(wm, "event_time"),
		                  "event_time: unknown field '%s'%s%s%s", field,
		                  near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
	}
	if (schema->fields[f].type != EV_TIMESTAMP && schema->fields[f].type != EV_INT)
		return cfg_errorf(err, cfg_get(wm, "event_time"),
		                  "event_time: field '%s' is %s; it must be a timestamp (or int "
		                  "epoch ms)",
		                  field, ev_type_name(schema->fields[f].type));
	tm->time_field = f;
	e = cfg_duration_ms(wm, "max_out_of_orderness", false, &tm->max_ooo_ms, err);
	if (e == EDDY_OK || e == EDDY_ENOENT)
		e = cfg_duration_ms(wm, "idle_timeout", false, &tm->idle_timeout_ms, err);
	return e == EDDY_ENOENT ? EDDY_OK : e;
}

static eddy_err schema_of(const cfg_node *m, ev_schema *s, cfg_error *err)
{
	const cfg_node *sc = cfg_get(m, "schema");
	if (sc == NULL)
		return cfg_errorf(err, m, "a file source needs a schema (field: type, in file order)");
	if (sc->kind != CFG_MAP || sc->n == 0)
		return cfg_errorf(err, sc, "schema must be a map of field: type, got %s",
		                  sc->kind == CFG_MAP ? "an empty map" : cfg_kind_name(sc->kind));
	static const char *const types[] = { "int", "float", "bool", "string", "timestamp", NULL };
	for (size_t i = 0; i < sc->n; i++) {
		int t;
		eddy_err e = cfg_node_enum(sc->items[i], sc->keys[i], types, &t, err);
		if (e != EDDY_OK)
			return e;
		e = schema_add(s, sc->keys[i], (ev_type)(t + 1));
		if (e == EDDY_EFULL)
			return cfg_errorf(err, sc->key_nodes[i], "a schema has at most %d fields",
			                  EV_MAX_FIELDS);
		if (e != EDDY_OK)
			return e;
	}
	return EDDY_OK;
}

static eddy_err build_file_source(plan *p, pnode *n, cfg_error *err)
{
	file_source_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &file_source_op;
	eddy_err e = cfg_check_keys(n->cfg, file_source_keys, "a file source", err);
	if (e == EDDY_OK)
		e = cfg_str(n->cfg, "path", true, &c->path, err);
	if (e != EDDY_OK)
		return e;
	static const char *const formats[] = { "csv", "jsonl", NULL };
	static const char *const policies[] = { "fail", "skip", "dead_letter", NULL };
	int fmt = 0, pol = 0;
	c->header = true;
	if ((e = cfg_enum(n->cfg, "format", false, formats, &fmt, err)) > EDDY_OK &&
	    e != EDDY_ENOENT)
		return e;
	if ((e = cfg_enum(n->cfg, "on_error", false, policies, &pol, err)) != EDDY_OK &&
	    e != EDDY_ENOENT)
		return e;
	if ((e = cfg_bool(n->cfg, "header", false, &c->header, err)) != EDDY_OK &&
	    e != EDDY_ENOENT)
		return e;
	c->format = fmt == 0 ? FMT_CSV : FMT_JSONL;
	if (c->format == FMT_JSONL)
		c->header = false;
	int64_t bs = TASK_BATCH;
	if ((e = cfg_int(n->cfg, "batch_size", false, 1, 65536, &bs, err)) != EDDY_OK &&
	    e != EDDY_ENOENT)
		return e;
	c->batch_size = (uint32_t)bs;
	c->on_error = (on_error)pol;
	n->nports = 2;
	if ((n->schemas = rt_calloc(2, sizeof(ev_schema))) == NULL)
		return EDDY_ENOMEM;
	if ((e = schema_of(n->cfg, &n->schemas[0], err)) != EDDY_OK)
		return e;
	if ((e = schema_copy(&n->schemas[1], &p->dead_schema)) != EDDY_OK)
		return e;
	c->schema = &n->schemas[0];
	c->dead_schema = &n->schemas[1];
	return source_time_of(p, n, c->schema, &c->time, err);
}

static const char *const gen_field_keys[] = { "kind", "type", "start", "end", "min", "max",
	                                      "values", "length", "step", NULL };

static eddy_err build_datagen(plan *p, pnode *n, cfg_error *err)
{
	datagen_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &datagen_op;
	eddy_err e = cfg_check_keys(n->cfg, datagen_keys, "a datagen source", err);
	if (e != EDDY_OK)
		return e;
	int64_t seed = 0;
	if (((e = cfg_int(n->cfg, "rows_per_second", false, 0, INT64_MAX / 1000,
	                  &c->rows_per_second, err)) != EDDY_OK && e != EDDY_ENOENT) ||
	    ((e = cfg_int(n->cfg, "count", false, 0, INT64_MAX / 2, &c->count, err)) !=
	             EDDY_OK &&
	     e != EDDY_ENOENT) ||
	    ((e = cfg_int(n->cfg, "seed", false, 0, INT64_MAX, &seed, err)) != EDDY_OK &&
	     e != EDDY_ENOENT))
		return e;
	c->seed = (uint64_t)seed;
	const cfg_node *fs = cfg_get(n->cfg, "fields");
	if (fs == NULL || fs->kind != CFG_MAP || fs->n == 0)
		return cfg_errorf(err, fs ? fs : n->cfg,
		                  "a datagen source needs fields: a map of name: {kind: ...}");
	n->nports = 1;
	if ((n->schemas = rt_calloc(1, sizeof(ev_schema))) == NULL ||
	    (c->fields = rt_calloc(fs->n, sizeof(gen_field))) == NULL)
		return EDDY_ENOMEM;
	static const char *const kinds[] = { "sequence", "random", "timestamp", NULL };
	static const char *const types[] = { "int", "float", "bool", "string", "timestamp", NULL };
	for (size_t i = 0; i < fs->n; i++) {
		const cfg_node *f = fs->items[i];
		gen_field *g = &c->fields[i];
		int kind = 0, type = 0;
		if ((e = cfg_check_keys(f, gen_field_keys, "a datagen field", err)) != EDDY_OK ||
		    (e = cfg_enum(f, "kind", true, kinds, &kind, err)) != EDDY_OK)
			return e;
		g->kind = kind == 0 ? GEN_SEQUENCE : kind == 1 ? GEN_RANDOM : GEN_EVENT_TIME;
		if (g->kind == GEN_EVENT_TIME) {
			type = 4;
			const char *start = NULL;
			g->min = 0;
			g->max = 1000;
			if ((e = cfg_str(f, "start", false, &start, err)) == EDDY_OK &&
			    !ev_ts_parse(start, strlen(start), &g->min))
				return cfg_errorf(err, cfg_get(f, "start"),
				                  "start must be a timestamp like 2024-01-01 00:00:00");
			if (e != EDDY_OK && e != EDDY_ENOENT)
				return e;
			if ((e = cfg_duration_ms(f, "step", false, &g->max, err)) != EDDY_OK &&
			    e != EDDY_ENOENT)
				return e;
		} else {
			if ((e = cfg_enum(f, "type", false, types, &type, err)) != EDDY_OK &&
			    e != EDDY_ENOENT)
				return e;
			g->min = g->kind == GEN_SEQUENCE ? 1 : 0;
			g->max = g->kind == GEN_RANDOM ? 100 : INT64_MAX / 2;
			const char *lo = g->kind == GEN_SEQUENCE ? "start" : "min";
			const char *hi = g->kind == GEN_SEQUENCE ? "end" : "max";
			if ((e = cfg_int(f, lo, false, INT64_MIN / 4, INT64_MAX / 4, &g->min, err)) !=
			            EDDY_OK &&
			    e != EDDY_ENOENT)
				return e;
			if ((e = cfg_int(f, hi, false, INT64_MIN / 4, INT64_MAX / 4, &g->max, err)) !=
			            EDDY_OK &&
			    e != EDDY_ENOENT)
				return e;
			if (type == 3) {
				int64_t len = 8;
				if ((e = cfg_int(f, "length", false, 0, 64, &len, err)) != EDDY_OK &&
				    e != EDDY_ENOENT)
					return e;
				if (g->kind == GEN_RANDOM)
					g->min = g->max = len;
				const cfg_node *vs = cfg_get(f, "values");
				if (vs && (vs->kind != CFG_SEQ || vs->n == 0))
					return cfg_errorf(err, vs, "values must be a non-empty list");
				if (vs) {
					g->values = rt_calloc(vs->n, sizeof(char *));
					if (g->values == NULL)
						return EDDY_ENOMEM;
					for (size_t k = 0; k < vs->n; k++) {
						if ((e = need_scalar(vs->items[k], "a value", err)) != EDDY_OK)
							return e;
						g->values[k] = vs->items[k]->str; /* borrowed from the tree */
						g->nvalues++;
					}
				}
			}
			if (g->kind == GEN_RANDOM && type != 3 && g->max < g->min)
				return cfg_errorf(err, f, "max must not be below min");
		}
		if ((e = schema_add(&n->schemas[0], fs->keys[i], (ev_type)(type + 1))) != EDDY_OK)
			return e == EDDY_EFULL ? cfg_errorf(err, f, "too many fields") : e;
	}
	c->schema = &n->schemas[0];
	return source_time_of(p, n, c->schema, &c->time, err);
}

/* nexmark_fields: the columns of one Nexmark event kind, in the CSV contract's order,
 * with an optional name prefix ("person_"). */
static eddy_err nexmark_fields(ev_schema *s, int kind, const char *prefix)
{
	static const char *const person[] = {
	    "id", "name", "emailAddress", "creditCard", "city", "state", "dateTime", "extra", NULL};
	static const ev_type person_t[] = {EV_INT,    EV_STRING, EV_STRING,    EV_STRING,
	                                   EV_STRING, EV_STRING, EV_TIMESTAMP, EV_STRING};
	static const char *const auction[] = {"id",       "itemName", "description", "initialBid",
	                                      "reserve",  "dateTime", "expires",     "seller",
	                                      "category", "extra",    NULL};
	static const ev_type auction_t[] = {EV_INT, EV_STRING,    EV_STRING,    EV_INT,
	                                    EV_INT, EV_TIMESTAMP, EV_TIMESTAMP, EV_INT,
	                                    EV_INT, EV_STRING};
	static const char *const bid[] = {"auction", "bidder",   "price", "channel",
	                                  "url",     "dateTime", "extra", NULL};
	static const ev_type bid_t[] = {EV_INT,    EV_INT,       EV_INT,   EV_STRING,
	                                EV_STRING, EV_TIMESTAMP, EV_STRING};
	const char *const *names = kind == NEXMARK_PERSON    ? person
	                           : kind == NEXMARK_AUCTION ? auction
	                                                     : bid;
	const ev_type *types = kind == NEXMARK_PERSON    ? person_t
	                       : kind == NEXMARK_AUCTION ? auction_t
	                                                 : bid_t;
	for (int i = 0; names[i] != NULL; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s%s", prefix, names[i]);
		eddy_err e = schema_add(s, name, types[i]);
		if (e != EDDY_OK)
			return e;
	}
	return EDDY_OK;
}

/* build_nexmark: `connector: nexmark` (connectors/nexmark.c). */
static eddy_err build_nexmark(plan *p, pnode *n, cfg_error *err)
{
	nexmark_source_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &nexmark_source_op;
	eddy_err e = cfg_check_keys(n->cfg, nexmark_keys, "a nexmark source", err);
	if (e != EDDY_OK)
		return e;
	nexmark_conf_init(&c->gen, 0);
	int64_t events = 0, seed = 0;
	static const char *const kinds[] = {"person", "auction", "bid", "all", NULL};
	int kind = NEXMARK_BID;
	if ((e = opt(cfg_int(n->cfg, "events", false, 0, INT64_MAX / 2, &events, err))) ||
	    (e = opt(cfg_int(n->cfg, "rate", false, 0, INT64_MAX / 1000, &c->rate, err))) ||
	    (e = opt(cfg_int(n->cfg, "seed", false, 0, INT64_MAX, &seed, err))) ||
	    (e = opt(cfg_enum(n->cfg, "kind", false, kinds, &kind, err))) ||
	    (e = opt(cfg_int(n->cfg, "tps", false, 1, 1000000000, &c->gen.tps, err))) ||
	    (e = opt(cfg_int(n->cfg, "out_of_order_group_size", false, 1, 1000000000,
	                     &c->gen.ooo_group_size, err))) ||
	    (e = opt(cfg_duration_ms(n->cfg, "max_delay", false, &c->gen.max_delay_ms, err))))
		return e;
	const cfg_node *df = cfg_get(n->cfg, "delayed_fraction");
	if (df != NULL &&
	    (df->kind != CFG_SCALAR || !native_parse_float(df, &c->gen.delayed_fraction) ||
	     !(c->gen.delayed_fraction >= 0 && c->gen.delayed_fraction <= 1)))
		return cfg_errorf(err, df, "'delayed_fraction' must be a number from 0 to 1");
	c->gen.seed = (uint64_t)seed;
	c->gen.events = (uint64_t)events;
	c->kind = kind;
	const char *why = nexmark_conf_check(&c->gen);
	if (why != NULL) {
		const char *at = strncmp(why, "tps", 3) == 0             ? "tps"
		                 : strncmp(why, "out_of_order", 12) == 0 ? "out_of_order_group_size"
		                 : strncmp(why, "max_delay", 9) == 0     ? "max_delay"
		                 : strncmp(why, "the events' times", 17) == 0 ? "events"
		                                                              : NULL;
		const cfg_node *where = at ? cfg_get(n->cfg, at) : NULL;
		return cfg_errorf(err, where ? where : n->cfg, "%s", why);
	}
	n->nports = 1;
	if ((n->schemas = rt_calloc(1, sizeof(ev_schema))) == NULL)
		return EDDY_ENOMEM;
	ev_schema *s = &n->schemas[0];
	if (kind == NEXMARK_ALL) {
		if ((e = schema_add(s, "event_type", EV_INT)) != EDDY_OK ||
		    (e = schema_add(s, "dateTime", EV_TIMESTAMP)) != EDDY_OK ||
		    (e = nexmark_fields(s, NEXMARK_PERSON, "person_")) != EDDY_OK ||
		    (e = nexmark_fields(s, NEXMARK_AUCTION, "auction_")) != EDDY_OK ||
		    (e = nexmark_fields(s, NEXMARK_BID, "bid_")) != EDDY_OK)
			return e;
	} else if ((e = nexmark_fields(s, kind, "")) != EDDY_OK) {
		return e;
	}
	c->schema = s;
	return source_time_of(p, n, c->schema, &c->time, err);
}

/* ---- inputs and the topological walk ---- */

/* input_stream finds the stream an input names (the scalar s) in *si. */
static eddy_err input_stream(plan *p, const cfg_node *s, int *si, cfg_error *err)
{
	if ((*si = find_stream(p, s->str)) >= 0)
		return EDDY_OK;
	const char **names = rt_calloc(p->nstreams + 1, sizeof(char *));
	if (names == NULL)
		return EDDY_ENOMEM;
	for (uint32_t j = 0; j < p->nstreams; j++)
		names[j] = p->streams[j].name;
	const char *near = cfg_nearest(s->str, names);
	eddy_err e = cfg_errorf(err, s, "input '%s' names no source, operator or side output%s%s%s",
	                        s->str, near ? " (did you mean '" : "", near ? near : "",
	                        near ? "'?)" : "");
	rt_free(names);
	return e;
}

static bool is_join(const pnode *n);
static eddy_err read_join_inputs(plan *p, pnode *n, cfg_error *err);

static eddy_err read_inputs(plan *p, pnode *n, cfg_error *err)
{
	if (is_join(n))
		return read_join_inputs(p, n, err);
	const cfg_node *in = cfg_get(n->cfg, "input");
	if (in == NULL)
		return cfg_errorf(err, n->cfg, "'%s' is missing required key 'input'", n->id);
	size_t k = in->kind == CFG_SEQ ? in->n : 1;
	if (in->kind == CFG_MAP || k == 0)
		return cfg_errorf(err, in, "input must be a stream id or a list of ids");
	n->inputs = rt_calloc(k, sizeof(int));
	n->input_nodes = rt_calloc(k, sizeof(cfg_node *));
	if (n->inputs == NULL || n->input_nodes == NULL)
		return EDDY_ENOMEM;
	for (size_t i = 0; i < k; i++) {
		const cfg_node *s = in->kind == CFG_SEQ ? in->items[i] : in;
		eddy_err e = need_scalar(s, "an input", err);
		if (e != EDDY_OK)
			return e;
		int si;
		if ((e = input_stream(p, s, &si, err)) != EDDY_OK)
			return e;
		n->inputs[i] = si;
		n->input_nodes[i] = s;
	}
	n->ninputs = (uint32_t)k;
	return EDDY_OK;
}

static const ev_schema *stream_schema(const plan *p, int s)
{
	const pstream *st = &p->streams[s];
	return &p->nodes[st->node].schemas[st->port];
}

static eddy_err build_node(plan *p, uint32_t i, cfg_error *err);

/* visit builds the producers of node i first (depth first), finding cycles. */
static eddy_err visit(plan *p, uint32_t i, cfg_error *err)
{
	pnode *n = &p->nodes[i];
	if (n->visit == 2)
		return EDDY_OK;
	if (n->visit == 1)
		return cfg_errorf(err, cfg_get(n->cfg, "input"),
		                  "the graph has a cycle through '%s': an operator cannot consume "
		                  "its own output",
		                  n->id);
	n->visit = 1;
	for (uint32_t k = 0; k < n->ninputs; k++) {
		eddy_err e = visit(p, (uint32_t)p->streams[n->inputs[k]].node, err);
		if (e != EDDY_OK)
			return e;
	}
	eddy_err e = build_node(p, i, err);
	if (e != EDDY_OK)
		return e;
	n->visit = 2;
	n->topo = p->norder;
	p->order[p->norder++] = i;
	return EDDY_OK;
}

/* ---- operators ---- */

static const char *const op_types[] = { "filter", "map",   "window", "union",
	                                "native", "top_n", "split",  "join", NULL };
static const char *const filter_keys[] = { "id", "type", "input", "where", "parallelism", NULL };
static const char *const map_keys[] = { "id", "type", "input", "select", "parallelism", NULL };
static const char *const union_keys[] = { "id", "type", "input", "parallelism", NULL };
static const char *const window_keys[] = { "id", "type", "input", "key_by", "window",
	                                   "aggregates", "allowed_lateness", "late_output",
	                                   "parallelism", NULL };
static const char *const native_keys[] = { "id", "type", "input", "library", "symbol",
	                                   "key_by", "params", "output", "side_outputs",
	                                   "parallelism", NULL };
static const char *const sink_keys_file[] = { "id", "connector", "input", "path", "format",
	                                      "parallelism", NULL };
static const char *const sink_keys_print[] = { "id", "connector", "input", "format",
	                                       "parallelism", NULL };

static eddy_err one_input_schema(plan *p, pnode *n, const ev_schema **out, cfg_error *err)
{
	const ev_schema *s0 = stream_schema(p, n->inputs[0]);
	for (uint32_t k = 1; k < n->ninputs; k++) {
		const ev_schema *sk = stream_schema(p, n->inputs[k]);
		bool same = sk->n == s0->n;
		for (uint32_t f = 0; same && f < s0->n; f++)
			same = sk->fields[f].type == s0->fields[f].type &&
			       strcmp(sk->fields[f].name, s0->fields[f].name) == 0;
		if (!same)
			return cfg_errorf(err, n->input_nodes[k],
			                  "input '%s' has another schema than '%s'; the inputs of '%s' "
			                  "must have the same fields",
			                  n->input_nodes[k]->str, n->input_nodes[0]->str, n->id);
	}
	*out = s0;
	return EDDY_OK;
}

static eddy_err ports(pnode *n, uint32_t k)
{
	n->nports = k;
	n->schemas = rt_calloc(k, sizeof(ev_schema));
	return n->schemas ? EDDY_OK : EDDY_ENOMEM;
}

static eddy_err build_filter(plan *p, pnode *n, const ev_schema *in, cfg_error *err)
{
	(void)p;
	filter_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &filter_op;
	const cfg_node *w = cfg_get(n->cfg, "where");
	eddy_err e = cfg_check_keys(n->cfg, filter_keys, "a filter", err);
	if (e == EDDY_OK && w == NULL)
		e = cfg_errorf(err, n->cfg, "a filter is missing required key 'where'");
	if (e == EDDY_OK)
		e = need_scalar(w, "where", err);
	if (e == EDDY_OK)
		e = expr_at(w, w->str, 0, "where", in, &c->where, err);
	if (e != EDDY_OK)
		return e;
	ev_type t = expr_type(c->where);
	if (t != EV_BOOL)
		return cfg_errorf(err, w, "where: the condition must be bool, got %s", ev_type_name(t));
	if ((e = ports(n, 1)) != EDDY_OK)
		return e;
	return schema_copy(&n->schemas[0], in);
}

static eddy_err build_map(plan *p, pnode *n, const ev_schema *in, cfg_error *err)
{
	(void)p;
	map_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &map_op;
	eddy_err e = cfg_check_keys(n->cfg, map_keys, "a map", err);
	const cfg_node *sel = cfg_get(n->cfg, "select");
	if (e == EDDY_OK && (sel == NULL || sel->kind != CFG_MAP || sel->n == 0))
		e = cfg_errorf(err, sel ? sel : n->cfg,
		               "a map needs select: a map of name: expression");
	if (e == EDDY_OK)
		e = ports(n, 1);
	if (e == EDDY_OK && (c->exprs = rt_calloc(sel->n, sizeof(expr *))) == NULL)
		e = EDDY_ENOMEM;
	for (size_t i = 0; e == EDDY_OK && i < sel->n; i++) {
		const cfg_node *x = sel->items[i];
		if ((e = need_scalar(x, sel->keys[i], err)) != EDDY_OK)
			break;
		if ((e = expr_at(x, x->str, 0, sel->keys[i], in, &c->exprs[i], err)) != EDDY_OK)
			break;
		c->n++;
		ev_type t = expr_type(c->exprs[i]);
		if (t == EV_NULL)
			e = cfg_errorf(err, x, "%s: the type of a bare null cannot be known; use "
			                       "e.g. if(false, 0, null)",
			               sel->keys[i]);
		else if ((e = schema_add(&n->schemas[0], sel->keys[i], t)) == EDDY_EFULL)
			e = cfg_errorf(err, x, "a map has at most %d fields", EV_MAX_FIELDS);
	}
	c->out = &n->schemas[0];
	return e;
}

static eddy_err build_keys(plan *p, pnode *n, const ev_schema *in, cfg_error *err)
{
	(void)p;
	const cfg_node *kb = cfg_get(n->cfg, "key_by");
	if (kb == NULL)
		return EDDY_OK;
	size_t k = kb->kind == CFG_SEQ ? kb->n : 1;
	if (kb->kind == CFG_MAP)
		return cfg_errorf(err, kb, "key_by must be a field, an expression or a list of them");
	if ((n->keys = rt_calloc(k ? k : 1, sizeof(expr *))) == NULL)
		return EDDY_ENOMEM;
	for (size_t i = 0; i < k; i++) {
		const cfg_node *x = kb->kind == CFG_SEQ ? kb->items[i] : kb;
		eddy_err e = need_scalar(x, "a key", err);
		if (e == EDDY_OK)
			e = expr_at(x, x->str, 0, "key_by", in, &n->keys[i], err);
		if (e != EDDY_OK)
			return e;
		n->nkeys++;
		if (expr_type(n->keys[i]) == EV_NULL)
			return cfg_errorf(err, x, "key_by: a key cannot be the null literal");
	}
	return EDDY_OK;
}

static eddy_err build_aggregate(const cfg_node *x, const char *name, const ev_schema *in,
                                agg_spec *g, cfg_error *err)
{
	static const char *const fns[] = { "count", "sum", "min", "max", "avg", "first", "last",
		                           NULL };
	eddy_err e = need_scalar(x, name, err);
	if (e != EDDY_OK)
		return e;
	const char *s = x->str;
	size_t len = strlen(s);
	const char *open = strchr(s, '(');
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (open == NULL || len == 0 || s[len - 1] != ')')
		return cfg_errorf(err, x,
		                  "%s: expected an aggregate like count(), sum(x), avg(x), min(x), "
		                  "max(x), first(x) or last(x), got '%s'",
		                  name, s);
	char fn[32];
	size_t fl = (size_t)(open - s);
	while (fl > 0 && isspace((unsigned char)s[fl - 1]))
		fl--;
	size_t lead = 0;
	while (lead < fl && isspace((unsigned char)s[lead]))
		lead++;
	if (fl - lead >= sizeof(fn))
		fl = lead + sizeof(fn) - 1;
	for (size_t i = lead; i < fl; i++)
		fn[i - lead] = (char)tolower((unsigned char)s[i]);
	fn[fl - lead] = '\0';
	int f = -1;
	for (int i = 0; fns[i]; i++)
		if (strcmp(fns[i], fn) == 0)
			f = i;
	if (f < 0) {
		const char *near = cfg_nearest(fn, fns);
		return cfg_errorf(err, x, "%s: unknown aggregate '%s'%s%s%s (known: count, sum, min, "
		                          "max, avg, first, last)",
		                  name, fn, near ? " (did you mean '" : "", near ? near : "",
		                  near ? "'?)" : "");
	}
	g->fn = (agg_fn)f;
	size_t alen = len - 1 - (size_t)(open + 1 - s);
	char *arg = rt_malloc(alen + 1);
	if (arg == NULL)
		return EDDY_ENOMEM;
	memcpy(arg, open + 1, alen);
	arg[alen] = '\0';
	bool empty = true;
	for (size_t i = 0; i < alen; i++)
		if (!isspace((unsigned char)arg[i]))
			empty = false;
	if (empty) {
		rt_free(arg);
		if (g->fn != AGG_COUNT)
			return cfg_errorf(err, x, "%s: %s() needs an argument", name, fn);
		return EDDY_OK;
	}
	e = expr_at(x, arg, (int)(open + 1 - s), name, in, &g->arg, err);
	rt_free(arg);
	if (e != EDDY_OK)
		return e;
	g->type = expr_type(g->arg);
	bool numeric = g->type == EV_INT || g->type == EV_FLOAT;
	if ((g->fn == AGG_SUM || g->fn == AGG_AVG) && !numeric)
		return cfg_errorf(err, x, "%s: %s() needs an int or float argument, got %s", name, fn,
		                  ev_type_name(g->type));
	if ((g->fn == AGG_MIN || g->fn == AGG_MAX) && g->type == EV_BOOL)
		return cfg_errorf(err, x, "%s: %s() of a bool is not supported", name, fn);
	if (g->type == EV_NULL && g->fn != AGG_COUNT)
		return cfg_errorf(err, x, "%s: the argument's type cannot be known (a bare null)",
		                  name);
	return EDDY_OK;
}

static eddy_err build_window(plan *p, pnode *n, const ev_schema *in, cfg_error *err)
{
	window_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &window_op;
	eddy_err e = cfg_check_keys(n->cfg, window_keys, "a window", err);
	if (e == EDDY_OK)
		e = build_keys(p, n, in, err);
	if (e != EDDY_OK)
		return e;
	c->keys = n->keys;
	c->nkeys = n->nkeys;
	const cfg_node *w = cfg_get(n->cfg, "window");
	if (w == NULL)
		return cfg_errorf(err, n->cfg, "a window operator is missing required key 'window'");
	static const char *const kinds[] = {"tumbling", "sliding", "session",
	                                    "count",    "global",  NULL};
	static const char *const tumbling_keys[] = { "type", "size", NULL };
	static const char *const global_keys[] = {"type", NULL};
	static const char *const sliding_keys[] = { "type", "size", "slide", NULL };
	static const char *const session_keys[] = { "type", "gap", NULL };
	int kind;
	if ((e = cfg_enum(w, "type", true, kinds, &kind, err)) != EDDY_OK)
		return e;
	c->kind = (win_kind)kind;
	switch (c->kind) {
	case WIN_TUMBLING:
		if ((e = cfg_check_keys(w, tumbling_keys, "a tumbling window", err)) == EDDY_OK)
			e = cfg_duration_ms(w, "size", true, &c->size_ms, err);
		if (e == EDDY_OK && c->size_ms <= 0)
			e = cfg_errorf(err, cfg_get(w, "size"), "size must be more than 0");
		break;
	case WIN_SLIDING:
		if ((e = cfg_check_keys(w, sliding_keys, "a sliding window", err)) == EDDY_OK &&
		    (e = cfg_duration_ms(w, "size", true, &c->size_ms, err)) == EDDY_OK)
			e = cfg_duration_ms(w, "slide", true, &c->slide_ms, err);
		if (e == EDDY_OK && (c->slide_ms <= 0 || c->size_ms <= 0))
			e = cfg_errorf(err, w, "size and slide must be more than 0");
		else if (e == EDDY_OK && c->size_ms / c->slide_ms > 10000)
			e = cfg_errorf(err, w, "size / slide is over 10000 windows per record");
		break;
	case WIN_SESSION:
		if ((e = cfg_check_keys(w, session_keys, "a session window", err)) == EDDY_OK)
			e = cfg_duration_ms(w, "gap", true, &c->gap_ms, err);
		if (e == EDDY_OK && c->gap_ms <= 0)
			e = cfg_errorf(err, cfg_get(w, "gap"), "gap must be more than 0");
		break;
	case WIN_COUNT:
		if ((e = cfg_check_keys(w, tumbling_keys, "a count window", err)) == EDDY_OK)
			e = cfg_int(w, "size", true, 1, INT64_MAX, &c->count, err);
		break;
	case WIN_GLOBAL: e = cfg_check_keys(w, global_keys, "a global window", err); break;
	}
	if (e != EDDY_OK)
		return e;
	if ((e = cfg_duration_ms(n->cfg, "allowed_lateness", false, &c->lateness_ms, err)) !=
	            EDDY_OK &&
	    e != EDDY_ENOENT)
		return e;
	const cfg_node *aggs = cfg_get(n->cfg, "aggregates");
	if (aggs == NULL || aggs->kind != CFG_MAP || aggs->n == 0)
		return cfg_errorf(err, aggs ? aggs : n->cfg,
		                  "a window needs aggregates: a map of name: function(expression)");
	if ((c->aggs = rt_calloc(aggs->n, sizeof(agg_spec))) == NULL)
		return EDDY_ENOMEM;
	for (size_t i = 0; i < aggs->n; i++) {
		if ((e = build_aggregate(aggs->items[i], aggs->keys[i], in, &c->aggs[i], err)) !=
		    EDDY_OK)
			return e;
		c->naggs++;
	}
	const char *late = NULL;
	if ((e = cfg_str(n->cfg, "late_output", false, &late, err)) != EDDY_OK &&
	    e != EDDY_ENOENT)
		return e;
	c->has_late_output = late != NULL;
	if (c->kind == WIN_GLOBAL && (c->lateness_ms != 0 || late != NULL)) {
		const cfg_node *x = cfg_get(n->cfg, late ? "late_output" : "allowed_lateness");
		return cfg_errorf(err, x,
		                  "a global window fires at the end of the input and has "
		                  "no late records: remove %s",
		                  late ? "late_output" : "allowed_lateness");
	}
	if ((e = ports(n, 2)) != EDDY_OK)
		return e;
	ev_schema *out = &n->schemas[0];
	if ((e = schema_add(out, "window_start", EV_TIMESTAMP)) != EDDY_OK ||
	    (e = schema_add(out, "window_end", EV_TIMESTAMP)) != EDDY_OK)
		return e;
	const cfg_node *kb = cfg_get(n->cfg, "key_by");
	for (uint32_t k = 0; k < c->nkeys; k++) {
		int f = expr_field(c->keys[k]);
		const cfg_node *x = kb->kind == CFG_SEQ ? kb->items[k] : kb;
		const char *name = f >= 0 ? in->fields[f].name : x->str;
		e = schema_add(out, name, expr_type(c->keys[k]));
		if (e == EDDY_EEXIST)
			return cfg_errorf(err, x, "key_by: the output already has a column '%s'", name);
		if (e != EDDY_OK)
			return e == EDDY_EFULL ? cfg_errorf(err, x, "too many output columns (at most %d)",
			                                    EV_MAX_FIELDS)
			                       : e;
	}
	for (uint32_t a = 0; a < c->naggs; a++) {
		const agg_spec *g = &c->aggs[a];
		ev_type t = g->fn == AGG_COUNT ? EV_INT : g->fn == AGG_AVG ? EV_FLOAT : g->type;
		e = schema_add(out, aggs->keys[a], t);
		if (e == EDDY_EEXIST)
			return cfg_errorf(err, aggs->key_nodes[a],
			                  "aggregates: the output already has a column '%s'",
			                  aggs->keys[a]);
		if (e != EDDY_OK)
			return e == EDDY_EFULL ? cfg_errorf(err, aggs, "too many output columns (at most %d)",
			                                    EV_MAX_FIELDS)
			                       : e;
	}
	c->out = out;
	if ((e = schema_copy(&n->schemas[1], in)) != EDDY_OK)
		return e;
	if (c->nkeys == 0 && n->parallelism != 1) {
		if (cfg_get(n->cfg, "parallelism"))
			return cfg_errorf(err, cfg_get(n->cfg, "parallelism"),
			                  "a window without key_by runs on one subtask (parallelism 1)");
		n->parallelism = 1;
	}
	return EDDY_OK;
}

/* ---- native operators (operators/native.c, include/eddy/operator.h) ---- */

/* fields_of reads an output schema: a list of {name, type} maps (or a map of name: type,
 * as a source's schema) into s. what names it in messages. */
static eddy_err fields_of(const cfg_node *l, const char *what, ev_schema *s, cfg_error *err)
{
	static const char *const types[] = { "int", "float", "bool", "string", "timestamp", NULL };
	static const char *const field_keys[] = { "name", "type", NULL };
	bool map = l && l->kind == CFG_MAP;
	if (l == NULL || (l->kind != CFG_SEQ && !map) || l->n == 0)
		return cfg_errorf(err, l, "%s must be a non-empty list of fields like "
		                          "{name: amount, type: float}",
		                  what);
	for (size_t i = 0; i < l->n; i++) {
		const cfg_node *f = l->items[i], *at = f;
		const char *name = NULL;
		int type = 0;
		eddy_err e;
		if (map) {
			name = l->keys[i];
			at = l->key_nodes[i];
			e = cfg_node_enum(f, "the type", types, &type, err);
		} else if (f->kind != CFG_MAP) {
			e = cfg_errorf(err, f, "%s: a field must be a map like {name: amount, type: "
			                       "float}, got %s",
			               what, cfg_kind_name(f->kind));
		} else if ((e = cfg_check_keys(f, field_keys, "a field", err)) == EDDY_OK &&
		           (e = cfg_str(f, "name", true, &name, err)) == EDDY_OK) {
			e = cfg_enum(f, "type", true, types, &type, err);
			at = cfg_get(f, "name");
		}
		if (e != EDDY_OK)
			return e;
		if (name[0] == '\0')
			return cfg_errorf(err, at, "%s: a field name must not be empty", what);
		e = schema_add(s, name, (ev_type)(type + 1));
		if (e == EDDY_EEXIST)
			return cfg_errorf(err, at, "%s: the field '%s' is there twice", what, name);
		if (e == EDDY_EFULL)
			return cfg_errorf(err, at, "%s: at most %d fields", what, EV_MAX_FIELDS);
		if (e != EDDY_OK)
			return e;
	}
	return EDDY_OK;
}

/* check_params checks params against what the operator declares (if it does). */
static eddy_err check_params(const cfg_node *params, const ev_operator *def, cfg_error *err)
{
	if (params == NULL)
		return EDDY_OK;
	if (params->kind != CFG_MAP)
		return cfg_errorf(err, params, "params must be a map of name: value");
	for (size_t i = 0; i < params->n; i++)
		if (params->items[i]->kind != CFG_SCALAR)
			return cfg_errorf(err, params->items[i], "params.%s must be a scalar, got %s",
			                  params->keys[i], cfg_kind_name(params->items[i]->kind));
	if (def->params == NULL)
		return EDDY_OK;
	const char *names[65];
	uint32_t n = 0;
	while (n < 64 && def->params[n].name)
		n++;
	for (uint32_t i = 0; i < n; i++)
		names[i] = def->params[i].name;
	names[n] = NULL;
	char what[200];
	snprintf(what, sizeof(what), "the params of %s", def->name);
	eddy_err e = cfg_check_keys(params, names, what, err);
	for (uint32_t i = 0; e == EDDY_OK && i < n; i++) {
		const cfg_node *v = cfg_get(params, names[i]);
		if (v == NULL || (v->str[0] == '\0' && !v->quoted))
			continue;
		char w[300];
		snprintf(w, sizeof(w), "'params.%s'", names[i]);
		int64_t x;
		bool b;
		double d;
		switch (def->params[i].kind) {
		case EV_PARAM_INT:
			e = cfg_node_int(v, w, INT64_MIN, INT64_MAX, &x, err);
			break;
		case EV_PARAM_FLOAT:
			if (!native_parse_float(v, &d))
				e = cfg_errorf(err, v, "%s must be a number, got '%s'", w, v->str);
			break;
		case EV_PARAM_BOOL:
			e = cfg_node_bool(v, w, &b, err);
			break;
		case EV_PARAM_DURATION:
			e = cfg_node_duration_ms(v, w, &x, err);
			break;
		default:
			break;
		}
	}
	return e;
}

/* good_name: a side-output name is a non-empty id without '/', '.', '[', ']', '*', '?'
 * or spaces (its stream is "ID.NAME"). */
static bool good_name(const char *s)
{
	return s[0] != '\0' && strpbrk(s, "/[]*?. \t") == NULL;
}

/* add_side_outputs registers the streams "ID.NAME" of a native operator's side_outputs
 * (ports 1..) in the first pass, so inputs may name them. */
static eddy_err add_side_outputs(plan *p, uint32_t node, cfg_error *err)
{
	const pnode *n = &p->nodes[node];
	const cfg_node *so = cfg_get(n->cfg, "side_outputs");
	if (so == NULL || so->kind != CFG_MAP)
		return EDDY_OK; /* checked when the operator is built */
	for (size_t i = 0; i < so->n; i++) {
		if (!good_name(so->keys[i]))
			return cfg_errorf(err, so->key_nodes[i],
			                  "side output '%s': a name must be non-empty without '/', "
			                  "'.', '[', ']', '*', '?' or spaces",
			                  so->keys[i]);
		char name[512];
		snprintf(name, sizeof(name), "%s.%s", n->id, so->keys[i]);
		eddy_err e = add_stream(p, name, (int)node, (uint32_t)(1 + i), so->key_nodes[i], err);
		if (e != EDDY_OK)
			return e;
	}
	return EDDY_OK;
}

static eddy_err build_native(plan *p, pnode *n, cfg_error *err)
{
	native_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &native_op;
	eddy_err e = cfg_check_keys(n->cfg, native_keys, "a native operator", err);
	if (e == EDDY_OK)
		e = cfg_str(n->cfg, "library", true, &c->library, err);
	if (e == EDDY_OK)
		e = cfg_str(n->cfg, "symbol", true, &c->symbol, err);
	if (e == EDDY_OK)
		e = build_keys(p, n, stream_schema(p, n->inputs[0]), err);
	if (e != EDDY_OK)
		return e;
	c->keys = n->keys;
	c->nkeys = n->nkeys;
	const cfg_node *so = cfg_get(n->cfg, "side_outputs");
	if (so && so->kind != CFG_MAP)
		return cfg_errorf(err, so, "side_outputs must be a map of name: fields");
	c->nports = 1 + (so ? (uint32_t)so->n : 0);
	if ((e = ports(n, c->nports)) != EDDY_OK)
		return e;
	const cfg_node *out = cfg_get(n->cfg, "output");
	if (out == NULL)
		return cfg_errorf(err, n->cfg,
		                  "a native operator is missing required key 'output' (its fields: "
		                  "a list like {name: amount, type: float})");
	if ((e = fields_of(out, "output", &n->schemas[0], err)) != EDDY_OK)
		return e;
	if (so && (c->side_names = rt_calloc(so->n ? so->n : 1, sizeof(char *))) == NULL)
		return EDDY_ENOMEM;
	for (size_t i = 0; so && i < so->n; i++) {
		char what[300];
		snprintf(what, sizeof(what), "side output '%s'", so->keys[i]);
		if ((e = fields_of(so->items[i], what, &n->schemas[1 + i], err)) != EDDY_OK)
			return e;
		c->side_names[i] = so->keys[i];
	}
	c->params = cfg_get(n->cfg, "params");
	if (c->params && c->params->kind == CFG_SCALAR && c->params->str[0] == '\0' &&
	    !c->params->quoted)
		c->params = NULL; /* "params:" with nothing */
	/* the library: resolved now (RTLD_NOW), so a missing symbol is a config error; a
	 * name without '/' is a file in the working directory, as every path of a job */
	const cfg_node *lib = cfg_get(n->cfg, "library");
	char path[4096];
	snprintf(path, sizeof(path), "%s%s", strchr(c->library, '/') ? "" : "./", c->library);
	dlerror();
	if ((c->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		const char *why = dlerror();
		return cfg_errorf(err, lib, "cannot load the library: %s",
		                  why ? why : "dlopen failed");
	}
	const cfg_node *sym = cfg_get(n->cfg, "symbol");
	dlerror();
	const ev_operator *def = dlsym(c->dl, c->symbol);
	if (def == NULL)
		return cfg_errorf(err, sym, "the library %s has no symbol '%s'", c->library, c->symbol);
	if (def->abi != EV_OPERATOR_ABI)
		return cfg_errorf(err, sym,
		                  "'%s' in %s is not an ev_operator of ABI %u (it says %u): rebuild "
		                  "it against this eddy's include/eddy/operator.h",
		                  c->symbol, c->library, EV_OPERATOR_ABI, def->abi);
	if (def->name == NULL || def->process == NULL)
		return cfg_errorf(err, sym, "'%s' in %s has no %s", c->symbol, c->library,
		                  def->name == NULL ? "name" : "process hook");
	c->def = def;
	if ((e = check_params(c->params, def, err)) != EDDY_OK)
		return e;
	if (c->nkeys > 0)
		n->op = &native_keyed_op;
	return EDDY_OK;
}

/* ---- Window Top-N and split (operators/topn.c, operators/split.c) ---- */

static const char *const topn_keys[] = {"id",         "type",        "input",       "key_by",
                                        "order_by",   "order",       "n",           "window",
                                        "rank_field", "late_output", "parallelism", NULL};
static const char *const split_keys[] = {"id",      "type",        "input", "outputs",
                                         "default", "parallelism", NULL};

/* topn_window_of reads a top_n's `window`: {type: tumbling|sliding, size[, slide]} or
 * `input` (the input's window_start and window_end columns). */
static eddy_err topn_window_of(pnode *n, const ev_schema *in, topn_conf *c, cfg_error *err)
{
	const cfg_node *w = cfg_get(n->cfg, "window");
	if (w == NULL)
		return cfg_errorf(
		    err, n->cfg,
		    "a top_n is missing required key 'window' ({type: tumbling, size: "
		    "10s}, {type: sliding, size: 10s, slide: 2s} or input)");
	if (w->kind == CFG_SCALAR) {
		if (strcmp(w->str, "input") != 0)
			return cfg_errorf(
			    err, w,
			    "window must be input or a map like {type: tumbling, size: "
			    "10s}, got '%s'",
			    w->str);
		c->window = TOPN_INPUT;
		c->ws_field = schema_find(in, "window_start");
		c->we_field = schema_find(in, "window_end");
		const char *miss = c->ws_field < 0   ? "window_start"
		                   : c->we_field < 0 ? "window_end"
		                                     : NULL;
		if (miss)
			return cfg_errorf(
			    err, w,
			    "window: input needs the input's window_start and window_end "
			    "columns (as a window operator's output has), but the input "
			    "has no '%s'",
			    miss);
		for (int k = 0; k < 2; k++) {
			int f = k ? c->we_field : c->ws_field;
			if (in->fields[f].type != EV_TIMESTAMP)
				return cfg_errorf(
				    err, w, "window: input: the input's %s is %s, not a timestamp",
				    in->fields[f].name, ev_type_name(in->fields[f].type));
		}
		return EDDY_OK;
	}
	static const char *const kinds[] = {"tumbling", "sliding", NULL};
	static const char *const tumbling_keys[] = {"type", "size", NULL};
	static const char *const sliding_keys[] = {"type", "size", "slide", NULL};
	int kind;
	eddy_err e = cfg_enum(w, "type", true, kinds, &kind, err);
	if (e != EDDY_OK)
		return e;
	c->window = kind == 0 ? TOPN_TUMBLING : TOPN_SLIDING;
	if ((e = cfg_check_keys(w, kind == 0 ? tumbling_keys : sliding_keys,
	                        kind == 0 ? "a tumbling window" : "a sliding window", err)) ==
	        EDDY_OK &&
	    (e = cfg_duration_ms(w, "size", true, &c->size_ms, err)) == EDDY_OK && kind == 1)
		e = cfg_duration_ms(w, "slide", true, &c->slide_ms, err);
	if (e != EDDY_OK)
		return e;
	if (c->size_ms <= 0)
		return cfg_errorf(err, cfg_get(w, "size"), "size must be more than 0");
	if (kind == 1 && c->slide_ms <= 0)
		return cfg_errorf(err, cfg_get(w, "slide"), "slide must be more than 0");
	if (kind == 1 && c->size_ms / c->slide_ms > 10000)
		return cfg_errorf(err, w, "size / slide is over 10000 windows per record");
	return EDDY_OK;
}

static eddy_err build_topn(plan *p, pnode *n, const ev_schema *in, cfg_error *err)
{
	topn_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &topn_op;
	c->in = in;
	eddy_err e = cfg_check_keys(n->cfg, topn_keys, "a top_n", err);
	if (e == EDDY_OK)
		e = build_keys(p, n, in, err);
	if (e != EDDY_OK)
		return e;
	c->keys = n->keys;
	c->nkeys = n->nkeys;
	int64_t nn = 0;
	if ((e = cfg_int(n->cfg, "n", true, 1, 100000, &nn, err)) != EDDY_OK)
		return e;
	c->n = (uint32_t)nn;
	static const char *const orders[] = {"desc", "asc", NULL};
	int order;
	if ((e = cfg_enum(n->cfg, "order", true, orders, &order, err)) != EDDY_OK)
		return e;
	c->desc = order == 0;
	const cfg_node *ob = cfg_get(n->cfg, "order_by");
	if (ob == NULL)
		return cfg_errorf(err, n->cfg,
		                  "a top_n is missing required key 'order_by' (an "
		                  "expression, e.g. price)");
	if ((e = need_scalar(ob, "order_by", err)) != EDDY_OK ||
	    (e = expr_at(ob, ob->str, 0, "order_by", in, &c->order_by, err)) != EDDY_OK)
		return e;
	c->order_type = expr_type(c->order_by);
	if (c->order_type != EV_INT && c->order_type != EV_FLOAT && c->order_type != EV_TIMESTAMP &&
	    c->order_type != EV_STRING)
		return cfg_errorf(err, ob,
		                  "order_by: a %s cannot be ordered (order by an int, float, "
		                  "timestamp or string)",
		                  c->order_type == EV_NULL ? "bare null"
		                                           : ev_type_name(c->order_type));
	if ((e = topn_window_of(n, in, c, err)) != EDDY_OK)
		return e;
	const char *rank = "rank", *late = NULL;
	if ((e = cfg_str(n->cfg, "rank_field", false, &rank, err)) != EDDY_OK && e != EDDY_ENOENT)
		return e;
	if ((e = cfg_str(n->cfg, "late_output", false, &late, err)) != EDDY_OK && e != EDDY_ENOENT)
		return e;
	c->has_late_output = late != NULL;
	if ((e = ports(n, 2)) != EDDY_OK)
		return e;
	ev_schema *out = &n->schemas[0];
	if (c->window != TOPN_INPUT) {
		for (int k = 0; k < 2; k++)
			if (schema_find(in, k ? "window_end" : "window_start") >= 0)
				return cfg_errorf(
				    err, cfg_get(n->cfg, "window"),
				    "the input already has a column '%s' (the output of a "
				    "window?): use window: input",
				    k ? "window_end" : "window_start");
		if ((e = schema_add(out, "window_start", EV_TIMESTAMP)) != EDDY_OK ||
		    (e = schema_add(out, "window_end", EV_TIMESTAMP)) != EDDY_OK)
			return e;
		c->in_off = 2;
	}
	for (uint32_t f = 0; f < in->n; f++)
		if ((e = schema_add(out, in->fields[f].name, in->fields[f].type)) != EDDY_OK)
			return e == EDDY_EFULL ? cfg_errorf(err, n->cfg,
			                                    "too many output columns (at "
			                                    "most %d)",
			                                    EV_MAX_FIELDS)
			                       : e;
	const cfg_node *rf = cfg_get(n->cfg, "rank_field");
	if (rank[0] == '\0')
		return cfg_errorf(err, rf, "rank_field must not be empty");
	e = schema_add(out, rank, EV_INT);
	if (e == EDDY_EEXIST)
		return cfg_errorf(err, rf ? rf : n->cfg,
		                  "the input already has a column '%s': name the rank column with "
		                  "rank_field",
		                  rank);
	if (e != EDDY_OK)
		return e == EDDY_EFULL
		           ? cfg_errorf(err, n->cfg, "too many output columns (at most %d)",
			                EV_MAX_FIELDS)
			   : e;
	c->out = out;
	if ((e = schema_copy(&n->schemas[1], in)) != EDDY_OK)
		return e;
	if (c->nkeys == 0 && n->parallelism != 1) {
		if (cfg_get(n->cfg, "parallelism"))
			return cfg_errorf(
			    err, cfg_get(n->cfg, "parallelism"),
			    "a top_n without key_by runs on one subtask (parallelism 1)");
		n->parallelism = 1;
	}
	return EDDY_OK;
}

/* split_outputs_of: the `outputs` map of a split node, checked for shape. */
static eddy_err split_outputs_of(const pnode *n, const cfg_node **out, cfg_error *err)
{
	const cfg_node *o = cfg_get(n->cfg, "outputs");
	if (o == NULL || o->kind != CFG_MAP || o->n == 0)
		return cfg_errorf(err, o ? o : n->cfg,
		                  "a split needs outputs: a map of name: predicate, e.g. {bids: "
		                  "event_type = 2}");
	if (o->n > SPLIT_MAX_OUTPUTS)
		return cfg_errorf(err, o, "a split has at most %u outputs", SPLIT_MAX_OUTPUTS);
	*out = o;
	return EDDY_OK;
}

/* add_split_outputs registers, in the first pass, the streams of a split: "ID.NAME" for
 * each output (port 1 + i) and "ID.DEFAULT" (port 0) for `default: DEFAULT`. */
static eddy_err add_split_outputs(plan *p, uint32_t node, cfg_error *err)
{
	const pnode *n = &p->nodes[node];
	const cfg_node *type = cfg_get(n->cfg, "type"), *o = NULL;
	if (type == NULL || type->kind != CFG_SCALAR || strcmp(type->str, "split") != 0)
		return EDDY_OK;
	eddy_err e = split_outputs_of(n, &o, err);
	const char *dflt = NULL;
	if (e == EDDY_OK && (e = cfg_str(n->cfg, "default", false, &dflt, err)) == EDDY_ENOENT)
		e = EDDY_OK;
	const cfg_node *dn = cfg_get(n->cfg, "default");
	for (size_t i = 0; e == EDDY_OK && i <= o->n; i++) {
		const char *name = i < o->n ? o->keys[i] : dflt;
		const cfg_node *at = i < o->n ? o->key_nodes[i] : dn;
		if (name == NULL)
			break;
		if (!good_name(name))
			return cfg_errorf(
			    err, at,
			    "output '%s': a name must be non-empty without '/', '.', '[', "
			    "']', '*', '?' or spaces",
			    name);
		for (size_t k = 0; i == o->n && k < o->n; k++)
			if (strcmp(o->keys[k], name) == 0)
				return cfg_errorf(
				    err, at,
				    "default '%s' is also an output (at %d:%d): the default "
				    "output needs a name of its own",
				    name, o->key_nodes[k]->line, o->key_nodes[k]->col);
		char sname[512];
		snprintf(sname, sizeof(sname), "%s.%s", n->id, name);
		e = add_stream(p, sname, (int)node, i < o->n ? (uint32_t)(1 + i) : 0, at, err);
	}
	return e;
}

/* check_split_inputs: no input names a split itself (its streams are ID.NAME). */
static eddy_err check_split_inputs(const plan *p, cfg_error *err)
{
	for (uint32_t i = 0; i < p->nnodes; i++) {
		const pnode *n = &p->nodes[i];
		for (uint32_t k = 0; k < n->ninputs; k++) {
			const pstream *s = &p->streams[n->inputs[k]];
			const pnode *prod = &p->nodes[s->node];
			const cfg_node *type = cfg_get(prod->cfg, "type");
			if (prod->role != ROLE_OP || type == NULL || type->kind != CFG_SCALAR ||
			    strcmp(type->str, "split") != 0 || strcmp(s->name, prod->id) != 0)
				continue;
			return cfg_errorf(
			    err, n->input_nodes[k],
			    "input '%s' is a split: name one of its outputs, '%s.NAME'", s->name,
			    s->name);
		}
	}
	return EDDY_OK;
}

static eddy_err build_split(plan *p, pnode *n, const ev_schema *in, cfg_error *err)
{
	(void)p;
	split_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &split_op;
	const cfg_node *o;
	eddy_err e = cfg_check_keys(n->cfg, split_keys, "a split", err);
	if (e == EDDY_OK)
		e = split_outputs_of(n, &o, err);
	if (e != EDDY_OK)
		return e;
	c->has_default =
	    cfg_get(n->cfg, "default") != NULL && cfg_get(n->cfg, "default")->str[0] != '\0';
	if ((c->preds = rt_calloc(o->n, sizeof(expr *))) == NULL ||
	    (e = ports(n, 1 + (uint32_t)o->n)))
		return c->preds ? e : EDDY_ENOMEM;
	for (size_t i = 0; i < o->n; i++) {
		const cfg_node *x = o->items[i];
		char what[300];
		snprintf(what, sizeof(what), "outputs.%s", o->keys[i]);
		if ((e = need_scalar(x, what, err)) != EDDY_OK ||
		    (e = expr_at(x, x->str, 0, what, in, &c->preds[i], err)) != EDDY_OK)
			return e;
		c->n++;
		ev_type t = expr_type(c->preds[i]);
		if (t != EV_BOOL)
			return cfg_errorf(err, x, "%s: the predicate must be bool, got %s", what,
			                  ev_type_name(t));
	}
	for (uint32_t q = 0; q < n->nports; q++)
		if ((e = schema_copy(&n->schemas[q], in)) != EDDY_OK)
			return e;
	return EDDY_OK;
}

static eddy_err build_sink(plan *p, pnode *n, const ev_schema *in, cfg_error *err)
{
	(void)p;
	sink_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	c->schema = in;
	static const char *const formats[] = { "csv", "jsonl", NULL };
	int fmt = 0;
	bool print = n->op == &print_sink_op;
	eddy_err e = cfg_check_keys(n->cfg, print ? sink_keys_print : sink_keys_file,
	                            print ? "a print sink" : "a file sink", err);
	if (e == EDDY_OK && !print)
		e = cfg_str(n->cfg, "path", true, &c->path, err);
	if (e == EDDY_OK && (e = cfg_enum(n->cfg, "format", false, formats, &fmt, err)) == EDDY_ENOENT)
		e = EDDY_OK;
	c->format = fmt == 0 ? FMT_CSV : FMT_JSONL;
	return e;
}

/* ---- joins (operators/join.c) ---- */

static const char *const join_keys[] = {"id",
                                        "type",
                                        "kind",
                                        "left",
                                        "right",
                                        "left_key",
                                        "right_key",
                                        "prefix",
                                        "where",
                                        "window",
                                        "allowed_lateness",
                                        "late_output",
                                        "lower",
                                        "upper",
                                        "ttl",
                                        "parallelism",
                                        NULL};

/* is_join: an operator of type join (its inputs are `left` and `right`). */
static bool is_join(const pnode *n)
{
	const cfg_node *t = n->role == ROLE_OP ? cfg_get(n->cfg, "type") : NULL;
	return t && t->kind == CFG_SCALAR && strcmp(t->str, "join") == 0;
}

/* read_join_inputs reads a join's `left` and `right` streams as its inputs 0 and 1. */
static eddy_err read_join_inputs(plan *p, pnode *n, cfg_error *err)
{
	static const char *const sides[] = {"left", "right"};
	if (cfg_get(n->cfg, "input"))
		return cfg_errorf(err, cfg_get(n->cfg, "input"),
		                  "a join reads 'left' and 'right', not 'input'");
	n->inputs = rt_calloc(2, sizeof(int));
	n->input_nodes = rt_calloc(2, sizeof(cfg_node *));
	if (n->inputs == NULL || n->input_nodes == NULL)
		return EDDY_ENOMEM;
	for (int i = 0; i < 2; i++) {
		const cfg_node *s = cfg_get(n->cfg, sides[i]);
		if (s == NULL)
			return cfg_errorf(err, n->cfg,
			                  "a join is missing required key '%s' (a stream id)",
			                  sides[i]);
		eddy_err e = need_scalar(s, sides[i], err);
		if (e == EDDY_OK)
			e = input_stream(p, s, &n->inputs[i], err);
		if (e != EDDY_OK)
			return e;
		n->input_nodes[i] = s;
	}
	n->ninputs = 2;
	return EDDY_OK;
}

/* add_join_late_outputs registers a join's late_output streams, {left: NAME, right:
 * NAME} (ports 1 and 2), in the first pass, so inputs may name them. */
static eddy_err add_join_late_outputs(plan *p, uint32_t node, cfg_error *err)
{
	const pnode *n = &p->nodes[node];
	const cfg_node *lo = is_join(n) ? cfg_get(n->cfg, "late_output") : NULL;
	if (lo == NULL || lo->kind != CFG_MAP)
		return EDDY_OK; /* checked when the join is built */
	static const char *const sides[] = {"left", "right", NULL};
	eddy_err e = cfg_check_keys(lo, sides, "late_output", err);
	for (int i = 0; i < 2 && e == EDDY_OK; i++) {
		const cfg_node *s = cfg_get(lo, sides[i]);
		if (s && (e = need_scalar(s, sides[i], err)) == EDDY_OK && s->str[0])
			e = add_stream(p, s->str, (int)node, (uint32_t)(1 + i), s, err);
	}
	return e;
}

/* signed_duration reads key k of map m as a duration that may be negative ("-5s"). */
static eddy_err signed_duration(const cfg_node *m, const char *k, int64_t *out, cfg_error *err)
{
	const cfg_node *v = cfg_get(m, k);
	if (v == NULL)
		return cfg_errorf(err, m,
		                  "an interval join is missing required key '%s' (a "
		                  "duration such as -5s, 0s or 10m)",
		                  k);
	if (v->kind != CFG_SCALAR || v->str[0] != '-')
		return cfg_node_duration_ms(v, k, out, err);
	cfg_node pos = *v;
	pos.str = v->str + 1;
	eddy_err e = cfg_node_duration_ms(&pos, k, out, err);
	*out = -*out;
	return e;
}

/* join_keys_of compiles one side's key list (left_key or right_key) against its input. */
static eddy_err join_keys_of(const cfg_node *kl, const char *what, const ev_schema *in, expr **keys,
                             uint32_t n, cfg_error *err)
{
	for (uint32_t i = 0; i < n; i++) {
		const cfg_node *x = kl->kind == CFG_SEQ ? kl->items[i] : kl;
		eddy_err e = need_scalar(x, "a key", err);
		if (e == EDDY_OK)
			e = expr_at(x, x->str, 0, what, in, &keys[i], err);
		if (e != EDDY_OK)
			return e;
		if (expr_type(keys[i]) == EV_NULL)
			return cfg_errorf(err, x, "%s: a key cannot be the null literal", what);
	}
	return EDDY_OK;
}

/* join_window reads a window join's `window` and `allowed_lateness`. */
static eddy_err join_window(pnode *n, join_conf *c, cfg_error *err)
{
	const cfg_node *w = cfg_get(n->cfg, "window");
	if (w == NULL)
		return cfg_errorf(err, n->cfg,
		                  "a window join is missing required key 'window' "
		                  "({type: tumbling|sliding|session, ...})");
	static const char *const kinds[] = {"tumbling", "sliding", "session", NULL};
	static const char *const tumbling_keys[] = {"type", "size", NULL};
	static const char *const sliding_keys[] = {"type", "size", "slide", NULL};
	static const char *const session_keys[] = {"type", "gap", NULL};
	int kind;
	eddy_err e = cfg_enum(w, "type", true, kinds, &kind, err);
	if (e != EDDY_OK)
		return e;
	c->win = kind == 0 ? WIN_TUMBLING : kind == 1 ? WIN_SLIDING : WIN_SESSION;
	if (kind == 0 &&
	    (e = cfg_check_keys(w, tumbling_keys, "a tumbling window", err)) == EDDY_OK)
		e = cfg_duration_ms(w, "size", true, &c->size_ms, err);
	if (kind == 1 &&
	    (e = cfg_check_keys(w, sliding_keys, "a sliding window", err)) == EDDY_OK &&
	    (e = cfg_duration_ms(w, "size", true, &c->size_ms, err)) == EDDY_OK)
		e = cfg_duration_ms(w, "slide", true, &c->slide_ms, err);
	if (kind == 2 && (e = cfg_check_keys(w, session_keys, "a session window", err)) == EDDY_OK)
		e = cfg_duration_ms(w, "gap", true, &c->gap_ms, err);
	if (e != EDDY_OK)
		return e;
	if (kind < 2 && c->size_ms <= 0)
		return cfg_errorf(err, cfg_get(w, "size"), "size must be more than 0");
	if (kind == 1 && c->slide_ms <= 0)
		return cfg_errorf(err, cfg_get(w, "slide"), "slide must be more than 0");
	if (kind == 1 && c->size_ms / c->slide_ms > 10000)
		return cfg_errorf(err, w, "size / slide is over 10000 windows per record");
	if (kind == 2 && c->gap_ms <= 0)
		return cfg_errorf(err, cfg_get(w, "gap"), "gap must be more than 0");
	if ((e = opt(cfg_duration_ms(n->cfg, "allowed_lateness", false, &c->lateness_ms, err))) !=
	    EDDY_OK)
		return e;
	if (kind == 2 && c->lateness_ms > 0)
		return cfg_errorf(err, cfg_get(n->cfg, "allowed_lateness"),
		                  "a session window join has no allowed lateness (not supported)");
	return EDDY_OK;
}

/* build_join: type join (operators/join.c). Inputs 0 and 1 are `left` and `right`, each
 * hash-partitioned by its own key (in_keys); the output is the left fields, then the
 * right ones, renamed by `prefix`. */
static eddy_err build_join(plan *p, pnode *n, cfg_error *err)
{
	join_conf *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	n->conf = c;
	n->op = &join_op;
	eddy_err e = cfg_check_keys(n->cfg, join_keys, "a join", err);
	if (e != EDDY_OK)
		return e;
	static const char *const kinds[] = {"window", "interval", "regular", NULL};
	int kind;
	if ((e = cfg_enum(n->cfg, "kind", true, kinds, &kind, err)) != EDDY_OK)
		return e;
	c->kind = (join_kind)kind;
	/* options of another kind are mistakes, not silently ignored */
	static const char *const only[][2] = {{"window", "window"},
	                                      {"allowed_lateness", "window"},
	                                      {"lower", "interval"},
	                                      {"upper", "interval"},
	                                      {"ttl", "regular"}};
	for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++)
		if (cfg_get(n->cfg, only[i][0]) && strcmp(kinds[kind], only[i][1]) != 0)
			return cfg_errorf(err, cfg_get(n->cfg, only[i][0]),
			                  "'%s' is an option of a join of kind: %s, not %s",
			                  only[i][0], only[i][1], kinds[kind]);
	c->in[0] = stream_schema(p, n->inputs[0]);
	c->in[1] = stream_schema(p, n->inputs[1]);
	/* keys: the same count, pairwise the same type (so equal keys hash alike) */
	const cfg_node *kl[2] = {cfg_get(n->cfg, "left_key"), cfg_get(n->cfg, "right_key")};
	uint32_t cnt[2];
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "right_key" : "left_key";
		if (kl[i] == NULL)
			return cfg_errorf(err, n->cfg,
			                  "a join is missing required key '%s' (a field, "
			                  "an expression or a list of them)",
			                  name);
		if (kl[i]->kind == CFG_MAP || (kl[i]->kind == CFG_SEQ && kl[i]->n == 0))
			return cfg_errorf(err, kl[i],
			                  "%s must be a field, an expression or a list of them",
			                  name);
		cnt[i] = kl[i]->kind == CFG_SEQ ? (uint32_t)kl[i]->n : 1;
	}
	if (cnt[0] != cnt[1])
		return cfg_errorf(err, kl[1],
		                  "right_key has %u key%s and left_key %u: they pair up "
		                  "in order",
		                  cnt[1], cnt[1] == 1 ? "" : "s", cnt[0]);
	if ((n->keys = rt_calloc(cnt[0], sizeof(expr *))) == NULL ||
	    (c->keys[1] = rt_calloc(cnt[0], sizeof(expr *))) == NULL)
		return EDDY_ENOMEM;
	c->keys[0] = n->keys;
	n->nkeys = c->nkeys = cnt[0]; /* the plan frees them (NULL until compiled) */
	n->in_keys = c->keys;
	if ((e = join_keys_of(kl[0], "left_key", c->in[0], c->keys[0], cnt[0], err)) != EDDY_OK ||
	    (e = join_keys_of(kl[1], "right_key", c->in[1], c->keys[1], cnt[0], err)) != EDDY_OK)
		return e;
	for (uint32_t i = 0; i < c->nkeys; i++) {
		ev_type lt = expr_type(c->keys[0][i]), rt = expr_type(c->keys[1][i]);
		if (lt != rt)
			return cfg_errorf(
			    err, kl[1]->kind == CFG_SEQ ? kl[1]->items[i] : kl[1],
			    "right_key: key %u is %s but left_key's is %s: paired keys "
			    "must have the same type",
			    i + 1, ev_type_name(rt), ev_type_name(lt));
	}
	/* the output: left fields, then right fields, each side's with its prefix */
	const cfg_node *px = cfg_get(n->cfg, "prefix");
	const char *pre[2] = {"", ""};
	if (px) {
		static const char *const sides[] = {"left", "right", NULL};
		if (px->kind != CFG_MAP)
			return cfg_errorf(err, px,
			                  "prefix must be a map such as {left: l_, right: r_}");
		if ((e = cfg_check_keys(px, sides, "prefix", err)) != EDDY_OK ||
		    (e = opt(cfg_str(px, "left", false, &pre[0], err))) != EDDY_OK ||
		    (e = opt(cfg_str(px, "right", false, &pre[1], err))) != EDDY_OK)
			return e;
	}
	if ((e = ports(n, 3)) != EDDY_OK)
		return e;
	for (int i = 0; i < 2; i++)
		for (uint32_t f = 0; f < c->in[i]->n; f++) {
			char name[512];
			const char *fn = c->in[i]->fields[f].name;
			if ((size_t)snprintf(name, sizeof(name), "%s%s", pre[i], fn) >=
			    sizeof(name))
				return cfg_errorf(err, px, "prefix: the name '%s%s' is too long",
				                  pre[i], fn);
			e = schema_add(&n->schemas[0], name, c->in[i]->fields[f].type);
			if (e == EDDY_EEXIST)
				return cfg_errorf(
				    err, px ? px : n->input_nodes[1],
				    "the output would have two fields '%s' (left's and "
				    "right's): set prefix: {left: ..., right: ...} to name "
				    "them apart",
				    name);
			if (e == EDDY_EFULL)
				return cfg_errorf(
				    err, n->input_nodes[1],
				    "the join's output would have %u fields, more than %d",
				    c->in[0]->n + c->in[1]->n, EV_MAX_FIELDS);
			if (e != EDDY_OK)
				return e;
		}
	c->out = &n->schemas[0];
	if ((e = schema_copy(&n->schemas[1], c->in[0])) != EDDY_OK ||
	    (e = schema_copy(&n->schemas[2], c->in[1])) != EDDY_OK)
		return e;
	const cfg_node *w = cfg_get(n->cfg, "where");
	if (w) {
		if ((e = need_scalar(w, "where", err)) != EDDY_OK ||
		    (e = expr_at(w, w->str, 0, "where", c->out, &c->where, err)) != EDDY_OK)
			return e;
		if (expr_type(c->where) != EV_BOOL)
			return cfg_errorf(err, w, "where: the condition must be bool, got %s",
			                  ev_type_name(expr_type(c->where)));
	}
	const cfg_node *lo = cfg_get(n->cfg, "late_output");
	if (lo && lo->kind == CFG_SCALAR && lo->str[0] == '\0' && !lo->quoted)
		lo = NULL; /* "late_output:" with nothing */
	if (lo && lo->kind != CFG_MAP)
		return cfg_errorf(err, lo,
		                  "a join's late_output is a map {left: STREAM, right: "
		                  "STREAM} (either may be left out)");
	for (int i = 0; lo && i < 2; i++) {
		const cfg_node *s = cfg_get(lo, i ? "right" : "left");
		c->has_late_output[i] = s && s->kind == CFG_SCALAR && s->str[0];
	}
	switch (c->kind) {
	case JOIN_WINDOW: return join_window(n, c, err);
	case JOIN_INTERVAL:
		if ((e = signed_duration(n->cfg, "lower", &c->lower_ms, err)) != EDDY_OK ||
		    (e = signed_duration(n->cfg, "upper", &c->upper_ms, err)) != EDDY_OK)
			return e;
		if (c->lower_ms > c->upper_ms)
			return cfg_errorf(
			    err, cfg_get(n->cfg, "upper"),
			    "upper (%lld ms) is below lower (%lld ms): no pair could match",
			    (long long)c->upper_ms, (long long)c->lower_ms);
		return EDDY_OK;
	case JOIN_REGULAR:
		if ((e = opt(cfg_duration_ms(n->cfg, "ttl", false, &c->ttl_ms, err))) != EDDY_OK)
			return e;
		if (lo && c->ttl_ms == 0)
			return cfg_errorf(err, lo,
			                  "a regular join without ttl has no late elements");
		return EDDY_OK;
	}
	return EDDY_OK;
}

static eddy_err build_node(plan *p, uint32_t i, cfg_error *err)
{
	pnode *n = &p->nodes[i];
	if (n->role == ROLE_SOURCE)
		return EDDY_OK; /* built in the first pass */
	if (is_join(n)) /* two inputs of their own schemas */
		return build_join(p, n, err);
	const ev_schema *in = NULL;
	eddy_err e = one_input_schema(p, n, &in, err);
	if (e != EDDY_OK)
		return e;
	if (n->role == ROLE_SINK)
		return build_sink(p, n, in, err);
	int type;
	if ((e = cfg_enum(n->cfg, "type", true, op_types, &type, err)) != EDDY_OK)
		return e;
	switch (type) {
	case 0:
		return build_filter(p, n, in, err);
	case 1:
		return build_map(p, n, in, err);
	case 2:
		return build_window(p, n, in, err);
	case 4:
		return build_native(p, n, err);
	case 5: return build_topn(p, n, in, err);
	case 6: return build_split(p, n, in, err);
	case 7:
		return build_join(p, n, err);
	default:
		n->op = &union_op;
		if ((e = cfg_check_keys(n->cfg, union_keys, "a union", err)) != EDDY_OK ||
		    (e = ports(n, 1)) != EDDY_OK)
			return e;
		return schema_copy(&n->schemas[0], in);
	}
}

/* ---- the first pass: ids, streams, sources ---- */

static eddy_err list_of(const cfg_node *root, const char *key, bool required,
                        const cfg_node **out, cfg_error *err)
{
	const cfg_node *l = cfg_get(root, key);
	*out = NULL;
	if (l == NULL || (l->kind == CFG_SCALAR && l->str[0] == '\0' && !l->quoted)) {
		if (required)
			return cfg_errorf(err, root, "the job has no %s (a list of them is required)",
			                  key);
		return EDDY_OK;
	}
	if (l->kind != CFG_SEQ)
		return cfg_errorf(err, l, "%s must be a list, got %s", key, cfg_kind_name(l->kind));
	*out = l;
	return EDDY_OK;
}

static eddy_err add_node(plan *p, role r, const cfg_node *m, cfg_error *err)
{
	if (m->kind != CFG_MAP)
		return cfg_errorf(err, m, "each entry must be a map with an id, got %s",
		                  cfg_kind_name(m->kind));
	pnode *n = &p->nodes[p->nnodes];
	memset(n, 0, sizeof(*n));
	n->role = r;
	n->cfg = m;
	eddy_err e = cfg_str(m, "id", true, &n->id, err);
	if (e != EDDY_OK)
		return e;
	if (n->id[0] == '\0' || strpbrk(n->id, "/[]*?. \t") != NULL)
		return cfg_errorf(err, cfg_get(m, "id"),
		                  "id '%s' must be non-empty without '/', '.', '[', ']', '*', '?' "
		                  "or spaces",
		                  n->id);
	for (uint32_t k = 0; k < p->nnodes; k++)
		if (strcmp(p->nodes[k].id, n->id) == 0)
			return cfg_errorf(err, cfg_get(m, "id"), "the id '%s' is taken (first at %d:%d)",
			                  n->id, cfg_get(p->nodes[k].cfg, "id")->line,
			                  cfg_get(p->nodes[k].cfg, "id")->col);
	p->nnodes++;
	return EDDY_OK;
}

static bool is_forward(const plan *p, const pnode *consumer, int stream);

static uint64_t exprs_fields(expr *const *es, uint32_t n)
{
	uint64_t m = 0;
	for (uint32_t i = 0; es != NULL && i < n; i++)
		m |= expr_fields(es[i]);
	return m;
}

/* in_fields: the fields of input k that node n reads or passes on, given the fields of its
 * output ports that its consumers read (out[q] for port q); every field for an operator
 * this does not know (joins, native operators) and for sinks. */
static uint64_t in_fields(const pnode *n, uint32_t k, const uint64_t *out)
{
	uint64_t m = exprs_fields(n->keys, n->nkeys); /* routing keys */
	if (n->in_keys != NULL && n->in_keys[k] != NULL)
		m |= exprs_fields(n->in_keys[k], n->nkeys);
	if (n->role == ROLE_SINK)
		return ~0ull;
	if (n->op == &filter_op)
		return m | out[0] | expr_fields(((const filter_conf *)n->conf)->where);
	if (n->op == &map_op) {
		const map_conf *c = n->conf;
		return m | exprs_fields(c->exprs, c->n);
	}
	if (n->op == &union_op)
		return m | out[0];
	if (n->op == &window_op) {
		const window_conf *c = n->conf;
		m |= exprs_fields(c->keys, c->nkeys) | (n->nports > 1 ? out[1] : 0);
		for (uint32_t i = 0; i < c->naggs; i++)
			m |= expr_fields(c->aggs[i].arg);
		return m;
	}
	if (n->op == &topn_op) {
		const topn_conf *c = n->conf;
		uint64_t all = c->in->n >= 64 ? ~0ull : (1ull << c->in->n) - 1;
		m |= (out[0] >> c->in_off) & all; /* out field in_off + i is input field i */
		m |= exprs_fields(c->keys, c->nkeys) | expr_fields(c->order_by);
		if (c->window == TOPN_INPUT)
			m |= 1ull << c->ws_field | 1ull << c->we_field;
		return m | (n->nports > 1 ? out[1] : 0);
	}
	if (n->op == &split_op) {
		const split_conf *c = n->conf;
		m |= exprs_fields(c->preds, c->n);
		for (uint32_t q = 0; q < n->nports; q++)
			m |= out[q];
		return m;
	}
	return ~0ull;
}

/* push_projections finds, from the sinks back to the sources, the fields each stream's
 * consumers read, and has every file source parse only those of its records (and its
 * event-time field): projection pushdown, as Flink's file source. */
static eddy_err push_projections(plan *p)
{
	uint64_t *live = rt_calloc(p->nstreams ? p->nstreams : 1, sizeof(uint64_t));
	uint64_t *out = rt_calloc(64, sizeof(uint64_t));
	if (live == NULL || out == NULL) {
		rt_free(live);
		rt_free(out);
		return EDDY_ENOMEM;
	}
	for (uint32_t o = p->norder; o-- > 0;) {
		pnode *n = &p->nodes[p->order[o]];
		memset(out, 0, 64 * sizeof(uint64_t));
		for (uint32_t st = 0; st < p->nstreams; st++)
			if (p->streams[st].node == (int)p->order[o] && p->streams[st].port < 64)
				out[p->streams[st].port] |= live[st];
		if (n->op == &file_source_op) {
			file_source_conf *c = n->conf;
			c->live = out[0];
			if (c->time.time_field >= 0)
				c->live |= 1ull << c->time.time_field;
		}
		for (uint32_t k = 0; k < n->ninputs; k++)
			live[n->inputs[k]] |= in_fields(n, k, out);
	}
	rt_free(live);
	rt_free(out);
	return EDDY_OK;
}

/* input_channels: a subtask of n has one channel per producer subtask of each input, one
 * for a forward input. */
static uint64_t input_channels(const plan *p, const pnode *n)
{
	uint64_t nc = 0;
	for (uint32_t k = 0; k < n->ninputs; k++)
		nc += is_forward(p, n, n->inputs[k])
		          ? 1
			  : p->nodes[p->streams[n->inputs[k]].node].parallelism;
	return nc;
}

/* check_channels refuses an operator with more input channels than a message's channel
 * field holds. */
static eddy_err check_channels(const plan *p, cfg_error *err)
{
	for (uint32_t i = 0; i < p->nnodes; i++) {
		const pnode *n = &p->nodes[i];
		uint64_t nc = input_channels(p, n);
		if (nc > TASK_CHANNEL_MASK)
			return cfg_errorf(err, cfg_get(n->cfg, "id"),
			                  "'%s' would have %llu input channels (the parallelism of its "
			                  "inputs added up); at most %u",
			                  n->id, (unsigned long long)nc, TASK_CHANNEL_MASK);
	}
	return EDDY_OK;
}

eddy_err plan_build(const cfg_node *root, plan **out, cfg_error *err)
{
	*out = NULL;
	plan *p = rt_calloc(1, sizeof(*p));
	if (p == NULL)
		return EDDY_ENOMEM;
	p->root = root;
	ckpt_log_init(&p->ckpt_log);
	pthread_mutex_init(&p->gate.mu, NULL);
	p->file = root->file;
	eddy_err e = cfg_check_keys(root, root_keys, "the job", err);
	if (e == EDDY_OK)
		e = cfg_str(root, "job", true, &p->name, err);
	if (e == EDDY_OK && (p->name[0] == '\0' || strpbrk(p->name, "/[]*? \t") != NULL))
		e = cfg_errorf(err, cfg_get(root, "job"),
		               "the job name must be non-empty without '/', '[', ']', '*', '?' or "
		               "spaces");
	int64_t par = 1, maxp = 128;
	if (e == EDDY_OK &&
	    (e = cfg_int(root, "max_parallelism", false, 1, 32768, &maxp, err)) == EDDY_ENOENT)
		e = EDDY_OK;
	p->max_parallelism = (uint32_t)maxp;
	if (e == EDDY_OK &&
	    (e = cfg_int(root, "parallelism", false, 1, maxp, &par, err)) == EDDY_ENOENT)
		e = EDDY_OK;
	p->parallelism = (uint32_t)par;
	static const char *const times[] = { "event", "processing", NULL };
	int tm = 0;
	if (e == EDDY_OK && (e = cfg_enum(root, "time", false, times, &tm, err)) == EDDY_ENOENT)
		e = EDDY_OK;
	p->processing_time = tm == 1;
	if (e == EDDY_OK)
		e = parse_supervision(p, err);
	if (e == EDDY_OK)
		e = parse_control(p, err);
	if (e == EDDY_OK)
		e = parse_checkpoint(p, err);
	if (e == EDDY_OK)
		e = parse_state(p, err);
	const cfg_node *srcs = NULL, *ops = NULL, *sinks = NULL;
	if (e == EDDY_OK)
		e = list_of(root, "sources", true, &srcs, err);
	if (e == EDDY_OK)
		e = list_of(root, "operators", false, &ops, err);
	if (e == EDDY_OK)
		e = list_of(root, "sinks", true, &sinks, err);
	if (e != EDDY_OK)
		goto fail;
	size_t total = srcs->n + (ops ? ops->n : 0) + sinks->n;
	p->nodes = rt_calloc(total, sizeof(pnode));
	p->order = rt_calloc(total, sizeof(uint32_t));
	if (p->nodes == NULL || p->order == NULL) {
		e = EDDY_ENOMEM;
		goto fail;
	}
	if ((e = schema_add(&p->dead_schema, "file", EV_STRING)) != EDDY_OK ||
	    (e = schema_add(&p->dead_schema, "line", EV_INT)) != EDDY_OK ||
	    (e = schema_add(&p->dead_schema, "error", EV_STRING)) != EDDY_OK ||
	    (e = schema_add(&p->dead_schema, "record", EV_STRING)) != EDDY_OK)
		goto fail;
	/* sources: built now (their schemas come from the config alone) */
	for (size_t i = 0; i < srcs->n; i++) {
		if ((e = add_node(p, ROLE_SOURCE, srcs->items[i], err)) != EDDY_OK)
			goto fail;
		pnode *n = &p->nodes[p->nnodes - 1];
		int conn;
		if ((e = cfg_enum(n->cfg, "connector", true, source_connectors, &conn, err)) != EDDY_OK)
			goto fail;
		if ((e = parallelism_of(p, n->cfg, p->parallelism, &n->parallelism, err)) != EDDY_OK)
			goto fail;
		e = conn == 0   ? build_file_source(p, n, err)
		    : conn == 1 ? build_datagen(p, n, err)
		                : build_nexmark(p, n, err);
		if (e != EDDY_OK)
			goto fail;
		if ((e = add_stream(p, n->id, (int)p->nnodes - 1, 0, cfg_get(n->cfg, "id"), err)))
			goto fail;
		if (conn == 0 && ((file_source_conf *)n->conf)->on_error == ON_ERROR_DEAD_LETTER) {
			char name[256];
			snprintf(name, sizeof(name), "%s.dead_letter", n->id);
			if ((e = add_stream(p, name, (int)p->nnodes - 1, 1, cfg_get(n->cfg, "on_error"),
			                    err)))
				goto fail;
		}
	}
	/* operators: ids and output stream names first, so inputs may name later ones */
	for (size_t i = 0; ops && i < ops->n; i++) {
		if ((e = add_node(p, ROLE_OP, ops->items[i], err)) != EDDY_OK)
			goto fail;
		pnode *n = &p->nodes[p->nnodes - 1];
		if ((e = parallelism_of(p, n->cfg, p->parallelism, &n->parallelism, err)) != EDDY_OK ||
		    (e = add_stream(p, n->id, (int)p->nnodes - 1, 0, cfg_get(n->cfg, "id"), err)))
			goto fail;
		const cfg_node *late = cfg_get(n->cfg, "late_output");
		if (late && late->kind == CFG_SCALAR && late->str[0] &&
		    (e = add_stream(p, late->str, (int)p->nnodes - 1, 1, late, err)))
			goto fail;
		if ((e = add_side_outputs(p, p->nnodes - 1, err)) != EDDY_OK ||
		    (e = add_split_outputs(p, p->nnodes - 1, err)) != EDDY_OK ||
		    (e = add_join_late_outputs(p, p->nnodes - 1, err)) != EDDY_OK)
			goto fail;
	}
	static const char *const sink_connectors[] = { "file", "print", NULL };
	for (size_t i = 0; i < sinks->n; i++) {
		if ((e = add_node(p, ROLE_SINK, sinks->items[i], err)) != EDDY_OK)
			goto fail;
		pnode *n = &p->nodes[p->nnodes - 1];
		int conn;
		if ((e = cfg_enum(n->cfg, "connector", true, sink_connectors, &conn, err)) != EDDY_OK)
			goto fail;
		n->op = conn == 0 ? &file_sink_op : &print_sink_op;
		if ((e = parallelism_of(p, n->cfg, conn == 0 ? p->parallelism : 1, &n->parallelism,
		                        err)) != EDDY_OK)
			goto fail;
	}
	for (uint32_t i = 0; i < p->nnodes; i++)
		if (p->nodes[i].role != ROLE_SOURCE && (e = read_inputs(p, &p->nodes[i], err)))
			goto fail;
	if ((e = check_split_inputs(p, err)) != EDDY_OK)
		goto fail;
	for (uint32_t i = 0; i < p->nnodes; i++)
		if ((e = visit(p, i, err)) != EDDY_OK)
			goto fail;
	if ((e = check_channels(p, err)) != EDDY_OK || (e = push_projections(p)) != EDDY_OK)
		goto fail;
	*out = p;
	return EDDY_OK;
fail:
	plan_free(p);
	return e;
}

/* ---- physical wiring ---- */

static bool is_forward(const plan *p, const pnode *consumer, int stream)
{
	const pnode *prod = &p->nodes[p->streams[stream].node];
	return consumer->nkeys == 0 && prod->parallelism == consumer->parallelism;
}

static part_kind part_of(const plan *p, const pnode *consumer, int stream)
{
	if (consumer->nkeys > 0)
		return PART_HASH;
	return is_forward(p, consumer, stream) ? PART_FORWARD : PART_REBALANCE;
}

static char *task_path(const plan *p, const pnode *n, uint32_t i)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s/%s[%u]", p->name, n->id, i);
	return rt_strdup(buf);
}

/* ---- failover regions ---- */

static uint32_t uf_find(uint32_t *up, uint32_t i)
{
	while (up[i] != i)
		i = up[i] = up[up[i]];
	return i;
}

static void uf_union(uint32_t *up, uint32_t a, uint32_t b)
{
	a = uf_find(up, a);
	b = uf_find(up, b);
	if (a != b)
		up[a > b ? a : b] = a < b ? a : b;
}

static eddy_err region_load(task_region *r, task_arg *a, char *why, size_t wn);

/* region_restart (a region supervisor's on_restart): the region restarts from the newest
 * completed checkpoint; no checkpoint is triggered or completes until it runs again. */
static void region_restart(actor *sup, void *arg, const char *failed)
{
	task_region *r = arg;
	plan *p = r->owner;
	pthread_mutex_lock(&p->gate.mu);
	p->gate.resetting++;
	p->gate.resets++;
	atomic_fetch_add(&r->epoch, 1);
	r->restore_id = p->gate.done_id;
	snprintf(r->restore_dir, sizeof(r->restore_dir), "%s", p->gate.done_dir);
	pthread_mutex_unlock(&p->gate.mu);
	r->failed_ms = clock_now_ms(clock_system());
	char why[300] = "";
	actor *fa = asys_find(actor_system(sup), failed);
	if (fa)
		actor_last_error(fa, why, sizeof(why));
	uint32_t ntasks = 0;
	for (uint32_t i = 0; i < p->ntasks; i++)
		ntasks += p->task_regions[i] == r;
	if (p->report)
		fprintf(p->report, "eddy run: job %s: %s failed (%s); restarting its failover region "
		        "%s (%u of %u tasks) from %s\n", p->name, failed, why, actor_path(sup), ntasks,
		        p->ntasks, r->restore_id ? "the latest checkpoint" : "the beginning");
	if (r->restore_id)
		asys_log_event(actor_system(sup), actor_path(sup), "region",
		               "%s failed: restarting the region from checkpoint %llu", failed,
		               (unsigned long long)r->restore_id);
	else
		asys_log_event(actor_system(sup), actor_path(sup), "region",
		               "%s failed: restarting the region from the beginning (no checkpoint "
		               "completed yet)", failed);
}

/* region_restarted (on_restarted): every task of the region runs again. */
static void region_restarted(actor *sup, void *arg)
{
	(void)sup;
	task_region *r = arg;
	plan *p = r->owner;
	pthread_mutex_lock(&p->gate.mu);
	p->gate.resetting--;
	pthread_mutex_unlock(&p->gate.mu);
	if (p->report && r->restore_id)
		fprintf(p->report, "eddy run: job %s: region %s restored from checkpoint %llu, running "
		        "again %lld ms after the failure\n", p->name, actor_path(sup),
		        (unsigned long long)r->restore_id, (long long)(clock_now_ms(clock_system()) - r->failed_ms));
	else if (p->report)
		fprintf(p->report, "eddy run: job %s: region %s starting over from the beginning (no "
		        "checkpoint completed yet), running again %lld ms after the failure\n", p->name,
		        actor_path(sup), (long long)(clock_now_ms(clock_system()) - r->failed_ms));
}

/* build_regions splits the tasks into failover regions, as Flink's pipelined regions: a
 * keyed or rebalancing exchange joins every producer subtask with every consumer subtask,
 * a forward one subtask s with s % the consumer's parallelism. Each region gets a
 * one_for_all supervisor (the job supervisor's critical child: a region that reaches its
 * restart intensity fails the job) whose restarts start the region afresh from the
 * newest completed checkpoint (task_region). extra: the job supervisor's children before
 * the tasks (the coordinator). */
static eddy_err build_regions(plan *p, uint32_t extra)
{
	uint32_t n = p->ntasks;
	uint32_t *base = rt_calloc(p->nnodes, sizeof(*base));
	uint32_t *up = rt_calloc(n ? n : 1, sizeof(*up));
	uint32_t *rid = rt_calloc(n ? n : 1, sizeof(*rid));
	eddy_err e = EDDY_ENOMEM;
	if (base == NULL || up == NULL || rid == NULL)
		goto out;
	uint32_t k = 0; /* wire's order: consumers first */
	for (uint32_t o = p->norder; o-- > 0;) {
		base[p->order[o]] = k;
		k += p->nodes[p->order[o]].parallelism;
	}
	for (uint32_t i = 0; i < n; i++)
		up[i] = i;
	for (uint32_t i = 0; i < p->nnodes; i++) {
		const pnode *c = &p->nodes[i];
		for (uint32_t q = 0; q < c->ninputs; q++) {
			uint32_t pi = (uint32_t)p->streams[c->inputs[q]].node;
			const pnode *prod = &p->nodes[pi];
			bool fwd = is_forward(p, c, c->inputs[q]);
			for (uint32_t s = 0; s < prod->parallelism; s++)
				uf_union(up, base[pi] + s, base[i] + (fwd ? s % c->parallelism : 0));
			for (uint32_t s = 1; !fwd && s < c->parallelism; s++)
				uf_union(up, base[i], base[i] + s);
		}
	}
	uint32_t nr = 0;
	for (uint32_t i = 0; i < n; i++) /* regions numbered by their first task */
		rid[i] = uf_find(up, i) == i ? nr++ : rid[uf_find(up, i)];
	p->nregions = nr;
	p->regions = rt_calloc(nr, sizeof(*p->regions));
	p->region_sups = rt_calloc(nr, sizeof(*p->region_sups));
	p->region_children = rt_calloc(n, sizeof(*p->region_children));
	p->region_paths = rt_calloc(nr, sizeof(*p->region_paths));
	p->task_regions = rt_calloc(n, sizeof(*p->task_regions));
	if (p->regions == NULL || p->region_sups == NULL || p->region_children == NULL ||
	    p->region_paths == NULL || p->task_regions == NULL)
		goto out;
	uint32_t pos = 0;
	for (uint32_t r = 0; r < nr; r++) {
		task_region *tr = &p->regions[r];
		tr->index = r;
		tr->load = region_load;
		tr->owner = p;
		size_t pl = strlen(p->name) + 24;
		if ((p->region_paths[r] = rt_malloc(pl)) == NULL)
			goto out;
		snprintf(p->region_paths[r], pl, "%s/region[%u]", p->name, r);
		sup_spec *rs = &p->region_sups[r];
		*rs = p->sup;
		rs->strategy = SUP_ONE_FOR_ALL;
		rs->children = &p->region_children[pos];
		rs->keep_done = rs->discard_on_restart = true;
		rs->on_restart = region_restart;
		rs->on_restarted = region_restarted;
		rs->hook_arg = tr;
		for (uint32_t i = 0; i < n; i++)
			if (rid[i] == r) {
				p->region_children[pos] = p->children[extra + i];
				p->region_children[pos++].restart = CHILD_TRANSIENT;
				p->task_regions[i] = tr;
			}
		rs->nchildren = (uint32_t)(&p->region_children[pos] - rs->children);
	}
	for (uint32_t i = 0; i < p->nnodes; i++)
		for (uint32_t s = 0; s < p->nodes[i].parallelism; s++)
			p->nodes[i].args[s].region = p->task_regions[base[i] + s];
	for (uint32_t r = 0; r < nr; r++)
		p->children[extra + r] = (sup_child_spec){
			.actor = { .path = p->region_paths[r], .ops = &sup_ops, .arg = &p->region_sups[r] },
			.restart = CHILD_CRITICAL,
		};
	p->sup.nchildren = extra + nr;
	p->ckpt_arg.gate = &p->gate;
	p->ckpt_arg.task_regions = p->task_regions;
	e = EDDY_OK;
out:
	rt_free(base);
	rt_free(up);
	rt_free(rid);
	return e;
}

static eddy_err wire(plan *p)
{
	p->stats = (job_stats){ 0 };
	for (uint32_t i = 0; i < p->nnodes; i++) {
		pnode *n = &p->nodes[i];
		task_node *tn = &n->tn;
		tn->job = p->name;
		tn->id = n->id;
		tn->op = n->op;
		tn->conf = n->conf;
		tn->parallelism = n->parallelism;
		tn->max_parallelism = p->max_parallelism;
		tn->stats = &p->stats;
		tn->is_source = n->role == ROLE_SOURCE;
		tn->is_sink = n->role == ROLE_SINK;
		tn->ckpt = p->checkpointing ? &p->ckpt : NULL;
		tn->coord_path = p->coord_path;
		tn->backend = &p->backend;
		if (n->op->keyed_state) {
			size_t sl = strlen(p->name) + strlen(n->id) + 2;
			if ((n->state_id = rt_malloc(sl)) == NULL)
				return EDDY_ENOMEM;
			snprintf(n->state_id, sl, "%s/%s", p->name, n->id);
			tn->state_id = n->state_id;
		}
		tn->ninputs = n->ninputs;
		if (n->ninputs && (tn->in_schemas = rt_calloc(n->ninputs, sizeof(ev_schema *))) == NULL)
			return EDDY_ENOMEM;
		for (uint32_t k = 0; k < n->ninputs; k++)
			tn->in_schemas[k] = stream_schema(p, n->inputs[k]);
		uint32_t nc = (uint32_t)input_channels(p, n); /* <= TASK_CHANNEL_MASK: checked */
		tn->nchannels = nc;
		if (nc && (tn->channel_input = rt_calloc(nc, sizeof(uint32_t))) == NULL)
			return EDDY_ENOMEM;
		tn->nports = n->nports;
		if (n->nports && (tn->ports = rt_calloc(n->nports, sizeof(out_port))) == NULL)
			return EDDY_ENOMEM;
		for (uint32_t q = 0; q < n->nports; q++)
			tn->ports[q].schema = &n->schemas[q];
		if ((n->args = rt_calloc(n->parallelism, sizeof(task_arg))) == NULL)
			return EDDY_ENOMEM;
		for (uint32_t s = 0; s < n->parallelism; s++) {
			n->args[s] = (task_arg){ .node = tn, .subtask = s };
			task_arg_init(&n->args[s]);
		}
	}
	/* routes: for every consumer input, a route on the producer's port */
	for (uint32_t i = 0; i < p->nnodes; i++) {
		pnode *c = &p->nodes[i];
		uint32_t base = 0;
		for (uint32_t k = 0; k < c->ninputs; k++) {
			const pstream *st = &p->streams[c->inputs[k]];
			pnode *prod = &p->nodes[st->node];
			out_port *port = &prod->tn.ports[st->port];
			route *r = rt_realloc(port->routes, (port->nroutes + 1) * sizeof(route));
			if (r == NULL)
				return EDDY_ENOMEM;
			port->routes = r;
			route *rt = &r[port->nroutes++];
			memset(rt, 0, sizeof(*rt));
			rt->part = part_of(p, c, c->inputs[k]);
			rt->ntargets = c->parallelism;
			rt->channel_base = base;
			rt->keys = c->in_keys ? c->in_keys[k] : c->keys;
			rt->nkeys = c->nkeys;
			rt->max_parallelism = p->max_parallelism;
			if ((rt->target_paths = rt_calloc(c->parallelism, sizeof(char *))) == NULL)
				return EDDY_ENOMEM;
			for (uint32_t s = 0; s < c->parallelism; s++)
				if ((rt->target_paths[s] = task_path(p, c, s)) == NULL)
					return EDDY_ENOMEM;
			uint32_t width = rt->part == PART_FORWARD ? 1 : prod->parallelism;
			for (uint32_t w = 0; w < width; w++)
				c->tn.channel_input[base + w] = k;
			base += width;
		}
	}
	/* tasks: consumers first (a task resolves its targets when it starts) */
	uint32_t total = 0;
	for (uint32_t i = 0; i < p->nnodes; i++)
		total += p->nodes[i].parallelism;
	p->ntasks = total;
	uint32_t extra = p->checkpointing ? 1 : 0; /* the coordinator, started first */
	p->children = rt_calloc(total + extra, sizeof(sup_child_spec));
	p->paths = rt_calloc(total, sizeof(char *));
	if (p->children == NULL || p->paths == NULL)
		return EDDY_ENOMEM;
	snprintf(p->coord_path, sizeof(p->coord_path), "%s/checkpoints", p->name);
	uint32_t nsrc = 0;
	if (p->checkpointing) {
		for (uint32_t i = 0; i < p->nnodes; i++)
			nsrc += p->nodes[i].role == ROLE_SOURCE ? p->nodes[i].parallelism : 0;
		p->ckpt_arg = (ckpt_arg){.job = p->name,
		                         .conf = &p->ckpt,
		                         .ntasks = total,
		                         .task_paths = p->paths,
		                         .stats = &p->stats,
		                         .log = &p->ckpt_log,
		                         .report = p->report};
		if ((p->ckpt_arg.source_paths = rt_calloc(nsrc ? nsrc : 1, sizeof(char *))) == NULL)
			return EDDY_ENOMEM;
		p->children[0] = (sup_child_spec){
			.actor = { .path = p->coord_path, .ops = &ckpt_coord_ops, .arg = &p->ckpt_arg,
			           .io = true },
			.restart = CHILD_TRANSIENT,
		};
	}
	uint32_t k = 0;
	for (uint32_t o = p->norder; o-- > 0;) {
		pnode *n = &p->nodes[p->order[o]];
		for (uint32_t s = 0; s < n->parallelism; s++, k++) {
			if ((p->paths[k] = task_path(p, n, s)) == NULL)
				return EDDY_ENOMEM;
			if (p->checkpointing && n->role == ROLE_SOURCE)
				p->ckpt_arg.source_paths[p->ckpt_arg.nsources++] = p->paths[k];
			p->children[extra + k] = (sup_child_spec){
				.actor = { .path = p->paths[k],
				           .ops = &task_ops,
				           .arg = &n->args[s],
				           .mailbox_capacity = 16,
				           .io = n->op->io },
				.restart = n->op->restartable ? CHILD_TRANSIENT : CHILD_CRITICAL,
			};
		}
	}
	p->sup.children = p->children;
	p->sup.nchildren = total + extra;
	return p->checkpointing ? build_regions(p, extra) : EDDY_OK;
}

/* digits skips a run of digits at n[k]; the index after it, or 0 if there is none. */
static size_t digits(const char *n, size_t k)
{
	size_t k0 = k;
	while (isdigit((unsigned char)n[k]))
		k++;
	return k == k0 ? 0 : k;
}

/* is_part: a file sink's file: part-<s>.<ext>, part-<s>-<n>.<ext> (committed),
 * .part-<s>.inprogress, .part-<s>-<n>.pending, .part-<s>-<n>.rolledback-<L>. */
static bool is_part(const char *n)
{
	bool hidden = n[0] == '.';
	if (strncmp(n + hidden, "part-", 5) != 0)
		return false;
	size_t k = digits(n, 5 + hidden);
	if (k == 0)
		return false;
	if (n[k] == '-' && (k = digits(n, k + 1)) == 0)
		return false;
	if (hidden && strncmp(n + k, ".rolledback-", 12) == 0)
		return digits(n, k + 12) != 0 && n[digits(n, k + 12)] == '\0';
	if (hidden)
		return strcmp(n + k, ".inprogress") == 0 || strcmp(n + k, ".pending") == 0;
	return strcmp(n + k, ".csv") == 0 || strcmp(n + k, ".jsonl") == 0;
}

/* clear_parts removes the files of a file sink an earlier run left in its directory (see
 * is_part), so the directory holds this run's output only. Other files are left alone. */
static void clear_parts(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		const char *n = e->d_name;
		if (!is_part(n))
			continue;
		char path[4096];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, n) < sizeof(path))
			unlink(path);
	}
	closedir(d);
}

eddy_err plan_start(plan *p, asys *sys)
{
	for (uint32_t i = 0; i < p->nnodes && p->restored == 0; i++)
		if (p->nodes[i].op == &file_sink_op) /* a restored job's sinks sort theirs out */
			clear_parts(((const sink_conf *)p->nodes[i].conf)->path);
	if (p->children == NULL) {
		eddy_err e = wire(p);
		if (e != EDDY_OK)
			return e;
	}
	eddy_err e = open_state(p);
	if (e != EDDY_OK)
		return e;
	snprintf(p->job_path, sizeof(p->job_path), "%s", p->name);
	return sup_spawn(sys, p->job_path, &p->sup, NULL, NULL);
}

/* ---- printing ---- */

static void print_schema(const ev_schema *s, FILE *f)
{
	for (uint32_t i = 0; i < s->n; i++)
		fprintf(f, "%s%s %s", i ? ", " : "", s->fields[i].name, ev_type_name(s->fields[i].type));
}

void plan_print(const plan *p, FILE *f)
{
	fprintf(f, "job %s: %u operators, default parallelism %u, max parallelism %u (key "
	           "groups), %s time\n",
	        p->name, p->nnodes, p->parallelism, p->max_parallelism,
	        p->processing_time ? "processing" : "event");
	uint32_t tasks = 0;
	for (uint32_t o = 0; o < p->norder; o++) {
		const pnode *n = &p->nodes[p->order[o]];
		tasks += n->parallelism;
		fprintf(f, "  %-16s %-12s parallelism %u%s\n", n->id, n->op->type, n->parallelism,
		        n->op->io ? " (I/O pool)" : "");
		if (n->op == &native_op || n->op == &native_keyed_op) {
			const native_conf *c = n->conf;
			fprintf(f, "      %s: '%s' in %s\n", c->def->name, c->symbol, c->library);
		}
		if (n->op == &file_source_op) {
			const file_source_conf *c = n->conf;
			uint32_t used = 0;
			for (uint32_t i = 0; i < c->schema->n; i++)
				used += (uint32_t)(c->live >> i & 1);
			if (used < c->schema->n) {
				fprintf(f, "      parses:");
				for (uint32_t i = 0, j = 0; i < c->schema->n; i++)
					if (c->live >> i & 1)
						fprintf(f, "%s %s", j++ ? "," : "",
						        c->schema->fields[i].name);
				fprintf(
				    f,
				    " (%u of %u fields: the job reads no other; they stay null)\n",
				    used, c->schema->n);
			}
		}
		for (uint32_t k = 0; k < n->ninputs; k++) {
			const pstream *st = &p->streams[n->inputs[k]];
			part_kind pk = part_of(p, n, n->inputs[k]);
			fprintf(f, "      <- %s [%s", st->name, part_kind_name(pk));
			if (pk == PART_HASH) {
				const cfg_node *kb = cfg_get(
					n->cfg, n->in_keys ? (k == 0 ? "left_key" : "right_key") : "key_by");
				fprintf(f, " by ");
				for (uint32_t i = 0; i < n->nkeys; i++) {
					const cfg_node *x = kb->kind == CFG_SEQ ? kb->items[i] : kb;
					fprintf(f, "%s%s", i ? ", " : "", x->str);
				}
			}
			fprintf(f, "]\n");
		}
		for (uint32_t q = 0; q < n->nports; q++) {
			const char *name = NULL;
			for (uint32_t s = 0; s < p->nstreams; s++)
				if (p->streams[s].node == (int)p->order[o] && p->streams[s].port == q)
					name = p->streams[s].name;
			if (name == NULL && n->role != ROLE_SINK)
				continue;
			if (n->op == &split_op && q == 0 && !((const split_conf *)n->conf)->has_default)
				continue; /* a split's port 0 without a default: nothing leaves it */
			if (n->role == ROLE_SINK) {
				const sink_conf *c = n->conf;
				fprintf(f, "      -> %s%s%s\n", c->path ? c->path : "stdout",
				        c->path ? "/part-<subtask>." : "",
				        c->path ? (c->format == FMT_CSV ? "csv" : "jsonl") : "");
				break;
			}
			fprintf(f, "      -> %s (", name);
			print_schema(&n->schemas[q], f);
			fprintf(f, ")\n");
		}
	}
	fprintf(f, "  %u tasks\n", tasks);
}

/* ---- freeing ---- */

static void free_old(plan *p);

static void free_conf(pnode *n)
{
	if (n->conf == NULL)
		return;
	if (n->op == &filter_op) {
		expr_free(((filter_conf *)n->conf)->where);
	} else if (n->op == &map_op) {
		map_conf *c = n->conf;
		for (uint32_t i = 0; i < c->n; i++)
			expr_free(c->exprs[i]);
		rt_free(c->exprs);
	} else if (n->op == &window_op) {
		window_conf *c = n->conf;
		for (uint32_t i = 0; i < c->naggs; i++)
			expr_free(c->aggs[i].arg);
		rt_free(c->aggs);
	} else if (n->op == &topn_op) {
		expr_free(((topn_conf *)n->conf)->order_by);
	} else if (n->op == &split_op) {
		split_conf *c = n->conf;
		for (uint32_t i = 0; i < c->n; i++)
			expr_free(c->preds[i]);
		rt_free(c->preds);
	} else if (n->op == &native_op || n->op == &native_keyed_op) {
		native_conf *c = n->conf;
		rt_free(c->side_names);
		if (c->dl)
			dlclose(c->dl);
	} else if (n->op == &join_op) {
		join_conf *c = n->conf;
		for (uint32_t i = 0; c->keys[1] && i < c->nkeys; i++)
			expr_free(c->keys[1][i]);
		rt_free(c->keys[1]);
		expr_free(c->where);
	} else if (n->op == &datagen_op) {
		datagen_conf *c = n->conf;
		for (uint32_t i = 0; c->fields && c->schema && i < c->schema->n; i++)
			rt_free(c->fields[i].values);
		rt_free(c->fields);
	}
	rt_free(n->conf);
}

void plan_free(plan *p)
{
	if (p == NULL)
		return;
	for (uint32_t i = 0; i < p->nnodes; i++) {
		pnode *n = &p->nodes[i];
		free_conf(n);
		for (uint32_t k = 0; k < n->nkeys; k++)
			expr_free(n->keys[k]);
		rt_free(n->keys);
		for (uint32_t q = 0; q < n->nports; q++)
			schema_clear(&n->schemas[q]);
		rt_free(n->schemas);
		rt_free(n->inputs);
		rt_free(n->input_nodes);
		task_node *tn = &n->tn;
		for (uint32_t q = 0; tn->ports && q < tn->nports; q++) {
			for (uint32_t r = 0; r < tn->ports[q].nroutes; r++) {
				route *rt = &tn->ports[q].routes[r];
				for (uint32_t s = 0; rt->target_paths && s < rt->ntargets; s++)
					rt_free(rt->target_paths[s]);
				rt_free(rt->target_paths);
			}
			rt_free(tn->ports[q].routes);
		}
		rt_free(tn->ports);
		rt_free(n->state_id);
		rt_free(tn->in_schemas);
		rt_free(tn->channel_input);
		for (uint32_t s = 0; n->args && s < n->parallelism; s++)
			task_arg_clear(&n->args[s]);
		rt_free(n->args);
	}
	for (uint32_t i = 0; i < p->nstreams; i++)
		rt_free(p->streams[i].name);
	for (uint32_t i = 0; p->paths && i < p->ntasks; i++)
		rt_free(p->paths[i]);
	rt_free(p->paths);
	rt_free(p->children);
	rt_free(p->ckpt_arg.source_paths);
	ckpt_log_destroy(&p->ckpt_log);
	pthread_mutex_destroy(&p->gate.mu);
	for (uint32_t r = 0; p->region_paths && r < p->nregions; r++)
		rt_free(p->region_paths[r]);
	rt_free(p->region_paths);
	rt_free(p->regions);
	rt_free(p->region_sups);
	rt_free(p->region_children);
	rt_free(p->task_regions);
	free_old(p);
	rt_free(p->op_lists);
	rt_free(p->state_lists);
	rt_free(p->restores);
	ev_state_backend_destroy(p->backend); /* after the tasks: the actor system is gone */
	if (p->state_dir_tmp)
		rmdir(p->state_dir);
	rt_free(p->streams);
	rt_free(p->nodes);
	rt_free(p->order);
	schema_clear(&p->dead_schema);
	rt_free(p);
}

/* ---- lookups for the control plane ---- */

const sup_spec *plan_sup(const plan *p)
{
	return &p->sup;
}

const task_arg *plan_task_arg(const plan *p, const char *path)
{
	size_t jl = strlen(p->name);
	if (strncmp(path, p->name, jl) != 0 || path[jl] != '/')
		return NULL;
	const char *id = path + jl + 1;
	const char *br = strrchr(id, '[');
	if (br == NULL || br == id)
		return NULL;
	char *end;
	unsigned long sub = strtoul(br + 1, &end, 10);
	if (end == br + 1 || strcmp(end, "]") != 0)
		return NULL;
	for (uint32_t i = 0; i < p->nnodes; i++) {
		const pnode *n = &p->nodes[i];
		if (strlen(n->id) == (size_t)(br - id) && strncmp(n->id, id, (size_t)(br - id)) == 0)
			return n->args && sub < n->parallelism ? &n->args[sub] : NULL;
	}
	return NULL;
}

int64_t plan_sink_watermark(const plan *p)
{
	int64_t min = WM_MAX;
	bool any = false;
	for (uint32_t i = 0; i < p->nnodes; i++) {
		const pnode *n = &p->nodes[i];
		if (n->role != ROLE_SINK || n->args == NULL)
			continue;
		for (uint32_t s = 0; s < n->parallelism; s++) {
			int64_t w = atomic_load_explicit(&n->args[s].live.watermark,
			                                 memory_order_relaxed);
			any = true;
			if (w < min)
				min = w;
		}
	}
	return any ? min : WM_MIN;
}

/* ---- restoring from a checkpoint ---- */

/* One task's snapshot in a checkpoint directory. */
typedef struct old_snap {
	char path[160];          /* the task it belonged to: JOB/OP[i] */
	char *buf;               /* the file */
	msgpack_unpacked up;
	const msgpack_object *op;
	uint64_t records_in, records_out;
	char *state;             /* its keyed-state file (checked), or NULL */
} old_snap;

/* load_file loads one snapshot file (its CRC, its shape) of checkpoint id into o. */
static bool load_file(const char *file, uint64_t id, old_snap *o, char *why, size_t wn)
{
	size_t len = 0;
	int e = fs_read_all(file, &o->buf, &len);
	msgpack_unpacked_init(&o->up);
	if (e) {
		snprintf(why, wn, "%s: %s", file, strerror(e));
		return false;
	}
	const char *buf = o->buf;
	uint32_t want = 0;
	for (size_t i = 0; len >= 4 && i < 4; i++)
		want = want << 8 | (unsigned char)buf[len - 4 + i];
	if (len < 5 || (uint32_t)crc32(0L, (const Bytef *)buf, (uInt)(len - 4)) != want) {
		snprintf(why, wn, "%s: damaged or cut short (its checksum does not match)", file);
		return false;
	}
	size_t off = 0;
	if (msgpack_unpack_next(&o->up, buf, len - 4, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len - 4) {
		snprintf(why, wn, "%s: not one msgpack value", file);
		return false;
	}
	const msgpack_object *m = &o->up.data;
	const msgpack_object *v = mp_get(m, "v"), *tk = mp_get(m, "task");
	const msgpack_object *ck = mp_get(m, "checkpoint"), *ri = mp_get(m, "records_in");
	const msgpack_object *ro = mp_get(m, "records_out"), *op = mp_get(m, "op");
	const msgpack_object *fin = mp_get(m, "finished");
	bool finished = fin && fin->type == MSGPACK_OBJECT_BOOLEAN && fin->via.boolean;
	if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 1 || !tk ||
	    tk->type != MSGPACK_OBJECT_STR || tk->via.str.size == 0 ||
	    tk->via.str.size >= sizeof(o->path) || !ck || ck->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    (finished ? ck->via.u64 > id : ck->via.u64 != id) || !ri ||
	    ri->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !ro ||
	    ro->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !op) {
		snprintf(why, wn, "%s: not a task snapshot of checkpoint %llu", file,
		         (unsigned long long)id);
		return false;
	}
	memcpy(o->path, tk->via.str.ptr, tk->via.str.size);
	o->path[tk->via.str.size] = '\0';
	o->op = op;
	o->records_in = ri->via.u64;
	o->records_out = ro->via.u64;
	return true;
}

static void free_old(plan *p)
{
	for (uint32_t i = 0; i < p->nold; i++) {
		msgpack_unpacked_destroy(&p->old[i].up);
		free(p->old[i].buf);
		rt_free(p->old[i].state);
	}
	rt_free(p->old);
	p->old = NULL;
	p->nold = 0;
}

/* subtask_of: the subtask index of a task path "JOB/OP[i]" whose operator is id; -1 if
 * the path is not of that operator. */
static long subtask_of(const plan *p, const char *path, const char *id)
{
	size_t jl = strlen(p->name), il = strlen(id);
	if (strncmp(path, p->name, jl) != 0 || path[jl] != '/' ||
	    strncmp(path + jl + 1, id, il) != 0 || path[jl + 1 + il] != '[')
		return -1;
	char *end;
	long s = strtol(path + jl + 2 + il, &end, 10);
	return strcmp(end, "]") == 0 && s >= 0 ? s : -1;
}

/* load_checkpoint loads every snapshot of checkpoint id in dir and gives each task of the
 * plan its part: its own snapshot at an unchanged parallelism; at a changed one, every
 * snapshot of its operator for operators that redistribute keyed state (rescalable), none
 * for operators without state; false with why otherwise. */
static bool load_checkpoint(plan *p, const char *dir, uint64_t id, char *why, size_t wn)
{
	char m[4400];
	snprintf(m, sizeof(m), "%s/MANIFEST", dir);
	if (access(m, F_OK) != 0) {
		snprintf(m, sizeof(m), "%s/SHARED", dir);
		snprintf(why, wn, "%s: no MANIFEST: %s", dir,
		         access(m, F_OK) == 0 ? "an older checkpoint kept only for the files later "
		                                "ones build on (SHARED)"
		                              : "the checkpoint is incomplete");
		return false;
	}
	free_old(p);
	DIR *d = opendir(dir);
	if (d == NULL) {
		snprintf(why, wn, "%s: %s", dir, strerror(errno));
		return false;
	}
	bool ok = true;
	uint32_t cap = 0;
	for (struct dirent *e; ok && (e = readdir(d)) != NULL;) {
		size_t l = strlen(e->d_name);
		if (l <= 5 || strcmp(e->d_name + l - 5, ".snap") != 0)
			continue;
		if (p->nold == cap) {
			cap = cap ? cap * 2 : 16;
			old_snap *no = rt_realloc(p->old, cap * sizeof(*no));
			if (no == NULL) {
				snprintf(why, wn, "out of memory");
				ok = false;
				break;
			}
			p->old = no;
		}
		old_snap *o = &p->old[p->nold++];
		memset(o, 0, sizeof(*o));
		char file[4400];
		snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
		ok = load_file(file, id, o, why, wn);
		/* its keyed state, if it has any: checked whole now, so a damaged one makes this
		 * checkpoint unusable (latest falls back) instead of failing the job later */
		snprintf(file, sizeof(file), "%s/%.*s.state", dir, (int)(l - 5), e->d_name);
		if (ok && access(file, F_OK) == 0) {
			char serr[600];
			if (ev_state_file_check(file, serr, sizeof(serr)) != EDDY_OK) {
				snprintf(why, wn, "%s", serr);
				ok = false;
			} else if ((o->state = rt_malloc(strlen(file) + 1)) == NULL) {
				snprintf(why, wn, "out of memory");
				ok = false;
			} else {
				memcpy(o->state, file, strlen(file) + 1);
			}
		}
	}
	closedir(d);
	if (!ok)
		return false;
	/* every file the manifest names must be there (and was loaded above) */
	char *text = NULL;
	size_t tlen = 0;
	if (fs_read_all(m, &text, &tlen) != 0) {
		snprintf(why, wn, "%s: cannot read", m);
		return false;
	}
	char *z = realloc(text, tlen + 1);
	if (z == NULL) {
		free(text);
		snprintf(why, wn, "out of memory");
		return false;
	}
	z[tlen] = '\0';
	uint32_t named = 0, named_state = 0, have_state = 0;
	static const char *const keys[] = { "\"file\": \"", "\"state\": \"" };
	for (int kk = 0; kk < 2; kk++)
		for (const char *c = strstr(z, keys[kk]); c && ok; c = strstr(c + 1, keys[kk])) {
			const char *f = c + strlen(keys[kk]), *q = strchr(f, '"');
			if (q == NULL)
				break;
			char file[4400];
			snprintf(file, sizeof(file), "%s/%.*s", dir, (int)(q - f), f);
			*(kk ? &named_state : &named) += 1;
			if (access(file, F_OK) != 0) {
				snprintf(why, wn, "%s names %.*s, which is missing", m, (int)(q - f), f);
				ok = false;
			}
		}
	free(z);
	for (uint32_t i = 0; i < p->nold; i++)
		have_state += p->old[i].state != NULL;
	if (ok && (named != p->nold || named_state != have_state)) {
		snprintf(why, wn, "%s names %u snapshot and %u state files, the directory holds %u "
		         "and %u", m, named, named_state, p->nold, have_state);
		ok = false;
	}
	if (!ok)
		return false;
	/* every operator of the checkpoint must be one of the job's */
	for (uint32_t i = 0; i < p->nold; i++) {
		bool known = false;
		for (uint32_t n = 0; n < p->nnodes && !known; n++)
			known = subtask_of(p, p->old[i].path, p->nodes[n].id) >= 0;
		if (!known) {
			snprintf(why, wn, "%s: task %s is not part of job %s", dir, p->old[i].path, p->name);
			return false;
		}
	}
	uint32_t k = 0; /* tasks in wire's order: consumers first */
	for (uint32_t o = p->norder; o-- > 0;) {
		pnode *nd = &p->nodes[p->order[o]];
		uint32_t was = 0;
		for (uint32_t i = 0; i < p->nold; i++)
			was += subtask_of(p, p->old[i].path, nd->id) >= 0;
		bool same = was == nd->parallelism;
		if (was == 0) {
			snprintf(why, wn, "%s holds no snapshot of operator '%s'", dir, nd->id);
			return false;
		}
		if (!same && nd->op->restore && !nd->op->rescalable) {
			snprintf(why, wn, "operator '%s' (%s) cannot change its parallelism (%u in the "
			         "checkpoint, %u now)", nd->id, nd->op->type, was, nd->parallelism);
			return false;
		}
		for (uint32_t s2 = 0; s2 < nd->parallelism; s2++, k++) {
			task_restore *r = &p->restores[k];
			*r = (task_restore){ .checkpoint = id, .rescaled = !same };
			uint32_t n = 0;
			for (uint32_t i = 0; i < p->nold; i++) {
				long sub = subtask_of(p, p->old[i].path, nd->id);
				if (sub < 0 || (same && (uint32_t)sub != s2))
					continue;
				if (same) {
					r->op = p->old[i].op;
					r->records_in = p->old[i].records_in;
					r->records_out = p->old[i].records_out;
				}
				if (!same && nd->op->restore)
					p->op_lists[k * p->max_ops + n] = p->old[i].op;
				if (nd->op->keyed_state && p->old[i].state)
					p->state_lists[k * p->max_ops + r->nstate_files++] = p->old[i].state;
				n += !same && nd->op->restore;
			}
			if (nd->op->keyed_state && r->nstate_files != (same ? 1u : was)) {
				snprintf(why, wn, "%s: task %s keeps keyed state, but the checkpoint "
				         "holds no state file for it", dir, p->paths[k]);
				return false;
			}
			r->state_files = r->nstate_files ? &p->state_lists[k * p->max_ops] : NULL;
			if (same && r->op == NULL) {
				snprintf(why, wn, "%s holds no snapshot of task %s", dir, p->paths[k]);
				return false;
			}
			r->ops = n ? &p->op_lists[k * p->max_ops] : NULL;
			r->nops = n;
		}
	}
	return true;
}

/* manifest_id reads the checkpoint id a directory's MANIFEST names; 0 if none. */
static uint64_t manifest_id(const char *dir)
{
	char m[4400], *text = NULL;
	size_t len = 0;
	snprintf(m, sizeof(m), "%s/MANIFEST", dir);
	if (fs_read_all(m, &text, &len) != 0)
		return 0;
	char *z = realloc(text, len + 1);
	if (z == NULL) {
		free(text);
		return 0;
	}
	z[len] = '\0';
	const char *c = strstr(z, "\"checkpoint\": ");
	uint64_t id = c ? strtoull(c + 14, NULL, 10) : 0;
	free(z);
	return id;
}

/* part_id parses a sink file name (see is_part) into its subtask and checkpoint id and
 * kind: 'c' committed part-<s>-<m>.<ext>, 'p' .part-<s>-<m>.pending, 'r'
 * .part-<s>-<m>.rolledback-<L>, 'i' .part-<s>.inprogress, 'x' part-<s>.<ext> (no
 * checkpoints); *l: L of a rolled-back file. */
static char part_id(const char *n, unsigned long *sub, uint64_t *m, uint64_t *l)
{
	bool hidden = n[0] == '.';
	char *end;
	*sub = strtoul(n + hidden + 5, &end, 10);
	*m = *l = 0;
	if (*end != '-')
		return hidden ? 'i' : 'x';
	*m = strtoull(end + 1, &end, 10);
	if (!hidden)
		return 'c';
	if (strncmp(end, ".rolledback-", 12) == 0) {
		*l = strtoull(end + 12, NULL, 10);
		return 'r';
	}
	return 'p';
}

/* sink_cleanup makes each file sink's directory what it was at checkpoint id, for every
 * subtask (also ones a rescaled job no longer has): in-progress files go; pending files
 * up to id are committed; committed and pending files after id are rolled back — renamed
 * .part-<s>-<m>.rolledback-<L>, L the last id issued so far — not deleted, because a
 * savepoint between id and L may be restored later: a rolled-back file m comes back when
 * a checkpoint k with m <= k <= L is restored (k is then in the history that wrote m;
 * ids are never reused, operators/checkpoint.h). */
static void sink_dir_cleanup(const plan *p, const pnode *nd, uint64_t id, long only_sub);

static void sink_cleanup(plan *p, uint64_t id)
{
	for (uint32_t i = 0; i < p->nnodes; i++)
		if (p->nodes[i].op == &file_sink_op)
			sink_dir_cleanup(p, &p->nodes[i], id, -1);
}

/* sink_dir_cleanup: sink_cleanup for the file sink nd, its subtask only_sub only if it is
 * not negative (a failover region's restart). */
static void sink_dir_cleanup(const plan *p, const pnode *nd, uint64_t id, long only_sub)
{
	uint64_t last = id;
	char lp[4400], lb[32] = "";
	snprintf(lp, sizeof(lp), "%s/LAST_ID", p->ckpt.dir);
	FILE *lf = fopen(lp, "r");
	if (lf) {
		if (fgets(lb, sizeof(lb), lf))
			last = strtoull(lb, NULL, 10) > last ? strtoull(lb, NULL, 10) : last;
		fclose(lf);
	}
	{
		const sink_conf *sc = nd->conf;
		const char *ext = sc->format == FMT_CSV ? "csv" : "jsonl";
		DIR *d = opendir(sc->path);
		for (struct dirent *e; d && (e = readdir(d)) != NULL;) { /* the largest id seen */
			unsigned long sub;
			uint64_t m, l;
			if (is_part(e->d_name) && part_id(e->d_name, &sub, &m, &l) != 'x' && m > last)
				last = m;
		}
		if (d)
			rewinddir(d);
		for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
			const char *n = e->d_name;
			if (!is_part(n))
				continue;
			unsigned long sub;
			uint64_t m, l;
			char kind = part_id(n, &sub, &m, &l);
			if (only_sub >= 0 && sub != (unsigned long)only_sub)
				continue;
			char from[4400], to[4400];
			snprintf(from, sizeof(from), "%s/%s", sc->path, n);
			snprintf(to, sizeof(to), "%s/part-%lu-%llu.%s", sc->path, sub, (unsigned long long)m,
			         ext);
			if (kind == 'i') {
				unlink(from);
			} else if (kind == 'r') {
				if (m <= id && id <= l)
					rename(from, to); /* back in this history */
			} else if ((kind == 'c' || kind == 'p') && m > id) {
				snprintf(to, sizeof(to), "%s/.part-%lu-%llu.rolledback-%llu", sc->path, sub,
				         (unsigned long long)m, (unsigned long long)last);
				rename(from, to);
			} else if (kind == 'p') {
				rename(from, to); /* pre-committed at or before id: commit */
			}
		}
		if (d)
			closedir(d);
	}
}

/* region_snap: what a region-restarted task restores from (task_arg.hold). */
typedef struct region_snap {
	old_snap o;
	const char *state_files[1];
} region_snap;

static void region_snap_free(void *h)
{
	region_snap *rs = h;
	if (rs == NULL)
		return;
	msgpack_unpacked_destroy(&rs->o.up);
	free(rs->o.buf);
	rt_free(rs->o.state);
	rt_free(rs);
}

/* region_load (task_region.load): task a's snapshot of the checkpoint its region restarts
 * from, read from the checkpoint's directory like load_checkpoint does for a whole job
 * (same parallelism: a region restart never rescales), and its file sink's directory
 * made what it was then for this subtask. On the task's thread (several of a region's
 * tasks load at once: each reads only its own files). */
static eddy_err region_load(task_region *r, task_arg *a, char *why, size_t wn)
{
	plan *p = r->owner;
	if (a->hold_free)
		a->hold_free(a->hold);
	a->hold = NULL;
	a->hold_free = NULL;
	a->restore = NULL;
	const pnode *nd = NULL;
	for (uint32_t i = 0; i < p->nnodes && nd == NULL; i++)
		if (a >= p->nodes[i].args && a < p->nodes[i].args + p->nodes[i].parallelism)
			nd = &p->nodes[i];
	if (nd == NULL) {
		snprintf(why, wn, "no operator of job %s has this task", p->name);
		return EDDY_EINVAL;
	}
	if (nd->op == &file_sink_op)
		sink_dir_cleanup(p, nd, r->restore_id, (long)a->subtask);
	if (r->restore_id == 0)
		return EDDY_OK; /* from the beginning */
	region_snap *rs = rt_calloc(1, sizeof(*rs));
	if (rs == NULL) {
		snprintf(why, wn, "out of memory");
		return EDDY_ENOMEM;
	}
	char name[400], file[4800];
	int nl = snprintf(name, sizeof(name), "%s/%s[%u]", p->name, nd->id, a->subtask);
	for (int i = 0; i < nl && i < (int)sizeof(name); i++)
		name[i] = name[i] == '/' ? '.' : name[i];
	snprintf(file, sizeof(file), "%s/%s.snap", r->restore_dir, name);
	if (!load_file(file, r->restore_id, &rs->o, why, wn)) {
		region_snap_free(rs);
		return EDDY_EINVAL;
	}
	snprintf(file, sizeof(file), "%s/%s.state", r->restore_dir, name);
	if (nd->op->keyed_state) {
		if (access(file, F_OK) != 0 || (rs->o.state = rt_malloc(strlen(file) + 1)) == NULL) {
			snprintf(why, wn, "%s: %s", file,
			         access(file, F_OK) != 0 ? "missing (the task keeps keyed state)"
			                                 : "out of memory");
			region_snap_free(rs);
			return EDDY_EINVAL;
		}
		memcpy(rs->o.state, file, strlen(file) + 1);
		rs->state_files[0] = rs->o.state;
	}
	a->own_restore = (task_restore){ .checkpoint = r->restore_id,
		                         .records_in = rs->o.records_in,
		                         .records_out = rs->o.records_out,
		                         .op = rs->o.op,
		                         .state_files = rs->o.state ? rs->state_files : NULL,
		                         .nstate_files = rs->o.state ? 1 : 0 };
	a->restore = &a->own_restore;
	a->hold = rs;
	a->hold_free = region_snap_free;
	return EDDY_OK;
}

static int by_id_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

eddy_err plan_restore(plan *p, const char *from, FILE *warn, uint64_t *restored, char *why,
                      size_t wn)
{
	if (!p->checkpointing) {
		snprintf(why, wn, "job %s has no checkpoint: section to restore from", p->name);
		return EDDY_EINVAL;
	}
	for (uint32_t i = 0; i < p->nnodes; i++)
		if (p->nodes[i].role == ROLE_SOURCE && p->nodes[i].op->restore == NULL) {
			snprintf(why, wn, "source '%s' (%s) cannot resume from a checkpoint yet",
			         p->nodes[i].id, p->nodes[i].op->type);
			return EDDY_EINVAL;
		}
	if (p->children == NULL) {
		eddy_err e = wire(p); /* the task paths */
		if (e != EDDY_OK)
			return e;
	}
	p->max_ops = 1024; /* old subtasks of one operator a task may take keyed state from */
	p->restores = rt_calloc(p->ntasks, sizeof(*p->restores));
	p->op_lists = rt_calloc((size_t)p->ntasks * p->max_ops, sizeof(*p->op_lists));
	p->state_lists = rt_calloc((size_t)p->ntasks * p->max_ops, sizeof(*p->state_lists));
	if (p->restores == NULL || p->op_lists == NULL || p->state_lists == NULL)
		return EDDY_ENOMEM;
	uint64_t ids[4096];
	size_t n = 0;
	char chk[4400];
	if (strcmp(from, "latest") != 0) { /* a checkpoint or savepoint directory */
		uint64_t v = manifest_id(from);
		if (v == 0) {
			snprintf(why, wn, "--restore %s: not a complete checkpoint or savepoint (no "
			         "readable MANIFEST)", from);
			return EDDY_EINVAL;
		}
		if (!load_checkpoint(p, from, v, why, wn))
			return EDDY_EINVAL;
		*restored = p->restored = v;
	} else {
		DIR *d = opendir(p->ckpt.dir);
		for (struct dirent *e; d && (e = readdir(d)) != NULL && n < 4096;) {
			char *end;
			if (strncmp(e->d_name, "chk-", 4) == 0 && e->d_name[4] >= '1' && e->d_name[4] <= '9') {
				unsigned long long v = strtoull(e->d_name + 4, &end, 10);
				if (*end == '\0')
					ids[n++] = v;
			}
		}
		if (d)
			closedir(d);
		qsort(ids, n, sizeof(ids[0]), by_id_desc);
		for (size_t i = 0; i < n && p->restored == 0; i++) {
			snprintf(chk, sizeof(chk), "%s/chk-%llu", p->ckpt.dir, (unsigned long long)ids[i]);
			char w[600];
			if (load_checkpoint(p, chk, ids[i], w, sizeof(w)))
				*restored = p->restored = ids[i];
			else if (warn)
				fprintf(warn, "eddy run: warning: skipping checkpoint %s: %s\n", chk, w);
		}
		if (p->restored == 0) {
			snprintf(why, wn, "no complete checkpoint in %s to restore from", p->ckpt.dir);
			return EDDY_EINVAL;
		}
	}
	uint32_t k = 0; /* tasks in wire's order: consumers first */
	for (uint32_t o = p->norder; o-- > 0;) {
		pnode *nd = &p->nodes[p->order[o]];
		for (uint32_t s2 = 0; s2 < nd->parallelism; s2++, k++)
			nd->args[s2].restore = &p->restores[k];
	}
	sink_cleanup(p, p->restored);
	p->ckpt_arg.restored_from = p->restored;
	p->gate.done_id = p->restored; /* a region restart before the first checkpoint */
	if (strcmp(from, "latest") != 0)
		snprintf(p->gate.done_dir, sizeof(p->gate.done_dir), "%s", from);
	else
		snprintf(p->gate.done_dir, sizeof(p->gate.done_dir), "%s/chk-%llu", p->ckpt.dir,
		         (unsigned long long)p->restored);
	return EDDY_OK;
}
