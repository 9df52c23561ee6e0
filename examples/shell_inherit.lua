-- Ports the article's spawn('find . -type f | wc -l', { stdio: 'inherit',
-- shell: true }): shell syntax with spawn, output straight to our stdout.
local cp = require 'childproc'

cp.spawn('find . -type f | wc -l', {
  stdio = 'inherit',
  shell = true,
})

cp.run()
