/*
 * Checkpoints: asynchronous barrier snapshots (Carbone et al. 2015, as Flink's
 * checkpoints). The coordinator, an actor per job ("JOB/checkpoints", on the I/O pool:
 * it writes files), triggers checkpoint n every `interval`: it sends MSG_CKPT_TRIGGER(n)
 * to every source task. A source snapshots its position and sends barrier n
 * (MSG_BARRIER, operators/task.h) on every output channel, in order after the records
 * before it. A task with several input channels aligns them (exactly_once: a channel
 * whose barrier came is held back — its later elements are buffered — until every
 * channel's barrier came; at_least_once: nothing is held back), then snapshots, forwards
 * the barrier and acknowledges with MSG_CKPT_ACK carrying its snapshot bytes. The
 * Checkpoint ids are never reused: DIR/LAST_ID holds the last one issued (savepoints
 * included), and a restored job's ids go on after the checkpoint it started from.
 * The coordinator writes each task's snapshot to DIR/chk-<n>/<job>.<op>[i].snap (msgpack, then
 * its CRC-32 in 4 big-endian bytes), and once every task has
 * acknowledged, the manifest DIR/chk-<n>/MANIFEST (JSON, temp file + atomic rename): a
 * checkpoint exists only with its manifest. Then checkpoints older than the newest
 * `retain` are deleted, except those whose files a kept one still builds on (its
 * manifest's "needs"); an incomplete one is deleted when it times out, and at start.
 *
 * Incremental checkpoints (`incremental`, memory backend; as Flink's incremental
 * checkpoints): a task's keyed state is written as a delta — what changed since its
 * snapshot in the previous completed checkpoint — naming that checkpoint's file as its
 * parent ("../chk-<m>/<task>.state"), as long as the chain of files a restore reads stays
 * under twice the state's estimated size (and 64 files); else whole, which starts a new
 * chain. The first checkpoint after a start or a restart, savepoints, and the LevelDB
 * backend's state are always whole.
 *
 * Savepoints are checkpoints written to a directory of the user's, marked "savepoint" in
 * the manifest, never deleted by `retain`; with CKPT_TRIGGER_STOP the sources end (not
 * finally: open windows are not fired) right after the savepoint's barrier, so the job
 * stops exactly at the savepoint and a job restored from it goes on from there.
 * A task that finishes (its input exhausted) sends its final snapshot (MSG_CKPT_ACK with
 * id 0); the coordinator keeps it, counts it as that task's acknowledgement of the
 * pending and every later checkpoint, and writes it into them (as Flink's checkpoints
 * after tasks finished, FLIP-147). Sources that finished are not triggered; once every
 * source has finished, or the job is stopping, no more checkpoints are triggered.
 */
#ifndef EDDY_OPERATORS_CHECKPOINT_H
#define EDDY_OPERATORS_CHECKPOINT_H

#include "task.h"

#include <pthread.h>
#include <stdio.h>

typedef enum ckpt_mode { CKPT_EXACTLY_ONCE, CKPT_AT_LEAST_ONCE } ckpt_mode;

/* The job file's `checkpoint:` section. */
typedef struct ckpt_conf {
	int64_t interval_ms;  /* between triggers */
	ckpt_mode mode;
	const char *dir;      /* checkpoints go to DIR/chk-<n>/ (borrowed) */
	uint32_t retain;      /* completed checkpoints kept (>= 1) */
	int64_t timeout_ms;   /* a checkpoint not complete by then is aborted */
	int64_t min_pause_ms; /* from the end of one to the trigger of the next */
	int64_t max_alignment_bytes; /* exactly_once: a task holding more than this (bytes of
	                              * batches) while it aligns declines the checkpoint and
	                              * lets them go, as Flink's task.checkpoint.alignment.
	                              * max-size; the coordinator aborts that checkpoint */
	bool incremental; /* keyed state (memory backend) written as deltas over the files of
	                   * earlier checkpoints when that is cheaper (default true) */
} ckpt_conf;

/* What the coordinator reports about one checkpoint (for the shell and metrics). */
typedef struct ckpt_info {
	uint64_t id;
	const char *status;   /* "in_progress", "completed", "aborted" (static) */
	int64_t started_ms;   /* wall clock */
	int64_t duration_ms;  /* trigger to manifest (so far, when in progress) */
	uint64_t bytes;       /* snapshot bytes written */
	int64_t alignment_ms; /* the longest alignment of a task */
	uint32_t acks, tasks; /* acknowledged / expected */
	char why[160];        /* why it was aborted */
	bool savepoint;       /* a savepoint (written to dir, kept until deleted) */
	char dir[256];        /* where it is written */
} ckpt_info;

#define CKPT_HISTORY 32

