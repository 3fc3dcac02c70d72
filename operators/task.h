/*
 * Tasks: the actor that runs one subtask of one operator of a job, and the stream
 * protocol between tasks.
 *
 * Every channel (one upstream subtask -> one downstream subtask) carries, in order:
 * record batches (MSG_RECORDS), watermarks (MSG_WATERMARK), idleness (MSG_IDLE),
 * checkpoint barriers (MSG_BARRIER, operators/checkpoint.h) and the end of the stream
 * (MSG_EOS); the message's `flags` is the channel index at the receiver. A task's watermark is the minimum over its channels that are neither idle
 * nor ended (as Flink's StatusWatermarkValve); when every channel has ended with a final
 * end, the watermark becomes +inf (INT64_MAX), so every open window fires, then the
 * operator's `end` runs, the end is forwarded and the task exits normally.
 *
 * A task owns one operator (an op_def and its private state) and routes what the
 * operator emits on each output port to every consumer of that port: forward (subtask i
 * to subtask i), hash (by key group of the consumer's key: key_group = hash % max
 * parallelism, subtask = key_group * parallelism / max parallelism, as Flink's
 * KeyGroupRangeAssignment) or rebalance (round robin). Hash-partitioned rows are
 * gathered per target and sent once the input message has been handled, so batches stay
 * whole and a watermark is always sent after the records before it.
 *
 * Thread rules: all task_* functions are for the task's own callbacks (the operator's
 * hooks run inside them).
 */
#ifndef EDDY_OPERATORS_TASK_H
#define EDDY_OPERATORS_TASK_H

#include "../actors/actor.h"
#include "../config/expr.h"

#include <eddy/value.h>
#include <stdatomic.h>

enum task_msg {
	MSG_RECORDS = MSG_USER + 100, /* a record batch: ptr = ev_batch (owned), flags = channel
	                              * (not MSG_BATCH: <sys/socket.h> has that name) */
	MSG_WATERMARK,              /* u64 = watermark (int64 ms), flags = channel */
	MSG_IDLE,                   /* u64 = 1 idle, 0 active again; flags = channel */
	MSG_EOS,                    /* end of stream; u64 = EOS_FINAL or 0; flags = channel */
	MSG_CHUNK,                  /* reader -> file source: ptr = a chunk of whole records */
	MSG_CONTINUE,               /* a source's note to itself to produce more */
	MSG_CHUNK_END,              /* reader -> file source: u64 = 1 if the input ended */
	MSG_BARRIER,                /* checkpoint barrier; u64 = checkpoint id, flags = channel */
	MSG_ALIGN_REPLAY            /* a task's note to itself: process held elements */
};

/* EOS_FINAL: the input is exhausted; the watermark may go to +inf. Without it (a job
 * being stopped) open windows are not fired. */
#define EOS_FINAL 1u

#define WM_MIN INT64_MIN
#define WM_MAX INT64_MAX

/* Job-wide counters, shared by every task of a job (relaxed atomics). */
typedef struct job_stats {
	_Atomic uint64_t records_in;   /* records produced by sources */
	_Atomic uint64_t records_out;  /* records written by sinks */
	_Atomic uint64_t late_dropped; /* late records with no late_output */
	_Atomic uint64_t skipped;      /* bad records skipped (on_error: skip) */
	_Atomic uint64_t dead_letters; /* bad records sent to a dead-letter stream */
	_Atomic uint64_t unmatched;    /* records a split dropped: no predicate held, no default */
	_Atomic uint32_t tasks_done;   /* tasks that ended normally */
	_Atomic int stop;              /* set to stop the sources (SIGINT/SIGTERM) */
} job_stats;

typedef enum part_kind { PART_FORWARD, PART_HASH, PART_REBALANCE } part_kind;
const char *part_kind_name(part_kind k);

/* One consumer of an output port. */
typedef struct route {
	part_kind part;
	uint32_t ntargets;       /* the consumer's parallelism */
	char **target_paths;     /* [ntargets] actor paths */
	uint32_t channel_base;   /* the consumer's first channel for this input */
	expr **keys;             /* PART_HASH: the consumer's key expressions (borrowed) */
	uint32_t nkeys;
	uint32_t max_parallelism;
} route;

