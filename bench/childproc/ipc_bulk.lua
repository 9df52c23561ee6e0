-- ipc_bulk: N messages of 1 MiB (a string) to a forked child_ack.lua, one at
-- a time: the next goes when the child has acknowledged the last.
local cp = require 'childproc'
local B = require 'bench'

local n = B.arg(1, 1024)
local msg = string.rep('x', 1 << 20)
local i, t0, t = 0, nil, nil

local child = cp.fork(B.dir() .. 'child_ack.lua')
child:on('message', function(ack)
  if ack == 'ready' then
    t0 = B.now()
    child:send(msg)
    return
  end
  assert(ack == #msg, 'bad ack ' .. tostring(ack))
  i = i + 1
  if i < n then
    child:send(msg)
  else
    t = B.now() - t0
    child:disconnect()
  end
end)
child:on('close', function(code)
  assert(code == 0, 'exit code ' .. tostring(code))
end)
cp.run()
assert(i == n and t)
B.out('ipc_bulk', 'childproc', n * #msg / 1e6 / t, 'MB/s')
