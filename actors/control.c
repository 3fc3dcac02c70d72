/* The control plane's request handler and rate sampler (actors/control.h). No I/O here:
 * the nng endpoint is in control_server.c, the HTTP one in metrics.c. */
#include "control.h"

#include "../runtime/alloc.h"
#include "supervisor.h"

#include <msgpack.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- rates ---- */

typedef struct sample {
	char path[128];
	uint64_t rin, rout, busy_ns;
	double in_ps, out_ps, busy_pct;
} sample;

typedef struct job_sample {
	char name[128];
	uint64_t rin, rout;
	double in_ps, out_ps;
} job_sample;

enum { REJ_OVERSIZED, REJ_MALFORMED, REJ_UNAUTHORIZED, REJ_BAD_REQUEST, REJ_CONNECTIONS, NREJ };
static const char *const rej_names[NREJ] = { "oversized", "malformed", "unauthorized",
	                                     "bad_request", "connections" };

struct ctl {
	pthread_rwlock_t lock; /* write: the system is being replaced (ctl_swap) */
	asys *sys;
	ctl_provider pv;
	char *secret;
	size_t secret_len;
	_Atomic uint64_t requests;
	_Atomic uint64_t rejected[NREJ];
	pthread_mutex_t mu; /* the samples */
	sample *samples;
	size_t nsamples;
	job_sample *jobs;
	size_t njobs;
	int64_t sampled_ns; /* monotonic */
};


static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

eddy_err ctl_new(asys *sys, const ctl_provider *provider, const char *secret, ctl **out)
{
	ctl *c = rt_calloc(1, sizeof(*c));
	if (c == NULL)
		return EDDY_ENOMEM;
	c->sys = sys;
	if (provider)
		c->pv = *provider;
	if (secret && (c->secret = rt_strdup(secret)) == NULL) {
		rt_free(c);
		return EDDY_ENOMEM;
	}
	c->secret_len = secret ? strlen(secret) : 0;
	pthread_mutex_init(&c->mu, NULL);
	pthread_rwlock_init(&c->lock, NULL);
	*out = c;
	return EDDY_OK;
}

void ctl_free(ctl *c)
{
	if (c == NULL)
		return;
	if (c->secret)
		memset(c->secret, 0, c->secret_len);
	rt_free(c->secret);
	rt_free(c->samples);
	rt_free(c->jobs);
	pthread_mutex_destroy(&c->mu);
	pthread_rwlock_destroy(&c->lock);
	rt_free(c);
}

void ctl_swap(ctl *c, void (*fn)(void *arg), void *arg, asys *sys)
{
	pthread_rwlock_wrlock(&c->lock);
	fn(arg);
	c->sys = sys;
	pthread_rwlock_unlock(&c->lock);
}

void ctl_reject_connection(ctl *c)
{
	atomic_fetch_add(&c->rejected[REJ_CONNECTIONS], 1);
}

void ctl_counts(ctl *c, uint64_t *requests, uint64_t *rejected)
{
	uint64_t r = 0;
	for (int i = 0; i < NREJ; i++)
		r += atomic_load(&c->rejected[i]);
	*requests = atomic_load(&c->requests);
	*rejected = r;
}

/* records of an actor: a task's records, else its messages. */
static void records_of(ctl *c, const actor_info *in, ctl_actor_extra *x, bool *is_task)
{
	memset(x, 0, sizeof(*x));
	*is_task = c->pv.actor_extra && c->pv.actor_extra(c->pv.ctx, in->path, x);
	if (!*is_task) {
		snprintf(x->op, sizeof(x->op), "%s", in->type);
		x->records_in = in->msgs_in;
		x->records_out = in->msgs_out;
	}
}

static void sample_locked(ctl *c, bool force);

void ctl_sample(ctl *c, bool force)
{
	pthread_rwlock_rdlock(&c->lock);
	sample_locked(c, force);
	pthread_rwlock_unlock(&c->lock);
}

static void sample_locked(ctl *c, bool force)
{
	int64_t now = clock_now_ns(clock_system());
	pthread_mutex_lock(&c->mu);
	int64_t since = now - c->sampled_ns;
	pthread_mutex_unlock(&c->mu);
	if (!force && c->sampled_ns != 0 && since < 900000000)
		return;
	actor_info *infos = NULL;
	size_t n = 0;
	if (asys_list(c->sys, NULL, &infos, &n) != EDDY_OK)
		return;
	sample *ns = rt_calloc(n ? n : 1, sizeof(*ns));
	ctl_job_info ji[16];
	size_t nj = c->pv.jobs ? c->pv.jobs(c->pv.ctx, ji, 16) : 0;
	if (nj > 16)
		nj = 16;
	job_sample *js = rt_calloc(nj ? nj : 1, sizeof(*js));
	if (ns == NULL || js == NULL) {
		rt_free(ns);
		rt_free(js);
		rt_free(infos);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		ctl_actor_extra x;
		bool task;
		records_of(c, &infos[i], &x, &task);
		snprintf(ns[i].path, sizeof(ns[i].path), "%s", infos[i].path);
		ns[i].rin = x.records_in;
		ns[i].rout = x.records_out;
		ns[i].busy_ns = infos[i].busy_ns;
	}
	for (size_t i = 0; i < nj; i++) {
		memcpy(js[i].name, ji[i].name, sizeof(js[i].name)); /* both 128, NUL-terminated */
		js[i].rin = ji[i].records_in;
		js[i].rout = ji[i].records_out;
	}
	pthread_mutex_lock(&c->mu);
	double dt = c->sampled_ns ? (double)(now - c->sampled_ns) / 1e9 : 0;
	for (size_t i = 0, hint = 0; i < n && dt > 0; i++) {
		const sample *old = NULL;
		for (size_t k = 0; k < c->nsamples && old == NULL; k++) {
			size_t j = (hint + k) % c->nsamples;
			if (strcmp(c->samples[j].path, ns[i].path) == 0) {
				old = &c->samples[j];
				hint = j + 1;
			}
		}
		if (old == NULL)
			continue;
		ns[i].in_ps = (double)(ns[i].rin - old->rin) / dt;
		ns[i].out_ps = (double)(ns[i].rout - old->rout) / dt;
		ns[i].busy_pct = (double)(ns[i].busy_ns - old->busy_ns) / 1e9 / dt * 100.0;
		if (ns[i].busy_pct > 100.0)
			ns[i].busy_pct = 100.0; /* an activation spanning the interval */
	}
	for (size_t i = 0; i < nj && dt > 0; i++)
		for (size_t k = 0; k < c->njobs; k++)
			if (strcmp(c->jobs[k].name, js[i].name) == 0) {
				js[i].in_ps = (double)(js[i].rin - c->jobs[k].rin) / dt;
				js[i].out_ps = (double)(js[i].rout - c->jobs[k].rout) / dt;
			}
	rt_free(c->samples);
	rt_free(c->jobs);
	c->samples = ns;
	c->nsamples = n;
	c->jobs = js;
	c->njobs = nj;
	c->sampled_ns = now;
	pthread_mutex_unlock(&c->mu);
	rt_free(infos);
}