typedef struct out_port {
	const ev_schema *schema; /* of the stream */
	route *routes;
	uint32_t nroutes;
} out_port;

typedef struct task task;
typedef struct task_node task_node;
struct msgpack_packer;
struct msgpack_object;

/* An operator implementation: hooks called by its task. `state` is op-private (set by
 * open). Each hook returns an error to fail the task (after actor_fail with a reason,
 * or with the error's name). */
typedef struct op_def {
	const char *type; /* "filter", "window", "file-source", ... */
	bool io;          /* its task runs on the I/O pool (it blocks on files) */
	/* restartable: the operator holds nothing a restart would lose, so a failed subtask
	 * is restarted in place: its channels, watermarks and queued input are kept and the
	 * operator is opened anew (task_restarted tells it). Operators with state (windows)
	 * and sources (their read position) are not, until checkpoints: their task is a
	 * critical child of the job supervisor and its failure fails the job. */
	bool restartable;
	eddy_err (*open)(task *t, void **state);
	/* a batch arrived on input `input` (index into the node's inputs); b is owned. */
	eddy_err (*process)(task *t, void *state, ev_batch *b, uint32_t input);
	/* the task's watermark advanced to wm (WM_MAX at the end of a bounded input). */
	eddy_err (*watermark)(task *t, void *state, int64_t wm);
	/* the input ended (final: the input is exhausted, after watermark(WM_MAX)). */
	eddy_err (*end)(task *t, void *state, bool final);
	/* any other message (sources: MSG_CHUNK, MSG_CONTINUE, MSG_TIMER). May be NULL. */
	eddy_err (*message)(task *t, void *state, rt_msg *m);
	/* close releases the state; also called when open failed after setting *state, so it
	 * must cope with a half-built state. May be NULL. */
	void (*close)(task *t, void *state);
	/* snapshot writes the operator's state at a checkpoint barrier as ONE msgpack value
	 * (a source: its position). NULL: no state (nil is written). */
	eddy_err (*snapshot)(task *t, void *state, uint64_t id, struct msgpack_packer *pk);
	/* restore loads, right after open, what snapshot wrote (borrowed; the task of a
	 * restored job). NULL: nothing to restore. Errors fail the task (a clear reason).
	 * When the operator's parallelism changed (rescalable operators only) it is called
	 * once per old subtask's snapshot and keeps the keys whose key group is now its own
	 * (task_owns_key). */
	eddy_err (*restore)(task *t, void *state, const struct msgpack_object *snap);
	/* rescalable: its state is keyed and restore redistributes it by key group, so a job
	 * may restore it at another parallelism (as Flink's keyed state). */
	bool rescalable;
	/* checkpoint_done: checkpoint id completed (its manifest is written): a
	 * two-phase-commit sink commits what it pre-committed up to id. May be NULL. */
	eddy_err (*checkpoint_done)(task *t, void *state, uint64_t id);
	/* keyed_state: the task opens a keyed-state handle (include/eddy/state.h) on the
	 * job's backend for its key-group range before open (task_keyed_state); checkpoints
	 * snapshot it asynchronously (the coordinator writes it to a .state file) and a
	 * restored task loads it before open, every old subtask's file when rescaled. */
	bool keyed_state;
} op_def;

/* One operator of the physical plan, shared read-only by its subtasks. */
struct task_node {
	const char *job;          /* job name */
	const char *id;           /* operator id */
	const op_def *op;
	const void *conf;         /* the operator's compiled configuration */
	uint32_t parallelism;
	uint32_t max_parallelism;
	uint32_t ninputs;         /* input streams */
	const ev_schema **in_schemas; /* [ninputs] */
	uint32_t nchannels;       /* channels per subtask */
	uint32_t *channel_input;  /* [nchannels] the input each channel belongs to */
	out_port *ports;          /* port 0: main output; then side outputs */
	uint32_t nports;
	job_stats *stats;
	bool is_source;           /* has no channels; its op produces */
	bool is_sink;             /* has no outputs; its op writes */
	const struct ckpt_conf *ckpt; /* NULL: no checkpoints */
	const char *coord_path;   /* the checkpoint coordinator's actor path */
	struct ev_state_backend *const *backend; /* the job's keyed-state backend (set by the
	                          plan before the tasks start) */
	const char *state_id;     /* "JOB/OP": the operator's name in the backend and files */
};

