/* Texts for eddy_err. */
#include <eddy/err.h>

const char *eddy_strerror(eddy_err err)
{
	switch (err) {
	case EDDY_OK: return "ok";
	case EDDY_ENOMEM: return "out of memory";
	case EDDY_EINVAL: return "invalid argument";
	case EDDY_EFULL: return "queue full";
	case EDDY_EEMPTY: return "queue empty";
	case EDDY_ESTOPPED: return "stopped";
	case EDDY_EEXIST: return "already exists";
	case EDDY_ENOENT: return "not found";
	case EDDY_ETIMEDOUT: return "timed out";
	case EDDY_EFAILED: return "failed";
	case EDDY_EIO: return "I/O error";
	case EDDY_EBUSY: return "busy";
	case EDDY_ERR_COUNT_: break;
	}
	return "unknown error";
}
