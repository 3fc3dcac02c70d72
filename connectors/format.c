/* Record formats: CSV and JSON lines into batches and back (connectors/format.h). */
#include "format.h"

#include "../runtime/alloc.h"

#include <assert.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool fmt_kind_parse(const char *name, fmt_kind *out)
{
	if (name == NULL)
		return false;
	if (strcmp(name, "csv") == 0) {
		*out = FMT_CSV;
		return true;
	}
	if (strcmp(name, "jsonl") == 0) {
		*out = FMT_JSONL;
		return true;
	}
	return false;
}

/* ---- errors ---- */

__attribute__((format(printf, 4, 5))) static void set_err(fmt_error *err, int64_t line,
                                                          int64_t col, const char *fmt, ...)
{
	err->line = line;
	err->col = col;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* show copies a value for a message into buf (>= 64 bytes): at most 48 bytes, control
 * bytes as '?', "..." when cut. */
static const char *show(char *buf, const char *p, size_t len)
{
	size_t n = len > 48 ? 48 : len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n < len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* show_char writes c for a message: itself when printable, else an escape. */
static const char *show_char(char *buf, unsigned char c)
{
	if (c == '\r')
		return "\\r";
	if (c == '\t')
		return "\\t";
	if (c < 0x20 || c >= 0x7f)
		snprintf(buf, 8, "\\x%02x", c);
	else
		snprintf(buf, 8, "%c", c);
	return buf;
}

/* pos_in finds the line and column of at, in a record starting at rec on line line0. */
static void pos_in(const char *rec, int64_t line0, const char *at, int64_t *line, int64_t *col)
{
	const char *ls = rec;
	int64_t l = line0;
	for (const char *q = rec; q < at && (q = memchr(q, '\n', (size_t)(at - q))) != NULL; q++) {
		l++;
		ls = q + 1;
	}
	*line = l;
	*col = at - ls + 1;
}

enum { CONV_OK, CONV_BAD, CONV_RANGE };

static const char *const type_article[] = { "null", "an int", "a float", "a bool", "a string",
	                                    "a timestamp" };

/* conv_err reports a field whose text p[0..len) failed to convert (rc: CONV_BAD or
 * CONV_RANGE). */
static void conv_err(fmt_error *err, int64_t line, int64_t col, const ev_field *f, const char *p,
                     size_t len, int rc)
{
	char v[64];
	if (rc == CONV_RANGE) {
		set_err(err, line, col, "field '%s': '%s' is out of range for %s", f->name,
		        show(v, p, len), ev_type_name(f->type));
		return;
	}
	const char *hint = "";
	if (f->type == EV_BOOL)
		hint = " (expected true, false, 1 or 0)";
	else if (f->type == EV_TIMESTAMP)
		hint = " (expected YYYY-MM-DD HH:MM:SS, ISO 8601 or epoch ms)";
	set_err(err, line, col, "field '%s': '%s' is not %s%s", f->name, show(v, p, len),
	        type_article[f->type], hint);
}

/* ---- scalar conversions (shared by CSV and JSON) ---- */

/* parse_i64: optional sign, then decimal digits only. */
static int parse_i64(const char *p, size_t len, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (len > 0 && (p[0] == '-' || p[0] == '+')) {
		neg = p[0] == '-';
		i = 1;
	}
	if (i == len)
		return CONV_BAD;
	uint64_t v = 0;
	if (len - i <= 18) { /* cannot overflow */
		for (; i < len; i++) {
			unsigned d = (unsigned)((unsigned char)p[i] - '0');
			if (d > 9)
				return CONV_BAD;
			v = v * 10 + d;
		}
	} else {
		bool over = false;
		for (; i < len; i++) {
			unsigned d = (unsigned)((unsigned char)p[i] - '0');
			if (d > 9)
				return CONV_BAD;
			if (v > (UINT64_MAX - d) / 10)
				over = true;
			else
				v = v * 10 + d;
		}
		if (over || v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
			return CONV_RANGE;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return CONV_OK;
}

/* parse_f64: a finite decimal number (digits, '.', 'e', signs) that strtod reads whole,
 * from a NUL-terminated copy on the stack. */
static int parse_f64(const char *p, size_t len, double *out)
{
	char buf[512];
	if (len == 0 || len >= sizeof(buf))
		return CONV_BAD;
	bool digit = false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (c >= '0' && c <= '9')
			digit = true;
		else if (c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-')
			return CONV_BAD;
	}
	if (!digit)
		return CONV_BAD;
	memcpy(buf, p, len);
	buf[len] = '\0';
	char *e;
	double v = strtod(buf, &e);
	if (e != buf + len)
		return CONV_BAD;
	if (!isfinite(v))
		return CONV_RANGE;
	*out = v;
	return CONV_OK;
}

static bool eq_nocase(const char *p, const char *lower, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lower[i])
			return false;
	}
	return true;
}

static int parse_bool(const char *p, size_t len, bool *out)
{
	if (len == 1 && (p[0] == '0' || p[0] == '1')) {
		*out = p[0] == '1';
		return CONV_OK;
	}
	if (len == 4 && eq_nocase(p, "true", 4)) {
		*out = true;
		return CONV_OK;
	}
	if (len == 5 && eq_nocase(p, "false", 5)) {
		*out = false;
		return CONV_OK;
	}
	return CONV_BAD;
}

/* conv_text converts the text p[0..len) (non-empty) to type t into field c of record r. */
static int conv_text(ev_batch *b, uint32_t r, uint32_t c, ev_type t, const char *p, size_t len)
{
	int rc;
	switch (t) {
	case EV_INT: {
		int64_t v;
		if ((rc = parse_i64(p, len, &v)) == CONV_OK)
			batch_set_int(b, r, c, v);
		return rc;
	}
	case EV_FLOAT: {
		double v;
		if ((rc = parse_f64(p, len, &v)) == CONV_OK)
			batch_set_float(b, r, c, v);
		return rc;
	}
	case EV_BOOL: {
		bool v;
		if ((rc = parse_bool(p, len, &v)) == CONV_OK)
			batch_set_bool(b, r, c, v);
		return rc;
	}
	case EV_TIMESTAMP: {
		int64_t ms;
		if (!ev_ts_parse(p, len, &ms))
			return CONV_BAD;
		batch_set_int(b, r, c, ms);
		return CONV_OK;
	}
	default:
		return CONV_BAD;
	}
}

/* set_str copies p[0..len) into the arena as field c (as batch_set_str, inline while
 * the arena has room); errors as fmt_parse_next. */
static inline eddy_err set_str(ev_batch *b, uint32_t r, uint32_t c, const char *p, size_t len)
{
	if (b->arena != NULL && len <= b->arena_cap - b->arena_len && len < UINT32_MAX) {
		memcpy(b->arena + b->arena_len, p, len);
		*batch_slot(b, r, c) = ((uint64_t)b->arena_len << 32) | (uint32_t)len;
		b->arena_len += len;
		b->nulls[r] &= ~((uint64_t)1 << c);
		return EDDY_OK;
	}
	eddy_err e = batch_set_str(b, r, c, p, len);
	return e == EDDY_EINVAL ? EDDY_EFULL : e;
}

/* shrink_str sets string field c, whose bytes are the last in the arena starting at off,
 * to its first n bytes. */
static void shrink_str(ev_batch *b, uint32_t r, uint32_t c, size_t off, size_t n)
{
	*batch_slot(b, r, c) = ((uint64_t)off << 32) | (uint32_t)n;
	b->arena_len = off + n;
}

/* ---- CSV ---- */

/* csv_skip_blank moves cur past blank lines ("\n", "\r\n", or a last "\r"). */
static void csv_skip_blank(fmt_cursor *cur)
{
	const char *p = cur->p, *end = cur->end;
	while (p < end) {
		if (*p == '\r' && p + 1 == end) {
			p++;
			break;
		}
		if (*p == '\n')
			p++;
		else if (*p == '\r' && p[1] == '\n')
			p += 2;
		else
			break;
		cur->line++;
	}
	cur->p = p;
}

const char *fmt_csv_end(const char *p, const char *end, int64_t *nls)
{
	bool field_start = true, in = false;
	int64_t n = 0;
	*nls = 0;
	for (const char *s = p; s < end; s++) {
		char c = *s;
		if (in) {
			if (c == '"') {
				if (s + 1 == end)
					return NULL; /* "" or a closing quote: undecidable yet */
				if (s[1] == '"')
					s++;
				else
					in = false;
			} else if (c == '\n') {
				n++;
			}
		} else if (c == '"' && field_start) {
			in = true;
			field_start = false;
		} else if (c == ',') {
			field_start = true;
		} else if (c == '\n') {
			*nls = n;
			return s;
		} else {
			field_start = false; /* a stray quote here is data (and an error) */
		}
	}
	*nls = n;
	return NULL;
}

/* csv_extent returns the end of the record at p: its '\n' or end, by fmt_csv_end's rule.
 * *nls counts the '\n' inside it. */
static const char *csv_extent(const char *p, const char *end, int64_t *nls)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *e = nl ? nl : end;
	*nls = 0;
	if (memchr(p, '"', (size_t)(e - p)) == NULL)
		return e;
	const char *r = fmt_csv_end(p, end, nls);
	return r ? r : end;
}

typedef struct csv_field {
	const char *p; /* content: inside the quotes when quoted */
	size_t len;    /* bytes of content, "" pairs counted as 2 */
	bool quoted;
	bool esc; /* holds "" pairs */
} csv_field;

enum { SPLIT_OK, SPLIT_UNTERMINATED, SPLIT_AFTER_QUOTE, SPLIT_STRAY_QUOTE };

/* csv_fast splits the record at p when it is the common kind: it ends at the first '\n'
 * (or end) and holds no '"' and no NUL byte. Then it stores the first max fields in f
 * (the last without a "\r" before the '\n'), counts all in *nf, sets *re to the '\n' (or
 * end) and returns true; otherwise false, having stored nothing that counts. It looks at
 * 32 bytes at a time with AVX2 where the CPU has it (csv_fast_avx2), else 16 (SSE2). */

/* csv_commas stores the fields ended by the commas of mask mc (bit i: s[i] is a comma)
 * and moves the field start fs past the last. */
static inline void csv_commas(const char *s, uint32_t mc, csv_field *f, uint32_t max, uint32_t *n,
                              const char **fs)
{
	while (mc) {
		const char *q = s + __builtin_ctz(mc);
		if (*n < max)
			f[*n] = (csv_field){*fs, (size_t)(q - *fs), false, false};
		(*n)++;
		*fs = q + 1;
		mc &= mc - 1;
	}
}

/* csv_fast_end is csv_fast from s on, bytes one by one (the vector loops' rest), with n
 * fields so far and the current one starting at fs. */
static inline bool csv_fast_end(const char *s, const char *end, const char *fs, uint32_t n,
                                csv_field *f, uint32_t max, uint32_t *nf, const char **re)
{
	for (; s < end; s++) {
		char c = *s;
		if (c == ',') {
			if (n < max)
				f[n] = (csv_field){ fs, (size_t)(s - fs), false, false };
			n++;
			fs = s + 1;
		} else if (c == '\n') {
			break;
		} else if (c == '"' || c == '\0') {
			return false;
		}
	}
	*re = s;
	if (s > fs && s[-1] == '\r')
		s--;
	if (n < max)
		f[n] = (csv_field){ fs, (size_t)(s - fs), false, false };
	*nf = n + 1;
	return true;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx2"))) static bool csv_fast_avx2(const char *p, const char *end,
                                                          csv_field *f, uint32_t max, uint32_t *nf,
                                                          const char **re)
{
	uint32_t n = 0;
	const char *fs = p, *s = p;
	const __m256i comma = _mm256_set1_epi8(','), nl = _mm256_set1_epi8('\n');
	const __m256i quote = _mm256_set1_epi8('"'), zero = _mm256_setzero_si256();
	while (end - s >= 32) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)s);
		uint32_t mc = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, comma));
		__m256i sp = _mm256_or_si256(_mm256_cmpeq_epi8(v, nl), _mm256_cmpeq_epi8(v, quote));
		sp = _mm256_or_si256(sp, _mm256_cmpeq_epi8(v, zero));
		uint32_t ms = (uint32_t)_mm256_movemask_epi8(sp);
		if (ms) {
			unsigned stop = (unsigned)__builtin_ctz(ms);
			csv_commas(s, mc & ((1u << stop) - 1), f, max, &n, &fs);
			if (s[stop] != '\n')
				return false;
			return csv_fast_end(s + stop, end, fs, n, f, max, nf, re);
		}
		csv_commas(s, mc, f, max, &n, &fs);
		s += 32;
	}
	return csv_fast_end(s, end, fs, n, f, max, nf, re);
}

