-- Workers through a launcher (docs/launcher.md): fork over a real OpenSSH
-- server on 127.0.0.1 (two of them, standing for two hosts, started once
-- for this file by spec/sshd.lua), and over launchers that are not remote
-- (env, nice, sh).
local cp = require 'childproc'
local sshd = require 'sshd'
local socket = require 'socket'

local FIX = ROOT .. '/spec/fixtures/'
local WORKER = FIX .. 'launcher_worker.lua'
local ENV_CPATH = 'LUA_CPATH=' .. CPATH   -- (CPATH: spec/helper.lua)

local A, B, why           -- the two servers, or why there are none

local function need_sshd()
  if not A then pending('sshd cannot run here: ' .. tostring(why)) end
  return A ~= nil
end

local function fork(launcher, args, opts)
  opts = opts or {}
  opts.launcher = launcher
  return cp.fork(opts.module or WORKER, args or {}, opts)
end

local function inbox(child)
  local box = {}
  child:on('message', function(m) box[#box + 1] = m end)
  return box
end

local function recv(box, n, ms)
  run_until(function() return #box >= n end, ms or 10000, n .. ' messages')
end

local function roundtrip(child, box, v)
  local n = #box
  child:send(v)
  recv(box, n + 1)
  return box[n + 1]
end

local function info(child, box)
  return roundtrip(child, box, { _op = 'info' })
end

local function finish(child)
  if child.connected then child:disconnect() end
  return wait_close(child)
end

-- the events of a child that fails to start, and its error
local function failed(child, ms)
  local rec = recorder()
  rec:listen(child, { 'error', 'exit', 'disconnect', 'message', 'close' })
  run_until(function() return rec:get('close') end, ms or 10000, "'close'")
  return rec, rec:get('error') and rec:get('error')[2]
end

-- an ssh launcher of server srv with `opts` before the host
local function ssh_with(srv, opts, port)
  local t = { 'ssh' }
  for _, a in ipairs(srv.args()) do t[#t + 1] = a end
  for i, a in ipairs(t) do if a == '-p' then t[i + 1] = tostring(port or srv.port) end end
  for _, a in ipairs(opts or {}) do t[#t + 1] = a end
  t[#t + 1] = srv.user .. '@127.0.0.1'
  return t
end


describe('fork through a launcher', function()
  lazy_setup(function()
    A, why = sshd.start(ROOT .. '/build/' .. LUA)
    if A then B, why = sshd.start(ROOT .. '/build/' .. LUA) end
    if not B and A then A.stop(); A = nil end
  end)
  lazy_teardown(function()
    if A then A.stop() end
    if B then B.stop() end
  end)
  leakcheck()

  describe('over ssh', function()
    it("carries every 'lua' value type both ways", function()
      if not need_sshd() then return end
      local child = fork(A.launcher())
      local box = inbox(child)
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      local bytes = table.concat(all):rep(8) .. '\0'
      -- (the largest integers where there are 64-bit ones, else 2^53)
      local big = INTEGERS and math.maxinteger or 2 ^ 53
      local small = INTEGERS and math.mininteger or -2 ^ 53
      for _, v in ipairs({ true, false, 0, -1, big, small, '', 'text', bytes }) do
        local back = roundtrip(child, box, v)
        assert.equal(v, back)
        assert.equal(mtype(v), mtype(back))
      end
      for _, v in ipairs({ 3.0, -0.0, 1 / 0, -1 / 0, 0.1, 5e-324 }) do
        local back = roundtrip(child, box, v)
        if INTEGERS then assert.equal('float', math.type(back)) end
        assert.equal(string.pack('<d', v), string.pack('<d', back))
      end
      assert.is_true(roundtrip(child, box, 0 / 0) ~= roundtrip(child, box, 0 / 0))
      local long = ('0123456789abcdef'):rep(256 * 1024)   -- 4 MiB
      assert.is_true(roundtrip(child, box, long) == long)
      local shared = { 'shared' }
      local t = { 1, 2, x = { y = { z = 'deep' } }, [1.5] = 'f', [true] = 'b',
                  a = shared, b = shared }
      t.self = t
      local back = roundtrip(child, box, t)
      assert.same({ 1, 2 }, { back[1], back[2] })
      assert.equal('deep', back.x.y.z)
      assert.equal('f', back[1.5])
      assert.equal('b', back[true])
      assert.equal(back, back.self)
      assert.equal(back.a, back.b)
      assert.same({ 0, nil }, { finish(child) })
    end)

    it("carries 'json' values both ways", function()
      if not need_sshd() then return end
      local child = fork(A.launcher(), {}, { serialization = 'json' })
      local box = inbox(child)
      local null = cp.json_null
      local v = { s = 'text "quoted" \\ / \n\t é', i = 42, neg = -7, f = 0.5,
                  yes = true, no = false, arr = { 1, null, 'two', { x = 'y' } } }
      local back = roundtrip(child, box, v)
      assert.same(v, back)
      assert.equal('plain', roundtrip(child, box, 'plain'))
      assert.same({ 0, nil }, { finish(child) })
    end)

    it('keeps 1,000 messages in order both ways', function()
      if not need_sshd() then return end
      local child = fork(A.launcher())
      local box = inbox(child)
      for i = 1, 1000 do child:send(i) end
      recv(box, 1000)
      for i = 1, 1000 do assert.equal(i, box[i]) end
      assert.same({ 0, nil }, { finish(child) })
    end)

    it("passes every argument through the remote shell intact, and 'cwd'", function()
      if not need_sshd() then return end
      local args = { '', 'a b', "it's", '"dq"', '$HOME', '`id`', '$(id)', 'x;y|z&',
                     'new\nline', '*', '\\', '-e', "'" }
      local child = fork(A.launcher(), args, { cwd = '/tmp' })
      local box = inbox(child)
      local i = info(child, box)
      assert.same(args, i.args)
      assert.equal('/tmp', i.cwd)
      assert.same({ 0, nil }, { finish(child) })
    end)

    it("forwards the worker's stdout without breaking the channel, and its stderr", function()
      if not need_sshd() then return end
      local child = fork(A.launcher(), {}, { silent = true })
      local box = inbox(child)
      local out, err = {}, {}
      child.stdout:on('data', function(d) out[#out + 1] = d end)
      child.stderr:on('data', function(d) err[#err + 1] = d end)
      assert.equal('printed', roundtrip(child, box, { _op = 'print', text = 'hello "world" $x' }))
      -- the channel still works after the prints
      for k = 1, 50 do child:send(k) end
      recv(box, 51)
      for k = 1, 50 do assert.equal(k, box[k + 1]) end
      assert.same({ 0, nil }, { finish(child) })
      assert.equal('hello "world" $x\nno newline', table.concat(out))
      assert.equal('to stderr\n', table.concat(err))
      assert.is_nil(child.stdin)
    end)

    it('spreads workers over two hosts (the pool example)', function()
      if not need_sshd() then return end
      local conf = os.tmpname()
      writefile(conf, A.config_entry('hostA') .. B.config_entry('hostB'))
      local alog, blog = #A.log(), #B.log()
      local env = cp.process.env
      env.LUA_CPATH = CPATH
      env.LUA_CPATH_5_4 = nil
      env.COMPUTE_SSH = 'ssh -F ' .. conf .. ' -T'
      -- port 0, 4 workers, stop after 7 requests, n 1000, two hosts
      local server = cp.spawn(LUA, { 'examples/compute_pool.lua', '0', '4', '7',
        '1000', 'hostA,hostB' }, { env = env, stdio = { 'ignore', 'pipe', 'inherit' } })
      local text = ''
      server.stdout:on('data', function(d) text = text .. d end)
      run_until(function() return text:find('\n') end, 10000, 'the listening line')
      local port = tonumber(text:match('127%.0%.0%.1:(%d+)'))
      assert(port, text)
      local function get(path)
        local c = assert(socket.connect('127.0.0.1', port))
        c:settimeout(10)
        c:send(('GET %s HTTP/1.1\r\nHost: x\r\n\r\n'):format(path))
        local body = c:receive('*a')
        c:close()
        return body:match('\r\n\r\n(.*)$')
      end
      for k = 1, 6 do
        assert.equal(('Sum is %d'):format(math.floor((1000 + k) * (999 + k) / 2)),
          get('/compute?n=' .. (1000 + k)))
      end
      local stats = get('/stats')
      assert.truthy(stats:find('host hostA 2', 1, true), stats)
      assert.truthy(stats:find('host hostB 2', 1, true), stats)
      assert.same({ 0, nil }, { wait_close(server, 15000) })
      os.remove(conf)
      -- each server let two workers in
      local function logins(log, from)
        local n = 0
        for _ in log:sub(from + 1):gmatch('Accepted publickey') do n = n + 1 end
        return n
      end
      assert.equal(2, logins(A.log(), alog))
      assert.equal(2, logins(B.log(), blog))
    end)
  end)

  describe('a broken connection', function()
    it("killing the ssh client mid-stream is 'disconnect' and 'exit' here, and the remote worker exits", function()
      if not need_sshd() then return end
      local child = fork(A.launcher())
      local box = inbox(child)
      local rec = recorder()
      rec:listen(child, { 'disconnect', 'exit', 'close', 'error' })
      local remote = info(child, box).pid
      assert.is_true(alive(remote))
      child:send({ _op = 'stream' })
      recv(box, 200)
      assert.is_true(child:kill('SIGKILL'))
      run_until(function() return rec:get('close') end, 10000, "'close'")
      local names = rec:names()
      assert.equal(3, #names)
      assert.equal('close', names[3])
      assert.truthy(rec:get('disconnect'))
      assert.same({ 'exit', nil, 'SIGKILL' }, rec:get('exit'))
      assert.is_nil(rec:get('error'))
      -- the stream came in order up to the break
      for k = 2, #box do assert.equal(k - 1, box[k]) end
      poll_until(function() return not alive(remote) end, 10000, 'the remote worker to exit')
    end)

    it('kill() signals the launcher, and the remote worker then exits too', function()
      if not need_sshd() then return end
      local child = fork(A.launcher())
      local box = inbox(child)
      local remote = info(child, box).pid
      assert.is_true(child:kill())
      -- ssh takes SIGTERM: it closes the connection and exits with 255
      assert.same({ 255, nil }, { wait_close(child) })
      assert.is_true(child.killed)
      poll_until(function() return not alive(remote) end, 10000, 'the remote worker to exit')
    end)

    it('disconnect() here ends the remote worker, which exits with 0', function()
      if not need_sshd() then return end
      local child = fork(A.launcher())
      local box = inbox(child)
      local remote = info(child, box).pid
      child:disconnect()
      assert.same({ 0, nil }, { wait_close(child) })
      poll_until(function() return not alive(remote) end, 10000, 'the remote worker to exit')
    end)
  end)

  describe('a launcher that fails', function()
    it("ssh's status 255 (connection refused) is an 'error' that says so, then 'close'", function()
      if not need_sshd() then return end
      local rec, err = failed(fork(ssh_with(A, {}, sshd.free_port())))
      assert.same({ 'error', 'exit', 'close' }, rec:names())
      assert.equal('ERR_LAUNCHER_FAILED', err.code)
      assert.truthy(err.message:find("launcher 'ssh' exited with status 255", 1, true), err.message)
      assert.truthy(err.message:find('Connection refused', 1, true), err.message)
      assert.equal(255, err.status)
      assert.same({ 'exit', 255, nil }, rec:get('exit'))
    end)

    it("a host that cannot be resolved is an 'error' that says so", function()
      if not need_sshd() then return end
      -- an IPv4 literal asked for as IPv6: resolving fails with no DNS query
      local rec, err = failed(fork(ssh_with(A, { '-o', 'AddressFamily=inet6' })))
      assert.same({ 'error', 'exit', 'close' }, rec:names())
      assert.equal('ERR_LAUNCHER_FAILED', err.code)
      assert.truthy(err.message:find('Could not resolve hostname', 1, true), err.message)
    end)

    it("a remote side that cannot require 'childproc' is an 'error' that says so", function()
      if not need_sshd() then return end
      local rec, err = failed(fork(A.launcher('env', "'LUA_CPATH=/nonexistent/?.so'")))
      assert.same({ 'error', 'exit', 'close' }, rec:names())
      assert.equal('ERR_LAUNCHER_NO_CHILDPROC', err.code)
      assert.truthy(err.message:find("the remote side cannot require 'childproc'", 1, true), err.message)
      assert.truthy(err.message:find('/nonexistent/?.so', 1, true), err.message)
    end)

    it("a remote side of another launcher protocol is an 'error' that says so", function()
      if not need_sshd() then return end
      local rec, err = failed(fork(A.launcher(), {}, { execPath = FIX .. 'launcher_future.sh' }))
      assert.same({ 'error', 'exit', 'close' }, rec:names())
      assert.equal('ERR_LAUNCHER_VERSION', err.code)
      assert.truthy(err.message:find('the remote childproc 9.9.9 speaks launcher protocol 2', 1, true),
        err.message)
    end)

    it("no announcement within 'timeout' is an 'error', never a hang", function()
      if not need_sshd() then return end
      local t0 = core().now()
      local rec, err = failed(fork(A.launcher(), {},
        { execPath = FIX .. 'launcher_mute.sh', timeout = 300 }))
      assert.same({ 'error', 'exit', 'close' }, rec:names())
      assert.equal('ERR_LAUNCHER_TIMEOUT', err.code)
      assert.truthy(err.message:find('no announcement from the remote side within 300 ms', 1, true),
        err.message)
      assert.is_true(core().now() - t0 < 5000)
    end)

    it("a launcher that is not there is a spawn 'error' (ENOENT), then 'close'", function()
      local rec, err = failed(fork({ '/nonexistent/ssh', 'host' }))
      assert.same({ 'error', 'close' }, rec:names())
      assert.equal('ENOENT', err.code)
    end)
  end)

  describe('launchers that are not remote', function()
    local env = childenv({ LUA_CPATH = CPATH })

    it('env: values, arguments and disconnect', function()
      local args = { 'a b', "it's", '$HOME' }
      local child = fork({ 'env', ENV_CPATH }, args, { env = env })
      local box = inbox(child)
      assert.same(args, info(child, box).args)
      local small = INTEGERS and math.mininteger or -2 ^ 53
      assert.equal(small, roundtrip(child, box, small))
      assert.same({ 0, nil }, { finish(child) })
    end)

    it('nice -n 5: the worker runs niced', function()
      local child = fork({ 'nice', '-n', '5' }, {}, { env = env })
      local box = inbox(child)
      local rest = readfile('/proc/self/stat'):match('%) (.*)$')
      local mine = tonumber(rest:match(('%S+ '):rep(16) .. '(%S+)'))  -- field 19
      assert.equal(mine + 5, info(child, box).nice)
      assert.same({ 0, nil }, { finish(child) })
    end)

    it([[sh -c 'exec "$@"' sh passes argv as is]], function()
      local args = { 'a b', '"q"', '$x' }
      local child = fork({ 'sh', '-c', 'exec "$@"', 'sh' }, args, { env = env })
      local box = inbox(child)
      assert.same(args, info(child, box).args)
      assert.same({ 0, nil }, { finish(child) })
    end)

    it('shell = true quotes the command for a launcher that takes one string', function()
      local args = { 'a b', "it's", '$HOME', '`id`' }
      local child = fork({ 'sh', '-c', shell = true }, args, { env = env })
      local box = inbox(child)
      assert.same(args, info(child, box).args)
      assert.same({ 0, nil }, { finish(child) })
    end)

    it("'json': the worker's stdout keeps any bytes, cut anywhere", function()
      local child = fork({ 'env', ENV_CPATH }, {}, { env = env, silent = true, serialization = 'json' })
      local box = inbox(child)
      local out = {}
      child.stdout:on('data', function(d) out[#out + 1] = d end)
      assert.equal('written', roundtrip(child, box, { _op = 'bytes' }))
      assert.same({ 0, nil }, { finish(child) })
      local text = '\255\0\195\169 \226\130 ' .. ('\128'):rep(5000)
      assert.is_true(table.concat(out) == text)
    end)

    it("a remote childproc without 'childproc.internal' (older) is an 'error' that says so", function()
      local rec, err = failed(fork({ 'env', 'LUA_PATH=' .. FIX .. 'old_childproc/?.lua',
                                     'LUA_CPATH=/nonexistent/?.so' }, {}, { env = env }))
      assert.same({ 'error', 'exit', 'close' }, rec:names())
      assert.equal('ERR_LAUNCHER_VERSION', err.code)
      assert.truthy(err.message:find("the remote childproc 0.0.9 cannot be a launcher's worker", 1, true),
        err.message)
    end)

    it("disconnect() before the start-up line: 'disconnect', no error later", function()
      local child = fork({ 'env', ENV_CPATH }, {}, { env = env, timeout = 200 })
      local rec = recorder()
      rec:listen(child, { 'error', 'disconnect', 'exit', 'close' })
      child:disconnect()
      run_until(function() return rec:get('close') end, 10000, "'close'")
      local later = false
      cp.setTimeout(function() later = true end, 300)   -- past the start-up timeout
      run_until(function() return later end, 5000, '300 ms')
      assert.same({ 'disconnect', 'exit', 'close' }, rec:names())
      assert.same({ 'exit', 0, nil }, rec:get('exit'))
    end)

    it("the worker's stdout reaches this process's stdout when inherited", function()
      local out, status = luaproc(([[
        local cp = require 'childproc'
        local c = cp.fork(%q, {}, { launcher = { 'env' } })
        c:on('message', function(m) if m == 'printed' then c:disconnect() end end)
        c:send({ _op = 'print', text = 'from the worker' })
        cp.run()
        print('parent done')
      ]]):format(WORKER))
      assert.equal(0, status)
      assert.equal('from the worker\nno newlineparent done\n', out)
    end)

    it('unref() lets the loop end while the worker runs (stderr inherited)', function()
      local out, status, err = luaproc(([[
        local cp = require 'childproc'
        local c = cp.fork(%q, {}, { launcher = { 'env' } })
        c:on('message', function(m) io.stderr:write('worker ', m.pid, '\n'); c:unref() end)
        c:send({ _op = 'info' })
        cp.run()
        print('returned')
      ]]):format(WORKER), { timeout = 10 })
      assert.equal(0, status, err)
      assert.equal('returned\n', out)
      -- the worker then sees its channel end, and exits
      local pid = tonumber(err:match('worker (%d+)'))
      poll_until(function() return not alive(pid) end, 5000, 'the worker to exit')
    end)

    it('a start-up that takes too long is killed with killSignal', function()
      local rec, err = failed(fork({ 'sh', '-c', 'exec sleep 30' }, {},
        { timeout = 100, killSignal = 'SIGKILL' }))
      assert.same({ 'error', 'exit', 'close' }, rec:names())
      assert.equal('ERR_LAUNCHER_TIMEOUT', err.code)
      assert.same({ 'exit', nil, 'SIGKILL' }, rec:get('exit'))
    end)
  end)

  describe('bad arguments', function()
    badargs {
      { 'a launcher that is a string', function()
          cp.fork(WORKER, {}, { launcher = 'ssh host' })
        end, "bad argument #3 to 'fork' (option 'launcher': table expected, got string)" },
      { 'an empty launcher', function()
          cp.fork(WORKER, {}, { launcher = {} })
        end, "option 'launcher'" },
      { 'a launcher holding a table', function()
          cp.fork(WORKER, {}, { launcher = { 'ssh', {} } })
        end, 'launcher[2]' },
      { "a launcher's shell that is not a boolean", function()
          cp.fork(WORKER, {}, { launcher = { 'ssh', shell = 'yes' } })
        end, "'shell'" },
      { 'a stdio array with a launcher', function()
          cp.fork(WORKER, {}, { launcher = { 'ssh', 'h' }, stdio = { 'pipe', 'pipe', 'pipe', 'ipc' } })
        end, "option 'stdio'" },
      { 'a negative timeout with a launcher', function()
          cp.fork(WORKER, {}, { launcher = { 'ssh', 'h' }, timeout = -1 })
        end, "option 'timeout'" },
    }
  end)
end)
