-- A child's stdio at its start (lua/child.lua's M.start): plan.stdio
-- turned into the child's fd map and this side's streams, the work tables
-- that takes, and the undoing of a half-made one.  (lua/pty.lua's
-- pty_setup stands in for setup_stdio on a terminal.)
local core, M = ...

local ipairs = ipairs

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
  if mt == M.Readable or mt == M.Writable then
    -- lent, not given: the child gets its own blocking description of a
    -- pipe (core.lend), this side keeps its own, non-blocking
    local mine = e:fileno()
    if not mine then return -1 end
    local lent, new = core.lend(mine, mt == M.Readable and 'r' or 'w')
    if not lent then return nil, new end
    if new then t.after[#t.after + 1] = lent end
    return lent
  end
  return core.fileno(e) or -1
end

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

function M.scratch_get()
  local t = spare_scratch or new_scratch()
  spare_scratch = nil
  return t
end

-- empty the tables (they keep their size) and give them back
function M.scratch_put(t, n)
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
M.drop_streams = drop_streams

-- undo a half-made stdio: close what was opened, destroy the streams
local function stdio_fail(t, n, err, syscall)
  for _, fd in ipairs(t.after) do core.close(fd) end
  drop_streams(t, n)
  return nil, M.syserror(err, syscall)
end
M.stdio_fail = stdio_fail

-- Turn plan.stdio into the child's fd map (t.fdmap), this side's streams
-- (t.streams[i] for fd i-1) and the fds to close after the spawn
-- (t.after: the child's ends).  Returns the readables lent to the child
-- (false when none), or nil, err.
function M.setup_stdio(plan, s, self, t)
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
      -- stdin: the fd only, made a stream when first read (lua/child.lua's stdin_of)
      streams[i] = fd == 0 and mine or M.readable(mine, nil, s.loop)
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
      if getmetatable(e) == M.Readable then  -- lent: see M.readable_lent
        given = given or {}
        given[#given + 1] = e
      end
    end
  end
  if ring then  -- the fds after the stdio ones (or from fd ring.at - 1 on)
    local at = (ring.at or #list + 1) - 1
    for k, f in ipairs(ring) do fdmap[at + k] = f end
  end
  return given
end

-- A child that did not start still has the streams its stdio asked for,
-- as in Node: without fds, they end from the loop (see M.start).
function M.dead_streams(list, s)
  local stdio = {}
  for i = 1, #list do
    if list[i] == 'pipe' then
      local st = i == 1 and M.writable_dead(s.loop) or M.readable_dead(s.loop)
      stdio[i - 1] = st
      if i <= 3 then s[i] = st end
    end
  end
  s.stdio = stdio
  return stdio
end
