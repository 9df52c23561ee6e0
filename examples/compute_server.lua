-- Ports the article's compute server (http + fork('compute.js')): an HTTP
-- server whose `/compute` forks examples/compute.lua for each request and
-- answers `Sum is N` when the child sends the sum back, while `/` answers
-- `Ok` at once: the long loop runs in another process, so this one stays
-- responsive.  The server is luasocket, non-blocking, driven by cp.watch.
--
--   lua5.4 examples/compute_server.lua [port [max_requests [n]]]
--   lua5.4 examples/compute_server.lua --demo
--
-- port: default 3000 as in the article; 0 picks a free port.  The first
-- line of stdout is always `listening on 127.0.0.1:PORT`.  max_requests:
-- stop after serving that many (0: never).  n: the default loop length
-- (1e8); `/compute?n=1000` chooses it per request.  `/stats` tells how
-- many compute children are alive.  --demo runs the server with a client
-- (this script again, as a child) and ends when the client is done.
--
-- Loaded with dofile() from another script, it only returns its HTTP
-- helpers (compute_pool.lua uses them).
local cp = require 'childproc'
local toint = math.tointeger or function(v)  -- (5.1, 5.2, LuaJIT)
  if type(v) == 'number' and v == math.floor(v) then return v end
end
local socket = require 'socket'

local here = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local http = {}

