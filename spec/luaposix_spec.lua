-- luaposix beside childproc (lua-posix is packaged for 5.1-5.3; LuaJIT
-- loads 5.1's): its fds are plain integers that work as stdio entries
-- and with cp.watch; its signal handlers stay the host's; a host that
-- reaps children itself (wait(-1)) does not make the loop hang.
local cp = require 'childproc'
local ok_posix, unistd = pcall(require, 'posix.unistd')
local it = only_if(ok_posix, 'lua-posix is not packaged for ' .. LUA)

-- the signals this process catches (SigCgt of /proc/self/status)
local function caught()
  return procstatus('SigCgt')
end

describe('luaposix', function()
  leakcheck()

  it('a posix.unistd.pipe() end is a stdio entry and a cp.watch fd', function()
    local r, w = unistd.pipe()
    local c = cp.spawn('sh', { '-c', 'echo through-posix' }, { stdio = { 'ignore', w, 'ignore' } })
    unistd.close(w)
    local got, seen = {}, false
    local wt = cp.watch(r, 'r', function(_, self)
      seen = true
      local d = unistd.read(r, 4096)
      if d and #d > 0 then got[#got + 1] = d else self:stop() end
    end)
    run_until(function() return not wt:isActive() end, 5000, 'EOF on the posix pipe')
    c:wait()
    unistd.close(r)
    assert.is_true(seen)
    assert.equal('through-posix\n', table.concat(got))
  end)

  it('a posix.fcntl.open() fd is a stdio entry', function()
    local fcntl = require 'posix.fcntl'
    local path = tmpname()
    local fd = assert(fcntl.open(path, fcntl.O_WRONLY + fcntl.O_CREAT + fcntl.O_TRUNC, 384))
    local c = cp.spawn('sh', { '-c', 'echo into-the-file' }, { stdio = { 'ignore', fd, 'ignore' } })
    unistd.close(fd)
    assert.same({ n = 2, 0, nil }, table.pack(c:wait()))
    assert.equal('into-the-file\n', readfile(path))
    os.remove(path)
  end)

  it('a posix.sys.socket socketpair end is a stdio entry and a cp.watch fd', function()
    local socket = require 'posix.sys.socket'
    local a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM, 0)
    local c = cp.spawn('sh', { '-c', 'read x; echo "got $x"' }, { stdio = { b, b, 'ignore' } })
    unistd.close(b)
    socket.send(a, 'ping\n')
    local got = ''
    local wt = cp.watch(a, 'r', function(_, self)
      local d = socket.recv(a, 4096)
      if d and #d > 0 then got = got .. d else self:stop() end
    end)
    run_until(function() return not wt:isActive() end, 5000, 'EOF on the socket')
    c:wait()
    unistd.close(a)
    assert.equal('got ping\n', got)
  end)

  it("keeps the host's posix.signal handlers (SIGCHLD too), which keep working", function()
    local signal = require 'posix.signal'
    local chld, usr1 = 0, 0
    local old_chld = signal.signal(signal.SIGCHLD, function() chld = chld + 1 end)
    local old_usr1 = signal.signal(signal.SIGUSR1, function() usr1 = usr1 + 1 end)
    finally(function()
      signal.signal(signal.SIGCHLD, old_chld or signal.SIG_DFL)
      signal.signal(signal.SIGUSR1, old_usr1 or signal.SIG_DFL)
    end)
    local before = caught()
    for _ = 1, 3 do
      assert.same({ n = 2, 0, nil }, table.pack(cp.spawn('true'):wait()))
    end
    local r = collect('sh', { '-c', 'echo ok' })
    assert.equal('ok\n', r.stdout)
    assert.equal(before, caught(), 'the signal dispositions changed')
    signal.raise(signal.SIGUSR1)
    poll_until(function() return usr1 == 1 and chld >= 1 end, 5000, "the host's handlers")
  end)

  it("children the host reaps with posix.sys.wait.wait(-1) still reach 'exit' (nil, nil) and 'close'", function()
    local wait = require 'posix.sys.wait'
    local rec = recorder()
    local c = cp.spawn('sh', { '-c', 'exit 3' })
    rec:listen(c, { 'exit', 'close' })
    local pid = wait.wait(-1)                  -- the host takes it first
    assert.equal(c.pid, pid)
    run_until(function() return rec:index('close') end, 5000, "'close'")
    assert.same({ { 'exit', nil, nil }, { 'close', nil, nil } }, rec.events)
    assert.is_nil(c.exitCode)
  end)
end)
