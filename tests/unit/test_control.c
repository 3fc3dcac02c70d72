/* The control plane's request handler without a socket: requests in, msgpack replies out,
 * against a live actor system (a supervisor with two children); plus the address and
 * secret-file rules and the Prometheus text's shape. */
#include "actors/control.h"
#include "actors/supervisor.h"
#include "runtime/alloc.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "test_util.h"

static eddy_err idle_receive(actor *self, void *state, rt_msg *m)
{
	(void)self, (void)state;
	msg_discard(m);
	return EDDY_OK;
}
static const actor_ops child_ops = { .type = "child", .receive = idle_receive };

static asys *sys;
static sup_child_spec kids[2];
static sup_spec spec;
static ctl *c;

static bool extra(void *ctx, const char *path, ctl_actor_extra *out)
{
	(void)ctx;
	if (strcmp(path, "j/a") != 0)
		return false;
	snprintf(out->op, sizeof(out->op), "window");
	out->records_in = 42;
	out->records_out = 7;
	out->watermark = 1000;
	out->has_watermark = true;
	out->state_bytes = 4096;
	return true;
}

static size_t jobs(void *ctx, ctl_job_info *out, size_t max)
{
	(void)ctx;
	if (max) {
		memset(out, 0, sizeof(*out));
		snprintf(out->name, sizeof(out->name), "j");
		out->status = "running";
		out->started_ms = 1;
		out->records_in = 100;
		out->watermark = 5000;
		out->has_watermark = true;
	}
	return 1;
}

static void setup(void)
{
	asys_opts o = { .workers = 2 };
	cr_assert_eq(asys_create(&o, &sys), EDDY_OK);
	kids[0] = (sup_child_spec){ .actor = { .path = "j/a", .ops = &child_ops },
		                    .restart = CHILD_TRANSIENT };
	kids[1] = (sup_child_spec){ .actor = { .path = "j/b", .ops = &child_ops },
		                    .restart = CHILD_CRITICAL };
	sup_spec_defaults(&spec);
	spec.children = kids;
	spec.nchildren = 2;
	spec.backoff_initial_ms = 0;
	cr_assert_eq(sup_spawn(sys, "j", &spec, NULL, NULL), EDDY_OK);
	cr_assert(wait_until(asys_find(sys, "j/b") &&
	                         actor_get_status(asys_find(sys, "j/b")) == ACTOR_RUNNING,
	                     5000));
	ctl_provider pv = { .jobs = jobs, .actor_extra = extra };
	cr_assert_eq(ctl_new(sys, &pv, "sesame", &c), EDDY_OK);
}

static void teardown(void)
{
	ctl_free(c);
	asys_destroy(sys);
}

TestSuite(ctl, .init = setup, .fini = teardown, .timeout = 30);

/* ---- talking to the handler ---- */

static msgpack_unpacked up;
static char *reply;

/* ask sends {"v":1,"cmd":cmd,"args":[...],"secret":secret} and decodes the reply. */
static const msgpack_object *ask(const char *secret, const char *cmd, int nargs, ...)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, secret ? 4 : 3);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "cmd", 3);
	msgpack_pack_str_with_body(&pk, cmd, strlen(cmd));
	msgpack_pack_str_with_body(&pk, "args", 4);
	msgpack_pack_array(&pk, (size_t)nargs);
	va_list ap;
	va_start(ap, nargs);
	for (int i = 0; i < nargs; i++) {
		const char *a = va_arg(ap, const char *);
		msgpack_pack_str_with_body(&pk, a, strlen(a));
	}
	va_end(ap);
	if (secret)
		msgpack_pack_str_with_body(&pk, "secret", 6),
			msgpack_pack_str_with_body(&pk, secret, strlen(secret));
	size_t len;
	free(reply);
	reply = NULL;
	cr_assert_eq(ctl_handle(c, sb.data, sb.size, &reply, &len), EDDY_OK);
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&up);
	msgpack_unpacked_init(&up);
	size_t off = 0;
	cr_assert_eq(msgpack_unpack_next(&up, reply, len, &off), MSGPACK_UNPACK_SUCCESS);
	cr_assert_eq(off, len, "one value per reply");
	return &up.data;
}

static const msgpack_object *raw(const void *frame, size_t n)
{
	size_t len;
	free(reply);
	reply = NULL;
	cr_assert_eq(ctl_handle(c, frame, n, &reply, &len), EDDY_OK);
	msgpack_unpacked_destroy(&up);
	msgpack_unpacked_init(&up);
	size_t off = 0;
	cr_assert_eq(msgpack_unpack_next(&up, reply, len, &off), MSGPACK_UNPACK_SUCCESS);
	return &up.data;
}

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
	cr_assert(m && m->type == MSGPACK_OBJECT_MAP, "not a map looking for %s", key);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->via.str.size == strlen(key) && memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &m->via.map.ptr[i].val;
	}
	cr_assert_fail("no key %s", key);
	return NULL;
}

