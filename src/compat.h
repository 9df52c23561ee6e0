/*
** The Lua API differences between 5.1, 5.2, 5.3, 5.4 and LuaJIT 2.1 live
** here, so the rest of the C source is written against the 5.4 API.
** On an older Lua, a 5.3/5.4 call the source uses is mapped to a cp_
** shim of the same meaning (prefixed: LuaJIT 2.1 defines some of the
** 5.2 functions itself, and a second definition would clash).
**
** Numbers: on 5.1, 5.2 and LuaJIT they are doubles (CP_DOUBLES).  There
** an "integer" is a number with an integral value of at most 2^53 in
** magnitude (and not -0.0): those cross the channel as integers, any
** other number as a float, and a received integer beyond 2^53 is refused
** (cp_pushint64), never rounded.
*/
#ifndef CP_COMPAT_H
#define CP_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<luajit.h>)
#include <luajit.h>
#endif
#endif

/* the release this module is built for, as the interpreter's -v says it
** (tools/embed.lua makes the bytecode only for the same one) */
#if defined(LUAJIT_VERSION)
#define CP_LUA_RELEASE LUAJIT_VERSION
#else
#define CP_LUA_RELEASE LUA_RELEASE
#endif

#ifndef LUA_OK
#define LUA_OK 0
#endif

/* {====================================================== user values */
#if LUA_VERSION_NUM >= 504
#define cp_newuserdata(L, sz, nuv) lua_newuserdatauv((L), (sz), (nuv))
#define cp_getuservalue(L, idx)    lua_getiuservalue((L), (idx), 1)
#define cp_setuservalue(L, idx)    lua_setiuservalue((L), (idx), 1)
#elif LUA_VERSION_NUM == 503
#define cp_newuserdata(L, sz, nuv) lua_newuserdata((L), (sz))
#define cp_getuservalue(L, idx)    lua_getuservalue((L), (idx))
#define cp_setuservalue(L, idx)    lua_setuservalue((L), (idx))
#elif LUA_VERSION_NUM == 502
#define cp_newuserdata(L, sz, nuv) lua_newuserdata((L), (sz))
static inline int cp_getuservalue(lua_State *L, int idx) {
  lua_getuservalue(L, idx);
  return lua_type(L, -1);
}
#define cp_setuservalue(L, idx)    lua_setuservalue((L), (idx))
#else
/* 5.1 and LuaJIT: a userdata's environment table is its one user value.
** A new userdata gets a shared empty marker table (it would get the
** creating function's environment), which reads back as nil. */
static const char cp_noenv_key = 0;
static inline void cp_pushnoenv(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&cp_noenv_key);
  lua_rawget(L, LUA_REGISTRYINDEX);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, (void *)&cp_noenv_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  }
}
static inline void *cp_newuserdata(lua_State *L, size_t sz, int nuv) {
  void *p = lua_newuserdata(L, sz);
  (void)nuv;
  cp_pushnoenv(L);
  lua_setfenv(L, -2);
  return p;
}
static inline int cp_getuservalue(lua_State *L, int idx) {
  lua_getfenv(L, idx);
  if (lua_istable(L, -1)) {
    int none;
    cp_pushnoenv(L);
    none = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    if (!none) return LUA_TTABLE;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  return LUA_TNIL;
}
/* (only tables are ever set) */
#define cp_setuservalue(L, idx)    ((void)lua_setfenv((L), (idx)))
#endif
/* }====================================================== */

/* {====================================================== 5.1 and LuaJIT */
#if LUA_VERSION_NUM == 501
static inline int cp_absindex(lua_State *L, int idx) {
  return idx > 0 || idx <= LUA_REGISTRYINDEX ? idx : lua_gettop(L) + idx + 1;
}
#define lua_absindex(L, i) cp_absindex((L), (i))
#define lua_rawlen(L, i) lua_objlen((L), (i))

static inline void cp_luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#define luaL_setfuncs(L, l, n) cp_luaL_setfuncs((L), (l), (n))
#ifndef luaL_newlibtable
#define luaL_newlibtable(L, l) \
  lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0])) - 1)
#endif

static inline void cp_luaL_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}
#define luaL_setmetatable(L, t) cp_luaL_setmetatable((L), (t))

static inline void *cp_luaL_testudata(lua_State *L, int idx, const char *tname) {
  void *p = lua_touserdata(L, idx);
  int same = 0;
  if (p != NULL && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, tname);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return same ? p : NULL;
}
#define luaL_testudata(L, i, t) cp_luaL_testudata((L), (i), (t))

static inline void cp_lua_copy(lua_State *L, int from, int to) {
  to = cp_absindex(L, to);
  lua_pushvalue(L, from);
  lua_replace(L, to);
}
#define lua_copy(L, f, t) cp_lua_copy((L), (f), (t))

#define luaL_loadbufferx(L, b, n, name, mode) \
  luaL_loadbuffer((L), (b), (n), (name))

static inline int cp_rawgetp(lua_State *L, int idx, const void *p) {
  idx = cp_absindex(L, idx);
  lua_pushlightuserdata(L, (void *)p);
  lua_rawget(L, idx);
  return lua_type(L, -1);
}
static inline void cp_rawsetp(lua_State *L, int idx, const void *p) {
  idx = cp_absindex(L, idx);
  lua_pushlightuserdata(L, (void *)p);
  lua_insert(L, -2);
  lua_rawset(L, idx);
}
#define lua_rawsetp(L, i, p) cp_rawsetp((L), (i), (p))

