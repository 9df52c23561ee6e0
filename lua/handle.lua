-- Handles over the channel: send(message, handle [, options] [, cb])
-- passes an open fd to the other side with its message (SCM_RIGHTS, see
-- src/handle.c), and the receiver's 'message'(message, handle) gets a
-- childproc.Handle.  lua/ipc.lua calls the M.handle_* hooks below.
--
-- 'lua': the frame (tag 0x0b, src/lua_wire.h) goes on the socket with
-- the fd; on a ringed channel a marker (0x0c) follows it in the ring, and
-- the receiver delivers the socket's message where the marker stands, so
-- order is kept.  'json': Node's protocol: { cmd = 'NODE_HANDLE', type,
-- msg } with the fd, one handle in flight, every later send queued until
-- its NODE_HANDLE_ACK, resent after a NODE_HANDLE_NACK (three times).
local core, M = ...

local emit, defer = M.emit, M.defer
local ipc = M.ipc
local HMSG = core.handlemsg_mt
local type, pcall, tostring, error, getmetatable =
  type, pcall, tostring, error, getmetatable
local MARK_FRAME = '\1\0\0\0\12'        -- a 'lua' frame: the marker alone
local MAX_RESENDS = 3                   -- Node's MAX_HANDLE_RETRANSMISSIONS
local MAX_COPIES = 16       -- send() is false with this many fds waiting

-- {====================================================== the handle given

local function int(v)
  if type(v) == 'number' and v >= 0 and math.floor(v) == v then
    return math.tointeger and math.tointeger(v) or v
  end
end

-- handle -> fd, luasocket object (closed after a connected one is sent)
-- | nil.  A Handle, a childproc stream, a luasocket object, a Lua file,
-- an integer fd.
local function resolve(h)
  local t = type(h)
  if t == 'number' then
    local fd = int(h)
    if fd and core.isopen(fd) then return fd end
    return nil
  end
  if io.type(h) == 'file' then return core.fileno(h) end
  if t ~= 'userdata' and t ~= 'table' then return nil end
  local mt = getmetatable(h)
  if mt == M.Readable or mt == M.Writable or mt == M.Handle
    or mt == M.Duplex then
    return h:fileno()
  end
  local ok, get = pcall(function() return h.getfd end)
  if ok and type(get) == 'function' then  -- luasocket
    local fd = int(get(h))
    if fd and core.isopen(fd) then return fd, h end
  end
  return nil
end

local function describe(h)
  if h == nil then return 'no value' end
  if io.type(h) == 'closed file' then return 'closed file' end
  local t = type(h)
  if t == 'number' then return 'number ' .. tostring(h) end
  return t
end

-- Node's type for what kind says (a Lua peer looks at the fd itself)
local function node_type(kind, family, _connected, listening, socktype)
  if kind == 'tcp-server' or (kind == 'unix' and listening) then
    return 'net.Server'
  elseif kind == 'tcp' or (kind == 'unix' and socktype == 'stream') then
    return 'net.Socket'
  elseif kind == 'udp' then
    return 'dgram.Socket', family == 'inet6' and 'udp6' or 'udp4'
  end
  return 'net.Native'
end

-- }======================================================


