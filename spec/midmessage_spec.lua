-- A forked child dies (SIGKILL) in the middle of sending a 64 MiB
-- message: the parent gets 'exit', 'disconnect' and 'close', every message
-- sent whole before, not the partial one, and its memory back.
local cp = require 'childproc'

local FIX = ROOT .. '/spec/fixtures/'

local function state(pid)
  local st = procstat(pid)
  return st and st.state
end

for _, mode in ipairs({ 'lua', 'json' }) do
  describe("a child killed mid-message ('" .. mode .. "')", function()
    leakcheck()

    it("delivers the whole messages before, drops the partial one, frees its memory", function()
      collectgarbage(); collectgarbage()
      local kb0, rss0 = collectgarbage('count'), rss_kib()
      local child = cp.fork(FIX .. 'fork_midmessage.lua', {}, {
        serialization = mode, env = childenv({ LUA_CPATH = CPATH }) })
      local rec = recorder()
      rec:listen(child, { 'exit', 'disconnect', 'close', 'error' })
      local sizes = {}
      child:on('message', function(m)
        sizes[#sizes + 1] = type(m) == 'table' and m.i or ('big ' .. #m)
      end)
      -- stopped with the big one under way (its first part in the channel)
      poll_until(function() return state(child.pid) == 'T' end, 10000, 'the child to stop')
      assert.is_true(child:kill('SIGKILL'))
      run_until(function() return rec:index('close') end, 10000, "'close'")
      assert.same({ 1, 2, 3, 4, 5 }, sizes)
      local names = rec:names()
      assert.equal('close', names[#names])
      assert.is_truthy(rec:index('exit'))
      assert.is_truthy(rec:index('disconnect'))
      assert.equal('SIGKILL', rec:get('exit')[3])
      child = nil
      rec = nil
      collectgarbage(); collectgarbage()
      local kb1 = collectgarbage('count')
      -- the partial frame (up to 64 MiB) is not kept: within 1 MiB of the start
      assert.is_true(kb1 - kb0 < 1024, ('Lua memory %.0f KiB -> %.0f KiB'):format(kb0, kb1))
      -- and the C side's buffers (a 64 MiB one kept would show; ASan's
      -- quarantine holds up to 16 MiB; memcheck has its own heap)
      if not os.getenv('CHILDPROC_VALGRIND') then
        local rss1 = rss_kib()
        assert.is_true(rss1 - rss0 < 32 * 1024, ('RSS %d KiB -> %d KiB'):format(rss0, rss1))
      end
    end)
  end)
end
