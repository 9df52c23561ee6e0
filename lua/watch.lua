-- cp.watch: the user's own fds (sockets, pipes) in childproc's loop, and
-- cp.loop: childproc's loop as a pollable object (pollfd/events/timeout,
-- the convention of cqueues) for programs that already run another loop.
local core, M = ...

local type, tostring, pcall, select = type, tostring, pcall, select
local isint = M.isint
local R, W = core.events.R, core.events.W
local EBADF, EEXIST = core.errno.EBADF, core.errno.EEXIST

local MASKS = { r = R, w = W, rw = R + W, wr = R + W }
local NAMES = { 'r', 'w', 'rw' }

-- {====================================================== fd records

-- One record per watched fd number: the handler the loop calls and the
-- watchers sharing it (a socket may have an 'r' and a 'w' watcher).
-- `list` is replaced, never changed in place, so a callback may stop or
-- add watchers while the handler walks the old list.
local recs = {}          -- fd -> { fd, fn, list }
local active = {}        -- watcher state -> true, while active

local function owns(rec)
  return recs[rec.fd] == rec and M.fdhandler(rec.fd) == rec.fn
end

-- Register the union of the active watchers' events, or let go of the fd
-- when none is left.  A record that lost the fd (another owner took the
-- number after the user closed the fd) never touches it again.
local function update(rec, fresh)
  local mask = 0
  for i = 1, #rec.list do mask = M.bor(mask, rec.list[i].mask) end
  if mask == 0 then
    if owns(rec) then M.forget(rec.fd) end
    if recs[rec.fd] == rec then recs[rec.fd] = nil end
    return true
  end
  -- fresh: epoll may hold a stale registration under this number (or
  -- none, if the old file was closed): register from scratch
  if fresh and owns(rec) then M.forget(rec.fd) end
  return M.setev(rec.fd, mask, rec.fn)
end

local function newrec(fd)
  local rec = { fd = fd, list = {} }
  rec.fn = function(ev)
    local list = rec.list
    for i = 1, #list do
      local s = list[i]
      if s.active and s.rec == rec then
        local e = M.band(ev, s.mask)
        if e ~= 0 then s.cb(NAMES[e], s.self) end
      end
    end
  end
  return rec
end

-- }======================================================