static int avx2_state = -1; /* -1: not asked yet; racy but idempotent */

static bool have_avx2(void)
{
	if (avx2_state < 0)
		avx2_state = __builtin_cpu_supports("avx2") ? 1 : 0;
	return avx2_state;
}
#endif

void fmt_csv_vectors(bool wide)
{
#if defined(__x86_64__) && defined(__GNUC__)
	avx2_state = wide && __builtin_cpu_supports("avx2") ? 1 : 0;
#else
	(void)wide;
#endif
}

static bool csv_fast(const char *p, const char *end, csv_field *f, uint32_t max, uint32_t *nf,
                     const char **re)
{
#if defined(__x86_64__) && defined(__GNUC__)
	if (have_avx2())
		return csv_fast_avx2(p, end, f, max, nf, re);
#endif
	uint32_t n = 0;
	const char *fs = p, *s = p;
#ifdef __SSE2__
	const __m128i comma = _mm_set1_epi8(','), nl = _mm_set1_epi8('\n');
	const __m128i quote = _mm_set1_epi8('"'), zero = _mm_setzero_si128();
	while (end - s >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
		uint32_t mc = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, comma));
		__m128i sp = _mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, quote));
		sp = _mm_or_si128(sp, _mm_cmpeq_epi8(v, zero));
		uint32_t ms = (uint32_t)_mm_movemask_epi8(sp);
		if (ms) {
			unsigned stop = (unsigned)__builtin_ctz(ms);
			csv_commas(s, mc & ((1u << stop) - 1), f, max, &n, &fs);
			if (s[stop] != '\n')
				return false;
			return csv_fast_end(s + stop, end, fs, n, f, max, nf, re);
		}
		csv_commas(s, mc, f, max, &n, &fs);
		s += 16;
	}
