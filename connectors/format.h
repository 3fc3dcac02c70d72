/*
 * Record formats: CSV (RFC 4180) and JSON lines, parsed into record batches and written
 * from them. The file source cuts its input into chunks of whole records (fmt_frame) on
 * its I/O thread; a parser actor turns each chunk into records (fmt_parse_next); the file
 * sink formats batches into bytes (fmt_write_row).
 *
 * Parsing allocates nothing per record: strings are copied (and unescaped in place)
 * straight into the batch's arena, numbers are converted from the input bytes. Only the
 * batch arena and an output fmt_buf ever grow.
 *
 * Thread rules: no global state; every function may be called from any thread. A cursor,
 * a batch and a buffer belong to one thread at a time; a schema may be shared.
 *
 * Numbers are read and written in the "C" locale's notation ('.' decimal point); the
 * process must not set another LC_NUMERIC.
 */
#ifndef EDDY_CONNECTORS_FORMAT_H
#define EDDY_CONNECTORS_FORMAT_H

#include <eddy/err.h>
#include <eddy/value.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum fmt_kind {
	FMT_CSV,  /* RFC 4180: ',' delimiter, '"' quotes, "" for a quote, "\n" or "\r\n" */
	FMT_JSONL /* one JSON object per line */
} fmt_kind;

/* fmt_kind_parse maps "csv" to FMT_CSV and "jsonl" to FMT_JSONL (exact, lower case);
 * false for anything else (or NULL), *out untouched. */
bool fmt_kind_parse(const char *name, fmt_kind *out);

/* What is wrong with a malformed record, filled by fmt_parse_next and fmt_check_header
 * when they return EDDY_EINVAL. */
typedef struct fmt_error {
	int64_t line; /* 1-based line of the bad field/char: the line where the record starts,
	               * unless a quoted field before it in the record spanned lines */
	int64_t col;  /* 1-based byte column of the bad field (its first byte, the opening
	               * quote if quoted) or char within that line; 0 when the error is about
	               * the whole record (a missing field) */
	char msg[256]; /* NUL-terminated, without the position, e.g. "field 'delay': 'abc'
	                * is not an int" */
	const char *rec; /* the raw record without its "\n" or "\r\n"; points into the input */
	size_t rec_len;  /* bytes */
} fmt_error;

/* A read position in an input of whole records. */
typedef struct fmt_cursor {
	const char *p;   /* next byte to read */
	const char *end; /* one past the last byte */
	int64_t line;    /* 1-based line number of the byte at p (start it at 1) */
} fmt_cursor;

/* fmt_parse_next parses the next record at cur->p and appends it to out as one record:
 * fields in schema order, out->ts[r] left 0 (the caller assigns event time). The input
 * [cur->p, cur->end) must hold whole records: each ends with '\n' or at cur->end; a "\r"
 * before the '\n' is dropped. Blank lines (and, for JSONL, lines of JSON whitespace only)
 * are skipped; cur->line counts every line passed, including the '\n' inside quoted CSV
 * fields. out must use schema (out->ncols == schema->n) and should have room
 * (!batch_full(out)); err may be NULL.
 *
 * CSV: the record must have exactly schema->n fields. Per type, a field holds:
 *   int        optional sign and decimal digits, in int64 range
 *   float      a decimal number strtod reads whole ("1.5", "-2e10"); no "inf", "nan", hex
 *   bool       true, false (any case), 1 or 0
 *   string     any bytes, as is (no trimming); quoted fields are unescaped
 *   timestamp  whatever ev_ts_parse takes: "YYYY-MM-DD HH:MM:SS[.fff]", ISO 8601,
 *              "YYYY-MM-DD" or epoch ms
 * An empty field is null, except for a string, where it is the empty string. A quoted
 * empty field ("") is the empty string, and null for the other types. Numbers, bools and
 * timestamps may be quoted but must not have surrounding spaces. A NUL byte anywhere in
 * a record makes it malformed.
 *
 * JSONL: a line is one JSON object; keys name fields (any order; unknown keys, with any
 * value, are ignored; for a key given twice the last one counts). A missing key or null
 * makes the field null. Types: int from an integral number ("3", "3.0", "3e2"), float
 * from a number, bool from true/false, string from a string (escapes decoded, \u
 * surrogate pairs to UTF-8; other bytes are not checked to be UTF-8), timestamp from a
 * string (as for CSV) or an integral number of epoch ms. An object or array as the value
 * of a schema field is an error (nested values are not supported yet).
 *
 * Returns:
 *   EDDY_OK      one record appended; cur is past it.
 *   EDDY_EEMPTY  no record left in [cur->p, cur->end); cur->p == cur->end.
 *   EDDY_EINVAL  the record is malformed: *err says why and where, nothing was appended
 *                (out->n and out's arena as before), cur is past the bad record so the
 *                caller may skip it and go on. For CSV the bad record ends at the first
 *                '\n' after an even number of '"' (what fmt_frame takes as a boundary),
 *                or at cur->end.
 *   EDDY_ENOMEM  out's arena could not grow; nothing appended, cur at the record.
 *   EDDY_EFULL   out is full, or its arena would pass 4 GiB; nothing appended, cur at
 *                the record (send the batch and retry with an empty one). A malformed
 *                record may still be reported (EDDY_EINVAL) when out is full.
 * Cost: one pass over the record plus the field conversions; no allocation except arena
 * growth. */
