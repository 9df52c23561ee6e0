-- Ports the article's same find | wc spawn with a cwd option (the article
-- counts ~/Downloads). Here cwd is the directory given as argument, or
-- this examples directory, which exists on every machine.
local cp = require 'childproc'

local here = arg[0]:match('^(.*)/[^/]*$') or '.'
local dir = arg[1] or here

cp.spawn('find . -type f | wc -l', {
  stdio = 'inherit',
  shell = true,
  cwd = dir,
})

cp.run()
