-- A throwaway OpenSSH server on 127.0.0.1 for the launcher specs and
-- benchmarks: its own host key, client key, config and port in a
-- temporary directory; the machine's sshd and its configuration are not
-- touched.  Sessions get LUA_CPATH (this build's childproc.so) and what
-- a sanitizer build needs (LD_PRELOAD, ASAN_OPTIONS...) through SetEnv.
--
--   local sshd = require 'sshd'
--   local srv, why = sshd.start(root)   -- nil, reason when sshd cannot run
--   srv.launcher()                      -- { 'ssh', ..., 'user@127.0.0.1' }
--   srv.port, srv.dir, srv.log(), srv.stop()
local cp = require 'childproc'
local socket = require 'socket'

local M = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = io.popen(cmd .. ' 2>&1')
  local out = p:read('*a')
  local ok = p:close()
  return ok, out
end

local function readfile(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('*a')
  f:close()
  return s
end

-- a port nobody listens on now (the launcher spec's refused case too)
function M.free_port()
  local s = assert(socket.bind('127.0.0.1', 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end
local free_port = M.free_port

M.SSHD = '/usr/sbin/sshd'

-- root: the directory holding childproc.so
function M.start(root)
  if not io.open(M.SSHD) then return nil, 'no ' .. M.SSHD .. ' (apt-get install openssh-server)' end
  local ok, ssh_path = sh('command -v ssh')
  if not ok then return nil, 'no ssh client (apt-get install openssh-client)' end
  local dir = os.tmpname()
  os.remove(dir)
  assert(sh('mkdir -m 700 ' .. q(dir)))
  local ok2, out = sh(('ssh-keygen -q -t ed25519 -N "" -f %s/host && '
    .. 'ssh-keygen -q -t ed25519 -N "" -f %s/client && cp %s/client.pub %s/authorized_keys')
    :format(q(dir), q(dir), q(dir), q(dir)))
  if not ok2 then return nil, 'ssh-keygen failed: ' .. out end
  local _, user = sh('id -un')
  user = user:gsub('%s+$', '')
  local uid = tonumber((select(2, sh('id -u'))):match('%d+'))
  if uid == 0 then sh('mkdir -p /run/sshd') end  -- privilege separation
  local port = free_port()
  local env = { 'LUA_CPATH=' .. root .. '/?.so;;' }
  for _, k in ipairs({ 'LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS' }) do
    if os.getenv(k) then env[#env + 1] = k .. '=' .. os.getenv(k) end
  end
  local setenv = {}
  for i, kv in ipairs(env) do setenv[i] = '"' .. kv .. '"' end
  local conf = table.concat({
    'Port ' .. port,
    'ListenAddress 127.0.0.1',
    'HostKey ' .. dir .. '/host',
    'AuthorizedKeysFile ' .. dir .. '/authorized_keys',
    'PidFile ' .. dir .. '/sshd.pid',
    'StrictModes no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'MaxStartups 100',
    'MaxSessions 100',
    'SetEnv ' .. table.concat(setenv, ' '),
    '',
  }, '\n')
  local f = assert(io.open(dir .. '/sshd_config', 'w'))
  f:write(conf)
  f:close()
  -- in the background of a shell that exits at once: not our child (the
  -- specs' leak checks look for children), and without this process's
  -- LD_PRELOAD (a sanitizer's)
  local ok3, out3 = sh(('env -u LD_PRELOAD %s -D -e -f %s/sshd_config'
    .. ' </dev/null >/dev/null 2>>%s/sshd.log &'):format(M.SSHD, q(dir), q(dir)))
  if not ok3 then return nil, 'sshd did not start: ' .. out3 end
  local srv = { port = port, dir = dir, user = user, ssh = ssh_path:gsub('%s+$', '') }
  function srv.log() return readfile(dir .. '/sshd.log') or '' end
  -- ready once it listens (it says so on its log)
  local t0 = socket.gettime()
  while not (srv.log():find('Server listening', 1, true)
              and tonumber(readfile(dir .. '/sshd.pid') or '')) do
    if socket.gettime() - t0 > 5 or srv.log():find('fatal', 1, true) then
      sh('rm -rf ' .. q(dir))
      return nil, 'sshd did not start: ' .. srv.log()
    end
    socket.sleep(0.01)
  end
  srv.pid = tonumber(readfile(dir .. '/sshd.pid') or '')
  function srv.args()
    return { '-F', 'none', '-i', dir .. '/client', '-p', tostring(port),
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-T' }
  end
  -- the launcher argv: ssh, its options, user@127.0.0.1, then extra words
  function srv.launcher(...)
    local t = { 'ssh' }
    for _, a in ipairs(srv.args()) do t[#t + 1] = a end
    t[#t + 1] = user .. '@127.0.0.1'
    for _, a in ipairs({ ... }) do t[#t + 1] = a end
    return t
  end
  -- an ssh_config naming this server `name` (for examples taking hosts)
  function srv.config_entry(name)
    return table.concat({
      'Host ' .. name, '  HostName 127.0.0.1', '  Port ' .. port,
      '  User ' .. user, '  IdentityFile ' .. dir .. '/client',
      '  StrictHostKeyChecking no', '  UserKnownHostsFile /dev/null',
      '  BatchMode yes', '  LogLevel ERROR', '' }, '\n')
  end
  function srv.stop()
    if srv.pid then cp.kill(srv.pid, 'SIGTERM') end
    srv.pid = nil
    sh('rm -rf ' .. q(dir))
  end
  return srv
end

return M