#endif
	return csv_fast_end(s, end, fs, n, f, max, nf, re);
}

/* csv_split cuts the record s[0..e) (without its line end) into fields, storing the
 * first max in f and counting all in *nf. On an error *bad is where it is. */
static int csv_split(const char *s, const char *e, csv_field *f, uint32_t max, uint32_t *nf,
                     const char **bad)
{
	uint32_t n = 0;
	for (;;) {
		const char *fs = s;
		if (s < e && *s == '"') {
			const char *q = s + 1;
			bool esc = false;
			for (;;) {
				q = memchr(q, '"', (size_t)(e - q));
				if (q == NULL) {
					*bad = fs;
					return SPLIT_UNTERMINATED;
				}
				if (q + 1 < e && q[1] == '"') {
					esc = true;
					q += 2;
					continue;
				}
				break;
			}
			if (n < max)
				f[n] = (csv_field){ fs + 1, (size_t)(q - fs - 1), true, esc };
			n++;
			s = q + 1;
			if (s == e)
				break;
			if (*s != ',') {
				*bad = s;
				return SPLIT_AFTER_QUOTE;
			}
			s++;
		} else {
			while (s < e && *s != ',' && *s != '"')
				s++;
			if (s < e && *s == '"') {
				*bad = s;
				return SPLIT_STRAY_QUOTE;
			}
			if (n < max)
				f[n] = (csv_field){ fs, (size_t)(s - fs), false, false };
			n++;
			if (s == e)
				break;
			s++;
		}
	}
	*nf = n;
	return SPLIT_OK;
}

/* A CSV record located and split: what parse and header checking share. */
typedef struct csv_rec {
	const char *rec, *end; /* the record without its line end */
	const char *next;      /* past its '\n' */
	int64_t line;          /* where it starts */
	int64_t nls;           /* '\n' inside it */
	int64_t lines;         /* '\n' from rec to next */
	uint32_t nf;           /* fields found */
	csv_field f[EV_MAX_FIELDS];
} csv_rec;

/* csv_rec_err points err at the raw record x. */
static void csv_rec_err(fmt_error *err, const csv_rec *x)
{
	err->rec = x->rec;
	err->rec_len = (size_t)(x->end - x->rec);
	/* an unterminated quote ran to the end: drop a final line end all the same */
	if (err->rec_len > 0 && x->rec[err->rec_len - 1] == '\n')
		err->rec_len -= 1 + (err->rec_len > 1 && x->rec[err->rec_len - 2] == '\r');
}

/* csv_read locates the record at cur (blank lines skipped), checks it for NUL bytes and
 * quoting errors and splits it. EDDY_EEMPTY at the end; EDDY_EINVAL with err filled and
 * cur past the record. cur->p is left at the record otherwise. */
static eddy_err csv_read(fmt_cursor *cur, csv_rec *x, fmt_error *err)
{
	csv_skip_blank(cur);
	const char *p = cur->p, *end = cur->end;
	if (p == end)
		return EDDY_EEMPTY;
	const char *re;
	x->rec = p;
	x->line = cur->line;
	if (csv_fast(p, end, x->f, EV_MAX_FIELDS, &x->nf, &re)) {
		x->end = (re > p && re[-1] == '\r') ? re - 1 : re;
		x->next = re < end ? re + 1 : end;
		x->nls = 0;
		x->lines = re < end;
		return EDDY_OK;
	}
	re = csv_extent(p, end, &x->nls);
	x->end = (re > p && re[-1] == '\r') ? re - 1 : re;
	x->next = re < end ? re + 1 : end;
	x->lines = x->nls + (re < end);
	csv_rec_err(err, x);
	const char *nul = memchr(p, '\0', (size_t)(re - p));
	int64_t line, col;
	if (nul != NULL) {
		pos_in(p, x->line, nul, &line, &col);
		set_err(err, line, col, "NUL byte in record");
		goto bad;
	}
	const char *at = NULL;
	int rc = csv_split(p, x->end, x->f, EV_MAX_FIELDS, &x->nf, &at);
	if (rc == SPLIT_OK)
		return EDDY_OK;
	pos_in(p, x->line, at, &line, &col);
	if (rc == SPLIT_UNTERMINATED) {
		set_err(err, line, col, "unterminated quoted field");
	} else if (rc == SPLIT_AFTER_QUOTE) {
		char c[8];
		set_err(err, line, col, "unexpected '%s' after closing quote",
		        show_char(c, (unsigned char)*at));
	} else {
		set_err(err, line, col, "quote in unquoted field");
	}
bad:
	cur->p = x->next;
	cur->line += x->lines;
	return EDDY_EINVAL;
}

