/*
 * Nexmark q0, q5 and q7 as a hand-written single-threaded C program over the bids file that
 * `eddy nexmark-gen` writes: the lower bound on cost that eddy and Flink are measured against
 * ("Scalability! But at what COST?", McSherry et al., HotOS 2015). Plain C and libc, no SIMD
 * of its own, no threads, but not a straw man: the file is mapped once, each line is checked
 * and parsed in one pass with memchr, the windows live in a ring of small open-addressing
 * tables, and no allocation happens per record.
 *
 * Usage: bench_nexmark_baseline -q q0|q5|q7 [-o OUT.csv] [-e EVENTS] [-l MS] [-W] BIDS.csv
 *   BIDS.csv  bids.csv of `eddy nexmark-gen` (the file contract: no header, comma-separated,
 *             no quoting, auction,bidder,price,channel,url,dateTime,extra with dateTime
 *             'YYYY-MM-DD HH:MM:SS.mmm' UTC). A malformed line stops the program with
 *             "FILE:LINE: what" on stderr and exit 1.
 *   -o        where to write the result as CSV with a header (default: stdout)
 *   -e        the events to count for the throughput on stderr (default: the bids read); the
 *             benchmark passes persons + auctions + bids, as Nexmark counts every event
 *   -l        the watermark's bound on out-of-orderness in ms (default 4000: the suite's
 *             DDL, WATERMARK dateTime - 4 s)
 *   -W        q5, q7: window_start,window_end of the window first (not in the nexmark sinks)
 *
 * The queries, as the nexmark repository's Flink SQL (queries/q0.sql, q5.sql, q7.sql) and the
 * batch SQL of tests/data/nexmark_baseline/expected.sh define them; windows are aligned to the
 * epoch and half-open, [start, end):
 *   q0  every bid: auction,bidder,price,dateTime,extra.
 *   q5  HOP 10 s size / 2 s slide: per window the number of bids of each auction, and every
 *       auction whose count is the window's highest (ties kept): auction,num.
 *   q7  TUMBLE 10 s: every bid whose price equals the highest price of a window [s, e) and
 *       whose dateTime is in [s, e] (the SQL's BETWEEN, both ends: a bid stamped exactly e
 *       also matches the window before its own): auction,bidder,price,dateTime,extra.
 * Timestamps are written as eddy's file sink writes them: 'YYYY-MM-DD HH:MM:SS' and '.mmm'
 * only when the milliseconds are not 0.
 *
 * Event time: the watermark is the largest dateTime so far minus -l ms (as Flink's bounded
 * out-of-orderness), advanced after each bid; a window fires when the watermark reaches its end
 * - 1 ms, the rest at the end of the file. As Flink's slicing window aggregate, a bid counts
 * in those of its windows that have not fired: q5's bid whose 2 s slice has fired ("partly
 * late") still counts in its later windows; a bid all of whose windows have fired is late and
 * left out of the counts (q5) and maxima (q7), but in q7 it still joins a fired window's
 * maximum (Flink runs the outer join as a regular join). Both are counted on stderr. The
 * generator's files have none (their event time never decreases, and --delayed-fraction lags
 * bids by at most 3 s).
 *
 * Prints "bench_nexmark_baseline: qN: B bids (E events), R rows, L late, P partly late in S s:
 * X events/s" on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DAY_MS 86400000LL
#define Q5_SLIDE_MS 2000LL
#define Q5_SIZE_MS 10000LL
#define Q7_SIZE_MS 10000LL
#define OUT_CAP (4u << 20) /* bytes of the output buffer */

static const char *prog = "bench_nexmark_baseline";

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* 'YYYY-MM-DD HH:MM:SS[.mmm]' of epoch ms (years 0..9999), as eddy's file sink; returns the
 * end of what it wrote (at most 23 bytes). */
