-- spawn_par32 with plain Lua: io.popen('/bin/true') 32 at a time, then
-- close (wait for) each batch.
local B = require 'bench'

local n = B.arg(1, 1000)
local t0 = B.now()
local done = 0
while done < n do
  local batch = {}
  for k = 1, math.min(32, n - done) do batch[k] = assert(io.popen('/bin/true')) end
  for _, f in ipairs(batch) do assert(f:close()) end
  done = done + #batch
end
local t = B.now() - t0
B.out('spawn_par32', 'popen', n / t, 'spawns/s')
