-- ChildProcess as an emitter: on/once/off, listener order, <close>.
local cp = require 'childproc'

describe('ChildProcess emitter', function()
  leakcheck()

  it('calls listeners in the order they were added; once fires once; off removes', function()
    local c = cp.spawn('true')
    local calls = {}
    local function a() calls[#calls + 1] = 'a' end
    local function b() calls[#calls + 1] = 'b' end
    local function gone() calls[#calls + 1] = 'gone' end
    c:on('exit', a)
    c:once('exit', b)
    c:on('exit', gone)
    c:off('exit', gone)
    assert.equal(c, c:on('close', function() calls[#calls + 1] = 'close' end))
    wait_close(c)
    assert.same({ 'a', 'b', 'close' }, calls)
  end)

  it('a listener added during an emit is not called for that emit', function()
    local c = cp.spawn('true')
    local calls = {}
    c:on('exit', function()
      calls[#calls + 1] = 'first'
      c:on('exit', function() calls[#calls + 1] = 'late' end)
    end)
    wait_close(c)
    assert.same({ 'first' }, calls)
  end)

  only_if(LUA == 'lua5.4', '<close> needs Lua 5.4')('<close> sends SIGTERM to a running child', function()
    local c = cp.spawn('sleep', { '100' })
    local sig
    c:on('close', function(_, s) sig = s end)
    assert(load('local scoped <close> = ...'))(c)  -- (parses on 5.4 only)
    run_until(function() return sig end)
    assert.equal('SIGTERM', sig)
  end)

  it('tostring names the class and pid', function()
    local c = cp.spawn('true')
    assert.is_truthy(tostring(c):find(tostring(c.pid), 1, true))
    c:wait()
  end)
end)