static bool str_is(const msgpack_object *o, const char *s)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static bool str_has(const msgpack_object *o, const char *s)
{
	return o->type == MSGPACK_OBJECT_STR &&
	       memmem(o->via.str.ptr, o->via.str.size, s, strlen(s)) != NULL;
}

static void expect_error(const msgpack_object *r, const char *want)
{
	cr_assert_eq(get(r, "ok")->via.boolean, false);
	const msgpack_object *e = get(r, "error");
	cr_assert(str_has(e, want), "error '%.*s' lacks '%s'", (int)e->via.str.size,
	          e->via.str.ptr, want);
}

static uint64_t rejected(const char *reason)
{
	const msgpack_object *s = ask("sesame", "stats", 0);
	return get(get(get(get(s, "result"), "control"), "rejected_by"), reason)->via.u64;
}

/* ---- tests ---- */

Test(ctl, actors_lists_every_actor_with_its_fields)
{
	const msgpack_object *r = ask("sesame", "actors", 0);
	cr_assert(get(r, "ok")->via.boolean);
	const msgpack_object *a = get(r, "result");
	cr_assert_eq(a->type, MSGPACK_OBJECT_ARRAY);
	cr_assert_eq(a->via.array.size, 3);
	cr_assert(str_is(get(&a->via.array.ptr[0], "path"), "j"));
	cr_assert(str_is(get(&a->via.array.ptr[0], "op"), "supervisor"));
	const msgpack_object *ta = &a->via.array.ptr[1];
	cr_assert(str_is(get(ta, "path"), "j/a"));
	cr_assert(str_is(get(ta, "op"), "window"), "the provider's operator type");
	cr_assert_eq(get(ta, "records_in")->via.u64, 42);
	cr_assert(str_is(get(ta, "status"), "running"));
	cr_assert_eq(get(ta, "last_error_ms")->type, MSGPACK_OBJECT_NIL);
	/* a glob */
	r = ask("sesame", "actors", 1, "j/?");
	cr_assert_eq(get(r, "result")->via.array.size, 2);
}

