-- Beyond the article: drive an interactive shell on a pseudo-terminal
-- (pty = true), as a person at a terminal would: wait for its prompt,
-- type a command, read the answer, resize the window, exit.
local cp = require 'childproc'

local shell = cp.spawn('sh', { '-i' }, {
  pty = { cols = 80, rows = 24 },
  env = { PS1 = 'sh> ', PATH = os.getenv('PATH') or '/usr/bin:/bin' },
})

-- The script, in order: wait until the terminal shows `pattern`, then
-- call the function with its capture.  (The terminal echoes what is
-- typed and ends its lines with \r\n.)
local script = {
  { 'sh> ', function() shell.stdin:write('stty size\n') end },
  { '\n(%d+ %d+)\r\n', function(size) print('window: ' .. size .. ' (rows cols)') end },
  { 'sh> ', function()
      shell:resize(100, 30)   -- the shell gets SIGWINCH
      shell.stdin:write('stty size; tty\n')
    end },
  { '\n(%d+ %d+)\r\n', function(size) print('after resize: ' .. size) end },
  { '(/dev/pts/)%d+\r\n', function(dir) print('its terminal is in ' .. dir) end },
  { 'sh> ', function() shell.stdin:write('exit 3\n') end },
}

local seen = ''   -- what the terminal showed that no step has taken yet
shell.stdout:on('data', function(chunk)
  seen = seen .. chunk
  while script[1] do
    local _, to, capture = seen:find(script[1][1])
    if not to then return end
    seen = seen:sub(to + 1)
    table.remove(script, 1)[2](capture)
  end
end)

shell:on('exit', function(code) print('shell exited with code ' .. tostring(code)) end)
local stuck = false
local guard = cp.setTimeout(function()
  stuck = true
  print(('no answer from the shell; it showed %q'):format(seen))
  shell:kill('SIGKILL')
end, 10000):unref()
shell:wait()
guard:close()
if stuck then os.exit(1) end
