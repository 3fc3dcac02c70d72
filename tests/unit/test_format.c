/* Record formats: CSV and JSON lines parsing, framing and writing (connectors/format.h). */
#include <criterion/criterion.h>

#include "../../connectors/format.h"
#include "../../runtime/alloc.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T2001 978307200000LL /* 2001-01-01 00:00:00 UTC, ms */

/* The flights schema: date timestamp, delay int, distance int, origin, destination. */
static void flights(ev_schema *s)
{
	*s = (ev_schema){ 0 };
	cr_assert_eq(schema_add(s, "date", EV_TIMESTAMP), EDDY_OK);
	cr_assert_eq(schema_add(s, "delay", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(s, "distance", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(s, "origin", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(s, "destination", EV_STRING), EDDY_OK);
}

/* One field of every type: f float, b bool, s string, i int, t timestamp. */
static void mixed(ev_schema *s)
{
	*s = (ev_schema){ 0 };
	cr_assert_eq(schema_add(s, "f", EV_FLOAT), EDDY_OK);
	cr_assert_eq(schema_add(s, "b", EV_BOOL), EDDY_OK);
	cr_assert_eq(schema_add(s, "s", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(s, "i", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(s, "t", EV_TIMESTAMP), EDDY_OK);
}

static fmt_cursor cursor_n(const char *s, size_t n)
{
	return (fmt_cursor){ .p = s, .end = s + n, .line = 1 };
}

static fmt_cursor cursor(const char *s)
{
	return cursor_n(s, strlen(s));
}

static void assert_str(const ev_batch *b, uint32_t r, uint32_t c, const char *want, size_t n)
{
	cr_assert_not(batch_is_null(b, r, c), "record %u field %u is null", r, c);
	uint32_t len;
	const char *p = batch_get_str(b, r, c, &len);
	cr_assert_eq(len, n, "record %u field %u: length %u, want %zu", r, c, len, n);
	cr_assert(memcmp(p, want, n) == 0, "record %u field %u: '%.*s', want '%s'", r, c, (int)len,
	          p, want);
}
#define ASSERT_STR(b, r, c, lit) assert_str(b, r, c, lit, sizeof(lit) - 1)

static void assert_int(const ev_batch *b, uint32_t r, uint32_t c, int64_t want)
{
	cr_assert_not(batch_is_null(b, r, c), "record %u field %u is null", r, c);
	cr_assert_eq(batch_get_int(b, r, c), want, "record %u field %u: %lld, want %lld", r, c,
	             (long long)batch_get_int(b, r, c), (long long)want);
}

static void assert_flight(const ev_batch *b, uint32_t r, int64_t date, int64_t delay,
                          int64_t distance, const char *origin, const char *dest)
{
	assert_int(b, r, 0, date);
	assert_int(b, r, 1, delay);
	assert_int(b, r, 2, distance);
	assert_str(b, r, 3, origin, strlen(origin));
	assert_str(b, r, 4, dest, strlen(dest));
	cr_assert_eq(b->ts[r], 0);
}

Test(format, kind_parse)
{
	fmt_kind k = FMT_JSONL;
	cr_assert(fmt_kind_parse("csv", &k));
	cr_assert_eq(k, FMT_CSV);
	cr_assert(fmt_kind_parse("jsonl", &k));
	cr_assert_eq(k, FMT_JSONL);
	cr_assert_not(fmt_kind_parse("json", &k));
	cr_assert_not(fmt_kind_parse("CSV", &k));
	cr_assert_not(fmt_kind_parse(NULL, &k));
	cr_assert_eq(k, FMT_JSONL);
}

Test(format, csv_plain_records)
{
	int64_t live = rt_alloc_live();
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 8);
	const char *in = "2001-01-01 00:00:00,14,405,ABQ,DFW\n"
	                 "2001-01-01T06:34:00Z,-23,+528,ROC,ORD\n"
	                 "978307200001,-9223372036854775808,9223372036854775807,a b , c\n"
	                 "2001-01-02,0,00000000000000000000042,X,Y"; /* no final newline */
	fmt_cursor cur = cursor(in);
	fmt_error err;
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	cr_assert_eq(cur.line, 2);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	cr_assert_eq(cur.line, 4);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	cr_assert_eq(cur.p, cur.end);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EEMPTY);
	cr_assert_eq(b->n, 4);
	assert_flight(b, 0, T2001, 14, 405, "ABQ", "DFW");
	assert_flight(b, 1, T2001 + (6 * 60 + 34) * 60000LL, -23, 528, "ROC", "ORD");
	assert_flight(b, 2, T2001 + 1, INT64_MIN, INT64_MAX, "a b ", " c");
	assert_flight(b, 3, T2001 + 86400000LL, 0, 42, "X", "Y");
	batch_free(b);
	schema_clear(&s);
	cr_assert_eq(rt_alloc_live(), live);
}

Test(format, csv_crlf_and_blank_lines)
{
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 8);
	const char *in = "\r\n\n2001-01-01 00:00:00,14,405,ABQ,DFW\r\n\r\n\n"
	                 "2001-01-01 00:00:01,1,2,X,Y\r\n\r\n"
	                 "2001-01-01 00:00:02,x,2,X,Y\r\n\n";
	fmt_cursor cur = cursor(in);
	fmt_error err;
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	cr_assert_eq(cur.line, 4);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	cr_assert_eq(cur.line, 7);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EINVAL);
	cr_assert_eq(err.line, 8);
	cr_assert_eq(err.col, 21);
	cr_assert_eq(err.rec_len, 27, "the record excludes its \\r\\n");
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EEMPTY);
	cr_assert_eq(cur.line, 10);
	cr_assert_eq(cur.p, cur.end);
	cr_assert_eq(b->n, 2);
	assert_flight(b, 0, T2001, 14, 405, "ABQ", "DFW");
	assert_flight(b, 1, T2001 + 1000, 1, 2, "X", "Y");
	batch_free(b);
	schema_clear(&s);
}

Test(format, csv_quoted_fields)
{
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 8);
	const char *in = "2001-01-01 00:00:00,1,2,\"A,B\",\"say \"\"hi\"\"\"\n"
	                 "2001-01-01 00:00:00,3,4,\"multi\nline\",\"two\r\n\n\"\n"
	                 "2001-01-01 00:00:00,5,6,\"\",\"\"\"\"\n"
	                 "\"2001-01-01 00:00:00\",\"7\",\"8\",C,D\r\n"
	                 "2001-01-01 00:00:00,9,10,C,\",\"\n"
	                 "2001-01-01 00:00:00,bad,10,C,D\n";
	fmt_cursor cur = cursor(in);
	fmt_error err;
	int64_t lines[] = { 2, 6, 7, 8, 9 };
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK, "record %d", i);
		cr_assert_eq(cur.line, lines[i], "after record %d: line %lld", i,
		             (long long)cur.line);
	}
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EINVAL);
	cr_assert_eq(err.line, 9);
	cr_assert_eq(err.col, 21);
	cr_assert_str_eq(err.msg, "field 'delay': 'bad' is not an int");
	assert_flight(b, 0, T2001, 1, 2, "A,B", "say \"hi\"");
	assert_flight(b, 1, T2001, 3, 4, "multi\nline", "two\r\n\n");
	assert_flight(b, 2, T2001, 5, 6, "", "\"");
	assert_flight(b, 3, T2001, 7, 8, "C", "D");
	assert_flight(b, 4, T2001, 9, 10, "C", ",");
	batch_free(b);
	schema_clear(&s);
}

/* Field ends, line ends and NUL bytes at every offset around the 16-byte blocks that the
 * scanner may read at a time. */
