/* `eddy shell`: the debug shell. A client of the control endpoint of `eddy run --control
 * URL` (protocol: actors/control.h) over an nng request socket: it sends one msgpack
 * request per command and prints the reply as aligned tables and "key: value" lines, or
 * as JSON (--json). Interactive with libedit (history, completion of command names and
 * actor paths), or line by line from a script on stdin, or one command with -c.
 *
 * Memory: a client tool, so an allocation failure prints "out of memory" and exits 1
 * (die_oom) instead of being passed up through every formatter. */
#include "shell.h"

#include "../actors/control.h"
#include "../config/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <editline/readline.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#define SH_DEFAULT_ADDRESS "tcp://127.0.0.1:7600"
#define SH_DEFAULT_TIMEOUT_MS 5000
#define SH_MAX_TIMEOUT_MS 3600000   /* an hour */
#define SH_COMPLETE_TIMEOUT_MS 1000 /* Tab does not wait longer for actor paths */
#define SH_COMPLETE_MAX_LINE 512    /* characters before the cursor; longer: no completion */
#define SH_MAX_REPLY (256u << 20)   /* bytes; nng drops a larger message */
#define SH_MAX_WORDS 64
#define SH_MAX_LINE 65536 /* bytes of one script line; a request is at most CTL_MAX_REQUEST */
#define SH_HISTORY_FILE ".eddy_history"
#define SH_HISTORY_MAX 1000
#define SH_JSON_DEPTH 64 /* msgpack-c stops at 32 levels; a guard all the same */

/* Exit codes of cmd_shell, also the result of one command. */
enum {
	SH_OK = 0,
	SH_EFAIL = 1,    /* an error reply, or a malformed one */
	SH_EUSAGE = 2,   /* bad usage: options, unknown command, wrong arguments */
	SH_EUNREACH = 3, /* cannot connect, no reply in time */
	SH_QUIT = -1     /* quit/exit: leave the shell (not an exit code) */
};

typedef struct shell {
	const char *address;
	char *secret; /* NULL: none; malloc'd */
	int timeout_ms;
	bool json;            /* --json */
	bool interactive;     /* readline on a terminal: errors as "error: ..." */
	bool open, connected; /* the socket exists; a dial succeeded */
	int applied_ms;       /* the send and receive time limits set on the socket */
	nng_socket sock;
} shell;

/* One reply: the frame (nng's allocation) and the objects unpacked from it, which point
 * into the frame. result is valid when sh_call returned SH_OK. */
typedef struct sh_reply {
	char *frame;
	size_t frame_len;
	msgpack_unpacked unpacked;
	const msgpack_object *result;
} sh_reply;

/* ---- small helpers ---- */

static void die_oom(void)
{
	fputs("eddy shell: out of memory\n", stderr);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die_oom();
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die_oom();
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		die_oom();
	return s;
}

/* A growing string written through a FILE (open_memstream). */
typedef struct membuf {
	char *buf;
	size_t len;
	FILE *f;
} membuf;

static FILE *mb_open(membuf *m)
{
	m->buf = NULL;
	m->len = 0;
	m->f = open_memstream(&m->buf, &m->len);
	if (!m->f)
		die_oom();
	return m->f;
}

/* mb_close returns the string (malloc'd; the caller frees it). */
static char *mb_close(membuf *m)
{
	if (fclose(m->f) != 0 || !m->buf)
		die_oom();
	return m->buf;
}

static void sh_error(const shell *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sh_error(const shell *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(s->interactive ? "error: " : "eddy shell: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(stderr);
}

/* ---- msgpack objects: checked access (a reply may have any shape) ---- */

static bool obj_is_str(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       memcmp(o->via.str.ptr, s, n) == 0;
}

/* obj_get returns the value under the string key `key` of map m, or NULL (also when m is
 * not a map). */
static const msgpack_object *obj_get(const msgpack_object *m, const char *key)
{
	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++)
		if (obj_is_str(&m->via.map.ptr[i].key, key))
			return &m->via.map.ptr[i].val;
	return NULL;
}

static bool obj_int(const msgpack_object *o, int64_t *v)
{
	if (!o)
		return false;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
		*v = (int64_t)o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	return false;
}

static bool obj_num(const msgpack_object *o, double *v)
{
	if (!o)
		return false;
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER: *v = (double)o->via.u64; return true;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: *v = (double)o->via.i64; return true;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: *v = o->via.f64; return isfinite(o->via.f64);
	default: return false;
	}
}

/* obj_strdup copies a string value (NUL-terminated, malloc'd), or returns NULL if o is not
 * a string. */
static char *obj_strdup(const msgpack_object *o)
{
	if (!o || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	return xstrndup(o->via.str.ptr, o->via.str.size);
}

/* ---- JSON ---- */

/* utf8_len returns the length (1-4) of the valid UTF-8 sequence at p (n bytes left), or
 * 0 if the bytes there are not valid UTF-8 (overlong forms and surrogates included). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80)
		return 1;
	size_t len;
	uint32_t cp;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* json_string writes n bytes as a JSON string: '"' and '\' escaped, control characters
 * (and DEL) as \u00XX, invalid UTF-8 bytes as \ufffd. */
static void json_string(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
			i++;
		} else {
			size_t len = utf8_len(p + i, n - i);
			if (len == 0) {
				fputs("\\ufffd", f);
				i++;
			} else {
				fwrite(p + i, 1, len, f);
				i += len;
			}
		}
	}
	fputc('"', f);
}

/* json_double writes a finite double with the fewest digits (up to 17) that read back
 * exactly; inf and nan as null. */
static void json_double(FILE *f, double v)
{
	if (!isfinite(v)) {
		fputs("null", f);
		return;
	}
	char buf[40];
	for (int digits = 15; digits <= 17; digits++) {
		snprintf(buf, sizeof buf, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, f);
}

static void json_value(FILE *f, const msgpack_object *o, int depth);

/* json_key writes a map key: a string as it is, anything else as the string of its JSON
 * text (JSON keys are strings). */
static void json_key(FILE *f, const msgpack_object *k, int depth)
{
	if (k->type == MSGPACK_OBJECT_STR) {
		json_string(f, k->via.str.ptr, k->via.str.size);
		return;
	}
	membuf m;
	json_value(mb_open(&m), k, depth + 1);
	char *text = mb_close(&m);
	json_string(f, text, strlen(text));
	free(text);
}

static void json_value(FILE *f, const msgpack_object *o, int depth)
{
	if (depth > SH_JSON_DEPTH) {
		fputs("null", f);
		return;
	}
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: fputs("null", f); break;
	case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", f); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(f, "%" PRIu64, o->via.u64); break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(f, "%" PRId64, o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: json_double(f, o->via.f64); break;
	case MSGPACK_OBJECT_STR: json_string(f, o->via.str.ptr, o->via.str.size); break;
	case MSGPACK_OBJECT_BIN: json_string(f, o->via.bin.ptr, o->via.bin.size); break;
	case MSGPACK_OBJECT_ARRAY:
		fputc('[', f);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				fputc(',', f);
			json_value(f, &o->via.array.ptr[i], depth + 1);
		}
		fputc(']', f);
		break;
	case MSGPACK_OBJECT_MAP:
		fputc('{', f);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			if (i)
				fputc(',', f);
			json_key(f, &o->via.map.ptr[i].key, depth);
			fputc(':', f);
			json_value(f, &o->via.map.ptr[i].val, depth + 1);
		}
		fputc('}', f);
		break;
	default: fputs("null", f); break; /* ext */
	}
}

