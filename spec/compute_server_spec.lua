-- The article's compute server (examples/compute_server.lua) and its pool
-- variant (examples/compute_pool.lua), run as subprocesses and queried
-- over HTTP with non-blocking luasocket clients driven by cp.watch.
local cp = require 'childproc'
local socket = require 'socket'
local lfs = require 'lfs'

local function sum_to(n) return math.floor(n * (n - 1) / 2) end

local closed = setmetatable({}, { __mode = 'k' })   -- server -> {code, sig}

-- Run the loop until server has closed; returns its code, signal.
local function wait_server(server, ms)
  run_until(function() return closed[server] end, ms or 10000, "the server's 'close'")
  return closed[server][1], closed[server][2]
end

-- Start an example server; returns the ChildProcess and its port.
local function start(script, args)
  local env = cp.process.env
  env.LUA_CPATH = CPATH
  env.LUA_CPATH_5_4 = nil
  local argv = { 'examples/' .. script }
  for _, a in ipairs(args) do argv[#argv + 1] = tostring(a) end
  local server = cp.spawn(LUA, argv,
    { env = env, stdio = { 'ignore', 'pipe', 'inherit' } })
  local out = ''
  server.stdout:on('data', function(d) out = out .. d end)
  -- 'close' may come while the spec waits for something else: keep it
  server:on('close', function(code, sig) closed[server] = { code, sig } end)
  run_until(function() return out:find('\n') end, 10000, 'the listening line')
  local port = tonumber(out:match('^listening on 127%.0%.0%.1:(%d+)'))
  assert(port, 'no port in: ' .. out)
  return server, port
end

-- A GET on 127.0.0.1:port; callback(status, body, ms).  Non-blocking:
-- connect, write and read are driven by cp.watch.
local function get(port, path, callback)
  local c = assert(socket.tcp4())
  c:settimeout(0)
  local t0 = socket.gettime()
  local buf = {}
  c:connect('127.0.0.1', port)
  cp.watch(c, 'w', function(_, w)
    w:stop()
    assert(c:send(('GET %s HTTP/1.1\r\nHost: x\r\n\r\n'):format(path)))
    cp.watch(c, 'r', function(_, r)
      local data, err, partial = c:receive(8192)
      buf[#buf + 1] = data or partial
      if err and err ~= 'timeout' then
        r:stop()
        c:close()
        local text = table.concat(buf)
        local status, body = text:match('^HTTP/1%.1 (%d+).-\r\n\r\n(.*)$')
        callback(tonumber(status), body or text, (socket.gettime() - t0) * 1000)
      end
    end)
  end)
end

-- the live (non-zombie) processes whose parent is pid
local function children_of(pid)
  local out = {}
  for name in lfs.dir('/proc') do
    if name:match('^%d+$') then
      local st = procstat(name)
      if st and st.ppid == pid and st.state ~= 'Z' then out[#out + 1] = st.pid end
    end
  end
  return out
end

local function ncores()
  local n = 0
  for line in io.lines('/proc/cpuinfo') do
    if line:match('^processor%s*:') then n = n + 1 end
  end
  return math.max(n, 1)
end

-- Send one /compute?n=... per entry of ns, all at once, and `/` again
-- and again (10 ms apart) until they are all answered, sampling the
-- server's children each time.  Returns what happened.
local function load(port, server_pid, ns)
  local r = { sums = {}, oks = {}, seen = {}, max_children = 0 }
  local pending = #ns
  for i, n in ipairs(ns) do
    get(port, '/compute?n=' .. n, function(status, body)
      r.sums[i] = { status, body }
      pending = pending - 1
    end)
  end
  local function sample()
    local kids = children_of(server_pid)
    for _, pid in ipairs(kids) do r.seen[pid] = true end
    if #kids > r.max_children then r.max_children = #kids end
  end
  local inflight = false
  local function ping()
    if pending == 0 then return end
    sample()
    inflight = true
    get(port, '/', function(status, body, ms)
      inflight = false
      -- only what was answered while computations ran counts
      if pending > 0 then
        r.oks[#r.oks + 1] = { status, body, ms }
        -- unref'd: a ping still armed when the spec ends holds nothing
        cp.setTimeout(ping, 10):unref()
      end
    end)
  end
  ping()
  -- the last `/` too: a request left in flight would outlive the spec
  run_until(function() return pending == 0 and not inflight end, 60000,
    'the /compute answers')
  return r
end

local function check_sums(r, ns)
  for i, n in ipairs(ns) do
    assert.same({ 200, ('Sum is %d'):format(sum_to(n)) }, r.sums[i])
  end
end

local function check_responsive(r)
  assert.is_true(#r.oks >= 3,
    'expected several / answers while computing, got ' .. #r.oks)
  for _, ok in ipairs(r.oks) do
    assert.same({ 200, 'Ok' }, { ok[1], ok[2] })
    assert.is_true(ok[3] < 100, ('/ took %.1f ms while computing'):format(ok[3]))
  end
end

local function pids(set)
  local t = {}
  for pid in pairs(set) do t[#t + 1] = pid end
  return t
end

-- after the server is gone, so must be every child it had
local function none_alive(list)
  poll_until(function()
    for _, pid in ipairs(list) do if alive(pid) then return false end end
    return true
  end, 10000, 'the server\'s children to be gone')
end

local function get_sync(port, path)
  local got
  get(port, path, function(...) got = table.pack(...) end)
  run_until(function() return got end, 10000, path)
  return got[1], got[2]
end

describe('examples/compute_server.lua', function()
  leakcheck()

  it('answers / at once while /compute children run, with every sum right #timing', function()
    local server, port = start('compute_server.lua', { 0 })
    local ns = { 40000001, 40000002, 40000003, 40000004 }
    local r = load(port, server.pid, ns)
    check_sums(r, ns)
    check_responsive(r)
    local seen = pids(r.seen)
    assert.is_true(#seen >= 1, 'no compute child seen')
    -- one child per request, none kept after its answer
    poll_until(function() return #children_of(server.pid) == 0 end, 10000,
      'the compute children to exit')
    local status, body = get_sync(port, '/stats')
    assert.equal(200, status)
    assert.equal('0', body:match('children (%d+)'))
    server:kill()
    assert.same({ nil, 'SIGTERM' }, { wait_server(server) })
    none_alive(seen)
    assert.same({}, children_of(server.pid))
  end)

  it('stops by itself after max_requests, leaving no child behind', function()
    local server, port = start('compute_server.lua', { 0, 3 })
    local answers = {}
    for i, path in ipairs({ '/compute?n=1000', '/compute?n=2000', '/' }) do
      get(port, path, function(status, body) answers[i] = { status, body } end)
    end
    -- the answers may be read after the server's exit is seen
    run_until(function() return answers[1] and answers[2] and answers[3] end,
      20000, 'three answers')
    local code = wait_server(server, 20000)
    assert.equal(0, code)
    assert.same({ { 200, 'Sum is 499500' }, { 200, 'Sum is 1999000' },
                  { 200, 'Ok' } }, answers)
    assert.same({}, children_of(server.pid))
  end)

  it('answers each /compute when its own child is done, not after later ones #timing', function()
    -- the first request's child is shorter than the second's; the second
    -- comes while the first runs.  Nested waits (child:wait() in a plain
    -- callback) would answer the first only after the second.
    local server, port = start('compute_server.lua', { 0, 2 })
    local order = {}
    get(port, '/compute?n=30000000', function(status, body) order[#order + 1] = { 'first', status, body } end)
    poll_until(function() return #children_of(server.pid) == 1 end, 10000, 'the first child')
    get(port, '/compute?n=90000000', function(status, body) order[#order + 1] = { 'second', status, body } end)
    poll_until(function() return #order > 0 or #children_of(server.pid) == 2 end, 10000, 'the second child')
    run_until(function() return #order == 2 end, 60000, 'both answers')
    assert.same({ { 'first', 200, ('Sum is %d'):format(sum_to(30000000)) },
                  { 'second', 200, ('Sum is %d'):format(sum_to(90000000)) } }, order)
    assert.equal(0, wait_server(server, 20000))
  end)

  it('answers 404 to other paths', function()
    local server, port = start('compute_server.lua', { 0, 1 })
    assert.same({ 404, 'Not found' }, { get_sync(port, '/nope') })
    assert.equal(0, wait_server(server))
  end)
end)

describe('examples/compute_pool.lua', function()
  leakcheck()

  it('serves 8 concurrent /compute requests with at most N children #timing', function()
    local N = 3
    local server, port = start('compute_pool.lua', { 0, N })
    local ns = {}
    for i = 1, 8 do ns[i] = 20000000 + i end
    local r = load(port, server.pid, ns)
    check_sums(r, ns)
    check_responsive(r)
    assert.is_true(r.max_children <= N,
      ('%d children alive at once, N = %d'):format(r.max_children, N))
    local status, body = get_sync(port, '/stats')
    assert.equal(200, status)
    assert.equal(tostring(N), body:match('workers (%d+)'))
    assert.equal(tostring(N), body:match('alive (%d+)'))
    assert.is_true(tonumber(body:match('max_alive (%d+)')) <= N, body)
    local workers = children_of(server.pid)
    assert.equal(N, #workers)
    server:kill()
    assert.same({ nil, 'SIGTERM' }, { wait_server(server) })
    none_alive(workers)
    none_alive(pids(r.seen))
  end)

  it('has as many workers as cores by default, and stops cleanly', function()
    local server, port = start('compute_pool.lua', { 0, 0, 2 })
    local status, body = get_sync(port, '/stats')
    assert.equal(200, status)
    assert.equal(tostring(ncores()), body:match('workers (%d+)'))
    local workers = children_of(server.pid)
    assert.equal(ncores(), #workers)
    -- max_requests = 2: this one is the last; the pool lets its workers go
    assert.same({ 200, 'Ok' }, { get_sync(port, '/') })
    assert.equal(0, wait_server(server, 20000))
    none_alive(workers)
  end)
end)
