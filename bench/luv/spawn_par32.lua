-- spawn_par32 with luv: /bin/true N times, 32 in flight.
local uv = require 'luv'
local B = require 'bench'

local n = B.arg(1, 1000)
local started, closed = 0, 0

local function one()
  started = started + 1
  local handle
  handle = assert(uv.spawn('/bin/true', { args = {}, stdio = { 0, 1, 2 } },
    function(code)
      assert(code == 0, 'exit code ' .. tostring(code))
      handle:close()
      closed = closed + 1
      if started < n then one() end
    end))
end

local t0 = B.now()
for _ = 1, math.min(32, n) do one() end
uv.run()
local t = B.now() - t0
assert(closed == n)
B.out('spawn_par32', 'luv', n / t, 'spawns/s')
