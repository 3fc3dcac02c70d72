/*
 * Values, schemas and record batches: eddy's data model (see docs/ARCHITECTURE.md).
 *
 * A schema is a list of typed fields: int (int64), float (double), bool, string and
 * timestamp (int64 ms since the Unix epoch, UTC). Every stream has one schema, fixed when
 * the plan is built, so operators address fields by index.
 *
 * A batch holds up to `cap` records of one schema, row-major: record r's field c is the
 * 8-byte slot cols[r * ncols + c] (int64, double bits, bool as 0/1, or a string as
 * offset << 32 | length into the batch's string arena), with a null bit per field
 * (nulls[r], so at most 64 fields) and the record's event timestamp ts[r] (ms). A batch
 * owns its memory; it moves between actors by pointer and is freed by whoever holds it
 * last. Nothing here allocates per record: slots are preallocated for cap records and the
 * arena grows geometrically.
 *
 * Thread rules: a batch belongs to one thread at a time; a schema is immutable once built
 * and may be shared by any number of threads.
 */
#ifndef EDDY_VALUE_H
#define EDDY_VALUE_H

#include <eddy/err.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ev_type {
	EV_NULL = 0, /* the type of the null literal only; no field has it */
	EV_INT,
	EV_FLOAT,
	EV_BOOL,
	EV_STRING,
	EV_TIMESTAMP
} ev_type;

/* ev_type_name: "null", "int", "float", "bool", "string", "timestamp". */
const char *ev_type_name(ev_type t);
/* ev_type_parse: the inverse; returns false for an unknown name. */
bool ev_type_parse(const char *name, ev_type *out);

#define EV_MAX_FIELDS 64

/* A value as expressions see it. A string points into a batch arena or a scratch buffer
 * and is valid while that lives (it is not NUL-terminated). */
typedef struct ev_val {
	ev_type type; /* EV_NULL for null, whatever the static type */
	union {
		int64_t i; /* EV_INT, EV_TIMESTAMP (ms) */
		double f;
		bool b;
		struct {
			const char *p;
			uint32_t len;
		} s;
	};
} ev_val;

typedef struct ev_field {
	char *name; /* owned */
	ev_type type;
} ev_field;

typedef struct ev_schema {
	uint32_t n;
	ev_field fields[EV_MAX_FIELDS];
} ev_schema;

/* schema_add appends a field (name copied). Errors: EDDY_EFULL (64 fields), EDDY_EEXIST
 * (name taken), EDDY_ENOMEM. */
eddy_err schema_add(ev_schema *s, const char *name, ev_type type);
/* schema_find returns the index of the field called name, or -1. */
int schema_find(const ev_schema *s, const char *name);
/* schema_copy makes dst a deep copy of src. Errors: EDDY_ENOMEM. */
eddy_err schema_copy(ev_schema *dst, const ev_schema *src);
/* schema_clear frees the names and empties s. */
void schema_clear(ev_schema *s);

typedef struct ev_batch {
	const ev_schema *schema; /* borrowed: the plan owns schemas */
	uint32_t n;              /* records */
	uint32_t cap;            /* capacity, records */
	uint32_t ncols;          /* schema->n */
	uint32_t tag;            /* free for the producer (e.g. the source split) */
	int64_t *ts;             /* [cap] event time, ms */
	uint64_t *nulls;         /* [cap] bit c set: field c is null */
	uint64_t *cols;          /* [cap * ncols] slots */
	char *arena;             /* string bytes */
	size_t arena_len, arena_cap;
} ev_batch;

/* batch_new allocates an empty batch for cap records of schema (borrowed). NULL on
 * allocation failure. */
ev_batch *batch_new(const ev_schema *schema, uint32_t cap);
/* batch_free frees b. Safe on NULL. */
void batch_free(ev_batch *b);
/* batch_clear empties b (n = 0, arena emptied), keeping its memory. */
void batch_clear(ev_batch *b);
/* batch_full tells whether b has no room for another record. */
static inline bool batch_full(const ev_batch *b)
{
	return b->n == b->cap;
}

/* batch_append_row adds a record with every field null and ts 0 and returns its index.
 * The caller checks batch_full first. */
static inline uint32_t batch_append_row(ev_batch *b)
{
	uint32_t r = b->n++;
	b->nulls[r] = ~(uint64_t)0;
	b->ts[r] = 0;
	return r;
}