static char *fmt_ts(char *b, int64_t ms)
{
	int64_t days = floor_div(ms, DAY_MS), y;
	int64_t rem = ms - days * DAY_MS;
	unsigned m, d, s = (unsigned)(rem / 1000), milli = (unsigned)(rem % 1000);
	civil_from_days(days, &y, &m, &d);
	b += sprintf(b, "%04d-%02u-%02u %02u:%02u:%02u", (int)y, m, d, s / 3600, s / 60 % 60,
	             s % 60);
	if (milli)
		b += sprintf(b, ".%03u", milli);
	return b;
}

/* ---- output: a big buffer, write(2) ---- */

typedef struct out {
	int fd;
	const char *path;
	char *buf;
	size_t used;
	uint64_t rows;
} out;

static void out_flush(out *o)
{
	size_t off = 0;
	while (off < o->used) {
		ssize_t n = write(o->fd, o->buf + off, o->used - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("%s: write: %s", o->path, strerror(errno));
		off += (size_t)n;
	}
	o->used = 0;
}

/* Appends n bytes of any size. */
static void out_put(out *o, const char *s, size_t n)
{
	while (n) {
		if (o->used == OUT_CAP)
			out_flush(o);
		size_t k = OUT_CAP - o->used < n ? OUT_CAP - o->used : n;
		memcpy(o->buf + o->used, s, k);
		o->used += k;
		s += k;
		n -= k;
	}
}

static char *put_int(char *b, int64_t v)
{
	char tmp[24];
	int n = 0;
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*b++ = '-';
	while (n)
		*b++ = tmp[--n];
	return b;
}

/* ---- input: one bid per line ---- */

typedef struct bid {
	const char *num[3]; /* the text of auction, bidder, price */
	uint32_t numlen[3];
	bool canonical; /* all three written as eddy writes an int (no '+', no leading 0) */
	int64_t auction, bidder, price;
	const char *dt; /* the 23 characters of dateTime */
	int64_t ts;     /* dateTime, ms since the epoch */
	const char *extra;
	size_t extra_len;
} bid;

typedef struct reader {
	const char *path;
	const char *p, *end; /* the rest of the mapped file */
	long line;           /* of the bid parsed last, from 1 */
	bool sec_valid;      /* sec_key holds the last 'YYYY-MM-DD HH:MM:SS' seen */
	char sec_key[19];
	int64_t sec_ms; /* its ms since the epoch */
} reader;

static void bad(const reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: %s:%ld: ", prog, r->path, r->line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static const char *const field_names[] = {"auction", "bidder", "price"};

/* Parses the integer field i at p, which must end with ','; returns the byte after the ','. */
static inline const char *parse_int(const reader *r, const char *p, const char *le, bid *b, int i)
{
	const char *s = p;
	bool neg = p < le && *p == '-';
	p += neg;
	const char *digits = p;
	uint64_t v = 0;
	unsigned c;
	while (p < le && (c = (unsigned)(unsigned char)*p - '0') <= 9) {
		v = v * 10 + c;
		p++;
	}
	if (p == digits || p == le || *p != ',')
		bad(r, "%s: expected an integer and ','", field_names[i]);
	if (p - digits > 18)
		bad(r, "%s: more than 18 digits", field_names[i]);
	if ((*digits == '0' && p - digits > 1) || (neg && v == 0))
		b->canonical = false;
	b->num[i] = s;
	b->numlen[i] = (uint32_t)(p - s);
	int64_t x = (int64_t)v;
	if (i == 0)
		b->auction = neg ? -x : x;
	else if (i == 1)
		b->bidder = neg ? -x : x;
	else
		b->price = neg ? -x : x;
	return p + 1;
}

static inline bool two_digits(const char *p, unsigned *v)
{
	unsigned a = (unsigned)(unsigned char)p[0] - '0', c = (unsigned)(unsigned char)p[1] - '0';
	*v = a * 10 + c;
	return a <= 9 && c <= 9;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dm[m - 1];
}

/* The ms of 'YYYY-MM-DD HH:MM:SS.mmm' at p (23 bytes); the second is parsed once per change. */
static inline int64_t parse_ts(reader *r, const char *p)
{
	if (!r->sec_valid || memcmp(p, r->sec_key, 19) != 0) {
		unsigned y1, y2, mo, d, h, mi, s;
		if (!two_digits(p, &y1) || !two_digits(p + 2, &y2) || p[4] != '-' ||
		    !two_digits(p + 5, &mo) || p[7] != '-' || !two_digits(p + 8, &d) ||
		    p[10] != ' ' || !two_digits(p + 11, &h) || p[13] != ':' ||
		    !two_digits(p + 14, &mi) || p[16] != ':' || !two_digits(p + 17, &s))
			bad(r, "dateTime: expected YYYY-MM-DD HH:MM:SS.mmm");
		int64_t y = y1 * 100 + y2;
		if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
		    s > 59)
			bad(r, "dateTime: %.19s is no valid time", p);
		r->sec_ms = days_from_civil(y, mo, d) * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000LL;
		memcpy(r->sec_key, p, 19);
		r->sec_valid = true;
	}
	unsigned a = (unsigned)(unsigned char)p[20] - '0', b = (unsigned)(unsigned char)p[21] - '0',
	         c = (unsigned)(unsigned char)p[22] - '0';
	if (p[19] != '.' || a > 9 || b > 9 || c > 9)
		bad(r, "dateTime: expected YYYY-MM-DD HH:MM:SS.mmm");
	return r->sec_ms + a * 100 + b * 10 + c;
}

/* Parses the next line into b; false at the end of the file. */
static inline bool next_bid(reader *r, bid *b)
{
	const char *p = r->p;
	if (p >= r->end)
		return false;
	r->line++;
	const char *le = memchr(p, '\n', (size_t)(r->end - p));
	if (!le)
		le = r->end;
	r->p = le + 1;
	b->canonical = true;
	p = parse_int(r, p, le, b, 0);
	p = parse_int(r, p, le, b, 1);
	p = parse_int(r, p, le, b, 2);
	const char *c = memchr(p, ',', (size_t)(le - p)); /* the end of channel */
	const char *u = c ? memchr(c + 1, ',', (size_t)(le - c - 1)) : NULL; /* of url */
	if (!u)
		bad(r, "expected 7 fields: auction,bidder,price,channel,url,dateTime,extra");
	const char *dt = u + 1;
	if (le - dt < 24 || dt[23] != ',')
		bad(r, "dateTime: expected YYYY-MM-DD HH:MM:SS.mmm and ','");
	b->dt = dt;
	b->ts = parse_ts(r, dt);
	b->extra = dt + 24;
	b->extra_len = (size_t)(le - b->extra);
	if (memchr(b->extra, ',', b->extra_len))
		bad(r, "more than 7 fields");
	if (b->extra_len && b->extra[b->extra_len - 1] == '\r')
		bad(r, "a CR before the LF (the file contract has LF line ends)");
	return true;
}

/* "window_start,window_end," (win, when winlen > 0) and auction,bidder,price,dateTime, of b
 * into d (at most winlen + 3 * 21 + 24 bytes); returns the end. */
static inline char *put_bid_head(char *d, const bid *b, const char *win, size_t winlen)
{
	memcpy(d, win, winlen);
	d += winlen;
	if (b->canonical) {
		for (int i = 0; i < 3; i++) {
			memcpy(d, b->num[i], b->numlen[i]);
			d += b->numlen[i];
			*d++ = ',';
		}
	} else {
		d = put_int(d, b->auction);
		*d++ = ',';
		d = put_int(d, b->bidder);
		*d++ = ',';
		d = put_int(d, b->price);
		*d++ = ',';
	}
	memcpy(d, b->dt, 19);
	d += 19;
	if (memcmp(b->dt + 20, "000", 3) != 0) {
		memcpy(d, b->dt + 19, 4);
		d += 4;
	}
	*d++ = ',';
	return d;
}

/* The output row of bid b: put_bid_head, extra, newline. */
static inline void put_bid_row(out *o, const bid *b, const char *win, size_t winlen)
{
	size_t need = winlen + 3 * 21 + 24 + b->extra_len + 1;
	if (need > OUT_CAP - o->used) {
		out_flush(o);
		if (need > OUT_CAP) { /* an extra larger than the buffer */
			char head[192];
			out_put(o, head, (size_t)(put_bid_head(head, b, win, winlen) - head));
			out_put(o, b->extra, b->extra_len);
			out_put(o, "\n", 1);
			o->rows++;
			return;
		}
	}
	char *d = put_bid_head(o->buf + o->used, b, win, winlen);
	memcpy(d, b->extra, b->extra_len);
	d += b->extra_len;
	*d++ = '\n';
	o->used = (size_t)(d - o->buf);
	o->rows++;
}

/* "window_start,window_end," of [start, end) ms into w; returns its length. */
static size_t fmt_window(char *w, int64_t start, int64_t end)
{
	char *p = fmt_ts(w, start);
	*p++ = ',';
	p = fmt_ts(p, end);
	*p++ = ',';
	return (size_t)(p - w);
}

/* ---- event time: the watermark and the windows not fired yet ----
 * A window s covers the units s .. s + k - 1 (unit: q5 the 2 s slide, q7 the 10 s window) and
 * ends at (s + k) * unit ms. */

typedef struct wclock {
	int64_t unit, k; /* ms per unit, units per window */
	int64_t ooo;     /* ms of out-of-orderness */
	int64_t wm;      /* the watermark (ms), INT64_MIN before the first bid */
	int64_t next;    /* the first window not fired */
	bool started;
	uint64_t late;   /* bids all of whose windows had fired */
	uint64_t partly; /* bids whose unit, not all of whose windows, had fired */
} wclock;

static bool unit_fired(const wclock *c, int64_t u)
{
	return c->wm != INT64_MIN && (u + 1) * c->unit - 1 <= c->wm;
}

static bool window_due(const wclock *c, int64_t s, int64_t wm)
{
	return wm != INT64_MIN && (s + c->k) * c->unit - 1 <= wm;
}

/* The first window that a watermark wm leaves open. */
static int64_t first_open(const wclock *c, int64_t wm)
{
	return floor_div(wm + 1, c->unit) - (c->k - 1);
}

/* Ring slots per query: the live units span at most ooo / unit + k + 3 units (see
 * q5_add: windows not containing the new unit fire first). */
static uint32_t ring_size(const wclock *c)
{
	uint64_t need = (uint64_t)(c->ooo / c->unit) + (uint64_t)c->k + 3, n = 4;
	while (n < need)
		n *= 2;
	if (n > (1u << 20))
		die("-l %lld ms: too large", (long long)c->ooo);
	return (uint32_t)n;
}

/* ---- q5: counts per auction in 2 s panes; a window sums its 5 panes ---- */

typedef struct cent {
	int64_t key;
	uint32_t count;
	uint32_t slot;
} cent;

typedef struct ctab {    /* auction -> count, open addressing, entries in insertion order */
	uint32_t *slots; /* entry index + 1, 0 = empty */
	uint32_t mask;
	cent *ents;
	uint32_t n, cap;
} ctab;

static inline uint32_t hash64(uint64_t k)
{
	k *= 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(k >> 32);
}

static void ctab_init(ctab *t, uint32_t nslots)
{
	t->slots = calloc(nslots, sizeof(*t->slots));
	if (!t->slots)
		die("out of memory");
	t->mask = nslots - 1;
	t->n = 0;
	t->cap = nslots / 2;
	t->ents = xrealloc(NULL, t->cap * sizeof(*t->ents));
}

static void ctab_grow(ctab *t)
{
	uint32_t nslots = (t->mask + 1) * 2;
	free(t->slots);
	t->slots = calloc(nslots, sizeof(*t->slots));
	if (!t->slots)
		die("out of memory");
	t->mask = nslots - 1;
	t->cap = nslots / 2;
	t->ents = xrealloc(t->ents, t->cap * sizeof(*t->ents));
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t s = hash64((uint64_t)t->ents[i].key) & t->mask;
		while (t->slots[s])
			s = (s + 1) & t->mask;
		t->slots[s] = i + 1;
		t->ents[i].slot = s;
	}
}

