-- Stolen exits: another part of the host process reaps one of childproc's
-- children (a C library's own waitpid, luaposix's wait).  The child still
-- reaches 'exit' and 'close', with its output; its status is lost with the
-- reap, so exitCode and signalCode are both nil.
local cp = require 'childproc'

local so = ROOT .. '/build/' .. LUA .. '/reaper.so'
local reaper = assert(package.loadlib(so, 'luaopen_reaper'), 'make host builds ' .. so)()

local function watch(child)
  local rec = recorder()
  rec:listen(child, { 'exit', 'close', 'error' })
  if child.stdout then child.stdout:on('data', rec:data('out')) end
  return rec
end

describe('a child reaped by another part of the host', function()
  leakcheck()

  it("reaches 'exit' and 'close' with nil code and signal (waitpid(pid))", function()
    local child = cp.spawn('sh', { '-c', 'echo hi; exit 3' })
    local rec = watch(child)
    local pid, status = reaper.waitpid(child.pid)
    assert.equal(child.pid, pid)
    assert.equal(3 * 256, status)  -- the host got the status, we cannot
    run_until(function() return rec:index('close') end, 5000, "'close'")
    assert.same({ 'out', 'exit', 'close' }, rec:names())
    assert.equal('hi\n', rec:text('out'))
    assert.is_nil(child.exitCode)
    assert.is_nil(child.signalCode)
    assert.is_nil(rec:get('exit')[2])
    assert.is_nil(rec:get('exit')[3])
    assert.is_false(child:kill())  -- gone: no error, nothing signalled
  end)

  it('the same for waitpid(-1) taking a child killed by a signal', function()
    local child = cp.spawn('sleep', { '10' }, { stdio = 'ignore' })
    local rec = watch(child)
    assert.is_true(child:kill('SIGKILL'))
    local pid = reaper.wait_any()
    assert.equal(child.pid, pid)
    run_until(function() return rec:index('close') end, 5000, "'close'")
    assert.same({ 'exit', 'close' }, rec:names())
    assert.is_nil(child.signalCode)
  end)

  it('exec reports the unknown status as a failure, not a hang', function()
    local got
    local child = cp.exec('echo out; exit 0', function(err, out)
      got = { err = err, out = out }
    end)
    reaper.waitpid(child.pid)
    run_until(function() return got end, 5000, "exec's callback")
    assert.equal('out\n', got.out)
    assert.is_not_nil(got.err)
    assert.is_nil(got.err.code)
    assert.is_nil(got.err.signal)
  end)

  it('leaves the other children alone', function()
    local a = cp.spawn('sh', { '-c', 'exit 5' })
    local b = cp.spawn('sh', { '-c', 'exit 7' })
    reaper.waitpid(a.pid)
    assert.same({ nil, nil }, { wait_close(a) })
    assert.same({ 7, nil }, { b:wait() })
  end)
end)