/* rates_of copies path's last rates (0 when not sampled yet). */
static void rates_of(ctl *c, const char *path, double *in, double *out, double *busy)
{
	*in = *out = *busy = 0;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nsamples; i++)
		if (strcmp(c->samples[i].path, path) == 0) {
			*in = c->samples[i].in_ps;
			*out = c->samples[i].out_ps;
			*busy = c->samples[i].busy_pct;
			break;
		}
	pthread_mutex_unlock(&c->mu);
}

static void job_rates(ctl *c, const char *name, double *in, double *out)
{
	*in = *out = 0;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->njobs; i++)
		if (strcmp(c->jobs[i].name, name) == 0) {
			*in = c->jobs[i].in_ps;
			*out = c->jobs[i].out_ps;
		}
	pthread_mutex_unlock(&c->mu);
}

/* ---- msgpack helpers ---- */

typedef struct reply {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} reply;

static void put_str(reply *r, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(&r->pk, n);
	msgpack_pack_str_body(&r->pk, s, n);
}

static void put_key(reply *r, const char *k)
{
	put_str(r, k);
}

static void kv_str(reply *r, const char *k, const char *v)
{
	put_key(r, k);
	if (v)
		put_str(r, v);
	else
		msgpack_pack_nil(&r->pk);
}

static void kv_u64(reply *r, const char *k, uint64_t v)
{
	put_key(r, k);
	msgpack_pack_uint64(&r->pk, v);
}

static void kv_i64(reply *r, const char *k, int64_t v)
{
	put_key(r, k);
	msgpack_pack_int64(&r->pk, v);
}

static void kv_f64(reply *r, const char *k, double v)
{
	put_key(r, k);
	msgpack_pack_double(&r->pk, v);
}

static void kv_nil(reply *r, const char *k)
{
	put_key(r, k);
	msgpack_pack_nil(&r->pk);
}

static void kv_wm(reply *r, const char *k, bool has, int64_t wm)
{
	if (has && wm != INT64_MIN)
		kv_i64(r, k, wm);
	else
		kv_nil(r, k);
}

static void begin_ok(reply *r)
{
	msgpack_pack_map(&r->pk, 2);
	put_key(r, "ok");
	msgpack_pack_true(&r->pk);
	put_key(r, "result");
}

/* error_reply replaces r's content with {"ok": false, "error": ...}, counting a reject
 * of kind rej (-1: none). */
