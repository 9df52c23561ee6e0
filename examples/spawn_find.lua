-- Ports the article's spawn('find', ['.', '-type', 'f']): arguments are
-- passed as an array, the listing arrives through child.stdout 'data'.
local cp = require 'childproc'

local child = cp.spawn('find', { '.', '-type', 'f' })

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
