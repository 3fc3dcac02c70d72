/* Values, schemas, batches and timestamps. */
#include <criterion/criterion.h>
#include <eddy/value.h>

#include "../../runtime/alloc.h"

#include <string.h>

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