static eddy_err error_reply(ctl *c, reply *r, int rej, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static eddy_err error_reply(ctl *c, reply *r, int rej, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (rej >= 0)
		atomic_fetch_add(&c->rejected[rej], 1);
	msgpack_sbuffer_clear(&r->sb);
	msgpack_pack_map(&r->pk, 2);
	put_key(r, "ok");
	msgpack_pack_false(&r->pk);
	kv_str(r, "error", buf);
	return EDDY_OK;
}

/* ---- a bounded check of a frame before msgpack-c decodes it ----
 * Every container's declared count must fit in the bytes that remain (each element
 * takes at least one), and nesting stays within MP_DEPTH: a 5-byte frame cannot make the
 * decoder reserve gigabytes. */
#define MP_DEPTH 16

static bool take(const uint8_t **p, const uint8_t *end, size_t n)
{
	if ((size_t)(end - *p) < n)
		return false;
	*p += n;
	return true;
}

static uint32_t be(const uint8_t *p, int n)
{
	uint32_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static bool mp_check(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	uint64_t left[MP_DEPTH + 1]; /* items still to read per open container */
	int depth = 0;
	left[0] = 1;
	while (depth > 0 || left[0] > 0) {
		if (left[depth] == 0) {
			depth--;
			continue;
		}
		left[depth]--;
		if (p >= end)
			return false;
		uint8_t b = *p++;
		uint64_t items = 0;
		bool container = false;
		size_t skip = 0;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			skip = 0;
		else if (b >= 0x80 && b <= 0x8f)
			container = true, items = 2u * (b & 0x0f);
		else if (b >= 0x90 && b <= 0x9f)
			container = true, items = b & 0x0f;
		else if (b >= 0xa0 && b <= 0xbf)
			skip = b & 0x1f;
		else {
			int w;
			switch (b) {
			case 0xc4: case 0xd9: /* bin8, str8 */
				w = 1;
				goto sized;
			case 0xc5: case 0xda:
				w = 2;
				goto sized;
			case 0xc6: case 0xdb:
				w = 4;
			sized:
				if ((size_t)(end - p) < (size_t)w)
					return false;
				skip = be(p, w);
				p += w;
				break;
			case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32: size, type, data */
				w = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
				if ((size_t)(end - p) < (size_t)w)
					return false;
				skip = (size_t)be(p, w) + 1;
				p += w;
				break;
			case 0xca: skip = 4; break;
			case 0xcb: skip = 8; break;
			case 0xcc: case 0xd0: skip = 1; break;
			case 0xcd: case 0xd1: skip = 2; break;
			case 0xce: case 0xd2: skip = 4; break;
			case 0xcf: case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			case 0xdc: case 0xde:
				if ((size_t)(end - p) < 2)
					return false;
				container = true;
				items = (uint64_t)be(p, 2) * (b == 0xde ? 2 : 1);
				p += 2;
				break;
			case 0xdd: case 0xdf:
				if ((size_t)(end - p) < 4)
					return false;
				container = true;
				items = (uint64_t)be(p, 4) * (b == 0xdf ? 2 : 1);
				p += 4;
				break;
			default: /* 0xc1: never used */
				return false;
			}
		}
		if (container) {
			if (items > (uint64_t)(end - p) || depth == MP_DEPTH)
				return false;
			left[++depth] = items;
		} else if (!take(&p, end, skip)) {
			return false;
		}
	}
	return p == end; /* exactly one value */
}

/* ---- requests ---- */

#define MAX_ARGS 8

typedef struct request {
	char cmd[32];
	char *args[MAX_ARGS]; /* owned (malloc) */
	int nargs;
	const msgpack_object *secret;
	bool has_v;
	int64_t v;
} request;

static bool obj_is(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       memcmp(o->via.str.ptr, s, n) == 0;
}

/* parse_request reads the request map; false with why on a bad shape. */
static bool parse_request(const msgpack_object *o, request *rq, char *why, size_t wn)
{
	memset(rq, 0, sizeof(*rq));
	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(why, wn, "a request must be a map");
		return false;
	}
	for (uint32_t i = 0; i < o->via.map.size; i++) /* first, so a bad request is judged */
		if (obj_is(&o->via.map.ptr[i].key, "secret"))  /* by its secret first */
			rq->secret = &o->via.map.ptr[i].val;
	bool have_cmd = false;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
		if (obj_is(k, "cmd")) {
			if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
			    v->via.str.size >= sizeof(rq->cmd)) {
				snprintf(why, wn, "'cmd' must be a string of 1 to %zu bytes",
				         sizeof(rq->cmd) - 1);
				return false;
			}
			memcpy(rq->cmd, v->via.str.ptr, v->via.str.size);
			rq->cmd[v->via.str.size] = '\0';
			if (strlen(rq->cmd) != v->via.str.size) {
				snprintf(why, wn, "'cmd' holds a NUL byte");
				return false;
			}
			have_cmd = true;
		} else if (obj_is(k, "args")) {
			if (v->type == MSGPACK_OBJECT_NIL)
				continue;
			if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > MAX_ARGS) {
				snprintf(why, wn, "'args' must be a list of at most %d strings", MAX_ARGS);
				return false;
			}
			for (uint32_t a = 0; a < v->via.array.size; a++) {
				const msgpack_object *s = &v->via.array.ptr[a];
				if (s->type != MSGPACK_OBJECT_STR || s->via.str.size > 4096 ||
				    memchr(s->via.str.ptr, '\0', s->via.str.size)) {
					snprintf(why, wn, "argument %u must be a string without NUL bytes "
					                  "(at most 4096 bytes)", a + 1);
					return false;
				}
				char *copy = malloc(s->via.str.size + 1);
				if (copy == NULL) {
					snprintf(why, wn, "out of memory");
					return false;
				}
				memcpy(copy, s->via.str.ptr, s->via.str.size);
				copy[s->via.str.size] = '\0';
				rq->args[rq->nargs++] = copy;
			}
		} else if (obj_is(k, "v")) {
			if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
				snprintf(why, wn, "'v' must be a protocol version number");
				return false;
			}
			rq->has_v = true;
			rq->v = (int64_t)v->via.u64;
		}
		/* other keys are ignored: a newer client may send more */
	}
	if (!have_cmd) {
		snprintf(why, wn, "the request has no 'cmd'");
		return false;
	}
	if (rq->has_v && rq->v != CTL_PROTOCOL) {
		snprintf(why, wn, "protocol version %lld is not supported (this server speaks %d)",
		         (long long)rq->v, CTL_PROTOCOL);
		return false;
	}
	return true;
}

static void request_free(request *rq)
{
	for (int i = 0; i < rq->nargs; i++)
		free(rq->args[i]);
	rq->nargs = 0;
}

/* secret_ok compares in time independent of where they differ. */
static bool secret_ok(const ctl *c, const msgpack_object *s)
{
	if (c->secret == NULL)
		return true;
	if (s == NULL || s->type != MSGPACK_OBJECT_STR)
		return false;
	size_t n = s->via.str.size;
	unsigned char diff = n != c->secret_len;
	for (size_t i = 0; i < c->secret_len; i++)
		diff |= (unsigned char)c->secret[i] ^ (unsigned char)(i < n ? s->via.str.ptr[i] : 0);
	return diff == 0;
}

/* ---- commands ---- */

