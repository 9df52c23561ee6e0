-- cp.process (this process), the module table, _G hygiene.
local cp = require 'childproc'
local lfs = require 'lfs'

describe('cp.process', function()
  leakcheck()

  it('pid is the real pid, ppid the real parent', function()
    local st = procstat('self')
    assert.equal(st.pid, cp.process.pid)
    assert.equal(st.ppid, cp.process.ppid)
    assert.equal('integer', mtype(cp.process.pid))
  end)

  it('execPath is the running interpreter', function()
    assert.equal(lfs.symlinkattributes('/proc/self/exe', 'target'), cp.process.execPath)
  end)

  it('env is a table copy of the environment', function()
    local env = cp.process.env
    assert.equal('table', type(env))
    assert.equal(os.getenv('PATH'), env.PATH)
    env.PATH = 'changed'
    assert.equal(os.getenv('PATH'), cp.process.env.PATH)
  end)

  it('argv, env, pid in a fresh interpreter', function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      local p = cp.process
      local a = p.argv
      print(#a, a[1] == p.execPath, a[2] == arg[0], a[3], a[4])
      print(p.env.CHILDPROC_SPEC_VAR, type(p.env))
      print(p.pid == tonumber(io.open('/proc/self/stat'):read('*a'):match('^%d+')))
    ]], { args = { 'first arg', 'second' }, env = { CHILDPROC_SPEC_VAR = 'v a l' } })
    assert.equal(0, status, err)
    assert.equal('4\ttrue\ttrue\tfirst arg\tsecond\nv a l\ttable\ntrue\n', out)
  end)

  it('stdout:write and stderr:write work and keep order with print', function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      io.stdout:setvbuf('no')
      print('one')
      assert(cp.process.stdout:write('two\n') ~= nil)
      print('three')
      cp.process.stderr:write('to-stderr\n')
      cp.process.stdout:write('cb\n', function() io.write('written\n') end)
      cp.run()
    ]])
    assert.equal(0, status, err)
    assert.equal('one\ntwo\nthree\ncb\nwritten\n', out)
    assert.equal('to-stderr\n', err)
  end)

  it('stdin is a Readable of our stdin', function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      local got = ''
      cp.process.stdin:on('data', function(d) got = got .. d end)
      cp.process.stdin:on('end', function() io.write('[', got, ']') end)
      cp.run()
    ]], { stdin = 'piped\ninput' })
    assert.equal(0, status, err)
    assert.equal('[piped\ninput]', out)
  end)

  it('this process\'s stdin piped into wc', function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      local wc = cp.spawn('wc', { '-c' })
      cp.process.stdin:pipe(wc.stdin)
      wc.stdout:on('data', function(d) io.write(d) end)
      cp.run()
    ]], { stdin = string.rep('x', 100000) })
    assert.equal(0, status, err)
    assert.equal('100000', out:match('%d+'))
  end)

  it('exit(code) leaves with that status, after flushing', function()
    local out, status = luaproc([[
      local cp = require 'childproc'
      io.write('flushed')
      cp.process:exit(3)
      io.write('not reached')
    ]])
    assert.same({ 'flushed', 3 }, { out, status })
  end)
end)

describe('the module', function()
  it('leaves _G untouched', function()
    local out, status, err = luaproc([[
      local before = {}
      for k in pairs(_G) do before[k] = true end
      local mt = getmetatable(_G)
      local smt = getmetatable('')
      local cp = require 'childproc'
      local extra = {}
      for k in pairs(_G) do if not before[k] then extra[#extra + 1] = tostring(k) end end
      for k in pairs(before) do if _G[k] == nil then extra[#extra + 1] = '-' .. k end end
      table.sort(extra)
      print(#extra, table.concat(extra, ','), getmetatable(_G) == mt,
            getmetatable('') == smt, type(cp))
    ]])
    assert.equal(0, status, err)
    assert.equal('0\t\ttrue\ttrue\ttable\n', out)
  end)

  it('has version, signals both ways', function()
    assert.is_truthy(cp.version:match('^%d+%.%d+%.%d+$'))
    assert.equal(15, cp.signals.SIGTERM)
    assert.equal(9, cp.signals.SIGKILL)
    assert.equal('SIGTERM', cp.signals[15])
  end)

  it('closing a state with live children neither blocks nor crashes', function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      local c = cp.spawn('sleep', { '100' })
      io.write(c.pid)
      -- no run(), no wait: lua_close collects it
    ]], { timeout = 20 })
    assert.equal(0, status, err)
    local pid = tonumber(out)
    assert.is_truthy(pid)
    cp.kill(pid, 'SIGKILL')
  end)
end)
