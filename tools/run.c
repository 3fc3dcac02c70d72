/* `eddy run` and `eddy check`: load a YAML job, apply --set overrides, build the plan,
 * and run it in this process or print it. */
#include "run.h"

#include "../actors/control.h"
#include "../actors/metrics.h"
#include "../config/plan.h"
#include "../runtime/fs.h"

#include <errno.h>

#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../runtime/alloc.h"

static volatile sig_atomic_t stop_signal, dump_signal;
static volatile int64_t first_signal_ms;

static void drop_str(rt_msg *m)
{
	rt_free(m->ptr);
}

static void drop_free(rt_msg *m)
{
	free(m->ptr);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first SIGINT/SIGTERM stops the sources (a graceful stop); another one more than a
 * second later ends the process at once (exit 1). Repeats within the second are the same
 * request (`timeout -s INT` signals both the process and its group). */
static void on_signal(int sig)
{
	stop_signal = sig;
	int64_t now = mono_ms();
	if (first_signal_ms == 0)
		first_signal_ms = now;
	else if (now - first_signal_ms > 1000) {
		static const char msg[] = "eddy run: second signal, exiting at once\n";
		ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)n;
		_exit(1);
	}
}

static void on_quit(int sig)
{
	dump_signal = sig;
}

/* dump prints every actor's state on stderr (on SIGQUIT, as a JVM's thread dump). */
static void dump(asys *sys)
{
	actor_info *infos;
	size_t n;
	if (asys_list(sys, NULL, &infos, &n) != EDDY_OK)
		return;
	fprintf(stderr, "%-32s %-10s %9s %10s %10s %6s %6s %s\n", "actor", "status", "mailbox",
	        "msgs_in", "msgs_out", "parks", "outbox", "last error");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%-32s %-10s %4u/%-4u %10llu %10llu %6llu %6u %s\n", infos[i].path,
		        actor_status_name(infos[i].status), infos[i].mailbox_len,
		        infos[i].mailbox_cap, (unsigned long long)infos[i].msgs_in,
		        (unsigned long long)infos[i].msgs_out, (unsigned long long)infos[i].parks,
		        infos[i].outbox_len, infos[i].last_error);
	rt_free(infos);
}

#define CONTROL_DEFAULT "tcp://127.0.0.1:7600"

static void run_usage(FILE *f, const char *cmd)
{
	if (strcmp(cmd, "check") == 0)
		fprintf(f, "usage: eddy check JOB.yaml [--set KEY=VALUE ...]\n"
		           "\n"
		           "Validates the job and prints its physical plan: operators, parallelism,\n"
		           "partitioning of every input, output schemas. Exit 0 valid, 2 invalid.\n");
	else
		fprintf(f,
		        "usage: eddy run JOB.yaml [--set KEY=VALUE ...] [--workers N]\n"
		        "                [--control ADDRESS] [--secret-file FILE] [--metrics HOST:PORT]\n"
		        "                [--restore latest|DIR] [--stop-with-savepoint DIR]\n"
		        "                [--inject-failures N [--seed S]]\n"
		        "\n"
		        "Runs the job in this process. Bounded sources run to their end, then a final\n"
		        "watermark fires every open window and the job exits 0. SIGINT/SIGTERM stop\n"
		        "the sources; data in flight drains, sinks flush, exit 0 (open windows are\n"
		        "not fired).\n"
		        "\n"
		        "  --set KEY=VALUE  override a key of the job file; list entries are addressed\n"
		        "                   by id: --set sources.flights.path=/data/x.csv\n"
		        "  --workers N      scheduler threads (default: the number of cores)\n"
		        "  --control ADDR   serve the control endpoint for `eddy shell` on this nng\n"
		        "                   address (default " CONTROL_DEFAULT ", or the job file's\n"
		        "                   control.address; 'none': no endpoint)\n"
		        "  --secret-file F  shared secret every control request must carry; required\n"
		        "                   for an address that is not loopback; mode 0600\n"
		        "  --metrics H:P    serve Prometheus metrics at http://H:P/metrics\n"
		        "  --restore WHAT   start from a checkpoint: 'latest' (the newest usable one in\n"
		        "                   the job's checkpoint dir) or a directory DIR/chk-<n>\n"
		        "  --inject-failures N  fail a random task N times at random moments, as if\n"
		        "                   its callback had failed (tests supervision and recovery)\n"
		        "  --seed S         the seed of --inject-failures (default 1)\n"
		        "  --stop-with-savepoint DIR  on SIGINT/SIGTERM, take a savepoint into DIR and\n"
		        "                   stop right after it (restore with --restore DIR)\n"
		        "\n"
		        "exit codes: 0 done, 1 job failed, 2 bad usage or bad config\n");
}