Test(format, csv_fields_and_nul_at_every_offset)
{
	ev_schema s = { 0 };
	cr_assert_eq(schema_add(&s, "a", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(&s, "n", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&s, "c", EV_STRING), EDDY_OK);
	ev_batch *b = batch_new(&s, 4);
	char in[160], as[48], cs[48];
	memset(as, 'a', sizeof(as));
	memset(cs, 'c', sizeof(cs));
	fmt_error err;
	for (int la = 0; la < 40; la++)
		for (int lc = 0; lc < 40; lc++)
			for (int crlf = 0; crlf < 2; crlf++) {
				const char *eol = crlf ? "\r\n" : "\n";
				int n = snprintf(in, sizeof(in), "%.*s,%d,%.*s%sq,-1,r", la, as, la,
				                 lc, cs, eol);
				fmt_cursor cur = cursor_n(in, (size_t)n);
				batch_clear(b);
				cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
				cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
				cr_assert_eq(cur.line, 2);
				assert_str(b, 0, 0, as, (size_t)la);
				assert_int(b, 0, 1, la);
				assert_str(b, 0, 2, cs, (size_t)lc);
				ASSERT_STR(b, 1, 0, "q");
				assert_int(b, 1, 1, -1);
				ASSERT_STR(b, 1, 2, "r");
			}
	for (int at = 0; at < 40; at++) {
		int n = snprintf(in, sizeof(in), "%.*s,1,c\nq,2,r\n", 38, as);
		in[at] = '\0';
		fmt_cursor cur = cursor_n(in, (size_t)n);
		batch_clear(b);
		cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EINVAL, "NUL at %d",
		             at);
		cr_assert_str_eq(err.msg, "NUL byte in record");
		cr_assert_eq(err.col, at + 1);
		cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
		assert_int(b, 0, 1, 2);
	}
	batch_free(b);
	schema_clear(&s);
}

Test(format, csv_long_quoted_string_unescaped_in_arena)
{
	ev_schema s;
	mixed(&s);
	ev_batch *b = batch_new(&s, 2);
	size_t n = 10000;
	char *in = malloc(3 * n + 64), *want = malloc(2 * n);
	size_t k = 0;
	k += (size_t)sprintf(in, "1,1,\"");
	for (size_t i = 0; i < n; i++) {
		memcpy(in + k, "x\"\"", 3);
		k += 3;
		want[2 * i] = 'x';
		want[2 * i + 1] = '"';
	}
	k += (size_t)sprintf(in + k, "\",2,\n");
	fmt_cursor cur = cursor_n(in, k);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, NULL), EDDY_OK);
	assert_str(b, 0, 2, want, 2 * n);
	cr_assert_eq(b->arena_len, 2 * n, "the arena holds the unescaped bytes only");
	assert_int(b, 0, 3, 2);
	cr_assert(batch_is_null(b, 0, 4));
	free(in);
	free(want);
	batch_free(b);
	schema_clear(&s);
}

Test(format, csv_empty_fields_are_null_except_strings)
{
	ev_schema s;
	mixed(&s);
	ev_batch *b = batch_new(&s, 8);
	const char *in = ",,,,\n"
	                 "\"\",\"\",\"\",\"\",\"\"\n"
	                 "0.25,TRUE,,-7,2001-01-01\n"
	                 "\"-1e3\",False,\" x \",\"+3\",\"978307200000\"\n"
	                 "1,1,s,1,\n"
	                 "2.,0,s,1,\n";
	fmt_cursor cur = cursor(in);
	fmt_error err;
	for (int i = 0; i < 6; i++)
		cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK, "record %d: %s",
		             i, err.msg);
	for (uint32_t r = 0; r < 2; r++) {
		cr_assert(batch_is_null(b, r, 0));
		cr_assert(batch_is_null(b, r, 1));
		ASSERT_STR(b, r, 2, "");
		cr_assert(batch_is_null(b, r, 3));
		cr_assert(batch_is_null(b, r, 4));
	}
	cr_assert_eq(batch_get_float(b, 2, 0), 0.25);
	cr_assert_eq(batch_get_bool(b, 2, 1), true);
	ASSERT_STR(b, 2, 2, "");
	assert_int(b, 2, 3, -7);
	assert_int(b, 2, 4, T2001);
	cr_assert_eq(batch_get_float(b, 3, 0), -1000.0);
	cr_assert_not(batch_is_null(b, 3, 1));
	cr_assert_eq(batch_get_bool(b, 3, 1), false);
	ASSERT_STR(b, 3, 2, " x ");
	assert_int(b, 3, 3, 3);
	assert_int(b, 3, 4, T2001);
	cr_assert_eq(batch_get_bool(b, 4, 1), true);
	cr_assert_eq(batch_get_float(b, 5, 0), 2.0);
	cr_assert_eq(batch_get_bool(b, 5, 1), false);
	batch_free(b);
	schema_clear(&s);
}

/* A malformed record between two good ones: the error, then the next record parses. */
typedef struct bad_case {
	bool mixed;      /* schema: mixed, else flights */
	const char *rec; /* the bad record, without newline */
	size_t len;      /* its length (it may hold a NUL) */
	const char *msg;
	int64_t col;
} bad_case;

#define BAD(m, r, msg, col) { m, r, sizeof(r) - 1, msg, col }

static const bad_case csv_bad[] = {
	BAD(0, "2001-01-01 00:00:00,14,405,ABQ", "expected 5 fields, found 4", 31),
	BAD(0, "2001-01-01 00:00:00,14,405,ABQ,DFW,X", "expected 5 fields, found 6", 36),
	BAD(0, "2001-01-01 00:00:00,14,405,ABQ,DFW,\"X\"", "expected 5 fields, found 6", 36),
	BAD(0, "2001-01-01 00:00:00,abc,405,ABQ,DFW", "field 'delay': 'abc' is not an int", 21),
	BAD(0, "2001-01-01 00:00:00,14,1.5,ABQ,DFW", "field 'distance': '1.5' is not an int", 24),
	BAD(0, "2001-01-01 00:00:00,-,405,ABQ,DFW", "field 'delay': '-' is not an int", 21),
	BAD(0, "2001-01-01 00:00:00, 14,405,ABQ,DFW", "field 'delay': ' 14' is not an int", 21),
	BAD(0, "2001-01-01 00:00:00,14 ,405,ABQ,DFW", "field 'delay': '14 ' is not an int", 21),
	BAD(0, "2001-01-01 00:00:00,\"1\"\"2\",405,ABQ,DFW",
	    "field 'delay': '1\"\"2' is not an int", 21),
	BAD(0, "2001-01-01 00:00:00,99999999999999999999,405,ABQ,DFW",
	    "field 'delay': '99999999999999999999' is out of range for int", 21),
	BAD(0, "2001-01-01 00:00:00,9223372036854775808,405,ABQ,DFW",
	    "field 'delay': '9223372036854775808' is out of range for int", 21),
	BAD(0, "2001-01-01 00:00:00,-9223372036854775809,405,ABQ,DFW",
	    "field 'delay': '-9223372036854775809' is out of range for int", 21),
	BAD(0, "yesterday,14,405,ABQ,DFW",
	    "field 'date': 'yesterday' is not a timestamp (expected YYYY-MM-DD HH:MM:SS, ISO "
	    "8601 or epoch ms)",
	    1),
	BAD(0, " 2001-01-01 00:00:00,14,405,ABQ,DFW",
	    "field 'date': ' 2001-01-01 00:00:00' is not a timestamp (expected YYYY-MM-DD "
	    "HH:MM:SS, ISO 8601 or epoch ms)",
	    1),
	BAD(0, "2001-01-01 00:00:00,14,405,\"ABQ\"x,DFW", "unexpected 'x' after closing quote", 33),
	BAD(0, "2001-01-01 00:00:00,14,405,\"ABQ\" ,DFW", "unexpected ' ' after closing quote", 33),
	BAD(0, "2001-01-01 00:00:00,14,405,AB\"Q\",DFW", "quote in unquoted field", 30),
	BAD(0, "2001-01-01 00:00:00,14,405,A\0BQ,DFW", "NUL byte in record", 29),
	BAD(0, "2001-01-01 00:00:00,14,405,\"A\0BQ\",DFW", "NUL byte in record", 30),
	BAD(1, "abc,true,s,1,0", "field 'f': 'abc' is not a float", 1),
	BAD(1, "nan,true,s,1,0", "field 'f': 'nan' is not a float", 1),
	BAD(1, "inf,true,s,1,0", "field 'f': 'inf' is not a float", 1),
	BAD(1, "0x10,true,s,1,0", "field 'f': '0x10' is not a float", 1),
	BAD(1, " 1.5,true,s,1,0", "field 'f': ' 1.5' is not a float", 1),
	BAD(1, "1.5.1,true,s,1,0", "field 'f': '1.5.1' is not a float", 1),
	BAD(1, "1e400,true,s,1,0", "field 'f': '1e400' is out of range for float", 1),
	BAD(1, "1.5,yes,s,1,0", "field 'b': 'yes' is not a bool (expected true, false, 1 or 0)",
	    5),
	BAD(1, "1.5,2,s,1,0", "field 'b': '2' is not a bool (expected true, false, 1 or 0)", 5),
	BAD(1, "1.5,true,s,1,2001-02-29",
	    "field 't': '2001-02-29' is not a timestamp (expected YYYY-MM-DD HH:MM:SS, ISO 8601 "
	    "or epoch ms)",
	    14),
};

