/*
 * The control plane of an eddy process: the request handler behind `eddy shell` (this
 * file's ctl_* functions, no I/O) and the endpoint that serves it over an nng
 * request/reply socket (ctl_server_*), plus the Prometheus text rendering used by the
 * metrics endpoint (actors/metrics.h).
 *
 * Protocol (version 1). One request, one reply, each a msgpack map.
 *   request: {"v": 1, "cmd": STR, "args": [STR, ...], "secret": STR}
 *            "args" may be absent (no arguments); "secret" is required when the server
 *            has one (compared in constant time) and ignored otherwise.
 *   reply:   {"ok": true, "result": VALUE}  or  {"ok": false, "error": STR}
 * A request larger than CTL_MAX_REQUEST bytes is answered with an error before it is
 * decoded; a frame that is not such a map, a wrong secret, an unknown command or bad
 * arguments get an error reply. Every such reply is counted as a reject, by reason
 * ("oversized", "malformed", "unauthorized", "bad_request"); so is a connection refused
 * because CTL_MAX_CONNECTIONS are open ("connections").
 *
 * Commands and their results (times: ms since the Unix epoch; rates: per second, over the
 * last sampling interval of about 1 s; a watermark is an int (ms) or nil when there is
 * none yet):
 *   jobs             [ {name, status ("running"|"cancelling"|"finished"|"failed"),
 *                       uptime_ms, records_in, records_out, in_per_s, out_per_s} ]
 *   actors [GLOB]    [ {path, type, op, status ("new"|"running"|"parked"|"restarting"|
 *                       "stopped"), mailbox_len, mailbox_cap, records_in, records_out,
 *                       in_per_s, out_per_s, busy_pct, restarts, last_error,
 *                       last_error_ms} ]   (fnmatch GLOB on the path; spawn order)
 *                       op: the operator type of a task ("window", "file-source", ...)
 *                       or the actor type ("supervisor"); records_* and *_per_s are
 *                       records of tasks, nil for other actors (see msgs_* in info).
 *   tree             [ {path, parent, depth, type, status, strategy, intensity,
 *                       period_ms, restart} ]  depth-first from the roots; strategy,
 *                       intensity and period_ms are nil except for supervisors, restart
 *                       (the child's restart type) nil for roots.
 *   info PATH        {path, parent, children: [STR], type, op, status, mailbox_len,
 *                     mailbox_cap, control_len, outbox_len, records_in, records_out,
 *                     in_per_s, out_per_s, msgs_in, msgs_out, busy_ms, busy_pct,
 *                     restarts, parks, dead_letters, watermark, state_bytes, dropped,
 *                     last_error, last_error_ms}
 *   stats            {jobs: [ {name, status, records_in, records_out, in_per_s,
 *                     out_per_s, watermark, watermark_lag_ms, backpressured: [PATH]} ],
 *                     control: {requests, rejected, rejected_by: {REASON: N}}}
 *                     watermark: the job's output watermark (the minimum over its sink
 *                     tasks); watermark_lag_ms = now - watermark (nil without one);
 *                     backpressured: actors parked on a full mailbox.
 *   kill PATH [REASON]  {killed: PATH, reason: STR} — a failure injected into the actor
 *                     (MSG_FAIL), handled as if its callback had failed.
 *   log [N]          [ {time_ms, path, what, detail} ] the last N (default 20, at most
 *                     1024) runtime events, oldest first.
 *   cancel JOB       {cancelled: JOB} — the job's sources stop, data in flight drains,
 *                     sinks flush (as SIGINT).
 *   checkpoints      [ {id, status ("in_progress"|"completed"|"aborted"), started_ms,
 *                       duration_ms, bytes, alignment_ms, acks, tasks, why} ] newest
 *                     first (the last 32); an error if the job has no checkpoint: section.
 *   checkpoint       {triggered: true} — the coordinator triggers one as soon as none is
 *                     in progress.
 *   savepoint DIR    {triggered: true, dir: DIR} — a savepoint into DIR (which must be
 *                     new or empty) as soon as no checkpoint is in progress; the job goes
 *                     on. `checkpoints` shows it (savepoint: true) when it completes.
 *   help, watch are the shell's own.
 *
 * Thread rules: ctl_handle and the ctl_server run on the server's own thread (never on a
 * scheduler worker); the provider's callbacks are called from that thread and from the
 * metrics server's thread, and must be thread-safe.
 */