/* load parses argv into a config tree with the overrides applied and builds the plan. */
static int load(const char *cmd, int argc, char **argv, cfg_node **root, plan **pl,
                unsigned *workers)
{
	const char *file = NULL;
	*root = NULL;
	*pl = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			run_usage(stdout, cmd);
			exit(0);
		} else if (strcmp(argv[i], "--set") == 0 || strcmp(argv[i], "--workers") == 0 ||
		           (workers && (strcmp(argv[i], "--control") == 0 ||
		                        strcmp(argv[i], "--restore") == 0 ||
		                        strcmp(argv[i], "--inject-failures") == 0 ||
		                        strcmp(argv[i], "--stop-with-savepoint") == 0 ||
		                        strcmp(argv[i], "--seed") == 0 ||
		                        strcmp(argv[i], "--secret-file") == 0 ||
		                        strcmp(argv[i], "--metrics") == 0))) {
			if (i + 1 == argc) {
				fprintf(stderr, "eddy %s: %s needs a value\n", cmd, argv[i]);
				return 2;
			}
			if (argv[i][2] == 'w') {
				char *end;
				long n = strtol(argv[i + 1], &end, 10);
				if (workers == NULL || *end != '\0' || n < 1 || n > 1024) {
					fprintf(stderr, "eddy %s: --workers takes a number from 1 to 1024\n",
					        cmd);
					return 2;
				}
				*workers = (unsigned)n;
			}
			i++;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "eddy %s: unknown option %s\n", cmd, argv[i]);
			run_usage(stderr, cmd);
			return 2;
		} else if (file == NULL) {
			file = argv[i];
		} else {
			fprintf(stderr, "eddy %s: one job file only (got %s and %s)\n", cmd, file, argv[i]);
			return 2;
		}
	}
	if (file == NULL) {
		run_usage(stderr, cmd);
		return 2;
	}
	cfg_error err;
	if (cfg_load_file(file, root, &err) != EDDY_OK) {
		fprintf(stderr, "eddy %s: %s\n", cmd, err.msg);
		return 2;
	}
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--set") == 0 && cfg_set(*root, argv[++i], &err) != EDDY_OK) {
			fprintf(stderr, "eddy %s: %s\n", cmd, err.msg);
			return 2;
		}
	eddy_err e = plan_build(*root, pl, &err);
	if (e != EDDY_OK) {
		fprintf(stderr, "eddy %s: %s\n", cmd, e == EDDY_ENOMEM ? "out of memory" : err.msg);
		return 2;
	}
	return 0;
}

/* report_failure prints why the job failed: the task that failed last and its reason
 * (a bad record names FILE:LINE:COL; earlier failures were recovered by restarts), then
 * the supervisor's verdict. */
static void report_failure(asys *sys, const char *job)
{
	char why[512];
	asys_failure(sys, why, sizeof(why));
	actor_info *infos = NULL;
	size_t n = 0;
	const actor_info *first = NULL;
	if (asys_list(sys, NULL, &infos, &n) == EDDY_OK) {
		for (size_t i = 0; i < n; i++)
			if (infos[i].last_error[0] && strcmp(infos[i].type, "supervisor") != 0 &&
			    (first == NULL || infos[i].last_error_ms >= first->last_error_ms))
				first = &infos[i];
	}
	if (first)
		fprintf(stderr, "eddy run: job %s failed: %s\neddy run: (task %s failed; %s)\n", job,
		        first->last_error, first->path, why);
	else
		fprintf(stderr, "eddy run: job %s failed: %s\n", job, why);
	rt_free(infos);
}

int cmd_check(int argc, char **argv)
{
	cfg_node *root;
	plan *pl;
	int rc = load("check", argc, argv, &root, &pl, NULL);
	if (rc == 0)
		plan_print(pl, stdout);
	plan_free(pl);
	cfg_free(root);
	return rc;
}

/* ---- the control plane's view of the job ---- */

enum { JOB_RUNNING, JOB_CANCELLING, JOB_FINISHED, JOB_FAILED };
static const char *const job_status_names[] = { "running", "cancelling", "finished", "failed" };