/* the FILE of an open Lua file handle, else NULL */
#ifndef LUA_FILEHANDLE
#define LUA_FILEHANDLE "FILE*"
#endif
static inline FILE *cp_tofile(lua_State *L, int idx) {
  FILE **pf = (FILE **)luaL_testudata(L, idx, LUA_FILEHANDLE);
  return pf != NULL ? *pf : NULL;
}
#else
static inline FILE *cp_tofile(lua_State *L, int idx) {
  luaL_Stream *st = (luaL_Stream *)luaL_testudata(L, idx, LUA_FILEHANDLE);
  return st != NULL && st->closef != NULL ? st->f : NULL;
}
#endif
/* }====================================================== */

/* {====================================================== before 5.3 */
#if LUA_VERSION_NUM < 503
#define CP_DOUBLES 1
#define CP_SAFE_INT 9007199254740992.0   /* 2^53 */

/* lua_get* return the type they pushed from 5.3 on */
static inline int cp_rawget(lua_State *L, int idx) {
  (lua_rawget)(L, idx);
  return lua_type(L, -1);
}
static inline int cp_rawgeti(lua_State *L, int idx, lua_Integer n) {
  (lua_rawgeti)(L, idx, (int)n);
  return lua_type(L, -1);
}
static inline int cp_gettable(lua_State *L, int idx) {
  (lua_gettable)(L, idx);
  return lua_type(L, -1);
}
static inline int cp_getfield(lua_State *L, int idx, const char *k) {
  (lua_getfield)(L, idx, k);
  return lua_type(L, -1);
}
#define lua_rawget(L, i) cp_rawget((L), (i))
#define lua_rawgeti(L, i, n) cp_rawgeti((L), (i), (n))
#define lua_gettable(L, i) cp_gettable((L), (i))
#define lua_getfield(L, i, k) cp_getfield((L), (i), (k))
#if LUA_VERSION_NUM == 502
static inline int cp_rawgetp(lua_State *L, int idx, const void *p) {
  (lua_rawgetp)(L, idx, p);
  return lua_type(L, -1);
}
#endif
#define lua_rawgetp(L, i, p) cp_rawgetp((L), (i), (p))

static inline int cp_luaL_getmetafield(lua_State *L, int obj, const char *e) {
  return (luaL_getmetafield)(L, obj, e) ? lua_type(L, -1) : LUA_TNIL;
}
#define luaL_getmetafield(L, o, e) cp_luaL_getmetafield((L), (o), (e))

/* metatables carry __name, as from 5.3 on (error messages use it) */
static inline int cp_luaL_newmetatable(lua_State *L, const char *tname) {
  if (!(luaL_newmetatable)(L, tname)) return 0;
  lua_pushstring(L, tname);
  lua_setfield(L, -2, "__name");
  return 1;
}
#define luaL_newmetatable(L, t) cp_luaL_newmetatable((L), (t))

static inline int cp_isinteger(lua_State *L, int idx) {
  lua_Number x;
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  x = lua_tonumber(L, idx);
  return x == floor(x) && fabs(x) <= CP_SAFE_INT && !(x == 0 && signbit(x));
}
#define lua_isinteger(L, i) cp_isinteger((L), (i))

static inline size_t cp_stringtonumber(lua_State *L, const char *s) {
  lua_Number x;
  lua_pushstring(L, s);
  if (!lua_isnumber(L, -1)) { lua_pop(L, 1); return 0; }
  x = lua_tonumber(L, -1);
  lua_pop(L, 1);
  lua_pushnumber(L, x);
  return strlen(s) + 1;
}
#define lua_stringtonumber(L, s) cp_stringtonumber((L), (s))

static inline void cp_rotate(lua_State *L, int idx, int n) {
  idx = lua_absindex(L, idx);
  for (; n > 0; n--) lua_insert(L, idx);
  for (; n < 0; n++) { lua_pushvalue(L, idx); lua_remove(L, idx); }
}
#define lua_rotate(L, i, n) cp_rotate((L), (i), (n))

#define LUA_MAXINTEGER PTRDIFF_MAX
#define LUA_MININTEGER PTRDIFF_MIN
#define LUAI_UACINT long long
#define LUA_INTEGER_FMT "%lld"
#endif
/* }====================================================== */

/* Pushes a 64-bit integer received on a channel.  Where numbers are
** doubles, one beyond 2^53 is refused: returns 1 with err naming it. */
static inline int cp_pushint64(lua_State *L, int64_t v, char *err,
                               size_t errsz) {
#ifdef CP_DOUBLES
  if (v > (int64_t)1 << 53 || v < -((int64_t)1 << 53)) {
    snprintf(err, errsz, "integer %lld cannot be held exactly by %s"
             " (its numbers are doubles: integers up to 2^53)",
             (long long)v, CP_LUA_RELEASE);
    return 1;
  }
  lua_pushnumber(L, (lua_Number)v);
#else
  (void)err; (void)errsz;
  lua_pushinteger(L, (lua_Integer)v);
#endif
  return 0;
}

#endif