/* actor_row writes one actor's map: the `actors` fields, plus the `info` ones if full. */
static void actor_row(ctl *c, reply *r, const actor_info *in, bool full,
                      const actor_info *all, size_t nall)
{
	ctl_actor_extra x;
	bool task;
	records_of(c, in, &x, &task);
	double ips, ops, busy;
	rates_of(c, in->path, &ips, &ops, &busy);
	uint32_t nchildren = 0;
	for (size_t i = 0; full && i < nall; i++)
		nchildren += strcmp(all[i].parent, in->path) == 0;
	msgpack_pack_map(&r->pk, full ? 28 : 14);
	kv_str(r, "path", in->path);
	kv_str(r, "type", in->type);
	kv_str(r, "op", x.op);
	kv_str(r, "status", actor_status_name(in->status));
	kv_u64(r, "mailbox_len", in->mailbox_len);
	kv_u64(r, "mailbox_cap", in->mailbox_cap);
	if (task) {
		kv_u64(r, "records_in", x.records_in);
		kv_u64(r, "records_out", x.records_out);
		kv_f64(r, "in_per_s", ips);
		kv_f64(r, "out_per_s", ops);
	} else { /* records are the tasks'; a supervisor's messages are in msgs_* */
		kv_nil(r, "records_in");
		kv_nil(r, "records_out");
		kv_nil(r, "in_per_s");
		kv_nil(r, "out_per_s");
	}
	kv_f64(r, "busy_pct", busy);
	kv_u64(r, "restarts", in->restarts);
	kv_str(r, "last_error", in->last_error);
	if (in->last_error_ms)
		kv_i64(r, "last_error_ms", in->last_error_ms);
	else
		kv_nil(r, "last_error_ms");
	if (!full)
		return;
	kv_str(r, "parent", in->parent[0] ? in->parent : NULL);
	put_key(r, "children");
	msgpack_pack_array(&r->pk, nchildren);
	for (size_t i = 0; i < nall; i++)
		if (strcmp(all[i].parent, in->path) == 0)
			put_str(r, all[i].path);
	kv_u64(r, "control_len", in->control_len);
	kv_u64(r, "outbox_len", in->outbox_len);
	kv_u64(r, "msgs_in", in->msgs_in);
	kv_u64(r, "msgs_out", in->msgs_out);
	kv_f64(r, "busy_ms", (double)in->busy_ns / 1e6);
	kv_u64(r, "parks", in->parks);
	kv_u64(r, "dead_letters", in->dead_letters);
	kv_wm(r, "watermark", task && x.has_watermark, x.watermark);
	if (task) {
		kv_u64(r, "state_bytes", x.state_bytes);
		kv_u64(r, "dropped", x.dropped);
	} else {
		kv_nil(r, "state_bytes");
		kv_nil(r, "dropped");
	}
	if (task && x.aligning)
		kv_u64(r, "aligning", x.aligning);
	else
		kv_nil(r, "aligning");
	kv_u64(r, "held", task ? x.held : 0);
}

static eddy_err cmd_actors(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs > 1)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: actors [GLOB]");
	actor_info *in;
	size_t n;
	if (asys_list(c->sys, rq->nargs ? rq->args[0] : NULL, &in, &n) != EDDY_OK)
		return EDDY_ENOMEM;
	begin_ok(r);
	msgpack_pack_array(&r->pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		actor_row(c, r, &in[i], false, NULL, 0);
	rt_free(in);
	return EDDY_OK;
}

static eddy_err cmd_info(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs != 1)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: info PATH");
	actor_info *in;
	size_t n;
	if (asys_list(c->sys, NULL, &in, &n) != EDDY_OK)
		return EDDY_ENOMEM;
	const actor_info *me = NULL;
	for (size_t i = 0; i < n && me == NULL; i++)
		if (strcmp(in[i].path, rq->args[0]) == 0)
			me = &in[i];
	if (me == NULL) {
		rt_free(in);
		return error_reply(c, r, -1, "no actor %s", rq->args[0]);
	}
	begin_ok(r);
	actor_row(c, r, me, true, in, n);
	rt_free(in);
	return EDDY_OK;
}

/* tree_order lists the subtree under parent ("" for the roots) depth first into
 * idx/depth; *k counts. */
static void tree_order(const actor_info *in, size_t n, const char *parent, int d,
                       uint32_t *idx, int *depth, bool *seen, size_t *k)
{
	for (size_t i = 0; i < n; i++) {
		if (seen[i] || strcmp(in[i].parent, parent) != 0)
			continue;
		seen[i] = true;
		idx[*k] = (uint32_t)i;
		depth[(*k)++] = d;
		tree_order(in, n, in[i].path, d + 1, idx, depth, seen, k);
	}
}

