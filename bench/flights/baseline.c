/*
 * The flights-hourly job (examples/flights_hourly.yaml) as a hand-written single-threaded C loop:
 * the lower bound on cost that eddy is measured against ("Scalability! But at what COST?",
 * McSherry et al., HotOS 2015). Plain C, no SIMD, no threads, but not a straw man: the file is
 * mapped once, each line is parsed in one pass, and the aggregates live in one open-addressing
 * hash table.
 *
 * Usage: bench_flights_baseline [-o OUT.csv] FILE.csv
 *   FILE.csv  plain (not gzipped) CSV with the header date,delay,distance,origin,destination;
 *             date is 'YYYY-MM-DD HH:MM:SS' (UTC), fields are not quoted.
 *   -o        where to write the result (default: stdout):
 *             window_start,window_end,origin,flights,avg_delay,max_delay
 * Tumbling 1 h windows aligned to the epoch, keyed by origin: count, avg(delay), max(delay).
 * Prints "baseline: N records, M windows in X s" on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define MAX_ORIGIN 15

static void die(const char *what, long line)
{
	if (line > 0)
		fprintf(stderr, "bench_flights_baseline: line %ld: %s\n", line, what);
	else
		fprintf(stderr, "bench_flights_baseline: %s: %s\n", what, strerror(errno));
	exit(1);
}

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

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static inline unsigned dig(const char *p, long line)
{
	unsigned v = (unsigned)(*p - '0');
	if (v > 9)
		die("bad timestamp", line);
	return v;
}

static inline unsigned two(const char *p, long line)
{
	return dig(p, line) * 10 + dig(p + 1, line);
}

/* ---- origins: interned to small ids, so the window table's key is two integers ---- */

typedef struct origin {
	char name[MAX_ORIGIN + 1];
	uint32_t len;
} origin;

static origin *origins;
static uint32_t norigins, origins_cap;
static int32_t *oslots; /* open addressing, -1 = empty */
static uint32_t oslots_mask;

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

static void oslots_build(uint32_t nslots)
{
	free(oslots);
	oslots = malloc(nslots * sizeof(*oslots));
	if (!oslots)
		die("malloc", 0);
	memset(oslots, 0xff, nslots * sizeof(*oslots));
	oslots_mask = nslots - 1;
	for (uint32_t i = 0; i < norigins; i++) {
		uint32_t s = (uint32_t)hash_bytes(origins[i].name, origins[i].len) & oslots_mask;
		while (oslots[s] >= 0)
			s = (s + 1) & oslots_mask;
		oslots[s] = (int32_t)i;
	}
}

static uint32_t origin_id(const char *s, size_t n, long line)
{
	if (n == 0 || n > MAX_ORIGIN)
		die("bad origin", line);
	uint32_t slot = (uint32_t)hash_bytes(s, n) & oslots_mask;
	for (;;) {
		int32_t i = oslots[slot];
		if (i < 0)
			break;
		if (origins[i].len == n && memcmp(origins[i].name, s, n) == 0)
			return (uint32_t)i;
		slot = (slot + 1) & oslots_mask;
	}
	if (norigins == origins_cap) {
		origins_cap = origins_cap ? origins_cap * 2 : 256;
		origins = realloc(origins, origins_cap * sizeof(*origins));
		if (!origins)
			die("realloc", 0);
	}
	origin *o = &origins[norigins];
	memcpy(o->name, s, n);
	o->name[n] = 0;
	o->len = (uint32_t)n;
	oslots[slot] = (int32_t)norigins;
	if (++norigins * 2 > oslots_mask + 1)
		oslots_build((oslots_mask + 1) * 2);
	return norigins - 1;
}

/* ---- windows: (hour, origin id) -> count, sum, max; entries kept in first-seen order ---- */

typedef struct agg {
	int64_t hour; /* window start / 1 h */
	uint32_t origin;
	uint32_t count;
	int64_t sum;
	int64_t max;
} agg;

