-- Ports the article's remark on the find example: given an invalid
-- destination, find writes to stderr (the 'data' handler fires) and the
-- 'exit' handler reports code 1.
local cp = require 'childproc'

local child = cp.spawn('find', { '/nonexistent-childproc-demo-dir', '-type', 'f' })

child.stdout:on('data', function(data)
  print('child stdout:\n' .. data)
end)

child.stderr:on('data', function(data)
  print('child stderr:\n' .. data)
end)

child:on('exit', function(code, signal)
  print(('child process exited with code %s and signal %s'):format(tostring(code), tostring(signal)))
end)

cp.run()
