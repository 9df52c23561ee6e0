-- stdin_1g with luv: write BYTES into `cat > /dev/null` in 64 KiB chunks;
-- try_write while the pipe takes them, else queue one write and go on from
-- its callback (backpressure).
local uv = require 'luv'
local B = require 'bench'

local bytes = B.arg(1, 1 << 30)
local chunk = string.rep('x', 65536)
local sent = 0

local t0 = B.now()
local pipe = uv.new_pipe(false)
local null = assert(uv.fs_open('/dev/null', 'w', 438))
local handle
handle = assert(uv.spawn('cat', { args = {}, stdio = { pipe, null, 2 } },
  function(code)
    assert(code == 0, 'exit code ' .. tostring(code))
    handle:close()
  end))
uv.fs_close(null)

local function pump()
  while sent < bytes do
    local piece = bytes - sent >= #chunk and chunk or chunk:sub(1, bytes - sent)
    sent = sent + #piece
    local n = pipe:try_write(piece)
    if n ~= #piece then
      pipe:write(n and piece:sub(n + 1) or piece, function(err)
        assert(not err, err)
        pump()
      end)
      return
    end
  end
  pipe:shutdown(function() pipe:close() end)
end
pump()
uv.run()
local t = B.now() - t0
assert(sent == bytes)
B.out('stdin_1g', 'luv', bytes / 1e6 / t, 'MB/s')
