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
function M.out(bench, peer, value, unit)
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
  local s = f:read('a')
  f:close()
  return tonumber(s:match('VmRSS:%s*(%d+)'))
end

-- Allocate and touch about `bytes` (default 2 GiB) of heap, held in a table.
-- string.rep writes every byte; each chunk is a separate string.
function M.heap(bytes)
  bytes = bytes or (2 << 30)
  local chunk = 64 << 20
  local t = {}
  while bytes > 0 do
    local n = math.min(chunk, bytes)
    t[#t + 1] = string.rep('x', n) -- long strings are never shared
    bytes = bytes - n
  end
  collectgarbage()
  return t
end

return M
