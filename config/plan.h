/*
 * The plan builder: a job's configuration tree (config/cfg.h) checked and turned into a
 * physical plan — operators with their compiled expressions and schemas, parallelism,
 * and the partitioning of every edge — and then into task actors under a job supervisor.
 *
 * Logical graph: sources, operators and sinks, each with an id; a stream is named by
 * the id of what produces it (a source, an operator), or by a side output's name
 * (a window's late_output, a source's "<id>.dead_letter"). Physical plan: every node
 * runs `parallelism` subtasks ("JOB/ID[i]"); an edge is hash-partitioned by key group
 * into a keyed operator, forward (subtask i to i) between equal parallelism, and
 * rebalanced (round robin) otherwise.
 */
#ifndef EDDY_CONFIG_PLAN_H
#define EDDY_CONFIG_PLAN_H

#include "../actors/supervisor.h"
#include "../operators/checkpoint.h"
#include "../operators/ops.h"
#include "cfg.h"

#include <stdio.h>

typedef struct plan plan;

/* plan_build checks the job tree `root` (borrowed; must outlive the plan) and builds its
 * plan. Errors: EDDY_EINVAL with err ("FILE:LINE:COL: what was expected"), EDDY_ENOMEM. */
eddy_err plan_build(const cfg_node *root, plan **out, cfg_error *err);

/* plan_print writes the physical plan: one line per operator (id, type, parallelism,
 * inputs with their partitioning, output schema). */
void plan_print(const plan *p, FILE *f);

/* plan_start removes the part files an earlier run left in each file sink's directory,
 * then spawns the job supervisor, path JOB, with the job's `supervision:` (default
 * one_for_one, intensity 3 in 5 s, backoff 10 ms x 2 up to 10 s) and every task under it
 * ("JOB/OP[i]"): restartable operators' tasks (filter, map, union, sinks) are transient
 * children, restarted in place; the others (sources, windows: state a restart would
 * lose without checkpoints) are critical, so their failure fails the job, as Flink's
 * no-restart strategy when checkpointing is off. Errors: as actor_spawn. */
eddy_err plan_start(plan *p, asys *sys);

/* plan_set_report: where a failover region's restart is told (one line when it is
 * decided, one when the region runs again; from the region supervisor's thread), e.g.
 * stderr; NULL (the default): nowhere. */
void plan_set_report(plan *p, FILE *f);

/* The job file's `control:` section (borrowed strings, NULL when absent). */
typedef struct plan_control {
	const char *address;     /* nng address of the control endpoint */
	const char *secret_file; /* shared secret (mode 0600) */
	const char *metrics;     /* HOST:PORT of the Prometheus endpoint */
} plan_control;
const plan_control *plan_control_conf(const plan *p);

/* The job file's `checkpoint:` (NULL: no checkpoints) and the coordinator's history. */
const ckpt_conf *plan_checkpoint_conf(const plan *p);
ckpt_log *plan_checkpoint_log(plan *p);
/* plan_coordinator_path: the checkpoint coordinator's actor path ("JOB/checkpoints"). */
const char *plan_coordinator_path(const plan *p);

/* plan_task_path: the path of task i (0 <= i < plan_tasks) once plan_start ran, else NULL. */
const char *plan_task_path(const plan *p, uint32_t i);

/* plan_sup: the job supervisor's spec (valid once plan_start ran). */
const sup_spec *plan_sup(const plan *p);

/* plan_task_arg finds the task at path ("JOB/OP[i]"); NULL if there is none. */
const task_arg *plan_task_arg(const plan *p, const char *path);

/* plan_sink_watermark: the minimum watermark over the job's sink tasks (WM_MIN when
 * one has none yet). Any thread. */
int64_t plan_sink_watermark(const plan *p);

/* plan_restore makes the job start from a checkpoint: `from` is "latest" (the newest
 * complete checkpoint in the job's checkpoint dir whose every snapshot file is whole —
 * checksum and shape; an unusable one is skipped with a warning on warn) or a directory
 * DIR/chk-<n>. Every task gets its snapshot; sinks keep their committed files. Call
 * before plan_start. Errors: EDDY_EINVAL with why (no checkpoint section, a source that
 * cannot resume, no usable checkpoint, a different number of tasks), EDDY_ENOMEM. */
eddy_err plan_restore(plan *p, const char *from, FILE *warn, uint64_t *restored, char *why,
                      size_t why_size);

/* plan_stats: the job's counters (tasks_done reaches plan_tasks when it has finished). */
job_stats *plan_stats(plan *p);
uint32_t plan_tasks(const plan *p);
const char *plan_name(const plan *p);

/* plan_free frees the plan (its tasks must have stopped). Safe on NULL. */
void plan_free(plan *p);

#endif
