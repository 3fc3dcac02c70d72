/* Mailboxes: Vyukov's bounded ring for data, a locked list for control, a waiter set. */
#include "mbox.h"

#include "alloc.h"

#include <string.h>

struct mbox_cell {
	_Atomic uint64_t seq; /* pos: free for the producer of pos; pos+1: holds pos's message */
	rt_msg msg;
};

struct mbox_ctl_node {
	mbox_ctl_node *next;
	rt_msg msg;
};

#define MBOX_MAX_CAPACITY (1u << 24)

eddy_err mbox_init(mbox *mb, uint32_t capacity)
{
	memset(mb, 0, sizeof(*mb));
	if (capacity == 0 || capacity > MBOX_MAX_CAPACITY)
		return EDDY_EINVAL;
	uint64_t cap = 2;
	while (cap < capacity)
		cap <<= 1;
	mb->cells = rt_malloc(cap * sizeof(mbox_cell));
	if (mb->cells == NULL)
		return EDDY_ENOMEM;
	for (uint64_t i = 0; i < cap; i++)
		atomic_init(&mb->cells[i].seq, i);
	mb->mask = cap - 1;
	pthread_mutex_init(&mb->mu, NULL);
	mb->inited = true;
	return EDDY_OK;
}

void mbox_fini(mbox *mb)
{
	if (!mb->inited) {
		rt_free(mb->cells);
		mb->cells = NULL;
		return;
	}
	rt_msg m;
	while (mbox_pop(mb, &m))
		msg_discard(&m);
	rt_free(mb->cells);
	rt_free(mb->waiters);
	pthread_mutex_destroy(&mb->mu);
	memset(mb, 0, sizeof(*mb));
}

eddy_err mbox_push(mbox *mb, const rt_msg *m)
{
	uint64_t pos = atomic_load_explicit(&mb->head, memory_order_relaxed);
	mbox_cell *cell;
	for (;;) {
		cell = &mb->cells[pos & mb->mask];
		uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&mb->head, &pos, pos + 1,
			                                          memory_order_relaxed,
			                                          memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return EDDY_EFULL;
		} else {
			pos = atomic_load_explicit(&mb->head, memory_order_relaxed);
		}
	}
	cell->msg = *m;
	atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
	return EDDY_OK;
}

bool mbox_pop_data(mbox *mb, rt_msg *out)
{
	uint64_t pos = atomic_load_explicit(&mb->tail, memory_order_relaxed);
	mbox_cell *cell = &mb->cells[pos & mb->mask];
	uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
	if (seq != pos + 1)
		return false;
	*out = cell->msg;
	/* tail first, then free the slot: head - tail never exceeds the capacity, even for
	 * an instant (a producer can reuse the slot only after its seq is released) */
	atomic_store_explicit(&mb->tail, pos + 1, memory_order_release);
	atomic_store_explicit(&cell->seq, pos + mb->mask + 1, memory_order_release);
	return true;
}

eddy_err mbox_push_ctl(mbox *mb, const rt_msg *m)
{
	mbox_ctl_node *n = rt_malloc(sizeof(*n));
	if (n == NULL)
		return EDDY_ENOMEM;
	n->next = NULL;
	n->msg = *m;
	pthread_mutex_lock(&mb->mu);
	if (mb->ctl_last)
		mb->ctl_last->next = n;
	else
		mb->ctl_first = n;
	mb->ctl_last = n;
	atomic_fetch_add_explicit(&mb->nctl, 1, memory_order_release);
	pthread_mutex_unlock(&mb->mu);
	return EDDY_OK;
}

