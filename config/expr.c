/*
 * The expression language (config/expr.h). A lexer hands tokens to a recursive-descent
 * parser that types, checks and folds each node as it builds it; nodes live in one array
 * and refer to their children by index. The evaluator walks that array: expressions of
 * type bool go through tri() (three-valued: false, true, null) and everything else
 * through eval(), which returns an ev_val.
 */
#include "expr.h"

#include "../runtime/alloc.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define EXPR_MAX_TEXT (1u << 20) /* bytes of expression text */
#define CONCAT_MAX 8             /* arguments of one concat node; more are nested */

/* ---- nodes ---- */

enum op {
	OP_CONST, /* the value in u (i, f, b or s); aux 1: null (of static type `type`) */
	OP_FIELD, /* u.field */
	OP_CAST_F, /* int k[0] as a float */
	OP_NEG_I,
	OP_NEG_F,
	OP_ADD_I, /* int and timestamp arithmetic: k[0] op k[1] */
	OP_SUB_I,
	OP_MUL_I,
	OP_DIV_I,
	OP_MOD_I,
	OP_ADD_F, /* float arithmetic: both children float */
	OP_SUB_F,
	OP_MUL_F,
	OP_DIV_F,
	OP_MOD_F,
	OP_ABS_I,
	OP_ABS_F,
	OP_LOWER,
	OP_UPPER,
	OP_LENGTH,
	OP_CONCAT,   /* list: 1..CONCAT_MAX strings */
	OP_SUBSTR,   /* k[0] string, k[1] start, k[2] length or NONE */
	OP_COALESCE, /* list */
	OP_IF,       /* k[0] cond, k[1] then, k[2] else */
	OP_HOUR,
	OP_DAY,
	OP_MONTH,
	OP_YEAR,
	/* bool-valued: evaluated by tri() */
	OP_NOT,
	OP_AND,   /* list */
	OP_OR,    /* list */
	OP_CMP_I, /* aux: CMP_ mask; int or timestamp children */
	OP_CMP_F, /* float children */
	OP_CMP_S,
	OP_CMP_B,
	OP_FC_I,  /* int or timestamp field u.fc.field against int u.fc.c.i */
	OP_FC_IF, /* int field against float u.fc.c.f */
	OP_FC_F,  /* float field against float u.fc.c.f */
	OP_FC_S,  /* string field against pool bytes [u.fc.c.soff, + u.fc.slen) */
};

/* A comparison is a mask of the orderings it accepts: bit 0 less, 1 equal, 2 greater. */
enum { CMP_LT = 1, CMP_EQ = 2, CMP_LE = 3, CMP_GT = 4, CMP_NE = 5, CMP_GE = 6 };

typedef struct node {
	uint8_t op;   /* enum op */
	uint8_t type; /* static ev_type of the result */
	uint8_t aux;  /* OP_CONST: 1 when null; comparisons: CMP_ mask */
	uint8_t unused_;
	uint32_t col; /* 1-based column, for messages at compile time */
	union {
		uint32_t k[3]; /* children, indices into nodes */
		struct {
			uint32_t first, n; /* children args[first .. first + n) */
		} list;
		uint32_t field;
		int64_t i;
		double f;
		bool b;
		struct {
			uint32_t off, len; /* bytes pool[off .. off + len) */
		} s;
		struct {
			uint32_t field;
			uint32_t slen;
			union {
				int64_t i;
				double f;
				uint32_t soff;
			} c;
		} fc;
	} u;
} node;

_Static_assert(sizeof(node) == 24, "keep nodes compact");

struct expr {
	node *nodes;       /* [nnodes]; some are orphans left by folding */
	uint32_t *args;    /* [nargs] children of list nodes */
	char *pool;        /* [pool_len] bytes of string constants */
	const ev_schema *in;
	uint32_t nnodes, nargs;
	size_t pool_len;
	uint32_t root;
	ev_type type;
	int field;
};

/* ---- scratch ---- */

/* A chunk begins with a pointer to the previous chunk (NULL for the oldest). */
#define CHUNK_HDR sizeof(char *)
#define CHUNK_MIN 256

static char empty_bytes[1];

/* scratch_take returns n contiguous bytes that stay put until the next reset, or NULL. */
static char *scratch_take(expr_scratch *sc, size_t n)
{
	if (n == 0)
		return empty_bytes;
	if (sc == NULL)
		return NULL;
	if (sc->cap - sc->len < n) {
		size_t want = sc->cap ? sc->cap : CHUNK_MIN / 2;
		do {
			if (want > SIZE_MAX / 2)
				return NULL;
			want *= 2;
		} while (want - CHUNK_HDR < n);
		char *c = rt_malloc(want);
		if (c == NULL)
			return NULL;
		memcpy(c, &sc->buf, sizeof(char *));
		sc->buf = c;
		sc->cap = want;
		sc->len = CHUNK_HDR;
	}
	char *p = sc->buf + sc->len;
	sc->len += n;
	return p;
}

void expr_scratch_reset(expr_scratch *s)
{
	if (s->buf == NULL)
		return;
	char *prev;
	memcpy(&prev, s->buf, sizeof(char *));
	while (prev != NULL) {
		char *older;
		memcpy(&older, prev, sizeof(char *));
		rt_free(prev);
		prev = older;
	}
	char *none = NULL;
	memcpy(s->buf, &none, sizeof(char *));
	s->len = CHUNK_HDR;
}