/* ---- human-readable values ---- */

/* put_text writes n bytes for a terminal: control characters escaped (\n, \t, \xNN) so
 * that a value cannot move the cursor or break a table's alignment. */
static void put_text(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

/* put_time writes ms since the epoch as ISO-8601 UTC with milliseconds
 * ("2024-01-01T00:00:00.000Z"); the extremes as +inf/-inf (a watermark at the end of
 * input), what gmtime cannot convert as a plain number. */
static void put_time(FILE *f, int64_t ms)
{
	if (ms == INT64_MAX) {
		fputs("+inf", f);
		return;
	}
	if (ms == INT64_MIN) {
		fputs("-inf", f);
		return;
	}
	int64_t sec = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		sec -= 1;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	char buf[64];
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0 ||
	    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		fprintf(f, "%" PRId64 " ms", ms);
		return;
	}
	fprintf(f, "%s.%03dZ", buf, (int)frac);
}

/* put_duration writes a span of ms readably: "850 ms", "3.2 s", "4m 05s", "2h 03m",
 * "3d 04h". */
static void put_duration(FILE *f, int64_t ms)
{
	if (ms < 0) {
		fputc('-', f);
		ms = ms == INT64_MIN ? INT64_MAX : -ms;
	}
	if (ms < 1000)
		fprintf(f, "%" PRId64 " ms", ms);
	else if (ms < 60000)
		fprintf(f, "%.1f s", (double)ms / 1000.0);
	else if (ms < 3600000)
		fprintf(f, "%" PRId64 "m %02" PRId64 "s", ms / 60000, ms / 1000 % 60);
	else if (ms < 86400000)
		fprintf(f, "%" PRId64 "h %02" PRId64 "m", ms / 3600000, ms / 60000 % 60);
	else
		fprintf(f, "%" PRId64 "d %02" PRId64 "h", ms / 86400000, ms / 3600000 % 24);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A key's value is a point in time (ms since the epoch) ... */
static bool key_is_time(const char *key)
{
	return strcmp(key, "watermark") == 0 || strcmp(key, "time_ms") == 0 ||
	       ends_with(key, "_time_ms") || ends_with(key, "error_ms") ||
	       ends_with(key, "started_ms");
}

/* ... or a span of time (ms); other "_ms" keys. */
static bool key_is_duration(const char *key)
{
	return ends_with(key, "_ms") && !key_is_time(key);
}

/* put_value writes the value of key (NULL: no key) for a human: nil, a missing value and
 * an empty string as "-", times as ISO-8601, spans readably, rates and percentages with one
 * decimal, lists of strings comma-separated, anything else as JSON. */
static void put_value(FILE *f, const char *key, const msgpack_object *o)
{
	int64_t i;
	double d;
	if (!o || o->type == MSGPACK_OBJECT_NIL) {
		fputc('-', f);
		return;
	}
	if (key && obj_int(o, &i) && key_is_time(key)) {
		put_time(f, i);
		return;
	}
	if (key && key_is_duration(key) &&
	    (obj_int(o, &i) || (obj_num(o, &d) && fabs(d) < 9e18 && (i = (int64_t)d, true)))) {
		put_duration(f, i);
		return;
	}
	switch (o->type) {
	case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "yes" : "no", f); return;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(f, "%" PRIu64, o->via.u64); return;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(f, "%" PRId64, o->via.i64); return;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (!isfinite(o->via.f64))
			fputs(isnan(o->via.f64) ? "nan" : o->via.f64 > 0 ? "+inf" : "-inf", f);
		else if (key && (ends_with(key, "_per_s") || ends_with(key, "_pct")))
			fprintf(f, "%.1f", o->via.f64);
		else
			fprintf(f, "%.6g", o->via.f64);
		return;
	case MSGPACK_OBJECT_STR:
		if (o->via.str.size == 0)
			fputc('-', f);
		put_text(f, o->via.str.ptr, o->via.str.size);
		return;
	case MSGPACK_OBJECT_ARRAY: {
		bool strings = true;
		for (uint32_t k = 0; k < o->via.array.size; k++)
			strings = strings && o->via.array.ptr[k].type == MSGPACK_OBJECT_STR;
		if (strings) {
			if (o->via.array.size == 0)
				fputc('-', f);
			for (uint32_t k = 0; k < o->via.array.size; k++) {
				if (k)
					fputs(", ", f);
				put_text(f, o->via.array.ptr[k].via.str.ptr,
				         o->via.array.ptr[k].via.str.size);
			}
			return;
		}
		break;
	}
	default: break;
	}
	membuf m;
	json_value(mb_open(&m), o, 0);
	char *text = mb_close(&m);
	put_text(f, text, strlen(text));
	free(text);
}

/* cell returns put_value's text as a new string (malloc'd). */
static char *cell(const char *key, const msgpack_object *o)
{
	membuf m;
	put_value(mb_open(&m), key, o);
	return mb_close(&m);
}

/* cell_of: the value under key in map m. */
static char *cell_of(const msgpack_object *m, const char *key)
{
	return cell(key, obj_get(m, key));
}

/* ---- tables ---- */

/* A table of ncols columns; cells are added row by row and owned by the table. align
 * holds one letter per column: 'l' left, 'r' right. */
typedef struct table {
	size_t ncols;
	const char *const *head;
	const char *align;
	char **cells;
	size_t n, cap;
} table;

static void tbl_add(table *t, char *c)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->cells = xrealloc(t->cells, t->cap * sizeof *t->cells);
	}
	t->cells[t->n++] = c;
}

/* text_width: the columns a string takes (UTF-8 continuation bytes take none). */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void tbl_row(const table *t, const char *const *row, const size_t *width, FILE *f)
{
	for (size_t c = 0; c < t->ncols; c++) {
		size_t pad = width[c] - text_width(row[c]);
		bool last = c + 1 == t->ncols;
		if (t->align[c] == 'r')
			fprintf(f, "%*s", (int)pad, "");
		fputs(row[c], f);
		if (!last && t->align[c] != 'r')
			fprintf(f, "%*s", (int)pad, "");
		fputs(last ? "\n" : "  ", f);
	}
}

static void tbl_print(const table *t, FILE *f)
{
	size_t *width = xmalloc(t->ncols * sizeof *width);
	for (size_t c = 0; c < t->ncols; c++)
		width[c] = text_width(t->head[c]);
	for (size_t i = 0; i < t->n; i++) {
		size_t w = text_width(t->cells[i]);
		if (w > width[i % t->ncols])
			width[i % t->ncols] = w;
	}
	tbl_row(t, t->head, width, f);
	for (size_t i = 0; i + t->ncols <= t->n; i += t->ncols)
		tbl_row(t, (const char *const *)t->cells + i, width, f);
	free(width);
}

static void tbl_free(table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->n = t->cap = 0;
}

