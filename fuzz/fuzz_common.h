/*
** fuzz_common.h: what the libFuzzer targets share: a Lua state running
** a driver (a chunk of Lua given the target's functions), whose failed
** check aborts (libFuzzer reports it), and FUZZ_EQUAL, the driver's
** equality of a value and the value decoded back from its encoding
** (the driver defines 'kind' and 'null' before it).
*/
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "cp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_EQUAL \
  "local function equal(a, b, map)\n" \
  "  if kind == 'json' and (a == math.huge or a == -math.huge) then\n" \
  "    return b == null\n"  /* JSON writes inf as null, as Node does */ \
  "  end\n" \
  "  local ta, tb = type(a), type(b)\n" \
  "  if ta ~= tb then return false end\n" \
  "  if ta == 'number' then\n" \
  "    if math.type(a) ~= math.type(b) then return false end\n" \
  "    if a ~= a then return b ~= b end\n" \
  "    return a == b and (a ~= 0 or 1/a == 1/b)\n" \
  "  end\n" \
  "  if ta ~= 'table' then return a == b end\n" \
  "  if map[a] ~= nil then return rawequal(map[a], b) end\n" \
  "  map[a] = b\n" \
  "  local na, nb = 0, 0\n" \
  "  for k, v in next, a do\n" \
  "    na = na + 1\n" \
  "    if type(k) ~= 'table' then\n" \
  "      local w = rawget(b, k)\n" \
  "      if w == nil or not equal(v, w, map) then return false end\n" \
  "    end\n" \
  "  end\n" \
  "  for _ in next, b do nb = nb + 1 end\n" \
  "  return na == nb\n" \
  "end\n"

/* A new state with the base, math and string libraries and the driver
** loaded (on top) */
static lua_State *fuzz_state(const char *driver, size_t len) {
  lua_State *L = luaL_newstate();
  luaL_requiref(L, "_G", luaopen_base, 1);
  luaL_requiref(L, "math", luaopen_math, 1);
  luaL_requiref(L, "string", luaopen_string, 1);
  lua_settop(L, 0);
  if (luaL_loadbuffer(L, driver, len, "=driver")) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    abort();
  }
  return L;
}

/* Runs the driver with its nargs arguments, aborts when a check fails,
** closes the state */
static void fuzz_call(lua_State *L, int nargs) {
  if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz check failed: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_close(L);
}

#endif
