-- The build's lists agree with each other.
local function make_var(name, keep_order)
  local p = io.popen('make -s --no-print-directory -f Makefile -f - print 2>/dev/null <<\'EOF\'\nprint:\n\t@echo $(' .. name .. ')\nEOF')
  local out = p:read('a')
  p:close()
  local list = {}
  for w in out:gmatch('%S+') do list[#list + 1] = w end
  if not keep_order then table.sort(list) end
  return list
end

describe('build', function()
  it('the rockspec compiles the same C sources as the Makefile', function()
    local env = {}
    assert(loadfile('childproc-scm-1.rockspec', 't', env))()
    local sources = { table.unpack(env.build.modules.childproc.sources) }
    table.sort(sources)
    assert.same(make_var('SOURCES'), sources)
  end)

  it('src/lua_chunks.h is up to date with lua/', function()
    local tmp = os.tmpname()
    local files = make_var('LUA_SOURCES', true)
    assert.is_true(os.execute('lua5.4 tools/embed.lua ' .. tmp .. ' ' .. table.concat(files, ' ')))
    local fresh, committed = readfile(tmp), readfile('src/lua_chunks.h')
    os.remove(tmp)
    assert.is_true(fresh == committed, 'run make: src/lua_chunks.h is stale')
  end)

  it('loads the Lua layer precompiled, debug information kept', function()
    local cp = require 'childproc'
    -- this build's Lua is the release that made src/lua_chunks.h (CI
    -- and the developers use Debian's lua5.4 for both)
    assert.is_true(cp._core.precompiled)
    -- tracebacks still name the file and line
    local info = debug.getinfo(cp._M.start, 'SL')
    assert.equal('childproc/child.lua', info.short_src)
    assert.is_true(info.linedefined > 0)
    assert.truthy(next(info.activelines), 'no line information')
  end)

  it('compiles with the compat header only for version-specific calls', function()
    local hits = io.popen("grep -l 'lua_newuserdatauv\\|lua_getiuservalue\\|lua_setiuservalue' lua_childproc.c src/*.c"):read('a')
    assert.same('', hits)
  end)
end)