Test(ctl, kill_fails_the_actor_and_info_and_log_show_it)
{
	const msgpack_object *r = ask("sesame", "kill", 3, "j/a", "for", "testing");
	cr_assert(get(r, "ok")->via.boolean);
	cr_assert(str_is(get(get(r, "result"), "reason"), "for testing"));
	cr_assert(wait_until(actor_restarts(asys_find(sys, "j/a")) == 1, 5000));
	r = ask("sesame", "info", 1, "j/a");
	const msgpack_object *i = get(r, "result");
	cr_assert_eq(get(i, "restarts")->via.u64, 1);
	cr_assert(str_is(get(i, "last_error"), "killed: for testing"));
	cr_assert_eq(get(i, "last_error_ms")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	cr_assert(str_is(get(i, "parent"), "j"));
	cr_assert_eq(get(i, "watermark")->via.i64, 1000);
	cr_assert_eq(get(i, "state_bytes")->via.u64, 4096);
	r = ask("sesame", "log", 1, "50");
	const msgpack_object *ev = get(r, "result");
	bool failed = false, restarted = false;
	for (uint32_t k = 0; k < ev->via.array.size; k++) {
		const msgpack_object *e = &ev->via.array.ptr[k];
		failed |= str_is(get(e, "path"), "j/a") && str_is(get(e, "what"), "failed") &&
		          str_has(get(e, "detail"), "for testing");
		restarted |= str_is(get(e, "what"), "restarted") &&
		             (str_is(get(e, "path"), "j/a") || str_has(get(e, "detail"), "j/a"));
	}
	cr_assert(failed && restarted, "log lacks the failure or the restart");
	/* info of the supervisor lists its children */
	r = ask("sesame", "info", 1, "j");
	cr_assert_eq(get(get(r, "result"), "children")->via.array.size, 2);
	cr_assert_eq(get(get(r, "result"), "watermark")->type, MSGPACK_OBJECT_NIL);
}

Test(ctl, tree_gives_strategy_intensity_and_restart_types_depth_first)
{
	const msgpack_object *r = get(ask("sesame", "tree", 0), "result");
	cr_assert_eq(r->via.array.size, 3);
	const msgpack_object *root = &r->via.array.ptr[0];
	cr_assert(str_is(get(root, "strategy"), "one_for_one"));
	cr_assert_eq(get(root, "intensity")->via.u64, 3);
	cr_assert_eq(get(root, "period_ms")->via.u64, 5000);
	cr_assert_eq(get(root, "restart")->type, MSGPACK_OBJECT_NIL);
	cr_assert(str_is(get(&r->via.array.ptr[1], "restart"), "transient"));
	cr_assert(str_is(get(&r->via.array.ptr[2], "restart"), "critical"));
	cr_assert_eq(get(&r->via.array.ptr[2], "depth")->via.u64, 1);
}

Test(ctl, stats_gives_the_watermark_lag)
{
	const msgpack_object *j = &get(get(ask("sesame", "stats", 0), "result"), "jobs")->via.array.ptr[0];
	cr_assert_eq(get(j, "watermark")->via.i64, 5000);
	cr_assert_gt(get(j, "watermark_lag_ms")->via.i64, 1000000, "now - 5 s after the epoch");
	cr_assert_eq(get(j, "backpressured")->via.array.size, 0);
}

Test(ctl, bad_requests_get_errors_and_are_counted_by_reason)
{
	expect_error(ask("wrong", "actors", 0), "unauthorized");
	expect_error(ask(NULL, "actors", 0), "unauthorized");
	cr_assert_eq(rejected("unauthorized"), 2);
	expect_error(ask("sesame", "actorz", 0), "unknown command 'actorz'");
	expect_error(ask("sesame", "info", 0), "usage: info PATH");
	expect_error(ask("sesame", "log", 1, "0"), "N must be a number from 1 to 1024");
	expect_error(ask("sesame", "actors", 9, "1", "2", "3", "4", "5", "6", "7", "8", "9"),
	             "at most 8 strings");
	cr_assert_eq(rejected("bad_request"), 3);
	expect_error(ask("sesame", "info", 1, "no/such"), "no actor no/such");
	expect_error(ask("sesame", "kill", 1, "no/such"), "no actor no/such");
	cr_assert_eq(rejected("bad_request"), 3, "a missing actor is an answer, not a reject");
	cr_assert_eq(rejected("malformed"), 1, "the 9 arguments were a malformed request");

	static const uint8_t huge_array[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	expect_error(raw(huge_array, sizeof(huge_array)), "malformed request");
	static const uint8_t two_values[] = { 0x80, 0x80 };
	expect_error(raw(two_values, sizeof(two_values)), "malformed request");
	uint8_t deep[40];
	memset(deep, 0x91, sizeof(deep));
	expect_error(raw(deep, sizeof(deep)), "malformed request");
	static const uint8_t not_map[] = { 0x92, 0x01, 0x02 };
	expect_error(raw(not_map, sizeof(not_map)), "unauthorized"); /* no secret found */
	expect_error(raw("", 0), "malformed request");
	static char big[CTL_MAX_REQUEST + 1];
	expect_error(raw(big, sizeof(big)), "request of 65537 bytes is over the 65536-byte limit");
	cr_assert_eq(rejected("oversized"), 1);
	cr_assert_eq(rejected("malformed"), 5);
	uint64_t req, rej;
	ctl_counts(c, &req, &rej);
	cr_assert_eq(rej, 3 + 3 + 5 + 1, "unauthorized, bad requests, malformed, oversized");
}

Test(ctl, a_newer_protocol_version_is_refused)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 2);
	msgpack_pack_str_with_body(&pk, "cmd", 3);
	msgpack_pack_str_with_body(&pk, "jobs", 4);
	msgpack_pack_str_with_body(&pk, "secret", 6);
	msgpack_pack_str_with_body(&pk, "sesame", 6);
	expect_error(raw(sb.data, sb.size), "protocol version 2 is not supported");
	msgpack_sbuffer_destroy(&sb);
}

Test(ctl, metrics_are_prometheus_text)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ctl_metrics(c, f);
	fclose(f);
	regex_t sample;
	cr_assert_eq(regcomp(&sample,
	                     "^eddy_[a-z_]+(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? "
	                     "[-+0-9.e]+$",
	                     REG_EXTENDED | REG_NOSUB),
	             0);
	int samples = 0;
	char last_type[128] = "";
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "# TYPE ", 7) == 0) {
			sscanf(line + 7, "%127s", last_type);
			bool counter = strstr(line, " counter") != NULL;
			size_t n = strlen(last_type);
			cr_assert_eq(counter, n > 6 && strcmp(last_type + n - 6, "_total") == 0,
			             "counters and only counters end in _total: %s", line);
			continue;
		}
		if (line[0] == '#')
			continue;
		cr_assert_eq(regexec(&sample, line, 0, NULL, 0), 0, "not a sample: %s", line);
		cr_assert_eq(strncmp(line, last_type, strlen(last_type)), 0,
		             "sample %s outside its family %s", line, last_type);
		samples++;
	}
	regfree(&sample);
	cr_assert_gt(samples, 20);
	free(text);
}

