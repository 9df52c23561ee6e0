-- make soak: long runs, and whether what they use stays flat.
--   lua5.4 bench/soak.lua [--markdown]       (from the repository root)
-- Phases and their sizes (env): SOAK_SPAWNS (100000 sequential spawns),
-- SOAK_EXECS (10000 exec calls), SOAK_FORKS (10000 forks, one round trip
-- each), SOAK_MESSAGES (1000000 round trips on one channel), SOAK_ALIVE
-- (1000 children alive at once, each streaming output; run in a child
-- interpreter under `ulimit -n` just large enough: SOAK_ALIVE_LINES lines
-- each).  Every tenth of a phase it samples Lua memory (collectgarbage
-- 'count', after a full collection), RSS and the open fds; it prints, per
-- phase, the first and last sample and the maximum, and fails (exit 1)
-- when the last is more than the first plus a slack (fds: 0; Lua memory:
-- 256 KiB; RSS: 8 MiB).
local cp = require 'childproc'
local now = require('childproc.internal').core.now

local function env(name, default)
  return math.floor(tonumber(os.getenv(name) or '') or default)
end

local function rss_kib()
  local f = assert(io.open('/proc/self/status'))
  local s = f:read('*a')
  f:close()
  return tonumber(s:match('VmRSS:%s*(%d+)'))
end

local has_lfs, lfs = pcall(require, 'lfs')
local function nfds()
  local n = 0
  if has_lfs then
    for name in lfs.dir('/proc/self/fd') do
      if name:match('^%d+$') then n = n + 1 end
    end
    return n - 1  -- lfs.dir's own
  end
  local p = io.popen('exec ls /proc/' .. cp.process.pid .. '/fd')
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n - 1  -- the popen's own pipe
end

local function sample()
  collectgarbage(); collectgarbage()
  return { kb = collectgarbage('count'), rss = rss_kib(), fds = nfds() }
end

local results = {}
local failed = false

