-- The child's side of a channel (lua/ipc.lua): cp.process's channel,
-- found in the environment when the module loads (M.channel_autostart,
-- run by lua/init.lua), and cp.process's send and disconnect.
local core, M = ...

local ipc = M.ipc
local send, sent_rest, disconnect = ipc.send, ipc.sent_rest, ipc.disconnect
local ipairs, tostring, tonumber, error = ipairs, tostring, tonumber, error

local pmethods, pself = M.process_methods, M.pself
local pch        -- this process's channel, when it was forked

pmethods.send = core.ring_sender(M.Process, function(self, message, a, b, c)
  pself(self)
  if pch and pch.beforesend then pch.beforesend() end  -- (lua/launcher.lua)
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
  for _, k in ipairs(ipc.ENV_NAMES) do core.setenv(k, nil) end
  local fd = M.toint(tonumber(fdtext))
  if not fd or fd < 0 or not core.isopen(fd) then return end
  if wire and wire ~= tostring(core.lua_wire) then
    error(("childproc: the parent speaks version %s of the 'lua' wire format;"
      .. " this module (childproc %s) speaks version %d: use the same childproc"
      .. " release at both ends, or serialization = 'json'")
      :format(wire, core.version, core.lua_wire), 0)
  end
  if not ipc.encoders[mode] then
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
    ok = bell and pbell and ipc.use_rings(pch, ringfd, 1, bell, pbell)
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
  pch = ipc.new(fd, mode, M.MAX_MESSAGE, 'process', ps, M.process, wfd, direct)
  ps.connected = true
  local function relisten()
    if pch.closed then return end
    local want = listening(ps)
    if want ~= pch.want_ref then pch.want_ref = want; ipc.update(pch) end
  end
  ps._onlisten, ps._onunlisten = relisten, relisten
  return pch
end
