-- stdout_2g with plain Lua: io.popen('head -c BYTES /dev/zero') read in
-- 64 KiB pieces.
local B = require 'bench'

local bytes = B.arg(1, 2 << 30)
local got = 0
local t0 = B.now()
local f = assert(io.popen('head -c ' .. bytes .. ' /dev/zero'))
while true do
  local s = f:read(65536)
  if not s then break end
  got = got + #s
end
assert(f:close())
local t = B.now() - t0
assert(got == bytes, ('got %d of %d bytes'):format(got, bytes))
B.out('stdout_2g', 'popen', bytes / 1e6 / t, 'MB/s')