eddy_err fmt_parse_next(fmt_kind kind, const ev_schema *schema, fmt_cursor *cur, ev_batch *out,
                        fmt_error *err);

/* fmt_csv_vectors chooses how the CSV parser scans plain records: wide (the default) 32
 * bytes at a time with AVX2 where the CPU has it, else 16 with SSE2. For tests, which run
 * both; call it before parsing, not while another thread parses. */
void fmt_csv_vectors(bool wide);

/* fmt_parse_fields is fmt_parse_next for a job that reads only some fields (projection
 * pushdown, as Flink's file source): field i is converted and checked only when bit i of
 * live is set; the others are left null, whatever their text (a CSV record must still
 * have schema->n fields and a JSON line must still be valid JSON). */
eddy_err fmt_parse_fields(fmt_kind kind, const ev_schema *schema, uint64_t live, fmt_cursor *cur,
                          ev_batch *out, fmt_error *err);

/* fmt_check_header reads the CSV header record at cur (after any blank lines) and
 * checks that it names the schema's fields in order: same count, each name equal to the
 * schema's once spaces and tabs around it are trimmed (case-sensitive; quoted names are
 * unescaped). On EDDY_OK and EDDY_EINVAL cur is past the header. Errors: EDDY_EINVAL
 * with *err filled ("header has 4 fields, the schema 5", "header has 'dte' where the
 * schema has 'date'", or a CSV syntax error as fmt_parse_next reports it), EDDY_EEMPTY
 * when the input holds no record. err may be NULL. JSON lines have no header; do not
 * call this for them. */
eddy_err fmt_check_header(const ev_schema *schema, fmt_cursor *cur, fmt_error *err);

/* fmt_csv_end finds the end of the CSV record that starts at p: a pointer to its
 * terminating '\n', or NULL if [p, end) holds no complete record. A '"' opens a quoted
 * field only at the start of a field (after ',' or at the record start); inside quotes
 * "" is a quote and newlines are data (counted in *nls). A quote elsewhere is data — the
 * parser reports it — so one stray quote never swallows the records after it. Any thread. */
const char *fmt_csv_end(const char *p, const char *end, int64_t *nls);

/* fmt_frame returns the length in bytes of the longest prefix of data[0..len) made of
 * whole records, i.e. up to and including the last '\n' that ends a record, or 0 if
 * there is none. For JSONL every '\n' ends a record. For CSV records end as
 * fmt_csv_end says, data[0] being a record start. At the end of the input, the caller
 * passes what is left (a last record without '\n', or an unterminated quote that
 * fmt_parse_next then reports) as a final chunk. Cost: memchr/memrchr speed without
 * quotes; a byte loop over the records after the first quote otherwise. */
size_t fmt_frame(fmt_kind kind, const char *data, size_t len);

/* A growable byte buffer for output, allocated with rt_realloc. A zeroed fmt_buf is
 * empty and ready; the caller owns p (free it with fmt_buf_free) and may reset len. */
typedef struct fmt_buf {
	char *p;    /* bytes, not NUL-terminated */
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated */
} fmt_buf;

/* fmt_buf_reserve makes room for at least extra more bytes after len (growing
 * geometrically). Errors: EDDY_ENOMEM (b unchanged). */
eddy_err fmt_buf_reserve(fmt_buf *b, size_t extra);
/* fmt_buf_free frees b's bytes and zeroes it. Safe on a zeroed buffer. */
void fmt_buf_free(fmt_buf *b);

/* fmt_write_header appends the CSV header line: the field names separated by ',' and a
 * '\n', a name quoted when it must be (as strings in fmt_write_row). For JSONL it
 * appends nothing. Errors: EDDY_ENOMEM (out->len as before). */
eddy_err fmt_write_header(fmt_kind kind, const ev_schema *schema, fmt_buf *out);

/* fmt_write_row appends record r (< b->n) of b as one line ending in '\n' (b->ts is not
 * written). What fmt_parse_next reads back gives the same values, except as noted.
 * CSV: fields in schema order separated by ','; null is an empty field; a string is
 * quoted ("" for a '"') when it is empty or holds ',', '"', '\r' or '\n'; an int in
 * decimal; a float as the shortest of "%.15g", "%.16g", "%.17g" that reads back equal
 * (non-finite floats, which the parser rejects, as null); a bool as true/false; a
 * timestamp as ev_ts_format writes it ("YYYY-MM-DD HH:MM:SS[.mmm]"), or as epoch ms
 * outside the years 0000 to 9999. Not read back as written: a null string (an empty
 * field, which fmt_parse_next reads as the empty string), a string with a NUL byte
 * (rejected), a record of one null field (an empty line, skipped), and a timestamp of
 * 10^18 ms or more from the epoch (ev_ts_parse's limit).
 * JSONL: {"name":value,...} with every field in schema order, null as null, strings
 * JSON-escaped ('"', '\\', \n, \r, \t, other control chars as \u00XX; other bytes as
 * they are), floats as above with non-finite ones as null, bools as true/false,
 * timestamps as strings "YYYY-MM-DD HH:MM:SS[.mmm]" (or "<epoch ms>", as for CSV).
 * Errors: EDDY_ENOMEM (out->len as before: no partial line). */
eddy_err fmt_write_row(fmt_kind kind, const ev_batch *b, uint32_t r, fmt_buf *out);

#endif