static eddy_err csv_next(const ev_schema *schema, uint64_t live, fmt_cursor *cur, ev_batch *out,
                         fmt_error *err)
{
	csv_rec x;
	eddy_err e = csv_read(cur, &x, err);
	if (e != EDDY_OK)
		return e;
	int64_t line, col;
	if (x.nf != schema->n) {
		if (x.nf > schema->n) { /* at the first extra field */
			const csv_field *f = &x.f[schema->n];
			pos_in(x.rec, x.line, f->quoted ? f->p - 1 : f->p, &line, &col);
		} else { /* just past the end of the record, where the next field would be */
			const char *stop = x.end > x.rec && x.end[-1] == '\r' ? x.end - 1 : x.end;
			pos_in(x.rec, x.line, stop, &line, &col);
		}
		set_err(err, line, col, "expected %u fields, found %u", schema->n, x.nf);
		csv_rec_err(err, &x);
		e = EDDY_EINVAL;
		goto advance;
	}
	if (batch_full(out))
		return EDDY_EFULL; /* cur stays at the record */
	uint32_t r = batch_append_row(out);
	size_t arena0 = out->arena_len;
	for (uint32_t c = 0; c < schema->n; c++) {
		const csv_field *f = &x.f[c];
		ev_type t = schema->fields[c].type;
		if (!(live >> c & 1))
			continue; /* not read by the job: null */
		if (t == EV_STRING) {
			size_t off = out->arena_len;
			if ((e = set_str(out, r, c, f->p, f->len)) != EDDY_OK)
				goto undo;
			if (f->esc) { /* "" to ", in place */
				char *a = out->arena + off;
				size_t j = 0;
				for (size_t i = 0; i < f->len; i++) {
					char ch = a[i];
					a[j++] = ch;
					i += ch == '"';
				}
				shrink_str(out, r, c, off, j);
			}
			continue;
		}
		if (f->len == 0)
			continue; /* null */
		int rc = f->esc ? CONV_BAD : conv_text(out, r, c, t, f->p, f->len);
		if (rc != CONV_OK) {
			pos_in(x.rec, x.line, f->quoted ? f->p - 1 : f->p, &line, &col);
			conv_err(err, line, col, &schema->fields[c], f->p, f->len, rc);
			csv_rec_err(err, &x);
			e = EDDY_EINVAL;
			goto undo;
		}
	}
	cur->p = x.next;
	cur->line += x.lines;
	return EDDY_OK;
undo:
	out->n = r;
	out->arena_len = arena0;
	if (e != EDDY_EINVAL)
		return e; /* cur stays at the record */
advance:
	cur->p = x.next;
	cur->line += x.lines;
	return e;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* field_is_name tells whether CSV field content p[0..len) (esc: with "" pairs) is name. */
static bool field_is_name(const char *p, size_t len, bool esc, const char *name)
{
	size_t j = 0;
	for (size_t i = 0; i < len; i++, j++) {
		if (name[j] == '\0' || name[j] != p[i])
			return false;
		if (esc && p[i] == '"')
			i++;
	}
	return name[j] == '\0';
}

eddy_err fmt_check_header(const ev_schema *schema, fmt_cursor *cur, fmt_error *err)
{
	fmt_error scratch;
	if (err == NULL)
		err = &scratch;
	csv_rec x;
	eddy_err e = csv_read(cur, &x, err);
	if (e != EDDY_OK)
		return e;
	cur->p = x.next;
	cur->line += x.lines;
	csv_rec_err(err, &x);
	if (x.nf != schema->n) {
		set_err(err, x.line, 0, "header has %u field%s, the schema %u", x.nf,
		        x.nf == 1 ? "" : "s", schema->n);
		return EDDY_EINVAL;
	}
	for (uint32_t c = 0; c < schema->n; c++) {
		const char *p = x.f[c].p;
		size_t len = x.f[c].len;
		while (len > 0 && is_blank(*p))
			p++, len--;
		while (len > 0 && is_blank(p[len - 1]))
			len--;
		if (!field_is_name(p, len, x.f[c].esc, schema->fields[c].name)) {
			char v[64];
			int64_t line, col;
			const csv_field *f = &x.f[c];
			pos_in(x.rec, x.line, f->quoted ? f->p - 1 : f->p, &line, &col);
			set_err(err, line, col, "header has '%s' where the schema has '%s'",
			        show(v, p, len), schema->fields[c].name);
			return EDDY_EINVAL;
		}
	}
	return EDDY_OK;
}

/* ---- JSON lines ---- */

typedef struct jctx {
	const char *line; /* start of the line, for columns */
	const char *e;    /* end of the line (its '\n' or the input's end) */
	int64_t lineno;
	fmt_error *err;
	uint64_t live; /* the fields to store (fmt_parse_fields) */
} jctx;

__attribute__((format(printf, 3, 4))) static const char *jfail(jctx *x, const char *at,
                                                               const char *fmt, ...)
{
	x->err->line = x->lineno;
	x->err->col = at - x->line + 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->err->msg, sizeof(x->err->msg), fmt, ap);
	va_end(ap);
	return NULL;
}

