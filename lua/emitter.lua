-- Events, as Node's EventEmitter: on/once/off/emit.  Listener lists are
-- replaced, never changed in place, so a listener may add or remove
-- listeners while an event is being emitted.
local core, M = ...

local type, error, select = type, error, select

local function check_listener(fname, fn)
  if type(fn) ~= 'function' then
    local mt = getmetatable(fn)
    if not (mt and mt.__call) then
      error(("bad argument #2 to '%s' (function expected, got %s)")
        :format(fname, type(fn)), 3)
    end
  end
end

-- emit(s, obj, name, ...): call the listeners in s._ev[name] with ...
-- A listener that raises does not stop the others, nor the state change
-- that emitted the event: its error is kept for cp.run() to raise
-- (M.fail, lua/loop.lua).  An 'error' nobody listens to is raised too.
local function emit(s, obj, name, ...)
  local list = s._ev and s._ev[name]
  if list == nil then
    if name == 'error' then M.fail((...)) end
    return false
  end
  for i = 1, #list do
    local l = list[i]
    if l.once then s._ev[name] = M.without(s._ev[name], l) end
    M.protect(l.fn, ...)
  end
  return true
end
M.emit = emit

function M.without(list, entry)
  local out = {}
  for i = 1, #list do
    if list[i] ~= entry then out[#out + 1] = list[i] end
  end
  if #out == 0 then return nil end
  return out
end

function M.listeners(s, name)
  local list = s._ev and s._ev[name]
  return list and #list or 0
end

local function add(s, self, name, fn, once)
  local ev = s._ev
  if ev == nil then ev = {}; s._ev = ev end
  local old = ev[name] or {}
  local list = { (unpack or table.unpack)(old) }
  list[#list + 1] = { fn = fn, once = once }
  ev[name] = list
  if s._onlisten then s._onlisten(s, self, name) end
  return self
end

-- The emitter methods for a class whose objects map to their fields
-- table through selfget(obj).
function M.emitter_methods(methods, selfget)
  function methods.on(self, name, fn)
    local s = selfget(self)
    check_listener('on', fn)
    return add(s, self, name, fn, false)
  end
  function methods.once(self, name, fn)
    local s = selfget(self)
    check_listener('once', fn)
    return add(s, self, name, fn, true)
  end
  function methods.off(self, name, fn)
    local s = selfget(self)
    local list = s._ev and s._ev[name]
    if list then
      for i = #list, 1, -1 do
        if list[i].fn == fn then
          s._ev[name] = M.without(list, list[i])
          break
        end
      end
      if s._onunlisten then s._onunlisten(s, self, name) end
    end
    return self
  end
  methods.removeListener = methods.off
  methods.addListener = methods.on
  function methods.removeAllListeners(self, name)
    local s = selfget(self)
    if s._ev then
      if name == nil then s._ev = nil else s._ev[name] = nil end
    end
    if s._onunlisten then s._onunlisten(s, self, name) end
    return self
  end
  function methods.listenerCount(self, name)
    return M.listeners(selfget(self), name)
  end
  function methods.emit(self, name, ...)
    return emit(selfget(self), self, name, ...)
  end
  return methods
end
