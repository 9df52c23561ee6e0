-- The options -> plan step of spawn, exec, execFile, fork and the Sync
-- functions: every argument checked, nothing started.  Loaded before
-- lua/child.lua, whose start(plan) runs what it makes.
local core, M = ...

local type, tostring, pairs = type, tostring, pairs
local SPAWN_FLAGS = core.spawn_flags   -- (src/spawn.c's)
local SETSID, SETPGID, CTTY = SPAWN_FLAGS.setsid, SPAWN_FLAGS.setpgid, SPAWN_FLAGS.ctty

-- options each function accepts
M.SPAWN_OPTIONS = {
  cwd = true, env = true, argv0 = true, shell = true, stdio = true,
  detached = true, processGroup = true, uid = true, gid = true,
  timeout = true, killSignal = true, serialization = true,
  maxMessageSize = true, windowsHide = true, windowsVerbatimArguments = true,
  pty = true, parentDeathSignal = true,
}

-- {====================================================== the channel's options

-- (of an 'ipc' stdio entry, lua/ipc_stdio.lua; fork checks them too)
local ENCODERS = { lua = core.lua_encode, json = core.json_encode }
M.MAX_MESSAGE = 1024 * 1024 * 1024   -- maxMessageSize's default

-- check_*(fname, n, value): n is the options' argument position
function M.check_serialization(fname, n, v)
  if v == nil then return 'lua' end
  if v ~= 'lua' and v ~= 'json' then
    if type(v) ~= 'string' then
      M.typeerror(fname, n, v, 'string', "option 'serialization'")
    end
    M.argerror(fname, n, ("option 'serialization': 'lua' or 'json' expected,"
      .. " got '%s'"):format(v))
  end
  if not ENCODERS[v] then
    M.argerror(fname, n, ("option 'serialization': this build has no '%s' codec"):format(v))
  end
  return v
end

function M.check_maxsize(fname, n, v)
  if v == nil then return M.MAX_MESSAGE end
  return M.checkint(fname, n, v, "option 'maxMessageSize'", 1)
end

-- }======================================================


-- {====================================================== the plan

local function env_array(fname, n, env)
  if env == nil then return nil end
  M.checktable(fname, n, env, false, nil, "option 'env'")
  local out = {}
  for k, v in pairs(env) do
    k = M.checkstr(fname, n, k, "option 'env': a key")
    if k:find('=', 1, true) then
      M.argerror(fname, n, ("option 'env': key '%s' contains '='"):format(k))
    end
    v = M.checkstr(fname, n, tostring(v), ("option 'env': %s"):format(k))
    out[#out + 1] = k .. '=' .. v
  end
  table.sort(out)
  return out
end

local STDIO_WORDS = { pipe = true, inherit = true, ignore = true, ipc = true,
                      overlapped = true }

-- Lists of three words are made once and shared by every plan that has
-- them (plan.stdio is never changed): WORDS3[a][b][c].
local WORDS3 = {}
local function words3(a, b, c)
  local ta = WORDS3[a]
  if not ta then ta = {}; WORDS3[a] = ta end
  local tb = ta[b]
  if not tb then tb = {}; ta[b] = tb end
  local l = tb[c]
  if not l then l = { a, b, c }; tb[c] = l end
  return l
end

local scratch_list = {}  -- stdio_list's work table (it calls no user code)

local function stdio_bad(fname, n, msg) M.argerror(fname, n, "option 'stdio': " .. msg) end

-- stdio option -> array of n entries (n >= 3), not to be changed
local function stdio_list(fname, n, stdio)
  local list
  if stdio == nil then
    return words3('pipe', 'pipe', 'pipe')
  elseif type(stdio) == 'string' then
    if not STDIO_WORDS[stdio] or stdio == 'ipc' then
      stdio_bad(fname, n, ("invalid value '%s'"):format(stdio))
    end
    return words3(stdio, stdio, stdio)
  elseif type(stdio) == 'table' then
    list = scratch_list
    for i = #list, 1, -1 do list[i] = nil end  -- left by a raise
    local top = 0
    for k in pairs(stdio) do
      if type(k) ~= 'number' or k < 1 or k ~= math.floor(k) then
        stdio_bad(fname, n, 'an array expected')
      end
      if k > top then top = k end
    end
    for i = 1, math.max(top, 3) do
      local e = stdio[i]
      if e == nil or e == false then e = i <= 3 and 'pipe' or 'ignore' end
      local te = type(e)
      if te == 'string' then
        if not STDIO_WORDS[e] then stdio_bad(fname, n, ("invalid entry [%d] '%s'"):format(i, e)) end
        if e == 'overlapped' then e = 'pipe' end
      elseif te == 'number' then
        e = M.checkint(fname, n, e, ("option 'stdio': entry [%d]"):format(i), 0)
      elseif te == 'userdata' then
        local ok = core.fileno(e) or (getmetatable(e) == M.Readable)
          or (getmetatable(e) == M.Writable)
        if not ok then
          stdio_bad(fname, n, ("entry [%d]: a stream or an open file expected, got %s")
            :format(i, M.typename(e)))
        end
      else
        stdio_bad(fname, n, ("entry [%d]: string, integer, stream or file expected, got %s")
          :format(i, M.typename(e)))
      end
      list[i] = e
    end
  else
    M.typeerror(fname, n, stdio, 'string or table', "option 'stdio'")
  end
  local count, nipc, words = #list, 0, true
  for i = 1, count do
    local e = list[i]
    if e == 'ipc' then nipc = nipc + 1 end
    if type(e) ~= 'string' then words = false end
  end
  local out
  if words and count == 3 then
    out = words3(list[1], list[2], list[3])
  else
    out = {}
    for i = 1, count do out[i] = list[i] end
  end
  for i = count, 1, -1 do list[i] = nil end
  if nipc > 1 then stdio_bad(fname, n, "only one 'ipc' entry allowed") end
  return out
end

-- plan.spawnargs of a command without arguments, shared by its plans
-- (no plan changes it; a child's public spawnargs is a copy of its own)
local ONLY_COMMAND = setmetatable({}, { __mode = 'v' })

-- args (an array, already told from the options by M.splitargs) ->
-- spawnargs, {command, args...}, or nil when there are none.  Each arg is
-- a string without NULs (numbers are converted).
function M.checkargs(fname, command, args)
  local spawnargs
  if args then
    for i = 1, #args do
      local a = args[i]
      spawnargs = spawnargs or { command }
      if type(a) == 'string' and not a:find('\0', 1, true) then
        spawnargs[i + 1] = a
      else  -- the message names the argument
        spawnargs[i + 1] = M.checkstr(fname, 2, a, ('args[%d]'):format(i))
      end
    end
  end
  return spawnargs
end

-- Validate everything before anything starts.  Returns the plan: `into`
-- (an empty table to reuse) when given, else a new table.  Nothing is
-- written to it before every check has passed.  optn: the argument
-- position the options came in (3 when not given), for the messages.
function M.spawn_plan(fname, command, args, opts, into, optn)
  optn = optn or 3
  -- the channel's options first, before any fd is made (fork checked
  -- them itself, earlier still)
  if type(opts) == 'table' then
    M.check_serialization(fname, optn, opts.serialization)
    M.check_maxsize(fname, optn, opts.maxMessageSize)
  end
  if type(command) ~= 'string' or command:find('\0', 1, true) then
    command = M.checkstr(fname, 1, command)
  end
  opts = M.checkoptions(fname, optn, opts, M.SPAWN_OPTIONS)
  local file = command
  local spawnargs = M.checkargs(fname, command, args)
  if not spawnargs then
    spawnargs = ONLY_COMMAND[command]
    if not spawnargs then
      spawnargs = { command }
      ONLY_COMMAND[command] = spawnargs
    end
  end
  if opts.shell then
    local sh = opts.shell == true and '/bin/sh'
      or M.checkstr(fname, optn, opts.shell, "option 'shell'")
    local line = table.concat(spawnargs, ' ')
    file, spawnargs = sh, { sh, '-c', line }
  end
  local exec_argv = spawnargs  -- the same table unless argv0 changes [1]
  if opts.argv0 ~= nil then
    exec_argv = { M.unpack(spawnargs) }
    exec_argv[1] = M.checkstr(fname, optn, opts.argv0, "option 'argv0'")
  end
  local cwd = opts.cwd
  if cwd ~= nil then cwd = M.checkstr(fname, optn, cwd, "option 'cwd'") end
  local uid, gid, timeout = opts.uid, opts.gid, opts.timeout
  if uid ~= nil then uid = M.checkint(fname, optn, uid, "option 'uid'", 0) end
  if gid ~= nil then gid = M.checkint(fname, optn, gid, "option 'gid'", 0) end
  if timeout ~= nil then timeout = M.checkint(fname, optn, timeout, "option 'timeout'", 0) end
  local flags = 0
  if opts.detached then flags = flags + SETSID end
  if opts.processGroup then flags = flags + SETPGID end
  local env = env_array(fname, optn, opts.env)
  local stdio = stdio_list(fname, optn, opts.stdio)
  local ksig = M.signum(fname, optn, opts.killSignal, 'SIGTERM', "option 'killSignal'")
  local pdsig = opts.parentDeathSignal
  if pdsig ~= nil then
    pdsig = M.signum(fname, optn, pdsig, nil, "option 'parentDeathSignal'")
  end
  local tty = opts.pty and M.pty_options(fname, optn, opts)  -- lua/pty.lua
  if tty then flags, env = SETSID + CTTY, M.pty_env(env, tty) end
  -- sized for the keys most spawns set (a constructor of nils sizes it)
  local plan = into or { file = nil, spawnfile = nil, spawnargs = nil,
    argv = nil, flags = nil, stdio = nil, opts = nil, killSignal = nil }
  plan.file, plan.spawnfile, plan.spawnargs, plan.argv = file, file, spawnargs, exec_argv
  plan.flags, plan.stdio, plan.opts, plan.killSignal = flags, stdio, opts, ksig
  -- options most spawns leave out (nil: no key)
  plan.env, plan.cwd, plan.uid, plan.gid = env, cwd, uid, gid
  plan.timeout, plan.pdeathsig = timeout, pdsig
  plan.pty = tty or nil
  return plan
end

-- }======================================================
