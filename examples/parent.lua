-- Ports the article's parent.js: fork('child.js'), log every 'message' from
-- the child and send it { hello: 'world' }. So that the demo ends, after N
-- counter messages (optional argument, default 3) the parent disconnects.
local cp = require 'childproc'
io.stdout:setvbuf('line')

local here = arg[0]:match('^(.*)/[^/]*$') or '.'
local limit = tonumber(arg[1]) or 3

local forked = cp.fork(here .. '/child.lua')

local received = 0
forked:on('message', function(msg)
  print(('Message from child { counter = %s }'):format(msg.counter))
  received = received + 1
  if received == limit then
    forked:disconnect()
  end
end)

forked:on('exit', function(code, signal)
  print(('child process exited with code %s and signal %s'):format(tostring(code), tostring(signal)))
end)

forked:send({ hello = 'world' })

cp.run()
