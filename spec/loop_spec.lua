-- The event loop: run modes, keep-alive, errors raised in callbacks.
local cp = require 'childproc'

describe('cp.run', function()
  leakcheck()

  it('returns false at once when nothing is referenced', function()
    assert.same({ n = 1, false }, table.pack(run_all()))
    assert.same({ n = 1, false }, table.pack(cp.run('once')))
    assert.same({ n = 1, false }, table.pack(cp.run('nowait')))
  end)

  it("'default' runs until no referenced work is left", function()
    local fired = {}
    cp.setTimeout(function()
      fired[#fired + 1] = 'a'
      cp.setTimeout(function() fired[#fired + 1] = 'b' end, 1)
    end, 1)
    assert.is_false(run_all())
    assert.same({ 'a', 'b' }, fired)
  end)

  it("'nowait' returns without blocking and says work remains", function()
    local guard_fired, long_fired = false, false
    local long = cp.setTimeout(function() long_fired = true end, 3600 * 1000)
    -- unref'd: it keeps nothing alive, but would wake a blocked loop
    local guard = cp.setTimeout(function() guard_fired = true end, 3000):unref()
    assert.is_true(cp.run('nowait'))
    assert.is_true(cp.run('nowait'))
    assert.is_false(guard_fired)
    assert.is_false(long_fired)
    long:close()
    guard:close()
    assert.is_false(cp.run('nowait'))
  end)

  it("'nowait' never blocks, in a fresh interpreter (bounded by timeout)", function()
    local out, status = luaproc([[
      local cp = require 'childproc'
      cp.setTimeout(function() print('fired') end, 3600 * 1000)
      print(cp.run('nowait'), cp.run('nowait'))
      os.exit(0)
    ]], { timeout = 20 })
    assert.same({ 'true\ttrue\n', 0 }, { out, status })
  end)

  it("'once' returns after handling an event, without waiting for more", function()
    local closed, late = false, false
    local c = cp.spawn('nosuchcmd-for-once')
    c:on('error', function() end)
    c:on('close', function() closed = true end)
    local t = cp.setTimeout(function() late = true end, 3000)
    -- the failed spawn's 'error'/'close' are ready now: 'once' handles
    -- them and returns; it must not then sit in epoll until the timer
    cp.run('once')
    assert.is_true(closed)
    assert.is_false(late, "run('once') waited for the next timer")
    t:close()
  end)

  it("'once' blocks until an event comes (a timer)", function()
    local fired = false
    cp.setTimeout(function() fired = true end, 20)
    cp.run('once')
    assert.is_true(fired)
  end)

  it('a handler that runs the loop itself leaves the batch being handled as it was', function()
    -- three pipes ready at once; the first one's handler runs a nested
    -- loop, which handles the other two.  The outer batch still names
    -- each of them once (level-triggered: a stale event is one more
    -- call, never an fd's event given to another or lost)
    local core = core()
    local pipes, calls, ws, nested = {}, {}, {}, false
    finally(function()
      for i = 1, #pipes do
        if ws[i] then ws[i]:stop() end
        core.close(pipes[i][1]); core.close(pipes[i][2])
      end
    end)
    for i = 1, 3 do
      pipes[i] = { core.pipe() }
      core.nonblock(pipes[i][1], true)
      calls[i] = 0
    end
    for i = 1, 3 do
      ws[i] = cp.watch(pipes[i][1], 'r', function()
        calls[i] = calls[i] + 1
        core.read(pipes[i][1])
        if i == 1 and not nested then nested = true; cp.run('nowait') end
      end)
    end
    for i = 1, 3 do core.write(pipes[i][2], 'x') end
    cp.run('nowait')
    assert.is_true(nested)
    assert.same({ 1, 2, 2 }, calls)
  end)

  it('a deferred callback that runs the loop itself runs the rest of the queue once each', function()
    -- the inner loop empties the queue (which then starts again at its
    -- first slot): the outer one must not go on with its stale end
    local ran = {}
    for i = 1, 4 do
      cp.setImmediate(function()
        ran[#ran + 1] = i
        if i == 1 then cp.run('nowait') end
      end)
    end
    local ok, err = pcall(cp.run, 'nowait')
    assert.is_true(ok, tostring(err))
    assert.same({ 1, 2, 3, 4 }, ran)
  end)

  it('refuses an unknown mode', function()
    local ok, err = pcall(cp.run, 'sometimes')
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find('run', 1, true), tostring(err))
  end)

  describe('errors raised in callbacks', function()
    it('leave cp.run() with the error and traceback; a second run() continues', function()
      local later = false
      cp.setTimeout(function() error('boom-in-timer') end, 1)
      cp.setTimeout(function() later = true end, 30)
      local ok, err = pcall(run_all)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('boom-in-timer', 1, true), tostring(err))
      assert.is_truthy(tostring(err):find('traceback', 1, true), tostring(err))
      assert.is_false(later)
      -- the loop stays consistent and carries on with what is left
      assert.is_false(run_all())
      assert.is_true(later)
    end)

    it('from a child listener, and the child still closes afterwards', function()
      local c = cp.spawn('sh', { '-c', 'echo hi' })
      local closed = false
      c:on('exit', function() error('boom-in-exit') end)
      c:on('close', function() closed = true end)
      -- if 'close' is lost, do not let this child hold the loop forever
      finally(function() c:unref() end)
      local ok, err = pcall(run_until, function() return closed end, 10000)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('boom-in-exit', 1, true), tostring(err))
      run_until(function() return closed end, 10000)
      assert.is_true(closed)
      assert.is_false(run_all())
    end)

    it('come out at once, not after the next event', function()
      -- the 'spawn' listener raises while the child sleeps on: run() must
      -- not wait for the child before it raises
      local c = cp.spawn('sleep', { '5' })
      c:on('spawn', function() error('boom-in-spawn') end)
      finally(function() c:kill('SIGKILL'); c:wait() end)
      local t0 = os.time()
      local ok, err = pcall(cp.run)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('boom-in-spawn', 1, true), tostring(err))
      assert.is_true(os.time() - t0 <= 2, 'run() waited for the child')
    end)

    it('error objects (tables) come out as they are', function()
      local obj = { code = 'MINE' }
      cp.setTimeout(function() error(obj) end, 1)
      local ok, err = pcall(run_all)
      assert.is_false(ok)
      assert.equal(obj, err)
    end)

    it('an uncaught error ends a plain script with status 1 and the traceback', function()
      local out, status, err = luaproc([[
        local cp = require 'childproc'
        cp.setTimeout(function() error('kaboom-uncaught') end, 1)
        cp.run()
        print('not reached')
      ]])
      assert.equal('', out)
      assert.equal(1, status)
      assert.is_truthy(err:find('kaboom-uncaught', 1, true), err)
      assert.is_truthy(err:find('traceback', 1, true), err)
    end)
  end)

  describe("an 'error' event with no listener", function()
    it('raises from cp.run()', function()
      local c = cp.spawn('nosuchcmd-nolistener')
      local ok, err = pcall(run_all)
      assert.is_false(ok)
      assert.equal('table', type(err))
      assert.equal('ENOENT', err.code)
      assert.equal('spawn nosuchcmd-nolistener', err.syscall)
      -- nothing is left behind; the loop runs on
      assert.is_false(run_all())
      assert.is_nil(c.pid)
    end)

    it('does not raise when a listener exists', function()
      local c = cp.spawn('nosuchcmd-withlistener')
      local got
      c:on('error', function(e) got = e end)
      assert.is_false(run_all())
      assert.equal('ENOENT', got.code)
    end)
  end)

  describe('keep-alive', function()
    it('a child keeps run() going until its close', function()
      local c = cp.spawn('sh', { '-c', 'exit 4' })
      local closed
      c:on('close', function(code) closed = code end)
      assert.is_false(run_all())
      assert.equal(4, closed)
    end)

    it('child:unref() lets cp.run() return while the child runs', function()
      local c = cp.spawn('sleep', { '100' }, { stdio = 'ignore' })
      c:unref()
      -- if unref did nothing, run() would wait for the child: this
      -- unref'd guard then ends it, and the assertion below fails
      local guard_fired = false
      local guard = cp.setTimeout(function()
        guard_fired = true
        c:kill('SIGKILL')
      end, 5000):unref()
      assert.is_false(run_all())
      assert.is_false(guard_fired)
      assert.is_true(alive(c.pid))
      guard:close()
      c:ref()
      c:kill('SIGKILL')
      assert.same({ n = 2, nil, 'SIGKILL' }, table.pack(c:wait()))
    end)
  end)

    it("ref() and unref() after a child's 'close' leave the loop's refs alone", function()
      local base = internal().alive()
      -- unref'd, then ref'd again while it runs: its close drops the ref
      local c = cp.spawn('sh', { '-c', 'exit 3' }, { stdio = 'ignore' })
      c:unref()
      assert.equal(base, internal().alive())
      c:ref()
      assert.equal(3, (c:wait()))
      assert.equal(base, internal().alive())
      c:unref(); c:unref(); c:ref(); c:ref()
      assert.equal(base, internal().alive())
      -- unref'd until it closed: the close takes no second ref away
      local d = cp.spawn('sh', { '-c', 'exit 5' }, { stdio = 'ignore' })
      d:unref()
      assert.equal(5, (d:wait()))
      assert.equal(base, internal().alive())
      d:ref(); d:unref()
      assert.equal(base, internal().alive())
      -- a spawn that failed: the same once its 'close' came
      local e = cp.spawn('/nonexistent/cmd', {}, { stdio = 'ignore' })
      e:on('error', function() end)
      e:wait()
      assert.equal(base, internal().alive())
      e:unref(); e:ref()
      assert.equal(base, internal().alive())
      assert.is_false(run_all())
    end)

  describe('cp.loop', function()
    it('is pollable: pollfd(), events(), timeout()', function()
      assert.equal('integer', mtype(cp.loop:pollfd()))
      assert.equal('r', cp.loop:events())
      assert.is_nil(cp.loop:timeout())
      local t = cp.setTimeout(function() end, 60000)
      local secs = cp.loop:timeout()
      assert.equal('number', type(secs))
      assert.is_true(secs > 0 and secs <= 60)
      t:close()
      cp.setImmediate(function() end)
      assert.equal(0, cp.loop:timeout())
      run_all()
    end)
  end)
end)

describe('loop objects (core.loop_new)', function()
  leakcheck()
  local core = core()
  local lfs = require 'lfs'

  local function target(fd) return lfs.symlinkattributes('/proc/self/fd/' .. fd, 'target') end
  local function cloexec(fd)
    local f = assert(io.open('/proc/self/fdinfo/' .. fd))
    local flags = f:read('*a'):match('flags:%s*(%d+)')
    f:close()
    return math.floor(tonumber(flags, 8) / 2 ^ 19) % 2 == 1   -- O_CLOEXEC: 02000000
  end

  it('each has an epoll fd of its own, close-on-exec, that close() closes', function()
    local before = fds()
    local a, b = assert(core.loop_new()), assert(core.loop_new())
    -- the fd of a loop nobody holds any more
    local fc = (function() return assert(core.loop_new()):pollfd() end)()
    local fa, fb = a:pollfd(), b:pollfd()
    assert.are_not.equal(fa, fb)
    assert.are_not.equal(fa, cp.loop:pollfd())
    assert.equal('anon_inode:[eventpoll]', target(fa))
    assert.is_true(cloexec(fa))
    -- an fd ready on one is reported by that one only
    local r, w = core.pipe()
    assert.is_true(a:watch(r, 1))
    core.write(w, 'x')
    local out = {}
    assert.equal(1, a:wait(1000, out))
    assert.same({ r, 1 }, out)
    assert.equal(0, b:wait(0, {}))
    a:close(); a:close()   -- (twice: nothing more)
    assert.is_nil(target(fa))
    assert.has_error(function() a:wait(0, {}) end)
    core.close(r); core.close(w)
    b:close()
    collectgarbage(); collectgarbage()   -- a collected loop's fd is closed
    assert.is_nil(target(fc))
    assert.same(before, fds(), fds_desc())
  end)
end)
