-- One dispatcher: a batch of messages reaches its listeners the same way
-- whatever the serialization, the number of listeners, or what drives
-- the loop.  Five messages wait together (the child has exited); the
-- listener raises on each: every one is delivered, in order, each once,
-- and what drives the loop raises the first error (the others are lost
-- with it, as cp.run() keeps one), with nothing left to raise after.
local cp = require 'childproc'

local FIX = ROOT .. '/spec/fixtures/'

-- Each driver turns the loop once, its own way; drive() turns it until
-- the child's 'close', collecting the first line of what each turn
-- raised, and gives up after 10 s (a guard timer wakes a blocked turn;
-- its error is caught with the others, so the deadline is checked here)
local drivers = {
  ['cp.run()'] = function() cp.run() end,
  ['child:wait()'] = function(child) child:wait() end,
  ["a host loop (cp.loop, cp.run('nowait'))"] = function()
    local t = cp.loop:timeout()
    core().poll({ cp.loop:pollfd() }, { 1 }, t and t * 1000 or 1000, {})
    cp.run('nowait')
  end,
}

local function drive(turn, child, closed)
  local guard = cp.setTimeout(function() error('no close after 10 s', 0) end, 10000)
  guard:unref()
  local errs, deadline = {}, core().now() + 10000
  while not closed() do
    if core().now() >= deadline then guard:close(); error("no 'close' after 10 s", 2) end
    local ok, err = pcall(turn, child)
    if not ok then errs[#errs + 1] = tostring(err):match('^[^\n]*') end
  end
  guard:close()
  return errs
end

describe('a batch of messages whose listener raises', function()
  leakcheck()
  for _, ser in ipairs({ 'lua', 'json' }) do
    for _, extra in ipairs({ false, true }) do
      for dname, turn in pairs(drivers) do
        it(('reaches it whole: %s, %s listener%s, %s'):format(ser,
            extra and 'two' or 'one', extra and 's' or '', dname), function()
          local child = cp.fork(FIX .. 'fork_burst.lua', { '5' }, { serialization = ser })
          local got, closed = {}, false
          child:on('message', function(m)
            got[#got + 1] = m.i
            error('boom ' .. m.i, 0)
          end)
          if extra then child:on('message', function() end) end
          child:on('close', function() closed = true end)
          exited(child)
          local errs = drive(turn, child, function() return closed end)
          assert.same({ 1, 2, 3, 4, 5 }, got)
          assert.same({ 'boom 1' }, errs)
          assert.is_false(cp.run('nowait'))
        end)
      end
    end
  end
end)
