-- The one argument checker of the layer: every wrong argument raises as
-- luaL_argerror / luaL_typeerror would, at the line of the first caller
-- outside the module's own chunks (named '=childproc/<file>.lua').
--
-- Positions count as the function's parameters do (a method's self is
-- #1); called as a method (obj:m()), self is not counted, as in Lua.
-- `nargs`, where given, is how many arguments the caller passed: a nil
-- past them is 'no value', as Lua says.
local core, M = ...

local type, tostring, error, pairs, rawget = type, tostring, error, pairs, rawget
local getinfo, getmetatable = debug.getinfo, debug.getmetatable
local floor, huge = math.floor, math.huge

-- {====================================================== raising

-- C functions of the module that callers call directly (the channels'
-- send methods): the walk below counts them as the module's
local entry_c = setmetatable({}, { __mode = 'k' })
M.entry_c = entry_c

-- (5.1 shows a tail call as a frame of its own, '(tail call)': only the
-- module's entry points make them between the caller and the check)
local function ours(info)
  return info.source:sub(1, 11) == '=childproc/' or entry_c[info.func] ~= nil
    or info.what == 'tail'
end

-- "bad argument #n to 'fname' (msg)" at the first caller outside the
-- module, as luaL_argerror says it at luaL_where(L, 1)
function M.argerror(fname, n, msg)
  local level, entry = 2, nil
  local info = getinfo(level, 'Slnf')
  while info and ours(info) do
    entry = info
    level = level + 1
    info = getinfo(level, 'Slnf')
  end
  local where = ''
  if info and info.currentline and info.currentline > 0 then
    where = info.short_src .. ':' .. info.currentline .. ': '
  end
  local text
  if n and entry and entry.namewhat == 'method' then n = n - 1 end
  if n == 0 then
    text = ("calling '%s' on bad self (%s)"):format(fname, msg)
  elseif n then
    text = ("bad argument #%d to '%s' (%s)"):format(n, fname, msg)
  else
    text = ("bad argument to '%s' (%s)"):format(fname, msg)
  end
  error(where .. text, 0)
end
local argerror = M.argerror

-- the type name luaL_typeerror gives: __name, else the type
local function typename(v, none)
  if none then return 'no value' end
  local mt = getmetatable(v)
  local name = type(mt) == 'table' and rawget(mt, '__name')
  if type(name) == 'string' then return name end
  return type(v)
end
M.typename = typename

-- "[what: ]expected expected, got <type>"
function M.typeerror(fname, n, v, expected, what, nargs)
  local none = v == nil and nargs ~= nil and n > nargs
  local msg = expected .. ' expected, got ' .. typename(v, none)
  if what then msg = what .. ': ' .. msg end
  argerror(fname, n, msg)
end
local typeerror = M.typeerror

function M.callable(v)
  if type(v) == 'function' then return true end
  local mt = getmetatable(v)
  return type(mt) == 'table' and mt.__call ~= nil
end
local callable = M.callable

-- }======================================================


-- {====================================================== checks

-- a function or a callable object (nil too when optional)
function M.checkfunc(fname, n, v, optional, nargs, what)
  if v == nil and optional then return nil end
  if not callable(v) then typeerror(fname, n, v, 'function', what, nargs) end
  return v
end

function M.checktable(fname, n, v, optional, nargs, what)
  if v == nil and optional then return nil end
  if type(v) ~= 'table' then typeerror(fname, n, v, 'table', what, nargs) end
  return v
end

-- A string without NUL bytes; numbers are converted, as luaL_checkstring
-- does.  what: names the part of argument n ("args[2]", "option 'cwd'").
function M.checkstr(fname, n, v, what, nargs)
  local tv = type(v)
  if tv == 'number' then v = tostring(v)
  elseif tv ~= 'string' then typeerror(fname, n, v, 'string', what, nargs) end
  if v:find('\0', 1, true) then
    argerror(fname, n, (what and what .. ': ' or '') .. 'string contains a NUL byte')
  end
  return v
end

-- An integer: a float with an integral value counts, as for
-- luaL_checkinteger (2^30, 1e6); min: the least allowed.  Returns it
-- as an integer where the Lua has them.
local toint = math.tointeger or function(x) return x end
function M.checkint(fname, n, v, what, min, optional, nargs)
  if v == nil and optional then return nil end
  if type(v) ~= 'number' then typeerror(fname, n, v, 'integer', what, nargs) end
  if v ~= floor(v) or v == huge or v == -huge then
    argerror(fname, n, (what and what .. ': ' or '') .. 'number has no integer representation')
  end
  -- (an integral float past 2^63, where there are integers: refused as
  -- luaL_checkinteger refuses it)
  local i = toint(v)
  if i == nil then
    argerror(fname, n, (what and what .. ': ' or '') .. 'number has no integer representation')
  end
  if min and i < min then
    argerror(fname, n, (what and what .. ': ' or '') .. 'value out of range')
  end
  return i
end

-- An options table (nil: {}), refusing keys nobody knows (a typo is a
-- bug, not a no-op)
function M.checkoptions(fname, n, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= 'table' then typeerror(fname, n, opts, 'table') end
  for k in pairs(opts) do
    if not allowed[k] then
      argerror(fname, n, ("unknown option '%s'"):format(tostring(k)))
    end
  end
  return opts
end

-- Is t an array (keys exactly 1..n, the empty table included)?
function M.isarray(t)
  local n = #t
  local count = 0
  for k in pairs(t) do
    if type(k) ~= 'number' or k < 1 or k > n or k ~= floor(k) then return false end
    count = count + 1
  end
  return count == n
end

-- (args, options[, callback]) in Node's flexible positions: a table in
-- the args position is the options when it is not an array.  Returns
-- args, opts, cb and the position opts came in.  withcb: the function
-- takes a callback (else a function anywhere is refused).
function M.splitargs(fname, args, opts, cb, withcb)
  local optn = 3
  if type(args) == 'table' and not M.isarray(args) then
    args, opts, cb, optn = nil, args, opts, 2
  elseif args ~= nil and type(args) ~= 'table' then
    if withcb and callable(args) then
      args, opts, cb = nil, nil, args
    else
      typeerror(fname, 2, args, 'table')
    end
  end
  if withcb and cb == nil and callable(opts) and type(opts) ~= 'table' then
    opts, cb = nil, opts
  end
  if opts ~= nil and type(opts) ~= 'table' then
    typeerror(fname, optn, opts, 'table')
  end
  if withcb then M.checkfunc(fname, optn + 1, cb, true) end
  return args, opts, cb, optn
end

-- }======================================================


-- {====================================================== signals

local signals = core.signals
M.signals = signals

-- 'SIGTERM', 'TERM', 15 -> 15 (default when sig is nil); anything else
-- raises as argument n (what: "option 'killSignal'")
function M.signum(fname, n, sig, default, what)
  if sig == nil then sig = default end
  local tv = type(sig)
  if tv == 'number' then
    if sig == floor(sig) and (sig == 0 or signals[sig]) then return toint(sig) or sig end
  elseif tv == 'string' then
    local num = signals[sig] or signals['SIG' .. sig]
    if type(num) == 'number' then return num end
  else
    typeerror(fname, n, sig, 'string', what)
  end
  argerror(fname, n, (what and what .. ': ' or '') ..
    ("unknown signal '%s'"):format(tostring(sig)))
end

-- }======================================================
