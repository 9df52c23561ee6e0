/*
** childproc: Node's child_process for Lua.
** luaopen_childproc builds the internal `core` table from the C files in
** src/, then runs the Lua layer (lua/ files, embedded at build time) with
** it; the last chunk returns the public module table.
** luaopen_childproc_internal (require 'childproc.internal': Lua's
** all-in-one loader finds it in childproc.so) returns that layer's
** namespace M, M.core the C table: for fork's bootstrap, a launcher's
** remote side and the specs, never in the public table.
*/
#include <string.h>

#include "cp.h"
#include "lua_chunks.h"

__attribute__((visibility("default"))) int luaopen_childproc(lua_State *L);
__attribute__((visibility("default"))) int luaopen_childproc_internal(lua_State *L);

/* the registry's key for this state's M (a string: a second copy of the
** shared object finds the M already loaded, not a second one) */
#define CP_INTERNAL "childproc.internal"

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
  lua_pushvalue(L, -3);
  lua_setfield(L, -3, "core");              /* M.core */
  lua_pushvalue(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, CP_INTERNAL);
  return 1;                                 /* the last chunk's module */
}

/* The M of the module loaded in this state; when there is none, loads
** the module first (package.loaded.childproc, unless a copy is there). */
int luaopen_childproc_internal(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CP_INTERNAL);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  lua_pushcfunction(L, luaopen_childproc);
  lua_call(L, 0, 1);                        /* cp */
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_getfield(L, -1, "childproc");
  if (lua_isnil(L, -1)) {
    lua_pushvalue(L, -3);
    lua_setfield(L, -3, "childproc");
  }
  lua_getfield(L, LUA_REGISTRYINDEX, CP_INTERNAL);
  return 1;
}
