/*
** fuzz_common.h: the body shared by the two libFuzzer targets. Each
** input is one byte choosing how to slice the rest, then the bytes fed
** to a decoder made by core.decoder, exactly as the channel does. Every
** value decoded is encoded again, and that must decode to an equal
** value ('lua': core.lua_send's pieces must make the same frame as
** core.lua_encode; build with -DCP_SEG_MIN=4 so that most strings become
** pieces of their own); any Lua error in this check (not a nil, msg from feed, which is
** the expected answer to bad bytes) aborts, so libFuzzer reports it.
** 'lua' decoders get a bulk ring (-DCP_RING_MIN=16: most values take
** it): the fuzzed bytes' ring references are checked against it, and
** every value must also come back whole through a writer's ring.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_driver[] =
  "local core, kind, slices = ...\n"
  "local null = core.json_null\n"
  "local function equal(a, b, map)\n"
  "  if kind == 'json' and (a == math.huge or a == -math.huge) then\n"
  "    return b == null\n"  /* JSON writes inf as null, as Node does */
  "  end\n"
  "  local ta, tb = type(a), type(b)\n"
  "  if ta ~= tb then return false end\n"
  "  if ta == 'number' then\n"
  "    if math.type(a) ~= math.type(b) then return false end\n"
  "    if a ~= a then return b ~= b end\n"
  "    return a == b and (a ~= 0 or 1/a == 1/b)\n"
  "  end\n"
  "  if ta ~= 'table' then return a == b end\n"
  "  if map[a] ~= nil then return rawequal(map[a], b) end\n"
  "  map[a] = b\n"
  "  local na, nb = 0, 0\n"
  "  for k, v in next, a do\n"
  "    na = na + 1\n"
  "    if type(k) ~= 'table' then\n"
  "      local w = rawget(b, k)\n"
  "      if w == nil or not equal(v, w, map) then return false end\n"
  "    end\n"
  "  end\n"
  "  for _ in next, b do nb = nb + 1 end\n"
  "  return na == nb\n"
  "end\n"
  "local ring, w, r\n"
  "local dec = core.decoder(kind, 1 << 20)\n"
  "if kind == 'lua' then\n"
  "  local fd = assert(core.ring_new(64 * 1024))\n"
  "  w, r = core.decoder('lua'), core.decoder('lua')\n"
  "  assert(w:ring(fd, 0) and r:ring(fd, 1) and dec:ring(fd, 1))\n"
  "  core.close(fd)\n"
  "end\n"
  "local got, out = {}, {}\n"
  "for _, s in ipairs(slices) do\n"
  "  local n, err, m = dec:feed(s, out)\n"
  "  if n == nil then\n"
  "    assert(type(err) == 'string' and math.type(m) == 'integer')\n"
  "    for i = 1, m do got[#got + 1] = out[i] end\n"
  "    local n2, err2 = dec:feed('x', {})\n"
  "    assert(n2 == nil and err2 == err, 'decoder not dead')\n"
  "    break\n"
  "  end\n"
  "  for i = 1, n do got[#got + 1] = out[i] end\n"
  "end\n"
  "local encode = kind == 'lua' and core.lua_encode or core.json_encode\n"
  "for _, v in ipairs(got) do\n"
  "  local ok, s = pcall(encode, v)\n"
  /* a shared table may be reached by a deeper path when re-encoded */
  "  if not ok then\n"
  "    assert(kind == 'lua' and s == 'excessive nesting (200)', s)\n"
  "  else\n"
  "    local d2, o2 = core.decoder(kind), {}\n"
  "    local n, err = d2:feed(s, o2)\n"
  "    assert(n == 1, err or 'not one value')\n"
  "    assert(d2:pending() == 0, 'bytes left')\n"
  "    assert(equal(v, o2[1], {}), 'round trip changed the value')\n"
  /* lua_send's pieces (long strings left as they are) make the same frame */
  "    if kind == 'lua' then\n"
  "      local function cat(st, off, ...)\n"
  "        local t = ''\n"
  "        for i = 1, select('#', ...) do t = t .. select(i, ...) end\n"
  "        return st, off, t\n"
  "      end\n"
  "      local st, off, t = cat(core.lua_send(false, v))\n"
  "      assert(st == 0 and off == 0 and t == s, 'lua_send differs')\n"
  /* through the ring (or whole, when it does not fit) */
  "      local o3 = {}\n"
  "      st, off, t = cat(core.lua_send(false, v, w))\n"
  "      assert(r:feed(t, o3) == 1 and equal(v, o3[1], {}), 'ring changed the value')\n"
  "    end\n"
  "  end\n"
  "end\n";

/*
** data[0] & 3 picks the slicing: whole, byte by byte, chunks of
** (data[0] >> 2) + 1 bytes, or two pieces cut at a point set by
** data[0] >> 2; slicing must never change what is decoded.
*/
/* core.close for the driver (the codecs' core has no fd functions) */
static int fuzz_close(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

static int fuzz_run(const char *kind, const uint8_t *data, size_t size) {
  lua_State *L;
  size_t i, step, cut;
  lua_Integer n = 0;
  if (size < 1) return 0;
  L = luaL_newstate();
  luaL_requiref(L, "_G", luaopen_base, 1);
  luaL_requiref(L, "math", luaopen_math, 1);
  lua_settop(L, 0);
  if (luaL_loadbuffer(L, fuzz_driver, sizeof(fuzz_driver) - 1, "=driver")) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    abort();
  }
  lua_newtable(L);
  cp_codec_open(L);
  lua_pushcfunction(L, fuzz_close);
  lua_setfield(L, -2, "close");
  lua_pushstring(L, kind);
  lua_newtable(L);
  data++;
  size--;
  switch (data[-1] & 3) {
    case 0: step = size ? size : 1; cut = 0; break;
    case 1: step = size > 4096 ? 64 : 1; cut = 0; break;
    case 2: step = (size_t)(data[-1] >> 2) + 1; cut = 0; break;
    default: step = 0; cut = size * (size_t)(data[-1] >> 2) / 64; break;
  }
  if (step == 0) {
    lua_pushlstring(L, (const char *)data, cut);
    lua_rawseti(L, -2, ++n);
    lua_pushlstring(L, (const char *)data + cut, size - cut);
    lua_rawseti(L, -2, ++n);
  }
  else {
    for (i = 0; i < size; i += step) {
      lua_pushlstring(L, (const char *)data + i,
                      size - i < step ? size - i : step);
      lua_rawseti(L, -2, ++n);
    }
  }
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    fprintf(stderr, "fuzz check failed: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_close(L);
  return 0;
}
