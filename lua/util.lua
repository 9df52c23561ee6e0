-- Shared helpers of the Lua layer: error objects (argument checks and
-- signals: lua/args.lua).
local core, M = ...

local tostring, select = tostring, select

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


M.unpack = table.unpack or unpack
M.pack = table.pack or function(...) return { n = select('#', ...), ... } end