static inline void ctab_add(ctab *t, int64_t key, uint32_t count)
{
	uint32_t s = hash64((uint64_t)key) & t->mask;
	for (;;) {
		uint32_t i = t->slots[s];
		if (!i)
			break;
		if (t->ents[i - 1].key == key) {
			t->ents[i - 1].count += count;
			return;
		}
		s = (s + 1) & t->mask;
	}
	t->ents[t->n] = (cent){.key = key, .count = count, .slot = s};
	t->slots[s] = ++t->n;
	if (t->n == t->cap)
		ctab_grow(t);
}

static void ctab_clear(ctab *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		t->slots[t->ents[i].slot] = 0;
	t->n = 0;
}

typedef struct pane {
	int64_t idx; /* which 2 s pane, valid while tab.n > 0 */
	ctab tab;
} pane;

typedef struct q5 {
	wclock c;
	pane *ring;
	uint32_t mask;
	uint32_t live; /* panes with counts */
	ctab merged;   /* one window's counts */
	out *o;
	bool with_window;
} q5;

static void q5_fire(q5 *q, int64_t s)
{
	ctab *m = &q->merged;
	for (int64_t u = s; u < s + q->c.k; u++) {
		pane *p = &q->ring[(uint64_t)u & q->mask];
		if (p->tab.n && p->idx == u)
			for (uint32_t i = 0; i < p->tab.n; i++)
				ctab_add(m, p->tab.ents[i].key, p->tab.ents[i].count);
	}
	if (m->n) {
		uint32_t max = 0;
		for (uint32_t i = 0; i < m->n; i++)
			if (m->ents[i].count > max)
				max = m->ents[i].count;
		char win[64];
		size_t winlen = 0;
		if (q->with_window)
			winlen = fmt_window(win, s * q->c.unit, (s + q->c.k) * q->c.unit);
		for (uint32_t i = 0; i < m->n; i++) {
			if (m->ents[i].count != max)
				continue;
			char row[128], *d = row;
			memcpy(d, win, winlen);
			d = put_int(d + winlen, m->ents[i].key);
			*d++ = ',';
			d = put_int(d, max);
			*d++ = '\n';
			out_put(q->o, row, (size_t)(d - row));
			q->o->rows++;
		}
		ctab_clear(m);
	}
	pane *first = &q->ring[(uint64_t)s & q->mask];
	if (first->tab.n && first->idx == s) {
		ctab_clear(&first->tab);
		q->live--;
	}
}