typedef struct run_ctx {
	plan *pl;
	asys *sys;
	job_stats *st;
	int64_t started_ms;
	_Atomic int status;
} run_ctx;

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t pv_jobs(void *ctx, ctl_job_info *out, size_t max)
{
	run_ctx *r = ctx;
	if (max == 0)
		return 1;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", plan_name(r->pl));
	out->status = job_status_names[atomic_load(&r->status)];
	out->started_ms = r->started_ms;
	out->records_in = atomic_load_explicit(&r->st->records_in, memory_order_relaxed);
	out->records_out = atomic_load_explicit(&r->st->records_out, memory_order_relaxed);
	out->watermark = plan_sink_watermark(r->pl);
	out->has_watermark = out->watermark != WM_MIN;
	ckpt_log *log = plan_checkpoint_log(r->pl);
	if (log) {
		out->checkpointing = true;
		ckpt_log_counts(log, &out->ckpt_completed, &out->ckpt_aborted);
		ckpt_info ci[CKPT_HISTORY];
		size_t n = ckpt_log_list(log, ci, CKPT_HISTORY);
		for (size_t i = 0; i < n; i++)
			if (strcmp(ci[i].status, "completed") == 0) {
				out->last_ckpt_id = ci[i].id;
				out->last_ckpt_duration_ms = ci[i].duration_ms;
				out->last_ckpt_alignment_ms = ci[i].alignment_ms;
				out->last_ckpt_bytes = ci[i].bytes;
				break;
			}
	}
	return 1;
}

static bool pv_checkpoints(void *ctx, ctl_checkpoint_info *out, size_t max, size_t *n,
                           char *why, size_t why_size)
{
	run_ctx *r = ctx;
	ckpt_log *log = plan_checkpoint_log(r->pl);
	if (log == NULL) {
		snprintf(why, why_size, "job %s has no checkpoint: section", plan_name(r->pl));
		return false;
	}
	ckpt_info ci[CKPT_HISTORY];
	size_t k = ckpt_log_list(log, ci, max < CKPT_HISTORY ? max : CKPT_HISTORY);
	for (size_t i = 0; i < k; i++) {
		out[i] = (ctl_checkpoint_info){ .id = ci[i].id,
			                        .status = ci[i].status,
			                        .started_ms = ci[i].started_ms,
			                        .duration_ms = ci[i].duration_ms,
			                        .alignment_ms = ci[i].alignment_ms,
			                        .bytes = ci[i].bytes,
			                        .acks = ci[i].acks,
			                        .tasks = ci[i].tasks };
		memcpy(out[i].why, ci[i].why, sizeof(out[i].why));
		out[i].savepoint = ci[i].savepoint;
		memcpy(out[i].dir, ci[i].dir, sizeof(out[i].dir));
	}
	*n = k;
	return true;
}

/* newest_savepoint finds the newest savepoint in the coordinator's history (checkpoints
 * after it may have been tried since); false if there is none. */
static bool newest_savepoint(plan *pl, ckpt_info *out)
{
	ckpt_info ci[CKPT_HISTORY];
	size_t n = ckpt_log_list(plan_checkpoint_log(pl), ci, CKPT_HISTORY);
	for (size_t i = 0; i < n; i++)
		if (ci[i].savepoint) {
			*out = ci[i];
			return true;
		}
	return false;
}

/* send_savepoint asks the job's coordinator for a savepoint into dir (stop: the job
 * stops with it); false with why. */
static bool send_savepoint(run_ctx *r, const char *dir, bool stop, char *why, size_t why_size)
{
	if (plan_checkpoint_log(r->pl) == NULL) {
		snprintf(why, why_size, "job %s has no checkpoint: section", plan_name(r->pl));
		return false;
	}
	actor *coord = asys_find(r->sys, plan_coordinator_path(r->pl));
	char *d = strdup(dir);
	rt_msg m = { .kind = MSG_CKPT_NOW, .ptr = d, .flags = stop ? CKPT_TRIGGER_STOP : 0,
		     .drop = drop_free };
	if (d == NULL || coord == NULL || actor_send_ctl(coord, &m) != EDDY_OK) {
		free(d);
		snprintf(why, why_size, "the checkpoint coordinator is not running");
		return false;
	}
	return true;
}

static bool pv_trigger_savepoint(void *ctx, const char *dir, char *why, size_t why_size)
{
	return send_savepoint(ctx, dir, false, why, why_size);
}

static bool pv_trigger_checkpoint(void *ctx, char *why, size_t why_size)
{
	run_ctx *r = ctx;
	if (plan_checkpoint_log(r->pl) == NULL) {
		snprintf(why, why_size, "job %s has no checkpoint: section", plan_name(r->pl));
		return false;
	}
	actor *coord = asys_find(r->sys, plan_coordinator_path(r->pl));
	rt_msg m = { .kind = MSG_CKPT_NOW };
	if (coord == NULL || actor_send_ctl(coord, &m) != EDDY_OK) {
		snprintf(why, why_size, "the checkpoint coordinator is not running");
		return false;
	}
	return true;
}