static agg *aggs;
static uint32_t naggs, aggs_cap;
static uint32_t *wslots; /* index + 1 into aggs, 0 = empty */
static uint32_t wslots_mask;

static inline uint32_t wslot_of(int64_t hour, uint32_t o)
{
	uint64_t k = ((uint64_t)hour << 20) ^ o;
	k *= 0x9e3779b97f4a7c15ULL;
	return (uint32_t)(k >> 32) & wslots_mask;
}

static void wslots_build(uint32_t nslots)
{
	free(wslots);
	wslots = calloc(nslots, sizeof(*wslots));
	if (!wslots)
		die("calloc", 0);
	wslots_mask = nslots - 1;
	for (uint32_t i = 0; i < naggs; i++) {
		uint32_t s = wslot_of(aggs[i].hour, aggs[i].origin);
		while (wslots[s])
			s = (s + 1) & wslots_mask;
		wslots[s] = i + 1;
	}
}

static inline void add(int64_t hour, uint32_t o, int64_t delay)
{
	uint32_t s = wslot_of(hour, o);
	for (;;) {
		uint32_t i = wslots[s];
		if (!i)
			break;
		agg *a = &aggs[i - 1];
		if (a->hour == hour && a->origin == o) {
			a->count++;
			a->sum += delay;
			if (delay > a->max)
				a->max = delay;
			return;
		}
		s = (s + 1) & wslots_mask;
	}
	if (naggs == aggs_cap) {
		aggs_cap = aggs_cap ? aggs_cap * 2 : 1 << 16;
		aggs = realloc(aggs, aggs_cap * sizeof(*aggs));
		if (!aggs)
			die("realloc", 0);
	}
	aggs[naggs] = (agg){ .hour = hour, .origin = o, .count = 1, .sum = delay, .max = delay };
	wslots[s] = ++naggs;
	if ((uint64_t)naggs * 2 > (uint64_t)wslots_mask + 1)
		wslots_build((wslots_mask + 1) * 2);
}

/* ---- input ---- */

static void run(const char *p, const char *end)
{
	long line = 1;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl || strncmp(p, "date,delay,distance,origin,destination", 38) != 0)
		die("expected the header date,delay,distance,origin,destination", line);
	p = nl + 1;
	char last_date[10] = { 0 };
	int64_t day_ms = 0;
	while (p < end) {
		line++;
		if (end - p < 27) /* shortest line: date(19),d,d,o,o with no newline */
			die("short line", line);
		/* date: YYYY-MM-DD HH:MM:SS; the day changes rarely, so cache it */
		if (memcmp(p, last_date, 10) != 0) {
			if (p[4] != '-' || p[7] != '-' || p[10] != ' ')
				die("bad timestamp", line);
			unsigned y = two(p, line) * 100 + two(p + 2, line);
			day_ms = days_from_civil(y, two(p + 5, line), two(p + 8, line)) * DAY_MS;
			memcpy(last_date, p, 10);
		}
		if (p[13] != ':' || p[16] != ':' || p[19] != ',')
			die("bad timestamp", line);
		int64_t ts = day_ms + (int64_t)two(p + 11, line) * HOUR_MS +
		             (int64_t)two(p + 14, line) * 60000 + (int64_t)two(p + 17, line) * 1000;
		p += 20;
		/* delay: signed int */
		int neg = *p == '-';
		p += neg;
		int64_t delay = 0;
		unsigned v = (unsigned)(*p - '0');
		if (v > 9)
			die("bad delay", line);
		do {
			delay = delay * 10 + v;
			v = ++p < end ? (unsigned)(*p - '0') : 10;
		} while (v <= 9);
		if (p >= end || *p++ != ',')
			die("bad delay", line);
		if (neg)
			delay = -delay;
		/* distance: skipped */
		while (p < end && *p != ',')
			p++;
		p++;
		/* origin */
		const char *o = p;
		while (p < end && *p != ',')
			p++;
		if (p >= end)
			die("missing destination", line);
		uint32_t oid = origin_id(o, (size_t)(p - o), line);
		/* destination: skipped */
		nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
		int64_t hour = ts >= 0 ? ts / HOUR_MS : -((-ts + HOUR_MS - 1) / HOUR_MS);
		add(hour, oid, delay);
	}
}