/* ---- the connection ---- */

static void sh_close(shell *s)
{
	if (s->open)
		nng_close(s->sock);
	s->open = s->connected = false;
}

/* sh_connect opens the request socket and dials the address (once; nng redials by itself
 * after the server goes away). SH_EUSAGE for an address nng does not take (unknown
 * scheme), SH_EUNREACH when nothing listens there or the host does not resolve; why (why_size
 * bytes) then says so, naming the address. */
static int sh_connect(shell *s, char *why, size_t why_size)
{
	if (s->connected)
		return SH_OK;
	int rv;
	if (!s->open) {
		if ((rv = nng_req0_open(&s->sock)) != 0) {
			snprintf(why, why_size, "cannot open a request socket: %s",
			         nng_strerror(rv));
			return SH_EUNREACH;
		}
		s->open = true;
		/* Never resend a request by itself (kill is not idempotent): a closed connection
		 * is an error at once (the time limits are sh_call's). */
		s->applied_ms = 0;
		if ((rv = nng_socket_set_ms(s->sock, NNG_OPT_REQ_RESENDTIME,
		                            NNG_DURATION_INFINITE)) != 0 ||
		    (rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, SH_MAX_REPLY)) != 0) {
			snprintf(why, why_size, "cannot set up the request socket: %s",
			         nng_strerror(rv));
			sh_close(s);
			return SH_EUNREACH;
		}
	}
	rv = nng_dial(s->sock, s->address, NULL, 0);
	if (rv == NNG_ENOTSUP || rv == NNG_EINVAL) { /* an unknown scheme, a bad URL */
		snprintf(why, why_size,
		         "bad address '%s': %s (e.g. tcp://127.0.0.1:7600 or ipc:///path)",
		         s->address, nng_strerror(rv));
		return SH_EUSAGE;
	}
	if (rv != 0) {
		snprintf(why, why_size,
		         "cannot reach %s: %s (is `eddy run JOB.yaml --control %s` running?)",
		         s->address, nng_strerror(rv), s->address);
		return SH_EUNREACH;
	}
	s->connected = true;
	return SH_OK;
}

static void reply_free(sh_reply *r)
{
	if (r->frame) {
		msgpack_unpacked_destroy(&r->unpacked);
		nng_free(r->frame, r->frame_len);
	}
	r->frame = NULL;
	r->result = NULL;
}

/* sh_call sends the request {"v", "cmd", "args", "secret"} and waits timeout_ms for its
 * reply (and as long for a connection to send it on). SH_OK: r->result is the reply's result (valid
 * until reply_free(r)). Otherwise why (why_size bytes) tells the error, nothing is printed:
 * SH_EFAIL for an error reply or a malformed one, SH_EUNREACH / SH_EUSAGE when the server cannot be
 * reached or gives no reply in time. r must be freed with reply_free in every case. */
static int sh_call(shell *s, int timeout_ms, const char *cmd, const char *const *args, size_t nargs,
                   sh_reply *r, char *why, size_t why_size)
{
	memset(r, 0, sizeof *r);
	why[0] = '\0';
	int rc = sh_connect(s, why, why_size);
	if (rc != SH_OK)
		return rc;
	int rv;
	if (s->applied_ms != timeout_ms) {
		if ((rv = nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, timeout_ms)) != 0 ||
		    (rv = nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, timeout_ms)) != 0) {
			snprintf(why, why_size, "cannot set a time limit: %s", nng_strerror(rv));
			return SH_EUNREACH;
		}
		s->applied_ms = timeout_ms;
	}

	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int bad = 0; /* the packer fails only when the buffer cannot grow */
	bad |= msgpack_pack_map(&pk, 2 + (nargs > 0) + (s->secret != NULL));
	bad |= msgpack_pack_str_with_body(&pk, "v", 1);
	bad |= msgpack_pack_int(&pk, CTL_PROTOCOL);
	bad |= msgpack_pack_str_with_body(&pk, "cmd", 3);
	bad |= msgpack_pack_str_with_body(&pk, cmd, strlen(cmd));
	if (nargs > 0) {
		bad |= msgpack_pack_str_with_body(&pk, "args", 4);
		bad |= msgpack_pack_array(&pk, nargs);
		for (size_t i = 0; i < nargs; i++)
			bad |= msgpack_pack_str_with_body(&pk, args[i], strlen(args[i]));
	}
	if (s->secret) {
		bad |= msgpack_pack_str_with_body(&pk, "secret", 6);
		bad |= msgpack_pack_str_with_body(&pk, s->secret, strlen(s->secret));
	}
	if (bad || !sb.data)
		die_oom();
	rv = nng_send(s->sock, sb.data, sb.size, 0);
	msgpack_sbuffer_destroy(&sb);
	if (rv == 0)
		rv = nng_recv(s->sock, &r->frame, &r->frame_len, NNG_FLAG_ALLOC);
	if (rv != 0) {
		r->frame = NULL;
		if (rv == NNG_ETIMEDOUT)
			snprintf(why, why_size, "no reply from %s within %d ms", s->address,
			         timeout_ms);
		else
			snprintf(why, why_size, "no reply from %s: %s", s->address,
			         nng_strerror(rv));
		return SH_EUNREACH;
	}

	msgpack_unpacked_init(&r->unpacked);
	size_t off = 0;
	msgpack_unpack_return ur = msgpack_unpack_next(&r->unpacked, r->frame, r->frame_len, &off);
	if (ur != MSGPACK_UNPACK_SUCCESS || off != r->frame_len) {
		snprintf(why, why_size,
		         "malformed reply from %s: not one msgpack value (%zu bytes)", s->address,
		         r->frame_len);
		return SH_EFAIL;
	}
	const msgpack_object *top = &r->unpacked.data;
	const msgpack_object *ok = obj_get(top, "ok");
	if (top->type != MSGPACK_OBJECT_MAP || !ok || ok->type != MSGPACK_OBJECT_BOOLEAN) {
		snprintf(why, why_size, "malformed reply from %s: not a map with a boolean \"ok\"",
		         s->address);
		return SH_EFAIL;
	}
	if (!ok->via.boolean) {
		const msgpack_object *e = obj_get(top, "error");
		if (!e || e->type != MSGPACK_OBJECT_STR) {
			snprintf(why, why_size,
			         "malformed reply from %s: an error without a message", s->address);
			return SH_EFAIL;
		}
		membuf m;
		put_text(mb_open(&m), e->via.str.ptr, e->via.str.size);
		char *text = mb_close(&m);
		snprintf(why, why_size, "%s", text);
		free(text);
		return SH_EFAIL;
	}
	r->result = obj_get(top, "result");
	if (!r->result) {
		snprintf(why, why_size, "malformed reply from %s: \"ok\" without a \"result\"",
		         s->address);
		return SH_EFAIL;
	}
	return SH_OK;
}

/* ---- the commands ---- */

typedef int (*render_fn)(shell *s, const msgpack_object *result);

typedef struct sh_command {
	const char *name;
	const char *args;       /* usage of the arguments */
	int min_args, max_args; /* max -1: any number */
	render_fn render;       /* NULL: a local command */
	const char *summary;
	const char *detail;
} sh_command;