-- {====================================================== sending

local HIGH_WATER = M.HIGH_WATER

local function closed_error(ch, cb)
  local err = ipc.channel_error('ERR_IPC_CHANNEL_CLOSED', 'Channel closed')
  if cb then defer(cb, err)
  else defer(function() emit(ch.s, ch.self, 'error', err) end) end
  return false
end

-- the fd (our copy) is no longer needed; a connected socket sent without
-- keepOpen is closed in the sender, as Node does
local function release(item)
  if item.fd then
    core.close(item.fd)
    item.fd = nil
    item.ch.ncopies = item.ch.ncopies - 1
  end
  if item.closeobj then pcall(item.obj.close, item.obj) end
end

-- Queue item's frame to go on the socket with its fd (after what waits)
local function queue_handle(ch, item, cb)
  local idle = ch.head > ch.tail
  item.sent = false
  if ch.ring then
    M.wq_push(ch, nil, 0, item.frame)
    ch.hq[ch.tail] = item
    M.wq_push(ch, cb, 0, MARK_FRAME)
  else
    M.wq_push(ch, cb, 0, item.frame)
    ch.hq[ch.tail] = item
  end
  if idle then ipc.flush(ch) else ipc.update(ch) end
end

-- json: send an item now (a handle one becomes the one in flight)
local function dispatch(ch, item)
  if ch.disconnecting then
    if item.fd then release(item) end
    if item.cb then closed_error(ch, item.cb) end
    return
  end
  if item.fd then
    ch.hwait, ch.hpending = {}, item
    local cb = item.cb
    item.cb = nil                    -- (a resend calls nobody)
    queue_handle(ch, item, cb)
  else
    ipc.send_frame(ch, item.frame, item.cb)
  end
end

-- the one in flight is done with: the sends queued behind it go on
local function unblock(ch)
  local w = ch.hwait
  ch.hwait = nil
  if not w then return end
  for i = 1, #w do
    if ch.hwait then ch.hwait[#ch.hwait + 1] = w[i]
    else dispatch(ch, w[i]) end
  end
  if ch.want_disconnect and not ch.hwait then
    ch.want_disconnect = nil
    ipc.disconnect(ch)
  end
end

-- lua/ipc.lua's send() with a handle, or behind one in flight ('json').
-- Everything is checked before anything is queued; errors at the line
-- that called send (level 3: send and this are tail calls of the method).
function M.handle_send(ch, message, handle, opts, cb)
  if opts ~= nil and type(opts) ~= 'table' then
    M.argerror('send', 4, 'options must be a table')
  end
  local fd, obj, kind, family, connected, listening, socktype
  if handle ~= nil then
    fd, obj = resolve(handle)
    if not fd then
      M.argerror('send', 3, ("a socket, stream, file or fd expected, got %s")
        :format(describe(handle)))
    end
    kind, family, connected, listening, socktype = core.fdkind(fd)
    if not kind then
      M.argerror('send', 3, core.strerror(family))
    end
    if ch.carries == nil then ch.carries = core.fdkind(ch.fd) == 'unix' end
    if not ch.carries then
      M.argerror('send', 3, 'this channel cannot carry handles: it is not a local socket')
    end
  end
  local ok, frame
  if ch.mode == 'lua' then
    ok, frame = pcall(core.lua_encode, message, true)
  elseif fd then
    local ty, dgram = node_type(kind, family, connected, listening, socktype)
    ok, frame = pcall(ch.encode, { cmd = 'NODE_HANDLE', type = ty,
      msg = message, dgramType = dgram })
  else
    ok, frame = pcall(ch.encode, message)
  end
  if not ok then
    M.argerror('send', 2, tostring(frame))
  end
  if ch.disconnecting or ch.want_disconnect then return closed_error(ch, cb) end
  local item = { frame = frame, cb = cb }
  if fd then
    local copy, err = core.dup(fd)   -- ours until sent (or ACKed)
    if not copy then
      local e = M.syserror(err, 'dup')
      if cb then defer(cb, e)
      else defer(function() emit(ch.s, ch.self, 'error', e) end) end
      return false
    end
    item.fd, item.obj, item.ch = copy, obj, ch
    ch.ncopies = (ch.ncopies or 0) + 1
    item.closeobj = obj ~= nil and connected and socktype == 'stream'
      and not listening and not (opts and opts.keepOpen)
  end
  if ch.mode == 'lua' then
    item.cb = nil
    queue_handle(ch, item, cb)
  elseif ch.hwait then
    ch.hwait[#ch.hwait + 1] = item
  else
    dispatch(ch, item)
  end
  return ch.queued < HIGH_WATER and (ch.ncopies or 0) < MAX_COPIES
end

-- flush's write of a socket item: the fd goes with its first bytes
function M.handle_write(ch, item, frame, off)
  if not item.sent then
    local n, err = core.sendfd(ch.fd, frame, off, item.fd)
    if n then item.sent = true end
    return n, err
  end
  return core.write(ch.fd, frame, off)
end

-- flush wrote all of a socket item ('json' keeps the fd for a resend)
function M.handle_sent(ch, item)
  if ch.mode == 'lua' then release(item) end
end

-- }======================================================


-- {====================================================== receiving

local hmethods = {}
local Handle, hself = core.class('childproc.Handle', hmethods)
M.Handle = Handle

local function new_handle(fd)
  local kind, family, connected, listening, socktype, access =
    core.fdkind(fd)
  return core.object(Handle, { kind = kind or 'fd', fd = fd,
    family = family, connected = connected or false,
    listening = listening or false, socktype = socktype,
    access = access or 'rw' })
end

function hmethods.fileno(self)
  local s = hself(self)
  if s.closed then return nil end
  return s.fd
end
hmethods.getfd = hmethods.fileno

function hmethods.close(self)
  local s = hself(self)
  if not s.closed then
    s.closed = true
    if not s.taken then core.close(s.fd) end
  end
end

function hmethods.keep(self)
  hself(self).kept = true
  return self
end

-- luasocket's class for each kind
local function socket_class(s)
  local k = s.kind
  if k == 'tcp-server' then return 'socket', 'tcp', 'tcp{server}' end
  if k == 'tcp' then return 'socket', 'tcp', 'tcp{client}' end
  if k == 'udp' then
    return 'socket', 'udp', s.connected and 'udp{connected}'
      or 'udp{unconnected}'
  end
  if k == 'unix' and s.socktype == 'stream' then
    return 'socket.unix', 'stream', s.listening and 'unixstream{server}'
      or 'unixstream{client}'
  end
  if k == 'unix' and s.socktype == 'dgram' then
    return 'socket.unix', 'dgram', s.connected and 'unixdgram{connected}'
      or 'unixdgram{unconnected}'
  end
end

-- socket() -> a luasocket object that owns the fd now | nil, message
function hmethods.socket(self)
  local s = hself(self)
  if s.sock then return s.sock end
  if s.closed or s.taken then return nil, 'the handle is closed' end
  local modname, make, class = socket_class(s)
  if not modname then
    return nil, ("luasocket has no object for a '%s'"):format(s.kind)
  end
  local ok, mod = pcall(require, modname)
  if not ok then return nil, 'luasocket is not installed' end
  local sock = mod[make]()
  if sock:getfd() >= 0 then sock:close() end
  sock:setfd(s.fd)
  if not core.setclass(sock, class) then
    sock:setfd(-1)
    return nil, ("luasocket has no class '%s'"):format(class)
  end
  core.nonblock(s.fd, true)          -- as luasocket keeps its sockets
  s.sock, s.taken = sock, true
  return sock
end

-- stream() -> a Duplex on the fd (lua/duplex.lua), which it owns now
function hmethods.stream(self)
  local s = hself(self)
  if s.duplex then return s.duplex end
  if s.closed or s.taken then return nil, 'the handle is closed' end
  s.duplex, s.taken = M.duplex(s.fd, s.access), true
  return s.duplex
end

-- }======================================================


-- {====================================================== ipc.lua's hooks

-- A message with its fd: 'message'(message, handle); closed after the
-- listeners unless one kept or took it.
local function emit_handle(ch, m, fd)
  local h = new_handle(fd)
  local ok, err = pcall(emit, ch.s, ch.self, 'message', m, h)
  local s = hself(h)
  if not s.kept and not s.taken then h:close() end
  if not ok then error(err, 0) end
end

function M.handle_emit(ch, m, fd)
  if ch.mode == 'json' then  -- an fd with a line that promised none
    core.close(fd)
    return ipc.bad_input(ch, 'a handle came with a message that promised none')
  end
  return emit_handle(ch, m, fd)
end

-- 'json': Node's internal messages about handles
function M.handle_internal(ch, m, fd)
  local cmd = m.cmd
  if cmd == 'NODE_HANDLE' then
    -- as Node: no handle came (the kernel dropped it): ask again
    if not fd then
      return ipc.send_frame(ch, ch.encode({ cmd = 'NODE_HANDLE_NACK' }))
    end
    ipc.send_frame(ch, ch.encode({ cmd = 'NODE_HANDLE_ACK' }))
    return emit_handle(ch, m.msg, fd)
  end
  if fd then
    core.close(fd)
    return ipc.bad_input(ch, 'a handle came with a message that promised none')
  end
  if cmd == 'NODE_HANDLE_ACK' or cmd == 'NODE_HANDLE_NACK' then
    local p = ch.hpending
    if p and cmd == 'NODE_HANDLE_NACK' and (p.resends or 0) < MAX_RESENDS then
      p.resends = (p.resends or 0) + 1
      queue_handle(ch, p, nil)        -- again, still in flight
      return
    end
    ch.hpending = nil
    if p then
      release(p)
      if cmd == 'NODE_HANDLE_NACK' then
        local w = M.newerror({ name = 'SentHandleNotReceivedWarning',
          code = 'SentHandleNotReceivedWarning',
          message = 'Handle did not reach the receiving process correctly' })
        if M.listeners(ch.s, 'warning') > 0 then emit(ch.s, ch.self, 'warning', w)
        else io.stderr:write('childproc: SentHandleNotReceivedWarning: ',
          w.message, '\n') end
      end
    end
    unblock(ch)
  end
end

-- A ring's marker at q[h]: the message from the socket takes its place;
-- false when it has not come yet (delivery waits: blocked)
function M.handle_unmark(ch, q, h)
  local held = ch.held
  if held and held.h <= held.t then
    q[h] = held[held.h]
    held[held.h], held.h = nil, held.h + 1
    return true
  end
  if not ch.blocked then ch.blocked = true; ipc.update(ch) end
  return false
end

-- ch.out[1..n] came on a ringed channel's socket: those with a handle
-- wait for their marker (held); returns how many others stay in out
local MAX_HELD = 512    -- socket messages waiting for their ring markers
                        -- (a read per event takes at most 64)

function M.handle_hold(ch, n)
  local out, k, bad_markers = ch.out, 0, false
  for i = 1, n do
    local m = out[i]
    out[i] = nil
    if getmetatable(m) == HMSG then
      local held = ch.held
      if not held then held = { h = 1, t = 0 }; ch.held = held end
      held.t = held.t + 1
      held[held.t] = m
      if held.t - held.h >= MAX_HELD then bad_markers = true end
    else
      k = k + 1
      out[k] = m
    end
  end
  if bad_markers then   -- a peer breaking the rules: its fds are closed
    ipc.bad_input(ch, 'handles came without their markers in the ring')
    return k
  end
  if ch.blocked and ch.held and ch.held.h <= ch.held.t then
    ch.blocked = false
    ipc.update(ch)
  end
  return k
end

-- close_channel: the fds queued to send, held, or not delivered
function M.handle_close(ch)
  local hq = ch.hq  -- (emptied in place: no allocation on a close)
  for k, item in pairs(hq) do release(item); hq[k] = nil end
  if ch.hpending then release(ch.hpending); ch.hpending = nil end
  local w = ch.hwait
  ch.hwait = nil
  if w then
    for i = 1, #w do
      if w[i].fd then release(w[i]) end
      if w[i].cb then closed_error(ch, w[i].cb) end
    end
  end
  local held = ch.held
  if held then
    for i = held.h, held.t do core.close(held[i][2]) end
    ch.held = nil
  end
  for i = ch.ph, ch.pt do
    local m = ch.pq[i]
    if getmetatable(m) == HMSG then core.close(m[2]); ch.pq[i] = false end
  end
  ch.blocked = false
end

-- }======================================================
