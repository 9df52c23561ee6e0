-- cp.fork(modulePath, args, { launcher = argv }): a worker started through
-- an existing launcher (ssh, srun, kubectl exec -i, env...), its channel
-- over the launcher's stdin and stdout (docs/launcher.md).
--
-- The wire: the remote side (the bootstrap below, then M.launcher_main)
-- first writes one line, "childproc-launcher PROTO VERSION SERIALIZATION",
-- then speaks the channel's own framing ('lua' or 'json') both ways.
-- The remote script's stdout goes to a pipe the remote side reads and
-- forwards as messages {cmd = STDOUT, data = ...} on the channel; its
-- stderr is the launcher's.
local core, M = ...

local type, ipairs, pairs, tostring, rawget =
  type, ipairs, pairs, tostring, rawget
local floor = math.floor

local PROTO = 1                     -- the start-up line's protocol
local HELLO = 'childproc-launcher '
local STDOUT = 'NODE_CHILDPROC_STDOUT'
local DEFAULT_TIMEOUT = 30000       -- ms until the announcement
local HELLO_MAX = 64 * 1024         -- bytes read looking for it
local TAIL = 2048                   -- of the launcher's stderr, for errors
local R = core.events.R

-- Run by `lua -e` on the remote side, before lua.c would run the script.
-- Written for any Lua from 5.1 on.  Without a childproc whose
-- 'childproc.internal' (lua_childproc.c) has launcher_main it says so on
-- the start-up line (protocol 0) and exits.
local BOOT = "local ok,cp=pcall(require,'childproc') "
  .. "local i,M=pcall(require,'childproc.internal') "
  .. "local f=ok and i and type(M)=='table' and M.launcher_main "
  .. "if not f then io.write('childproc-launcher 0 ',"
  .. "ok and tostring(cp.version) or '-',ok and ' old ' or ' require ',"
  .. "ok and '' or tostring(cp):match('^[^\\n]*'),"
  .. "' [package.cpath: ',package.cpath,']\\n') os.exit(1) end "
  .. "f(%d,%q,%s)"

local function basename(path) return (path:match('([^/]*)$')) end

-- quote for a POSIX shell (words of safe bytes as they are; not '=':
-- a first word NAME=value would be an assignment)
local function shq(s)
  if s ~= '' and not s:find('[^%w%%+,./:@_-]') then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- option 'launcher' (of argument n) -> argv, shell (quote the command
-- for a shell)
local function check_launcher(fname, n, v)
  local what = "option 'launcher'"
  M.checktable(fname, n, v, false, nil, what)
  if v[1] == nil then
    M.argerror(fname, n, what .. ': a non-empty array of strings expected')
  end
  local len = #v
  for k, x in pairs(v) do
    if k == 'shell' then
      if type(x) ~= 'boolean' then
        M.typeerror(fname, n, x, 'boolean', what .. ": field 'shell'")
      end
    elseif type(k) ~= 'number' or k < 1 or k > len or floor(k) ~= k then
      M.argerror(fname, n, what .. ": an array of strings (and a 'shell' field) expected")
    end
  end
  local argv = {}
  for i = 1, len do
    argv[i] = M.checkstr(fname, n, v[i], ('%s: launcher[%d]'):format(what, i))
  end
  local shell = v.shell
  if shell == nil then shell = basename(argv[1]) == 'ssh' end
  return argv, shell
end

-- stdio with a launcher: one word for the remote script's stdout and the
-- launcher's stderr (the channel has the launcher's stdin and stdout)
local WORDS = { pipe = true, inherit = true, ignore = true }
local function check_stdio(fname, n, stdio, silent)
  if stdio == nil then return silent and 'pipe' or 'inherit' end
  if not WORDS[stdio] then
    M.argerror(fname, n, "option 'stdio': with a launcher 'pipe', 'inherit'"
      .. " or 'ignore' expected (the channel takes the launcher's stdin and stdout)")
  end
  return stdio
end

-- A 'json' channel carries valid UTF-8 only: the remote script's stdout
-- (any bytes, cut anywhere) goes as one character per byte (U+0000-U+00FF)
local function to_chars(bytes)
  return (bytes:gsub('[\128-\255]', function(c)
    local b = c:byte()
    return string.char(192 + floor(b / 64), 128 + b % 64)
  end))
end

local function from_chars(text)
  return (text:gsub('[\194\195][\128-\191]', function(c)
    local a, b = c:byte(1, 2)
    return string.char((a - 192) * 64 + b - 128)
  end))
end