/* malformed prints that the result of cmd does not have the expected shape. */
static int malformed(shell *s, const char *cmd, const char *what)
{
	sh_error(s, "malformed reply from %s: the result of '%s' %s", s->address, cmd, what);
	return SH_EFAIL;
}

/* list_of_maps checks that o is a list whose every item is a map. */
static bool list_of_maps(const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return false;
	for (uint32_t i = 0; i < o->via.array.size; i++)
		if (o->via.array.ptr[i].type != MSGPACK_OBJECT_MAP)
			return false;
	return true;
}

static int render_jobs(shell *s, const msgpack_object *r)
{
	if (!list_of_maps(r))
		return malformed(s, "jobs", "is not a list of maps");
	if (r->via.array.size == 0) {
		puts("no jobs");
		return SH_OK;
	}
	static const char *const head[] = {"JOB",         "STATUS", "UPTIME", "RECORDS-IN",
	                                   "RECORDS-OUT", "IN/s",   "OUT/s"};
	table t = {7, head, "llrrrrr", NULL, 0, 0};
	for (uint32_t i = 0; i < r->via.array.size; i++) {
		const msgpack_object *j = &r->via.array.ptr[i];
		tbl_add(&t, cell_of(j, "name"));
		tbl_add(&t, cell_of(j, "status"));
		tbl_add(&t, cell_of(j, "uptime_ms"));
		tbl_add(&t, cell_of(j, "records_in"));
		tbl_add(&t, cell_of(j, "records_out"));
		tbl_add(&t, cell_of(j, "in_per_s"));
		tbl_add(&t, cell_of(j, "out_per_s"));
	}
	tbl_print(&t, stdout);
	tbl_free(&t);
	return SH_OK;
}

static int render_actors(shell *s, const msgpack_object *r)
{
	if (!list_of_maps(r))
		return malformed(s, "actors", "is not a list of maps");
	if (r->via.array.size == 0) {
		puts("no actors");
		return SH_OK;
	}
	static const char *const head[] = {"PATH",  "OP",    "STATUS",   "MAILBOX",   "IN/s",
	                                   "OUT/s", "BUSY%", "RESTARTS", "LAST-ERROR"};
	table t = {9, head, "lllrrrrrl", NULL, 0, 0};
	for (uint32_t i = 0; i < r->via.array.size; i++) {
		const msgpack_object *a = &r->via.array.ptr[i];
		tbl_add(&t, cell_of(a, "path"));
		tbl_add(&t, cell_of(a, "op"));
		tbl_add(&t, cell_of(a, "status"));
		char *len = cell_of(a, "mailbox_len"), *cap = cell_of(a, "mailbox_cap");
		tbl_add(&t, xasprintf("%s/%s", len, cap));
		free(len);
		free(cap);
		tbl_add(&t, cell_of(a, "in_per_s"));
		tbl_add(&t, cell_of(a, "out_per_s"));
		tbl_add(&t, cell_of(a, "busy_pct"));
		tbl_add(&t, cell_of(a, "restarts"));
		tbl_add(&t, cell_of(a, "last_error"));
	}
	tbl_print(&t, stdout);
	tbl_free(&t);
	return SH_OK;
}

static int render_tree(shell *s, const msgpack_object *r)
{
	if (!list_of_maps(r))
		return malformed(s, "tree", "is not a list of maps");
	if (r->via.array.size == 0) {
		puts("no actors");
		return SH_OK;
	}
	static const char *const head[] = {"ACTOR", "TYPE", "STATUS", "SUPERVISION"};
	table t = {4, head, "llll", NULL, 0, 0};
	for (uint32_t i = 0; i < r->via.array.size; i++) {
		const msgpack_object *a = &r->via.array.ptr[i];
		int64_t depth = 0;
		if (!obj_int(obj_get(a, "depth"), &depth) || depth < 0)
			depth = 0;
		if (depth > 32)
			depth = 32;
		char *path = cell_of(a, "path");
		tbl_add(&t, xasprintf("%*s%s", (int)depth * 2, "", path));
		free(path);
		tbl_add(&t, cell_of(a, "type"));
		tbl_add(&t, cell_of(a, "status"));

		membuf m;
		FILE *f = mb_open(&m);
		const msgpack_object *strategy = obj_get(a, "strategy");
		const msgpack_object *restart = obj_get(a, "restart");
		bool any = false;
		if (strategy && strategy->type != MSGPACK_OBJECT_NIL) {
			put_value(f, "strategy", strategy);
			fputs(", intensity ", f);
			put_value(f, "intensity", obj_get(a, "intensity"));
			fputs(" in ", f);
			put_value(f, "period_ms", obj_get(a, "period_ms"));
			any = true;
		}
		if (restart && restart->type != MSGPACK_OBJECT_NIL) {
			fputs(any ? "; restart: " : "restart: ", f);
			put_value(f, "restart", restart);
			any = true;
		}
		if (!any)
			fputc('-', f);
		tbl_add(&t, mb_close(&m));
	}
	tbl_print(&t, stdout);
	tbl_free(&t);
	return SH_OK;
}

/* render_map prints a map as "key: value" lines, keys aligned; a nested map (or list of
 * maps) is printed indented below its key. */
static void render_map(const msgpack_object *m, int indent)
{
	size_t w = 0;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		size_t n = k->type == MSGPACK_OBJECT_STR ? k->via.str.size : 8;
		if (n > w)
			w = n;
	}
	if (w > 40)
		w = 40;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
		char *key = k->type == MSGPACK_OBJECT_STR ? obj_strdup(k) : cell(NULL, k);
		membuf kb;
		put_text(mb_open(&kb), key, strlen(key));
		char *shown = mb_close(&kb);
		printf("%*s%s:", indent, "", shown);
		if (v->type == MSGPACK_OBJECT_MAP && v->via.map.size > 0) {
			putchar('\n');
			render_map(v, indent + 2);
		} else {
			char *val = cell(key, v);
			printf("%*s %s\n", (int)(w > strlen(shown) ? w - strlen(shown) : 0), "",
			       val);
			free(val);
		}
		free(shown);
		free(key);
	}
}

static int render_info(shell *s, const msgpack_object *r)
{
	if (r->type != MSGPACK_OBJECT_MAP)
		return malformed(s, "info", "is not a map");
	render_map(r, 0);
	return SH_OK;
}