/* Fires the windows s < below whose end - 1 <= wm. */
static void q5_fire_until(q5 *q, int64_t wm, int64_t below)
{
	while (q->c.next < below && window_due(&q->c, q->c.next, wm)) {
		if (!q->live) { /* nothing to fire: skip to the first window still open */
			int64_t open = first_open(&q->c, wm);
			q->c.next = open < below ? open : below;
			return;
		}
		q5_fire(q, q->c.next++);
	}
}

static void q5_add(q5 *q, const bid *b)
{
	wclock *c = &q->c;
	int64_t u = floor_div(b->ts, c->unit);
	/* as Flink's slicing window: dropped when the last window holding the pane, the one
	 * starting at it, has fired; else it counts in the windows still open */
	if (window_due(c, u, c->wm)) {
		c->late++;
		return;
	}
	if (unit_fired(c, u))
		c->partly++;
	int64_t wm = b->ts - c->ooo > c->wm ? b->ts - c->ooo : c->wm;
	if (!c->started) { /* the windows of every unit this watermark leaves on time */
		c->next = first_open(c, wm);
		c->started = true;
	}
	/* windows that end by the new watermark and do not hold this bid fire first, so the
	 * ring spans at most ooo / unit + k + 2 units when the bid goes in */
	q5_fire_until(q, wm, u - (c->k - 1));
	pane *p = &q->ring[(uint64_t)u & q->mask];
	if (!p->tab.n) {
		p->idx = u;
		q->live++;
	} else if (p->idx != u) {
		die("internal error: q5 pane ring overflow at %s", b->dt);
	}
	ctab_add(&p->tab, b->auction, 1);
	c->wm = wm;
	q5_fire_until(q, wm, INT64_MAX);
}

