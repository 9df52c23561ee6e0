-- Ports the article's compute.js: the forked child of compute_server.lua
-- (and a worker of compute_pool.lua).  On each message it runs the long
-- loop and sends the sum back to its parent.  The loop length comes from
-- the message ({ n = ... }), else this script's argument, else 1e8 (the
-- article's 1e9 takes many seconds in Lua: too long for a demo).
local cp = require 'childproc'
local toint = math.tointeger or function(v)  -- (5.1, 5.2, LuaJIT)
  if type(v) == 'number' and v == math.floor(v) then return v end
end
local process = cp.process

local DEFAULT_N = toint(tonumber(arg[1] or '')) or 100000000

local function longComputation(n)
  local sum = 0
  for i = 0, n - 1 do
    sum = sum + i
  end
  return sum
end

-- msg: 'start' as in the article (answered with the sum), or a table
-- { id = ..., n = ... } (answered with { id = ..., sum = ... })
process:on('message', function(msg)
  if type(msg) == 'table' then
    local n = toint(msg.n) or DEFAULT_N
    process:send({ id = msg.id, n = n, sum = longComputation(n) })
  else
    process:send(longComputation(DEFAULT_N))
  end
end)

-- No cp.run(): a forked child runs its loop after the script, and exits
-- once the parent disconnects (the 'message' listener then keeps nothing).
