-- The channel itself: spawn with an 'ipc' stdio entry, hostile peers
-- (garbage, oversized frames, exits mid-message), the 'json' mode between
-- two Lua processes, and the loop that runs after a script that had no
-- bootstrap.  Every wait is bounded (run_until / wait_close).
local cp = require 'childproc'
local core = core()

local FIX = ROOT .. '/spec/fixtures/'

local IPC = { 'ignore', 'ignore', 'pipe', 'ipc' }

local LUAENV = childenv({ LUA_CPATH = CPATH })

-- bytes as printf %b escapes, for spec/fixtures/ipc_writer.sh
local function esc(s)
  return (s:gsub('.', function(c) return ('\\0%03o'):format(c:byte()) end))
end

-- A shell peer that writes `bytes` raw on its channel, then sleeps.
local function writer(bytes, sleep, opts)
  opts = opts or {}
  local o = { stdio = opts.stdio or IPC, serialization = opts.serialization,
              maxMessageSize = opts.maxMessageSize }
  local args = { FIX .. 'ipc_writer.sh', esc(bytes), sleep or '' }
  if opts.fork then
    o.execPath = '/bin/sh'
    o.serialization = o.serialization or 'json'
    o.stdio = nil
    o.silent = true
    return cp.fork(args[1], { args[2], args[3] }, o)
  end
  return cp.spawn('sh', args, o)
end

local function watch(child)
  local rec = recorder()
  rec:listen(child, { 'message', 'error', 'disconnect', 'exit', 'close' })
  return rec
end

