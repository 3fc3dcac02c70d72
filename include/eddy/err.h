/*
 * eddy's one error type. Every fallible function returns an eddy_err and gives
 * its results through out-pointers; EDDY_OK (0) is success.
 */
#ifndef EDDY_ERR_H
#define EDDY_ERR_H

typedef enum eddy_err {
	EDDY_OK = 0,
	EDDY_ENOMEM,    /* an allocation failed */
	EDDY_EINVAL,    /* a bad argument or bad input */
	EDDY_EFULL,     /* a bounded queue is full; nothing was taken */
	EDDY_EEMPTY,    /* a queue is empty */
	EDDY_ESTOPPED,  /* the target actor or service has stopped */
	EDDY_EEXIST,    /* a name is already taken */
	EDDY_ENOENT,    /* no such name */
	EDDY_ETIMEDOUT, /* a wait ran out of time */
	EDDY_EFAILED,   /* an actor callback or job failed; see its last error */
	EDDY_EIO,       /* an I/O call failed; see errno */
	EDDY_EBUSY,     /* the object is in a state where this is not allowed */
	EDDY_ERR_COUNT_
} eddy_err;

/* eddy_strerror returns a static, human-readable text for err. Any thread. */
const char *eddy_strerror(eddy_err err);

#endif
