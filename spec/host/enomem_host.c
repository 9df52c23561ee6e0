/*
** enomem_host: runs childproc's core scenarios in a lua_State whose
** allocator fails its n-th allocation, for n over the whole range a clean
** run of the scenario makes (stepping when it is large), built with ASan
** and UBSan (make host; enomem_spec and make enomem run it).
**
** For each n: a fresh state loads the module (the 'load' scenario fails
** inside that too), the scenario runs under lua_pcall, and must either
** succeed (the failure was absorbed: Lua's emergency collection is
** defeated by failing its retry too) or fail with "not enough memory".
** Then, with the allocator healthy again, the same state must drain its
** loop (children the scenario started are SIGKILLed through /proc: a
** child the module lost track of stays a zombie and is seen below), start
** and reap a new child, and have nothing left; after lua_close the
** process must hold the fds it held before and no child
** (waitpid(-1, WNOHANG): allowed in this test host, never in the module).
**
** Usage: enomem_host [scenario...]   (default: all)
** Env:   ENOMEM_MAX_RUNS  failure points tried per scenario (default 400)
**        ENOMEM_SEED      which of the points of a step is tried (default 0)
**        ENOMEM_CPATH     package.cpath for the module
**        ENOMEM_VERBOSE   print every run
**        ENOMEM_WHERE     print the Lua stack at each failed allocation
** Prints one line per scenario and exits 1 if any run went wrong.
*/
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* {====================================================== the allocator */

static long nalloc;       /* allocations made while armed */
static long fail_at;      /* the one to fail (0: none) */
static int armed;
static size_t retry_size; /* a failed size: Lua's emergency retry of it fails too */
static long nfailed;

/* ENOMEM_WHERE: print the Lua stack at the failed allocation (a
** debugging aid: lua_getinfo "Sl" allocates nothing) */
static lua_State *where_L;
static void where(lua_State *L) {
  lua_Debug ar;
  int level;
  fprintf(stderr, "failed allocation %ld at:", nalloc);
  for (level = 0; level < 12 && lua_getstack(L, level, &ar); level++)
    if (lua_getinfo(L, "Sl", &ar))
      fprintf(stderr, " %s:%d", ar.short_src, ar.currentline);
  fprintf(stderr, "\n");
}

static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  /* Lua assumes a block that shrinks never fails */
  if (armed && !(ptr != NULL && nsize <= osize)) {
    if (retry_size != 0) {
      int same = nsize == retry_size;
      retry_size = 0;
      if (same) { nfailed++; return NULL; }
    }
    if (++nalloc == fail_at) {
      if (where_L != NULL) where(where_L);
      retry_size = nsize;
      nfailed++;
      return NULL;
    }
  }
  return realloc(ptr, nsize);
}

/* }====================================================== */

/* {====================================================== scenarios */

/* strict: nothing of the user's code keeps the loop alive after a
** failure, so the loop must end (timers and watch leave the user's own
** interval or watcher behind).  A fork's channel is set up attached (a
** raise closes it with both ends) and closed allocating nothing before
** its ref and fds are let go (lua/ipc.lua). */
typedef struct Scenario { const char *name, *code; int strict; } Scenario;

