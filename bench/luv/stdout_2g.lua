-- stdout_2g with luv: read `head -c BYTES /dev/zero` through read_start.
local uv = require 'luv'
local B = require 'bench'

local bytes = B.arg(1, 2 << 30)
local got = 0

local t0 = B.now()
local pipe = uv.new_pipe(false)
local handle
handle = assert(uv.spawn('head', { args = { '-c', tostring(bytes), '/dev/zero' },
  stdio = { 0, pipe, 2 } }, function(code)
    assert(code == 0, 'exit code ' .. tostring(code))
    handle:close()
  end))
pipe:read_start(function(err, chunk)
  assert(not err, err)
  if chunk then got = got + #chunk else pipe:close() end
end)
uv.run()
local t = B.now() - t0
assert(got == bytes, ('got %d of %d bytes'):format(got, bytes))
B.out('stdout_2g', 'luv', bytes / 1e6 / t, 'MB/s')
