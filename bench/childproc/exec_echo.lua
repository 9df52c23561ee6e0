-- exec_echo: cp.exec('echo hello') N times, one after the other.
local cp = require 'childproc'
local B = require 'bench'

local n = B.arg(1, 1000)
local i = 0

local function one()
  if i == n then return end
  i = i + 1
  cp.exec('echo hello', function(err, stdout)
    assert(not err, tostring(err))
    assert(stdout == 'hello\n', stdout)
    one()
  end)
end

local t0 = B.now()
one()
cp.run()
local t = B.now() - t0
assert(i == n)
B.out('exec_echo', 'childproc', n / t, 'execs/s')
