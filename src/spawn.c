/*
** Starting a child without copying the parent's memory: clone() with
** CLONE_VM | CLONE_VFORK runs a small function on its own stack that sets
** up the child (signals, session, ids, cwd, fds) and execs.  The parent is
** suspended until that exec, so the cost is the same for a 1 MiB heap and a
** 10 GiB one.  The child's exit is then watched through a pidfd.
**
** The child side uses raw system calls only: it shares this process's
** memory, so it must not take libc locks, run signal handlers, or go
** through sanitizer interceptors.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "cp.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* clone() hands back the child's pidfd (CLONE_PIDFD, Linux 5.2): one
** pidfd_open fewer per spawn.  Asked for only once a child is known to
** share our memory (vm_shared: not under valgrind, which knows no other
** pidfd call), and no more if it is refused. */
static int clone_pidfd = 1;

#define CHILD_STACK (256 * 1024)

extern char **environ;

/* which step of the child failed, reported to the parent */
enum { STEP_EXEC = 1, STEP_CHDIR, STEP_SETUID, STEP_SETGID, STEP_SETSID,
       STEP_SETPGID, STEP_DUP, STEP_CTTY };

static const char *const step_names[] = {
  "", "spawn", "chdir", "setuid", "setgid", "setsid", "setpgid", "dup2", "ioctl"
};

/* everything the child needs, prepared by the parent */
typedef struct Plan {
  const char *file;    /* what to exec: a path, or a name to find in path */
  const char *path;    /* the PATH to search, or NULL when file has a '/' */
  char **argv;
  char **envp;
  const char *cwd;
  int *fdmap;          /* fdmap[i]: source for child fd i, or -1 */
  int nfd;
  int flags;           /* CP_SPAWN_* */
  long uid, gid;       /* -1: unchanged */
  int pdeathsig;       /* parentDeathSignal, or 0 */
  long ppid;           /* our pid, recorded before the clone */
  int errfd;           /* write end of the error pipe, or -1 */
  /* written by the child in our memory (CLONE_VM) */
  volatile int started, fstep, ferr;
} Plan;

/*
** Does the child really share our memory?  Under valgrind the clone is
** turned into a fork, so failures must come back through a pipe instead.
** -1 until the first spawn tells.
*/
static int vm_shared = -1;

#define CP_SPAWN_SETSID  1
#define CP_SPAWN_SETPGID 2
#define CP_SPAWN_CTTY    4   /* fd 0 becomes the controlling tty (pty) */

/* the kernel's struct sigaction for rt_sigaction */
struct ksigaction {
  void *handler;
  unsigned long flags;
  void *restorer;
  uint64_t mask;
};

__attribute__((noreturn))
__attribute__((no_sanitize("address", "undefined")))
static void child_fail(Plan *p, int step, int err) {
  int msg[2];
  p->ferr = err;
  p->fstep = step;
  msg[0] = step;
  msg[1] = err;
  if (p->errfd >= 0) syscall(SYS_write, p->errfd, msg, sizeof msg);
  syscall(SYS_exit_group, 127);
  for (;;) {}
}

#define SYSFAIL(step) child_fail(p, (step), errno)

