-- exec_echo with luv: sh -c 'echo hello' N times, stdout buffered; the
-- next starts when both the exit and the end of stdout are in.
local uv = require 'luv'
local B = require 'bench'

local n = B.arg(1, 1000)
local i = 0

local function one()
  if i == n then return end
  i = i + 1
  local pipe = uv.new_pipe(false)
  local buf, pending = {}, 2
  local function done()
    pending = pending - 1
    if pending == 0 then
      local s = table.concat(buf)
      assert(s == 'hello\n', s)
      one()
    end
  end
  local handle
  handle = assert(uv.spawn('/bin/sh', { args = { '-c', 'echo hello' },
    stdio = { nil, pipe, 2 } }, function(code)
      assert(code == 0, 'exit code ' .. tostring(code))
      handle:close()
      done()
    end))
  pipe:read_start(function(err, chunk)
    assert(not err, err)
    if chunk then buf[#buf + 1] = chunk else pipe:close(); done() end
  end)
end

local t0 = B.now()
one()
uv.run()
local t = B.now() - t0
assert(i == n)
B.out('exec_echo', 'luv', n / t, 'execs/s')
