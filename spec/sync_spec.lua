-- cp.spawnSync, cp.execSync, cp.execFileSync: blocking runs that leave the
-- async loop alone.  Waits are bounded by the `timeout` option or by
-- run_until's guard timer (spec/helper.lua).
local cp = require 'childproc'
local lfs = require 'lfs'

local MiB = 1024 * 1024
local now = core().now

-- peak resident memory growth (KiB) while fn runs: VmHWM after resetting
-- it (clear_refs 5), or VmRSS when that is not available
local function peak_growth(fn)
  collectgarbage(); collectgarbage()
  local f = io.open('/proc/self/clear_refs', 'w')
  local reset = f and f:write('5') and f:close()
  local base = rss_kib('VmRSS')
  local r = table.pack(fn())
  local peak = reset and rss_kib('VmHWM') or rss_kib('VmRSS')
  return peak - base, table.unpack(r, 1, r.n)
end

-- a pattern that shows reordering or loss: numbered lines
local function numbered(bytes)
  local t, n, i = {}, 0, 0
  while n < bytes do
    i = i + 1
    local line = ('%09d\n'):format(i)
    t[i] = line
    n = n + #line
  end
  return table.concat(t):sub(1, bytes)
end

describe('spawnSync', function()
  leakcheck()

  it('returns pid, output, stdout, stderr, status, signal, error', function()
    local r = cp.spawnSync('sh', { '-c', 'echo out; echo err >&2; exit 3' })
    assert.equal('integer', mtype(r.pid))
    assert.is_true(r.pid > 0)
    assert.equal('out\n', r.stdout)
    assert.equal('err\n', r.stderr)
    assert.equal(r.stdout, r.output[1])
    assert.equal(r.stderr, r.output[2])
    assert.is_nil(r.output[0])
    assert.equal(3, r.status)
    assert.is_nil(r.signal)
    assert.is_nil(r.error)
  end)

  it('reports a signal: status nil, signal named', function()
    local r = cp.spawnSync('sh', { '-c', 'kill -9 $$' })
    assert.is_nil(r.status)
    assert.equal('SIGKILL', r.signal)
    assert.is_nil(r.error)
  end)

  it('takes options in the args position, shell, cwd, env', function()
    local r = cp.spawnSync('pwd', { cwd = '/tmp' })
    assert.equal('/tmp\n', r.stdout)
    r = cp.spawnSync('echo "$FOO" $((2 + 3))', { shell = true, env = { FOO = 'bar' } })
    assert.equal('bar 5\n', r.stdout)
    r = cp.spawnSync('echo "$0"', { shell = '/bin/bash' })
    assert.equal('/bin/bash\n', r.stdout)
    r = cp.spawnSync('cat', { '/proc/self/cmdline' }, { argv0 = 'zz' })
    assert.equal('zz\0/proc/self/cmdline\0', r.stdout)
  end)

  describe('failure to start', function()
    it('gives result.error ENOENT, status nil, and does not raise', function()
      local r = cp.spawnSync('/nonexistent/cmd', { 'x' })
      assert.is_table(r.error)
      assert.equal(cp.Error, getmetatable(r.error))
      assert.equal('ENOENT', r.error.code)
      assert.equal(-2, r.error.errno)
      assert.equal('spawnSync /nonexistent/cmd', r.error.syscall)
      assert.equal('/nonexistent/cmd', r.error.path)
      assert.equal('spawnSync /nonexistent/cmd ENOENT', r.error.message)
      assert.same({ 'x' }, r.error.spawnargs)
      assert.is_nil(r.status)
      assert.is_nil(r.signal)
      assert.is_nil(r.stdout)
      assert.equal(0, r.pid)
    end)

    it('finds a command on PATH or says ENOENT', function()
      local r = cp.spawnSync('no-such-command-childproc')
      assert.equal('ENOENT', r.error.code)
      r = cp.spawnSync('true')
      assert.is_nil(r.error)
      assert.equal(0, r.status)
    end)

    it('reports a bad cwd as chdir', function()
      local r = cp.spawnSync('true', { cwd = '/nonexistent/dir' })
      assert.equal('ENOENT', r.error.code)
      assert.equal('chdir', r.error.syscall)
      assert.equal('/nonexistent/dir', r.error.path)
      assert.is_nil(r.status)
    end)
  end)

  it('reads 8 MiB on stdout and 8 MiB on stderr at once without deadlock', function()
    -- the child alternates 64 KiB writes: a parent that reads one pipe
    -- until its end never sees the child finish
    local code = [[
      local s = ('x'):rep(65536)
      local e = ('y'):rep(65536)
      for i = 1, 128 do io.stdout:write(s); io.stdout:flush(); io.stderr:write(e) end
    ]]
    local t0 = now()
    local r = cp.spawnSync(LUA, { '-e', code },
                           { maxBuffer = 16 * MiB, timeout = 20000 })
    assert.is_nil(r.error)
    assert.equal(0, r.status)
    assert.equal(8 * MiB, #r.stdout)
    assert.equal(8 * MiB, #r.stderr)
    assert.is_nil(r.stdout:find('[^x]'))
    assert.is_nil(r.stderr:find('[^y]'))
    assert.is_true(now() - t0 < 20000)
  end)

  it('writes an input of 4 MiB through cat', function()
    local input = numbered(4 * MiB)
    local r = cp.spawnSync('cat', { input = input, maxBuffer = 8 * MiB, timeout = 20000 })
    assert.is_nil(r.error)
    assert.equal(0, r.status)
    assert.equal(#input, #r.stdout)
    assert.is_true(input == r.stdout)
  end)

  it('closes stdin when there is no input', function()
    local r = cp.spawnSync('cat', { timeout = 5000 })
    assert.is_nil(r.error)
    assert.equal('', r.stdout)
    assert.equal(0, r.status)
  end)

  it('does not fail when the child does not read its input', function()
    local r = cp.spawnSync('true', { input = ('z'):rep(4 * MiB), timeout = 5000 })
    assert.is_nil(r.error)
    assert.equal(0, r.status)
  end)

  describe('timeout', function()
    it('kills sleep 10 with SIGTERM within a bounded time', function()
      local t0 = now()
      local r = cp.spawnSync('sleep', { '10' }, { timeout = 200 })
      local took = now() - t0
      assert.is_true(took >= 190 and took < 3000, 'took ' .. took .. ' ms')
      assert.is_nil(r.status)
      assert.equal('SIGTERM', r.signal)
      assert.equal('ETIMEDOUT', r.error.code)
      assert.equal('spawnSync sleep', r.error.syscall)
      assert.equal('spawnSync sleep ETIMEDOUT', r.error.message)
    end)

    it('uses killSignal, by name or number', function()
      local r = cp.spawnSync('sleep', { '10' }, { timeout = 100, killSignal = 'SIGKILL' })
      assert.equal('SIGKILL', r.signal)
      r = cp.spawnSync('sleep', { '10' }, { timeout = 100, killSignal = 2 })
      assert.equal('SIGINT', r.signal)
    end)

    it('does not wait for a grandchild that holds the pipes', function()
      local t0 = now()
      local r = cp.spawnSync('sh', { '-c', 'sleep 10; echo never' }, { timeout = 200 })
      assert.is_true(now() - t0 < 3000)
      assert.equal('SIGTERM', r.signal)
      assert.equal('ETIMEDOUT', r.error.code)
      assert.equal('', r.stdout)
    end)

    it('keeps the output written before the timeout', function()
      local r = cp.spawnSync('sh', { '-c', 'echo before; exec sleep 10' }, { timeout = 300 })
      assert.equal('before\n', r.stdout)
      assert.equal('ETIMEDOUT', r.error.code)
    end)
  end)

  describe('maxBuffer', function()
    it('kills the child, cuts stdout at 1 MiB by default: ENOBUFS, memory bounded', function()
      local growth, r = peak_growth(function()
        return cp.spawnSync('head', { '-c', '100M', '/dev/zero' }, { timeout = 20000 })
      end)
      assert.equal('ENOBUFS', r.error.code)
      assert.equal('spawnSync head ENOBUFS', r.error.message)
      assert.equal(MiB, #r.stdout)
      assert.equal('SIGTERM', r.signal)
      assert.is_nil(r.status)
      assert.is_true(growth < 64 * 1024, ('memory grew by %d KiB'):format(growth))
    end)

    it('applies to stderr the same way', function()
      local growth, r = peak_growth(function()
        return cp.spawnSync('sh', { '-c', 'exec head -c 100M /dev/zero >&2' },
                            { maxBuffer = 100000, killSignal = 'SIGKILL', timeout = 20000 })
      end)
      assert.equal('ENOBUFS', r.error.code)
      assert.equal(100000, #r.stderr)
      assert.equal('', r.stdout)
      assert.equal('SIGKILL', r.signal)
      assert.is_true(growth < 64 * 1024, ('memory grew by %d KiB'):format(growth))
    end)

    it('allows output up to the limit', function()
      local r = cp.spawnSync('head', { '-c', '5000', '/dev/zero' }, { maxBuffer = 5000 })
      assert.is_nil(r.error)
      assert.equal(5000, #r.stdout)
      assert.equal(0, r.status)
    end)
  end)

  describe('stdio', function()
    it("'inherit' and 'ignore' give no output for that fd", function()
      local r = cp.spawnSync('sh', { '-c', 'echo out; echo err >&2' },
                             { stdio = { 'pipe', 'pipe', 'ignore' } })
      assert.equal('out\n', r.stdout)
      assert.is_nil(r.stderr)
      assert.is_nil(r.output[2])
      r = cp.spawnSync('true', { stdio = 'inherit' })
      assert.is_nil(r.stdout)
      assert.equal(0, r.status)
    end)

    it('passes an fd number or a Lua file', function()
      local path = tmpname()
      local f = assert(io.open(path, 'w'))
      local r = cp.spawnSync('sh', { '-c', 'echo to-file' }, { stdio = { 'pipe', f, 'pipe' } })
      f:close()
      assert.equal(0, r.status)
      assert.is_nil(r.stdout)
      assert.equal('to-file\n', readfile(path))
      f = assert(io.open(path, 'w'))
      local fd = fd_of(path)
      r = cp.spawnSync('sh', { '-c', 'echo by-number' }, { stdio = { 'pipe', fd, 'pipe' } })
      f:close()
      assert.equal(0, r.status)
      assert.equal('by-number\n', readfile(path))
      os.remove(path)
    end)

    it('reads an extra pipe into output[3]', function()
      local r = cp.spawnSync('sh', { '-c', 'echo three >&3' },
                             { stdio = { 'pipe', 'pipe', 'pipe', 'pipe' } })
      assert.equal('three\n', r.output[3])
      assert.equal(0, r.status)
    end)
  end)

  if (shell('id -u')):match('^0\n') then
    it('runs the child as uid/gid', function()
      local r = cp.spawnSync('id', { '-u' }, { uid = 65534, gid = 65534 })
      assert.equal('65534\n', r.stdout)
    end)
  end

  it('works where pidfds are missing (old kernels, valgrind)', function()
    -- core.spawn then gives no pidfd: spawnSync asks by pid
    local core = core()
    local spawn = core.spawn
    core.spawn = function(...)
      local pid, pidfd, step = spawn(...)
      if pid and pidfd then core.close(pidfd); pidfd = nil end
      return pid, pidfd, step
    end
    local ok, err = pcall(function()
      local r = cp.spawnSync('sh', { '-c', 'echo out; exit 4' })
      assert.equal(4, r.status)
      assert.equal('out\n', r.stdout)
      r = cp.spawnSync('cat', { input = numbered(MiB), maxBuffer = 2 * MiB })
      assert.equal(MiB, #r.stdout)
      assert.equal(0, r.status)
      local t0 = now()
      r = cp.spawnSync('sleep', { '10' }, { timeout = 100 })
      assert.is_true(now() - t0 < 3000)
      assert.equal('SIGTERM', r.signal)
      assert.equal('ETIMEDOUT', r.error.code)
      r = cp.spawnSync('head', { '-c', '10M', '/dev/zero' }, { maxBuffer = 1000 })
      assert.equal('ENOBUFS', r.error.code)
      assert.equal('SIGTERM', r.signal)
    end)
    core.spawn = spawn
    assert(ok, err)
  end)

  describe('leaves the async loop alone', function()
    it('timers due during a spawnSync fire only at the next cp.run()', function()
      local fired = 0
      local t = cp.setTimeout(function() fired = fired + 1 end, 1)
      local r = cp.spawnSync('sleep', { '0.05' })
      assert.equal(0, r.status)
      assert.equal(0, fired)
      run_until(function() return fired == 1 end, 2000, 'the timer')
      t:close()
    end)

    it('immediates wait for the next cp.run() too', function()
      local ran = false
      cp.setImmediate(function() ran = true end)
      cp.spawnSync('true')
      assert.is_false(ran)
      run_until(function() return ran end, 2000, 'the immediate')
    end)

    it('a child watched by the loop keeps its events for the next cp.run()', function()
      local rec = recorder()
      local child = cp.spawn('sh', { '-c', 'echo async' })
      rec:listen(child, { 'spawn', 'exit', 'close' })
      child.stdout:on('data', rec:data('data'))
      local alive_before = internal().alive()
      local r = cp.spawnSync('sleep', { '0.1' })  -- the async child exits meanwhile
      assert.equal(0, r.status)
      assert.same({}, rec.events)
      assert.equal(alive_before, internal().alive())
      -- not reaped behind the loop's back: still a zombie of ours
      local st = procstat(child.pid)
      assert.equal('Z', st and st.state)
      wait_close(child, 5000)
      assert.same({ 'spawn', 'data', 'exit', 'close' }, rec:names())
      assert.equal('async\n', rec:text('data'))
      assert.equal(0, rec:get('exit')[2])
    end)

    it("called from a timer's callback, runs no other timer nor child of the loop", function()
      local order, r = {}, nil
      local function note(what) return function() order[#order + 1] = what end end
      cp.setTimeout(function()
        order[#order + 1] = 'first'
        local child = cp.spawn('sh', { '-c', 'echo async' })
        for _, e in ipairs({ 'spawn', 'exit', 'close' }) do child:on(e, note(e)) end
        child.stdout:on('data', note('data'))
        -- the async child exits and the second timer falls due meanwhile
        r = cp.spawnSync('sleep', { '0.1' })
        order[#order + 1] = 'synced'
      end, 1)
      cp.setTimeout(note('second'), 2)
      run_until(function() return #order >= 7 end, 5000, 'the timers and the child')
      assert.equal(0, r.status)
      assert.same({ 'first', 'synced' }, { order[1], order[2] })
      -- after it, each in its own order
      local child_order, rest = {}, {}
      for i = 3, #order do
        if order[i] ~= 'second' then child_order[#child_order + 1] = order[i] end
        rest[#rest + 1] = order[i]
      end
      assert.same({ 'spawn', 'data', 'exit', 'close' }, child_order)
      table.sort(rest)
      assert.same({ 'close', 'data', 'exit', 'second', 'spawn' }, rest)
    end)

    it('runs the child on a private loop whose epoll fd is closed before it returns', function()
      local function epolls(listing)
        local n = 0
        for _ in listing:gmatch('anon_inode:%[eventpoll%]') do n = n + 1 end
        return n
      end
      local before = fds()
      local mine = 0
      for _, fd in ipairs(before) do
        if lfs.symlinkattributes('/proc/self/fd/' .. fd, 'target') == 'anon_inode:[eventpoll]' then
          mine = mine + 1
        end
      end
      -- the child lists this process's fds while spawnSync runs it
      local r = cp.spawnSync('sh', { '-c', 'ls -l /proc/$PPID/fd' })
      assert.equal(0, r.status, r.stderr)
      assert.equal(mine + 1, epolls(r.stdout))
      local r2 = cp.spawnSync('sh', { '-c', 'echo x; exit 3' }, { timeout = 5000 })
      assert.equal(3, r2.status)
      assert.same(before, fds(), fds_desc())
      -- execSync, an error and a timeout leave none either
      assert.has_error(function() cp.execSync('exit 1', { stdio = 'ignore' }) end)
      assert.equal('ETIMEDOUT', cp.spawnSync('sleep', { '5' }, { timeout = 50 }).error.code)
      assert.equal('ENOENT', cp.spawnSync('/nonexistent/cmd').error.code)
      assert.same(before, fds(), fds_desc())
    end)

    it('with a pty: timeout and killSignal, maxBuffer as without one', function()
      local t0 = now()
      local r = cp.spawnSync('sh', { '-c', 'echo up; exec sleep 10' },
                             { pty = true, timeout = 500, killSignal = 'SIGKILL' })
      assert.is_true(now() - t0 < 3000)
      assert.equal('ETIMEDOUT', r.error.code)
      assert.equal('spawnSync sh ETIMEDOUT', r.error.message)
      assert.equal('SIGKILL', r.signal)
      assert.is_nil(r.status)
      assert.equal('up\r\n', r.stdout)
      assert.equal('', r.stderr)
      r = cp.spawnSync('sh', { '-c', 'head -c 100000 /dev/zero | tr "\\0" x; sleep 10' },
                       { pty = true, maxBuffer = 1000 })
      assert.equal('ENOBUFS', r.error.code)
      assert.equal('SIGTERM', r.signal)
      assert.equal(('x'):rep(1000), r.stdout)
    end)
  end)
end)

describe('execSync', function()
  leakcheck()

  it('returns stdout of a shell command', function()
    assert.equal('42\n', cp.execSync('echo $((6 * 7))'))
    assert.equal('/\n', cp.execSync('pwd', { cwd = '/' }))
    assert.equal('in\n', cp.execSync('cat', { input = 'in\n' }))
  end)

  it('raises on a non-zero exit with status, stdout, stderr, pid, output', function()
    local ok, err = pcall(cp.execSync, 'echo out; echo err >&2; exit 3', { stdio = 'pipe' })
    assert.is_false(ok)
    assert.equal(cp.Error, getmetatable(err))
    assert.equal('Command failed: echo out; echo err >&2; exit 3\nerr\n', err.message)
    assert.equal(3, err.status)
    assert.is_nil(err.signal)
    assert.equal('out\n', err.stdout)
    assert.equal('err\n', err.stderr)
    assert.equal('integer', mtype(err.pid))
    assert.equal('out\n', err.output[1])
  end)

  it('raises when the child is killed or times out', function()
    local ok, err = pcall(cp.execSync, 'kill -9 $$')
    assert.is_false(ok)
    assert.equal('SIGKILL', err.signal)
    assert.is_nil(err.status)
    local t0 = now()
    ok, err = pcall(cp.execSync, 'exec sleep 10', { timeout = 100 })
    assert.is_false(ok)
    assert.is_true(now() - t0 < 3000)
    assert.equal('ETIMEDOUT', err.code)
    assert.equal('SIGTERM', err.signal)
    assert.equal('', err.stdout)
  end)

  it('raises ENOBUFS past maxBuffer', function()
    local ok, err = pcall(cp.execSync, 'head -c 20000000 /dev/zero', { maxBuffer = 100 })
    assert.is_false(ok)
    assert.equal('ENOBUFS', err.code)
    assert.equal(100, #err.stdout)
  end)

  it("sends the child's stderr to this process's stderr by default", function()
    local out, status, errout = luaproc([[
      local cp = require 'childproc'
      io.write(cp.execSync('echo to-out; echo to-err >&2'))
      local ok, err = pcall(cp.execSync, 'echo failing >&2; exit 1')
      io.write(tostring(err.stderr))
      -- with a stdio option, nothing is copied
      cp.execSync('echo hidden >&2', { stdio = 'pipe' })
    ]])
    assert.equal(0, status, errout)
    assert.equal('to-out\nfailing\n', out)
    assert.equal('to-err\nfailing\n', errout)
  end)
end)

describe('execFileSync', function()
  leakcheck()

  it('returns stdout, without a shell', function()
    assert.equal('$HOME a b\n', cp.execFileSync('echo', { '$HOME', 'a b' }))
    assert.equal('3\n', cp.execFileSync('echo', { '$((1 + 2))' }, { shell = true }))
    assert.equal('/\n', cp.execFileSync('pwd', { cwd = '/' }))
  end)

  it('raises ENOENT for a missing file', function()
    local ok, err = pcall(cp.execFileSync, '/nonexistent/cmd')
    assert.is_false(ok)
    assert.equal('ENOENT', err.code)
    assert.equal('spawnSync /nonexistent/cmd', err.syscall)
    assert.is_nil(err.status)
  end)

  it('raises on a non-zero exit with the command line', function()
    local ok, err = pcall(cp.execFileSync, 'sh', { '-c', 'exit 5' }, { stdio = 'pipe' })
    assert.is_false(ok)
    assert.equal(5, err.status)
    assert.equal('Command failed: sh -c exit 5', err.message)
  end)
end)

describe('Sync arguments', function()
  badargs {
    { 'an unknown spawnSync option', function() cp.spawnSync('true', { detached = true }) end,
      "unknown option 'detached'" },
    { 'a table input', function() cp.spawnSync('cat', { input = {} }) end, 'input' },
    { "an 'ipc' stdio", function() cp.spawnSync('true', { stdio = { 'pipe', 'pipe', 'pipe', 'ipc' } }) end,
      'ipc' },
    { 'a bad maxBuffer', function() cp.spawnSync('true', { maxBuffer = 'big' }) end,
      'maxBuffer' },
    { 'a bad encoding', function() cp.execSync('true', { encoding = 'base64' }) end,
      'encoding' },
    { 'argv0 for execSync', function() cp.execSync('true', { argv0 = 'x' }) end,
      "unknown option 'argv0'" },
    { 'a bad timeout', function() cp.execFileSync('true', {}, { timeout = 1.5 }) end,
      'timeout' },
    { 'a NUL in the command', function() cp.execSync('tr\0ue') end, 'NUL' },
    { 'a NUL in an env value', function() cp.spawnSync('true', { env = { A = 'x\0' } }) end,
      'NUL' },
    { 'a function as options', function() cp.spawnSync('true', {}, print) end,
      'table expected' },
  }
end)
