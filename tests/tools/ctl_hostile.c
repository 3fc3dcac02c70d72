/*
 * ctl_hostile ADDRESS SECRET [TCP_HOST TCP_PORT]: throws bad input at a running eddy's
 * control endpoint and checks that every bad request got an error reply and was counted.
 *
 *  - 1,000 random frames (random bytes, truncated and mutated valid requests, deep
 *    nesting, containers declaring billions of items, wrong field types), each on the
 *    request/reply protocol: each must get a reply {"ok": false, ...};
 *  - 10 oversized frames (70 KiB to 900 KiB): "oversized" errors;
 *  - 50 well-formed requests with a wrong or missing secret: "unauthorized";
 *  - with TCP_HOST/TCP_PORT: 50 raw TCP connections writing garbage that is not nng's
 *    protocol at all (nng drops them);
 *  - then `stats` with the right secret: the server is alive and control.rejected has
 *    grown by exactly the number of bad requests sent, per reason.
 * Prints PASS/FAIL lines; exit 0 only if everything held. Seeded (fixed), so a failure
 * reproduces.
 */
#include <arpa/inet.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int failures;
static void check(bool ok, const char *what)
{
	printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
	failures += !ok;
}

/* request packs {"v":1,"cmd":cmd,"args":[arg?],"secret":secret?}. */
static void request(msgpack_sbuffer *sb, const char *cmd, const char *arg, const char *secret)
{
	msgpack_packer pk;
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, secret ? 4 : 3);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_str_with_body(&pk, "cmd", 3);
	msgpack_pack_str_with_body(&pk, cmd, strlen(cmd));
	msgpack_pack_str_with_body(&pk, "args", 4);
	msgpack_pack_array(&pk, arg ? 1 : 0);
	if (arg)
		msgpack_pack_str_with_body(&pk, arg, strlen(arg));
	if (secret) {
		msgpack_pack_str_with_body(&pk, "secret", 6);
		msgpack_pack_str_with_body(&pk, secret, strlen(secret));
	}
}

/* call sends a frame and decodes the reply into *up (whose strings point into the reply,
 * kept until the next call); 0 ok, -1 no reply. */
