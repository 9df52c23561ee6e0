-- `pty = true | {cols, rows, term}`: the child on a new pseudo-terminal,
-- seen from outside (what the child's tty, stty and test -t say, bytes,
-- signals, fds in /proc, event order).
local cp = require 'childproc'
local lfs = require 'lfs'

-- the targets of /proc/<pid>/fd, by fd number
local function fd_targets(pid)
  local t, dir = {}, '/proc/' .. pid .. '/fd'
  for name in lfs.dir(dir) do
    if name:match('^%d+$') then
      t[tonumber(name)] = lfs.symlinkattributes(dir .. '/' .. name, 'target')
    end
  end
  return t
end

-- the flags of one of our fds (octal in /proc/self/fdinfo)
local function fd_flags(fd)
  local info = readfile('/proc/self/fdinfo/' .. fd) or ''
  return tonumber(info:match('flags:%s*(%d+)'), 8)
end

local function has_flag(flags, bit) return math.floor(flags / bit) % 2 == 1 end
local O_NONBLOCK, O_CLOEXEC = 2048, 524288   -- 04000, 02000000

-- a process of pid's session running `comm`, or nil
local function in_session(sid, comm)
  for name in lfs.dir('/proc') do
    if name:match('^%d+$') then
      local st = procstat(name)
      if st and st.session == sid and st.comm == comm and st.state ~= 'Z' then
        return st
      end
    end
  end
end

