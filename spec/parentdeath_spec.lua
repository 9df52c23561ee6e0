-- This process dies: what becomes of its children (parentDeathSignal,
-- a forked child's channel).  Each case runs a Lua parent that starts
-- grandchildren, prints their pids, and is SIGKILLed by the spec.
local cp = require 'childproc'

local PARENT = ROOT .. '/spec/fixtures/pdeath_parent.lua'
local ENV = childenv({ LUA_CPATH = CPATH })

-- start the parent and read its first line (its pids)
local function parent_of(how, extra)
  local args = { PARENT, how }
  if extra then args[#args + 1] = extra end
  local p = cp.spawn(cp.process.execPath, args, { env = ENV, stdio = { 'ignore', 'pipe', 'inherit' } })
  local text = ''
  p.stdout:on('data', function(c) text = text .. c end)
  run_until(function() return text:find('\n') end, 10000, "the parent's first line")
  return p, function() return text end
end

local function kill_parent(p)
  local exited
  p:on('exit', function(_, sig) exited = sig end)
  assert(p:kill('SIGKILL'))
  run_until(function() return exited end, 5000, "the parent's exit")
  assert.equal('SIGKILL', exited)
end

describe('parentDeathSignal', function()
  leakcheck()

  it('kills a spawned child when its parent is SIGKILLed; without it, the child lives on', function()
    local p, text = parent_of('spawn')
    local with, without = text():match('^(%d+) (%d+)\n')
    with, without = tonumber(with), tonumber(without)
    finally(function() cp.kill(with, 'SIGKILL'); cp.kill(without, 'SIGKILL') end)
    assert.is_true(alive(with) and alive(without))
    kill_parent(p)
    poll_until(function() return not alive(with) end, 5000, 'the child with the option to die')
    -- the one without was started in the same turn: it is still there
    assert.is_true(alive(without), 'the child without parentDeathSignal died too')
    cp.kill(without, 'SIGKILL')
    poll_until(function() return not alive(without) end, 5000, 'the other child to die')
    run_until(function() return internal().child_closed(internal().cself(p)) end, 5000, "the parent's 'close'")
  end)

  it('applies to exec and execFile (names and numbers)', function()
    local p, text = parent_of('exec')
    local a, b = text():match('^(%d+) (%d+)\n')
    a, b = tonumber(a), tonumber(b)
    finally(function() cp.kill(a, 'SIGKILL'); cp.kill(b, 'SIGKILL') end)
    assert.is_true(alive(a) and alive(b))
    kill_parent(p)
    poll_until(function() return not alive(a) and not alive(b) end, 5000,
      'the exec children to die')
    run_until(function() return internal().child_closed(internal().cself(p)) end, 5000, "the parent's 'close'")
  end)

  it('is validated like killSignal', function()
    for _, f in ipairs({
      function() cp.spawn('true', { parentDeathSignal = 'SIGFOO' }) end,
      function() cp.fork('x.lua', { parentDeathSignal = 1000 }) end,
      function() cp.exec('true', { parentDeathSignal = true }, function() end) end,
      function() cp.execFile('true', {}, { parentDeathSignal = 'NOPE' }, function() end) end,
    }) do
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.is_truthy(err:find('unknown signal', 1, true)
        or err:find("option 'parentDeathSignal'", 1, true), err)
    end
    assert.same({}, children())
  end)

  -- core.spawn's 9th argument is read before its argv and env vectors are
  -- made: past 32 entries they are pushed on the stack, where spawnSync
  -- (which passes 8 arguments) had them read as the 9th
  it('leaves spawn and spawnSync with long argv and env alone', function()
    local env, args = childenv({}), { '-c', 'echo "$V40 $#"', 'sh' }
    for i = 1, 40 do env['V' .. i] = i; args[#args + 1] = 'a' .. i end
    local r = cp.spawnSync('sh', args, { env = env })
    assert.is_nil(r.error)
    assert.equal('40 40\n', r.stdout)
    r = collect('sh', args, { env = env, parentDeathSignal = 'SIGTERM' })
    assert.equal('40 40\n', r.stdout)
  end)

  it('a child started with it runs and exits as usual', function()
    local r = collect('sh', { '-c', 'echo hi; exit 3' }, { parentDeathSignal = 'SIGTERM' })
    assert.equal(3, r.code)
    assert.equal('hi\n', r.stdout)
  end)
end)

describe('a forked child whose parent is SIGKILLed', function()
  leakcheck()

  it("sees 'disconnect' and ends by itself", function()
    local p, text = parent_of('fork', ROOT .. '/spec/fixtures/pdeath_forked.lua')
    local pid = tonumber(text():match('^(%d+) ready\n'))
    finally(function() cp.kill(pid, 'SIGKILL') end)
    assert.is_true(alive(pid))
    kill_parent(p)
    run_until(function() return text():find('disconnect\n', 1, true) end, 5000,
      "the forked child's 'disconnect'")
    poll_until(function() return not alive(pid) end, 5000, 'the forked child to end')
    run_until(function() return internal().child_closed(internal().cself(p)) end, 5000, "the parent's 'close'")
  end)
end)

-- The race: this process dies after the clone but before the child has
-- set its parent-death signal (prctl), so the kernel never sends it.
-- The child then checks its parent after the prctl and signals itself.
-- strace (a real tracer, no mock) holds the child in its chdir, which
-- comes before the prctl, for 400 ms: the spec kills the parent (blocked
-- in the vfork clone meanwhile) once the child exists.  With the option
-- the child dies before its exec; without it, it runs.
local STRACE = io.open('/usr/bin/strace') and io.open('/usr/bin/strace'):close() and '/usr/bin/strace'
local can_trace = STRACE and os.execute(STRACE .. ' -qq -f -o /dev/null -e trace=chdir true >/dev/null 2>&1')
describe('parentDeathSignal when the parent dies before the child has started', function()
  leakcheck()
  for _, with in ipairs({ true, false }) do
    only_if(can_trace, 'no strace, or ptrace refused here')(
        with and 'kills the child before its exec' or 'without it, the child runs', function()
      local mark = tmpname('.mark')
      os.remove(mark)
      local code = ([[
local cp = require 'childproc'
io.write(cp.process.pid, '\n'); io.flush()
cp.spawn('sh', { '-c', 'echo ran > %s; exec sleep 30' }, { cwd = '/', stdio = 'ignore',
  parentDeathSignal = %s })
cp.run()]]):format(mark, with and "'SIGKILL'" or 'nil')
      local p = cp.spawn(STRACE, { '-qq', '-f', '-o', '/dev/null', '-e', 'trace=chdir',
        '-e', 'inject=chdir:delay_enter=400000', cp.process.execPath, '-e', code },
        { env = ENV, stdio = { 'ignore', 'pipe', 'inherit' } })
      local text = ''
      p.stdout:on('data', function(c) text = text .. c end)
      run_until(function() return text:find('\n') end, 10000, "the parent's pid")
      local parent = tonumber(text:match('^(%d+)\n'))
      local child
      poll_until(function()
        local f = io.open(('/proc/%d/task/%d/children'):format(parent, parent))
        local s = f and f:read('*a') or ''
        if f then f:close() end
        child = tonumber(s:match('%d+'))
        return child ~= nil
      end, 5000, 'the child to be cloned')
      finally(function() cp.kill(child, 'SIGKILL'); os.remove(mark) end)
      -- the clone is held in its chdir: the parent waits in the vfork
      assert.is_nil(readfile(mark))
      assert.is_true(cp.kill(parent, 'SIGKILL'))
      if with then
        poll_until(function() return not alive(child) end, 5000, 'the child to die')
        assert.is_nil(readfile(mark), 'the child ran its command')
      else
        poll_until(function() return readfile(mark) ~= nil end, 5000, 'the child to run')
        cp.kill(child, 'SIGKILL')
        poll_until(function() return not alive(child) end, 5000, 'the child to die')
      end
      wait_close(p, 10000)
    end)
  end
end)
