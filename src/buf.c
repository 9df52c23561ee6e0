/*
** buf.c: the output buffer that both message encoders write into, and
** their shared state and error reporting (buf.h).
*/
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "buf.h"
#include "compat.h"

#define WBUF_MT "childproc.wbuf"


/*
** {======================================================
** Output buffer (see buf.h)
** =======================================================
*/
static int wbuf_gc(lua_State *L) {
  cp_wbuf *b = (cp_wbuf *)lua_touserdata(L, 1);
  b->kept = 0;
  cp_wbuf_free(b);
  return 0;
}

CP_API cp_wbuf *cp_wbuf_new(lua_State *L, size_t limit) {
  cp_wbuf *b = (cp_wbuf *)cp_newuserdata(L, sizeof(*b), 0);
  b->p = NULL;
  b->n = b->cap = 0;
  b->limit = limit;
  b->kept = b->busy = 0;
  if (luaL_newmetatable(L, WBUF_MT)) {
    lua_pushcfunction(L, wbuf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

/*
** Doubling keeps appends linear; realloc of a large block moves pages
** (mremap) rather than bytes on Linux, so big strings are copied once.
*/
CP_API char *cp_wbuf_reserve(cp_wbuf *b, size_t need) {
  if (need > b->limit - b->n)
    return NULL;
  if (need > b->cap - b->n) {
    size_t ncap = b->cap ? b->cap : 256;
    char *np;
    while (ncap - b->n < need) {
      if (ncap > SIZE_MAX / 2) { ncap = b->n + need; break; }
      ncap *= 2;
    }
    np = (char *)realloc(b->p, ncap);
    if (np == NULL)
      return NULL;
    b->p = np;
    b->cap = ncap;
  }
  return b->p + b->n;
}

static const char wbuf_key = 0;      /* registry key of the kept buffer */
#define WBUF_KEEP ((size_t)64 << 10)  /* the kept buffer's largest block */

/* (An encoder cut short by a Lua error, out of memory, leaves the kept
** buffer busy: later encoders then make their own, as before it.) */
CP_API cp_wbuf *cp_wbuf_get(lua_State *L, size_t limit) {
  cp_wbuf *b;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &wbuf_key) == LUA_TUSERDATA) {
    b = (cp_wbuf *)lua_touserdata(L, -1);
    if (!b->busy) {
      b->busy = 1;
      b->n = 0;
      b->limit = limit;
      return b;
    }
    lua_pop(L, 1);
    return cp_wbuf_new(L, limit);
  }
  lua_pop(L, 1);
  b = cp_wbuf_new(L, limit);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &wbuf_key);
  b->kept = b->busy = 1;
  return b;
}

CP_API void cp_wbuf_free(cp_wbuf *b) {
  b->n = 0;
  b->busy = 0;
  if (b->kept && b->cap <= WBUF_KEEP)
    return;
  free(b->p);
  b->p = NULL;
  b->cap = 0;
}
/* }====================================================== */


/*
** {======================================================
** Encoder state and errors (see buf.h)
** =======================================================
*/
CP_API void cp_enc_init(cp_enc *e, lua_State *L, size_t limit) {
  luaL_checkstack(L, 8, "cannot encode");
  e->L = L;
  e->b = cp_wbuf_get(L, limit);
  lua_pushnil(L);
  e->seen = lua_gettop(L);
  lua_pushnil(L);
  e->path = lua_gettop(L);
  e->npath = 0;
  e->depth = 0;
  e->nseen = 0;
  e->first = NULL;
  e->withpath = 0;
  e->msg[0] = '\0';
  e->seg = NULL;
  e->nseg = 0;
  e->anchors = 0;
  e->extra = 0;
}

CP_API int cp_enc_fail(cp_enc *e, int withpath, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
  va_end(ap);
  e->withpath = withpath;
  return 1;
}

static int is_name(const char *s, size_t len) {
  size_t i;
  if (len == 0 || len > 40 || !(s[0] == '_' || (s[0] | 32) >= 'a'))
    return 0;
  for (i = 0; i < len; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
          (c >= 'A' && c <= 'Z')))
      return 0;
  }
  return 1;
}

/*
** Pushes a short readable form of the key at kidx: '.name' for names,
** '[...]' otherwise; strings are quoted and cut, since keys can be
** binary or huge.
*/
static void push_segment(lua_State *L, int kidx) {
  switch (lua_type(L, kidx)) {
    case LUA_TSTRING: {
      size_t len, i;
      const char *s = lua_tolstring(L, kidx, &len);
      luaL_Buffer B;
      if (is_name(s, len)) {
        lua_pushfstring(L, ".%s", s);
        return;
      }
      luaL_buffinit(L, &B);
      luaL_addstring(&B, "[\"");
      for (i = 0; i < len && i < 24; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c > 126 || c == '"' || c == '\\') {
          char hex[8];
          snprintf(hex, sizeof(hex), "\\x%02x", c);
          luaL_addstring(&B, hex);
        }
        else
          luaL_addchar(&B, (char)c);
      }
      luaL_addstring(&B, i < len ? "...\"]" : "\"]");
      luaL_pushresult(&B);
      return;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, kidx)) {
        char num[32];
        snprintf(num, sizeof(num), "[%lld]", (long long)lua_tointeger(L, kidx));
        lua_pushstring(L, num);
      }
      else
        lua_pushfstring(L, "[%f]", (LUAI_UACNUMBER)lua_tonumber(L, kidx));
      return;
    case LUA_TBOOLEAN:
      lua_pushstring(L, lua_toboolean(L, kidx) ? "[true]" : "[false]");
      return;
    default:
      lua_pushfstring(L, "[<%s>]", luaL_typename(L, kidx));
      return;
  }
}

CP_API void cp_enc_addpath(cp_enc *e, int kidx, int iskey) {
  lua_State *L = e->L;
  if (!e->withpath || !lua_checkstack(L, 4))
    return;
  if (lua_isnil(L, e->path)) {
    lua_newtable(L);
    lua_replace(L, e->path);
  }
  if (iskey)
    lua_pushliteral(L, "[<key>]");
  else
    push_segment(L, kidx);
  lua_rawseti(L, e->path, ++e->npath);
}

/* Frees the buffer and pushes the recorded error's message */
CP_API void cp_enc_pushmsg(cp_enc *e) {
  lua_State *L = e->L;
  cp_wbuf_free(e->b);
  if (e->withpath && e->npath > 0) {
    int i;
    luaL_Buffer B;
    luaL_buffinit(L, &B);
    luaL_addstring(&B, e->msg);
    luaL_addstring(&B, " (at msg");
    for (i = e->npath; i >= 1; i--) {  /* segments were added inner first */
      lua_rawgeti(L, e->path, i);
      luaL_addvalue(&B);
    }
    luaL_addchar(&B, ')');
    luaL_pushresult(&B);
  }
  else
    lua_pushstring(L, e->msg);
}

/*
** The error is raised without position information: it describes the
** message (core.lua_send can put it in the words of send(), at its
** caller's line).
*/
CP_API int cp_enc_raise(cp_enc *e) {
  cp_enc_pushmsg(e);
  return lua_error(e->L);
}
/* }====================================================== */
