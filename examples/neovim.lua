-- childproc inside Neovim (LuaJIT, with its own libuv loop, vim.loop):
--   make LUA=luajit
--   LUA_CPATH='build/luajit/?.so;;' nvim --headless -u NONE \
--     -c 'luafile examples/neovim.lua' -c 'qa!'
-- Neovim's loop drives childproc's: a poll handle on cp.loop:pollfd()
-- and a timer for cp.loop:timeout() call cp.run('nowait') when either
-- fires.  Meanwhile a Neovim timer keeps ticking.  It runs a shell
-- pipeline, a forked LuaJIT child with messages, and a process-group
-- kill, then prints what it saw (vim.wait runs Neovim's loop until then).
local cp = require 'childproc'
local uv = vim.loop

local function say(...)
  io.stdout:write(table.concat({ ... }, ' '), '\n')
  io.stdout:flush()
end

-- {------------------------------------------------ childproc on vim.loop
local poll, timer = uv.new_poll(cp.loop:pollfd()), uv.new_timer()
local function pump()
  cp.run('nowait')
  timer:stop()
  local t = cp.loop:timeout()   -- seconds, or nil: no childproc timer
  if t then timer:start(math.ceil(t * 1000), 0, pump) end
end
poll:start('r', pump)
-- }------------------------------------------------

-- Neovim's own timer, ticking all along
local ticks = 0
local ticker = uv.new_timer()
ticker:start(10, 10, function() ticks = ticks + 1 end)

local done = {}

-- 1. a pipeline: printf | sort, joined by pipe()
local printf = cp.spawn('printf', { 'pear\\napple\\nfig\\n' })
local sort = cp.spawn('sort')
printf.stdout:pipe(sort.stdin)
local sorted = {}
sort.stdout:on('data', function(d) sorted[#sorted + 1] = d end)
sort:on('close', function(code)
  say('pipeline:', (table.concat(sorted):gsub('\n', ' ')), 'exit', tostring(code))
  done.pipeline = true
end)

-- 2. a fork: the child (this Lua, LuaJIT) answers each message
local src = os.tmpname()
local f = assert(io.open(src, 'w'))
f:write([[local cp = require 'childproc'
cp.process:on('message', function(m)
  cp.process:send({ reply = m.n * 2, from = jit and jit.version or _VERSION })
  if m.n == 3 then cp.process:disconnect() end
end)]])
f:close()
local child = cp.fork(src, {}, { execPath = 'luajit' })
local replies = {}
child:on('message', function(m) replies[#replies + 1] = m.reply end)
child:on('close', function(code)
  os.remove(src)
  say('fork: replies', table.concat(replies, ','), 'exit', tostring(code))
  done.fork = true
end)
for n = 1, 3 do child:send({ n = n }) end

-- 3. a process group: a shell and its two sleeps, killed together
local group = cp.spawn('sh', { '-c', 'sleep 100 & sleep 100 & wait' },
  { processGroup = true })
group:on('close', function(code, sig)
  say('group: close', tostring(code), tostring(sig))
  done.group = true
end)
cp.setTimeout(function() group:kill('SIGTERM', { group = true }) end, 50)

pump()
local ok = vim.wait(10000, function()
  return done.pipeline and done.fork and done.group
end, 5)
ticker:stop(); poll:stop(); timer:stop()
say('neovim timer ticks while childproc ran:', ticks > 0 and 'yes' or 'no')
say(ok and 'neovim: all done' or 'neovim: timed out')