static void run_bad_cases(fmt_kind kind, const bad_case *cases, size_t n)
{
	ev_schema fl, mx;
	flights(&fl);
	mixed(&mx);
	for (size_t i = 0; i < n; i++) {
		const bad_case *t = &cases[i];
		const ev_schema *s = t->mixed ? &mx : &fl;
		const char *good1, *good2;
		if (kind == FMT_CSV) {
			good1 = t->mixed ? "1.5,true,s,1,0\n" : "2001-01-01 00:00:00,1,2,A,B\n";
			good2 = t->mixed ? "2.5,false,t,3,0\n" : "2001-01-01 00:00:00,3,4,C,D\n";
		} else {
			good1 = t->mixed ? "{\"i\":1}\n" : "{\"delay\":1}\n";
			good2 = t->mixed ? "{\"i\":3}\n" : "{\"delay\":3}\n";
		}
		char in[512];
		size_t n1 = strlen(good1), n2 = strlen(good2);
		memcpy(in, good1, n1);
		memcpy(in + n1, t->rec, t->len);
		in[n1 + t->len] = '\n';
		memcpy(in + n1 + t->len + 1, good2, n2);
		ev_batch *b = batch_new(s, 4);
		fmt_cursor cur = cursor_n(in, n1 + t->len + 1 + n2);
		fmt_error err;
		memset(&err, 0, sizeof(err));
		cr_assert_eq(fmt_parse_next(kind, s, &cur, b, &err), EDDY_OK, "case %zu", i);
		size_t arena = b->arena_len;
		cr_assert_eq(fmt_parse_next(kind, s, &cur, b, &err), EDDY_EINVAL, "case %zu: %s", i,
		             t->rec);
		cr_assert_str_eq(err.msg, t->msg, "case %zu", i);
		cr_assert_eq(err.line, 2, "case %zu", i);
		cr_assert_eq(err.col, t->col, "case %zu: col %lld, want %lld", i,
		             (long long)err.col, (long long)t->col);
		cr_assert_eq(err.rec, in + n1, "case %zu", i);
		cr_assert_eq(err.rec_len, t->len, "case %zu", i);
		cr_assert_eq(b->n, 1, "case %zu: nothing appended", i);
		cr_assert_eq(b->arena_len, arena, "case %zu: arena as before", i);
		cr_assert_eq(cur.line, 3, "case %zu", i);
		cr_assert_eq(cur.p, in + n1 + t->len + 1, "case %zu: past the bad record", i);
		cr_assert_eq(fmt_parse_next(kind, s, &cur, b, &err), EDDY_OK, "case %zu", i);
		assert_int(b, 1, t->mixed ? 3 : 1, 3);
		cr_assert_eq(fmt_parse_next(kind, s, &cur, b, &err), EDDY_EEMPTY, "case %zu", i);
		batch_free(b);
	}
	schema_clear(&fl);
	schema_clear(&mx);
}

Test(format, csv_errors_are_reported_and_skipped)
{
	run_bad_cases(FMT_CSV, csv_bad, sizeof(csv_bad) / sizeof(csv_bad[0]));
}

Test(format, csv_unterminated_quote_runs_to_the_end)
{
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 4);
	const char *in = "2001-01-01 00:00:00,1,2,A,B\n"
	                 "2001-01-01 00:00:00,\"3\",4,\"C,D\n"
	                 "2001-01-01 00:00:00,5,6,E,F\n";
	fmt_cursor cur = cursor(in);
	fmt_error err;
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "unterminated quoted field");
	cr_assert_eq(err.line, 2);
	cr_assert_eq(err.col, 27);
	cr_assert_eq(err.rec, in + 28);
	cr_assert_eq(err.rec_len, strlen(in) - 29, "the record runs to the end (without its \\n)");
	cr_assert_eq(cur.p, cur.end);
	cr_assert_eq(cur.line, 4);
	cr_assert_eq(b->n, 1);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EEMPTY);

	/* after a quoted field that spans lines, the position is that of the opening quote */
	const char *in2 = "2001-01-01 00:00:00,1,2,\"A\nB\",\"C\n";
	cur = cursor(in2);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "unterminated quoted field");
	cr_assert_eq(err.line, 2);
	cr_assert_eq(err.col, 4);
	batch_free(b);
	schema_clear(&s);
}

Test(format, csv_header)
{
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 4);
	fmt_error err;
	const char *ok = "\ndate,delay,distance,origin,destination\r\n"
	                 "2001-01-01 00:00:00,1,2,A,B\n";
	fmt_cursor cur = cursor(ok);
	cr_assert_eq(fmt_check_header(&s, &cur, &err), EDDY_OK);
	cr_assert_eq(cur.line, 3);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	assert_flight(b, 0, T2001, 1, 2, "A", "B");

	cur = cursor(" date ,\tdelay,\"distance\",\" origin\",\"destination\"\n");
	cr_assert_eq(fmt_check_header(&s, &cur, &err), EDDY_OK, "%s", err.msg);
	cr_assert_eq(cur.p, cur.end);

	cur = cursor("dte,delay,distance,origin,destination\nx\n");
	cr_assert_eq(fmt_check_header(&s, &cur, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "header has 'dte' where the schema has 'date'");
	cr_assert_eq(err.line, 1);
	cr_assert_eq(err.col, 1);
	cr_assert_eq(cur.line, 2, "the cursor is past the header");

	cur = cursor("date,delay,distance,Origin,destination");
	cr_assert_eq(fmt_check_header(&s, &cur, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "header has 'Origin' where the schema has 'origin'");
	cr_assert_eq(err.col, 21);

	cur = cursor("date,delay,distance,origin\n");
	cr_assert_eq(fmt_check_header(&s, &cur, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "header has 4 fields, the schema 5");
	cr_assert_eq(err.col, 0);

	cur = cursor("date,delay,distance,origin,destination,x\n");
	cr_assert_eq(fmt_check_header(&s, &cur, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "header has 6 fields, the schema 5");

	cur = cursor("date,delay,\"distance,origin,destination\n");
	cr_assert_eq(fmt_check_header(&s, &cur, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "unterminated quoted field");
	cr_assert_eq(err.col, 12);

	cur = cursor("\r\n\n");
	cr_assert_eq(fmt_check_header(&s, &cur, &err), EDDY_EEMPTY);
	batch_free(b);
	schema_clear(&s);
}

Test(format, empty_input)
{
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 4);
	for (int k = 0; k < 2; k++) {
		fmt_kind kind = k ? FMT_JSONL : FMT_CSV;
		fmt_cursor cur = cursor("");
		cr_assert_eq(fmt_parse_next(kind, &s, &cur, b, NULL), EDDY_EEMPTY);
		cur = cursor("\n\r\n\n");
		cr_assert_eq(fmt_parse_next(kind, &s, &cur, b, NULL), EDDY_EEMPTY);
		cr_assert_eq(cur.p, cur.end);
		cr_assert_eq(cur.line, 4);
	}
	fmt_cursor cur = cursor(" \t\r\n  ");
	cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, NULL), EDDY_EEMPTY,
	             "JSON whitespace is blank");
	cur = cursor(" \n");
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, NULL), EDDY_EINVAL,
	             "but a CSV line of a space is a record of one field");
	cr_assert_eq(b->n, 0);
	batch_free(b);
	schema_clear(&s);
}

static size_t frame(fmt_kind kind, const char *s)
{
	return fmt_frame(kind, s, strlen(s));
}

