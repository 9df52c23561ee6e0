/* benchclock: a monotonic clock for the Lua peers (Lua itself has none).
** require 'benchclock'.now() --> seconds as a float */
#include <time.h>
#include <lua.h>
#include <lauxlib.h>

static int now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, ts.tv_sec + ts.tv_nsec * 1e-9);
  return 1;
}

int luaopen_benchclock(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, now);
  lua_setfield(L, -2, "now");
  return 1;
}
