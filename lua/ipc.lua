-- The message channel between a parent and a forked child: a socketpair,
-- framed by the 'lua' codec (src/frame.c) or by Node's newline-
-- delimited JSON (src/json.c).  Both ends are the same code: a channel
-- belongs either to a ChildProcess (the parent's side, made for an 'ipc'
-- stdio entry by lua/ipc_stdio.lua) or to cp.process (the child's side,
-- lua/ipc_process.lua).  This file: the channel itself, and its send.
local core, M = ...

local emit, defer = M.emit, M.defer
local wq_push, wq_flush, wq_clear = M.wq_push, M.wq_flush, M.wq_clear
local read, write, lua_send = core.read, core.write, core.lua_send
local type, pairs, tostring, pcall, select, error =
  type, pairs, tostring, pcall, select, error
local R, W, EDGE = core.events.R, core.events.W, core.events.EDGE
local hasbit = M.hasbit
local HIGH_WATER = M.HIGH_WATER     -- send() returns false from here on
local MAX_READS = 64                -- reads per readiness event (16 MiB)
local READ_MAX = core.READ_MAX      -- what core.read returns at most
local FLUSH_PATIENCE = 10000        -- ms without progress before exit gives up

local encoders = { lua = core.lua_encode, json = core.json_encode }

local open_channels = {}            -- channel -> true while its fd is open
local rings = M.rings               -- the decoders of open ringed channels