/* What a subtask keeps across restarts of its task actor, and what it publishes for the
 * control plane. Owned by the plan (one per subtask); the counters are written by the
 * task only (relaxed atomics) and read by any thread. */
typedef struct task_live {
	_Atomic uint64_t records_in;  /* records received (sources: produced) */
	_Atomic uint64_t records_out; /* records emitted (sinks: written) */
	_Atomic int64_t watermark;    /* the task's current watermark (WM_MIN: none yet) */
	_Atomic uint64_t state_bytes; /* operator state, bytes (approximate) */
	_Atomic uint64_t dropped;     /* records the operator dropped by design (a split's
	                               * records matching no output) */
	_Atomic uint64_t aligning;    /* the checkpoint it is aligning (0: none), published
	                               * after every message */
	_Atomic uint64_t nheld_pub;   /* elements held back by that alignment */
	/* channel state (the task's only): survives a restart */
	int64_t *wm;     /* [nchannels] */
	uint8_t *idle;   /* [nchannels] */
	uint8_t *eos;    /* [nchannels]: 0 open, 1 ended, 2 ended final */
	uint32_t nended;
	int64_t cur_wm;
	bool all_idle;   /* told downstream we are idle */
	bool ended;      /* sent its end of stream */
	uint32_t starts; /* times the task's init ran */
	/* checkpoint alignment (kept across a restart so no held element is lost) */
	uint64_t align_id;       /* the checkpoint being aligned, 0: none */
	uint8_t *align_got;      /* [nchannels] its barrier came on the channel */
	int64_t align_start_ns;  /* monotonic */
	rt_msg *held;            /* elements of aligned channels held back (exactly_once) */
	uint32_t nheld;
	size_t held_cap;
	size_t held_bytes;       /* of the held batches (checkpoint.max_alignment) */
	uint64_t last_ckpt;      /* the newest checkpoint the task took part in */
	uint64_t declined;       /* the newest checkpoint it declined (its alignment held too
	                          * much) or heard was aborted: its later barriers are ignored */
	bool counted_done;       /* counted in job_stats.tasks_done (a region restart uncounts) */
} task_live;

/* What a task restores from when its job starts from a checkpoint (borrowed, must live
 * until the job ends). */
typedef struct task_restore {
	uint64_t checkpoint;              /* its id */
	uint64_t records_in, records_out; /* the task's counters at the barrier */
	const struct msgpack_object *op;  /* the operator's snapshot (same parallelism) */
	bool rescaled;                    /* the operator's parallelism changed: */
	const struct msgpack_object *const *ops; /* every old subtask's snapshot */
	uint32_t nops;
	const char *const *state_files; /* keyed-state files to load (keyed_state operators):
	                                   its own, or every old subtask's when rescaled */
	uint32_t nstate_files;
} task_restore;

/* A failover region (as Flink's pipelined regions): the subtasks connected to each other
 * through exchanges, restarted together from the latest completed checkpoint when one of
 * them fails (operators/README.md, docs/ARCHITECTURE.md). Owned by the plan; one per
 * region of a job with checkpoints. */
typedef struct task_arg task_arg;
typedef struct task_region task_region;
struct task_region {
	uint32_t index;
	/* epoch: bumped when the region restarts. A task stamps the elements it sends (high
	 * 16 bits of the message flags) and its checkpoint acknowledgements with the epoch it
	 * started in; a task drops elements, and the coordinator acknowledgements, of an
	 * older epoch (what the region's previous incarnations still had in flight). */
	_Atomic uint32_t epoch;
	/* the checkpoint the region restarts from (0: from the beginning) and its directory;
	 * set by the plan when the restart is decided, read by the region's tasks as they
	 * start again */
	uint64_t restore_id;
	char restore_dir[4352];
	/* load: called by a restarting task of the region on its own thread: points a->restore
	 * at the task's part of checkpoint restore_id (NULL for 0) and makes a file sink's
	 * directory what it was then for this subtask. EDDY_OK, or an error with why. */
	eddy_err (*load)(task_region *r, task_arg *a, char *why, size_t wn);
	void *owner; /* the plan */
	int64_t failed_ms; /* monotonic ms of its last failure (for the report) */
};