local function launcher_error(code, message, fields)
  fields = fields or {}
  fields.code, fields.message = code, message
  return M.newerror(fields)
end

-- {====================================================== this side

-- Wires the launcher's fds (the 'ipc' entry of a plan with a launcher:
-- lua/ipc_stdio.lua's M.ipc_setup calls this) and, after the start, the
-- child's streams and the start-up line (L: what the plan says).
function M.launcher_channel(plan, s, self)
  local L = plan.launcher
  local max = M.check_maxsize('fork', 3, plan.opts.maxMessageSize)
  -- we write the launcher's stdin (a socket: no SIGPIPE here) and read
  -- its stdout (a pipe)
  local wmine, wtheirs = core.stdio_pair(0)
  if not wmine then return nil, wtheirs end
  local rmine, rtheirs = core.stdio_pair(1)
  local emine, etheirs = core.stdio_pair(2)     -- its stderr, read here
  if not rmine or not emine then
    for _, fd in ipairs({ wmine, wtheirs, rmine or false, rtheirs or false,
                          emine or false }) do
      if fd then core.close(fd) end
    end
    return nil, not rmine and rtheirs or etheirs
  end
  L.emine, L.etheirs = emine, etheirs
  local ch = M.ipc.new(rmine, L.mode, max, 'child', s, self, wmine, true)
  M.ipc_attach(plan, s, self, ch)
  L.ch = ch
  -- the launcher's fds 1 and 2, after its fd 0 (lua/child.lua's
  -- setup_stdio); etheirs is closed by launcher_fork
  return wtheirs, { rtheirs, etheirs, at = 2, after = rtheirs }
end

-- the remote script's stdout, as its stdio word says
local function stdout_sink(s, self, word)
  if word == 'ignore' then return function() end end
  if word == 'inherit' then
    return function(data) io.stdout:write(data); io.stdout:flush() end
  end
  -- 'pipe': child.stdout reads a pipe this side writes
  local r, w = core.stdio_pair(1)
  if not r then
    return function() end
  end
  core.nonblock(w, true)
  local feed = M.writable(w)
  feed:on('error', function() end)  -- child.stdout destroyed: dropped
  M.child_stream(s, self, 2, M.readable(r))
  local sink = function(data) feed:write(data) end
  return sink, function() feed:close() end
end

local NOARGS = { n = 0 }