bool mbox_pop_ctl(mbox *mb, rt_msg *out)
{
	if (atomic_load_explicit(&mb->nctl, memory_order_acquire) == 0)
		return false;
	pthread_mutex_lock(&mb->mu);
	mbox_ctl_node *n = mb->ctl_first;
	if (n) {
		mb->ctl_first = n->next;
		if (mb->ctl_first == NULL)
			mb->ctl_last = NULL;
		atomic_fetch_sub_explicit(&mb->nctl, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&mb->mu);
	if (n == NULL)
		return false;
	*out = n->msg;
	rt_free(n);
	return true;
}

bool mbox_pop(mbox *mb, rt_msg *out)
{
	return mbox_pop_ctl(mb, out) || mbox_pop_data(mb, out);
}

uint64_t mbox_discard_data(mbox *mb)
{
	uint64_t n = 0;
	rt_msg m;
	while (mbox_pop_data(mb, &m)) {
		msg_discard(&m);
		n++;
	}
	return n;
}

uint32_t mbox_len(const mbox *mb)
{
	/* head (pushes) before tail (pops): what happens between the two reads can only make
	 * the result smaller, never larger than the length at some moment (<= capacity).
	 * Read the other way round, a pop and a push in between gave capacity + 1. */
	uint64_t h = atomic_load_explicit(&((mbox *)mb)->head, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&((mbox *)mb)->tail, memory_order_acquire);
	return h > t ? (uint32_t)(h - t) : 0;
}

uint32_t mbox_ctl_len(const mbox *mb)
{
	return atomic_load_explicit(&((mbox *)mb)->nctl, memory_order_acquire);
}

uint32_t mbox_capacity(const mbox *mb)
{
	return (uint32_t)(mb->mask + 1);
}

bool mbox_has_data(const mbox *mb)
{
	uint64_t pos = atomic_load_explicit(&((mbox *)mb)->tail, memory_order_relaxed);
	mbox_cell *cell = &mb->cells[pos & mb->mask];
	return atomic_load_explicit(&cell->seq, memory_order_acquire) == pos + 1;
}

bool mbox_has_ctl(const mbox *mb)
{
	return mbox_ctl_len(mb) > 0;
}

eddy_err mbox_add_waiter(mbox *mb, void *w)
{
	eddy_err err = EDDY_OK;
	pthread_mutex_lock(&mb->mu);
	uint32_t n = atomic_load_explicit(&mb->nwaiters, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++)
		if (mb->waiters[i] == w)
			goto out;
	if (n == mb->waiters_cap) {
		uint32_t cap = mb->waiters_cap ? mb->waiters_cap * 2 : 8;
		void **nw = rt_realloc(mb->waiters, cap * sizeof(void *));
		if (nw == NULL) {
			err = EDDY_ENOMEM;
			goto out;
		}
		mb->waiters = nw;
		mb->waiters_cap = cap;
	}
	mb->waiters[n] = w;
	atomic_store_explicit(&mb->nwaiters, n + 1, memory_order_seq_cst);
out:
	pthread_mutex_unlock(&mb->mu);
	return err;
}

bool mbox_is_waiter(mbox *mb, void *w)
{
	bool found = false;
	pthread_mutex_lock(&mb->mu);
	uint32_t n = atomic_load_explicit(&mb->nwaiters, memory_order_relaxed);
	for (uint32_t i = 0; i < n && !found; i++)
		found = mb->waiters[i] == w;
	pthread_mutex_unlock(&mb->mu);
	return found;
}

void mbox_remove_waiter(mbox *mb, void *w)
{
	pthread_mutex_lock(&mb->mu);
	uint32_t n = atomic_load_explicit(&mb->nwaiters, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++)
		if (mb->waiters[i] == w) {
			mb->waiters[i] = mb->waiters[n - 1];
			atomic_store_explicit(&mb->nwaiters, n - 1, memory_order_seq_cst);
			break;
		}
	pthread_mutex_unlock(&mb->mu);
}

uint32_t mbox_wake_waiters(mbox *mb, void (*wake)(void *w, void *arg), void *arg)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&mb->nwaiters, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&mb->mu);
	uint32_t n = atomic_load_explicit(&mb->nwaiters, memory_order_relaxed);
	atomic_store_explicit(&mb->nwaiters, 0, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++)
		wake(mb->waiters[i], arg);
	pthread_mutex_unlock(&mb->mu);
	return n;
}
