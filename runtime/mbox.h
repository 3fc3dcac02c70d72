/*
 * Mailboxes: a bounded multi-producer single-consumer queue of messages (the data lane)
 * plus an unbounded control lane that the consumer always reads first, so control
 * messages (stop, restart, timers, snapshot requests) overtake queued data.
 *
 * The data lane is a ring of slots with a sequence number each (D. Vyukov's bounded
 * queue): a push is one CAS, a pop none; neither locks. Its capacity is a power of two
 * and is never exceeded: a push to a full lane fails with EDDY_EFULL and takes nothing.
 * The control lane is a mutex-guarded list; it is off the hot path (a consumer reads one
 * atomic counter per message to see whether it holds anything).
 *
 * Producers that found the data lane full may register as waiters; the consumer wakes
 * them (mbox_wake_waiters) once it has made room. The actor layer uses this to park a
 * sending actor without blocking any thread.
 *
 * Thread rules: push, push_ctl, len and the waiter calls from any thread; pop and
 * discard only from the one consumer.
 */
#ifndef EDDY_RUNTIME_MBOX_H
#define EDDY_RUNTIME_MBOX_H

#include "msg.h"

#include <eddy/err.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mbox_cell mbox_cell;
typedef struct mbox_ctl_node mbox_ctl_node;

typedef struct mbox {
	alignas(64) _Atomic uint64_t head; /* next position producers claim */
	alignas(64) _Atomic uint64_t tail; /* next position the consumer reads */
	alignas(64) mbox_cell *cells;
	uint64_t mask;                     /* capacity - 1 */
	_Atomic uint32_t nctl;             /* messages in the control lane */
	_Atomic uint32_t nwaiters;         /* registered waiters */
	pthread_mutex_t mu;                /* guards the control lane and the waiters */
	mbox_ctl_node *ctl_first, *ctl_last;
	void **waiters;
	uint32_t waiters_cap;
	bool inited;
} mbox;

/* mbox_init prepares mb in place with a data lane of at least capacity slots (rounded
 * up to a power of two, minimum 2, maximum 2^24). Errors: EDDY_EINVAL, EDDY_ENOMEM
 * (then mb is left safe to fini). */
eddy_err mbox_init(mbox *mb, uint32_t capacity);

/* mbox_fini discards every queued message (calling its drop) and frees the lanes.
 * Safe on a zeroed or half-initialised mailbox. No other thread may use mb. */
void mbox_fini(mbox *mb);

/* mbox_push copies *m into the data lane. On EDDY_OK the mailbox owns the payload; on
 * EDDY_EFULL nothing was taken and the caller still owns it. Any thread. */
eddy_err mbox_push(mbox *mb, const rt_msg *m);

/* mbox_push_ctl appends *m to the control lane (unbounded). On EDDY_OK the mailbox owns
 * the payload; on EDDY_ENOMEM the caller keeps it. Any thread. */
eddy_err mbox_push_ctl(mbox *mb, const rt_msg *m);

/* mbox_pop_ctl / mbox_pop_data take the oldest message of one lane into *out and
 * return true, or return false if that lane is empty. The payload now belongs to the
 * caller. Consumer only. */
bool mbox_pop_ctl(mbox *mb, rt_msg *out);
bool mbox_pop_data(mbox *mb, rt_msg *out);

/* mbox_pop takes a control message if there is one, else a data message. Consumer only. */
bool mbox_pop(mbox *mb, rt_msg *out);

/* mbox_discard_data drops (via drop) every data message queued now; returns how many.
 * Consumer only. */
uint64_t mbox_discard_data(mbox *mb);

/* mbox_len is the number of data messages queued (a snapshot; exact when quiet).
 * mbox_ctl_len likewise for the control lane. mbox_capacity is the data lane's size.
 * Any thread. */
uint32_t mbox_len(const mbox *mb);
uint32_t mbox_ctl_len(const mbox *mb);
uint32_t mbox_capacity(const mbox *mb);

/* mbox_has_data / mbox_has_ctl: whether a pop of that lane would find something now. */
bool mbox_has_data(const mbox *mb);
bool mbox_has_ctl(const mbox *mb);

/* mbox_add_waiter registers w (an opaque pointer, e.g. a parked actor) to be woken when
 * room is made; a w already registered is not added twice. Any thread. Errors:
 * EDDY_ENOMEM. After registering, a producer must try its push once more: room may have
 * been made in between (no wake-up is lost that way). */
eddy_err mbox_add_waiter(mbox *mb, void *w);

/* mbox_is_waiter tells whether w is registered now (a wake-up since has removed it).
 * Any thread. */
bool mbox_is_waiter(mbox *mb, void *w);

/* mbox_remove_waiter unregisters w if present. Any thread. */
void mbox_remove_waiter(mbox *mb, void *w);

/* mbox_wake_waiters unregisters every waiter and calls wake(w, arg) for each (under the
 * mailbox's lock: wake must not touch this mailbox). Cheap when there are none.
 * Returns the number woken. Any thread; the consumer calls it after making room. */
uint32_t mbox_wake_waiters(mbox *mb, void (*wake)(void *w, void *arg), void *arg);

#endif
