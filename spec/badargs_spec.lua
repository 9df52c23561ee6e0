-- Wrong argument types raise Lua errors naming the argument
-- (luaL_argerror style), before anything starts.
local cp = require 'childproc'

describe('bad arguments', function()
  leakcheck()

  describe('spawn', function()
    badargs {
      { 'spawn(nil)', function() cp.spawn(nil) end, 'bad argument', 'spawn' },
      { 'spawn()', function() cp.spawn() end, 'bad argument', 'spawn' },
      { 'spawn({})', function() cp.spawn({}) end, 'bad argument', 'spawn' },
      { 'spawn(x, 5)', function() cp.spawn('sleep', 5) end, 'bad argument', 'spawn' },
      { 'spawn(x, "str")', function() cp.spawn('sleep', '100') end, 'bad argument', 'spawn' },
      { 'spawn(x, {}, 5)', function() cp.spawn('sleep', {}, 5) end, 'bad argument', 'spawn' },
      { 'spawn(x, {}, "o")', function() cp.spawn('sleep', {}, 'o') end, 'bad argument', 'spawn' },
      { 'an arg that is a table', function() cp.spawn('sleep', { '100', {} }) end, 'bad argument', 'args' },
      { 'an arg that is a boolean', function() cp.spawn('sleep', { true }) end, 'bad argument', 'args' },
      { 'an unknown option key', function() cp.spawn('sleep', { '100' }, { bogus = 1 }) end, 'bogus' },
      { 'a misspelt option', function() cp.spawn('sleep', { '100' }, { detach = true }) end, 'detach' },
      { 'a bad stdio string', function() cp.spawn('sleep', { '100' }, { stdio = 'pipes' }) end, 'stdio' },
      { 'a bad stdio entry', function()
          cp.spawn('sleep', { '100' }, { stdio = { 'pipe', 'nonsense', 'pipe' } })
        end, 'stdio' },
      { 'a stdio entry of a bad type', function()
          cp.spawn('sleep', { '100' }, { stdio = { 'pipe', {}, 'pipe' } })
        end, 'stdio' },
      { 'stdio as a number', function() cp.spawn('sleep', { '100' }, { stdio = 5 }) end, 'stdio' },
      { 'a negative stdio fd', function()
          cp.spawn('sleep', { '100' }, { stdio = { 'pipe', -1, 'pipe' } })
        end, 'stdio' },
      { 'env not a table', function() cp.spawn('sleep', { '100' }, { env = 'PATH=/bin' }) end, 'env' },
      { 'cwd a table', function() cp.spawn('sleep', { '100' }, { cwd = {} }) end, 'cwd' },
      { 'uid a string', function() cp.spawn('sleep', { '100' }, { uid = 'root' }) end, 'uid' },
      { 'gid negative', function() cp.spawn('sleep', { '100' }, { gid = -1 }) end, 'gid' },
      { 'timeout negative', function() cp.spawn('sleep', { '100' }, { timeout = -5 }) end, 'timeout' },
      { 'an unknown killSignal', function()
          cp.spawn('sleep', { '100' }, { killSignal = 'SIGNOPE' })
        end, 'signal' },
      { 'shell a table', function() cp.spawn('sleep 100', { shell = {} }) end, 'shell' },
      { 'argv0 a table', function() cp.spawn('sleep', { '100' }, { argv0 = {} }) end, 'argv0' },
    }
  end)

  describe('timers and the loop', function()
    badargs {
      { 'setTimeout(non-function)', function() cp.setTimeout('x', 1) end, 'bad argument', 'setTimeout' },
      { 'setInterval(nil)', function() cp.setInterval(nil, 1) end, 'bad argument', 'setInterval' },
      { 'setImmediate(5)', function() cp.setImmediate(5) end, 'bad argument', 'setImmediate' },
      { "run('bogus')", function() cp.run('bogus') end, 'bad argument', 'run' },
      { 'kill("x")', function() cp.kill('x') end, 'bad argument', 'kill' },
      { 'kill(pid, bad signal)', function() cp.kill(MYPID, 'SIGBOGUS') end, 'signal' },
    }
  end)

  describe('objects', function()
    local c
    before_each(function() c = cp.spawn('cat') end)
    after_each(function()
      c.stdin:close()
      c:wait()
    end)

    it('on(name, non-function) raises naming argument #3 (#2 as a method)', function()
      local ok, err = pcall(c.on, c, 'exit', 5)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('#3', 1, true), tostring(err))
      ok, err = pcall(function() c:on('exit', 5) end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('#2', 1, true), tostring(err))
    end)

    it('write(non-string) raises', function()
      local ok, err = pcall(c.stdin.write, c.stdin, {})
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('bad argument', 1, true), tostring(err))
    end)

    it('kill(bad signal) raises', function()
      local ok, err = pcall(c.kill, c, 'SIGWHAT')
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('signal', 1, true), tostring(err))
    end)

    it('a method called on the wrong object names the class', function()
      local ok, err = pcall(c.kill, c.stdin)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('ChildProcess', 1, true), tostring(err))
    end)

    it('a method called on the wrong object names itself, at the line that called it', function()
      local function err_at(f)
        local line = debug.getinfo(2, 'l').currentline
        local ok, err = pcall(f)
        assert.is_false(ok)
        return tostring(err), ('spec/badargs_spec.lua:%d: '):format(line)
      end
      local cases = {
        { 'kill', 'ChildProcess', 'Writable', err_at(function() c.kill(c.stdin) end) },
        { 'on', 'ChildProcess', 'number', err_at(function() c.on(42, 'exit', print) end) },
        { 'send', 'ChildProcess', 'Process', err_at(function() c.send(cp.process, 'x') end) },
        { 'send', 'Process', 'table', err_at(function() cp.process.send({}, 'x') end) },
        { 'write', 'Writable', 'ChildProcess', err_at(function() c.stdin.write(c, 'x') end) },
      }
      for _, k in ipairs(cases) do
        local name, want, got, err, at = k[1], k[2], k[3], k[4], k[5]
        assert.equal(1, err:find(at, 1, true), err)
        assert.truthy(err:find(("bad argument #1 to '%s' (childproc.%s expected, got ")
          :format(name, want), 1, true), err)
        assert.truthy(err:find(got, 1, true), err)
      end
    end)
  end)
end)