static int call(nng_socket s, const void *buf, size_t len, msgpack_unpacked *up)
{
	static char *rep;
	static size_t rlen;
	if (rep)
		nng_free(rep, rlen);
	rep = NULL;
	if (nng_send(s, (void *)buf, len, 0) != 0)
		return -1;
	if (nng_recv(s, &rep, &rlen, NNG_FLAG_ALLOC) != 0)
		return rep = NULL, -1;
	msgpack_unpacked_destroy(up);
	msgpack_unpacked_init(up);
	size_t off = 0;
	return msgpack_unpack_next(up, rep, rlen, &off) == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
		    memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

static bool is_error_reply(const msgpack_unpacked *up, const char *want)
{
	const msgpack_object *ok = get(&up->data, "ok"), *err = get(&up->data, "error");
	if (ok == NULL || ok->type != MSGPACK_OBJECT_BOOLEAN || ok->via.boolean || err == NULL ||
	    err->type != MSGPACK_OBJECT_STR)
		return false;
	if (want == NULL)
		return true;
	return memmem(err->via.str.ptr, err->via.str.size, want, strlen(want)) != NULL;
}

static uint64_t u64_at(const msgpack_object *m, const char *a, const char *b, const char *c)
{
	const msgpack_object *o = get(get(get(m, a), b), c);
	return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : UINT64_MAX;
}

/* stats asks `stats` with the right secret; false if no good answer. */
static bool stats(nng_socket s, const char *secret, msgpack_unpacked *up, msgpack_sbuffer *sb)
{
	request(sb, "stats", NULL, secret);
	if (call(s, sb->data, sb->size, up) != 0)
		return false;
	const msgpack_object *ok = get(&up->data, "ok");
	return ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean;
}

/* random_frame fills buf with one of several kinds of bad request; returns its length. */
static size_t random_frame(uint8_t *buf, size_t cap, const msgpack_sbuffer *valid_nosecret)
{
	size_t len;
	switch (next() % 6) {
	case 0: /* random bytes */
		len = next() % 2048;
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)next();
		return len;
	case 1: /* a valid request (without the secret) cut short */
		len = valid_nosecret->size ? next() % valid_nosecret->size : 0;
		memcpy(buf, valid_nosecret->data, len);
		return len;
	case 2: /* a valid request with bytes flipped */
		len = valid_nosecret->size;
		memcpy(buf, valid_nosecret->data, len);
		for (int k = 0; k < 3; k++)
			buf[next() % len] ^= (uint8_t)(1u << (next() % 8));
		return len;
	case 3: /* deep nesting: arrays of one array of ... */
		len = 1 + next() % 1000;
		memset(buf, 0x91, len);
		return len;
	case 4: { /* a container declaring billions of items */
		static const uint8_t heads[][5] = { { 0xdd, 0xff, 0xff, 0xff, 0xff },
			                            { 0xdf, 0x7f, 0xff, 0xff, 0xff },
			                            { 0xdc, 0xff, 0xff, 0, 0 },
			                            { 0xc6, 0xff, 0xff, 0xff, 0xf0 } };
		int h = (int)(next() % 4);
		memcpy(buf, heads[h], 5);
		return 5;
	}
	default: { /* well-formed msgpack of the wrong shape */
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		switch (next() % 4) {
		case 0: msgpack_pack_array(&pk, 2), msgpack_pack_int(&pk, 1), msgpack_pack_nil(&pk); break;
		case 1: /* cmd is a number */
			msgpack_pack_map(&pk, 1);
			msgpack_pack_str_with_body(&pk, "cmd", 3);
			msgpack_pack_int(&pk, 7);
			break;
		case 2: /* args holds a map */
			msgpack_pack_map(&pk, 2);
			msgpack_pack_str_with_body(&pk, "cmd", 3);
			msgpack_pack_str_with_body(&pk, "info", 4);
			msgpack_pack_str_with_body(&pk, "args", 4);
			msgpack_pack_map(&pk, 0);
			break;
		default: /* two values in one frame */
			msgpack_pack_map(&pk, 0);
			msgpack_pack_map(&pk, 0);
		}
		len = sb.size < cap ? sb.size : cap;
		memcpy(buf, sb.data, len);
		msgpack_sbuffer_destroy(&sb);
		return len;
	}
	}
	(void)cap;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 5) {
		fprintf(stderr, "usage: ctl_hostile ADDRESS SECRET [TCP_HOST TCP_PORT]\n");
		return 2;
	}
	const char *addr = argv[1], *secret = argv[2];
	nng_socket s;
	if (nng_req0_open(&s) != 0 || nng_dial(s, addr, NULL, 0) != 0) {
		fprintf(stderr, "ctl_hostile: cannot dial %s\n", addr);
		return 1;
	}
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 60000);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 4u << 20);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);

	check(stats(s, secret, &up, &sb), "stats with the right secret answers before the attack");
	uint64_t req0 = u64_at(&up.data, "result", "control", "requests");
	uint64_t rej0 = u64_at(&up.data, "result", "control", "rejected");
	const msgpack_object *by = get(get(get(&up.data, "result"), "control"), "rejected_by");
	const msgpack_object *o = get(by, "oversized"), *u = get(by, "unauthorized");
	uint64_t over0 = o ? o->via.u64 : UINT64_MAX;
	uint64_t unauth0 = u ? u->via.u64 : UINT64_MAX;
	check(req0 != UINT64_MAX && rej0 != UINT64_MAX && o && u,
	      "stats has control.requests, rejected, rejected_by");

	msgpack_sbuffer valid;
	msgpack_sbuffer_init(&valid);
	request(&valid, "info", "x/y[0]", NULL);
	uint8_t *buf = malloc(1u << 20);
	int answered = 0, errors = 0;
	for (int i = 0; i < 1000; i++) {
		size_t len = random_frame(buf, 1u << 20, &valid);
		if (call(s, buf, len, &up) == 0) {
			answered++;
			errors += is_error_reply(&up, NULL);
		}
	}
	char what[200];
	snprintf(what, sizeof(what), "1000 random frames: %d answered, %d with an error reply",
	         answered, errors);
	check(answered == 1000 && errors == 1000, what);

	int over = 0;
	for (int i = 0; i < 10; i++) {
		size_t len = (70u << 10) + (size_t)i * (90u << 10); /* 70 KiB .. 880 KiB */
		memset(buf, 0xa5, len);
		over += call(s, buf, len, &up) == 0 && is_error_reply(&up, "over the");
	}
	snprintf(what, sizeof(what), "10 oversized frames: %d rejected as oversized", over);
	check(over == 10, what);

	int unauth = 0;
	for (int i = 0; i < 50; i++) {
		char wrong[64];
		snprintf(wrong, sizeof(wrong), "%s%d", i % 2 ? secret : "guess", i);
		request(&sb, i % 3 ? "actors" : "kill", i % 3 ? NULL : "pipe/big[0]",
		        i % 5 == 0 ? NULL : wrong);
		unauth += call(s, sb.data, sb.size, &up) == 0 && is_error_reply(&up, "unauthorized");
	}
	snprintf(what, sizeof(what), "50 wrong or missing secrets: %d unauthorized", unauth);
	check(unauth == 50, what);

	if (argc == 5) {
		int sent = 0;
		for (int i = 0; i < 50; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			struct sockaddr_in sa = { .sin_family = AF_INET,
				                  .sin_port = htons((uint16_t)atoi(argv[4])) };
			inet_pton(AF_INET, argv[3], &sa.sin_addr);
			if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
				size_t len = 1 + next() % 4096;
				for (size_t k = 0; k < len; k++)
					buf[k] = (uint8_t)next();
				if (i % 2 == 0) /* an SP header that lies about the protocol */
					memcpy(buf, "\0SP\0\0\x31\0\0", len < 8 ? len : 8);
				sent += write(fd, buf, len) > 0;
			}
			if (fd >= 0)
				close(fd);
		}
		snprintf(what, sizeof(what), "50 raw TCP connections with garbage (%d written)", sent);
		check(sent > 0, what);
	}

	bool alive = stats(s, secret, &up, &sb);
	check(alive, "stats with the right secret answers after the attack");
	uint64_t req1 = u64_at(&up.data, "result", "control", "requests");
	uint64_t rej1 = u64_at(&up.data, "result", "control", "rejected");
	by = get(get(get(&up.data, "result"), "control"), "rejected_by");
	o = get(by, "oversized");
	u = get(by, "unauthorized");
	snprintf(what, sizeof(what), "rejected grew by %lld (want 1060), requests by %lld (want 1061)",
	         (long long)(rej1 - rej0), (long long)(req1 - req0));
	check(alive && rej1 - rej0 == 1060 && req1 - req0 == 1061, what);
	snprintf(what, sizeof(what), "oversized +%lld (want 10), unauthorized +%lld (want >= 50)",
	         o ? (long long)(o->via.u64 - over0) : -1,
	         u ? (long long)(u->via.u64 - unauth0) : -1);
	check(o && u && o->via.u64 - over0 == 10 && u->via.u64 - unauth0 >= 50, what);

	/* more connections than the endpoint keeps: the extra ones are closed, counted, and
	 * the connection already open still gets answers */
	enum { EXTRA = 80 };
	nng_socket more[EXTRA];
	for (int i = 0; i < EXTRA; i++)
		if (nng_req0_open(&more[i]) == 0)
			nng_dial(more[i], addr, NULL, NNG_FLAG_NONBLOCK);
	uint64_t refused = 0;
	for (int tries = 0; tries < 100 && refused == 0; tries++) {
		usleep(20000);
		if (stats(s, secret, &up, &sb)) {
			const msgpack_object *co =
			    get(get(get(get(&up.data, "result"), "control"), "rejected_by"), "connections");
			refused = co && co->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? co->via.u64 : 0;
		}
	}
	for (int i = 0; i < EXTRA; i++)
		nng_close(more[i]);
	snprintf(what, sizeof(what), "%d more connections: %llu refused and counted; the open one "
	         "still answers", EXTRA, (unsigned long long)refused);
	check(refused > 0 && stats(s, secret, &up, &sb), what);

	free(buf);
	msgpack_sbuffer_destroy(&valid);
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&up);
	nng_close(s);
	return failures ? 1 : 0;
}