__attribute__((no_sanitize("address", "undefined")))
static int child_main(void *arg) {
  Plan *p = (Plan *)arg;
  struct ksigaction dfl;
  uint64_t empty = 0;
  int i, sig, err = ENOENT;
  p->started = 1;

  /* default dispositions for every signal (the handlers of this process
  ** must not run in a child that shares its memory) */
  dfl.handler = NULL;  /* SIG_DFL */
  dfl.flags = 0;
  dfl.restorer = NULL;
  dfl.mask = 0;
  for (sig = 1; sig < 65; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(uint64_t));

  if ((p->flags & CP_SPAWN_SETSID) && syscall(SYS_setsid) < 0)
    SYSFAIL(STEP_SETSID);
  if ((p->flags & CP_SPAWN_SETPGID) && syscall(SYS_setpgid, 0, 0) < 0)
    SYSFAIL(STEP_SETPGID);
  if (p->gid >= 0 || p->uid >= 0)
    syscall(SYS_setgroups, 0, NULL);  /* may fail unprivileged: as libuv */
  if (p->gid >= 0 && syscall(SYS_setgid, p->gid) < 0) SYSFAIL(STEP_SETGID);
  if (p->uid >= 0 && syscall(SYS_setuid, p->uid) < 0) SYSFAIL(STEP_SETUID);
  if (p->cwd != NULL && syscall(SYS_chdir, p->cwd) < 0) SYSFAIL(STEP_CHDIR);
  /* after setuid (which clears it); a parent already gone has reparented
  ** us before the prctl could take: then the signal is ours at once (it
  ** is blocked until the mask is emptied below, SIGKILL is not) */
  if (p->pdeathsig > 0) {
    syscall(SYS_prctl, PR_SET_PDEATHSIG, (unsigned long)p->pdeathsig, 0, 0, 0);
    if (syscall(SYS_getppid) != p->ppid)
      syscall(SYS_kill, syscall(SYS_getpid), p->pdeathsig);
  }

  /* the parent made sure every source that is not already in place is
  ** numbered >= nfd, so no dup2 here clobbers a later source */
  for (i = 0; i < p->nfd; i++) {
    int src = p->fdmap[i];
    if (src == i) {
      if (syscall(SYS_fcntl, i, F_SETFD, 0) < 0) SYSFAIL(STEP_DUP);
    }
    else if (src >= 0) {
      if (syscall(SYS_dup3, src, i, 0) < 0) SYSFAIL(STEP_DUP);
    }
    else syscall(SYS_close, i);
  }
  /* a new session's leader takes its stdin terminal (lua/pty.lua) */
  if ((p->flags & CP_SPAWN_CTTY) && syscall(SYS_ioctl, 0, TIOCSCTTY, 0) < 0)
    SYSFAIL(STEP_CTTY);
  /* every other fd, even those opened without close-on-exec by the host,
  ** is closed by the exec (the error pipe stays usable until then) */
  if (syscall(SYS_close_range, p->nfd, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    for (i = p->nfd; i < 65536; i++) syscall(SYS_fcntl, i, F_SETFD, FD_CLOEXEC);
  }
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, sizeof empty);

  if (p->path == NULL) {
    syscall(SYS_execve, p->file, p->argv, p->envp);
    err = errno;
  }
  else {
    /* execvp's search, each candidate built on this stack: the parent
    ** makes no string per directory */
    char buf[PATH_MAX];
    const char *s = p->path, *f;
    for (;;) {
      const char *d = s;
      size_t n = 0;
      while (*s != '\0' && *s != ':') s++;
      if (s == d) buf[n++] = '.';  /* an empty entry: the current directory */
      else while (d < s && n < sizeof buf) buf[n++] = *d++;
      if (n < sizeof buf) buf[n++] = '/';
      for (f = p->file; *f != '\0' && n < sizeof buf; f++) buf[n++] = *f;
      if (n < sizeof buf) {
        buf[n] = '\0';
        syscall(SYS_execve, buf, p->argv, p->envp);
        if (errno == EACCES) err = EACCES;  /* as execvp: keep looking */
        else if (errno != ENOENT && errno != ENOTDIR) {
          err = errno;
          break;
        }
      }
      else {  /* what execve would say of a path that long */
        err = ENAMETOOLONG;
        break;
      }
      if (*s == '\0') break;
      s++;
    }
  }
  child_fail(p, STEP_EXEC, err);
  return 0;
}


/* {====================================================== plan building */

/* vectors of up to SMALL_VEC strings live on the C stack of cp_spawn: a
** spawn makes no garbage for them */
#define SMALL_VEC 32

/* array of strings at idx -> NULL-terminated vector: `small` (room for
** SMALL_VEC + 1 pointers) when it fits, else a userdata left on the stack
** (Lua owns it: a raise leaks nothing).  A string at idx is taken as a
** one-element array. */
static char **tovec(lua_State *L, int idx, const char *what, char **small) {
  size_t i, n, len;
  const char *s;
  char **v;
  if (lua_type(L, idx) == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &len);
    if (strlen(s) != len)
      luaL_error(L, "%s[1] must be a string without NUL bytes", what);
    small[0] = (char *)s;
    small[1] = NULL;
    return small;
  }
  n = lua_rawlen(L, idx);
  v = small;
  if (n > SMALL_VEC) v = (char **)cp_newuserdata(L, (n + 1) * sizeof(char *), 0);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    s = lua_tolstring(L, -1, &len);
    if (s == NULL || strlen(s) != len)
      luaL_error(L, "%s[%d] must be a string without NUL bytes", what, (int)i + 1);
    v[i] = (char *)s;
    lua_pop(L, 1);  /* still referenced by the table at idx */
  }
  v[n] = NULL;
  return v;
}