static eddy_err cmd_tree(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs != 0)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: tree");
	actor_info *in;
	size_t n;
	if (asys_list(c->sys, NULL, &in, &n) != EDDY_OK)
		return EDDY_ENOMEM;
	uint32_t *idx = rt_calloc(n + 1, sizeof(*idx));
	int *depth = rt_calloc(n + 1, sizeof(*depth));
	bool *seen = rt_calloc(n + 1, sizeof(*seen));
	if (idx == NULL || depth == NULL || seen == NULL) {
		rt_free(idx), rt_free(depth), rt_free(seen), rt_free(in);
		return EDDY_ENOMEM;
	}
	size_t k = 0;
	tree_order(in, n, "", 0, idx, depth, seen, &k);
	for (size_t i = 0; i < n; i++) /* not reachable from a root: listed at depth 0 */
		if (!seen[i]) {
			idx[k] = (uint32_t)i;
			depth[k++] = 0;
		}
	begin_ok(r);
	msgpack_pack_array(&r->pk, (uint32_t)k);
	for (size_t j = 0; j < k; j++) {
		const actor_info *me = &in[idx[j]];
		actor *a = asys_find(c->sys, me->path);
		const sup_spec *sp = a ? sup_spec_of(a) : NULL;
		actor *pa = me->parent[0] ? asys_find(c->sys, me->parent) : NULL;
		const sup_spec *psp = pa ? sup_spec_of(pa) : NULL;
		sup_restart rt;
		bool has_rt = psp && sup_child_restart(psp, me->path, &rt);
		msgpack_pack_map(&r->pk, 9);
		kv_str(r, "path", me->path);
		kv_str(r, "parent", me->parent[0] ? me->parent : NULL);
		kv_i64(r, "depth", depth[j]);
		kv_str(r, "type", me->type);
		kv_str(r, "status", actor_status_name(me->status));
		kv_str(r, "strategy", sp ? sup_strategy_name(sp->strategy) : NULL);
		if (sp) {
			kv_u64(r, "intensity", sp->intensity);
			kv_i64(r, "period_ms", sp->period_ms);
		} else {
			kv_nil(r, "intensity");
			kv_nil(r, "period_ms");
		}
		kv_str(r, "restart", has_rt ? sup_restart_name(rt) : NULL);
	}
	rt_free(idx), rt_free(depth), rt_free(seen), rt_free(in);
	return EDDY_OK;
}

static size_t list_jobs(ctl *c, ctl_job_info *ji, size_t max)
{
	size_t n = c->pv.jobs ? c->pv.jobs(c->pv.ctx, ji, max) : 0;
	return n > max ? max : n;
}

static eddy_err cmd_jobs(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs != 0)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: jobs");
	ctl_job_info ji[16];
	size_t n = list_jobs(c, ji, 16);
	int64_t now = wall_ms();
	begin_ok(r);
	msgpack_pack_array(&r->pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		double ips, ops;
		job_rates(c, ji[i].name, &ips, &ops);
		msgpack_pack_map(&r->pk, 7);
		kv_str(r, "name", ji[i].name);
		kv_str(r, "status", ji[i].status);
		kv_i64(r, "uptime_ms", now - ji[i].started_ms);
		kv_u64(r, "records_in", ji[i].records_in);
		kv_u64(r, "records_out", ji[i].records_out);
		kv_f64(r, "in_per_s", ips);
		kv_f64(r, "out_per_s", ops);
	}
	return EDDY_OK;
}

static eddy_err cmd_stats(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs != 0)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: stats");
	ctl_job_info ji[16];
	size_t n = list_jobs(c, ji, 16);
	actor_info *in;
	size_t na;
	if (asys_list(c->sys, NULL, &in, &na) != EDDY_OK)
		return EDDY_ENOMEM;
	int64_t now = wall_ms();
	begin_ok(r);
	msgpack_pack_map(&r->pk, 2);
	put_key(r, "jobs");
	msgpack_pack_array(&r->pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		double ips, ops;
		job_rates(c, ji[i].name, &ips, &ops);
		msgpack_pack_map(&r->pk, 9);
		kv_str(r, "name", ji[i].name);
		kv_str(r, "status", ji[i].status);
		kv_u64(r, "records_in", ji[i].records_in);
		kv_u64(r, "records_out", ji[i].records_out);
		kv_f64(r, "in_per_s", ips);
		kv_f64(r, "out_per_s", ops);
		bool wm = ji[i].has_watermark && ji[i].watermark != INT64_MIN &&
		          ji[i].watermark != INT64_MAX;
		kv_wm(r, "watermark", wm, ji[i].watermark);
		if (wm)
			kv_i64(r, "watermark_lag_ms", now - ji[i].watermark);
		else
			kv_nil(r, "watermark_lag_ms");
		size_t plen = strlen(ji[i].name);
		uint32_t nbp = 0;
		for (size_t k = 0; k < na; k++)
			nbp += in[k].status == ACTOR_PARKED && strncmp(in[k].path, ji[i].name, plen) == 0 &&
			       in[k].path[plen] == '/';
		put_key(r, "backpressured");
		msgpack_pack_array(&r->pk, nbp);
		for (size_t k = 0; k < na; k++)
			if (in[k].status == ACTOR_PARKED && strncmp(in[k].path, ji[i].name, plen) == 0 &&
			    in[k].path[plen] == '/')
				put_str(r, in[k].path);
	}
	rt_free(in);
	put_key(r, "control");
	msgpack_pack_map(&r->pk, 3);
	uint64_t req, rej;
	ctl_counts(c, &req, &rej);
	kv_u64(r, "requests", req);
	kv_u64(r, "rejected", rej);
	put_key(r, "rejected_by");
	msgpack_pack_map(&r->pk, NREJ);
	for (int i = 0; i < NREJ; i++)
		kv_u64(r, rej_names[i], atomic_load(&c->rejected[i]));
	return EDDY_OK;
}

static void drop_reason(rt_msg *m)
{
	rt_free(m->ptr);
}