describe('pty', function()
  leakcheck()

  it('gives the child a /dev/pts terminal as stdin, stdout and stderr', function()
    local r = collect('sh', { '-c', 'tty; test -t 0 && test -t 1 && test -t 2 && echo all-ttys' },
                      { pty = true })
    assert.equal(0, r.code)
    assert.is_nil(r.child.stderr)
    assert.matches('^/dev/pts/%d+\r\nall%-ttys\r\n$', r.stdout)
  end)

  it('makes the child a session leader with the terminal as controlling tty', function()
    local child = cp.spawn('sh', { '-c', ': </dev/tty && echo has-ctty; exec sleep 30' },
                           { pty = true })
    local out = ''
    child.stdout:on('data', function(d) out = out .. d end)
    run_until(function() return out:find('has-ctty', 1, true) end, 5000, 'has-ctty')
    local st = procstat(child.pid)
    assert.equal(child.pid, st.session)
    assert.equal(child.pid, st.pgrp)
    -- tty_nr (field 7 of /proc/pid/stat) names the terminal
    local ttynr = readfile('/proc/' .. child.pid .. '/stat'):match('%) %S+ %d+ %d+ %d+ (%d+)')
    assert.are_not.equal('0', ttynr)
    child:kill()
    assert.same({ nil, 'SIGTERM' }, { child:wait() })
  end)

  it('sets TERM from pty.term, xterm-256color by default, unless env gives it', function()
    assert.equal('xterm-256color\r\n', collect('sh', { '-c', 'echo $TERM' }, { pty = true }).stdout)
    assert.equal('vt100\r\n', collect('sh', { '-c', 'echo $TERM' },
                                      { pty = { term = 'vt100' } }).stdout)
    assert.equal('dumb\r\n', collect('/bin/sh', { '-c', 'echo $TERM' },
                                     { pty = true, env = { TERM = 'dumb' } }).stdout)
  end)

  it('starts with the window size given, and stty sees a resize (SIGWINCH)', function()
    local child = cp.spawn('sh', { '-c',
      'stty size; trap "stty size; exit 0" WINCH; echo ready; while :; do sleep 0.05; done' },
      { pty = { cols = 132, rows = 43 } })
    local out = ''
    child.stdout:on('data', function(d)
      out = out .. d
      if out:find('ready', 1, true) and not child.resized then
        child.resized = child:resize(100, 30)
      end
    end)
    assert.equal(0, child:wait())
    assert.is_true(child.resized)
    assert.equal('43 132\r\nready\r\n30 100\r\n', out)
    assert.is_false(child:resize(80, 24))   -- the terminal is gone
  end)

  it('refuses resize on a child without a terminal, and bad sizes', function()
    local child = cp.spawn('true')
    local ok, err = pcall(child.resize, child, 80, 24)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'resize' %(not a PTY child", err)
    child:wait()
    child = cp.spawn('true', { pty = true })
    for _, bad in ipairs({ { 0, 24 }, { 80, 65536 }, { 80.5, 24 }, { '80', 24 }, { 80 } }) do
      ok, err = pcall(child.resize, child, bad[1], bad[2])
      assert.is_false(ok)
      assert.matches("bad argument #%d to 'resize'", err)
    end
    child:wait()
  end)

  it('loses no byte of 1 MiB printed just before the exit (ten times)', function()
    -- no newline in the payload: onlcr would make each \n two bytes
    local script = 'printf %s "$(head -c 1048576 /dev/zero | tr "\\0" x)"'
    for i = 1, 10 do
      local r = collect('sh', { '-c', script }, { pty = true })
      assert.equal(0, r.code)
      assert.equal(1048576, #r.stdout, 'run ' .. i)
      assert.is_nil(r.stdout:find('[^x]'))
    end
  end)

  it('delivers every byte before the end and close, close last', function()
    local rec = recorder()
    local child = cp.spawn('sh', { '-c', 'echo one; echo two' }, { pty = true })
    child.stdout:on('data', rec:data('data'))
    rec:listen(child, { 'exit', 'close' })
    child.stdout:on('end', rec 'end')
    child:wait()
    -- 'end' (EIO) and 'exit' (the pidfd) come in either order
    local names = rec:names()
    assert.equal(4, #names)
    assert.equal('data', names[1])
    assert.equal('close', names[4])
    assert.truthy(rec:index('end') and rec:index('exit'))
    assert.equal('one\r\ntwo\r\n', rec:text('data'))
  end)

  it('interrupts sleep 30 in a shell with a Ctrl-C written to stdin', function()
    local child = cp.spawn('sh', { '-c', 'sleep 30; echo not-interrupted' }, { pty = true })
    local out, closed = '', false
    child.stdout:on('data', function(d) out = out .. d end)
    child:on('close', function() closed = true end)
    -- the shell waits for sleep before the ^C, so the signal reaches both
    poll_until(function() return in_session(child.pid, 'sleep') end, 5000, 'sleep running')
    child.stdin:write('\3')
    run_until(function() return closed end, 5000, "'close' after ^C")
    assert.equal('SIGINT', child.signalCode)
    assert.is_nil(out:find('not-interrupted', 1, true))
  end)

  it('ends the input with the terminal\'s end of file when stdin closes', function()
    local child = cp.spawn('wc', { '-c' }, { pty = true })
    local out = ''
    child.stdout:on('data', function(d) out = out .. d end)
    child.stdin:write('abc\n')
    child.stdin:close()
    assert.equal(0, child:wait())
    -- the echo, then wc's count of 'abc\n'
    assert.matches('^abc\r\n%s*4\r\n$', out)
  end)

  it('reaches the terminal\'s foreground job with kill(sig, {group = true})', function()
    -- an interactive shell runs its job in a group of its own and ignores SIGTERM
    local child = cp.spawn('sh', { '-i' }, { pty = true, env = childenv({ PS1 = '$ ' }) })
    child.stdout:on('data', function() end)
    child.stdin:write('sleep 30\n')
    local sl
    poll_until(function()
      sl = in_session(child.pid, 'sleep')
      return sl
    end, 5000, 'sleep running')
    assert.are_not.equal(child.pid, sl.pgrp)
    assert.is_true(child:kill('SIGTERM', { group = true }))
    poll_until(function() return not alive(sl.pid) end, 5000, 'sleep gone')
    assert.is_nil(child.exitCode)
    child.stdin:write('exit 7\n')
    assert.equal(7, child:wait())
  end)

  it('leaks no terminal fd: the child has 0-2 only, others none, ours are cloexec', function()
    local before = {}
    for _, fd in ipairs(fds()) do before[fd] = true end
    local child = cp.spawn('sleep', { '30' }, { pty = true })
    local mine = {}
    for _, fd in ipairs(fds()) do
      local target = lfs.symlinkattributes('/proc/self/fd/' .. fd, 'target')
      assert.is_nil(target:find('/dev/pts/', 1, true), 'the slave is open here')
      if not before[fd] and target == '/dev/ptmx' then mine[#mine + 1] = fd end
    end
    -- the master and its copy (stdin)
    assert.equal(2, #mine)
    for _, fd in ipairs(mine) do
      local fl = fd_flags(fd)
      assert.is_true(has_flag(fl, O_CLOEXEC), 'fd ' .. fd .. ' close-on-exec')
      assert.is_true(has_flag(fl, O_NONBLOCK), 'fd ' .. fd .. ' non-blocking')
    end
    local other = cp.spawn('sleep', { '30' }, { stdio = 'ignore' })
    poll_until(function()
      local st = procstat(other.pid)
      return st and st.comm == 'sleep' and procstat(child.pid).comm == 'sleep'
    end, 5000, 'both exec')
    for fd, target in pairs(fd_targets(other.pid)) do
      assert.is_nil(target:find('pt', 1, true), 'other child fd ' .. fd .. ' -> ' .. target)
    end
    -- (sleep's loader opens its libraries on fd 3 for a moment after the
    -- exec: a leaked fd stays, one of those goes)
    local t
    local ok = pcall(poll_until, function()
      t = fd_targets(child.pid)
      for fd in pairs(t) do if fd > 2 then return false end end
      return true
    end, 5000, 'the pty child with fds 0-2 only')
    assert.matches('^/dev/pts/%d+$', t[0])
    assert.equal(t[0], t[1])
    assert.equal(t[0], t[2])
    for fd in pairs(t) do assert.is_true(fd <= 2, 'pty child fd ' .. fd) end
    assert.is_true(ok)
    child:kill()
    other:kill()
    child:wait()
    other:wait()
  end)

  it('ends the output soon after the exit while a grandchild holds the terminal', function()
    local child = cp.spawn('sh', { '-c', 'trap "" HUP; sleep 30 & echo $!' }, { pty = true })
    local out = ''
    child.stdout:on('data', function(d) out = out .. d end)
    local closed = false
    child:on('close', function() closed = true end)
    finally(function()
      local pid = tonumber(out:match('%d+'))
      if pid then cp.kill(pid, 'SIGKILL') end
    end)
    run_until(function() return closed end, 3000, "'close'")
    assert.equal(0, child.exitCode)
    local pid = tonumber(out:match('^(%d+)\r\n$'))
    assert.is_true(alive(pid), 'the grandchild still holds the terminal')
  end)

  it('reports a command that does not exist as any failed spawn, leaking nothing', function()
    local child = cp.spawn('/nonexistent/cmd', { pty = true })
    local rec = recorder()
    rec:listen(child, { 'error', 'exit', 'close' })
    child:wait()
    assert.same({ 'error', 'close' }, rec:names())
    assert.equal('ENOENT', rec:get('error')[2].code)
    local r = cp.spawnSync('/nonexistent/cmd', { pty = true })
    assert.equal('ENOENT', r.error.code)
  end)

  it('closes stdin after the exit without an error', function()
    local child = cp.spawn('true', { pty = true })
    local errors = 0
    child.stdin:on('error', function() errors = errors + 1 end)
    child:on('exit', function() child.stdin:close() end)
    assert.equal(0, child:wait())
    run_until(function() return true end)
    cp.run('nowait')
    assert.equal(0, errors)
  end)

  describe('exec and execFile', function()
    it('return the terminal output as stdout, with colours from ls --color=auto', function()
      local dir = tmpname()
      os.remove(dir)
      assert(lfs.mkdir(dir))
      assert(lfs.mkdir(dir .. '/subdir'))
      finally(function() lfs.rmdir(dir .. '/subdir'); lfs.rmdir(dir) end)
      local got
      cp.exec('ls --color=auto', { pty = true, cwd = dir }, function(...) got = { ... } end)
      run_until(function() return got end, 5000, 'exec callback')
      assert.is_nil(got[1])
      assert.truthy(got[2]:find('\27[', 1, true), 'colour codes: ' .. ('%q'):format(got[2]))
      assert.truthy(got[2]:find('subdir', 1, true))
      assert.equal('', got[3])
      -- without a terminal ls prints no colour
      cp.exec('ls --color=auto', { cwd = dir }, function(...) got = { ... } end)
      got = nil
      run_until(function() return got end, 5000, 'exec callback')
      assert.equal('subdir\n', got[2])
    end)

    it('execFile sees a terminal; a failure keeps the output', function()
      local got
      cp.execFile('sh', { '-c', 'test -t 1 && echo tty >&2; exit 3' }, { pty = true },
                  function(...) got = { ... } end)
      run_until(function() return got end, 5000, 'execFile callback')
      assert.equal(3, got[1].code)
      assert.equal('tty\r\n', got[2])
      assert.equal('', got[3])
    end)
  end)

  describe('the Sync forms', function()
    it('spawnSync: stdout is the terminal, stderr empty', function()
      local r = cp.spawnSync('sh', { '-c', 'tty; echo err >&2; stty size' },
                             { pty = { cols = 90, rows = 33 } })
      assert.equal(0, r.status)
      assert.is_nil(r.error)
      assert.matches('^/dev/pts/%d+\r\nerr\r\n33 90\r\n$', r.stdout)
      assert.equal('', r.stderr)
    end)

    it('execSync writes input to the terminal, then its end of file', function()
      assert.matches('^hello\r\n%s*6\r\n$', cp.execSync('wc -c', { pty = true, input = 'hello\n' }))
      -- a partial line is ended first
      assert.equal('abcabc', cp.execSync('cat', { pty = true, input = 'abc' }))
      -- without input the child reads the end of file at once
      assert.equal('', cp.execSync('cat', { pty = true }))
    end)

    it('execFileSync sees a terminal; 1 MiB arrives whole', function()
      assert.equal('yes\r\n', cp.execFileSync('sh', { '-c', 'test -t 1 && echo yes' }, { pty = true }))
      local out = cp.execFileSync('sh', { '-c', 'printf %s "$(head -c 1048576 /dev/zero | tr "\\0" x)"' },
                                  { pty = true, maxBuffer = 2 * 1048576 })
      assert.equal(1048576, #out)
    end)

    it('end soon after the exit while a grandchild holds the terminal', function()
      local t0 = core().now()
      local out = cp.execSync('trap "" HUP; sleep 30 & echo $!', { pty = true })
      local pid = tonumber(out:match('^(%d+)\r\n$'))
      finally(function() if pid then cp.kill(pid, 'SIGKILL') end end)
      assert.is_true(core().now() - t0 < 3000)
      assert.is_true(alive(pid), 'the grandchild still holds the terminal')
    end)
  end)

  describe('running out of terminals', function()
    it('is an error event (EMFILE: no fd left for the master)', function()
      local out, status, err = luaproc([[
        local cp = require 'childproc'
        local keep = {}
        while true do
          local f = io.open('/dev/null')
          if not f then break end
          keep[#keep + 1] = f
        end
        local child = cp.spawn('true', { pty = true })
        child:on('error', function(e) print(e.code, e.errno, e.syscall) end)
        child:on('close', function(code) print('close', code) end)
        cp.run()
        print(cp.spawnSync('true', { pty = true }).error.code)
      ]], { pre = 'ulimit -n 64;' })
      assert.equal(0, status, err)
      assert.equal('EMFILE\t-24\tposix_openpt\nclose\t-24\nEMFILE\n', out)
    end)

    it('is an error event (ENOSPC from a devpts with room for one)', function()
      local _, ok = shell('unshare -m sh -c "mount -t devpts -o newinstance,ptmxmode=0666,max=1 devpts /dev/pts" && echo ok')
      if ok ~= 0 then
        pending('no private mount namespace here (unshare -m needs CAP_SYS_ADMIN)')
        return
      end
      local src = writefile(tmpname('.lua'), [[
        local cp = require 'childproc'
        local a = cp.spawn('sleep', { '0.5' }, { pty = true })
        local b = cp.spawn('true', { pty = true })
        b:on('error', function(e) print(e.code, e.syscall, e.path) end)
        print(cp.spawnSync('true', { pty = true }).error.code)
        a:wait()
      ]])
      finally(function() os.remove(src) end)
      local out, status, err = shell('cd ' .. shq(ROOT) .. ' && timeout 20 unshare -m sh -c ' ..
        shq('mount -t devpts -o newinstance,ptmxmode=0666,max=1 devpts /dev/pts && ' ..
            'LUA_CPATH=' .. shq(CPATH) .. ' exec ' .. LUA .. ' ' .. shq(src)))
      assert.equal(0, status, err)
      assert.equal('ENOSPC\nENOSPC\tposix_openpt\t/dev/ptmx\n', out)
    end)
  end)

  describe('bad input, refused before anything starts', function()
    badargs {
      { 'pty with stdio', function() cp.spawn('true', { pty = true, stdio = 'pipe' }) end,
        'pty_spec.lua:', "bad argument #2 to 'spawn' (option 'stdio' cannot be given with 'pty')" },
      { 'pty a string', function() cp.spawn('true', { pty = 'yes' }) end,
        'pty_spec.lua:', "bad argument #2 to 'spawn' (option 'pty': boolean or table expected, got string)" },
      { 'pty a number', function() cp.exec('true', { pty = 1 }) end,
        'pty_spec.lua:', "bad argument #2 to 'exec' (option 'pty': boolean or table expected, got number)" },
      { 'cols 0', function() cp.execFile('true', { pty = { cols = 0 } }) end,
        'pty_spec.lua:', "bad argument #2 to 'execFile' (option 'pty.cols': value out of range)" },
      { 'rows 65536', function() cp.spawnSync('true', { pty = { rows = 65536 } }) end,
        'pty_spec.lua:', "bad argument #2 to 'spawnSync' (option 'pty.rows': value out of range)" },
      { 'cols not an integer', function() cp.execSync('true', { pty = { cols = 80.5 } }) end,
        'pty_spec.lua:', "bad argument #2 to 'execSync' (option 'pty.cols': number has no integer representation)" },
      { 'rows a string', function() cp.execFileSync('true', {}, { pty = { rows = '24' } }) end,
        'pty_spec.lua:', "bad argument #3 to 'execFileSync' (option 'pty.rows': integer expected, got string)" },
      { 'term a table', function() cp.spawn('true', { pty = { term = {} } }) end,
        'pty_spec.lua:', "bad argument #2 to 'spawn' (option 'pty.term': string expected, got table)" },
      { 'an unknown pty key', function() cp.spawn('true', { pty = { colums = 80 } }) end,
        'pty_spec.lua:', "bad argument #2 to 'spawn' (option 'pty': unknown key 'colums')" },
      { 'Sync pty with stdio', function() cp.spawnSync('true', { pty = true, stdio = 'inherit' }) end,
        'pty_spec.lua:', "bad argument #2 to 'spawnSync' (option 'stdio' cannot be given with 'pty')" },
    }

    it('takes pty = false as no terminal', function()
      local r = collect('sh', { '-c', 'test -t 1 || echo no-tty' }, { pty = false })
      assert.equal('no-tty\n', r.stdout)
      assert.is_not_nil(r.child.stderr)
    end)
  end)
end)
