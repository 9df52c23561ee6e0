-- cp.spawn: events, exit status, arguments, env, cwd, failures.
local cp = require 'childproc'

describe('spawn', function()
  leakcheck()

  describe('event order', function()
    it('is spawn, data, exit, close for a normal child; close comes last', function()
      local rec = recorder()
      local child = cp.spawn('sh', { '-c', 'echo hello; echo oops >&2' })
      rec:listen(child, { 'spawn', 'error' })
      child:on('exit', expect(rec 'exit'))     -- once each
      child:on('close', expect(rec 'close'))
      child.stdout:on('data', rec:data('stdout.data'))
      child.stderr:on('data', rec:data('stderr.data'))
      rec:listen(child.stdout, { 'end', 'close' }, 'stdout.')
      rec:listen(child.stderr, { 'end', 'close' }, 'stderr.')
      -- nothing is emitted from inside spawn()
      assert.same({}, rec.events)
      run_until(function() return rec:index('close') end, 10000, "'close'")

      -- the child's own events, as a whole sequence
      assert.same({ { 'spawn' }, { 'exit', 0 }, { 'close', 0 } },
                  rec:only({ 'spawn', 'exit', 'close', 'error' }))
      local ev = rec.events
      assert.same({ 'spawn' }, ev[1])            -- no data before 'spawn'
      assert.same({ 'close', 0 }, ev[#ev])       -- 'close' is last
      assert.equal('hello\n', rec:text('stdout.data'))
      assert.equal('oops\n', rec:text('stderr.data'))
      -- 'close' after 'exit' and after both streams ended and closed
      local iclose = rec:index('close')
      for _, n in ipairs({ 'exit', 'stdout.end', 'stdout.close',
                           'stderr.end', 'stderr.close' }) do
        assert.is_truthy(rec:index(n), n .. ' missing')
        assert.is_true(rec:index(n) < iclose, n .. ' after close')
      end
      assert.is_true(rec:index('stdout.data') < rec:index('stdout.end'))
      assert.equal(0, child.exitCode)
      assert.is_nil(child.signalCode)
    end)

    it("'exit' and 'close' carry (code, nil) with the whole tuple", function()
      local child = cp.spawn('true')
      local exitargs, closeargs
      child:on('exit', expect(function(...) exitargs = table.pack(...) end))
      child:on('close', expect(function(...) closeargs = table.pack(...) end))
      run_until(function() return closeargs end)
      assert.same({ n = 2, 0, nil }, exitargs)
      assert.same({ n = 2, 0, nil }, closeargs)
    end)

    it("'close' still comes when nobody listens to the output", function()
      local child = cp.spawn('printf', { 'unread output' })
      local a, b = wait_close(child)
      assert.same({ 0, nil }, { a, b })
    end)
  end)

  describe('exit status', function()
    it('reports exit codes', function()
      local r = collect('sh', { '-c', 'exit 3' })
      assert.same({ 3, nil }, { r.code, r.signal })
      assert.equal(3, r.child.exitCode)
      assert.is_nil(r.child.signalCode)
    end)

    it("emits 'spawn' in the order of the spawns, among other queued work", function()
      local ev, kids = {}, {}
      local function spawn(name)
        local c = cp.spawn('true')
        kids[#kids + 1] = c
        c:on('spawn', function() ev[#ev + 1] = name end)
        return c
      end
      spawn('A')
      cp.setImmediate(function() ev[#ev + 1] = 'X' end)
      spawn('B')
      spawn('C'):on('spawn', function() spawn('D') end)
      local bad = cp.spawn('nosuchcmd')
      bad:on('error', function() ev[#ev + 1] = 'E' end)
      kids[#kids + 1] = bad
      run_until(function() return #ev == 6 end)
      assert.same({ 'A', 'X', 'B', 'C', 'E', 'D' }, ev)
      for _, c in ipairs(kids) do wait_close(c) end
    end)

    it('reports exit code 255', function()
      local r = collect('sh', { '-c', 'exit 255' })
      assert.equal(255, r.code)
    end)

    it('reports a signal by name, with a nil code', function()
      local child = cp.spawn('sleep', { '100' }, { stdio = 'ignore' })
      local rec = recorder():listen(child, { 'spawn', 'exit', 'close' })
      child:on('spawn', expect(function() assert.is_true(child:kill('SIGTERM')) end))
      run_until(function() return rec:index('close') end)
      assert.same({ { 'spawn' }, { 'exit', nil, 'SIGTERM' },
                    { 'close', nil, 'SIGTERM' } }, rec.events)
      assert.is_nil(child.exitCode)
      assert.equal('SIGTERM', child.signalCode)
      assert.is_true(child.killed)
    end)

    it('reports a signal sent from outside (SIGKILL)', function()
      local child = cp.spawn('sleep', { '100' }, { stdio = 'ignore' })
      local rec = recorder():listen(child, { 'exit', 'close' })
      child:on('spawn', function() assert.is_true(cp.kill(child.pid, 'SIGKILL')) end)
      run_until(function() return rec:index('close') end)
      assert.same({ { 'exit', nil, 'SIGKILL' }, { 'close', nil, 'SIGKILL' } }, rec.events)
      assert.is_false(child.killed)   -- not killed through child:kill
    end)

    it('wait() returns exitCode, signalCode', function()
      assert.same({ n = 2, 7, nil }, table.pack(cp.spawn('sh', { '-c', 'exit 7' }):wait()))
      local c = cp.spawn('sleep', { '100' })
      c:kill('SIGKILL')
      assert.same({ n = 2, nil, 'SIGKILL' }, table.pack(c:wait()))
    end)

    it('wait() on a child that already closed returns at once', function()
      local c = cp.spawn('true')
      wait_close(c)
      assert.same({ n = 2, 0, nil }, table.pack(c:wait()))
    end)
  end)

  describe('arguments', function()
    local tricky = {
      'two words', '"double"', "'single'", 'semi;colon', '$(echo hacked)',
      '`echo hacked`', 'line1\nline2', '', '*', '\\back\\slash', '$HOME',
      '  lead and trail  ', '|', '&&', '>out', 'é ü', '-n', '--',
    }

    it('reach the child verbatim, with no shell', function()
      local args = { '%s\\0' }
      local expect = {}
      for i, a in ipairs(tricky) do
        args[#args + 1] = a
        expect[i] = a .. '\0'
      end
      local r = collect('printf', args)
      assert.equal(0, r.code)
      assert.equal(table.concat(expect), r.stdout)
    end)

    it('reach a Lua child verbatim (fixture writes its arg table back)', function()
      local r = collect(LUA, { 'spec/fixtures/args.lua', table.unpack(tricky) })
      assert.equal(0, r.code, r.stderr)
      local got = assert((loadstring or load)('return ' .. r.stdout))()
      assert.same(tricky, got)
    end)

    it('converts numbers', function()
      local r = collect('printf', { '%s,%s\\n', 42, 1.5 })
      assert.equal('42,1.5\n', r.stdout)
    end)

    it('keeps spawnfile and spawnargs', function()
      local child = cp.spawn('printf', { 'x', 'y' })
      assert.equal('printf', child.spawnfile)
      assert.same({ 'printf', 'x', 'y' }, child.spawnargs)
      wait_close(child)
    end)

    it('sets argv0', function()
      local r = collect('sh', { '-c', 'cat /proc/$$/cmdline; true' }, { argv0 = 'custom-name' })
      assert.equal('custom-name\0-c\0', r.stdout:sub(1, #'custom-name\0-c\0'))
    end)

    it('treats a non-array table in the args position as options', function()
      local r = collect('echo $((1+2))', { shell = true })
      assert.same({ 0, '3\n' }, { r.code, r.stdout })
    end)

    it('runs through a shell with shell = true', function()
      local r = collect('echo', { '$((6*7))', '|', 'tr', '4', 'X' }, { shell = true })
      assert.equal('X2\n', r.stdout)
    end)

    it('runs through the named shell', function()
      local r = collect('echo $0', {}, { shell = '/bin/sh' })
      assert.equal('/bin/sh\n', r.stdout)
    end)
  end)

  describe('NUL bytes', function()
    -- if any of these started, `sleep 100` would be a child of ours
    local cases = {
      { 'command', function() return cp.spawn('sleep\0x', { '100' }) end },
      { 'an arg', function() return cp.spawn('sh', { '-c', 'sleep 100', 'a\0b' }) end },
      { 'an env value', function()
          return cp.spawn('sleep', { '100' }, { env = { PATH = os.getenv('PATH'), A = 'x\0y' } })
        end },
      { 'an env key', function()
          return cp.spawn('sleep', { '100' }, { env = { PATH = os.getenv('PATH'), ['A\0B'] = 'x' } })
        end },
      { 'cwd', function() return cp.spawn('sleep', { '100' }, { cwd = '/tmp\0x' }) end },
      { 'argv0', function() return cp.spawn('sleep', { '100' }, { argv0 = 'a\0b' }) end },
    }
    for _, c in ipairs(cases) do
      it('in ' .. c[1] .. ' are refused with a Lua error before anything starts', function()
        local ok, err = pcall(c[2])
        assert.is_false(ok)
        assert.is_truthy(tostring(err):lower():find('nul', 1, true), tostring(err))
        assert.same({}, children())
        -- and no half-made child emits anything later
        local ran, rerr = pcall(cp.run, 'nowait')
        assert.is_true(ran, tostring(rerr))
        assert.same({}, children())
      end)
    end
  end)

  describe('env', function()
    it('replaces the environment, not merges', function()
      local r = collect('/usr/bin/env', {}, { env = { ANSWER = 42, FOO = 'bar baz' } })
      assert.equal(0, r.code, r.stderr)
      local lines = {}
      for l in r.stdout:gmatch('[^\n]+') do lines[#lines + 1] = l end
      table.sort(lines)
      assert.same({ 'ANSWER=42', 'FOO=bar baz' }, lines)
    end)

    it('an empty table gives an empty environment', function()
      local r = collect('/usr/bin/env', {}, { env = {} })
      assert.same({ 0, '' }, { r.code, r.stdout })
    end)

    it("defaults to this process's environment", function()
      local r = collect('sh', { '-c', 'printf %s "$PATH"' })
      assert.equal(os.getenv('PATH'), r.stdout)
    end)
  end)

  describe('cwd', function()
    it('sets the working directory', function()
      local dir = ROOT .. '/spec'
      local r = collect('pwd', {}, { cwd = dir })
      assert.same({ 0, dir .. '\n' }, { r.code, r.stdout })
    end)

    it("a bad cwd is 'error' (syscall chdir, path cwd) then 'close'(-2)", function()
      local cwd = '/nonexistent-dir-for-childproc'
      local child = cp.spawn('pwd', {}, { cwd = cwd })
      local rec = recorder()
      child:on('spawn', expect(nil, 0))
      child:on('exit', expect(nil, 0))
      child:on('error', expect(rec 'error'))
      child:on('close', expect(rec 'close'))
      run_until(function() return rec:index('close') end)
      assert.same({ 'error', 'close' }, rec:names())
      local err = rec.events[1][2]
      assert.equal('chdir', err.syscall)
      assert.equal(cwd, err.path)
      assert.equal('ENOENT', err.code)
      assert.equal(-2, err.errno)
      assert.equal('childproc.Error', getmetatable(err).__name)
      assert.same({ 'close', -2 }, rec.events[2])
      assert.is_nil(child.pid)
    end)

    it('a cwd that is a file is ENOTDIR from chdir', function()
      local child = cp.spawn('pwd', {}, { cwd = '/etc/passwd' })
      local rec = recorder():listen(child, { 'error', 'close' })
      run_until(function() return rec:index('close') end)
      local err = rec.events[1][2]
      assert.same({ 'ENOTDIR', 'chdir', '/etc/passwd' }, { err.code, err.syscall, err.path })
      assert.same({ 'close', err.errno }, rec.events[2])
      assert.is_true(err.errno < 0)
    end)
  end)

  describe('a command that does not exist', function()
    it("is 'error' (ENOENT, -2, 'spawn nosuchcmd', path, spawnargs) then 'close'(-2)", function()
      local child = cp.spawn('nosuchcmd', { 'a', 'b' })
      local rec = recorder()
      child:on('spawn', expect(nil, 0))
      child:on('exit', expect(nil, 0))
      child:on('error', expect(rec 'error'))
      child:on('close', expect(rec 'close'))
      run_until(function() return rec:index('close') end)
      assert.same({ 'error', 'close' }, rec:names())
      local err = rec.events[1][2]
      assert.equal('ENOENT', err.code)
      assert.equal(-2, err.errno)
      assert.equal('spawn nosuchcmd', err.syscall)
      assert.equal('nosuchcmd', err.path)
      -- as Node: the arguments, without the command
      assert.same({ 'a', 'b' }, err.spawnargs)
      assert.is_truthy(tostring(err):find('ENOENT', 1, true))
      assert.same({ 'close', -2 }, rec.events[2])
      assert.is_nil(child.pid)
      assert.is_nil(child.exitCode)
    end)

    it('is never synchronous: a listener attached after spawn returns gets it', function()
      local child = cp.spawn('nosuchcmd')
      local rec = recorder()
      -- a stretch of other work between spawn and the listeners
      for _ = 1, 3 do collectgarbage() end
      rec:listen(child, { 'error', 'close' })
      assert.same({}, rec.events)
      run_until(function() return rec:index('close') end)
      assert.same({ 'error', 'close' }, rec:names())
      assert.equal('ENOENT', rec.events[1][2].code)
    end)

    it('a path that is not executable is EACCES', function()
      local child = cp.spawn('/etc/passwd')
      local rec = recorder():listen(child, { 'error', 'close' })
      run_until(function() return rec:index('close') end)
      local err = rec.events[1][2]
      assert.equal('EACCES', err.code)
      assert.same({ 'close', err.errno }, rec.events[2])
    end)
  end)

  describe('memory', function()
    -- What a spawn allocates, the child keeps (its object, fields, stdin
    -- fd): nothing is left for the collector.  With the collector stopped,
    -- the heap's growth over the spawns is all still live after a full
    -- collection.
    it('a spawn makes no garbage', function()
      local n, kids = 200, {}
      local args, opts = {}, { stdio = { 'pipe', 'ignore', 'ignore' } }
      collectgarbage(); collectgarbage()
      collectgarbage('stop')
      local before = collectgarbage('count')
      for i = 1, n do kids[i] = cp.spawn('cat', args, opts) end
      local grown = collectgarbage('count') - before
      collectgarbage('restart')
      collectgarbage(); collectgarbage()
      local live = collectgarbage('count') - before
      local garbage_per_spawn = (grown - live) * 1024 / n
      for _, c in ipairs(kids) do c.stdin:close() end
      for _, c in ipairs(kids) do assert.equal(0, (c:wait())) end
      -- (5.2 and 5.3: 19 bytes measured, a few small strings; 5.4: below 16)
      local most = (LUA == 'lua5.2' or LUA == 'lua5.3') and 32 or 16
      assert.is_true(garbage_per_spawn < most,
        ('%.0f bytes of garbage per spawn'):format(garbage_per_spawn))
    end)
  end)

  describe('no zombies', function()
    it('a closed child is reaped: /proc/<pid> is gone', function()
      local pids = {}
      for i = 1, 5 do
        local c = cp.spawn('sh', { '-c', 'exit ' .. i })
        pids[i] = c.pid
        assert.equal(i, (wait_close(c)))
      end
      for _, pid in ipairs(pids) do
        assert.is_nil(procstat(pid), 'pid ' .. pid .. ' still in /proc')
      end
      assert.same({}, children())
    end)

    it('a killed child is reaped too', function()
      local c = cp.spawn('sleep', { '100' })
      local pid = c.pid
      c:kill('SIGKILL')
      wait_close(c)
      assert.is_nil(procstat(pid))
    end)
  end)

  describe('uid and gid', function()
    it('run the child as that user and group', function()
      if MYPID and (shell('id -u')) ~= '0\n' then
        pending('needs root')
        return
      end
      local r = collect('sh', { '-c', 'echo $(id -u) $(id -g)' },
                        { uid = 65534, gid = 65534 })
      assert.same({ 0, '65534 65534\n' }, { r.code, r.stdout })
    end)
  end)

  describe('fields', function()
    it('has pid, stdin/stdout/stderr, stdio by fd, killed, connected', function()
      local c = cp.spawn('cat')
      assert.equal('integer', mtype(c.pid))
      assert.equal(MYPID, procstat(c.pid).ppid)
      assert.equal(c.stdin, c.stdio[0])
      assert.equal(c.stdout, c.stdio[1])
      assert.equal(c.stderr, c.stdio[2])
      assert.is_false(c.killed)
      assert.is_falsy(c.connected)
      assert.is_nil(c.exitCode)
      assert.equal('childproc.ChildProcess', getmetatable(c).__name)
      c.stdin:close()
      assert.same({ 0, nil }, { wait_close(c) })
    end)
  end)

  describe('garbage collection', function()
    it('a child Lua no longer references still runs to close', function()
      local closed = false
      local weak = setmetatable({}, { __mode = 'v' })
      do
        local c = cp.spawn('sh', { '-c', 'exit 5' })
        c:on('close', expect(function(code) closed = code end))
        weak[1] = c
      end
      run_until(function()
        collectgarbage()
        return closed
      end)
      assert.equal(5, closed)
      -- and after 'close' it is collected
      for _ = 1, 3 do collectgarbage() end
      assert.is_nil(weak[1])
    end)
  end)
end)