/* Epochs travel in the top 16 bits of an element's flags; the channel in the low 16. */
#define TASK_CHANNEL_MASK 0xffffu
#define TASK_EPOCH_SHIFT 16

/* The arg of a task actor: its node and subtask index, and its live part. */
struct task_arg {
	const task_node *node;
	uint32_t subtask;
	task_live live;
	const task_restore *restore; /* NULL: a fresh start */
	task_region *region;         /* with checkpoints: the task's failover region */
	/* a region restart's restore (set by task_region.load; freed by it or the plan) */
	task_restore own_restore;
	void *hold;                  /* what own_restore points into */
	void (*hold_free)(void *hold);
};

/* task_arg_init prepares a's live part (no watermark yet); task_arg_clear frees what the
 * task allocated in it. Not while the task runs. */
void task_arg_init(task_arg *a);
void task_arg_clear(task_arg *a);

extern const actor_ops task_ops;

/* ---- for operator hooks ---- */

const task_node *task_node_of(const task *t);
uint32_t task_subtask(const task *t);
actor *task_actor(task *t);
job_stats *task_stats(task *t);
/* task_restarted: this incarnation is a restart (the operator's open may resume). */
bool task_restarted(const task *t);
/* task_restored_from: the checkpoint this job was restored from (0: a fresh start). */
uint64_t task_restored_from(const task *t);
/* task_owns_key tells whether the key with these values (the operator's key_by, in
 * order) falls in this subtask's key groups: the partitioner's hash (operators/task.c)
 * % max parallelism, then × parallelism / max parallelism. */
bool task_owns_key(const task *t, const ev_val *keys, uint32_t n);
/* task_rescaled: the job was restored at another parallelism of this operator. */
bool task_rescaled(const task *t);
/* task_key_group: the key group (0 .. max parallelism - 1) of the key with these values,
 * as the partitioner computes it: the key-group argument of ev_state_set_key. */
uint32_t task_key_group(const task *t, const ev_val *keys, uint32_t n);
/* task_keyed_state: the task's keyed-state handle (op_def.keyed_state; NULL otherwise),
 * open from before the operator's open to after its close, restored from the
 * checkpoint when the job was. The task's thread only. */
struct ev_state *task_keyed_state(task *t);

/* task_last_checkpoint: the newest checkpoint the task took part in (or was restored
 * from); 0: none. */
uint64_t task_last_checkpoint(const task *t);
/* task_count_dropped counts n records the operator dropped by design (a split's records
 * matching no output and no default): the task's `dropped` (control plane, metrics) and
 * the job's `unmatched` (the summary line). */
void task_count_dropped(task *t, uint64_t n);
/* task_set_state_bytes publishes the operator's state size (bytes, approximate). */
void task_set_state_bytes(task *t, uint64_t bytes);
/* task_scratch: a per-task scratch for expression evaluation. */
expr_scratch *task_scratch(task *t);

/* task_emit hands b (owned) to every consumer of output port `port`. A port without
 * consumers frees it. Errors: EDDY_ENOMEM. */
eddy_err task_emit(task *t, uint32_t port, ev_batch *b);

/* task_emit_watermark forwards wm to every consumer of every port (sources call it;
 * other operators' watermarks are forwarded by the task after their hook). */
eddy_err task_emit_watermark(task *t, int64_t wm);

/* task_emit_idle tells every consumer that this task is idle (true) or active again. */
eddy_err task_emit_idle(task *t, bool idle);

/* task_finish (sources) ends the stream: flushes, sends MSG_EOS (final or not) on every
 * channel, counts the task done and exits normally. */
void task_finish(task *t, bool final);

/* task_fail fails the task with a formatted reason; returns EDDY_EFAILED. */
eddy_err task_fail(task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* task_new_batch allocates an empty batch for the given schema (TASK_BATCH records). */
#define TASK_BATCH 1024u
ev_batch *task_new_batch(task *t, const ev_schema *schema);

#endif
