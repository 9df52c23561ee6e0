-- The write queue of a Writable (lua/stream.lua) and of a channel
-- (lua/ipc.lua): pieces waiting until their fd (or ring) takes them, each
-- message's callback with its last piece, and the bytes waiting, which
-- say when write()/send() return false.  What writes a piece is the
-- owner's: a writer function given to M.wq_flush.
local _, M = ...

local select, type = select, type
local defer = M.defer

-- write() and send() return false once this many bytes wait
M.HIGH_WATER = 64 * 1024

--[[ The queue lives in its owner's table o (a stream's or a channel's
  fields; a Writable makes it with its first write the fd does not take):
  q[head..tail]: the pieces (strings; a ring's frame may be a table of
  pieces of n bytes, src/channel.c); cbs[i]: the callback of the
  message whose last piece is q[i], else false; off: bytes of q[head]
  already written; queued: bytes waiting in all.  Empty: head > tail.
  The owner reads queued and head/tail, and changes them only here. ]]
function M.wq_init(o)
  o.q, o.cbs, o.head, o.tail, o.off, o.queued = {}, {}, 1, 0, 0, 0
end

local function size(piece)
  return type(piece) == 'table' and piece.n or #piece
end

-- Queue the pieces of one message, the first already written up to
-- `off` (a write that took part of it).  cb runs once all were written.
-- Returns true when the queue was empty before.
function M.wq_push(o, cb, off, ...)
  local q, cbs, tail = o.q, o.cbs, o.tail
  local idle = o.head > tail
  local bytes = -off
  for i = 1, select('#', ...) do
    local piece = select(i, ...)
    tail = tail + 1
    q[tail], cbs[tail] = piece, false
    bytes = bytes + size(piece)
  end
  cbs[tail] = cb or false
  o.tail, o.queued = tail, o.queued + bytes
  if idle then o.off = off end
  return idle
end

-- Write out what writer takes now: writer(o, piece, off, i) writes
-- q[i] from off and returns the bytes it took, false when it takes
-- nothing more for now, or nil, err when it failed.  The callbacks of
-- the messages written are deferred, in order (by later: the owner's
-- loop's defer; M.defer, the default loop's, when nil).  Returns true
-- when the queue is empty, false when the writer is full, or nil, err.
function M.wq_flush(o, writer, later)
  later = later or defer
  local q, cbs = o.q, o.cbs
  local head = o.head
  while head <= o.tail do
    local piece = q[head]
    local n, err = writer(o, piece, o.off, head)
    if not n then return n, err end
    o.queued = o.queued - n
    local off = o.off + n
    if off < size(piece) then
      o.off = off
      return false
    end
    q[head] = nil
    local cb = cbs[head]
    cbs[head] = nil
    head = head + 1
    o.head, o.off = head, 0
    if cb then later(cb) end
  end
  o.head, o.tail = 1, 0
  return true
end

-- Drop everything queued (the fd is gone): fail(cb, x) for each
-- callback, in order, once the queue is empty again.  Emptied in place:
-- it allocates nothing (a channel's close must not fail out of memory).
function M.wq_clear(o, fail, x)
  local q, cbs, head, tail = o.q, o.cbs, o.head, o.tail
  o.head, o.tail, o.off, o.queued = 1, 0, 0, 0
  for i = head, tail do q[i] = nil end
  for i = head, tail do
    local cb = cbs[i]
    cbs[i] = nil
    if cb then fail(cb, x) end
  end
end
