-- Forked by fork_first_msg.lua: one message at start, then the script ends.
local cp = require 'childproc'
cp.process:send('ready')