-- run phase fn(i) for i = 1..n, sampling at 0 and every n/10
local function phase(name, n, fn, finish)
  if n <= 0 then return end
  local samples = { sample() }
  local step = math.max(1, math.floor(n / 10))
  local t0 = now()
  for i = 1, n do
    fn(i)
    if i % step == 0 then samples[#samples + 1] = sample() end
  end
  if finish then finish() end
  samples[#samples + 1] = sample()
  local ms = now() - t0
  local first, last, max = samples[1], samples[#samples], { kb = 0, rss = 0, fds = 0 }
  for _, s in ipairs(samples) do
    for k in pairs(max) do if s[k] > max[k] then max[k] = s[k] end end
  end
  local ok = last.fds <= first.fds and last.kb <= first.kb + 256
    and last.rss <= first.rss + 8 * 1024
  if not ok then failed = true end
  local series = {}
  for i, x in ipairs(samples) do series[i] = x.rss end
  results[#results + 1] = { name = name, n = n, ms = ms, first = first, last = last,
                            max = max, ok = ok, series = table.concat(series, ' ') }
  io.stderr:write(('%-28s %8d in %7.1f s  lua %6.0f/%6.0f/%6.0f KiB  rss %6d/%6d/%6d KiB  fds %d/%d/%d  %s\n')
    :format(name, n, ms / 1000, first.kb, last.kb, max.kb, first.rss, last.rss,
            max.rss, first.fds, last.fds, max.fds, ok and 'flat' or 'GROWS'))
end

local function wait_close(c)
  local done = false
  c:on('close', function() done = true end)
  while not done do cp.run('once') end
end

local FIX = 'spec/fixtures/fork_echo.lua'

-- what the first spawn, exec and fork make once (the loop's own fds) is
-- made before the first sample
do
  wait_close(cp.spawn('true', {}, { stdio = 'ignore' }))
  local done = false
  cp.exec('true', function() done = true end)
  while not done do cp.run('once') end
  local c = cp.fork(FIX, {}, { stdio = 'ignore' })
  c:on('message', function() c:disconnect() end)
  c:send(1)
  wait_close(c)
end

phase('sequential spawns', env('SOAK_SPAWNS', 100000), function()
  wait_close(cp.spawn('true', {}, { stdio = 'ignore' }))
end)

phase('exec calls', env('SOAK_EXECS', 10000), function()
  local done = false
  cp.exec('echo x', function(err, out)
    assert(not err and out == 'x\n', 'exec failed')
    done = true
  end)
  while not done do cp.run('once') end
end)

phase('forks, one round trip each', env('SOAK_FORKS', 10000), function(i)
  local c = cp.fork(FIX, {}, { stdio = 'ignore' })
  local got
  c:on('message', function(m) got = m; c:disconnect() end)
  c:send(i)
  wait_close(c)
  assert(got == i, 'no reply')
end)

do
  local n = env('SOAK_MESSAGES', 1000000)
  local c, inflight, sent, back
  if n > 0 then
    c = cp.fork(FIX, {}, { stdio = 'ignore' })
    inflight, sent, back = 0, 0, 0
    c:on('message', function() back = back + 1; inflight = inflight - 1 end)
  end
  -- phase steps are batches of 100 round trips, 64 in flight at most
  phase('messages on one channel', math.floor(n / 100), function()
    local target = sent + 100
    while back < target do
      while inflight < 64 and sent < target do
        sent = sent + 1
        inflight = inflight + 1
        c:send(sent)
      end
      cp.run('once')
    end
  end, function()
    c:disconnect()
    wait_close(c)
  end)
  if n > 0 then results[#results].name = ('messages on one channel (x100)') end
end

-- 1000 children at once, each streaming, in a child interpreter whose
-- fd limit is just what they need: per child its stdout pipe and pidfd
do
  local n = env('SOAK_ALIVE', 1000)
  local lines = env('SOAK_ALIVE_LINES', 2000)
  if n > 0 then
    local code = ([[
local cp = require 'childproc'
local now = require('childproc.internal').core.now
local n, lines, alive, peak, bytes, bad = %d, %d, 0, 0, 0, 0
local want = #table.concat({ ('x'):rep(60), '' }, '\n') * lines
local t0 = now()
for i = 1, n do
  local c = cp.spawn('sh', { '-c', 'sleep 1; i=0; while [ $i -lt ' .. lines ..
    ' ]; do echo ' .. ('x'):rep(60) .. '; i=$((i+1)); done' },
    { stdio = { 'ignore', 'pipe', 'ignore' } })
  local got = 0
  c.stdout:on('data', function(d) got = got + #d end)
  c:on('error', function(e) io.stderr:write(tostring(e), '\n'); bad = bad + 1 end)
  c:on('close', function(code)
    alive = alive - 1
    bytes = bytes + got
    if code ~= 0 or got ~= want then bad = bad + 1 end
  end)
  alive = alive + 1
  if alive > peak then peak = alive end
end
cp.run()
print(('alive peak=%%d bytes=%%d bad=%%d ms=%%.0f'):format(peak, bytes, bad, now() - t0))
]]):format(n, lines)
    local path = os.tmpname()
    local f = assert(io.open(path, 'w'))
    f:write(code)
    f:close()
    local limit = 2 * n + 24
    local p = io.popen(('ulimit -n %d && LUA_CPATH="./?.so;;" lua5.4 %s 2>&1'):format(limit, path))
    local out = p:read('*a')
    p:close()
    os.remove(path)
    local peak, bytes, bad, ms = out:match('alive peak=(%d+) bytes=(%d+) bad=(%d+) ms=(%d+)')
    local ok = peak ~= nil and tonumber(peak) == n and tonumber(bad) == 0
    if not ok then failed = true end
    results[#results + 1] = { name = 'children alive at once', n = n, alive = {
      limit = limit, peak = peak, bytes = bytes, bad = bad, ms = ms, lines = lines,
      out = out }, ok = ok }
    io.stderr:write(('%-28s %8d under ulimit -n %d: peak %s, %s bytes, %s bad, %s ms  %s\n')
      :format('children alive at once', n, limit, tostring(peak), tostring(bytes),
              tostring(bad), tostring(ms), ok and 'ok' or 'FAILED\n' .. out))
  end
end

if arg[1] == '--markdown' then
  print('RSS samples (KiB), every tenth of each phase:')
  print()
  for _, r in ipairs(results) do
    if r.series then print(('- %s: %s'):format(r.name, r.series)) end
  end
  print()
  print('| phase | count | time (s) | Lua KiB first / last / max | RSS KiB first / last / max | fds first / last / max | flat |')
  print('| --- | ---: | ---: | --- | --- | --- | --- |')
  for _, r in ipairs(results) do
    if r.alive then
      local a = r.alive
      print(('| %s (`ulimit -n %d`, %d lines of 61 bytes each) | %d | %.1f | peak alive %s | %s bytes read | %s failed | %s |')
        :format(r.name, a.limit, a.lines, r.n, (tonumber(a.ms) or 0) / 1000,
                tostring(a.peak), tostring(a.bytes), tostring(a.bad), r.ok and 'ok' or 'NO'))
    else
      print(('| %s | %d | %.1f | %.0f / %.0f / %.0f | %d / %d / %d | %d / %d / %d | %s |')
        :format(r.name, r.n, r.ms / 1000, r.first.kb, r.last.kb, r.max.kb, r.first.rss,
                r.last.rss, r.max.rss, r.first.fds, r.last.fds, r.max.fds,
                r.ok and 'yes' or 'NO'))
    end
  end
end
os.exit(failed and 1 or 0)
