-- Handles over the channel: send(message, handle) passes an fd with its
-- message (SCM_RIGHTS), both ways, in both serializations; the fds of
-- both processes stay flat; bad handles and bad frames; the real node.
local cp = require 'childproc'
local socket = require 'socket'
local lfs = require 'lfs'
local core = core()

local FIX = ROOT .. '/spec/fixtures/'
local has_node = os.execute('command -v node >/dev/null 2>&1')

local function nfds(pid)
  local n = 0
  for name in lfs.dir('/proc/' .. tostring(pid or MYPID) .. '/fd') do
    if name:match('^%d+$') then n = n + 1 end
  end
  return n - (pid and 0 or 1)
end

-- a forked handle_peer.lua and its messages: box[i] = { m, handle }
local function peer(mode, opts)
  opts = opts or {}
  opts.serialization = mode
  local child = cp.fork(FIX .. 'handle_peer.lua', {}, opts)
  local box = {}
  child:on('message', function(m, h)
    if h then h:keep() end
    box[#box + 1] = { m, h }
  end)
  local function next_msg(what)
    run_until(function() return #box > 0 end, 10000, what or 'a reply')
    return table.unpack(table.remove(box, 1))
  end
  local function stop()
    child:disconnect()
    wait_close(child)
  end
  return child, next_msg, stop, box
end

-- one of each kind, made here: kind, luasocket class, make() -> handle, cleanup
local function makers()
  local tmp = tmpname()
  return {
    { 'tcp-server', 'tcp{server}', function()
        local s = assert(socket.bind('127.0.0.1', 0))
        return s, function() s:close() end
      end },
    { 'tcp', 'tcp{client}', function()
        local s = assert(socket.bind('127.0.0.1', 0))
        local c = assert(socket.connect('127.0.0.1', (select(2, s:getsockname()))))
        local a = assert(s:accept())
        return c, function() a:close(); c:close(); s:close() end
      end },
    { 'udp', 'udp{unconnected}', function()
        local u = socket.udp()
        assert(u:setsockname('127.0.0.1', 0))
        return u, function() u:close() end
      end },
    { 'unix', 'unixstream{client}', function()
        local a, b = core.socketpair()
        return a, function() core.close(a); core.close(b) end
      end },
    { 'unix', 'unixstream{server}', function()   -- a luasocket Unix socket, listening
        local path = tmpname()
        os.remove(path)
        local u = require('socket.unix').stream()
        assert(u:bind(path))
        assert(u:listen())
        return u, function() u:close(); os.remove(path) end
      end },
    { 'pipe', false, function()   -- a childproc stream
        local r, w = core.pipe()
        local st = internal().readable(r)
        return st, function() st:destroy(); core.close(w) end
      end },
    { 'file', false, function()
        local f = assert(io.open(tmp, 'w'))
        return f, function() f:close(); os.remove(tmp) end
      end },
    { 'fd', false, function()
        local fd = assert(core.open('/dev/null', 'rw'))
        return fd, function() core.close(fd) end
      end },
  }
end

for _, mode in ipairs({ 'lua', 'json' }) do
  describe('handles over a ' .. mode .. ' channel', function()
    leakcheck()

    it('every kind goes to the child and comes back', function()
      local child, next_msg, stop = peer(mode)
      for _, mk in ipairs(makers()) do
        local kind, class, make = mk[1], mk[2], mk[3]
        local h, cleanup = make()
        child:send({ op = 'back', class = true }, h, { keepOpen = true })
        local m, back = next_msg(kind)
        assert.equal(class or nil, m.class, kind)  -- handle:socket() there
        if kind == 'tcp' then assert.is_true(h:getfd() >= 0) end  -- keepOpen
        assert.equal(kind, m.kind, kind)
        assert.equal('childproc.Handle', getmetatable(back).__name)
        assert.equal(kind, back.kind)
        assert.is_true(core.isopen(back:fileno()))
        back:close()
        assert.is_nil(back:fileno())
        cleanup()
      end
      stop()
    end)

    it('keeps the order of messages with and without handles', function()
      local child, next_msg, stop = peer(mode)
      local fd = assert(core.open('/dev/null'))
      for i = 1, 50 do
        if i % 7 == 0 then child:send({ op = 'back', i = i }, fd)
        else child:send(i) end
      end
      for i = 1, 50 do
        local m, h = next_msg()
        if i % 7 == 0 then assert.equal('back', m.op); assert.equal('fd', h.kind); h:close()
        else assert.same({ op = 'plain', m = i }, m) end
      end
      core.close(fd)
      stop()
    end)

    it('a server the child accepts on, with luasocket', function()
      local child, next_msg, stop = peer(mode)
      local srv = assert(socket.bind('127.0.0.1', 0))
      local host, port = srv:getsockname()
      child:send({ op = 'serve' }, srv)
      assert.equal('serving', next_msg().op)
      assert.is_true(srv:getfd() >= 0)          -- a server stays open here
      srv:close()
      local c = assert(socket.connect(host, port))
      c:settimeout(5)
      c:send('ping\n')
      assert.equal(('lua %d ping'):format(child.pid), c:receive('*l'))
      c:close()
      stop()
    end)

    it('a connected socket: written by the child, closed here once sent', function()
      local child, next_msg, stop = peer(mode)
      local srv = assert(socket.bind('127.0.0.1', 0))
      local c = assert(socket.connect('127.0.0.1', (select(2, srv:getsockname()))))
      local a = assert(srv:accept())
      child:send({ op = 'tcpwrite', text = 'over tcp' }, c)
      assert.equal('written', next_msg().op)
      assert.equal(-1, c:getfd())               -- closed after it went
      a:settimeout(5)
      assert.equal('over tcp', a:receive('*a'))
      a:close(); srv:close()
      stop()
    end)

    it('udp, a pipe as a duplex stream', function()
      local child, next_msg, stop = peer(mode)
      local u = socket.udp()
      assert(u:setsockname('127.0.0.1', 0))
      local uhost, uport = u:getsockname()
      local sender = socket.udp()
      assert(sender:setsockname('127.0.0.1', 0))
      child:send({ op = 'udp', text = 'datagram', host = uhost, port = uport }, sender)
      assert.equal('written', next_msg().op)
      sender:close()
      u:settimeout(5)
      assert.equal('datagram', u:receive())
      u:close()
      local r, w = core.pipe()
      child:send({ op = 'write', text = 'through a pipe' }, w)
      assert.equal('written', next_msg().op)
      core.close(w)
      local st, got = internal().readable(r), {}
      st:on('data', function(d) got[#got + 1] = d end)
      local ended = false
      st:on('close', function() ended = true end)
      run_until(function() return ended end, 5000, 'the pipe to end')
      assert.equal('through a pipe', table.concat(got))
      stop()
    end)

    it('a socket as a duplex stream: read, written, ended', function()
      local child, next_msg, stop = peer(mode)
      local a, b = core.socketpair()
      child:send({ op = 'echo' }, a)
      core.close(a)
      core.nonblock(b, true)
      assert(core.write(b, 'ping pong'))
      core.shutdown(b)                       -- the child's 'end'
      local st, got, closed = internal().readable(b), {}, false
      st:on('data', function(d) got[#got + 1] = d end)
      st:on('close', function() closed = true end)
      run_until(function() return closed end, 5000, 'the echo to end')
      assert.equal('PING PONG', table.concat(got))
      assert.equal('echoed', next_msg().op)  -- its 'close' came
      stop()
    end)

    it('fds flat in both processes over 10,000 sends each way', function()
      local child, next_msg, stop = peer(mode)
      local fd = assert(core.open('/dev/null'))
      next_msg(child:send({ op = 'count' }) and 'count')
      local p0, c0 = nfds(), nfds(child.pid)
      local N = 10000
      local pmax, cmax = p0, c0
      -- at most 8 waiting to be written: each holds a copy of its fd
      local waiting, more = 0, 0
      local function written() waiting = waiting - 1 end
      for i = 1, N do
        waiting = waiting + 1
        if child:send({ op = 'sink', last = i == N or nil }, fd, written) then
          more = more + 1
        end
        if waiting >= 8 then run_until(function() return waiting < 8 end) end
        if i % 500 == 0 then
          pmax = math.max(pmax, nfds()); cmax = math.max(cmax, nfds(child.pid))
        end
      end
      local m = next_msg('sunk')
      assert.equal(N, m.n)
      assert.equal(N, more)    -- (8 waiting: send never said wait)
      -- and back: the child sends N, this side keeps none
      child:removeAllListeners('message')
      local got, blasted = 0, nil
      child:on('message', function(x, h)
        if h then got = got + 1 end
        if x.op == 'blasted' then blasted = x end
        if got % 500 == 0 then
          pmax = math.max(pmax, nfds()); cmax = math.max(cmax, nfds(child.pid))
        end
      end)
      child:send({ op = 'blast', n = N })
      run_until(function() return blasted and got == N end, 20000, 'the blast')
      collectgarbage(); collectgarbage()
      child:send({ op = 'count' })
      local counted
      child:on('message', function(x) if x.op == 'count' then counted = x end end)
      run_until(function() return counted end, 5000, 'count')
      assert.equal(p0, nfds())
      assert.equal(c0, counted.fds)
      assert.is_true(pmax - p0 < 64, 'parent fds grew to ' .. pmax - p0)
      assert.is_true(cmax - c0 < 64, 'child fds grew to ' .. cmax - c0)
      core.close(fd)
      stop()
    end)

    -- ('json': they wait for the ACK of the one in flight; 'lua' writes
    -- them at once while the socket takes them)
    local it_json = mode == 'json' and it or function() end
    it_json('send returns false with 16 handles waiting (each holds an fd)', function()
      local child, next_msg, stop = peer(mode)
      local fd = assert(core.open('/dev/null'))
      local rets, done = {}, 0
      for i = 1, 20 do rets[i] = child:send({ op = 'sink' }, fd, function() done = done + 1 end) end
      core.close(fd)
      assert.is_true(rets[1])
      assert.is_false(rets[20])
      run_until(function() return done == 20 end, 10000, 'all written')
      assert.is_true(child:send({ op = 'count' }))
      next_msg('count')
      stop()
    end)

    it('a handle the listener keeps stays open until closed', function()
      local child, next_msg, stop = peer(mode)
      next_msg(child:send({ op = 'count' }) and 'count')
      local base
      child:send({ op = 'count' })
      base = next_msg().fds
      local fd = assert(core.open('/dev/null'))
      child:send({ op = 'keep' }, fd)
      assert.equal(base + 1, next_msg().fds)
      child:send({ op = 'unkeep' })
      assert.equal(base, next_msg().fds)
      child:send({ op = 'sink' }, fd)          -- not kept: closed after
      child:send({ op = 'count' })
      assert.equal(base, next_msg().fds)
      core.close(fd)
      stop()
    end)

    it('what was sent before a disconnect() arrives, handles included', function()
      local child = peer(mode)
      local path = tmpname()
      local fd = assert(core.open('/dev/null'))
      child:send({ op = 'note', path = path, text = '1' }, fd)
      child:send({ op = 'note', path = path, text = '2' })
      child:send({ op = 'note', path = path, text = '3' }, fd)
      child:disconnect()
      core.close(fd)
      local rec = recorder()
      rec:listen(child, { 'error' })
      assert.is_false(child:send({ op = 'note', path = path, text = 'late' }))
      wait_close(child)
      assert.equal('1+fd23+fd', readfile(path))
      assert.equal('ERR_IPC_CHANNEL_CLOSED', rec:get('error')[2].code)
      os.remove(path)
    end)

    it('refuses what is not a handle before anything is written', function()
      local child, next_msg, stop = peer(mode)
      local f = assert(io.open('/dev/null')); f:close()
      local fd = assert(core.open('/dev/null')); core.close(fd)
      for _, bad in ipairs({ {}, 'str', true, -1, 1.5, fd, f, socket.tcp() }) do
        local line = debug.getinfo(1, 'l').currentline + 1
        local ok, err = pcall(function() child:send({ op = 'back' }, bad) end)
        assert.is_false(ok)
        assert.matches("bad argument #2 to 'send' %(a socket, stream, file or fd"
          .. " expected, got [^)]+%)", err)
        assert.truthy(err:find('handles_spec.lua:' .. line, 1, true), err)
      end
      local ok, err = pcall(child.send, child, { op = 'back' }, 1, 'x')
      assert.is_false(ok)
      assert.matches("bad argument #4 to 'send' %(options must be a table%)", err)  -- (not a method call: self is #1)
      child:send('first')
      assert.same({ op = 'plain', m = 'first' }, (next_msg()))
      stop()
    end)
  end)
end

describe('bad handle frames', function()
  leakcheck()

  local function raw(what, mode, opts)
    opts = opts or {}
    -- spawned with an 'ipc' entry: no bootstrap takes the channel first
    opts.serialization = mode
    opts.stdio = { 'pipe', 'pipe', 'inherit', 'ipc' }
    opts.env = childenv({ LUA_CPATH = os.getenv('LUA_CPATH'),
      LUA_PATH = os.getenv('LUA_PATH') })
    local child = cp.spawn(LUA, { FIX .. 'handle_raw.lua', what }, opts)
    local rec, out = recorder(), {}
    rec:listen(child, { 'error', 'message', 'disconnect' })
    child.stdout:on('data', function(d) out[#out + 1] = d end)
    return child, rec, out
  end

  for _, case in ipairs({
    { 'promised', 'lua', 'a message promised a handle that did not come' },
    { 'unpromised', 'lua', 'a handle came with a message that promised none' },
    { 'json-unpromised', 'json', 'a handle came with a message that promised none' },
  }) do
    it(case[1] .. ' (' .. case[2] .. ') is an error, nothing leaks', function()
      local before = nfds()
      local child, rec = raw(case[1], case[2])
      wait_close(child)
      local e = rec:get('error')
      assert.truthy(e, 'no error event')
      assert.equal('ERR_IPC_BAD_MESSAGE', e[2].code)
      assert.truthy(e[2].message:find(case[3], 1, true), e[2].message)
      assert.is_nil(rec:get('message'))
      assert.equal(before, nfds())
    end)
  end

  it('a handle whose ring marker never comes is closed with the channel', function()
    local before = nfds()
    local child, rec = raw('nomarker', 'lua')
    wait_close(child)
    assert.is_nil(rec:get('message'))
    assert.is_nil(rec:get('error'))
    assert.equal(before, nfds())
  end)

  it("json: NODE_HANDLE without its fd gets Node's NACK", function()
    local child, rec, out = raw('json-nohandle', 'json')
    run_until(function() return table.concat(out):find('\n') end, 10000, 'the NACK')
    child:disconnect()
    wait_close(child)
    assert.equal('{"cmd":"NODE_HANDLE_NACK"}\n', table.concat(out))
    assert.is_nil(rec:get('message'))
  end)

  it("json: after Node's three resends a NACKed handle is a 'warning'", function()
    local child, rec, out = raw('json-nack', 'json')
    rec:listen(child, { 'warning' })
    local fd = assert(core.open('/dev/null'))
    child:send({ with = 'handle' }, fd)
    child:send({ after = 'it' })          -- waits behind the handle
    core.close(fd)
    run_until(function() return rec:get('warning') end, 10000, 'the warning')
    local w = rec:get('warning')[2]
    assert.equal('SentHandleNotReceivedWarning', w.code)
    child:send('done')
    wait_close(child)
    assert.equal('handles 4\n', table.concat(out))   -- sent, and resent 3 times
    assert.is_nil(rec:get('error'))
  end)

  it('maxMessageSize applies to a message with a handle', function()
    local before = nfds()
    local child = cp.fork(FIX .. 'handle_peer.lua', {}, { maxMessageSize = 64 })
    local rec = recorder()
    rec:listen(child, { 'error', 'message' })
    local fd = assert(core.open('/dev/null'))
    child:send({ op = 'back', pad = ('x'):rep(200) }, fd)
    core.close(fd)
    wait_close(child)
    local e = rec:get('error')
    assert.truthy(e, 'no error event')
    assert.equal('ERR_IPC_MESSAGE_TOO_LARGE', e[2].code)
    assert.is_nil(rec:get('message'))
    assert.equal(before, nfds())
  end)
end)

local describe_node = has_node and describe or pending

describe_node('handles with the real node', function()
  leakcheck()

  it('a Node parent passes a net.Server to a Lua child that accepts on it, and gets one back', function()
    local out, status, err = shell(('cd %s && LUA=%s LUA_CPATH=%s timeout 30 node %s %s'):format(
      shq(ROOT), LUA, shq(CPATH), shq(FIX .. 'node_handle_parent.js'),
      shq(FIX .. 'handle_peer.lua')))
    assert.equal(0, status, err)
    local pid, line = out:match('answer lua (%d+) (.-)\n')
    assert.truthy(pid, out .. err)
    assert.equal('from node', line)
    assert.truthy(out:find('kind tcp-server', 1, true), out)
    -- the child's luasocket server, passed up: Node's net.Server on it
    assert.truthy(out:find('got Server listening true', 1, true), out)
    assert.truthy(out:find('answer2 node parent %d+\n'), out)
  end)

  it('a Lua parent passes a luasocket server and a socket to a Node child', function()
    local child = cp.fork(FIX .. 'node_handle_child.js', {},
      { execPath = 'node', serialization = 'json' })
    local box = {}
    child:on('message', function(m) box[#box + 1] = m end)
    local srv = assert(socket.bind('127.0.0.1', 0))
    local host, port = srv:getsockname()
    child:send({ op = 'server' }, srv)
    child:send({ op = 'after' })            -- waits for the ACK
    run_until(function() return #box >= 2 end, 15000, 'node listening')
    assert.same({ listening = true, type = 'object' }, box[1])
    assert.same({ after = true }, box[2])
    assert.is_true(srv:getfd() >= 0)        -- servers stay open here
    srv:close()
    local c = assert(socket.connect(host, port))
    c:settimeout(5)
    assert.equal('node ' .. child.pid, c:receive('*l'))
    c:close()
    -- a connected socket: Node writes on it; ours is closed after the ACK
    local s2 = assert(socket.bind('127.0.0.1', 0))
    local c2 = assert(socket.connect('127.0.0.1', (select(2, s2:getsockname()))))
    local a2 = assert(s2:accept())
    child:send({ op = 'socket' }, c2)
    run_until(function() return #box >= 3 end, 10000, 'node wrote')
    assert.equal(-1, c2:getfd())
    a2:settimeout(5)
    assert.equal('node wrote ' .. child.pid .. '\n', a2:receive('*a'))
    a2:close(); s2:close()
    child:send({ op = 'stop' })
    wait_close(child)
  end)
end)