static int render_stats(shell *s, const msgpack_object *r)
{
	if (r->type != MSGPACK_OBJECT_MAP)
		return malformed(s, "stats", "is not a map");
	const msgpack_object *jobs = obj_get(r, "jobs"), *control = obj_get(r, "control");
	if (jobs && !list_of_maps(jobs))
		return malformed(s, "stats", "has \"jobs\" that are not a list of maps");
	if (!jobs || jobs->via.array.size == 0) {
		puts("no jobs");
	} else {
		static const char *const head[] = {"JOB",         "STATUS", "RECORDS-IN",
		                                   "RECORDS-OUT", "IN/s",   "OUT/s",
		                                   "WATERMARK",   "LAG",    "BACKPRESSURED"};
		table t = {9, head, "llrrrrlrl", NULL, 0, 0};
		for (uint32_t i = 0; i < jobs->via.array.size; i++) {
			const msgpack_object *j = &jobs->via.array.ptr[i];
			tbl_add(&t, cell_of(j, "name"));
			tbl_add(&t, cell_of(j, "status"));
			tbl_add(&t, cell_of(j, "records_in"));
			tbl_add(&t, cell_of(j, "records_out"));
			tbl_add(&t, cell_of(j, "in_per_s"));
			tbl_add(&t, cell_of(j, "out_per_s"));
			tbl_add(&t, cell_of(j, "watermark"));
			tbl_add(&t, cell_of(j, "watermark_lag_ms"));
			tbl_add(&t, cell_of(j, "backpressured"));
		}
		tbl_print(&t, stdout);
		tbl_free(&t);
	}
	if (control && control->type == MSGPACK_OBJECT_MAP) {
		char *req = cell_of(control, "requests"), *rej = cell_of(control, "rejected");
		printf("control: %s requests, %s rejected", req, rej);
		free(req);
		free(rej);
		const msgpack_object *by = obj_get(control, "rejected_by");
		if (by && by->type == MSGPACK_OBJECT_MAP && by->via.map.size > 0) {
			fputs(" (", stdout);
			for (uint32_t i = 0; i < by->via.map.size; i++) {
				char *k = cell(NULL, &by->via.map.ptr[i].key);
				char *v = cell(NULL, &by->via.map.ptr[i].val);
				printf("%s%s %s", i ? ", " : "", k, v);
				free(k);
				free(v);
			}
			fputc(')', stdout);
		}
		fputc('\n', stdout);
	}
	return SH_OK;
}

static int render_kill(shell *s, const msgpack_object *r)
{
	if (r->type != MSGPACK_OBJECT_MAP)
		return malformed(s, "kill", "is not a map");
	char *path = cell_of(r, "killed"), *reason = cell_of(r, "reason");
	printf("killed %s: %s\n", path, reason);
	free(path);
	free(reason);
	return SH_OK;
}

static int render_log(shell *s, const msgpack_object *r)
{
	if (!list_of_maps(r))
		return malformed(s, "log", "is not a list of maps");
	if (r->via.array.size == 0) {
		puts("no events");
		return SH_OK;
	}
	static const char *const head[] = {"TIME", "PATH", "WHAT", "DETAIL"};
	table t = {4, head, "llll", NULL, 0, 0};
	for (uint32_t i = 0; i < r->via.array.size; i++) {
		const msgpack_object *e = &r->via.array.ptr[i];
		tbl_add(&t, cell_of(e, "time_ms"));
		tbl_add(&t, cell_of(e, "path"));
		tbl_add(&t, cell_of(e, "what"));
		tbl_add(&t, cell_of(e, "detail"));
	}
	tbl_print(&t, stdout);
	tbl_free(&t);
	return SH_OK;
}

static int render_cancel(shell *s, const msgpack_object *r)
{
	if (r->type != MSGPACK_OBJECT_MAP)
		return malformed(s, "cancel", "is not a map");
	char *job = cell_of(r, "cancelled");
	printf("cancelled %s: its sources stop, data in flight drains, sinks flush\n", job);
	free(job);
	return SH_OK;
}

static int render_checkpoints(shell *s, const msgpack_object *r)
{
	if (!list_of_maps(r))
		return malformed(s, "checkpoints", "is not a list of maps");
	if (r->via.array.size == 0) {
		puts("no checkpoints yet");
		return SH_OK;
	}
	static const char *const head[] = {"ID",    "STATUS",    "STARTED", "DURATION",
	                                   "BYTES", "ALIGNMENT", "ACKS",    "WHY"};
	table t = {8, head, "rllrrrrl", NULL, 0, 0};
	for (uint32_t i = 0; i < r->via.array.size; i++) {
		const msgpack_object *c = &r->via.array.ptr[i];
		tbl_add(&t, cell_of(c, "id"));
		tbl_add(&t, cell_of(c, "status"));
		tbl_add(&t, cell_of(c, "started_ms"));
		tbl_add(&t, cell_of(c, "duration_ms"));
		tbl_add(&t, cell_of(c, "bytes"));
		tbl_add(&t, cell_of(c, "alignment_ms"));
		char *acks = cell_of(c, "acks"), *tasks = cell_of(c, "tasks");
		tbl_add(&t, xasprintf("%s/%s", acks, tasks));
		free(acks);
		free(tasks);
		tbl_add(&t, cell_of(c, "why"));
	}
	tbl_print(&t, stdout);
	tbl_free(&t);
	return SH_OK;
}

static int render_checkpoint(shell *s, const msgpack_object *r)
{
	if (r->type != MSGPACK_OBJECT_MAP)
		return malformed(s, "checkpoint", "is not a map");
	const msgpack_object *d = obj_get(r, "dir");
	if (d && d->type == MSGPACK_OBJECT_STR)
		printf("savepoint into %.*s triggered (see `checkpoints`)\n", (int)d->via.str.size,
		       d->via.str.ptr);
	else
		puts("checkpoint triggered (see `checkpoints`)");
	return SH_OK;
}