static const char *jws(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++;
	return s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* hex4 reads 4 hex digits at s (bounds checked by the caller); -1 if not hex. */
static long hex4(const char *s)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(s[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* jstr_end scans a string whose content starts at s (just past the opening quote),
 * checking escapes; returns its closing quote, or NULL with the error set. *esc tells
 * whether it holds escapes. */
static const char *jstr_end(jctx *x, const char *s, bool *esc)
{
	const char *e = x->e, *open = s - 1;
	*esc = false;
	while (s < e) {
		unsigned char c = (unsigned char)*s;
		if (c == '"')
			return s;
		if (c < 0x20)
			return jfail(x, s, "invalid JSON: control character in string");
		if (c != '\\') {
			s++;
			continue;
		}
		*esc = true;
		if (s + 1 == e)
			break;
		switch (s[1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			s += 2;
			continue;
		case 'u':
			break;
		default: {
			char b[8];
			return jfail(x, s, "invalid JSON: invalid escape '\\%s'",
			             show_char(b, (unsigned char)s[1]));
		}
		}
		long u = e - s >= 6 ? hex4(s + 2) : -1;
		if (u < 0)
			return jfail(x, s, "invalid JSON: invalid \\u escape");
		if (u >= 0xdc00 && u <= 0xdfff)
			return jfail(x, s, "invalid JSON: unpaired surrogate in \\u escape");
		if (u >= 0xd800 && u <= 0xdbff) {
			long lo = e - s >= 12 && s[6] == '\\' && s[7] == 'u' ? hex4(s + 8) : -1;
			if (lo < 0xdc00 || lo > 0xdfff)
				return jfail(x, s,
				             "invalid JSON: unpaired surrogate in \\u escape");
			s += 12;
		} else {
			s += 6;
		}
	}
	return jfail(x, open, "invalid JSON: unterminated string");
}

/* junescape decodes the checked string content src[0..len) into dst (which may be src:
 * the output is never longer and never overtakes the input); returns its length. */
static size_t junescape(char *dst, const char *src, size_t len)
{
	size_t j = 0;
	for (size_t i = 0; i < len;) {
		char c = src[i];
		if (c != '\\') {
			dst[j++] = c;
			i++;
			continue;
		}
		char k = src[i + 1];
		i += 2;
		switch (k) {
		case 'b': dst[j++] = '\b'; continue;
		case 'f': dst[j++] = '\f'; continue;
		case 'n': dst[j++] = '\n'; continue;
		case 'r': dst[j++] = '\r'; continue;
		case 't': dst[j++] = '\t'; continue;
		case 'u': break;
		default: dst[j++] = k; continue;
		}
		unsigned long u = (unsigned long)hex4(src + i);
		i += 4;
		if (u >= 0xd800 && u <= 0xdbff) {
			unsigned long lo = (unsigned long)hex4(src + i + 2);
			i += 6;
			u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (u < 0x80) {
			dst[j++] = (char)u;
		} else if (u < 0x800) {
			dst[j++] = (char)(0xc0 | (u >> 6));
			dst[j++] = (char)(0x80 | (u & 0x3f));
		} else if (u < 0x10000) {
			dst[j++] = (char)(0xe0 | (u >> 12));
			dst[j++] = (char)(0x80 | ((u >> 6) & 0x3f));
			dst[j++] = (char)(0x80 | (u & 0x3f));
		} else {
			dst[j++] = (char)(0xf0 | (u >> 18));
			dst[j++] = (char)(0x80 | ((u >> 12) & 0x3f));
			dst[j++] = (char)(0x80 | ((u >> 6) & 0x3f));
			dst[j++] = (char)(0x80 | (u & 0x3f));
		}
	}
	return j;
}

static bool isdig(char c)
{
	return c >= '0' && c <= '9';
}

/* jnum_end scans a JSON number at s; returns its end or NULL with the error set.
 * *integral: no fraction and no exponent. */
static const char *jnum_end(jctx *x, const char *s, bool *integral)
{
	const char *q = s, *e = x->e;
	*integral = true;
	if (q < e && *q == '-')
		q++;
	if (q == e || !isdig(*q))
		return jfail(x, s, "invalid JSON: invalid number");
	if (*q == '0') {
		q++;
		if (q < e && isdig(*q))
			return jfail(x, s, "invalid JSON: invalid number");
	} else {
		while (q < e && isdig(*q))
			q++;
	}
	if (q < e && *q == '.') {
		*integral = false;
		if (++q == e || !isdig(*q))
			return jfail(x, s, "invalid JSON: invalid number");
		while (q < e && isdig(*q))
			q++;
	}
	if (q < e && (*q == 'e' || *q == 'E')) {
		*integral = false;
		q++;
		if (q < e && (*q == '+' || *q == '-'))
			q++;
		if (q == e || !isdig(*q))
			return jfail(x, s, "invalid JSON: invalid number");
		while (q < e && isdig(*q))
			q++;
	}
	return q;
}

static bool jlit(const char *s, const char *e, const char *lit, size_t n)
{
	return (size_t)(e - s) >= n && memcmp(s, lit, n) == 0;
}

#define JSON_MAX_DEPTH 64

/* jskip skips the value at s (after whitespace), checking it; returns its end or NULL
 * with the error set. */
static const char *jskip(jctx *x, const char *s, int depth)
{
	const char *e = x->e;
	s = jws(s, e);
	if (s == e)
		return jfail(x, s, "invalid JSON: expected a value");
	bool b;
	if (*s == '"') {
		const char *q = jstr_end(x, s + 1, &b);
		return q ? q + 1 : NULL;
	}
	if (*s == '-' || isdig(*s))
		return jnum_end(x, s, &b);
	if (jlit(s, e, "true", 4) || jlit(s, e, "null", 4))
		return s + 4;
	if (jlit(s, e, "false", 5))
		return s + 5;
	if (*s != '{' && *s != '[')
		return jfail(x, s, "invalid JSON: expected a value");
	if (depth >= JSON_MAX_DEPTH)
		return jfail(x, s, "invalid JSON: nesting too deep");
	char close = *s == '{' ? '}' : ']';
	s = jws(s + 1, e);
	if (s < e && *s == close)
		return s + 1;
	for (;;) {
		if (close == '}') {
			if (s == e || *s != '"')
				return jfail(x, s, "invalid JSON: expected a key");
			if ((s = jstr_end(x, s + 1, &b)) == NULL)
				return NULL;
			s = jws(s + 1, e);
			if (s == e || *s != ':')
				return jfail(x, s, "invalid JSON: expected ':' after key");
			s++;
		}
		if ((s = jskip(x, s, depth + 1)) == NULL)
			return NULL;
		s = jws(s, e);
		if (s < e && *s == ',') {
			s = jws(s + 1, e);
			continue;
		}
		if (s < e && *s == close)
			return s + 1;
		return jfail(x, s, "invalid JSON: expected ',' or '%c'", close);
	}
}

/* jfind returns the schema field named by key k[0..n), or -1; hint is tried first. */
static int jfind(const ev_schema *schema, const char *k, size_t n, uint32_t hint)
{
	for (uint32_t t = 0; t < schema->n; t++) {
		uint32_t c = hint + t < schema->n ? hint + t : hint + t - schema->n;
		const char *name = schema->fields[c].name;
		size_t i = 0;
		while (i < n && name[i] != '\0' && name[i] == k[i])
			i++;
		if (i == n && name[i] == '\0')
			return (int)c;
	}
	return -1;
}

/* A JSON scalar: its kind and its text (string content still escaped). */
enum { JV_STRING, JV_NUMBER, JV_TRUE, JV_FALSE, JV_NULL };

static const char *const jv_name[] = { "a string", "a number", "a bool", "a bool", "null" };

/* jint converts an integral JSON number (int or timestamp field). */
static int jint(const char *p, size_t len, bool integral, int64_t *out)
{
	if (integral)
		return parse_i64(p, len, out);
	double d;
	int rc = parse_f64(p, len, &d);
	if (rc != CONV_OK)
		return rc;
	if (d != floor(d))
		return CONV_BAD;
	if (d < -9223372036854775808.0 || d >= 9223372036854775808.0)
		return CONV_RANGE;
	*out = (int64_t)d;
	return CONV_OK;
}

/* jstore stores scalar v (kind k, text p[0..len), esc: string with escapes) at s into
 * field c of record r; returns EDDY_OK, EDDY_EINVAL (err set) or an arena error. */
static eddy_err jstore(jctx *x, ev_batch *out, uint32_t r, uint32_t c, int k, const char *s,
                       const char *p, size_t len, bool esc, bool integral)
{
	const ev_field *f = &out->schema->fields[c];
	if (k == JV_NULL) {
		batch_set_null(out, r, c);
		return EDDY_OK;
	}
	int rc = CONV_OK;
	switch (f->type) {
	case EV_STRING: {
		if (k != JV_STRING)
			break;
		size_t off = out->arena_len;
		eddy_err e = set_str(out, r, c, p, len);
		if (e == EDDY_OK && esc)
			shrink_str(out, r, c, off, junescape(out->arena + off, p, len));
		return e;
	}
	case EV_INT:
	case EV_TIMESTAMP:
		if (k == JV_NUMBER) {
			int64_t v;
			if ((rc = jint(p, len, integral, &v)) == CONV_OK) {
				batch_set_int(out, r, c, v);
				return EDDY_OK;
			}
		} else if (k == JV_STRING && f->type == EV_TIMESTAMP) {
			char buf[64];
			const char *t = p;
			size_t n = len;
			if (esc && len <= sizeof(buf)) {
				n = junescape(buf, p, len);
				t = buf;
			}
			rc = CONV_BAD;
			if (!esc || t == buf) {
				int64_t ms;
				if (ev_ts_parse(t, n, &ms)) {
					batch_set_int(out, r, c, ms);
					return EDDY_OK;
				}
			}
		} else {
			break;
		}
		goto conv;
	case EV_FLOAT: {
		if (k != JV_NUMBER)
			break;
		double d;
		if ((rc = parse_f64(p, len, &d)) == CONV_OK) {
			batch_set_float(out, r, c, d);
			return EDDY_OK;
		}
		goto conv;
	}
	case EV_BOOL:
		if (k != JV_TRUE && k != JV_FALSE)
			break;
		batch_set_bool(out, r, c, k == JV_TRUE);
		return EDDY_OK;
	default:
		break;
	}
	jfail(x, s, "field '%s': expected %s, found %s", f->name, type_article[f->type],
	      jv_name[k]);
	return EDDY_EINVAL;
conv:
	conv_err(x->err, x->lineno, s - x->line + 1, f, p, len, rc);
	return EDDY_EINVAL;
}

/* jobject parses the object on [s, x->e) into record r; EDDY_EINVAL with the error set,
 * or an arena error. */
static eddy_err jobject(jctx *x, const ev_schema *schema, const char *s, ev_batch *out,
                        uint32_t r)
{
	const char *e = x->e;
	s = jws(s, e);
	if (s == e || *s != '{') {
		jfail(x, s, "invalid JSON: expected '{'");
		return EDDY_EINVAL;
	}
	s = jws(s + 1, e);
	uint32_t hint = 0;
	if (s < e && *s == '}') {
		s++;
		goto done;
	}
	for (;;) {
		if (s == e || *s != '"') {
			jfail(x, s, "invalid JSON: expected a key");
			return EDDY_EINVAL;
		}
		bool esc;
		const char *k = s + 1, *ke = jstr_end(x, k, &esc);
		if (ke == NULL)
			return EDDY_EINVAL;
		int c;
		if (!esc) {
			c = jfind(schema, k, (size_t)(ke - k), hint);
		} else {
			char kb[512];
			c = (size_t)(ke - k) <= sizeof(kb)
			            ? jfind(schema, kb, junescape(kb, k, (size_t)(ke - k)), hint)
			            : -1;
		}
		if (c >= 0 && !(x->live >> c & 1))
			c = -1; /* not read by the job: as an unknown key */
		s = jws(ke + 1, e);
		if (s == e || *s != ':') {
			jfail(x, s, "invalid JSON: expected ':' after key");
			return EDDY_EINVAL;
		}
		s = jws(s + 1, e);
		if (s == e) {
			jfail(x, s, "invalid JSON: expected a value");
			return EDDY_EINVAL;
		}
		if (*s == '{' || *s == '[') {
			if (c >= 0) {
				jfail(x, s, "field '%s': nested values are not supported",
				      schema->fields[c].name);
				return EDDY_EINVAL;
			}
			if ((s = jskip(x, s, 1)) == NULL)
				return EDDY_EINVAL;
		} else {
			const char *v = s, *p = s, *ve;
			int kind;
			bool integral = false, vesc = false;
			if (*s == '"') {
				kind = JV_STRING;
				p = s + 1;
				if ((ve = jstr_end(x, p, &vesc)) == NULL)
					return EDDY_EINVAL;
				s = ve + 1;
			} else if (*s == '-' || isdig(*s)) {
				kind = JV_NUMBER;
				if ((ve = jnum_end(x, s, &integral)) == NULL)
					return EDDY_EINVAL;
				s = ve;
			} else if (jlit(s, e, "true", 4)) {
				kind = JV_TRUE;
				s = ve = s + 4;
			} else if (jlit(s, e, "false", 5)) {
				kind = JV_FALSE;
				s = ve = s + 5;
			} else if (jlit(s, e, "null", 4)) {
				kind = JV_NULL;
				s = ve = s + 4;
			} else {
				jfail(x, s, "invalid JSON: expected a value");
				return EDDY_EINVAL;
			}
			if (c >= 0) {
				eddy_err err = jstore(x, out, r, (uint32_t)c, kind, v, p,
				                      (size_t)(ve - p), vesc, integral);
				if (err != EDDY_OK)
					return err;
				hint = (uint32_t)c + 1 < schema->n ? (uint32_t)c + 1 : 0;
			}
		}
		s = jws(s, e);
		if (s < e && *s == ',') {
			s = jws(s + 1, e);
			continue;
		}
		if (s < e && *s == '}') {
			s++;
			break;
		}
		jfail(x, s, "invalid JSON: expected ',' or '}'");
		return EDDY_EINVAL;
	}
done:
	s = jws(s, e);
	if (s < e) {
		char b[8];
		jfail(x, s, "invalid JSON: unexpected '%s' after the object",
		      show_char(b, (unsigned char)*s));
		return EDDY_EINVAL;
	}
	return EDDY_OK;
}

static eddy_err jsonl_next(const ev_schema *schema, uint64_t live, fmt_cursor *cur, ev_batch *out,
                           fmt_error *err)
{
	const char *p = cur->p, *end = cur->end;
	for (;;) { /* skip blank lines */
		const char *s = p;
		while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		if (s == end) {
			cur->p = end;
			return EDDY_EEMPTY;
		}
		if (*s != '\n')
			break;
		p = s + 1;
		cur->line++;
	}
	cur->p = p;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *re = nl ? nl : end;
	err->rec = p;
	err->rec_len = (size_t)((re > p && re[-1] == '\r') ? re - 1 - p : re - p);
	jctx x = {.line = p, .e = re, .lineno = cur->line, .err = err, .live = live};
	eddy_err e = EDDY_EINVAL;
	const char *nul = memchr(p, '\0', (size_t)(re - p));
	if (nul == NULL && batch_full(out))
		return EDDY_EFULL; /* cur stays at the record */
	if (nul != NULL) {
		jfail(&x, nul, "NUL byte in record");
	} else {
		uint32_t r = batch_append_row(out);
		size_t arena0 = out->arena_len;
		e = jobject(&x, schema, p, out, r);
		if (e != EDDY_OK) {
			out->n = r;
			out->arena_len = arena0;
			if (e != EDDY_EINVAL)
				return e; /* cur stays at the record */
		}
	}
	cur->p = nl ? nl + 1 : end;
	cur->line += nl != NULL;
	return e;
}

eddy_err fmt_parse_next(fmt_kind kind, const ev_schema *schema, fmt_cursor *cur, ev_batch *out,
                        fmt_error *err)
{
	return fmt_parse_fields(kind, schema, ~0ull, cur, out, err);
}

eddy_err fmt_parse_fields(fmt_kind kind, const ev_schema *schema, uint64_t live, fmt_cursor *cur,
                          ev_batch *out, fmt_error *err)
{
	fmt_error scratch;
	if (err == NULL)
		err = &scratch;
	assert(out->ncols == schema->n);
	assert(cur->p <= cur->end);
	if (kind == FMT_CSV)
		return csv_next(schema, live, cur, out, err);
	if (kind == FMT_JSONL)
		return jsonl_next(schema, live, cur, out, err);
	err->line = cur->line;
	err->col = 0;
	err->rec = cur->p;
	err->rec_len = 0;
	snprintf(err->msg, sizeof(err->msg), "unknown record format %d", (int)kind);
	return EDDY_EINVAL;
}

/* ---- framing ---- */

size_t fmt_frame(fmt_kind kind, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	const char *e = data + len;
	const char *q = kind == FMT_CSV ? memchr(data, '"', len) : NULL;
	if (q == NULL) {
		const char *nl = memrchr(data, '\n', len);
		return nl ? (size_t)(nl - data) + 1 : 0;
	}
	/* record by record: lines before the first quote at once, then fmt_csv_end */
	const char *s = data;
	const char *nl = memrchr(data, '\n', (size_t)(q - data));
	if (nl != NULL)
		s = nl + 1;
	int64_t n;
	for (const char *r; s < e && (r = fmt_csv_end(s, e, &n)) != NULL;)
		s = r + 1;
	return (size_t)(s - data);
}

/* ---- output ---- */

eddy_err fmt_buf_reserve(fmt_buf *b, size_t extra)
{
	if (extra <= b->cap - b->len)
		return EDDY_OK;
	if (extra > SIZE_MAX / 4 - b->len)
		return EDDY_ENOMEM;
	size_t need = b->len + extra;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = rt_realloc(b->p, cap);
	if (p == NULL)
		return EDDY_ENOMEM;
	b->p = p;
	b->cap = cap;
	return EDDY_OK;
}

void fmt_buf_free(fmt_buf *b)
{
	rt_free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324"
                                  "25262728293031323334353637383940414243444546474849"
                                  "50515253545556575859606162636465666768697071727374"
                                  "75767778798081828384858687888990919293949596979899";

/* put_i64 writes v in decimal at dst (>= 20 bytes); returns the length. */
static size_t put_i64(char *dst, int64_t v)
{
	const char *pairs = digit_pairs;
	char tmp[24];
	char *t = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	while (u >= 100) {
		unsigned d = (unsigned)(u % 100) * 2;
		u /= 100;
		*--t = pairs[d + 1];
		*--t = pairs[d];
	}
	if (u >= 10) {
		*--t = pairs[u * 2 + 1];
		*--t = pairs[u * 2];
	} else {
		*--t = (char)('0' + u);
	}
	if (v < 0)
		*--t = '-';
	size_t n = (size_t)(tmp + sizeof(tmp) - t);
	memcpy(dst, t, n);
	return n;
}

/* put_dec writes the decimal m / 10^d (m < 10^17, d <= 20) with sign, d decimals and ".0" when d is
 * 0, at dst; returns the length. */
static size_t put_dec(char *dst, bool neg, uint64_t m, int d)
{
	char tmp[24]; /* the digits, last first */
	int n = 0;
	while (m >= 100) {
		unsigned q = (unsigned)(m % 100);
		m /= 100;
		tmp[n++] = digit_pairs[q * 2 + 1];
		tmp[n++] = digit_pairs[q * 2];
	}
	do {
		tmp[n++] = (char)('0' + m % 10);
		m /= 10;
	} while (m != 0 || n <= d);
	size_t len = 0;
	if (neg)
		dst[len++] = '-';
	for (int i = n - 1; i >= 0; i--) {
		if (i == d - 1)
			dst[len++] = '.';
		dst[len++] = tmp[i];
	}
	if (d == 0) {
		dst[len++] = '.';
		dst[len++] = '0';
	}
	dst[len] = '\0';
	return len;
}

typedef unsigned __int128 u128;

static const uint64_t pow5[] = {1ull,
                                5ull,
                                25ull,
                                125ull,
                                625ull,
                                3125ull,
                                15625ull,
                                78125ull,
                                390625ull,
                                1953125ull,
                                9765625ull,
                                48828125ull,
                                244140625ull,
                                1220703125ull,
                                6103515625ull,
                                30517578125ull,
                                152587890625ull,
                                762939453125ull,
                                3814697265625ull,
                                19073486328125ull,
                                95367431640625ull};

/* scaled_round: M * 2^E * 10^k rounded to an integer, half to even, exactly
 * (M < 2^53, 0 <= k <= 20, the result < 2^64, -128 < k + E). */
static uint64_t scaled_round(uint64_t M, int E, int k)
{
	u128 x = (u128)M * pow5[k];
	int s = k + E;
	if (s >= 0)
		return (uint64_t)(x << s);
	s = -s;
	u128 q = x >> s, r = x - (q << s), half = (u128)1 << (s - 1);
	if (r > half || (r == half && (q & 1)))
		q++;
	return (uint64_t)q;
}

/* reads_back: whether the decimal N / 10^j (N < 10^17, 0 <= j <= 20) is nearest to the
 * double M * 2^E (2^52 <= M < 2^53, -67 <= E < 0) among the doubles, ties to the even
 * mantissa — whether strtod of it gives that double back. Scaled by 10^j * 2^(1-E), the
 * distance between them is |N * 2^(1-E) - 2 M 10^j| and half the gap to the next double
 * is 10^j (half of that below a power of two). */
static bool reads_back(uint64_t N, int j, uint64_t M, int E)
{
	u128 p10 = (u128)pow5[j] << j;
	u128 lhs = (u128)N << (1 - E), rhs = (u128)M * 2 * p10;
	u128 d2, bound2; /* doubled, so half a gap stays whole */
	if (lhs >= rhs) {
		d2 = 2 * (lhs - rhs);
		bound2 = 2 * p10;
	} else {
		d2 = 2 * (rhs - lhs);
		bound2 = M == (1ull << 52) ? p10 : 2 * p10;
	}
	return d2 < bound2 || (d2 == bound2 && (M & 1) == 0);
}

/* put_f64 writes finite v, shortest of %.15g/%.16g/%.17g that reads back equal, at dst
 * (>= 32 bytes), with ".0" added to an integral value so a float always reads as one
 * (32.0, as DuckDB, Flink and Python write doubles); returns the length.
 * For 1e-4 <= |v| < 1e15 (no exponent in %g) without snprintf and strtod: v = M * 2^E
 * exactly, its P-digit rounding N / 10^k is computed in 128-bit integers (as printf
 * rounds: the exact value, half to even) and checked to read back by the distance to v
 * (reads_back); %g's text is then N / 10^k without trailing zeros. Prices times 0.908
 * (Nexmark q1) take it, also those that need 17 digits (24567859.512000002). */
static size_t put_f64(char *dst, double v)
{
	static const uint64_t p10[] = {1ull,
	                               10ull,
	                               100ull,
	                               1000ull,
	                               10000ull,
	                               100000ull,
	                               1000000ull,
	                               10000000ull,
	                               100000000ull,
	                               1000000000ull,
	                               10000000000ull,
	                               100000000000ull,
	                               1000000000000ull,
	                               10000000000000ull,
	                               100000000000000ull,
	                               1000000000000000ull,
	                               10000000000000000ull,
	                               100000000000000000ull};
	double a = fabs(v);
	if (a >= 1e-4 && a < 1e15) {
		uint64_t bits;
		memcpy(&bits, &a, sizeof(bits)); /* a normal double: M * 2^E, 2^52 <= M < 2^53 */
		uint64_t M = (bits & ((1ull << 52) - 1)) | (1ull << 52);
		int E = (int)(bits >> 52) - 1075;
		/* X = floor(log10(a)), exactly: 10^X <= a < 10^(X+1); log10(2) ~ 0.30103 gives
		 * it within one, the comparisons (M * 10^-X >= 2^-E for X < 0, M >= 10^X 2^-E
		 * else) settle it */
		int X = (int)floor((E + 52) * 0.30102999566398120);
		for (;;) {
			bool ge = X >= 0 ? (u128)M >= ((u128)p10[X] << -E)
			                 : (u128)M * p10[-X] >= ((u128)1 << -E);
			if (!ge) {
				X--;
				continue;
			}
			bool lt_next = X + 1 >= 0 ? (u128)M < ((u128)p10[X + 1] << -E)
			                          : (u128)M * p10[-(X + 1)] < ((u128)1 << -E);
			if (!lt_next) {
				X++;
				continue;
			}
			break;
		}
		for (int P = 15; P <= 17; P++) {
			int k = P - 1 - X;
			uint64_t N = scaled_round(M, E, k);
			if (N >= p10[P]) /* rounded up to 10^(X+1): cannot read back */
				continue;
			if (P < 17 && !reads_back(N, k, M, E))
				continue;
			while (k > 0 && N % 10 == 0)
				N /= 10, k--;
			return put_dec(dst, v < 0, N, k);
		}
	}
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(dst, 32, "%.*g", prec, v);
		if (prec == 17 || strtod(dst, NULL) == v)
			break;
	}
	if (strpbrk(dst, ".e") == NULL) {
		dst[n++] = '.';
		dst[n++] = '0';
		dst[n] = '\0';
	}
	return (size_t)n;
}

static bool csv_needs_quotes(const char *p, size_t len)
{
	if (len == 0)
		return true;
	size_t i = 0;
#ifdef __SSE2__
	const __m128i comma = _mm_set1_epi8(','), quote = _mm_set1_epi8('"'),
	              nl = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
	for (; i + 16 <= len; i += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(p + i));
		__m128i hit =
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, comma), _mm_cmpeq_epi8(x, quote)),
		                 _mm_or_si128(_mm_cmpeq_epi8(x, nl), _mm_cmpeq_epi8(x, cr)));
		if (_mm_movemask_epi8(hit) != 0)
			return true;
	}
#endif
	for (; i < len; i++) {
		char c = p[i];
		if (c == ',' || c == '"' || c == '\n' || c == '\r')
			return true;
	}
	return false;
}

/* csv_put_str appends a CSV string field (room reserved by the caller: 2 * len + 2). */
static void csv_put_str(fmt_buf *out, const char *p, size_t len)
{
	char *d = out->p + out->len;
	if (!csv_needs_quotes(p, len)) {
		memcpy(d, p, len);
		out->len += len;
		return;
	}
	*d++ = '"';
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '"')
			*d++ = '"';
		*d++ = p[i];
	}
	*d++ = '"';
	out->len = (size_t)(d - out->p);
}

