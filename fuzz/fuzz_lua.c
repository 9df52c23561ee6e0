/*
** fuzz_lua.c: libFuzzer target for the 'lua' codec alone
** (src/lua_decode.c, src/lua_encode.c, src/buf.c). The input is one
** payload: decoded (cp_lua_decode), it is a value or an error message,
** never a crash; a value is encoded again (core.lua_encode, built with
** -DCP_SEG_MIN=4 so that most strings become segments of their own),
** and that frame's header and payload must decode to an equal value.
** (The framing, the rings and lua_send: fuzz_frame.c.)
*/
#include "fuzz_common.h"
#include "lua_wire.h"

static const char driver[] =
  "local core, s = ...\n"
  "local kind, null = 'lua', nil\n"
  FUZZ_EQUAL
  "local v, err = core.decode(s)\n"
  "if v == nil then\n"
  "  assert(type(err) == 'string' and #err > 0, 'no message')\n"
  "  return\n"
  "end\n"
  /* a shared table may be reached by a deeper path when re-encoded */
  "local ok, f = pcall(core.lua_encode, v)\n"
  "if not ok then\n"
  "  assert(f == 'excessive nesting (200)', f)\n"
  "  return\n"
  "end\n"
  "assert(string.unpack('<I4', f) == #f - 4, 'bad header')\n"
  "local v2, err2 = core.decode(f:sub(5))\n"
  "assert(v2 ~= nil, err2)\n"
  "assert(equal(v, v2, {}), 'round trip changed the value')\n";

/* core.decode(payload) -> value | nil, msg */
static int fuzz_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char err[160];
  if (cp_lua_decode(L, s, n, err, sizeof err)) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state(driver, sizeof(driver) - 1);
  lua_newtable(L);
  cp_lua_encode_open(L);
  lua_pushcfunction(L, fuzz_decode);
  lua_setfield(L, -2, "decode");
  lua_pushlstring(L, (const char *)data, size);
  fuzz_call(L, 2);
  return 0;
}
