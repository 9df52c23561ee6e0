/*
** lua_encode.c: the 'lua' serialization's encoder (the format:
** lua_wire.h). core.lua_encode makes a frame as a string; the channel
** (src/channel.c) writes the frame straight from the encoder's buffer and
** from the value's long strings (lua_encode.h).
*/
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

#include "buf.h"
#include "compat.h"
#include "lua_encode.h"
#include "lua_wire.h"

/*
** {======================================================
** 'lua' encoder
** =======================================================
*/
static int enc_value(cp_enc *e, int idx);

/* Room for n bytes, or a recorded error (b->n + extra <= limit always) */
static unsigned char *enc_room(cp_enc *e, size_t n) {
  unsigned char *p = NULL;
  if (n <= e->b->limit - e->b->n - e->extra)
    p = (unsigned char *)cp_wbuf_reserve(e->b, n);
  if (p == NULL) {
    if (n > e->b->limit - e->b->n - e->extra)
      cp_enc_fail(e, 0, "message too large (more than %zu bytes)",
                  e->b->limit);
    else
      cp_enc_fail(e, 0, "not enough memory");
  }
  return p;
}

static int enc_tag(cp_enc *e, int tag) {
  unsigned char *p = enc_room(e, 1);
  if (p == NULL) return 1;
  p[0] = (unsigned char)tag;
  e->b->n++;
  return 0;
}

static int enc_integer(cp_enc *e, lua_Integer i) {
  unsigned char *p = enc_room(e, 9);
  if (p == NULL) return 1;
  if (i >= -128 && i <= 127) {
    p[0] = T_INT8;
    p[1] = (unsigned char)(int8_t)i;
    e->b->n += 2;
  }
  else if (i >= INT32_MIN && i <= INT32_MAX) {
    p[0] = T_INT32;
    put_u32(p + 1, (uint32_t)(int32_t)i);
    e->b->n += 5;
  }
  else {
    p[0] = T_INT64;
    put_u64(p + 1, (uint64_t)i);
    e->b->n += 9;
  }
  return 0;
}

static int enc_float(cp_enc *e, lua_Number x) {
  double d = (double)x;
  uint64_t bits;
  unsigned char *p = enc_room(e, 9);
  if (p == NULL) return 1;
  memcpy(&bits, &d, sizeof(bits));  /* the bits as they are: NaN too */
  p[0] = T_FLOAT;
  put_u64(p + 1, bits);
  e->b->n += 9;
  return 0;
}

/*
** core.lua_send leaves strings of SEG_MIN bytes or more out of the
** buffer (at most CP_SEG_MAX of them per message; later ones are copied):
** they are written from the Lua strings themselves, and queued as they
** are when the socket does not take them at once.
*/
#ifndef CP_SEG_MIN   /* a fuzz build may set it small */
#define CP_SEG_MIN (16 << 10)
#endif
#define SEG_MIN ((size_t)(CP_SEG_MIN))

/* Records the string at idx (len bytes at s) as a segment */
static int enc_segment(cp_enc *e, int idx, const char *s, size_t len) {
  lua_State *L = e->L;
  struct cp_seg *g;
  unsigned char *p;
  if (len + 5 > e->b->limit - e->b->n - e->extra)
    return cp_enc_fail(e, 0, "message too large (more than %zu bytes)",
                       e->b->limit);
  if ((p = enc_room(e, 5)) == NULL)
    return 1;
  p[0] = T_STR32;
  put_u32(p + 1, (uint32_t)len);
  e->b->n += 5;
  if (lua_isnil(L, e->anchors)) {
    lua_createtable(L, 4, 0);
    lua_replace(L, e->anchors);
  }
  lua_pushvalue(L, idx);
  lua_rawseti(L, e->anchors, e->nseg + 1);
  g = &e->seg[e->nseg++];
  g->at = e->b->n;
  g->p = s;
  g->len = len;
  e->extra += len;
  return 0;
}

