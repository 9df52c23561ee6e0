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
local STD_FDS = { 1, 2 }

-- Start plan's child on loop lp (nil: the default one) and keep what it
-- writes to each fd of the list fds (1 stdout, 2 stderr, 3...) that has a
-- stream, up to maxbuf bytes each.  Past that (c.ex = overflow(fd)) or at
-- plan's timeout (c.ex = ontimeout(), when given) the child is sent
-- plan.killSignal; its output is still read (and dropped past maxBuffer)
-- until it exits, so that it dies of that signal and not of a SIGPIPE,
-- and then its pipes are closed, so a grandchild holding them cannot
-- delay the end.  c (a table of the caller's: it holds the child as soon
-- as it runs) gets child, s, ex (the first error: a stream's, the child's,
-- or the two above), killed; after 'close', c.out[fd] (the bytes) and
-- c.code (the exit code, nil after a failed start), then done(c).
function M.exec_collect(c, plan, maxbuf, lp, fds, overflow, ontimeout, done)
  local chunks, nbytes, streams = {}, {}, {}
  local ksig = plan.killSignal
  local child, s

  local function kill()
    if c.killed then return end
    c.killed = true
    child:kill(ksig)
  end

  local function collect(i, chunk)
    local seen = nbytes[i]
    if not seen then return end
    local len = seen + #chunk
    if len > maxbuf then
      local keep = maxbuf - seen
      nbytes[i] = false
      if keep > 0 then chunks[i][#chunks[i] + 1] = chunk:sub(1, keep) end
      if not c.ex then c.ex = overflow(i) end
      kill()
    else
      nbytes[i] = len
      chunks[i][#chunks[i] + 1] = chunk
    end
  end

  local function onerror(e) if not c.ex then c.ex = e end end

  c.killed = false
  child, s = M.start(plan, lp)
  c.child, c.s = child, s
  if plan.timeout and plan.timeout > 0 then
    -- the child's own timer sends killSignal right after this
    s.ontimeout = function()
      c.killed = true
      if ontimeout and not c.ex then c.ex = ontimeout() end
    end
  end

  -- the child's own listeners go in without the methods' lookups
  local add = M.addlistener
  for k = 1, #fds do
    local i = fds[k]
    local st = i < 3 and s[i + 1] or child.stdio[i]  -- (lua/child.lua)
    if st then
      chunks[i], nbytes[i] = {}, 0
      streams[#streams + 1] = st
      st:on('data', function(chunk) collect(i, chunk) end)
      st:on('error', onerror)
    end
  end

  add(s, child, 'error', onerror)
  add(s, child, 'exit', function()
    -- what it wrote before exiting has been read (child.lua drains the
    -- pipes before 'exit'); after a kill, stop waiting for the pipes
    if c.killed then
      s.loop.defer(function()
        for k = 1, #streams do streams[k]:destroy() end
      end)
    end
  end)
  add(s, child, 'close', function(code)
    if c.out then return end
    local out = {}
    for i in pairs(chunks) do out[i] = concat(chunks[i]) end
    chunks = nil
    c.out, c.code = out, not s.spawnerror and code or nil
    done(c)
  end)
  return child
end

-- the end of an exec: the child's output kept for child:wait(), then
-- cb(err, stdout, stderr) (the output is kept without a callback too)
local function exec_done(c, cb, cmd)
  local s = c.s
  local stdout, stderr = c.out[1] or '', c.out[2] or ''
  s.execout = { stdout, stderr }
  if not cb then return end
  local signal, code, ex = s.signalCode, c.code, c.ex
  if not ex and code == 0 and signal == nil and not s.spawnerror then
    return cb(nil, stdout, stderr)
  end
  if not ex then
    ex = M.newerror({
      message = 'Command failed: ' .. cmd .. '\n' .. stderr,
      code = code,
      killed = s.killed or c.killed,
      signal = signal,
    })
  else
    if ex.killed == nil then ex.killed = s.killed or c.killed end
    if ex.signal == nil then ex.signal = signal end
  end
  ex.cmd = cmd
  ex.stdout, ex.stderr = stdout, stderr
  return cb(ex, stdout, stderr)
end

local function overflow(i) return maxbuffer_error(NAMES[i]) end

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
  -- (a constructor of nils sizes c for the keys exec_collect sets)
  local c = { child = nil, s = nil, ex = nil, killed = nil, out = nil, code = nil }
  return M.exec_collect(c, plan, maxbuf, nil, STD_FDS, overflow, nil,
                        function() return exec_done(c, cb, cmd) end)
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
