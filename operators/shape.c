/*
 * What a checkpoint's operator snapshot says it is (its operator type and the shape of its
 * state), so a restore into an operator of another type or shape fails naming both instead
 * of reading the state wrongly (operators/ops.h).
 */
#include "../runtime/mp.h"
#include "ops.h"

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

void op_pack_shape(msgpack_packer *pk, const char *type, const char *shape)
{
	msgpack_pack_str_with_body(pk, "op", 2);
	msgpack_pack_str_with_body(pk, type, strlen(type));
	msgpack_pack_str_with_body(pk, "shape", 5);
	msgpack_pack_str_with_body(pk, shape, strlen(shape));
}

/* str_is: o is the string s */
static bool str_is(const msgpack_object *o, const char *s)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

const char *op_shape_mismatch(const msgpack_object *snap, const char *type, const char *shape,
                              const char *legend, char *buf, size_t size)
{
	if (snap == NULL || snap->type != MSGPACK_OBJECT_MAP)
		return NULL;
	const msgpack_object *op = mp_get(snap, "op"), *sh = mp_get(snap, "shape");
	if (op != NULL && !str_is(op, type)) {
		snprintf(
		    buf, size,
		    "%s: the checkpoint holds the state of a %.*s, not of a %s (an operator of "
		    "this id changed type): it cannot be restored into it",
		    type, op->type == MSGPACK_OBJECT_STR ? (int)op->via.str.size : 1,
		    op->type == MSGPACK_OBJECT_STR ? op->via.str.ptr : "?", type);
		return buf;
	}
	if (sh != NULL && !str_is(sh, shape)) {
		snprintf(buf, size,
		         "%s: the checkpoint's %s is '%.*s', this one is '%s' (%s): its state "
		         "cannot be restored into it",
		         type, type, sh->type == MSGPACK_OBJECT_STR ? (int)sh->via.str.size : 1,
		         sh->type == MSGPACK_OBJECT_STR ? sh->via.str.ptr : "?", shape, legend);
		return buf;
	}
	return NULL;
}
