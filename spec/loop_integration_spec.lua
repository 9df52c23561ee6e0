-- childproc inside other event loops: a cqueues controller and a plain
-- socket.select loop wait on cp.loop, then call cp.run('nowait').
local cp = require 'childproc'
local socket = require 'socket'

-- Three children that answer after a short while, plus a timer: what the
-- other loop must let childproc finish.  Returns the state to check.
local function start_work()
  local st = { out = {}, closed = 0, timer = false }
  for i = 1, 3 do
    local child = cp.spawn('sh', { '-c', ('sleep 0.0%d; echo child %d'):format(i, i) },
                           { stdio = { 'ignore', 'pipe', 'inherit' } })
    child.stdout:on('data', function(d) st.out[i] = (st.out[i] or '') .. d end)
    child:on('close', function(code) st.closed = st.closed + 1; st.code = code end)
  end
  cp.setTimeout(function() st.timer = true end, 20)
  return st
end

local function check_work(st)
  assert.same({ 'child 1\n', 'child 2\n', 'child 3\n' }, st.out)
  assert.equal(3, st.closed)
  assert.equal(0, st.code)
  assert.is_true(st.timer)
end

describe('cp.loop inside a cqueues controller', function()
  leakcheck()
  local cqueues = require 'cqueues'

  it('drives childproc children while cqueues runs its own coroutines', function()
    local st = start_work()
    local cq = cqueues.new()
    local deadline = cqueues.monotime() + 10
    local ticks, turns, finished = 0, 0, false
    -- a cqueues-native task, to show both loops make progress
    cq:wrap(function()
      for _ = 1, 5 do cqueues.sleep(0.01); ticks = ticks + 1 end
    end)
    cq:wrap(function()
      while cp.run('nowait') do
        turns = turns + 1
        assert(cqueues.monotime() < deadline, 'childproc work not done in 10 s')
        -- wakes on cp.loop's fd or its timeout(), at most 1 s
        cqueues.poll(cp.loop, 1)
      end
      finished = true
    end)
    assert(cq:loop(15))
    assert.is_true(finished)
    assert.equal(5, ticks)
    assert.is_true(turns >= 1)
    check_work(st)
  end)

  it('sleeps in cqueues until the next childproc timer is due', function()
    local fired = false
    cp.setTimeout(function() fired = true end, 30)
    local cq = cqueues.new()
    local polls = 0
    cq:wrap(function()
      -- no fd is ready: only cp.loop:timeout() ends each poll
      while not fired and polls < 100 do
        cqueues.poll(cp.loop)
        polls = polls + 1
        cp.run('nowait')
      end
    end)
    assert(cq:loop(10))
    assert.is_true(fired)
    assert.is_true(polls <= 3, 'polled ' .. polls .. ' times for one timer')
    assert.is_false(cp.run('nowait'))
  end)

  it('passes a childproc callback error out of the controller', function()
    local cq = cqueues.new()
    cp.setTimeout(function() error('from a childproc timer') end, 1)
    cq:wrap(function()
      while cp.run('nowait') do cqueues.poll(cp.loop, 1) end
    end)
    local ok, err = cq:loop(5)
    assert.is_false(not not ok)
    assert.matches('from a childproc timer', tostring(err))
    assert.is_false(cp.run('nowait'))
  end)
end)

describe('cp.loop inside a socket.select loop', function()
  leakcheck()

  -- socket.select wants objects with getfd()
  local pollable = { getfd = function() return cp.loop:pollfd() end }

  it('drives childproc children and the loop\'s own sockets together', function()
    local st = start_work()
    -- the select loop's own business: an echo over TCP
    local srv = assert(socket.bind('127.0.0.1', 0))
    local _, port = srv:getsockname()
    srv:settimeout(0)
    local client = assert(socket.connect('127.0.0.1', port))
    client:settimeout(0)
    assert(client:send('ping\n'))
    local conn, echoed
    local deadline = socket.gettime() + 10
    local work = true
    while work or not echoed do
      assert(socket.gettime() < deadline, 'not done in 10 s')
      local recvt = { pollable, srv }
      if conn then recvt[#recvt + 1] = conn end
      if not echoed then recvt[#recvt + 1] = client end
      local t = cp.loop:timeout()
      if not work then t = 1 end
      local ready = socket.select(recvt, nil, t and math.min(t, 1) or 1)
      if ready[srv] then conn = srv:accept(); if conn then conn:settimeout(0) end end
      if conn and ready[conn] then
        local line = conn:receive('*l')
        if line then conn:send(line .. '\n') end
      end
      if ready[client] then echoed = client:receive('*l') end
      if work then work = cp.run('nowait') end
    end
    assert.equal('ping', echoed)
    check_work(st)
    client:close(); conn:close(); srv:close()
  end)

  it('has cp.run(\'nowait\') handle whatever is ready in one call', function()
    local n = 0
    local core = core()
    cp.setTimeout(function() n = n + 1 end, 5)
    -- wait with select until the timer is due: what timeout() is for
    local deadline = socket.gettime() + 5
    while (cp.loop:timeout() or 0) > 0 and socket.gettime() < deadline do
      socket.select({ pollable }, nil, cp.loop:timeout())
    end
    assert.equal(0, cp.loop:timeout())
    local r, w = core.pipe()
    local wt = cp.watch(r, 'r', function() n = n + 1; core.read(r) end)
    cp.setImmediate(function() n = n + 1 end)
    core.write(w, 'x')
    assert.is_true(cp.run('nowait'))     -- the watcher is still referenced
    assert.equal(3, n)                   -- immediate, timer and fd, at once
    wt:stop()
    assert.is_false(cp.run('nowait'))
    core.close(r); core.close(w)
  end)
end)

describe("cp.loop and a channel's rings", function()
  leakcheck()
  local core = core()

  it('timeout() arms the rings: a message that rang no doorbell is work ready', function()
    -- a ring pair in this process; the reader's decoder stands in the
    -- loop's list as a channel's would.  Its side never slept, so the
    -- writer rings nothing: only looking at the ring shows the message.
    local fd = assert(core.ring_new(4 * 1024 * 1024))
    local wb, rb = assert(core.eventfd()), assert(core.eventfd())
    local w, r = core.decoder('lua'), core.decoder('lua')
    local rings = internal().rings
    finally(function()
      for i = #rings, 1, -1 do if rings[i] == r then table.remove(rings, i) end end
      w:unring(); r:unring()
      core.close(fd); core.close(wb); core.close(rb)
    end)
    assert.is_true(w:ring(fd, 0, rb))
    assert.is_true(r:ring(fd, 1, wb, rb))
    assert.is_nil(cp.loop:timeout())   -- nothing to do
    rings[#rings + 1] = r
    -- timeout() armed r: the writer now rings its doorbell
    assert.is_nil(cp.loop:timeout())
    assert.equal(#core.lua_encode({ hello = 1 }), core.lua_send(fd, { hello = 1 }, w))
    assert.equal(string.pack('<I8', 1), core.read(rb))
    -- a second message: the flag was taken by the first, no ring
    core.lua_send(fd, 'again', w)
    assert.is_false(core.read(rb))
    -- yet the loop's timeout() sees it waiting
    assert.equal(0, cp.loop:timeout())
    local out = {}
    assert.equal(2, r:take(out))
    assert.same({ { hello = 1 }, 'again' }, out)
  end)
end)
