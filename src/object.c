/*
** Objects of the Lua layer (ChildProcess, streams, timers, watchers) are
** userdata, so they carry a `childproc.X` metatable that names them in
** error messages, and so Lua code cannot confuse them with plain tables.
** Each holds one table (its uservalue) with its fields; methods live in
** the class's own table.
*/
#include <string.h>

#include "cp.h"

/* __index(u, k): the object's own fields first, then the class's methods,
** then the class's getter, if any: getter(fields, k, u) computes fields
** that most objects never have read (so they need not hold them) */
static int object__index(lua_State *L) {
  int hasfields = cp_getuservalue(L, 1) == LUA_TTABLE;   /* fields at 3 */
  if (hasfields) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_pop(L, 1);
  }
  lua_pushvalue(L, 2);
  if (lua_gettable(L, lua_upvalueindex(1)) != LUA_TNIL  /* methods may have a fallback */
      || !hasfields || lua_isnoneornil(L, lua_upvalueindex(2)))
    return 1;
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  lua_call(L, 3, 1);
  return 1;
}

/* __newindex(u, k, v): user keys go to the fields table */
static int object__newindex(lua_State *L) {
  if (cp_getuservalue(L, 1) != LUA_TTABLE) return 0;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

/*
** Raises "bad argument #1 to 'm' (tname expected, got ...)" for the value
** at 1 given as the object of a method m, located at the line that called
** m, the function at stack level 'level': 1 for self() (a method written
** in Lua calls it), 0 for a method in C.  m is mname, else the name its
** caller gave it.
*/
CP_API int cp_self_error(lua_State *L, const char *tname, int level,
                         const char *mname) {
  lua_Debug ar;
  const char *fname = mname, *got;
  int method = 0;
  if (lua_getstack(L, level, &ar) && lua_getinfo(L, "n", &ar)) {
    if (fname == NULL) fname = ar.name;
    method = ar.namewhat != NULL && strcmp(ar.namewhat, "method") == 0;
  }
  if (luaL_getmetafield(L, 1, "__name") == LUA_TSTRING)
    got = lua_tostring(L, -1);
  else if (lua_type(L, 1) == LUA_TLIGHTUSERDATA)
    got = "light userdata";
  else
    got = luaL_typename(L, 1);
  luaL_where(L, level + 1);
  /* as luaL_argerror: obj:m() does not count self */
  lua_pushfstring(L, method ? "%scalling '%s' on bad self (%s expected, got %s)"
                            : "%sbad argument #1 to '%s' (%s expected, got %s)",
                  lua_tostring(L, -1), fname ? fname : "?", tname, got);
  return lua_error(L);
}

/* the key under which the methods table (upvalue 3) holds the function
** at stack level 1, or NULL: a method is named as the API names it */
static const char *method_name(lua_State *L) {
  lua_Debug ar;
  const char *name = NULL;
  if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "f", &ar)) return NULL;
  lua_pushnil(L);
  while (lua_next(L, lua_upvalueindex(3))) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, -3)) {
      name = lua_tostring(L, -2);
      lua_pop(L, 2);
      break;
    }
    lua_pop(L, 1);
  }
  return name;   /* (a key of the methods table: it stays alive) */
}

/* self(u) -> fields table; raises cp_self_error for anything but an
** object of the class (upvalues: the class's name, metatable, methods) */
static int object_self(lua_State *L) {
  if (cp_testclass(L, 1, 2) == NULL)
    return cp_self_error(L, lua_tostring(L, lua_upvalueindex(1)), 1,
                         method_name(L));
  cp_getuservalue(L, 1);
  return 1;
}

/*
** core.class(name, methods [, meta]) -> metatable, self
** `meta` holds extra metamethods (__close, __tostring...) and may hold
** `__getter`, a function(fields, key, u) for keys neither the fields nor
** the methods have.  `self(u)` returns u's fields table after checking
** u's class.
*/
static int object_class(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_newmetatable(L, name);                     /* mt */
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  lua_pushvalue(L, 2);
  lua_getfield(L, -2, "__getter");
  lua_pushcclosure(L, object__index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, object__newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, object_self, 3);            /* mt, self */
  return 2;
}

/* core.object(mt, fields) -> a new userdata of that class */
static int object_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  cp_newuserdata(L, 0, 1);
  lua_pushvalue(L, 2);
  cp_setuservalue(L, -2);
  lua_pushvalue(L, 1);
  lua_setmetatable(L, -2);
  return 1;
}

static const luaL_Reg object_funcs[] = {
  {"class", object_class}, {"object", object_new}, {NULL, NULL}
};

CP_API void cp_object_open(lua_State *L) {
  cp_setfuncs(L, object_funcs);
}
