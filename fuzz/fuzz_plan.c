/*
** fuzz_plan.c: libFuzzer target for the options -> plan step: the
** arguments of spawn, exec, execFile, fork and the *Sync functions, built
** from the input bytes as Lua values (option names and the words they
** take, integers, floats, NaN, huge numbers, strings with NULs and '=',
** nested tables, functions, files, a table whose reads raise), go
** through the real functions, stdio made and all; only core.spawn is
** replaced by one that fails (ENOENT), so nothing is started. Each call
** must return or raise a "bad argument" error naming the function (an
** error object from the *Sync ones); any other error (an "attempt to
** index", a non-string error) aborts.
** One lua_State with the whole module (all its C files) for the run.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_childproc(lua_State *L);
int luaopen_childproc_internal(lua_State *L);

static const char driver[] =
  "local cp, s = ...\n"
  "local pos = 0\n"
  "local function byte() pos = pos + 1; return s:byte(pos) or 0 end\n"
  "local WORDS = { 'cwd', 'env', 'argv0', 'shell', 'stdio', 'detached',\n"
  "  'processGroup', 'uid', 'gid', 'timeout', 'killSignal', 'serialization',\n"
  "  'maxMessageSize', 'windowsHide', 'parentDeathSignal', 'maxBuffer',\n"
  "  'encoding', 'pipe', 'inherit', 'ignore', 'ipc', 'overlapped', 'SIGTERM',\n"
  "  'KILL', 'SIGFOO', 'lua', 'json', 'utf8', 'buffer', '/bin/sh', '', 'a=b',\n"
  "  'x\\0y', 'PATH', '/tmp', 'true', 'windowsVerbatimArguments' }\n"
  "local function value(depth)\n"
  "  local b = byte()\n"
  "  local t = b % 13\n"
  "  if t == 0 then return nil\n"
  "  elseif t == 1 then return b >= 128\n"
  "  elseif t == 2 then return byte() - 128\n"
  "  elseif t == 3 then return (byte() - 128) / 4\n"
  "  elseif t == 4 or t == 5 then return WORDS[byte() % #WORDS + 1]\n"
  "  elseif t == 6 then return 2 ^ (byte() % 70) * (b >= 128 and -1 or 1)\n"
  "  elseif t == 7 then return ({ 0/0, math.huge, -math.huge, math.maxinteger, math.mininteger, -0.0 })[byte() % 6 + 1]\n"
  "  elseif t == 8 and depth < 4 then\n"
  "    local a = {}\n"
  "    for i = 1, byte() % 6 do a[i] = value(depth + 1) end\n"
  "    return a\n"
  "  elseif t == 9 and depth < 4 then\n"
  "    local m = {}\n"
  "    for _ = 1, byte() % 6 do\n"
  "      local kb = byte()\n"
  "      local k = kb < 200 and WORDS[kb % #WORDS + 1] or (kb - 200)\n"
  "      m[k] = value(depth + 1)\n"
  "    end\n"
  "    return m\n"
  "  elseif t == 10 then return b >= 128 and io.stderr or function() end\n"
  "  elseif t == 11 then return setmetatable({}, { __index = function() error('boom') end })\n"
  "  else\n"
  "    local n = byte() % 8\n"
  "    local str = s:sub(pos + 1, pos + n)\n"
  "    pos = pos + n\n"
  "    return str\n"
  "  end\n"
  "end\n"
  "local function check(fname, ok, err)\n"
  "  if ok then return end\n"
  "  if getmetatable(err) == cp.Error then return end\n"  /* *Sync: it did not start */
  "  if type(err) ~= 'string' then error(fname .. ': non-string error: ' .. tostring(err), 0) end\n"
  "  if not (err:find('bad argument', 1, true) and err:find(fname, 1, true))\n"
  "     and not err:find('boom', 1, true) then\n"
  "    error(fname .. ': not a bad-argument error: ' .. err, 0)\n"
  "  end\n"
  "end\n"
  "local NAMES = { 'spawn', 'exec', 'execFile', 'fork', 'spawnSync', 'execSync', 'execFileSync' }\n"
  "local fname = NAMES[byte() % #NAMES + 1]\n"
  "local n = byte() % 5\n"
  "local a = {}\n"
  "for i = 1, n do a[i] = value(0) end\n"
  "if byte() % 2 == 0 then a[n + 1] = function() end end\n"
  "check(fname, pcall(cp[fname], table.unpack(a, 1, n + 1)))\n"
  /* what was deferred (the spawn's 'error' and 'close') runs now */
  "for _ = 1, 8 do\n"
  "  local ok, more = pcall(cp.run, 'nowait')\n"
  "  if ok and not more then break end\n"
  "end\n";

static lua_State *L;
static int driver_ref;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "childproc", luaopen_childproc, 0);
    lua_setglobal(L, "cp");
    /* nothing is started: every spawn fails as a missing command would,
    ** after the whole plan and stdio were made */
    luaL_requiref(L, "childproc.internal", luaopen_childproc_internal, 0);
    lua_getfield(L, -1, "core");
    lua_setglobal(L, "core");
    lua_pop(L, 1);
    if (luaL_dostring(L, "core.spawn = function() return nil, 2, 'spawn' end") != 0)
      abort();
    if (luaL_loadbuffer(L, driver, sizeof driver - 1, "=fuzz_plan") != 0) {
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
      abort();
    }
    driver_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
  lua_getglobal(L, "cp");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    fprintf(stderr, "fuzz_plan: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  return 0;
}
