-- cp.spawnSync, cp.execSync, cp.execFileSync: block until the child is
-- done.  The child is an ordinary one (lua/child.lua's start, the streams
-- of lua/stream.lua, lua/exec.lua's collection of its output) started on
-- a private loop (lua/loop.lua) that runs until the child's 'close' and
-- is closed before they return: the default loop's timers, children and
-- fds wait, untouched, for the next cp.run().
local core, M = ...

local type, tostring, pairs, ipairs, select, concat =
  type, tostring, pairs, ipairs, select, table.concat
local pcall, error = pcall, error   -- (the plain one: a host may replace the global)

local E = core.errno
local ETIMEDOUT, ENOBUFS, EPIPE, EIO = E.ETIMEDOUT, E.ENOBUFS, E.EPIPE, E.EIO

local SPAWNSYNC_OPTIONS = {
  cwd = true, input = true, argv0 = true, stdio = true, env = true,
  uid = true, gid = true, timeout = true, killSignal = true,
  maxBuffer = true, encoding = true, shell = true, windowsHide = true,
  windowsVerbatimArguments = true, pty = true,
}
local EXECSYNC_OPTIONS = {
  cwd = true, input = true, stdio = true, env = true, shell = true,
  uid = true, gid = true, timeout = true, killSignal = true,
  maxBuffer = true, encoding = true, windowsHide = true, pty = true,
}
local EXECFILESYNC_OPTIONS = { argv0 = true, windowsVerbatimArguments = true }
for k in pairs(EXECSYNC_OPTIONS) do EXECFILESYNC_OPTIONS[k] = true end

-- {====================================================== validation

-- opts -> plan, input, maxBuffer (raises on bad arguments)
local function prepare(fname, n, command, args, opts, allowed)
  opts = M.checkoptions(fname, n, opts, allowed)
  local input = opts.input
  if input ~= nil and type(input) ~= 'string' then
    if type(input) == 'number' then input = tostring(input)
    else M.typeerror(fname, n, input, 'string', "option 'input'") end
  end
  local spawnopts, maxbuf = M.exec_options(fname, n, opts, { input = true })
  local plan = M.spawn_plan(fname, command, args, spawnopts, nil, n)
  for i, e in ipairs(plan.stdio) do
    if e == 'ipc' then
      M.argerror(fname, n, ("option 'stdio': entry [%d] 'ipc' is not available in %s")
        :format(i, fname))
    end
  end
  return plan, input, maxbuf
end

-- }======================================================


-- {====================================================== running

-- Node's error for a spawnSync that failed: 'spawnSync ls ENOENT'
local function spawnargs(plan)   -- as Node: without the command
  return { M.unpack(plan.spawnargs, 2) }
end

local function sync_error(errno, plan)
  local e = M.syserror(errno, 'spawnSync ' .. plan.spawnfile, plan.spawnfile,
                       { spawnargs = spawnargs(plan) })
  e.message = e.syscall .. ' ' .. e.code
  return e
end

-- the error of a child that did not start (s.spawnerror, lua/child.lua's):
-- the spawn itself fails as 'spawnSync ls ENOENT', a step before it (a
-- pipe, chdir) under its own name
local function start_error(e, plan)
  if e.syscall == 'spawn ' .. plan.spawnfile then return sync_error(-e.errno, plan) end
  if e.syscall ~= 'chdir' then e.path = nil end
  return e
end

-- Feed the child's stdin (a pipe: the input option, then its end; a
-- terminal: the input and its end-of-file character, twice after a
-- partial line: the first ends the line).  A child that does not read all
-- its input is no error.
local function feed(c, plan, input)
  local stdin = c.child.stdin
  local tty = plan.pty
  stdin:on('error', function(e)
    local errno = -e.errno
    if errno ~= EPIPE and not (tty and errno == EIO) and not c.ex then c.ex = e end
  end)
  input = input or ''
  if tty then input = M.pty_input(input) end
  if input ~= '' then stdin:write(input) end
  stdin:close()   -- (a terminal's close writes its end of file: lua/pty.lua)
end

-- plan -> the result table of spawnSync, the child run on loop lp
local function run_on(lp, plan, input, maxbuf)
  local fds = {}   -- this side's pipes: output[fd]
  for i = 2, #plan.stdio do
    if plan.stdio[i] == 'pipe' then fds[#fds + 1] = i - 1 end
  end
  -- (its keys exist before the child does: setting them cannot fail
  -- for want of memory once it runs, and c.s is there for child_drop)
  local c, closed = { child = nil, s = nil, ex = nil, killed = nil, out = nil,
                      code = nil }, false
  local function isclosed() return closed end
  local ok, e = pcall(M.exec_collect, c, plan, maxbuf, lp, fds,
    function() return sync_error(ENOBUFS, plan) end,
    function() return sync_error(ETIMEDOUT, plan) end,
    function() closed = true end)
  local s = c.s
  if ok and s.spawnerror then
    return { pid = 0, error = start_error(s.spawnerror, plan) }
  end
  if ok then
    if plan.stdio[1] == 'pipe' then ok, e = pcall(feed, c, plan, input) end
    if ok then ok, e = pcall(lp.run_alone, isclosed) end
  end
  if not ok then
    -- a Lua error (memory, an interrupt): leave nothing behind
    if s then M.child_drop(s) end
    error(e, 0)
  end
  local out, ex = c.out, c.ex
  if plan.pty then out[2] = '' end  -- the terminal carries both
  if ex and ex.errno and ex.syscall ~= 'spawnSync ' .. plan.spawnfile then
    ex = sync_error(-ex.errno, plan)   -- a read or write that failed
  end
  return {
    pid = s.pid,
    output = out,
    stdout = out[1],
    stderr = out[2],
    status = s.exitCode,
    signal = s.signalCode,
    error = ex,
  }
end

-- plan -> the result table of spawnSync, on a private loop closed after
local function run(plan, input, maxbuf)
  local cl, err = core.loop_new()
  if not cl then return { pid = 0, error = M.syserror(err, 'epoll_create1') } end
  local ok, lp = pcall(M.newloop, cl)
  if not ok then cl:close(); error(lp, 0) end
  local r
  ok, r = pcall(run_on, lp, plan, input, maxbuf)
  lp.close()
  if not ok then error(r, 0) end
  return r
end

-- }======================================================


-- {====================================================== the functions

-- cp.spawnSync(command [, args] [, options]) -> result
function M.spawnSync(...)
  local command, args, opts = ...
  command = M.checkstr('spawnSync', 1, command, nil, select('#', ...))
  local a, o, _, n = M.splitargs('spawnSync', args, opts)
  local plan, input, maxbuf = prepare('spawnSync', n, command, a, o, SPAWNSYNC_OPTIONS)
  return run(plan, input, maxbuf)
end

-- Node's checkExecSyncError: the error to raise for ret, or nil
local function check(ret, cmd)
  local err
  if ret.error then
    err = ret.error
    for k, v in pairs(ret) do
      if k ~= 'error' then err[k] = v end
    end
  elseif ret.status ~= 0 then
    local msg = 'Command failed: ' .. cmd
    if ret.stderr and #ret.stderr > 0 then msg = msg .. '\n' .. ret.stderr end
    err = M.newerror({ message = msg, status = ret.status, signal = ret.signal,
                       stdout = ret.stdout, stderr = ret.stderr, pid = ret.pid,
                       output = ret.output })
  end
  return err
end

-- As Node: with no stdio option, stderr is captured (for the error) and
-- then copied to this process's stderr.
local function copy_stderr(inherit, ret)
  if inherit and ret.stderr and #ret.stderr > 0 then
    io.stderr:write(ret.stderr)
    io.stderr:flush()
  end
end

-- cp.execSync(command [, options]) -> stdout; raises on failure
function M.execSync(...)
  local command, opts = ...
  command = M.checkstr('execSync', 1, command, nil, select('#', ...))
  opts = M.checkoptions('execSync', 2, opts, EXECSYNC_OPTIONS)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.shell = type(opts.shell) == 'string' and opts.shell or true
  local plan, input, maxbuf = prepare('execSync', 2, command, nil, o, EXECSYNC_OPTIONS)
  local ret = run(plan, input, maxbuf)
  copy_stderr(opts.stdio == nil, ret)
  local err = check(ret, command)
  if err then error(err, 0) end
  return ret.stdout
end

-- cp.execFileSync(file [, args] [, options]) -> stdout; raises on failure
function M.execFileSync(...)
  local file, args, opts = ...
  file = M.checkstr('execFileSync', 1, file, nil, select('#', ...))
  local a, o, _, n = M.splitargs('execFileSync', args, opts)
  local plan, input, maxbuf = prepare('execFileSync', n, file, a, o, EXECFILESYNC_OPTIONS)
  local ret = run(plan, input, maxbuf)
  copy_stderr(o == nil or o.stdio == nil, ret)
  local parts = { (o and o.argv0) or file }
  for i, v in ipairs(a or {}) do parts[i + 1] = tostring(v) end
  local err = check(ret, concat(parts, ' '))
  if err then error(err, 0) end
  return ret.stdout
end

-- }======================================================
