/*
 * The one allocator entry point of eddy. Everything allocates through rt_malloc and
 * friends so that tests can make the n-th allocation fail and count live blocks.
 */
#ifndef EDDY_RUNTIME_ALLOC_H
#define EDDY_RUNTIME_ALLOC_H

#include <eddy/err.h>
#include <stddef.h>
#include <stdint.h>

/* rt_malloc, rt_calloc, rt_realloc and rt_free behave as their libc namesakes and
 * return NULL on failure (or on an injected failure). Any thread. */
void *rt_malloc(size_t size);
void *rt_calloc(size_t n, size_t size);
void *rt_realloc(void *p, size_t size);
void rt_free(void *p);

/* rt_grow makes the array *p (*cap elements of elem bytes) hold at least need elements:
 * unchanged if it does, else reallocated to the old capacity (min_cap if it was 0)
 * doubled until it does, so appends cost amortized O(1). EDDY_ENOMEM leaves *p and *cap
 * as they were. The caller's thread. */
eddy_err rt_grow(void **p, size_t *cap, size_t need, size_t elem, size_t min_cap);

/* rt_strdup copies s with rt_malloc; NULL on failure. */
char *rt_strdup(const char *s);

/* rt_alloc_fail_after makes the allocation after the next n succeed-able ones fail
 * (n = 0: the very next one fails); n < 0 turns injection off. For tests; any thread. */
void rt_alloc_fail_after(int64_t n);

/* rt_alloc_live returns the number of blocks allocated and not yet freed through
 * this module (a leak check for tests). */
int64_t rt_alloc_live(void);

#endif
