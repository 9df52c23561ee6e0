/*
** File descriptors as plain integers for the Lua layer.  Every fd made
** here is close-on-exec and recorded in the loop's ownership table; the
** ends the loop watches are made non-blocking by the caller (nonblock),
** except the sockets of stdio pairs: they stay blocking, for the children
** they may be lent to, and this side reads and writes them with
** MSG_DONTWAIT.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "cp.h"

static int own2(lua_State *L, cp_Loop *lp, int fds[2], int kind) {
  int err = cp_own(lp, fds[0], kind);
  if (err == 0) err = cp_own(lp, fds[1], kind);
  if (err != 0) {
    cp_disown(lp, fds[0]);
    close(fds[0]);
    close(fds[1]);
    return cp_fail(L, err);
  }
  lua_pushinteger(L, fds[0]);
  lua_pushinteger(L, fds[1]);
  return 2;
}

/* push a new fd (or the errno of the call that failed to make it), now
** owned by the core */
static int push_owned(lua_State *L, int fd) {
  int err;
  if (fd < 0) return cp_fail(L, errno);
  if ((err = cp_own(cp_getloop(L), fd, CP_FD_PLAIN)) != 0) {
    close(fd);
    return cp_fail(L, err);
  }
  lua_pushinteger(L, fd);
  return 1;
}

/* core.pipe() -> rfd, wfd */
static int fd_pipe(lua_State *L) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return cp_fail(L, errno);
  return own2(L, cp_getloop(L), fds, CP_FD_PIPE);
}

/*
** core.stdio_pair(fd) -> mine, theirs: the pair for a 'pipe' stdio entry
** of child fd `fd`. fd 1 and 2: a pipe (mine reads), `mine` non-blocking
** (a fresh fd has no other status flag: one F_SETFL does); others: a
** socketpair, both ends blocking (`mine` may be lent to another child,
** which then shares its flags: core.read and core.write use MSG_DONTWAIT
** on it).
*/
static int fd_stdio_pair(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  int fds[2], kind = (fd == 1 || fd == 2) ? CP_FD_PIPE : CP_FD_SOCK;
  if ((kind == CP_FD_PIPE ? pipe2(fds, O_CLOEXEC)
       : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)) != 0)
    return cp_fail(L, errno);
  if (kind == CP_FD_PIPE && fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return cp_fail(L, err);
  }
  return own2(L, cp_getloop(L), fds, kind);
}

/* core.socketpair() -> fd, fd (stream sockets, for message channels) */
static int fd_socketpair(lua_State *L) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return cp_fail(L, errno);
  return own2(L, cp_getloop(L), fds, CP_FD_SOCK);
}

/* core.own(fd) -> fd | nil, errno: an fd made elsewhere (a ring's memfd)
** owned by the core from now on, so that lua_close closes it even when a
** raise (out of memory) lost it before it was given to a child */
static int fd_own(lua_State *L) {
  return push_owned(L, (int)luaL_checkinteger(L, 1));
}