static const sh_command commands[] = {
    {"help", "[COMMAND]", 0, 1, NULL, "the commands, or the details of one",
     "Lists the commands, or describes COMMAND."},
    {"jobs", "", 0, 0, render_jobs, "the jobs: status, uptime, records and rates",
     "One line per job: its status (running, cancelling, finished, failed), uptime,\n"
     "records in and out, and rates per second over the last second."},
    {"actors", "[GLOB]", 0, 1, render_actors,
     "actors whose path matches GLOB (default all): mailbox, rates, errors",
     "One line per actor in spawn order, whose path matches GLOB (fnmatch, e.g.\n"
     "'hourly/*'): operator, status, mailbox length/capacity, records in and out per\n"
     "second, busy percentage, restarts and the last error."},
    {"tree", "", 0, 0, render_tree, "the supervision tree",
     "The actors depth-first from the roots, indented by depth: supervisors with their\n"
     "strategy, restart intensity and period, children with their restart type."},
    {"info", "PATH", 1, 1, render_info, "everything known about one actor",
     "All the counters of the actor at PATH (e.g. 'hourly/window[0]'), one per line:\n"
     "mailbox, control lane and outbox lengths, records and messages in and out, busy\n"
     "time, restarts, parks, dead letters, watermark, state size, last error."},
    {"stats", "", 0, 0, render_stats, "throughput, watermark lag and backpressure per job",
     "Per job: records in and out and their rates, the output watermark and its lag\n"
     "behind the wall clock, the actors parked on a full mailbox; then the requests\n"
     "the control endpoint handled and rejected."},
    {"watch", "COMMAND", 1, -1, NULL, "run COMMAND every second until a key is pressed",
     "Clears the screen, runs COMMAND (e.g. 'watch stats'), waits a second and again,\n"
     "until a key is pressed (or, when stdin is not a terminal, input is there or it\n"
     "ends)."},
    {"kill", "PATH [REASON...]", 1, -1, render_kill, "inject a failure into an actor",
     "Fails the actor at PATH as if its callback had failed, with REASON (the rest of\n"
     "the line) as the error: its supervisor restarts it or escalates."},
    {"log", "[N]", 0, 1, render_log, "the last N runtime events (default 20)",
     "The last N (1 to 1024, default 20) runtime events, oldest first: failures,\n"
     "restarts, escalations."},
    {"cancel", "JOB", 1, 1, render_cancel, "stop a job (as SIGINT)",
     "Stops the sources of JOB; data in flight drains and sinks flush, as on SIGINT."},
    {"checkpoints", "", 0, 0, render_checkpoints, "the job's last checkpoints",
     "The last 32 checkpoints, newest first: id, status (in_progress, completed,\n"
     "aborted), start, duration, snapshot bytes, the longest barrier alignment,\n"
     "tasks that acknowledged, and why one was aborted."},
    {"checkpoint", "", 0, 0, render_checkpoint, "trigger a checkpoint now",
     "Asks the checkpoint coordinator for a checkpoint as soon as none is in progress."},
    {"savepoint", "DIR", 1, 1, render_checkpoint, "take a savepoint into DIR",
     "Asks the checkpoint coordinator for a savepoint into DIR (new or empty) as soon as no\n"
     "checkpoint is in progress; the job goes on. Restore it with\n"
     "`eddy run JOB.yaml --restore DIR` (also at another parallelism of keyed operators)."},
    {"quit", "", 0, 0, NULL, "leave the shell (also: exit, Ctrl-D)", "Leaves the shell."},
    {"exit", "", 0, 0, NULL, "leave the shell", "Leaves the shell."},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char *const command_names[] = {"help",  "jobs",  "actors", "tree", "info",
                                            "stats", "watch", "kill",   "log",  "cancel",
                                            "checkpoints", "checkpoint", "savepoint", "quit",  "exit",  NULL};
_Static_assert(sizeof command_names / sizeof command_names[0] == N_COMMANDS + 1,
               "command_names lists every command");

static const sh_command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* list_commands writes one line per command: its usage and summary. */
static void list_commands(FILE *f)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].name, "exit") == 0)
			continue; /* listed with quit */
		char *u = xasprintf("%s %s", commands[i].name, commands[i].args);
		fprintf(f, "  %-22s %s\n", u, commands[i].summary);
		free(u);
	}
}

/* help prints the details of c, or the list of commands (c NULL). */
static void help(const sh_command *c)
{
	if (c) {
		printf("usage: %s%s%s\n\n%s\n", c->name, c->args[0] ? " " : "", c->args, c->detail);
		return;
	}
	puts("commands:");
	list_commands(stdout);
	puts("Tab completes command names and actor paths; `help COMMAND` for details.");
}

static int unknown_command(shell *s, const char *name)
{
	const char *near = cfg_nearest(name, command_names);
	membuf m;
	put_text(mb_open(&m), name, strlen(name));
	char *shown = mb_close(&m);
	if (near)
		sh_error(s, "unknown command '%s' (did you mean '%s'?); 'help' lists the commands",
		         shown, near);
	else
		sh_error(s, "unknown command '%s'; 'help' lists the commands", shown);
	free(shown);
	return SH_EUSAGE;
}

/* split cuts line (modified in place) at blanks into at most max words; returns how
 * many, or -1 if there are more. */
static int split(char *line, char **words, int max)
{
	int n = 0;
	char *p = line;
	for (;;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			return n;
		if (n == max)
			return -1;
		words[n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
}

/* check_args validates the words of a command (words[0] its name): SH_OK with *out the
 * command, or SH_EUSAGE (printed). */
static int check_args(shell *s, char **words, int n, const sh_command **out)
{
	const sh_command *c = find_command(words[0]);
	if (!c)
		return unknown_command(s, words[0]);
	int nargs = n - 1;
	if (nargs < c->min_args || (c->max_args >= 0 && nargs > c->max_args)) {
		sh_error(s, "usage: %s%s%s", c->name, c->args[0] ? " " : "", c->args);
		return SH_EUSAGE;
	}
	if (strcmp(c->name, "log") == 0 && nargs == 1) {
		char *end;
		errno = 0;
		long v = strtol(words[1], &end, 10);
		if (errno || *end || end == words[1] || v < 1 || v > 1024) {
			sh_error(s, "log: N must be a number from 1 to 1024");
			return SH_EUSAGE;
		}
	}
	if (strcmp(c->name, "help") == 0 && nargs == 1 && !find_command(words[1]))
		return unknown_command(s, words[1]);
	if (strcmp(c->name, "watch") == 0) {
		const sh_command *inner;
		int rc = check_args(s, words + 1, n - 1, &inner);
		if (rc != SH_OK)
			return rc;
		if (!inner->render && strcmp(inner->name, "help") != 0) {
			sh_error(s, "watch: cannot watch '%s'", inner->name);
			return SH_EUSAGE;
		}
	}
	*out = c;
	return SH_OK;
}

/* join_words returns the n words joined by single blanks (malloc'd). */
static char *join_words(char *const *words, int n)
{
	size_t len = 1;
	for (int i = 0; i < n; i++)
		len += strlen(words[i]) + 1;
	char *out = xmalloc(len), *p = out;
	*p = '\0';
	for (int i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? " " : "", words[i]);
	return out;
}

/* remote runs a command the server answers (words already checked). */
static int remote(shell *s, const sh_command *c, char **words, int n)
{
	const char *args[2];
	size_t nargs = 0;
	char *reason = NULL;
	if (n > 1)
		args[nargs++] = words[1];
	if (strcmp(c->name, "kill") == 0 && n > 2) {
		reason = join_words(words + 2, n - 2);
		args[nargs++] = reason;
	}
	sh_reply r;
	char why[512];
	int rc = sh_call(s, s->timeout_ms, c->name, args, nargs, &r, why, sizeof why);
	free(reason);
	if (rc != SH_OK) {
		sh_error(s, "%s", why);
	} else if (s->json) {
		json_value(stdout, r.result, 0);
		fputc('\n', stdout);
	} else {
		rc = c->render(s, r.result);
	}
	reply_free(&r);
	fflush(stdout);
	return rc;
}

static int run_words(shell *s, char **words, int n);

/* ---- watch ---- */

static volatile sig_atomic_t watch_signal;

static void on_watch_signal(int sig)
{
	watch_signal = sig;
}

/* Input a script has read ahead of what it ran (see script_pending): watch stops when
 * there is any. */
static bool (*watch_pending)(void);

/* watch runs words (a checked command) every second until a key is pressed. On a terminal
 * stdin is put in non-canonical mode without echo and restored on the way out (the key is
 * discarded); otherwise it stops when stdin is readable or at its end. SIGINT stops it;
 * SIGTERM and SIGHUP stop it, then take their default action. Returns the last result. */
static int watch(shell *s, char **words, int n)
{
	bool tty = isatty(STDIN_FILENO);
	struct termios saved;
	if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		tty = false;
	}
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa, old[3];
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_watch_signal;
	sigemptyset(&sa.sa_mask);
	watch_signal = 0;
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);

	int rc = SH_OK;
	char *line = join_words(words, n);
	while (!watch_signal) {
		char now[64];
		time_t t = time(NULL);
		struct tm tm;
		if (!gmtime_r(&t, &tm) || !strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm))
			snprintf(now, sizeof now, "?");
		if (isatty(STDOUT_FILENO))
			fputs("\033[H\033[2J", stdout); /* a pipe gets the runs one after another */
		printf("every 1s: %s    %s    (press a key to stop)\n\n", line, now);
		fflush(stdout);
		rc = run_words(s, words, n);
		fflush(stdout);
		if (watch_signal || (watch_pending && watch_pending()))
			break;
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		int pr = poll(&p, 1, 1000);
		if (pr > 0) {
			if (tty) {
				char junk[64];
				ssize_t got = read(STDIN_FILENO, junk, sizeof junk);
				(void)got;
			}
			break;
		}
		if (pr < 0 && errno != EINTR)
			break;
	}
	free(line);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (watch_signal == SIGTERM || watch_signal == SIGHUP)
		raise(watch_signal);
	return rc;
}