/* json_put_str appends a JSON string with its quotes (room reserved: 6 * len + 2). */
static void json_put_str(fmt_buf *out, const char *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *d = out->p + out->len;
	*d++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c != '"' && c != '\\') {
			*d++ = (char)c;
			continue;
		}
		*d++ = '\\';
		switch (c) {
		case '"': *d++ = '"'; break;
		case '\\': *d++ = '\\'; break;
		case '\n': *d++ = 'n'; break;
		case '\r': *d++ = 'r'; break;
		case '\t': *d++ = 't'; break;
		default:
			*d++ = 'u';
			*d++ = '0';
			*d++ = '0';
			*d++ = hex[c >> 4];
			*d++ = hex[c & 15];
		}
	}
	*d++ = '"';
	out->len = (size_t)(d - out->p);
}

eddy_err fmt_write_header(fmt_kind kind, const ev_schema *schema, fmt_buf *out)
{
	if (kind != FMT_CSV)
		return EDDY_OK;
	size_t start = out->len;
	for (uint32_t c = 0; c < schema->n; c++) {
		const char *name = schema->fields[c].name;
		size_t len = strlen(name);
		if (fmt_buf_reserve(out, 2 * len + 3) != EDDY_OK) {
			out->len = start;
			return EDDY_ENOMEM;
		}
		if (c > 0)
			out->p[out->len++] = ',';
		csv_put_str(out, name, len);
	}
	if (fmt_buf_reserve(out, 1) != EDDY_OK) {
		out->len = start;
		return EDDY_ENOMEM;
	}
	out->p[out->len++] = '\n';
	return EDDY_OK;
}

