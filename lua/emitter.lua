-- Events, as Node's EventEmitter: on/once/off/emit.  Listener lists are
-- replaced, never changed in place, so a listener may add or remove
-- listeners while an event is being emitted.
local core, M = ...

local type, select = type, select

local checkfunc, typeerror = M.checkfunc, M.typeerror

-- on/once/off(self, name, fn): name a string (#2), fn callable (#3)
local function check_listener(fname, name, fn, nargs)
  if type(name) ~= 'string' then typeerror(fname, 2, name, 'string', nil, nargs) end
  checkfunc(fname, 3, fn, false, nargs)
end

local function check_name(fname, name, nargs, optional)
  if type(name) ~= 'string' and not (optional and name == nil) then
    typeerror(fname, 2, name, 'string', nil, nargs)
  end
end

-- s._ev[name] holds the listeners of an event: nil, one listener (the
-- function or callable itself), or, for two or more, a list made by
-- newlist, the keys of the weak set `lists` (so a callable table
-- listener is never taken for a list, and telling them apart is one
-- lookup).  A once-listener is stored as a wrapper closure; once_of maps
-- the wrapper to the listener (weak: a wrapper dropped from the lists
-- goes away with its entry).
local lists = setmetatable({}, { __mode = 'k' })
local once_of = setmetatable({}, { __mode = 'k' })
local unpack = table.unpack or unpack

local function newlist(t)
  lists[t] = true
  return t
end

local function islist(v)
  return lists[v] ~= nil
end

-- list (2+ entries) without its i-th entry: one listener or a new list
local function drop(list, i)
  local n = #list
  if n == 2 then return list[3 - i] end
  local out = newlist({})
  local k = 0
  for j = 1, n do
    if j ~= i then k = k + 1; out[k] = list[j] end
  end
  return out
end

-- remove the once wrapper w from the current listeners of name
local function drop_once(s, name, w)
  local ev = s._ev
  local cur = ev and ev[name]
  if cur == w then
    ev[name] = nil
  elseif islist(cur) then
    for i = 1, #cur do
      if cur[i] == w then ev[name] = drop(cur, i); return end
    end
  end
end

-- emit(s, obj, name, ...): call the listeners in s._ev[name] with ...
-- A listener that raises does not stop the others, nor the state change
-- that emitted the event: its error is kept for cp.run() to raise
-- (M.fail, lua/loop.lua).  An 'error' nobody listens to is raised too.
-- The listeners called are those there when the emit began.
local function emit(s, _obj, name, ...)
  local ev = s._ev
  local cur = ev and ev[name]
  if cur == nil then
    if name == 'error' then M.fail((...)) end
    return false
  end
  if not lists[cur] then
    local fn = once_of[cur]
    if fn then drop_once(s, name, cur); cur = fn end
    M.protect(cur, ...)
    return true
  end
  for i = 1, #cur do
    local l = cur[i]
    local fn = once_of[l]
    if fn then drop_once(s, name, l); l = fn end
    M.protect(l, ...)
  end
  return true
end
M.emit = emit

-- list without every entry equal to entry (nil when none is left)
function M.without(list, entry)
  local out = {}
  for i = 1, #list do
    if list[i] ~= entry then out[#out + 1] = list[i] end
  end
  if #out == 0 then return nil end
  return out
end

function M.listeners(s, name)
  local cur = s._ev and s._ev[name]
  if cur == nil then return 0 end
  if islist(cur) then return #cur end
  return 1
end

local function add(s, self, name, fn, onlisten)
  local ev = s._ev
  if ev == nil then ev = {}; s._ev = ev end
  local cur = ev[name]
  if cur == nil then
    ev[name] = fn
  elseif islist(cur) then
    local n = #cur
    local list = newlist({ unpack(cur, 1, n) })
    list[n + 1] = fn
    ev[name] = list
  else
    ev[name] = newlist({ cur, fn })
  end
  onlisten = onlisten or s._onlisten
  if onlisten then onlisten(s, self, name) end
  return self
end

-- add(s, obj, name, fn): for the layer's own listeners on objects whose
-- class has no onlisten (no method lookup, no check: fn is a function)
M.addlistener = add

-- The emitter methods for a class whose objects map to their fields
-- table through selfget(obj).  onlisten(s, obj, name), if given, runs
-- after a listener is added to any object of the class (one object may
-- have its own instead: s._onlisten).
function M.emitter_methods(methods, selfget, onlisten)
  local function adder(fname)
    return function(self, ...)
      local s = selfget(self)
      local name, fn = ...
      check_listener(fname, name, fn, select('#', ...) + 1)
      return add(s, self, name, fn, onlisten)
    end
  end
  methods.on, methods.addListener = adder('on'), adder('addListener')
  function methods.once(self, ...)
    local s = selfget(self)
    local name, fn = ...
    check_listener('once', name, fn, select('#', ...) + 1)
    local w = function(...) return fn(...) end
    once_of[w] = fn
    return add(s, self, name, w, onlisten)
  end
  local function remover(fname)
    return function(self, ...)
      local s = selfget(self)
      local name, fn = ...
      check_listener(fname, name, fn, select('#', ...) + 1)
      local ev = s._ev
      local cur = ev and ev[name]
      if cur ~= nil then
        if islist(cur) then
          for i = #cur, 1, -1 do
            local l = cur[i]
            if l == fn or once_of[l] == fn then
              ev[name] = drop(cur, i)
              break
            end
          end
        elseif cur == fn or once_of[cur] == fn then
          ev[name] = nil
        end
        if s._onunlisten then s._onunlisten(s, self, name) end
      end
      return self
    end
  end
  methods.off, methods.removeListener = remover('off'), remover('removeListener')
  function methods.removeAllListeners(self, name)
    local s = selfget(self)
    check_name('removeAllListeners', name, nil, true)
    if s._ev then
      if name == nil then s._ev = nil else s._ev[name] = nil end
    end
    if s._onunlisten then s._onunlisten(s, self, name) end
    return self
  end
  function methods.listenerCount(self, ...)
    local s = selfget(self)
    local name = ...
    check_name('listenerCount', name, select('#', ...) + 1)
    return M.listeners(s, name)
  end
  function methods.emit(self, ...)
    local s = selfget(self)
    local name = ...
    check_name('emit', name, select('#', ...) + 1)
    return emit(s, self, ...)
  end
  return methods
end
