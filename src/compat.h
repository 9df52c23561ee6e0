/*
** The few Lua API calls that differ between 5.1-5.4 and LuaJIT live here,
** so other versions can follow without touching the core.
*/
#ifndef CP_COMPAT_H
#define CP_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 504
#define cp_newuserdata(L, sz, nuv) lua_newuserdatauv((L), (sz), (nuv))
#define cp_getuservalue(L, idx)    lua_getiuservalue((L), (idx), 1)
#define cp_setuservalue(L, idx)    lua_setiuservalue((L), (idx), 1)
#else
#define cp_newuserdata(L, sz, nuv) lua_newuserdata((L), (sz))
#define cp_getuservalue(L, idx)    lua_getuservalue((L), (idx))
#define cp_setuservalue(L, idx)    lua_setuservalue((L), (idx))
#endif

#if LUA_VERSION_NUM >= 503
#define cp_isyieldable(L)          lua_isyieldable(L)
#else
/* (a coroutine may yield through pcall in LuaJIT; the main thread never) */
static inline int cp_isyieldable(lua_State *L) {
  int main = lua_pushthread(L);
  lua_pop(L, 1);
  return !main;
}
#endif

#endif