#define TS_MIN (-62167219200000LL) /* 0000-01-01 00:00:00 */
#define TS_MAX 253402300799999LL    /* 9999-12-31 23:59:59.999 */

/* put_scalar appends a non-null, non-string field as CSV or JSON text (room reserved:
 * 48 bytes); a non-finite float is written as null (CSV: nothing). */
static void put_scalar(fmt_kind kind, const ev_batch *b, uint32_t r, uint32_t c, ev_type t,
                       fmt_buf *out)
{
	char *d = out->p + out->len;
	switch (t) {
	case EV_INT:
		out->len += put_i64(d, batch_get_int(b, r, c));
		break;
	case EV_FLOAT: {
		double v = batch_get_float(b, r, c);
		if (isfinite(v))
			out->len += put_f64(d, v);
		else if (kind == FMT_JSONL)
			memcpy(d, "null", 4), out->len += 4;
		break;
	}
	case EV_BOOL:
		if (batch_get_bool(b, r, c))
			memcpy(d, "true", 4), out->len += 4;
		else
			memcpy(d, "false", 5), out->len += 5;
		break;
	case EV_TIMESTAMP: {
		int64_t ms = batch_get_int(b, r, c);
		bool json = kind == FMT_JSONL;
		if (json)
			*d++ = '"';
		/* ev_ts_parse reads years 0000 to 9999 only: epoch ms outside them */
		if (ms >= TS_MIN && ms <= TS_MAX)
			d += ev_ts_format(ms, d);
		else
			d += put_i64(d, ms);
		if (json)
			*d++ = '"';
		out->len = (size_t)(d - out->p);
		break;
	}
	default:
		break;
	}
}