Test(format, frame)
{
	cr_assert_eq(frame(FMT_CSV, ""), 0);
	cr_assert_eq(frame(FMT_CSV, "abc"), 0);
	cr_assert_eq(frame(FMT_CSV, "a\n"), 2);
	cr_assert_eq(frame(FMT_CSV, "a,b\nc,d\ne"), 8);
	cr_assert_eq(frame(FMT_CSV, "a,\"x\ny\"\nb"), 8, "a newline in quotes is no boundary");
	cr_assert_eq(frame(FMT_CSV, "a,\"x\ny"), 0);
	cr_assert_eq(frame(FMT_CSV, "a\nb,\"x\ny"), 2);
	cr_assert_eq(frame(FMT_CSV, "a,\"x\"\"\ny\"\n"), 10, "\"\" inside quotes");
	cr_assert_eq(frame(FMT_CSV, "\"a\"\n\"b\nc"), 4);
	cr_assert_eq(frame(FMT_CSV, "\"a\"\r\n\"\"\n"), 8);
	cr_assert_eq(frame(FMT_JSONL, "{\"a\":\"\\\"\"}\n{\"b\""), 11);
	cr_assert_eq(frame(FMT_JSONL, "\"\n\""), 2, "JSONL: every newline");
	cr_assert_eq(frame(FMT_JSONL, "{}"), 0);
}

/* Every prefix fmt_frame takes ends where a record ends, and parsing the input chunk by
 * chunk, as the file source does, gives the same records as parsing it whole. */
Test(format, frame_agrees_with_parser)
{
	ev_schema s;
	flights(&s);
	const char *in = "2001-01-01 00:00:00,1,2,\"A\nB\",C\n"
	                 "2001-01-01 00:00:00,2,2,\"\"\"\",\"\n\n\"\n"
	                 "\n"
	                 "2001-01-01 00:00:00,3,2,X,\"Y\"\"\r\n\"\r\n"
	                 "2001-01-01 00:00:00,4,2,X,Y\n";
	size_t len = strlen(in);
	ev_batch *whole = batch_new(&s, 8), *parts = batch_new(&s, 8);
	size_t ends[8];
	int nends = 0;
	fmt_cursor cur = cursor(in);
	ends[nends++] = 0;
	while (fmt_parse_next(FMT_CSV, &s, &cur, whole, NULL) == EDDY_OK)
		ends[nends++] = (size_t)(cur.p - in);
	cr_assert_eq(whole->n, 4);
	for (size_t k = 0; k <= len; k++) {
		size_t f = fmt_frame(FMT_CSV, in, k);
		bool found = false;
		for (int i = 0; i < nends; i++)
			found |= ends[i] == f;
		/* the blank line is a boundary too */
		found |= f == ends[2] + 1;
		cr_assert(found, "prefix %zu: frame %zu is not a record end", k, f);
	}
	for (size_t step = 1; step <= 9; step++) {
		batch_clear(parts);
		size_t start = 0, avail = 0;
		while (start < len) {
			avail = avail + step > len - start ? len - start : avail + step;
			size_t f = fmt_frame(FMT_CSV, in + start, avail);
			if (f == 0 && start + avail < len)
				continue; /* read more */
			if (f == 0)
				f = avail; /* the end: a final chunk */
			fmt_cursor c = cursor_n(in + start, f);
			while (fmt_parse_next(FMT_CSV, &s, &c, parts, NULL) == EDDY_OK)
				;
			start += f;
			avail -= f;
		}
		cr_assert_eq(parts->n, whole->n, "step %zu", step);
		for (uint32_t r = 0; r < whole->n; r++)
			for (uint32_t c = 0; c < s.n; c++) {
				ev_val a = batch_get_val(whole, r, c);
				ev_val v = batch_get_val(parts, r, c);
				cr_assert_eq(a.type, v.type);
				if (a.type == EV_STRING)
					cr_assert(a.s.len == v.s.len &&
					          memcmp(a.s.p, v.s.p, a.s.len) == 0);
				else
					cr_assert_eq(a.i, v.i);
			}
	}
	batch_free(whole);
	batch_free(parts);
	schema_clear(&s);
}

Test(format, jsonl_keys_nulls_and_unknown_keys)
{
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 8);
	const char *in =
	        "{\"destination\":\"DFW\",\"origin\":\"ABQ\",\"distance\":405,\"delay\":14,"
	        "\"date\":\"2001-01-01 00:00:00\"}\n"
	        "\n"
	        " { \"date\" : 978307200001 , \"delay\" : null, "
	        "\"extra\": {\"a\":[1,2.5e3,{\"b\":\"}\"}],\"c\":[]}, "
	        "\"more\":[true,false,null], \"origin\" : \"X\" } \r\n"
	        "{}\n"
	        "{\"delay\":1,\"delay\":-2,\"date\":\"2001-01-01T00:00:00+01:00\",\"distance\":1.0,"
	        "\"distance\":3e2}";
	fmt_cursor cur = cursor(in);
	fmt_error err;
	cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, &err), EDDY_OK, "%s", err.msg);
	cr_assert_eq(cur.line, 2);
	cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, &err), EDDY_OK, "%s", err.msg);
	cr_assert_eq(cur.line, 4);
	cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, &err), EDDY_OK, "%s", err.msg);
	cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, &err), EDDY_OK, "%s", err.msg);
	cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, &err), EDDY_EEMPTY);
	assert_flight(b, 0, T2001, 14, 405, "ABQ", "DFW");
	assert_int(b, 1, 0, T2001 + 1);
	cr_assert(batch_is_null(b, 1, 1));
	cr_assert(batch_is_null(b, 1, 2));
	ASSERT_STR(b, 1, 3, "X");
	cr_assert(batch_is_null(b, 1, 4));
	for (uint32_t c = 0; c < 5; c++)
		cr_assert(batch_is_null(b, 2, c));
	assert_int(b, 3, 0, T2001 - 3600000);
	assert_int(b, 3, 1, -2);
	assert_int(b, 3, 2, 300);
	batch_free(b);
	schema_clear(&s);
}

Test(format, jsonl_string_escapes_and_surrogates)
{
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 8);
	const char *in = "{\"origin\":\"a\\\"b\\\\c\\/d\\n\\t\\b\\f\\r"
	                 "\\u00e9\\u20AC\\ud83d\\ude00\","
	                 "\"dest\\u0069nation\":\"\\u0041\\u0000z\"}\n"
	                 "{\"origin\":\"plain \xc3\xa9\",\"destination\":\"\"}\n";
	fmt_cursor cur = cursor(in);
	fmt_error err;
	cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, &err), EDDY_OK, "%s", err.msg);
	cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, &err), EDDY_OK, "%s", err.msg);
	ASSERT_STR(b, 0, 3, "a\"b\\c/d\n\t\b\f\r\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	ASSERT_STR(b, 0, 4, "A\0z");
	ASSERT_STR(b, 1, 3, "plain \xc3\xa9");
	ASSERT_STR(b, 1, 4, "");

	/* a long escaped string, unescaped in place in the arena */
	batch_clear(b);
	size_t n = 3000;
	char *big = malloc(2 * n + 32), *want = malloc(n);
	size_t k = (size_t)sprintf(big, "{\"origin\":\"");
	for (size_t i = 0; i < n; i++) {
		memcpy(big + k, "\\n", 2);
		k += 2;
		want[i] = '\n';
	}
	k += (size_t)sprintf(big + k, "\"}");
	cur = cursor_n(big, k);
	cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, &err), EDDY_OK, "%s", err.msg);
	assert_str(b, 0, 3, want, n);
	cr_assert_eq(b->arena_len, n);
	free(big);
	free(want);
	batch_free(b);
	schema_clear(&s);
}

