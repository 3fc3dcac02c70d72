/* Small msgpack-c helpers shared by the control plane, checkpoints and operators. */
#ifndef EDDY_RUNTIME_MP_H
#define EDDY_RUNTIME_MP_H

#include <msgpack.h>
#include <string.h>

/* mp_get returns the value under the string key `key` of map m (borrowed), or NULL if m
 * is not a map or has no such key. */
static inline const msgpack_object *mp_get(const msgpack_object *m, const char *key)
{
	size_t n = strlen(key);
	for (uint32_t i = 0; m && m->type == MSGPACK_OBJECT_MAP && i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    memcmp(k->via.str.ptr, key, n) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

/* mp_int reads an integer (either sign) into *out; false if o is not one. */
static inline bool mp_int(const msgpack_object *o, int64_t *out)
{
	if (o == NULL || (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
	                  o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
		return false;
	*out = o->via.i64;
	return true;
}

/* mp_bool reads a boolean into *out; false if o is not one. */
static inline bool mp_bool(const msgpack_object *o, bool *out)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_BOOLEAN)
		return false;
	*out = o->via.boolean;
	return true;
}

#endif
