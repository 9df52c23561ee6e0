-- What a listener of a channel's messages does must count: removing
-- itself, once, disconnect(), running the loop, yielding the coroutine
-- that runs the loop, deferring work, starting a timer, unref.  Every wait
-- is bounded: run_until, or a guard timer that raises from cp.run().
local cp = require 'childproc'

local FIX = ROOT .. '/spec/fixtures/'

local function fork(name, args)
  return cp.fork(FIX .. name, args)
end

-- cp.run(), failing after ms (an unreferenced timer: it keeps nothing
-- alive, and it makes the wait end in time)
local function run_bounded(ms, what)
  local guard = cp.setTimeout(function()
    error(('cp.run() still running after %d ms: %s'):format(ms, what()), 0)
  end, ms)
  guard:unref()
  local ok, err = pcall(cp.run)
  guard:close()
  if not ok then error(err, 2) end
end

describe("a ringed channel's messages", function()
  leakcheck()

  it('reach a once-listener once, the others nobody', function()
    local child = fork('fork_burst.lua', { '5' })
    local calls = 0
    child:once('message', function() calls = calls + 1 end)
    wait_close(child, 10000)
    assert.equal(1, calls)
  end)

  it('stop reaching a listener that removed itself, even those already in the ring', function()
    local child = fork('fork_burst.lua', { '5' })
    local calls = 0
    local function f()
      calls = calls + 1
      child:off('message', f)
    end
    child:on('message', f)
    wait_close(child, 10000)
    assert.equal(1, calls)
  end)

  it('stop at disconnect() in a listener', function()
    local child = fork('fork_burst.lua', { '5' })
    local got = {}
    child:on('message', function(m)
      got[#got + 1] = m.i
      child:disconnect()
    end)
    wait_close(child, 10000)
    assert.same({ 1 }, got)
  end)

  -- (a 'json' channel's messages take the Lua way: the same must hold)
  for _, mode in ipairs({ 'lua', 'json' }) do
    it(('reach a listener that runs the loop itself, in order, each once (%s)'):format(mode), function()
      local child = cp.fork(FIX .. 'fork_burst.lua', { '20' }, { serialization = mode })
      exited(child)
      local got = {}
      child:on('message', function(m)
        got[#got + 1] = m.i
        if m.i == 1 then
          run_until(function() return #got >= 20 end, 10000, '20 messages')
        end
      end)
      wait_close(child, 10000)
      local want = {}
      for i = 1, 20 do want[i] = i end
      assert.same(want, got)
    end)
  end

  it('reach a listener that yields the coroutine running the loop', function()
    local child = fork('fork_burst.lua', { '3' })
    local got, yields = {}, 0
    child:on('message', function(m)
      got[#got + 1] = m.i
      coroutine.yield('message')
    end)
    local co = coroutine.create(function() run_bounded(10000, function()
      return #got .. ' messages' end) end)
    while coroutine.status(co) ~= 'dead' do
      local ok, v = coroutine.resume(co)
      assert(ok, v)
      if v == 'message' then yields = yields + 1 end
    end
    assert.same({ 1, 2, 3 }, got)
    assert.equal(3, yields)
    wait_close(child, 10000)
  end)
end)

-- cp.run()'s wait going on by itself in C would not let a guard timer
-- fire: these run in a process of their own, which `timeout` ends
local function wait_case(body)
  local code = [[
local cp = require 'childproc'
local FIX = ...
local function fork(name) return cp.fork(FIX .. name) end
io.stdout:setvbuf('line')  -- (5.4's print flushes; 5.1's and LuaJIT's do not)
]] .. body
  local out, status, err = luaproc(code, { args = { FIX }, timeout = 20 })
  assert.equal(0, status, out .. err)
  return out
end

describe("cp.run()'s wait, delivering messages", function()
  leakcheck()

  it("returns to the loop for work a listener deferred", function()
    local out = wait_case([[
local child = fork('fork_echo.lua')
local last = 0
child:on('message', function(m)
  last = m
  -- the reply only from the queue: a wait that went on waiting would
  -- never see the next message
  if m < 50 then cp.setImmediate(function() child:send(m + 1) end)
  else child:disconnect() end
end)
child:send(1)
cp.run()
print(last)
]])
    assert.equal('50\n', out)
  end)

  -- (ten times: the wait's end once fell between two whole milliseconds
  -- and was missed, about one time in three)
  it('returns to the loop for a timer a listener started, while messages keep coming', function()
    local out = wait_case([[
for _ = 1, 10 do
  local child = fork('fork_echo.lua')
  local fired, n = false, 0
  child:on('message', function(m)
    n = n + 1
    if n == 1 then
      cp.setTimeout(function() fired = true; child:disconnect() end, 2)
    end
    if not fired then child:send(m) end
  end)
  child:send('ping')
  cp.run()
  io.write(fired and 'fired ' or 'not fired ')
end
]])
    assert.equal(('fired '):rep(10), out)
  end)

  it('returns when a listener lets go of the last thing keeping the loop alive', function()
    local out = wait_case([[
local child = fork('fork_stay.lua')   -- says 'ready', stays while connected
child:on('message', function(m)
  if m == 'ready' then child:unref() end
end)
cp.run()
print('returned', child.exitCode)
child:ref()
child:disconnect()
child:wait()
]])
    assert.equal('returned\tnil\nchild saw disconnect\n', out)
  end)
end)
