-- serialization = 'json' against the real `node` binary, both ways:
-- a Lua parent forks a Node script, and a Node parent forks a Lua script
-- with Node's own child_process.fork.  Skipped (pending) without node.
local cp = require 'childproc'
local core = core()

local FIX = ROOT .. '/spec/fixtures/'

local has_node = os.execute('command -v node >/dev/null 2>&1')

local function json_decode(line)
  local out = {}
  if line:sub(-1) ~= '\n' then line = line .. '\n' end
  local n, err = core.decoder('json', 1073741824):feed(line, out)
  assert(n == 1, err or 'no JSON line')
  return out[1]
end

local function node_fork(opts)
  opts = opts or {}
  local args = opts.args or {}
  opts.args = nil
  opts.execPath = 'node'
  opts.serialization = 'json'
  return cp.fork(FIX .. 'node_echo.js', args, opts)
end

local describe_node = has_node and describe or pending

describe_node('a Lua parent forking a Node script', function()
  leakcheck()

  local child, box
  local function start(opts)
    child = node_fork(opts)
    box = {}
    child:on('message', function(m) box[#box + 1] = m end)
    run_until(function() return #box >= 1 end, 15000, 'ready from node')
    return table.remove(box, 1)
  end
  local function ask(v)
    local n = #box
    child:send(v)
    run_until(function() return #box > n end, 10000, 'reply from node')
    return box[n + 1]
  end

  it('talks, with the command line exactly execPath execArgv modulePath args', function()
    local ready = start({ execArgv = { '--no-warnings' }, args = { 'a', 'b' } })
    assert.equal(child.pid, ready.ready)
    assert.same({ '--no-warnings' }, ready.execArgv)
    assert.same({ 'a', 'b' }, ready.argv)
    assert.same({ 'node', '--no-warnings', FIX .. 'node_echo.js', 'a', 'b' }, child.spawnargs)
    local back = ask({ hello = 'node', list = { 1, 2, 3 }, deep = { x = { y = 'z' } } })
    assert.same({ echo = { hello = 'node', list = { 1, 2, 3 }, deep = { x = { y = 'z' } } } }, back)
    assert.equal('héllo ☃ \0 "q"\n', ask('héllo ☃ \0 "q"\n').echo)
    child:send({ op = 'stop' })  -- Node disconnects from its side
    local rec = recorder()
    rec:listen(child, { 'disconnect', 'exit' })
    wait_close(child)
    assert.equal(0, child.exitCode)
    assert.truthy(rec:index('disconnect'))
  end)

  it('maps Lua values to JSON as documented', function()
    start()
    local r = ask({ op = 'types', v = { int = 3, float = 3.0, half = 0.5,
      arr = { 1, 2 }, empty = {}, sparse = { [1] = 'a', [3] = 'c' },
      null = core.json_null, nan = 0 / 0, inf = 1 / 0, str = 's', yes = true,
      big = INTEGERS and math.maxinteger or 2^53 } })
    assert.same({ int = 'integer-valued', float = 'integer-valued', half = 'number',
      arr = 'array', empty = 'object', sparse = 'object', null = 'null', nan = 'null',
      inf = 'null', str = 'string', yes = 'boolean', big = 'integer-valued' }, r.kinds)
    local back = json_decode(r.json)
    assert.equal('a', back.sparse['1'])
    assert.equal('c', back.sparse['3'])
    -- 3.0 is sent as 3.0: Node reads a number, a Lua peer gets a float
    assert.equal(3, back.float)
    child:disconnect()
    wait_close(child)
  end)

  it('keeps Node internal messages (cmd NODE_*) away from message listeners', function()
    start()
    local internal = {}
    child:on('internalMessage', function(m) internal[#internal + 1] = m end)
    local r = ask({ op = 'internal' })
    assert.same({ after = 'internal' }, r)
    assert.same({ { cmd = 'NODE_CUSTOM_THING', x = 1 } }, internal)
    child:disconnect()
    wait_close(child)
  end)

  it('Lua disconnect(): the Node child sees it and exits 0; close comes last', function()
    start()
    local rec = recorder()
    rec:listen(child, { 'disconnect', 'exit', 'close' })
    child:disconnect()
    wait_close(child)
    assert.same({ 'disconnect', 'exit', 'close' }, rec:names())
    assert.equal(0, child.exitCode)
  end)

  it("delivers the Node child's message sent just before process.exit", function()
    start()
    child:send({ op = 'exit', code = 4 })
    wait_close(child)
    assert.same({ last = true }, box[#box])
    assert.equal(4, child.exitCode)
  end)
end)

describe_node('a Node parent forking a Lua script', function()
  local function run_parent(mode)
    local out, status, err = shell(('cd %s && LUA_CPATH=%s LUA=%s timeout 30 node %s %s %s'):format(
      shq(ROOT), shq(CPATH), shq(LUA), shq(FIX .. 'node_parent.js'),
      shq(FIX .. 'node_worker.lua'), mode))
    assert.equal(0, status, err)
    return json_decode(out), err
  end

  for _, mode in ipairs({ 'stop', 'disconnect' }) do
    it('talks both ways (' .. mode .. ')', function()
      local r, err = run_parent(mode)
      local got = r.got
      assert.same({ hello = 'from lua', connected = true, env_fd = false }, got[1])
      assert.same({ a = 1, f = 1.5, s = 'str', arr = { 1, core.json_null, 'x' }, t = true },
        got[2].echo)  -- {n: null} leaves n out
      assert.same({ a = 'integer', f = 'float', s = 'string', arr = 'table', t = 'boolean' },
        got[2].kinds)
      assert.equal('just a string', got[3].echo)
      assert.equal(12345678901, got[4].echo)
      assert.equal('integer', got[4].kinds)
      -- a message sent with a handle: Node gets its ACK (the callback runs,
      -- later messages flow) and the Lua side gets the message alone
      assert.same({ with = 'handle' }, got[5].echo)
      assert.same({ after = 'handle' }, got[6].echo)
      local v = got[7]
      assert.equal(42, v.int)
      assert.equal(3, v.float)
      assert.equal(0.5, v.half)
      assert.is_nil(v.nan)      -- JSON.parse gives null; our decoder drops the key
      assert.same({ 1, 2, 3 }, v.arr)
      assert.same({}, v.empty)
      assert.equal('h\195\169llo\n"q"', v.str)
      assert.same({ a = { b = { 'c' } } }, v.nested)
      local events = table.concat(r.events, ' ')
      assert.truthy(events:find('handle-cb:ok', 1, true), events)
      assert.truthy(events:find('disconnect', 1, true), events)
      assert.truthy(events:find('exit:0:null', 1, true), events)
      assert.is_nil(events:find('timeout', 1, true), events)
      if mode == 'stop' then
        assert.same({ stopping = true }, got[8])
        assert.truthy(events:find('close:0:null', 1, true), events)
      end
      -- the Lua child saw the channel close either way
      assert.truthy(err:find('node_worker: disconnected', 1, true), err)
    end)
  end
end)
