-- cp.spawn and the ChildProcess object.  A child lives on the loop it was
-- started on (s.loop: the default one, or a *Sync function's private one).
local core, M = ...

local emit = M.emit
local tostring, pairs, ipairs, pcall = tostring, pairs, ipairs, pcall
local ESRCH = core.errno.ESRCH
local SIGKILL = M.signals.SIGKILL
-- a child's stdio (lua/stdio.lua)
local setup_stdio, stdio_fail, drop_streams, dead_streams =
  M.setup_stdio, M.stdio_fail, M.drop_streams, M.dead_streams
local scratch_get, scratch_put = M.scratch_get, M.scratch_put

-- A child's state (s.state), in the order it goes through: running; gone
-- (its status is known: it is no longer signalled); exited ('exit' comes
-- or came, and 'close' may follow); closed.  One key for the three stages
-- (a key each would size every child's table larger: see M.start).
local RUNNING, GONE, EXITED, CLOSED = 0, 1, 2, 3
-- the child's 'close' came (lua/task.lua, specs)
function M.child_closed(s) return s.state == CLOSED end

local methods = {}
-- The stdin stream is made when first read: until then s[1] holds our
-- end's fd (and false once the child exited and the fd was closed: the
-- stream made then is broken, as one made earlier would be).  Most
-- children are never written to; this spares them an object and a table.
local function stdin_of(s)
  local st = s[1]
  if st == nil or not M.isint(st) and st ~= false then return st end
  local ws
  st, ws = M.writable(st or -1, nil, s.loop)
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
M.child_methods = methods  -- lua/ipc_stdio.lua adds send and disconnect

-- {====================================================== child life

local function maybe_close(s, self)
  if s.state ~= EXITED or s.open_streams or s.channel_open then return end
  s.state = CLOSED
  if not s.unrefed then s.loop.unref() end  -- (the ref a closed child held)
  if s.timer then s.loop.timer_stop(s.timer) end
  emit(s, self, 'close', s.exitCode, s.signalCode)
  if s.waiters then M.wake_waiters(s) end  -- tasks in wait() (lua/task.lua)
end
M.child_maybe_close = maybe_close

-- A child's streams: s[1], s[2], s[3] hold stdin, stdout, stderr (array
-- slots: no key each; stdin may be an fd still, see stdin_of); s.stdio,
-- the public table, exists only when the child has streams past fd 2, or
-- once somebody reads it (the getter at the top makes it).

-- the child exited: release stdin, drain what it wrote
-- (a readable lent to another child that nobody here reads is theirs to
-- read: not drained, and no longer this child's, so its 'close' comes)
local function stream_exited(st, s)
  if getmetatable(st) == M.Writable then
    M.writable_orphan(st)
  elseif getmetatable(st) == M.Readable then
    local rs = M.rself(st)
    if rs.flowing == nil and M.listeners(rs, 'data') == 0 then
      if rs.lent and rs.onclosed then
        rs.onclosed, rs.owner = nil, nil
        local n = s.open_streams - 1
        s.open_streams = n > 0 and n or nil
        return
      end
      st:resume()
    end
    if rs.flowing then M.readable_drain(st) end
    if rs.tty then M.pty_exited(st, rs) end
  end
end

-- The child's status is only peeked at first, and the child reaped once
-- the work that may raise (out of memory) is done: a raise leaves the
-- pidfd readable and the status there, and the next turn does it again.
local function on_exit(s, self)
  local code, sig
  if s.pidfd then code, sig = core.waitid(s.pidfd, true)
  else code, sig = core.waitpid(s.pid, true) end
  if code == nil and sig == nil then return false end  -- still running
  if code == false then code = nil end  -- the host reaped it: 'exit' (nil, nil)
  -- (a raise up to the streams' work is retried: state exists, and the
  -- status keys may grow a table that has more keys than M.start sized)
  s.state = GONE
  s.exitCode = code
  s.signalCode = sig and M.signals[sig] or nil
  if s.timer then s.loop.timer_stop(s.timer) end
  -- what the child wrote before it exited is delivered before 'exit';
  -- output nobody listens to is drained so that 'close' still comes
  if M.isint(s[1]) then  -- a stdin nobody made
    core.close(s[1])
    s[1] = false
  end
  if s.stdio then
    for _, st in pairs(s.stdio) do stream_exited(st, s) end
  else
    for i = 1, 3 do
      local st = s[i]
      if st then stream_exited(st, s) end
    end
  end
  if s.channel then s.channel.drain() end
  s.state = EXITED  -- only now: 'close' must not overtake 'exit'
  -- nothing from here to the reap allocates (M.forget's tables have the
  -- fd's slots since its setev)
  if s.pidfd then
    core.waitid(s.pidfd)
    s.loop.forget(s.pidfd)
    core.close(s.pidfd)
    s.pidfd = nil
  else
    core.waitpid(s.pid)
    if s.poller then s.loop.timer_stop(s.poller) end
  end
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

-- st (a Readable this side feeds: lua/launcher.lua) becomes the child's
-- stream s[i], which 'close' waits for
function M.child_stream(s, self, i, st)
  s[i] = st
  local rs = M.rself(st)
  rs.onclosed, rs.owner = child_stream_closed, self
  s.open_streams = (s.open_streams or 0) + 1
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

local abandon, attach

-- Start the child described by plan on loop lp (default: M.default);
-- events come later, from that loop.
function M.start(plan, lp)
  lp = lp or M.default
  -- Few keys (8 at most: Lua sizes the hash part to 8 nodes, not 16), the
  -- nil ones sizing the table for keys set soon after: an array slot for
  -- stdin (s[1]) and pid, pidfd, _ev.  Absent means: open_streams 0
  -- (streams that keep 'close' waiting), unrefed false (the user did not
  -- unref(): the child holds a ref on the loop until it closes), killed
  -- and connected false (read from methods), spawnargs {spawnfile} (made
  -- by the getter).  The keys an exit sets size it too (exitCode,
  -- signalCode: set first, where a raise is retried, see on_exit) or are
  -- there from the start (state): a child's end cannot fail half-way out
  -- of memory.
  local s = { nil, spawnfile = plan.spawnfile, loop = lp, pid = nil, pidfd = nil,
              _ev = nil, exitCode = nil, signalCode = nil, state = RUNNING }
  local self = core.object(ChildProcess, s)
  if plan.spawnargs[2] ~= nil then s.spawnargs = plan.spawnargs end
  local nstdio = #plan.stdio
  local t = scratch_get()
  local done, given, pid, pidfd, err =
    pcall(plan.pty and M.pty_setup or setup_stdio, plan, s, self, t)
  if not done then  -- raised (out of memory): close what it had opened
    pcall(stdio_fail, t, nstdio)
    if plan.onfail then pcall(plan.onfail, s, self) end  -- its channel
    error(given, 0)
  end
  if given == nil then
    err = pid
  else
    local step
    pid, pidfd, step = core.spawn(plan.file, plan.argv, plan.env, plan.cwd,
                                  t.fdmap, plan.flags, plan.uid, plan.gid,
                                  plan.pdeathsig)
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
    local stdio = dead_streams(plan.stdio, s)
    s.spawnerror = err
    s.state = EXITED
    if plan.onfail then plan.onfail(s, self) end
    local report = function()
      s.state = CLOSED
      if not s.unrefed then lp.unref() end
      for fd = 0, nstdio - 1 do
        local st = stdio[fd]
        if st then
          if fd == 0 then M.writable_end(st) else M.readable_end(st) end
        end
      end
      emit(s, self, 'error', err)
      emit(s, self, 'close', err.errno, nil)
      if s.waiters then M.wake_waiters(s) end
    end
    -- the ref only once nothing can raise (out of memory) before the
    -- report is queued: a raise leaves no ref keeping the loop alive
    lp.ref()
    local ok, e = pcall(lp.defer, report)
    if not ok then lp.unref(); error(e, 0) end
    return self, s
  end
  lp.ref()
  local ok, e = pcall(attach, plan, s, self, t, given, nstdio, pid, pidfd)
  if not ok then
    abandon(s, t, nstdio, pid, pidfd)
    if plan.onfail then pcall(plan.onfail, s, self) end  -- its channel
    error(e, 0)
  end
  return self, s
end

-- the tables abandon() waits with, made beforehand: it must not allocate
local ABANDON_FDS, ABANDON_EVS, ABANDON_OUT, NOFDS = { 0 }, { core.events.R }, { 0 }, {}

-- SIGKILL the child and reap it now, its pidfd closed
local function kill_reap(s, pid, pidfd)
  if pidfd then
    core.pidfd_kill(pidfd, SIGKILL)
    ABANDON_FDS[1] = pidfd
    core.poll(ABANDON_FDS, ABANDON_EVS, -1, ABANDON_OUT)
    core.waitid(pidfd)
    pcall(s.loop.forget, pidfd)
    core.close(pidfd)
  else
    core.kill(pid, SIGKILL)
    local code, sig = core.waitpid(pid)
    while code == nil and sig == nil do  -- (false: reaped elsewhere)
      core.poll(NOFDS, NOFDS, 5, ABANDON_OUT)
      code, sig = core.waitpid(pid)
    end
  end
end

-- A child just started whose setting up raised (out of memory): it must
-- not run on unwatched.  Killed, reaped, its pidfd and streams closed,
-- its ref dropped; allocating nothing where it can.
abandon = function(s, t, nstdio, pid, pidfd)
  kill_reap(s, pid, pidfd)
  if s.poller then s.loop.timer_stop(s.poller) end
  if s.timer then s.loop.timer_stop(s.timer) end
  s.pidfd, s.state = nil, CLOSED
  pcall(drop_streams, t, nstdio)
  if not s.unrefed then s.loop.unref() end
end

-- a child's stream closed now, allocating nothing (a terminal's master,
-- which its Readable keeps open until the child's exit, too)
local function drop_stream(st)
  if getmetatable(st) == M.Readable then
    local rs = M.rself(st)
    if rs.tty and rs.keepfd then
      rs.keepfd = nil
      if rs.fdgone then core.close(rs.fd) end
    end
  end
  if st then pcall(st.destroy, st) end
end

-- A running child whose owner gives up on it (a *Sync function stopped
-- by a Lua error: its private loop closes next): killed and reaped now,
-- its streams' fds closed (a terminal's master too), whatever their state.
function M.child_drop(s)
  if s.pidfd then
    kill_reap(s, s.pid, s.pidfd)
    s.pidfd = nil
  elseif s.pid and s.state < EXITED then
    kill_reap(s, s.pid, nil)
  end
  if s.state < EXITED then s.state = EXITED end
  if M.isint(s[1]) then core.close(s[1]); s[1] = false end
  if s.stdio then
    for _, st in pairs(s.stdio) do drop_stream(st) end
  else
    for i = 1, 3 do drop_stream(s[i]) end
  end
end

-- The rest of start(), once the child runs (run under pcall: see abandon)
attach = function(plan, s, self, t, given, nstdio, pid, pidfd)
  s.pid, s.pidfd = pid, pidfd
  if given then
    for _, st in ipairs(given) do
      if getmetatable(st) == M.Readable then M.readable_lent(st) end
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
  local lp = s.loop
  if pidfd then
    lp.setev(pidfd, core.events.R, self)
  else
    -- no pidfds here (old kernel, valgrind): ask by pid, backing off
    local tm = { ms = 1, refed = false, args = NOARGS }
    tm.fn = function()
      if not on_exit(s, self) then
        tm.ms = math.min(tm.ms * 2, 50)
        lp.timer_start(tm)
      end
    end
    s.poller = tm
    lp.timer_start(tm)
  end
  if plan.timeout and plan.timeout > 0 then
    local tm = { ms = plan.timeout, refed = false, args = NOARGS }
    local ksig = plan.killSignal  -- start() keeps no reference to the plan
    tm.fn = function()
      if s.state < EXITED then
        if s.ontimeout then s.ontimeout() end
        self:kill(ksig)
      end
    end
    s.timer = tm
    lp.timer_start(tm)
  end
  lp.defer_batch(emit_spawn, self)
end

-- cp.spawn(command [, args] [, options])
-- Its plan is garbage once start() returns, so one table serves every
-- spawn: taken while in use (a spawn inside, from a __gc, or one that
-- raised, makes its own), emptied and put back after.
local spare_plan = {}
function M.spawn(...)
  local command, args, opts = ...
  if command == nil then M.typeerror('spawn', 1, nil, 'string', nil, select('#', ...)) end
  local a, o, _, optn = M.splitargs('spawn', args, opts)
  local into = spare_plan
  spare_plan = nil
  local plan = M.spawn_plan('spawn', command, a, o, into, optn)
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
  local signum = M.signum('kill', 2, sig, 'SIGTERM')
  local group = M.checktable('kill', 3, opts, true) and opts.group
  if s.state ~= RUNNING then return false end
  local ok, err
  if group then
    if core.getpgid(s.pid) ~= s.pid then
      M.argerror('kill', 3, "option 'group': the child does not lead a process"
        .. " group; spawn it with detached or processGroup")
    end
    ok, err = core.kill(-s.pid, signum)
    if ok and s.tty then M.pty_kill_fg(s, signum) end
  elseif s.pidfd then
    ok, err = core.pidfd_kill(s.pidfd, signum)
  else
    ok, err = core.kill(s.pid, signum)  -- not reaped yet: still ours
  end
  if ok then
    if signum ~= 0 then s.killed = true end
    return true
  end
  if err ~= ESRCH then  -- it is gone already, not an error
    s.loop.defer(emit, s, self, 'error', M.syserror(err, 'kill'))
  end
  return false
end

function methods.ref(self)
  local s = cself(self)
  if s.unrefed and s.state ~= CLOSED then s.unrefed = nil; s.loop.ref() end
  if s.channel then s.channel.ref() end
  return self
end

-- unref(): the loop may end while this child runs (as in Node, its flowing
-- stdio streams still count: use stdio = "ignore" for a child left behind)
function methods.unref(self)
  local s = cself(self)
  if not s.unrefed and s.state ~= CLOSED then s.unrefed = true; s.loop.unref() end
  if s.channel then s.channel.unref() end
  return self
end

-- }======================================================
