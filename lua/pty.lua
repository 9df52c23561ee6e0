-- `pty = true | {cols, rows, term}`: the child runs on a new
-- pseudo-terminal (src/pty.c opens it; src/spawn.c's CP_SPAWN_CTTY makes
-- it the controlling tty of the child's new session).  Its stdin is a
-- Writable on a copy of the master, its stdout a Readable on the master,
-- so each stream closes its own fd in whatever order they end.
--
-- The end of the output: the master's read fails with EIO once no process
-- holds the terminal (the kernel hands over everything written before
-- that first).  A grandchild may hold it after the child exited, so then
-- the stream also ends once PTY_GRACE ms pass in which nothing could be
-- read (while the stream flows).
local core, M = ...

local type, tostring, pairs = type, tostring, pairs

local PTY_GRACE = 100
local VEOF = '\4'   -- ^D, the terminal's end-of-file character by default
local DEFAULTS = { cols = 80, rows = 24, term = 'xterm-256color' }
local KEYS = { cols = true, rows = true, term = true }
local KEEPFD = { ownfd = false }

-- a window size of argument n (1..65535), as an integer
local function size(fname, n, v, what)
  v = M.checkint(fname, n, v, what, 1)
  if v > 65535 then
    M.argerror(fname, n, (what and what .. ': ' or '') .. 'value out of range')
  end
  return v
end

-- opts.pty (truthy; opts: argument n) -> { cols, rows, term }, or
-- raises; refuses stdio
function M.pty_options(fname, n, opts)
  local p = opts.pty
  if opts.stdio ~= nil then
    M.argerror(fname, n, "option 'stdio' cannot be given with 'pty'")
  end
  if p == true then return DEFAULTS end
  if type(p) ~= 'table' then M.typeerror(fname, n, p, 'boolean or table', "option 'pty'") end
  for k in pairs(p) do
    if not KEYS[k] then
      M.argerror(fname, n, ("option 'pty': unknown key '%s'"):format(tostring(k)))
    end
  end
  local t = { cols = DEFAULTS.cols, rows = DEFAULTS.rows, term = DEFAULTS.term }
  if p.cols ~= nil then t.cols = size(fname, n, p.cols, "option 'pty.cols'") end
  if p.rows ~= nil then t.rows = size(fname, n, p.rows, "option 'pty.rows'") end
  if p.term ~= nil then t.term = M.checkstr(fname, n, p.term, "option 'pty.term'") end
  return t
end

-- the child's environment: env (an array of 'K=V', nil for ours) with
-- TERM = tty.term unless env gives TERM
function M.pty_env(env, tty)
  if env then
    for i = 1, #env do
      if env[i]:sub(1, 5) == 'TERM=' then return env end
    end
    local out = {}
    for i = 1, #env do out[i] = env[i] end
    out[#out + 1] = 'TERM=' .. tty.term
    return out
  end
  local out = {}
  for k, v in pairs(core.environ()) do
    if k ~= 'TERM' then out[#out + 1] = k .. '=' .. v end
  end
  out[#out + 1] = 'TERM=' .. tty.term
  return out
end

-- a new terminal: master, a copy of it, slave | nil, errno, call
local function open_pair(tty)
  local m, sl, call = core.openpty(tty.cols, tty.rows)
  if not m then return nil, sl, call end
  local w, err = core.dup(m)
  if not w then
    core.close(m)
    core.close(sl)
    return nil, err, 'dup'
  end
  return m, w, sl
end

-- {====================================================== spawn

-- In place of lua/stdio.lua's setup_stdio: the slave on fds 0-2, this side's
-- streams in t.streams.  Returns false (no stream given away) or nil, err.
function M.pty_setup(plan, s, _, t)
  local m, w, sl = open_pair(plan.pty)
  if not m then
    return nil, M.syserror(w, sl, sl == 'posix_openpt' and '/dev/ptmx' or nil)
  end
  t.fdmap[1], t.fdmap[2], t.fdmap[3] = sl, sl, sl
  t.after[#t.after + 1] = sl
  local stdin, ws = M.writable(w, nil, s.loop)
  ws.eof = VEOF
  -- the master stays open until the child has exited, even when the
  -- stream ended first (EIO once the child closed its fds): a terminal
  -- whose master closes hangs up, and the child would die of SIGHUP
  local stdout, rs = M.readable(m, KEEPFD, s.loop)
  rs.tty = { got = false }
  t.streams[1], t.streams[2] = stdin, stdout
  s.tty = true
  local onfail = plan.onfail
  plan.onfail = function(s2, self2)
    core.close(m)
    if onfail then onfail(s2, self2) end
  end
  return false
end

local NOARGS = { n = 0 }

-- The child exited (child.lua): while another process holds the
-- terminal no EIO comes, so the stream ends after PTY_GRACE ms in which
-- it flowed and nothing arrived.
function M.pty_exited(st, rs)
  if rs.fdgone then return core.close(rs.fd) end
  rs.keepfd = nil
  local tm = { ms = PTY_GRACE, refed = false, args = NOARGS }
  rs.tty.got = false
  tm.fn = function()
    if rs.closed or rs.ended then return end
    if rs.flowing and not rs.tty.got then
      M.readable_drain(st)
      if rs.closed or rs.ended then return end
      if not rs.tty.got then return M.readable_end(st) end
    end
    rs.tty.got = false
    rs.loop.timer_start(tm)
  end
  rs.loop.timer_start(tm)
end

-- the master's fd while a stream of the child still holds it
local function master_fd(s)
  local r, w = s[2], s[1]
  local fd = r and r:fileno()
  if not fd and w then fd = w:fileno() end
  return fd
end

-- kill(sig, {group = true}) of a PTY child reaches the terminal's
-- foreground job too (a job-control shell runs it in its own group)
function M.pty_kill_fg(s, signum)
  local fd = master_fd(s)
  local g = fd and core.pty_fgpgrp(fd)
  if g and g > 0 and g ~= s.pid then core.kill(-g, signum) end
end

-- child:resize(cols, rows) -> true, or false once the terminal is closed
function M.child_methods.resize(self, cols, rows)
  local s = M.cself(self)
  cols = size('resize', 2, cols)
  rows = size('resize', 3, rows)
  if not s.tty then
    M.argerror('resize', 1, 'not a PTY child: spawn it with pty = true')
  end
  local fd = master_fd(s)
  if not fd then return false end
  local ok, err = core.pty_resize(fd, cols, rows)
  if not ok then
    s.loop.defer(M.emit, s, self, 'error', M.syserror(err, 'ioctl'))
    return false
  end
  return true
end

-- }======================================================


-- {====================================================== Sync forms

-- spawnSync's input for a terminal: what to write before the stream's
-- close writes the end-of-file character; a partial line gets one more
-- (the first ends the line)
function M.pty_input(input)
  if input ~= '' and input:sub(-1) ~= '\n' then return input .. VEOF end
  return input
end

-- }======================================================
