-- childproc inside a real host: Neovim (LuaJIT, its own libuv loop) runs
-- examples/neovim.lua, which drives childproc from vim.loop.  Runs with
-- the LuaJIT build (make test LUA=luajit): Neovim's Lua is LuaJIT.
local has_nvim = os.execute('command -v nvim >/dev/null 2>&1')
has_nvim = has_nvim == true or has_nvim == 0

describe('Neovim as the host', function()
  only_if(LUA == 'luajit' and has_nvim,
    LUA ~= 'luajit' and "Neovim's Lua is LuaJIT: make test LUA=luajit" or 'no nvim installed')(
    'runs a pipeline, a fork with messages and a group kill from vim.loop, its timers ticking', function()
    local out, status, err = shell(('cd %s && LUA_CPATH=%s timeout -k 2 30 nvim --headless -u NONE'
      .. " -c 'luafile examples/neovim.lua' -c 'qa!'"):format(shq(ROOT), shq(CPATH)))
    assert.equal(0, status, err)
    local lines = {}
    for l in out:gmatch('[^\n]+') do lines[l] = true end
    assert.is_true(lines['pipeline: apple fig pear  exit 0'], out)
    assert.is_true(lines['fork: replies 2,4,6 exit 0'], out)
    assert.is_true(lines['group: close nil SIGTERM'], out)
    assert.is_true(lines['neovim timer ticks while childproc ran: yes'], out)
    assert.is_true(lines['neovim: all done'], out)
  end)
end)
