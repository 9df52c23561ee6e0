-- fork_first_msg: fork child_first.lua N times, one after the other; the
-- time from cp.fork() to the child's first message, mean in ms.  arg 2:
-- the child's interpreter (luajit, lua5.1: the peer childproc-<it>).
local cp = require 'childproc'
local B = require 'bench'

local n = B.arg(1, 100)
local exec = arg[2]
local script = B.dir() .. 'child_first.lua'
local i, total = 0, 0

local function one()
  if i == n then return end
  i = i + 1
  local t0 = B.now()
  local child = cp.fork(script, {}, { execPath = exec })
  child:once('message', function(msg)
    total = total + (B.now() - t0)
    assert(msg == 'ready', tostring(msg))
    -- no disconnect(): the child's script ends and it exits by itself
  end)
  child:on('close', function(code)
    assert(code == 0, 'exit code ' .. tostring(code))
    one()
  end)
end

one()
cp.run()
assert(i == n)
B.out('fork_first_msg', exec and 'childproc-' .. exec or 'childproc', total / n * 1000, 'ms')
