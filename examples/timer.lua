-- Ports the article's timer.js, a script whose setTimeout keeps the event
-- loop busy (20 s there; the optional argument gives the seconds here).
local cp = require 'childproc'

local seconds = tonumber(arg[1]) or 20

cp.setTimeout(function()
  -- keep the event loop busy
end, seconds * 1000)

cp.run()