-- {====================================================== Watcher

local methods = {}
local Watcher, wself   -- (wself: a local the __tostring below can see)
Watcher, wself = core.class('childproc.Watcher', methods, {
  __close = M.CLOSE and function(self) self:stop() end or nil,
  __tostring = function(self)
    local s = wself(self)
    return ('childproc.Watcher (fd %d, %s%s)'):format(s.fd, s.events,
      s.active and '' or ', stopped')
  end,
})
M.Watcher = Watcher

local function detach(s)
  if not s.active then return end
  s.active = false
  active[s] = nil
  if next(active) == nil then M.default.onpending = nil end
  if s.refed then M.unref() end
  local rec = s.rec
  s.rec = nil
  if rec then
    rec.list = M.without(rec.list, s) or {}
    update(rec)
  end
end

-- Is the watcher's fd still the one it was given?  A closed luasocket
-- answers getfd() with -1, a closed childproc stream fileno() with nil,
-- a closed integer fd fails fcntl.
local function stale(s)
  local rec = s.rec
  if not rec or not owns(rec) then return true end
  if s.getfd then
    local ok, fd = pcall(s.getfd)
    return not ok or fd ~= s.fd
  end
  return not core.isopen(s.fd)
end

-- Called by the loop before it would wait for ever, and when cp.run()
-- tells whether work remains: a watcher whose fd was closed under it stops
-- by itself (epoll forgot the fd silently; the watcher must not keep
-- cp.run() waiting for ever).  M.default.onpending is set while watchers are
-- active: the loop has nothing to call otherwise.
local function onpending()
  local gone
  for s in pairs(active) do
    if stale(s) then gone = gone or {}; gone[#gone + 1] = s end
  end
  if gone then for i = 1, #gone do detach(gone[i]) end end
end

-- the fd is watch()'s argument #1; start()'s is its watcher's own
local function fdarg(fname) return fname == 'watch' and 1 or nil end

local function ebadf(fname, fd, err)
  err = err or EBADF
  M.argerror(fname, fdarg(fname), ("%s: %s, fd %s"):format(core.errname(err),
    core.strerror(err), tostring(fd)))
end

local function attach(fname, s)
  local fd = s.fd
  if fd < 0 or not core.isopen(fd) then ebadf(fname, fd) end
  local rec = recs[fd]
  if rec then
    -- the old watchers of this number may belong to a closed fd
    for i = 1, #rec.list do
      local o = rec.list[i]
      if stale(o) then detach(o) end
    end
    rec = recs[fd]
    if rec and not owns(rec) then recs[fd] = nil; rec = nil end
  end
  local fresh = rec ~= nil
  if not rec then
    local h, m = M.fdhandler(fd)
    if h and m and m ~= 0 then
      M.argerror(fname, fdarg(fname), ("%s: fd %d is in use by childproc"
        .. " itself, e.g. a flowing stream"):format(core.errname(EEXIST), fd))
    end
    rec = newrec(fd)
    recs[fd] = rec
  end
  local list = {}
  for i = 1, #rec.list do list[i] = rec.list[i] end
  list[#list + 1] = s
  rec.list = list
  s.rec, s.active = rec, true
  local ok, err = update(rec, fresh)
  if not ok then
    s.active, s.rec = false, nil
    rec.list = M.without(rec.list, s) or {}
    update(rec)
    ebadf(fname, fd, err)
  end
  active[s] = true
  M.default.onpending = onpending
  if s.refed then M.ref() end
end

-- fd_or_object -> fd, getter (nil for an integer fd)
local function resolve(fname, v, nargs)
  local tv = type(v)
  if tv == 'number' then return M.checkint(fname, 1, v) end
  if io.type(v) == 'closed file' then ebadf(fname, 'of a closed file') end
  if io.type(v) == 'file' then
    local get = function() return core.fileno(v) end
    local ok, fd = pcall(get)
    if not ok or not isint(fd) then ebadf(fname, 'of a closed file') end
    return fd, get
  end
  if tv == 'table' or tv == 'userdata' then
    local ok, m = pcall(function() return v.getfd end)
    local name = 'getfd'
    if not (ok and m) then
      ok, m = pcall(function() return v.fileno end)
      name = 'fileno'
    end
    if ok and m then
      local get = function() return m(v) end
      local fd = get()
      if not isint(fd) then
        if M.toint(fd) then
          fd = M.toint(fd)
          get = function() local n = m(v); return M.toint(n) or n end
        else
          ebadf(fname, ('nil (%s() of a closed object)'):format(name))
        end
      end
      return fd, get
    end
  end
  M.typeerror(fname, 1, v, 'fd or object with getfd or fileno', nil, nargs)
end

-- cp.watch(fd_or_object, 'r'|'w'|'rw', callback) -> Watcher
function M.watch(...)
  local v, events, cb = ...
  local nargs = select('#', ...)
  local fd, get = resolve('watch', v, nargs)
  local mask = MASKS[events]
  if not mask then
    if type(events) ~= 'string' then M.typeerror('watch', 2, events, 'string', nil, nargs) end
    M.argerror('watch', 2, ("invalid option '%s': 'r', 'w' or 'rw' expected")
      :format(events))
  end
  M.checkfunc('watch', 3, cb, false, nargs)
  local s = { fd = fd, mask = mask, events = NAMES[mask], cb = cb,
              getfd = get, refed = true, active = false }
  local self = core.object(Watcher, s)
  s.self = self
  attach('watch', s)
  return self
end

-- stop(): no more callbacks; the fd is left open (it is the user's)
function methods.stop(self)
  detach(wself(self))
  return self
end

-- start(): watch again after stop(), the same fd and events
function methods.start(self)
  local s = wself(self)
  if not s.active then attach('start', s) end
  return self
end

function methods.ref(self)
  local s = wself(self)
  if not s.refed then
    s.refed = true
    if s.active then M.ref() end
  end
  return self
end

function methods.unref(self)
  local s = wself(self)
  if s.refed then
    s.refed = false
    if s.active then M.unref() end
  end
  return self
end

function methods.hasRef(self) return wself(self).refed end
function methods.isActive(self) return wself(self).active end
function methods.fileno(self) return wself(self).fd end

-- }======================================================


-- {====================================================== cp.loop

-- The loop as a pollable object: pollfd() is the epoll fd, readable when
-- one of childproc's fds is ready; timeout() says when the next timer is
-- due (0: work is ready now; nil: no timer).  After a wait on them, call
-- cp.run('nowait').
local lmethods = {}
local Loop, lself = core.class('childproc.Loop', lmethods, {
  __tostring = function() return 'childproc.Loop' end,
})

function lmethods.pollfd(self) lself(self); return M.default.pollfd() end
function lmethods.events(self) lself(self); return 'r' end
function lmethods.timeout(self) lself(self); return M.timeout() end

M.loop = core.object(Loop, {})

-- }======================================================
