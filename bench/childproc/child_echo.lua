-- Forked by ipc_rtt.lua: says 'ready', then sends every message back.
local cp = require 'childproc'
local process = cp.process
process:on('message', function(msg) process:send(msg) end)
process:send('ready')
