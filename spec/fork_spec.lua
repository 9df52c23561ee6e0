-- cp.fork and the 'lua' serialization: a Lua parent and forked Lua
-- children (spec/fixtures/fork_*.lua).  Every wait is bounded (run_until).
local cp = require 'childproc'

local FIX = ROOT .. '/spec/fixtures/'


local function fork(name, args, opts)
  return cp.fork(FIX .. name, args, opts)
end

-- messages received by child, in order
local function inbox(child)
  local box = {}
  child:on('message', function(m) box[#box + 1] = m end)
  return box
end

local function wait_messages(box, n, ms)
  run_until(function() return #box >= n end, ms or 10000,
    ('%d message(s), got %d'):format(n, #box))
  return box
end

-- send v to an echoing child and return what comes back
local function roundtrip(child, box, v, ms)
  local n = #box
  child:send(v)
  wait_messages(box, n + 1, ms)
  return box[n + 1]
end

-- wait_close, with the child's state in a failure message
local function wait_closed(child, ms)
  local ok, err = pcall(wait_close, child, ms)
  if ok then return end
  local s = internal().cself(child)
  local ch = s._ch or {}
  error(('%s; pid %s alive %s state %s open_streams %s channel_open %s'
    .. ' ch.closed %s queued %s loop refs %d; events %s'):format(
    tostring(err), tostring(s.pid), tostring(s.pid and alive(s.pid)),
    tostring(s.state), tostring(s.open_streams), tostring(s.channel_open),
    tostring(ch.closed), tostring(ch.queued), internal().alive(),
    tostring(child._events)), 2)
end


local function bits(x) return string.pack('<d', x) end

describe('fork', function()
  leakcheck()

  it('starts a Lua child with a channel; messages go both ways', function()
    local child = fork('fork_echo.lua')
    assert.is_true(child.connected)
    local rec = recorder()
    rec:listen(child, { 'spawn' })
    for _, name in ipairs({ 'disconnect', 'exit', 'close' }) do
      child:on(name, expect(rec(name)))   -- once each
    end
    local box = inbox(child)
    assert.is_true(child:send({ hello = 'world' }))
    wait_messages(box, 1)
    assert.same({ hello = 'world' }, box[1])
    child:disconnect()
    assert.is_false(child.connected)
    wait_closed(child)
    -- the echo child listens for 'message': it lived while connected, and
    -- ended with status 0 when the channel closed
    assert.same({ 'spawn', 'disconnect', 'exit', 'close' }, rec:names())
    assert.same({ 'exit', 0 }, rec:get('exit'))
    assert.same({ 'close', 0 }, rec:get('close'))
  end)

  it('runs execPath (default: this interpreter) with execArgv, args and the resolved modulePath', function()
    local child = cp.fork('spec/fixtures/fork_info.lua', { 'one', 2, 'three four' },
      { execArgv = { '-e', 'FROM_EXECARGV = "yes"' }, cwd = '/tmp',
        env = childenv({ FORK_MARKER = 'm1' }) })
    local box = inbox(child)
    wait_messages(box, 1)
    local info = box[1]
    assert.same({ 'one', '2', 'three four' }, info.args)
    -- arg[0] is the script, resolved against the parent's cwd, not cwd
    assert.equal(ROOT .. '/spec/fixtures/fork_info.lua', info.arg[1])
    assert.same({ 'one', '2', 'three four' }, { table.unpack(info.arg, 2) })
    assert.equal('/tmp', info.cwd)
    assert.equal('yes', info.from_execargv)
    assert.equal('m1', info.marker)
    assert.equal(MYPID, info.ppid)
    assert.equal(child.pid, info.pid)
    assert.is_true(info.connected)
    -- the channel's variable is gone from the child's environment
    assert.is_false(info.env_fd)
    assert.is_false(info.env_node_fd)
    assert.equal(cp.process.execPath, child.spawnfile)
    wait_closed(child)
    assert.equal(0, child.exitCode)
  end)

  it('finds the module in the child even when LUA_CPATH does not', function()
    local child = fork('fork_info.lua', {}, { env = childenv({ LUA_CPATH = '/nowhere/?.so' }) })
    local box = inbox(child)
    wait_messages(box, 1)
    assert.equal(child.pid, box[1].pid)
    wait_closed(child)
    assert.equal(0, child.exitCode)
  end)

  it("'silent' gives pipes; the default inherits stdio", function()
    local child = fork('fork_stay.lua', {}, { silent = true })
    assert.truthy(child.stdout)
    assert.truthy(child.stdin)
    local out = {}
    child.stdout:on('data', function(c) out[#out + 1] = c end)
    local box = inbox(child)
    wait_messages(box, 1)
    child:disconnect()
    wait_closed(child)
    assert.equal('child saw disconnect\n', table.concat(out))
    local inh = fork('fork_info.lua')
    assert.is_nil(inh.stdin)
    assert.is_nil(inh.stdout)
    assert.is_nil(inh.stderr)
    wait_closed(inh)
  end)

  it("accepts a stdio array holding 'ipc', or a word", function()
    local child = fork('fork_echo.lua', {}, { stdio = { 'ignore', 'pipe', 'ignore', 'ipc' } })
    assert.truthy(child.stdout)
    local box = inbox(child)
    assert.equal('x', roundtrip(child, box, 'x'))
    child:disconnect()
    wait_closed(child)
    local c2 = fork('fork_echo.lua', {}, { stdio = 'pipe' })
    assert.truthy(c2.stdin and c2.stdout and c2.stderr)
    local box2 = inbox(c2)
    assert.equal('y', roundtrip(c2, box2, 'y'))
    c2:disconnect()
    wait_closed(c2)
  end)

  it('a failed fork is an error event and a close, never a disconnect', function()
    local child = fork('fork_echo.lua', {}, { execPath = '/nonexistent/lua' })
    local rec = recorder()
    child:on('error', expect(rec 'error'))
    child:on('close', expect(rec 'close'))
    child:on('disconnect', expect(nil, 0))
    child:on('exit', expect(nil, 0))
    wait_closed(child)
    assert.same({ 'error', 'close' }, rec:names())
    assert.equal('ENOENT', rec:get('error')[2].code)
    assert.is_false(child.connected)
  end)

  it('times out with killSignal like spawn', function()
    local child = fork('fork_stay.lua', {}, { timeout = 100, killSignal = 'SIGKILL' })
    wait_closed(child)
    assert.equal('SIGKILL', child.signalCode)
    assert.is_true(child.killed)
  end)

  describe('bad arguments', function()
    badargs {
      { 'a missing modulePath', function() cp.fork() end, "#1 to 'fork' (string expected, got no value)" },
      { 'stdio without ipc', function()
          cp.fork(FIX .. 'fork_echo.lua', {}, { stdio = { 'pipe', 'pipe', 'pipe' } })
        end, 'ipc' },
      { 'two ipc entries', function()
          cp.fork(FIX .. 'fork_echo.lua', {}, { stdio = { 'pipe', 'pipe', 'pipe', 'ipc', 'ipc' } })
        end, 'ipc' },
      { 'an unknown serialization', function()
          cp.fork(FIX .. 'fork_echo.lua', {}, { serialization = 'advanced' })
        end, 'serialization' },
      { 'a bad maxMessageSize', function()
          cp.fork(FIX .. 'fork_echo.lua', {}, { maxMessageSize = -1 })
        end, 'maxMessageSize' },
      { 'the shell option', function()
          cp.fork(FIX .. 'fork_echo.lua', {}, { shell = true })
        end, "unknown option 'shell'" },
      { 'execArgv that is not an array', function()
          cp.fork(FIX .. 'fork_echo.lua', {}, { execArgv = '-W' })
        end, 'execArgv' },
      { 'a bad serialization on spawn with ipc', function()
          cp.spawn('true', {}, { stdio = { 'pipe', 'pipe', 'pipe', 'ipc' }, serialization = 'xml' })
        end, 'serialization' },
    }
  end)
end)

describe("the 'lua' serialization", function()
  -- one echo child per spec; leakcheck's order would not fit here
  local child, box, before
  before_each(function()
    collectgarbage(); collectgarbage()
    before = fds()
    child = fork('fork_echo.lua')
    box = inbox(child)
  end)
  after_each(function()
    if child.connected then child:disconnect() end
    wait_closed(child)
    child, box = nil, nil
    no_children()
    collectgarbage(); collectgarbage()
    assert.same(before, fds(), 'fds left open')
  end)

  only_if(INTEGERS, 'its numbers are doubles: spec/versions_spec.lua')('keeps booleans, strings and all 64 bits of integers', function()
    for _, v in ipairs({ true, false, 0, 1, -1, 127, 128, -129, math.floor(2^31),
                         math.maxinteger, math.mininteger, 0x123456789abcdef,
                         '', 'text' }) do
      local back = roundtrip(child, box, v)
      assert.equal(v, back)
      assert.equal(math.type(v), math.type(back))
    end
  end)

  it('keeps floats bit-exact and floats as floats (3.0, -0.0, inf, nan)', function()
    for _, v in ipairs({ 3.0, 0.0, -0.0, 1 / 0, -1 / 0, 0 / 0, -(0 / 0), 0.1,
                         2^63, 5e-324, math.pi, 1e308 }) do
      local back = roundtrip(child, box, v)
      if INTEGERS then assert.equal('float', math.type(back)) end
      assert.equal(bits(v), bits(back))
    end
  end)

  it('keeps binary strings with NULs and every byte', function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local s = table.concat(all):rep(40) .. '\0'
    assert.equal(s, roundtrip(child, box, s))
    assert.equal('\0\0\0', roundtrip(child, box, '\0\0\0'))
  end)

  it('carries a 64 MiB string both ways', function()
    local big = ('0123456789abcdef'):rep(4 * 1024 * 1024)
    assert.equal(64 * 1024 * 1024, #big)
    local back = roundtrip(child, box, big, 60000)
    assert.equal(#big, #back)
    assert.is_true(back == big)
  end)

  it('keeps nested tables with any key types, shared references and cycles', function()
    local shared = { 'shared' }
    local t = { 1, 2, 3, x = { y = { z = 'deep' } }, [1.5] = 'float key',
                [true] = 'bool key', [INTEGERS and math.mininteger or -2^53] = 'int key',
                a = shared, b = shared }
    t.self = t
    t.x.up = t
    local back = roundtrip(child, box, t)
    assert.same({ 1, 2, 3 }, { back[1], back[2], back[3] })
    assert.equal('deep', back.x.y.z)
    assert.equal('float key', back[1.5])
    assert.equal('bool key', back[true])
    assert.equal('int key', back[INTEGERS and math.mininteger or -2^53])
    assert.equal(back, back.self)
    assert.equal(back, back.x.up)
    assert.equal(back.a, back.b)
    assert.same({ 'shared' }, back.a)
    -- a table used as a key comes back as a key
    local k = { 'k' }
    local back2 = roundtrip(child, box, { [k] = k })
    local key, val = next(back2)
    assert.equal(key, val)
    assert.same({ 'k' }, key)
  end)

  it('does not send metatables: the other side gets the raw fields', function()
    local obj = setmetatable({ raw = 1 }, { __index = function() return 'meta' end })
    local back = roundtrip(child, box, obj)
    assert.same({ raw = 1 }, back)
    assert.is_nil(getmetatable(back))
  end)

  it('refuses functions, userdata, threads and deep nesting before writing anything', function()
    local deep = {}
    local cur = deep
    for _ = 1, 300 do cur.next = {}; cur = cur.next end
    local cases = {
      { print, 'function' },
      { { ok = 1, f = function() end }, 'function' },
      { { nested = { io.stdout } }, 'userdata' },
      { coroutine.create(function() end), 'thread' },
      { { [print] = 1 }, 'function' },
      { deep, 'nesting' },
    }
    local s = internal().cself(child)
    for _, c in ipairs(cases) do
      local ok, err = pcall(child.send, child, c[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
      assert.truthy(tostring(err):find("'send'", 1, true), tostring(err))
      assert.equal(0, s._ch.queued)
    end
    local ok, err = pcall(child.send, child, nil)
    assert.is_false(ok)
    assert.truthy(tostring(err):find('message expected', 1, true))
    -- nothing reached the child: the next message is the first it echoes
    assert.equal('first', roundtrip(child, box, 'first'))
    assert.equal(1, #box)
    -- 200 levels are fine
    local ok200 = {}
    cur = ok200
    for _ = 1, 199 do cur.next = {}; cur = cur.next end
    local back = roundtrip(child, box, ok200)
    local depth = 0
    while back do depth = depth + 1; back = back.next end
    assert.equal(200, depth)
  end)

  it('a refused value raises at the line that called send, on either path', function()
    local function err_of(fn)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      return tostring(err)
    end
    local here = 'fork_spec.lua:%d: bad argument #1 to \'send\''
    -- the short path (the ring, no callback), the general one (a
    -- callback), and nil: each names this line (getinfo on the same line)
    local l1, e1 = debug.getinfo(1, 'l').currentline, err_of(function() child:send(print) end)
    local l2, e2 = debug.getinfo(1, 'l').currentline, err_of(function() child:send(print, function() end) end)
    local l3, e3 = debug.getinfo(1, 'l').currentline, err_of(function() child:send(nil) end)
    assert.truthy(e1:find(here:format(l1), 1, true), e1)
    assert.truthy(e2:find(here:format(l2), 1, true), e2)
    assert.truthy(e3:find(here:format(l3), 1, true), e3)
  end)

  it("an error in a lone 'message' listener raises from the loop; later messages still come", function()
    child:removeAllListeners('message')
    local got = {}
    child:on('message', function(m)
      if m == 'boom' then error('boom in a listener') end
      got[#got + 1] = m
    end)
    child:send('boom')
    child:send('after')
    local ok, err = pcall(run_until, function() return #got > 0 end, 10000, 'the echoes')
    assert.is_false(ok)
    assert.truthy(tostring(err):find('boom in a listener', 1, true), tostring(err))
    run_until(function() return #got > 0 end, 10000, "'after'")
    assert.same({ 'after' }, got)
  end)

  it('keeps order, delivers each message whole, and calls send callbacks', function()
    local done = {}
    for i = 1, 500 do
      child:send({ i = i, pad = ('p'):rep(i * 37) }, expect(function(err) done[#done + 1] = err or i end))
    end
    wait_messages(box, 500)
    for i = 1, 500 do
      assert.equal(i, box[i].i)
      assert.equal(i * 37, #box[i].pad)
    end
    run_until(function() return #done == 500 end, 5000)
    for i = 1, 500 do assert.equal(i, done[i]) end
  end)

  it('send returns false past 64 KiB queued, and the message still goes', function()
    local big = ('z'):rep(16 * 1024 * 1024)  -- more than the ring takes
    local cbdone
    -- the child stopped takes nothing while we send (a reader as fast as
    -- the writer, as under valgrind, could take it all at once)
    child:kill('SIGSTOP')
    poll_until(function() return procstat(child.pid).state == 'T' end, 5000,
      'the child stopped')
    assert.is_false(child:send(big, expect(function(err) cbdone = err or true end)))
    assert.is_true(internal().cself(child)._ch.queued > 64 * 1024)
    child:kill('SIGCONT')
    wait_messages(box, 1)
    assert.equal(#big, #box[1])
    run_until(function() return cbdone end, 5000)
    assert.is_true(cbdone)
    assert.is_true(child:send('small'))
  end)

  it('sends a 256 MiB message without quadratic copying #timing', function()
    local size = 256 * 1024 * 1024
    local msg = { _op = 'size', ('\0\1\2\3\4\5\6\7'):rep(math.floor(size / 8)) }
    local t0 = core().now()
    child:send(msg)
    msg[1] = nil
    wait_messages(box, 1, 120000)
    local ms = core().now() - t0
    assert.equal(size, box[1].size)
    assert.equal(('\0\1\2\3\4\5\6\7'):rep(2), box[1].head)
    -- linear: well under a minute even on a slow machine
    assert.is_true(ms < 60000, ('took %.0f ms'):format(ms))
  end)
end)

describe('the channel and the child', function()
  leakcheck()

  it('delivers every message sent just before the script ends, before close', function()
    local child = fork('fork_burst.lua', { 200, 3 * 1024 * 1024 })
    local rec = recorder()
    rec:listen(child, { 'disconnect', 'exit', 'close' })
    local box = inbox(child)
    child:on('close', expect(function() rec.events[#rec.events + 1] = { 'count', #box } end))
    wait_closed(child)
    assert.equal(201, #box)
    for i = 1, 200 do assert.equal(i, box[i].i) end
    assert.equal(3 * 1024 * 1024, #box[201])
    assert.same({ 'count', 201 }, rec.events[#rec.events])
    assert.equal(0, child.exitCode)
    local names = rec:names()
    assert.equal('close', names[#names - 1])
  end)

  it('cp.process:exit() flushes the channel first', function()
    local child = fork('fork_exit_flush.lua', { 16 * 1024 * 1024 })
    local box = inbox(child)
    wait_closed(child, 30000)
    assert.equal(7, child.exitCode)
    assert.equal(2, #box)
    assert.equal(16 * 1024 * 1024, #box[1].big)
    assert.equal('last', box[2])
  end)

  it('a message sent with the exit command arrives before exit', function()
    local child = fork('fork_echo.lua')
    local box = inbox(child)
    child:send({ _op = 'exit', code = 5, last = 'goodbye' })
    wait_closed(child)
    assert.same({ 'goodbye' }, box)
    assert.equal(5, child.exitCode)
  end)

  it("emits 'close' last, after 'exit' and 'disconnect'", function()
    for _, how in ipairs({ 'parent', 'child', 'kill' }) do
      local child = fork('fork_echo.lua')
      local rec = recorder()
      rec:listen(child, { 'disconnect', 'exit', 'close' })
      local box = inbox(child)
      assert.equal('up', roundtrip(child, box, 'up'))
      if how == 'parent' then child:disconnect()
      elseif how == 'child' then child:send({ _op = 'disconnect' })
      else child:kill('SIGKILL') end
      wait_closed(child)
      local names = rec:names()
      assert.equal(3, #names, how)
      assert.equal('close', names[3], how)
      assert.truthy(rec:index('exit') and rec:index('disconnect'), how)
      assert.is_false(child.connected)
    end
  end)

  it('disconnect() from the child side: both sides see it, the child runs on', function()
    local child = fork('fork_self_disconnect.lua', {}, { silent = true })
    local out = {}
    child.stdout:on('data', function(c) out[#out + 1] = c end)
    local rec = recorder()
    rec:listen(child, { 'disconnect', 'exit', 'close' })
    local box = inbox(child)
    wait_closed(child)
    assert.same({ 'before' }, box)
    assert.equal(0, child.exitCode)
    local text = table.concat(out)
    assert.truthy(text:find('connected after disconnect() false', 1, true), text)
    assert.truthy(text:find('child disconnect false', 1, true), text)
    assert.truthy(text:find('timer done', 1, true), text)
    assert.equal('close', rec:names()[3])
  end)

  it('a child listening for disconnect stays alive while connected', function()
    local child = fork('fork_stay.lua', {}, { silent = true })
    local out = {}
    child.stdout:on('data', function(c) out[#out + 1] = c end)
    local box = inbox(child)
    wait_messages(box, 1)
    local waited = false
    cp.setTimeout(function() waited = true end, 300)
    run_until(function() return waited end, 2000)
    assert.is_true(alive(child.pid))
    assert.is_nil(child.exitCode)
    child:disconnect()
    wait_closed(child)
    assert.equal(0, child.exitCode)
    assert.equal('child saw disconnect\n', table.concat(out))
  end)

  it('a child without listeners exits when its script is done, though connected', function()
    local child = fork('fork_info.lua')
    local rec = recorder()
    rec:listen(child, { 'disconnect', 'exit', 'close' })
    wait_closed(child)
    assert.equal(0, child.exitCode)
    assert.equal(3, #rec.events)
  end)

  it('send after disconnect is an error for the callback, or an error event', function()
    local child = fork('fork_echo.lua')
    child:disconnect()
    local cberr, everr
    assert.is_false(child:send('late', function(err) cberr = err end))
    child:on('error', function(err) everr = err end)
    assert.is_false(child:send('late'))
    assert.is_nil(cberr)  -- never synchronous
    wait_closed(child)
    assert.equal('ERR_IPC_CHANNEL_CLOSED', cberr.code)
    assert.equal('ERR_IPC_CHANNEL_CLOSED', everr.code)
  end)

  it('a second disconnect is an error event, as in Node', function()
    local child = fork('fork_echo.lua')
    local errs = {}
    child:on('error', function(e) errs[#errs + 1] = e.code end)
    child:disconnect()
    child:disconnect()
    wait_closed(child)
    assert.same({ 'ERR_IPC_DISCONNECTED' }, errs)
  end)

  it('unref lets the loop end while the child and its channel live', function()
    local base = internal().alive()   -- referenced work left by other specs, if any
    local child = fork('fork_stay.lua', {}, { stdio = { 'ignore', 'ignore', 'inherit', 'ipc' } })
    local box = inbox(child)
    wait_messages(box, 1)
    assert.is_true(internal().alive() > base)
    child:unref()
    assert.equal(base, internal().alive())
    if base == 0 then
      local t0 = core().now()
      -- bounded: an unref'd guard raises out of cp.run() if it does not return
      local guard = cp.setTimeout(function() error('cp.run() did not return') end, 5000)
      guard:unref()
      cp.run()
      guard:close()
      assert.is_true(core().now() - t0 < 1000)
    end
    assert.is_true(alive(child.pid))
    child:ref()
    assert.is_true(internal().alive() > base)
    child:disconnect()
    wait_closed(child)
    assert.equal(0, child.exitCode)
  end)

  it('a script error prints a traceback and exits 1, after its messages', function()
    local child = fork('fork_error.lua', {}, { silent = true })
    local err = {}
    child.stderr:on('data', function(c) err[#err + 1] = c end)
    local box = inbox(child)
    wait_closed(child)
    assert.equal(1, child.exitCode)
    assert.same({ 'sent before the error' }, box)
    local text = table.concat(err)
    assert.truthy(text:find('boom from the forked script', 1, true), text)
    assert.truthy(text:find('stack traceback', 1, true), text)
    assert.truthy(text:find('fork_error.lua:4', 1, true), text)
  end)

  it('an error in a callback of the child loop exits 1 with a traceback', function()
    local child = fork('fork_loop_error.lua', {}, { silent = true })
    local err = {}
    child.stderr:on('data', function(c) err[#err + 1] = c end)
    wait_closed(child)
    assert.equal(1, child.exitCode)
    assert.truthy(table.concat(err):find('boom from a timer', 1, true))
  end)

  it('the grandchild does not inherit the channel (fd or variables)', function()
    local child = fork('fork_grandchild.lua')
    local box = inbox(child)
    wait_closed(child)
    assert.equal(1, #box)
    local r = box[1]
    -- the child itself holds its channel: one socket
    local _, nsock = r.own:gsub('socket:', '')
    assert.equal(1, nsock, r.own)
    assert.is_nil(r.popen:find('socket:', 1, true), r.popen)
    -- nor its rings (the child closed their fd once it had mapped them);
    -- it keeps its two doorbells, close-on-exec
    for _, list in ipairs({ r.own, r.popen, r.spawned }) do
      assert.is_nil(list:find('memfd:', 1, true), list)
    end
    local _, nbell = r.own:gsub('anon_inode:%[eventfd%]', '')
    assert.equal(2, nbell, r.own)
    for _, list in ipairs({ r.popen, r.spawned }) do
      assert.is_nil(list:find('eventfd', 1, true), list)
    end
    -- (a spawned child's stdin pipe is a socket: fd 0 is not the channel)
    local beyond0 = r.spawned:gsub('[^\n]* 0 %-> socket:[^\n]*', '')
    assert.is_nil(beyond0:find('socket:', 1, true), r.spawned)
    assert.is_nil(r.popen_env:find('CHANNEL', 1, true), r.popen_env)
    assert.is_nil(r.spawned:find('CHANNEL', 1, true), r.spawned)
    assert.equal(0, r.code)
  end)

  it('cp.process:exit() in the parent flushes its channels to children', function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      local child = cp.fork('spec/fixtures/fork_echo.lua', {},
        { stdio = { 'ignore', 'inherit', 'inherit', 'ipc' } })
      child:send({ _op = 'print', text = ('q'):rep(8 * 1024 * 1024) })
      child:send({ _op = 'exit', code = 0 })
      -- the child outlives this process: it must still get both messages
      cp.process:exit(3)
    ]])
    assert.equal(3, status, err)
    assert.equal(tostring(8 * 1024 * 1024) .. '\n', out)
  end)

  it('the parent flushes: its child receives what was queued before exit', function()
    local f = tmpname()
    local _, status, err = luaproc(([[
      local cp = require 'childproc'
      local child = cp.fork('spec/fixtures/fork_echo.lua')
      local got = {}
      child:on('message', function(m)
        got[#got + 1] = m
        if #got == 2 then
          local fh = io.open(%q, 'w')
          fh:write(m == 'bye' and got[1].size or 'bad')
          fh:close()
        end
      end)
      child:send({ _op = 'size', ('q'):rep(8 * 1024 * 1024) })
      child:send({ _op = 'exit', code = 0, last = 'bye' })
      cp.run()
    ]]):format(f))
    assert.equal(0, status, err)
    assert.equal(tostring(8 * 1024 * 1024), readfile(f))
    os.remove(f)
  end)
end)
