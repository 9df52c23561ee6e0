-- stdout_2g: read BYTES of `head -c BYTES /dev/zero` through 'data' events.
local cp = require 'childproc'
local B = require 'bench'

local bytes = B.arg(1, 2 << 30)
local got = 0

local t0 = B.now()
local child = cp.spawn('head', { '-c', bytes, '/dev/zero' },
  { stdio = { 'ignore', 'pipe', 'inherit' } })
child.stdout:on('data', function(chunk) got = got + #chunk end)
child:on('close', function(code)
  assert(code == 0, 'exit code ' .. tostring(code))
end)
cp.run()
local t = B.now() - t0
assert(got == bytes, ('got %d of %d bytes'):format(got, bytes))
B.out('stdout_2g', 'childproc', bytes / 1e6 / t, 'MB/s')