static void q5_finish(q5 *q)
{
	while (q->live)
		q5_fire(q, q->c.next++);
}

/* ---- q7: per 10 s window the highest price and the bids that have it ---- */

typedef struct bref {
	const char *line; /* the bid's line in the mapped file, parsed again to write it */
	int64_t price;
} bref;

typedef struct bvec {
	bref *v;
	uint32_t n, cap;
} bvec;

static inline void bvec_push(bvec *a, const char *line, int64_t price)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n++] = (bref){line, price};
}

typedef struct twin {
	int64_t idx;    /* which window, valid while live */
	uint64_t nbids; /* bids counted into max */
	int64_t max;
	bvec best;     /* bids with price == max */
	bvec boundary; /* bids stamped exactly at the window's end, come before it fired */
} twin;

typedef struct fired {
	int64_t idx, max;
} fired;

typedef struct q7 {
	wclock c;
	twin *ring;
	uint32_t mask;
	uint32_t live;
	fired *done; /* the windows fired with a maximum, in increasing idx */
	size_t ndone, done_cap;
	reader again; /* parses stored lines again */
	out *o;
	bool with_window;
} q7;

static bool twin_live(const twin *w)
{
	return w->nbids || w->boundary.n;
}

static void q7_emit(q7 *q, const char *line, int64_t w)
{
	bid b;
	q->again.p = line;
	q->again.line = 0;
	next_bid(&q->again, &b);
	char win[64];
	size_t winlen = 0;
	if (q->with_window)
		winlen = fmt_window(win, w * q->c.unit, (w + 1) * q->c.unit);
	put_bid_row(q->o, &b, win, winlen);
}

