-- cp.exec and cp.execFile: run a command, buffer its output, and hand it
-- to one callback after 'close'.  Built on spawn_plan + start (child.lua).
local core, M = ...

local type, tostring, pairs, select, concat = type, tostring, pairs, select, table.concat

local MAX_BUFFER = 1024 * 1024

-- options of each function (Node v20's, without the Windows-only effects)
local EXEC_OPTIONS = {
  cwd = true, env = true, encoding = true, shell = true, timeout = true,
  maxBuffer = true, killSignal = true, uid = true, gid = true,
  windowsHide = true, pty = true, parentDeathSignal = true,
}
local EXECFILE_OPTIONS = { argv0 = true, windowsVerbatimArguments = true }
for k in pairs(EXEC_OPTIONS) do EXECFILE_OPTIONS[k] = true end
M.EXEC_OPTIONS, M.EXECFILE_OPTIONS = EXEC_OPTIONS, EXECFILE_OPTIONS

-- Output is always a Lua string of raw bytes: these encodings change nothing.
local ENCODINGS = { utf8 = true, ['utf-8'] = true, buffer = true }

-- The checks common to exec, execFile and the Sync family.  Returns a copy
-- of opts without the keys spawn_plan does not know, and maxBuffer.
function M.exec_options(fname, n, opts, extra)
  local enc = opts.encoding
  if enc ~= nil and not ENCODINGS[enc] then
    if type(enc) ~= 'string' then M.typeerror(fname, n, enc, 'string', "option 'encoding'") end
    M.argerror(fname, n, ("option 'encoding': 'utf8' or 'buffer' expected, got '%s'")
      :format(enc))
  end
  local maxbuf = opts.maxBuffer
  if maxbuf == nil then
    maxbuf = MAX_BUFFER
  elseif maxbuf ~= math.huge then  -- no limit
    maxbuf = M.checkint(fname, n, maxbuf, "option 'maxBuffer'", 0)
  end
  local copy = {}
  for k, v in pairs(opts) do
    if k ~= 'encoding' and k ~= 'maxBuffer' and not (extra and extra[k]) then
      copy[k] = v
    end
  end
  return copy, maxbuf
end

-- Node's ERR_CHILD_PROCESS_STDIO_MAXBUFFER
local function maxbuffer_error(name)
  return M.newerror({ code = 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER',
                      message = name .. ' maxBuffer length exceeded' })
end

local NAMES = { 'stdout', 'stderr' }

-- exec's options when the caller gives none (spawn_plan never changes them)
local SHELL_ONLY = { shell = true }

local function run(fname, optn, file, args, opts, cb, cmd)
  local spawnopts, maxbuf
  if opts == SHELL_ONLY then
    spawnopts, maxbuf = opts, MAX_BUFFER
  else
    spawnopts, maxbuf = M.exec_options(fname, optn, opts)
  end
  local plan = M.spawn_plan(fname, file, args, spawnopts, nil, optn)

  -- per stream i (1 stdout, 2 stderr): chunks[i] kept, nbytes[i] seen;
  -- past maxBuffer nbytes[i] is false and further bytes are dropped
  local chunks, nbytes = { {}, {} }, { 0, 0 }
  local ex, killed, done = nil, false, false
  local child, s

  -- Signal the child (timeout, maxBuffer).  Its output is still read (and
  -- dropped past maxBuffer) until it exits, so that it dies of the signal
  -- sent, not of a SIGPIPE; once it has exited, the pipes are closed, so a
  -- grandchild that holds them open cannot delay the callback.
  local function kill()
    if killed then return end
    killed = true
    child:kill(plan.killSignal)
  end

  local function collect(i, chunk)
    local seen = nbytes[i]
    if not seen then return end
    local len = seen + #chunk
    if len > maxbuf then
      local keep = maxbuf - seen
      nbytes[i] = false
      if keep > 0 then chunks[i][#chunks[i] + 1] = chunk:sub(1, keep) end
      if not ex then ex = maxbuffer_error(NAMES[i]) end
      kill()
    else
      nbytes[i] = len
      chunks[i][#chunks[i] + 1] = chunk
    end
  end

  local function onerror(e) if not ex then ex = e end end

  -- (the output is kept without a callback too: child:wait() returns it)
  local function finish(code)
    if done then return end
    done = true
    local stdout, stderr = concat(chunks[1]), concat(chunks[2])
    chunks = nil
    s.execout = { stdout, stderr }
    if not cb then return end
    local signal = s.signalCode
    if not ex and code == 0 and signal == nil and not s.spawnerror then
      return cb(nil, stdout, stderr)
    end
    if not ex then
      ex = M.newerror({
        message = 'Command failed: ' .. cmd .. '\n' .. stderr,
        code = code,
        killed = s.killed or killed,
        signal = signal,
      })
    else
      if ex.killed == nil then ex.killed = s.killed or killed end
      if ex.signal == nil then ex.signal = signal end
    end
    ex.cmd = cmd
    ex.stdout, ex.stderr = stdout, stderr
    return cb(ex, stdout, stderr)
  end

  child, s = M.start(plan)
  if plan.timeout and plan.timeout > 0 then
    -- the child's own timer sends killSignal right after this
    s.ontimeout = function() killed = true end
  end

  -- the child's own listeners go in without the methods' lookups
  local add = M.addlistener
  local out, err = s[2], s[3]  -- stdout, stderr (lua/child.lua)
  if out then
    out:on('data', function(chunk) collect(1, chunk) end)
    out:on('error', onerror)
  end
  if err then
    err:on('data', function(chunk) collect(2, chunk) end)
    err:on('error', onerror)
  end

  add(s, child, 'error', onerror)
  add(s, child, 'exit', function()
    -- what it wrote before exiting has been read (child.lua drains the
    -- pipes before 'exit'); after a kill, stop waiting for the pipes
    if killed then
      M.defer(function()
        if s[2] then s[2]:destroy() end
        if s[3] then s[3]:destroy() end
      end)
    end
  end)
  add(s, child, 'close', function(code)
    if s.spawnerror then code = nil end
    finish(code)
  end)
  return child
end

-- cp.exec(command [, options] [, callback]) -> ChildProcess
function M.exec(...)
  local command, opts, cb = ...
  command = M.checkstr('exec', 1, command, nil, select('#', ...))
  if cb == nil and M.callable(opts) and type(opts) ~= 'table' then opts, cb = nil, opts end
  if opts ~= nil then opts = M.checkoptions('exec', 2, opts, EXEC_OPTIONS) end
  M.checkfunc('exec', 3, cb, true)
  if opts == nil then return run('exec', 2, command, nil, SHELL_ONLY, cb, command) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.shell = type(opts.shell) == 'string' and opts.shell or true
  return run('exec', 2, command, nil, o, cb, command)
end

-- cp.execFile(file [, args] [, options] [, callback]) -> ChildProcess
function M.execFile(...)
  local file, args, opts, cb = ...
  file = M.checkstr('execFile', 1, file, nil, select('#', ...))
  local a, o, c, optn = M.splitargs('execFile', args, opts, cb, true)
  o = M.checkoptions('execFile', optn, o, EXECFILE_OPTIONS)
  local cmd = file
  if a and #a > 0 then
    local parts = { file }
    for i = 1, #a do parts[i + 1] = tostring(a[i]) end
    cmd = concat(parts, ' ')
  end
  return run('execFile', optn, file, a, o, c, cmd)
end
