-- The parent's side of a channel (lua/ipc.lua): the 'ipc' entry of a
-- child's stdio (a socketpair, the child's environment, a 'lua'
-- channel's rings), and the ChildProcess's send and disconnect.
local core, M = ...

local ipc = M.ipc
local new_channel, close_channel, use_rings = ipc.new, ipc.close, ipc.use_rings
local update, on_readable = ipc.update, ipc.on_readable
local send, sent_rest, disconnect = ipc.send, ipc.sent_rest, ipc.disconnect
local pairs, ipairs, pcall, error = pairs, ipairs, pcall, error
-- the rings of a 'lua' channel (src/ring.c): this many bytes each
-- way, taken from memory only as messages use them
local RING_SIZE = 4 * 1024 * 1024

-- The 'ipc' entry of a child's stdio (lua/child.lua calls this): make
-- the pair, tell the child where its end is, return that end, and for a
-- 'lua' channel the fds the child gets after its stdio ones (from fd
-- #plan.stdio on; nil if there are none): the rings' memfd, the child's
-- doorbell and ours; .after: the one to close once the child runs.  A
-- fork through a launcher has its channel made by lua/launcher.lua.
function M.ipc_setup(plan, s, self, fd)
  if plan.launcher then return M.launcher_channel(plan, s, self) end
  local opts = plan.opts or {}
  local mode = M.check_serialization('spawn', 3, opts.serialization)
  local max = M.check_maxsize('spawn', 3, opts.maxMessageSize)
  local mine, theirs = core.socketpair()
  if not mine then return nil, theirs end
  core.nonblock(mine, true)
  -- the channel first, and attached: a raise (out of memory) from here
  -- on closes it with both ends (plan.onfail; ch.theirs until returned)
  local ok, ch = pcall(new_channel, mine, mode, max, 'child', s, self)
  if not ok then core.close(mine); core.close(theirs); error(ch, 0) end
  ch.theirs = theirs
  local ok2, err = pcall(M.ipc_attach, plan, s, self, ch)
  if not ok2 then ch.silent = true; close_channel(ch); error(err, 0) end
  -- the child's environment: ours (or opts.env) without any other
  -- channel's variables, plus this channel's
  local env = {}
  if plan.env then
    for _, kv in ipairs(plan.env) do env[#env + 1] = kv end
  else
    for k, v in pairs(core.environ()) do env[#env + 1] = k .. '=' .. v end
  end
  local drop = {}
  for _, k in ipairs(ipc.ENV_NAMES) do drop[k] = true end
  local out = {}
  for _, kv in ipairs(env) do
    if not drop[kv:match('^[^=]*')] then out[#out + 1] = kv end
  end
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
  ch.theirs = nil
  return theirs, extra
end

-- ch becomes the channel of the ChildProcess (fields s, object self)
-- that plan starts
function M.ipc_attach(plan, s, _self, ch)
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

local cmethods, cself = M.child_methods, M.cself

cmethods.send = core.ring_sender(M.ChildProcess, function(self, message, a, b, c)
  return send(cself(self)._ch, message, a, b, c)
end, function(self, status, off, piece)
  return sent_rest(cself(self)._ch, status, off, piece)
end, '_ring')
M.entry_c[cmethods.send] = true

function cmethods.disconnect(self)
  local s = cself(self)
  if not s._ch then
    M.argerror('disconnect', nil, 'the child has no IPC channel')
  end
  disconnect(s._ch)
end
