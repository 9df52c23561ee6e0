-- Timers: setTimeout, setInterval, setImmediate, clear*, ref/unref/close.
local cp = require 'childproc'

describe('timers', function()
  leakcheck()

  it('setTimeout fires in order of due time, then of creation', function()
    local order = {}
    local function rec(name) return function() order[#order + 1] = name end end
    cp.setTimeout(rec('30'), 30)
    cp.setTimeout(rec('10'), 10)
    cp.setTimeout(rec('20a'), 20)
    cp.setTimeout(rec('20b'), 20)
    cp.setTimeout(rec('1'), 1)
    assert.same({}, order)     -- never synchronous
    assert.is_false(run_all())
    assert.same({ '1', '10', '20a', '20b', '30' }, order)
  end)

  it('setTimeout passes extra arguments', function()
    local got
    cp.setTimeout(expect(function(...) got = table.pack(...) end), 1, 'a', nil, 3)
    run_all()
    assert.same({ n = 3, 'a', nil, 3 }, got)
  end)

  it('setTimeout with 0 or no delay still fires, later', function()
    local n = 0
    local function fire() n = n + 1 end
    cp.setTimeout(expect(fire), 0)   -- once each
    cp.setTimeout(expect(fire))
    assert.equal(0, n)               -- not yet
    run_all()
  end)

  it('clearTimeout before it fires cancels it', function()
    local t = cp.setTimeout(expect(nil, 0), 1)
    cp.clearTimeout(t)
    assert.is_false(run_all())
  end)

  it('timer:close() cancels it too', function()
    local t = cp.setTimeout(expect(nil, 0), 1)
    t:close()
    assert.is_false(run_all())
  end)

  it('clearTimeout(nil) is harmless', function()
    cp.clearTimeout(nil)
    cp.clearInterval(nil)
  end)

  it('setInterval repeats and clearInterval stops it', function()
    local n = 0
    local t
    t = cp.setInterval(expect(function(x)   -- three times, no more
      assert.equal('arg', x)
      n = n + 1
      if n == 3 then cp.clearInterval(t) end
    end, 3), 2, 'arg')
    -- run() returns only once nothing keeps it alive: the interval is gone
    assert.is_false(run_all())
  end)

  it('an interval can be stopped from another timer', function()
    local n = 0
    local iv = cp.setInterval(function() n = n + 1 end, 1)
    local stopper
    stopper = cp.setInterval(function()
      if n >= 5 then cp.clearInterval(iv); cp.clearInterval(stopper) end
    end, 1)
    assert.is_false(run_all())
    assert.is_true(n >= 5)
  end)

  it('setImmediate runs after the current code, in order', function()
    local order = {}
    cp.setImmediate(function(a) order[#order + 1] = a end, 'i1')
    cp.setImmediate(function(a) order[#order + 1] = a end, 'i2')
    assert.same({}, order)
    run_all()
    assert.same({ 'i1', 'i2' }, order)
  end)

  it('setImmediate runs before timers of the next iteration', function()
    local order = {}
    cp.setTimeout(function()
      order[#order + 1] = 'timeout1'
      cp.setTimeout(function() order[#order + 1] = 'timeout2' end, 0)
      cp.setImmediate(function() order[#order + 1] = 'immediate' end)
      -- make sure timeout2 is already due when this callback returns:
      -- even so (as in Node) the immediate comes first
      local t0 = os.clock()
      while os.clock() - t0 < 0.005 do end
    end, 1)
    run_all()
    assert.same({ 'timeout1', 'immediate', 'timeout2' }, order)
  end)

  it('setImmediate scheduled from an immediate waits for the next turn', function()
    local order = {}
    cp.setImmediate(function()
      order[#order + 1] = 'a'
      cp.setImmediate(function() order[#order + 1] = 'c' end)
    end)
    cp.setImmediate(function() order[#order + 1] = 'b' end)
    run_all()
    assert.same({ 'a', 'b', 'c' }, order)
  end)

  it('clearImmediate / close cancels an immediate', function()
    local t = cp.setImmediate(expect(nil, 0))
    t:close()
    assert.is_false(run_all())
  end)

  it("an unref'd timer does not keep run() alive", function()
    local fired = false
    local t = cp.setTimeout(expect(function() fired = true end), 2000):unref()
    assert.is_false(run_all())
    assert.is_false(fired)
    -- ref() makes it count again
    t:ref()
    assert.is_false(run_all())
    assert.is_true(fired)
  end)

  it("an unref'd timer still fires while other work keeps the loop going", function()
    local fired = false
    cp.setTimeout(function() fired = true end, 5):unref()
    local t = cp.setInterval(function() end, 1)
    run_until(function() return fired end, 10000)
    t:close()
    assert.is_true(fired)
  end)

  it('hasRef reflects ref/unref', function()
    local t = cp.setTimeout(function() end, 1000)
    assert.is_true(t:hasRef())
    t:unref()
    assert.is_false(t:hasRef())
    t:close()
  end)

  only_if(LUA == 'lua5.4', '<close> needs Lua 5.4')('a timer is a childproc.Timer and supports <close>', function()
    local fired = false
    assert(load([[local cp, assert, fn = ...   -- (parses on 5.4 only)
      local t <close> = cp.setTimeout(fn, 1)
      assert.equal('childproc.Timer', getmetatable(t).__name)]]))(cp, assert, function() fired = true end)
    assert.is_false(run_all())
    assert.is_false(fired)
  end)
end)
