-- Ports the article's spawn('echo $ANSWER', { stdio: 'inherit', shell: true,
-- env: { ANSWER: 42 } }): the child sees only the env given (no $HOME).
local cp = require 'childproc'

cp.spawn('echo $ANSWER', {
  stdio = 'inherit',
  shell = true,
  env = { ANSWER = 42 },
})

cp.run()
