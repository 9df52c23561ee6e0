-- ipc_rtt: N small-message round trips with a forked child_echo.lua; the
-- clock starts when the child says 'ready'.
local cp = require 'childproc'
local B = require 'bench'

local n = B.arg(1, 20000)
local i, t0, t = 0, nil, nil

local child = cp.fork(B.dir() .. 'child_echo.lua')
child:on('message', function(msg)
  if msg == 'ready' then
    t0 = B.now()
    child:send({ n = 0 })
    return
  end
  assert(msg.n == i, 'out of order')
  i = i + 1
  if i < n then
    child:send({ n = i })
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
B.out('ipc_rtt', 'childproc', n / t, 'rt/s')
