/*
** childproc: Node's child_process for Lua.
** luaopen_childproc builds the internal `core` table from the C files in
** src/, then runs the Lua layer (lua/ files, embedded at build time) with
** it; the last chunk returns the public module table.
*/
#include <string.h>

#include "cp.h"
#include "lua_chunks.h"

__attribute__((visibility("default"))) int luaopen_childproc(lua_State *L);

/* Pushes chunk i: its bytecode when this build's Lua is the release that
** made it and takes it, else its source.  Returns 1 for the bytecode. */
static int load_chunk(lua_State *L, int i) {
  const char *src = cp_chunks[i].src;
  if (strcmp(CP_LUA_RELEASE, CP_CHUNKS_RELEASE) == 0) {
    if (luaL_loadbufferx(L, cp_chunks[i].bc, cp_chunks[i].bclen,
                         cp_chunks[i].name, "b") == LUA_OK)
      return 1;
    lua_pop(L, 1);
  }
  if (luaL_loadbufferx(L, src, strlen(src), cp_chunks[i].name, "t") != LUA_OK)
    lua_error(L);
  return 0;
}

int luaopen_childproc(lua_State *L) {
  int i, nbc = 0;
  lua_newtable(L);                          /* core */
  lua_pushliteral(L, CP_VERSION);
  lua_setfield(L, -2, "version");
  cp_loop_open(L);                          /* core loop */
  cp_fd_open(L);
  cp_spawn_open(L);
  cp_object_open(L);
  cp_sys_open(L);
  cp_pty_open(L);
  cp_handle_open(L);
  lua_pop(L, 1);                            /* core */
  cp_lua_encode_open(L);                    /* the codecs, the channel */
  cp_json_open(L);
  cp_ring_open(L);
  cp_frame_open(L);
  cp_channel_open(L);
  lua_newtable(L);                          /* core M: the layer's namespace */
  for (i = 0; cp_chunks[i].name != NULL; i++) {
    nbc += load_chunk(L, i);
    if (cp_chunks[i + 1].name == NULL) {      /* core.precompiled, for the */
      lua_pushboolean(L, nbc == i + 1);       /* specs: every chunk was */
      lua_setfield(L, -4, "precompiled");     /* loaded as bytecode */
    }
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_call(L, 2, 1);                      /* core M result */
    if (cp_chunks[i + 1].name != NULL) lua_pop(L, 1);
  }
  return 1;                                 /* the last chunk's module */
}
