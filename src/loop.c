/*
** The event loops' kernel side: each loop object (core.loop_new()) is one
** epoll instance, level-triggered: the default loop, and the private ones
** the *Sync functions run their child on.  The scheduling (timers, ready
** queue, keep-alive counts) lives in lua/loop.lua; this file only waits
** and reports which fds are ready.
*/
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "cp.h"
#include "wait.h"

/* event bits shared with Lua: 1 = readable, 2 = writable; 4 (with 1):
** hung up with nothing to read, so a read would only say end of file;
** 8 (asked for, never reported): edge-triggered, for a doorbell that is
** never read (each ring of it wakes the loop once) */
#define EV_R 1
#define EV_W 2
#define EV_HUP 4
#define EV_EDGE 8

static unsigned to_epoll(int ev) {
  return ((ev & EV_R) ? EPOLLIN : 0u) | ((ev & EV_W) ? EPOLLOUT : 0u) |
         ((ev & EV_EDGE) ? EPOLLET : 0u);
}

/* errors and hang-ups wake both directions: the reader sees EOF or the
** error from read(), the writer sees EPIPE from write() */
static int from_epoll(unsigned e) {
  int ev = 0;
  if (e & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) ev |= EV_R;
  if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ev |= EV_W;
  if ((e & (EPOLLHUP | EPOLLIN | EPOLLERR)) == EPOLLHUP) ev |= EV_HUP;
  return ev;
}


/* monotonic milliseconds */
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}


/* {====================================================== ownership */

CP_API int cp_own(cp_Loop *lp, int fd, int kind) {
  if (fd >= lp->nowned) {
    int n = lp->nowned ? lp->nowned : 64;
    unsigned char *k;
    while (n <= fd) n *= 2;
    k = realloc(lp->kind, (size_t)n);
    if (k == NULL) return ENOMEM;
    memset(k + lp->nowned, 0, (size_t)(n - lp->nowned));
    lp->kind = k;
    lp->nowned = n;
  }
  lp->kind[fd] = (unsigned char)kind;
  return 0;
}

CP_API void cp_disown(cp_Loop *lp, int fd) {
  if (fd >= 0 && fd < lp->nowned) lp->kind[fd] = CP_FD_NONE;
}

/*
** At lua_close: close what Lua never closed.  A child that already exited
** is reaped through its own pidfd (never waitpid(-1)); a running one is
** left running, as io.popen's files are not waited for either.
*/
static int loop__gc(lua_State *L) {
  cp_Loop *lp = (cp_Loop *)lua_touserdata(L, 1);
  int fd;
  for (fd = 0; fd < lp->nowned; fd++) {
    if (lp->kind[fd] == CP_FD_PIDFD) {
      siginfo_t si;
      memset(&si, 0, sizeof si);
      waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG);
    }
    if (lp->kind[fd] != CP_FD_NONE) close(fd);
  }
  free(lp->kind);
  lp->kind = NULL;
  free(lp->rbuf);
  lp->rbuf = NULL;
  if (lp->stack != NULL) munmap(lp->stack, lp->stacksize);
  lp->stack = NULL;
  lp->nowned = 0;
  return 0;
}

/* }====================================================== */


/* {====================================================== loop objects */

/* A loop object: its epoll fd (-1 once closed) */
typedef struct cp_Epoll { int epfd; } cp_Epoll;

#define CP_EPOLL_MT "childproc.core.EventLoop"

/* the open loop object at 1 (a method's: its metatable is upvalue 2) */
static cp_Epoll *check_loop(lua_State *L) {
  cp_Epoll *ep = (cp_Epoll *)cp_checkclass(L, 1, 2, CP_EPOLL_MT);
  if (ep->epfd < 0) luaL_argerror(L, 1, "loop is closed");
  return ep;
}

/* the epoll fd of the open loop object at 1, removed from the stack */
static int take_loop(lua_State *L) {
  int epfd = check_loop(L)->epfd;
  lua_remove(L, 1);
  return epfd;
}

/* lp:close(): closes its epoll fd (what it watched is not closed) */
static int loop_close(lua_State *L) {
  cp_Epoll *ep = (cp_Epoll *)luaL_checkudata(L, 1, CP_EPOLL_MT);
  if (ep->epfd >= 0) close(ep->epfd);
  ep->epfd = -1;
  return 0;
}

