/* The allocator entry point: libc underneath, with failure injection and a live count. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int64_t fail_countdown = -1;
static _Atomic int64_t live_blocks;

static int inject_failure(void)
{
	int64_t n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
	if (n < 0)
		return 0;
	n = atomic_fetch_sub(&fail_countdown, 1);
	if (n == 0) {
		atomic_store(&fail_countdown, -1);
		return 1;
	}
	return 0;
}

void *rt_malloc(size_t size)
{
	if (inject_failure())
		return NULL;
	void *p = malloc(size ? size : 1);
	if (p)
		atomic_fetch_add_explicit(&live_blocks, 1, memory_order_relaxed);
	return p;
}

void *rt_calloc(size_t n, size_t size)
{
	if (inject_failure())
		return NULL;
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p)
		atomic_fetch_add_explicit(&live_blocks, 1, memory_order_relaxed);
	return p;
}

void *rt_realloc(void *p, size_t size)
{
	if (p == NULL)
		return rt_malloc(size);
	if (inject_failure())
		return NULL;
	return realloc(p, size ? size : 1);
}

void rt_free(void *p)
{
	if (p == NULL)
		return;
	atomic_fetch_sub_explicit(&live_blocks, 1, memory_order_relaxed);
	free(p);
}

char *rt_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = rt_malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

void rt_alloc_fail_after(int64_t n)
{
	atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

int64_t rt_alloc_live(void)
{
	return atomic_load(&live_blocks);
}

eddy_err rt_grow(void **p, size_t *cap, size_t need, size_t elem, size_t min_cap)
{
	if (need <= *cap)
		return EDDY_OK;
	size_t n = *cap ? *cap : (min_cap ? min_cap : 1);
	while (n < need) {
		if (n > SIZE_MAX / 2 / elem)
			return EDDY_ENOMEM;
		n *= 2;
	}
	void *q = rt_realloc(*p, n * elem);
	if (q == NULL)
		return EDDY_ENOMEM;
	*p = q;
	*cap = n;
	return EDDY_OK;
}
