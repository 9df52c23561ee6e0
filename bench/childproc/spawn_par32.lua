-- spawn_par32: spawn /bin/true N times, 32 children in flight.
local cp = require 'childproc'
local B = require 'bench'

local n = B.arg(1, 1000)
local started, closed = 0, 0

local function one()
  started = started + 1
  cp.spawn('/bin/true', {}, { stdio = 'inherit' }):on('close', function(code)
    assert(code == 0, 'exit code ' .. tostring(code))
    closed = closed + 1
    if started < n then one() end
  end)
end

local t0 = B.now()
for _ = 1, math.min(32, n) do one() end
cp.run()
local t = B.now() - t0
assert(closed == n)
B.out('spawn_par32', 'childproc', n / t, 'spawns/s')