/* The maximum of fired window w, or false when it had no bids. */
static bool q7_fired_max(const q7 *q, int64_t w, int64_t *max)
{
	size_t lo = 0, hi = q->ndone;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (q->done[mid].idx < w)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < q->ndone && q->done[lo].idx == w) {
		*max = q->done[lo].max;
		return true;
	}
	return false;
}

static void q7_fire(q7 *q, int64_t w)
{
	twin *t = &q->ring[(uint64_t)w & q->mask];
	if (!twin_live(t) || t->idx != w)
		return;
	if (t->nbids) {
		for (uint32_t i = 0; i < t->best.n; i++)
			q7_emit(q, t->best.v[i].line, w);
		for (uint32_t i = 0; i < t->boundary.n; i++)
			if (t->boundary.v[i].price == t->max)
				q7_emit(q, t->boundary.v[i].line, w);
		if (q->ndone == q->done_cap) {
			q->done_cap = q->done_cap ? q->done_cap * 2 : 256;
			q->done = xrealloc(q->done, q->done_cap * sizeof(*q->done));
		}
		q->done[q->ndone++] = (fired){w, t->max};
	}
	t->nbids = 0;
	t->best.n = 0;
	t->boundary.n = 0;
	q->live--;
}

static void q7_fire_until(q7 *q, int64_t wm, int64_t below)
{
	while (q->c.next < below && window_due(&q->c, q->c.next, wm)) {
		if (!q->live) {
			int64_t open = first_open(&q->c, wm);
			q->c.next = open < below ? open : below;
			return;
		}
		q7_fire(q, q->c.next++);
	}
}