/* run_words runs one command (words[0] its name): SH_OK, SH_EFAIL, SH_EUSAGE,
 * SH_EUNREACH (errors printed), or SH_QUIT. */
static int run_words(shell *s, char **words, int n)
{
	const sh_command *c;
	int rc = check_args(s, words, n, &c);
	if (rc != SH_OK)
		return rc;
	if (strcmp(c->name, "help") == 0) {
		help(n > 1 ? find_command(words[1]) : NULL);
		fflush(stdout);
		return SH_OK;
	}
	if (strcmp(c->name, "quit") == 0 || strcmp(c->name, "exit") == 0)
		return SH_QUIT;
	if (strcmp(c->name, "watch") == 0)
		return watch(s, words + 1, n - 1);
	return remote(s, c, words, n);
}

/* run_line runs one line of input (modified in place); blank lines and # comments do
 * nothing. */
static int run_line(shell *s, char *line)
{
	char *words[SH_MAX_WORDS];
	int n = split(line, words, SH_MAX_WORDS);
	if (n < 0) {
		sh_error(s, "more than %d words on a line", SH_MAX_WORDS);
		return SH_EUSAGE;
	}
	if (n == 0 || words[0][0] == '#')
		return SH_OK;
	return run_words(s, words, n);
}

/* ---- scripts: commands line by line from stdin, read with read(2) so that watch can
 * tell whether more input is waiting ---- */

static struct {
	char buf[4096];
	size_t start, end;
	bool eof;
} script;

static bool script_pending(void)
{
	return script.start < script.end || script.eof;
}

/* script_line reads the next line (without its newline) into *line (malloc'd, the caller
 * frees it): 1 a line, 0 end of input, -1 a line too long (skipped) or a read error. */
static int script_line(char **line)
{
	size_t len = 0, cap = 256;
	char *out = xmalloc(cap);
	bool too_long = false;
	for (;;) {
		if (script.start == script.end) {
			if (script.eof)
				break;
			ssize_t got = read(STDIN_FILENO, script.buf, sizeof script.buf);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				script.eof = true;
				break;
			}
			script.start = 0;
			script.end = (size_t)got;
		}
		char c = script.buf[script.start++];
		if (c == '\n') {
			out[len] = '\0';
			*line = out;
			return too_long ? -1 : 1;
		}
		if (len + 1 >= SH_MAX_LINE) {
			too_long = true;
			continue;
		}
		if (len + 2 > cap)
			out = xrealloc(out, cap *= 2);
		out[len++] = c;
	}
	out[len] = '\0';
	*line = out;
	if (len == 0 && !too_long) {
		free(out);
		*line = NULL;
		return 0;
	}
	return too_long ? -1 : 1;
}

static int run_script(shell *s)
{
	int worst = SH_OK;
	watch_pending = script_pending;
	for (;;) {
		char *line;
		int got = script_line(&line);
		if (got == 0)
			break;
		int rc;
		if (got < 0) {
			sh_error(s, "a line longer than %d bytes", SH_MAX_LINE);
			rc = SH_EUSAGE;
		} else {
			rc = run_line(s, line);
		}
		free(line);
		if (rc == SH_QUIT)
			break;
		if (rc != SH_OK)
			worst = rc;
	}
	watch_pending = NULL;
	return worst;
}

/* ---- interactive: libedit's readline interface ---- */

static shell *complete_shell; /* the shell completion asks (completion has no context) */
static char **candidates;     /* this completion's candidates, NULL-terminated, malloc'd */
static size_t candidate_next;

static void candidates_free(void)
{
	if (candidates)
		for (char **c = candidates; *c; c++)
			free(*c);
	free(candidates);
	candidates = NULL;
}

/* candidates_fetch fills the candidates with a string field of every item of cmd's
 * result (the paths of `actors`, the names of `jobs`); none when the server does not
 * answer. */
static void candidates_fetch(const char *cmd, const char *field)
{
	sh_reply r;
	char why[256];
	size_t n = 0;
	candidates = xmalloc(sizeof *candidates);
	candidates[0] = NULL;
	int ms = complete_shell->timeout_ms < SH_COMPLETE_TIMEOUT_MS ? complete_shell->timeout_ms
	                                                             : SH_COMPLETE_TIMEOUT_MS;
	if (sh_call(complete_shell, ms, cmd, NULL, 0, &r, why, sizeof why) == SH_OK &&
	    r.result->type == MSGPACK_OBJECT_ARRAY) {
		candidates =
		    xrealloc(candidates, (r.result->via.array.size + 1) * sizeof *candidates);
		for (uint32_t i = 0; i < r.result->via.array.size; i++) {
			char *v = obj_strdup(obj_get(&r.result->via.array.ptr[i], field));
			if (v)
				candidates[n++] = v;
		}
		candidates[n] = NULL;
	}
	reply_free(&r);
}

static void candidates_commands(void)
{
	candidates = xmalloc((N_COMMANDS + 1) * sizeof *candidates);
	for (size_t i = 0; i < N_COMMANDS; i++)
		candidates[i] = xstrndup(commands[i].name, strlen(commands[i].name));
	candidates[N_COMMANDS] = NULL;
}

/* complete_next is readline's generator: the next candidate that starts with text, as a
 * new string (readline frees it), or NULL. */
static char *complete_next(const char *text, int state)
{
	if (state == 0)
		candidate_next = 0;
	size_t n = strlen(text);
	while (candidates && candidates[candidate_next]) {
		const char *c = candidates[candidate_next++];
		if (strncmp(c, text, n) == 0) {
			char *copy = strdup(c);
			return copy;
		}
	}
	return NULL;
}

/* complete is readline's attempted completion for the word text at [start, end) of the
 * line: command names for the first word (and after watch and help), actor paths for the
 * argument of info, kill and actors, job names for that of cancel. Never file names. */