#ifndef EDDY_ACTORS_CONTROL_H
#define EDDY_ACTORS_CONTROL_H

#include "actor.h"

#include <stdio.h>

#define CTL_MAX_REQUEST 65536u /* bytes */
#define CTL_MAX_CONNECTIONS 64  /* open connections to one endpoint; more are closed */
#define CTL_PROTOCOL 1

/* What a job runner knows about one job. */
typedef struct ctl_job_info {
	char name[128];
	const char *status; /* static string: "running", "cancelling", "finished", "failed" */
	int64_t started_ms; /* wall clock */
	uint64_t records_in, records_out;
	int64_t watermark;  /* output watermark, ms; valid if has_watermark */
	bool has_watermark;
	bool checkpointing; /* the job has checkpoints; then: */
	uint64_t ckpt_completed, ckpt_aborted;
	uint64_t last_ckpt_id; /* the newest completed one (0: none yet) and its numbers */
	int64_t last_ckpt_duration_ms, last_ckpt_alignment_ms;
	uint64_t last_ckpt_bytes;
} ctl_job_info;

/* One checkpoint, as the job runner reports it. */
typedef struct ctl_checkpoint_info {
	uint64_t id;
	const char *status; /* static: "in_progress", "completed", "aborted" */
	int64_t started_ms, duration_ms, alignment_ms;
	uint64_t bytes;
	uint32_t acks, tasks;
	char why[160];
	bool savepoint;
	char dir[256];
} ctl_checkpoint_info;

/* What a job runner knows about one of its actors (a task). */
typedef struct ctl_actor_extra {
	char op[32];        /* operator type */
	uint64_t records_in, records_out;
	int64_t watermark;  /* the task's current watermark, ms; valid if has_watermark */
	bool has_watermark;
	uint64_t state_bytes;
	uint64_t dropped; /* records dropped by design (a split's unmatched records) */
	uint64_t aligning; /* the checkpoint whose barriers it is aligning, 0: none */
	uint64_t held;     /* elements it holds back for that alignment */
} ctl_actor_extra;

/* The job side of the control plane, implemented by the job runner (tools/run.c).
 * Every callback is optional and thread-safe. */
typedef struct ctl_provider {
	void *ctx;
	/* jobs fills up to max entries; returns how many jobs there are. */
	size_t (*jobs)(void *ctx, ctl_job_info *out, size_t max);
	/* actor_extra fills *out for the task at path; false if path is not a task. */
	bool (*actor_extra)(void *ctx, const char *path, ctl_actor_extra *out);
	/* cancel stops the job named `job`; false (with why) if there is no such job or it
	 * is not running. */
	bool (*cancel)(void *ctx, const char *job, char *why, size_t why_size);
	/* checkpoints fills up to max entries, newest first, into *n; false (with why) when
	 * the job has no checkpoints. */
	bool (*checkpoints)(void *ctx, ctl_checkpoint_info *out, size_t max, size_t *n, char *why,
	                    size_t why_size);
	/* trigger_checkpoint asks for a checkpoint now; false with why if it cannot. */
	bool (*trigger_checkpoint)(void *ctx, char *why, size_t why_size);
	/* trigger_savepoint asks for a savepoint into dir; false with why if it cannot. */
	bool (*trigger_savepoint)(void *ctx, const char *dir, char *why, size_t why_size);
} ctl_provider;

/* The request handler: the actor system and provider it answers about, the secret, the
 * counters, and the rate samples. */
typedef struct ctl ctl;

