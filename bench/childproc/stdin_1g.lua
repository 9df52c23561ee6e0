-- stdin_1g: write BYTES into `cat > /dev/null` in 64 KiB chunks, waiting
-- for 'drain' whenever write() says the queue is full.
local cp = require 'childproc'
local B = require 'bench'

local bytes = B.arg(1, 1 << 30)
local chunk = string.rep('x', 65536)
local sent = 0

local t0 = B.now()
local child = cp.spawn('cat', {}, { stdio = { 'pipe', 'ignore', 'inherit' } })
local stdin = child.stdin

local function pump()
  while sent < bytes do
    local piece = bytes - sent >= #chunk and chunk or chunk:sub(1, bytes - sent)
    sent = sent + #piece
    if not stdin:write(piece) then
      stdin:once('drain', pump)
      return
    end
  end
  stdin:close()
end

child:on('close', function(code)
  assert(code == 0, 'exit code ' .. tostring(code))
end)
pump()
cp.run()
local t = B.now() - t0
assert(sent == bytes)
B.out('stdin_1g', 'childproc', bytes / 1e6 / t, 'MB/s')
