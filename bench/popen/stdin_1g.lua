-- stdin_1g with plain Lua: io.popen('cat > /dev/null', 'w'), 64 KiB writes
-- (blocking: the pipe is the backpressure).
local B = require 'bench'

local bytes = B.arg(1, 1 << 30)
local chunk = string.rep('x', 65536)
local sent = 0
local t0 = B.now()
local f = assert(io.popen('cat > /dev/null', 'w'))
f:setvbuf('no')
while sent < bytes do
  local piece = bytes - sent >= #chunk and chunk or chunk:sub(1, bytes - sent)
  assert(f:write(piece))
  sent = sent + #piece
end
assert(f:close())
local t = B.now() - t0
B.out('stdin_1g', 'popen', bytes / 1e6 / t, 'MB/s')
