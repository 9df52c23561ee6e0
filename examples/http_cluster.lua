-- A pre-fork HTTP server, as Node's cluster module: the parent binds one
-- TCP port on 127.0.0.1 and forks N workers (default: the CPU count).
--   --mode shared  (default) each worker gets the listening socket
--                  (send(message, server)) and accepts on it itself
--   --mode rr      round robin: the parent accepts and sends each
--                  connection to the next worker
-- Each worker answers HTTP/1.1 (keep-alive) with luasocket and cp.watch,
-- its pid in the body. A worker that dies is forked again.
--   lua5.4 examples/http_cluster.lua [--workers N] [--port P]
--     [--mode shared|rr] [--duration SECONDS] [--demo]
-- --demo: 2 workers, 6 requests from a client process, then it stops.
-- It prints 'listening on 127.0.0.1:PORT', then 'worker PID ready' for
-- each worker; with --duration it stops after that long and prints
-- 'worker PID served N' for each worker.
local cp = require 'childproc'
local socket = require 'socket'

-- {====================================================== worker

local function worker()
  local p = cp.process
  local served = 0
  local body = ('hello from worker %d\n'):format(p.pid)
  local reply = ('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
    .. 'Content-Length: %d\r\n\r\n%s'):format(#body, body)
  local reply_close = ('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
    .. 'Connection: close\r\nContent-Length: %d\r\n\r\n%s'):format(#body, body)

  local function send_all(c, s)
    local i, err, last = c:send(s)
    if not i and err == 'timeout' then   -- (a reply this small: rare)
      c:settimeout(1)
      i = c:send(s, last + 1)
      c:settimeout(0)
    end
    return i ~= nil
  end

  local function serve(c)
    c:settimeout(0)
    c:setoption('tcp-nodelay', true)
    local buf, w = '', nil
    local function done() w:stop(); c:close() end
    w = cp.watch(c, 'r', function()
      local data, err, partial = c:receive(65536)
      data = data or partial
      if data and #data > 0 then buf = buf .. data end
      while true do                      -- every complete request
        local e = buf:find('\r\n\r\n', 1, true)
        if not e then break end
        local head = buf:sub(1, e + 3)
        buf = buf:sub(e + 4)
        served = served + 1
        local close = head:find('\r\n[Cc]onnection: *close') or
          head:find('^[^\r]* HTTP/1%.0\r\n')
        if not send_all(c, close and reply_close or reply) or close then
          return done()
        end
      end
      if err == 'closed' then done() end
    end)
  end

  p:on('message', function(m, handle)
    if m.op == 'listen' then            -- shared: accept here
      local srv = assert(handle:socket())
      srv:settimeout(0)
      -- one accept per wake-up: the other workers, woken too, take the
      -- next ones (a loop here would take a whole burst alone)
      cp.watch(srv, 'r', function()
        local c = srv:accept()
        if c then serve(c) end
      end)
    elseif m.op == 'conn' then          -- round robin: one connection
      serve(assert(handle:socket()))
      p:send({ took = m.id })           -- the parent may close its copy
    elseif m.op == 'report' then
      p:send({ pid = p.pid, served = served })
    end
  end)
  p:send({ ready = p.pid })
end

if arg[1] == '--worker' then return worker() end

-- }======================================================


-- {====================================================== parent

local function ncpu()
  local ok, out = pcall(cp.execFileSync, 'nproc')
  return ok and tonumber(out) or 1
end

local opts = { workers = nil, port = 0, mode = 'shared', duration = nil }
do
  local i = 1
  while arg[i] do
    if arg[i] == '--demo' then opts.demo, opts.workers = true, 2; i = i + 1 end
    if not arg[i] then break end
    local k, v = arg[i]:match('^%-%-(%w+)$'), arg[i + 1]
    if not k or opts[k] == nil and k ~= 'workers' and k ~= 'duration' then
      io.stderr:write('usage: http_cluster.lua [--workers N] [--port P]'
        .. ' [--mode shared|rr] [--duration SECONDS]\n')
      os.exit(2)
    end
    opts[k] = k == 'mode' and v or tonumber(v)
    i = i + 2
  end
end
local N = opts.workers or ncpu()
assert(opts.mode == 'shared' or opts.mode == 'rr', "--mode: 'shared' or 'rr'")

-- (before the first line: LuaJIT's stdio keeps a line printed before
-- it in the buffer until the process exits)
io.stdout:setvbuf('line')
local srv = assert(socket.bind('127.0.0.1', opts.port, 1024))
local _, port = srv:getsockname()
print(('listening on 127.0.0.1:%d (%s, %d workers)'):format(port, opts.mode, N))

local workers = {}            -- slot -> ChildProcess
local ready = {}              -- the workers that said so, in slot order
local stopping = false
local stop

-- --demo: a client process makes 6 requests, each on a new connection
local CLIENT = [[
local socket = require 'socket'
for i = 1, 6 do
  local c = assert(socket.connect('127.0.0.1', tonumber(arg[1])))
  c:settimeout(5)
  c:send('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  local r = c:receive('*a')
  c:close()
  print(('request %d: %s'):format(i, r:match('\r\n\r\n(.-)\n')))
end
]]
local function demo()
  local client = cp.spawn(cp.process.execPath, { '-e', CLIENT, '-', tostring(port) },
    { stdio = 'inherit' })
  client:on('close', function() stop() end)
end

-- round robin: connections sent to a worker that has not said it took
-- them (worker -> id -> socket); a worker that dies first loses only
-- those it took: the others go to the next worker
local held, nextid = {}, 0
local dispatch

local function start(slot)
  local w = cp.fork(arg[0], { '--worker' })
  workers[slot] = w
  held[w] = {}
  w:on('message', function(m)
    if m.took then
      local c = held[w][m.took]
      held[w][m.took] = nil
      if c then c:close() end
    elseif m.ready then
      ready[#ready + 1] = w
      print(('worker %d ready'):format(m.ready))
      if #ready == N then
        print(('pool %d'):format(N))
        if opts.demo and not opts.demoed then opts.demoed = true; demo() end
      end
    end
  end)
  local function gone()
    for i = #ready, 1, -1 do if ready[i] == w then table.remove(ready, i) end end
    local lost = held[w] or {}
    held[w] = nil
    for _, c in pairs(lost) do dispatch(c) end
  end
  w:on('disconnect', gone)
  w:on('exit', function(code, sig)
    gone()
    if stopping then return end
    print(('worker %d died (%s): forking a new one'):format(w.pid,
      tostring(sig or code)))
    start(slot)
  end)
  w:on('error', function(e) io.stderr:write('worker: ', tostring(e), '\n') end)
  if opts.mode == 'shared' then w:send({ op = 'listen' }, srv) end
end

for slot = 1, N do start(slot) end

if opts.mode == 'rr' then
  srv:settimeout(0)
  local turn = 0
  function dispatch(c)
    if #ready == 0 then c:close() return end
    turn = turn % #ready + 1
    local w = ready[turn]
    nextid = nextid + 1
    held[w][nextid] = c                 -- closed once the worker took it
    w:send({ op = 'conn', id = nextid }, c, { keepOpen = true })
  end
  cp.watch(srv, 'r', function()
    for _ = 1, 64 do
      local c = srv:accept()
      if not c then break end
      dispatch(c)
    end
  end)
end

-- ask each worker how many it served, then stop it
function stop()
  stopping = true
  srv:close()
  for _, w in pairs(workers) do
    if w.connected then
      w:on('message', function(m)
        if m.served then
          print(('worker %d served %d'):format(m.pid, m.served))
          w:kill()
        end
      end)
      w:send({ op = 'report' })
    end
  end
end
if opts.duration then cp.setTimeout(stop, opts.duration * 1000) end

cp.run()

-- }======================================================
