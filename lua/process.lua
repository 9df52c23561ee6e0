-- cp.process: this process, as Node's `process` object.
local core, M = ...

local methods = {}
local Process, pself = core.class('childproc.Process', methods)
M.emitter_methods(methods, pself)

local s = {
  pid = core.getpid(),
  execPath = core.exepath(),
  connected = false,
}
local self = core.object(Process, s)
M.process, M.pself, M.process_methods = self, pself, methods
M.Process = Process

-- computed when read: they change (ppid) or are costly (env)
local lazy = {
  ppid = function() return core.getppid() end,
  env = function() return core.environ() end,
  argv = function()
    local argv = { s.execPath }
    if type(_G.arg) == 'table' then
      for i = 0, #_G.arg do argv[#argv + 1] = _G.arg[i] end
    end
    return argv
  end,
  -- the standard streams are made on first use
  stdin = function()
    local fd = core.dup(0)
    local st = M.readable(fd or 0, { ownfd = fd ~= nil })
    s.stdin = st
    return st
  end,
  stdout = function()
    local st = M.writable(1, { ownfd = false, sync = true })
    s.stdout = st
    return st
  end,
  stderr = function()
    local st = M.writable(2, { ownfd = false, sync = true })
    s.stderr = st
    return st
  end,
}
setmetatable(methods, { __index = function(_, k)
  local f = lazy[k]
  if f then return f() end
end })

-- What must be done before this process exits by cp.process:exit() or
-- at the end of a forked script (lua/main.lua): M.at_exit(fn) adds fn;
-- M.before_exit() runs them, the last added first (as C's atexit).
local exit_fns = {}
function M.at_exit(fn) exit_fns[#exit_fns + 1] = fn end
function M.before_exit()
  for i = #exit_fns, 1, -1 do exit_fns[i]() end
end

-- exit([code]): flush what this process still has to say, then leave
function methods.exit(this, code)
  pself(this)
  if code ~= nil and type(code) ~= 'boolean' then code = M.checkint('exit', 2, code) end
  M.before_exit()
  io.stdout:flush()
  io.stderr:flush()
  os.exit(code or 0, true)
end

function methods.cwd(this) pself(this); return core.cwd() end
