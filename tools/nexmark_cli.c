/* `eddy nexmark-gen`: the Nexmark events of connectors/nexmark_gen.h as three CSV files
 * (persons.csv, auctions.csv, bids.csv: no header, no quoting, timestamps
 * YYYY-MM-DD HH:MM:SS.mmm UTC), in generation order, the same bytes on every run. Lines
 * are built in large buffers by hand (no printf per field) and written with write(2). */
#include "nexmark_cli.h"

#include "../connectors/nexmark_gen.h"
#include "../runtime/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OUT_BUF (4u << 20)
#define LINE_MAX_BYTES 4096 /* an event's line is below 1,200 bytes */

typedef struct out_file {
	const char *name;
	char path[4200];
	int fd;
	char *buf;
	size_t n;
	uint64_t rows;
} out_file;

/* flush writes the buffer whole; false with errno on a write error. */
static bool flush(out_file *o)
{
	size_t off = 0;
	while (off < o->n) {
		ssize_t w = write(o->fd, o->buf + off, o->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		off += (size_t)w;
	}
	o->n = 0;
	return true;
}

static inline char *put_int(char *p, int64_t v)
{
	char tmp[24];
	int k = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	if (v < 0)
		*p++ = '-';
	do
		tmp[k++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	while (k > 0)
		*p++ = tmp[--k];
	return p;
}

static inline char *put_str(char *p, nexmark_str s)
{
	memcpy(p, s.p, s.len);
	return p + s.len;
}

/* A cache of the formatted second: the events of one second share their first 19 bytes. */
typedef struct ts_cache {
	int64_t sec;
	char text[32];
} ts_cache;

static inline char *put_ts(char *p, ts_cache *tc, int64_t ms)
{
	int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	if (sec != tc->sec) {
		nexmark_ts_format(sec * 1000, tc->text);
		tc->sec = sec;
	}
	memcpy(p, tc->text, 20); /* YYYY-MM-DD HH:MM:SS. */
	unsigned f = (unsigned)(ms - sec * 1000);
	p[20] = (char)('0' + f / 100);
	p[21] = (char)('0' + f / 10 % 10);
	p[22] = (char)('0' + f % 10);
	return p + 23;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: eddy nexmark-gen --events N --out DIR [--seed S] [--tps R]\n"
	        "                        [--out-of-order-group-size G] [--delayed-fraction F]\n"
	        "                        [--max-delay-ms D]\n"
	        "\n"
	        "Writes the Nexmark events 0 .. N-1 (persons : auctions : bids = 1 : 3 : 46) as\n"
	        "DIR/persons.csv, DIR/auctions.csv and DIR/bids.csv: no header, comma-separated,\n"
	        "no quoting, timestamps YYYY-MM-DD HH:MM:SS.mmm (UTC), in generation order. The\n"
	        "same arguments give the same bytes. Columns:\n"
	        "  persons.csv:  id,name,emailAddress,creditCard,city,state,dateTime,extra\n"
	        "  auctions.csv: id,itemName,description,initialBid,reserve,dateTime,expires,\n"
	        "                seller,category,extra\n"
	        "  bids.csv:     auction,bidder,price,channel,url,dateTime,extra\n"
	        "\n"
	        "  --seed S   the seed (default 0)\n"
	        "  --tps R    event-time rate: event n is at 2015-07-15 00:00:00 + n/R s\n"
	        "             (default 10000, as the nexmark repository)\n"
	        "  --out-of-order-group-size G   emit every G events in a pseudo-random order\n"
	        "             (default 1: in order)\n"
	        "  --delayed-fraction F, --max-delay-ms D   a fraction F of auctions and bids\n"
	        "             lag by 1..D ms of event time (default 0, 3000)\n"
	        "exit codes: 0 done, 1 I/O error, 2 bad usage\n");
}

/* num: parses a whole decimal number in [lo, hi]. */
static bool num(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int cmd_nexmark_gen(int argc, char **argv)
{
	nexmark_conf c;
	nexmark_conf_init(&c, 0);
	int64_t events = -1, v;
	const char *dir = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (a[0] != '-' || val == NULL) {
			fprintf(stderr, "eddy nexmark-gen: %s\n",
			        a[0] != '-' ? "unexpected argument" : "missing value after option");
			fprintf(stderr, "  (at '%s'; eddy nexmark-gen --help)\n", a);
			return 2;
		}
		i++;
		bool ok = true;
		if (strcmp(a, "--events") == 0) {
			ok = num(val, 1, INT64_MAX / 2, &events);
		} else if (strcmp(a, "--seed") == 0) {
			ok = num(val, 0, INT64_MAX, &v);
			c.seed = (uint64_t)v;
		} else if (strcmp(a, "--tps") == 0) {
			ok = num(val, 1, 1000000000, &c.tps);
		} else if (strcmp(a, "--out-of-order-group-size") == 0) {
			ok = num(val, 1, 1000000000, &c.ooo_group_size);
		} else if (strcmp(a, "--max-delay-ms") == 0) {
			ok = num(val, 1, 86400000, &c.max_delay_ms);
		} else if (strcmp(a, "--delayed-fraction") == 0) {
			char *end;
			c.delayed_fraction = strtod(val, &end);
			ok = end != val && *end == '\0' && c.delayed_fraction >= 0 &&
			     c.delayed_fraction <= 1;
		} else if (strcmp(a, "--out") == 0) {
			dir = val;
		} else {
			fprintf(stderr,
			        "eddy nexmark-gen: unknown option %s (eddy nexmark-gen --help)\n",
			        a);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "eddy nexmark-gen: bad value for %s: '%s'\n", a, val);
			return 2;
		}
	}
	if (events < 0 || dir == NULL) {
		fprintf(stderr, "eddy nexmark-gen: --events N and --out DIR are required "
		                "(eddy nexmark-gen --help)\n");
		return 2;
	}
	c.events = (uint64_t)events;
	const char *why = nexmark_conf_check(&c);
	if (why != NULL) {
		fprintf(stderr, "eddy nexmark-gen: %s\n", why);
		return 2;
	}
	if (fs_mkdirs(dir) != 0) {
		fprintf(stderr, "eddy nexmark-gen: %s: cannot create: %s\n", dir, strerror(errno));
		return 1;
	}
	out_file f[3] = {{.name = "persons.csv", .fd = -1},
	                 {.name = "auctions.csv", .fd = -1},
	                 {.name = "bids.csv", .fd = -1}};
	int rc = 1;
	out_file *bad = NULL;
	nexmark_event *e = malloc(sizeof(*e));
	if (e == NULL) {
		fprintf(stderr, "eddy nexmark-gen: out of memory\n");
		return 1;
	}
	for (int k = 0; k < 3; k++) {
		snprintf(f[k].path, sizeof(f[k].path), "%s/%s", dir, f[k].name);
		f[k].buf = malloc(OUT_BUF);
		f[k].fd = open(f[k].path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (f[k].buf == NULL || f[k].fd < 0) {
			bad = &f[k];
			goto done;
		}
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ts_cache tc[2] = {{.sec = INT64_MIN}, {.sec = INT64_MIN}};
	for (uint64_t n = 0; n < (uint64_t)events; n++) {
		nexmark_gen(&c, n, e);
		out_file *o = &f[e->kind];
		if (o->n > OUT_BUF - LINE_MAX_BYTES && !flush(o)) {
			bad = o;
			goto done;
		}
		char *p = o->buf + o->n;
		switch (e->kind) {
		case NEXMARK_PERSON:
			p = put_int(p, e->person.id);
			*p++ = ',';
			p = put_str(p, e->person.name);
			*p++ = ',';
			p = put_str(p, e->person.email_address);
			*p++ = ',';
			p = put_str(p, e->person.credit_card);
			*p++ = ',';
			p = put_str(p, e->person.city);
			*p++ = ',';
			p = put_str(p, e->person.state);
			*p++ = ',';
			p = put_ts(p, &tc[0], e->date_time);
			*p++ = ',';
			p = put_str(p, e->person.extra);
			break;
		case NEXMARK_AUCTION:
			p = put_int(p, e->auction.id);
			*p++ = ',';
			p = put_str(p, e->auction.item_name);
			*p++ = ',';
			p = put_str(p, e->auction.description);
			*p++ = ',';
			p = put_int(p, e->auction.initial_bid);
			*p++ = ',';
			p = put_int(p, e->auction.reserve);
			*p++ = ',';
			p = put_ts(p, &tc[0], e->date_time);
			*p++ = ',';
			p = put_ts(p, &tc[1], e->auction.expires);
			*p++ = ',';
			p = put_int(p, e->auction.seller);
			*p++ = ',';
			p = put_int(p, e->auction.category);
			*p++ = ',';
			p = put_str(p, e->auction.extra);
			break;
		case NEXMARK_BID:
			p = put_int(p, e->bid.auction);
			*p++ = ',';
			p = put_int(p, e->bid.bidder);
			*p++ = ',';
			p = put_int(p, e->bid.price);
			*p++ = ',';
			p = put_str(p, e->bid.channel);
			*p++ = ',';
			p = put_str(p, e->bid.url);
			*p++ = ',';
			p = put_ts(p, &tc[0], e->date_time);
			*p++ = ',';
			p = put_str(p, e->bid.extra);
			break;
		}
		*p++ = '\n';
		o->n = (size_t)(p - o->buf);
		o->rows++;
	}
	for (int k = 0; k < 3; k++) {
		if (!flush(&f[k])) {
			bad = &f[k];
			goto done;
		}
	}
	for (int k = 0; k < 3; k++) {
		int fd = f[k].fd;
		f[k].fd = -1;
		if (close(fd) != 0) {
			bad = &f[k];
			goto done;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr,
	        "eddy nexmark-gen: %" PRId64 " events (%" PRIu64 " persons, %" PRIu64
	        " auctions, %" PRIu64 " bids) in %.3f s, %.0f events/s, into %s\n",
	        events, f[0].rows, f[1].rows, f[2].rows, s, s > 0 ? (double)events / s : 0.0, dir);
	rc = 0;
done:
	if (bad != NULL)
		fprintf(stderr, "eddy nexmark-gen: %s: %s\n", bad->path, strerror(errno));
	for (int k = 0; k < 3; k++) {
		if (f[k].fd >= 0)
			close(f[k].fd);
		free(f[k].buf);
	}
	free(e);
	return rc;
}
