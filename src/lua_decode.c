/*
** The 'lua' wire format's decoder of one payload (the framing around it
** is src/frame.c's, for the socket, and src/ring.c's), and the heap
** ballast a big payload gives its decoder.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "compat.h"
#include "lua_wire.h"

/*
** {======================================================
** 'lua' decoder of one payload
** =======================================================
*/
typedef struct ldec {
  lua_State *L;
  const unsigned char *start, *p, *end;
  int first;           /* stack slot of table 1, or nil */
  int refs;            /* stack slot of the table of tables 2.., or nil */
  lua_Integer nrefs;
  int depth;
  char *err;
  size_t errsz;
} ldec;

static int dec_fail(ldec *d, const char *what) {
  snprintf(d->err, d->errsz, "malformed 'lua' message: %s at byte %zu",
           what, (size_t)(d->p - d->start));
  return 1;
}

#define NEED(d, n) \
  if ((size_t)((d)->end - (d)->p) < (size_t)(n)) \
    return dec_fail(d, "truncated payload")

static int dec_value(ldec *d);

static int dec_string(ldec *d, size_t len) {
  NEED(d, len);
  lua_pushlstring(d->L, (const char *)d->p, len);
  d->p += len;
  return 0;
}

/*
** Counts are only trusted as far as the bytes left can hold them, and
** presizing is capped: the frame must prove its size with real bytes.
*/
static int dec_table(ldec *d) {
  lua_State *L = d->L;
  uint32_t narr, nhash, i;
  size_t left;
  if (d->depth >= CP_MAX_DEPTH) {
    snprintf(d->err, d->errsz, "excessive nesting (%d)", CP_MAX_DEPTH);
    return 1;
  }
  NEED(d, 8);
  narr = get_u32(d->p);
  nhash = get_u32(d->p + 4);
  d->p += 8;
  left = (size_t)(d->end - d->p);
  if (narr > left || nhash > left / 2 || narr + (size_t)nhash * 2 > left)
    return dec_fail(d, "table size beyond the payload");
  lua_createtable(L, narr < PRESIZE_MAX ? (int)narr : PRESIZE_MAX,
                  nhash < PRESIZE_MAX ? (int)nhash : PRESIZE_MAX);
  lua_pushvalue(L, -1);  /* numbered before its contents: cycles */
  if (++d->nrefs == 1)
    lua_replace(L, d->first);
  else {
    if (lua_isnil(L, d->refs)) {
      lua_newtable(L);
      lua_replace(L, d->refs);
    }
    lua_rawseti(L, d->refs, d->nrefs);
  }
  d->depth++;
  for (i = 1; i <= narr; i++) {
    if (dec_value(d)) return 1;
    lua_rawseti(L, -2, i);
  }
  for (i = 0; i < nhash; i++) {
    if (dec_value(d)) return 1;
    if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) &&
        isnan(lua_tonumber(L, -1)))
      return dec_fail(d, "NaN key");
    if (dec_value(d)) return 1;
    lua_rawset(L, -3);
  }
  d->depth--;
  return 0;
}

