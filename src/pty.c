/*
** Pseudo-terminals for `pty = true` children (lua/pty.lua): a new pair
** with its window size set before the child starts, resizing, and the
** terminal's foreground process group.  The child side (setsid and
** TIOCSCTTY before exec) is CP_SPAWN_CTTY in src/spawn.c.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "cp.h"

static struct winsize winsize_of(lua_State *L, int idx) {
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_col = (unsigned short)luaL_checkinteger(L, idx);
  ws.ws_row = (unsigned short)luaL_checkinteger(L, idx + 1);
  return ws;
}

/* nil, errno, the call that failed */
static int fail_at(lua_State *L, int err, const char *call) {
  lua_pushnil(L);
  lua_pushinteger(L, err);
  lua_pushstring(L, call);
  return 3;
}

/*
** core.openpty(cols, rows) -> master, slave | nil, errno, call
** Both close-on-exec and owned by the core; the master non-blocking (the
** loop watches it), the slave blocking (the child's stdio), neither our
** controlling terminal.
*/
static int pty_open(lua_State *L) {
  cp_Loop *lp = cp_getloop(L);
  struct winsize ws = winsize_of(L, 1);
  const char *call = "posix_openpt";
  char name[64];
  int m, s = -1, err;
  m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (m < 0) return fail_at(L, errno, call);
  if (grantpt(m) != 0) { call = "grantpt"; goto fail; }
  if (unlockpt(m) != 0) { call = "unlockpt"; goto fail; }
  /* by its name, not TIOCGPTPEER: valgrind knows no such ioctl */
  call = "ptsname";
  if (ptsname_r(m, name, sizeof name) != 0) goto fail;
  call = "open";
  s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) goto fail;
  call = "ioctl";
  if (ioctl(m, TIOCSWINSZ, &ws) != 0) goto fail;
  if ((err = cp_own(lp, m, CP_FD_PLAIN)) != 0) {
    errno = err;
    goto fail;
  }
  if ((err = cp_own(lp, s, CP_FD_PLAIN)) != 0) {
    cp_disown(lp, m);
    errno = err;
    goto fail;
  }
  lua_pushinteger(L, m);
  lua_pushinteger(L, s);
  return 2;
fail:
  err = errno;
  if (s >= 0) close(s);
  close(m);
  return fail_at(L, err, call);
}

/* core.pty_resize(master, cols, rows) -> true | nil, errno (the kernel
** sends SIGWINCH to the terminal's foreground group when the size changes) */
static int pty_resize(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  struct winsize ws = winsize_of(L, 2);
  if (ioctl(fd, TIOCSWINSZ, &ws) != 0) return cp_fail(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.pty_fgpgrp(master) -> the foreground process group | nil, errno */
static int pty_fgpgrp(lua_State *L) {
  pid_t g = tcgetpgrp((int)luaL_checkinteger(L, 1));
  if (g < 0) return cp_fail(L, errno);
  lua_pushinteger(L, g);
  return 1;
}

static const luaL_Reg pty_funcs[] = {
  {"openpty", pty_open}, {"pty_resize", pty_resize},
  {"pty_fgpgrp", pty_fgpgrp}, {NULL, NULL}
};

CP_API void cp_pty_open(lua_State *L) {
  cp_setfuncs(L, pty_funcs);
}