/* ctl_new makes a handler for sys (borrowed) and provider (copied). secret (copied, may
 * be NULL: no secret required) is compared with each request's. Errors: EDDY_ENOMEM. */
eddy_err ctl_new(asys *sys, const ctl_provider *provider, const char *secret, ctl **out);
void ctl_free(ctl *c);

/* ctl_sample takes a sample of every actor's and job's counters for the rates, if at
 * least 900 ms passed since the last one (or force). Called by the server about every
 * second. Thread-safe. */
void ctl_sample(ctl *c, bool force);

/* ctl_handle answers one request frame (len bytes, borrowed): *reply is a new msgpack
 * buffer (malloc'd, *reply_len bytes) the caller frees with free(). Never fails for bad
 * input (that is an error reply); EDDY_ENOMEM only when no reply could be built. */
eddy_err ctl_handle(ctl *c, const void *req, size_t len, char **reply, size_t *reply_len);

/* ctl_swap replaces the actor system the handler answers about (a job that restarted
 * from a checkpoint in a new one): with no request or metrics scrape running, it calls
 * fn(arg) (which may update what the provider's ctx points at) and switches to sys. */
void ctl_swap(ctl *c, void (*fn)(void *arg), void *arg, asys *sys);

/* ctl_reject_connection counts a connection refused for lack of room. Thread-safe. */
void ctl_reject_connection(ctl *c);

/* ctl_counts: requests handled and rejected so far. */
void ctl_counts(ctl *c, uint64_t *requests, uint64_t *rejected);

/* ctl_metrics writes the Prometheus text exposition format (version 0.0.4) of every
 * actor and job to f: per actor records in/out, messages in/out, mailbox length and
 * capacity, busy seconds, restarts; per job records in/out, throughput, watermark; the
 * control endpoint's requests and rejects. Thread-safe. */
void ctl_metrics(ctl *c, FILE *f);

/* ---- the endpoint ---- */

typedef struct ctl_server ctl_server;

/* ctl_address_is_local tells whether an nng address only reaches this machine
 * (ipc://, inproc://, tcp:// or ws:// on 127.0.0.0/8, ::1 or localhost). */
bool ctl_address_is_local(const char *url);

/* ctl_server_start listens on url with a reply socket and serves c from a thread of its
 * own (requests one at a time, ctl_sample about every second). At most
 * CTL_MAX_CONNECTIONS connections are open at once (more are closed as they come, so
 * idle connections cannot use up the process's file descriptors). A frame over
 * CTL_MAX_REQUEST bytes (up to 1 MiB; nng closes the connection of a larger one) gets an
 * error reply. *bound receives the address actually bound (the port chosen for
 * tcp://...:0). Errors: EDDY_EINVAL (bad address, with why), EDDY_EIO (cannot listen,
 * with why: nng's error), EDDY_ENOMEM. */
eddy_err ctl_server_start(ctl *c, const char *url, ctl_server **out, char *bound,
                          size_t bound_size, char *why, size_t why_size);

/* ctl_server_stop stops serving and joins the thread (its receive is cancelled: at once,
 * or within 25 ms when the stop comes just before the receive starts). close_socket: also close the
 * socket and free s; false leaves both to the process's exit, for a process about to end: closing
 * an nng socket while a client's pipe is going away can panic inside nng (nanomsg/nng#2110; seen
 * here as "panic: pthread_mutex_unlock: Invalid argument" when `eddy run` ended right after a shell
 * disconnected). Safe on NULL. */
void ctl_server_stop(ctl_server *s, bool close_socket);

/* ctl_read_secret reads a secret file: it must be a regular file of mode 0600 or
 * stricter (no group or other bits), hold 1 to 1024 bytes; a trailing newline is
 * dropped. Errors: EDDY_EINVAL / EDDY_EIO with why naming the file. *out is malloc'd. */
eddy_err ctl_read_secret(const char *file, char **out, char *why, size_t why_size);

#endif
