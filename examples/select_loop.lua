-- Not from the article: childproc inside a plain socket.select loop.  The
-- loop owns a TCP echo server and also waits on cp.loop's pollfd, with
-- cp.loop:timeout() as its timeout, then calls cp.run('nowait').  A child
-- (a Lua one-liner started with cp.spawn) talks to the echo server.
local cp = require 'childproc'
local socket = require 'socket'
io.stdout:setvbuf('line')

local srv = assert(socket.bind('127.0.0.1', 0))
srv:settimeout(0)
local _, port = srv:getsockname()

-- socket.select wants objects with getfd()
local pollable = { getfd = function() return cp.loop:pollfd() end }

-- the child connects to our echo server and prints what comes back
local client = cp.spawn(cp.process.execPath, { '-e', ([[
  local s = require('socket').connect('127.0.0.1', %d)
  s:send('hello from the child\n')
  print('child got back: ' .. s:receive('*l'))
]]):format(port) }, { stdio = { 'ignore', 'pipe', 'inherit' } })
client.stdout:on('data', function(d) io.write(d) end)
client:on('close', function(code) print('child closed with code ' .. code) end)
cp.setTimeout(function() print('a childproc timer fired') end, 50)

local conns = {}
local work = true
while work do
  local recvt = { pollable, srv }
  for c in pairs(conns) do recvt[#recvt + 1] = c end
  local t = cp.loop:timeout()          -- nil: no timer, wait for fds only
  local ready = socket.select(recvt, nil, t or -1)
  if ready[srv] then
    local c = srv:accept()
    if c then c:settimeout(0); conns[c] = true end
  end
  for c in pairs(conns) do
    if ready[c] then
      local line, err = c:receive('*l')
      if line then
        print('echo server got: ' .. line)
        c:send(line .. '\n')
      elseif err == 'closed' then
        conns[c] = nil; c:close()
      end
    end
  end
  work = cp.run('nowait')              -- false once childproc has nothing left
end
srv:close()
print('select loop done')
