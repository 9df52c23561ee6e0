-- http_load: start an HTTP server program, wait for its 'pool N' line,
-- load it with wrk on 127.0.0.1 and print wrk's requests per second as
-- the bench line (bench/run.lua's http_shared and http_rr).
--   lua5.4 bench/lib/http_load.lua BENCH PEER SECONDS server-command...
-- The server prints 'listening on 127.0.0.1:PORT', then 'pool N' once
-- its workers accept; it is killed (with its process group) afterwards.
local cp = require 'childproc'
local B = require 'bench'

local bench, peer, secs = arg[1], arg[2], tonumber(arg[3])
local cmd = {}
for i = 5, #arg do cmd[#cmd + 1] = arg[i] end
local server = cp.spawn(arg[4], cmd, { detached = true,
  stdio = { 'ignore', 'pipe', 'inherit' } })
local out = ''
local port, rps
server.stdout:on('data', function(d)
  out = out .. d
  if port or not out:find('pool %d+\n') then return end
  port = assert(out:match('listening on 127%.0%.0%.1:(%d+)'), out)
  local wrk = cp.spawn('wrk', { '-t2', '-c64', '-d' .. secs .. 's',
    'http://127.0.0.1:' .. port .. '/' }, { stdio = { 'ignore', 'pipe', 'inherit' } })
  local report = ''
  wrk.stdout:on('data', function(x) report = report .. x end)
  wrk:on('close', function()
    rps = tonumber(report:match('Requests/sec:%s*([%d.]+)'))
    io.stderr:write(report)
    cp.kill(-server.pid, 9)   -- the server and its workers
  end)
end)
local guard = cp.setTimeout(function() cp.kill(-server.pid, 9) end,
  (secs + 30) * 1000):unref()
server:wait()
guard:close()
assert(rps, 'no figure from wrk: ' .. out)
B.out(bench, peer, rps, 'req/s')
