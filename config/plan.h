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
 * then spawns the job supervisor (one_for_all; without checkpoints a failed task
 * fails the job: restart intensity 0, as Flink's no-restart strategy when checkpointing
 * is off) and every task under it. Errors: as actor_spawn. */
eddy_err plan_start(plan *p, asys *sys);

/* plan_stats: the job's counters (tasks_done reaches plan_tasks when it has finished). */
job_stats *plan_stats(plan *p);
uint32_t plan_tasks(const plan *p);
const char *plan_name(const plan *p);

/* plan_free frees the plan (its tasks must have stopped). Safe on NULL. */
void plan_free(plan *p);

#endif
