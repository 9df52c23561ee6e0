-- setTimeout, setInterval, setImmediate and their Timer objects.
local core, M = ...

local methods = {}
local Timer, tself = core.class('childproc.Timer', methods, {
  __close = M.CLOSE and function(self) self:close() end or nil,
})

local function new(fname, nargs, rep, fn, ms, ...)
  M.checkfunc(fname, 1, fn, false, nargs)
  if ms ~= nil and type(ms) ~= 'number' then  -- as luaL_optnumber
    ms = type(ms) == 'string' and tonumber(ms) or M.typeerror(fname, 2, ms, 'number')
  end
  ms = ms or 0
  if ms < 1 or ms ~= ms then ms = 1 end  -- as Node: at least 1 ms
  if ms > 2147483647 then ms = 1 end
  local t = { ms = ms, fn = fn, args = M.pack(...), refed = true,
              rep = rep and ms or nil }
  M.timer_start(t)
  return core.object(Timer, t)
end

function M.setTimeout(...) return new('setTimeout', select('#', ...), false, ...) end
function M.setInterval(...) return new('setInterval', select('#', ...), true, ...) end

-- setImmediate: after the current turn's I/O, before the next wait
function M.setImmediate(...)
  local t = new('setImmediate', select('#', ...), false, (...), 0, select(2, ...))
  local s = tself(t)
  M.timer_stop(s)
  s.active, s.refed = true, true
  M.ref()
  local args = s.args
  M.defer(function()
    if not s.active then return end
    s.active = false
    if s.refed then M.unref() end
    s.fn(M.unpack(args, 1, args.n))
  end)
  s.immediate = true
  return t
end

local function stop(s)
  if s.immediate then
    if s.active then
      s.active = false
      if s.refed then M.unref() end
    end
  else
    M.timer_stop(s)
  end
end
-- clearTimeout(t), clearInterval(t), clearImmediate(t): nil is no timer
local function clear(fname)
  return function(t)
    if t == nil then return end
    if getmetatable(t) ~= Timer then M.typeerror(fname, 1, t, 'childproc.Timer') end
    stop(tself(t))
  end
end
M.clearTimeout, M.clearInterval = clear('clearTimeout'), clear('clearInterval')
M.clearImmediate = clear('clearImmediate')

function methods.close(self) stop(tself(self)); return self end

function methods.ref(self)
  local s = tself(self)
  if s.immediate then
    if not s.refed and s.active then M.ref() end
    s.refed = true
  else
    M.timer_ref(s, true)
  end
  return self
end

function methods.unref(self)
  local s = tself(self)
  if s.immediate then
    if s.refed and s.active then M.unref() end
    s.refed = false
  else
    M.timer_ref(s, false)
  end
  return self
end

function methods.hasRef(self) return tself(self).refed end

function methods.refresh(self)
  local s = tself(self)
  if not s.immediate then M.timer_start(s) end
  return self
end
