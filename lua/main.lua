-- Running a forked child's script: fork's bootstrap (M.runmain), and
-- for a script started without one (a Node parent, spawn with an 'ipc'
-- entry) the loop after the script (M.install_main_hook, which
-- lua/ipc_process.lua's channel_autostart calls), which the loop's
-- entry points run without (M.unhooked).
local _, M = ...

local type, tostring, pcall, getmetatable = type, tostring, pcall, getmetatable

-- {------------------------------------------------------ the loop after the script

--[[ A script run as `lua5.4 worker.lua` (a Node parent, or spawn with an
  'ipc' entry) gets no bootstrap.  So that its event loop runs after the
  script, a 'return' hook watches the outermost main chunk: when it
  returns, the hook removes itself and runs the loop.  Inside a hook the
  garbage collector runs and errors propagate as the script's own (lua.c
  prints them and exits 1).  Until then every return pays for the hook;
  cp.run() and child:wait() take it off while they run.  (A __gc
  finalizer at lua_close would run with the collector stopped.) ]]
local mainhook

local function find_main()
  local level, found = 3, nil
  while true do
    local info = debug.getinfo(level, 'S')
    if not info then break end
    if info.what == 'main' then found = level end
    level = level + 1
  end
  if not found then return nil end
  local f = debug.getinfo(found, 'f').func
  local caller = debug.getinfo(found + 1, 'f')
  return f, caller and caller.func
end

local function run_after_main()
  debug.sethook()
  mainhook = nil
  M.run()
  M.flush_channels()
end

function M.install_main_hook()
  if debug.gethook() then return end  -- a debugger's: leave it alone
  local mainf, caller = find_main()
  if not mainf then return end
  local getinfo = debug.getinfo
  local what = pcall(getinfo, 1, 't') and 'ft' or 'f'  -- (5.1, LuaJIT: no 't')
  -- (5.1: a main chunk that ends in a tail call is gone from the stack
  -- when the callee returns, its 'tail return' event)
  local function main_gone()
    for level = 3, 200 do
      local i = getinfo(level, 'S')
      if not i then return true end
      if i.what == 'main' then return false end
    end
    return false
  end
  mainhook = function(ev)
    local info = getinfo(2, what)
    if info.func == mainf then return run_after_main() end
    if ev == 'tail return' and main_gone() then return run_after_main() end
    -- `return f()` at the end of the script: the tail call's frame
    if (info.istailcall or what == 'f') and caller then  -- (no 't': LuaJIT)
      local up = getinfo(3, 'f')
      if up and up.func == caller then return run_after_main() end
    end
  end
  debug.sethook(mainhook, 'r')
end

-- f(...) with the hook off while it runs: cp.run() (lua/init.lua),
-- child:wait() and cp.sleep() (lua/task.lua) called by the script
function M.unhooked(f, ...)
  if not mainhook or debug.gethook() ~= mainhook then return f(...) end
  local hook = mainhook
  debug.sethook()
  local r = M.pack(pcall(f, ...))
  if mainhook == hook then debug.sethook(hook, 'r') end
  if not r[1] then error(r[2], 0) end
  return M.unpack(r, 2, r.n)
end

-- }------------------------------------------------------

-- lua.c's `arg` table, from /proc/self/cmdline: Lua 5.1 runs -e code
-- before it makes it.  The bootstrap (-e's word) is found by its start
-- (fork's, or a launcher's: keep both in step with their BOOT strings).
function M.cmdline_arg()
  local f = io.open('/proc/self/cmdline', 'rb')
  local all = f and f:read('*a') or ''
  if f then f:close() end
  local words, arg = {}, {}
  for w in all:gmatch('([^%z]*)%z') do words[#words + 1] = w end
  for i = 1, #words do
    local w = words[i]   -- fork's bootstrap, or a launcher's (lua/launcher.lua)
    if w:sub(1, 10) == 'local p,v=' or w:sub(1, 12) == 'local ok,cp=' then
      for j = 1, #words do arg[j - i - 1] = words[j] end
      break
    end
  end
  _G.arg = arg
  return arg
end

-- The bootstrap of a 'lua' fork: `lua5.4 -e BOOT script args...`.  lua.c
-- runs -e code before the script, with `arg` already built: run the
-- script as lua.c would, then the loop, then exit (flushing the channel)
-- before lua.c gets to run the script itself.
function M.runmain()
  if mainhook then debug.sethook(); mainhook = nil end
  local arg = _G.arg or M.cmdline_arg()
  local progname, lo = 'lua', 0
  while arg[lo - 1] ~= nil do lo = lo - 1 end
  if lo < 0 then progname = arg[lo] end
  local function report(msg)
    M.before_exit()  -- (the channels' flush, and what else M.at_exit has)
    io.stdout:flush()
    io.stderr:write(progname, ': ', tostring(msg), '\n')
    io.stderr:flush()
    os.exit(1, true)
  end
  local function handler(e)
    if type(e) ~= 'string' then
      local mt = getmetatable(e)
      if mt and mt.__tostring then
        local ok, str = pcall(tostring, e)
        if ok and type(str) == 'string' then return str end
      end
      e = ('(error object is a %s value)'):format(type(e))
    end
    return debug.traceback(e, 2)
  end
  local script = arg[0]
  local chunk, err = loadfile(script ~= '-' and script or nil)
  if not chunk then report(err) end
  local ok, e = M.xpcall(chunk, handler, M.unpack(arg, 1, #arg))
  if not ok then report(e) end
  ok, e = M.xpcall(M.run, handler)
  if not ok then report(e) end
  M.before_exit()
  io.stdout:flush()
  os.exit(0, true)
end
