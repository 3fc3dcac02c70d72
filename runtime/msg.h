/*
 * Messages: the fixed-size unit every mailbox carries. A message is copied by value
 * into the mailbox (no allocation per message); a large payload travels by pointer.
 *
 * Ownership of the payload (ptr) at each hand-off:
 *  - a send that succeeds moves it to the mailbox; a send that fails leaves it with the
 *    caller (actor_send never fails for actors: a blocked send moves it to the sender's
 *    outbox, see actors/actor.h);
 *  - delivery to an actor's receive callback moves it to the receiver, which must free
 *    it or pass it on (the runtime does not touch it after receive returns);
 *  - a message the runtime discards undelivered (its target stopped for good, or the
 *    system shut down) is released by calling drop(msg) when drop is not NULL.
 */
#ifndef EDDY_RUNTIME_MSG_H
#define EDDY_RUNTIME_MSG_H

#include <stdint.h>

struct actor;

/* Message kinds below MSG_USER are the runtime's own; users number theirs from MSG_USER. */
enum msg_kind {
	MSG_NONE = 0,
	MSG_START,      /* control: run init (first start or restart); u64 = restart count */
	MSG_STOP,       /* control: stop now; u64 bit 0: discard queued data messages */
	MSG_STOP_DRAIN, /* control: stop once the data lane is empty */
	MSG_FAIL,       /* control: injected failure; ptr = reason (char *, drop frees) */
	MSG_EXIT,       /* control, to a supervisor: a child exited; u64 = exit_kind | incarnation << 8 */
	MSG_TIMER,      /* control: a timer fired; ptr = timer, u64 = its tag */
	MSG_USER = 1024
};

typedef struct rt_msg {
	uint32_t kind;                    /* enum msg_kind or a user kind >= MSG_USER */
	uint32_t flags;                   /* free for the kind's use */
	uint64_t u64;                     /* small inline payload */
	void *ptr;                        /* owned payload, or NULL */
	void (*drop)(struct rt_msg *msg); /* releases ptr if discarded undelivered; may be NULL */
	struct actor *from;               /* sending actor, or NULL from outside the runtime */
} rt_msg;

/* msg_discard releases a message the runtime will not deliver. */
static inline void msg_discard(rt_msg *m)
{
	if (m->drop)
		m->drop(m);
	m->drop = 0;
	m->ptr = 0;
}

#endif
