/*
** lua_encode.h: the 'lua' encoder (src/lua_encode.c) as the channel
** (src/channel.c) uses it: a frame built in the encoder's buffer, the
** value's long strings left out of it as segments, to be written from
** the Lua strings themselves.
*/
#ifndef CP_LUA_ENCODE_H
#define CP_LUA_ENCODE_H

#include <stddef.h>
#include <sys/uio.h>

#include <lua.h>

#include "buf.h"
#include "cp.h"

/* Segments per message at most (later long strings are copied) */
#define CP_SEG_MAX 64

struct cp_seg {
  size_t at;        /* where it sits in the frame, counted in b's bytes */
  const char *p;    /* the Lua string's bytes (anchored) */
  size_t len;
};

/*
** Encodes the value at vidx into a frame, header included (tag: a tag
** before the value, or 0); 0, or 1 with the error recorded in e (raise
** it with cp_enc_raise). Pushes 4 slots. Long strings become segments
** of segs (CP_SEG_MAX of them).
*/
CP_API int cp_lua_frame(lua_State *L, cp_enc *e, struct cp_seg *segs,
                        int vidx, int tag);
/* Fills iov (2 * CP_SEG_MAX + 1) with the frame's pieces; how many */
CP_API int cp_lua_iov(const cp_enc *e, struct iovec *iov);
/*
** Pushes the frame's bytes from 'from' on as strings (the buffer's bytes
** copied, each segment its own string); how many, *off where to start
** in the first one
*/
CP_API int cp_lua_rest(lua_State *L, const cp_enc *e, size_t from,
                       size_t *off);

#endif
