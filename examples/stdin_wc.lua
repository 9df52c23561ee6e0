-- Ports the article's process.stdin.pipe(child.stdin) into spawn('wc'):
-- what is typed (until Ctrl+D, or the end of piped input) is counted by wc.
local cp = require 'childproc'

local child = cp.spawn('wc')

cp.process.stdin:pipe(child.stdin)

child.stdout:on('data', function(data)
  print('child stdout:\n' .. data)
end)

cp.run()
