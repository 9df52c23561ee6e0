-- Shared helpers of the Lua layer: error objects, argument checks, signals.
local core, M = ...

local type, tostring, select, error = type, tostring, select, error

-- {====================================================== errors

local Error = { __name = 'childproc.Error' }
function Error.__tostring(e) return tostring(e.message) end
M.Error = Error

function M.newerror(fields) return setmetatable(fields, Error) end

-- An OS failure as Node reports it: code 'ENOENT', errno -2, syscall, path.
function M.syserror(errno, syscall, path, extra)
  local code = core.errname(errno)
  local msg
  if syscall:match('^spawn') then  -- 'spawn ls', 'spawnSync ls': Node's form
    msg = syscall .. ' ' .. code
  else
    msg = code .. ': ' .. core.strerror(errno) .. ', ' .. syscall
    if path then msg = msg .. " '" .. tostring(path) .. "'" end
  end
  local e = { code = code, errno = -errno, syscall = syscall, path = path,
              message = msg }
  if extra then for k, v in pairs(extra) do e[k] = v end end
  return setmetatable(e, Error)
end

-- }======================================================


-- {====================================================== arguments

function M.checktype(fname, n, v, t, optional)
  if v == nil and optional then return v end
  if type(v) ~= t then
    error(("bad argument #%d to '%s' (%s expected, got %s)")
      :format(n, fname, t, v == nil and 'no value' or type(v)), 3)
  end
  return v
end

-- a string without NUL bytes (numbers are converted)
function M.checkstr(fname, what, v)
  local tv = type(v)
  if tv == 'number' then v = tostring(v)
  elseif tv ~= 'string' then
    error(("bad argument to '%s' (%s must be a string, got %s)")
      :format(fname, what, tv), 3)
  end
  if v:find('\0', 1, true) then
    error(("bad argument to '%s' (%s must not contain NUL bytes)")
      :format(fname, what), 3)
  end
  return v
end

-- refuse option keys nobody knows (a typo is a bug, not a no-op)
function M.checkoptions(fname, n, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= 'table' then
    error(("bad argument #%d to '%s' (table expected, got %s)")
      :format(n, fname, type(opts)), 3)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      error(("bad argument #%d to '%s' (unknown option '%s')")
        :format(n, fname, tostring(k)), 3)
    end
  end
  return opts
end

-- Is t an array (keys exactly 1..n, the empty table included)?
function M.isarray(t)
  local n = #t
  local count = 0
  for k in pairs(t) do
    if not M.isint(k) or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

-- (args, options, callback) in Node's flexible positions
function M.splitargs(fname, args, opts, cb)
  if type(args) == 'function' then return nil, nil, args end
  if type(args) == 'table' and not M.isarray(args) then
    args, opts, cb = nil, args, opts
  end
  if type(opts) == 'function' then opts, cb = nil, opts end
  if args ~= nil and type(args) ~= 'table' then
    error(("bad argument #2 to '%s' (table expected, got %s)")
      :format(fname, type(args)), 3)
  end
  return args, opts, cb
end

-- }======================================================


-- {====================================================== signals

local signals = core.signals
M.signals = signals

-- 'SIGTERM', 'TERM', 15 -> 15; anything else raises
function M.signum(fname, sig, default)
  if sig == nil then sig = default end
  if M.isint(sig) then
    if sig == 0 or signals[sig] then return sig end
  elseif type(sig) == 'string' then
    local n = signals[sig] or signals['SIG' .. sig]
    if M.isint(n) then return n end
  end
  error(("bad argument to '%s' (unknown signal '%s')"):format(fname, tostring(sig)), 3)
end

-- }======================================================

M.unpack = table.unpack or unpack
M.pack = table.pack or function(...) return { n = select('#', ...), ... } end
