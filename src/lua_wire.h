/*
** The 'lua' wire format's pieces shared by its encoder
** (src/lua_encode.c), its decoder of one payload (src/lua_decode.c),
** and the framing of the socket and the rings (src/frame.c,
** src/ring.c): the tags, the byte order, the decoder's entry.
**
** A 'lua' frame is a 4-byte little-endian unsigned payload length and
** the payload: one value, encoded as a type tag (one byte) and its
** body. Multi-byte numbers are little-endian.
**
**   0x01 false    0x02 true
**   0x03 int8     0x04 int32    0x05 int64   (two's complement)
**   0x06 float    8 bytes: the IEEE 754 bits, so -0.0, inf, NaN travel
**   0x07 string   u8 length, bytes
**   0x08 string   u32 length, bytes
**   0x09 table    u32 narr, u32 nhash, narr values (keys 1..narr),
**                 then nhash key/value pairs
**   0x0a ref      u32 n: the n-th table of this payload (1-based, in
**                 the order their 0x09 tags appear)
**
** Two tags open a payload only (src/handle.c, lua/handle.lua): 0x0b, then
** the value: a message that comes with a handle (an fd, SCM_RIGHTS, on
** the socket); 0x0c alone, in a ring: the next message is the one on the
** socket, so ring and socket messages keep their order.
**
** Tables are numbered before their contents are written, so a table
** can refer to itself or to an ancestor: shared references and cycles
** come back as they were. There is no nil tag: nil is neither a valid
** message nor a valid key. The decoder checks everything (lengths
** against the remaining payload, tags, references, NaN keys, nesting,
** trailing bytes) and never allocates more than the bytes it has read
** justify.
**
** The format is the same for every Lua the module builds for (where
** numbers are doubles, an integral one of at most 2^53 is sent as an
** integer, and a received integer beyond that is refused: compat.h).
** CP_WIRE is its version (core.lua_wire): fork tells it to the child
** (CHILDPROC_WIRE), which refuses a parent speaking another one.
*/
#ifndef CP_LUA_WIRE_H
#define CP_LUA_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <lua.h>

#include "cp.h"

#define CP_WIRE 1

/* Largest payload a frame can declare */
#define CP_FRAME_MAX ((size_t)UINT32_MAX)

/* Tables are presized to at most this many slots before their contents
** are read, so a hostile count cannot make a small frame allocate much */
#define PRESIZE_MAX 8

enum {
  T_FALSE = 1, T_TRUE, T_INT8, T_INT32, T_INT64, T_FLOAT,
  T_STR8, T_STR32, T_TABLE, T_REF, T_HANDLE, T_MARK
};

/*
** {======================================================
** Little-endian helpers
** =======================================================
*/
static inline void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static inline void put_u64(unsigned char *p, uint64_t v) {
  put_u32(p, (uint32_t)v);
  put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static inline uint64_t get_u64(const unsigned char *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}
/* }====================================================== */

/* Decodes the payload p[0..n) and pushes its value; returns 0, or 1
** with the stack as it was and a message in err */
CP_API int cp_lua_decode(lua_State *L, const char *p, size_t n, char *err,
                         size_t errsz);

/* Before a payload of plen bytes is decoded for the object at stack
** index idx (its user value a table): its ballast, once (*has), at
** slot 1 of that table (see src/lua_decode.c) */
CP_API void cp_lua_ballast(lua_State *L, int *has, int idx, size_t plen);

/* The message for a payload over the decoder's limit; returns 1 */
static inline int cp_lua_too_large(char *err, size_t errsz, size_t n,
                                   size_t max) {
  snprintf(err, errsz, "message of %zu bytes exceeds the limit of %zu bytes",
           n, max);
  return 1;
}

#endif