static bool pv_actor_extra(void *ctx, const char *path, ctl_actor_extra *out)
{
	run_ctx *r = ctx;
	const task_arg *a = plan_task_arg(r->pl, path);
	if (a == NULL)
		return false;
	snprintf(out->op, sizeof(out->op), "%s", a->node->op->type);
	out->records_in = atomic_load_explicit(&a->live.records_in, memory_order_relaxed);
	out->records_out = atomic_load_explicit(&a->live.records_out, memory_order_relaxed);
	out->watermark = atomic_load_explicit(&a->live.watermark, memory_order_relaxed);
	out->has_watermark = out->watermark != WM_MIN;
	out->state_bytes = atomic_load_explicit(&a->live.state_bytes, memory_order_relaxed);
	out->dropped = atomic_load_explicit(&a->live.dropped, memory_order_relaxed);
	out->aligning = atomic_load_explicit(&a->live.aligning, memory_order_relaxed);
	out->held = atomic_load_explicit(&a->live.nheld_pub, memory_order_relaxed);
	return true;
}

static bool pv_cancel(void *ctx, const char *job, char *why, size_t n)
{
	run_ctx *r = ctx;
	if (strcmp(job, plan_name(r->pl)) != 0) {
		snprintf(why, n, "no job %s (this process runs job '%s')", job, plan_name(r->pl));
		return false;
	}
	int want = JOB_RUNNING;
	if (!atomic_compare_exchange_strong(&r->status, &want, JOB_CANCELLING)) {
		snprintf(why, n, "it is %s", job_status_names[want]);
		return false;
	}
	atomic_store(&r->st->stop, 1);
	return true;
}

/* option returns the value of --name in argv (the last one), or NULL. */
static const char *option(int argc, char **argv, const char *name)
{
	const char *v = NULL;
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], "--set") == 0)
			i++;
		else if (strcmp(argv[i], name) == 0)
			v = argv[++i];
	return v;
}

/* start_control starts the control endpoint (and the metrics one) as the options and the
 * job file's control: section say. 0, or 2 (a config error, printed). */