static twin *q7_slot(q7 *q, int64_t w, const bid *b)
{
	twin *t = &q->ring[(uint64_t)w & q->mask];
	if (!twin_live(t)) {
		t->idx = w;
		q->live++;
	} else if (t->idx != w) {
		die("internal error: q7 window ring overflow at %s", b->dt);
	}
	return t;
}

static void q7_add(q7 *q, const bid *b, const char *line)
{
	wclock *c = &q->c;
	int64_t w = floor_div(b->ts, c->unit);
	bool boundary = b->ts == w * c->unit; /* also in [start, end] of window w - 1 */
	int64_t max;
	if (unit_fired(c, w)) {
		/* late: out of the window's maximum (Flink's window aggregate drops it), but the
		 * regular join still matches it with the fired maxima */
		c->late++;
		if (q7_fired_max(q, w, &max) && b->price == max)
			q7_emit(q, line, w);
		if (boundary && q7_fired_max(q, w - 1, &max) && b->price == max)
			q7_emit(q, line, w - 1);
		return;
	}
	int64_t wm = b->ts - c->ooo > c->wm ? b->ts - c->ooo : c->wm;
	if (!c->started) {
		c->next = first_open(c, wm);
		c->started = true;
	}
	q7_fire_until(q, wm, w);
	if (boundary) {
		if (w - 1 < c->next) { /* fired (or never held a bid) */
			if (q7_fired_max(q, w - 1, &max) && b->price == max)
				q7_emit(q, line, w - 1);
		} else {
			bvec_push(&q7_slot(q, w - 1, b)->boundary, line, b->price);
		}
	}
	twin *t = q7_slot(q, w, b);
	if (!t->nbids || b->price > t->max) {
		t->max = b->price;
		t->best.n = 0;
	}
	if (b->price == t->max)
		bvec_push(&t->best, line, b->price);
	t->nbids++;
	c->wm = wm;
	q7_fire_until(q, wm, INT64_MAX);
}

