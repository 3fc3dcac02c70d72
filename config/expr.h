/*
 * The expression language of job files (`where: delay > 15`, `select: {name: expr}`,
 * `key_by: [origin]`, aggregate arguments such as `avg(delay)`): compiled once against a
 * schema when the plan is built, type-checked then, and evaluated per record without
 * allocating.
 *
 * Syntax. Field references: identifiers [A-Za-z_][A-Za-z0-9_]* or `back quoted` names
 * (`` inside is a back quote). Literals: 64-bit ints (`-9223372036854775808` is allowed;
 * anything larger is a compile error), floats (1.5, 1e3, .5, 2.), strings in single or
 * double quotes (the quote doubled stands for itself), true, false, null. Operators,
 * lowest precedence first: `or`, `and`, prefix `not`, comparisons `= == != <> < <= > >=`,
 * `+ -`, `* / %`, prefix `-`; parentheses. Keywords and function names are
 * case-insensitive; field names are not. An identifier followed by `(` is a function
 * call, so a field may be called `year` and still be read as `year`.
 *
 * Functions: abs(num), lower(s), upper(s) (ASCII letters only; other bytes kept),
 * length(s) -> int (bytes), concat(s, ...) (one or more strings), substr(s, start[, len])
 * (bytes; start 1-based as in SQL: positions before 1 count but select nothing, a start
 * past the end gives '', a negative len gives null), coalesce(a, ...) (first non-null),
 * if(cond, then, else) (a null cond takes else), hour(ts), day(ts) (of the month),
 * month(ts), year(ts) (UTC; -> int).
 *
 * Types. int op int -> int (`/` truncates toward zero, `%` is C's remainder); with a
 * float, float (`%` is fmod). timestamp +- int and int + timestamp -> timestamp,
 * timestamp - timestamp -> int (ms). Comparisons: numbers with numbers (int with float
 * compares as doubles; NaN is unequal to everything), strings with strings (bytewise,
 * then the shorter first), bools with bools (= and != only), timestamps with timestamps,
 * and a timestamp with a string literal that ev_ts_parse accepts (converted at compile
 * time; one it rejects is a compile error). `and`, `or`, `not` take bools. coalesce's
 * arguments and if's branches share one type (int mixed with float gives float). The
 * `null` literal has type EV_NULL and fits wherever a value does; an operation whose
 * only possible type follows from the other operand takes that (null + 1.5 is a float),
 * and null + null is an int.
 *
 * Nulls. and/or/not follow SQL's three-valued logic (null and false = false, null or
 * true = true, otherwise null). Any other operator or function with a null argument
 * gives null, except coalesce and if. Division or remainder by zero (int or float) gives
 * null; so does int overflow in + - * / unary minus and abs (timestamps included).
 *
 * Evaluation is a walk over a compact node array; constant subexpressions are folded at
 * compile time and the common filter shape `field <op> constant` is a single node.
 *
 * Thread rules: compiling touches only its arguments. A compiled expr is immutable: any
 * number of threads may evaluate it at once, each with its own expr_scratch.
 */
#ifndef EDDY_CONFIG_EXPR_H
#define EDDY_CONFIG_EXPR_H

#include <eddy/err.h>
#include <eddy/value.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this (parentheses, operators, calls) is a compile error; it bounds
 * the evaluator's recursion. A chain of `and`s or of `or`s counts as one level. */
#define EXPR_MAX_DEPTH 256

typedef struct expr expr;

/* A compile error: where and what. */
typedef struct expr_error {
	int col;       /* 1-based byte column in the text of the problem; 0 for ENOMEM */
	char msg[256]; /* one line, NUL-terminated, no trailing period */
} expr_error;

/* expr_compile parses text (NUL-terminated) and type-checks it against schema `in`
 * (borrowed: it must outlive the expr, and batches evaluated must have its layout).
 * On EDDY_OK *out is a new expr the caller frees with expr_free. Errors, with *err
 * filled (err may be NULL) and *out set to NULL:
 *   EDDY_EINVAL  syntax ("unexpected 'foo'", "expected ')' after arguments of concat",
 *                "unterminated string", "integer literal 99999999999999999999 is out of
 *                range"), unknown field ("unknown field 'dealy' (did you mean 'delay'?)",
 *                or the list of fields when nothing is within edit distance 2), unknown
 *                function, wrong number of arguments ("substr takes 2 or 3 arguments, got
 *                1"), types ("operator '+' cannot add string and int", "argument 1 of
 *                lower must be a string, not an int"), nesting deeper than EXPR_MAX_DEPTH,
 *                text over 1 MiB, text or in NULL;
 *   EDDY_ENOMEM  (col 0, "out of memory").
 * Whether the result type suits the caller (a where clause wants bool) is the caller's
 * check, through expr_type. Any thread. */
eddy_err expr_compile(const char *text, const ev_schema *in, expr **out, expr_error *err);

/* expr_type returns e's static result type; EV_NULL only when e is a null literal
 * (possibly parenthesised). The value of any evaluation is of this type or null. */
ev_type expr_type(const expr *e);

/* expr_field returns the field index when the whole expression is a bare field
 * reference (`origin`, `(origin)`), else -1. Lets callers copy a slot instead of
 * evaluating. */
int expr_field(const expr *e);

/* expr_fields returns the input fields e reads, bit i for field i (NULL e: none). May
 * include a field that constant folding made unneeded. */
uint64_t expr_fields(const expr *e);

/* Bytes of strings made by functions (lower, upper, concat). The fields belong to this
 * module; a zeroed struct is an empty scratch. Memory is a chain of chunks, each twice
 * the size of the one before, so a string made earlier stays where it is when a later
 * one needs room: every result is valid until the next reset. A reset keeps only the
 * largest chunk, so in steady state evaluation allocates nothing. One thread at a time. */
typedef struct expr_scratch {
	char *buf;       /* the newest chunk; it begins with a link to the one before */
	size_t len, cap; /* bytes used and size of buf, link included */
} expr_scratch;

/* expr_scratch_reset forgets every string made in s (the caller does it once per record,
 * after using the results) and frees all chunks but the newest, which it keeps for
 * reuse. Safe on a zeroed scratch. */
void expr_scratch_reset(expr_scratch *s);

/* expr_scratch_free frees s's memory and zeroes it. Safe on a zeroed scratch. */
void expr_scratch_free(expr_scratch *s);

/* expr_eval evaluates e for record `row` (< b->n) of batch b, whose schema must have the
 * layout of the one e was compiled against. The result has type expr_type(e), or
 * EV_NULL. A string result points into b's arena, into e's literals, or into sc; it is
 * valid until sc is reset, b's arena changes, or e is freed. When a string function
 * cannot get scratch memory (allocation failure, a result over 4 GiB, or sc NULL) it
 * yields null. Allocates only when sc must grow. Any thread, each with its own sc. */
ev_val expr_eval(const expr *e, const ev_batch *b, uint32_t row, expr_scratch *sc);

/* expr_eval_bool evaluates e (usually of type bool) as a filter: true only when the
 * value is the bool true; null and false, and any non-bool value, are false. Cheaper
 * than expr_eval for comparisons and and/or/not. Rules as expr_eval. */
bool expr_eval_bool(const expr *e, const ev_batch *b, uint32_t row, expr_scratch *sc);

/* expr_free frees e. Safe on NULL. No evaluation of e may be running. */
void expr_free(expr *e);

#endif
