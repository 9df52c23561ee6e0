-- cp.watch: the user's fds in childproc's loop; cp.loop as a pollable.
local cp = require 'childproc'
local lfs = require 'lfs'
local socket = require 'socket'
local core = core()

-- a connected pair of luasocket TCP sockets over 127.0.0.1
-- (the client socket is made first: it takes the lowest free fd number)
local function tcppair()
  local a = assert(socket.tcp4())   -- tcp4: made now, not at connect
  local srv = assert(socket.bind('127.0.0.1', 0))
  local _, port = srv:getsockname()
  assert(a:connect('127.0.0.1', port))
  local b = assert(srv:accept())
  srv:close()
  a:settimeout(0); b:settimeout(0)
  return a, b
end

-- Make fd the lowest free number (fill the holes below it with dups),
-- so that the next fd anyone opens gets it.  Returns a function that
-- closes the fillers.
local function next_fd_is(fd)
  local fillers = {}
  while true do
    local x = assert(core.dup(2))
    if x >= fd then core.close(x); break end
    fillers[#fillers + 1] = x
  end
  return function() for _, x in ipairs(fillers) do core.close(x) end end
end

-- run the loop until pred() (bounded), then once more without blocking
local function settle(pred, what)
  run_until(pred, 5000, what)
end

describe('cp.watch', function()
  leakcheck()

  it('reports a pipe readable with "r", until stopped', function()
    local r, w = core.pipe()
    local got = {}
    local watcher
    watcher = cp.watch(r, 'r', function(ev, wt)
      got[#got + 1] = ev
      assert.equal(watcher, wt)
      assert.equal('x', core.read(r))
      wt:stop()
    end)
    assert.equal('childproc.Watcher', getmetatable(watcher).__name)
    assert.equal(('childproc.Watcher (fd %d, r)'):format(r), tostring(watcher))
    assert.is_true(watcher:isActive())
    assert.equal(r, watcher:fileno())
    core.write(w, 'x')
    settle(function() return #got == 1 end, 'the "r" event')
    assert.same({ 'r' }, got)
    assert.is_false(watcher:isActive())
    assert.equal(('childproc.Watcher (fd %d, r, stopped)'):format(r), tostring(watcher))
    -- stopped: nothing keeps the loop, more data is not reported
    core.write(w, 'y')
    assert.is_false(cp.run())
    assert.same({ 'r' }, got)
    core.close(r); core.close(w)
  end)

  it('reports "w", "r" and "rw" on a socketpair as the fd is ready', function()
    local a, b = core.socketpair()
    local got = {}
    local wt = cp.watch(a, 'rw', function(ev) got[#got + 1] = ev end)
    settle(function() return #got >= 1 end, 'writable')
    assert.equal('w', got[1])       -- writable, nothing to read yet
    core.write(b, 'data')
    settle(function() return got[#got] == 'rw' end, 'readable and writable')
    wt:stop()
    -- 'r' only: the same fd through a fresh watcher
    got = {}
    local wr = cp.watch(a, 'r', function(ev, w)
      got[#got + 1] = ev; core.read(a); w:stop()
    end)
    core.write(b, 'more')
    settle(function() return #got == 1 end, 'readable')
    assert.same({ 'r' }, got)
    assert.is_false(wr:isActive())
    core.close(a); core.close(b)
  end)

  it('lets several watchers share one fd, each seeing its own events', function()
    local a, b = core.socketpair()
    local rs, ws = {}, {}
    local wr = cp.watch(a, 'r', function(ev) rs[#rs + 1] = ev; core.read(a) end)
    local ww = cp.watch(a, 'w', function(ev, w) ws[#ws + 1] = ev; w:stop() end)
    settle(function() return #ws == 1 end, 'the "w" watcher')
    assert.same({ 'w' }, ws)
    assert.same({}, rs)
    assert.is_true(wr:isActive())
    assert.is_false(ww:isActive())
    core.write(b, 'hello')
    settle(function() return #rs == 1 end, 'the "r" watcher')
    assert.same({ 'r' }, rs)
    assert.same({ 'w' }, ws)          -- stopped: no more 'w'
    wr:stop()
    assert.is_false(cp.run())
    core.close(a); core.close(b)
  end)

  it('watches luasocket objects through getfd()', function()
    local a, b = tcppair()
    local got = {}
    cp.watch(b, 'r', function(ev, w)
      local line = b:receive('*l')
      got[#got + 1] = { ev, line }
      if line == 'bye' then w:stop() end
    end)
    assert(a:send('hello\n'))
    settle(function() return #got == 1 end, 'hello')
    assert(a:send('bye\n'))
    assert.is_false(cp.run())      -- returns once the watcher stopped itself
    assert.same({ { 'r', 'hello' }, { 'r', 'bye' } }, got)
    a:close(); b:close()
  end)

  it('watches objects with fileno(): a childproc stream not read through childproc', function()
    local child = cp.spawn('sh', { '-c', 'printf ready; read x' })
    local got
    local w = cp.watch(child.stdout, 'r', function(ev, wt)
      got = ev; wt:stop()
    end)
    assert.equal(child.stdout:fileno(), w:fileno())
    settle(function() return got end, 'readable stdout')
    assert.equal('r', got)
    -- now childproc reads it, as usual
    local out = {}
    child.stdout:on('data', function(d) out[#out + 1] = d end)
    child.stdin:close('\n')
    wait_close(child)
    assert.equal('ready', table.concat(out))
  end)

  it('refuses the fd of a stream childproc is reading (EEXIST)', function()
    local child = cp.spawn('sh', { '-c', 'read x' })
    child.stdout:on('data', function() end)
    local ok, err = pcall(cp.watch, child.stdout, 'r', function() end)
    assert.is_false(ok)
    assert.matches('EEXIST', err)
    child.stdin:close('\n')
    wait_close(child)
  end)

  it('is safe when stopped inside its own callback, with other events pending', function()
    local a, b = core.socketpair()
    local c, d = core.socketpair()
    local calls = 0
    local order = {}
    local w1, w2
    w1 = cp.watch(a, 'r', function()
      calls = calls + 1
      order[#order + 1] = 'w1'
      w1:stop(); w1:stop()            -- twice: a no-op the second time
      w2:stop()                       -- and the other one, maybe pending too
    end)
    w2 = cp.watch(c, 'r', function() order[#order + 1] = 'w2'; w1:stop(); w2:stop() end)
    core.write(b, 'x'); core.write(d, 'y')   -- both ready in the same turn
    assert.is_false(cp.run())         -- nothing is referenced any more
    assert.equal(1, #order)
    -- data is still unread: a restart reports it again
    local again
    w1:start()
    w1:stop()
    local w3 = cp.watch(a, 'r', function(ev, w) again = ev; w:stop() end)
    assert.is_false(cp.run())
    assert.equal('r', again)
    assert.is_false(w3:isActive())
    core.close(a); core.close(b); core.close(c); core.close(d)
  end)

  it('keeps the loop alive while referenced and active, not when unref()ed', function()
    local r, w = core.pipe()
    local wt = cp.watch(r, 'r', function() end)
    assert.is_true(wt:hasRef())
    wt:unref()
    assert.is_false(wt:hasRef())
    assert.is_false(cp.run())          -- an unref'ed watcher does not hold it
    wt:ref()
    assert.is_true(cp.run('nowait'))   -- a referenced one does
    wt:stop()
    assert.is_false(cp.run('nowait'))
    wt:ref(); wt:unref(); wt:ref()     -- on a stopped watcher: counts stay right
    assert.is_false(cp.run())
    core.close(r); core.close(w)
  end)

  it('lets a callback error leave cp.run() and keeps the loop usable', function()
    local a, b = core.socketpair()
    local n = 0
    local wt = cp.watch(a, 'r', function()
      n = n + 1
      core.read(a)
      if n == 1 then error('boom in callback') end
    end)
    core.write(b, '1')
    local ok, err = pcall(cp.run)
    assert.is_false(ok)
    assert.matches('boom in callback', err)
    core.write(b, '2')
    settle(function() return n == 2 end, 'the second event')
    wt:stop()
    core.close(a); core.close(b)
  end)

  describe('with an fd closed under it', function()
    it('does not spin nor keep cp.run() waiting, and a new fd with the same number works', function()
      local a, b = tcppair()
      local fd = math.floor(b:getfd())
      local calls = 0
      local wt = cp.watch(b, 'r', function() calls = calls + 1 end)
      b:close()                        -- the user forgets to stop it
      assert.is_false(cp.run())        -- returns: the watcher let go
      assert.is_false(wt:isActive())
      assert.equal(0, calls)
      -- the number comes back for another socket: watching it works
      local unfill = next_fd_is(fd)
      local c, d = tcppair()
      unfill()
      assert.equal(fd, c:getfd(), 'expected the fd number to be reused')
      local got
      cp.watch(c, 'r', function(ev, w) got = ev; w:stop() end)
      assert(d:send('x'))
      settle(function() return got end, 'the reused fd')
      assert.equal('r', got)
      wt:stop()                        -- a late stop() touches nothing
      a:close(); c:close(); d:close()
    end)

    it('leaves the number to childproc: a stream on it is read', function()
      local a, b = tcppair()
      local fd = math.floor(b:getfd())
      cp.watch(b, 'r', function() end)
      b:close()
      -- the next pipe childproc makes takes the freed number
      local unfill = next_fd_is(fd)
      local r, w = core.pipe()
      unfill()
      assert.equal(fd, r, 'expected the pipe to reuse fd ' .. fd)
      core.nonblock(r, true)
      local st = internal().readable(r)
      local out, ended = {}, false
      st:on('data', function(s) out[#out + 1] = s end)
      st:on('close', function() ended = true end)
      core.write(w, 'through the reused fd')
      core.close(w)
      settle(function() return ended end, 'the stream to end')
      assert.equal('through the reused fd', table.concat(out))
      a:close()
    end)

    it("gives a new fd with the number none of the old one's pending events", function()
      -- one turn's events: a (ready first), then r1.  a's callback closes
      -- r1 and watches an empty pipe that takes r1's number: the event
      -- r1 had in the same turn is not the new pipe's.
      local a, b = core.socketpair()
      local r1, w1 = core.pipe()
      local order, calls, r2, w2 = {}, 0, nil, nil
      local old = cp.watch(r1, 'r', function() order[#order + 1] = 'r1' end)
      cp.watch(a, 'r', function(_, w)
        order[#order + 1] = 'a'
        w:stop()
        old:stop()
        core.close(r1)
        local unfill = next_fd_is(r1)
        r2, w2 = core.pipe()
        unfill()
        core.nonblock(r2, true)
        cp.watch(r2, 'r', function(_, w3) calls = calls + 1; core.read(r2); w3:stop() end)
      end)
      core.write(b, 'x')
      core.write(w1, 'y')
      cp.run('nowait')
      assert.same({ 'a' }, order)
      assert.equal(r1, r2, 'expected the pipe to reuse fd ' .. r1)
      assert.equal(0, calls)
      core.write(w2, 'z')
      settle(function() return calls == 1 end, 'the new pipe')
      core.close(a); core.close(b); core.close(w1); core.close(r2); core.close(w2)
    end)

    it('of an integer fd: stops by itself too', function()
      local r, w = core.pipe()
      local wt = cp.watch(r, 'r', function() end)
      core.close(r)
      assert.is_false(cp.run())
      assert.is_false(wt:isActive())
      core.close(w)
    end)
  end)

  describe('bad arguments', function()
    local r, w = core.pipe()
    core.close(r); core.close(w)
    local closed = tcppair()
    closed:close()
    badargs {
      { 'a negative fd', function() cp.watch(-1, 'r', print) end, 'EBADF' },
      { 'a closed fd', function() cp.watch(r, 'r', print) end, 'EBADF' },
      { 'an fd never opened', function() cp.watch(99999, 'r', print) end, 'EBADF' },
      { 'a closed luasocket', function() cp.watch(closed, 'r', print) end, 'EBADF' },
      { 'a closed file', function()
          local f = io.tmpfile(); f:close(); cp.watch(f, 'r', print)
        end, 'EBADF' },
      { 'a fractional fd', function() cp.watch(1.5, 'r', print) end, "'watch'" },
      { 'no fd', function() cp.watch(nil, 'r', print) end, "#1 to 'watch'" },
      { 'a table without getfd', function() cp.watch({}, 'r', print) end,
        "#1 to 'watch'", 'getfd' },
      { 'bad events', function() cp.watch(0, 'x', print) end,
        "#2 to 'watch'", "'r', 'w' or 'rw'" },
      { 'no events', function() cp.watch(0, nil, print) end, "#2 to 'watch'" },
      { 'no callback', function() cp.watch(0, 'r') end, "#3 to 'watch'" },
      { 'a non-callable callback', function() cp.watch(0, 'r', 42) end,
        "#3 to 'watch'", 'function expected' },
      { 'a method on a non-Watcher', function()
          local r2, w2 = core.pipe()
          local wt = cp.watch(r2, 'r', print):stop()
          core.close(r2); core.close(w2)
          wt.stop({})
        end, 'childproc.Watcher' },
    }
  end)
end)

describe('cp.loop', function()
  leakcheck()

  it('is a pollable object: pollfd, events, timeout', function()
    assert.equal('childproc.Loop', getmetatable(cp.loop).__name)
    -- the default loop's epoll fd
    assert.equal('anon_inode:[eventpoll]',
                 lfs.symlinkattributes('/proc/self/fd/' .. cp.loop:pollfd(), 'target'))
    assert.equal('r', cp.loop:events())
    assert.is_nil(cp.loop:timeout())                  -- nothing pending
    local t = cp.setTimeout(function() end, 60000)
    local left = cp.loop:timeout()
    assert.is_true(left > 50 and left <= 60)          -- seconds, not ms
    local im = cp.setImmediate(function() end)
    assert.equal(0, cp.loop:timeout())                -- work is ready
    cp.run('nowait')
    im:close()
    t:close()
    assert.is_nil(cp.loop:timeout())
  end)

  it('has a pollfd that becomes readable when a watched fd is', function()
    local a, b = core.socketpair()
    local wt = cp.watch(a, 'r', function() core.read(a) end)
    local out = {}
    core.poll({ cp.loop:pollfd() }, { 1 }, 0, out)
    assert.equal(0, out[1])
    core.write(b, 'x')
    core.poll({ cp.loop:pollfd() }, { 1 }, 1000, out)
    assert.equal(1, out[1] % 2)
    assert.is_true(cp.run('nowait'))                  -- consumes it
    core.poll({ cp.loop:pollfd() }, { 1 }, 0, out)
    assert.equal(0, out[1])
    wt:stop()
    core.close(a); core.close(b)
  end)

  it("has cp.run('nowait') return at once with referenced work left", function()
    local r, w = core.pipe()
    local wt = cp.watch(r, 'r', function() end)
    local t = cp.setTimeout(function() end, 60000)
    for _ = 1, 3 do assert.is_true(cp.run('nowait')) end
    wt:stop(); t:close()
    assert.is_false(cp.run('nowait'))
    core.close(r); core.close(w)
  end)
end)
