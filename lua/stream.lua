-- Readable and Writable streams over non-blocking fds, with Node's
-- flowing mode, pipe() with backpressure, and a 64 KiB high-water mark.
-- A stream works on the loop it was made on (s.loop, lua/loop.lua).
local core, M = ...

local read, write = core.read, core.write
local emit = M.emit
local wq_init, wq_push, wq_flush, wq_clear = M.wq_init, M.wq_push, M.wq_flush, M.wq_clear
local R, W, HUP = core.events.R, core.events.W, core.events.HUP
local HIGH_WATER = M.HIGH_WATER
local EPIPE, EIO = core.errno.EPIPE, core.errno.EIO

-- {====================================================== Readable

local rmethods = {}
local Readable, rself = core.class('childproc.Readable', rmethods)
M.Readable = Readable

-- Let go of the fd: unwatched and closed (unless it is not ours).  (Its
-- close alone would not do for epoll: a process forked meanwhile may hold
-- the same file open, and epoll keeps watching a file until all its fds
-- are closed.)
local function r_dropfd(s)
  if s.fdgone then return end
  -- forget first: a raise (out of memory) there changes nothing, and the
  -- fd's end of file comes again next turn
  s.loop.forget(s.fd)
  s.fdgone = true
  if s.watched then s.watched = false; s.loop.unref() end
  if not s.keepfd then core.close(s.fd) end
end

local function r_close(s, self, err)
  if s.closed then return end
  s.closed = true
  r_dropfd(s)
  if err then emit(s, self, 'error', err) end
  emit(s, self, 'close')
  if s.onclosed then s.onclosed(self, s.owner) end
end

local r_read

-- the fd handler of every Readable (the loop passes the events and the
-- stream)
M.fdclass(Readable, function(ev, self) r_read(rself(self), self, false, ev) end)

-- Start or stop watching according to the flowing state.
local function r_update(s, self)
  local want = s.flowing and not s.closed and not s.ended
  if want and not s.watched then
    s.watched = true
    s.loop.ref()
    s.loop.setev(s.fd, R, self)
  elseif not want and s.watched then
    s.watched = false
    s.loop.unref()
    s.loop.setev(s.fd, 0)
  end
end

-- Read what is there now: once, or when drain is set until it would block
-- (a child that exited has written all it will write), at most a pipe's
-- worth of reads so a grandchild that keeps writing cannot hold us here.
-- ev: the loop's event bits; HUP (the writers are gone and nothing is
-- left to read) is the end of file without a read.
local DRAIN_READS = 16

local function r_end(s, self)
  -- the fd goes first: an 'end' listener that runs the loop must not
  -- be woken again and again by the same hang-up
  r_dropfd(s)  -- (before ended: a raise in it leaves the stream as it was)
  s.ended = true
  emit(s, self, 'end')
  r_close(s, self)
end

function r_read(s, self, drain, ev)
  local reads = 0
  repeat
    reads = reads + 1
    if s.closed or s.ended or not s.flowing then return end
    local chunk, err
    -- (a terminal's hang-up may come before the last of its output
    -- reached the master: it is read until EIO)
    if not (ev and M.hasbit(ev, HUP)) or s.tty then chunk, err = read(s.fd) end
    if chunk then
      if s.tty then s.tty.got = true end  -- lua/pty.lua's end rule
      emit(s, self, 'data', chunk)
    elseif chunk == false then
      return
    elseif err and not (err == EIO and s.tty) then
      r_close(s, self, M.syserror(err, 'read'))
      return
    else  -- end of file; a terminal's EIO: its other side is closed
      r_end(s, self)
      return
    end
  until not drain or reads >= DRAIN_READS
end
M.readable_drain = function(self) local s = rself(self); r_read(s, self, true) end

-- a 'data' listener starts the flow, unless the user paused explicitly
local function r_onlisten(s, self, name)
  if name == 'data' and s.flowing == nil then
    s.flowing = true
    r_update(s, self)
  end
end
M.emitter_methods(rmethods, rself, r_onlisten)

-- A Readable over fd, on loop lp (default: M.default).  opts.ownfd:
-- close fd when done (default true).
-- s.keepfd: the fd is not ours to close.  s.onclosed(self, s.owner), if
-- set, runs after 'close' (the child counts its open streams so).  The
-- table is sized for the keys a flowing stream gets.
function M.readable(fd, opts, lp)
  local s = { fd = fd, loop = lp or M.default, keepfd = opts and opts.ownfd == false or nil,
              flowing = nil, watched = nil, _ev = nil, onclosed = nil,
              owner = nil, ended = nil, fdgone = nil,
              closed = nil }
  return core.object(Readable, s), s
end

function rmethods.pause(self)
  local s = rself(self)
  s.flowing = false
  r_update(s, self)
  return self
end

function rmethods.resume(self)
  local s = rself(self)
  s.flowing = true
  r_update(s, self)
  return self
end

function rmethods.isPaused(self) return rself(self).flowing == false end

