-- children_1000: N `cat`s alive at once, each blocked on its stdin pipe.
-- When all have spawned: RSS growth per child; then close every stdin and
-- wait for every 'close'; wall time of the whole.
local cp = require 'childproc'
local B = require 'bench'

local n = B.arg(1, 1000)
local kids, spawned, closed, rss1 = {}, 0, 0, nil

collectgarbage()
local rss0 = B.rss_kib()
local t0 = B.now()
for k = 1, n do
  local child = cp.spawn('cat', {}, { stdio = { 'pipe', 'ignore', 'ignore' } })
  kids[k] = child
  child:on('spawn', function()
    spawned = spawned + 1
    if spawned == n then
      rss1 = B.rss_kib()
      for _, c in ipairs(kids) do c.stdin:close() end
    end
  end)
  child:on('close', function(code)
    assert(code == 0, 'exit code ' .. tostring(code))
    closed = closed + 1
  end)
end
cp.run()
local t = B.now() - t0
assert(closed == n and rss1)
B.out('children_1000_rss', 'childproc', (rss1 - rss0) / n, 'KiB/child')
B.out('children_1000_wall', 'childproc', t * 1000, 'ms')
