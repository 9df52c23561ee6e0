-- spawn_seq / spawn_heap2g with plain Lua: os.execute('/bin/true') N times
-- (system(3): through /bin/sh -c). usage: spawn_seq.lua N [HEAPBYTES]
local B = require 'bench'

local n, heapbytes = B.arg(1, 500), B.arg(2)
local bench = heapbytes and 'spawn_heap2g' or 'spawn_seq'
local heap = heapbytes and B.heap(heapbytes)

local t0 = B.now()
for _ = 1, n do
  local ok, how, code = os.execute('/bin/true')
  assert(ok, ('%s %s'):format(how, code))
end
local t = B.now() - t0
assert(not heap or #heap > 0)
B.out(bench, 'popen', n / t, 'spawns/s')
