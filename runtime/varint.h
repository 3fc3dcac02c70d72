/* Varints (LEB128: 7 bits a byte, low bits first, the high bit set on every byte but the
 * last, as protobuf's), shared by the keyed state's key and list encodings and the
 * join's element encoding. Pure functions, any thread. */
#ifndef EDDY_RUNTIME_VARINT_H
#define EDDY_RUNTIME_VARINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* varint_put writes v at p (room for 10 bytes); returns the bytes written (1..10). */
static inline size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* varint_get reads a varint at *p (not past end) into *v and moves *p past it; false if
 * it runs past end or over 64 bits. */
static inline bool varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned sh = 0; *p < end && sh < 64; sh += 7) {
		uint8_t c = *(*p)++;
		x |= (uint64_t)(c & 0x7f) << sh;
		if (!(c & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

#endif
