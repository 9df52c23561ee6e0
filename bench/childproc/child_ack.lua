-- Forked by ipc_bulk.lua: says 'ready', then answers each message with its
-- length.
local cp = require 'childproc'
local process = cp.process
process:on('message', function(msg) process:send(#msg) end)
process:send('ready')
