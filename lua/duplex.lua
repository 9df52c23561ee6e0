-- A duplex stream over one fd (a socket, or a pipe's end: the side it is
-- open for): a Readable on the fd and a Writable on a copy, behind one
-- emitter.  childproc.Handle's stream() (lua/handle.lua) makes them.
local core, M = ...

local emit = M.emit

-- {====================================================== Duplex

local dmethods = {}
local Duplex, dself = core.class('childproc.Duplex', dmethods)
M.Duplex = Duplex

-- the Readable's 'data' is forwarded from the first listener (the flow
-- starts then, as it would on the Readable)
local function d_onlisten(s, self, name)
  if name == 'data' and not s.fwd and s.r then
    s.fwd = true
    s.r:on('data', function(chunk) emit(s, self, 'data', chunk) end)
  end
end
M.emitter_methods(dmethods, dself, d_onlisten)

-- access: 'r', 'w' (a pipe's end: that side only) or 'rw'
function M.duplex(fd, access)
  core.nonblock(fd, true)
  local r = access ~= 'w' and M.readable(fd) or nil
  local wfd = access == 'w' and fd or access == 'rw' and core.dup(fd) or nil
  local w = wfd and M.writable(wfd) or nil
  local s = { r = r, w = w, fd = fd, open = (r and 1 or 0) + (w and 1 or 0) }
  local self = core.object(Duplex, s)
  local function fwd(from, name)
    from:on(name, function(...) emit(s, self, name, ...) end)
  end
  local function onclose()
    s.open = s.open - 1
    if s.open == 0 then s.closed = true; emit(s, self, 'close') end
  end
  for _, part in ipairs({ r or false, w or false }) do
    if part then
      fwd(part, 'error')
      part:on('close', onclose)
    end
  end
  if r then fwd(r, 'end'); fwd(r, 'pause'); fwd(r, 'resume') end
  if w then
    fwd(w, 'drain'); fwd(w, 'finish')
    -- a socket's end of writing is its FIN (the Readable keeps it open)
    if r then w:on('finish', function() core.shutdown(wfd) end) end
  end
  return self
end

local function part(self, which)
  local p = dself(self)[which]
  if not p then
    error(("the stream has no %s side (a pipe's end)"):format(
      which == 'r' and 'readable' or 'writable'), 3)
  end
  return p
end

function dmethods.write(self, ...) return part(self, 'w'):write(...) end
function dmethods.close(self, ...)
  part(self, 'w'):close(...)
  return self
end
dmethods['end'] = dmethods.close
function dmethods.pause(self) part(self, 'r'):pause(); return self end
function dmethods.resume(self)
  local r = part(self, 'r')
  d_onlisten(dself(self), self, 'data')
  r:resume()
  return self
end
function dmethods.pipe(self, dest, opts)
  local r = part(self, 'r')
  d_onlisten(dself(self), self, 'data')
  return r:pipe(dest, opts)
end
function dmethods.unpipe(self, dest) part(self, 'r'):unpipe(dest); return self end
function dmethods.destroy(self, err)
  local s = dself(self)
  if s.r then s.r:destroy(err) end
  if s.w then s.w:destroy() end
  return self
end
function dmethods.fileno(self)
  local s = dself(self)
  if s.closed then return nil end
  return s.fd
end

-- }======================================================
