-- Tasks: cp.async(fn, ...) runs fn as a coroutine the loop resumes.  In
-- a task, child:wait() and cp.sleep(ms) yield to the loop instead of
-- running it nested, so any number of tasks wait at once and each
-- resumes as soon as what it waits for is done.  Every yield is a
-- coroutine.yield in this file's Lua, and every resume comes from the
-- loop's queue or a timer (no C frame in between: Lua 5.1 and LuaJIT
-- cannot yield across one).
local core, M = ...

local create, resume, yield, running, cstatus =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.running,
  coroutine.status
local traceback, type, select = debug.traceback, type, select

local tasks = setmetatable({}, { __mode = 'k' })   -- coroutine -> true

-- the task running now, or nil (the main chunk, a callback, a coroutine
-- of the user's own)
-- (on 5.1 a protected call inside a coroutine runs in a coroutine of
-- its own, which passes its yields on: M.outer leads to the task)
local outer = M.outer
local function current()
  local co = running()
  while co and not tasks[co] do co = outer and outer[co] end
  return co
end
M.current_task = current

-- Resume task co (from the loop).  An error leaves cp.run() with the
-- task's traceback, as a callback's error does.
local function step(co)
  if cstatus(co) ~= 'suspended' then return end
  local ok, err = resume(co)
  if not ok then
    tasks[co] = nil
    if type(err) == 'string' then err = traceback(co, err) end
    M.fail(err)
  elseif cstatus(co) == 'dead' then
    tasks[co] = nil
  end
end

-- cp.async(fn, ...): fn(...) starts from the loop, as every callback does
function M.async(...)
  local fn = M.checkfunc('async', 1, (...), false, select('#', ...))
  local args = M.pack(select(2, ...))
  local co = create(function() return fn(M.unpack(args, 1, args.n)) end)
  tasks[co] = true
  M.defer(step, co)
end

-- child:wait() -> exitCode, signalCode [, stdout, stderr] once the child
-- has closed (stdout and stderr for an exec/execFile child)
local cself, closed = M.cself, M.child_closed
local function results(s)
  local out = s.execout
  if out then return s.exitCode, s.signalCode, out[1], out[2] end
  return s.exitCode, s.signalCode
end

function M.child_methods.wait(self)
  local s = cself(self)
  if not closed(s) then
    local co = current()
    if co then
      local list = s.waiters
      if not list then list = {}; s.waiters = list end
      list[#list + 1] = co
      repeat yield() until closed(s)
    else
      M.unhooked(M.run_until, function() return closed(s) end)  -- (lua/main.lua)
    end
  end
  return results(s)
end

-- the child has closed (lua/child.lua): its waiting tasks go on, each
-- from the queue, in the order they started waiting
function M.wake_waiters(s)
  local list = s.waiters
  s.waiters = nil
  for i = 1, #list do M.defer(step, list[i]) end
end

local NOARGS = { n = 0 }

-- cp.sleep(ms): a task yields that long (a referenced timer keeps the
-- loop going meanwhile); elsewhere the loop runs that long
function M.sleep(...)
  local ms = ...
  if type(ms) ~= 'number' then M.typeerror('sleep', 1, ms, 'number', nil, select('#', ...)) end
  if ms ~= ms or ms < 0 then ms = 0 end
  local co, done = current(), false
  local t = { ms = ms, refed = true, args = NOARGS }
  t.fn = function()
    done = true
    if co then step(co) end
  end
  M.timer_start(t)
  if co then
    repeat yield() until done
  else
    M.unhooked(M.run_until, function() return done end)
  end
end