Test(ctl, local_addresses)
{
	cr_assert(ctl_address_is_local("ipc:///tmp/x.sock"));
	cr_assert(ctl_address_is_local("inproc://x"));
	cr_assert(ctl_address_is_local("tcp://127.0.0.1:7600"));
	cr_assert(ctl_address_is_local("tcp://127.1.2.3:0"));
	cr_assert(ctl_address_is_local("tcp://localhost:7600"));
	cr_assert(ctl_address_is_local("tcp://[::1]:7600"));
	cr_assert_not(ctl_address_is_local("tcp://0.0.0.0:7600"));
	cr_assert_not(ctl_address_is_local("tcp://127.0.0.1.evil.com:7600"));
	cr_assert_not(ctl_address_is_local("tcp://127.example:1"));
	cr_assert_not(ctl_address_is_local("tcp://10.0.0.1:7600"));
	cr_assert_not(ctl_address_is_local("tcp://:7600"));
	cr_assert_not(ctl_address_is_local("tls+tcp://127.0.0.1:7600"));
}

Test(ctl, secret_files)
{
	char dir[] = "/tmp/eddy-secret-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[128], why[512], *s;
	snprintf(path, sizeof(path), "%s/s", dir);
	FILE *f = fopen(path, "w");
	fputs("open sesame\n", f);
	fclose(f);
	chmod(path, 0600);
	cr_assert_eq(ctl_read_secret(path, &s, why, sizeof(why)), EDDY_OK, "%s", why);
	cr_assert_str_eq(s, "open sesame", "the trailing newline is dropped");
	free(s);
	chmod(path, 0640);
	cr_assert_eq(ctl_read_secret(path, &s, why, sizeof(why)), EDDY_EINVAL);
	cr_assert(strstr(why, "mode 0640 lets others read it"), "%s", why);
	chmod(path, 0400);
	cr_assert_eq(ctl_read_secret(path, &s, why, sizeof(why)), EDDY_OK, "read-only is fine");
	free(s);
	f = fopen(path, "w");
	fclose(f);
	cr_assert_eq(ctl_read_secret(path, &s, why, sizeof(why)), EDDY_EINVAL);
	cr_assert(strstr(why, "1 to 1024 bytes"), "%s", why);
	cr_assert_eq(ctl_read_secret(dir, &s, why, sizeof(why)), EDDY_EINVAL);
	cr_assert(strstr(why, "not a regular file"), "%s", why);
	snprintf(path, sizeof(path), "%s/none", dir);
	cr_assert_eq(ctl_read_secret(path, &s, why, sizeof(why)), EDDY_EIO);
	cr_assert(strstr(why, "No such file"), "%s", why);

	/* a symlink to a 0600 file is followed (secret mounts are links) */
	char target[128], link[128];
	snprintf(target, sizeof(target), "%s/t", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	f = fopen(target, "w");
	fputs("linked\r\n", f);
	fclose(f);
	chmod(target, 0600);
	cr_assert_eq(symlink(target, link), 0);
	cr_assert_eq(ctl_read_secret(link, &s, why, sizeof(why)), EDDY_OK, "%s", why);
	cr_assert_str_eq(s, "linked", "CR LF is dropped");
	free(s);

	/* 1024 bytes + CR LF + more: refused, not cut to its first 1024 bytes */
	f = fopen(target, "w");
	for (int i = 0; i < 1024; i++)
		fputc('a', f);
	fputs("\r\nEXTRA\n", f);
	fclose(f);
	cr_assert_eq(ctl_read_secret(target, &s, why, sizeof(why)), EDDY_EINVAL);
	cr_assert(strstr(why, "1 to 1024 bytes"), "%s", why);
	f = fopen(target, "w"); /* exactly 1024 + CR LF is fine */
	for (int i = 0; i < 1024; i++)
		fputc('a', f);
	fputs("\r\n", f);
	fclose(f);
	cr_assert_eq(ctl_read_secret(target, &s, why, sizeof(why)), EDDY_OK, "%s", why);
	cr_assert_eq(strlen(s), 1024);
	free(s);

	/* a FIFO with no writer does not hang the open: it is not a regular file */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(ctl_read_secret(path, &s, why, sizeof(why)), EDDY_EINVAL);
	cr_assert(strstr(why, "not a regular file"), "%s", why);
	char rm[160];
	snprintf(rm, sizeof(rm), "rm -rf %s", dir);
	cr_assert_eq(system(rm), 0);
}
