-- This process dies: what becomes of its children (parentDeathSignal,
-- a forked child's channel).  Each case runs a Lua parent that starts
-- grandchildren, prints their pids, and is SIGKILLed by the spec.
local cp = require 'childproc'

local PARENT = ROOT .. '/spec/fixtures/pdeath_parent.lua'
local ENV = childenv({ LUA_CPATH = CPATH })

-- start the parent and read its first line (its pids)
local function parent_of(how, extra)
  local args = { PARENT, how }
  if extra then args[#args + 1] = extra end
  local p = cp.spawn(cp.process.execPath, args, { env = ENV, stdio = { 'ignore', 'pipe', 'inherit' } })
  local text = ''
  p.stdout:on('data', function(c) text = text .. c end)
  run_until(function() return text:find('\n') end, 10000, "the parent's first line")
  return p, function() return text end
end

local function kill_parent(p)
  local exited
  p:on('exit', function(_, sig) exited = sig end)
  assert(p:kill('SIGKILL'))
  run_until(function() return exited end, 5000, "the parent's exit")
  assert.equal('SIGKILL', exited)
end

describe('parentDeathSignal', function()
  leakcheck()

  it('kills a spawned child when its parent is SIGKILLed; without it, the child lives on', function()
    local p, text = parent_of('spawn')
    local with, without = text():match('^(%d+) (%d+)\n')
    with, without = tonumber(with), tonumber(without)
    finally(function() cp.kill(with, 'SIGKILL'); cp.kill(without, 'SIGKILL') end)
    assert.is_true(alive(with) and alive(without))
    kill_parent(p)
    poll_until(function() return not alive(with) end, 5000, 'the child with the option to die')
    -- the one without was started in the same turn: it is still there
    assert.is_true(alive(without), 'the child without parentDeathSignal died too')
    cp.kill(without, 'SIGKILL')
    poll_until(function() return not alive(without) end, 5000, 'the other child to die')
    run_until(function() return internal().cself(p).closed end, 5000, "the parent's 'close'")
  end)

  it('applies to exec and execFile (names and numbers)', function()
    local p, text = parent_of('exec')
    local a, b = text():match('^(%d+) (%d+)\n')
    a, b = tonumber(a), tonumber(b)
    finally(function() cp.kill(a, 'SIGKILL'); cp.kill(b, 'SIGKILL') end)
    assert.is_true(alive(a) and alive(b))
    kill_parent(p)
    poll_until(function() return not alive(a) and not alive(b) end, 5000,
      'the exec children to die')
    run_until(function() return internal().cself(p).closed end, 5000, "the parent's 'close'")
  end)

  it('is validated like killSignal', function()
    for _, f in ipairs({
      function() cp.spawn('true', { parentDeathSignal = 'SIGFOO' }) end,
      function() cp.fork('x.lua', { parentDeathSignal = 1000 }) end,
      function() cp.exec('true', { parentDeathSignal = true }, function() end) end,
      function() cp.execFile('true', {}, { parentDeathSignal = 'NOPE' }, function() end) end,
    }) do
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.is_truthy(err:find('unknown signal', 1, true)
        or err:find("option 'parentDeathSignal'", 1, true), err)
    end
    assert.same({}, children())
  end)

  -- core.spawn's 9th argument is read before its argv and env vectors are
  -- made: past 32 entries they are pushed on the stack, where spawnSync
  -- (which passes 8 arguments) had them read as the 9th
  it('leaves spawn and spawnSync with long argv and env alone', function()
    local env, args = childenv({}), { '-c', 'echo "$V40 $#"', 'sh' }
    for i = 1, 40 do env['V' .. i] = i; args[#args + 1] = 'a' .. i end
    local r = cp.spawnSync('sh', args, { env = env })
    assert.is_nil(r.error)
    assert.equal('40 40\n', r.stdout)
    r = collect('sh', args, { env = env, parentDeathSignal = 'SIGTERM' })
    assert.equal('40 40\n', r.stdout)
  end)

  it('a child started with it runs and exits as usual', function()
    local r = collect('sh', { '-c', 'echo hi; exit 3' }, { parentDeathSignal = 'SIGTERM' })
    assert.equal(3, r.code)
    assert.equal('hi\n', r.stdout)
  end)
end)

describe('a forked child whose parent is SIGKILLed', function()
  leakcheck()

  it("sees 'disconnect' and ends by itself", function()
    local p, text = parent_of('fork', ROOT .. '/spec/fixtures/pdeath_forked.lua')
    local pid = tonumber(text():match('^(%d+) ready\n'))
    finally(function() cp.kill(pid, 'SIGKILL') end)
    assert.is_true(alive(pid))
    kill_parent(p)
    run_until(function() return text():find('disconnect\n', 1, true) end, 5000,
      "the forked child's 'disconnect'")
    poll_until(function() return not alive(pid) end, 5000, 'the forked child to end')
    run_until(function() return internal().cself(p).closed end, 5000, "the parent's 'close'")
  end)
end)