Test(format, jsonl_types)
{
	ev_schema s;
	mixed(&s);
	ev_batch *b = batch_new(&s, 8);
	const char *in = "{\"f\":1,\"b\":true,\"s\":\"x\",\"i\":3.0,"
	                 "\"t\":\"2001-01-01T00:00:00Z\"}\n"
	                 "{\"f\":-0.5e-3,\"b\":false,\"i\":-9223372036854775808,\"t\":-1}\n"
	                 "{\"f\":null,\"b\":null,\"s\":null,\"i\":null,"
	                 "\"t\":\"2001\\u002d01-02\"}\n";
	fmt_cursor cur = cursor(in);
	fmt_error err;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(fmt_parse_next(FMT_JSONL, &s, &cur, b, &err), EDDY_OK, "%d: %s", i,
		             err.msg);
	cr_assert_eq(batch_get_float(b, 0, 0), 1.0);
	cr_assert_eq(batch_get_bool(b, 0, 1), true);
	ASSERT_STR(b, 0, 2, "x");
	assert_int(b, 0, 3, 3);
	assert_int(b, 0, 4, T2001);
	cr_assert_eq(batch_get_float(b, 1, 0), -0.0005);
	cr_assert_not(batch_is_null(b, 1, 1));
	cr_assert_eq(batch_get_bool(b, 1, 1), false);
	cr_assert(batch_is_null(b, 1, 2));
	assert_int(b, 1, 3, INT64_MIN);
	assert_int(b, 1, 4, -1);
	for (uint32_t c = 0; c < 4; c++)
		cr_assert(batch_is_null(b, 2, c));
	assert_int(b, 2, 4, T2001 + 86400000LL);
	batch_free(b);
	schema_clear(&s);
}

#define B10 "[[[[[[[[[["

static const bad_case json_bad[] = {
	BAD(0, "{\"delay\":\"14\"}", "field 'delay': expected an int, found a string", 10),
	BAD(0, "{\"delay\":true}", "field 'delay': expected an int, found a bool", 10),
	BAD(0, "{\"delay\":1.5}", "field 'delay': '1.5' is not an int", 10),
	BAD(0, "{\"delay\":99999999999999999999}",
	    "field 'delay': '99999999999999999999' is out of range for int", 10),
	BAD(0, "{\"delay\":1e30}", "field 'delay': '1e30' is out of range for int", 10),
	BAD(0, "{\"origin\":\"A\",\"destination\":5}",
	    "field 'destination': expected a string, found a number", 29),
	BAD(0, "{\"date\":\"yesterday\"}",
	    "field 'date': 'yesterday' is not a timestamp (expected YYYY-MM-DD HH:MM:SS, ISO "
	    "8601 or epoch ms)",
	    9),
	BAD(0, "{\"date\":false}", "field 'date': expected a timestamp, found a bool", 9),
	BAD(0, "{\"date\":1.5}",
	    "field 'date': '1.5' is not a timestamp (expected YYYY-MM-DD HH:MM:SS, ISO 8601 or "
	    "epoch ms)",
	    9),
	BAD(0, "{\"origin\":{\"a\":1}}", "field 'origin': nested values are not supported", 11),
	BAD(0, "{\"origin\":[\"a\"]}", "field 'origin': nested values are not supported", 11),
	BAD(0, "{\"delay\" 14}", "invalid JSON: expected ':' after key", 10),
	BAD(0, "{\"delay\":14,}", "invalid JSON: expected a key", 13),
	BAD(0, "{delay:14}", "invalid JSON: expected a key", 2),
	BAD(0, "{\"delay\":14", "invalid JSON: expected ',' or '}'", 12),
	BAD(0, "{\"delay\":14 \"x\":1}", "invalid JSON: expected ',' or '}'", 13),
	BAD(0, "{\"delay\":14} x", "invalid JSON: unexpected 'x' after the object", 14),
	BAD(0, "{\"delay\":14}{}", "invalid JSON: unexpected '{' after the object", 13),
	BAD(0, "[1]", "invalid JSON: expected '{'", 1),
	BAD(0, "\"delay\"", "invalid JSON: expected '{'", 1),
	BAD(0, "{\"delay\":}", "invalid JSON: expected a value", 10),
	BAD(0, "{\"delay\":tru}", "invalid JSON: expected a value", 10),
	BAD(0, "{\"delay\":01}", "invalid JSON: invalid number", 10),
	BAD(0, "{\"delay\":-}", "invalid JSON: invalid number", 10),
	BAD(0, "{\"delay\":1.}", "invalid JSON: invalid number", 10),
	BAD(0, "{\"delay\":1e}", "invalid JSON: invalid number", 10),
	BAD(0, "{\"origin\":\"abc}", "invalid JSON: unterminated string", 11),
	BAD(0, "{\"origin\":\"a\\qb\"}", "invalid JSON: invalid escape '\\q'", 13),
	BAD(0, "{\"origin\":\"\\ud83d\"}", "invalid JSON: unpaired surrogate in \\u escape", 12),
	BAD(0, "{\"origin\":\"\\ud83dx\\ude00\"}", "invalid JSON: unpaired surrogate in \\u escape",
	    12),
	BAD(0, "{\"origin\":\"\\ude00\"}", "invalid JSON: unpaired surrogate in \\u escape", 12),
	BAD(0, "{\"origin\":\"\\u12g4\"}", "invalid JSON: invalid \\u escape", 12),
	BAD(0, "{\"origin\":\"\\u12\"}", "invalid JSON: invalid \\u escape", 12),
	BAD(0, "{\"origin\":\"a\tb\"}", "invalid JSON: control character in string", 13),
	BAD(0, "{\"origin\":\"a\0\"}", "NUL byte in record", 13),
	BAD(0, "{\"x\":[1,2}", "invalid JSON: expected ',' or ']'", 10),
	BAD(0, "{\"x\":{\"a\" 1}}", "invalid JSON: expected ':' after key", 11),
	BAD(0, "{\"x\":" B10 B10 B10 B10 B10 B10 B10 "]}", "invalid JSON: nesting too deep", 69),
	BAD(1, "{\"b\":\"true\"}", "field 'b': expected a bool, found a string", 6),
	BAD(1, "{\"b\":1}", "field 'b': expected a bool, found a number", 6),
	BAD(1, "{\"f\":\"1.5\"}", "field 'f': expected a float, found a string", 6),
	BAD(1, "{\"f\":1e999}", "field 'f': '1e999' is out of range for float", 6),
	BAD(1, "{\"s\":false}", "field 's': expected a string, found a bool", 6),
};

Test(format, jsonl_errors_are_reported_and_skipped)
{
	run_bad_cases(FMT_JSONL, json_bad, sizeof(json_bad) / sizeof(json_bad[0]));
}

/* ---- writing ---- */

static void buf_eq(const fmt_buf *b, size_t from, const char *want)
{
	size_t n = strlen(want);
	cr_assert_eq(b->len - from, n, "wrote '%.*s', want '%s'", (int)(b->len - from),
	             b->p + from, want);
	cr_assert(memcmp(b->p + from, want, n) == 0, "wrote '%.*s', want '%s'", (int)n,
	          b->p + from, want);
}

