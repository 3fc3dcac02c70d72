/* The expression language: syntax, types, null logic, functions, errors, allocation. */
#include <criterion/criterion.h>
#include <eddy/value.h>

#include "../../config/expr.h"
#include "../../runtime/alloc.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The flights schema plus a float, a bool and a name that needs back quotes. */
enum { F_DATE, F_DELAY, F_DISTANCE, F_ORIGIN, F_DEST, F_SPEED, F_LATE, F_ODD };

static ev_schema S;
static ev_batch *B;
static expr_scratch SC;

#define ROW_NULL 2 /* every field null */
#define NROWS 5

static void set_str(uint32_t r, uint32_t c, const char *s)
{
	cr_assert_eq(batch_set_str(B, r, c, s, strlen(s)), EDDY_OK);
}

static void setup(void)
{
	memset(&S, 0, sizeof(S));
	cr_assert_eq(schema_add(&S, "date", EV_TIMESTAMP), EDDY_OK);
	cr_assert_eq(schema_add(&S, "delay", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&S, "distance", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&S, "origin", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(&S, "destination", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(&S, "speed", EV_FLOAT), EDDY_OK);
	cr_assert_eq(schema_add(&S, "late", EV_BOOL), EDDY_OK);
	cr_assert_eq(schema_add(&S, "odd name", EV_INT), EDDY_OK);
	B = batch_new(&S, 8);
	cr_assert_not_null(B);
	int64_t ms;

	/* row 0: 2001-03-05 14:30:00, a late flight */
	uint32_t r = batch_append_row(B);
	cr_assert(ev_ts_parse("2001-03-05 14:30:00", 19, &ms));
	batch_set_int(B, r, F_DATE, ms);
	batch_set_int(B, r, F_DELAY, 20);
	batch_set_int(B, r, F_DISTANCE, 1000);
	set_str(r, F_ORIGIN, "JFK");
	set_str(r, F_DEST, "LAX");
	batch_set_float(B, r, F_SPEED, 450.5);
	batch_set_bool(B, r, F_LATE, true);
	batch_set_int(B, r, F_ODD, 7);

	/* row 1: the last millisecond of February, early, an empty destination */
	r = batch_append_row(B);
	cr_assert(ev_ts_parse("2001-02-28 23:59:59.999", 23, &ms));
	batch_set_int(B, r, F_DATE, ms);
	batch_set_int(B, r, F_DELAY, -7);
	batch_set_int(B, r, F_DISTANCE, 300);
	set_str(r, F_ORIGIN, "sfo");
	set_str(r, F_DEST, "");
	batch_set_float(B, r, F_SPEED, 0.0);
	batch_set_bool(B, r, F_LATE, false);
	batch_set_int(B, r, F_ODD, -1);

	/* row 2: all null */
	batch_append_row(B);

	/* row 3: extremes, before the epoch */
	r = batch_append_row(B);
	batch_set_int(B, r, F_DATE, -3600000); /* 1969-12-31 23:00:00 */
	batch_set_int(B, r, F_DELAY, INT64_MAX);
	batch_set_int(B, r, F_DISTANCE, INT64_MIN);
	set_str(r, F_ORIGIN, "Ab");
	set_str(r, F_DEST, "abc");
	batch_set_float(B, r, F_SPEED, -2.5);
	batch_set_bool(B, r, F_LATE, true);
	batch_set_int(B, r, F_ODD, 0);

	/* row 4: a NaN speed, a string with high bytes */
	r = batch_append_row(B);
	batch_set_int(B, r, F_DATE, 0);
	batch_set_int(B, r, F_DELAY, 15);
	batch_set_int(B, r, F_DISTANCE, 15);
	set_str(r, F_ORIGIN, "\xc3\xa9t\xc3\xa9");
	set_str(r, F_DEST, "JFK");
	batch_set_float(B, r, F_SPEED, NAN);
	batch_set_bool(B, r, F_LATE, false);
	batch_set_int(B, r, F_ODD, 1);
	cr_assert_eq(B->n, NROWS);
}

static void teardown(void)
{
	expr_scratch_free(&SC);
	batch_free(B);
	schema_clear(&S);
}

TestSuite(expr, .init = setup, .fini = teardown);

static expr *comp(const char *text)
{
	expr *e = NULL;
	expr_error err = { 0 };
	eddy_err rc = expr_compile(text, &S, &e, &err);
	cr_assert_eq(rc, EDDY_OK, "compile \"%s\": %s (col %d)", text, err.msg, err.col);
	cr_assert_not_null(e);
	return e;
}

/* ev evaluates text on row and checks its static type; the caller checks the value. */
static ev_val ev(expr **keep, const char *text, uint32_t row, ev_type type)
{
	*keep = comp(text);
	cr_assert_eq(expr_type(*keep), type, "type of \"%s\": %s, want %s", text,
	             ev_type_name(expr_type(*keep)), ev_type_name(type));
	expr_scratch_reset(&SC);
	ev_val v = expr_eval(*keep, B, row, &SC);
	cr_assert(v.type == type || v.type == EV_NULL, "\"%s\" row %u gave a %s", text, row,
	          ev_type_name(v.type));
	/* the filter path agrees with the value path */
	if (type == EV_BOOL || type == EV_NULL)
		cr_assert_eq(expr_eval_bool(*keep, B, row, &SC), v.type == EV_BOOL && v.b,
		             "expr_eval_bool disagrees on \"%s\" row %u", text, row);
	return v;
}

static void is_int(const char *text, uint32_t row, int64_t want)
{
	expr *e;
	ev_val v = ev(&e, text, row, EV_INT);
	cr_assert_eq(v.type, EV_INT, "\"%s\" row %u is null", text, row);
	cr_assert_eq(v.i, want, "\"%s\" row %u = %lld, want %lld", text, row, (long long)v.i,
	             (long long)want);
	expr_free(e);
}

static void is_ts(const char *text, uint32_t row, int64_t want)
{
	expr *e;
	ev_val v = ev(&e, text, row, EV_TIMESTAMP);
	cr_assert_eq(v.type, EV_TIMESTAMP, "\"%s\" row %u is null", text, row);
	cr_assert_eq(v.i, want, "\"%s\" row %u = %lld, want %lld", text, row, (long long)v.i,
	             (long long)want);
	expr_free(e);
}

static void is_float(const char *text, uint32_t row, double want)
{
	expr *e;
	ev_val v = ev(&e, text, row, EV_FLOAT);
	cr_assert_eq(v.type, EV_FLOAT, "\"%s\" row %u is null", text, row);
	cr_assert(v.f == want, "\"%s\" row %u = %.17g, want %.17g", text, row, v.f, want);
	expr_free(e);
}

static void is_bool(const char *text, uint32_t row, bool want)
{
	expr *e;
	ev_val v = ev(&e, text, row, EV_BOOL);
	cr_assert_eq(v.type, EV_BOOL, "\"%s\" row %u is null", text, row);
	cr_assert_eq(v.b, want, "\"%s\" row %u = %d, want %d", text, row, v.b, want);
	expr_free(e);
}

static void is_str(const char *text, uint32_t row, const char *want)
{
	expr *e;
	ev_val v = ev(&e, text, row, EV_STRING);
	cr_assert_eq(v.type, EV_STRING, "\"%s\" row %u is null", text, row);
	cr_assert(v.s.len == strlen(want) && memcmp(v.s.p, want, v.s.len) == 0,
	          "\"%s\" row %u = '%.*s', want '%s'", text, row, (int)v.s.len, v.s.p, want);
	expr_free(e);
}

/* is_null: text has static type `type` and is null on row. */
static void is_null(const char *text, uint32_t row, ev_type type)
{
	expr *e;
	ev_val v = ev(&e, text, row, type);
	cr_assert_eq(v.type, EV_NULL, "\"%s\" row %u is not null", text, row);
	expr_free(e);
}

static void bad(const char *text, int col, const char *msg)
{
	expr *e = (expr *)&S; /* must be reset to NULL */
	expr_error err = { .col = -1 };
	cr_assert_eq(expr_compile(text, &S, &e, &err), EDDY_EINVAL, "\"%s\" compiled", text);
	cr_assert_null(e);
	cr_assert_str_eq(err.msg, msg, "\"%s\"", text);
	cr_assert_eq(err.col, col, "\"%s\": col %d, want %d (%s)", text, err.col, col, msg);
}

Test(expr, literals)
{
	is_int("42", 0, 42);
	is_int("0", 0, 0);
	is_int("9223372036854775807", 0, INT64_MAX);
	is_int("-9223372036854775808", 0, INT64_MIN);
	is_int("- 5", 0, -5);
	is_float("1.5", 0, 1.5);
	is_float("1e3", 0, 1000.0);
	is_float(".5", 0, 0.5);
	is_float("2.", 0, 2.0);
	is_float("2.5E-1", 0, 0.25);
	is_str("'it''s'", 0, "it's");
	is_str("\"say \"\"hi\"\"\"", 0, "say \"hi\"");
	is_str("'a \"b\"'", 0, "a \"b\"");
	is_str("''", 0, "");
	is_bool("true", 0, true);
	is_bool("FALSE", 0, false);
	is_null("null", 0, EV_NULL);
	is_null("(NuLL)", 0, EV_NULL);
}

Test(expr, fields_and_expr_field)
{
	is_ts("date", 0, 983802600000LL);
	is_int("delay", 1, -7);
	is_str("origin", 0, "JFK");
	is_str("destination", 1, "");
	is_float("speed", 0, 450.5);
	is_bool("late", 0, true);
	is_bool("late", 1, false);
	is_int("`odd name`", 0, 7);
	is_null("delay", ROW_NULL, EV_INT);
	is_null("origin", ROW_NULL, EV_STRING);
	is_null("late", ROW_NULL, EV_BOOL);

	static const struct {
		const char *text;
		int field;
	} cases[] = {
		{ "delay", F_DELAY },   { "(origin)", F_ORIGIN }, { " ((late)) ", F_LATE },
		{ "`odd name`", F_ODD }, { "date", F_DATE },      { "delay + 0", -1 },
		{ "15", -1 },           { "-delay", -1 },         { "lower(origin)", -1 },
		{ "delay > 15", -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		expr *e = comp(cases[i].text);
		cr_assert_eq(expr_field(e), cases[i].field, "expr_field(\"%s\")", cases[i].text);
		expr_free(e);
	}
}

Test(expr, precedence_and_associativity)
{
	is_int("1 + 2 * 3", 0, 7);
	is_int("(1 + 2) * 3", 0, 9);
	is_int("10 - 4 - 3", 0, 3);
	is_int("100 / 10 / 5", 0, 2);
	is_int("2 * 3 % 4", 0, 2);
	is_int("7 - 2 * 3 + 1", 0, 2);
	is_int("-2 * 3", 0, -6);
	is_int("- -3", 0, 3);
	is_int("-(2 + 3)", 0, -5);
	is_int("-delay * 2", 0, -40);
	is_int("1+2*3", 0, 7);
	/* not binds tighter than and, looser than comparisons */
	is_bool("not late and false", 1, false); /* not(late and false) would be true */
	is_bool("not late and late", 0, false);
	is_bool("not 1 = 2", 0, true);
	is_bool("NOT delay > 15", 0, false);
	is_bool("not not late", 0, true);
	/* and binds tighter than or */
	is_bool("true or false and false", 0, true);
	is_bool("(true or false) and false", 0, false);
	is_bool("late or late and false", 0, true);
	/* comparison after arithmetic */
	is_bool("1 + 2 = 3 and 2 * 2 = 4", 0, true);
	is_bool("delay + 1 > 20", 0, true);
	is_bool("1 < 2 = true", 0, true);
}

Test(expr, int_float_promotion)
{
	is_float("1 + 1.5", 0, 2.5);
	is_float("1.5 + 1", 0, 2.5);
	is_int("7 / 2", 0, 3);
	is_float("7 / 2.0", 0, 3.5);
	is_float("7.0 / 2", 0, 3.5);
	is_float("7.5 % 2", 0, 1.5);
	is_float("-7.5 % 2", 0, -1.5);
	is_float("speed * 2", 0, 901.0);
	is_float("delay + speed", 0, 470.5);
	is_float("delay - 0.5", 1, -7.5);
	is_float("-speed", 0, -450.5);
	is_float("2 * 3 * 0.5", 0, 3.0);
	is_int("delay * distance", 0, 20000);
}

Test(expr, division_and_modulo)
{
	is_int("7 / 2", 0, 3);
	is_int("-7 / 2", 0, -3);
	is_int("7 / -2", 0, -3);
	is_int("-7 / -2", 0, 3);
	is_int("7 % 3", 0, 1);
	is_int("-7 % 3", 0, -1);
	is_int("7 % -3", 0, 1);
	is_int("-7 % -3", 0, -1);
	is_int("delay / 2", 1, -3);
	is_int("delay % 4", 1, -3);
	is_null("1 / 0", 0, EV_INT);
	is_null("1 % 0", 0, EV_INT);
	is_null("1.0 / 0", 0, EV_FLOAT);
	is_null("1.5 % 0.0", 0, EV_FLOAT);
	is_null("delay / 0", 0, EV_INT);
	is_null("delay / (distance - distance)", 0, EV_INT);
	is_null("delay % (delay - 20)", 0, EV_INT);
	is_null("speed / speed", 1, EV_FLOAT); /* 0.0 / 0.0 */
	is_null("-9223372036854775808 / -1", 0, EV_INT);
	is_int("-9223372036854775808 % -1", 0, 0);
	is_null("distance / -1", 3, EV_INT);
	is_int("distance % -1", 3, 0);
}

Test(expr, integer_overflow_is_null)
{
	is_null("9223372036854775807 + 1", 0, EV_INT);
	is_null("-9223372036854775808 - 1", 0, EV_INT);
	is_null("4611686018427387904 * 2", 0, EV_INT);
	is_int("4611686018427387903 * 2", 0, 9223372036854775806LL);
	is_null("delay + 1", 3, EV_INT);
	is_int("delay - 1", 3, INT64_MAX - 1);
	is_null("distance - 1", 3, EV_INT);
	is_null("-distance", 3, EV_INT);
	is_null("-(-9223372036854775808)", 0, EV_INT);
	is_null("delay * delay", 3, EV_INT);
	is_int("delay * -1", 3, -INT64_MAX);
	is_null("abs(distance)", 3, EV_INT);
	is_null("date - delay - delay", 3, EV_TIMESTAMP);
	is_null("date + 9223372036854775807", 0, EV_TIMESTAMP);
}

Test(expr, comparisons)
{
	static const struct {
		const char *text;
		bool want;
	} cases[] = {
		{ "1 = 1", true },        { "1 == 2", false },     { "1 != 2", true },
		{ "1 <> 1", false },      { "1 < 2", true },       { "2 < 1", false },
		{ "2 <= 2", true },       { "3 <= 2", false },     { "3 > 2", true },
		{ "2 > 2", false },       { "2 >= 2", true },      { "1 >= 2", false },
		{ "1 = 1.0", true },      { "2 > 1.5", true },     { "1.5 < 2", true },
		{ "0.1 + 0.2 = 0.3", false },                      { "-0.0 = 0", true },
		{ "'a' < 'b'", true },    { "'ab' < 'abc'", true }, { "'' < 'a'", true },
		{ "'b' > 'abc'", true },  { "'Z' < 'a'", true },   { "'abc' = 'abc'", true },
		{ "'abc' = 'ab'", false }, { "'x' != 'y'", true }, { "'' = ''", true },
		{ "'\xc3\xa9' > 'z'", true }, /* bytes compare unsigned */
		{ "true = true", true },  { "true != false", true }, { "false <> false", false },
		{ "late = true", true },  { "late != late", false },
		{ "date = date", true },  { "date > date - 1", true }, { "date <= date + 0", true },
		{ "origin = 'JFK'", true }, { "origin > 'JFK'", false }, { "origin >= 'JF'", true },
		{ "'JFK' = origin", true }, { "'JFKA' > origin", true },
		{ "origin < destination", true },
		{ "delay > 15", true },   { "15 < delay", true },  { "delay >= 20.0", true },
		{ "delay > 19.5", true }, { "20.5 > delay", true }, { "speed > 450", true },
		{ "speed = 450.5", true }, { "450 < speed", true },
		{ "distance = delay * 50", true },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_bool(cases[i].text, 0, cases[i].want);
	/* NaN: unordered, unequal to everything, itself included */
	is_bool("speed = speed", 4, false);
	is_bool("speed != speed", 4, true);
	is_bool("speed < 1", 4, false);
	is_bool("speed >= 1", 4, false);
	is_bool("speed <> 1.5", 4, true);
	is_bool("speed + 0 <> 1.5", 4, true);
	is_bool("speed + 0 = speed", 4, false);
	is_bool("delay = speed", 4, false);
	/* null on either side */
	is_null("delay > 15", ROW_NULL, EV_BOOL);
	is_null("15 < delay", ROW_NULL, EV_BOOL);
	is_null("origin = 'JFK'", ROW_NULL, EV_BOOL);
	is_null("speed > 1", ROW_NULL, EV_BOOL);
	is_null("late = true", ROW_NULL, EV_BOOL);
	is_null("date > '2001-01-01'", ROW_NULL, EV_BOOL);
	is_null("delay = null", 0, EV_BOOL);
	is_null("null <> null", 0, EV_BOOL);
	is_null("origin < null", 0, EV_BOOL);
}

/* The one-node `field op constant` forms give what the general comparison gives. */
Test(expr, field_constant_forms_match_general_comparison)
{
	static const char *const ops[] = { "=", "==", "!=", "<>", "<", "<=", ">", ">=" };
	static const char *const fc[][2] = {
		/* one-node form, general form */
		{ "delay %s %s", "delay + 0 %s %s" },
		{ "%2$s %1$s delay", "%2$s %1$s delay + 0" },
		{ "speed %s %s", "speed * 1 %s %s" },
		{ "%2$s %1$s speed", "%2$s %1$s speed * 1" },
		{ "date %s %s", "date + 0 %s %s" },
		{ "%2$s %1$s date", "%2$s %1$s date + 0" },
		/* negated: coalesce keeps the general form from being inverted in place */
		{ "not delay %s %s", "not coalesce(delay + 0 %s %s)" },
		{ "not %2$s %1$s speed", "not coalesce(%2$s %1$s speed * 1)" },
		{ "not date %s %s", "not coalesce(date + 0 %s %s)" },
	};
	static const char *const nums[] = { "-7", "15", "20", "21", "19.5", "450.5", "0", "-2.5" };
	static const char *const dates[] = { "'2001-03-05 14:30:00'", "'2001-03-01'",
		                             "'1970-01-01'", "'1969-12-31 23:00:00'" };
	int checked = 0;
	for (size_t f = 0; f < sizeof(fc) / sizeof(fc[0]); f++)
		for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
			for (size_t c = 0; c < 8; c++) {
				bool ts = strstr(fc[f][0], "date") != NULL;
				const char *k = ts ? dates[c % 4] : nums[c];
				char a[64], g[64];
				snprintf(a, sizeof(a), fc[f][0], ops[o], k);
				snprintf(g, sizeof(g), fc[f][1], ops[o], k);
				expr *x = comp(a), *y = comp(g);
				for (uint32_t r = 0; r < NROWS; r++) {
					ev_val vx = expr_eval(x, B, r, &SC),
					       vy = expr_eval(y, B, r, &SC);
					cr_assert_eq(vx.type, vy.type, "%s vs %s row %u", a, g, r);
					cr_assert(vx.type == EV_NULL || vx.b == vy.b,
					          "%s vs %s row %u", a, g, r);
					cr_assert_eq(expr_eval_bool(x, B, r, &SC),
					             expr_eval_bool(y, B, r, &SC));
					checked++;
				}
				expr_free(x);
				expr_free(y);
			}
	/* strings, both sides, and negated forms */
	static const char *const sk[] = { "'JFK'", "'sfo'", "'Ab'", "''", "'JFKX'", "'A'" };
	for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
		for (size_t c = 0; c < sizeof(sk) / sizeof(sk[0]); c++)
			for (int form = 0; form < 3; form++) {
				char a[64], g[64];
				if (form == 0) {
					snprintf(a, sizeof(a), "origin %s %s", ops[o], sk[c]);
					snprintf(g, sizeof(g), "concat(origin) %s %s", ops[o],
					         sk[c]);
				} else if (form == 1) {
					snprintf(a, sizeof(a), "%s %s origin", sk[c], ops[o]);
					snprintf(g, sizeof(g), "%s %s concat(origin)", sk[c],
					         ops[o]);
				} else {
					snprintf(a, sizeof(a), "not origin %s %s", ops[o], sk[c]);
					snprintf(g, sizeof(g), "not coalesce(concat(origin) %s %s)",
					         ops[o], sk[c]);
				}
				expr *x = comp(a), *y = comp(g);
				for (uint32_t r = 0; r < NROWS; r++) {
					expr_scratch_reset(&SC);
					ev_val vx = expr_eval(x, B, r, &SC),
					       vy = expr_eval(y, B, r, &SC);
					cr_assert_eq(vx.type, vy.type, "%s vs %s row %u", a, g, r);
					cr_assert(vx.type == EV_NULL || vx.b == vy.b,
					          "%s vs %s row %u", a, g, r);
					checked++;
				}
				expr_free(x);
				expr_free(y);
			}
	cr_assert_gt(checked, 1000);
	/* spot checks of the mirrored forms */
	is_bool("20 >= delay", 0, true);
	is_bool("20 > delay", 0, false);
	is_bool("21 > delay", 0, true);
	is_bool("'JFL' > origin", 0, true);
	is_bool("not delay > 15", 1, true);
	is_bool("not delay <= 15", 1, false);
}

Test(expr, timestamps)
{
	is_bool("date >= '2001-03-01'", 0, true);
	is_bool("date >= '2001-03-01'", 1, false);
	is_null("date >= '2001-03-01'", ROW_NULL, EV_BOOL);
	is_bool("'2001-03-01' <= date", 0, true);
	is_bool("'2001-03-01' <= date", 1, false);
	is_bool("date = '2001-03-05 14:30:00'", 0, true);
	is_bool("date = '2001-03-05T14:30:00Z'", 0, true);
	is_bool("date < '2001-03-01 00:00:00.000'", 1, true);
	is_bool("date < \"2001-02-28 23:59:59.999\"", 1, false);
	is_bool("date + 1 = '2001-03-01'", 1, true);
	is_bool("date < 0 + date + 1", 0, true);
	is_ts("date + 1000", 0, 983802601000LL);
	is_ts("1000 + date", 0, 983802601000LL);
	is_ts("date - 1000", 0, 983802599000LL);
	is_ts("date + delay", 0, 983802600020LL);
	is_int("date - date", 0, 0);
	is_int("(date + 60000) - date", 0, 60000);
	is_null("date - date", ROW_NULL, EV_INT);
	is_null("date + 1", ROW_NULL, EV_TIMESTAMP);
	is_null("date + delay", ROW_NULL, EV_TIMESTAMP);
}

Test(expr, time_functions)
{
	is_int("hour(date)", 0, 14);
	is_int("day(date)", 0, 5);
	is_int("month(date)", 0, 3);
	is_int("year(date)", 0, 2001);
	is_int("hour(date)", 1, 23);
	is_int("day(date)", 1, 28);
	is_int("month(date)", 1, 2);
	is_int("day(date + 1)", 1, 1);
	is_int("month(date + 1)", 1, 3);
	is_int("hour(date)", 3, 23); /* before the epoch */
	is_int("day(date)", 3, 31);
	is_int("month(date)", 3, 12);
	is_int("YEAR(date)", 3, 1969);
	is_int("year(date)", 4, 1970);
	is_int("hour(date)", 4, 0);
	is_null("hour(date)", ROW_NULL, EV_INT);
	is_null("year(null)", 0, EV_INT);
}

Test(expr, abs_lower_upper_length)
{
	is_int("abs(-5)", 0, 5);
	is_int("abs(5)", 0, 5);
	is_int("abs(delay)", 1, 7);
	is_int("abs(0)", 0, 0);
	is_float("abs(-2.5)", 0, 2.5);
	is_float("ABS(speed)", 3, 2.5);
	is_null("abs(delay)", ROW_NULL, EV_INT);
	is_null("abs(null)", 0, EV_INT);
	is_str("lower('AbC-\xc3\x89z')", 0, "abc-\xc3\x89z"); /* ASCII letters only */
	is_str("upper('abc-\xc3\xa9Z_1')", 0, "ABC-\xc3\xa9Z_1");
	is_str("upper(origin)", 1, "SFO");
	is_str("Lower(origin)", 0, "jfk");
	is_str("lower('')", 0, "");
	is_str("lower(destination)", 1, "");
	is_null("lower(origin)", ROW_NULL, EV_STRING);
	is_null("upper(null)", 0, EV_STRING);
	is_int("length('h\xc3\xa9llo')", 0, 6); /* bytes */
	is_int("length('')", 0, 0);
	is_int("length(destination)", 1, 0);
	is_int("length(origin)", 0, 3);
	is_null("length(origin)", ROW_NULL, EV_INT);
}

Test(expr, concat)
{
	is_str("concat('a')", 0, "a");
	is_str("concat(origin, '-', destination)", 0, "JFK-LAX");
	is_str("concat(origin, destination)", 1, "sfo");
	is_str("concat('', '')", 0, "");
	is_str("CONCAT(lower(origin), upper(destination), lower(destination))", 0, "jfkLAXlax");
	is_null("concat(origin, '-', destination)", ROW_NULL, EV_STRING);
	is_null("concat('a', null)", 0, EV_STRING);
	is_null("concat(lower(origin), 'x')", ROW_NULL, EV_STRING);
	/* more arguments than one node holds */
	is_str("concat('a','b','c','d','e','f','g','h','i','j')", 0, "abcdefghij");
	is_str("concat(origin,'1','2','3','4','5','6','7','8','9','10','11','12','13','14',"
	       "'15','16',destination)",
	       0, "JFK12345678910111213141516LAX");
	is_null("concat('1','2','3','4','5','6','7','8','9','10','11','12','13',origin)",
	        ROW_NULL, EV_STRING);
}

Test(expr, substr)
{
	is_str("substr('hello', 2)", 0, "ello");
	is_str("substr('hello', 2, 3)", 0, "ell");
	is_str("substr('hello', 1, 5)", 0, "hello");
	is_str("substr('hello', 1, 100)", 0, "hello");
	is_str("substr('hello', 0, 3)", 0, "he"); /* positions 0..2: only 1..2 exist */
	is_str("substr('hello', -1, 3)", 0, "h");
	is_str("substr('hello', -5, 3)", 0, "");
	is_str("substr('hello', 5)", 0, "o");
	is_str("substr('hello', 6)", 0, "");
	is_str("substr('hello', 10, 2)", 0, "");
	is_str("substr('hello', 2, 0)", 0, "");
	is_str("substr('', 1)", 0, "");
	is_str("substr('', 1, 5)", 0, "");
	is_str("substr('hello', -9223372036854775808, 9223372036854775807)", 0, "");
	is_str("substr('hello', 3, 9223372036854775807)", 0, "llo");
	is_str("substr('hello', 9223372036854775807, 9223372036854775807)", 0, "");
	is_str("substr(origin, 2)", 0, "FK");
	is_str("substr(origin, delay, 1)", 4, "");
	is_str("SUBSTR(upper(origin), 1, 2)", 1, "SF");
	is_null("substr('hello', 1, -1)", 0, EV_STRING);
	is_null("substr(origin, 1)", ROW_NULL, EV_STRING);
	is_null("substr('hello', delay)", ROW_NULL, EV_STRING);
	is_null("substr('hello', 1, delay)", ROW_NULL, EV_STRING);
	is_null("substr(null, 1)", 0, EV_STRING);
	is_null("substr('abc', 1, null)", 0, EV_STRING);
}

Test(expr, coalesce_and_if)
{
	is_int("coalesce(null, 1)", 0, 1);
	is_int("coalesce(delay, 0)", ROW_NULL, 0);
	is_int("coalesce(delay, 0)", 0, 20);
	is_int("coalesce(delay)", 1, -7);
	is_float("coalesce(delay, 1.5)", 0, 20.0);
	is_float("coalesce(delay, 1.5)", ROW_NULL, 1.5);
	is_float("coalesce(speed, delay, 3)", ROW_NULL, 3.0);
	is_str("coalesce(origin, destination, 'x')", ROW_NULL, "x");
	is_str("coalesce(lower(origin), 'x')", 0, "jfk");
	is_ts("coalesce(date, date + 1)", 0, 983802600000LL);
	is_null("coalesce(delay, distance)", ROW_NULL, EV_INT);
	is_null("coalesce(delay, null)", ROW_NULL, EV_INT);
	is_bool("coalesce(late, false)", ROW_NULL, false);
	is_int("if(true, 1, 2)", 0, 1);
	is_int("if(false, 1, 2)", 0, 2);
	is_int("if(null, 1, 2)", 0, 2);
	is_int("if(late, 1, 2)", ROW_NULL, 2); /* null condition: else */
	is_str("if(late, 'y', 'n')", 0, "y");
	is_str("IF(late, 'y', 'n')", 1, "n");
	is_float("if(late, 1, 2.5)", 0, 1.0);
	is_float("if(late, 1, 2.5)", 1, 2.5);
	is_null("if(late, null, 3)", 0, EV_INT);
	is_int("if(late, null, 3)", 1, 3);
	is_null("if(delay > 0, delay, null)", ROW_NULL, EV_INT);
	is_int("if(delay > 0, delay, 0 - delay)", 1, 7);
	is_bool("if(late, delay > 15, false)", 0, true);
	is_ts("if(late, date, date + 1)", 1, 983404800000LL);
}

Test(expr, three_valued_logic)
{
	/* rows: late is true on 0, false on 1, null on ROW_NULL */
	static const uint32_t rows[3] = { 0, 1, ROW_NULL };
	static const char *const lit[3] = { "true", "false", "null" };
	/* results: 0 false, 1 true, 2 null; [a][b] */
	static const int and_t[3][3] = { { 1, 0, 2 }, { 0, 0, 0 }, { 2, 0, 2 } };
	static const int or_t[3][3] = { { 1, 1, 1 }, { 1, 0, 2 }, { 1, 2, 2 } };
	static const int not_t[3] = { 0, 1, 2 };
	for (int a = 0; a < 3; a++) {
		for (int b = 0; b < 3; b++) {
			char t[64];
			const int *want[2] = { &and_t[a][b], &or_t[a][b] };
			const char *ops[2] = { "and", "or" };
			for (int o = 0; o < 2; o++) {
				/* all literals (folded), field on the left, field on the right */
				for (int form = 0; form < 3; form++) {
					uint32_t row = 0;
					if (form == 0)
						snprintf(t, sizeof(t), "%s %s %s", lit[a], ops[o],
						         lit[b]);
					else if (form == 1) {
						snprintf(t, sizeof(t), "late %s %s", ops[o],
						         lit[b]);
						row = rows[a];
					} else {
						snprintf(t, sizeof(t), "%s %s late", lit[a],
						         ops[o]);
						row = rows[b];
					}
					if (*want[o] == 2)
						is_null(t, row, EV_BOOL);
					else
						is_bool(t, row, *want[o] == 1);
				}
			}
		}
		char t[32];
		snprintf(t, sizeof(t), "not %s", lit[a]);
		if (not_t[a] == 2)
			is_null(t, 0, EV_BOOL);
		else
			is_bool(t, 0, not_t[a] == 1);
		if (not_t[a] == 2)
			is_null("not late", rows[a], EV_BOOL);
		else
			is_bool("not late", rows[a], not_t[a] == 1);
	}
	/* chains, both fields */
	is_bool("late and delay > 15", 0, true);
	is_bool("late and delay > 15", 1, false);
	is_null("late and delay > 15", ROW_NULL, EV_BOOL);
	is_bool("late or delay > 15 or origin = 'x'", 1, false);
	is_null("late or delay > 15 or origin = 'x'", ROW_NULL, EV_BOOL);
	is_bool("delay > 100 or late or origin = 'x'", 0, true);
	is_bool("false and null and true", 0, false);
	is_bool("null or true or null", 0, true);
	is_null("null and true and late", 0, EV_BOOL);
	is_bool("null and true and late", 1, false);
	is_bool("late AND NOT late OR true", 0, true);
}

Test(expr, null_literal_typing)
{
	is_null("null + 1", 0, EV_INT);
	is_null("1.5 * null", 0, EV_FLOAT);
	is_null("null + null", 0, EV_INT);
	is_null("date - null", 0, EV_TIMESTAMP);
	is_null("null + date", 0, EV_TIMESTAMP);
	is_null("null - date", 0, EV_INT);
	is_null("-null", 0, EV_INT);
	is_null("not null", 0, EV_BOOL);
	is_null("null = 1", 0, EV_BOOL);
	is_null("lower(null)", 0, EV_STRING);
	is_null("concat(origin, null)", 0, EV_STRING);
	is_null("length(null)", 0, EV_INT);
	is_null("(null)", 0, EV_NULL);
}

Test(expr, keywords_and_names)
{
	is_bool("TRUE Or FALSE", 0, true);
	is_bool("late AnD NoT false", 0, true);
	is_int("`odd name` + 1", 0, 8);
	/* a field named like a function or keyword */
	ev_schema s = { 0 };
	cr_assert_eq(schema_add(&s, "year", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&s, "when", EV_TIMESTAMP), EDDY_OK);
	cr_assert_eq(schema_add(&s, "and", EV_BOOL), EDDY_OK);
	cr_assert_eq(schema_add(&s, "we`ird", EV_INT), EDDY_OK);
	ev_batch *b = batch_new(&s, 1);
	uint32_t r = batch_append_row(b);
	batch_set_int(b, r, 0, 1999);
	batch_set_int(b, r, 1, 983802600000LL);
	batch_set_bool(b, r, 2, true);
	batch_set_int(b, r, 3, 5);
	static const struct {
		const char *text;
		int64_t want;
	} cases[] = { { "year + 1", 2000 }, { "year(when)", 2001 }, { "year (when) - year", 2 },
		      { "if(`and`, 1, 2)", 1 }, { "`we``ird` * 2", 10 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		expr *e = NULL;
		expr_error err;
		cr_assert_eq(expr_compile(cases[i].text, &s, &e, &err), EDDY_OK, "%s: %s",
		             cases[i].text, err.msg);
		ev_val v = expr_eval(e, b, 0, &SC);
		cr_assert_eq(v.type, EV_INT);
		cr_assert_eq(v.i, cases[i].want, "%s", cases[i].text);
		expr_free(e);
	}
	expr *e = NULL;
	expr_error err;
	cr_assert_eq(expr_compile("and", &s, &e, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "unexpected 'and'");
	batch_free(b);
	schema_clear(&s);
}

Test(expr, syntax_errors)
{
	bad("delay > ", 9, "unexpected end of expression");
	bad("delay > 15 foo", 12, "unexpected 'foo'");
	bad("delay 15", 7, "unexpected '15'");
	bad("origin = 'a' 'b'", 14, "unexpected string 'b'");
	bad("(1 + 2", 7, "expected ')' to close '(' at column 1");
	bad("1 + 2)", 6, "unexpected ')'");
	bad("concat(origin, 'x'", 19, "expected ')' after arguments of concat");
	bad("concat(origin 'x')", 15, "expected ')' after arguments of concat");
	bad("concat(origin, )", 16, "unexpected ')'");
	bad("", 1, "empty expression");
	bad("   ", 4, "empty expression");
	bad("delay # 1", 7, "unexpected character '#'");
	bad("delay ! 1", 7, "unexpected character '!'");
	bad("delay > \x01", 9, "unexpected byte 0x01");
	bad("* 2", 1, "unexpected '*'");
	bad("+2", 1, "unexpected '+'");
	bad("delay > > 1", 9, "unexpected '>'");
	bad("origin = 'JFK", 10, "unterminated string");
	bad("origin = \"JFK''", 10, "unterminated string");
	bad("'it''s", 1, "unterminated string");
	bad("`odd name + 1", 1, "unterminated quoted name");
	bad("15abc", 1, "malformed number '15abc'");
	bad("1.2.3", 1, "malformed number '1.2.3'");
	bad("1e", 1, "malformed number '1e'");
	bad("9223372036854775808", 1, "integer literal 9223372036854775808 is out of range");
	bad("delay + 99999999999999999999999", 9,
	    "integer literal 99999999999999999999999 is out of range");
	bad("-9223372036854775809", 2, "integer literal 9223372036854775809 is out of range");
	bad("1e999", 1, "float literal 1e999 is out of range");
	bad("not", 4, "unexpected end of expression");
	bad("late and or late", 10, "unexpected 'or'");
}

Test(expr, name_errors)
{
	bad("dealy > 15", 1, "unknown field 'dealy' (did you mean 'delay'?)");
	bad("delay > 15 and Origin = 'x'", 16, "unknown field 'Origin' (did you mean 'origin'?)");
	bad("ate", 1, "unknown field 'ate' (did you mean 'date'?)"); /* a tie: the first */
	bad("destinaton", 1, "unknown field 'destinaton' (did you mean 'destination'?)");
	bad("`odd nam`", 1, "unknown field 'odd nam' (did you mean 'odd name'?)");
	bad("xyzzy", 1,
	    "unknown field 'xyzzy' (fields: date, delay, distance, origin, destination, speed, "
	    "late, odd name)");
	bad("foo(1)", 1, "unknown function 'foo'");
	bad("1 + lowr(origin)", 5, "unknown function 'lowr' (did you mean 'lower'?)");
	bad("substring(origin, 1)", 1, "unknown function 'substring'");
	bad("abs(1, 2)", 1, "abs takes 1 argument, got 2");
	bad("abs()", 1, "abs takes 1 argument, got 0");
	bad("substr('a')", 1, "substr takes 2 or 3 arguments, got 1");
	bad("substr('a', 1, 2, 3)", 1, "substr takes 2 or 3 arguments, got 4");
	bad("concat()", 1, "concat takes at least 1 argument, got 0");
	bad("coalesce()", 1, "coalesce takes at least 1 argument, got 0");
	bad("if(true, 1)", 1, "if takes 3 arguments, got 2");
	bad("1 + hour(date, 1)", 5, "hour takes 1 argument, got 2");

	/* a schema with many long names: the list is cut short */
	ev_schema s = { 0 };
	char name[40];
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "a_rather_long_field_name_%02d", i);
		cr_assert_eq(schema_add(&s, name, EV_INT), EDDY_OK);
	}
	expr *e = NULL;
	expr_error err;
	cr_assert_eq(expr_compile("zzz", &s, &e, &err), EDDY_EINVAL);
	cr_assert(strncmp(err.msg, "unknown field 'zzz' (fields: a_rather_long_field_name_00, ",
	                  58) == 0,
	          "%s", err.msg);
	size_t n = strlen(err.msg);
	cr_assert_lt(n, sizeof(err.msg));
	cr_assert_str_eq(err.msg + n - 6, ", ...)", "%s", err.msg);
	schema_clear(&s);
	cr_assert_eq(expr_compile("zzz", &s, &e, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "unknown field 'zzz' (the input has no fields)");
}

Test(expr, type_errors)
{
	bad("origin + 1", 8, "operator '+' cannot add string and int");
	bad("1 - date", 3, "operator '-' cannot subtract int and timestamp");
	bad("date + date", 6, "operator '+' cannot add timestamp and timestamp");
	bad("date * 2", 6, "operator '*' cannot multiply timestamp and int");
	bad("late / 2", 6, "operator '/' cannot divide bool and int");
	bad("1 % 'a'", 3, "operator '%' cannot take the remainder of int and string");
	bad("date + 1.5", 6, "operator '+' cannot add timestamp and float");
	bad("origin + null", 8, "operator '+' cannot add string and null");
	bad("null * date", 6, "operator '*' cannot multiply null and timestamp");
	bad("-origin", 1, "operator '-' cannot negate string");
	bad("-date", 1, "operator '-' cannot negate timestamp");
	bad("origin > 1", 8, "operator '>' cannot compare string and int");
	bad("origin <> date", 8, "operator '<>' cannot compare string and timestamp");
	bad("date = 5", 6, "operator '=' cannot compare timestamp and int");
	bad("late = 1", 6, "operator '=' cannot compare bool and int");
	bad("late < true", 6, "operator '<' cannot order bools (only = and != apply)");
	bad("date > 'yesterday'", 8,
	    "operator '>' cannot compare timestamp and 'yesterday' (not a timestamp)");
	bad("'2001-02-30' = date", 1,
	    "operator '=' cannot compare timestamp and '2001-02-30' (not a timestamp)");
	bad("date > destination", 6, "operator '>' cannot compare timestamp and string");
	bad("delay and late", 7, "operator 'and' needs bool operands, not int");
	bad("late or origin", 6, "operator 'or' needs bool operands, not string");
	bad("late and true or 1", 15, "operator 'or' needs bool operands, not int");
	bad("not delay", 1, "operator 'not' needs a bool operand, not int");
	bad("lower(delay)", 7, "argument 1 of lower must be a string, not an int");
	bad("length(late)", 8, "argument 1 of length must be a string, not a bool");
	bad("concat(origin, delay)", 16, "argument 2 of concat must be a string, not an int");
	bad("substr(origin, 1.5)", 16, "argument 2 of substr must be an int, not a float");
	bad("substr(origin, 1, '2')", 19, "argument 3 of substr must be an int, not a string");
	bad("abs(origin)", 5, "argument 1 of abs must be a number, not a string");
	bad("hour(delay)", 6, "argument 1 of hour must be a timestamp, not an int");
	bad("coalesce(delay, origin)", 17, "argument 2 of coalesce must be an int, not a string");
	bad("coalesce(null, date, 1)", 22,
	    "argument 3 of coalesce must be a timestamp, not an int");
	bad("coalesce(null, null)", 1, "every argument of coalesce is null");
	bad("if(delay, 1, 2)", 4, "argument 1 of if must be a bool, not an int");
	bad("if(late, 1, 'x')", 13, "argument 3 of if must be an int, not a string");
	bad("if(late, null, null)", 1, "both branches of if are null");
}

Test(expr, nesting_limit)
{
	char text[2048];
	/* deep parentheses */
	size_t n = 0;
	for (int i = 0; i < 300; i++)
		text[n++] = '(';
	text[n++] = '1';
	for (int i = 0; i < 300; i++)
		text[n++] = ')';
	text[n] = '\0';
	bad(text, 257, "expression is nested too deeply (limit 256)");
	/* a long left-deep chain */
	n = (size_t)snprintf(text, sizeof(text), "delay");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "+1");
	expr *e = NULL;
	expr_error err;
	cr_assert_eq(expr_compile(text, &S, &e, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "expression is nested too deeply (limit 256)");
	/* a long chain of ors is one level */
	n = (size_t)snprintf(text, sizeof(text), "origin = 'x'");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, " or delay = %d", i);
	is_bool(text, 0, true);
	is_bool(text, 1, false);
	/* 200 levels are fine */
	n = 0;
	for (int i = 0; i < 200; i++)
		text[n++] = '(';
	n += (size_t)snprintf(text + n, sizeof(text) - n, "delay");
	for (int i = 0; i < 200; i++)
		text[n++] = ')';
	text[n] = '\0';
	is_int(text, 0, 20);
}

/* Strings made earlier in a record stay valid while later ones grow the scratch. */
Test(expr, scratch_keeps_earlier_strings)
{
	expr *small = comp("upper(origin)");
	char big[2000];
	memset(big, 'x', sizeof(big) - 1);
	big[0] = '\'';
	big[sizeof(big) - 2] = '\'';
	big[sizeof(big) - 1] = '\0';
	char text[2100];
	snprintf(text, sizeof(text), "concat(lower(origin), %s)", big);
	expr *large = comp(text);
	expr_scratch sc = { 0 };
	int64_t live = rt_alloc_live();
	ev_val a = expr_eval(small, B, 0, &sc);
	ev_val b = expr_eval(large, B, 0, &sc); /* needs a new chunk */
	ev_val c = expr_eval(small, B, 1, &sc);
	cr_assert_eq(a.type, EV_STRING);
	cr_assert_eq(a.s.len, 3);
	cr_assert(memcmp(a.s.p, "JFK", 3) == 0);
	cr_assert_eq(b.s.len, 3 + 1997);
	cr_assert(memcmp(b.s.p, "jfkxxx", 6) == 0);
	cr_assert_eq(b.s.p[b.s.len - 1], 'x');
	cr_assert(memcmp(c.s.p, "SFO", 3) == 0);
	cr_assert_gt(rt_alloc_live(), live + 1); /* two chunks */
	expr_scratch_reset(&sc);
	cr_assert_eq(rt_alloc_live(), live + 1); /* the newest is kept */
	b = expr_eval(large, B, 0, &sc);
	cr_assert_eq(rt_alloc_live(), live + 1); /* and is reused */
	cr_assert_eq(b.s.len, 2000);
	expr_scratch_free(&sc);
	cr_assert_eq(rt_alloc_live(), live);
	cr_assert_null(sc.buf);
	expr_scratch_free(&sc); /* twice is safe */
	expr_scratch_reset(&sc);
	expr_free(small);
	expr_free(large);
}

/* Steady state allocates nothing: 100,000 evaluations after the first. */
Test(expr, no_allocation_per_record)
{
	static const char *const texts[] = {
		"concat(lower(origin), '-', destination)",
		"upper(concat(origin, substr(destination, 2), lower(origin)))",
		"length(lower(destination)) = 3 or delay > 15 and origin = 'JFK'",
	};
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		expr *e = comp(texts[t]);
		expr_scratch sc = { 0 };
		ev_val first = expr_eval(e, B, 0, &sc);
		cr_assert_neq(first.type, EV_NULL);
		int64_t live = rt_alloc_live();
		uint64_t sum = 0;
		for (int i = 0; i < 100000; i++) {
			expr_scratch_reset(&sc);
			ev_val v = expr_eval(e, B, (uint32_t)i % NROWS, &sc);
			sum += v.type == EV_STRING ? v.s.len : v.type == EV_BOOL ? v.b : 0;
		}
		cr_assert_eq(rt_alloc_live(), live, "%s allocated per record", texts[t]);
		cr_assert_gt(sum, 0);
		expr_scratch_reset(&sc);
		ev_val v = expr_eval(e, B, 0, &sc);
		if (t == 0)
			cr_assert(v.s.len == 7 && memcmp(v.s.p, "jfk-LAX", 7) == 0);
		expr_scratch_free(&sc);
		expr_free(e);
	}
}

Test(expr, no_leaks)
{
	int64_t live = rt_alloc_live();
	static const char *const texts[] = {
		"concat(lower(origin), '-', destination)",
		"date >= '2001-03-01' and delay > 15",
		"coalesce(speed, delay, 1)",
		"if(late, substr(origin, 2), upper('x'))",
		"concat('a','b','c','d','e','f','g','h','i','j','k', origin)",
		"lower('CONST')",
		"null",
	};
	expr_scratch sc = { 0 };
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		expr *e = comp(texts[t]);
		for (uint32_t r = 0; r < NROWS; r++) {
			expr_eval(e, B, r, &sc);
			expr_eval_bool(e, B, r, &sc);
		}
		expr_free(e);
	}
	expr_scratch_free(&sc);
	/* failed compiles free what they built */
	bad("concat(lower(origin), '-', destination) + 1", 41,
	    "operator '+' cannot add string and int");
	bad("if(late, 'x', 'y' 'z')", 19, "expected ')' after arguments of if");
	bad("concat('a','b','c','d','e','f','g','h','i', delay)", 45,
	    "argument 10 of concat must be a string, not an int");
	expr_free(NULL);
	cr_assert_eq(rt_alloc_live(), live);
}

Test(expr, allocation_failures)
{
	const char *text = "concat(lower(origin), 'x', 'y', 'z', 'w', 'v', 'u', 't', 's', 'r') "
	                   "= upper('abc') or delay > 1 + 2 and coalesce(speed, 1) > 2";
	int64_t live = rt_alloc_live();
	int failures = 0;
	for (int64_t n = 0;; n++) {
		expr *e = (expr *)&S;
		expr_error err;
		rt_alloc_fail_after(n);
		eddy_err rc = expr_compile(text, &S, &e, &err);
		rt_alloc_fail_after(-1);
		if (rc == EDDY_OK) {
			expr_free(e);
			break;
		}
		failures++;
		cr_assert_eq(rc, EDDY_ENOMEM, "n %lld: %s", (long long)n, err.msg);
		cr_assert_null(e);
		cr_assert_str_eq(err.msg, "out of memory");
		cr_assert_eq(err.col, 0);
		cr_assert_eq(rt_alloc_live(), live, "leak after failure %lld", (long long)n);
		cr_assert_lt(n, 1000);
	}
	cr_assert_gt(failures, 3);
	cr_assert_eq(rt_alloc_live(), live);

	/* a string function that cannot get scratch memory yields null */
	expr *e = comp("lower(origin)");
	expr_scratch sc = { 0 };
	rt_alloc_fail_after(0);
	ev_val v = expr_eval(e, B, 0, &sc);
	rt_alloc_fail_after(-1);
	cr_assert_eq(v.type, EV_NULL);
	v = expr_eval(e, B, 0, &sc);
	cr_assert_eq(v.type, EV_STRING);
	/* so does one without a scratch; views and comparisons need none */
	cr_assert_eq(expr_eval(e, B, 0, NULL).type, EV_NULL);
	expr_free(e);
	e = comp("substr(origin, 2) = 'FK' and length(origin) = 3");
	cr_assert(expr_eval_bool(e, B, 0, NULL));
	expr_free(e);
	expr_scratch_free(&sc);
	cr_assert_eq(rt_alloc_live(), live);
}

Test(expr, eval_bool_as_filter)
{
	static const struct {
		const char *text;
		bool want[NROWS];
	} cases[] = {
		{ "delay > 15", { true, false, false, true, false } },
		{ "not delay > 15", { false, true, false, false, true } },
		{ "late", { true, false, false, true, false } },
		{ "delay", { false, false, false, false, false } }, /* not a bool */
		{ "null", { false, false, false, false, false } },
		{ "if(late, true, null)", { true, false, false, true, false } },
		{ "coalesce(late, true)", { true, false, true, true, false } },
		{ "date >= '2001-03-01' and origin = 'JFK'", { true, false, false, false, false } },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		expr *e = comp(cases[i].text);
		for (uint32_t r = 0; r < NROWS; r++)
			cr_assert_eq(expr_eval_bool(e, B, r, &SC), cases[i].want[r], "%s row %u",
			             cases[i].text, r);
		expr_free(e);
	}
}

Test(expr, null_arguments)
{
	expr *e = NULL;
	expr_error err;
	cr_assert_eq(expr_compile(NULL, &S, &e, &err), EDDY_EINVAL);
	cr_assert_null(e);
	cr_assert_eq(expr_compile("1", NULL, &e, &err), EDDY_EINVAL);
	/* err may be NULL */
	cr_assert_eq(expr_compile("nope", &S, &e, NULL), EDDY_EINVAL);
	cr_assert_eq(expr_compile("1", &S, &e, NULL), EDDY_OK);
	expr_free(e);
}

typedef struct worker {
	const expr *e;
	int ok;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	expr_scratch sc = { 0 };
	for (int i = 0; i < 20000; i++) {
		expr_scratch_reset(&sc);
		uint32_t r = (uint32_t)i % 2;
		ev_val v = expr_eval(w->e, B, r, &sc);
		const char *want = r == 0 ? "jfk-LAX" : "sfo-";
		if (v.type == EV_STRING && v.s.len == strlen(want) &&
		    memcmp(v.s.p, want, v.s.len) == 0)
			w->ok++;
	}
	expr_scratch_free(&sc);
	return NULL;
}

Test(expr, concurrent_evaluation)
{
	expr *e = comp("concat(lower(origin), '-', destination)");
	pthread_t t[4];
	worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){ .e = e };
		cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].ok, 20000);
	}
	expr_free(e);
}