function rmethods.fileno(self)
  local s = rself(self)
  if s.closed or s.fdgone then return nil end
  return s.fd
end

function rmethods.destroy(self, err)
  local s = rself(self)
  if not s.closed then
    s.ended = true
    r_close(s, self, err)
  end
  return self
end

-- pipe(dest [, {['end'] = true}]) -> dest
function rmethods.pipe(self, dest, opts)
  local s = rself(self)
  if type(dest) ~= 'userdata' and type(dest) ~= 'table' then
    M.typeerror('pipe', 2, dest, 'childproc.Writable')
  end
  M.checktable('pipe', 3, opts, true)
  local p = { dest = dest }
  local src = self
  p.ondata = function(chunk)
    if dest:write(chunk) == false then
      src:pause()
      if not p.waiting then
        p.waiting = true
        dest:once('drain', p.ondrain)
      end
    end
  end
  p.ondrain = function()
    p.waiting = false
    if s.pipes and s.pipes[dest] then src:resume() end
  end
  p.onend = function()
    if not (opts and opts['end'] == false) then dest:close() end
  end
  s.pipes = s.pipes or {}
  s.pipes[dest] = p
  self:on('data', p.ondata)
  self:on('end', p.onend)
  self:resume()
  return dest
end

function rmethods.unpipe(self, dest)
  local s = rself(self)
  if not s.pipes then return self end
  for d, p in pairs(s.pipes) do
    if dest == nil or d == dest then
      self:off('data', p.ondata)
      self:off('end', p.onend)
      if p.waiting then d:off('drain', p.ondrain) end
      s.pipes[d] = nil
    end
  end
  if next(s.pipes) == nil then s.pipes = nil; self:pause() end
  return self
end

-- The stdout of a child that never started: no fd, and it ends at once
-- (M.readable_end, from the loop), so listeners attached after spawn work.
function M.readable_dead(lp)
  local self, s = M.readable(-1, { ownfd = false }, lp)
  s.ended, s.fdgone = true, true
  return self
end

-- end the stream now, as at an end of file (a dead stream; lua/pty.lua)
function M.readable_end(self)
  local s = rself(self)
  if s.closed then return end
  s.ended = true
  emit(s, self, 'end')
  r_close(s, self)
end

-- Lent to a child (its stdio): the stream stays this process's.  Once
-- its owner child has exited, one that nobody here reads is not drained
-- (lua/child.lua); a guard closes its fd when Lua drops the stream unread.
local Guard, gself   -- (gself: a local the __gc below can see)
Guard, gself = core.class('childproc.LentGuard', {}, {
  __gc = function(g)
    local s = gself(g)
    if not s.closed and not s.fdgone and not s.watched then
      s.fdgone = true
      s.loop.forget(s.fd)
      if not s.keepfd then core.close(s.fd) end
    end
  end,
})
function M.readable_lent(self)
  local s = rself(self)
  if not s.lent then s.lent = core.object(Guard, s) end
end

M.rself = rself

-- }======================================================