Test(format, write_exact_text)
{
	int64_t live = rt_alloc_live();
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 4);
	uint32_t r = batch_append_row(b);
	batch_set_int(b, r, 0, T2001 + 123);
	batch_set_int(b, r, 1, -5);
	cr_assert_eq(batch_set_str(b, r, 3, "A,B", 3), EDDY_OK);
	cr_assert_eq(batch_set_str(b, r, 4, "", 0), EDDY_OK);
	r = batch_append_row(b);
	batch_set_int(b, r, 1, INT64_MIN);
	batch_set_int(b, r, 2, INT64_MAX);
	cr_assert_eq(batch_set_str(b, r, 3, "q\"\\\n\x01\xc3\xa9", 7), EDDY_OK);
	cr_assert_eq(batch_set_str(b, r, 4, "plain", 5), EDDY_OK);
	fmt_buf out = { 0 };
	cr_assert_eq(fmt_write_header(FMT_CSV, &s, &out), EDDY_OK);
	buf_eq(&out, 0, "date,delay,distance,origin,destination\n");
	out.len = 0;
	cr_assert_eq(fmt_write_header(FMT_JSONL, &s, &out), EDDY_OK);
	cr_assert_eq(out.len, 0);
	cr_assert_eq(fmt_write_row(FMT_CSV, b, 0, &out), EDDY_OK);
	buf_eq(&out, 0, "2001-01-01 00:00:00.123,-5,,\"A,B\",\"\"\n");
	out.len = 0;
	cr_assert_eq(fmt_write_row(FMT_CSV, b, 1, &out), EDDY_OK);
	buf_eq(&out, 0,
	       ",-9223372036854775808,9223372036854775807,\"q\"\"\\\n\x01\xc3\xa9\",plain\n");
	out.len = 0;
	cr_assert_eq(fmt_write_row(FMT_JSONL, b, 0, &out), EDDY_OK);
	buf_eq(&out, 0,
	       "{\"date\":\"2001-01-01 00:00:00.123\",\"delay\":-5,\"distance\":null,"
	       "\"origin\":\"A,B\",\"destination\":\"\"}\n");
	out.len = 0;
	cr_assert_eq(fmt_write_row(FMT_JSONL, b, 1, &out), EDDY_OK);
	buf_eq(&out, 0,
	       "{\"date\":null,\"delay\":-9223372036854775808,\"distance\":9223372036854775807,"
	       "\"origin\":\"q\\\"\\\\\\n\\u0001\xc3\xa9\",\"destination\":\"plain\"}\n");

	/* timestamps outside the years 0000 to 9999 as epoch ms */
	batch_set_int(b, 0, 0, -62167219200001LL);
	out.len = 0;
	cr_assert_eq(fmt_write_row(FMT_CSV, b, 0, &out), EDDY_OK);
	buf_eq(&out, 0, "-62167219200001,-5,,\"A,B\",\"\"\n");
	batch_set_int(b, 0, 0, 253402300800000LL);
	out.len = 0;
	cr_assert_eq(fmt_write_row(FMT_JSONL, b, 0, &out), EDDY_OK);
	buf_eq(&out, 0,
	       "{\"date\":\"253402300800000\",\"delay\":-5,\"distance\":null,"
	       "\"origin\":\"A,B\",\"destination\":\"\"}\n");

	/* names that need quoting */
	ev_schema q = { 0 };
	cr_assert_eq(schema_add(&q, "a,b", EV_INT), EDDY_OK);
	cr_assert_eq(schema_add(&q, "say \"x\"", EV_INT), EDDY_OK);
	out.len = 0;
	cr_assert_eq(fmt_write_header(FMT_CSV, &q, &out), EDDY_OK);
	buf_eq(&out, 0, "\"a,b\",\"say \"\"x\"\"\"\n");
	fmt_cursor cur = cursor_n(out.p, out.len);
	cr_assert_eq(fmt_check_header(&q, &cur, NULL), EDDY_OK);
	schema_clear(&q);
	fmt_buf_free(&out);
	cr_assert_null(out.p);
	batch_free(b);
	schema_clear(&s);
	cr_assert_eq(rt_alloc_live(), live);
}

Test(format, write_floats_shortest_and_non_finite)
{
	ev_schema s = { 0 };
	cr_assert_eq(schema_add(&s, "x", EV_FLOAT), EDDY_OK);
	cr_assert_eq(schema_add(&s, "b", EV_BOOL), EDDY_OK);
	ev_batch *b = batch_new(&s, 16);
	const double v[] = { 0.1, 1e300, -0.5, 1.0 / 3, 100, -0.0, NAN, INFINITY };
	const char *csv[] = { "0.1", "1e+300", "-0.5", "0.3333333333333333", "100.0", "-0.0", "", "" };
	const char *json[] = { "0.1", "1e+300", "-0.5", "0.3333333333333333", "100.0", "-0.0",
		               "null", "null" };
	fmt_buf out = { 0 };
	for (uint32_t i = 0; i < 8; i++) {
		uint32_t r = batch_append_row(b);
		batch_set_float(b, r, 0, v[i]);
		batch_set_bool(b, r, 1, i % 2);
		char want[64];
		out.len = 0;
		cr_assert_eq(fmt_write_row(FMT_CSV, b, r, &out), EDDY_OK);
		snprintf(want, sizeof(want), "%s,%s\n", csv[i], i % 2 ? "true" : "false");
		buf_eq(&out, 0, want);
		out.len = 0;
		cr_assert_eq(fmt_write_row(FMT_JSONL, b, r, &out), EDDY_OK);
		snprintf(want, sizeof(want), "{\"x\":%s,\"b\":%s}\n", json[i],
		         i % 2 ? "true" : "false");
		buf_eq(&out, 0, want);
	}
	fmt_buf_free(&out);
	batch_free(b);
	schema_clear(&s);
}

/* ref_f64: the float text by its definition (the shortest of %.15g/%.16g/%.17g that reads
 * back equal, ".0" added when integral), to check the writer's fast path against. */
static void ref_f64(char *dst, double v)
{
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(dst, 40, "%.*g", prec, v);
		if (prec == 17 || strtod(dst, NULL) == v)
			break;
	}
	if (strpbrk(dst, ".e") == NULL)
		strcpy(dst + n, ".0");
}

Test(format, write_floats_as_their_definition)
{
	ev_schema s = {0};
	cr_assert_eq(schema_add(&s, "x", EV_FLOAT), EDDY_OK);
	ev_batch *b = batch_new(&s, 1);
	fmt_buf out = {0};
	uint64_t x = 88172645463325252ull; /* xorshift64 */
	uint32_t r = batch_append_row(b);
	const double edge[] = {1e-4,
	                       0.00012,
	                       9.99e-5,
	                       999999999999999.0,
	                       1e15,
	                       99999999999999.9,
	                       0.1 + 0.2,
	                       0.5,
	                       2.5,
	                       1e14 + 0.5,
	                       123456.789012,
	                       0.908 * 27057114,
	                       0.908 * 4655640,
	                       -7.25,
	                       1e-7,
	                       4.35,
	                       1.005};
	for (int i = 0; i < 200000; i++) {
		double v;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (i < (int)(sizeof(edge) / sizeof(edge[0])))
			v = edge[i];
		else if (i % 4 == 0) /* a price times 0.908, as Nexmark q1 */
			v = 0.908 * (double)(x % 100000000 + 100);
		else if (i % 4 == 1) /* a short decimal, maybe not the nearest double's */
			v = (double)(int64_t)(x % 2000000000000) / 1000.0 - 1e9;
		else if (i % 4 == 2) /* any bits of a finite double */
			memcpy(&v, &x, 8), v = isfinite(v) ? v : 1.5;
		else /* numbers near the fast path's limits */
			v = ldexp((double)(x >> 11), (int)(x % 100) - 100);
		batch_set_float(b, r, 0, v);
		out.len = 0;
		cr_assert_eq(fmt_write_row(FMT_CSV, b, r, &out), EDDY_OK);
		char want[48];
		ref_f64(want, v);
		strcat(want, "\n");
		cr_assert(out.len == strlen(want) && memcmp(out.p, want, out.len) == 0,
		          "value %.17g: wrote '%.*s', want '%s'", v, (int)out.len, out.p, want);
	}
	fmt_buf_free(&out);
	batch_free(b);
	schema_clear(&s);
}

/* Fills b with rows that exercise the writer: quoting, empty vs null, float precision,
 * extreme ints, timestamps with ms. */
static void fill_mixed(ev_batch *b)
{
	static const char *strs[] = { "a,b",         "q\"uote", "line\nbreak", "cr\rx",
		                      " lead space ", "",        NULL,          "plain",
		                      "\"",           "\t\x01\xe2\x82\xac" };
	static const double fl[] = { 0.1, 1e300, -0.5, 5e-324, 1.0 / 3, -0.0, 123456789.125,
		                     DBL_MAX, 2.5e-10, -1e-300 };
	static const int64_t ints[] = { INT64_MIN, INT64_MAX, 0, -1, 42, 7, 8, 9, 10, 11 };
	static const int64_t ts[] = { T2001 + 123,       -1,
		                      0,                 T2001,
		                      253402300799999LL, 253402300800000LL,
		                      -62135596800000LL, -62167219200001LL,
		                      6,                 7 };
	for (uint32_t i = 0; i < 10; i++) {
		uint32_t r = batch_append_row(b);
		if (i != 6)
			batch_set_float(b, r, 0, fl[i]);
		if (i != 7)
			batch_set_bool(b, r, 1, i % 3 == 0);
		if (strs[i] != NULL)
			cr_assert_eq(batch_set_str(b, r, 2, strs[i], strlen(strs[i])), EDDY_OK);
		if (i != 8)
			batch_set_int(b, r, 3, ints[i]);
		if (i != 9)
			batch_set_int(b, r, 4, ts[i]);
	}
}

