/*
** fuzz_json.c: libFuzzer target for the 'json' codec alone (src/json.c,
** src/buf.c). The input is lines of text: each (without its "\n", and
** a "\r" before it) is decoded (cp_json_decode) to a value or an error
** message, never a crash; a value is encoded again (core.json_encode),
** which must not fail, and that line must decode to an equal value.
** (The framing of lines: fuzz_frame.c.)
*/
#include "fuzz_common.h"
#include "json.h"

static const char driver[] =
  "local core, s = ...\n"
  "local kind, null = 'json', core.json_null\n"
  FUZZ_EQUAL
  "for line in s:gmatch('([^\\n]*)\\n?') do\n"
  "  if line:sub(-1) == '\\r' then line = line:sub(1, -2) end\n"
  "  local v, err = core.decode(line)\n"
  "  if v == nil then\n"
  "    assert(type(err) == 'string' and #err > 0, 'no message')\n"
  "  else\n"
  "    local t = core.json_encode(v)\n"
  "    assert(t:sub(-1) == '\\n' and not t:sub(1, -2):find('\\n'), 'not a line')\n"
  "    local v2, err2 = core.decode(t:sub(1, -2))\n"
  "    assert(v2 ~= nil, err2)\n"
  "    assert(equal(v, v2, {}), 'round trip changed the value')\n"
  "  end\n"
  "end\n";

/* core.decode(text) -> value | nil, msg */
static int fuzz_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char err[160];
  if (cp_json_decode(L, s, n, err, sizeof err)) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state(driver, sizeof(driver) - 1);
  lua_newtable(L);
  cp_json_open(L);
  lua_pushcfunction(L, fuzz_decode);
  lua_setfield(L, -2, "decode");
  lua_pushlstring(L, (const char *)data, size);
  fuzz_call(L, 2);
  return 0;
}
