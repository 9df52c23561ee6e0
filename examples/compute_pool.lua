-- Ports the closing idea of the article's compute server section (Node's
-- cluster module: fork a few processes and share the load): the server of
-- compute_server.lua, but `/compute` goes to a pool of N long-lived
-- workers (examples/compute.lua), handed out in turn, instead of one new
-- child per request.  At most N children are ever alive.
--
--   lua5.4 examples/compute_pool.lua [port [workers [max_requests [n [hosts]]]]]
--   lua5.4 examples/compute_pool.lua --demo
--
-- port: 3000 by default, 0 picks a free one (printed on the first line:
-- `listening on 127.0.0.1:PORT`).  workers: default the number of cores.
-- max_requests: stop after serving that many (0: never).  n: the default
-- loop length (1e8), `/compute?n=...` per request.  `/stats` answers
-- `workers N`, `alive K`, `max_alive M`, `served S`, one per line.
-- hosts: a comma-separated list of ssh hosts (`web1,web2`): the workers
-- are spread over them in turn, each started through ssh (fork's
-- `launcher` option, docs/launcher.md) with this directory's compute.lua
-- at the same path on the host; $COMPUTE_SSH is the ssh command (default
-- `ssh -T`).  `/stats` then adds `host NAME K` lines (workers started).
local cp = require 'childproc'
local toint = math.tointeger or function(v)  -- (5.1, 5.2, LuaJIT)
  if type(v) == 'number' and v == math.floor(v) then return v end
end

local here = arg[0]:match('^(.*)/[^/]*$') or '.'
local http = dofile(here .. '/compute_server.lua')   -- its HTTP helpers
io.stdout:setvbuf('line')

local function ncores()
  local n = 0
  local f = io.open('/proc/cpuinfo')
  if f then
    for line in f:lines() do
      if line:match('^processor%s*:') then n = n + 1 end
    end
    f:close()
  end
  return n > 0 and n or 1
end

local demo = arg[1] == '--demo'
local port = demo and 0 or tonumber(arg[1] or 3000)
local nworkers = toint(tonumber(arg[2] or '')) or 0
if nworkers < 1 then nworkers = ncores() end
local max_requests = tonumber(arg[3] or 0)
local default_n = toint(tonumber(arg[4] or '')) or 100000000
local hosts = {}
for h in (arg[5] or ''):gmatch('[^,%s]+') do hosts[#hosts + 1] = h end
local ssh = {}
for w in (os.getenv('COMPUTE_SSH') or 'ssh -T'):gmatch('%S+') do ssh[#ssh + 1] = w end
-- the worker's path, absolute: the same on every host
local worker = here .. '/compute.lua'
if worker:sub(1, 1) ~= '/' then worker = cp.process:cwd() .. '/' .. worker end

-- {====================================================== the pool

local workers = {}          -- slot -> { child, waiting = {id -> respond} }
local alive, max_alive = 0, 0
local nextslot, nextid = 1, 0
local stopping = false
local started = {}          -- host -> workers started there

-- a worker of slot: here, or through ssh on the slot's host
local function fork_worker(slot)
  if #hosts == 0 then return cp.fork(worker) end
  local host = hosts[(slot - 1) % #hosts + 1]
  started[host] = (started[host] or 0) + 1
  local launcher = { (table.unpack or unpack)(ssh) }
  launcher[#launcher + 1] = host
  return cp.fork(worker, {}, { launcher = launcher })
end

local function start_worker(slot)
  local w = { waiting = {}, slot = slot }
  w.child = fork_worker(slot)
  workers[slot] = w
  alive = alive + 1
  if alive > max_alive then max_alive = alive end
  w.child:on('message', function(msg)
    local respond = w.waiting[msg.id]
    w.waiting[msg.id] = nil
    if respond then respond(200, ('Sum is %d'):format(msg.sum)) end
  end)
  w.child:on('error', function(err)
    io.stderr:write('worker ', slot, ': ', tostring(err), '\n')
  end)
  -- a worker that dies takes its requests with it; a new one takes its slot
  w.child:on('close', function(code, sig)
    alive = alive - 1
    for id, respond in pairs(w.waiting) do
      w.waiting[id] = nil
      respond(500, ('worker ended (%s %s)'):format(tostring(code), tostring(sig)))
    end
    if not stopping and workers[slot] == w then start_worker(slot) end
  end)
end

for slot = 1, nworkers do start_worker(slot) end

-- hand the request to the next worker in turn; it queues what it gets
local function compute(req, respond)
  local n = toint(tonumber(req.query.n or '')) or default_n
  local w = workers[nextslot]
  nextslot = nextslot % nworkers + 1
  nextid = nextid + 1
  w.waiting[nextid] = respond
  w.child:send({ id = nextid, n = n })
end

local function stop_pool()
  stopping = true
  for _, w in ipairs(workers) do
    if w.child.connected then w.child:disconnect() end   -- they exit
  end
end

-- }======================================================

local server
server = http.listen(port, function(req, respond)
  if req.path == '/compute' then
    compute(req, respond)
  elseif req.path == '/stats' then
    local lines = {}
    for _, h in ipairs(hosts) do
      lines[#lines + 1] = ('host %s %d\n'):format(h, started[h] or 0)
    end
    respond(200, ('workers %d\nalive %d\nmax_alive %d\nserved %d\n%s')
      :format(nworkers, alive, max_alive, server.served, table.concat(lines)))
  elseif req.path == '/' then
    respond(200, 'Ok')
  else
    respond(404, 'Not found')
  end
end, { max_requests = max_requests, onclose = stop_pool })

print(('listening on 127.0.0.1:%d (%d workers)'):format(server.port, nworkers))

-- --demo: 8 /compute requests at once, with `/` in between, then stop
if demo then
  local pending = 8
  for i = 1, 8 do
    local n = 10000000 + i
    http.get(server.port, '/compute?n=' .. n, function(status, body, ms)
      print(('client: /compute?n=%d -> %s %s (%.0f ms)'):format(n, status, body, ms))
      pending = pending - 1
    end)
  end
  local ticker
  ticker = cp.setInterval(function()
    if pending == 0 then
      ticker:close()
      http.get(server.port, '/stats', function(_, body)
        io.write('client: /stats ->\n', body)
        server.close()
      end)
      return
    end
    http.get(server.port, '/', function(status, body, ms)
      print(('client: / -> %s %s (%.1f ms)'):format(status, body, ms))
    end)
  end, 100)
end

cp.run()
