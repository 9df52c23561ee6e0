-- One dispatcher: a batch of messages reaches its listeners the same way
-- whatever the serialization, the number of listeners, or what drives
-- the loop.  Five messages wait together (the child has exited); the
-- listener raises on each: every one is delivered, in order, each once,
-- and what drives the loop raises the first error (the others are lost
-- with it, as cp.run() keeps one), with nothing left to raise after.
local cp = require 'childproc'

local FIX = ROOT .. '/spec/fixtures/'

-- drivers: run the loop until the child's 'close', collecting what the
-- loop raises (each returns the list of errors raised)
local function bounded(fn)
  local guard = cp.setTimeout(function() error('no close after 10 s', 0) end, 10000)
  guard:unref()
  local errs = fn()
  guard:close()
  return errs
end

local drivers = {
  ['cp.run()'] = function(_, closed)
    return bounded(function()
      local errs = {}
      while not closed() do
        local ok, err = pcall(cp.run)
        if not ok then errs[#errs + 1] = tostring(err):match('^[^\n]*') end
      end
      return errs
    end)
  end,
  ['child:wait()'] = function(child, closed)
    return bounded(function()
      local errs = {}
      while not closed() do
        local ok, err = pcall(child.wait, child)
        if not ok then errs[#errs + 1] = tostring(err):match('^[^\n]*') end
      end
      return errs
    end)
  end,
  ["a host loop (cp.loop, cp.run('nowait'))"] = function(_, closed)
    return bounded(function()
      local errs = {}
      local pollfd = cp.loop:pollfd()
      while not closed() do
        local t = cp.loop:timeout()
        core().poll({ pollfd }, { 1 }, t and t * 1000 or 1000, {})
        local ok, err = pcall(cp.run, 'nowait')
        if not ok then errs[#errs + 1] = tostring(err):match('^[^\n]*') end
      end
      return errs
    end)
  end,
}

describe('a batch of messages whose listener raises', function()
  leakcheck()
  for _, ser in ipairs({ 'lua', 'json' }) do
    for _, extra in ipairs({ false, true }) do
      for dname, drive in pairs(drivers) do
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
          local errs = drive(child, function() return closed end)
          assert.same({ 1, 2, 3, 4, 5 }, got)
          assert.same({ 'boom 1' }, errs)
          assert.is_false(cp.run('nowait'))
        end)
      end
    end
  end
end)