/* assert_same_batch checks that b read back a's values. csv: a null string is expected
 * back as the empty string (the one value CSV does not keep: an empty unquoted field is
 * the empty string for a string field). */
static void assert_same_batch(const ev_batch *a, const ev_batch *b, bool csv)
{
	cr_assert_eq(a->n, b->n);
	for (uint32_t r = 0; r < a->n; r++) {
		for (uint32_t c = 0; c < a->ncols; c++) {
			bool str = a->schema->fields[c].type == EV_STRING;
			if (csv && str && batch_is_null(a, r, c)) {
				cr_assert_not(batch_is_null(b, r, c), "record %u field %u", r, c);
				cr_assert_eq((uint32_t)batch_slot_get(b, r, c), 0);
				continue;
			}
			cr_assert_eq(batch_is_null(a, r, c), batch_is_null(b, r, c),
			             "record %u field %u: null or not", r, c);
			if (batch_is_null(a, r, c))
				continue;
			if (a->schema->fields[c].type == EV_STRING) {
				uint32_t la, lb;
				const char *pa = batch_get_str(a, r, c, &la);
				const char *pb = batch_get_str(b, r, c, &lb);
				cr_assert(la == lb && memcmp(pa, pb, la) == 0,
				          "record %u field %u: '%.*s' read back as '%.*s'", r, c,
				          (int)la, pa, (int)lb, pb);
			} else {
				/* bit-identical: floats too (-0.0, denormals) */
				cr_assert_eq(batch_slot_get(a, r, c), batch_slot_get(b, r, c),
				             "record %u field %u", r, c);
			}
		}
	}
}

Test(format, write_and_read_back)
{
	int64_t live = rt_alloc_live();
	ev_schema s;
	mixed(&s);
	ev_batch *src = batch_new(&s, 16), *back = batch_new(&s, 16);
	fill_mixed(src);
	for (int k = 0; k < 2; k++) {
		fmt_kind kind = k ? FMT_JSONL : FMT_CSV;
		fmt_buf out = { 0 };
		cr_assert_eq(fmt_write_header(kind, &s, &out), EDDY_OK);
		for (uint32_t r = 0; r < src->n; r++)
			cr_assert_eq(fmt_write_row(kind, src, r, &out), EDDY_OK);
		fmt_cursor cur = cursor_n(out.p, out.len);
		fmt_error err;
		if (kind == FMT_CSV)
			cr_assert_eq(fmt_check_header(&s, &cur, &err), EDDY_OK);
		batch_clear(back);
		eddy_err e;
		while ((e = fmt_parse_next(kind, &s, &cur, back, &err)) == EDDY_OK)
			;
		cr_assert_eq(e, EDDY_EEMPTY, "%s: line %lld col %lld: %s", k ? "jsonl" : "csv",
		             (long long)err.line, (long long)err.col, err.msg);
		assert_same_batch(src, back, kind == FMT_CSV);
		fmt_buf_free(&out);
	}
	/* flights too, through both formats */
	ev_schema f;
	flights(&f);
	ev_batch *fb = batch_new(&f, 4), *fback = batch_new(&f, 4);
	const char *in = "2001-01-01 00:00:00,14,405,ABQ,DFW\n"
	                 "2001-01-01 00:00:00.5,,-1,\"\",\n";
	fmt_cursor cur = cursor(in);
	while (fmt_parse_next(FMT_CSV, &f, &cur, fb, NULL) == EDDY_OK)
		;
	cr_assert_eq(fb->n, 2);
	for (int k = 0; k < 2; k++) {
		fmt_kind kind = k ? FMT_JSONL : FMT_CSV;
		fmt_buf out = { 0 };
		for (uint32_t r = 0; r < fb->n; r++)
			cr_assert_eq(fmt_write_row(kind, fb, r, &out), EDDY_OK);
		batch_clear(fback);
		cur = cursor_n(out.p, out.len);
		while (fmt_parse_next(kind, &f, &cur, fback, NULL) == EDDY_OK)
			;
		assert_same_batch(fb, fback, kind == FMT_CSV);
		fmt_buf_free(&out);
	}
	batch_free(fb);
	batch_free(fback);
	schema_clear(&f);
	batch_free(src);
	batch_free(back);
	schema_clear(&s);
	cr_assert_eq(rt_alloc_live(), live);
}

Test(format, out_of_memory)
{
	int64_t live = rt_alloc_live();
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 4);
	for (int k = 0; k < 2; k++) {
		fmt_kind kind = k ? FMT_JSONL : FMT_CSV;
		const char *in =
		        k ? "\n{\"origin\":\"ABQ\"}\n" : "\n2001-01-01 00:00:00,1,2,ABQ,DFW\n";
		fmt_cursor cur = cursor(in);
		batch_free(b);
		b = batch_new(&s, 4); /* an empty arena: the first string allocates */
		rt_alloc_fail_after(0);
		cr_assert_eq(fmt_parse_next(kind, &s, &cur, b, NULL), EDDY_ENOMEM);
		cr_assert_eq(b->n, 0);
		cr_assert_eq(cur.p, in + 1, "the cursor stays at the record");
		cr_assert_eq(cur.line, 2);
		cr_assert_eq(fmt_parse_next(kind, &s, &cur, b, NULL), EDDY_OK);
		ASSERT_STR(b, 0, 3, "ABQ");
	}
	fmt_buf out = { 0 };
	rt_alloc_fail_after(0);
	cr_assert_eq(fmt_write_row(FMT_CSV, b, 0, &out), EDDY_ENOMEM);
	cr_assert_eq(out.len, 0);
	cr_assert_eq(fmt_write_header(FMT_CSV, &s, &out), EDDY_OK);
	size_t hl = out.len;
	char big[1000];
	memset(big, 'x', sizeof(big));
	cr_assert_eq(batch_set_str(b, 0, 4, big, sizeof(big)), EDDY_OK);
	rt_alloc_fail_after(0);
	cr_assert_eq(fmt_write_row(FMT_JSONL, b, 0, &out), EDDY_ENOMEM);
	cr_assert_eq(out.len, hl, "no partial line");
	cr_assert_eq(fmt_write_row(FMT_JSONL, b, 0, &out), EDDY_OK);
	cr_assert_gt(out.len, hl + 1000);
	cr_assert_eq(out.p[out.len - 1], '\n');
	rt_alloc_fail_after(-1);
	fmt_buf_free(&out);
	batch_free(b);
	schema_clear(&s);
	cr_assert_eq(rt_alloc_live(), live);
}

Test(format, full_batch)
{
	ev_schema s;
	flights(&s);
	ev_batch *b = batch_new(&s, 1);
	for (int k = 0; k < 2; k++) {
		fmt_kind kind = k ? FMT_JSONL : FMT_CSV;
		const char *in = k ? "{\"delay\":1}\n\n{\"delay\":2}\n\n"
		                   : "2001-01-01 00:00:00,1,2,A,B\n\n"
		                     "2001-01-01 00:00:00,2,2,A,B\n\n";
		fmt_cursor cur = cursor(in);
		batch_clear(b);
		cr_assert_eq(fmt_parse_next(kind, &s, &cur, b, NULL), EDDY_OK);
		const char *at = cur.p;
		cr_assert_eq(fmt_parse_next(kind, &s, &cur, b, NULL), EDDY_EFULL);
		cr_assert_eq(b->n, 1);
		cr_assert(cur.p > at && cur.line == 3, "at the record, blank lines skipped");
		batch_clear(b);
		cr_assert_eq(fmt_parse_next(kind, &s, &cur, b, NULL), EDDY_OK);
		assert_int(b, 0, 1, 2);
		cr_assert_eq(fmt_parse_next(kind, &s, &cur, b, NULL), EDDY_EEMPTY,
		             "no room needed to find the end");
	}
	batch_free(b);
	schema_clear(&s);
}

/* Parsing 100,000 records into a batch cleared every 1000 allocates nothing once the
 * arena has grown. */