static eddy_err cmd_kill(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs < 1)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: kill PATH [REASON]");
	actor *a = asys_find(c->sys, rq->args[0]);
	if (a == NULL)
		return error_reply(c, r, -1, "no actor %s", rq->args[0]);
	char reason[256] = "";
	for (int i = 1; i < rq->nargs; i++) {
		size_t l = strlen(reason);
		snprintf(reason + l, sizeof(reason) - l, "%s%s", i > 1 ? " " : "", rq->args[i]);
	}
	if (reason[0] == '\0')
		snprintf(reason, sizeof(reason), "killed from the shell");
	actor_status st = actor_get_status(a);
	if (st == ACTOR_STOPPED || st == ACTOR_RESTARTING)
		return error_reply(c, r, -1, "%s is %s; nothing to kill", rq->args[0],
		                   actor_status_name(st));
	char *copy = rt_strdup(reason);
	if (copy == NULL)
		return EDDY_ENOMEM;
	rt_msg m = { .kind = MSG_FAIL, .ptr = copy, .drop = drop_reason };
	if (actor_send_ctl(a, &m) != EDDY_OK) {
		rt_free(copy);
		return EDDY_ENOMEM;
	}
	asys_log_event(c->sys, rq->args[0], "kill", "requested from the control endpoint: %s",
	               reason);
	begin_ok(r);
	msgpack_pack_map(&r->pk, 2);
	kv_str(r, "killed", rq->args[0]);
	kv_str(r, "reason", reason);
	return EDDY_OK;
}

static eddy_err cmd_log(ctl *c, reply *r, const request *rq)
{
	long n = 20;
	if (rq->nargs > 1)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: log [N]");
	if (rq->nargs == 1) {
		char *end;
		n = strtol(rq->args[0], &end, 10);
		if (*end != '\0' || end == rq->args[0] || n < 1 || n > 1024)
			return error_reply(c, r, REJ_BAD_REQUEST,
			                   "log: N must be a number from 1 to 1024, got '%s'",
			                   rq->args[0]);
	}
	asys_event *ev = rt_malloc((size_t)n * sizeof(*ev));
	if (ev == NULL)
		return EDDY_ENOMEM;
	size_t k = asys_events(c->sys, ev, (size_t)n);
	begin_ok(r);
	msgpack_pack_array(&r->pk, (uint32_t)k);
	for (size_t i = 0; i < k; i++) {
		msgpack_pack_map(&r->pk, 4);
		kv_i64(r, "time_ms", ev[i].wall_ms);
		kv_str(r, "path", ev[i].path);
		kv_str(r, "what", ev[i].what);
		kv_str(r, "detail", ev[i].detail);
	}
	rt_free(ev);
	return EDDY_OK;
}

static eddy_err cmd_cancel(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs != 1)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: cancel JOB");
	char why[256] = "no such job";
	if (c->pv.cancel == NULL || !c->pv.cancel(c->pv.ctx, rq->args[0], why, sizeof(why)))
		return error_reply(c, r, -1, "cannot cancel %s: %s", rq->args[0], why);
	asys_log_event(c->sys, rq->args[0], "job", "cancel requested from the control endpoint");
	begin_ok(r);
	msgpack_pack_map(&r->pk, 1);
	kv_str(r, "cancelled", rq->args[0]);
	return EDDY_OK;
}

static eddy_err cmd_checkpoints(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs != 0)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: checkpoints");
	ctl_checkpoint_info ci[32];
	size_t n = 0;
	char why[256] = "this process runs no job with checkpoints";
	if (c->pv.checkpoints == NULL || !c->pv.checkpoints(c->pv.ctx, ci, 32, &n, why, sizeof(why)))
		return error_reply(c, r, -1, "no checkpoints: %s", why);
	begin_ok(r);
	msgpack_pack_array(&r->pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_map(&r->pk, 11);
		kv_u64(r, "id", ci[i].id);
		put_key(r, "savepoint");
		if (ci[i].savepoint)
			msgpack_pack_true(&r->pk);
		else
			msgpack_pack_false(&r->pk);
		kv_str(r, "dir", ci[i].dir);
		kv_str(r, "status", ci[i].status);
		kv_i64(r, "started_ms", ci[i].started_ms);
		kv_i64(r, "duration_ms", ci[i].duration_ms);
		kv_u64(r, "bytes", ci[i].bytes);
		kv_i64(r, "alignment_ms", ci[i].alignment_ms);
		kv_u64(r, "acks", ci[i].acks);
		kv_u64(r, "tasks", ci[i].tasks);
		kv_str(r, "why", ci[i].why[0] ? ci[i].why : NULL);
	}
	return EDDY_OK;
}

static eddy_err cmd_checkpoint(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs != 0)
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: checkpoint");
	char why[256] = "this process runs no job with checkpoints";
	if (c->pv.trigger_checkpoint == NULL || !c->pv.trigger_checkpoint(c->pv.ctx, why, sizeof(why)))
		return error_reply(c, r, -1, "cannot trigger a checkpoint: %s", why);
	begin_ok(r);
	msgpack_pack_map(&r->pk, 1);
	put_key(r, "triggered");
	msgpack_pack_true(&r->pk);
	return EDDY_OK;
}

static eddy_err cmd_savepoint(ctl *c, reply *r, const request *rq)
{
	if (rq->nargs != 1 || rq->args[0][0] == '\0')
		return error_reply(c, r, REJ_BAD_REQUEST, "usage: savepoint DIR");
	char why[256] = "this process runs no job with checkpoints";
	if (c->pv.trigger_savepoint == NULL ||
	    !c->pv.trigger_savepoint(c->pv.ctx, rq->args[0], why, sizeof(why)))
		return error_reply(c, r, -1, "cannot take a savepoint: %s", why);
	begin_ok(r);
	msgpack_pack_map(&r->pk, 2);
	put_key(r, "triggered");
	msgpack_pack_true(&r->pk);
	kv_str(r, "dir", rq->args[0]);
	return EDDY_OK;
}

typedef struct command {
	const char *name;
	eddy_err (*fn)(ctl *c, reply *r, const request *rq);
} command;

static const command commands[] = {
	{ "jobs", cmd_jobs },   { "actors", cmd_actors }, { "tree", cmd_tree },
	{ "info", cmd_info },   { "stats", cmd_stats },   { "kill", cmd_kill },
	{ "log", cmd_log },     { "cancel", cmd_cancel }, { "checkpoints", cmd_checkpoints },
	{ "checkpoint", cmd_checkpoint }, { "savepoint", cmd_savepoint },
};