static int start_control(int argc, char **argv, plan *pl, asys *sys, run_ctx *rc, ctl **c,
                         ctl_server **srv, metrics_server **ms)
{
	const plan_control *pc = plan_control_conf(pl);
	const char *addr = option(argc, argv, "--control");
	const char *secret_file = option(argc, argv, "--secret-file");
	const char *metrics = option(argc, argv, "--metrics");
	bool dflt = addr == NULL && pc->address == NULL;
	if (addr == NULL)
		addr = pc->address ? pc->address : CONTROL_DEFAULT;
	if (secret_file == NULL)
		secret_file = pc->secret_file;
	if (metrics == NULL)
		metrics = pc->metrics;
	char why[512], bound[300];
	char *secret = NULL;
	if (secret_file && ctl_read_secret(secret_file, &secret, why, sizeof(why)) != EDDY_OK) {
		fprintf(stderr, "eddy run: %s\n", why);
		return 2;
	}
	bool serve = strcmp(addr, "none") != 0;
	if (serve && !ctl_address_is_local(addr) && secret == NULL) {
		fprintf(stderr,
		        "eddy run: control address %s is not loopback-only: it needs a shared "
		        "secret (--secret-file FILE, mode 0600)\n",
		        addr);
		return 2;
	}
	ctl_provider pv = { .ctx = rc,
		            .jobs = pv_jobs,
		            .actor_extra = pv_actor_extra,
		            .cancel = pv_cancel,
		            .checkpoints = pv_checkpoints,
		            .trigger_checkpoint = pv_trigger_checkpoint,
		            .trigger_savepoint = pv_trigger_savepoint };
	eddy_err e = ctl_new(sys, &pv, secret, c);
	if (secret) {
		memset(secret, 0, strlen(secret));
		free(secret);
	}
	if (e != EDDY_OK) {
		fprintf(stderr, "eddy run: out of memory\n");
		return 1;
	}
	if (serve) {
		e = ctl_server_start(*c, addr, srv, bound, sizeof(bound), why, sizeof(why));
		if (e == EDDY_EIO && dflt) { /* the default port is taken: any free one */
			fprintf(stderr, "eddy run: %s; taking a free port\n", why);
			e = ctl_server_start(*c, "tcp://127.0.0.1:0", srv, bound, sizeof(bound), why,
			                     sizeof(why));
		}
		if (e != EDDY_OK) {
			fprintf(stderr, "eddy run: control endpoint: %s\n", why);
			return 2;
		}
		/* the hint dials what the shell can reach: 0.0.0.0 / :: listen on every address */
		char dial[320];
		const char *any = strstr(bound, "://0.0.0.0:");
		if (any)
			snprintf(dial, sizeof(dial), "%.*s://127.0.0.1%s", (int)(any - bound), bound,
			         any + 10);
		else
			snprintf(dial, sizeof(dial), "%s", bound);
		fprintf(stderr, "eddy run: control at %s (eddy shell %s%s%s)\n", bound, dial,
		        secret_file ? " --secret-file " : "", secret_file ? secret_file : "");
	}
	if (metrics) {
		e = metrics_server_start(*c, metrics, ms, bound, sizeof(bound), why, sizeof(why));
		if (e != EDDY_OK) {
			fprintf(stderr, "eddy run: %s\n", why);
			return 2;
		}
		fprintf(stderr, "eddy run: metrics at %s\n", bound);
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- restarting a failed job from its latest checkpoint ---- */

typedef struct swap_arg {
	run_ctx *rc;
	plan *pl;
	asys *sys;
} swap_arg;

static void swap_ctx(void *arg)
{
	swap_arg *a = arg;
	a->rc->pl = a->pl;
	a->rc->sys = a->sys;
	a->rc->st = plan_stats(a->pl);
}

/* restart_job replaces the failed job's actor system and plan by new ones restored from
 * the latest checkpoint — if none completed yet, from `initial` (the run's --restore, NULL
 * if none), else started afresh — keeping the event log. 0, or 1 with the reason printed. */
static int restart_job(cfg_node *root, plan **pl, asys **sys, const asys_opts *o, run_ctx *rc,
                       ctl *control, uint32_t attempt, const char *initial)
{
	asys_event *ev = rt_calloc(1024, sizeof(*ev));
	size_t nev = ev ? asys_events(*sys, ev, 1024) : 0;
	asys_shutdown(*sys, 0);
	plan *np = NULL;
	asys *nsys = NULL;
	cfg_error err;
	eddy_err e = plan_build(root, &np, &err);
	if (e == EDDY_OK)
		e = asys_create(o, &nsys);
	if (e != EDDY_OK) {
		fprintf(stderr, "eddy run: cannot restart the job: %s\n", eddy_strerror(e));
		rt_free(ev);
		plan_free(np);
		return 1;
	}
	asys_import_events(nsys, ev, nev);
	rt_free(ev);
	swap_arg sa = { rc, np, nsys };
	if (control)
		ctl_swap(control, swap_ctx, &sa, nsys);
	else
		swap_ctx(&sa);
	asys_destroy(*sys);
	plan_free(*pl);
	*pl = np;
	*sys = nsys;
	plan_set_report(np, stderr);
	char why[1024];
	uint64_t id = 0;
	e = plan_restore(np, "latest", stderr, &id, why, sizeof(why));
	if (e != EDDY_OK && e != EDDY_ENOMEM && initial && strcmp(initial, "latest") != 0) {
		/* no checkpoint of this run yet: the one it started from (--restore), as Flink
		 * restores a job's initial savepoint when it has no checkpoint since */
		if ((e = plan_restore(np, initial, stderr, &id, why, sizeof(why))) != EDDY_OK &&
		    e != EDDY_ENOMEM) {
			fprintf(stderr, "eddy run: cannot restart the job: cannot restore %s: %s\n",
			        initial, why);
			return 1;
		}
	}
	if (e == EDDY_ENOMEM) {
		fprintf(stderr, "eddy run: cannot restart the job: out of memory\n");
		return 1;
	}
	if (e != EDDY_OK) /* no checkpoint completed yet: from the beginning */
		fprintf(stderr, "eddy run: restart %u: no usable checkpoint (%s); starting over\n",
		        attempt, why);
	else
		fprintf(stderr, "eddy run: restart %u: job %s restored from checkpoint %llu\n", attempt,
		        plan_name(np), (unsigned long long)id);
	if (e == EDDY_OK)
		asys_log_event(nsys, plan_name(np), "job", "restarted from checkpoint %llu (restart %u)",
		               (unsigned long long)id, attempt);
	else
		asys_log_event(nsys, plan_name(np), "job", "restarted from the beginning (restart %u)",
		               attempt);
	return 0;
}

/* Injected failures (--inject-failures N --seed S): at random moments 20-150 ms apart, a
 * random task fails as if its callback had failed. With checkpoints, a failure after the
 * first waits until a checkpoint completed since the one before, so restores from
 * checkpoints are exercised (not only restarts from the beginning). */
typedef struct injector {
	uint32_t left, total;
	uint64_t rng;
	int64_t next_ms;
	const ckpt_log *log;  /* the plan whose checkpoints count (NULL: none) */
	uint64_t done_before; /* checkpoints completed when the last failure was injected */
} injector;

static uint64_t inj_rand(injector *in)
{
	in->rng ^= in->rng << 13;
	in->rng ^= in->rng >> 7;
	in->rng ^= in->rng << 17;
	return in->rng;
}

static void inject_schedule(injector *in)
{
	in->next_ms = mono_ms() + 20 + (int64_t)(inj_rand(in) % 130);
}

static void inject_maybe(injector *in, plan *pl, asys *sys)
{
	if (in->left == 0 || mono_ms() < in->next_ms)
		return;
	uint64_t done = 0, aborted = 0;
	ckpt_log *log = plan_checkpoint_log(pl);
	if (log && plan_checkpoint_conf(pl)) {
		if (log != in->log) { /* a new plan (the job restarted whole): counts anew */
			in->log = log;
			in->done_before = 0;
		}
		ckpt_log_counts(log, &done, &aborted);
		if (in->left < in->total && done == in->done_before) {
			in->next_ms = mono_ms() + 5; /* no checkpoint since the last failure yet */
			return;
		}
	}
	uint32_t n = plan_tasks(pl);
	const char *path = plan_task_path(pl, (uint32_t)(inj_rand(in) % (n ? n : 1)));
	actor *a = path ? asys_find(sys, path) : NULL;
	actor_status st = a ? actor_get_status(a) : ACTOR_STOPPED;
	if (st != ACTOR_RUNNING && st != ACTOR_PARKED) {
		in->next_ms = mono_ms() + 5; /* another one soon */
		return;
	}
	char *why = rt_malloc(96);
	if (why == NULL)
		return;
	snprintf(why, 96, "injected failure %u of %u (--inject-failures)", in->total - in->left + 1,
	         in->total);
	rt_msg m = { .kind = MSG_FAIL, .ptr = why, .drop = drop_str };
	if (actor_send_ctl(a, &m) != EDDY_OK) {
		rt_free(why);
		return;
	}
	in->left--;
	in->done_before = done;
	inject_schedule(in);
}

int cmd_run(int argc, char **argv)
{
	cfg_node *root;
	plan *pl;
	unsigned workers = 0;
	int rc = load("run", argc, argv, &root, &pl, &workers);
	if (rc != 0) {
		plan_free(pl);
		cfg_free(root);
		return rc;
	}
	/* as many file descriptors as allowed: sources, sinks and control connections */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	asys_opts o = { .workers = workers };
	asys *sys = NULL;
	eddy_err e = asys_create(&o, &sys);
	if (e != EDDY_OK) {
		fprintf(stderr, "eddy run: cannot start the runtime: %s\n", eddy_strerror(e));
		plan_free(pl);
		cfg_free(root);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct sigaction sq = { .sa_handler = on_quit };
	sigemptyset(&sq.sa_mask);
	sigaction(SIGQUIT, &sq, NULL);
	double t0 = now_s();
	job_stats *st = plan_stats(pl);
	run_ctx rctx = { .pl = pl, .sys = sys, .st = st, .started_ms = wall_ms(), .status = JOB_RUNNING };
	ctl *control = NULL;
	ctl_server *srv = NULL;
	metrics_server *ms = NULL;
	rc = start_control(argc, argv, pl, sys, &rctx, &control, &srv, &ms);
	const ckpt_conf *cc0 = plan_checkpoint_conf(pl);
	if (rc == 0 && cc0 && fs_mkdirs(cc0->dir) != 0) { /* a config error, before anything runs */
		fprintf(stderr, "eddy run: checkpoint directory %s: cannot create: %s\n", cc0->dir,
		        strerror(errno));
		rc = 2;
	}
	const char *restore = option(argc, argv, "--restore");
	if (rc == 0 && restore) {
		char why[1024];
		uint64_t id = 0;
		e = plan_restore(pl, restore, stderr, &id, why, sizeof(why));
		if (e != EDDY_OK) {
			fprintf(stderr, "eddy run: cannot restore: %s\n",
			        e == EDDY_ENOMEM ? "out of memory" : why);
			rc = 2;
		} else {
			fprintf(stderr, "eddy run: job %s restored from checkpoint %llu\n", plan_name(pl),
			        (unsigned long long)id);
		}
	}
	plan_set_report(pl, stderr); /* failover-region restarts */
	if (rc == 0 && (e = plan_start(pl, sys)) != EDDY_OK) {
		fprintf(stderr, "eddy run: cannot start job %s: %s\n", plan_name(pl), eddy_strerror(e));
		rc = 1;
	}
	if (rc == 0)
		asys_log_event(sys, plan_name(pl), "job", "running: %u tasks", plan_tasks(pl));
	injector inj = { 0 };
	const char *injs = option(argc, argv, "--inject-failures");
	const char *seeds = option(argc, argv, "--seed");
	if (rc == 0 && (injs || seeds)) {
		char *end1 = NULL, *end2 = NULL;
		long n = injs ? strtol(injs, &end1, 10) : -1;
		long long seed = seeds ? strtoll(seeds, &end2, 10) : 1;
		if (!injs || *end1 != '\0' || n < 0 || n > 1000000 || (seeds && *end2 != '\0')) {
			fprintf(stderr, "eddy run: --inject-failures takes a number from 0 to 1000000 "
			                "(and --seed a number)\n");
			rc = 2;
		}
		inj.left = inj.total = (uint32_t)(n > 0 ? n : 0);
		inj.rng = (uint64_t)seed * 0x9e3779b97f4a7c15ull + 1;
		inject_schedule(&inj);
	}
	const ckpt_conf *ckc = plan_checkpoint_conf(pl);
	const sup_spec *restarts = plan_sup(pl); /* the job's supervision: its intensity and
	                                            backoff also bound restarts of the job */
	int64_t *restart_times = rt_calloc(restarts->intensity + 1, sizeof(int64_t));
	uint32_t nrestarts = 0, attempt = 0;
	bool stopping = false;
	const char *sp_dir = option(argc, argv, "--stop-with-savepoint");
	bool sp_waiting = false, sp_done = false;
	while (rc == 0) {
		if (atomic_load(&st->tasks_done) == plan_tasks(pl))
			break;
		inject_maybe(&inj, pl, sys);
		if (dump_signal) {
			dump_signal = 0;
			dump(sys);
		}
		if (stop_signal && !stopping) {
			stopping = true;
			const char *sig = stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
			int want = JOB_RUNNING;
			atomic_compare_exchange_strong(&rctx.status, &want, JOB_CANCELLING);
			char why[256];
			if (sp_dir && send_savepoint(&rctx, sp_dir, true, why, sizeof(why))) {
				fprintf(stderr, "eddy run: %s: stopping with a savepoint into %s\n", sig, sp_dir);
				asys_log_event(sys, plan_name(pl), "job", "stopping with a savepoint: %s", sig);
				sp_waiting = true;
			} else {
				if (sp_dir)
					fprintf(stderr, "eddy run: cannot take the savepoint: %s\n", why);
				fprintf(stderr, "eddy run: %s: stopping the sources, draining\n", sig);
				asys_log_event(sys, plan_name(pl), "job", "cancelling: %s", sig);
				atomic_store(&st->stop, 1);
			}
		}
		if (sp_waiting) { /* the savepoint's outcome */
			ckpt_info ci;
			if (newest_savepoint(pl, &ci) &&
			    strcmp(ci.status, "in_progress") != 0) {
				sp_waiting = false;
				if (strcmp(ci.status, "completed") == 0) {
					fprintf(stderr, "eddy run: savepoint %llu written to %s\n",
					        (unsigned long long)ci.id, sp_dir);
					sp_done = true;
				} else {
					fprintf(stderr, "eddy run: the savepoint failed (%s); stopping without it\n",
					        ci.why);
					atomic_store(&st->stop, 1);
				}
			}
		}
		if (!stopping && atomic_load(&rctx.status) == JOB_CANCELLING) {
			stopping = true; /* `cancel` from the shell */
			fprintf(stderr, "eddy run: cancelled from the control endpoint: stopping the "
			                "sources, draining\n");
		}
		e = asys_wait(sys, 20);
		if (e == EDDY_EFAILED && ckc && !stopping && restart_times) {
			/* with checkpoints a failed job starts again from its latest checkpoint, as
			 * often as its supervision's intensity allows within the period */
			int64_t now = mono_ms();
			uint32_t recent = 0;
			for (uint32_t k = 0; k < nrestarts && k <= restarts->intensity; k++)
				recent += now - restart_times[k] < restarts->period_ms;
			if (recent < restarts->intensity) {
				char why[512];
				asys_failure(sys, why, sizeof(why));
				fprintf(stderr, "eddy run: job %s failed (%s); restarting from the latest "
				                "checkpoint\n", plan_name(pl), why);
				restart_times[nrestarts++ % (restarts->intensity + 1)] = now;
				attempt++;
				double delay = (double)restarts->backoff_initial_ms;
				for (uint32_t k = 1; k < attempt && delay < restarts->backoff_max_ms; k++)
					delay *= restarts->backoff_multiplier;
				if (delay > restarts->backoff_max_ms)
					delay = (double)restarts->backoff_max_ms;
				if (restart_job(root, &pl, &sys, &o, &rctx, control, attempt,
				                restore) != 0) {
					rc = 1;
					break;
				}
				st = plan_stats(pl);
				restarts = plan_sup(pl);
				ckc = plan_checkpoint_conf(pl);
				usleep((useconds_t)(delay * 1000));
				if ((e = plan_start(pl, sys)) != EDDY_OK) {
					fprintf(stderr, "eddy run: cannot start job %s: %s\n", plan_name(pl),
					        eddy_strerror(e));
					rc = 1;
					break;
				}
				fprintf(stderr, "eddy run: restart %u: running again %lld ms after the failure "
				                "(backoff %.0f ms)\n", attempt, (long long)(mono_ms() - now),
				        delay);
				inject_schedule(&inj);
				continue;
			}
			fprintf(stderr, "eddy run: job %s: %u restarts within %lld ms reached its "
			                "supervision's intensity (%u); not restarting again\n",
			        plan_name(pl), recent, (long long)restarts->period_ms, restarts->intensity);
		}
		if (e == EDDY_EFAILED) {
			report_failure(sys, plan_name(pl));
			rc = 1;
		}
	}
	rt_free(restart_times);
	double secs = now_s() - t0;
	for (int i = 0; sp_waiting && rc == 0 && i < 6000; i++) {
		/* the tasks ended at the savepoint's barrier; its manifest is being written */
		ckpt_info ci;
		if (newest_savepoint(pl, &ci) &&
		    strcmp(ci.status, "in_progress") != 0) {
			sp_waiting = false;
			sp_done = strcmp(ci.status, "completed") == 0;
			if (sp_done)
				fprintf(stderr, "eddy run: savepoint %llu written to %s\n",
				        (unsigned long long)ci.id, sp_dir);
			else
				fprintf(stderr, "eddy run: the savepoint failed: %s\n", ci.why);
		} else {
			usleep(10000);
		}
	}
	if (sp_dir && stopping && !sp_done && rc == 0 && plan_checkpoint_log(pl)) {
		fprintf(stderr, "eddy run: job %s stopped without a savepoint\n", plan_name(pl));
		rc = 1;
	}
	if (atomic_load(&rctx.status) == JOB_CANCELLING && !stopping) {
		stopping = true; /* cancelled, and it ended before the loop saw it */
		fprintf(stderr, "eddy run: cancelled from the control endpoint\n");
	}
	atomic_store(&rctx.status, rc == 0 ? JOB_FINISHED : JOB_FAILED);
	asys_log_event(sys, plan_name(pl), "job", "%s after %.3f s",
	               rc == 0 ? (stopping ? "stopped" : "finished") : "failed", secs);
	metrics_server_stop(ms);
	ctl_server_stop(srv, false); /* the process ends: see control.h */
	asys_shutdown(sys, rc == 0 ? 1000 : 0);
	char unmatched[64] = ""; /* a split's dropped records: said only when there are any */
	uint64_t nu = atomic_load(&st->unmatched);
	if (nu)
		snprintf(unmatched, sizeof(unmatched), ", %llu unmatched by a split",
		         (unsigned long long)nu);
	if (rc == 0)
		fprintf(stderr,
		        "eddy run: job %s %s in %.3f s: %llu records in, %llu out, %llu late "
		        "dropped, %llu skipped, %llu dead letters%s%s\n",
		        plan_name(pl), stopping ? "stopped" : "finished", secs,
		        (unsigned long long)atomic_load(&st->records_in),
		        (unsigned long long)atomic_load(&st->records_out),
		        (unsigned long long)atomic_load(&st->late_dropped),
		        (unsigned long long)atomic_load(&st->skipped),
		        (unsigned long long)atomic_load(&st->dead_letters), unmatched,
		        attempt ? " (since the last restart)" : "");
	asys_destroy(sys);
	ctl_free(control);
	plan_free(pl);
	cfg_free(root);
	return rc;
}
