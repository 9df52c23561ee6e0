-- cp.spawn and the ChildProcess object.
local core, M = ...

local emit, defer = M.emit, M.defer
local type, tostring, pairs, ipairs = type, tostring, pairs, ipairs

local methods = {}
-- The stdin stream is made when first read: until then s[1] holds our
-- end's fd (and false once the child exited and the fd was closed: the
-- stream made then is broken, as one made earlier would be).  Most
-- children are never written to; this spares them an object and a table.
local function stdin_of(s)
  local st = s[1]
  if st == nil or not M.isint(st) and st ~= false then return st end
  local ws
  st, ws = M.writable(st or -1)
  if not s[1] then ws.broken = true end
  s[1] = st
  return st
end

-- fields a child does not hold until they are read (see M.start)
local function getter(s, k)
  if k == 'stdin' then return stdin_of(s)
  elseif k == 'stdout' then return s[2]
  elseif k == 'stderr' then return s[3]
  elseif k == 'stdio' then
    local t = { [0] = stdin_of(s), s[2], s[3] }
    s.stdio = t
    return t
  elseif k == 'spawnargs' and s.spawnfile then
    local t = { s.spawnfile }
    s.spawnargs = t
    return t
  end
end

local ChildProcess, cself = core.class('childproc.ChildProcess', methods, {
  __close = M.CLOSE and function(self) self:kill() end or nil,
  __tostring = function(self)
    return 'ChildProcess (' .. tostring(M.cself(self).pid or 'not started') .. ')'
  end,
  __getter = getter,
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

-- Lists of three words are made once and shared by every plan that has
-- them (plan.stdio is never changed): WORDS3[a][b][c].
local WORDS3 = {}
local function words3(a, b, c)
  local ta = WORDS3[a]
  if not ta then ta = {}; WORDS3[a] = ta end
  local tb = ta[b]
  if not tb then tb = {}; ta[b] = tb end
  local l = tb[c]
  if not l then l = { a, b, c }; tb[c] = l end
  return l
end

local scratch_list = {}  -- stdio_list's work table (it calls no user code)

-- stdio option -> array of n entries (n >= 3), not to be changed
local function stdio_list(fname, stdio)
  local list
  if stdio == nil then
    return words3('pipe', 'pipe', 'pipe')
  elseif type(stdio) == 'string' then
    if not STDIO_WORDS[stdio] or stdio == 'ipc' then
      error(("bad argument to '%s' (invalid stdio '%s')"):format(fname, stdio), 4)
    end
    return words3(stdio, stdio, stdio)
  elseif type(stdio) == 'table' then
    list = scratch_list
    for i = #list, 1, -1 do list[i] = nil end  -- left by a raise
    local n = 0
    for k in pairs(stdio) do
      if not M.isint(k) or k < 1 then
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
      elseif M.isint(e) then
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
  local n, nipc, words = #list, 0, true
  for i = 1, n do
    local e = list[i]
    if e == 'ipc' then nipc = nipc + 1 end
    if type(e) ~= 'string' then words = false end
  end
  local out
  if words and n == 3 then
    out = words3(list[1], list[2], list[3])
  else
    out = M.copy(list, n)
  end
  for i = n, 1, -1 do list[i] = nil end
  if nipc > 1 then
    error(("bad argument to '%s' (stdio can hold only one 'ipc')"):format(fname), 4)
  end
  return out
end

local INT_OPTIONS = { 'uid', 'gid', 'timeout' }

-- plan.spawnargs of a command without arguments, shared by its plans
-- (no plan changes it; a child's public spawnargs is a copy of its own)
local ONLY_COMMAND = setmetatable({}, { __mode = 'v' })

-- Validate everything before anything starts.  Returns the plan: `into`
-- (an empty table to reuse) when given, else a new table.  Nothing is
-- written to it before every check has passed.
function M.spawn_plan(fname, command, args, opts, into)
  command = M.checkstr(fname, 'command', command)
  opts = M.checkoptions(fname, 3, opts, M.SPAWN_OPTIONS)
  local file, spawnargs = command, nil
  if args then
    local n = 0
    for i, a in ipairs(args) do
      spawnargs = spawnargs or { command }
      if type(a) == 'string' and not a:find('\0', 1, true) then
        spawnargs[i + 1] = a
      else  -- the message names the argument
        spawnargs[i + 1] = M.checkstr(fname, ('args[%d]'):format(i), a)
      end
      n = i
    end
    if n ~= #args then
      error(("bad argument #2 to '%s' (args must be an array of strings)"):format(fname), 3)
    end
  end
  if not spawnargs then
    spawnargs = ONLY_COMMAND[command]
    if not spawnargs then
      spawnargs = { command }
      ONLY_COMMAND[command] = spawnargs
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
    exec_argv = { M.unpack(spawnargs) }
    exec_argv[1] = M.checkstr(fname, "option 'argv0'", opts.argv0)
  end
  local cwd = opts.cwd
  if cwd ~= nil then cwd = M.checkstr(fname, "option 'cwd'", cwd) end
  for _, k in ipairs(INT_OPTIONS) do
    local v = opts[k]
    if v ~= nil and (not M.isint(v) or v < 0) then
      error(("bad argument to '%s' (option '%s' must be a non-negative integer)")
        :format(fname, k), 3)
    end
  end
  local flags = 0
  if opts.detached then flags = flags + 1 end
  if opts.processGroup then flags = flags + 2 end
  local env = env_array(fname, opts.env)
  local stdio = stdio_list(fname, opts.stdio)
  local ksig = M.signum(fname, opts.killSignal, 'SIGTERM')
  -- sized for the keys most spawns set (a constructor of nils sizes it)
  local plan = into or { file = nil, spawnfile = nil, spawnargs = nil,
    argv = nil, flags = nil, stdio = nil, opts = nil, killSignal = nil }
  plan.file, plan.spawnfile, plan.spawnargs, plan.argv = file, file, spawnargs, exec_argv
  plan.flags, plan.stdio, plan.opts, plan.killSignal = flags, stdio, opts, ksig
  -- options most spawns leave out (nil: no key)
  plan.env, plan.cwd, plan.uid, plan.gid = env, cwd, opts.uid, opts.gid
  plan.timeout = opts.timeout
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

-- A child's streams: s[1], s[2], s[3] hold stdin, stdout, stderr (array
-- slots: no key each; stdin may be an fd still, see stdin_of); s.stdio,
-- the public table, exists only when the child has streams past fd 2, or
-- once somebody reads it (the getter at the top makes it).

-- the child exited: release stdin, drain what it wrote
local function stream_exited(st)
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

local function on_exit(s, self)
  local code, sig
  if s.pidfd then code, sig = core.waitid(s.pidfd)
  else code, sig = core.waitpid(s.pid) end
  if code == nil and sig == nil then return false end  -- still running
  if code == false then code = nil end  -- the host reaped it: 'exit' (nil, nil)
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
  if M.isint(s[1]) then  -- a stdin nobody made
    core.close(s[1])
    s[1] = false
  end
  if s.stdio then
    for _, st in pairs(s.stdio) do stream_exited(st) end
  else
    for i = 1, 3 do
      local st = s[i]
      if st then stream_exited(st) end
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

-- a Readable's onclosed (lua/stream.lua): owner is the child
local function child_stream_closed(_, owner) stream_closed(cself(owner), owner) end

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
  if M.isint(e) then return e end
  local mt = getmetatable(e)
  if mt == M.Readable or mt == M.Writable then return e:fileno() or -1 end
  return core.fileno(e) or -1
end

local NOARGS = { n = 0 }  -- the args of the child's timers (never changed)

-- 'spawn' of children started one after the other: one queue entry
local function emit_spawn(list)
  for i = 1, #list do
    local self = list[i]
    emit(cself(self), self, 'spawn')
  end
end

-- the handler of every child's pidfd (the loop passes the child)
M.fdclass(ChildProcess, function(_, self) on_exit(cself(self), self) end)

-- The work tables of start(): a spawn makes no table of its own for the
-- fd map, the fds to close after it, the streams it makes, or
-- M.stdio_source's state.  One set is taken while in use and put back
-- emptied, as M.spawn does with its plan (a start() meanwhile, from a
-- __gc, or after one that raised, makes its own).
local function new_scratch()
  local t = { fdmap = {}, after = {}, streams = {}, st = {} }
  t.st.after = t.after
  return t
end
local spare_scratch = new_scratch()

local function scratch_get()
  local t = spare_scratch or new_scratch()
  spare_scratch = nil
  return t
end

-- empty the tables (they keep their size) and give them back
local function scratch_put(t, n)
  local fdmap, after, streams = t.fdmap, t.after, t.streams
  for i = #fdmap, 1, -1 do fdmap[i] = nil end
  for i = n, 1, -1 do streams[i] = nil end
  for i = #after, 1, -1 do after[i] = nil end
  t.st.devnull = nil
  spare_scratch = t
end

-- this side's first n stdio ends: streams destroyed, a bare stdin fd closed
local function drop_streams(t, n)
  for i = 1, n do
    local st = t.streams[i]
    if M.isint(st) then core.close(st)
    elseif st then st:destroy() end
  end
end

-- undo a half-made stdio: close what was opened, destroy the streams
local function stdio_fail(t, n, err, syscall)
  for _, fd in ipairs(t.after) do core.close(fd) end
  drop_streams(t, n)
  return nil, M.syserror(err, syscall)
end

-- Turn plan.stdio into the child's fd map (t.fdmap), this side's streams
-- (t.streams[i] for fd i-1) and the fds to close after the spawn
-- (t.after: the child's ends).  Returns the streams given to the child
-- (false when none), or nil, err.
local function setup_stdio(plan, s, self, t)
  local fdmap, after, streams, given = t.fdmap, t.after, t.streams, false
  local list, ring = plan.stdio, nil
  for i = 1, #list do
    local e, fd = list[i], i - 1
    if e == 'pipe' then
      -- stdout and stderr are pipes, the fastest to read; stdin and extra
      -- fds are sockets (as all of Node's are): writing to one never raises
      -- SIGPIPE, and an extra fd can go both ways
      -- (core.stdio_pair makes `mine` non-blocking)
      local mine, theirs = core.stdio_pair(fd)
      if not mine then
        return stdio_fail(t, i, theirs, (fd == 1 or fd == 2) and 'pipe' or 'socketpair')
      end
      fdmap[i] = theirs
      after[#after + 1] = theirs
      -- stdin: the fd only, made a stream when first read (stdin_of)
      streams[i] = fd == 0 and mine or M.readable(mine)
    elseif e == 'ipc' then
      local childfd, x = M.ipc_setup(plan, s, self, fd)
      if not childfd then return stdio_fail(t, i, x, 'socketpair') end
      fdmap[i] = childfd
      after[#after + 1] = childfd
      if x then  -- the channel's rings and doorbells
        ring = x
        after[#after + 1] = x.after
      end
    else
      local src, err = M.stdio_source(e, fd, t.st)
      if not src then return stdio_fail(t, i, err, 'open') end
      fdmap[i] = src
      local mt = getmetatable(e)
      if mt == M.Readable or mt == M.Writable then
        -- the child shares the file description: it expects blocking I/O
        if src >= 0 then core.nonblock(src, false) end
        given = given or {}
        given[#given + 1] = e
      end
    end
  end
  if ring then  -- the fds after the stdio ones
    for k, f in ipairs(ring) do fdmap[#list + k] = f end
  end
  return given
end

-- Start the child described by plan; events come later, from the loop.
function M.start(plan)
  -- Few keys, the nil ones sizing the table for keys set soon after: an
  -- array slot for stdin (s[1]) and pid, pidfd, _ev.  Absent means:
  -- open_streams 0 (streams that keep 'close' waiting), unrefed false
  -- (the child holds a ref on the loop), killed and connected false (read
  -- from methods), spawnargs {spawnfile} (made by the getter).
  local s = { nil, spawnfile = plan.spawnfile, pid = nil, pidfd = nil, _ev = nil }
  local self = core.object(ChildProcess, s)
  if plan.spawnargs[2] ~= nil then s.spawnargs = plan.spawnargs end
  M.ref()
  local nstdio = #plan.stdio
  local t = scratch_get()
  local given, pid, pidfd, err = setup_stdio(plan, s, self, t)
  if given == nil then
    err = pid
  else
    local step
    pid, pidfd, step = core.spawn(plan.file, plan.argv, plan.env, plan.cwd,
                                  t.fdmap, plan.flags, plan.uid, plan.gid)
    for _, fd in ipairs(t.after) do core.close(fd) end
    if not pid then
      drop_streams(t, nstdio)
      local syscall, path = 'spawn ' .. plan.spawnfile, plan.spawnfile
      if step == 'chdir' then syscall, path = 'chdir', plan.cwd
      elseif step and step ~= 'spawn' then syscall = step end
      err = M.syserror(pidfd, syscall, path,
        { spawnargs = { M.unpack(plan.spawnargs, 2) } })  -- as Node: no command
      pidfd = nil
    end
  end
  if err then
    scratch_put(t, nstdio)
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
  local streams, nopen, extra = t.streams, 0, false
  for i = 1, nstdio do
    local st = streams[i]
    if st then
      if i <= 3 then s[i] = st else extra = true end
      if getmetatable(st) == M.Readable then
        nopen = nopen + 1
        local rs = M.rself(st)
        rs.onclosed, rs.owner = child_stream_closed, self
      end
    end
  end
  if extra then
    local stdio = {}
    for i = 2, nstdio do stdio[i - 1] = streams[i] end
    stdio[0] = stdin_of(s)
    s.stdio = stdio
  end
  if nopen > 0 then s.open_streams = nopen end
  scratch_put(t, nstdio)
  if pidfd then
    M.setev(pidfd, 1, self)
  else
    -- no pidfds here (old kernel, valgrind): ask by pid, backing off
    local tm = { ms = 1, refed = false, args = NOARGS }
    tm.fn = function()
      if not on_exit(s, self) then
        tm.ms = math.min(tm.ms * 2, 50)
        M.timer_start(tm)
      end
    end
    s.poller = tm
    M.timer_start(tm)
  end
  if plan.timeout and plan.timeout > 0 then
    local tm = { ms = plan.timeout, refed = false, args = NOARGS }
    local ksig = plan.killSignal  -- start() keeps no reference to the plan
    tm.fn = function()
      if not s.exited then
        if s.ontimeout then s.ontimeout() end
        self:kill(ksig)
      end
    end
    s.timer = tm
    M.timer_start(tm)
  end
  M.defer_batch(emit_spawn, self)
  return self, s
end

-- cp.spawn(command [, args] [, options])
-- Its plan is garbage once start() returns, so one table serves every
-- spawn: taken while in use (a spawn inside, from a __gc, or one that
-- raised, makes its own), emptied and put back after.
local spare_plan = {}
function M.spawn(command, args, opts)
  local a, o = M.splitargs('spawn', args, opts)
  if type(o) == 'function' then o = nil end
  local into = spare_plan
  spare_plan = nil
  local plan = M.spawn_plan('spawn', command, a, o, into)
  local self = M.start(plan)
  for k in pairs(plan) do plan[k] = nil end
  spare_plan = plan
  return self
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
