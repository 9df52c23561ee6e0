-- Ports the article's first spawn() snippet: spawn('pwd') with an 'exit'
-- handler that logs the child's exit code and signal (signal is nil here).
local cp = require 'childproc'

local child = cp.spawn('pwd')

child:on('exit', function(code, signal)
  print('child process exited with ' ..
        ('code %s and signal %s'):format(tostring(code), tostring(signal)))
end)

cp.run()
