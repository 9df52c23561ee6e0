-- Ports the article's spawn('node', ['timer.js'], { detached: true,
-- stdio: 'ignore' }) followed by child.unref(): the parent exits at once
-- while timer.lua keeps running in its own session. The optional argument
-- is the timer's length in seconds (default 20, as in the article).
local cp = require 'childproc'

local here = arg[0]:match('^(.*)/[^/]*$') or '.'
local seconds = arg[1] or '20'
local lua = cp.process.execPath or 'lua5.4'

local child = cp.spawn(lua, { here .. '/timer.lua', seconds }, {
  detached = true,
  stdio = 'ignore',
})

child:unref()

if not child.pid then
  io.stderr:write('detached: could not start ' .. lua .. '\n')
  os.exit(1)
end
print(('detached child pid %d runs timer.lua for %s s'):format(child.pid, seconds))

cp.run()
