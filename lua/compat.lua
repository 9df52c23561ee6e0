-- What differs between Lua 5.1-5.4 and LuaJIT, for the rest of the layer
-- (loaded first): integer tests, small-flag bit operations, unpack/pack.
-- On 5.1, 5.2 and LuaJIT numbers are doubles: an "integer" is a number
-- with an integral value (of at most 2^53 in magnitude, as the C side
-- counts: src/compat.h).
local core, M = ...

local type, floor = type, math.floor

if math.type then
  local mtype, toint = math.type, math.tointeger
  function M.isint(v) return mtype(v) == 'integer' end
  -- the integer a number stands for exactly, else nil (math.tointeger)
  function M.toint(v) return type(v) == 'number' and toint(v) or nil end
else
  local huge = 2 ^ 53
  function M.isint(v)
    return type(v) == 'number' and v == floor(v) and v <= huge and v >= -huge
  end
  function M.toint(v)
    if M.isint(v) then return v end
    return nil
  end
end

-- bits of small non-negative integers (event masks, flags)
function M.hasbit(x, bit) return x % (bit + bit) >= bit end
function M.bor(a, b)
  local r, bit = 0, 1
  while a > 0 or b > 0 do
    if a % 2 == 1 or b % 2 == 1 then r = r + bit end
    a, b, bit = floor(a / 2), floor(b / 2), bit + bit
  end
  return r
end
function M.band(a, b)
  local r, bit = 0, 1
  while a > 0 and b > 0 do
    if a % 2 == 1 and b % 2 == 1 then r = r + bit end
    a, b, bit = floor(a / 2), floor(b / 2), bit + bit
  end
  return r
end

-- table.move(list, 1, n, 1, {}) where there is none
M.copy = function(list, n)
  local t = {}
  for i = 1, n do t[i] = list[i] end
  return t
end
-- this Lua's name as the build directories spell it (lua/fork.lua)
M.LUANAME = rawget(_G, 'jit') and 'luajit' or 'lua' .. _VERSION:match('[%d.]+$')
-- the stack level a tail call leaves (PUC 5.1 counts one; error levels)
M.TAILCALL_LEVEL = (_VERSION == 'Lua 5.1' and not rawget(_G, 'jit')) and 1 or 0
-- (5.4 only: a `local x <close>` calls this)
M.CLOSE = _VERSION == 'Lua 5.4'

-- xpcall(f, h, ...): 5.1's passes no arguments and cannot be yielded
-- across (LuaJIT's and 5.2's can): there a call made in a coroutine runs
-- f in a coroutine of its own and passes its yields on, so a callback may
-- yield the coroutine that runs the loop, as on every other version.
if _VERSION == 'Lua 5.1' and not rawget(_G, 'jit') then
  local xpcall, unpack, select = xpcall, unpack, select
  local create, resume, status, yield, running =
    coroutine.create, coroutine.resume, coroutine.status, coroutine.yield,
    coroutine.running
  local function finish(co, h, ok, ...)
    if not ok then return false, h((...)) end
    if status(co) == 'dead' then return true, ... end
    return finish(co, h, resume(co, yield(...)))
  end
  -- each such coroutine -> the one it runs for (lua/task.lua looks
  -- through them for the task that waits)
  local outer = setmetatable({}, { __mode = 'k' })
  M.outer = outer
  function M.xpcall(f, h, ...)
    local me = running()
    if me then
      local co = create(f)
      outer[co] = me
      return finish(co, h, resume(co, ...))
    end
    local n = select('#', ...)
    if n == 0 then return xpcall(f, h) end
    local args = { ... }
    return xpcall(function() return f(unpack(args, 1, n)) end, h)
  end
else
  M.xpcall = xpcall
end