-- {====================================================== HTTP, the small part

local REASON = { [200] = 'OK', [400] = 'Bad Request', [404] = 'Not Found',
                 [500] = 'Internal Server Error' }

-- A connection: read one request, answer it, close (Connection: close).
local function closeconn(conn)
  if conn.closed then return end
  conn.closed = true
  if conn.watcher then conn.watcher:stop() end
  conn.sock:close()
end

-- Write all of data without blocking: what the socket does not take now
-- is written when cp.watch says it is writable again.
local function sendall(conn, data, done)
  local i = 1
  local function try()
    local last, err, partial = conn.sock:send(data, i)
    if last then return true end
    if err ~= 'timeout' then return true end   -- the client went away
    i = partial + 1
    return false
  end
  if try() then return done() end
  conn.watcher = cp.watch(conn.sock, 'w', function(_, w)
    if try() then w:stop(); done() end
  end)
end

-- http.listen(port, handler [, opts]) -> server
-- handler(req, respond): req = { method, path, query = {k = v} };
-- respond(status, body) may be called later, from any callback.
-- opts.max_requests: close the server after that many responses.
function http.listen(port, handler, opts)
  opts = opts or {}
  local srv = assert(socket.bind('127.0.0.1', port))
  srv:settimeout(0)
  local server = { sock = srv, served = 0, open = true }
  local _, bound = srv:getsockname()
  server.port = toint(tonumber(bound))

  function server.close()
    if not server.open then return end
    server.open = false
    server.watcher:stop()
    srv:close()
    if opts.onclose then opts.onclose() end
  end

  local function responded()
    server.served = server.served + 1
    if opts.max_requests and opts.max_requests > 0
       and server.served >= opts.max_requests then
      server.close()
    end
  end

  local function serve(conn, head)
    local method, target = head:match('^(%u+) (%S+) HTTP/%d%.%d')
    local answered = false
    local function respond(status, body)
      if answered then return end
      answered = true
      body = tostring(body)
      local msg = ('HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n' ..
        'Content-Length: %d\r\nConnection: close\r\n\r\n%s'):format(
        status, REASON[status] or '', #body, body)
      if conn.closed then return responded() end
      sendall(conn, msg, function() closeconn(conn); responded() end)
    end
    if not method then return respond(400, 'Bad request') end
    local path, qs = target:match('^([^?]*)%??(.*)$')
    local query = {}
    for k, v in qs:gmatch('([^&=]+)=([^&]*)') do query[k] = v end
    handler({ method = method, path = path, query = query }, respond)
  end

  local function accept(c)
    c:settimeout(0)
    local conn, buf = { sock = c }, ''
    conn.watcher = cp.watch(c, 'r', function(_, w)
      local data, err, partial = c:receive(8192)
      buf = buf .. (data or partial or '')
      local head = buf:match('^(.-)\r?\n\r?\n')
      if head then
        w:stop()
        conn.watcher = nil
        serve(conn, head)
      elseif err == 'closed' or #buf > 65536 then
        closeconn(conn)
      end
    end)
  end

  server.watcher = cp.watch(srv, 'r', function()
    while server.open do
      local c = srv:accept()
      if not c then break end
      accept(c)
    end
  end)
  return server
end

-- http.get(port, path, callback): a non-blocking GET on 127.0.0.1, driven
-- by cp.watch too.  callback(status, body, ms) or callback(nil, err, ms).
function http.get(port, path, callback)
  local c = assert(socket.tcp4())
  c:settimeout(0)
  local t0 = socket.gettime()
  local buf = {}
  local function finish(status, body)
    c:close()
    callback(status, body, (socket.gettime() - t0) * 1000)
  end
  c:connect('127.0.0.1', port)         -- in progress: writable when done
  cp.watch(c, 'w', function(_, w)
    w:stop()
    local _, err = c:send(('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'):format(path))
    if err then return finish(nil, err) end
    cp.watch(c, 'r', function(_, r)
      local data, rerr, partial = c:receive(8192)
      buf[#buf + 1] = data or partial
      if rerr == 'closed' then
        r:stop()
        local text = table.concat(buf)
        local status, body = text:match('^HTTP/%d%.%d (%d+).-\r\n\r\n(.*)$')
        if status then finish(tonumber(status), body)
        else finish(nil, 'bad response: ' .. text) end
      elseif rerr and rerr ~= 'timeout' then
        r:stop()
        finish(nil, rerr)
      end
    end)
  end)
end

-- }======================================================

if not (arg and arg[0] and arg[0]:match('compute_server%.lua$')) then
  return http
end


-- {====================================================== the demo client

-- `--client PORT`: three /compute requests at once, and `/` every 50 ms
-- while they run, each printed with the time it took.
if arg[1] == '--client' then
  io.stdout:setvbuf('line')
  local port = tonumber(arg[2])
  local pending, ticker = 3, nil
  for i = 1, 3 do
    local n = 20000000 + i
    http.get(port, '/compute?n=' .. n, function(status, body, ms)
      print(('client: /compute?n=%d -> %s %s (%.0f ms)'):format(n, status, body, ms))
      pending = pending - 1
      if pending == 0 then ticker:close() end
    end)
  end
  ticker = cp.setInterval(function()
    http.get(port, '/', function(status, body, ms)
      print(('client: / -> %s %s (%.1f ms)'):format(status, body, ms))
    end)
  end, 50)
  cp.run()
  return
end

-- }======================================================


-- {====================================================== the server

io.stdout:setvbuf('line')
local demo = arg[1] == '--demo'
local port = demo and 0 or tonumber(arg[1] or 3000)
local max_requests = tonumber(arg[2] or 0)
local default_n = toint(tonumber(arg[3] or '')) or 100000000

local alive = 0     -- compute children not yet closed

-- Each /compute request is a task (cp.async): it forks the child, sends
-- it the work and waits for it.  child:wait() in a task yields to the
-- loop, so `/` and other requests are served meanwhile, and each request
-- goes on as soon as its own child has closed.
local function compute(req)
  local n = toint(tonumber(req.query.n or '')) or default_n
  local child = cp.fork(here .. '/compute.lua')
  alive = alive + 1
  local sum, failure
  child:on('error', function(err) failure = failure or err end)
  child:once('message', function(msg)
    sum = msg.sum
    child:disconnect()         -- the child has nothing left to do: it exits
  end)
  child:send({ n = n })        -- the article sends 'start'
  -- 'close' comes after every message the child sent
  local code, sig = child:wait()
  alive = alive - 1
  if sum then return 200, ('Sum is %d'):format(sum) end
  if failure then return 500, 'compute failed: ' .. tostring(failure) end
  return 500, ('compute ended without a sum (%s %s)'):format(code, sig)
end

local server
server = http.listen(port, function(req, respond)
  if req.path == '/compute' then
    cp.async(function() respond(compute(req)) end)
  elseif req.path == '/stats' then
    respond(200, ('children %d\nserved %d\n'):format(alive, server.served))
  elseif req.path == '/' then
    respond(200, 'Ok')
  else
    respond(404, 'Not found')
  end
end, { max_requests = max_requests })

print(('listening on 127.0.0.1:%d'):format(server.port))

if demo then
  local client = cp.spawn(cp.process.execPath,
    { arg[0], '--client', tostring(server.port) }, { stdio = 'inherit' })
  client:on('close', function(code)
    print(('demo client done (exit code %s), served %d requests')
      :format(code, server.served))
    server.close()
  end)
end

cp.run()

-- }======================================================