static eddy_err handle_locked(ctl *c, const void *req, size_t len, char **out, size_t *out_len);

eddy_err ctl_handle(ctl *c, const void *req, size_t len, char **out, size_t *out_len)
{
	pthread_rwlock_rdlock(&c->lock);
	eddy_err e = handle_locked(c, req, len, out, out_len);
	pthread_rwlock_unlock(&c->lock);
	return e;
}

static eddy_err handle_locked(ctl *c, const void *req, size_t len, char **out, size_t *out_len)
{
	reply r;
	msgpack_sbuffer_init(&r.sb);
	msgpack_packer_init(&r.pk, &r.sb, msgpack_sbuffer_write);
	atomic_fetch_add(&c->requests, 1);
	eddy_err err = EDDY_OK;
	if (len > CTL_MAX_REQUEST) {
		err = error_reply(c, &r, REJ_OVERSIZED, "request of %zu bytes is over the %u-byte limit",
		                  len, CTL_MAX_REQUEST);
	} else if (len == 0 || !mp_check(req, len)) {
		err = error_reply(c, &r, REJ_MALFORMED,
		                  "malformed request: not one msgpack value (%zu bytes)", len);
	} else {
		msgpack_unpacked up;
		msgpack_unpacked_init(&up);
		size_t off = 0;
		request rq;
		char why[256];
		memset(&rq, 0, sizeof(rq));
		if (msgpack_unpack_next(&up, req, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
			err = error_reply(c, &r, REJ_MALFORMED, "malformed request: cannot decode it");
		} else if (!parse_request(&up.data, &rq, why, sizeof(why))) {
			/* a bad request without the right secret counts as unauthorized */
			err = !secret_ok(c, rq.secret)
			          ? error_reply(c, &r, REJ_UNAUTHORIZED, "unauthorized: wrong or no secret")
			          : error_reply(c, &r, REJ_MALFORMED, "malformed request: %s", why);
		} else if (!secret_ok(c, rq.secret)) {
			err = error_reply(c, &r, REJ_UNAUTHORIZED, "unauthorized: wrong or no secret");
		} else {
			const command *cmd = NULL;
			for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
				if (strcmp(commands[i].name, rq.cmd) == 0)
					cmd = &commands[i];
			if (cmd == NULL)
				err = error_reply(c, &r, REJ_BAD_REQUEST, "unknown command '%s'", rq.cmd);
			else if ((err = cmd->fn(c, &r, &rq)) == EDDY_ENOMEM)
				err = error_reply(c, &r, -1, "out of memory");
		}
		request_free(&rq);
		msgpack_unpacked_destroy(&up);
	}
	if (err != EDDY_OK || r.sb.data == NULL) {
		msgpack_sbuffer_destroy(&r.sb);
		return EDDY_ENOMEM;
	}
	*out_len = r.sb.size;
	*out = msgpack_sbuffer_release(&r.sb);
	return EDDY_OK;
}

/* ---- Prometheus text ---- */

/* label_value writes s escaped for a label value (backslash, quote, newline). */
static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f), fputc(*s, f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct metric_row {
	const char *name, *type, *help;
} metric_row;

static void metrics_locked(ctl *c, FILE *f);

void ctl_metrics(ctl *c, FILE *f)
{
	pthread_rwlock_rdlock(&c->lock);
	metrics_locked(c, f);
	pthread_rwlock_unlock(&c->lock);
}

static void metrics_locked(ctl *c, FILE *f)
{
	actor_info *in = NULL;
	size_t n = 0;
	if (asys_list(c->sys, NULL, &in, &n) != EDDY_OK)
		n = 0;
	ctl_actor_extra *xs = rt_calloc(n ? n : 1, sizeof(*xs));
	bool *task = rt_calloc(n ? n : 1, sizeof(*task));
	if (xs == NULL || task == NULL)
		n = 0;
	for (size_t i = 0; i < n; i++)
		records_of(c, &in[i], &xs[i], &task[i]);
	static const metric_row rows[] = {
		{ "eddy_actor_records_in_total", "counter",
		  "Records received by a task (a source: produced)." },
		{ "eddy_actor_records_out_total", "counter",
		  "Records sent by a task (a sink: written)." },
		{ "eddy_actor_records_dropped_total", "counter",
		  "Records a task dropped by design (a split's records matching no output)." },
		{ "eddy_actor_messages_in_total", "counter", "Messages delivered to the actor." },
		{ "eddy_actor_messages_out_total", "counter", "Messages sent by the actor." },
		{ "eddy_actor_mailbox_length", "gauge", "Data messages queued in the mailbox." },
		{ "eddy_actor_mailbox_capacity", "gauge", "Data slots of the mailbox." },
		{ "eddy_actor_busy_seconds_total", "counter", "Time spent in activations." },
		{ "eddy_actor_restarts_total", "counter", "Times the actor was restarted." },
		{ "eddy_actor_parked", "gauge", "1 while the actor waits for room downstream." },
	};
	for (size_t m = 0; m < sizeof(rows) / sizeof(rows[0]); m++) {
		family(f, rows[m].name, rows[m].type, rows[m].help);
		for (size_t i = 0; i < n; i++) {
			if (m < 3 && !task[i])
				continue; /* records are the tasks' */
			fprintf(f, "%s{actor=\"", rows[m].name);
			label_value(f, in[i].path);
			fputs("\",op=\"", f);
			label_value(f, xs[i].op);
			fputs("\"} ", f);
			switch (m) {
			case 0: fprintf(f, "%llu\n", (unsigned long long)xs[i].records_in); break;
			case 1: fprintf(f, "%llu\n", (unsigned long long)xs[i].records_out); break;
			case 2: fprintf(f, "%llu\n", (unsigned long long)xs[i].dropped); break;
			case 3: fprintf(f, "%llu\n", (unsigned long long)in[i].msgs_in); break;
			case 4: fprintf(f, "%llu\n", (unsigned long long)in[i].msgs_out); break;
			case 5: fprintf(f, "%u\n", in[i].mailbox_len); break;
			case 6: fprintf(f, "%u\n", in[i].mailbox_cap); break;
			case 7: fprintf(f, "%.9f\n", (double)in[i].busy_ns / 1e9); break;
			case 8: fprintf(f, "%llu\n", (unsigned long long)in[i].restarts); break;
			default: fprintf(f, "%d\n", in[i].status == ACTOR_PARKED); break;
			}
		}
	}
	rt_free(xs);
	rt_free(task);
	rt_free(in);
	ctl_job_info ji[16];
	size_t nj = list_jobs(c, ji, 16);
	static const metric_row jrows[] = {
		{ "eddy_job_records_in_total", "counter", "Records produced by the job's sources." },
		{ "eddy_job_records_out_total", "counter", "Records written by the job's sinks." },
		{ "eddy_job_records_in_per_second", "gauge",
		  "Source throughput over the last sampling interval (about 1 s)." },
		{ "eddy_job_records_out_per_second", "gauge",
		  "Sink throughput over the last sampling interval (about 1 s)." },
		{ "eddy_job_watermark_seconds", "gauge",
		  "The job's output watermark (event time, Unix seconds); absent before the first." },
		{ "eddy_job_uptime_seconds", "gauge", "Time since the job started." },
	};
	int64_t now = wall_ms();
	for (size_t m = 0; m < sizeof(jrows) / sizeof(jrows[0]); m++) {
		family(f, jrows[m].name, jrows[m].type, jrows[m].help);
		for (size_t i = 0; i < nj; i++) {
			double ips, ops;
			job_rates(c, ji[i].name, &ips, &ops);
			bool wm = ji[i].has_watermark && ji[i].watermark != INT64_MIN &&
			          ji[i].watermark != INT64_MAX;
			if (m == 4 && !wm)
				continue;
			fprintf(f, "%s{job=\"", jrows[m].name);
			label_value(f, ji[i].name);
			fputs("\"} ", f);
			switch (m) {
			case 0: fprintf(f, "%llu\n", (unsigned long long)ji[i].records_in); break;
			case 1: fprintf(f, "%llu\n", (unsigned long long)ji[i].records_out); break;
			case 2: fprintf(f, "%.3f\n", ips); break;
			case 3: fprintf(f, "%.3f\n", ops); break;
			case 4: fprintf(f, "%.3f\n", (double)ji[i].watermark / 1000.0); break;
			default: fprintf(f, "%.3f\n", (double)(now - ji[i].started_ms) / 1000.0); break;
			}
		}
	}
	static const metric_row crows[] = {
		{ "eddy_job_checkpoints_completed_total", "counter", "Checkpoints completed." },
		{ "eddy_job_checkpoints_aborted_total", "counter",
		  "Checkpoints aborted (timed out, or a task could not take part)." },
		{ "eddy_job_last_checkpoint_id", "gauge", "The newest completed checkpoint." },
		{ "eddy_job_last_checkpoint_duration_seconds", "gauge",
		  "Trigger to manifest of the newest completed checkpoint." },
		{ "eddy_job_last_checkpoint_size_bytes", "gauge",
		  "Snapshot bytes of the newest completed checkpoint." },
		{ "eddy_job_last_checkpoint_alignment_seconds", "gauge",
		  "The longest barrier alignment of a task in the newest completed checkpoint." },
	};
	for (size_t m = 0; m < sizeof(crows) / sizeof(crows[0]); m++) {
		family(f, crows[m].name, crows[m].type, crows[m].help);
		for (size_t i = 0; i < nj; i++) {
			if (!ji[i].checkpointing || (m >= 2 && ji[i].last_ckpt_id == 0))
				continue;
			fprintf(f, "%s{job=\"", crows[m].name);
			label_value(f, ji[i].name);
			fputs("\"} ", f);
			switch (m) {
			case 0: fprintf(f, "%llu\n", (unsigned long long)ji[i].ckpt_completed); break;
			case 1: fprintf(f, "%llu\n", (unsigned long long)ji[i].ckpt_aborted); break;
			case 2: fprintf(f, "%llu\n", (unsigned long long)ji[i].last_ckpt_id); break;
			case 3: fprintf(f, "%.3f\n", (double)ji[i].last_ckpt_duration_ms / 1e3); break;
			case 4: fprintf(f, "%llu\n", (unsigned long long)ji[i].last_ckpt_bytes); break;
			default: fprintf(f, "%.3f\n", (double)ji[i].last_ckpt_alignment_ms / 1e3); break;
			}
		}
	}
	uint64_t req, rej;
	ctl_counts(c, &req, &rej);
	family(f, "eddy_control_requests_total", "counter",
	       "Requests received by the control endpoint.");
	fprintf(f, "eddy_control_requests_total %llu\n", (unsigned long long)req);
	family(f, "eddy_control_rejected_total", "counter",
	       "Requests the control endpoint rejected, by reason.");
	for (int i = 0; i < NREJ; i++)
		fprintf(f, "eddy_control_rejected_total{reason=\"%s\"} %llu\n", rej_names[i],
		        (unsigned long long)atomic_load(&c->rejected[i]));
}
