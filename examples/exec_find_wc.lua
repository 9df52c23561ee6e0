-- Ports the article's exec('find . -type f | wc -l', callback): exec runs
-- the command in a shell and hands the buffered output to the callback.
local cp = require 'childproc'

cp.exec('find . -type f | wc -l', function(err, stdout)
  if err then
    io.stderr:write(('exec error: %s\n'):format(tostring(err)))
    return
  end

  print('Number of files ' .. stdout:gsub('\n$', ''))
end)

cp.run()