static char **complete(const char *text, int start, int end)
{
	rl_attempted_completion_over = 1;
	candidates_free();
	/* libedit's rl_line_buffer points into a conversion buffer that encoding `text` may
	 * have reallocated when the line is long (its buffers start at 1 KiB): on long lines
	 * rl_line_buffer is not touched and nothing is completed. */
	if (end < 0 || end > SH_COMPLETE_MAX_LINE || (size_t)end < strlen(text))
		return NULL;
	size_t len = rl_line_buffer ? strlen(rl_line_buffer) : 0;
	if (start < 0 || (size_t)start > len)
		return NULL;
	char *before = xstrndup(rl_line_buffer, (size_t)start);
	char *words[SH_MAX_WORDS];
	int n = split(before, words, SH_MAX_WORDS);
	int i = 0;
	while (i < n && strcmp(words[i], "watch") == 0)
		i++;
	if (n >= 0 && i == n) {
		candidates_commands();
	} else if (n >= 0 && n - i == 1) {
		const char *cmd = words[i];
		if (strcmp(cmd, "help") == 0)
			candidates_commands();
		else if (strcmp(cmd, "info") == 0 || strcmp(cmd, "kill") == 0 ||
		         strcmp(cmd, "actors") == 0)
			candidates_fetch("actors", "path");
		else if (strcmp(cmd, "cancel") == 0)
			candidates_fetch("jobs", "name");
	}
	free(before);
	if (!candidates)
		return NULL;
	return rl_completion_matches(text, complete_next);
}

static char *history_path(void)
{
	const char *home = getenv("HOME");
	if (!home || !home[0])
		return NULL;
	return xasprintf("%s/%s", home, SH_HISTORY_FILE);
}

static int run_interactive(shell *s)
{
	static char breaks[] = " \t\n"; /* '/', '[' and ']' are part of an actor path */
	setlocale(LC_CTYPE, "");        /* libedit edits multibyte text in the terminal's charset */
	complete_shell = s;
	rl_readline_name = "eddy";
	rl_attempted_completion_function = complete;
	rl_basic_word_break_characters = breaks;
	rl_completer_word_break_characters = breaks;
	using_history();
	stifle_history(SH_HISTORY_MAX);
	char *hist = history_path();
	if (hist)
		read_history(hist); /* no file yet: fine */

	printf("eddy shell: connected to %s; 'help' lists the commands, Tab completes.\n",
	       s->address);
	char *prev = NULL;
	for (;;) {
		char *line = readline("eddy> ");
		if (!line) {
			putchar('\n');
			break;
		}
		const char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (*p && (!prev || strcmp(prev, line) != 0)) {
			add_history(line);
			free(prev);
			prev = xstrndup(line, strlen(line));
			if (hist)
				write_history(hist); /* failures ignored */
		}
		int rc = run_line(s, line);
		free(line);
		fflush(stdout);
		if (rc == SH_QUIT)
			break;
	}
	free(prev);
	if (hist)
		write_history(hist);
	free(hist);
	candidates_free();
	clear_history();
	return SH_OK;
}

/* ---- the command line ---- */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: eddy shell [ADDRESS] [-c COMMAND] [--json] [--secret-file F] [--timeout MS]\n"
	    "\n"
	    "The debug shell of a job started with `eddy run JOB.yaml --control ADDRESS`\n"
	    "(default ADDRESS: " SH_DEFAULT_ADDRESS "; or ipc:///path/to/socket).\n"
	    "Interactive on a terminal (history in ~/" SH_HISTORY_FILE ", Tab completes\n"
	    "commands and actor paths); otherwise it runs the commands on stdin, one a line.\n"
	    "\n"
	    "  -c COMMAND        run one command and exit\n"
	    "  --json            print each result as one JSON document\n"
	    "  --secret-file F   send the secret in F (mode 0600, 1-1024 bytes)\n"
	    "  --timeout MS      wait MS for each reply (default %d)\n"
	    "\n",
	    SH_DEFAULT_TIMEOUT_MS);
	fputs("commands (`help COMMAND` for details):\n", f);
	list_commands(f);
	fputs("\nexit codes: 0 ok, 1 the server replied an error, 2 bad usage, 3 the server\n"
	      "cannot be reached (a script: the last failure's code)\n",
	      f);
}

/* option_value takes the value of --name VALUE or --name=VALUE at argv[*i]: NULL if the
 * word is not this option; *missing when the value is not there. */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

int cmd_shell(int argc, char **argv)
{
	shell s = {.address = SH_DEFAULT_ADDRESS, .timeout_ms = SH_DEFAULT_TIMEOUT_MS};
	const char *command = NULL, *secret_file = NULL;
	bool have_address = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v;
		bool missing = false;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return SH_OK;
		} else if (strcmp(a, "--json") == 0) {
			s.json = true;
		} else if ((v = option_value(argc, argv, &i, "-c", &missing)) || missing) {
			if (missing || command) {
				fprintf(stderr, missing ? "eddy shell: -c needs a COMMAND\n"
				                        : "eddy shell: -c given twice\n");
				return SH_EUSAGE;
			}
			command = v;
		} else if ((v = option_value(argc, argv, &i, "--secret-file", &missing)) ||
		           missing) {
			if (missing || !v[0]) {
				fprintf(stderr, "eddy shell: --secret-file needs a FILE\n");
				return SH_EUSAGE;
			}
			secret_file = v;
		} else if ((v = option_value(argc, argv, &i, "--timeout", &missing)) || missing) {
			char *end;
			errno = 0;
			long ms = missing ? 0 : strtol(v, &end, 10);
			if (missing || errno || *end || end == v || ms < 1 ||
			    ms > SH_MAX_TIMEOUT_MS) {
				fprintf(stderr,
				        "eddy shell: --timeout takes milliseconds from 1 to %d\n",
				        SH_MAX_TIMEOUT_MS);
				return SH_EUSAGE;
			}
			s.timeout_ms = (int)ms;
		} else if (a[0] == '-') {
			fprintf(stderr, "eddy shell: unknown option %s (eddy shell --help)\n", a);
			return SH_EUSAGE;
		} else if (have_address) {
			fprintf(stderr,
			        "eddy shell: unexpected argument '%s' (one ADDRESS; a command "
			        "goes after -c, quoted)\n",
			        a);
			return SH_EUSAGE;
		} else {
			s.address = a;
			have_address = true;
		}
	}
	if (strstr(s.address, "://") == NULL) {
		fprintf(stderr,
		        "eddy shell: bad address '%s' (e.g. tcp://127.0.0.1:7600 or "
		        "ipc:///path)\n",
		        s.address);
		return SH_EUSAGE;
	}
	if (secret_file) {
		char why[512];
		eddy_err e = ctl_read_secret(secret_file, &s.secret, why, sizeof why);
		if (e == EDDY_ENOMEM)
			die_oom();
		if (e != EDDY_OK) {
			fprintf(stderr, "eddy shell: %s\n", why);
			return SH_EUSAGE;
		}
	}

	int rc;
	if (command) {
		char *line = xstrndup(command, strlen(command));
		rc = run_line(&s, line);
		free(line);
		if (rc == SH_QUIT)
			rc = SH_OK;
	} else if (isatty(STDIN_FILENO)) {
		char why[512];
		rc = sh_connect(&s, why, sizeof why);
		if (rc != SH_OK) {
			fprintf(stderr, "eddy shell: %s\n", why);
		} else {
			s.interactive = true;
			rc = run_interactive(&s);
		}
	} else {
		rc = run_script(&s);
	}
	fflush(stdout);
	sh_close(&s);
	if (s.secret) {
		memset(s.secret, 0, strlen(s.secret));
		free(s.secret);
	}
	return rc;
}
