-- children_1000 with luv: N `cat`s blocked on stdin pipes; RSS growth per
-- child once all are started, then close the pipes and reap; wall time.
local uv = require 'luv'
local B = require 'bench'

local n = B.arg(1, 1000)
local pipes, closed = {}, 0

local null = assert(uv.fs_open('/dev/null', 'w', 438))
collectgarbage()
local rss0 = B.rss_kib()
local t0 = B.now()
for k = 1, n do
  local pipe = uv.new_pipe(false)
  pipes[k] = pipe
  local handle
  handle = assert(uv.spawn('cat', { args = {}, stdio = { pipe, null, null } },
    function(code)
      assert(code == 0, 'exit code ' .. tostring(code))
      handle:close()
      closed = closed + 1
    end))
end
local rss1 = B.rss_kib()
for _, pipe in ipairs(pipes) do pipe:close() end
uv.run()
local t = B.now() - t0
uv.fs_close(null)
assert(closed == n)
B.out('children_1000_rss', 'luv', (rss1 - rss0) / n, 'KiB/child')
B.out('children_1000_wall', 'luv', t * 1000, 'ms')
