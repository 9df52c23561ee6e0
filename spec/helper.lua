-- Shared helpers for the childproc specs (loaded by busted before every
-- spec file, see .busted).  Everything here is a global on purpose: the
-- spec files use these names without requiring anything.
--
--   run_until(pred, ms [, what])   drive cp.run('once') until pred() is true
--   poll_until(pred, ms [, what])  the same, re-checking every few ms (for
--                                  state outside the loop: /proc, files)
--   recorder()                     record events as {name, ...}
--   fds(), fds_desc()              this process's open fds
--   children(), procstat(pid)      /proc views of processes
--   no_children()                  fail (after cleaning up) if a child is left
--   leakcheck()                    before_each/after_each: no child left behind,
--                                  no new fd left open
--   luaproc(code, opts)            run code in a fresh $LUA interpreter
--   badargs(cases)                 table-driven bad-argument specs
--   expect(fn [, n])               fn, which must run exactly n times (1)
--                                  by the end of the test; expect_check()
--   thread_io(name)                a counter of /proc/thread-self/io
--   readfile, writefile, tmpname, shell, ROOT, MYPID, wait_close, childenv
--   (and every child:wait() is bounded: 30 s, then the spec fails)
--   LUA, INTEGERS, only_if(ok, why)  the Lua under test (see below)
--   internal(), core()             the module's internals (its M, its C
--                                  table), for specs that reach them

