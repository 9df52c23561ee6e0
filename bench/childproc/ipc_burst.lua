-- ipc_burst: N messages of 1 MiB (a string) sent to a forked child_ack.lua
-- all at once, before the first ack; the clock stops at the last ack.
local cp = require 'childproc'
local B = require 'bench'

local n = B.arg(1, 200)
local msg = string.rep('x', 1048576)
local acked, t0, t = 0, nil, nil

local child = cp.fork(B.dir() .. 'child_ack.lua')
child:on('message', function(ack)
  if ack == 'ready' then
    t0 = B.now()
    for _ = 1, n do child:send(msg) end
    return
  end
  assert(ack == #msg, 'bad ack ' .. tostring(ack))
  acked = acked + 1
  if acked == n then
    t = B.now() - t0
    child:disconnect()
  end
end)
child:on('close', function(code)
  assert(code == 0, 'exit code ' .. tostring(code))
end)
cp.run()
assert(acked == n and t)
B.out('ipc_burst', 'childproc', n * #msg / 1e6 / t, 'MB/s')
