-- How the module is built and loaded.
describe('build', function()
  it('the rockspec builds through the Makefile', function()
    local env = {}
    local f = assert(loadfile('childproc-scm-1.rockspec', 't', env))
    if rawget(_G, 'setfenv') then setfenv(f, env) end
    f()
    assert.equal('make', env.build.type)
    assert.equal('$(LIBDIR)', env.build.install_variables.INST_LIBDIR)
  end)

  it('loads the Lua layer precompiled, debug information kept', function()
    -- make writes src/lua_chunks.h with the interpreter it builds for
    assert.is_true(core().precompiled)
    -- tracebacks still name the file and line
    local info = debug.getinfo(internal().start, 'SL')
    assert.equal('childproc/child.lua', info.short_src)
    assert.is_true(info.linedefined > 0)
    assert.truthy(next(info.activelines), 'no line information')
  end)

  it('compiles with the compat header only for version-specific calls', function()
    local hits = io.popen("grep -l 'lua_newuserdatauv\\|lua_getiuservalue\\|lua_setiuservalue' lua_childproc.c src/*.c"):read('*a')
    assert.same('', hits)
  end)
end)