static int dec_value(ldec *d) {
  lua_State *L = d->L;
  int tag;
  if (!lua_checkstack(L, 6)) {
    snprintf(d->err, d->errsz, "not enough stack space");
    return 1;
  }
  NEED(d, 1);
  tag = *d->p++;
  switch (tag) {
    case T_FALSE: case T_TRUE:
      lua_pushboolean(L, tag == T_TRUE);
      return 0;
    case T_INT8:
      NEED(d, 1);
      lua_pushinteger(L, (int8_t)d->p[0]);
      d->p += 1;
      return 0;
    case T_INT32:
      NEED(d, 4);
      lua_pushinteger(L, (int32_t)get_u32(d->p));
      d->p += 4;
      return 0;
    case T_INT64:
      NEED(d, 8);
      if (cp_pushint64(L, (int64_t)get_u64(d->p), d->err, d->errsz))
        return 1;  /* beyond what this Lua's numbers hold exactly */
      d->p += 8;
      return 0;
    case T_FLOAT: {
      uint64_t bits;
      double x;
      NEED(d, 8);
      bits = get_u64(d->p);
      memcpy(&x, &bits, sizeof(x));
      lua_pushnumber(L, (lua_Number)x);
      d->p += 8;
      return 0;
    }
    case T_STR8: {
      size_t len;
      NEED(d, 1);
      len = d->p[0];
      d->p += 1;
      return dec_string(d, len);
    }
    case T_STR32: {
      size_t len;
      NEED(d, 4);
      len = get_u32(d->p);
      d->p += 4;
      return dec_string(d, len);
    }
    case T_TABLE:
      return dec_table(d);
    case T_REF: {
      uint32_t ref;
      NEED(d, 4);
      ref = get_u32(d->p);
      if (ref < 1 || ref > d->nrefs)
        return dec_fail(d, "bad back-reference");
      d->p += 4;
      if (ref == 1) lua_pushvalue(L, d->first);
      else lua_rawgeti(L, d->refs, ref);
      return 0;
    }
    default:
      d->p--;
      return dec_fail(d, "bad type tag");
  }
}

/*
** Decodes one payload and pushes its value; returns 0, or 1 with the
** stack as it was and a message in err.
*/
CP_API int cp_lua_decode(lua_State *L, const char *p, size_t n, char *err,
                         size_t errsz) {
  ldec d;
  int base = lua_gettop(L);
  luaL_checkstack(L, 4, "cannot decode");
  d.L = L;
  d.start = d.p = (const unsigned char *)p;
  d.end = d.start + n;
  d.nrefs = 0;
  d.depth = 0;
  d.err = err;
  d.errsz = errsz;
  lua_pushnil(L);
  d.first = lua_gettop(L);
  lua_pushnil(L);
  d.refs = lua_gettop(L);
  if (dec_value(&d)) {
    lua_settop(L, base);
    return 1;
  }
  if (d.p != d.end) {
    dec_fail(&d, "trailing bytes");
    lua_settop(L, base);
    return 1;
  }
  lua_replace(L, d.first);  /* the value over the two slots */
  lua_settop(L, d.first);
  return 0;
}
/* }====================================================== */


/*
** A big string decoded into a small Lua heap doubles it, and Lua 5.4's
** generational collector then does a full collection (every live object
** marked) for each such message. The first big payload a decoder sees
** gives it a ballast: a userdata of BALLAST bytes that Lua counts in its
** heap but nothing ever touches (malloc maps it; the pages stay out of
** memory), so big strings are young garbage for minor collections.
** It goes with the decoder (or when it dies: the user value then holds
** the error).
** Before each big payload is decoded, a collector step (a young
** collection in generational mode; not when the host stopped the
** collector) frees the big strings already delivered and dropped, so
** the new string takes their memory, still mapped and in cache. Left to
** the collector's pace, several freed at once at the heap's top make
** glibc trim it, and the next strings fault every page in again: a
** burst of 1 MiB messages spent three quarters of the receiver's time
** in page faults (16 000 for 200 MiB, 6 GB/s; 260 and 13 GB/s now).
*/
#define BALLAST ((size_t)8 << 20)
#define BALLAST_MIN ((size_t)64 << 10)   /* payloads that get it */

CP_API void cp_lua_ballast(lua_State *L, int *has, int idx, size_t plen) {
  if (plen < BALLAST_MIN) return;
#ifdef LUA_GCISRUNNING
  if (lua_gc(L, LUA_GCISRUNNING, 0)) lua_gc(L, LUA_GCSTEP, 0);
#endif
  if (*has || !lua_checkstack(L, 3)) return;
  *has = 1;
  idx = lua_absindex(L, idx);
  cp_newuserdata(L, BALLAST, 0);
  cp_getuservalue(L, idx);
  lua_insert(L, -2);
  lua_rawseti(L, -2, 1);
  lua_pop(L, 1);
}