static const Scenario scenarios[] = {
  { "load", "cp = require 'childproc'", 1 },
  { "spawn",
    "local c = cp.spawn('sh', { '-c', 'echo hi; exit 3' })\n"
    "local out = ''\n"
    "c.stdout:on('data', function(d) out = out .. d end)\n"
    "local code = c:wait()\n"
    "assert(code == 3 and out == 'hi\\n', 'spawn: wrong result')", 1 },
  { "pty",
    "local c = cp.spawn('sh', { '-c', 'echo hi' }, { pty = true })\n"
    "local out = ''\n"
    "c.stdout:on('data', function(d) out = out .. d end)\n"
    "c:wait()\n"
    "assert(out:find('hi', 1, true), 'pty: wrong result')", 1 },
  { "exec",
    "local got\n"
    "cp.exec('echo hi', function(err, out) got = out end)\n"
    "cp.run()\n"
    "assert(got == 'hi\\n', 'exec: wrong result')", 1 },
  { "fork",
    "local c = cp.fork(FORK_SCRIPT, {}, { execPath = 'lua5.4', env = FORK_ENV })\n"
    "local got\n"
    "c:on('message', function(m) got = m; c:disconnect() end)\n"
    "c:send({ 'ping', n = 1 })\n"
    "cp.run()\n"
    "assert(type(got) == 'table' and got[1] == 'ping', 'fork: no reply')", 1 },
  { "timers",
    "local n, fired = 0, false\n"
    "local iv\n"
    "iv = cp.setInterval(function() n = n + 1; if n == 3 then iv:close() end end, 1)\n"
    "cp.setTimeout(function(a) fired = a end, 2, 'yes')\n"
    "local t = cp.setTimeout(function() error('cleared timer fired') end, 1)\n"
    "cp.clearTimeout(t)\n"
    "cp.setImmediate(function() end)\n"
    "cp.run()\n"
    "assert(n == 3 and fired == 'yes', 'timers: wrong result')", 0 },
  { "watch",
    "local r, w = core.pipe()\n"
    "PIPE = { r, w }\n"
    "local seen\n"
    "local wt = cp.watch(r, 'r', function(ev, self) seen = ev; self:stop() end)\n"
    "core.write(w, 'x')\n"
    "cp.run()\n"
    "assert(seen == 'r', 'watch: no event')", 0 },
  { "sync",
    "local r = cp.spawnSync('sh', { '-c', 'echo out; echo err >&2; exit 2' })\n"
    "assert(r.status == 2 and r.stdout == 'out\\n', 'spawnSync: wrong result')", 1 },
};
#define NSCEN (sizeof scenarios / sizeof scenarios[0])

/* Run with the allocator healthy, after the scenario.  What the user's
** code left (an interval whose close was never reached, a watcher) may
** keep cp.run() going: that is the user's, so the loop is only turned
** (errors nobody listened to are raised from it and dropped here).  The
** module's part: every child it started, once SIGKILLed, is reaped by the
** loop (a child it lost stays a zombie: the wait below times out), a new
** child starts and reaches 'close', a new timer fires. */
static const char *const after_code =
  "local cp = require 'childproc'\n"
  "local core = require('childproc.internal').core\n"
  "local now = core.now\n"
  "if PIPE then core.close(PIPE[1]); core.close(PIPE[2]); PIPE = nil end\n"
  "for _, pid in ipairs(host_children()) do cp.kill(pid, 'SIGKILL') end\n"
  "local tick = cp.setInterval(function() end, 2):unref()\n"
  "local function turn_until(pred, what)\n"
  "  local deadline = now() + 5000\n"
  "  while not pred() do\n"
  "    if now() > deadline then error('after: ' .. what .. ' not within 5 s' .. (HELD and HELD() or ''), 0) end\n"
  "    pcall(cp.run, 'once')\n"
  "  end\n"
  "end\n"
  "turn_until(function() return #host_children() == 0 end, 'the children reaped')\n"
  "local closed, fired\n"
  "local c = cp.spawn('sh', { '-c', 'exit 4' })\n"
  "c:on('close', function(code) closed = code end)\n"
  "cp.setTimeout(function() fired = true end, 1)\n"
  "turn_until(function() return closed and fired end, 'a new child and a new timer')\n"
  "assert(closed == 4, 'after: the new child exited ' .. tostring(closed))\n"
  /* scenarios whose own code keeps nothing alive: the loop must end */
  "if STRICT then\n"
  "  turn_until(function() local ok, more = pcall(cp.run, 'nowait'); return ok and not more end,\n"
  "    'the loop to have nothing left')\n"
  "end\n"
  "tick:close()\n";

/* }====================================================== */

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  if (d == NULL) return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;  /* the directory's own */
}