/* the PATH this spawn searches: the child's own, else ours; NULL when
** file names a path (execvp's rule: it holds a '/') */
static const char *search_path(const char *file, char **envp) {
  const char *path = NULL;
  char **e;
  if (strchr(file, '/') != NULL || file[0] == '\0') return NULL;
  for (e = envp; e != NULL && *e != NULL; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  if (path == NULL && envp == environ) path = getenv("PATH");
  return path != NULL ? path : "/usr/local/bin:/usr/bin:/bin";
}

/* }====================================================== */


/*
** core.spawn(file, argv, envp, cwd, fdmap, flags, uid, gid, pdeathsig)
**   -> pid, pidfd | nil, errno, step
** argv, envp: arrays of strings (envp nil: this process's environment;
** argv may be one string: the argv of a command without arguments);
** fdmap: fdmap[i+1] is the fd the child gets as fd i, or -1 for closed.
*/
static int cp_spawn(lua_State *L) {
  cp_Loop *lp = cp_getloop(L);
  Plan p;
  const char *file = luaL_checkstring(L, 1);
  char *argv[SMALL_VEC + 1], *envp[SMALL_VEC + 1];
  int i, pid, pidfd, askfd, errpipe[2], msg[2], extra[64], nextra = 0, err,
      fdmap[64];
  ssize_t got;
  sigset_t all, old;

  if (lua_type(L, 2) != LUA_TSTRING) luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  memset(&p, 0, sizeof p);
  /* read before tovec, which may push its vectors past the arguments */
  p.pdeathsig = (int)luaL_optinteger(L, 9, 0);
  p.ppid = (long)getpid();
  p.argv = tovec(L, 2, "argv", argv);
  p.envp = lua_istable(L, 3) ? tovec(L, 3, "env", envp) : environ;
  p.file = file;
  p.path = search_path(file, p.envp);
  p.cwd = luaL_optstring(L, 4, NULL);
  p.nfd = (int)lua_rawlen(L, 5);
  luaL_argcheck(L, p.nfd <= 64, 5, "too many stdio entries");
  p.fdmap = fdmap;
  for (i = 0; i < p.nfd; i++) {
    lua_rawgeti(L, 5, i + 1);
    p.fdmap[i] = (int)luaL_optinteger(L, -1, -1);
    lua_pop(L, 1);
  }
  p.flags = (int)luaL_optinteger(L, 6, 0);
  p.uid = (long)luaL_optinteger(L, 7, -1);
  p.gid = (long)luaL_optinteger(L, 8, -1);

  /* move sources that sit where another child fd goes out of the way */
  for (i = 0; i < p.nfd; i++) {
    int src = p.fdmap[i];
    if (src >= 0 && src != i && src < p.nfd) {
      int fd = fcntl(src, F_DUPFD_CLOEXEC, p.nfd);
      if (fd < 0) { err = errno; goto fail_extra; }
      extra[nextra++] = p.fdmap[i] = fd;
    }
  }

  /* the pipe is needed only while we do not know that the child shares
  ** our memory (the first spawn) or know that it does not (valgrind) */
  errpipe[0] = errpipe[1] = p.errfd = -1;
  if (vm_shared != 1) {
    if (pipe2(errpipe, O_CLOEXEC) != 0) { err = errno; goto fail_extra; }
    p.errfd = errpipe[1];
  }
  if (lp->stack == NULL) {
    void *st = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (st == MAP_FAILED) {
      err = errno;
      if (errpipe[0] >= 0) { close(errpipe[0]); close(errpipe[1]); }
      goto fail_extra;
    }
    lp->stack = st;
    lp->stacksize = CHILD_STACK;
  }
  /* no handler of ours may run in the child before it resets them */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pidfd = -1;
  askfd = clone_pidfd && vm_shared == 1;
  pid = clone(child_main, (char *)lp->stack + CHILD_STACK,
              CLONE_VM | CLONE_VFORK | SIGCHLD | (askfd ? CLONE_PIDFD : 0),
              &p, &pidfd);
  if (pid < 0 && errno == EINVAL && askfd) {  /* the flag refused: without */
    clone_pidfd = 0;
    pid = clone(child_main, (char *)lp->stack + CHILD_STACK,
                CLONE_VM | CLONE_VFORK | SIGCHLD, &p);
  }
  err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (errpipe[1] >= 0) close(errpipe[1]);
  for (i = 0; i < nextra; i++) close(extra[i]);
  nextra = 0;
  if (pid < 0) {
    if (errpipe[0] >= 0) close(errpipe[0]);
    return cp_fail(L, err);
  }
  if (vm_shared == -1) vm_shared = p.started ? 1 : 0;
  if (errpipe[0] >= 0) {
    /* end of file: the exec happened; a message: which step failed */
    do got = read(errpipe[0], msg, sizeof msg);
    while (got < 0 && errno == EINTR);
    close(errpipe[0]);
    if (got == (ssize_t)sizeof msg) {
      p.fstep = msg[0];
      p.ferr = msg[1];
    }
  }
  /* with CLONE_VFORK we run again only once the child has exec'd or
  ** exited, so p.fstep is final here */
  if (p.fstep != 0) {
    siginfo_t si;
    if (pidfd >= 0) close(pidfd);
    waitid(P_PID, (id_t)pid, &si, WEXITED);  /* our own child, by pid */
    lua_pushnil(L);
    lua_pushinteger(L, p.ferr);
    lua_pushstring(L, step_names[p.fstep <= STEP_CTTY ? p.fstep : 1]);
    return 3;
  }
  /* race-free: the child is ours and not reaped, so its pid is not reused */
  if (pidfd < 0) pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0 && errno == ENOSYS) {
    /* no pidfds (kernel < 5.3, or valgrind): the Lua side polls by pid */
    lua_pushinteger(L, pid);
    lua_pushnil(L);
    return 2;
  }
  if (pidfd < 0 || cp_own(lp, pidfd, CP_FD_PIDFD) != 0) {
    /* cannot watch it: do not leave it running unwatched */
    err = pidfd < 0 ? errno : ENOMEM;
    if (pidfd >= 0) close(pidfd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return cp_fail(L, err);
  }
  lua_pushinteger(L, pid);
  lua_pushinteger(L, pidfd);
  return 2;

fail_extra:
  for (i = 0; i < nextra; i++) close(extra[i]);
  return cp_fail(L, err);
}

/* reap one child of ours without blocking: nothing if it still runs,
** else code, nil (exited) or nil, signal (killed); false when somebody
** else in this process reaped it first (ECHILD: its status went with
** that reap, only its end is known) */
static int reap(lua_State *L, idtype_t type, id_t id) {
  siginfo_t si;
  /* peek (a true 2nd argument): the status, leaving the child waitable */
  int peek = lua_toboolean(L, 2) ? WNOWAIT : 0;
  memset(&si, 0, sizeof si);
  if (waitid(type, id, &si, WEXITED | WNOHANG | peek) != 0) {
    if (errno != ECHILD) return cp_fail(L, errno);
    lua_pushboolean(L, 0);  /* gone, reaped by the host (wait(-1)) */
    return 1;
  }
  if (si.si_pid == 0) return 0;
  if (si.si_code == CLD_EXITED) {
    lua_pushinteger(L, si.si_status);
    lua_pushnil(L);
  }
  else {
    lua_pushnil(L);
    lua_pushinteger(L, si.si_status);
  }
  return 2;
}

/* core.waitid(pidfd [, peek]): reaps through the pidfd only -> nil (running) |
** code, nil | nil, signum | false (reaped by someone else: unknown) */
static int cp_waitid(lua_State *L) {
  return reap(L, (idtype_t)P_PIDFD, (id_t)luaL_checkinteger(L, 1));
}

/* core.waitpid(pid [, peek]): the same for a child that has no pidfd; by its own
** pid, never -1 */
static int cp_waitpid(lua_State *L) {
  return reap(L, P_PID, (id_t)luaL_checkinteger(L, 1));
}

/* core.pidfd_kill(pidfd, sig) -> true | nil, errno */
static int cp_pidfd_kill(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  int sig = (int)luaL_checkinteger(L, 2);
  if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) != 0)
    return cp_fail(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.kill(pid, sig) -> true | nil, errno */
static int cp_kill(lua_State *L) {
  if (kill((pid_t)luaL_checkinteger(L, 1), (int)luaL_checkinteger(L, 2)) != 0)
    return cp_fail(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.getpgid(pid) -> pgid | nil, errno */
static int cp_getpgid(lua_State *L) {
  pid_t g = getpgid((pid_t)luaL_checkinteger(L, 1));
  if (g < 0) return cp_fail(L, errno);
  lua_pushinteger(L, g);
  return 1;
}

static const luaL_Reg spawn_funcs[] = {
  {"spawn", cp_spawn}, {"waitid", cp_waitid}, {"waitpid", cp_waitpid}, {"pidfd_kill", cp_pidfd_kill},
  {"kill", cp_kill}, {"getpgid", cp_getpgid}, {NULL, NULL}
};

static const cp_Int spawn_flags[] = {
  {"setsid", CP_SPAWN_SETSID}, {"setpgid", CP_SPAWN_SETPGID},
  {"ctty", CP_SPAWN_CTTY}, {NULL, 0}
};

CP_API void cp_spawn_open(lua_State *L) {
  cp_setfuncs(L, spawn_funcs);
  /* core.spawn_flags: { setsid = 1, setpgid = 2, ctty = 4 } (core.spawn's) */
  cp_setints(L, "spawn_flags", spawn_flags);
}