describe('a channel made by spawn with an ipc entry', function()
  leakcheck()

  it("passes the child's fd number in the environment", function()
    local r = collect('sh', { '-c', 'echo "$CHILDPROC_CHANNEL_FD $CHILDPROC_SERIALIZATION"; ls -l /proc/$$/fd/5' },
      { stdio = { 'ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ipc' } })
    assert.equal(0, r.code)
    assert.truthy(r.stdout:find('^5 lua\n'), r.stdout)
    assert.truthy(r.stdout:find('socket:', 1, true), r.stdout)
  end)

  it("sets exactly Node's variables for 'json'", function()
    local r = collect('sh', { '-c', 'env | grep -E "CHANNEL|CHILDPROC" | sort' },
      { stdio = { 'ignore', 'pipe', 'pipe', 'ipc' }, serialization = 'json',
        env = { PATH = os.getenv('PATH'), CHILDPROC_CHANNEL_FD = '9', NODE_CHANNEL_FD = '8' } })
    assert.equal('NODE_CHANNEL_FD=3\nNODE_CHANNEL_SERIALIZATION_MODE=json\n', r.stdout)
  end)

  it('delivers frames written raw by a non-Lua peer, however they are cut', function()
    local frames = core.lua_encode({ a = 1 }) .. core.lua_encode('two') .. core.lua_encode(3.5)
    local child = writer(frames)
    local rec = watch(child)
    wait_close(child)
    assert.same({ { 'message', { a = 1 } }, { 'message', 'two' }, { 'message', 3.5 } },
      rec:only({ 'message', 'error' }))
    assert.equal('close', rec:names()[#rec.events])
  end)

  it('a malformed frame is an error event, then a disconnect', function()
    local child = writer(core.lua_encode('ok') .. '\3\0\0\0\255\255\255', 5)
    local rec = watch(child)
    run_until(function() return rec:index('disconnect') end, 5000)
    local names = rec:names()
    assert.same({ 'message', 'error', 'disconnect' }, { names[1], names[2], names[3] })
    assert.equal('ok', rec.events[1][2])
    local err = rec:get('error')[2]
    assert.equal('ERR_IPC_BAD_MESSAGE', err.code)
    assert.truthy(tostring(err):find('malformed', 1, true), tostring(err))
    assert.is_false(child.connected)
    child:kill()
    wait_close(child)
  end)

  it('a frame that declares more than maxMessageSize is refused before it arrives', function()
    local child = writer('\1\0\0\64', 5)  -- 1 GiB + 1 declared, nothing follows
    local rec = watch(child)
    run_until(function() return rec:index('disconnect') end, 5000)
    assert.same({ 'error', 'disconnect' }, rec:names())
    assert.equal('ERR_IPC_MESSAGE_TOO_LARGE', rec:get('error')[2].code)
    child:kill()
    wait_close(child)
    -- and a smaller limit of the parent's own
    local c2 = writer(core.lua_encode(('x'):rep(2000)), 5, { maxMessageSize = 1000 })
    local rec2 = watch(c2)
    run_until(function() return rec2:index('disconnect') end, 5000)
    assert.same({ 'error', 'disconnect' }, rec2:names())
    assert.equal('ERR_IPC_MESSAGE_TOO_LARGE', rec2:get('error')[2].code)
    c2:kill()
    wait_close(c2)
  end)

  it("without an 'error' listener the bad frame raises from cp.run, and the channel is closed", function()
    local child = writer('\1\0\0\0\0', 2)
    local ok, err = pcall(run_until, function() return false end, 5000)
    assert.is_false(ok)
    assert.truthy(tostring(err):find('malformed', 1, true), tostring(err))
    assert.is_false(child.connected)
    child:kill()
    wait_close(child)
  end)

  it('a peer that exits mid-message: a disconnect, no partial message', function()
    local frame = core.lua_encode(('m'):rep(100000))
    local child = writer(core.lua_encode('whole') .. frame:sub(1, 5000))
    local rec = watch(child)
    wait_close(child)
    assert.same({ { 'message', 'whole' } }, rec:only({ 'message', 'error' }))
    assert.truthy(rec:index('disconnect'))
    assert.equal('close', rec:names()[#rec.events])
  end)

  it('the json mode: a line that is not JSON is an error and a disconnect', function()
    local child = writer('{"ok":true}\n{not json\n', 5, { fork = true })
    local rec = watch(child)
    run_until(function() return rec:index('disconnect') end, 5000)
    assert.same({ 'message', 'error', 'disconnect' }, { rec:names()[1], rec:names()[2], rec:names()[3] })
    assert.same({ ok = true }, rec.events[1][2])
    assert.equal('ERR_IPC_BAD_MESSAGE', rec:get('error')[2].code)
    child:kill()
    wait_close(child)
  end)

  it('the json mode: a cut-off last line is dropped; internal NODE_ messages do not reach message', function()
    local child = writer('{"cmd":"NODE_SOMETHING","x":1}\n[1,null,2]\n{"cut":', nil, { fork = true })
    local rec = watch(child)
    local internal = {}
    child:on('internalMessage', function(m) internal[#internal + 1] = m end)
    wait_close(child)
    assert.same({ 'message', 'disconnect' }, rec:only({ 'message', 'error', 'disconnect' })
      and { rec:names()[1], rec:names()[2] })
    local arr = rec.events[1][2]
    assert.equal(3, #arr)
    assert.equal(core.json_null, arr[2])
    assert.same({ { cmd = 'NODE_SOMETHING', x = 1 } }, internal)
  end)

  it('a peer that never reads: send returns false, messages stay queued, the exit frees them', function()
    local child = writer('', 30)
    local s = internal().cself(child)
    local n, cbs = 0, {}
    repeat
      n = n + 1
      local ok = child:send(('w'):rep(65536), function(e) cbs[#cbs + 1] = e end)
    until not ok or n > 1000
    assert.is_true(n <= 1000)
    assert.is_true(s._ch.queued >= 64 * 1024)
    child:kill()
    wait_close(child)
    -- what never went out is reported to its callback
    assert.is_true(#cbs >= 1)
    assert.equal('ERR_IPC_CHANNEL_CLOSED', cbs[#cbs].code)
  end)
end)

describe("a Lua child with no bootstrap ('json' between two Lua processes)", function()
  leakcheck()

  local function jfork(args, opts)
    opts = opts or {}
    opts.serialization = 'json'
    opts.env = opts.env or LUAENV
    return cp.fork(FIX .. 'fork_json_worker.lua', args, opts)
  end

  it('runs its loop after the script, maps values through JSON, and exits 0', function()
    for _, mode in ipairs({ 'plain', 'run', 'tail' }) do
      local child = jfork({ mode })
      assert.equal(FIX .. 'fork_json_worker.lua', child.spawnargs[2])  -- no bootstrap
      local box = {}
      child:on('message', function(m) box[#box + 1] = m end)
      child:send({ s = 'str', i = 3, f = 3.0, h = 0.5, t = { 1, 2 }, o = { k = 'v' },
                   n = core.json_null, b = true })
      child:send({ op = 'types', v = { i = 3, f = 3.0, h = 0.5, n = core.json_null,
                                        t = { 1 }, b = false } })
      run_until(function() return #box >= 2 end, 10000, mode)
      assert.same({ s = 'str', i = 3, f = 3.0, h = 0.5, t = { 1, 2 }, o = { k = 'v' }, b = true },
        box[1])  -- a null member leaves the key out
      -- (where numbers are doubles the JSON 3.0 is just 3)
      assert.same({ i = 'integer', f = INTEGERS and 'float' or 'integer', h = 'float',
        t = 'table', b = 'boolean' }, box[2].kinds)
      child:send({ op = 'stop' })
      wait_close(child)
      assert.equal(0, child.exitCode, mode)
    end
  end)

  it('refuses what JSON cannot say before writing anything', function()
    local child = jfork({})
    local s = internal().cself(child)
    local t = {}
    t.self = t
    for _, v in ipairs({ t, 'bad utf8 \255', print, { [true] = 1 } }) do
      local ok, err = pcall(child.send, child, v)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("'send'", 1, true))
      assert.equal(0, s._ch.queued)
    end
    child:disconnect()
    wait_close(child)
    assert.equal(0, child.exitCode)
  end)

  it('an error in a callback after the script ends exits 1 with the message, as lua.c', function()
    local child = jfork({}, { stdio = { 'ignore', 'ignore', 'pipe', 'ipc' } })
    local err = {}
    child.stderr:on('data', function(c) err[#err + 1] = c end)
    child:send({ op = 'error' })
    wait_close(child)
    assert.equal(1, child.exitCode)
    local text = table.concat(err)
    assert.truthy(text:find('boom in a json worker', 1, true), text)
    assert.truthy(text:find('traceback', 1, true), text)
  end)

  it("a child named rings it cannot use stops at require, rather than lose the parent's messages", function()
    -- fd 3: a socket as the channel; the rings' fds (60-62) are not open
    local env = childenv({ LUA_CPATH = CPATH, CHILDPROC_CHANNEL_FD = '3',
                           CHILDPROC_SERIALIZATION = 'lua', CHILDPROC_CHANNEL_RING = '60' })
    local r = collect(LUA, { '-e', "require 'childproc'; print('went on')" },
                      { stdio = { 'ignore', 'pipe', 'pipe', 'pipe' }, env = env })
    assert.equal(1, r.code)
    assert.equal('', r.stdout)
    assert.truthy(r.stderr:find("rings (fds 60-62) cannot be used", 1, true), r.stderr)
  end)

  it("the 'lua' mode works without the bootstrap too (spawn with an ipc entry)", function()
    local child = cp.spawn(LUA, { FIX .. 'fork_echo.lua' },
      { stdio = { 'ignore', 'ignore', 'inherit', 'ipc' }, env = LUAENV })
    local box = {}
    child:on('message', function(m) box[#box + 1] = m end)
    local t = { 1, 2 }
    t.me = t
    child:send(t)
    run_until(function() return #box >= 1 end, 10000)
    assert.equal(box[1], box[1].me)
    child:disconnect()
    wait_close(child)
    assert.equal(0, child.exitCode)
  end)
end)
