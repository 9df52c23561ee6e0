/*
** The 'lua' wire format's pieces shared by its encoder and framing
** (src/serialize.c) and its decoder (src/lua_decode.c): the tags, the
** byte order, and the decoder of one payload.
*/
#ifndef CP_LUA_WIRE_H
#define CP_LUA_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "cp.h"

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

#endif