/* The one copy of the string's bytes into the frame (or none: above) */
static int enc_string(cp_enc *e, int idx) {
  size_t len;
  const char *s = lua_tolstring(e->L, idx, &len);
  unsigned char *p;
  if (len > CP_FRAME_MAX)
    return cp_enc_fail(e, 0, "message too large (more than %zu bytes)",
                       e->b->limit);
  if (e->seg != NULL && len >= SEG_MIN && e->nseg < CP_SEG_MAX &&
      lua_checkstack(e->L, 2))
    return enc_segment(e, idx, s, len);
  if ((p = enc_room(e, len + 5)) == NULL)
    return 1;
  if (len < 256) {
    p[0] = T_STR8;
    p[1] = (unsigned char)len;
    memcpy(p + 2, s, len);
    e->b->n += 2 + len;
  }
  else {
    p[0] = T_STR32;
    put_u32(p + 1, (uint32_t)len);
    memcpy(p + 5, s, len);
    e->b->n += 5 + len;
  }
  return 0;
}

/*
** Writes the array part (keys 1..n while non-nil) then every other
** pair; both counts are patched in once known. Only raw access: a
** metatable's __index or __pairs must not change what is sent.
*/
static int enc_table(cp_enc *e, int idx) {
  lua_State *L = e->L;
  size_t at;
  lua_Integer narr = 0, nhash = 0;
  unsigned char *p;
  if (!lua_checkstack(L, 8))
    return cp_enc_fail(e, 0, "not enough stack space");
  /* tables are numbered by address (they are all alive meanwhile) */
  const void *self = lua_topointer(L, idx);
  lua_Integer ref = 0;
  if (self == e->first)
    ref = 1;
  else if (!lua_isnil(L, e->seen)) {
    if (lua_rawgetp(L, e->seen, self) == LUA_TNUMBER)
      ref = lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  if (ref > 0) {  /* seen: back-reference */
    if ((p = enc_room(e, 5)) == NULL) return 1;
    p[0] = T_REF;
    put_u32(p + 1, (uint32_t)ref);
    e->b->n += 5;
    return 0;
  }
  if (e->depth >= CP_MAX_DEPTH)
    return cp_enc_fail(e, 0, "excessive nesting (%d)", CP_MAX_DEPTH);
  e->depth++;
  if (++e->nseen == 1)  /* numbered before its contents */
    e->first = self;
  else {
    if (lua_isnil(L, e->seen)) {
      lua_newtable(L);
      lua_replace(L, e->seen);
    }
    lua_pushinteger(L, e->nseen);
    lua_rawsetp(L, e->seen, self);
  }
  if ((p = enc_room(e, 9)) == NULL) return 1;
  p[0] = T_TABLE;
  at = e->b->n + 1;
  e->b->n += 9;
  while (lua_rawgeti(L, idx, narr + 1) != LUA_TNIL) {
    int top = lua_gettop(L);
    if (enc_value(e, top)) {
      lua_settop(L, top);  /* drop what inner levels left: stay in bounds */
      lua_pushinteger(L, narr + 1);
      cp_enc_addpath(e, lua_gettop(L), 0);
      return 1;
    }
    lua_pop(L, 1);
    narr++;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    if (lua_isinteger(L, top - 1)) {
      lua_Integer k = lua_tointeger(L, top - 1);
      if (k >= 1 && k <= narr) {  /* already in the array part */
        lua_pop(L, 1);
        continue;
      }
    }
    if (enc_value(e, top - 1)) {
      lua_settop(L, top);
      cp_enc_addpath(e, top - 1, 1);
      return 1;
    }
    if (enc_value(e, top)) {
      lua_settop(L, top);
      cp_enc_addpath(e, top - 1, 0);
      return 1;
    }
    lua_settop(L, top - 1);
    nhash++;
  }
  /* each entry takes at least a byte, so counts fit the u32 fields */
  put_u32((unsigned char *)e->b->p + at, (uint32_t)narr);
  put_u32((unsigned char *)e->b->p + at + 4, (uint32_t)nhash);
  e->depth--;
  return 0;
}

static int enc_value(cp_enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
      return enc_tag(e, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        return enc_integer(e, lua_tointeger(L, idx));
      return enc_float(e, lua_tonumber(L, idx));
    case LUA_TSTRING:
      return enc_string(e, idx);
    case LUA_TTABLE:
      return enc_table(e, idx);
    default:
      return cp_enc_fail(e, 1, "cannot send a %s", luaL_typename(L, idx));
  }
}
/* }====================================================== */


/*
** Encodes the value at vidx into a frame, header included; returns 0, or
** 1 with the error recorded (raise it with cp_enc_raise). Pushes 4 slots.
** Long strings become segments of 'segs' (see enc_segment).
*/
CP_API int cp_lua_frame(lua_State *L, cp_enc *e, struct cp_seg *segs,
                        int vidx, int tag) {
  cp_enc_init(e, L, CP_FRAME_MAX + 4);
  lua_pushnil(L);
  e->anchors = lua_gettop(L);
  e->seg = segs;
  if (enc_room(e, 4) == NULL)
    return 1;
  e->b->n = 4;
  if ((tag && enc_tag(e, tag)) || enc_value(e, vidx)) {
    lua_settop(L, e->path);
    return 1;
  }
  put_u32((unsigned char *)e->b->p, (uint32_t)(e->b->n - 4 + e->extra));
  return 0;
}

/*
** The frame is the buffer's bytes with each segment's bytes inserted at
** its 'at': region 0, segment 0, region 1, ..., region nseg. Region i
** ends where segment i sits (the last one at b->n).
*/
static size_t region_end(const cp_enc *e, int i) {
  return i < e->nseg ? e->seg[i].at : e->b->n;
}

/* Fills iov with the frame's pieces; returns how many */
CP_API int cp_lua_iov(const cp_enc *e, struct iovec *iov) {
  size_t bstart = 0;
  int i, k = 0;
  for (i = 0; i <= e->nseg; i++) {
    size_t bend = region_end(e, i);
    if (bend > bstart) {
      iov[k].iov_base = e->b->p + bstart;
      iov[k++].iov_len = bend - bstart;
    }
    bstart = bend;
    if (i < e->nseg) {
      iov[k].iov_base = (void *)e->seg[i].p;
      iov[k++].iov_len = e->seg[i].len;
    }
  }
  return k;
}

/*
** Pushes the frame's bytes from 'from' on, as strings: the buffer's
** bytes copied, each segment as its own Lua string, whole. Returns how
** many were pushed; *off is where to start in the first one (non-zero
** only for a segment already begun). Needs 2 * CP_SEG_MAX + 1 slots.
*/
CP_API int cp_lua_rest(lua_State *L, const cp_enc *e, size_t from,
                       size_t *off) {
  size_t pos = 0, bstart = 0;   /* frame offset, buffer offset */
  int i, np = 0;
  *off = 0;
  for (i = 0; i <= e->nseg; i++) {
    size_t bend = region_end(e, i), rlen = bend - bstart;
    if (rlen > 0 && pos + rlen > from) {
      size_t skip = from > pos ? from - pos : 0;
      lua_pushlstring(L, e->b->p + bstart + skip, rlen - skip);
      np++;
    }
    pos += rlen;
    bstart = bend;
    if (i < e->nseg) {
      if (pos + e->seg[i].len > from) {
        if (from > pos) *off = from - pos;  /* the first piece */
        lua_rawgeti(L, e->anchors, i + 1);
        np++;
      }
      pos += e->seg[i].len;
    }
  }
  return np;
}

/*
** core.lua_encode(value [, handled]) -> frame (handled: it comes with a
** handle, T_HANDLE). Raises (with nothing allocated left
** behind) on a value that cannot be sent. Long strings are copied once,
** straight into the frame (lua_concat builds the result in place).
*/
static int l_lua_encode(lua_State *L) {
  cp_enc e;
  struct cp_seg segs[CP_SEG_MAX];
  size_t off;
  int np;
  int tag = lua_toboolean(L, 2) ? T_HANDLE : 0;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  if (cp_lua_frame(L, &e, segs, 1, tag))
    return cp_enc_raise(&e);
  luaL_checkstack(L, 2 * CP_SEG_MAX + 4, "cannot encode");
  np = cp_lua_rest(L, &e, 0, &off);
  cp_wbuf_free(e.b);
  if (np > 1)
    lua_concat(L, np);
  return 1;
}

CP_API void cp_lua_encode_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"lua_encode", l_lua_encode},
    {NULL, NULL}
  };
  luaL_setfuncs(L, fns, 0);
  lua_pushinteger(L, CP_WIRE);
  lua_setfield(L, -2, "lua_wire");
}