static void q7_finish(q7 *q)
{
	while (q->live)
		q7_fire(q, q->c.next++);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	const char *query = NULL, *outpath = NULL;
	long long events = -1, ooo = 4000;
	bool with_window = false;
	int opt;
	char *endp;
	while ((opt = getopt(argc, argv, "q:o:e:l:W")) != -1) {
		switch (opt) {
		case 'q': query = optarg; break;
		case 'o': outpath = optarg; break;
		case 'e':
			events = strtoll(optarg, &endp, 10);
			if (*optarg == '\0' || *endp || events < 0) {
				fprintf(stderr, "%s: -e %s: expected a number of events\n", prog,
				        optarg);
				return 2;
			}
			break;
		case 'l':
			ooo = strtoll(optarg, &endp, 10);
			if (*optarg == '\0' || *endp || ooo < 0 || ooo > 86400000) {
				fprintf(stderr, "%s: -l %s: expected ms from 0 to 86400000\n", prog,
				        optarg);
				return 2;
			}
			break;
		case 'W': with_window = true; break;
		default: goto usage;
		}
	}
	if (optind != argc - 1 || !query)
		goto usage;
	int qn = !strcmp(query, "q0")   ? 0
	         : !strcmp(query, "q5") ? 5
	         : !strcmp(query, "q7") ? 7
	                                : -1;
	if (qn < 0) {
		fprintf(stderr, "%s: -q %s: expected q0, q5 or q7\n", prog, query);
		return 2;
	}
	const char *path = argv[optind];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("%s: fstat: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		die("%s: not a regular file", path);
	const char *data = NULL;
	if (st.st_size > 0) {
		data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (data == MAP_FAILED)
			die("%s: mmap: %s", path, strerror(errno));
		madvise((void *)data, (size_t)st.st_size, MADV_SEQUENTIAL);
	}
	reader r = {.path = path, .p = data, .end = data + st.st_size};

	out o = {.fd = 1, .path = "stdout"};
	if (outpath) {
		o.fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o.fd < 0)
			die("%s: %s", outpath, strerror(errno));
		o.path = outpath;
	}
	o.buf = xrealloc(NULL, OUT_CAP);

	static const char *const headers[] = {
	    [0] = "auction,bidder,price,dateTime,extra\n",
	    [5] = "auction,num\n",
	    [7] = "auction,bidder,price,dateTime,extra\n",
	};
	if (with_window && qn != 0)
		out_put(&o, "window_start,window_end,", 24);
	out_put(&o, headers[qn], strlen(headers[qn]));

	uint64_t nbids = 0, late = 0, partly = 0;
	bid b;
	if (qn == 0) {
		while (next_bid(&r, &b)) {
			put_bid_row(&o, &b, "", 0);
			nbids++;
		}
	} else if (qn == 5) {
		q5 q = {.c = {.unit = Q5_SLIDE_MS,
		              .k = Q5_SIZE_MS / Q5_SLIDE_MS,
		              .ooo = ooo,
		              .wm = INT64_MIN},
		        .o = &o,
		        .with_window = with_window};
		uint32_t n = ring_size(&q.c);
		q.ring = calloc(n, sizeof(*q.ring));
		if (!q.ring)
			die("out of memory");
		q.mask = n - 1;
		for (uint32_t i = 0; i < n; i++)
			ctab_init(&q.ring[i].tab, 16); /* grows with its auctions */
		ctab_init(&q.merged, 16);
		while (next_bid(&r, &b)) {
			q5_add(&q, &b);
			nbids++;
		}
		q5_finish(&q);
		late = q.c.late;
		partly = q.c.partly;
		for (uint32_t i = 0; i < n; i++) {
			free(q.ring[i].tab.slots);
			free(q.ring[i].tab.ents);
		}
		free(q.ring);
		free(q.merged.slots);
		free(q.merged.ents);
	} else {
		q7 q = {.c = {.unit = Q7_SIZE_MS, .k = 1, .ooo = ooo, .wm = INT64_MIN},
		        .again = {.path = path, .end = r.end},
		        .o = &o,
		        .with_window = with_window};
		uint32_t n = ring_size(&q.c);
		q.ring = calloc(n, sizeof(*q.ring));
		if (!q.ring)
			die("out of memory");
		q.mask = n - 1;
		const char *line = r.p;
		while (next_bid(&r, &b)) {
			q7_add(&q, &b, line);
			line = r.p;
			nbids++;
		}
		q7_finish(&q);
		late = q.c.late;
		for (uint32_t i = 0; i < n; i++) {
			free(q.ring[i].best.v);
			free(q.ring[i].boundary.v);
		}
		free(q.ring);
		free(q.done);
	}
	out_flush(&o);
	if (outpath && close(o.fd) != 0)
		die("%s: close: %s", outpath, strerror(errno));
	free(o.buf);
	if (data)
		munmap((void *)data, (size_t)st.st_size);
	close(fd);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	uint64_t counted = events >= 0 ? (uint64_t)events : nbids;
	fprintf(
	    stderr,
	    "%s: %s: %llu bids (%llu events), %llu rows, %llu late, %llu partly late in %.3f s: "
	    "%.0f events/s\n",
	    prog, query, (unsigned long long)nbids, (unsigned long long)counted,
	    (unsigned long long)o.rows, (unsigned long long)late, (unsigned long long)partly, secs,
	    secs > 0 ? (double)counted / secs : 0.0);
	return 0;
usage:
	fprintf(stderr, "usage: %s -q q0|q5|q7 [-o OUT.csv] [-e EVENTS] [-l MS] [-W] BIDS.csv\n",
	        prog);
	return 2;
}