static inline uint64_t *batch_slot(ev_batch *b, uint32_t r, uint32_t c)
{
	return &b->cols[(size_t)r * b->ncols + c];
}
static inline uint64_t batch_slot_get(const ev_batch *b, uint32_t r, uint32_t c)
{
	return b->cols[(size_t)r * b->ncols + c];
}
static inline bool batch_is_null(const ev_batch *b, uint32_t r, uint32_t c)
{
	return (b->nulls[r] >> c) & 1u;
}
static inline void batch_set_null(ev_batch *b, uint32_t r, uint32_t c)
{
	b->nulls[r] |= (uint64_t)1 << c;
}
static inline void batch_set_int(ev_batch *b, uint32_t r, uint32_t c, int64_t v)
{
	*batch_slot(b, r, c) = (uint64_t)v;
	b->nulls[r] &= ~((uint64_t)1 << c);
}
static inline void batch_set_float(ev_batch *b, uint32_t r, uint32_t c, double v)
{
	union {
		double d;
		uint64_t u;
	} x = { .d = v };
	*batch_slot(b, r, c) = x.u;
	b->nulls[r] &= ~((uint64_t)1 << c);
}
static inline void batch_set_bool(ev_batch *b, uint32_t r, uint32_t c, bool v)
{
	*batch_slot(b, r, c) = v ? 1u : 0u;
	b->nulls[r] &= ~((uint64_t)1 << c);
}
static inline int64_t batch_get_int(const ev_batch *b, uint32_t r, uint32_t c)
{
	return (int64_t)batch_slot_get(b, r, c);
}
static inline double batch_get_float(const ev_batch *b, uint32_t r, uint32_t c)
{
	union {
		double d;
		uint64_t u;
	} x = { .u = batch_slot_get(b, r, c) };
	return x.d;
}
static inline bool batch_get_bool(const ev_batch *b, uint32_t r, uint32_t c)
{
	return batch_slot_get(b, r, c) != 0;
}
/* batch_get_str returns a pointer to the bytes of a string field (not NUL-terminated)
 * and its length in *len; valid until the arena grows or the batch is freed. */
static inline const char *batch_get_str(const ev_batch *b, uint32_t r, uint32_t c,
                                        uint32_t *len)
{
	uint64_t s = batch_slot_get(b, r, c);
	*len = (uint32_t)s;
	return b->arena + (s >> 32);
}
/* batch_set_str copies len bytes into b's arena and points field c of record r at them.
 * Errors: EDDY_ENOMEM (the arena could not grow), EDDY_EINVAL (arena over 4 GiB). */
eddy_err batch_set_str(ev_batch *b, uint32_t r, uint32_t c, const char *p, size_t len);

/* batch_get_val reads field c of record r as an ev_val (EV_NULL when null). */
static inline ev_val batch_get_val(const ev_batch *b, uint32_t r, uint32_t c)
{
	ev_val v = { .type = EV_NULL };
	if (batch_is_null(b, r, c))
		return v;
	v.type = b->schema->fields[c].type;
	switch (v.type) {
	case EV_INT:
	case EV_TIMESTAMP:
		v.i = batch_get_int(b, r, c);
		break;
	case EV_FLOAT:
		v.f = batch_get_float(b, r, c);
		break;
	case EV_BOOL:
		v.b = batch_get_bool(b, r, c);
		break;
	case EV_STRING:
		v.s.p = batch_get_str(b, r, c, &v.s.len);
		break;
	default:
		v.type = EV_NULL;
	}
	return v;
}
/* batch_set_val writes v (of the field's type, or EV_NULL) into field c of record r;
 * an int is converted when the field is float. Errors: as batch_set_str, EDDY_EINVAL on
 * a type the field cannot hold. */
eddy_err batch_set_val(ev_batch *b, uint32_t r, uint32_t c, ev_val v);
/* batch_copy_row appends record r of src (same schema layout) to dst, strings copied.
 * Errors: EDDY_EFULL (dst full), EDDY_ENOMEM. */
eddy_err batch_copy_row(ev_batch *dst, const ev_batch *src, uint32_t r);

/* Timestamps. ev_ts_format writes ms as "YYYY-MM-DD HH:MM:SS" (UTC), with ".mmm" added
 * when ms % 1000 != 0, into buf (>= 32 bytes); returns the length. ev_ts_parse accepts
 * "YYYY-MM-DD HH:MM:SS[.fff]", ISO 8601 "YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM|-HH:MM]",
 * "YYYY-MM-DD", or an integer of epoch ms; false if s[0..len) is none of these. */
size_t ev_ts_format(int64_t ms, char *buf);
bool ev_ts_parse(const char *s, size_t len, int64_t *ms);

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; as Howard Hinnant's
 * days_from_civil) and back. */
int64_t ev_days_from_civil(int64_t y, unsigned m, unsigned d);
void ev_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
