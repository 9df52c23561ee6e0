-- Shared helpers of the Lua peers (childproc, luv, popen).
-- The runner puts bench/lib on LUA_PATH and bench/.build on LUA_CPATH.
local M = {}

local ok, clock = pcall(require, 'benchclock')
if ok then
  M.now = clock.now
else -- fallback: 10 ms resolution
  function M.now()
    local f = assert(io.open('/proc/uptime'))
    local t = f:read('n')
    f:close()
    return t
  end
end

-- the one output line
-- (BENCH_PEER renames the peer: the runner's A/B build, childproc-base)
function M.out(bench, peer, value, unit)
  if peer == 'childproc' and os.getenv('BENCH_PEER') then peer = os.getenv('BENCH_PEER') end
  io.stdout:write(string.format('bench=%s peer=%s value=%.6g unit=%s\n',
    bench, peer, value, unit))
  io.stdout:flush()
end

-- integer argument i of the script, or dflt
function M.arg(i, dflt)
  return math.tointeger(tonumber(arg and arg[i])) or dflt
end

-- directory of the running script, with a trailing slash
function M.dir()
  return (arg and arg[0] or ''):match('^(.*/)') or './'
end

-- resident set size of this process, KiB
function M.rss_kib()
  local f = assert(io.open('/proc/self/status'))
  local s = f:read('*a')
  f:close()
  return tonumber(s:match('VmRSS:%s*(%d+)'))
end

-- Allocate and touch about `bytes` (default 2 GiB) of heap, held in a table.
-- Each chunk is a separate 64 MiB string (long strings are never shared),
-- made by one concatenation of 64 pieces of 1 MiB: the VM allocates the
-- result once and copies into it (string.rep would go through a buffer and
-- touch twice the memory).
local cat64 = load('local p = ... return p' .. string.rep('..p', 63))
function M.heap(bytes)
  bytes = bytes or (2 << 30)
  local piece = string.rep('x', 1 << 20)
  local t = {}
  while bytes >= 64 << 20 do
    t[#t + 1] = cat64(piece)
    bytes = bytes - (64 << 20)
  end
  if bytes > 0 then t[#t + 1] = string.rep(piece, bytes >> 20) .. ('y'):rep(bytes & 0xfffff) end
  collectgarbage()
  return t
end

return M
