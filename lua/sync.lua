-- cp.spawnSync, cp.execSync, cp.execFileSync: block until the child is
-- done.  They never run the async loop nor touch its state: their own
-- pipes, a private poll(2) (core.poll) and the child's pidfd; no
-- M.setev/M.defer/M.ref, no timer, no reaping of anybody else's child.
local core, M = ...

local type, tostring, pairs, ipairs, select, concat =
  type, tostring, pairs, ipairs, select, table.concat
local pcall = pcall   -- (the plain one: a host may replace the global)
local read, write, close, now = core.read, core.write, core.close, core.now

local ETIMEDOUT, ENOBUFS, EPIPE, EIO = 110, 105, 32, 5   -- Linux errno values
local SIGKILL = 9

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

-- plan.stdio -> fdmap for the child, our ends, and the child's ends
-- (closed after the spawn).  nil, errno, syscall when a pipe fails.
local function setup(plan, input)
  if plan.pty then return M.pty_sync_setup(plan, input) end  -- lua/pty.lua
  local fdmap, after, readers, writer = {}, {}, {}, nil
  local st = { after = after }   -- for M.stdio_source
  local function undo(errno, syscall)
    for _, fd in ipairs(after) do close(fd) end
    for _, r in ipairs(readers) do close(r.fd) end
    if writer then close(writer.fd) end
    return nil, errno, syscall
  end
  for i, e in ipairs(plan.stdio) do
    local fd = i - 1
    if e == 'pipe' then
      local r, w = core.pipe()
      if not r then return undo(w, 'pipe') end
      if fd == 0 then
        fdmap[i] = r
        after[#after + 1] = r
        core.nonblock(w, true)
        writer = { fd = w, data = input or '', off = 0 }
      else
        fdmap[i] = w
        after[#after + 1] = w
        core.nonblock(r, true)
        readers[#readers + 1] = { fd = r, slot = fd, chunks = {}, n = 0 }
      end
    else
      local src, err = M.stdio_source(e, fd, st)
      if not src then return undo(err, 'open') end
      fdmap[i] = src
    end
  end
  return fdmap, after, readers, writer
end

-- The blocking part: feed stdin, read every pipe, watch the pidfd, until
-- the child has exited and every pipe is closed.  Fills st.
local function pump(plan, st, readers, writer, maxbuf)
  local pidfd, pid = st.pidfd, st.pid
  local backoff = 1   -- ms between waitpid checks when there is no pidfd
  local deadline = plan.timeout and plan.timeout > 0 and now() + plan.timeout or nil

  local function close_writer()
    if writer and not writer.closed then writer.closed = true; close(writer.fd) end
  end
  local function close_reader(r)
    if not r.closed then
      r.closed = true
      -- a terminal's master closed before its child exits would hang the
      -- child up (SIGHUP): held until then
      if r.tty and not st.exited then r.held = true else close(r.fd) end
    end
  end
  -- timeout or maxBuffer: signal the child once.  Its output is still
  -- read (and dropped past maxBuffer) until it exits, so that it dies of
  -- that signal and not of a SIGPIPE; once it has exited the pipes are
  -- closed, so a grandchild holding them open cannot keep us waiting.
  local function close_readers()
    for _, r in ipairs(readers) do close_reader(r) end
  end
  local function kill(errno)
    st.errno = st.errno or errno
    st.killed = true
    close_writer()
    if st.exited then
      close_readers()
    elseif not st.signalled then
      st.signalled = true
      if pidfd then core.pidfd_kill(pidfd, plan.killSignal)
      else core.kill(pid, plan.killSignal) end  -- not reaped yet: still ours
    end
  end

  if writer and #writer.data == 0 then close_writer() end

  local function on_read(r)
    -- a bounded number of reads per wake-up: the pidfd gets its turn
    for _ = 1, 64 do
      if r.closed then return end
      local chunk, err = read(r.fd)
      if chunk then
        if not r.full then
          local n = r.n + #chunk
          if n > maxbuf then
            local keep = maxbuf - r.n
            if keep > 0 then r.chunks[#r.chunks + 1] = chunk:sub(1, keep) end
            r.n, r.full = maxbuf, true
            kill(ENOBUFS)
          else
            r.n = n
            r.chunks[#r.chunks + 1] = chunk
          end
        end
      elseif chunk == false then
        return
      else
        -- a terminal's EIO: its other side is closed, the end of output
        if err and not (r.tty and err == EIO) then st.errno = st.errno or err end
        return close_reader(r)
      end
    end
  end

  local function on_write()
    while not writer.closed do
      local data = writer.data
      if writer.off >= #data then return close_writer() end
      local n, err = write(writer.fd, data, writer.off)
      if n == false then return end
      if not n then
        -- a child that does not read all its input is not an error
        if err ~= EPIPE and not (writer.tty and err == EIO) then
          st.errno = st.errno or err
        end
        return close_writer()
      end
      writer.off = writer.off + n
    end
  end

  local function on_exit()
    local code, sig
    if pidfd then code, sig = core.waitid(pidfd)
    else code, sig = core.waitpid(pid) end
    if code == nil and sig == nil then return end   -- not yet
    if code == false then code = nil end  -- the host reaped it: unknown
    st.exited = true
    st.status, st.signum = code, sig
    for _, r in ipairs(readers) do
      if r.held then r.held = nil; close(r.fd) end
    end
    if pidfd then close(pidfd) end
    st.pidfd = nil
    -- nobody is left to read the rest of the input
    close_writer()
    -- killed: what it wrote is in the pipes; take it and stop there
    if st.killed then
      for _, r in ipairs(readers) do on_read(r) end
      close_readers()
    end
  end

  local out = {}
  while true do
    -- no pidfds here (old kernel, valgrind): ask by pid, backing off
    if not pidfd and not st.exited then on_exit() end
    local fds, evs, what, n = {}, {}, {}, 0
    if writer and not writer.closed then
      n = n + 1; fds[n], evs[n], what[n] = writer.fd, 2, on_write
    end
    for _, r in ipairs(readers) do
      if not r.closed then
        n = n + 1; fds[n], evs[n], what[n] = r.fd, 1, r
      end
    end
    local ms = -1
    if not st.exited then
      if pidfd then
        n = n + 1; fds[n], evs[n], what[n] = pidfd, 1, on_exit
      else
        ms = backoff
        backoff = math.min(backoff * 2, 50)
      end
    end
    if n == 0 and st.exited then break end
    -- a grandchild holding the terminal: the end after a quiet while
    local quiet = st.exited and plan.pty and M.PTY_GRACE
    if quiet then ms = quiet end
    local expired = false
    if deadline then
      local left = deadline - now()
      if ms < 0 or left < ms then ms = left end
      if left <= 0 then
        deadline = nil
        kill(ETIMEDOUT)
        expired = true   -- (then round again: the kill's effects)
      end
    end
    if not expired then
      core.poll(fds, evs, ms, out)
      local fired = false
      for k = 1, n do
        if out[k] ~= 0 then
          fired = true
          local w = what[k]
          if type(w) == 'table' then on_read(w) else w() end
        end
      end
      if quiet and not fired and ms == quiet then close_readers() end
    end
  end
end

-- plan -> the result table of spawnSync
local function run(plan, input, maxbuf)
  local fdmap, after, readers, writer = setup(plan, input)
  if not fdmap then
    return { pid = 0, error = M.syserror(after, readers) }
  end
  -- made before the child: nothing may raise (out of memory) between its
  -- start and the pcall that cleans up after it
  local st = { pid = false, pidfd = false }
  local pid, pidfd, step = core.spawn(plan.file, plan.argv, plan.env, plan.cwd,
                                      fdmap, plan.flags, plan.uid, plan.gid)
  for _, fd in ipairs(after) do close(fd) end
  if not pid then
    for _, r in ipairs(readers) do close(r.fd) end
    if writer then close(writer.fd) end
    local err
    if step == 'chdir' then
      err = M.syserror(pidfd, 'chdir', plan.cwd, { spawnargs = spawnargs(plan) })
    elseif step and step ~= 'spawn' then
      err = M.syserror(pidfd, step, nil, { spawnargs = spawnargs(plan) })
    else
      err = sync_error(pidfd, plan)
    end
    return { pid = 0, error = err }
  end

  st.pid, st.pidfd = pid, pidfd
  local ok, e = pcall(pump, plan, st, readers, writer, maxbuf)
  if not ok then
    -- a Lua error (memory, an interrupt): leave nothing behind
    if writer and not writer.closed then close(writer.fd) end
    for _, r in ipairs(readers) do if not r.closed or r.held then close(r.fd) end end
    if st.pidfd then
      core.pidfd_kill(st.pidfd, SIGKILL)
      core.poll({ st.pidfd }, { 1 }, -1, {})
      core.waitid(st.pidfd)
      close(st.pidfd)
    elseif not st.exited then
      core.kill(pid, SIGKILL)
      while true do
        local code, sig = core.waitpid(pid)
        if code ~= nil or sig ~= nil then break end  -- (false: reaped elsewhere)
        core.poll({}, {}, 5, {})
      end
    end
    error(e, 0)
  end

  local output = {}
  for _, r in ipairs(readers) do output[r.slot] = concat(r.chunks) end
  if plan.pty then output[2] = '' end  -- the terminal carries both
  return {
    pid = pid,
    output = output,
    stdout = output[1],
    stderr = output[2],
    status = st.status,
    signal = st.signum and M.signals[st.signum] or nil,
    error = st.errno and sync_error(st.errno, plan) or nil,
  }
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
