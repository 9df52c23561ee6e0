-- cp.exec and cp.execFile: buffered output, one callback after 'close',
-- maxBuffer, timeout/killSignal, non-zero exits, failures to start.
-- Every wait is bounded (run_until / wait_close from spec/helper.lua).
local cp = require 'childproc'

local MiB = 1024 * 1024

-- Start exec/execFile with a callback that must run once in the test
-- (expect); returns the child and a table that fills in when it runs.
local function start(fn, ...)
  local res = {}
  local args = table.pack(...)
  args[args.n + 1] = expect(function(err, stdout, stderr)
    res.err, res.stdout, res.stderr = err, stdout, stderr
    res.done = true
  end)
  res.child = fn(table.unpack(args, 1, args.n + 1))
  return res
end

local function finish(res, ms, what)
  run_until(function() return res.done end, ms or 10000, what or 'the callback')
  -- whatever is left (a 'close' after the callback...) must not call it
  -- again (expect counts)
  cp.run('nowait')
  return res
end

-- The peak resident memory of this process from now on: VmHWM after
-- resetting it (clear_refs 5), sampled VmRSS as a fallback.
local function peak_tracker()
  local f = io.open('/proc/self/clear_refs', 'w')
  local reset = f and f:write('5') and f:close()
  local base = rss_kib('VmRSS')
  local peak = base
  local t = {}
  function t.sample()
    local r = rss_kib('VmRSS')
    if r > peak then peak = r end
  end
  function t.growth_kib()
    t.sample()
    if reset then
      local hwm = rss_kib('VmHWM')
      if hwm > peak then peak = hwm end
    end
    return peak - base
  end
  return t
end