/* ---- output ---- */

static char *fmt_ts(char *b, int64_t ms)
{
	int64_t days = ms >= 0 ? ms / DAY_MS : -((-ms + DAY_MS - 1) / DAY_MS);
	int64_t s = (ms - days * DAY_MS) / 1000;
	int y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	b += sprintf(b, "%04d-%02u-%02u %02u:%02u:%02u", y, m, d, (unsigned)(s / 3600),
	             (unsigned)(s / 60 % 60), (unsigned)(s % 60));
	return b;
}

static char *fmt_int(char *b, int64_t v)
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

/* Shortest of %.15g..%.17g that reads back as the same double, with ".0" when integral. */
static char *fmt_double(char *b, double x)
{
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(b, 32, "%.*g", prec, x);
		if (strtod(b, NULL) == x)
			break;
	}
	if (!strpbrk(b, ".eEn")) {
		memcpy(b + n, ".0", 3);
		n += 2;
	}
	return b + n;
}

static void emit(FILE *f)
{
	size_t cap = 1 << 20, used = 0;
	char *buf = malloc(cap);
	if (!buf)
		die("malloc", 0);
	used = (size_t)sprintf(buf, "window_start,window_end,origin,flights,avg_delay,max_delay\n");
	int64_t last_hour = INT64_MIN;
	char start[24], stop[24];
	for (uint32_t i = 0; i < naggs; i++) {
		const agg *a = &aggs[i];
		if (cap - used < 128) {
			if (fwrite(buf, 1, used, f) != used)
				die("write", 0);
			used = 0;
		}
		if (a->hour != last_hour) {
			fmt_ts(start, a->hour * HOUR_MS);
			fmt_ts(stop, (a->hour + 1) * HOUR_MS);
			last_hour = a->hour;
		}
		char *b = buf + used;
		memcpy(b, start, 19);
		b[19] = ',';
		memcpy(b + 20, stop, 19);
		b[39] = ',';
		b += 40;
		memcpy(b, origins[a->origin].name, origins[a->origin].len);
		b += origins[a->origin].len;
		*b++ = ',';
		b = fmt_int(b, a->count);
		*b++ = ',';
		b = fmt_double(b, (double)a->sum / a->count);
		*b++ = ',';
		b = fmt_int(b, a->max);
		*b++ = '\n';
		used = (size_t)(b - buf);
	}
	if (fwrite(buf, 1, used, f) != used || fflush(f) != 0)
		die("write", 0);
	free(buf);
}

int main(int argc, char **argv)
{
	const char *out = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "o:")) != -1) {
		if (opt != 'o')
			goto usage;
		out = optarg;
	}
	if (optind != argc - 1)
		goto usage;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	int fd = open(argv[optind], O_RDONLY);
	if (fd < 0)
		die(argv[optind], 0);
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("fstat", 0);
	if (st.st_size == 0)
		die("empty input", 1);
	const char *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (data == MAP_FAILED)
		die("mmap", 0);
	madvise((void *)data, (size_t)st.st_size, MADV_SEQUENTIAL);

	oslots_build(512);
	wslots_build(1 << 17);
	run(data, data + st.st_size);

	FILE *f = out ? fopen(out, "w") : stdout;
	if (!f)
		die(out, 0);
	emit(f);
	if (out && fclose(f) != 0)
		die(out, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	uint64_t records = 0;
	for (uint32_t i = 0; i < naggs; i++)
		records += aggs[i].count;
	fprintf(stderr, "baseline: %llu records, %u windows in %.3f s\n",
	        (unsigned long long)records, naggs,
	        (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	munmap((void *)data, (size_t)st.st_size);
	close(fd);
	return 0;
usage:
	fprintf(stderr, "usage: bench_flights_baseline [-o OUT.csv] FILE.csv\n");
	return 2;
}
