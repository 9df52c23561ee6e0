-- Ports the article's *Sync section (const { spawnSync, execSync,
-- execFileSync } = require('child_process')): each call blocks until the
-- child has exited, so no cp.run() is needed.
local cp = require 'childproc'

local result = cp.spawnSync('pwd')
print(('spawnSync: status %s, stdout %s'):format(result.status,
  (result.stdout:gsub('\n$', ''))))

local count = cp.execSync('find . -type f | wc -l')
print('execSync: Number of files ' .. count:gsub('\n$', ''))

local system = cp.execFileSync('uname', { '-s' })
print('execFileSync: uname -s says ' .. system:gsub('\n$', ''))

-- A failing command raises an error object with the exit status.
local ok, err = pcall(cp.execSync, 'exit 3')
print(('execSync of a failing command: ok %s, status %s'):format(tostring(ok),
  tostring(type(err) == 'table' and err.status or err)))
