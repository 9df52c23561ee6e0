-- cp.fork(modulePath [, args] [, options]): a new Lua interpreter on
-- modulePath, with a message channel (lua/ipc.lua) as its 'ipc' stdio.
local core, M = ...

local type, pairs, select = type, pairs, select

local FORK_OPTIONS = { execPath = true, execArgv = true, silent = true,
                       launcher = true }
for k in pairs(M.SPAWN_OPTIONS) do FORK_OPTIONS[k] = true end
FORK_OPTIONS.shell = nil     -- Node's fork has none either

-- The 'lua' serialization's bootstrap, run by `lua -e` before lua.c
-- would run the script: load this very module (the parent's file, so
-- both ends speak the same format even when the child's LUA_CPATH does
-- not find it; its luaopen_childproc_internal loads the module, or takes
-- the one already loaded, and returns the layer's M), then run the
-- script, the loop, and exit (lua/main.lua's M.runmain).  A child of
-- another Lua (execPath = 'luajit' from 5.4) cannot load the parent's
-- file: it takes the build beside it for its own Lua
-- (build/lua5.4/childproc.so -> build/luajit/childproc.so) if there is
-- one, else require finds its own through its LUA_CPATH.
local BOOT = "local p,v=%q,%q "
  .. "local me=rawget(_G,'jit') and 'luajit' or 'lua'.._VERSION:match('[%%d.]+$') "
  .. "if me~=v then local t='/'..v..'/childproc.so' p=p:sub(-#t)==t and "
  .. "p:sub(1,-#t-1)..'/'..me..'/childproc.so' or '' local f=p~='' and io.open(p) "
  .. "if f then f:close() else p='' end end "
  .. "local f=p~='' and package.loadlib(p,'luaopen_childproc_internal') "
  .. "local M=f and f() or require'childproc' and require'childproc.internal' M.runmain()"

local function strings(fname, n, what, t)
  if t == nil then return {} end
  M.checktable(fname, n, t, false, nil, what)
  if not M.isarray(t) then M.argerror(fname, n, what .. ': an array expected') end
  local out = {}
  for i = 1, #t do
    out[i] = M.checkstr(fname, n, t[i], ("%s[%d]"):format(what, i))
  end
  return out
end
M.fork_strings = strings

-- stdio as Node's fork: a word w means {w, w, w, 'ipc'}; an array must
-- hold an 'ipc' (stdio_list in lua/child.lua refuses two)
local function fork_stdio(fname, n, stdio, silent)
  if stdio == nil then
    local w = silent and 'pipe' or 'inherit'
    return { w, w, w, 'ipc' }
  end
  if type(stdio) == 'string' then
    return { stdio, stdio, stdio, 'ipc' }
  end
  if type(stdio) == 'table' then
    for _, e in pairs(stdio) do
      if e == 'ipc' then return stdio end
    end
    M.argerror(fname, n, "option 'stdio': an 'ipc' entry expected")
  end
  M.typeerror(fname, n, stdio, 'string or table', "option 'stdio'")
end

function M.fork(...)
  local fname = 'fork'
  local modulePath, args, opts = ...
  modulePath = M.checkstr(fname, 1, modulePath, nil, select('#', ...))
  local a, o, _, n = M.splitargs(fname, args, opts)
  a = M.checkargs(fname, modulePath, a)
  o = M.checkoptions(fname, n, o, FORK_OPTIONS)
  local mode = M.check_serialization(fname, n, o.serialization)
  M.check_maxsize(fname, n, o.maxMessageSize)
  if o.launcher ~= nil then  -- lua/launcher.lua
    return M.launcher_fork(fname, modulePath, a, o, mode, n)
  end
  local execPath = o.execPath
  if execPath == nil then
    execPath = core.exepath()
    if not execPath then
      M.argerror(fname, n, "cannot find the running interpreter;"
        .. " give option 'execPath'")
    end
  else
    execPath = M.checkstr(fname, n, execPath, "option 'execPath'")
  end
  local argv = strings(fname, n, "option 'execArgv'", o.execArgv)
  -- resolved against this process's directory, as Node's path.resolve
  if modulePath:sub(1, 1) ~= '/' then
    local cwd = core.cwd()
    if cwd then modulePath = cwd .. '/' .. modulePath end
  end
  if mode == 'lua' then
    argv[#argv + 1] = '-e'
    argv[#argv + 1] = BOOT:format(core.sopath and core.sopath() or '', M.LUANAME)
  end
  argv[#argv + 1] = modulePath
  if a then for i = 2, #a do argv[#argv + 1] = a[i] end end
  local so = {}
  for k, v in pairs(o) do
    if k ~= 'execPath' and k ~= 'execArgv' and k ~= 'silent' then so[k] = v end
  end
  so.stdio = fork_stdio(fname, n, o.stdio, o.silent)
  local plan = M.spawn_plan(fname, execPath, argv, so, nil, n)
  return (M.start(plan))
end