describe('exec', function()
  leakcheck()

  it('runs the command through /bin/sh and calls back once after close', function()
    local order = {}
    local res = start(cp.exec, 'echo "$((6 * 7))"; echo oops >&2')
    assert.is_nil(res.err)
    assert.is_nil(res.done)  -- never synchronously
    res.child:on('exit', function() order[#order + 1] = 'exit' end)
    res.child:on('close', function()
      order[#order + 1] = 'close'
      assert.is_true(res.done)  -- the callback ran in exec's 'close' listener
    end)
    finish(res)
    assert.is_nil(res.err)
    assert.equal('42\n', res.stdout)
    assert.equal('oops\n', res.stderr)
    assert.same({ 'exit', 'close' }, order)
  end)

  it('returns the ChildProcess, whose stdin the caller may write', function()
    local res = start(cp.exec, 'cat; echo done')
    assert.equal('ChildProcess', tostring(res.child):match('^ChildProcess'))
    assert.equal('number', mtype(res.child.pid) and 'number')
    res.child.stdin:close('hello ')
    finish(res)
    assert.is_nil(res.err)
    assert.equal('hello done\n', res.stdout)
  end)

  it('uses options.shell when it is a path', function()
    local res = finish(start(cp.exec, 'echo "$0"', { shell = '/bin/bash' }))
    assert.equal('/bin/bash\n', res.stdout)
  end)

  it('passes cwd and env', function()
    local res = finish(start(cp.exec, 'pwd; echo "$FOO"',
      { cwd = '/tmp', env = { FOO = 'bar', PATH = os.getenv('PATH') } }))
    assert.equal('/tmp\nbar\n', res.stdout)
  end)

  it('accepts the encodings utf8 and buffer (output is raw bytes)', function()
    local res = finish(start(cp.exec, "printf '\\377\\000x'", { encoding = 'utf8' }))
    assert.equal('\255\0x', res.stdout)
    res = finish(start(cp.exec, "printf '\\377'", { encoding = 'buffer' }))
    assert.equal('\255', res.stdout)
  end)

  it('reports a non-zero exit with code, cmd, message, stdout, stderr', function()
    local cmd = 'echo out; echo err >&2; exit 3'
    local res = finish(start(cp.exec, cmd))
    local err = res.err
    assert.is_table(err)
    assert.equal(3, err.code)
    assert.equal(cmd, err.cmd)
    assert.equal('Command failed: ' .. cmd .. '\nerr\n', err.message)
    assert.equal('Command failed: ' .. cmd .. '\nerr\n', tostring(err))
    assert.equal('out\n', err.stdout)
    assert.equal('err\n', err.stderr)
    assert.is_false(err.killed)
    assert.is_nil(err.signal)
    assert.equal(cp.Error, getmetatable(err))
    -- the callback gets the output too
    assert.equal('out\n', res.stdout)
    assert.equal('err\n', res.stderr)
  end)

  it('reports a child killed by a signal: code nil, signal named', function()
    local res = finish(start(cp.exec, 'kill -9 $$'))
    assert.is_nil(res.err.code)
    assert.equal('SIGKILL', res.err.signal)
    assert.is_false(res.err.killed)   -- not killed by us
  end)

  it('sets err.killed when the caller kills the child', function()
    local res = start(cp.exec, 'exec sleep 10')
    cp.setTimeout(function() res.child:kill() end, 50)
    local t0 = core().now()
    finish(res, 5000)
    assert.is_true(core().now() - t0 < 3000)
    assert.is_true(res.err.killed)
    assert.equal('SIGTERM', res.err.signal)
    assert.is_nil(res.err.code)
  end)

  describe('maxBuffer', function()
    it('kills the child and cuts stdout at the limit; memory stays bounded', function()
      local mem = peak_tracker()
      local res = start(cp.exec, 'head -c 100M /dev/zero')
      res.child.stdout:on('data', mem.sample)
      finish(res, 20000)
      local err = res.err
      assert.is_table(err)
      assert.equal('ERR_CHILD_PROCESS_STDIO_MAXBUFFER', err.code)
      assert.equal('stdout maxBuffer length exceeded', err.message)
      assert.equal('head -c 100M /dev/zero', err.cmd)
      assert.equal(MiB, #res.stdout)   -- the default: 1024 * 1024
      assert.equal(('\0'):rep(MiB), res.stdout)
      assert.equal(MiB, #err.stdout)
      assert.is_true(err.killed)
      local growth = mem.growth_kib()
      assert.is_true(growth < 64 * 1024, ('memory grew by %d KiB'):format(growth))
    end)

    it('applies to stderr the same way', function()
      local mem = peak_tracker()
      local res = start(cp.execFile, 'sh', { '-c', 'exec head -c 100M /dev/zero >&2' },
                        { maxBuffer = 300000 })
      res.child.stderr:on('data', mem.sample)
      finish(res, 20000)
      assert.equal('ERR_CHILD_PROCESS_STDIO_MAXBUFFER', res.err.code)
      assert.equal('stderr maxBuffer length exceeded', res.err.message)
      assert.equal(300000, #res.stderr)
      assert.equal('', res.stdout)
      local growth = mem.growth_kib()
      assert.is_true(growth < 64 * 1024, ('memory grew by %d KiB'):format(growth))
    end)

    it('cuts a small limit exactly, with the killSignal', function()
      -- (every producer here is bounded: a broken maxBuffer must not eat
      -- the machine's memory)
      local res = finish(start(cp.execFile, 'sh', { '-c', 'yes | head -c 20000000' },
        { maxBuffer = 1001, killSignal = 'SIGKILL' }))
      assert.equal('ERR_CHILD_PROCESS_STDIO_MAXBUFFER', res.err.code)
      assert.equal(('y\n'):rep(500) .. 'y', res.stdout)
      assert.equal('SIGKILL', res.err.signal)
    end)

    it('allows output up to the limit', function()
      local res = finish(start(cp.exec, 'head -c 1000 /dev/zero', { maxBuffer = 1000 }))
      assert.is_nil(res.err)
      assert.equal(1000, #res.stdout)
    end)
  end)

  describe('timeout', function()
    it('kills sleep 10 with SIGTERM within a bounded time', function()
      local t0 = core().now()
      local res = finish(start(cp.execFile, 'sleep', { '10' }, { timeout = 200 }), 5000)
      local took = core().now() - t0
      assert.is_true(took >= 190 and took < 3000, 'took ' .. took .. ' ms')
      local err = res.err
      assert.is_true(err.killed)
      assert.equal('SIGTERM', err.signal)
      assert.is_nil(err.code)
      assert.equal('sleep 10', err.cmd)
      assert.equal('Command failed: sleep 10\n', err.message)
    end)

    it('does not wait for a grandchild that holds the pipes', function()
      -- sh forks sleep (it is not the last command): killing sh leaves
      -- sleep with stdout open; exec stops reading, as Node
      local t0 = core().now()
      local res = finish(start(cp.exec, 'sleep 10; echo never', { timeout = 200 }), 5000)
      assert.is_true(core().now() - t0 < 3000)
      assert.is_true(res.err.killed)
      assert.equal('SIGTERM', res.err.signal)
      assert.is_nil(res.err.code)
    end)

    it('uses killSignal', function()
      local res = finish(start(cp.execFile, 'sleep', { '10' },
        { timeout = 100, killSignal = 'SIGKILL' }), 5000)
      assert.is_true(res.err.killed)
      assert.equal('SIGKILL', res.err.signal)
    end)

    it('does nothing to a child that ends in time', function()
      local res = finish(start(cp.exec, 'echo quick', { timeout = 5000 }))
      assert.is_nil(res.err)
      assert.equal('quick\n', res.stdout)
    end)
  end)

  describe('failure to start', function()
    it('gives ENOENT to the callback, once, never synchronously', function()
      local res = start(cp.execFile, '/nonexistent/cmd', { 'a' })
      assert.is_nil(res.done)
      finish(res)
      local err = res.err
      assert.equal('ENOENT', err.code)
      assert.equal(-2, err.errno)
      assert.equal('spawn /nonexistent/cmd', err.syscall)
      assert.equal('/nonexistent/cmd', err.path)
      assert.equal('/nonexistent/cmd a', err.cmd)
      assert.same({ 'a' }, err.spawnargs)
      assert.equal('', res.stdout)
      assert.equal('', res.stderr)
    end)

    it('reports a bad cwd as chdir', function()
      local res = finish(start(cp.exec, 'true', { cwd = '/nonexistent/dir' }))
      assert.equal('ENOENT', res.err.code)
      assert.equal('chdir', res.err.syscall)
      assert.equal('/nonexistent/dir', res.err.path)
    end)
  end)

  it('drains the output when there is no callback', function()
    -- 4 MiB through a 64 KiB pipe: without reading, the child never exits
    local child = cp.exec('head -c 4194304 /dev/zero; echo fine >&2',
                          { maxBuffer = 8 * MiB })
    local code = wait_close(child, 10000)
    assert.equal(0, code)
  end)

  it('enforces maxBuffer without a callback too', function()
    local child = cp.execFile('head', { '-c', '20000000', '/dev/zero' }, { maxBuffer = 1000 })
    local code, sig = wait_close(child, 10000)
    assert.is_nil(code)
    assert.equal('SIGTERM', sig)
  end)
end)

describe('execFile', function()
  leakcheck()

  it('runs the file without a shell', function()
    local res = finish(start(cp.execFile, 'echo', { '$HOME', 'a b' }))
    assert.is_nil(res.err)
    assert.equal('$HOME a b\n', res.stdout)
  end)

  it('runs it through a shell with shell = true', function()
    local res = finish(start(cp.execFile, 'echo', { '$((1 + 2))' }, { shell = true }))
    assert.equal('3\n', res.stdout)
  end)

  it('takes the callback in the args or options position', function()
    local res = finish(start(cp.execFile, 'pwd'))
    assert.is_string(res.stdout)
    res = finish(start(cp.execFile, 'pwd', { cwd = '/' }))
    assert.equal('/\n', res.stdout)
    res = finish(start(cp.execFile, 'echo', {}))
    assert.equal('\n', res.stdout)
  end)

  it('passes argv0', function()
    local res = finish(start(cp.execFile, 'cat', { '/proc/self/cmdline' }, { argv0 = 'custom' }))
    assert.equal('custom\0/proc/self/cmdline\0', res.stdout)
  end)

  it('reports a non-zero exit with cmd = file and args', function()
    local res = finish(start(cp.execFile, 'sh', { '-c', 'exit 7' }))
    assert.equal(7, res.err.code)
    assert.equal('sh -c exit 7', res.err.cmd)
    assert.equal('Command failed: sh -c exit 7\n', res.err.message)
  end)
end)

describe('exec and execFile arguments', function()
  badargs {
    { 'an unknown exec option', function() cp.exec('true', { stdio = 'pipe' }) end,
      "unknown option 'stdio'" },
    { 'argv0 for exec', function() cp.exec('true', { argv0 = 'x' }) end,
      "unknown option 'argv0'" },
    { 'an unknown execFile option', function() cp.execFile('true', {}, { detached = true }) end,
      "unknown option 'detached'" },
    { 'an unknown encoding', function() cp.exec('true', { encoding = 'hex' }) end,
      'encoding' },
    { 'a negative maxBuffer', function() cp.exec('true', { maxBuffer = -1 }) end,
      'maxBuffer' },
    { 'a string maxBuffer', function() cp.execFile('true', { maxBuffer = '10' }) end,
      'maxBuffer' },
    { 'a negative timeout', function() cp.exec('true', { timeout = -1 }) end,
      'timeout' },
    { 'an unknown killSignal', function() cp.exec('true', { killSignal = 'SIGNOPE' }) end,
      'signal' },
    { 'a non-function callback', function() cp.exec('true', {}, 42) end,
      'function expected' },
    { 'a non-function execFile callback', function() cp.execFile('true', {}, {}, 'x') end,
      'function expected' },
    { 'a command with a NUL byte', function() cp.exec('tr\0ue') end, 'NUL' },
    { 'a non-string command', function() cp.exec({}) end, "#1 to 'exec' (string expected, got table)" },
    { 'an arg with a NUL byte', function() cp.execFile('echo', { 'a\0b' }) end, 'NUL' },
    { 'args that are not a table', function() cp.execFile('echo', 'a') end, 'table expected' },
  }
end)
