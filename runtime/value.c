/* Values, schemas, batches and timestamps (include/eddy/value.h). */
#include <eddy/value.h>

#include "alloc.h"

#include <stdio.h>
#include <string.h>

static const char *const type_names[] = { "null", "int", "float", "bool", "string",
	                                  "timestamp" };

const char *ev_type_name(ev_type t)
{
	return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]) ? type_names[t] : "?";
}

bool ev_type_parse(const char *name, ev_type *out)
{
	for (unsigned i = 1; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (strcmp(name, type_names[i]) == 0) {
			*out = (ev_type)i;
			return true;
		}
	return false;
}

eddy_err schema_add(ev_schema *s, const char *name, ev_type type)
{
	if (s->n == EV_MAX_FIELDS)
		return EDDY_EFULL;
	if (schema_find(s, name) >= 0)
		return EDDY_EEXIST;
	char *copy = rt_strdup(name);
	if (copy == NULL)
		return EDDY_ENOMEM;
	s->fields[s->n].name = copy;
	s->fields[s->n].type = type;
	s->n++;
	return EDDY_OK;
}

int schema_find(const ev_schema *s, const char *name)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (strcmp(s->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

eddy_err schema_copy(ev_schema *dst, const ev_schema *src)
{
	schema_clear(dst);
	for (uint32_t i = 0; i < src->n; i++)
		if (schema_add(dst, src->fields[i].name, src->fields[i].type) != EDDY_OK) {
			schema_clear(dst);
			return EDDY_ENOMEM;
		}
	return EDDY_OK;
}

void schema_clear(ev_schema *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		rt_free(s->fields[i].name);
	memset(s, 0, sizeof(*s));
}

/* ---- batches ---- */

ev_batch *batch_new(const ev_schema *schema, uint32_t cap)
{
	uint32_t nc = schema->n;
	size_t fixed = sizeof(ev_batch) + (size_t)cap * (2 + nc) * sizeof(uint64_t);
	ev_batch *b = rt_malloc(fixed);
	if (b == NULL)
		return NULL;
	memset(b, 0, sizeof(*b));
	b->schema = schema;
	b->cap = cap;
	b->ncols = nc;
	b->ts = (int64_t *)(b + 1);
	b->nulls = (uint64_t *)(b->ts + cap);
	b->cols = b->nulls + cap;
	return b;
}

void batch_free(ev_batch *b)
{
	if (b == NULL)
		return;
	rt_free(b->arena);
	rt_free(b);
}

void batch_clear(ev_batch *b)
{
	b->n = 0;
	b->arena_len = 0;
}

eddy_err batch_set_str(ev_batch *b, uint32_t r, uint32_t c, const char *p, size_t len)
{
	if (b->arena_len + len > b->arena_cap) {
		size_t cap = b->arena_cap ? b->arena_cap * 2 : 4096;
		while (cap < b->arena_len + len)
			cap *= 2;
		if (cap > ((size_t)1 << 32))
			return EDDY_EINVAL;
		char *a = rt_realloc(b->arena, cap);
		if (a == NULL)
			return EDDY_ENOMEM;
		b->arena = a;
		b->arena_cap = cap;
	}
	if (len)
		memcpy(b->arena + b->arena_len, p, len);
	*batch_slot(b, r, c) = ((uint64_t)b->arena_len << 32) | (uint32_t)len;
	b->arena_len += len;
	b->nulls[r] &= ~((uint64_t)1 << c);
	return EDDY_OK;
}

eddy_err batch_set_val(ev_batch *b, uint32_t r, uint32_t c, ev_val v)
{
	ev_type ft = b->schema->fields[c].type;
	if (v.type == EV_NULL) {
		batch_set_null(b, r, c);
		return EDDY_OK;
	}
	switch (ft) {
	case EV_INT:
	case EV_TIMESTAMP:
		if (v.type != EV_INT && v.type != EV_TIMESTAMP)
			return EDDY_EINVAL;
		batch_set_int(b, r, c, v.i);
		return EDDY_OK;
	case EV_FLOAT:
		if (v.type == EV_INT)
			batch_set_float(b, r, c, (double)v.i);
		else if (v.type == EV_FLOAT)
			batch_set_float(b, r, c, v.f);
		else
			return EDDY_EINVAL;
		return EDDY_OK;
	case EV_BOOL:
		if (v.type != EV_BOOL)
			return EDDY_EINVAL;
		batch_set_bool(b, r, c, v.b);
		return EDDY_OK;
	case EV_STRING:
		if (v.type != EV_STRING)
			return EDDY_EINVAL;
		return batch_set_str(b, r, c, v.s.p, v.s.len);
	default:
		return EDDY_EINVAL;
	}
}

eddy_err batch_copy_row(ev_batch *dst, const ev_batch *src, uint32_t r)
{
	if (batch_full(dst))
		return EDDY_EFULL;
	uint32_t d = dst->n++;
	uint32_t nc = src->ncols;
	dst->ts[d] = src->ts[r];
	dst->nulls[d] = src->nulls[r];
	memcpy(batch_slot(dst, d, 0), &src->cols[(size_t)r * nc], nc * sizeof(uint64_t));
	for (uint32_t c = 0; c < nc; c++) {
		if (src->schema->fields[c].type != EV_STRING || batch_is_null(src, r, c))
			continue;
		uint32_t len;
		const char *p = batch_get_str(src, r, c, &len);
		if (batch_set_str(dst, d, c, p, len) != EDDY_OK) {
			dst->n--;
			return EDDY_ENOMEM;
		}
	}
	return EDDY_OK;
}

/* ---- timestamps ---- */

int64_t ev_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void ev_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static char *put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

/* the date of the last timestamp ev_ts_format wrote with a 4-digit year (per thread) */
static _Thread_local int64_t fmt_days = INT64_MIN;
static _Thread_local char fmt_date[10];

size_t ev_ts_format(int64_t ms, char *buf)
{
	int64_t days = floor_div(ms, 86400000);
	int64_t rem = ms - days * 86400000;
	unsigned secs = (unsigned)(rem / 1000), milli = (unsigned)(rem % 1000);
	char *p = buf;
	if (days == fmt_days) {
		memcpy(p, fmt_date, 10);
		p += 10;
		goto time;
	}
	int64_t y;
	unsigned m, d;
	ev_civil_from_days(days, &y, &m, &d);
	if (y >= 0 && y <= 9999) {
		unsigned yy = (unsigned)y;
		*p++ = (char)('0' + yy / 1000);
		*p++ = (char)('0' + yy / 100 % 10);
		*p++ = (char)('0' + yy / 10 % 10);
		*p++ = (char)('0' + yy % 10);
	} else {
		p += snprintf(p, 12, "%lld", (long long)y);
	}
	*p++ = '-';
	p = put2(p, m);
	*p++ = '-';
	p = put2(p, d);
	if (p - buf == 10) {
		memcpy(fmt_date, buf, 10);
		fmt_days = days;
	}
time:
	*p++ = ' ';
	p = put2(p, secs / 3600);
	*p++ = ':';
	p = put2(p, secs / 60 % 60);
	*p++ = ':';
	p = put2(p, secs % 60);
	if (milli) {
		*p++ = '.';
		*p++ = (char)('0' + milli / 100);
		p = put2(p, milli % 100);
	}
	*p = '\0';
	return (size_t)(p - buf);
}

static bool digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned c = (unsigned char)s[i] - '0';
		if (c > 9)
			return false;
		v = v * 10 + c;
	}
	*out = v;
	return true;
}

static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

/* The day of the last date parsed on this thread: consecutive records mostly share it. */
static _Thread_local char last_date[10];
static _Thread_local int64_t last_days;

bool ev_ts_parse(const char *s, size_t len, int64_t *ms)
{
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	if (len >= 10 && s[4] == '-' && s[7] == '-') {
		int64_t days;
		if (memcmp(s, last_date, 10) == 0) {
			days = last_days;
		} else {
			if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d))
				return false;
			if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
				return false;
			if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
				return false;
			days = ev_days_from_civil(y, mo, d);
			memcpy(last_date, s, 10);
			last_days = days;
		}
		size_t i = 10;
		int64_t offset_min = 0;
		if (i < len) {
			if ((s[i] != ' ' && s[i] != 'T') || len < i + 9 || s[i + 3] != ':' ||
			    s[i + 6] != ':')
				return false;
			if (!digits(s + i + 1, 2, &h) || !digits(s + i + 4, 2, &mi) ||
			    !digits(s + i + 7, 2, &sec) || h > 23 || mi > 59 || sec > 59)
				return false;
			i += 9;
			if (i < len && s[i] == '.') {
				size_t n = 0;
				i++;
				while (i < len && (unsigned)(s[i] - '0') <= 9) {
					if (n < 3)
						frac = frac * 10 + (unsigned)(s[i] - '0');
					n++;
					i++;
				}
				if (n == 0)
					return false;
				for (; n < 3; n++)
					frac *= 10;
			}
			if (i < len && s[i] == 'Z') {
				i++;
			} else if (i < len && (s[i] == '+' || s[i] == '-')) {
				unsigned oh, om;
				if (len != i + 6 || s[i + 3] != ':' || !digits(s + i + 1, 2, &oh) ||
				    !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
					return false;
				offset_min = (int64_t)(oh * 60 + om) * (s[i] == '-' ? -1 : 1);
				i += 6;
			}
			if (i != len)
				return false;
		}
		*ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + frac;
		return true;
	}
	/* epoch milliseconds */
	size_t i = 0;
	bool neg = false;
	if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len || len - i > 18)
		return false;
	int64_t v = 0;
	for (; i < len; i++) {
		unsigned c = (unsigned char)s[i] - '0';
		if (c > 9)
			return false;
		v = v * 10 + c;
	}
	*ms = neg ? -v : v;
	return true;
}