local function start_up(self, s, L)
  local ch = L.ch
  local out, out_end = stdout_sink(s, self, L.stdio)
  ch.oninternal = function(_, m)
    if type(m) ~= 'table' or rawget(m, 'cmd') ~= STDOUT then return false end
    local data = rawget(m, 'data')
    if type(data) == 'string' then
      out(L.mode == 'json' and from_chars(data) or data)
    end
    return true
  end
  local timer
  -- the launcher's stderr: read here, forwarded as stdio says, its tail
  -- kept for the error of a launcher that fails before the announcement
  local tail = ''
  local function tap(chunk)
    if L.stdio == 'inherit' then io.stderr:write(chunk) end
    if not L.hello then tail = (tail .. chunk):sub(-TAIL) end
  end
  local errst, read_err
  if L.stdio == 'pipe' then   -- child.stderr
    errst = M.readable(L.emine)
    M.child_stream(s, self, 3, errst)
    errst:on('data', tap)
    read_err = function() M.readable_drain(errst) end
  else
    -- forwarded or dropped by a watch that holds no ref, as an inherited
    -- stderr would (child:unref() lets the loop end); 'close' waits for it
    local efd = L.emine
    s.open_streams = (s.open_streams or 0) + 1
    read_err = function()
      for _ = 1, 16 do
        if not efd then return end
        local chunk = core.read(efd)
        if chunk == false then return end
        if chunk then tap(chunk)
        else
          M.forget(efd); core.close(efd); efd = nil
          s.open_streams = s.open_streams > 1 and s.open_streams - 1 or nil
          M.child_maybe_close(s, self)
        end
      end
    end
    M.setev(efd, R, read_err)
  end

  local function settled()
    L.hello = true
    if timer then M.timer_stop(timer) end
    if errst then errst:off('data', tap) end
  end
  -- the start-up failed: 'error', no channel ('close' follows the exit)
  -- the channel closed (disconnect() before the start-up line, a failure)
  ch.onclose = function()
    if not L.hello then settled() end
    if out_end then out_end() end
  end
  local function fail(code, msg, kill)
    if L.hello then return end
    settled()
    local err = launcher_error(code, msg, {
      spawnargs = s.spawnargs, status = s.exitCode, signal = s.signalCode })
    ch.silent = true
    M.ipc.close(ch, true)  -- (ends child.stdout: ch.onclose)
    M.emit(s, self, 'error', err)
    if kill then self:kill(L.killSignal) end
  end
  local function stderr_line()
    local t = tail:gsub('%s+$', '')
    local line = t:match('([^\n]*)$')
    return line ~= '' and (': ' .. line) or ''
  end

  local buf = ''
  local onready = ch.onready
  -- the start-up line; false while it has not come
  local function announced(line, rest)
    local proto, version, mode, more = line:match('^(%S+) (%S+) (%S+) ?(.*)$')
    if proto == '0' then
      if mode == 'old' then
        fail('ERR_LAUNCHER_VERSION', ("the remote childproc %s cannot be"
          .. " a launcher's worker (it has no launcher support)"):format(version))
      else
        fail('ERR_LAUNCHER_NO_CHILDPROC', ("the remote side cannot require"
          .. " 'childproc' (%s)"):format(more))
      end
      return
    elseif proto ~= tostring(PROTO) then
      fail('ERR_LAUNCHER_VERSION', ("the remote childproc %s speaks launcher"
        .. " protocol %s; this one (%s) speaks %d"):format(tostring(version),
        tostring(proto), core.version, PROTO), true)
      return
    elseif mode ~= L.mode then
      fail('ERR_LAUNCHER_VERSION', ("the remote childproc %s speaks '%s',"
        .. " not '%s'"):format(version, tostring(mode), L.mode), true)
      return
    end
    settled()
    ch.onready = onready
    M.setev(ch.fd, R, onready)
    if rest ~= '' then M.ipc.feed(ch, rest) end
  end
  -- drain: the launcher exited; read what is left
  local function read_hello(drain)
    if ch.closed or L.hello then return end
    while true do
      local chunk = core.read(ch.fd)
      if chunk == false then break end
      if not chunk then  -- end of file: the exit says why (below)
        M.forget(ch.fd)
        L.eof = true
        break
      end
      buf = buf .. chunk
      local i = buf:find(HELLO, 1, true)
      local j = i and buf:find('\n', i, true)
      if j then
        if i > 1 then out(buf:sub(1, i - 1)) end  -- a login's own output
        local line, rest = buf:sub(i + #HELLO, j - 1), buf:sub(j + 1)
        buf = nil
        return announced(line, rest)
      elseif #buf > HELLO_MAX then
        return fail('ERR_LAUNCHER_FAILED', ("the launcher wrote %d bytes"
          .. " and no start-up line"):format(#buf), true)
      end
      if not drain then return end
    end
    if drain and not L.hello then
      if buf ~= '' then out(buf) end
      read_err()
      local how = s.signalCode and ('was killed by ' .. s.signalCode)
        or ('exited with status ' .. tostring(s.exitCode))
      fail('ERR_LAUNCHER_FAILED', ("launcher '%s' %s before the remote side"
        .. " announced itself%s"):format(L.name, how, stderr_line()))
    end
  end
  ch.onready = function() read_hello(false) end
  M.setev(ch.fd, R, ch.onready)
  local drain = s.channel.drain
  s.channel.drain = function()
    if not errst then read_err() end
    if L.hello then drain() else read_hello(true) end
  end
  if L.timeout > 0 then
    timer = { ms = L.timeout, refed = false, args = NOARGS }
    timer.fn = function()
      fail('ERR_LAUNCHER_TIMEOUT', ("no announcement from the remote side"
        .. " within %d ms (launcher '%s')"):format(L.timeout, L.name), true)
    end
    M.timer_start(timer)
  end
end

local FORK_ONLY = { execPath = true, execArgv = true, silent = true,
                    launcher = true, timeout = true, stdio = true, cwd = true }

-- from M.fork (lua/fork.lua), options checked but for the launcher's
function M.launcher_fork(fname, modulePath, args, o, mode, n)
  local launcher, shell = check_launcher(fname, n, o.launcher)
  local stdio = check_stdio(fname, n, o.stdio, o.silent)
  local timeout = M.checkint(fname, n, o.timeout, "option 'timeout'", 0, true)
  if timeout == nil then timeout = DEFAULT_TIMEOUT end
  local cwd = o.cwd
  if cwd ~= nil then cwd = M.checkstr(fname, n, cwd, "option 'cwd'") end
  -- the interpreter's name, found in the remote PATH
  local execPath = o.execPath
  if execPath == nil then
    execPath = basename(core.exepath() or 'lua')
  else
    execPath = M.checkstr(fname, n, execPath, "option 'execPath'")
  end
  local cmd = { execPath }
  for _, v in ipairs(M.fork_strings(fname, n, "option 'execArgv'", o.execArgv)) do
    cmd[#cmd + 1] = v
  end
  cmd[#cmd + 1] = '-e'
  cmd[#cmd + 1] = BOOT:format(PROTO, mode, cwd and ('%q'):format(cwd) or 'nil')
  cmd[#cmd + 1] = modulePath  -- the remote side's: not resolved here
  -- args: spawnargs as M.checkargs made them ({modulePath, args...})
  for i = 2, args and #args or 0 do cmd[#cmd + 1] = args[i] end
  local argv = {}
  for i = 2, #launcher do argv[#argv + 1] = launcher[i] end
  if shell then  -- one string the remote shell splits back into cmd
    local q = {}
    for i, v in ipairs(cmd) do q[i] = shq(v) end
    argv[#argv + 1] = table.concat(q, ' ')
  else
    for _, v in ipairs(cmd) do argv[#argv + 1] = v end
  end
  local so = {}
  for k, v in pairs(o) do if not FORK_ONLY[k] then so[k] = v end end
  -- fds 1 and 2: the channel's and ours (channel_setup)
  so.stdio = { 'ipc', 'inherit', 'inherit' }
  local plan = M.spawn_plan(fname, launcher[1], argv, so)
  local L = { mode = mode, stdio = stdio, timeout = timeout,
              name = basename(launcher[1]), killSignal = plan.killSignal }
  plan.launcher = L
  local self, s = M.start(plan)
  if L.etheirs then core.close(L.etheirs) end
  if s.spawnerror then
    if L.emine then core.close(L.emine) end
  else
    start_up(self, s, L)
  end
  return self
end

-- }======================================================


-- {====================================================== the remote side

local function write_all(fd, data)
  local off = 0
  while off < #data do
    local n = core.write(fd, data, off)
    if not n then return false end
    if n == false then core.poll({ fd }, { core.events.W }, 100, {}) else off = off + n end
  end
  return true
end

-- Called by the bootstrap: proto and mode are the parent's, cwd the
-- option's.  Moves the channel off fds 0 and 1 (the script's stdin
-- becomes /dev/null, its stdout a pipe forwarded on the channel),
-- announces itself, then runs the script as a forked child does.
function M.launcher_main(proto, mode, cwd)
  local speaks = mode
  if not (mode == 'lua' or mode == 'json') or not M.check_serialization then
    speaks = 'lua'
  end
  local rfd, wfd = assert(core.dup(0)), assert(core.dup(1))
  local null = assert(core.open('/dev/null', 'rw'))
  local pr, pw = assert(core.pipe())
  core.dup2(null, 0)
  core.dup2(pw, 1)
  core.close(pw)
  io.stdout:setvbuf('line')
  local hello = ('%s%d %s %s\n'):format(HELLO, PROTO, core.version, speaks)
  if not write_all(wfd, hello) then os.exit(0) end  -- the parent has gone
  if proto ~= PROTO or speaks ~= mode then os.exit(1) end
  if cwd then
    local ok, err = core.chdir(cwd)
    if not ok then
      io.stderr:write(("childproc: cannot change to '%s': %s\n")
        :format(cwd, core.strerror(err)))
      os.exit(1)
    end
  end
  core.nonblock(rfd, true)
  core.nonblock(wfd, true)
  core.nonblock(pr, true)
  local ch = M.ipc_process(rfd, mode, wfd, false)
  local send = M.ipc.send
  -- what the script printed: on the channel while it is open, else dropped
  local function forward()
    while pr do
      local chunk = core.read(pr)
      if chunk == false then return end
      if not chunk then
        M.forget(pr); core.close(pr); pr = nil
        return
      end
      if not ch.disconnecting then
        if mode == 'json' then chunk = to_chars(chunk) end
        send(ch, { cmd = STDOUT, data = chunk })
      end
    end
  end
  M.setev(pr, R, forward)
  -- what was printed (and flushed) before a send() comes before its
  -- message
  ch.beforesend = forward
  -- before the channels' flush (M.at_exit runs the last added first)
  M.at_exit(function()
    io.stdout:flush()
    if pr then  -- the last of it: fd 1 leaves the pipe, which then ends
      core.dup2(null, 1)
      forward()
    end
  end)
  M.runmain()
end

-- }======================================================
