-- Ports the article's execFile section: execFile runs a file without a
-- shell and, like exec, buffers its output for the callback (here ls -l).
local cp = require 'childproc'

cp.execFile('ls', { '-l' }, function(err, stdout)
  if err then
    io.stderr:write(('execFile error: %s\n'):format(tostring(err)))
    return
  end

  io.write(stdout)
end)

cp.run()
