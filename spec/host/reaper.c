/*
** A Lua module for the specs only: another part of the host process that
** reaps children itself, as a host with its own SIGCHLD handling or
** luaposix's wait() would (stolen_spec).  Not part of childproc.
**   reaper.waitpid(pid) -> pid, status   (blocks)
**   reaper.wait_any()   -> pid, status   (waitpid(-1): any child)
*/
#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <lua.h>
#include <lauxlib.h>

static int push(lua_State *L, pid_t got, int status) {
  if (got < 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushinteger(L, got);
  lua_pushinteger(L, status);
  return 2;
}

static int r_waitpid(lua_State *L) {
  int status = 0;
  pid_t got;
  do got = waitpid((pid_t)luaL_checkinteger(L, 1), &status, 0);
  while (got < 0 && errno == EINTR);
  return push(L, got, status);
}

static int r_wait_any(lua_State *L) {
  int status = 0;
  pid_t got;
  do got = waitpid(-1, &status, 0);
  while (got < 0 && errno == EINTR);
  return push(L, got, status);
}

int luaopen_reaper(lua_State *L);
int luaopen_reaper(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, r_waitpid);
  lua_setfield(L, -2, "waitpid");
  lua_pushcfunction(L, r_wait_any);
  lua_setfield(L, -2, "wait_any");
  return 1;
}
