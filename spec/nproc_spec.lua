-- EAGAIN from clone: an unprivileged user under RLIMIT_NPROC = 1 may
-- start no process.  spawn's 'error' event, exec's callback and fork's
-- 'error' say EAGAIN; nothing is left half made; once the limit is raised
-- the next spawn works.  As root the spec runs the child as 'nobody'
-- (setpriv), since root is not bound by RLIMIT_NPROC.
local cp = require 'childproc'

local function nobody_ok()
  if shell('id -u'):match('^0') == nil then return true end
  return shell('command -v setpriv && id -u nobody'):find('\n%d+\n$') ~= nil
end

describe('EAGAIN from clone (RLIMIT_NPROC)', function()
  leakcheck()

  it('is reported by spawn, exec and fork, and the next spawn works', function()
    if not nobody_ok() then
      pending('needs setpriv and a user nobody to drop root (root ignores RLIMIT_NPROC)')
      return
    end
    -- the user is changed first (setpriv), then the soft limit lowered
    -- (prlimit, then as that user): root here may lack CAP_SYS_RESOURCE
    local drop = {}
    if shell('id -u'):match('^0') then
      drop = { 'setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups',
               '--inh-caps=-all' }
    end
    local argv = {}
    for _, a in ipairs(drop) do argv[#argv + 1] = a end
    for _, a in ipairs({ 'prlimit', '--nproc=1:', cp.process.execPath,
                         ROOT .. '/spec/fixtures/nproc.lua',
                         ROOT .. '/spec/fixtures/fork_echo.lua' }) do
      argv[#argv + 1] = a
    end
    local cmd = table.remove(argv, 1)
    local p = cp.spawn(cmd, argv, {
      env = childenv({ LUA_CPATH = CPATH }), stdio = { 'pipe', 'pipe', 'inherit' } })
    finally(function() p:kill('SIGKILL') end)
    local out = ''
    p.stdout:on('data', function(c) out = out .. c end)
    run_until(function() return out:find('ready\n') end, 10000, "the child's 'ready'")
    assert.matches('pid nil\n', out, 1, true)
    assert.matches('spawn%-error EAGAIN %-11 spawn true\n', out)
    assert.matches('spawn%-close %-11\n', out)
    assert.matches('exec EAGAIN\n', out)
    assert.matches('fork%-error EAGAIN\n', out)
    assert.matches('fork%-close\n', out)
    -- p is the script itself (setpriv and prlimit exec): raise its soft
    -- limit to the hard one, as its own user
    local dropped = {}
    for i, a in ipairs(drop) do dropped[i] = shq(a) end
    local hard = readfile('/proc/' .. p.pid .. '/limits'):match('Max processes%s+%S+%s+(%S+)')
    local _, status, err = shell(table.concat(dropped, ' ') .. ' prlimit --pid ' .. p.pid
      .. ' --nproc=' .. hard .. ':')
    assert.equal(0, status, err)
    p.stdin:write('go\n')
    assert.same({ 0, nil }, { p:wait() })
    assert.matches('again 7\n', out)
  end)
end)
