-- Every Lua: where numbers are doubles (5.1, 5.2, LuaJIT) integers of at
-- most 2^53 cross the channel exactly and a bigger one is refused, never
-- rounded; processes of different Luas talk over the same 'lua' format;
-- a child refuses a parent speaking another version of it.
require 'childproc'
local core = core()

local function rt(v)
  local out = {}
  local n, err = core.decoder('lua'):feed(core.lua_encode(v), out)
  assert.equal(1, n, err)
  return out[1]
end

-- a 'lua' frame holding one int64 (tag 5), its bytes little-endian
local function int64_frame(le8) return '\9\0\0\0\5' .. le8 end
local BEYOND = '\1\0\0\0\0\0\32\0'   -- 2^53 + 1

describe('numbers on every Lua', function()
  it('integers up to 2^53 and floats cross exactly', function()
    for _, v in ipairs({ 0, 1, -1, 2^31, -2^31 - 1, 2^53, -2^53, 2^53 - 1 }) do
      local r = rt(v)
      assert.equal(v, r)
      if INTEGERS then assert.equal(mtype(v), mtype(r)) end
    end
    for _, x in ipairs({ 0.5, -2.25, 1e300, 2^60 + 2^10, 5e-324 }) do
      assert.equal(x, rt(x))
    end
    assert.equal(-math.huge, 1 / rt(-NEGZ))
  end)

  only_if(not INTEGERS, 'has 64-bit integers: codec_spec')(
    'an integer beyond 2^53 is an error naming it, never rounded', function()
    local out = {}
    local n, err = core.decoder('lua'):feed(int64_frame(BEYOND), out)
    assert.is_nil(n)
    assert.truthy(err:find('integer 9007199254740993 cannot be held exactly', 1, true), err)
    n, err = core.decoder('json'):feed('{"n":[1,-9007199254740993]}\n', out)
    assert.is_nil(n)
    assert.truthy(err:find('integer -9007199254740993', 1, true), err)
    -- exactly 2^53 is held
    n, err = core.decoder('json'):feed('[9007199254740992,3,0.5]\n', out)
    assert.equal(1, n, err)
    assert.same({ 2^53, 3, 0.5 }, out[1])
  end)

  only_if(INTEGERS, 'its numbers are doubles: the spec above')(
    'an int64 frame beyond 2^53 is the integer itself', function()
    local out = {}
    assert.equal(1, core.decoder('lua'):feed(int64_frame(BEYOND), out))
    assert.equal(math.floor(2^53) + 1, out[1])
  end)

  it("'json' writes integers exactly, never in %.14g", function()
    assert.equal('[9007199254740992,-123456789012345,3,0.5]\n',
      core.json_encode({ math.floor(2^53), -123456789012345, 3, 0.5 }))
  end)
end)

-- the builds of the other Luas (make LUA=...), for the mixed specs
local function built(lua)
  return readfile(ROOT .. '/build/' .. lua .. '/childproc.so') ~= nil
end

-- lua forks FIX/version_echo.lua under child, sends msgs, prints what came back
local PARENT = [[
local cp = require 'childproc'
local child = cp.fork('spec/fixtures/version_echo.lua', {}, { execPath = arg[1], silent = true })
child.stdout:on('data', function(d) io.write('child stdout: ', d) end)
child:on('error', function(e) print('parent error: ' .. tostring(e.message)) end)
child:on('message', function(m)
  if m.back then
    print(('%s got n=%.17g (%s) f=%s s=%s'):format(m.lua, m.back.n, tostring(m.ntype), m.back.f, m.back.s))
  end
end)
child:on('close', function(code) print('close', code) end)
child:send({ n = 2^53, f = 0.5, s = 'x' })
child:send(arg[2] == 'big' and 'big' or (math.tointeger and math.tointeger(2^53) + 1 or 'none'))
cp.setTimeout(function() if child.connected then child:disconnect() end end, 2000):unref()
cp.run()
]]

local function mixed(parent, child, mode)
  local out, status, err = luaproc(PARENT, { lua = parent, args = { child, mode } })
  assert.equal(0, status, err)
  return out
end

describe('Luas of different versions on one channel', function()
  local have = built('lua5.4') and built('luajit') and built('lua5.1')
  local need = 'needs build/lua5.4, build/luajit and build/lua5.1 (make LUA=...)'

  only_if(have, need)('a 5.4 parent forks a LuaJIT and a 5.1 child; 2^53 + 1 is refused there', function()
    for _, child in ipairs({ 'luajit', 'lua5.1' }) do
      local out = mixed('lua5.4', child)
      assert.truthy(out:find('got n=9007199254740992 (number) f=0.5 s=x', 1, true), out)
      assert.truthy(out:find('child stdout: error: IPC channel: integer 9007199254740993 cannot be held exactly', 1, true), out)
      assert.truthy(out:find('close\t0', 1, true), out)
    end
  end)

  only_if(have, need)('a LuaJIT parent forks a 5.4 child, which sees an integer; its maxinteger is refused', function()
    local out = mixed('luajit', 'lua5.4', 'big')
    assert.truthy(out:find('Lua 5.4 got n=9007199254740992 (integer) f=0.5 s=x', 1, true), out)
    assert.truthy(out:find('parent error: IPC channel: integer 9223372036854775807 cannot be held exactly', 1, true), out)
    assert.truthy(out:find('close\t0', 1, true), out)
  end)

  it('a child refuses a parent speaking another version of the format', function()
    local r = collect('sh', { '-c', 'CHILDPROC_WIRE=99 exec "$0" -e "require [[childproc]]"', LUA },
      { stdio = { 'ignore', 'pipe', 'pipe', 'ipc' } })
    assert.equal(1, r.code)
    assert.truthy(r.stderr:find("parent speaks version 99 of the 'lua' wire format", 1, true), r.stderr)
  end)
end)
