-- Tasks (cp.async): child:wait() and cp.sleep() yield to the loop, so
-- each task resumes as soon as its own child closes.
local cp = require 'childproc'

local N = 50

-- durations 10, 20, ... N*10 ms, shuffled (the same way each run)
local function shuffled()
  local d = {}
  for i = 1, N do d[i] = i * 10 end
  local x = 14
  for i = N, 2, -1 do
    x = (x * 1103515245 + 12345) % 2147483648
    local j = x % i + 1
    d[i], d[j] = d[j], d[i]
  end
  return d
end

-- Start N waiters with `start` (cp.async, or a plain callback): waiter i
-- spawns a sleep of durations[i] ms and waits for it.  Returns the order
-- the waiters resumed in, the order the children closed in, the ms taken.
local function race(start)
  local durations = shuffled()
  local resumed, closed = {}, {}
  local t0 = core().now()
  for i = 1, N do
    start(function()
      local c = cp.spawn('sleep', { ('%.2f'):format(durations[i] / 1000) },
        { stdio = 'ignore' })
      c:on('close', function() closed[#closed + 1] = i end)
      assert.same({ 0, nil }, { c:wait() })
      resumed[#resumed + 1] = i
    end)
  end
  run_until(function() return #resumed == N end, 30000, 'every waiter')
  return resumed, closed, core().now() - t0, durations
end

describe('tasks', function()
  leakcheck()

  it('resume in the order their children end, not in the order they started', function()
    local resumed, closed = race(cp.async)
    assert.same(closed, resumed)
    -- the children were started in one order and ended in another
    local started = {}
    for i = 1, N do started[i] = i end
    assert.are_not.same(started, closed)
  end)

  it('all wait at once: done in about the longest wait, shortest first #timing', function()
    local resumed, _, ms, durations = race(cp.async)
    assert.is_true(ms < N * 10 + 1500, ('%.0f ms for a longest wait of %d ms'):format(ms, N * 10))
    -- the first to resume slept least, the last longest (roughly)
    assert.is_true(durations[resumed[1]] <= 100, 'first: ' .. durations[resumed[1]])
    assert.is_true(durations[resumed[N]] >= (N - 10) * 10, 'last: ' .. durations[resumed[N]])
  end)

  it('(nested waits, without tasks, resume last-started first)', function()
    local resumed, closed = race(function(fn) cp.setImmediate(fn) end)
    local lifo = {}
    for i = 1, N do lifo[i] = N + 1 - i end
    assert.same(lifo, resumed)
    assert.are_not.same(closed, resumed)
  end)

  it('get exec and execFile output from wait(), in a task and in a script', function()
    local code, sig, out, err = cp.exec('echo out; echo err >&2'):wait()
    assert.same({ 0, nil, 'out\n', 'err\n' }, { code, sig, out, err })
    local got
    cp.async(function()
      local r1 = { cp.exec('printf a; exit 3'):wait() }
      local r2 = { cp.execFile('printf', { 'b' }):wait() }
      got = { r1, r2 }
    end)
    run_until(function() return got end, 10000, 'the task')
    assert.same({ { 3, nil, 'a', '' }, { 0, nil, 'b', '' } }, got)
    -- a spawn child's wait has no output to return
    assert.same({ n = 2, 0, nil }, table.pack(cp.spawn('true'):wait()))
  end)

  it('sleep: a task yields, other tasks and callbacks go on', function()
    local order = {}
    cp.async(function() cp.sleep(60); order[#order + 1] = 'long' end)
    cp.async(function(tag) cp.sleep(5); order[#order + 1] = tag end, 'short')
    cp.setTimeout(function() order[#order + 1] = 'timer' end, 30)
    run_until(function() return #order == 3 end, 5000, 'the sleeps')
    assert.same({ 'short', 'timer', 'long' }, order)
  end)

  it('sleep outside a task runs the loop that long', function()
    local fired = false
    cp.setTimeout(function() fired = true end, 5)
    local t0 = core().now()
    cp.sleep(30)
    assert.is_true(fired)
    assert.is_true(core().now() - t0 >= 29)
  end)

  it('start from the loop, with their arguments, and may wait for a closed child', function()
    local c = cp.spawn('true')
    c:wait()
    local got
    cp.async(function(a, b, ...)
      got = { a, b, select('#', ...), c:wait() }
    end, 'x', nil, nil)
    assert.is_nil(got)           -- not before the loop runs
    run_until(function() return got end, 5000, 'the task')
    assert.same({ 'x', nil, 1, 0, nil }, got)
  end)

  it('leave cp.run() with their error and its traceback; the loop goes on', function()
    local line = debug.getinfo(1, 'l').currentline
    cp.async(function()
      cp.spawn('true'):wait()
      error('boom in a task')
    end)
    local ok, err = pcall(cp.run)
    assert.is_false(ok)
    err = tostring(err)
    assert.equal(1, err:find(('spec/task_spec.lua:%d: boom in a task'):format(line + 3), 1, true), err)
    assert.truthy(err:find('stack traceback:', 1, true), err)
    -- the traceback is the task's: it shows the line that raised
    assert.truthy(err:find(('task_spec.lua:%d: in'):format(line + 3), 1, true), err)
    -- an error object stays what it was
    local e = setmetatable({}, { __tostring = function() return 'obj' end })
    cp.async(function() cp.sleep(1); error(e) end)
    ok, err = pcall(cp.run)
    assert.is_false(ok)
    assert.equal(e, err)
    assert.is_false(cp.run())
  end)
end)
