/* `eddy run` and `eddy check`: load a YAML job, apply --set overrides, build the plan,
 * and run it in this process or print it. */
#include "run.h"

#include "../config/plan.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../runtime/alloc.h"

static volatile sig_atomic_t stop_signal, dump_signal;
static volatile int64_t first_signal_ms;

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
		        "\n"
		        "Runs the job in this process. Bounded sources run to their end, then a final\n"
		        "watermark fires every open window and the job exits 0. SIGINT/SIGTERM stop\n"
		        "the sources; data in flight drains, sinks flush, exit 0 (open windows are\n"
		        "not fired).\n"
		        "\n"
		        "  --set KEY=VALUE  override a key of the job file; list entries are addressed\n"
		        "                   by id: --set sources.flights.path=/data/x.csv\n"
		        "  --workers N      scheduler threads (default: the number of cores)\n"
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
		} else if (strcmp(argv[i], "--set") == 0 || strcmp(argv[i], "--workers") == 0) {
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

/* report_failure prints why the job failed: the first task that failed and its reason
 * (a bad record names FILE:LINE:COL), then the supervisor's verdict. */
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
			    (first == NULL || infos[i].last_error_ms < first->last_error_ms))
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

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
	e = plan_start(pl, sys);
	if (e != EDDY_OK) {
		fprintf(stderr, "eddy run: cannot start job %s: %s\n", plan_name(pl), eddy_strerror(e));
		rc = 1;
	}
	bool stopping = false;
	while (rc == 0) {
		if (atomic_load(&st->tasks_done) == plan_tasks(pl))
			break;
		if (dump_signal) {
			dump_signal = 0;
			dump(sys);
		}
		if (stop_signal && !stopping) {
			stopping = true;
			fprintf(stderr, "eddy run: %s: stopping the sources, draining\n",
			        stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
			atomic_store(&st->stop, 1);
		}
		e = asys_wait(sys, 20);
		if (e == EDDY_EFAILED) {
			report_failure(sys, plan_name(pl));
			rc = 1;
		}
	}
	double secs = now_s() - t0;
	asys_shutdown(sys, rc == 0 ? 1000 : 0);
	if (rc == 0)
		fprintf(stderr,
		        "eddy run: job %s %s in %.3f s: %llu records in, %llu out, %llu late "
		        "dropped, %llu skipped, %llu dead letters\n",
		        plan_name(pl), stopping ? "stopped" : "finished", secs,
		        (unsigned long long)atomic_load(&st->records_in),
		        (unsigned long long)atomic_load(&st->records_out),
		        (unsigned long long)atomic_load(&st->late_dropped),
		        (unsigned long long)atomic_load(&st->skipped),
		        (unsigned long long)atomic_load(&st->dead_letters));
	asys_destroy(sys);
	plan_free(pl);
	cfg_free(root);
	return rc;
}
