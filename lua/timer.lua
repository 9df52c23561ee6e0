-- setTimeout, setInterval, setImmediate and their Timer objects.
local core, M = ...

local methods = {}
local Timer, tself = core.class('childproc.Timer', methods, {
  __close = M.CLOSE and function(self) self:close() end or nil,
})

local function new(fname, fn, ms, rep, ...)
  if type(fn) ~= 'function' then
    local mt = getmetatable(fn)
    if not (mt and mt.__call) then
      error(("bad argument #1 to '%s' (function expected, got %s)")
        :format(fname, type(fn)), 3)
    end
  end
  ms = tonumber(ms) or 0
  if ms < 1 or ms ~= ms then ms = 1 end  -- as Node: at least 1 ms
  if ms > 2147483647 then ms = 1 end
  local t = { ms = ms, fn = fn, args = M.pack(...), refed = true,
              rep = rep and ms or nil }
  M.timer_start(t)
  return core.object(Timer, t)
end

function M.setTimeout(fn, ms, ...) return new('setTimeout', fn, ms, false, ...) end
function M.setInterval(fn, ms, ...) return new('setInterval', fn, ms, true, ...) end

-- setImmediate: after the current turn's I/O, before the next wait
function M.setImmediate(fn, ...)
  local t = new('setImmediate', fn, 0, false, ...)
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

local function stop(t)
  if t == nil then return end
  local s = tself(t)
  if s.immediate then
    if s.active then
      s.active = false
      if s.refed then M.unref() end
    end
  else
    M.timer_stop(s)
  end
end
M.clearTimeout, M.clearInterval, M.clearImmediate = stop, stop, stop

function methods.close(self) stop(self); return self end

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
