-- Ports the article's find.stdout.pipe(wc.stdin): two spawned commands
-- joined like a shell pipeline, counting the files under the current dir.
local cp = require 'childproc'

local find = cp.spawn('find', { '.', '-type', 'f' })
local wc = cp.spawn('wc', { '-l' })

find.stdout:pipe(wc.stdin)

wc.stdout:on('data', function(data)
  print('Number of files ' .. data:gsub('\n$', ''))
end)

cp.run()