eddy_err fmt_write_row(fmt_kind kind, const ev_batch *b, uint32_t r, fmt_buf *out)
{
	assert(r < b->n);
	const ev_schema *schema = b->schema;
	size_t start = out->len;
	bool json = kind == FMT_JSONL;
	for (uint32_t c = 0; c < b->ncols; c++) {
		ev_type t = schema->fields[c].type;
		const char *name = schema->fields[c].name;
		size_t nlen = json ? strlen(name) : 0;
		uint32_t slen = 0;
		const char *s = NULL;
		bool null = batch_is_null(b, r, c);
		if (t == EV_STRING && !null)
			s = batch_get_str(b, r, c, &slen);
		/* separator + key + value + closing brace and newline */
		size_t need = 1 + (json ? 6 * nlen + 3 : 0) + (s ? 6 * (size_t)slen + 2 : 48) + 2;
		if (fmt_buf_reserve(out, need) != EDDY_OK) {
			out->len = start;
			return EDDY_ENOMEM;
		}
		if (json) {
			out->p[out->len++] = c == 0 ? '{' : ',';
			json_put_str(out, name, nlen);
			out->p[out->len++] = ':';
		} else if (c > 0) {
			out->p[out->len++] = ',';
		}
		if (null) {
			if (json)
				memcpy(out->p + out->len, "null", 4), out->len += 4;
		} else if (s != NULL) {
			if (json)
				json_put_str(out, s, slen);
			else
				csv_put_str(out, s, slen);
		} else {
			put_scalar(kind, b, r, c, t, out);
		}
	}
	if (fmt_buf_reserve(out, 3) != EDDY_OK) {
		out->len = start;
		return EDDY_ENOMEM;
	}
	if (json && b->ncols == 0)
		out->p[out->len++] = '{';
	if (json)
		out->p[out->len++] = '}';
	out->p[out->len++] = '\n';
	return EDDY_OK;
}
