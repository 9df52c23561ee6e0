-- 8ff0046: lua/child.lua and lua/sync.lua called the global pcall, so a
-- host that replaced it (the specs' yieldable one on 5.1) had its own
-- function run for every spawn: on 5.1 a coroutine a spawn, 704 bytes of
-- garbage ('a spawn makes no garbage' in CI).
describe('regress', function()
  it('spawn and spawnSync do not call a global pcall the host replaced', function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      local real = pcall
      pcall = function(...)
        io.stderr:write('the global pcall was called\n')
        return real(...)
      end
      local c = cp.spawn('true')
      c:wait()
      local r = cp.spawnSync('true')
      io.write(tostring(c.exitCode), ' ', tostring(r.status), '\n')
    ]])
    assert.equal('', err)
    assert.equal('0 0\n', out)
    assert.equal(0, status)
  end)
end)