-- {====================================================== every Lua

-- The specs run under every Lua the module builds for (make test
-- LUA=lua5.1 ...): LUA names the interpreter (it runs luaproc's code and
-- forked children), and the module is the one built for it.
LUA = os.getenv('CHILDPROC_LUA') or (rawget(_G, 'jit') and 'luajit')
  or 'lua' .. _VERSION:match('%d+%.%d+')
package.cpath = './build/' .. LUA .. '/?.so;' .. package.cpath
-- 5.3+: 64-bit integers beside floats; before (and LuaJIT) doubles only
INTEGERS = math.type ~= nil
-- math.type, or where numbers are doubles: 'integer' for an integral one
mtype = math.type or function(v)
  if type(v) ~= 'number' then return nil end
  return v == math.floor(v) and 'integer' or 'float'
end
table.unpack = table.unpack or unpack
table.pack = table.pack or function(...) return { n = select('#', ...), ... } end

-- string.pack/unpack where there are none (5.1, 5.2, LuaJIT), for the
-- formats the specs use: '<', 'I<n>', 'B', 's<n>', 'd' (pack only; a NaN
-- as a quiet one, its sign as printf shows it)
if not string.pack then
  local char, floor = string.char, math.floor
  local function le(n, k)
    local t = {}
    for i = 1, k do local b = n % 256; t[i] = char(b); n = floor(n / 256) end
    return table.concat(t)
  end
  local function unle(s)
    local n = 0
    for i = #s, 1, -1 do n = n * 256 + s:byte(i) end
    return n
  end
  local function dbl(x)
    if x ~= x then
      return le(0, 6) .. char(0xf8, tostring(x):sub(1, 1) == '-' and 0xff or 0x7f)
    end
    local sign, e, m = 0, 0, 0
    if x < 0 or (x == 0 and 1 / x < 0) then sign, x = 1, -x end
    if x == math.huge then e = 2047
    elseif x ~= 0 then
      local fr, ex = math.frexp(x)
      e = ex + 1022
      if e <= 0 then e, m = 0, x * 2^1022 * 2^52     -- subnormal
      else m = (fr * 2 - 1) * 2^52 end
    end
    local lo = m % 2^32
    return le(lo, 4) .. le((m - lo) / 2^32 + e * 2^20 + sign * 2^31, 4)
  end
  function string.pack(fmt, ...)
    local args, out, i = { ... }, {}, 0
    for c, d in fmt:gmatch('([IBsd])(%d*)') do
      i = i + 1
      local v = args[i]
      if c == 's' then out[#out + 1] = le(#v, tonumber(d)) .. v
      elseif c == 'I' then out[#out + 1] = le(v, tonumber(d))
      elseif c == 'B' then out[#out + 1] = char(v)
      else out[#out + 1] = dbl(v) end
    end
    return table.concat(out)
  end
  function string.unpack(fmt, s, pos)
    local res = {}
    pos = pos or 1
    for c, d in fmt:gmatch('([IBs])(%d*)') do
      local k = tonumber(d) or 1
      local v = unle(s:sub(pos, pos + k - 1))
      pos = pos + k
      if c == 's' then v, pos = s:sub(pos, pos + v - 1), pos + v end
      res[#res + 1] = v
    end
    res[#res + 1] = pos
    return unpack(res)
  end
end

-- 0 made at run time: 5.1 folds the constant -0.0 into 0 (-NEGZ is -0.0)
NEGZ = 0.0

-- }======================================================

local lfs = require 'lfs'
local cp = require 'childproc'
-- The module's internals, for the specs that reach them (the one place
-- they are taken): internal() is the Lua layer's namespace M, core() the
-- C table (lua_childproc.c's require 'childproc.internal')
local M = require 'childproc.internal'
function internal() return M end
function core() return M.core end
-- children running Lua find it too (Lua's default path begins with ./?.so:
-- ./childproc.so is the lua5.4 build)
M.core.setenv('LUA_CPATH', './build/' .. LUA .. '/?.so;;')
-- 5.1's pcall cannot be yielded across (5.2's and LuaJIT's can): the
-- specs' pcall is the module's yieldable one (lua/compat.lua)
if _VERSION == 'Lua 5.1' and not rawget(_G, 'jit') then
  local xpcall = M.xpcall
  local function keep(e) return e end
  pcall = function(f, ...) return xpcall(f, keep, ...) end
end
local luassert = require 'luassert'

ROOT = lfs.currentdir()
SOPATH = ROOT .. '/build/' .. LUA .. '/childproc.so'   -- the module under test
CPATH = ROOT .. '/build/' .. LUA .. '/?.so;;'          -- a LUA_CPATH finding it

-- a counter of /proc/thread-self/io ('rchar', 'syscr'...): this
-- thread's reads, not those of the children it reaped
function thread_io(name)
  local f = assert(io.open('/proc/thread-self/io'))
  local t = f:read('*a')
  f:close()
  return tonumber(t:match(name .. ': (%d+)'))
end

function readfile(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('*a')
  f:close()
  return s
end

-- docs/*.md, all of it (the docs specs look names up in it)
function docs_text()
  local parts = {}
  local p = io.popen('ls ' .. ROOT .. '/docs/*.md')
  for name in p:lines() do parts[#parts + 1] = readfile(name) end
  p:close()  -- (reaps the shell: LuaJIT's collector may be late to)
  return table.concat(parts, '\n')
end

function writefile(path, data)
  local f = assert(io.open(path, 'wb'))
  assert(f:write(data))
  f:close()
  return path
end

-- quote for /bin/sh
function shq(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- /proc/<pid>/stat as a table (nil when the process is gone)
function procstat(pid)
  local st = readfile('/proc/' .. tostring(pid) .. '/stat')
  if not st then return nil end
  local p, comm, rest = st:match('^(%d+) %((.*)%) (.*)$')
  if not p then return nil end
  local f = {}
  for w in rest:gmatch('%S+') do f[#f + 1] = w end
  -- fields after comm: state ppid pgrp session ...
  return { pid = tonumber(p), comm = comm, state = f[1],
           ppid = tonumber(f[2]), pgrp = tonumber(f[3]),
           session = tonumber(f[4]) }
end

MYPID = procstat('self').pid

-- a process is alive while /proc has it and it is not a zombie
function alive(pid)
  local st = procstat(pid)
  return st ~= nil and st.state ~= 'Z'
end

-- a field of /proc/<pid>/status (self by default), e.g. 'VmRSS'
function procstatus(field, pid)
  local s = readfile('/proc/' .. tostring(pid or 'self') .. '/status') or ''
  return s:match('\n' .. field .. ':%s*([^\n]*)')
end

function rss_kib(field)
  return tonumber((procstatus(field or 'VmRSS') or ''):match('^(%d+)'))
end

-- The processes whose parent is this process.
function children()
  local out = {}
  for name in lfs.dir('/proc') do
    if name:match('^%d+$') then
      local st = procstat(name)
      if st and st.ppid == MYPID then out[#out + 1] = st end
    end
  end
  table.sort(out, function(a, b) return a.pid < b.pid end)
  return out
end

local function describe_procs(list)
  local t = {}
  for _, p in ipairs(list) do
    t[#t + 1] = ('%d(%s,%s)'):format(p.pid, p.comm, p.state)
  end
  return table.concat(t, ' ')
end

-- This process's open fds, as a sorted array of numbers (the fd that
-- lfs.dir itself opens on /proc/self/fd is left out).
function fds()
  local list = {}
  local mine = '/proc/' .. MYPID .. '/fd'
  for name in lfs.dir('/proc/self/fd') do
    if name:match('^%d+$') then
      local t = lfs.symlinkattributes('/proc/self/fd/' .. name, 'target')
      if t and t ~= mine then list[#list + 1] = tonumber(name) end
    end
  end
  table.sort(list)
  return list
end

-- The same, with targets, for failure messages.
function fds_desc(list)
  local t = {}
  for _, fd in ipairs(list or fds()) do
    local target = lfs.symlinkattributes('/proc/self/fd/' .. fd, 'target')
    t[#t + 1] = fd .. '->' .. tostring(target)
  end
  return table.concat(t, ' ')
end

-- the fd number of this process that points at path (io.open'ed files)
function fd_of(path)
  for _, fd in ipairs(fds()) do
    if lfs.symlinkattributes('/proc/self/fd/' .. fd, 'target') == path then
      return fd
    end
  end
end

-- {====================================================== the loop

-- Drive cp.run('once') until pred() is true.  A guard timer bounds the
-- wait: when `ms` pass, this raises.  The guard is closed afterwards, so
-- it never keeps the loop alive or fires in a later spec.
function run_until(pred, ms, what)
  ms = ms or 10000
  if pred() then return true end
  local expired = false
  local guard = cp.setTimeout(function() expired = true end, ms)
  local ok, err = pcall(function()
    while not pred() do
      if expired then
        error(('run_until: %s not reached after %d ms'):format(
          what or 'condition', ms), 0)
      end
      -- handle what is ready without blocking first, so pred() is looked
      -- at again before the loop waits
      cp.run('nowait')
      if pred() then break end
      cp.run('once')
    end
  end)
  guard:close()
  if not ok then error(err, 2) end
  return true
end

-- As run_until, for conditions outside the loop's knowledge (/proc):
-- a short interval timer wakes the loop so pred() is checked again.
function poll_until(pred, ms, what)
  local tick = cp.setInterval(function() end, 5)
  local ok, err = pcall(run_until, pred, ms, what)
  tick:close()
  if not ok then error(err, 2) end
  return true
end

-- cp.run(mode), bounded: an unref'd guard timer (it keeps nothing alive,
-- but fires if the loop is still running) raises after `ms`.
function run_all(ms, mode)
  ms = ms or 10000
  local guard = cp.setTimeout(function()
    error(('run_all: cp.run() still running after %d ms'):format(ms), 0)
  end, ms):unref()
  local ok, res = pcall(cp.run, mode)
  guard:close()
  if not ok then error(res, 0) end
  return res
end

-- Every child:wait() in a spec is bounded the same way: a guard timer
-- raises inside the loop wait() runs, so a 'close' that never comes fails
-- the spec instead of hanging it.  The real wait() still does the work.
do
  local methods = M.child_methods
  local real_wait = methods.wait
  methods.wait = function(self, ...)
    local guard = cp.setTimeout(function()
      error("child:wait(): no 'close' after 30 s", 0)
    end, 30000):unref()
    local r = table.pack(pcall(real_wait, self, ...))
    guard:close()
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end
end

-- Wait for child's exit without running the loop: all its messages then
-- wait together, to be taken at once (a private poll on its pidfd; under
-- valgrind, which has none, /proc looked at every 5 ms)
function exited(child)
  local core, pidfd = core(), internal().cself(child).pidfd
  if pidfd then
    local res = {}
    core.poll({ pidfd }, { 1 }, 10000, res)
    assert(res[1] % 2 == 1, 'the child has not exited')
    return
  end
  local t0 = core.now()
  while alive(child.pid) do
    assert(core.now() - t0 < 10000, 'the child has not exited')
    core.poll({}, {}, 5, {})
  end
end

-- Run the loop until child has emitted 'close'; returns its arguments.
-- An env option for a child: t plus PATH and what a sanitizer build
-- (make sanitize) needs in every process.
function childenv(t)
  for _, k in ipairs({ 'LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'PATH' }) do
    if t[k] == nil then t[k] = os.getenv(k) end
  end
  return t
end

-- A 'close' that already came (while the spec waited on something else)
-- is read from the child's state instead of being waited for again.
function wait_close(child, ms)
  local s = M.cself(child)
  if M.child_closed(s) then
    if s.spawnerror then return s.spawnerror.errno, nil end
    return s.exitCode, s.signalCode
  end
  local got
  child:once('close', function(...) got = table.pack(...) end)
  run_until(function() return got ~= nil end, ms or 10000, "'close'")
  return table.unpack(got, 1, got.n)
end

-- }======================================================


-- {====================================================== recorder

-- rec = recorder(); obj:on('exit', rec 'exit'); ... rec.events is a list
-- of {name, args...}.  rec:listen(obj, {'spawn','exit'}, 'prefix.')
-- attaches several at once.  'data' events recorded with rec:data(name)
-- are merged when consecutive, so chunking does not matter.
function recorder()
  local rec = { events = {} }
  local mt = {}
  mt.__index = mt
  mt.__call = function(self, name)
    return function(...)
      self.events[#self.events + 1] = { name, ... }
    end
  end
  function mt:listen(obj, names, prefix)
    for _, n in ipairs(names) do obj:on(n, self((prefix or '') .. n)) end
    return self
  end
  function mt:data(name)
    return function(chunk)
      local last = self.events[#self.events]
      if last and last[1] == name then
        last[2] = last[2] .. chunk
      else
        self.events[#self.events + 1] = { name, chunk }
      end
    end
  end
  function mt:names()
    local t = {}
    for i, e in ipairs(self.events) do t[i] = e[1] end
    return t
  end
  function mt:index(name)
    for i, e in ipairs(self.events) do if e[1] == name then return i end end
  end
  function mt:count(name)
    local n = 0
    for _, e in ipairs(self.events) do if e[1] == name then n = n + 1 end end
    return n
  end
  function mt:get(name)
    for _, e in ipairs(self.events) do if e[1] == name then return e end end
  end
  -- only the events whose name is in names, in order
  function mt:only(names)
    local set, t = {}, {}
    for _, n in ipairs(names) do set[n] = true end
    for _, e in ipairs(self.events) do if set[e[1]] then t[#t + 1] = e end end
    return t
  end
  -- all 'data' chunks of name, concatenated
  function mt:text(name)
    local t = {}
    for _, e in ipairs(self.events) do if e[1] == name then t[#t + 1] = e[2] end end
    return table.concat(t)
  end
  return setmetatable(rec, mt)
end

-- Spawn, collect stdout/stderr, wait for 'close'.  Returns a result table
-- {code, signal, stdout, stderr, child}.
function collect(cmd, args, opts, ms)
  local child = cp.spawn(cmd, args, opts)
  local out, err, res = {}, {}, {}
  if child.stdout then child.stdout:on('data', function(c) out[#out + 1] = c end) end
  if child.stderr then child.stderr:on('data', function(c) err[#err + 1] = c end) end
  child:on('error', function(e) res.error = e end)
  child:on('close', function(code, sig)
    res.code, res.signal, res.closed = code, sig, true
  end)
  run_until(function() return res.closed end,
            ms or 10000, "'close' of " .. tostring(cmd))
  res.stdout, res.stderr, res.child = table.concat(out), table.concat(err), child
  return res
end

-- }======================================================


-- {====================================================== leaks

-- busted's block functions (it, before_each...) live in the spec file's
-- environment, not in _G: find them through the caller's _ENV.
local function busted_env(level)
  local f = debug.getinfo(level + 1, 'f').func
  if rawget(_G, 'setfenv') then return getfenv(f) end  -- 5.1, LuaJIT
  for i = 1, 255 do
    local name, val = debug.getupvalue(f, i)
    if not name then break end
    if name == '_ENV' then return val end
  end
  return _G
end

-- Fails when this process has children left.  Cleans up first (SIGKILL,
-- then lets the loop reap them) so one failure does not spread.
function no_children()
  local left = children()
  if #left == 0 then return true end
  for _, c in ipairs(left) do
    cp.kill(c.pid, 'SIGKILL')
  end
  pcall(poll_until, function()
    for _, c in ipairs(children()) do
      if c.state ~= 'Z' then return false end
    end
    return true
  end, 3000)
  error('child processes left behind: ' .. describe_procs(left), 2)
end

-- only_if(ok, why)('name', fn): it('name', fn) where ok, else the spec
-- is pending and says why (a feature this Lua lacks: only_if(LUA ==
-- 'lua5.4', '<close> needs Lua 5.4'))
function only_if(ok, why)
  local env = busted_env(2)
  if ok then return env.it end
  return function(name) env.pending(name .. ' [skipped on ' .. LUA .. ': ' .. why .. ']') end
end

-- Register checks around each spec of the enclosing describe block: no
-- child process left, no fd left open that was not open before (after a
-- full GC, so only handles the loop still holds count).  Setting
-- CHILDPROC_SPEC_NOFDCHECK=1 skips the fd part (to see other failures
-- while an fd leak is being fixed).
function leakcheck()
  local env = busted_env(2)
  local before
  env.before_each(function()
    collectgarbage(); collectgarbage()
    before = fds()
  end)
  env.after_each(function()
    no_children()
    -- nothing the spec started is still referenced by the loop
    local ran, more = pcall(cp.run, 'nowait')
    luassert.is_true(ran, 'leftover event raised: ' .. tostring(more))
    luassert.is_false(more, 'the loop still has referenced work after the spec')
    if os.getenv('CHILDPROC_SPEC_NOFDCHECK') then return end
    collectgarbage(); collectgarbage()
    local after = fds()
    if #after ~= #before then
      local b = {}
      for _, fd in ipairs(before) do b[fd] = true end
      local new = {}
      for _, fd in ipairs(after) do if not b[fd] then new[#new + 1] = fd end end
      luassert.same(before, after, 'fds left open: ' .. fds_desc(new))
    end
  end)
end

-- }======================================================


-- {====================================================== expect

-- expect(fn [, n]) -> a function calling fn (nil: nothing) that must be
-- called exactly n times (default 1) by the end of the test that made it
-- (in the test or its before_each), as luv's test harness has it.  A
-- count that differs fails that test, naming the expect call's file:line
-- and how many times it ran; a test that failed already is left with its
-- own failure.  expect_check() does the check at once (and forgets the
-- wrappers): it raises the same message, for a spec to look at.
local expects = {}

function expect(fn, n)
  n = n == nil and 1 or n
  if type(n) ~= 'number' or n < 0 or math.floor(n) ~= n then
    error('expect: n must be a count (an integer >= 0), got ' .. tostring(n), 2)
  end
  if fn ~= nil and type(fn) ~= 'function' then
    error('expect: fn must be a function or nil, got ' .. type(fn), 2)
  end
  local info = debug.getinfo(2, 'Sl')
  local e = { n = n, count = 0, where = info.short_src .. ':' .. info.currentline }
  expects[#expects + 1] = e
  return function(...)
    e.count = e.count + 1
    if fn then return fn(...) end
  end
end

function expect_check()
  local list = expects
  expects = {}
  local bad = {}
  for _, e in ipairs(list) do
    if e.count ~= e.n then
      bad[#bad + 1] = ('%s: the callback of this expect ran %d time%s, expected %d'):format(
        e.where, e.count, e.count == 1 and '' or 's', e.n)
    end
  end
  if #bad > 0 then error(table.concat(bad, '; '), 0) end
  return true
end

-- The check runs as the test's own `finally` (busted 2 runs it after
-- the test and before reporting it, so its error fails that test, not a
-- hook beside it).  The test keeps its finally(fn): the one busted
-- allows (the last given) runs first, then the check.
do
  local busted = require 'busted'
  local failed = false
  local function mark() failed = true; return nil, true end
  busted.subscribe({ 'failure', 'it' }, mark)
  busted.subscribe({ 'error', 'it' }, mark)
  busted.subscribe({ 'pending', 'it' }, mark)
  busted.subscribe({ 'test', 'start' }, function(element)
    failed = false
    local env = element.env
    if not (env and env.finally) then return nil, true end  -- (a pending())
    local user
    env.finally(function()
      local ok, err = true, nil
      if user then ok, err = pcall(user) end
      if not ok then expects = {}; error(err, 0) end
      if failed then expects = {} else expect_check() end
    end)
    env.finally = function(fn) user = fn end
    return nil, true
  end)
end

-- }======================================================


-- {====================================================== luaproc

function tmpname(suffix)
  local n = os.tmpname()
  if suffix then
    os.remove(n)
    n = n .. suffix
  end
  return n
end

-- Run a shell command line; returns stdout, exit status (number or
-- 'SIGn'), stderr.
function shell(cmdline, stdin)
  local errf = tmpname()
  local inf
  if stdin then inf = writefile(tmpname(), stdin) end
  local statf = tmpname()
  -- (5.1 and LuaJIT's close gives no status: the shell writes it)
  local p = assert(io.popen('(exec 2>' .. shq(errf) .. ' <' ..
    shq(inf or '/dev/null') .. '; ' .. cmdline .. '); echo $? >' .. shq(statf), 'r'))
  local out = p:read('*a')
  p:close()
  local code = tonumber(readfile(statf))
  local err = readfile(errf) or ''
  os.remove(errf)
  os.remove(statf)
  if inf then os.remove(inf) end
  if code and code > 128 then code = 'SIG' .. (code - 128) end
  return out, code, err
end

-- luaproc(code [, opts]) -> stdout, status, stderr
-- Runs `code` in a fresh `$LUA` (through `timeout`, so a hang is bounded)
-- in the repository root, with LUA_CPATH finding ./childproc.so.
-- opts: args (array), stdin (string), env (table of extra variables),
-- pre (shell text run before, e.g. "trap '' PIPE;"), timeout (seconds, 30),
-- lua (another interpreter than LUA, with its own build).
function luaproc(code, opts)
  opts = opts or {}
  local src = writefile(tmpname('.lua'), code)
  local args = {}
  for i, a in ipairs(opts.args or {}) do args[i] = shq(a) end
  local lua = opts.lua or LUA
  local envs = { 'LUA_CPATH=' .. shq('./build/' .. lua .. '/?.so;;'),
                 'LUA_PATH=' .. shq('./?.lua;./spec/?.lua;;') }
  for k, v in pairs(opts.env or {}) do envs[#envs + 1] = k .. '=' .. shq(v) end
  local cmd = ('cd %s && %s exec env %s timeout -k 2 %d %s %s %s'):format(
    shq(ROOT), opts.pre or '', table.concat(envs, ' '), opts.timeout or 30, lua,
    shq(src), table.concat(args, ' '))
  local out, status, err = shell(cmd, opts.stdin)
  os.remove(src)
  return out, status, err
end

-- }======================================================


-- {====================================================== bad arguments

-- badargs{ {'description', function() ... end, 'pattern' [, 'pattern2'...]}, ... }
-- Each case must raise an error whose message matches every pattern
-- (plain find, case-insensitive), and must start no process.
function badargs(cases)
  local it = busted_env(2).it
  for _, c in ipairs(cases) do
    it('raises for ' .. c[1], function()
      local ok, err = pcall(c[2])
      luassert.is_false(ok, c[1] .. ' did not raise')
      local msg = tostring(err):lower()
      for i = 3, #c do
        luassert.is_truthy(msg:find(c[i]:lower(), 1, true),
          ('error for %s should mention %q: %s'):format(c[1], c[i], tostring(err)))
      end
      -- nothing started, nothing deferred: the loop has nothing to do
      luassert.same({}, children())
      local ran, rerr = pcall(cp.run, 'nowait')
      assert(ran, 'a deferred event was raised: ' .. tostring(rerr))
    end)
  end
end

-- }======================================================

return true
