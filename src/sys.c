/*
** Facts about this process: ids, environment, interpreter path, signals.
*/
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cp.h"

extern char **environ;

#define CP_SIGNALS(X) \
  X(SIGHUP) X(SIGINT) X(SIGQUIT) X(SIGILL) X(SIGTRAP) X(SIGABRT) X(SIGBUS) \
  X(SIGFPE) X(SIGKILL) X(SIGUSR1) X(SIGSEGV) X(SIGUSR2) X(SIGPIPE) \
  X(SIGALRM) X(SIGTERM) X(SIGSTKFLT) X(SIGCHLD) X(SIGCONT) X(SIGSTOP) \
  X(SIGTSTP) X(SIGTTIN) X(SIGTTOU) X(SIGURG) X(SIGXCPU) X(SIGXFSZ) \
  X(SIGVTALRM) X(SIGPROF) X(SIGWINCH) X(SIGIO) X(SIGPWR) X(SIGSYS)

/* core.signals: { SIGTERM = 15, [15] = 'SIGTERM', ... } */
static void push_signals(lua_State *L) {
  lua_newtable(L);
#define CP_SIGSET(s) \
  lua_pushinteger(L, s); lua_setfield(L, -2, #s); \
  lua_pushstring(L, #s); lua_rawseti(L, -2, s);
  CP_SIGNALS(CP_SIGSET)
#undef CP_SIGSET
}

static int sys_getpid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

static int sys_getppid(lua_State *L) {
  lua_pushinteger(L, getppid());
  return 1;
}

/* core.environ() -> { NAME = value } */
static int sys_environ(lua_State *L) {
  char **e;
  lua_newtable(L);
  for (e = environ; *e != NULL; e++) {
    const char *eq = strchr(*e, '=');
    if (eq == NULL) continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_pushstring(L, eq + 1);
    lua_rawset(L, -3);
  }
  return 1;
}

/* core.exepath() -> the running executable (the Lua interpreter) */
static int sys_exepath(lua_State *L) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) return cp_fail(L, errno);
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

/* core.cwd() -> the current directory */
static int sys_cwd(lua_State *L) {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) == NULL) return cp_fail(L, errno);
  lua_pushstring(L, buf);
  return 1;
}

/* core.chdir(path) -> true | nil, errno (a launcher's remote side) */
static int sys_chdir(lua_State *L) {
  if (chdir(luaL_checkstring(L, 1)) != 0) return cp_fail(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.setenv(name, value|nil): a forked child hides its channel's
** variables from the processes it starts, as Node does */
static int sys_setenv(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int r = lua_isnoneornil(L, 2) ? unsetenv(name)
        : setenv(name, luaL_checkstring(L, 2), 1);
  if (r != 0) return cp_fail(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.sopath() -> the absolute path of this module's shared object, or
** nil (a forked 'lua' child loads the very same file) */
static int sys_sopath(lua_State *L) {
  Dl_info info;
  char buf[PATH_MAX];
  if (dladdr((void *)sys_sopath, &info) == 0 || info.dli_fname == NULL ||
      realpath(info.dli_fname, buf) == NULL)
    return 0;
  lua_pushstring(L, buf);
  return 1;
}

static const luaL_Reg sys_funcs[] = {
  {"getpid", sys_getpid}, {"getppid", sys_getppid}, {"environ", sys_environ},
  {"exepath", sys_exepath}, {"cwd", sys_cwd}, {"chdir", sys_chdir},
  {"setenv", sys_setenv}, {"sopath", sys_sopath},
  {NULL, NULL}
};

CP_API void cp_sys_open(lua_State *L) {
  cp_setfuncs(L, sys_funcs);
  push_signals(L);
  lua_setfield(L, -3, "signals");
}