/* host_children() -> the pids of this process's children (/proc) */
static int host_children(lua_State *L) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  lua_newtable(L);
  if (d == NULL) return 1;
  while ((e = readdir(d)) != NULL) {
    char path[300];
    FILE *f;
    long pid;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    if ((f = fopen(path, "r")) == NULL) continue;
    while (fscanf(f, "%ld", &pid) == 1) {
      lua_pushinteger(L, pid);
      lua_rawseti(L, -2, ++n);
    }
    fclose(f);
  }
  closedir(d);
  return 1;
}

static const char *errmsg(lua_State *L) {
  const char *m = lua_tostring(L, -1);
  return m != NULL ? m : "(an error object)";
}

/* a message's first line, for the report */
static void firstline(char *out, size_t size, const char *m) {
  size_t n = strcspn(m, "\n");
  if (n >= size) n = size - 1;
  memcpy(out, m, n);
  out[n] = '\0';
}

enum { RUN_OK, RUN_MEM, RUN_BAD };

/* one run of scenario s failing allocation n (0: none); *made: the
** allocations it made; bad runs say why in why */
static int run(const Scenario *s, long n, long *made, char *why, size_t whysize) {
  const char *cpath = getenv("ENOMEM_CPATH");
  const char *fork_script = getenv("ENOMEM_FORK_SCRIPT");
  lua_State *L;
  int status, result = RUN_OK;
  why[0] = '\0';
  fail_at = 0;
  armed = 0;
  retry_size = 0;
  L = lua_newstate(alloc, NULL);
  if (L == NULL) { snprintf(why, whysize, "lua_newstate failed"); return RUN_BAD; }
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, cpath != NULL ? cpath : "./?.so");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_pushstring(L, fork_script != NULL ? fork_script : "spec/fixtures/fork_echo.lua");
  lua_setglobal(L, "FORK_SCRIPT");
  lua_register(L, "host_children", host_children);
  lua_pushboolean(L, s->strict);
  lua_setglobal(L, "STRICT");
  /* with ENOMEM_VERBOSE: what still keeps the loop alive, when it does */
  if (getenv("ENOMEM_VERBOSE") != NULL)
    (void)luaL_dostring(L, "function HELD() local M = require('childproc.internal')\n"
      "local t = { ' (refs ' .. M.alive() .. '; watched:' }\n"
      "for fd = 0, 1023 do local h, ev = M.fdhandler(fd)\n"
      "  if h then t[#t + 1] = (' %d/%s/%s'):format(fd, tostring(ev), type(h)) end end\n"
      "return table.concat(t) .. ')' end");
  /* the forked interpreter loads this (sanitized) module: it needs the
  ** sanitizers' runtimes first */
  (void)luaL_dostring(L, "FORK_ENV = { PATH = os.getenv('PATH'), LUA_CPATH = os.getenv('LUA_CPATH'),"
                   " LD_PRELOAD = os.getenv('ENOMEM_PRELOAD'), ASAN_OPTIONS = 'detect_leaks=0' }");
  if (strcmp(s->name, "load") != 0) {
    if (luaL_dostring(L, "cp = require 'childproc' core = require('childproc.internal').core") != 0) {
      snprintf(why, whysize, "setup: %s", errmsg(L));
      lua_close(L);
      return RUN_BAD;
    }
  }
  if (luaL_loadstring(L, s->code) != 0) {
    snprintf(why, whysize, "load: %s", errmsg(L));
    lua_close(L);
    return RUN_BAD;
  }
  where_L = getenv("ENOMEM_WHERE") != NULL ? L : NULL;
  nalloc = 0;
  fail_at = n;
  armed = 1;
  status = lua_pcall(L, 0, 0, 0);
  armed = 0;
  where_L = NULL;
  *made = nalloc;
  if (status != 0) {
    const char *m = errmsg(L);
    if (n == 0 || !(status == LUA_ERRMEM || strstr(m, "not enough memory") != NULL)) {
      char line[200];
      firstline(line, sizeof line, m);
      snprintf(why, whysize, "scenario error (status %d): %s", status, line);
      result = RUN_BAD;
    }
    else result = RUN_MEM;
    if (getenv("ENOMEM_TRACE") != NULL && atol(getenv("ENOMEM_TRACE")) == n)
      fprintf(stderr, "n=%ld: %s\n", n, m);
  }
  lua_settop(L, 0);
  if (luaL_dostring(L, after_code) != 0) {
    char line[200];
    firstline(line, sizeof line, errmsg(L));
    snprintf(why, whysize, "inconsistent after the failure: %s", line);
    result = RUN_BAD;
  }
  lua_close(L);
  return result;
}

