-- spawn_seq / spawn_heap2g with luv: spawn /bin/true N times in sequence.
-- usage: spawn_seq.lua N [HEAPBYTES]
local uv = require 'luv'
local B = require 'bench'

local n, heapbytes = B.arg(1, 500), B.arg(2)
local bench = heapbytes and 'spawn_heap2g' or 'spawn_seq'
local heap = heapbytes and B.heap(heapbytes)

local i = 0
local function one()
  if i == n then return end
  i = i + 1
  local handle
  handle = assert(uv.spawn('/bin/true', { args = {}, stdio = { 0, 1, 2 } },
    function(code)
      assert(code == 0, 'exit code ' .. tostring(code))
      handle:close()
      one()
    end))
end

local t0 = B.now()
one()
uv.run()
local t = B.now() - t0
assert(i == n and (not heap or #heap > 0))
B.out(bench, 'luv', n / t, 'spawns/s')
