/*
** childproc: the one internal header.
** The C core is a set of small functions gathered in the internal table
** `core`; the Lua layer (lua/ files, compiled into the module) builds the
** Node-like objects on top of it.
*/
#ifndef CP_H
#define CP_H

#include <lua.h>
#include <lauxlib.h>

#include "compat.h"

#define CP_API __attribute__((visibility("hidden")))

#define CP_VERSION "0.1.0"

/* metatable names */
#define CP_LOOP_MT    "childproc.core.Loop"

/* largest chunk one read() call returns to Lua */
#define CP_READ_MAX (256 * 1024)

/*
** One nesting limit for both codecs, encode and decode alike: a table
** (JSON array or object) at the top level has depth 1, and a message
** with a table nested deeper than CP_MAX_DEPTH is refused with
** "excessive nesting (200)". It bounds the C recursion of the encoders
** and decoders (each level uses a few hundred bytes of C stack and a
** few Lua stack slots), so hostile input cannot overflow either stack.
*/
#define CP_MAX_DEPTH 200

/*
** The state's core: one per Lua state, created by luaopen_childproc and
** kept as upvalue 1 of every core function.  It owns every fd the core
** hands out (`kind`), so that lua_close can release them even if Lua
** never did.  (The event loops are objects of their own: src/loop.c.)
*/
/* CP_FD_PIPE_GROWN: a pipe core.read has tried to grow (see fd.c) */
enum { CP_FD_NONE = 0, CP_FD_PLAIN, CP_FD_PIPE, CP_FD_PIPE_GROWN, CP_FD_SOCK,
       CP_FD_PIDFD };

typedef struct cp_Loop {
  int nowned;               /* size of `kind` */
  unsigned char *kind;      /* kind[fd]: CP_FD_* */
  void *stack;              /* the spawn child's stack, made once */
  char *rbuf;               /* read buffer (CP_READ_MAX), made once */
  size_t stacksize;
  const void *srcmt;        /* the last wait source's metatable and */
  const void *srcvt;        /* its cp_waitsrc (see loop.c) */
  int nospin;               /* the last spin found nothing (see loop.c) */
} cp_Loop;

#define cp_getloop(L) ((cp_Loop *)lua_touserdata((L), lua_upvalueindex(1)))

/* record or forget an fd the core owns */
CP_API int cp_own(cp_Loop *lp, int fd, int kind);
CP_API void cp_disown(cp_Loop *lp, int fd);

/* with [core, loop] on top: add funcs to core, each with loop as upvalue */
static inline void cp_setfuncs(lua_State *L, const luaL_Reg *funcs) {
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, funcs, 1);
  lua_pop(L, 1);
}

/* with [core, loop] on top: core[field] = { name = value, ... } for the
** list, which ends with a NULL name (the C numbers the Lua layer uses) */
typedef struct cp_Int { const char *name; lua_Integer value; } cp_Int;
static inline void cp_setints(lua_State *L, const char *field,
                              const cp_Int *list) {
  lua_newtable(L);
  for (; list->name != NULL; list++) {
    lua_pushinteger(L, list->value);
    lua_setfield(L, -2, list->name);
  }
  lua_setfield(L, -3, field);
}

/* each file adds its functions to the core table; the stack holds
** [core, loop] on entry and on exit (cp_loop_open pushes the loop) */
CP_API void cp_loop_open(lua_State *L);
CP_API void cp_fd_open(lua_State *L);
CP_API void cp_spawn_open(lua_State *L);
CP_API void cp_object_open(lua_State *L);
CP_API void cp_sys_open(lua_State *L);
CP_API void cp_pty_open(lua_State *L);
CP_API void cp_handle_open(lua_State *L);
/* the codecs and the channel: their functions take the core table on
** top (no loop), frame before channel (which adds to its methods) */
CP_API void cp_lua_encode_open(lua_State *L);
CP_API void cp_json_open(lua_State *L);
CP_API void cp_ring_open(lua_State *L);
CP_API void cp_frame_open(lua_State *L);
CP_API void cp_channel_open(lua_State *L);

/* The full userdata at idx if its metatable is the one at upvalue upidx
** (a pointer comparison: no lookup of a name in the registry), else NULL */
static inline void *cp_testclass(lua_State *L, int idx, int upidx) {
  int same = 0;
  if (lua_type(L, idx) == LUA_TUSERDATA && lua_getmetatable(L, idx)) {
    same = lua_rawequal(L, -1, lua_upvalueindex(upidx));
    lua_pop(L, 1);
  }
  return same ? lua_touserdata(L, idx) : NULL;
}

/* cp_testclass, else luaL_checkudata's error naming tname */
static inline void *cp_checkclass(lua_State *L, int idx, int upidx,
                                  const char *tname) {
  void *p = cp_testclass(L, idx, upidx);
  return p != NULL ? p : luaL_checkudata(L, idx, tname);
}

/* raises a method's "bad argument #1" for a value at 1 that is not an
** object of class tname; level: the method's stack level (src/object.c) */
CP_API int cp_self_error(lua_State *L, const char *tname, int level,
                         const char *mname);

/* push an errno's symbolic name ('ENOENT'), or 'E<number>' */
CP_API const char *cp_errname(int err);

/* push core.errno: { ENOENT = 2, ... }, the names cp_errname knows */
CP_API void cp_push_errnos(lua_State *L);

/* return `nil, errno` from a binding */
CP_API int cp_fail(lua_State *L, int err);

#endif