/* core.eventfd() -> fd: a non-blocking eventfd, a channel's doorbell */
static int fd_eventfd(lua_State *L) {
  return push_owned(L, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

/* core.open(path, 'r'|'w'|'rw') -> fd */
static int fd_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  int flags = strcmp(mode, "rw") == 0 ? O_RDWR
            : strcmp(mode, "w") == 0 ? O_WRONLY : O_RDONLY;
  return push_owned(L, open(path, flags | O_CLOEXEC));
}

/* core.dup(fd) -> a close-on-exec copy owned by the core */
static int fd_dup(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  return push_owned(L, fcntl(fd, F_DUPFD_CLOEXEC, 3));
}

/* core.dup2(fd, to): fd copied onto `to` (0-2 included, not close-on-exec:
** a launcher's remote side points its stdin and stdout elsewhere) */
static int fd_dup2(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1), to = (int)luaL_checkinteger(L, 2);
  int r;
  do r = dup2(fd, to); while (r < 0 && errno == EINTR);
  if (r < 0) return cp_fail(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.close(fd): 0-2 are never closed (they belong to the host) */
static int fd_close(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  if (fd > 2) {
    cp_disown(cp_getloop(L), fd);
    close(fd);
  }
  return 0;
}

/*
** core.lend(fd, 'r'|'w') -> the fd a child gets for this side's fd, and
** true when it is a new one (to close once the child runs).  A pipe is
** opened again through /proc/self/fd: a new open file description,
** blocking for the child whatever this side's flags (O_NONBLOCK belongs
** to the description, not the fd).  Anything else is shared as it is (a
** stdio socket of ours is blocking already; a file or a terminal is the
** user's).  nil, errno on failure.
*/
static int fd_lend(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  int wr = luaL_checkstring(L, 2)[0] == 'w';
  char path[32];
  struct stat st;
  int nfd, fl;
  if (fstat(fd, &st) != 0) return cp_fail(L, errno);
  if (S_ISFIFO(st.st_mode)) {
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    /* (O_NONBLOCK: never wait for the other side, as a FIFO's open may) */
    nfd = open(path, (wr ? O_WRONLY : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
    if (nfd >= 0) {
      if ((fl = fcntl(nfd, F_GETFL)) < 0
          || fcntl(nfd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(nfd);
        return cp_fail(L, err);
      }
      if (push_owned(L, nfd) == 2) return 2;   /* nil, errno */
      lua_pushboolean(L, 1);
      return 2;
    }
    if (errno != ENOENT && errno != EACCES) return cp_fail(L, errno);
    /* no /proc: the description is shared, flags and all */
  }
  lua_pushinteger(L, fd);
  lua_pushboolean(L, 0);
  return 2;
}

/* core.nonblock(fd, on) */
static int fd_nonblock(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return cp_fail(L, errno);
  fl = lua_toboolean(L, 2) ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (fcntl(fd, F_SETFL, fl) != 0) return cp_fail(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.isopen(fd) -> boolean */
static int fd_isopen(lua_State *L) {
  lua_pushboolean(L, fcntl((int)luaL_checkinteger(L, 1), F_GETFD) >= 0);
  return 1;
}

#define PIPE_DEFAULT (64 * 1024)   /* Linux's pipe capacity */
#define PIPE_GROWN (256 * 1024)    /* a busy pipe's (read below) */

/*
** core.read(fd [, max]) -> string | nil (end of file) | false (would
** block) | nil, errno
*/
static int fd_read(lua_State *L) {
  cp_Loop *lp = cp_getloop(L);
  int fd = (int)luaL_checkinteger(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, CP_READ_MAX);
  ssize_t n;
  if (max <= 0 || max > CP_READ_MAX) max = CP_READ_MAX;
  /* one buffer per loop, made once: a read costs no allocation but the
  ** string it returns */
  if (lp->rbuf == NULL && (lp->rbuf = malloc(CP_READ_MAX)) == NULL)
    return cp_fail(L, ENOMEM);
  if (fd >= 0 && fd < lp->nowned && lp->kind[fd] == CP_FD_SOCK)
    do n = recv(fd, lp->rbuf, (size_t)max, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
  else
    do n = read(fd, lp->rbuf, (size_t)max); while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      lua_pushboolean(L, 0);
      return 1;
    }
    return cp_fail(L, err);
  }
  if (n == 0) {
    lua_pushnil(L);
    return 1;
  }
  /* A read that took a full default pipe (64 KiB) means the writer
  ** outpaces us: the pipe grows once, so each wake-up carries more (7%
  ** more MB/s measured at 128-256 KiB; 1 MiB was slower). Done only then:
  ** the kernel counts pipe capacity against the user's pipe-user-pages
  ** limit, and children that write little must not use it up. */
  if (n >= PIPE_DEFAULT && fd < lp->nowned && lp->kind[fd] == CP_FD_PIPE) {
    lp->kind[fd] = CP_FD_PIPE_GROWN;
    (void)fcntl(fd, F_SETPIPE_SZ, PIPE_GROWN);  /* EPERM past the limit: as is */
  }
  lua_pushlstring(L, lp->rbuf, (size_t)n);
  return 1;
}

/*
** Write without ever raising SIGPIPE in this process and without changing
** its disposition: SIGPIPE is blocked in this thread for the call, and a
** SIGPIPE the write itself raised is consumed before the mask comes back.
** Sockets need none of this (MSG_NOSIGNAL).
*/
static ssize_t write_nosigpipe(int fd, int kind, const char *p, size_t len) {
  sigset_t pipe_set, old, pending;
  ssize_t n;
  int err, was_pending;
  /* a socket, or an fd we know nothing of */
  if (kind != CP_FD_PIPE && kind != CP_FD_PIPE_GROWN) {
    n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0 || errno != ENOTSOCK) return n;
  }
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  n = write(fd, p, len);
  err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {}
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = err;
  return n;
}

/*
** core.write(fd, s [, offset]) -> bytes written | false (would block) |
** nil, errno.  `offset` (0-based) spares the Lua side a substring copy
** when it resumes a partial write.
*/
static int fd_write(lua_State *L) {
  cp_Loop *lp = cp_getloop(L);
  int fd = (int)luaL_checkinteger(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  lua_Integer off = luaL_optinteger(L, 3, 0);
  int kind = fd >= 0 && fd < lp->nowned ? lp->kind[fd] : CP_FD_NONE;
  ssize_t n;
  luaL_argcheck(L, off >= 0 && (size_t)off <= len, 3, "offset out of range");
  do n = write_nosigpipe(fd, kind, s + off, len - (size_t)off);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      lua_pushboolean(L, 0);
      return 1;
    }
    return cp_fail(L, errno);
  }
  lua_pushinteger(L, n);
  return 1;
}

/* core.fileno(file) -> the fd of a Lua file handle, or nil */
static int fd_fileno(lua_State *L) {
  FILE *f = cp_tofile(L, 1);
  if (f == NULL) return 0;
  fflush(f);
  lua_pushinteger(L, fileno(f));
  return 1;
}

/* core.errname(errno) -> 'ENOENT';  core.strerror(errno) -> text */
static int fd_errname(lua_State *L) {
  lua_pushstring(L, cp_errname((int)luaL_checkinteger(L, 1)));
  return 1;
}

static int fd_strerror(lua_State *L) {
  lua_pushstring(L, strerror((int)luaL_checkinteger(L, 1)));
  return 1;
}

static const luaL_Reg fd_funcs[] = {
  {"pipe", fd_pipe}, {"socketpair", fd_socketpair},
  {"eventfd", fd_eventfd}, {"own", fd_own},
  {"stdio_pair", fd_stdio_pair}, {"open", fd_open},
  {"dup", fd_dup}, {"dup2", fd_dup2}, {"close", fd_close},
  {"nonblock", fd_nonblock}, {"lend", fd_lend},
  {"isopen", fd_isopen}, {"read", fd_read},
  {"write", fd_write}, {"fileno", fd_fileno}, {"errname", fd_errname},
  {"strerror", fd_strerror}, {NULL, NULL}
};

CP_API void cp_fd_open(lua_State *L) {
  cp_setfuncs(L, fd_funcs);
  lua_pushinteger(L, CP_READ_MAX);  /* the most core.read returns */
  lua_setfield(L, -3, "READ_MAX");
  cp_push_errnos(L);                /* core.errno.EPIPE... (src/error.c) */
  lua_setfield(L, -3, "errno");
}