Test(format, no_allocation_per_record)
{
	ev_schema s;
	flights(&s);
	const int n = 100000;
	for (int k = 0; k < 2; k++) {
		fmt_kind kind = k ? FMT_JSONL : FMT_CSV;
		char *in = malloc((size_t)n * 128);
		size_t len = 0;
		int64_t sum = 0;
		for (int i = 0; i < n; i++) {
			int delay = i % 200 - 50;
			sum += delay;
			if (kind == FMT_CSV)
				len += (size_t)sprintf(in + len,
				                       "2001-01-%02d %02d:%02d:00,%d,%d,%s,DFW\n",
				                       i % 28 + 1, i % 24, i % 60, delay, i % 3000,
				                       i % 5 ? "ABQ" : "\"A,Q\"");
			else
				len += (size_t)sprintf(
				        in + len,
				        "{\"date\":\"2001-01-%02d %02d:%02d:00\",\"delay\":%d,"
				        "\"distance\":%d,\"origin\":\"%s\","
				        "\"destination\":\"DFW\"}\n",
				        i % 28 + 1, i % 24, i % 60, delay, i % 3000,
				        i % 5 ? "ABQ" : "A\\u002cQ");
		}
		ev_batch *b = batch_new(&s, 1000);
		fmt_cursor cur = cursor_n(in, len);
		int64_t live = 0, got = 0, total = 0;
		size_t arena_cap = 0;
		eddy_err e;
		while ((e = fmt_parse_next(kind, &s, &cur, b, NULL)) == EDDY_OK) {
			if (batch_full(b)) {
				for (uint32_t r = 0; r < b->n; r++)
					total += batch_get_int(b, r, 1);
				got += b->n;
				batch_clear(b);
				if (got == 1000) { /* warmed up */
					live = rt_alloc_live();
					arena_cap = b->arena_cap;
				}
			}
		}
		cr_assert_eq(e, EDDY_EEMPTY);
		cr_assert_eq(got, n);
		cr_assert_eq(total, sum);
		cr_assert_eq(rt_alloc_live(), live, "%s: %lld blocks allocated while parsing",
		             k ? "jsonl" : "csv", (long long)(rt_alloc_live() - live));
		cr_assert_eq(b->arena_cap, arena_cap, "the arena did not grow after warm-up");
		cr_assert_eq(cur.line, n + 1);
		batch_free(b);
		free(in);
	}
	schema_clear(&s);
}

Test(format, a_stray_quote_does_not_swallow_later_records)
{
	ev_schema s = { 0 };
	cr_assert_eq(schema_add(&s, "a", EV_STRING), EDDY_OK);
	cr_assert_eq(schema_add(&s, "b", EV_STRING), EDDY_OK);
	const char *text = "x,ab\"c\ny,\"q,\"\"r\"\nz,w\n";
	size_t len = strlen(text);
	cr_assert_eq(fmt_frame(FMT_CSV, text, len), len);
	int64_t nls;
	cr_assert_eq(fmt_csv_end(text, text + len, &nls), text + 6, "the stray quote is data");
	cr_assert_null(fmt_csv_end(text + 7, text + 14, &nls), "open quoted field: no end yet");
	ev_batch *b = batch_new(&s, 8);
	fmt_cursor cur = { .p = text, .end = text + len, .line = 1 };
	fmt_error err;
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EINVAL);
	cr_assert_str_eq(err.msg, "quote in unquoted field");
	cr_assert_eq(err.line, 1);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_OK);
	cr_assert_eq(fmt_parse_next(FMT_CSV, &s, &cur, b, &err), EDDY_EEMPTY);
	cr_assert_eq(b->n, 2);
	uint32_t l;
	const char *p = batch_get_str(b, 0, 1, &l);
	cr_assert(l == 4 && memcmp(p, "q,\"r", 4) == 0);
	p = batch_get_str(b, 1, 0, &l);
	cr_assert(l == 1 && p[0] == 'z');
	batch_free(b);
	schema_clear(&s);
}

/* Long strings: CSV quotes a field when any of , " \n \r is anywhere in it (the writer
 * scans 16 bytes at a time, then the tail). */
Test(format, write_quotes_long_strings_wherever_the_special_byte_is)
{
	ev_schema s = {0};
	cr_assert_eq(schema_add(&s, "x", EV_STRING), EDDY_OK);
	ev_batch *b = batch_new(&s, 1);
	fmt_buf out = {0};
	uint32_t r = batch_append_row(b);
	const char specials[] = {',', '"', '\n', '\r'};
	char v[41], want[100];
	for (size_t len = 1; len <= 40; len++) {
		for (size_t at = 0; at <= len; at++) { /* at == len: no special byte */
			for (size_t k = 0; k < (at < len ? 4 : 1); k++) {
				memset(v, 'a', len);
				if (at < len)
					v[at] = specials[k];
				cr_assert_eq(batch_set_str(b, r, 0, v, len), EDDY_OK);
				out.len = 0;
				cr_assert_eq(fmt_write_row(FMT_CSV, b, r, &out), EDDY_OK);
				size_t n = 0;
				if (at < len)
					want[n++] = '"';
				for (size_t i = 0; i < len; i++) {
					if (v[i] == '"')
						want[n++] = '"';
					want[n++] = v[i];
				}
				if (at < len)
					want[n++] = '"';
				want[n++] = '\n';
				cr_assert(out.len == n && memcmp(out.p, want, n) == 0,
				          "length %zu, special byte %d at %zu: wrote '%.*s'", len,
				          at < len ? v[at] : -1, at, (int)out.len, out.p);
			}
		}
	}
	fmt_buf_free(&out);
	batch_free(b);
	schema_clear(&s);
}

/* fmt_parse_fields: only the fields in `live` are converted and checked; the others stay
 * null whatever their text (projection pushdown). The record's shape is still checked. */
Test(format, parse_fields_reads_only_the_live_fields)
{
	ev_schema s;
	flights(&s); /* date, delay, distance, origin, destination */
	ev_batch *b = batch_new(&s, 8);
	uint64_t live = 1u << 0 | 1u << 3; /* date, origin */
	const char *csv = "2001-01-01 00:00:00,abc,\"2 3\",ABQ,DFW\n"
	                  "2001-01-01 00:00:01,1,2,ROC\n";
	fmt_cursor cur = cursor(csv);
	fmt_error err;
	cr_assert_eq(fmt_parse_fields(FMT_CSV, &s, live, &cur, b, &err), EDDY_OK);
	cr_assert_eq(b->n, 1);
	cr_assert_eq(batch_get_int(b, 0, 0), T2001);
	cr_assert(batch_is_null(b, 0, 1) && batch_is_null(b, 0, 2) && batch_is_null(b, 0, 4));
	ASSERT_STR(b, 0, 3, "ABQ");
	/* a field missing is still an error */
	cr_assert_eq(fmt_parse_fields(FMT_CSV, &s, live, &cur, b, &err), EDDY_EINVAL);
	cr_assert_eq(b->n, 1);
	/* a live field is checked */
	cur = cursor("x,1,2,A,B\n");
	cr_assert_eq(fmt_parse_fields(FMT_CSV, &s, live, &cur, b, &err), EDDY_EINVAL);
	cr_assert(strstr(err.msg, "field 'date'") != NULL, "%s", err.msg);

	const char *json = "{\"date\": \"2001-01-01 00:00:02\", \"delay\": {\"nested\": [1]}, "
	                   "\"distance\": \"no\", \"origin\": \"SFO\", \"destination\": 5}\n";
	cur = cursor(json);
	cr_assert_eq(fmt_parse_fields(FMT_JSONL, &s, live, &cur, b, &err), EDDY_OK);
	cr_assert_eq(b->n, 2);
	cr_assert_eq(batch_get_int(b, 1, 0), T2001 + 2000);
	cr_assert(batch_is_null(b, 1, 1) && batch_is_null(b, 1, 2) && batch_is_null(b, 1, 4));
	ASSERT_STR(b, 1, 3, "SFO");
	/* the line must still be JSON */
	cur = cursor("{\"date\": \"2001-01-01 00:00:02\", \"delay\": }\n");
	cr_assert_eq(fmt_parse_fields(FMT_JSONL, &s, live, &cur, b, &err), EDDY_EINVAL);
	/* every field live: the same as fmt_parse_next */
	cur = cursor(json);
	cr_assert_eq(fmt_parse_fields(FMT_JSONL, &s, ~0ull, &cur, b, &err), EDDY_EINVAL);
	batch_free(b);
	schema_clear(&s);
}
