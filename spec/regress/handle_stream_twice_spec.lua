-- handle:stream() kept its Duplex in the handle's fields under 'stream',
-- which an object's fields come before its methods: a second
-- handle:stream() called the Duplex ("attempt to call a userdata").
-- Found by docs_spec's walk of the method tables.
local cp = require 'childproc'

describe('regress', function()
  leakcheck()

  it('handle:stream() called again gives the same stream', function()
    local peer = cp.fork(ROOT .. '/spec/fixtures/handle_peer.lua')
    local handle
    peer:on('message', function(_, h) if h then handle = h:keep() end end)
    local r = cp.spawn('true', {}, { stdio = { 'ignore', 'pipe', 'ignore' } })
    peer:send({ op = 'back' }, r.stdout)
    run_until(function() return handle ~= nil end, 10000, 'the handle back')
    local st = handle:stream()
    assert.equal('childproc.Duplex', getmetatable(st).__name)
    assert.equal(st, handle:stream())
    assert.is_function(handle.stream)
    st:destroy()
    peer:disconnect()
    peer:wait()
    r:wait()
  end)
end)
