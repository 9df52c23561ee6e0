-- exec_echo with plain Lua: io.popen('echo hello'):read('a') N times.
local B = require 'bench'

local n = B.arg(1, 1000)
local t0 = B.now()
for _ = 1, n do
  local f = assert(io.popen('echo hello'))
  local s = f:read('a')
  assert(f:close())
  assert(s == 'hello\n', s)
end
local t = B.now() - t0
B.out('exec_echo', 'popen', n / t, 'execs/s')
