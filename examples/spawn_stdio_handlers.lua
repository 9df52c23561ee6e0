-- Ports the article's 'data' handlers on child.stdout and child.stderr,
-- attached to the spawn('pwd') child: its output is logged by the parent.
local cp = require 'childproc'

local child = cp.spawn('pwd')

child.stdout:on('data', function(data)
  print('child stdout:\n' .. data)
end)

child.stderr:on('data', function(data)
  io.stderr:write('child stderr:\n' .. data .. '\n')
end)

child:on('exit', function(code, signal)
  print(('child process exited with code %s and signal %s'):format(tostring(code), tostring(signal)))
end)

cp.run()