static int ctl(lua_State *L, int op) {
  cp_Epoll *ep = check_loop(L);
  int fd = (int)luaL_checkinteger(L, 2);
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  e.events = to_epoll((int)luaL_optinteger(L, 3, 0));
  e.data.fd = fd;
  if (epoll_ctl(ep->epfd, op, fd, &e) != 0) return cp_fail(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* lp:watch(fd, ev), lp:modify(fd, ev), lp:unwatch(fd) */
static int loop_watch(lua_State *L) { return ctl(L, EPOLL_CTL_ADD); }
static int loop_modify(lua_State *L) { return ctl(L, EPOLL_CTL_MOD); }
static int loop_unwatch(lua_State *L) { return ctl(L, EPOLL_CTL_DEL); }

/* lp:pollfd() -> the epoll fd, readable whenever a watched fd is ready */
static int loop_pollfd(lua_State *L) {
  lua_pushinteger(L, check_loop(L)->epfd);
  return 1;
}

/* }====================================================== */


#define WAIT_MAX 64     /* events per wait */

/* A wait source (wait.h) and its functions */
typedef struct source {
  void *u;
  const cp_waitsrc *vt;
} source;

/* The wait source at idx, or 0: a userdata whose metatable holds its
** cp_waitsrc at CP_WAITSRC (the last such metatable is remembered: the
** loop asks this of every source before every wait) */
static int to_source(lua_State *L, cp_Loop *lp, int idx, source *s) {
  const void *mt;
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return 0;
  mt = lua_topointer(L, -1);
  if (mt != lp->srcmt) {
    lua_pushliteral(L, CP_WAITSRC);
    lua_rawget(L, -2);
    if (!lua_islightuserdata(L, -1)) {
      lua_pop(L, 2);
      return 0;
    }
    lp->srcvt = lua_touserdata(L, -1);
    lp->srcmt = mt;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  s->u = lua_touserdata(L, idx);
  s->vt = (const cp_waitsrc *)lp->srcvt;
  return 1;
}

/* Arms the sources in the table at idx; fills bells with the doorbells
** of those that have news already, up to max; returns how many */
static int arm_sources(lua_State *L, int idx, int *bells, int max) {
  cp_Loop *lp = cp_getloop(L);
  int i, k = (int)lua_rawlen(L, idx), nr = 0;
  for (i = 1; i <= k && nr < max; i++) {
    source s;
    lua_rawgeti(L, idx, i);
    if (to_source(L, lp, -1, &s) && s.vt->arm(s.u, &bells[nr]))
      nr++;
    lua_pop(L, 1);
  }
  return nr;
}

/* the index of fd's event in ev[0..n), or n */
static int find_event(const struct epoll_event *ev, int n, int fd) {
  int j;
  for (j = 0; j < n && ev[j].data.fd != fd; j++) {}
  return j;
}

/* the sources of the table at idx, up to max */
static int source_list(lua_State *L, int idx, source *src, int max) {
  cp_Loop *lp = cp_getloop(L);
  int i, k = (int)lua_rawlen(L, idx), n = 0;
  for (i = 1; i <= k && n < max; i++) {
    lua_rawgeti(L, idx, i);
    if (to_source(L, lp, -1, &src[n])) n++;
    lua_pop(L, 1);
  }
  return n;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#define SPIN_MS 0.05    /* how long a wait may spin on its sources */

/*
** Before a wait sleeps: while a source says news may come at once (a
** ring's peer awake on another CPU), poll the sources again for up to
** SPIN_MS. Going to sleep and being woken costs each side microseconds
** (tens when its CPU went idle, as a virtual CPU does), more than a busy
** peer takes to answer; a peer that answers within the spin is read
** without either side sleeping or ringing a doorbell. (A ring never
** says so on one CPU, nor for a peer that sleeps itself.) Returns how
** many sources have news, their doorbells in bells (reported as the
** arm's are). A spin that found nothing sets lp->nospin: no wait spins
** again until a doorbell or an arm brings news (a peer awake but silent
** does not make every wait spin).
*/
static int spin_sources(lua_State *L, int idx, int *bells, int max) {
  cp_Loop *lp = cp_getloop(L);
  source src[WAIT_MAX / 2];
  int i, k, nr, active, cpu = sched_getcpu();
  double end = -1, t;
  if (lp->nospin || cpu < 0) return 0;
  k = source_list(L, idx, src, WAIT_MAX / 2);
  for (;;) {
    int awake = 0;
    for (i = nr = 0; i < k && nr < max; i++) {
      if (src[i].vt->poll(src[i].u, cpu, &bells[nr], &active)) nr++;
      else awake |= active;
    }
    if (nr > 0 || !awake) return nr;
    t = now_ms();
    if (end < 0) end = t + SPIN_MS;
    else if (t >= end) {
      lp->nospin = 1;
      return 0;
    }
    cpu_relax();
  }
}

/* A doorbell of one of the sources at idx among ev[0..n): news came
** while we slept, so the next wait may spin again */
static void heard_bells(lua_State *L, int idx, const struct epoll_event *ev,
                        int n) {
  source src[WAIT_MAX / 2];
  int i, k = source_list(L, idx, src, WAIT_MAX / 2);
  for (i = 0; i < k; i++)
    if (find_event(ev, n, src[i].vt->bell(src[i].u)) < n) {
      cp_getloop(L)->nospin = 0;
      return;
    }
}

/* core.arm(sources) -> boolean: arm them; true if one has news (the
** loop's timeout() for a host loop, which sleeps without lp:wait) */
static int loop_arm(lua_State *L) {
  int bell;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushboolean(L, arm_sources(L, 1, &bell, 1) > 0);
  return 1;
}

/* Writes ev[0..n) into the table at 2, children's exits (pidfds) last:
** a child's exit and the hang-up of its output become ready together
** (its fds close before it is a zombie), and a stream that ends on its
** hang-up first is not read again by the drain its child's exit runs */
static void report(lua_State *L, cp_Loop *lp, const struct epoll_event *ev,
                   int n) {
  int i, k = 0, pass;
  for (pass = 0; pass < 2; pass++)
    for (i = 0; i < n; i++) {
      int fd = ev[i].data.fd;
      int exit = fd < lp->nowned && lp->kind[fd] == CP_FD_PIDFD;
      if (exit != pass) continue;
      lua_pushinteger(L, fd);
      lua_rawseti(L, 2, 2 * k + 1);
      lua_pushinteger(L, from_epoll(ev[i].events));
      lua_rawseti(L, 2, 2 * ++k);
    }
}

/*
** lp:wait(timeout_ms, out [, sources]) -> n
** Fills out[2i-1], out[2i] with fd and event bits; a negative timeout
** waits for ever.  An interrupted wait reports nothing rather than failing.
** sources: wait sources (wait.h; lua/ipc.lua's ringed channels) armed
** first: one with news that came while we were not asleep has its
** doorbell reported readable, and the wait does not sleep.
*/
static int loop_wait(lua_State *L) {
  cp_Loop *lp = cp_getloop(L);
  int epfd = take_loop(L);   /* ms, out, sources are then at 1, 2, 3 */
  lua_Number t = luaL_checknumber(L, 1);
  struct epoll_event ev[WAIT_MAX];
  int bells[WAIT_MAX / 2];
  int i, n, ms, nr = 0, srcs = lua_type(L, 3) == LUA_TTABLE;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3);
  ms = t < 0 ? -1 : (t > 2147483647.0 ? 2147483647 : (int)(t + 0.999));
  if (srcs && ms != 0 && (nr = spin_sources(L, 3, bells, WAIT_MAX / 2)) > 0)
    ms = 0;
  else if (srcs && (nr = arm_sources(L, 3, bells, WAIT_MAX / 2)) > 0) {
    ms = 0;
    lp->nospin = 0;
  }
  n = epoll_wait(epfd, ev, WAIT_MAX - nr, ms);
  if (n < 0) {
    if (errno != EINTR) return cp_fail(L, errno);
    n = 0;
  }
  if (lp->nospin && n > 0) heard_bells(L, 3, ev, n);
  for (i = 0; i < nr; i++)  /* the armed doorbells epoll did not report */
    if (find_event(ev, n, bells[i]) == n) {
      ev[n].data.fd = bells[i];
      ev[n++].events = EPOLLIN;
    }
  report(L, lp, ev, n);
  lua_pushinteger(L, n);
  return 1;
}

/*
** core.poll(fds, evs, timeout_ms, out) -> n
** A private poll(2) over a short list, for the *Sync functions: they must
** leave the loop's epoll set untouched.  out[i] = ready bits of fds[i].
*/
static int loop_poll(lua_State *L) {
  struct pollfd pf[64];
  int i, n, ms;
  lua_Number t;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  t = luaL_checknumber(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  n = (int)lua_rawlen(L, 1);
  luaL_argcheck(L, n <= 64, 1, "too many fds");
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    lua_rawgeti(L, 2, i + 1);
    pf[i].fd = (int)lua_tointeger(L, -2);
    pf[i].events = (short)(((lua_tointeger(L, -1) & EV_R) ? POLLIN : 0) |
                           ((lua_tointeger(L, -1) & EV_W) ? POLLOUT : 0));
    pf[i].revents = 0;
    lua_pop(L, 2);
  }
  ms = t < 0 ? -1 : (t > 2147483647.0 ? 2147483647 : (int)(t + 0.999));
  if (poll(pf, (nfds_t)n, ms) < 0 && errno != EINTR) return cp_fail(L, errno);
  for (i = 0; i < n; i++) {
    int r = 0;
    if (pf[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) r |= EV_R;
    if (pf[i].revents & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) r |= EV_W;
    lua_pushinteger(L, r);
    lua_rawseti(L, 4, i + 1);
  }
  lua_pushinteger(L, n);
  return 1;
}

/* core.now() -> monotonic milliseconds, as a float */
static int loop_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)now_ms());
  return 1;
}

/*
** core.loop_new() -> a loop object with an epoll fd of its own
** (close-on-exec), closed by lp:close() or when collected.  Its metatable
** has __gc before the fd exists, so an error in between leaks nothing.
*/
static int loop_new(lua_State *L) {
  cp_Epoll *ep = (cp_Epoll *)cp_newuserdata(L, sizeof *ep, 0);
  ep->epfd = -1;
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  ep->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (ep->epfd < 0) return cp_fail(L, errno);
  return 1;
}

static const luaL_Reg loop_methods[] = {
  {"watch", loop_watch}, {"modify", loop_modify}, {"unwatch", loop_unwatch},
  {"wait", loop_wait}, {"pollfd", loop_pollfd}, {"close", loop_close},
  {NULL, NULL}
};

static const luaL_Reg loop_funcs[] = {
  {"arm", loop_arm}, {"poll", loop_poll}, {"now", loop_now}, {NULL, NULL}
};

/*
** Creates the loop userdata, leaves it on the stack above the core table.
** Its metatable has __gc before the epoll fd exists, so an error in
** between leaks nothing.
*/
static const cp_Int events[] = {
  {"R", EV_R}, {"W", EV_W}, {"HUP", EV_HUP}, {"EDGE", EV_EDGE}, {NULL, 0}
};

CP_API void cp_loop_open(lua_State *L) {
  cp_Loop *lp = (cp_Loop *)cp_newuserdata(L, sizeof *lp, 0);
  memset(lp, 0, sizeof *lp);  /* every field (nospin was read unset) */
  lp->nowned = 0;
  lp->kind = NULL;
  lp->stack = NULL;
  lp->stacksize = 0;
  lp->rbuf = NULL;
  lp->srcmt = NULL;
  lp->srcvt = NULL;
  luaL_newmetatable(L, CP_LOOP_MT);
  lua_pushcfunction(L, loop__gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  cp_setfuncs(L, loop_funcs);
  /* the loop objects' metatable: __gc, and the methods, whose upvalues
  ** are the state's loop and this metatable (check_loop) */
  luaL_newmetatable(L, CP_EPOLL_MT);         /* core loop mt */
  lua_pushcfunction(L, loop_close);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);                           /* core loop mt methods */
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, loop_methods, 2);
  lua_setfield(L, -2, "__index");            /* core loop mt */
  lua_pushvalue(L, -2);
  lua_insert(L, -2);                         /* core loop loop mt */
  lua_pushcclosure(L, loop_new, 2);          /* core.loop_new: the same upvalues */
  lua_setfield(L, -3, "loop_new");
  /* core.events: the event bits above, by name */
  cp_setints(L, "events", events);
}
