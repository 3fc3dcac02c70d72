/* Values, schemas, batches and timestamps. */
#include <criterion/criterion.h>
#include <eddy/value.h>

#include "../../runtime/alloc.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

Test(value, timestamp_round_trip_and_formats)
{
	int64_t ms;
	cr_assert(ev_ts_parse("2001-01-01 00:00:00", 19, &ms));
	cr_assert_eq(ms, 978307200000LL);
	cr_assert(ev_ts_parse("2001-01-01T00:00:00Z", 20, &ms));
	cr_assert_eq(ms, 978307200000LL);
	cr_assert(ev_ts_parse("2001-01-01T01:30:00+01:30", 25, &ms));
	cr_assert_eq(ms, 978307200000LL);
	cr_assert(ev_ts_parse("2001-01-01 00:00:00.5", 21, &ms));
	cr_assert_eq(ms, 978307200500LL);
	cr_assert(ev_ts_parse("978307200000", 12, &ms));
	cr_assert_eq(ms, 978307200000LL);
	cr_assert(ev_ts_parse("2000-02-29", 10, &ms));
	cr_assert_not(ev_ts_parse("2001-02-29", 10, &ms));
	cr_assert_not(ev_ts_parse("2001-13-01 00:00:00", 19, &ms));
	cr_assert_not(ev_ts_parse("2001-01-01 24:00:00", 19, &ms));
	cr_assert_not(ev_ts_parse("2001-01-01 00:00", 16, &ms));
	cr_assert_not(ev_ts_parse("yesterday", 9, &ms));
	cr_assert_not(ev_ts_parse("", 0, &ms));
	char buf[32];
	ev_ts_format(978307200000LL, buf);
	cr_assert_str_eq(buf, "2001-01-01 00:00:00");
	ev_ts_format(978307200000LL + 3723004, buf);
	cr_assert_str_eq(buf, "2001-01-01 01:02:03.004");
	ev_ts_format(-1000, buf);
	cr_assert_str_eq(buf, "1969-12-31 23:59:59");
	/* every day of four centuries round-trips */
	for (int64_t d = -146097; d < 146097; d += 7) {
		int64_t y;
		unsigned m, dd;
		ev_civil_from_days(d, &y, &m, &dd);
		cr_assert_eq(ev_days_from_civil(y, m, dd), d);
	}
}

/* ev_ts_format against gmtime_r and strftime, on runs of one day (its date is cached per
 * thread) mixed with jumps across years 0..9999 and before/after 1970. */
Test(value, timestamp_format_matches_gmtime)
{
	uint64_t x = 88172645463325252ull;                            /* xorshift64 */
	const int64_t lo = -62167219200000LL, hi = 253402300799999LL; /* 0000-01-01 .. 9999 */
	int64_t ms = 978307200000LL;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (i % 8 == 0) /* anywhere */
			ms = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
		else if (i % 8 == 1) /* the next or the previous day */
			ms += (x & 1 ? 1 : -1) * 86400000LL;
		else /* the same day, another time */
			ms = ms - (ms % 86400000 + 86400000) % 86400000 + (int64_t)(x % 86400000);
		if (ms < lo || ms > hi)
			ms = 978307200000LL;
		char got[40], want[40];
		size_t n = ev_ts_format(ms, got);
		int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
		unsigned milli = (unsigned)(ms - sec * 1000);
		time_t t = (time_t)sec;
		struct tm tm;
		cr_assert(gmtime_r(&t, &tm) != NULL);
		size_t k = strftime(want, sizeof(want), "%Y-%m-%d %H:%M:%S", &tm);
		if (tm.tm_year + 1900 < 1000) { /* strftime writes no leading zeros in %Y */
			char tmp[40];
			snprintf(tmp, sizeof(tmp), "%04d%s", tm.tm_year + 1900, strchr(want, '-'));
			k = strlen(strcpy(want, tmp));
		}
		if (milli)
			snprintf(want + k, sizeof(want) - k, ".%03u", milli);
		cr_assert(n == strlen(want) && strcmp(got, want) == 0, "%lld ms: '%s', want '%s'",
		          (long long)ms, got, want);
	}
}

Test(value, batch_rows_strings_nulls_and_copy)
{
	int64_t live = rt_alloc_live();
	ev_schema s = { 0 };
	cr_assert_eq(schema_add(&s, "a", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&s, "b", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(&s, "c", EV_FLOAT), EDDY_OK);
	cr_assert_eq(schema_add(&s, "a", EV_BOOL), EDDY_EEXIST);
	cr_assert_eq(schema_find(&s, "c"), 2);
	cr_assert_eq(schema_find(&s, "z"), -1);
	ev_batch *b = batch_new(&s, 3);
	char big[5000];
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 3; i++) {
		uint32_t r = batch_append_row(b);
		batch_set_int(b, r, 0, i * 10);
		cr_assert_eq(batch_set_str(b, r, 1, big, (size_t)(i * 2000)), EDDY_OK);
		if (i != 1)
			batch_set_float(b, r, 2, i + 0.5);
	}
	cr_assert(batch_full(b));
	cr_assert(batch_is_null(b, 1, 2));
	cr_assert_not(batch_is_null(b, 2, 2));
	uint32_t len;
	const char *p = batch_get_str(b, 2, 1, &len);
	cr_assert_eq(len, 4000);
	cr_assert_eq(p[3999], 'x');
	ev_batch *d = batch_new(&s, 2);
	cr_assert_eq(batch_copy_row(d, b, 2), EDDY_OK);
	cr_assert_eq(batch_copy_row(d, b, 1), EDDY_OK);
	cr_assert_eq(batch_copy_row(d, b, 0), EDDY_EFULL);
	ev_val v = batch_get_val(d, 0, 2);
	cr_assert_eq(v.type, EV_FLOAT);
	cr_assert_float_eq(v.f, 2.5, 1e-12);
	cr_assert_eq(batch_get_val(d, 1, 2).type, EV_NULL);
	v = batch_get_val(d, 0, 1);
	cr_assert_eq(v.s.len, 4000);
	cr_assert_eq(batch_get_int(d, 1, 0), 10);
	ev_val i = { .type = EV_INT, .i = 7 };
	cr_assert_eq(batch_set_val(d, 1, 2, i), EDDY_OK); /* int into float widens */
	cr_assert_float_eq(batch_get_float(d, 1, 2), 7.0, 1e-12);
	cr_assert_eq(batch_set_val(d, 1, 0, (ev_val){ .type = EV_BOOL, .b = true }), EDDY_EINVAL);
	batch_free(b);
	batch_free(d);
	schema_clear(&s);
	cr_assert_eq(rt_alloc_live(), live);
}