void expr_scratch_free(expr_scratch *s)
{
	expr_scratch_reset(s);
	rt_free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

/* ---- evaluation ---- */

enum { TRI_F = 0, TRI_T = 1, TRI_N = 2 };

static ev_val eval(const expr *e, const node *n, const ev_batch *b, uint32_t row,
                   expr_scratch *sc);

static inline ev_val v_null(void)
{
	return (ev_val){ .type = EV_NULL };
}
static inline ev_val v_int(ev_type t, int64_t i)
{
	return (ev_val){ .type = t, .i = i };
}
static inline ev_val v_float(double f)
{
	return (ev_val){ .type = EV_FLOAT, .f = f };
}
static inline ev_val v_str(const char *p, uint32_t len)
{
	return (ev_val){ .type = EV_STRING, .s = { .p = len ? p : empty_bytes, .len = len } };
}
static inline ev_val v_tri(int t)
{
	return t == TRI_N ? v_null() : (ev_val){ .type = EV_BOOL, .b = t == TRI_T };
}

static inline int cmp_mask(unsigned mask, int c)
{
	return (int)((mask >> (c + 1)) & 1u);
}
static inline int cmp_i(int64_t x, int64_t y)
{
	return (x > y) - (x < y);
}
static inline int tri_f(unsigned mask, double x, double y)
{
	if (isnan(x) || isnan(y))
		return mask == CMP_NE;
	return cmp_mask(mask, (x > y) - (x < y));
}
static inline int cmp_s(const char *a, uint32_t al, const char *b, uint32_t bl)
{
	uint32_t m = al < bl ? al : bl;
	int c = m ? memcmp(a, b, m) : 0;
	if (c != 0)
		return c < 0 ? -1 : 1;
	return (al > bl) - (al < bl);
}

static int64_t floor_div(int64_t a, int64_t d)
{
	int64_t q = a / d;
	return (a % d != 0 && ((a < 0) != (d < 0))) ? q - 1 : q;
}

#define KID(j) (&e->nodes[n->u.k[j]])
#define ARG(j) (&e->nodes[e->args[n->u.list.first + (j)]])

/* tri evaluates a bool-typed (or null-typed) node: TRI_F, TRI_T or TRI_N. */
static int tri(const expr *e, const node *n, const ev_batch *b, uint32_t row,
               expr_scratch *sc)
{
	switch (n->op) {
	case OP_FC_I: {
		uint32_t c = n->u.fc.field;
		if (batch_is_null(b, row, c))
			return TRI_N;
		return cmp_mask(n->aux, cmp_i(batch_get_int(b, row, c), n->u.fc.c.i));
	}
	case OP_FC_IF: {
		uint32_t c = n->u.fc.field;
		if (batch_is_null(b, row, c))
			return TRI_N;
		return tri_f(n->aux, (double)batch_get_int(b, row, c), n->u.fc.c.f);
	}
	case OP_FC_F: {
		uint32_t c = n->u.fc.field;
		if (batch_is_null(b, row, c))
			return TRI_N;
		return tri_f(n->aux, batch_get_float(b, row, c), n->u.fc.c.f);
	}
	case OP_FC_S: {
		uint32_t c = n->u.fc.field, len;
		if (batch_is_null(b, row, c))
			return TRI_N;
		const char *p = batch_get_str(b, row, c, &len);
		const char *q = e->pool + n->u.fc.c.soff;
		if (n->aux == CMP_EQ || n->aux == CMP_NE) {
			bool eq = len == n->u.fc.slen && (len == 0 || memcmp(p, q, len) == 0);
			return eq == (n->aux == CMP_EQ);
		}
		return cmp_mask(n->aux, cmp_s(p, len, q, n->u.fc.slen));
	}
	case OP_CMP_I:
	case OP_CMP_F:
	case OP_CMP_S:
	case OP_CMP_B: {
		ev_val x = eval(e, KID(0), b, row, sc);
		if (x.type == EV_NULL)
			return TRI_N;
		ev_val y = eval(e, KID(1), b, row, sc);
		if (y.type == EV_NULL)
			return TRI_N;
		switch (n->op) {
		case OP_CMP_I: return cmp_mask(n->aux, cmp_i(x.i, y.i));
		case OP_CMP_F: return tri_f(n->aux, x.f, y.f);
		case OP_CMP_S: return cmp_mask(n->aux, cmp_s(x.s.p, x.s.len, y.s.p, y.s.len));
		default: return cmp_mask(n->aux, x.b != y.b);
		}
	}
	case OP_NOT: {
		int t = tri(e, KID(0), b, row, sc);
		return t == TRI_N ? TRI_N : !t;
	}
	case OP_AND: {
		int r = TRI_T;
		for (uint32_t j = 0; j < n->u.list.n; j++) {
			int t = tri(e, ARG(j), b, row, sc);
			if (t == TRI_F)
				return TRI_F;
			if (t == TRI_N)
				r = TRI_N;
		}
		return r;
	}
	case OP_OR: {
		int r = TRI_F;
		for (uint32_t j = 0; j < n->u.list.n; j++) {
			int t = tri(e, ARG(j), b, row, sc);
			if (t == TRI_T)
				return TRI_T;
			if (t == TRI_N)
				r = TRI_N;
		}
		return r;
	}
	default: {
		ev_val v = eval(e, n, b, row, sc);
		return v.type == EV_BOOL ? (int)v.b : TRI_N;
	}
	}
}

static ev_val eval_const(const expr *e, const node *n)
{
	if (n->aux)
		return v_null();
	switch (n->type) {
	case EV_INT:
	case EV_TIMESTAMP: return v_int(n->type, n->u.i);
	case EV_FLOAT: return v_float(n->u.f);
	case EV_BOOL: return v_tri(n->u.b);
	case EV_STRING: return v_str(n->u.s.len ? e->pool + n->u.s.off : NULL, n->u.s.len);
	default: return v_null();
	}
}

static ev_val eval_field(const node *n, const ev_batch *b, uint32_t row)
{
	uint32_t c = n->u.field;
	if (batch_is_null(b, row, c))
		return v_null();
	switch (n->type) {
	case EV_INT:
	case EV_TIMESTAMP: return v_int(n->type, batch_get_int(b, row, c));
	case EV_FLOAT: return v_float(batch_get_float(b, row, c));
	case EV_BOOL: return v_tri(batch_get_bool(b, row, c));
	case EV_STRING: {
		uint32_t len;
		const char *p = batch_get_str(b, row, c, &len);
		return v_str(p, len);
	}
	default: return v_null();
	}
}

static ev_val eval_arith_i(const node *n, int64_t x, int64_t y)
{
	int64_t r;
	switch (n->op) {
	case OP_ADD_I:
		if (__builtin_add_overflow(x, y, &r))
			return v_null();
		break;
	case OP_SUB_I:
		if (__builtin_sub_overflow(x, y, &r))
			return v_null();
		break;
	case OP_MUL_I:
		if (__builtin_mul_overflow(x, y, &r))
			return v_null();
		break;
	case OP_DIV_I:
		if (y == 0 || (x == INT64_MIN && y == -1))
			return v_null();
		r = x / y;
		break;
	default: /* OP_MOD_I */
		if (y == 0)
			return v_null();
		r = y == -1 ? 0 : x % y;
		break;
	}
	return v_int(n->type, r);
}

static ev_val eval_arith_f(const node *n, double x, double y)
{
	switch (n->op) {
	case OP_ADD_F: return v_float(x + y);
	case OP_SUB_F: return v_float(x - y);
	case OP_MUL_F: return v_float(x * y);
	case OP_DIV_F: return y == 0.0 ? v_null() : v_float(x / y);
	default: return y == 0.0 ? v_null() : v_float(fmod(x, y));
	}
}

static ev_val eval_case(const node *n, ev_val x, expr_scratch *sc)
{
	char *d = scratch_take(sc, x.s.len);
	if (d == NULL)
		return v_null();
	char lo = n->op == OP_LOWER ? 'A' : 'a', hi = n->op == OP_LOWER ? 'Z' : 'z';
	for (uint32_t i = 0; i < x.s.len; i++) {
		char c = x.s.p[i];
		d[i] = (c >= lo && c <= hi) ? (char)(c ^ 0x20) : c;
	}
	return v_str(d, x.s.len);
}

static ev_val eval_substr(const expr *e, const node *n, ev_val s, const ev_batch *b,
                          uint32_t row, expr_scratch *sc)
{
	ev_val st = eval(e, KID(1), b, row, sc);
	if (st.type == EV_NULL)
		return v_null();
	int64_t from, to = INT64_MAX;
	if (__builtin_sub_overflow(st.i, 1, &from))
		from = INT64_MIN;
	if (n->u.k[2] != NONE) {
		ev_val ln = eval(e, KID(2), b, row, sc);
		if (ln.type == EV_NULL || ln.i < 0)
			return v_null();
		if (__builtin_add_overflow(from, ln.i, &to))
			to = INT64_MAX;
	}
	int64_t len = s.s.len;
	from = from < 0 ? 0 : from > len ? len : from;
	to = to > len ? len : to < from ? from : to;
	return v_str(to > from ? s.s.p + from : NULL, (uint32_t)(to - from));
}

static ev_val eval_concat(const expr *e, const node *n, const ev_batch *b, uint32_t row,
                          expr_scratch *sc)
{
	ev_val v[CONCAT_MAX];
	uint32_t m = n->u.list.n;
	uint64_t total = 0;
	assert(m <= CONCAT_MAX);
	for (uint32_t j = 0; j < m; j++) {
		v[j] = eval(e, ARG(j), b, row, sc);
		if (v[j].type == EV_NULL)
			return v_null();
		total += v[j].s.len;
	}
	if (total > UINT32_MAX)
		return v_null();
	char *d = scratch_take(sc, (size_t)total);
	if (d == NULL)
		return v_null();
	size_t off = 0;
	for (uint32_t j = 0; j < m; j++) {
		if (v[j].s.len)
			memcpy(d + off, v[j].s.p, v[j].s.len);
		off += v[j].s.len;
	}
	return v_str(d, (uint32_t)total);
}

static ev_val eval_time(const node *n, int64_t ms)
{
	int64_t days = floor_div(ms, 86400000);
	if (n->op == OP_HOUR)
		return v_int(EV_INT, (ms - days * 86400000) / 3600000);
	int64_t y;
	unsigned m, d;
	ev_civil_from_days(days, &y, &m, &d);
	return v_int(EV_INT, n->op == OP_DAY ? d : n->op == OP_MONTH ? m : y);
}

/* eval evaluates any node. b is NULL when folding constants (no field below n then). */
static ev_val eval(const expr *e, const node *n, const ev_batch *b, uint32_t row,
                   expr_scratch *sc)
{
	switch (n->op) {
	case OP_CONST: return eval_const(e, n);
	case OP_FIELD: return eval_field(n, b, row);
	case OP_CAST_F: {
		ev_val x = eval(e, KID(0), b, row, sc);
		return x.type == EV_NULL ? x : v_float((double)x.i);
	}
	case OP_NEG_I: {
		ev_val x = eval(e, KID(0), b, row, sc);
		if (x.type == EV_NULL || x.i == INT64_MIN)
			return v_null();
		return v_int(EV_INT, -x.i);
	}
	case OP_NEG_F: {
		ev_val x = eval(e, KID(0), b, row, sc);
		return x.type == EV_NULL ? x : v_float(-x.f);
	}
	case OP_ADD_I:
	case OP_SUB_I:
	case OP_MUL_I:
	case OP_DIV_I:
	case OP_MOD_I: {
		ev_val x = eval(e, KID(0), b, row, sc);
		if (x.type == EV_NULL)
			return x;
		ev_val y = eval(e, KID(1), b, row, sc);
		if (y.type == EV_NULL)
			return y;
		return eval_arith_i(n, x.i, y.i);
	}
	case OP_ADD_F:
	case OP_SUB_F:
	case OP_MUL_F:
	case OP_DIV_F:
	case OP_MOD_F: {
		ev_val x = eval(e, KID(0), b, row, sc);
		if (x.type == EV_NULL)
			return x;
		ev_val y = eval(e, KID(1), b, row, sc);
		if (y.type == EV_NULL)
			return y;
		return eval_arith_f(n, x.f, y.f);
	}
	case OP_ABS_I: {
		ev_val x = eval(e, KID(0), b, row, sc);
		if (x.type == EV_NULL || x.i == INT64_MIN)
			return v_null();
		return v_int(EV_INT, x.i < 0 ? -x.i : x.i);
	}
	case OP_ABS_F: {
		ev_val x = eval(e, KID(0), b, row, sc);
		return x.type == EV_NULL ? x : v_float(fabs(x.f));
	}
	case OP_LOWER:
	case OP_UPPER: {
		ev_val x = eval(e, KID(0), b, row, sc);
		return x.type == EV_NULL ? x : eval_case(n, x, sc);
	}
	case OP_LENGTH: {
		ev_val x = eval(e, KID(0), b, row, sc);
		return x.type == EV_NULL ? x : v_int(EV_INT, x.s.len);
	}
	case OP_CONCAT: return eval_concat(e, n, b, row, sc);
	case OP_SUBSTR: {
		ev_val x = eval(e, KID(0), b, row, sc);
		return x.type == EV_NULL ? x : eval_substr(e, n, x, b, row, sc);
	}
	case OP_COALESCE:
		for (uint32_t j = 0; j < n->u.list.n; j++) {
			ev_val x = eval(e, ARG(j), b, row, sc);
			if (x.type != EV_NULL)
				return x;
		}
		return v_null();
	case OP_IF: return eval(e, KID(tri(e, KID(0), b, row, sc) == TRI_T ? 1 : 2), b, row, sc);
	case OP_HOUR:
	case OP_DAY:
	case OP_MONTH:
	case OP_YEAR: {
		ev_val x = eval(e, KID(0), b, row, sc);
		return x.type == EV_NULL ? x : eval_time(n, x.i);
	}
	default: return v_tri(tri(e, n, b, row, sc));
	}
}

ev_val expr_eval(const expr *e, const ev_batch *b, uint32_t row, expr_scratch *sc)
{
	assert(b != NULL && row < b->n && b->ncols == e->in->n);
	return eval(e, &e->nodes[e->root], b, row, sc);
}

bool expr_eval_bool(const expr *e, const ev_batch *b, uint32_t row, expr_scratch *sc)
{
	assert(b != NULL && row < b->n && b->ncols == e->in->n);
	return tri(e, &e->nodes[e->root], b, row, sc) == TRI_T;
}

ev_type expr_type(const expr *e)
{
	return e->type;
}

int expr_field(const expr *e)
{
	return e->field;
}

uint64_t expr_fields(const expr *e)
{
	uint64_t m = 0;
	for (uint32_t i = 0; e != NULL && i < e->nnodes; i++)
		if (e->nodes[i].op == OP_FIELD)
			m |= 1ull << e->nodes[i].u.field;
	return m;
}

void expr_free(expr *e)
{
	if (e == NULL)
		return;
	rt_free(e->nodes);
	rt_free(e->args);
	rt_free(e->pool);
	rt_free(e);
}

/* ---- lexer ---- */

typedef enum tk {
	T_EOF,
	T_ERR, /* a lexical error, already reported */
	T_IDENT,
	T_QIDENT, /* `quoted name` */
	T_INT,
	T_FLOAT,
	T_STRING,
	T_LP,
	T_RP,
	T_COMMA,
	T_PLUS,
	T_MINUS,
	T_STAR,
	T_SLASH,
	T_PCT,
	T_EQ,
	T_NE,
	T_LT,
	T_LE,
	T_GT,
	T_GE,
	T_AND,
	T_OR,
	T_NOT,
	T_TRUE,
	T_FALSE,
	T_NULL,
} tk;

typedef struct tok {
	tk kind;
	size_t pos, len; /* bytes of text, quotes included */
	uint64_t mag;    /* T_INT: the value; > 2^63 when out of range */
	double f;        /* T_FLOAT */
} tok;

typedef struct idxvec {
	uint32_t *v;
	uint32_t n, cap;
} idxvec;

typedef struct parser {
	const char *text;
	size_t len;
	size_t pos; /* where the lexer resumes */
	tok t;      /* the current token */
	expr *e;    /* being built */
	uint32_t ncap, acap;
	size_t pcap;
	uint16_t *depth; /* [ncap] height of each node's tree */
	int nest;        /* recursion depth of the parser */
	eddy_err rc;
	expr_error *err;
	expr_scratch fold; /* for folding constants */
} parser;

static uint32_t fail(parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static uint32_t fail(parser *p, size_t pos, const char *fmt, ...)
{
	if (p->rc != EDDY_OK)
		return NONE;
	p->rc = EDDY_EINVAL;
	p->err->col = (int)pos + 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
	va_end(ap);
	return NONE;
}

static uint32_t oom(parser *p)
{
	if (p->rc == EDDY_OK) {
		p->rc = EDDY_ENOMEM;
		p->err->col = 0;
		snprintf(p->err->msg, sizeof(p->err->msg), "out of memory");
	}
	return NONE;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}
static bool is_id0(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_id(char c)
{
	return is_id0(c) || is_digit(c);
}
static char lower_ascii(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* word_is: s[0..n) equals the lower-case word w, ignoring ASCII case. */
static bool word_is(const char *s, size_t n, const char *w)
{
	size_t i = 0;
	for (; i < n && w[i] != '\0'; i++)
		if (lower_ascii(s[i]) != w[i])
			return false;
	return i == n && w[i] == '\0';
}

static void lex_number(parser *p, tok *t)
{
	const char *s = p->text;
	size_t j = t->pos;
	bool isf = false;
	while (is_digit(s[j]))
		j++;
	if (s[j] == '.') {
		isf = true;
		j++;
		while (is_digit(s[j]))
			j++;
	}
	if (s[j] == 'e' || s[j] == 'E') {
		size_t k = j + 1;
		if (s[k] == '+' || s[k] == '-')
			k++;
		if (is_digit(s[k])) {
			isf = true;
			j = k;
			while (is_digit(s[j]))
				j++;
		}
	}
	if (is_id(s[j]) || s[j] == '.') {
		while (is_id(s[j]) || s[j] == '.')
			j++;
		t->kind = T_ERR;
		fail(p, t->pos, "malformed number '%.*s'", (int)(j - t->pos > 40 ? 40 : j - t->pos),
		     s + t->pos);
		return;
	}
	t->len = j - t->pos;
	if (isf) {
		t->kind = T_FLOAT;
		t->f = strtod(s + t->pos, NULL);
		if (isinf(t->f)) {
			t->kind = T_ERR;
			fail(p, t->pos, "float literal %.*s is out of range",
			     (int)(t->len > 40 ? 40 : t->len), s + t->pos);
		}
		return;
	}
	t->kind = T_INT;
	uint64_t m = 0;
	for (size_t i = t->pos; i < j; i++) {
		if (m > (UINT64_MAX - 9) / 10) {
			m = UINT64_MAX; /* far out of range; stays so */
			break;
		}
		m = m * 10 + (uint64_t)(s[i] - '0');
	}
	t->mag = m;
}

/* next reads the token after the current one into p->t. */
static void next(parser *p)
{
	const char *s = p->text;
	size_t i = p->pos;
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	tok t = { .kind = T_EOF, .pos = i, .len = 1 };
	char c = s[i];
	if (c == '\0') {
		t.len = 0;
	} else if (is_id0(c)) {
		size_t j = i;
		while (is_id(s[j]))
			j++;
		t.len = j - i;
		static const struct {
			const char *w;
			tk kind;
		} kw[] = { { "and", T_AND },   { "or", T_OR },       { "not", T_NOT },
			   { "true", T_TRUE }, { "false", T_FALSE }, { "null", T_NULL } };
		t.kind = T_IDENT;
		for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); k++)
			if (word_is(s + i, t.len, kw[k].w))
				t.kind = kw[k].kind;
	} else if (is_digit(c) || (c == '.' && is_digit(s[i + 1]))) {
		lex_number(p, &t);
	} else if (c == '\'' || c == '"' || c == '`') {
		size_t j = i + 1;
		for (;;) {
			if (s[j] == '\0') {
				t.kind = T_ERR;
				fail(p, i, c == '`' ? "unterminated quoted name"
				                    : "unterminated string");
				break;
			}
			if (s[j] == c) {
				if (s[j + 1] != c)
					break;
				j++;
			}
			j++;
		}
		if (t.kind != T_ERR) {
			t.kind = c == '`' ? T_QIDENT : T_STRING;
			t.len = j + 1 - i;
		}
	} else {
		static const struct {
			const char *s;
			tk kind;
		} ops[] = { { "==", T_EQ }, { "!=", T_NE }, { "<>", T_NE }, { "<=", T_LE },
			    { ">=", T_GE }, { "=", T_EQ },  { "<", T_LT },  { ">", T_GT },
			    { "+", T_PLUS }, { "-", T_MINUS }, { "*", T_STAR }, { "/", T_SLASH },
			    { "%", T_PCT }, { "(", T_LP },  { ")", T_RP },  { ",", T_COMMA } };
		t.kind = T_ERR;
		for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
			size_t n = strlen(ops[k].s);
			if (strncmp(s + i, ops[k].s, n) == 0) {
				t.kind = ops[k].kind;
				t.len = n;
				break;
			}
		}
		if (t.kind == T_ERR) {
			if (c > ' ' && c < 127)
				fail(p, i, "unexpected character '%c'", c);
			else
				fail(p, i, "unexpected byte 0x%02x", (unsigned char)c);
		}
	}
	p->t = t;
	if (t.kind != T_ERR)
		p->pos = i + t.len;
}

/* unexpected reports the current token as out of place. */
static uint32_t unexpected(parser *p)
{
	const tok *t = &p->t;
	int n = (int)(t->len > 40 ? 40 : t->len);
	switch (t->kind) {
	case T_ERR: return NONE;
	case T_EOF: return fail(p, t->pos, "unexpected end of expression");
	case T_STRING: return fail(p, t->pos, "unexpected string %.*s", n, p->text + t->pos);
	default: return fail(p, t->pos, "unexpected '%.*s'", n, p->text + t->pos);
	}
}

/* ---- building nodes ---- */

static node *N(parser *p, uint32_t i)
{
	return &p->e->nodes[i];
}

static uint32_t new_node(parser *p, uint8_t op, ev_type type, size_t pos)
{
	expr *e = p->e;
	if (e->nnodes == p->ncap) {
		uint32_t cap = p->ncap ? p->ncap * 2 : 16;
		node *nn = rt_realloc(e->nodes, cap * sizeof(node));
		if (nn == NULL)
			return oom(p);
		e->nodes = nn;
		uint16_t *nd = rt_realloc(p->depth, cap * sizeof(uint16_t));
		if (nd == NULL)
			return oom(p);
		p->depth = nd;
		p->ncap = cap;
	}
	uint32_t i = e->nnodes++;
	memset(&e->nodes[i], 0, sizeof(node));
	e->nodes[i].op = op;
	e->nodes[i].type = (uint8_t)type;
	e->nodes[i].col = (uint32_t)pos + 1;
	p->depth[i] = 1;
	return i;
}

static uint32_t new_const(parser *p, ev_type type, size_t pos)
{
	return new_node(p, OP_CONST, type, pos);
}

static uint32_t new_null(parser *p, ev_type type, size_t pos)
{
	uint32_t i = new_const(p, type, pos);
	if (i != NONE)
		N(p, i)->aux = 1;
	return i;
}

/* pool_add appends n bytes to the constant pool; their offset in *off. */
static bool pool_add(parser *p, const char *s, size_t n, uint32_t *off)
{
	expr *e = p->e;
	if (n > UINT32_MAX || e->pool_len + n > UINT32_MAX) {
		oom(p);
		return false;
	}
	if (p->pcap - e->pool_len < n) {
		size_t cap = p->pcap ? p->pcap : 64;
		while (cap - e->pool_len < n)
			cap *= 2;
		char *np = rt_realloc(e->pool, cap);
		if (np == NULL) {
			oom(p);
			return false;
		}
		e->pool = np;
		p->pcap = cap;
	}
	*off = (uint32_t)e->pool_len;
	if (n && s)
		memcpy(e->pool + e->pool_len, s, n);
	e->pool_len += n;
	return true;
}

static bool vec_push(parser *p, idxvec *v, uint32_t x)
{
	if (v->n == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 8;
		uint32_t *nv = rt_realloc(v->v, cap * sizeof(uint32_t));
		if (nv == NULL) {
			oom(p);
			return false;
		}
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = x;
	return true;
}

/* new_list makes a node whose children are xs[0..n), stored in args. */
static uint32_t new_list(parser *p, uint8_t op, ev_type type, size_t pos, const uint32_t *xs,
                         uint32_t n)
{
	expr *e = p->e;
	if (p->acap - e->nargs < n) {
		uint32_t cap = p->acap ? p->acap : 16;
		while (cap - e->nargs < n)
			cap *= 2;
		uint32_t *na = rt_realloc(e->args, cap * sizeof(uint32_t));
		if (na == NULL)
			return oom(p);
		e->args = na;
		p->acap = cap;
	}
	uint32_t i = new_node(p, op, type, pos);
	if (i == NONE)
		return NONE;
	N(p, i)->u.list.first = e->nargs;
	N(p, i)->u.list.n = n;
	memcpy(e->args + e->nargs, xs, n * sizeof(uint32_t));
	e->nargs += n;
	return i;
}

static bool is_list(uint8_t op)
{
	return op == OP_AND || op == OP_OR || op == OP_CONCAT || op == OP_COALESCE;
}

static uint32_t nkids(const node *n)
{
	switch (n->op) {
	case OP_CONST:
	case OP_FIELD:
	case OP_FC_I:
	case OP_FC_IF:
	case OP_FC_F:
	case OP_FC_S: return 0;
	case OP_CAST_F:
	case OP_NEG_I:
	case OP_NEG_F:
	case OP_ABS_I:
	case OP_ABS_F:
	case OP_LOWER:
	case OP_UPPER:
	case OP_LENGTH:
	case OP_HOUR:
	case OP_DAY:
	case OP_MONTH:
	case OP_YEAR:
	case OP_NOT: return 1;
	case OP_SUBSTR: return n->u.k[2] == NONE ? 2 : 3;
	case OP_IF: return 3;
	default: return is_list(n->op) ? n->u.list.n : 2;
	}
}

static uint32_t kid(parser *p, const node *n, uint32_t j)
{
	return is_list(n->op) ? p->e->args[n->u.list.first + j] : n->u.k[j];
}

/* strict ops give null when any argument is null. */
static bool strict(uint8_t op)
{
	return op != OP_COALESCE && op != OP_IF && op != OP_AND && op != OP_OR;
}

static uint32_t new_kids(parser *p, uint8_t op, ev_type type, size_t pos, uint32_t a, uint32_t b,
                         uint32_t c)
{
	uint32_t i = new_node(p, op, type, pos);
	if (i != NONE) {
		N(p, i)->u.k[0] = a;
		N(p, i)->u.k[1] = b;
		N(p, i)->u.k[2] = c;
	}
	return i;
}

/* finish completes node i once its children are set: it checks the nesting depth and
 * folds the node into a constant when its value cannot depend on the record. */
static uint32_t finish(parser *p, uint32_t i)
{
	if (i == NONE)
		return NONE;
	node *n = N(p, i);
	uint32_t nk = nkids(n), d = 0;
	bool all_const = true, any_null = false;
	for (uint32_t j = 0; j < nk; j++) {
		uint32_t k = kid(p, n, j);
		const node *c = N(p, k);
		d = p->depth[k] > d ? p->depth[k] : d;
		all_const = all_const && c->op == OP_CONST;
		any_null = any_null || (c->op == OP_CONST && c->aux);
	}
	if (d + 1 > EXPR_MAX_DEPTH)
		return fail(p, n->col - 1, "expression is nested too deeply (limit %d)",
		            EXPR_MAX_DEPTH);
	p->depth[i] = (uint16_t)(d + 1);
	if (nk == 0)
		return i;
	if (strict(n->op) && any_null) {
		p->depth[i] = 1;
		n->op = OP_CONST;
		n->aux = 1;
		return i;
	}
	if (!all_const)
		return i;
	ev_val v = eval(p->e, n, NULL, 0, &p->fold);
	node c = { .op = OP_CONST, .type = n->type, .col = n->col };
	switch (v.type) {
	case EV_NULL: c.aux = 1; break;
	case EV_INT:
	case EV_TIMESTAMP: c.u.i = v.i; break;
	case EV_FLOAT: c.u.f = v.f; break;
	case EV_BOOL: c.u.b = v.b; break;
	case EV_STRING: {
		uintptr_t sp = (uintptr_t)v.s.p, pb = (uintptr_t)p->e->pool;
		c.u.s.len = v.s.len;
		if (v.s.len && p->e->pool && sp >= pb && sp < pb + p->e->pool_len) {
			c.u.s.off = (uint32_t)(sp - pb); /* a view of a literal */
		} else if (!pool_add(p, v.s.p, v.s.len, &c.u.s.off)) {
			expr_scratch_reset(&p->fold);
			return NONE;
		}
		break;
	}
	default: assert(0);
	}
	expr_scratch_reset(&p->fold);
	*N(p, i) = c;
	p->depth[i] = 1;
	return i;
}

/* ---- types ---- */

static bool numeric(ev_type t)
{
	return t == EV_INT || t == EV_FLOAT;
}

static const char *a_type(ev_type t)
{
	switch (t) {
	case EV_INT: return "an int";
	case EV_FLOAT: return "a float";
	case EV_BOOL: return "a bool";
	case EV_STRING: return "a string";
	case EV_TIMESTAMP: return "a timestamp";
	default: return "null";
	}
}

static ev_type T(parser *p, uint32_t i)
{
	return (ev_type)N(p, i)->type;
}

/* cast_f makes int node i a float (a constant converts in place). */
static uint32_t cast_f(parser *p, uint32_t i)
{
	node *n = N(p, i);
	if (n->type == EV_FLOAT)
		return i;
	if (n->op == OP_CONST) {
		if (!n->aux)
			n->u.f = (double)n->u.i;
		n->type = EV_FLOAT;
		return i;
	}
	return finish(p, new_kids(p, OP_CAST_F, EV_FLOAT, n->col - 1, i, 0, 0));
}

/* ---- parser ---- */

static uint32_t parse_expr(parser *p);

static bool enter(parser *p, size_t pos)
{
	if (++p->nest > EXPR_MAX_DEPTH) {
		fail(p, pos, "expression is nested too deeply (limit %d)", EXPR_MAX_DEPTH);
		return false;
	}
	return true;
}

static unsigned edit_distance(const char *a, size_t an, const char *b, size_t bn)
{
	if (an > 64 || bn > 64)
		return UINT_MAX;
	unsigned row[65];
	for (size_t j = 0; j <= bn; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= an; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= bn; j++) {
			unsigned up = row[j];
			unsigned best = diag + (lower_ascii(a[i - 1]) != lower_ascii(b[j - 1]));
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[bn];
}

static uint32_t unknown_field(parser *p, const char *name, size_t n, size_t pos)
{
	const ev_schema *in = p->e->in;
	int nn = (int)(n > 64 ? 64 : n);
	unsigned best = 3;
	int bi = -1;
	for (uint32_t i = 0; i < in->n; i++) {
		const char *f = in->fields[i].name;
		unsigned d = edit_distance(name, n, f, strlen(f));
		if (d < best) {
			best = d;
			bi = (int)i;
		}
	}
	if (bi >= 0)
		return fail(p, pos, "unknown field '%.*s' (did you mean '%s'?)", nn, name,
		            in->fields[bi].name);
	if (in->n == 0)
		return fail(p, pos, "unknown field '%.*s' (the input has no fields)", nn, name);
	if (p->rc != EDDY_OK)
		return NONE;
	fail(p, pos, "unknown field '%.*s' (fields: ", nn, name);
	char *m = p->err->msg;
	size_t cap = sizeof(p->err->msg), used = strlen(m);
	for (uint32_t i = 0; i < in->n; i++) {
		const char *f = in->fields[i].name;
		size_t fl = strlen(f) + (i ? 2 : 0);
		/* room for this field, then ", ...)" or ")" and the NUL */
		if (used + fl + 7 > cap) {
			snprintf(m + used, cap - used, "%s...)", i ? ", " : "");
			return NONE;
		}
		used += (size_t)snprintf(m + used, cap - used, "%s%s", i ? ", " : "", f);
	}
	snprintf(m + used, cap - used, ")");
	return NONE;
}

static uint32_t field_ref(parser *p, const char *name, size_t n, size_t pos)
{
	const ev_schema *in = p->e->in;
	for (uint32_t i = 0; i < in->n; i++) {
		const char *f = in->fields[i].name;
		if (strlen(f) == n && memcmp(f, name, n) == 0) {
			uint32_t k = new_node(p, OP_FIELD, in->fields[i].type, pos);
			if (k != NONE)
				N(p, k)->u.field = i;
			return k;
		}
	}
	return unknown_field(p, name, n, pos);
}

/* unquote copies the quoted token at text[pos..pos+len) without its quotes, with doubled
 * quotes made single, to dst (len - 2 bytes suffice); returns the length. */
static size_t unquote(const char *s, size_t len, char *dst)
{
	char q = s[0];
	size_t n = 0;
	for (size_t i = 1; i + 1 < len; i++) {
		dst[n++] = s[i];
		if (s[i] == q)
			i++;
	}
	return n;
}

static uint32_t parse_string(parser *p)
{
	const tok t = p->t;
	uint32_t off = 0;
	size_t n = 0;
	if (t.len > 2) {
		if (!pool_add(p, NULL, t.len - 2, &off))
			return NONE;
		n = unquote(p->text + t.pos, t.len, p->e->pool + off);
		p->e->pool_len = off + n;
	}
	uint32_t i = new_const(p, EV_STRING, t.pos);
	if (i == NONE)
		return NONE;
	N(p, i)->u.s.off = off;
	N(p, i)->u.s.len = (uint32_t)n;
	next(p);
	return i;
}

static uint32_t parse_qident(parser *p)
{
	const tok t = p->t;
	char *name = rt_malloc(t.len);
	if (name == NULL)
		return oom(p);
	size_t n = unquote(p->text + t.pos, t.len, name);
	uint32_t i = field_ref(p, name, n, t.pos);
	rt_free(name);
	if (i != NONE)
		next(p);
	return i;
}

enum fn_id { F_ABS, F_LOWER, F_UPPER, F_LENGTH, F_CONCAT, F_SUBSTR, F_COALESCE, F_IF,
	     F_HOUR, F_DAY, F_MONTH, F_YEAR };

#define MANY 0xffffu

static const struct fn_def {
	const char *name;
	unsigned min, max;
} fns[] = {
	[F_ABS] = { "abs", 1, 1 },           [F_LOWER] = { "lower", 1, 1 },
	[F_UPPER] = { "upper", 1, 1 },       [F_LENGTH] = { "length", 1, 1 },
	[F_CONCAT] = { "concat", 1, MANY },  [F_SUBSTR] = { "substr", 2, 3 },
	[F_COALESCE] = { "coalesce", 1, MANY }, [F_IF] = { "if", 3, 3 },
	[F_HOUR] = { "hour", 1, 1 },         [F_DAY] = { "day", 1, 1 },
	[F_MONTH] = { "month", 1, 1 },       [F_YEAR] = { "year", 1, 1 },
};

#define NFNS (sizeof(fns) / sizeof(fns[0]))

/* want checks that argument j (0-based) of fn has type t (or is null). */
static bool want(parser *p, enum fn_id fn, const uint32_t *args, unsigned j, ev_type t)
{
	ev_type u = T(p, args[j]);
	if (u == t || u == EV_NULL)
		return true;
	fail(p, N(p, args[j])->col - 1, "argument %u of %s must be %s, not %s", j + 1,
	     fns[fn].name, a_type(t), a_type(u));
	return false;
}

/* unify gives args[0..n) (numbered from `first` in messages) one type: casts ints to
 * float when they mix with floats. EV_NULL when every one is the null literal. */
static bool unify(parser *p, enum fn_id fn, uint32_t *args, unsigned n, unsigned first,
                  ev_type *out)
{
	ev_type t = EV_NULL;
	for (unsigned j = 0; j < n; j++) {
		ev_type u = T(p, args[j]);
		if (u == EV_NULL || u == t)
			continue;
		if (t == EV_NULL) {
			t = u;
		} else if (numeric(t) && numeric(u)) {
			t = EV_FLOAT;
		} else {
			fail(p, N(p, args[j])->col - 1, "argument %u of %s must be %s, not %s",
			     first + j, fns[fn].name, a_type(t), a_type(u));
			return false;
		}
	}
	if (t == EV_FLOAT)
		for (unsigned j = 0; j < n; j++)
			if (T(p, args[j]) == EV_INT && (args[j] = cast_f(p, args[j])) == NONE)
				return false;
	*out = t;
	return true;
}

static uint32_t build_concat(parser *p, size_t pos, const uint32_t *args, uint32_t n)
{
	if (n <= CONCAT_MAX)
		return finish(p, new_list(p, OP_CONCAT, EV_STRING, pos, args, n));
	uint32_t xs[CONCAT_MAX];
	memcpy(xs, args, (CONCAT_MAX - 1) * sizeof(uint32_t));
	xs[CONCAT_MAX - 1] = build_concat(p, pos, args + CONCAT_MAX - 1, n - (CONCAT_MAX - 1));
	if (xs[CONCAT_MAX - 1] == NONE)
		return NONE;
	return finish(p, new_list(p, OP_CONCAT, EV_STRING, pos, xs, CONCAT_MAX));
}

/* build_call type-checks a call of fn with args[0..n) and makes its node. */
static uint32_t build_call(parser *p, enum fn_id fn, size_t pos, uint32_t *a, uint32_t n)
{
	static const uint8_t time_ops[] = { [F_HOUR] = OP_HOUR, [F_DAY] = OP_DAY,
		                            [F_MONTH] = OP_MONTH, [F_YEAR] = OP_YEAR };
	ev_type t;
	switch (fn) {
	case F_ABS:
		t = T(p, a[0]);
		if (t != EV_INT && t != EV_FLOAT && t != EV_NULL)
			return fail(p, N(p, a[0])->col - 1,
			            "argument 1 of abs must be a number, not %s", a_type(t));
		return finish(p, new_kids(p, t == EV_FLOAT ? OP_ABS_F : OP_ABS_I,
		                          t == EV_FLOAT ? EV_FLOAT : EV_INT, pos, a[0], 0, 0));
	case F_LOWER:
	case F_UPPER:
	case F_LENGTH: {
		uint8_t op = fn == F_LOWER ? OP_LOWER : fn == F_UPPER ? OP_UPPER : OP_LENGTH;
		if (!want(p, fn, a, 0, EV_STRING))
			return NONE;
		return finish(p, new_kids(p, op, fn == F_LENGTH ? EV_INT : EV_STRING, pos, a[0], 0,
		                          0));
	}
	case F_CONCAT:
		for (unsigned j = 0; j < n; j++)
			if (!want(p, fn, a, j, EV_STRING))
				return NONE;
		return build_concat(p, pos, a, n);
	case F_SUBSTR:
		if (!want(p, fn, a, 0, EV_STRING) || !want(p, fn, a, 1, EV_INT) ||
		    (n == 3 && !want(p, fn, a, 2, EV_INT)))
			return NONE;
		return finish(p, new_kids(p, OP_SUBSTR, EV_STRING, pos, a[0], a[1],
		                          n == 3 ? a[2] : NONE));
	case F_COALESCE:
		if (!unify(p, fn, a, n, 1, &t))
			return NONE;
		if (t == EV_NULL)
			return fail(p, pos, "every argument of coalesce is null");
		return finish(p, new_list(p, OP_COALESCE, t, pos, a, n));
	case F_IF:
		if (!want(p, fn, a, 0, EV_BOOL) || !unify(p, fn, a + 1, 2, 2, &t))
			return NONE;
		if (t == EV_NULL)
			return fail(p, pos, "both branches of if are null");
		return finish(p, new_kids(p, OP_IF, t, pos, a[0], a[1], a[2]));
	default:
		if (!want(p, fn, a, 0, EV_TIMESTAMP))
			return NONE;
		return finish(p, new_kids(p, time_ops[fn], EV_INT, pos, a[0], 0, 0));
	}
}

static uint32_t parse_call(parser *p)
{
	const tok name = p->t;
	const char *s = p->text + name.pos;
	int nl = (int)(name.len > 64 ? 64 : name.len);
	unsigned fn = 0;
	while (fn < NFNS && !word_is(s, name.len, fns[fn].name))
		fn++;
	if (fn == NFNS) {
		unsigned best = 3, bi = 0;
		for (unsigned i = 0; i < NFNS; i++) {
			unsigned d = edit_distance(s, name.len, fns[i].name, strlen(fns[i].name));
			if (d < best) {
				best = d;
				bi = i;
			}
		}
		if (best <= 2)
			return fail(p, name.pos, "unknown function '%.*s' (did you mean '%s'?)", nl,
			            s, fns[bi].name);
		return fail(p, name.pos, "unknown function '%.*s'", nl, s);
	}
	next(p); /* the name */
	assert(p->t.kind == T_LP);
	next(p); /* ( */
	idxvec args = { 0 };
	uint32_t r = NONE;
	if (p->t.kind != T_RP) {
		for (;;) {
			uint32_t k = parse_expr(p);
			if (k == NONE || !vec_push(p, &args, k))
				goto out;
			if (p->t.kind != T_COMMA)
				break;
			next(p);
		}
	}
	if (p->t.kind != T_RP) {
		fail(p, p->t.pos, "expected ')' after arguments of %s", fns[fn].name);
		goto out;
	}
	next(p);
	if (args.n < fns[fn].min || args.n > fns[fn].max) {
		const struct fn_def *f = &fns[fn];
		if (f->max == MANY)
			fail(p, name.pos, "%s takes at least %u argument%s, got %u", f->name,
			     f->min, f->min == 1 ? "" : "s", args.n);
		else if (f->min == f->max)
			fail(p, name.pos, "%s takes %u argument%s, got %u", f->name, f->min,
			     f->min == 1 ? "" : "s", args.n);
		else
			fail(p, name.pos, "%s takes %u or %u arguments, got %u", f->name, f->min,
			     f->max, args.n);
		goto out;
	}
	r = build_call(p, (enum fn_id)fn, name.pos, args.v, args.n);
out:
	rt_free(args.v);
	return r;
}

static uint32_t parse_primary(parser *p)
{
	const tok t = p->t;
	uint32_t i;
	switch (t.kind) {
	case T_INT:
		if (t.mag > (uint64_t)INT64_MAX)
			return fail(p, t.pos, "integer literal %.*s is out of range",
			            (int)(t.len > 40 ? 40 : t.len), p->text + t.pos);
		if ((i = new_const(p, EV_INT, t.pos)) != NONE)
			N(p, i)->u.i = (int64_t)t.mag;
		break;
	case T_FLOAT:
		if ((i = new_const(p, EV_FLOAT, t.pos)) != NONE)
			N(p, i)->u.f = t.f;
		break;
	case T_TRUE:
	case T_FALSE:
		if ((i = new_const(p, EV_BOOL, t.pos)) != NONE)
			N(p, i)->u.b = t.kind == T_TRUE;
		break;
	case T_NULL: i = new_null(p, EV_NULL, t.pos); break;
	case T_STRING: return parse_string(p);
	case T_QIDENT: return parse_qident(p);
	case T_IDENT: {
		size_t j = p->pos;
		while (p->text[j] == ' ' || p->text[j] == '\t' || p->text[j] == '\n' ||
		       p->text[j] == '\r')
			j++;
		if (p->text[j] == '(')
			return parse_call(p);
		i = field_ref(p, p->text + t.pos, t.len, t.pos);
		break;
	}
	case T_LP: {
		next(p);
		i = parse_expr(p);
		if (i == NONE)
			return NONE;
		if (p->t.kind != T_RP)
			return fail(p, p->t.pos, "expected ')' to close '(' at column %zu",
			            t.pos + 1);
		break;
	}
	default: return unexpected(p);
	}
	if (i != NONE)
		next(p);
	return i;
}

static uint32_t parse_unary(parser *p)
{
	if (p->t.kind != T_MINUS)
		return parse_primary(p);
	size_t pos = p->t.pos;
	next(p);
	if (p->t.kind == T_INT && p->t.mag <= (uint64_t)INT64_MAX + 1) {
		/* a negative literal, so that -9223372036854775808 is one */
		uint32_t i = new_const(p, EV_INT, pos);
		if (i == NONE)
			return NONE;
		N(p, i)->u.i = p->t.mag > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)p->t.mag;
		next(p);
		return i;
	}
	if (!enter(p, pos))
		return NONE;
	uint32_t k = parse_unary(p);
	p->nest--;
	if (k == NONE)
		return NONE;
	ev_type t = T(p, k);
	if (t != EV_INT && t != EV_FLOAT && t != EV_NULL)
		return fail(p, pos, "operator '-' cannot negate %s", ev_type_name(t));
	return finish(p, new_kids(p, t == EV_FLOAT ? OP_NEG_F : OP_NEG_I,
	                          t == EV_FLOAT ? EV_FLOAT : EV_INT, pos, k, 0, 0));
}

static uint32_t make_arith(parser *p, tk op, const tok *ot, uint32_t l, uint32_t r)
{
	ev_type a = T(p, l), b = T(p, r), res;
	bool ok = true;
	if (a == EV_NULL || b == EV_NULL) {
		ev_type o = a == EV_NULL ? b : a;
		if (o == EV_NULL || o == EV_INT)
			res = EV_INT;
		else if (o == EV_FLOAT)
			res = EV_FLOAT;
		else if (o == EV_TIMESTAMP && (op == T_PLUS || op == T_MINUS))
			res = (op == T_MINUS && a == EV_NULL) ? EV_INT : EV_TIMESTAMP;
		else
			ok = false;
	} else if (numeric(a) && numeric(b)) {
		res = (a == EV_FLOAT || b == EV_FLOAT) ? EV_FLOAT : EV_INT;
	} else if (op == T_PLUS && ((a == EV_TIMESTAMP && b == EV_INT) ||
	                            (a == EV_INT && b == EV_TIMESTAMP))) {
		res = EV_TIMESTAMP;
	} else if (op == T_MINUS && a == EV_TIMESTAMP && (b == EV_INT || b == EV_TIMESTAMP)) {
		res = b == EV_INT ? EV_TIMESTAMP : EV_INT;
	} else {
		ok = false;
	}
	if (!ok) {
		const char *verb = op == T_PLUS    ? "add"
		                   : op == T_MINUS ? "subtract"
		                   : op == T_STAR  ? "multiply"
		                   : op == T_SLASH ? "divide"
		                                   : "take the remainder of";
		return fail(p, ot->pos, "operator '%.*s' cannot %s %s and %s", (int)ot->len,
		            p->text + ot->pos, verb, ev_type_name(a), ev_type_name(b));
	}
	uint8_t base = op == T_PLUS    ? 0
	               : op == T_MINUS ? 1
	               : op == T_STAR  ? 2
	               : op == T_SLASH ? 3
	                               : 4;
	if (res == EV_FLOAT) {
		if ((l = cast_f(p, l)) == NONE || (r = cast_f(p, r)) == NONE)
			return NONE;
		return finish(p, new_kids(p, (uint8_t)(OP_ADD_F + base), res, ot->pos, l, r, 0));
	}
	return finish(p, new_kids(p, (uint8_t)(OP_ADD_I + base), res, ot->pos, l, r, 0));
}

/* fc_node makes the one-node form of `field <mask> constant`, or returns NONE (without
 * an error) when the pair has none. */
static uint32_t fc_node(parser *p, uint32_t f, uint32_t c, unsigned mask, size_t pos)
{
	const node *fn = N(p, f), *cn = N(p, c);
	if (fn->op != OP_FIELD || cn->op != OP_CONST || cn->aux)
		return NONE;
	uint8_t op;
	ev_type ft = fn->type, ct = cn->type;
	if ((ft == EV_INT || ft == EV_TIMESTAMP) && ct == ft)
		op = OP_FC_I;
	else if (ft == EV_INT && ct == EV_FLOAT)
		op = OP_FC_IF;
	else if (ft == EV_FLOAT && numeric(ct))
		op = OP_FC_F;
	else if (ft == EV_STRING && ct == EV_STRING)
		op = OP_FC_S;
	else
		return NONE;
	node x = { .op = op, .type = EV_BOOL, .aux = (uint8_t)mask, .col = (uint32_t)pos + 1 };
	x.u.fc.field = fn->u.field;
	if (op == OP_FC_I)
		x.u.fc.c.i = cn->u.i;
	else if (op == OP_FC_S) {
		x.u.fc.c.soff = cn->u.s.off;
		x.u.fc.slen = cn->u.s.len;
	} else
		x.u.fc.c.f = ct == EV_INT ? (double)cn->u.i : cn->u.f;
	uint32_t i = new_node(p, op, EV_BOOL, pos);
	if (i != NONE)
		*N(p, i) = x;
	return i;
}

/* ts_literal converts string constant i, compared with a timestamp, to a timestamp. */
static bool ts_literal(parser *p, uint32_t i, const tok *ot)
{
	node *n = N(p, i);
	const char *s = n->u.s.len ? p->e->pool + n->u.s.off : "";
	int64_t ms;
	if (!ev_ts_parse(s, n->u.s.len, &ms)) {
		fail(p, n->col - 1,
		     "operator '%.*s' cannot compare timestamp and '%.*s' (not a timestamp)",
		     (int)ot->len, p->text + ot->pos, (int)(n->u.s.len > 40 ? 40 : n->u.s.len), s);
		return false;
	}
	n->type = EV_TIMESTAMP;
	n->u.i = ms;
	return true;
}

static uint32_t make_cmp(parser *p, tk op, const tok *ot, uint32_t l, uint32_t r)
{
	static const uint8_t masks[] = { [T_EQ] = CMP_EQ, [T_NE] = CMP_NE, [T_LT] = CMP_LT,
		                         [T_LE] = CMP_LE, [T_GT] = CMP_GT, [T_GE] = CMP_GE };
	unsigned mask = masks[op];
	ev_type a = T(p, l), b = T(p, r);
	uint8_t cop;
	if (a == EV_NULL || b == EV_NULL) {
		cop = OP_CMP_I; /* folds to null */
	} else if (numeric(a) && numeric(b)) {
		cop = a == EV_INT && b == EV_INT ? OP_CMP_I : OP_CMP_F;
	} else if (a == EV_STRING && b == EV_STRING) {
		cop = OP_CMP_S;
	} else if (a == EV_BOOL && b == EV_BOOL) {
		if (mask != CMP_EQ && mask != CMP_NE)
			return fail(p, ot->pos,
			            "operator '%.*s' cannot order bools (only = and != apply)",
			            (int)ot->len, p->text + ot->pos);
		cop = OP_CMP_B;
	} else if (a == EV_TIMESTAMP && b == EV_TIMESTAMP) {
		cop = OP_CMP_I;
	} else if (a == EV_TIMESTAMP && b == EV_STRING && N(p, r)->op == OP_CONST) {
		if (!N(p, r)->aux && !ts_literal(p, r, ot))
			return NONE;
		cop = OP_CMP_I; /* a null string constant folds the comparison to null */
	} else if (a == EV_STRING && b == EV_TIMESTAMP && N(p, l)->op == OP_CONST) {
		if (!N(p, l)->aux && !ts_literal(p, l, ot))
			return NONE;
		cop = OP_CMP_I;
	} else {
		return fail(p, ot->pos, "operator '%.*s' cannot compare %s and %s", (int)ot->len,
		            p->text + ot->pos, ev_type_name(a), ev_type_name(b));
	}
	if (a != EV_NULL && b != EV_NULL) {
		/* mirrored when the constant is on the left: swap the less and greater bits */
		unsigned flip = (mask & CMP_EQ) | ((mask & CMP_LT) << 2) | ((mask & CMP_GT) >> 2);
		uint32_t i = fc_node(p, l, r, mask, ot->pos);
		if (i == NONE && p->rc == EDDY_OK)
			i = fc_node(p, r, l, flip, ot->pos);
		if (i != NONE || p->rc != EDDY_OK)
			return i;
	}
	if (cop == OP_CMP_F && ((l = cast_f(p, l)) == NONE || (r = cast_f(p, r)) == NONE))
		return NONE;
	uint32_t i = new_kids(p, cop, EV_BOOL, ot->pos, l, r, 0);
	if (i != NONE)
		N(p, i)->aux = (uint8_t)mask;
	return finish(p, i);
}

static uint32_t parse_binary(parser *p, int level)
{
	/* level 0: comparisons, 1: + -, 2: * / % */
	uint32_t l = level == 2 ? parse_unary(p) : parse_binary(p, level + 1);
	for (;;) {
		tk k = p->t.kind;
		bool match = level == 0   ? (k >= T_EQ && k <= T_GE)
		             : level == 1 ? (k == T_PLUS || k == T_MINUS)
		                          : (k == T_STAR || k == T_SLASH || k == T_PCT);
		if (l == NONE || !match)
			return l;
		const tok ot = p->t;
		next(p);
		uint32_t r = level == 2 ? parse_unary(p) : parse_binary(p, level + 1);
		if (r == NONE)
			return NONE;
		l = level == 0 ? make_cmp(p, k, &ot, l, r) : make_arith(p, k, &ot, l, r);
	}
}

static bool want_bool(parser *p, uint32_t i, const tok *ot)
{
	ev_type t = T(p, i);
	if (t == EV_BOOL || t == EV_NULL)
		return true;
	if (ot->kind == T_NOT)
		fail(p, ot->pos, "operator 'not' needs a bool operand, not %s", ev_type_name(t));
	else
		fail(p, ot->pos, "operator '%s' needs bool operands, not %s",
		     ot->kind == T_AND ? "and" : "or", ev_type_name(t));
	return false;
}

static uint32_t parse_not(parser *p)
{
	if (p->t.kind != T_NOT)
		return parse_binary(p, 0);
	const tok ot = p->t;
	next(p);
	if (!enter(p, ot.pos))
		return NONE;
	uint32_t k = parse_not(p);
	p->nest--;
	if (k == NONE || !want_bool(p, k, &ot))
		return NONE;
	/* a constant comparison inverts without a node */
	node *n = N(p, k);
	if (n->op >= OP_CMP_I && n->op <= OP_FC_S && n->op != OP_CMP_F && n->op != OP_FC_IF &&
	    n->op != OP_FC_F) {
		n->aux = (uint8_t)(~n->aux & 7u);
		return k;
	}
	return finish(p, new_kids(p, OP_NOT, EV_BOOL, ot.pos, k, 0, 0));
}

/* parse_logic parses a chain of `and`s (is_or false) or `or`s into one node. */
static uint32_t parse_logic(parser *p, bool is_or)
{
	tk kind = is_or ? T_OR : T_AND;
	uint32_t first = is_or ? parse_logic(p, false) : parse_not(p);
	if (first == NONE || p->t.kind != kind)
		return first;
	const tok op0 = p->t;
	idxvec v = { 0 };
	uint32_t r = NONE;
	if (!want_bool(p, first, &op0) || !vec_push(p, &v, first))
		goto out;
	while (p->t.kind == kind) {
		const tok ot = p->t;
		next(p);
		uint32_t k = is_or ? parse_logic(p, false) : parse_not(p);
		if (k == NONE || !want_bool(p, k, &ot) || !vec_push(p, &v, k))
			goto out;
	}
	r = finish(p, new_list(p, is_or ? OP_OR : OP_AND, EV_BOOL, op0.pos, v.v, v.n));
out:
	rt_free(v.v);
	return r;
}

static uint32_t parse_expr(parser *p)
{
	if (!enter(p, p->t.pos))
		return NONE;
	uint32_t i = parse_logic(p, true);
	p->nest--;
	return i;
}

eddy_err expr_compile(const char *text, const ev_schema *in, expr **out, expr_error *err)
{
	expr_error spare;
	if (err == NULL)
		err = &spare;
	err->col = 0;
	err->msg[0] = '\0';
	*out = NULL;
	parser p = { .text = text, .err = err };
	if (text == NULL || in == NULL) {
		snprintf(err->msg, sizeof(err->msg), "no expression or no schema");
		return EDDY_EINVAL;
	}
	p.len = strlen(text);
	if (p.len > EXPR_MAX_TEXT) {
		fail(&p, 0, "expression is longer than %u bytes", EXPR_MAX_TEXT);
		return p.rc;
	}
	p.e = rt_calloc(1, sizeof(expr));
	if (p.e == NULL) {
		oom(&p);
		return p.rc;
	}
	p.e->in = in;
	next(&p);
	uint32_t root;
	if (p.t.kind == T_EOF)
		root = fail(&p, p.t.pos, "empty expression");
	else
		root = parse_expr(&p);
	if (root != NONE && p.t.kind != T_EOF)
		root = unexpected(&p);
	expr_scratch_free(&p.fold);
	rt_free(p.depth);
	if (root == NONE) {
		assert(p.rc != EDDY_OK);
		expr_free(p.e);
		return p.rc;
	}
	expr *e = p.e;
	e->root = root;
	e->type = (ev_type)e->nodes[root].type;
	e->field = e->nodes[root].op == OP_FIELD ? (int)e->nodes[root].u.field : -1;
	*out = e;
	return EDDY_OK;
}
