-- kill: names and numbers, groups, detached children, cp.kill.
local cp = require 'childproc'

-- first line a child writes to stdout
local function first_line(child)
  local buf = ''
  child.stdout:on('data', function(d) buf = buf .. d end)
  run_until(function() return buf:find('\n', 1, true) end, 10000, 'a line')
  return buf:match('^([^\n]*)')
end

describe('kill', function()
  leakcheck()

  describe('child:kill', function()
    it('defaults to SIGTERM', function()
      local c = cp.spawn('sleep', { '100' })
      assert.is_true(c:kill())
      assert.same({ n = 2, nil, 'SIGTERM' }, table.pack(c:wait()))
      assert.is_true(c.killed)
    end)

    for _, case in ipairs({
      { 'SIGKILL', 'SIGKILL' }, { 'SIGINT', 'SIGINT' }, { 'SIGHUP', 'SIGHUP' },
      { 9, 'SIGKILL' }, { 15, 'SIGTERM' }, { 2, 'SIGINT' },
      { cp.signals.SIGUSR1, 'SIGUSR1' },
    }) do
      it(('takes %s and reports %s'):format(tostring(case[1]), case[2]), function()
        local c = cp.spawn('sleep', { '100' })
        assert.is_true(c:kill(case[1]))
        assert.same({ n = 2, nil, case[2] }, table.pack(c:wait()))
      end)
    end

    it('refuses an unknown signal name with a Lua error', function()
      local c = cp.spawn('sleep', { '100' })
      for _, bad in ipairs({ 'SIGNOPE', 'NOPE', 'sigterm ', 99999, -1, {}, true }) do
        local ok, err = pcall(c.kill, c, bad)
        assert.is_false(ok, 'kill(' .. tostring(bad) .. ') did not raise')
        assert.is_truthy(tostring(err):find('kill', 1, true), tostring(err))
      end
      assert.is_true(alive(c.pid))   -- none of them reached the child
      c:kill('SIGKILL')
      c:wait()
    end)

    it('returns false once the child has exited, and does not raise', function()
      local c = cp.spawn('true')
      wait_close(c)
      assert.is_false(c:kill())
      assert.is_false(c:kill('SIGKILL'))
    end)

    it('signal 0 probes without killing', function()
      local c = cp.spawn('sleep', { '100' })
      assert.is_true(c:kill(0))
      assert.is_true(alive(c.pid))
      assert.is_false(c.killed)
      c:kill('SIGKILL')
      c:wait()
    end)

    it('children start with default dispositions: a caught-nothing SIGUSR1 kills', function()
      -- the default action of SIGUSR1 is to terminate; if the child had
      -- inherited an ignored disposition it would survive
      local out, status, err = luaproc([[
        local cp = require 'childproc'
        local c = cp.spawn('sleep', { '100' }, { stdio = 'ignore' })
        c:kill('SIGUSR1')
        print(c:wait())
      ]], { pre = "trap '' USR1 PIPE INT;" })
      assert.equal(0, status, err)
      assert.equal('nil\tSIGUSR1\n', out)
    end)
  end)

  describe('the timeout option', function()
    it('sends killSignal (default SIGTERM) when the time passes', function()
      local c = cp.spawn('sleep', { '100' }, { timeout = 50 })
      assert.same({ n = 2, nil, 'SIGTERM' }, table.pack(c:wait()))
    end)

    it('sends the given killSignal', function()
      local c = cp.spawn('sleep', { '100' }, { timeout = 50, killSignal = 'SIGKILL' })
      assert.same({ n = 2, nil, 'SIGKILL' }, table.pack(c:wait()))
      local c2 = cp.spawn('sleep', { '100' }, { timeout = 50, killSignal = 2 })
      assert.same({ n = 2, nil, 'SIGINT' }, table.pack(c2:wait()))
    end)

    it('does nothing to a child that ends in time', function()
      local c = cp.spawn('true', {}, { timeout = 60000 })
      assert.same({ n = 2, 0, nil }, table.pack(c:wait()))
      -- and its timer does not keep the loop alive
      assert.is_false(run_all())
    end)
  end)

  describe('cp.kill', function()
    it('signals a pid and returns true', function()
      local c = cp.spawn('sleep', { '100' })
      assert.same({ n = 1, true }, table.pack(cp.kill(c.pid, 'SIGKILL')))
      assert.same({ n = 2, nil, 'SIGKILL' }, table.pack(c:wait()))
    end)

    it('returns nil, err (ESRCH) for no such process', function()
      local ok, err = cp.kill(0x7ffffff0, 'SIGTERM')
      assert.is_nil(ok)
      assert.equal('ESRCH', err.code)
      assert.equal(-3, err.errno)
      assert.equal('string', type(tostring(err)))
    end)

    it('raises for a bad signal or pid', function()
      assert.is_false((pcall(cp.kill, MYPID, 'SIGBOGUS')))
      assert.is_false((pcall(cp.kill, 'x')))
      assert.is_false((pcall(cp.kill)))
    end)
  end)

  describe('process groups', function()
    local script = 'sleep 100 & echo $!; wait'

    it('processGroup = true: the child leads a group, in our session', function()
      local c = cp.spawn('sh', { '-c', script }, { processGroup = true })
      local gpid = tonumber(first_line(c))
      local st, gst, me = procstat(c.pid), procstat(gpid), procstat('self')
      assert.equal(c.pid, st.pgrp)
      assert.equal(me.session, st.session)     -- not a new session
      assert.equal(c.pid, gst.pgrp)            -- the grandchild is in it
      assert.is_true(c:kill('SIGTERM', { group = true }))
      assert.same({ n = 2, nil, 'SIGTERM' }, table.pack(c:wait()))
      -- the grandchild got it too
      poll_until(function() return not alive(gpid) end, 10000, 'grandchild gone')
    end)

    it('without group = true only the child is signalled (grandchild survives)', function()
      local c = cp.spawn('sh', { '-c', script }, { processGroup = true })
      local gpid = tonumber(first_line(c))
      -- the shell waits for sleep, which keeps our stdout pipe open: so
      -- wait for 'exit', not 'close'
      local exited, closed
      c:on('exit', function(_, sig) exited = sig end)
      c:on('close', function() closed = true end)
      assert.is_true(c:kill('SIGTERM'))
      run_until(function() return exited end)
      assert.equal('SIGTERM', exited)
      assert.is_true(alive(gpid))
      assert.is_true(cp.kill(-c.pid, 'SIGKILL'))   -- a negative pid: the group
      poll_until(function() return not alive(gpid) end, 10000, 'grandchild gone')
      run_until(function() return closed end, 10000, "'close'")
    end)

    it('kill(sig, {group = true}) on a child that leads no group raises', function()
      local c = cp.spawn('sleep', { '100' })
      local ok, err = pcall(c.kill, c, 'SIGTERM', { group = true })
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('group', 1, true), tostring(err))
      assert.is_true(alive(c.pid))
      c:kill('SIGKILL')
      c:wait()
    end)
  end)

  describe('detached', function()
    it('the child leads its own session and group', function()
      local c = cp.spawn('sleep', { '100' }, { detached = true, stdio = 'ignore' })
      local st = procstat(c.pid)
      assert.equal(c.pid, st.session)
      assert.equal(c.pid, st.pgrp)
      assert.is_true(c:kill('SIGTERM', { group = true }))
      assert.same({ n = 2, nil, 'SIGTERM' }, table.pack(c:wait()))
    end)

    it('a child that is not detached shares our session and group', function()
      local c = cp.spawn('sleep', { '100' }, { stdio = 'ignore' })
      local st, me = procstat(c.pid), procstat('self')
      assert.equal(me.session, st.session)
      assert.equal(me.pgrp, st.pgrp)
      c:kill('SIGKILL')
      c:wait()
    end)

    it('an unref\'d detached child keeps running after its parent exits', function()
      local out, status, err = luaproc([[
        local cp = require 'childproc'
        local c = cp.spawn('sleep', { '100' }, { detached = true, stdio = 'ignore' })
        c:unref()
        io.write(c.pid, '\n')
        io.stdout:flush()
        cp.run()          -- returns: nothing referenced
        io.write('parent done\n')
      ]])
      assert.equal(0, status, err)
      local pid = tonumber(out:match('^(%d+)\n'))
      assert.is_truthy(pid, out)
      assert.is_truthy(out:find('parent done\n', 1, true))
      -- the parent is gone; the child is not
      local ok = alive(pid)
      local st = procstat(pid)
      cp.kill(pid, 'SIGKILL')
      assert.is_true(ok, 'the detached child died with its parent')
      assert.equal(pid, st.session)
      assert.equal('sleep', st.comm)
      poll_until(function() return not alive(pid) end, 10000, 'child gone')
    end)
  end)
end)
