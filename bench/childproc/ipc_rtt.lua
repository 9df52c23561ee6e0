-- ipc_rtt: N small-message round trips with a forked child_echo.lua; the
-- clock starts when the child says 'ready'.  arg 2: the child's
-- interpreter (luajit, lua5.1: the peer childproc-<it>).
local cp = require 'childproc'
local B = require 'bench'

local n = B.arg(1, 20000)
local i, t0, t = 0, nil, nil

local exec = arg[2]
local child = cp.fork(B.dir() .. 'child_echo.lua', {}, { execPath = exec })
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
B.out('ipc_rtt', exec and 'childproc-' .. exec or 'childproc', n / t, 'rt/s')
