-- The message channel between a parent and a forked child: a socketpair,
-- framed by the 'lua' codec (src/frame.c) or by Node's newline-
-- delimited JSON (src/json.c).  Both ends are the same code: a channel
-- belongs either to a ChildProcess (the parent's side) or to cp.process
-- (the child's side, found by M.channel_autostart when the module loads).
local core, M = ...

local emit, defer = M.emit, M.defer
local read, write, lua_send = core.read, core.write, core.lua_send
local type, pairs, tostring, error, pcall, select =
  type, pairs, tostring, error, pcall, select
local R, W, EDGE = 1, 2, 8
local hasbit = M.hasbit
local HIGH_WATER = 64 * 1024        -- send() returns false from here on
local MAX_READS = 64                -- reads per readiness event (16 MiB)
local READ_MAX = core.READ_MAX      -- what core.read returns at most
local DEFAULT_MAX = 1024 * 1024 * 1024
local FLUSH_PATIENCE = 10000        -- ms without progress before exit gives up

local ENV_NAMES = { 'CHILDPROC_CHANNEL_FD', 'CHILDPROC_SERIALIZATION',
                    'CHILDPROC_CHANNEL_RING', 'CHILDPROC_WIRE',
                    'NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE' }
-- the rings of a 'lua' channel (src/ring.c): this many bytes each
-- way, taken from memory only as messages use them
local RING_SIZE = 4 * 1024 * 1024

local encoders = { lua = core.lua_encode, json = core.json_encode }

local open_channels = {}            -- channel -> true while its fd is open
local rings = M.rings               -- the decoders of open ringed channels

-- {====================================================== options

-- check_*(fname, n, value): n is the options' argument position

local function check_serialization(fname, n, v)
  if v == nil then return 'lua' end
  if v ~= 'lua' and v ~= 'json' then
    if type(v) ~= 'string' then
      M.typeerror(fname, n, v, 'string', "option 'serialization'")
    end
    M.argerror(fname, n, ("option 'serialization': 'lua' or 'json' expected,"
      .. " got '%s'"):format(v))
  end
  if not encoders[v] then
    M.argerror(fname, n, ("option 'serialization': this build has no '%s' codec"):format(v))
  end
  return v
end
M.check_serialization = check_serialization

local function check_maxsize(fname, n, v)
  if v == nil then return DEFAULT_MAX end
  return M.checkint(fname, n, v, "option 'maxMessageSize'", 1)
end
M.check_maxsize = check_maxsize

-- spawn() with an 'ipc' entry validates the channel's options up front,
-- before any fd is made (fork() checks them itself, earlier still)
local spawn_plan = M.spawn_plan
function M.spawn_plan(fname, command, args, opts, into, optn)
  if type(opts) == 'table' then
    check_serialization(fname, optn or 3, opts.serialization)
    check_maxsize(fname, optn or 3, opts.maxMessageSize)
  end
  return spawn_plan(fname, command, args, opts, into, optn)
end

-- }======================================================


-- {====================================================== the channel

--[[ A channel `ch`:
  fd, mode ('lua'|'json'), encode, dec (decoder), out (decoder's array)
  wfd: the fd written to (fd itself, or a second one: a launcher's pipes,
    lua/launcher.lua); direct: lua_send may write wfd itself (a socket);
    wev: wfd's epoll mask when it is not fd
  oninternal(ch, m): a launcher's own messages, true when it took m
  pq, ph, pt: messages decoded, to deliver; draining: a drain of them is
    deferred (see deliver)
  lsend: core.lua_send for a 'lua' channel (encode and write at once)
  s, self: the owner's fields and object; side: 'child' | 'process'
  ring: its frames go through shared memory (dec:put, dec:take), the
    socket is only watched for its end; bell, pbell: our doorbell (an
    eventfd the loop watches) and the peer's (src/ring.c)
  q, cbs, head, tail, off, queued: strings waiting to be written (a
    message may be several: the rest of a partial write; its callback
    sits with its last piece, false with the others)
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
    ch.counted = want
    if want then M.ref() else M.unref() end
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

-- Tear the channel down now.  'disconnect' (and the child's 'close', which
-- must come after it) are emitted now when `inline` (the loop called us),
-- else from the loop: never from inside a call of the user's.
local function close_channel(ch, inline)
  if ch.closed then return end
  ch.closed, ch.disconnecting = true, true
  open_channels[ch] = nil
  M.forget(ch.fd)
  core.close(ch.fd)
  if ch.wfd ~= ch.fd then M.forget(ch.wfd); core.close(ch.wfd) end
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
  local cbs, head, tail = ch.cbs, ch.head, ch.tail
  M.handle_close(ch)   -- the fds queued or held
  ch.q, ch.cbs, ch.head, ch.tail, ch.off, ch.queued = {}, {}, 1, 0, 0, 0
  update(ch)
  local s, self = ch.s, ch.self
  s.connected = false
  for i = head, tail do
    local cb = cbs[i]
    if cb then
      defer(cb, channel_error('ERR_IPC_CHANNEL_CLOSED', 'Channel closed'))
    end
  end
  if ch.silent then  -- a spawn that failed: no channel ever was
    s.channel_open = false
    return
  end
  local function finish()
    if ch.side == 'child' then s.channel_open = false end
    emit(s, self, 'disconnect')
    if ch.side == 'child' then M.child_maybe_close(s, self) end
  end
  if inline then finish() else defer(finish) end
end

-- Write what the socket (or the ring) takes now.  Returns false when
-- the peer is gone.  inline: called by the loop (see close_channel).
local function flush(ch, inline)
  local q, cbs = ch.q, ch.cbs
  while ch.head <= ch.tail do
    local frame, n, h = q[ch.head], nil, ch.hq[ch.head]
    if h then n = M.handle_write(ch, h, frame, ch.off)
    elseif ch.ring then n = ch.dec:put(frame, ch.off)
    else n = write(ch.wfd, frame, ch.off) end
    if n == false then break end
    if not n then  -- EPIPE, ECONNRESET: the other side has gone
      close_channel(ch, inline)
      return false
    end
    ch.off = ch.off + n
    ch.queued = ch.queued - n
    if ch.off < (type(frame) == 'table' and frame.n or #frame) then break end
    q[ch.head] = nil
    if h then ch.hq[ch.head] = nil; M.handle_sent(ch, h) end
    local cb = cbs[ch.head]
    cbs[ch.head] = nil
    ch.head, ch.off = ch.head + 1, 0
    if cb then defer(cb) end
  end
  if ch.head > ch.tail then
    ch.head, ch.tail = 1, 0
    if ch.disconnecting then close_channel(ch, inline); return true end
  end
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

-- Queue the pieces of one message (the first begun at `off`)
local function queue(ch, cb, off, ...)
  local q, cbs, tail = ch.q, ch.cbs, ch.tail
  local bytes = -off
  for i = 1, select('#', ...) do
    local piece = select(i, ...)
    tail = tail + 1
    q[tail], cbs[tail] = piece, false
    bytes = bytes + (type(piece) == 'table' and piece.n or #piece)  -- (a ring frame: pieces)
  end
  cbs[tail] = cb or false
  ch.tail, ch.queued = tail, ch.queued + bytes
end

-- What core.lua_send(fd|false, message, dec, where) returned: queue what
-- was not written.
local function lua_sent(ch, cb, status, off, ...)
  if ch.disconnecting then return end        -- nothing was written
  if select('#', ...) == 0 then               -- all of it went
    if cb then defer(cb) end
    return
  end
  local idle = ch.head > ch.tail
  queue(ch, cb, off, ...)
  if idle then ch.off = off end
  -- a failed write (the peer gone): flush meets the error and closes;
  -- not direct: written now by flush
  if status < 0 or not ch.direct then flush(ch) else update(ch) end
end

local function send_frame(ch, frame, cb)
  ch.tail = ch.tail + 1
  ch.q[ch.tail] = frame
  ch.cbs[ch.tail] = cb or false
  ch.queued = ch.queued + #frame
  if ch.head == ch.tail then flush(ch) else update(ch) end
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
    q = {}, cbs = {}, head = 1, tail = 0, off = 0, queued = 0, hq = {},
    want_ref = side == 'child', counted = false, ev = 0,
    closed = false, disconnecting = false,
  }
  ch.onready = function(ev)
    if hasbit(ev, W) and ch.head <= ch.tail then flush(ch, true) end
    if hasbit(ev, R) then on_readable(ch) end
  end
  ch.onwrite = function() if ch.head <= ch.tail then flush(ch, true) end end
  open_channels[ch] = true
  update(ch)
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
  local lsend, ok, frame = ch.lsend, nil, nil
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

local before_exit = M.before_exit
function M.before_exit()
  flush_all()
  if before_exit then before_exit() end
end

-- for lua/handle.lua
M.ipc = { flush = flush, update = update, send_frame = send_frame,
  disconnect = disconnect,
  queue = queue, bad_input = bad_input, channel_error = channel_error,
  HIGH_WATER = HIGH_WATER }

-- }======================================================


-- {====================================================== parent side

-- The 'ipc' entry of a child's stdio (lua/child.lua calls this): make
-- the pair, tell the child where its end is, return that end, and for a
-- 'lua' channel the fds the child gets after its stdio ones (from fd
-- #plan.stdio on; nil if there are none): the rings' memfd, the child's
-- doorbell and ours; .after: the one to close once the child runs.
function M.ipc_setup(plan, s, self, fd)
  local opts = plan.opts or {}
  local mode = check_serialization('spawn', 3, opts.serialization)
  local max = check_maxsize('spawn', 3, opts.maxMessageSize)
  local mine, theirs = core.socketpair()
  if not mine then return nil, theirs end
  core.nonblock(mine, true)
  -- the child's environment: ours (or opts.env) without any other
  -- channel's variables, plus this channel's
  local env = {}
  if plan.env then
    for _, kv in ipairs(plan.env) do env[#env + 1] = kv end
  else
    for k, v in pairs(core.environ()) do env[#env + 1] = k .. '=' .. v end
  end
  local drop = {}
  for _, k in ipairs(ENV_NAMES) do drop[k] = true end
  local out = {}
  for _, kv in ipairs(env) do
    if not drop[kv:match('^[^=]*')] then out[#out + 1] = kv end
  end
  local ch = new_channel(mine, mode, max, 'child', s, self)
  local extra
  if mode == 'json' then  -- exactly what Node's fork sets
    out[#out + 1] = 'NODE_CHANNEL_FD=' .. fd
    out[#out + 1] = 'NODE_CHANNEL_SERIALIZATION_MODE=json'
  else
    out[#out + 1] = 'CHILDPROC_CHANNEL_FD=' .. fd
    out[#out + 1] = 'CHILDPROC_SERIALIZATION=lua'
    out[#out + 1] = 'CHILDPROC_WIRE=' .. core.lua_wire
    -- rings and doorbells; without them (nil is no error) the socket
    local ringfd = core.ring_new(RING_SIZE)
    if ringfd then ringfd = core.own(ringfd) end
    local bell, cbell = core.eventfd(), core.eventfd()
    if ringfd and bell and cbell and use_rings(ch, ringfd, 0, bell, cbell) then
      out[#out + 1] = 'CHILDPROC_CHANNEL_RING=' .. #plan.stdio
      extra = { ringfd, cbell, bell, after = ringfd }  -- (mapped: closed)
    else
      for _, x in ipairs({ ringfd or false, bell or false, cbell or false }) do
        if x then core.close(x) end
      end
    end
  end
  table.sort(out)
  plan.env = out
  M.ipc_attach(plan, s, self, ch)
  return theirs, extra
end

-- ch becomes the channel of the ChildProcess (fields s, object self)
-- that plan starts
function M.ipc_attach(plan, s, self, ch)
  s._ch = ch
  s.channel = {
    ref = function() ch.want_ref = true; update(ch) end,
    unref = function() ch.want_ref = false; update(ch) end,
    -- the child exited: what it sent before is read now, before 'exit'
    drain = function() if not ch.closed then on_readable(ch, true) end end,
  }
  s.channel_open, s.connected = true, true
  -- a spawn that fails has no channel: no 'disconnect', no ref left
  local onfail = plan.onfail
  plan.onfail = function(s2, self2)
    ch.silent = true
    close_channel(ch)
    if onfail then onfail(s2, self2) end
  end
end

-- for lua/launcher.lua: a channel, its end, and the bytes read before it
M.ipc_new, M.ipc_close = new_channel, close_channel
function M.ipc_feed(ch, chunk)
  local n, err, x = ch.dec:feed(chunk, ch.out)
  if not n then
    deliver(ch, x or 0)
    return bad_input(ch, err)
  end
  if n > 0 then deliver(ch, n) end
end

local cmethods = M.child_methods

local cself = M.cself

-- the ring sender's 'rest' (src/channel.c): queue what did not fit
local function sent_rest(ch, status, off, piece)
  lua_sent(ch, nil, status, off, piece)
  return ch.queued < HIGH_WATER
end

cmethods.send = core.ring_sender(M.ChildProcess, function(self, message, a, b, c)
  return send(cself(self)._ch, message, a, b, c)
end, function(self, status, off, piece)
  return sent_rest(cself(self)._ch, status, off, piece)
end, '_ring')
M.entry_c[cmethods.send] = true

function cmethods.disconnect(self)
  local s = M.cself(self)
  if not s._ch then
    M.argerror('disconnect', nil, 'the child has no IPC channel')
  end
  disconnect(s._ch)
end

-- }======================================================


-- {====================================================== child side

local pmethods, pself = M.process_methods, M.pself
local pch        -- this process's channel, when it was forked

pmethods.send = core.ring_sender(M.Process, function(self, message, a, b, c)
  pself(self)
  return send(pch, message, a, b, c)
end, function(_, status, off, piece)
  return sent_rest(pch, status, off, piece)
end, '_ring')
M.entry_c[pmethods.send] = true

function pmethods.disconnect(self)
  pself(self)
  if not pch then
    M.argerror('disconnect', nil, 'this process has no IPC channel')
  end
  disconnect(pch)
end

-- A forked child stays alive while its cp.process listens for 'message'
-- or 'disconnect' (as Node's process.channel is ref'd by such listeners).
local function listening(ps)
  return M.listeners(ps, 'message') + M.listeners(ps, 'disconnect') > 0
end

-- Run by lua/init.lua when the module loads: a process started with a
-- channel finds it in its environment.
function M.channel_autostart()
  local fdtext, mode = os.getenv('CHILDPROC_CHANNEL_FD'),
    os.getenv('CHILDPROC_SERIALIZATION') or 'lua'
  if not fdtext then
    fdtext, mode = os.getenv('NODE_CHANNEL_FD'),
      os.getenv('NODE_CHANNEL_SERIALIZATION_MODE') or 'json'
  end
  if not fdtext then return end
  local wire = mode == 'lua' and os.getenv('CHILDPROC_WIRE')
  local ringfd = mode == 'lua'
    and M.toint(tonumber(os.getenv('CHILDPROC_CHANNEL_RING') or ''))
    or nil
  -- as Node: the processes this one starts do not see this channel
  for _, k in ipairs(ENV_NAMES) do core.setenv(k, nil) end
  local fd = M.toint(tonumber(fdtext))
  if not fd or fd < 0 or not core.isopen(fd) then return end
  if wire and wire ~= tostring(core.lua_wire) then
    error(("childproc: the parent speaks version %s of the 'lua' wire format;"
      .. " this module (childproc %s) speaks version %d: use the same childproc"
      .. " release at both ends, or serialization = 'json'")
      :format(wire, core.version, core.lua_wire), 0)
  end
  if not encoders[mode] then
    error(("childproc: the parent asked for the '%s' serialization; this"
      .. " module speaks 'lua' and 'json' (fork with serialization: 'json')")
      :format(mode), 0)
  end
  -- a close-on-exec copy, so grandchildren do not inherit the channel
  local given = fd
  local own = core.dup(fd)
  if own then
    if fd > 2 then core.close(fd) end
    fd = own
  end
  core.nonblock(fd, true)
  M.ipc_process(fd, mode)
  -- the rings and doorbells (ours, the parent's), the three fds after
  -- the stdio ones: used (close-on-exec copies of the doorbells), then
  -- closed.  The parent writes into the rings from the start: a child
  -- that cannot use them would lose its messages, so it stops here.
  if ringfd then
    local ok = ringfd > 2 and (ringfd + 2 < given or ringfd > given)
    local bell = ok and core.dup(ringfd + 1)
    local pbell = ok and core.dup(ringfd + 2)
    ok = bell and pbell and use_rings(pch, ringfd, 1, bell, pbell)
    if not ok then
      if bell then core.close(bell) end
      if pbell then core.close(pbell) end
      error(("childproc: the IPC channel's rings (fds %d-%d) cannot be"
        .. " used: the parent's messages would be lost"):format(ringfd, ringfd + 2), 0)
    end
    for i = 0, 2 do core.close(ringfd + i) end
  end
  M.install_main_hook()  -- lua/main.lua
end

-- cp.process's channel: over fd (and wfd, when the writes go to another
-- fd: a launcher's remote side, lua/launcher.lua)
function M.ipc_process(fd, mode, wfd, direct)
  local ps = pself(M.process)
  pch = new_channel(fd, mode, DEFAULT_MAX, 'process', ps, M.process, wfd, direct)
  ps.connected = true
  local function relisten()
    if pch.closed then return end
    local want = listening(ps)
    if want ~= pch.want_ref then pch.want_ref = want; update(pch) end
  end
  ps._onlisten, ps._onunlisten = relisten, relisten
  return pch
end

-- }======================================================
