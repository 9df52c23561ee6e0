-- The public module table: what docs/ (and ../shared/API.md) document,
-- nothing private (the layer's M is require 'childproc.internal',
-- lua_childproc.c).  Loaded last: everything it names exists.
local core, M = ...

local cp = {
  version = core.version,
  spawn = M.spawn,
  exec = M.exec,
  execFile = M.execFile,
  fork = M.fork,
  spawnSync = M.spawnSync,
  execSync = M.execSync,
  execFileSync = M.execFileSync,
  run = function(...) return M.unhooked(M.run, ...) end,  -- (lua/main.lua)
  setTimeout = M.setTimeout,
  setInterval = M.setInterval,
  setImmediate = M.setImmediate,
  clearTimeout = M.clearTimeout,
  clearInterval = M.clearInterval,
  clearImmediate = M.clearImmediate,
  async = M.async,
  sleep = M.sleep,
  watch = M.watch,
  loop = M.loop,
  process = M.process,
  signals = M.signals,
  Error = M.Error,
  json_null = core.json_null,  -- JSON's null where a 'json' channel keeps one
}

-- cp.kill(pid [, signal]) -> true | nil, err   (negative pid: a group)
function cp.kill(...)
  local pid, sig = ...
  pid = M.checkint('kill', 1, pid, nil, nil, false, select('#', ...))
  local ok, err = core.kill(pid, M.signum('kill', 2, sig, 'SIGTERM'))
  if ok then return true end
  return nil, M.syserror(err, 'kill')
end

if M.channel_autostart then M.channel_autostart() end

return cp