/* no fd and no child left: else say what */
static int clean(int fds0, char *why, size_t whysize) {
  int st, fds = count_fds();
  pid_t p = waitpid(-1, &st, WNOHANG);
  if (p > 0) {
    snprintf(why, whysize, "a child left unreaped (pid %d)", (int)p);
    return 0;
  }
  if (p == 0) {
    snprintf(why, whysize, "a child left running");
    while (waitpid(-1, &st, 0) > 0) {}
    return 0;
  }
  if (fds != fds0) {
    /* name them: "n:target" of each fd past 2 */
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    size_t len = (size_t)snprintf(why, whysize, "%d fds open, %d before:", fds, fds0);
    while (d != NULL && (e = readdir(d)) != NULL && len + 80 < whysize) {
      char path[300], target[64];
      ssize_t n;
      if (e->d_name[0] == '.' || atoi(e->d_name) <= 2) continue;
      snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
      n = readlink(path, target, sizeof target - 1);
      target[n > 0 ? n : 0] = '\0';
      len += (size_t)snprintf(why + len, whysize - len, " %s:%s", e->d_name, target);
    }
    if (d != NULL) closedir(d);
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  const char *e = getenv("ENOMEM_MAX_RUNS");
  long maxruns = e != NULL ? atol(e) : 400;
  long seed = getenv("ENOMEM_SEED") != NULL ? atol(getenv("ENOMEM_SEED")) : 0;
  int verbose = getenv("ENOMEM_VERBOSE") != NULL;
  int bad_total = 0;
  size_t i;
  if (maxruns < 1) maxruns = 1;
  for (i = 0; i < NSCEN; i++) {
    const Scenario *s = &scenarios[i];
    long count = 0, made, n, step, runs = 0, nmem = 0, nok = 0, nbad = 0;
    char why[400];
    int fds0, a, r;
    if (argc > 1) {
      for (a = 1; a < argc; a++) if (strcmp(argv[a], s->name) == 0) break;
      if (a == argc) continue;
    }
    fds0 = count_fds();
    /* a clean run: it must work, and tells how many allocations it makes */
    r = run(s, 0, &count, why, sizeof why);
    if (r != RUN_OK || !clean(fds0, why + strlen(why), sizeof why - strlen(why))) {
      printf("%-7s clean run failed: %s\n", s->name, why);
      bad_total++;
      continue;
    }
    step = (count + maxruns - 1) / maxruns;
    if (step < 1) step = 1;
    nfailed = 0;
    for (n = 1 + seed % step; n <= count; n += step) {
      r = run(s, n, &made, why, sizeof why);
      runs++;
      if (r == RUN_OK || r == RUN_MEM) {
        if (!clean(fds0, why, sizeof why)) r = RUN_BAD;
      }
      else {
        char more[200];
        if (!clean(fds0, more, sizeof more))
          snprintf(why + strlen(why), sizeof why - strlen(why), "; %s", more);
      }
      if (r == RUN_MEM) nmem++;
      else if (r == RUN_OK) nok++;
      else {
        nbad++;
        if (nbad <= 5) printf("%-7s n=%ld: %s\n", s->name, n, why);
      }
      if (verbose) printf("%-7s n=%ld: %s\n", s->name, n,
                          r == RUN_MEM ? "memory error" : r == RUN_OK ? "absorbed" : why);
    }
    printf("%-7s %ld allocations, %ld failure points tried (step %ld): "
           "%ld memory errors, %ld absorbed, %ld wrong\n",
           s->name, count, runs, step, nmem, nok, nbad);
    fflush(stdout);
    if (nbad > 0) bad_total++;
  }
  return bad_total > 0 ? 1 : 0;
}
