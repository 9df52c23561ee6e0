-- Ports the article's child.js: print the parent's message, and send the
-- parent a counter every second. It stops counting when the parent
-- disconnects, so it then exits (with status 0). Forked children need no
-- cp.run(): the loop runs after the script.
local cp = require 'childproc'
local process = cp.process
io.stdout:setvbuf('line')

process:on('message', function(msg)
  print(('Message from parent: { hello = %q }'):format(msg.hello))
end)

local counter = 0

local interval = cp.setInterval(function()
  process:send({ counter = counter })
  counter = counter + 1
end, 1000)

process:on('disconnect', function()
  cp.clearInterval(interval)
end)
