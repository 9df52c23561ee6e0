-- launcher_ssh: a worker forked here (peer 'childproc') or through ssh to
-- a throwaway sshd on 127.0.0.1 (peer 'childproc-ssh', fork's launcher
-- option), started by this program (spec/sshd.lua) and not timed.
--   launcher_ssh.lua rtt N local|ssh     N small-message round trips, rt/s
--   launcher_ssh.lua first N local|ssh   N forks in sequence, fork -> first
--                                        message, mean ms
local cp = require 'childproc'
local B = require 'bench'
package.path = B.dir() .. '../../spec/?.lua;' .. package.path

local what, n, where = arg[1], B.arg(2, 1000), arg[3] or 'ssh'
local srv, launcher
if where == 'ssh' then
  local root = (require('childproc.internal').core.sopath() or ''):match('^(.*)/[^/]*$') or '.'
  local sshd = require 'sshd'
  local why
  srv, why = sshd.start(root)
  if not srv then io.stderr:write('launcher_ssh: ', why, '\n'); os.exit(1) end
  launcher = srv.launcher()
end
local peer = where == 'ssh' and 'childproc-ssh' or 'childproc'

local function fork(script)
  return cp.fork(B.dir() .. script, {}, launcher and { launcher = launcher } or nil)
end

local ok, err = pcall(function()
  if what == 'rtt' then
    local i, t0, t = 0, nil, nil
    local child = fork('child_echo.lua')
    child:on('message', function(msg)
      if msg == 'ready' then t0 = B.now(); child:send({ n = 0 }); return end
      assert(msg.n == i, 'out of order')
      i = i + 1
      if i < n then child:send({ n = i })
      else t = B.now() - t0; child:disconnect() end
    end)
    cp.run()
    assert(i == n and t)
    B.out('ssh_rtt', peer, n / t, 'rt/s')
  else
    local i, total = 0, 0
    local function one()
      if i == n then return end
      i = i + 1
      local t0 = B.now()
      local child = fork('child_first.lua')
      child:once('message', function(msg)
        total = total + (B.now() - t0)
        assert(msg == 'ready', tostring(msg))
      end)
      child:on('close', function(code)
        assert(code == 0, 'exit code ' .. tostring(code))
        one()
      end)
    end
    one()
    cp.run()
    assert(i == n)
    B.out('ssh_first_msg', peer, total / n * 1000, 'ms')
  end
end)
if srv then srv.stop() end
if not ok then error(err, 0) end