-- {====================================================== the channel

--[[ A channel `ch`:
  fd, mode ('lua'|'json'), encode, dec (decoder), out (decoder's array)
  wfd: the fd written to (fd itself, or a second one: a launcher's pipes,
    lua/launcher.lua); direct: lua_send may write wfd itself (a socket);
    wev: wfd's epoll mask when it is not fd
  oninternal(ch, m): a launcher's own messages, true when it took m;
    beforesend(): what cp.process:send runs first (a launcher's remote
    side sends the script's stdout printed so far)
  pq, ph, pt: messages decoded, to deliver; draining: a drain of them is
    deferred (see deliver)
  lsend: core.lua_send for a 'lua' channel (encode and write at once)
  s, self: the owner's fields and object; side: 'child' | 'process'
  ring: its frames go through shared memory (dec:put, dec:take), the
    socket is only watched for its end; bell, pbell: our doorbell (an
    eventfd the loop watches) and the peer's (src/ring.c)
  q, cbs, head, tail, off, queued: the write queue (lua/writeq.lua):
    frames waiting to be written (a message may be several pieces: the
    rest of a partial write)
  want_ref: the owner wants the channel to keep the loop alive
  counted: it currently adds 1 to the loop's keep-alive count
  ev: the epoll mask now set
  fast: ringed, open, not disconnecting, nothing queued: what dec:fast()
    was last told (the ring sender then writes a message at once; the
    owner's fields hold the decoder as _ring for the sender)
  disconnecting: no more sends and no more 'message's; close when flushed
  closed: the fd is closed
  hq: hq[i] set when q[i] is a frame that goes on the socket with a
    handle's fd (lua/handle.lua); blocked: a ring's marker waits for its
    message from the socket (held: those that came first)
]]

local function update(ch)
  local pending = ch.head <= ch.tail
  local fast = ch.ring and not ch.closed and not ch.disconnecting
    and not pending and not ch.blocked
  if fast ~= ch.fast then
    ch.fast = fast
    ch.dec:fast(fast)
  end
  local want = not ch.closed and (ch.want_ref or pending)
  if want ~= ch.counted then
    if want then M.ref() else M.unref() end
    ch.counted = want  -- (after: the call may fail, out of memory)
  end
  if not ch.closed and ch.wfd ~= ch.fd then  -- reads and writes apart
    if ch.ev ~= R then ch.ev = R; M.setev(ch.fd, R, ch.onready) end
    local wev = pending and W or 0
    if wev ~= ch.wev then ch.wev = wev; M.setev(ch.wfd, wev, ch.onwrite) end
  elseif not ch.closed then
    local ev = R + (pending and (not ch.ring or ch.hq[ch.head]) and W or 0)
    if ev ~= ch.ev then
      ch.ev = ev
      M.setev(ch.fd, ev, ch.onready)
    end
  end
end

local function channel_error(code, message)
  return M.newerror({ code = code, message = message })
end

local function closed_cb(cb)
  defer(cb, channel_error('ERR_IPC_CHANNEL_CLOSED', 'Channel closed'))
end

-- Tear the channel down now.  'disconnect' (and the child's 'close', which
-- must come after it) are emitted now when `inline` (the loop called us),
-- else from the loop: never from inside a call of the user's.
-- the end of a channel's close, from the loop (or inline): 'disconnect'
local function finish_close(ch)
  local s = ch.s
  if ch.side == 'child' then s.channel_open = false end
  emit(s, ch.self, 'disconnect')
  if ch.side == 'child' then M.child_maybe_close(s, ch.self) end
end

-- The steps up to the ref's release and the fds' close allocate nothing
-- (a raise out of memory there would leave the loop referenced).
local function close_channel(ch, inline)
  if ch.closed then return end
  ch.closed, ch.disconnecting = true, true
  open_channels[ch] = nil
  update(ch)           -- (closed: drops the ref, watches nothing)
  M.forget(ch.fd)
  core.close(ch.fd)
  if ch.wfd ~= ch.fd then M.forget(ch.wfd); core.close(ch.wfd) end
  if ch.theirs then core.close(ch.theirs); ch.theirs = nil end  -- see ipc_setup
  if ch.onclose then ch.onclose() end
  ch.dec:unring()  -- before the peer's doorbell is closed
  if ch.ring then
    ch.ring = false
    ch.s._ring = nil
    for i = #rings, 1, -1 do
      if rings[i] == ch.dec then table.remove(rings, i) end
    end
    M.forget(ch.bell)
    core.close(ch.bell)
    core.close(ch.pbell)
  end
  local s = ch.s
  s.connected = false
  M.handle_close(ch)   -- the fds queued or held
  wq_clear(ch, closed_cb)  -- (emptied in place)
  if ch.silent then  -- a spawn that failed: no channel ever was
    s.channel_open = false
    return
  end
  -- (out of memory for the queue: now, rather than never)
  if inline or not pcall(defer, finish_close, ch) then finish_close(ch) end
end

-- The queue's writer: a frame with a handle's fd goes on the socket
-- with it (lua/handle.lua), others into the ring or onto the socket.
local function put(ch, frame, off, i)
  local h = ch.hq[i]
  if h then
    local n, err = M.handle_write(ch, h, frame, off)
    if n and off + n >= #frame then ch.hq[i] = nil; M.handle_sent(ch, h) end
    return n, err
  end
  if ch.ring then return ch.dec:put(frame, off) end
  return write(ch.wfd, frame, off)
end

-- Write what the socket (or the ring) takes now.  Returns false when
-- the peer is gone.  inline: called by the loop (see close_channel).
local function flush(ch, inline)
  local empty = wq_flush(ch, put)
  if empty == nil then  -- EPIPE, ECONNRESET: the other side has gone
    close_channel(ch, inline)
    return false
  end
  if empty and ch.disconnecting then close_channel(ch, inline); return true end
  update(ch)
  return true
end

-- Node's internal messages (json mode): objects whose cmd starts with
-- 'NODE_'.  They never reach 'message' listeners.
local function is_internal(m)
  if type(m) ~= 'table' then return false end
  local cmd = rawget(m, 'cmd')
  return type(cmd) == 'string' and #cmd > 4 and cmd:sub(1, 5) == 'NODE_'
end

-- What core.lua_send(fd|false, message, dec, where) returned: queue what
-- was not written.
local function lua_sent(ch, cb, status, off, ...)
  if ch.disconnecting then return end        -- nothing was written
  if select('#', ...) == 0 then               -- all of it went
    if cb then defer(cb) end
    return
  end
  wq_push(ch, cb, off, ...)
  -- a failed write (the peer gone): flush meets the error and closes;
  -- not direct: written now by flush
  if status < 0 or not ch.direct then flush(ch) else update(ch) end
end

local function send_frame(ch, frame, cb)
  if wq_push(ch, cb, 0, frame) then flush(ch) else update(ch) end
end

-- m: NODE_HANDLE's { m, fd } (CP_HANDLEMSG_MT) when an fd came with it
local function internal(ch, m, fd)
  local s, self = ch.s, ch.self
  M.handle_internal(ch, m, fd)   -- NODE_HANDLE and its (N)ACKs
  emit(s, self, 'internalMessage', m)
end

local function bad_input(ch, msg)
  local code = msg:find('limit', 1, true) and 'ERR_IPC_MESSAGE_TOO_LARGE'
    or 'ERR_IPC_BAD_MESSAGE'
  local err = channel_error(code, 'IPC channel: ' .. msg)
  local s, self = ch.s, ch.self
  ch.disconnecting = true
  update(ch)
  emit(s, self, 'error', err)
  close_channel(ch, true)
end

-- Deliver the n messages just decoded into ch.out.  They join the
-- channel's queue of messages to deliver (pq, from ph to pt), delivered
-- in order.  A listener may run the loop itself, waiting for the next
-- messages: while some wait in the queue, a drain of it is deferred, so
-- that inner loop delivers them (first, each once).
local deliver_queue

local function deliver_queue_later(ch)
  ch.draining = false
  deliver_queue(ch)
end

local MARK, HMSG = core.handle_mark, core.handlemsg_mt

function deliver_queue(ch)
  local q, s, self = ch.pq, ch.s, ch.self
  local json = ch.mode == 'json'
  while ch.ph <= ch.pt do
    local h = ch.ph
    -- a ring's marker: the message from the socket comes here
    if q[h] == MARK and not ch.disconnecting
      and not M.handle_unmark(ch, q, h) then return end
    local m = q[h]
    q[h], ch.ph = nil, h + 1
    if not ch.disconnecting then
      if h < ch.pt and not ch.draining then
        ch.draining = true
        defer(deliver_queue_later, ch)
      end
      local fd
      if getmetatable(m) == HMSG then m, fd = m[1], m[2] end
      if ch.oninternal and ch.oninternal(ch, m) then  -- a launcher's
      elseif json and is_internal(m) then internal(ch, m, fd)
      elseif fd then M.handle_emit(ch, m, fd)
      else emit(s, self, 'message', m) end
    elseif getmetatable(m) == HMSG then
      core.close(m[2])
    end
  end
  ch.ph, ch.pt = 1, 0
end

-- (sock: they came on the socket of a ringed channel)
local function deliver(ch, n, sock)
  if sock and ch.ring then n = M.handle_hold(ch, n) end
  local out, q, t = ch.out, ch.pq, ch.pt
  for i = 1, n do
    t = t + 1
    q[t], out[i] = out[i], nil
  end
  ch.pt = t
  deliver_queue(ch)
end

local take = getmetatable(core.decoder('lua')).__index.take

-- The ring's doorbell rang, or the loop found data before sleeping:
-- write what waited for room, deliver what came.
local function on_ring(ch)
  if ch.head <= ch.tail then flush(ch, true) end
  if ch.closed then return end
  local n, err, x = take(ch.dec, ch.out)
  if not n then
    deliver(ch, x or 0)
    bad_input(ch, err)
  elseif n > 0 then
    deliver(ch, n)
  end
end

-- drain: read on to end of file or EAGAIN (the peer has exited)
local function on_readable(ch, drain)
  local fd, dec, out = ch.fd, ch.dec, ch.out  -- (out: always emptied)
  -- what the peer wrote into its ring comes before its socket's end
  if ch.ring then
    repeat on_ring(ch) until ch.closed or not ch.dec:arm()
  end
  for _ = 1, MAX_READS do
    if ch.closed then return end
    local n, got, x
    if ch.disconnecting then  -- after disconnect(): drained, dropped
      local chunk = read(fd)
      n, got = 0, 0                                -- end of file
      if chunk then got = #chunk; x = got >= READ_MAX
      elseif chunk == false then got = false end
    else
      -- the bytes go from the socket straight into the decoder's buffer;
      -- x: the read took all it asked for (or, on a bad frame, how
      -- many messages came before it)
      n, got, x = dec:readfd(fd, out)
    end
    if not n then
      deliver(ch, x or 0, true)
      return bad_input(ch, got)
    end
    if n > 0 then deliver(ch, n, true) end
    if got == false then return end
    if got <= 0 then
      -- end of file (or ECONNRESET): the other side closed or exited.  A
      -- message cut off by its exit (dec:pending() > 0) is dropped, as a
      -- message it never sent.
      return close_channel(ch, true)
    end
    -- a short read emptied the socket: the next read would only say
    -- EAGAIN (the loop is level-triggered: we hear of more data anyway)
    if not x and not drain then return end
  end
end

local function new_channel(fd, mode, max, side, s, self, wfd, direct)
  local ch = {
    fd = fd, wfd = wfd or fd, direct = wfd == nil or direct or false,
    mode = mode, encode = encoders[mode],
    lsend = mode == 'lua' and lua_send or nil,
    dec = core.decoder(mode, max), out = {}, pq = {}, ph = 1, pt = 0,
    side = side, s = s, self = self,
    q = {}, cbs = {}, head = 1, tail = 0, off = 0, queued = 0, hq = {},  -- (M.wq_init's)
    want_ref = side == 'child', counted = false, ev = 0,
    closed = false, disconnecting = false,
  }
  ch.onready = function(ev)
    if hasbit(ev, W) and ch.head <= ch.tail then flush(ch, true) end
    if hasbit(ev, R) then on_readable(ch) end
  end
  ch.onwrite = function() if ch.head <= ch.tail then flush(ch, true) end end
  open_channels[ch] = true
  local ok, err = pcall(update, ch)
  if not ok then  -- (out of memory) nothing of it stays registered
    open_channels[ch] = nil
    if ch.counted then M.unref() end
    M.forget(fd)
    error(err, 0)
  end
  return ch
end

-- Move the channel onto the rings in ringfd (this side writing half
-- `side`), with doorbells bell (ours) and pbell (the peer's).  False
-- when they cannot be mapped (the socket then carries everything).
local function use_rings(ch, ringfd, side, bell, pbell)
  if not ch.dec:ring(ringfd, side, pbell, bell) then return false end
  ch.ring, ch.bell, ch.pbell = true, bell, pbell
  ch.s._ring = ch.dec
  M.setev(bell, R + EDGE, function() return on_ring(ch) end)
  rings[#rings + 1] = ch.dec
  update(ch)
  return true
end

-- send(message [, sendHandle [, options]] [, callback]) -> boolean, for
-- both sides: what the ring sender (core.ring_sender, the methods below)
-- leaves to Lua.  The methods tail-call it from the ring sender, a C
-- function: level 3 is their caller (4 on 5.1: its tail call is a level).
local TAIL = M.TAILCALL_LEVEL
local function send(ch, message, a, b, c)
  local cb = nil
  if a or b or c then
    cb = type(a) == 'function' and a or type(b) == 'function' and b
      or type(c) == 'function' and c or nil
  end
  if message == nil then M.typeerror('send', 2, nil, 'a message') end
  if not ch then
    M.argerror('send', nil, "no IPC channel: the process was not"
      .. " forked, or spawned with an 'ipc' stdio entry")
  end
  -- with a handle, or behind one waiting for its ACK: lua/handle.lua's
  if (a ~= nil and type(a) ~= 'function') or ch.hwait then
    if type(a) == 'function' then a, b = nil, nil end
    return M.handle_send(ch, message, a,
      type(b) ~= 'function' and b or nil, cb)
  end
  local lsend, ok, frame = ch.lsend
  if lsend then
    -- encoded and written at once (into the ring, or to the socket)
    -- when nothing waits before it (pieces left are queued); else
    -- encoded into pieces to queue; when disconnecting, only encoded.  A
    -- value that cannot be sent raises in lsend, at our caller's line
    local fd = ch.direct and not ch.disconnecting and ch.head > ch.tail
      and ch.wfd or false
    lua_sent(ch, cb, lsend(fd, message, ch.dec, 3 + TAIL))
  else
    ok, frame = pcall(ch.encode, message)
    if not ok then
      M.argerror('send', 2, tostring(frame))
    end
  end
  if ch.disconnecting then
    local err = channel_error('ERR_IPC_CHANNEL_CLOSED', 'Channel closed')
    if cb then defer(cb, err)
    else defer(function() emit(ch.s, ch.self, 'error', err) end) end
    return false
  end
  if not lsend then send_frame(ch, frame, cb) end
  return ch.queued < HIGH_WATER
end

-- the ring sender's 'rest' (src/channel.c): queue what did not fit
local function sent_rest(ch, status, off, piece)
  lua_sent(ch, nil, status, off, piece)
  return ch.queued < HIGH_WATER
end

local function disconnect(ch)
  if not ch or ch.disconnecting then
    local s, self = ch and ch.s, ch and ch.self
    if ch then
      defer(function()
        emit(s, self, 'error', channel_error('ERR_IPC_DISCONNECTED',
          'IPC channel is already disconnected'))
      end)
    end
    return
  end
  -- 'json': sends wait for a handle's ACK; the disconnect waits for them
  if ch.hwait then
    ch.want_disconnect, ch.s.connected = true, false
    return
  end
  ch.disconnecting = true
  ch.s.connected = false
  update(ch)
  -- what was sent goes out first; the close then comes from the loop
  if ch.head > ch.tail then
    defer(close_channel, ch, true)
  end
end

-- Blocking flush of every open channel (process:exit, end of a forked
-- script).  Gives up on a peer that takes nothing for FLUSH_PATIENCE ms.
local function flush_all()
  local res = {}
  for ch in pairs(open_channels) do
    local last = core.now()
    while not ch.closed and ch.head <= ch.tail do
      local before = ch.queued
      -- a ring: reset the doorbell first (a ring after it wakes poll)
      if ch.ring then core.read(ch.bell) end
      if not flush(ch) then break end
      if ch.head > ch.tail then break end
      if ch.queued < before then last = core.now() end
      if core.now() - last > FLUSH_PATIENCE then break end
      if ch.ring then
        -- the socket is readable only at its end: the peer has gone
        core.poll({ ch.bell, ch.fd }, { R, R }, 100, res)
        if res[2] ~= 0 then break end
      else
        core.poll({ ch.wfd }, { W }, 100, res)
      end
    end
  end
end
M.flush_channels = flush_all   -- (lua/main.lua)

M.at_exit(flush_all)

-- bytes read before the channel was made (lua/launcher.lua)
local function feed(ch, chunk)
  local n, err, x = ch.dec:feed(chunk, ch.out)
  if not n then
    deliver(ch, x or 0)
    return bad_input(ch, err)
  end
  if n > 0 then deliver(ch, n) end
end

-- the channel's parts the sides (lua/ipc_stdio.lua, lua/ipc_process.lua),
-- lua/handle.lua and lua/launcher.lua use
M.ipc = { new = new_channel, close = close_channel, use_rings = use_rings,
  feed = feed, on_readable = on_readable, send = send, sent_rest = sent_rest,
  disconnect = disconnect, flush = flush, update = update,
  send_frame = send_frame, bad_input = bad_input, channel_error = channel_error,
  encoders = encoders,
  ENV_NAMES = { 'CHILDPROC_CHANNEL_FD', 'CHILDPROC_SERIALIZATION',
                'CHILDPROC_CHANNEL_RING', 'CHILDPROC_WIRE',
                'NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE' } }

-- }======================================================