-- {====================================================== Writable

local wmethods = {}
local Writable, wself = core.class('childproc.Writable', wmethods)
M.Writable = Writable
M.emitter_methods(wmethods, wself)
M.wself = wself

local function w_close(s, self, err)
  if s.closed then return end
  s.closed = true
  if s.holding then s.holding = false; s.loop.unref() end
  if not s.broken then
    s.loop.forget(s.fd)
    if not s.keepfd then core.close(s.fd) end
  end
  if s.q then wq_clear(s, s.loop.dispatch, err) end
  if err then emit(s, self, 'error', err) end
  emit(s, self, 'close')
end

local w_flush

-- Wait for the fd to take more (it is full), holding the loop meanwhile.
local function w_arm(s, self)
  if s.holding then return end
  s.holding = true
  s.loop.ref()
  local fn = s.onready
  if not fn then  -- the fd handler, made the first time the fd is full
    fn = function() w_flush(s, self) end
    s.onready = fn
  end
  s.loop.setev(s.fd, W, fn)
end

-- The queue's writers (lua/writeq.lua): the fd's write; a sync stream's
-- fd blocks, and the rest of a partial write is written at once
local function w_write(s, data, off)
  if s.broken then return nil, EPIPE end  -- the reader is gone for good
  return write(s.fd, data, off)
end

local function w_write_sync(s, data, off)
  if s.broken then return nil, EPIPE end
  local done = 0
  repeat
    local n, err = write(s.fd, data, off + done)
    if not n then
      if n == false and done > 0 then return done end
      return n, err
    end
    done = done + n
  until off + done >= #data
  return done
end

-- Write out as much of the queue as the fd takes now.
function w_flush(s, self)
  local empty, err = true, nil
  if s.q then empty, err = wq_flush(s, s.sync and w_write_sync or w_write, s.loop.defer) end
  if empty == nil then return w_close(s, self, M.syserror(err, 'write')) end
  if empty then
    if s.holding then s.holding = false; s.loop.unref() end
    s.loop.setev(s.fd, 0)
    if s.needdrain then
      s.needdrain = false
      s.loop.defer(emit, s, self, 'drain')
    end
    if s.ending and not s.finished then
      s.finished = true
      local fin = s.finishcb
      s.loop.defer(function()
        if fin then fin() end
        emit(s, self, 'finish')
        w_close(s, self)
      end)
    end
  else
    w_arm(s, self)
  end
end

-- A Writable over fd, on loop lp (default: M.default).  opts.sync:
-- blocking writes (this process's own stdout/stderr, shared with whoever
-- started us).  opts.ownfd: close fd when done (default true; s.keepfd
-- when not).
-- The queue (lua/writeq.lua's keys: q, cbs, head, tail, off, queued) is
-- made by the first write the fd does not take at once: until then these
-- keys are all nil.
-- A child's stdin that is never written to holds two keys: fd, loop.
function M.writable(fd, opts, lp)
  local s
  if opts then
    s = { fd = fd, loop = lp or M.default, keepfd = opts.ownfd == false or nil,
          sync = opts.sync or nil }
  else
    s = { fd = fd, loop = lp or M.default }
  end
  return core.object(Writable, s), s
end

local function w_queued(s) return s.queued or 0 end

-- write(data [, cb]) -> false when 64 KiB or more are queued after it
function wmethods.write(self, data, cb)
  local s = wself(self)
  if type(data) ~= 'string' then
    if type(data) == 'number' then data = tostring(data)
    else M.typeerror('write', 2, data, 'string') end
  end
  if cb ~= nil then M.checkfunc('write', 3, cb) end
  if s.closed or s.ending then
    local err = M.newerror({ code = s.closed and 'ERR_STREAM_DESTROYED'
                               or 'ERR_STREAM_WRITE_AFTER_END',
                             message = 'write after end' })
    if cb then s.loop.defer(cb, err) end
    if not s.closed then s.loop.defer(emit, s, self, 'error', err) end
    return false
  end
  if #data == 0 then
    if cb then s.loop.defer(cb) end
    return w_queued(s) < HIGH_WATER
  end
  local off, full = 0, false
  if (not s.q or s.head > s.tail) and not s.broken then
    -- nothing queued: write it now, and queue only what the fd leaves
    local n = write(s.fd, data, 0)
    if n == #data then
      if cb then s.loop.defer(cb) end
      return w_queued(s) < HIGH_WATER
    end
    -- partial or full: wait for the fd (a sync stream retries at once);
    -- an error: w_flush meets it again
    if n then off = n end
    full = n ~= nil and not s.sync
  end
  if not s.q then wq_init(s) end
  if wq_push(s, cb, off, data) then
    if full then w_arm(s, self) else w_flush(s, self) end
  end
  local ok = w_queued(s) < HIGH_WATER  -- nil: closed by the flush
  if not ok then s.needdrain = true end
  return ok
end

-- close([data] [, cb]): Node's end()
-- (also named 'end', as in Node: each name raises its own)
local function closer(fname) return function(self, data, cb)
  local s = wself(self)
  if type(data) == 'function' then data, cb = nil, data end
  if data ~= nil and type(data) ~= 'string' then
    if type(data) == 'number' then data = tostring(data)
    else M.typeerror(fname, 2, data, 'string') end
  end
  if cb ~= nil then M.checkfunc(fname, 3, cb) end
  if data ~= nil and not s.ending and not s.closed then self:write(data) end
  -- a terminal's input ends with its end-of-file character (lua/pty.lua)
  if s.eof and not (s.ending or s.closed or s.broken) then self:write(s.eof) end
  if s.ending or s.closed then
    if cb then s.loop.defer(cb) end
    return self
  end
  s.ending = true
  s.finishcb = cb
  w_flush(s, self)
  return self
end end
wmethods.close, wmethods['end'] = closer('close'), closer('end')

function wmethods.destroy(self, err)
  local s = wself(self)
  if not s.closed then w_close(s, self, err) end
  return self
end

function wmethods.fileno(self)
  local s = wself(self)
  if s.closed or s.broken then return nil end
  return s.fd
end

-- The reader is gone (the child exited).  The fd is released now; data
-- queued or written later meets EPIPE, as an 'error' event.
function M.writable_orphan(self)
  local s = wself(self)
  if s.closed or s.broken then return end
  s.loop.forget(s.fd)
  if not s.keepfd then core.close(s.fd) end
  s.broken = true
  if s.q and s.head <= s.tail then w_flush(s, self) end
end

-- The stdin of a child that never started: no fd, writes meet EPIPE, and
-- it closes from the loop (M.writable_end)
function M.writable_dead(lp)
  local self, s = M.writable(-1, { ownfd = false }, lp)
  s.broken = true
  return self
end

-- close now, with nothing more to write
function M.writable_end(self)
  local s = wself(self)
  s.ending = true
  w_close(s, self)
end

-- }======================================================