/* The coordinator's history, shared with the control plane (thread-safe). */
typedef struct ckpt_log {
	pthread_mutex_t mu;
	ckpt_info items[CKPT_HISTORY]; /* ring, the newest at (head - 1) */
	uint32_t head, n;
	uint64_t completed, aborted;
} ckpt_log;

void ckpt_log_init(ckpt_log *l);
void ckpt_log_destroy(ckpt_log *l);
/* ckpt_log_list copies up to max entries, newest first; returns how many. */
size_t ckpt_log_list(ckpt_log *l, ckpt_info *out, size_t max);
/* ckpt_log_counts: checkpoints completed and aborted so far. */
void ckpt_log_counts(ckpt_log *l, uint64_t *completed, uint64_t *aborted);

/* The gate between the coordinator and failover-region restarts (owned by the plan). A
 * region restart (the plan's hook, on the region supervisor's thread) counts itself in
 * `resetting` and `resets` and takes done_id/done_dir as the checkpoint to restart from,
 * all under mu. The coordinator triggers nothing while a region is resetting, aborts a
 * checkpoint triggered before a reset, and decides a completion (writes its manifest and
 * sets done_id) under mu, so a region restarts from exactly the newest checkpoint that
 * completed, and none completes afterwards with the state of the region's previous
 * incarnation. */
typedef struct ckpt_gate {
	pthread_mutex_t mu;
	uint32_t resetting;   /* regions between their restart decision and running again */
	uint64_t resets;      /* region restarts so far */
	uint64_t done_id;     /* the newest completed checkpoint or savepoint, or the one the
	                         job was restored from; 0: none */
	char done_dir[4352];  /* its directory */
} ckpt_gate;

struct task_region;

/* The coordinator's arg (owned by the plan). */
typedef struct ckpt_arg {
	const char *job;
	const ckpt_conf *conf;
	char **source_paths; /* the source tasks, barrier injection points */
	uint32_t nsources;
	uint32_t ntasks;     /* acknowledgements a checkpoint needs */
	char **task_paths;   /* [ntasks] every task: told when a checkpoint completes */
	job_stats *stats;
	ckpt_log *log;
	uint64_t restored_from; /* the checkpoint the job started from (0: none) */
	ckpt_gate *gate;
	struct task_region *const *task_regions; /* [ntasks]: each task's failover region */
	FILE *report; /* an aborted checkpoint is told here (eddy run: stderr), or NULL */
} ckpt_arg;

extern const actor_ops ckpt_coord_ops;

/* Messages of the protocol (task.h has MSG_BARRIER). */
enum ckpt_msg {
	MSG_CKPT_TRIGGER = MSG_USER + 200, /* coordinator -> source task; u64 = checkpoint id */
	MSG_CKPT_ACK,                      /* task -> coordinator; ptr = ckpt_ack (owned) */
	MSG_CKPT_NOW,                      /* anyone -> coordinator: trigger one now; with ptr (a
	                                      malloc'd directory, owned) a savepoint there, and
	                                      with flags CKPT_TRIGGER_STOP the job stops with it */
	MSG_CKPT_DONE,                     /* coordinator -> every task; u64 = the id that
	                                      completed (two-phase-commit sinks commit) */
	MSG_CKPT_ABORTED                   /* coordinator -> every task; u64 = the id that was
	                                      aborted: a task aligning it lets its held
	                                      elements go, and its barriers still to come are
	                                      dropped (as Flink's notifyCheckpointAborted and
	                                      CancelCheckpointMarker) */
};

/* MSG_CKPT_TRIGGER's flags: the sources end right after this barrier (stop with a
 * savepoint, as Flink's stop-with-savepoint: nothing after it is emitted); the source's
 * region epoch in the high 16 bits (TASK_EPOCH_SHIFT: a trigger sent to an incarnation
 * before a region restart is ignored by the next one). */
#define CKPT_TRIGGER_STOP 1u

/* A task's acknowledgement: its snapshot (msgpack bytes, malloc'd, owned) and numbers. */
typedef struct ckpt_ack {
	uint64_t id;                      /* 0 with finished: the task's final snapshot */
	bool finished;
	char path[128];
	uint64_t records_in, records_out; /* the task's counters at the barrier */
	int64_t watermark;                /* WM_MIN: none */
	int64_t alignment_ns;
	uint32_t epoch;                   /* its region's epoch (task_region; 0 without) */
	char *data;
	size_t len;
	struct ev_state_snapshot *state;  /* keyed state begun at the barrier (owned), or NULL:
	                                     the coordinator writes it to <task>.state */
	bool declined;                    /* the task cannot take checkpoint id (why): the
	                                     coordinator aborts it */
	char why[96];
} ckpt_ack;

void ckpt_ack_free(ckpt_ack *a);

#endif
