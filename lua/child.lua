-- cp.spawn and the ChildProcess object.
local core, M = ...

local emit, defer = M.emit, M.defer
local type, tostring, pairs, ipairs = type, tostring, pairs, ipairs

local methods = {}
local ChildProcess, cself = core.class('childproc.ChildProcess', methods, {
  __close = function(self) self:kill() end,
  __tostring = function(self)
    return 'ChildProcess (' .. tostring(M.cself(self).pid or 'not started') .. ')'
  end,
})
M.ChildProcess = ChildProcess
M.cself = cself
M.emitter_methods(methods, cself)
-- public fields a child has not set (yet) are read from here: a key fewer
-- in each child's fields table
methods.killed, methods.connected = false, false
M.child_methods = methods  -- lua/ipc.lua adds send and disconnect

-- options each function accepts
M.SPAWN_OPTIONS = {
  cwd = true, env = true, argv0 = true, shell = true, stdio = true,
  detached = true, processGroup = true, uid = true, gid = true,
  timeout = true, killSignal = true, serialization = true,
  maxMessageSize = true, windowsHide = true, windowsVerbatimArguments = true,
}

-- {====================================================== the plan

local function env_array(fname, env)
  if env == nil then return nil end
  if type(env) ~= 'table' then
    error(("bad argument to '%s' (option 'env' must be a table)"):format(fname), 4)
  end
  local out = {}
  for k, v in pairs(env) do
    k = M.checkstr(fname, 'env key', k)
    if k:find('=', 1, true) then
      error(("bad argument to '%s' (env key '%s' contains '=')"):format(fname, k), 4)
    end
    v = M.checkstr(fname, 'env value', tostring(v))
    out[#out + 1] = k .. '=' .. v
  end
  table.sort(out)
  return out
end

local STDIO_WORDS = { pipe = true, inherit = true, ignore = true, ipc = true,
                      overlapped = true }

-- stdio option -> array of n entries (n >= 3)
local function stdio_list(fname, stdio)
  local list
  if stdio == nil then
    list = { 'pipe', 'pipe', 'pipe' }
  elseif type(stdio) == 'string' then
    if not STDIO_WORDS[stdio] or stdio == 'ipc' then
      error(("bad argument to '%s' (invalid stdio '%s')"):format(fname, stdio), 4)
    end
    list = { stdio, stdio, stdio }
  elseif type(stdio) == 'table' then
    list = { nil, nil, nil }  -- sized for the usual 3
    local n = 0
    for k in pairs(stdio) do
      if math.type(k) ~= 'integer' or k < 1 then
        error(("bad argument to '%s' (stdio must be an array)"):format(fname), 4)
      end
      if k > n then n = k end
    end
    for i = 1, math.max(n, 3) do
      local e = stdio[i]
      if e == nil or e == false then e = i <= 3 and 'pipe' or 'ignore' end
      local te = type(e)
      if te == 'string' then
        if not STDIO_WORDS[e] then
          error(("bad argument to '%s' (invalid stdio[%d] '%s')"):format(fname, i, e), 4)
        end
        if e == 'overlapped' then e = 'pipe' end
      elseif math.type(e) == 'integer' then
        if e < 0 then
          error(("bad argument to '%s' (invalid stdio[%d] fd %d)"):format(fname, i, e), 4)
        end
      elseif te == 'userdata' then
        local ok = core.fileno(e) or (getmetatable(e) == M.Readable)
          or (getmetatable(e) == M.Writable)
        if not ok then
          error(("bad argument to '%s' (stdio[%d] is not a stream or an open file)")
            :format(fname, i), 4)
        end
      else
        error(("bad argument to '%s' (invalid stdio[%d]: %s)"):format(fname, i, te), 4)
      end
      list[i] = e
    end
  else
    error(("bad argument to '%s' (option 'stdio' must be a string or an array)")
      :format(fname), 4)
  end
  local nipc = 0
  for _, e in ipairs(list) do if e == 'ipc' then nipc = nipc + 1 end end
  if nipc > 1 then
    error(("bad argument to '%s' (stdio can hold only one 'ipc')"):format(fname), 4)
  end
  return list
end

local INT_OPTIONS = { 'uid', 'gid', 'timeout' }

-- Validate everything before anything starts.  Returns the plan.
function M.spawn_plan(fname, command, args, opts)
  command = M.checkstr(fname, 'command', command)
  opts = M.checkoptions(fname, 3, opts, M.SPAWN_OPTIONS)
  local file, spawnargs = command, { command }
  if args then
    local n = 0
    for i, a in ipairs(args) do
      spawnargs[i + 1] = M.checkstr(fname, ('args[%d]'):format(i), a)
      n = i
    end
    if n ~= #args then
      error(("bad argument #2 to '%s' (args must be an array of strings)"):format(fname), 3)
    end
  end
  if opts.shell then
    local sh = opts.shell == true and '/bin/sh'
      or M.checkstr(fname, "option 'shell'", opts.shell)
    local line = table.concat(spawnargs, ' ')
    file, spawnargs = sh, { sh, '-c', line }
  end
  local exec_argv = spawnargs  -- the same table unless argv0 changes [1]
  if opts.argv0 ~= nil then
    exec_argv = { table.unpack(spawnargs) }
    exec_argv[1] = M.checkstr(fname, "option 'argv0'", opts.argv0)
  end
  local cwd = opts.cwd
  if cwd ~= nil then cwd = M.checkstr(fname, "option 'cwd'", cwd) end
  for _, k in ipairs(INT_OPTIONS) do
    local v = opts[k]
    if v ~= nil and (math.type(v) ~= 'integer' or v < 0) then
      error(("bad argument to '%s' (option '%s' must be a non-negative integer)")
        :format(fname, k), 3)
    end
  end
  local flags = 0
  if opts.detached then flags = flags | 1 end
  if opts.processGroup then flags = flags | 2 end
  local env = env_array(fname, opts.env)
  local stdio = stdio_list(fname, opts.stdio)
  local plan = {
    file = file, spawnfile = file, spawnargs = spawnargs, argv = exec_argv,
    flags = flags, stdio = stdio, opts = opts,
    killSignal = M.signum(fname, opts.killSignal, 'SIGTERM'),
  }
  -- options most spawns leave out: the table is sized for the keys above
  if env then plan.env = env end
  if cwd then plan.cwd = cwd end
  if opts.uid then plan.uid = opts.uid end
  if opts.gid then plan.gid = opts.gid end
  if opts.timeout then plan.timeout = opts.timeout end
  return plan
end

-- }======================================================


-- {====================================================== child life

local function maybe_close(s, self)
  if s.closed or not s.exited or s.open_streams or s.channel_open then return end
  s.closed = true
  if not s.unrefed then s.unrefed = true; M.unref() end
  if s.timer then M.timer_stop(s.timer) end
  emit(s, self, 'close', s.exitCode, s.signalCode)
end
M.child_maybe_close = maybe_close

local function on_exit(s, self)
  local code, sig
  if s.pidfd then code, sig = core.waitid(s.pidfd)
  else code, sig = core.waitpid(s.pid) end
  if code == nil and sig == nil then return false end  -- still running
  if s.pidfd then
    M.forget(s.pidfd)
    core.close(s.pidfd)
    s.pidfd = nil
  elseif s.poller then
    M.timer_stop(s.poller)
  end
  s.gone = true
  s.exitCode = code
  s.signalCode = sig and M.signals[sig] or nil
  if s.timer then M.timer_stop(s.timer) end
  -- what the child wrote before it exited is delivered before 'exit';
  -- output nobody listens to is drained so that 'close' still comes
  for _, st in pairs(s.stdio) do
    if getmetatable(st) == M.Writable then
      M.writable_orphan(st)
    elseif getmetatable(st) == M.Readable then
      local rs = M.rself(st)
      if rs.flowing == nil and M.listeners(rs, 'data') == 0 then
        st:resume()
      end
      if rs.flowing then M.readable_drain(st) end
    end
  end
  if s.channel then s.channel.drain() end
  s.exited = true  -- only now: 'close' must not overtake 'exit'
  emit(s, self, 'exit', s.exitCode, s.signalCode)
  maybe_close(s, self)
  return true
end

local function stream_closed(s, self)
  local n = s.open_streams - 1
  s.open_streams = n > 0 and n or nil
  maybe_close(s, self)
end

-- The child's fd for a stdio entry that needs no new pipe: 'inherit',
-- 'ignore', an integer, a childproc stream or a Lua file (-1: closed in
-- the child).  /dev/null is opened once per spawn: t.devnull, also listed
-- in t.after (fds to close once the child runs).  nil, errno on failure.
function M.stdio_source(e, fd, t)
  if e == 'inherit' then return core.isopen(fd) and fd or -1 end
  if e == 'ignore' then
    if fd > 2 then return -1 end
    if not t.devnull then
      local nfd, err = core.open('/dev/null', 'rw')
      if not nfd then return nil, err end
      t.devnull = nfd
      t.after[#t.after + 1] = nfd
    end
    return t.devnull
  end
  if math.type(e) == 'integer' then return e end
  local mt = getmetatable(e)
  if mt == M.Readable or mt == M.Writable then return e:fileno() or -1 end
  return core.fileno(e) or -1
end

local function stdio_fail(after, stdio, err, syscall)
  for _, fd in ipairs(after) do core.close(fd) end
  for _, st in pairs(stdio) do st:destroy() end
  return nil, M.syserror(err, syscall)
end

local NOARGS = { n = 0 }  -- the args of the child's timers (never changed)

local function emit_spawn(self) emit(cself(self), self, 'spawn') end

-- the pidfd's handler: a closure over self only (one upvalue)
local function exit_handler(self)
  return function() on_exit(cself(self), self) end
end

-- Turn plan.stdio into the child's fd map and this side's streams.
-- Returns fdmap, stdio table, the fds to close after the spawn (the
-- child's ends), the streams given to the child (nil when none).
local function setup_stdio(plan, s, self)
  local fdmap, stdio, after, given = { nil, nil, nil }, {}, { nil, nil }, nil
  local st = { after = after }   -- for M.stdio_source
  for i, e in ipairs(plan.stdio) do
    local fd = i - 1
    if e == 'pipe' then
      -- stdout and stderr are pipes, the fastest to read; stdin and extra
      -- fds are sockets (as all of Node's are): writing to one never raises
      -- SIGPIPE, and an extra fd can go both ways
      local mine, theirs, what
      if fd == 1 or fd == 2 then
        mine, theirs = core.pipe()
        what = 'pipe'
      else
        mine, theirs = core.socketpair()
        what = 'socketpair'
      end
      if not mine then return stdio_fail(after, stdio, theirs, what) end
      fdmap[i] = theirs
      after[#after + 1] = theirs
      core.nonblock(mine, true)
      stdio[fd] = fd == 0 and M.writable(mine) or M.readable(mine)
    elseif e == 'ipc' then
      local childfd, err = M.ipc_setup(plan, s, self, fd)
      if not childfd then return stdio_fail(after, stdio, err, 'socketpair') end
      fdmap[i] = childfd
      after[#after + 1] = childfd
    else
      local src, err = M.stdio_source(e, fd, st)
      if not src then return stdio_fail(after, stdio, err, 'open') end
      fdmap[i] = src
      local mt = getmetatable(e)
      if mt == M.Readable or mt == M.Writable then
        -- the child shares the file description: it expects blocking I/O
        if fdmap[i] >= 0 then core.nonblock(fdmap[i], false) end
        given = given or {}
        given[#given + 1] = e
      end
    end
  end
  return fdmap, stdio, after, given
end


-- Start the child described by plan; events come later, from the loop.
function M.start(plan)
  -- Few keys, the nil ones sizing the table for keys set soon after.
  -- Absent means: open_streams 0 (streams that keep 'close' waiting),
  -- unrefed false (the child holds a ref on the loop), killed and
  -- connected false (read from methods).
  local s = {
    spawnfile = plan.spawnfile, spawnargs = plan.spawnargs,
    stdio = nil, pid = nil, pidfd = nil, stdin = nil, _ev = nil,
  }
  local self = core.object(ChildProcess, s)
  M.ref()
  local fdmap, stdio, after, given = setup_stdio(plan, s, self)
  local pid, pidfd, err
  if not fdmap then
    err = stdio
  else
    if plan.prespawn then plan.prespawn(plan) end
    local step
    pid, pidfd, step = core.spawn(plan.file, plan.argv, plan.env, plan.cwd,
                                  fdmap, plan.flags, plan.uid, plan.gid)
    for _, fd in ipairs(after) do core.close(fd) end
    if not pid then
      for _, st in pairs(stdio) do st:destroy() end
      local syscall, path = 'spawn ' .. plan.spawnfile, plan.spawnfile
      if step == 'chdir' then syscall, path = 'chdir', plan.cwd
      elseif step and step ~= 'spawn' then syscall = step end
      err = M.syserror(pidfd, syscall, path,
        { spawnargs = { table.unpack(plan.spawnargs, 2) } })  -- as Node: no command
      pidfd = nil
    end
  end
  if err then
    s.stdio = {}
    s.spawnerror = err
    s.exited = true
    if plan.onfail then plan.onfail(s, self) end
    defer(function()
      s.closed = true
      if not s.unrefed then s.unrefed = true; M.unref() end
      emit(s, self, 'error', err)
      emit(s, self, 'close', err.errno, nil)
    end)
    return self, s
  end
  s.pid, s.pidfd = pid, pidfd
  if given then
    for _, st in ipairs(given) do
      if getmetatable(st) == M.Readable then M.readable_giveaway(st)
      else M.writable_giveaway(st) end
    end
  end
  s.stdio = stdio
  s.stdin, s.stdout, s.stderr = stdio[0], stdio[1], stdio[2]
  for _, st in pairs(stdio) do
    if getmetatable(st) == M.Readable then
      s.open_streams = (s.open_streams or 0) + 1
      M.rself(st).onclosed = function() stream_closed(s, self) end
    end
  end
  if pidfd then
    M.setev(pidfd, 1, exit_handler(self))
  else
    -- no pidfds here (old kernel, valgrind): ask by pid, backing off
    local t = { ms = 1, refed = false, args = NOARGS }
    t.fn = function()
      if not on_exit(s, self) then
        t.ms = math.min(t.ms * 2, 50)
        M.timer_start(t)
      end
    end
    s.poller = t
    M.timer_start(t)
  end
  if plan.timeout and plan.timeout > 0 then
    local t = { ms = plan.timeout, refed = false, args = NOARGS }
    t.fn = function()
      if not s.exited then
        if s.ontimeout then s.ontimeout() end
        self:kill(plan.killSignal)
      end
    end
    s.timer = t
    M.timer_start(t)
  end
  if plan.onstart then plan.onstart(s, self) end
  defer(emit_spawn, self)
  return self, s
end

-- cp.spawn(command [, args] [, options])
function M.spawn(command, args, opts)
  local a, o = M.splitargs('spawn', args, opts)
  if type(o) == 'function' then o = nil end
  local plan = M.spawn_plan('spawn', command, a, o)
  return (M.start(plan))
end

-- }======================================================


-- {====================================================== methods

-- kill([signal] [, {group = true}]) -> boolean
function methods.kill(self, sig, opts)
  local s = cself(self)
  local signum = M.signum('kill', sig, 'SIGTERM')
  local group = type(opts) == 'table' and opts.group
  if s.exited or s.gone then return false end
  local ok, err
  if group then
    if core.getpgid(s.pid) ~= s.pid then
      error("bad argument to 'kill' (the child does not lead a process group;"
        .. " spawn it with detached or processGroup)", 2)
    end
    ok, err = core.kill(-s.pid, signum)
  elseif s.pidfd then
    ok, err = core.pidfd_kill(s.pidfd, signum)
  else
    ok, err = core.kill(s.pid, signum)  -- not reaped yet: still ours
  end
  if ok then
    if signum ~= 0 then s.killed = true end
    return true
  end
  if err ~= 3 then  -- ESRCH: it is gone already, not an error
    defer(emit, s, self, 'error', M.syserror(err, 'kill'))
  end
  return false
end

function methods.ref(self)
  local s = cself(self)
  if s.unrefed and not s.closed then s.unrefed = nil; M.ref() end
  if s.channel then s.channel.ref() end
  return self
end

-- unref(): the loop may end while this child runs (as in Node, its flowing
-- stdio streams still count: use stdio = "ignore" for a child left behind)
function methods.unref(self)
  local s = cself(self)
  if not s.unrefed then s.unrefed = true; M.unref() end
  if s.channel then s.channel.unref() end
  return self
end

-- wait() -> exitCode, signalCode, after 'close'
function methods.wait(self)
  local s = cself(self)
  M.run_until(function() return s.closed end)
  return s.exitCode, s.signalCode
end

-- }======================================================
