-- spawn_seq / spawn_heap2g: spawn /bin/true N times, one after the other.
-- usage: spawn_seq.lua N [HEAPBYTES]   (HEAPBYTES given: spawn_heap2g)
local cp = require 'childproc'
local B = require 'bench'

local n, heapbytes = B.arg(1, 500), B.arg(2)
local bench = heapbytes and 'spawn_heap2g' or 'spawn_seq'
local heap = heapbytes and B.heap(heapbytes)

local i = 0
local function one()
  if i == n then return end
  i = i + 1
  cp.spawn('/bin/true', {}, { stdio = 'inherit' }):on('close', function(code)
    assert(code == 0, 'exit code ' .. tostring(code))
    one()
  end)
end

local t0 = B.now()
one()
cp.run()
local t = B.now() - t0
assert(i == n and (not heap or #heap > 0))
B.out(bench, 'childproc', n / t, 'spawns/s')
