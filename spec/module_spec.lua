-- The module table holds what docs/ documents (docs/ mirrors the
-- contract, ../shared/API.md), nothing private; the internals are
-- require 'childproc.internal' (lua_childproc.c), the same M as the module.
local cp = require 'childproc'

describe('the module table', function()
  it('has no private key: none starts with _', function()
    local private = {}
    for k in pairs(cp) do
      if type(k) ~= 'string' or k:sub(1, 1) == '_' then private[#private + 1] = tostring(k) end
    end
    table.sort(private)
    assert.same({}, private)
  end)

  it('holds only what docs/ documents (each key as cp.<key>)', function()
    local text = docs_text()
    local missing = {}
    for k in pairs(cp) do
      -- a whole name: cp.exec is not found inside cp.execSync
      if not (' ' .. text .. ' '):find('cp%.' .. k .. '[^%w_]') then
        missing[#missing + 1] = 'cp.' .. k
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)
end)

describe("require 'childproc.internal'", function()
  it("is the loaded module's namespace, not a second copy", function()
    local M = require 'childproc.internal'
    assert.equal(internal(), M)
    assert.equal(cp.spawn, M.spawn)
    assert.equal(cp.process, M.process)
    assert.equal(cp.version, M.core.version)
    assert.is_function(M.runmain)
    assert.is_function(M.launcher_main)
  end)

  it('loads the module when it is required first, once', function()
    local out, status, err = luaproc([[
      local M = require 'childproc.internal'
      local cp = package.loaded.childproc
      assert(type(cp) == 'table', 'package.loaded.childproc not set')
      assert(require 'childproc' == cp)
      assert(cp.spawn == M.spawn and cp.process == M.process, 'a second copy')
      assert(require 'childproc.internal' == M)
      print('ok', M.core.version == cp.version)
    ]])
    assert.equal(0, status, err)
    assert.equal('ok\ttrue\n', out)
  end)

  it("is found in an installed tree's childproc.so (LuaRocks' layout)", function()
    -- luarocks installs the one file as <tree>/lib/lua/<version>/childproc.so
    local tree = tmpname('-tree')
    local v = LUA == 'luajit' and '5.1' or LUA:match('%d+%.%d+$')
    local dir = tree .. '/lib/lua/' .. v
    local _, made = shell(('mkdir -p %s && cp %s %s/childproc.so'):format(dir, SOPATH, dir))
    assert.equal(0, made)
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      local M = require 'childproc.internal'
      print(cp.spawn == M.spawn, M.core.sopath())
    ]], { env = { LUA_CPATH = dir .. '/?.so' } })
    shell('rm -rf ' .. tree)
    assert.equal(0, status, err)
    assert.equal('true\t' .. dir .. '/childproc.so\n', out)
  end)

  -- fork's bootstrap loads the parent's file through its
  -- luaopen_childproc_internal (every fork spec); a child of another Lua
  -- with no build beside the parent's file requires the module instead
  local other = LUA == 'lua5.4' and 'lua5.1' or 'lua5.4'
  local have = readfile(ROOT .. '/build/' .. other .. '/childproc.so') ~= nil
  only_if(have, 'needs build/' .. other .. ' (make LUA=' .. other .. ')')(
    "is how a forked child of another Lua starts through its LUA_CPATH", function()
    local tree = tmpname('-tree')
    local _, made = shell(('mkdir -p %s && cp %s %s/childproc.so'):format(tree, SOPATH, tree))
    assert.equal(0, made)
    local parent = [[
      local cp = require 'childproc'
      local function go(cpath)
        local c = cp.fork('spec/fixtures/version_echo.lua', {}, { execPath = arg[1],
          stdio = { 'ignore', 'ignore', 'pipe', 'ipc' },
          env = { PATH = os.getenv('PATH'), LUA_CPATH = cpath } })
        local got, err = nil, ''
        c.stderr:on('data', function(d) err = err .. d end)
        c:on('message', function(m) got = m.lua; c:disconnect() end)
        c:send('x')
        cp.run()
        return tostring(got) .. ' ' .. tostring(c.exitCode), err
      end
      print(go(arg[2]))
      print(go('/nonexistent/?.so'))
    ]]
    local out, status, err = luaproc(parent, { args = { other, ROOT .. '/build/' .. other .. '/?.so' },
                                               env = { LUA_CPATH = tree .. '/?.so' } })
    shell('rm -rf ' .. tree)
    assert.equal(0, status, err)
    local first, second = out:match('^([^\n]*)\n(.*)$')
    local want = other == 'lua5.1' and 'Lua 5.1' or 'Lua 5.4'
    assert.equal(want .. ' 0\t', first)
    assert.truthy(second:find("^nil 1\t.*module 'childproc' not found"), second)
  end)
end)
