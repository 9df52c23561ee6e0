-- exec_echo with luv: sh -c 'echo hello' N times doing what exec() does:
-- a pipe on each of stdin, stdout and stderr, stdout and stderr buffered
-- to their end, stdin closed once the child has exited; the next starts
-- when the exit and both ends are in.
local uv = require 'luv'
local B = require 'bench'

local n = B.arg(1, 1000)
local i = 0

local function one()
  if i == n then return end
  i = i + 1
  local pin, pout, perr = uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false)
  local out, err, pending = {}, {}, 3
  local function done()
    pending = pending - 1
    if pending == 0 then
      local s = table.concat(out)
      assert(s == 'hello\n' and #err == 0, s)
      one()
    end
  end
  local function reader(pipe, buf)
    pipe:read_start(function(e, chunk)
      assert(not e, e)
      if chunk then buf[#buf + 1] = chunk else pipe:close(); done() end
    end)
  end
  local handle
  handle = assert(uv.spawn('/bin/sh', { args = { '-c', 'echo hello' },
    stdio = { pin, pout, perr } }, function(code)
      assert(code == 0, 'exit code ' .. tostring(code))
      handle:close()
      pin:close()
      done()
    end))
  reader(pout, out)
  reader(perr, err)
end

local t0 = B.now()
one()
uv.run()
local t = B.now() - t0
assert(i == n)
B.out('exec_echo', 'luv', n / t, 'execs/s')
