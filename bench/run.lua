-- bench/run.lua: run every benchmark for every peer, ROUNDS rounds, peers
-- alternating, and print the medians and the ratios childproc/peer.
--
--   lua5.4 bench/run.lua [--markdown] [--only=bench,bench] [--peers=peer,peer]
--
-- Environment: ROUNDS (default 5), BENCH_SCALE (default 1: the full work;
-- 0.1 for a quick check), BENCH_TIMEOUT (seconds per program, default 120),
-- BENCH_CONFIGS (default 'unpinned,pinned': both, in that order, interleaved
-- round by round), BENCH_CPUS (the taskset CPU list of the pinned
-- configuration, default 0: every program and its children there).
-- BENCH_BASE: a directory holding another build's childproc.so (the build
-- before a change: `git worktree add --detach /tmp/base <commit>`, `make`
-- there): every benchmark then runs it too, as the peer childproc-base,
-- interleaved with the rest (an A/B in one run), and the targets tables
-- show whether each was met by both builds.
-- Progress and failures go to stderr; the table goes to stdout (plain text,
-- or markdown with --markdown: `lua5.4 bench/run.lua --markdown > bench/RESULTS.md`).

local T_START = os.time()

-- {============================================================ setup

local function sh(cmd) -- run, return stdout (trimmed) and success
  local f = io.popen(cmd)
  local s = f:read('a')
  local ok = f:close()
  return (s:gsub('%s+$', '')), ok
end

local function q(s) -- shell quote
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function exists(path)
  local f = io.open(path, 'r')
  if f then f:close() return true end
  return false
end

local script = arg[0]
if script:sub(1, 1) ~= '/' then script = sh('pwd') .. '/' .. script end
local BENCH = script:match('^(.*)/[^/]*$'):gsub('/%./', '/'):gsub('/%.$', '')
local ROOT = sh('cd ' .. q(BENCH) .. '/.. && pwd')
BENCH = ROOT .. '/bench'
local BUILD = BENCH .. '/.build'

local opts = { markdown = false }
for _, a in ipairs(arg) do
  if a == '--markdown' then opts.markdown = true
  elseif a:match('^%-%-only=') then opts.only = a:match('=(.*)')
  elseif a:match('^%-%-peers=') then opts.peers = a:match('=(.*)')
  elseif a == '-h' or a == '--help' then
    io.stderr:write('usage: lua5.4 bench/run.lua [--markdown] [--only=b1,b2] [--peers=p1,p2]\n')
    os.exit(0)
  else
    io.stderr:write('unknown argument ' .. a .. '\n')
    os.exit(2)
  end
end
local function set(csv)
  if not csv then return nil end
  local s = {}
  for w in csv:gmatch('[^,]+') do s[w] = true end
  return s
end
local ONLY, PEERS = set(opts.only), set(opts.peers)

local ROUNDS = math.tointeger(tonumber(os.getenv('ROUNDS') or '5')) or 5
local SCALE = tonumber(os.getenv('BENCH_SCALE') or '1') or 1
local TIMEOUT = tonumber(os.getenv('BENCH_TIMEOUT') or '120') or 120
local PIN = os.getenv('BENCH_CPUS') -- the pinned configuration's CPU list
if PIN == nil or PIN == '' then PIN = '0' end
-- configurations: unpinned first (how users run it: the headline), then
-- pinned; each runs every benchmark against the same peers
local CONFIGS = {}
for w in (os.getenv('BENCH_CONFIGS') or 'unpinned,pinned'):gmatch('[^,]+') do
  if w == 'unpinned' then CONFIGS[#CONFIGS + 1] = { name = 'unpinned' }
  elseif w == 'pinned' then CONFIGS[#CONFIGS + 1] = { name = 'pinned', cpus = PIN }
  else io.stderr:write('BENCH_CONFIGS: unknown configuration ' .. w .. '\n') os.exit(2) end
end

local function log(fmt, ...) io.stderr:write(string.format(fmt, ...) .. '\n') io.stderr:flush() end

-- }============================================================


-- {============================================================ peers present

local have, why = {}, {}

do -- C peers and the clock module
  local _, ok = sh('command -v gcc >/dev/null 2>&1')
  if not ok then
    why.c = 'gcc not found'
  else
    os.execute('mkdir -p ' .. q(BUILD))
    local cflags = '-O2 -Wall -Wno-unused-function'
    local progs = { 'spawn', 'stdout_read', 'stdin_write', 'exec_echo', 'ipc_rtt', 'ipc_burst', 'children' }
    local failed = {}
    for _, p in ipairs(progs) do
      local out, okc = sh(('gcc %s -o %s %s 2>&1'):format(cflags, q(BUILD .. '/' .. p), q(BENCH .. '/c/' .. p .. '.c')))
      if not okc then failed[#failed + 1] = p; log('build of bench/c/%s.c failed:\n%s', p, out) end
    end
    if #failed > 0 then why.c = 'build failed: ' .. table.concat(failed, ', ') else have.c = true end
    local out, okc = sh(('gcc %s -shared -fPIC -I/usr/include/lua5.4 -o %s %s 2>&1'):format(
      cflags, q(BUILD .. '/benchclock.so'), q(BENCH .. '/c/clock.c')))
    if not okc then log('benchclock.so not built (Lua peers fall back to /proc/uptime, 10 ms):\n%s', out) end
  end
end

local ENV = ('LUA_PATH=%s LUA_CPATH=%s'):format(
  q(BENCH .. '/lib/?.lua;;'), q(BUILD .. '/?.so;' .. ROOT .. '/?.so;;'))

do
  local out, ok = sh('node --version 2>&1')
  if ok then have.node = out else why.node = 'node not found (apt-get install nodejs)' end
  out, ok = sh(ENV .. " lua5.4 -e \"require 'luv'\" 2>&1")
  if ok then have.luv = true else why.luv = 'lua5.4 cannot require luv (apt-get install lua-luv): ' .. out:match('[^\n]*') end
  if not exists(ROOT .. '/childproc.so') then
    why.childproc = 'no ' .. ROOT .. '/childproc.so (run make)'
  else
    out, ok = sh(ENV .. " lua5.4 -e \"print(require 'childproc'.version)\" 2>&1")
    if ok then have.childproc = out else why.childproc = 'require failed: ' .. out:match('[^\n]*') end
  end
  have.popen = true
  -- a throwaway sshd on 127.0.0.1 (bench/childproc/launcher_ssh.lua)
  if have.childproc and exists('/usr/sbin/sshd') and select(2, sh('command -v ssh')) then
    have.sshd = true
  else
    why.sshd = 'no /usr/sbin/sshd or ssh (apt-get install openssh-server openssh-client)'
  end
  ok = select(2, sh('command -v wrk 2>&1'))
  if ok then have.wrk = true else why.wrk = 'wrk not found (apt-get install wrk)' end
end

-- }============================================================


-- {============================================================ benchmarks

local GiB, MiB = 1 << 30, 1 << 20
local function scaled(n, min) return math.max(min or 1, math.floor(n * SCALE + 0.5)) end

local function lua(file, ...) return table.concat({ 'lua5.4', q(BENCH .. '/' .. file), ... }, ' ') end
local function node(file, ...) return table.concat({ 'node', q(BENCH .. '/node/' .. file), ... }, ' ') end
local function c(prog, ...) return table.concat({ q(BUILD .. '/' .. prog), ... }, ' ') end

-- work amounts at BENCH_SCALE=1
local N = {
  spawn_seq = scaled(1000), spawn_par32 = scaled(2000), spawn_heap2g = scaled(100),
  heap = scaled(2 * GiB, 64 * MiB), stdout = scaled(2 * GiB, MiB) // 65536 * 65536,
  stdin = scaled(GiB, MiB) // 65536 * 65536, exec = scaled(1000), fork = scaled(100),
  rtt = scaled(50000), bulk = scaled(1024), burst = scaled(200), children = scaled(1000),
  ssh_rtt = scaled(5000), ssh_fork = scaled(20),
  http_secs = scaled(2), workers = tonumber((sh('nproc'))) or 1,
}
-- an HTTP server loaded by wrk (bench/lib/http_load.lua)
local function http(bench, peer, ...)
  return lua('lib/http_load.lua', bench, peer, N.http_secs, ...)
end

-- peer names and what each needs (key of `have`)
local NEEDS = {
  childproc = 'childproc', node = 'node', ['node-json'] = 'node', ['node-advanced'] = 'node',
  ['childproc-luajit'] = 'childproc', ['childproc-lua5.1'] = 'childproc',  -- (5.4 parent)
  luv = 'luv', popen = 'popen', ['c-posix_spawn'] = 'c', ['c-fork'] = 'c',
  ['c-epoll'] = 'c', ['c-socketpair'] = 'c', ['childproc-ssh'] = 'sshd',
  ['node-cluster'] = 'node', luasocket = 'wrk',
}

local BENCHES = {
  { name = 'spawn_seq', what = ('%d × /bin/true in sequence'):format(N.spawn_seq), peers = {
    { 'childproc', lua('childproc/spawn_seq.lua', N.spawn_seq) },
    { 'node', node('spawn_seq.js', N.spawn_seq) },
    { 'luv', lua('luv/spawn_seq.lua', N.spawn_seq) },
    { 'popen', lua('popen/spawn_seq.lua', N.spawn_seq) },
    { 'c-posix_spawn', c('spawn', 'posix_spawn', 'seq', N.spawn_seq) },
    { 'c-fork', c('spawn', 'fork', 'seq', N.spawn_seq) },
  } },
  { name = 'spawn_par32', what = ('%d × /bin/true, 32 in flight'):format(N.spawn_par32), peers = {
    { 'childproc', lua('childproc/spawn_par32.lua', N.spawn_par32) },
    { 'node', node('spawn_par32.js', N.spawn_par32) },
    { 'luv', lua('luv/spawn_par32.lua', N.spawn_par32) },
    { 'popen', lua('popen/spawn_par32.lua', N.spawn_par32) },
    { 'c-posix_spawn', c('spawn', 'posix_spawn', 'par32', N.spawn_par32) },
    { 'c-fork', c('spawn', 'fork', 'par32', N.spawn_par32) },
  } },
  { name = 'spawn_heap2g', what = ('%d × /bin/true in sequence, %d MiB touched heap'):format(N.spawn_heap2g, N.heap // MiB), peers = {
    { 'childproc', lua('childproc/spawn_seq.lua', N.spawn_heap2g, N.heap) },
    { 'node', node('spawn_seq.js', N.spawn_heap2g, N.heap) },
    { 'luv', lua('luv/spawn_seq.lua', N.spawn_heap2g, N.heap) },
    { 'popen', lua('popen/spawn_seq.lua', N.spawn_heap2g, N.heap) },
    { 'c-posix_spawn', c('spawn', 'posix_spawn', 'heap2g', N.spawn_heap2g, N.heap) },
    { 'c-fork', c('spawn', 'fork', 'heap2g', N.spawn_heap2g, N.heap) },
  } },
  { name = 'stdout_2g', what = ('%d MiB from head -c …/dev/zero'):format(N.stdout // MiB), peers = {
    { 'childproc', lua('childproc/stdout_2g.lua', N.stdout) },
    { 'node', node('stdout_2g.js', N.stdout) },
    { 'luv', lua('luv/stdout_2g.lua', N.stdout) },
    { 'popen', lua('popen/stdout_2g.lua', N.stdout) },
    { 'c-posix_spawn', c('stdout_read', N.stdout) },
  } },
  { name = 'stdin_1g', what = ('%d MiB into cat > /dev/null'):format(N.stdin // MiB), peers = {
    { 'childproc', lua('childproc/stdin_1g.lua', N.stdin) },
    { 'node', node('stdin_1g.js', N.stdin) },
    { 'luv', lua('luv/stdin_1g.lua', N.stdin) },
    { 'popen', lua('popen/stdin_1g.lua', N.stdin) },
    { 'c-posix_spawn', c('stdin_write', N.stdin) },
  } },
  { name = 'exec_echo', what = ("%d × sh -c 'echo hello', output buffered"):format(N.exec), peers = {
    { 'childproc', lua('childproc/exec_echo.lua', N.exec) },
    { 'node', node('exec_echo.js', N.exec) },
    { 'luv', lua('luv/exec_echo.lua', N.exec) },
    { 'popen', lua('popen/exec_echo.lua', N.exec) },
    { 'c-posix_spawn', c('exec_echo', 'posix_spawn', N.exec) },
    { 'c-fork', c('exec_echo', 'fork', N.exec) },
  } },
  { name = 'fork_first_msg', what = ('%d forks in sequence, fork → first message'):format(N.fork), peers = {
    { 'childproc', lua('childproc/fork_first_msg.lua', N.fork) },
    { 'childproc-luajit', lua('childproc/fork_first_msg.lua', N.fork, 'luajit') },
    { 'childproc-lua5.1', lua('childproc/fork_first_msg.lua', N.fork, 'lua5.1') },
    { 'node', node('fork_first_msg.js', N.fork) },
  } },
  { name = 'ipc_rtt', what = ('%d small-message round trips'):format(N.rtt), peers = {
    { 'childproc', lua('childproc/ipc_rtt.lua', N.rtt) },
    { 'childproc-luajit', lua('childproc/ipc_rtt.lua', N.rtt, 'luajit') },
    { 'childproc-lua5.1', lua('childproc/ipc_rtt.lua', N.rtt, 'lua5.1') },
    { 'node', node('ipc_rtt.js', N.rtt) },
    { 'c-fork', c('ipc_rtt', N.rtt) },
    { 'c-epoll', c('ipc_rtt', N.rtt, 'epoll') },
  } },
  { name = 'ipc_bulk', what = ('%d × 1 MiB message, each acked'):format(N.bulk), peers = {
    { 'childproc', lua('childproc/ipc_bulk.lua', N.bulk) },
    { 'node-json', node('ipc_bulk.js', N.bulk, 'json') },
    { 'node-advanced', node('ipc_bulk.js', N.bulk, 'advanced') },
  } },
  { name = 'ipc_burst', what = ('%d × 1 MiB message sent at once, each acked'):format(N.burst), peers = {
    { 'childproc', lua('childproc/ipc_burst.lua', N.burst) },
    { 'node-json', node('ipc_burst.js', N.burst, 'json') },
    { 'node-advanced', node('ipc_burst.js', N.burst, 'advanced') },
    { 'c-socketpair', c('ipc_burst', N.burst) },
  } },
  { name = 'ssh_rtt', what = ('%d small-message round trips, forked here and through ssh to 127.0.0.1')
      :format(N.ssh_rtt), peers = {
    { 'childproc', lua('childproc/launcher_ssh.lua', 'rtt', N.ssh_rtt, 'local') },
    { 'childproc-ssh', lua('childproc/launcher_ssh.lua', 'rtt', N.ssh_rtt, 'ssh') },
  } },
  { name = 'ssh_first_msg', what = ('%d forks in sequence, fork → first message, here and through ssh')
      :format(N.ssh_fork), peers = {
    { 'childproc', lua('childproc/launcher_ssh.lua', 'first', N.ssh_fork, 'local') },
    { 'childproc-ssh', lua('childproc/launcher_ssh.lua', 'first', N.ssh_fork, 'ssh') },
  } },
  { name = 'children_1000', what = ('%d × cat alive at once'):format(N.children),
    rows = { 'children_1000_rss', 'children_1000_wall' }, peers = {
    { 'childproc', lua('childproc/children_1000.lua', N.children) },
    { 'luv', lua('luv/children_1000.lua', N.children) },
    { 'node', node('children_1000.js', N.children) },
    { 'c-posix_spawn', c('children', N.children) },
  } },
  { name = 'http_shared', needs = 'wrk', what = ('examples/http_cluster.lua, %d workers sharing the socket, wrk -t2 -c64 -d%ds'):format(N.workers, N.http_secs), peers = {
    { 'childproc', http('http_shared', 'childproc', 'lua5.4', q(ROOT .. '/examples/http_cluster.lua'), '--workers', N.workers) },
    { 'node-cluster', http('http_shared', 'node-cluster', 'node', q(BENCH .. '/node/http_cluster.js'), 'shared', N.workers) },
    { 'luasocket', http('http_shared', 'luasocket', 'lua5.4', q(BENCH .. '/luasocket/http_single.lua')) },
  } },
  { name = 'http_rr', needs = 'wrk', what = ('examples/http_cluster.lua --mode rr, %d workers, wrk -t2 -c64 -d%ds'):format(N.workers, N.http_secs), peers = {
    { 'childproc', http('http_rr', 'childproc', 'lua5.4', q(ROOT .. '/examples/http_cluster.lua'), '--workers', N.workers, '--mode', 'rr') },
    { 'node-cluster', http('http_rr', 'node-cluster', 'node', q(BENCH .. '/node/http_cluster.js'), 'rr', N.workers) },
    { 'luasocket', http('http_rr', 'luasocket', 'lua5.4', q(BENCH .. '/luasocket/http_single.lua')) },
  } },
}

-- }============================================================


-- {============================================================ running

local skipped = {} -- peer -> reason
local RESULTS, FAILS = {}, {} -- configuration -> row -> peer -> { values... } | count
for _, cfg in ipairs(CONFIGS) do RESULTS[cfg.name] = {}; FAILS[cfg.name] = {} end
local units = {}   -- row -> unit
local UNIT = { -- the unit each row is expected in (for rows where all failed)
  spawn_seq = 'spawns/s', spawn_par32 = 'spawns/s', spawn_heap2g = 'spawns/s',
  stdout_2g = 'MB/s', stdin_1g = 'MB/s', exec_echo = 'execs/s', fork_first_msg = 'ms',
  ipc_rtt = 'rt/s', ipc_bulk = 'MB/s', ipc_burst = 'MB/s', ssh_rtt = 'rt/s', ssh_first_msg = 'ms',
  children_1000_rss = 'KiB/child', children_1000_wall = 'ms',
  http_shared = 'req/s', http_rr = 'req/s',
}

-- the A/B peer: the childproc command with the base build first on the
-- module path (forked children inherit it)
local BASE = os.getenv('BENCH_BASE')
if BASE == '' then BASE = nil end
if BASE then
  if exists(BASE .. '/childproc.so') then have.base = true
  else why.base = 'no ' .. BASE .. '/childproc.so' end
  NEEDS['childproc-base'] = 'base'
  for _, b in ipairs(BENCHES) do
    for _, p in ipairs(b.peers) do
      if p[1] == 'childproc' then
        table.insert(b.peers, 2, { 'childproc-base', ('env BENCH_PEER=childproc-base LUA_CPATH=%s %s'):format(
          q(BUILD .. '/?.so;' .. BASE .. '/?.so;;'), p[2]) })
        break
      end
    end
  end
end

for _, b in ipairs(BENCHES) do
  b.rows = b.rows or { b.name }
  for _, r in ipairs(b.rows) do
    for _, cfg in ipairs(CONFIGS) do RESULTS[cfg.name][r] = {}; FAILS[cfg.name][r] = {} end
  end
  local keep = {}
  for _, p in ipairs(b.peers) do
    local need = NEEDS[p[1]]
    if b.needs and not have[b.needs] then need = b.needs end
    if PEERS and not PEERS[p[1]] then -- filtered out
    elseif not have[need] then skipped[p[1]] = why[need] or 'not present'
    else keep[#keep + 1] = p end
  end
  b.run = keep
end

for peer, reason in pairs(skipped) do log('skipping peer %s: %s', peer, reason) end

local errfile = os.tmpname()

local function run_one(cfg, b, peer, cmd)
  local results, fails = RESULTS[cfg.name], FAILS[cfg.name]
  local full = ('cd %s && export %s && %stimeout -k 5 %d %s </dev/null 2>%s'):format(q(ROOT), ENV,
    cfg.cpus and ('taskset -c ' .. q(cfg.cpus) .. ' ') or '', TIMEOUT, cmd, q(errfile))
  local t0 = os.time()
  local f = io.popen(full)
  local out = f:read('a')
  local ok, how, code = f:close()
  local got = {}
  for line in out:gmatch('[^\n]+') do
    local bn, pn, v, u = line:match('^bench=(%S+) peer=(%S+) value=(%S+) unit=(%S+)$')
    if bn and pn == peer and tonumber(v) then got[bn] = { tonumber(v), u } end
  end
  local problem
  if not ok then
    problem = (code == 124 or code == 137) and ('timed out after ' .. TIMEOUT .. ' s')
      or ('%s %s'):format(how, code)
  end
  for _, r in ipairs(b.rows) do
    if not got[r] and not problem then problem = 'no line for ' .. r end
  end
  if problem then
    local ef = io.open(errfile)
    local err = ef and ef:read('a') or ''
    if ef then ef:close() end
    err = err:gsub('%s+$', '')
    if #err > 1500 then err = '…' .. err:sub(-1500) end
    log('FAIL %s/%s: %s\n  command (in %s): %s%s', b.name, peer, problem, ROOT,
      (cmd:match('^lua5') and (ENV .. ' ') or '') .. cmd,
      err ~= '' and ('\n  stderr: ' .. err:gsub('\n', '\n  ')) or '')
  end
  for _, r in ipairs(b.rows) do
    if got[r] and not problem then
      local t = results[r][peer] or {}
      results[r][peer] = t
      t[#t + 1] = got[r][1]
      units[r] = units[r] or got[r][2]
    else
      fails[r][peer] = (fails[r][peer] or 0) + 1
    end
  end
  local vals = {}
  for _, r in ipairs(b.rows) do vals[#vals + 1] = got[r] and ('%g %s'):format(got[r][1], got[r][2]) or 'fail' end
  log('  %-8s %-15s %-14s %s  (%ds)', cfg.name, b.name, peer, table.concat(vals, ', '), os.time() - t0)
end

local cfgnames = {}
for i, cfg in ipairs(CONFIGS) do cfgnames[i] = cfg.name .. (cfg.cpus and (' (CPU ' .. cfg.cpus .. ')') or '') end
log('bench: ROUNDS=%d BENCH_SCALE=%g, timeout %d s per program, configurations: %s', ROUNDS, SCALE,
  TIMEOUT, table.concat(cfgnames, ', '))
for round = 1, ROUNDS do
  log('round %d/%d', round, ROUNDS)
  for _, b in ipairs(BENCHES) do
    if not ONLY or ONLY[b.name] then
      for _, cfg in ipairs(CONFIGS) do -- both configurations, side by side in time
        local n = #b.run
        for k = 0, n - 1 do -- rotate the peers' order from round to round
          local p = b.run[(k + round - 1) % n + 1]
          run_one(cfg, b, p[1], p[2])
        end
      end
    end
  end
end
os.remove(errfile)

-- }============================================================


-- {============================================================ report

local function median(t)
  if not t or #t == 0 then return nil end
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local m = #s // 2
  if #s % 2 == 1 then return s[m + 1] end
  return (s[m] + s[m + 1]) / 2
end

local function higher_better(unit) return unit and unit:match('/s$') ~= nil end

local function fmt(v)
  if v == nil then return '—' end
  local a = math.abs(v)
  if a >= 1000 then return ('%d'):format(math.floor(v + 0.5))
  elseif a >= 100 then return ('%.1f'):format(v)
  elseif a >= 1 then return ('%.2f'):format(v)
  else return ('%.3f'):format(v) end
end

local elapsed = os.time() - T_START
local cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'")
local cmdline = {}
if os.getenv('ROUNDS') then cmdline[#cmdline + 1] = 'ROUNDS=' .. os.getenv('ROUNDS') end
if os.getenv('BENCH_SCALE') then cmdline[#cmdline + 1] = 'BENCH_SCALE=' .. os.getenv('BENCH_SCALE') end
if os.getenv('BENCH_CONFIGS') then cmdline[#cmdline + 1] = 'BENCH_CONFIGS=' .. os.getenv('BENCH_CONFIGS') end
if os.getenv('BENCH_CPUS') then cmdline[#cmdline + 1] = 'BENCH_CPUS=' .. os.getenv('BENCH_CPUS') end
if os.getenv('BENCH_BASE') then cmdline[#cmdline + 1] = 'BENCH_BASE=' .. os.getenv('BENCH_BASE') end
cmdline[#cmdline + 1] = 'lua5.4 bench/run.lua'
for _, a in ipairs(arg) do cmdline[#cmdline + 1] = a end

local header = {
  { 'date', os.date('!%Y-%m-%d %H:%M UTC', T_START) .. ' (start)' },
  { 'machine', ('Linux %s, %s CPUs (%s), %s'):format(sh('uname -r'), sh('nproc'), cpu,
    sh("awk '/MemTotal/ {printf \"%.0f GiB RAM\", $2/1048576}' /proc/meminfo")) },
  { 'peers', ('node %s; luv %s; childproc %s; gcc -O2'):format(
    have.node or 'absent', have.luv and 'present' or 'absent', have.childproc or 'absent') },
  { 'command', table.concat(cmdline, ' ') },
  { 'A/B', BASE and ('childproc-base is the build in ' .. BASE .. (os.getenv('BENCH_BASE_NAME') and (' (' .. os.getenv('BENCH_BASE_NAME') .. ')') or '')
    .. '; childproc the build in ' .. ROOT .. (os.getenv('BENCH_NAME') and (' (' .. os.getenv('BENCH_NAME') .. ')') or '')) or 'none (BENCH_BASE unset)' },
  { 'settings', ('ROUNDS=%d, BENCH_SCALE=%g, %d s timeout per program; configurations: %s'):format(
    ROUNDS, SCALE, TIMEOUT, table.concat(cfgnames, ', ')) },
  { 'suite wall time', ('%d s'):format(elapsed) },
}
local notes = {
  'Each cell is the median of the rounds (n/N: rounds that succeeded). "fail": no round succeeded (see stderr of the run).',
  'Ratio = childproc ÷ peer for rates (…/s), peer ÷ childproc for costs (ms, KiB/child): **> 1 always means childproc is better**.',
  'The machine is shared and noisy: compare ratios within one run, not absolute figures across runs.',
  'spread = highest ÷ lowest value over the rounds: how far one cell can be trusted on this machine.',
}
for peer, reason in pairs(skipped) do notes[#notes + 1] = ('peer %s skipped: %s'):format(peer, reason) end

-- the targets, as a least childproc ratio against one peer; per
-- configuration ('both' or one name): issue 16's for both CPUs, the
-- earlier ones (issue 6) kept in the pinned run
local TARGETS = {
  { 'spawn_seq', 'c-posix_spawn', 0.95, '>= 0.95x plain C posix_spawn', 'both' },
  { 'spawn_par32', 'c-posix_spawn', 0.95, '>= 0.95x plain C posix_spawn', 'both' },
  { 'spawn_heap2g', 'c-posix_spawn', 0.9, '>= 0.9x plain C posix_spawn', 'both' },
  { 'stdout_2g', 'node', 1.2, '>= 1.2x Node', 'both' },
  { 'stdout_2g', 'c-posix_spawn', 0.9, '>= 0.9x plain C reader', 'both' },
  { 'stdin_1g', 'node', 1.0, '>= Node', 'both' },
  { 'exec_echo', 'c-posix_spawn', 0.95, ">= 0.95x plain C sh -c 'echo hello'", 'both' },
  { 'fork_first_msg', 'node', 1 / 0.07, '<= 0.07x Node\'s time', 'both' },
  { 'ipc_rtt', 'c-fork', 0.9, '>= 0.9x plain C socketpair ping-pong', 'both' },
  { 'ipc_rtt', 'node', 1.2, '>= 1.2x Node', 'both' },
  { 'ipc_bulk', 'node-advanced', 10, ">= 10x Node 'advanced'", 'both' },
  { 'ipc_burst', 'node-advanced', 10, ">= 10x Node 'advanced'", 'both' },
  { 'ipc_burst', 'c-socketpair', 0.7, '>= 0.7x plain C socketpair', 'both' },
  { 'children_1000_rss', 'luv', 1.0, 'memory per child <= luv', 'both' },
  { 'children_1000_wall', 'c-posix_spawn', 1 / 1.1, 'wall time <= 1.1x plain C', 'both' },
  { 'http_shared', 'node-cluster', 1.0, ">= Node's cluster (SCHED_NONE)", 'both' },
  { 'http_rr', 'node-cluster', 1.0, ">= Node's cluster (SCHED_RR)", 'both' },
}

-- the long table and the targets of one configuration
local function tables(cfg)
  local results, fails = RESULTS[cfg.name], FAILS[cfg.name]
  local lines = {}
  local RATIO = {} -- row -> peer -> number
  local BRATIO = {} -- the same for childproc-base (BENCH_BASE)
  for _, b in ipairs(BENCHES) do
    if not ONLY or ONLY[b.name] then
      for _, r in ipairs(b.rows) do
        local unit = units[r] or UNIT[r] or '?'
        local cpm = median(results[r].childproc)
        local bpm = median(results[r]['childproc-base'])
        for _, p in ipairs(b.peers) do
          local peer = p[1]
          local vals, nf = results[r][peer], fails[r][peer] or 0
          local med = median(vals)
          local nok = vals and #vals or 0
          local cell, runs, ratio
          local spread = ''
          if nok + nf == 0 then
            cell, runs, ratio = 'skipped', '', ''
          else
            cell = med and fmt(med) or 'fail'
            runs = ('%d/%d'):format(nok, nok + nf)
            if nok > 1 then
              local lo, hi = math.min(table.unpack(vals)), math.max(table.unpack(vals))
              if lo > 0 then spread = ('%.2f'):format(hi / lo) end
            end
            if peer == 'childproc' then ratio = ''
            elseif med and cpm then
              local x = higher_better(unit) and cpm / med or med / cpm
              RATIO[r] = RATIO[r] or {}
              RATIO[r][peer] = x
              ratio = fmt(x)
              if bpm and peer ~= 'childproc-base' then
                BRATIO[r] = BRATIO[r] or {}
                BRATIO[r][peer] = higher_better(unit) and bpm / med or med / bpm
              end
            else ratio = '—' end
          end
          lines[#lines + 1] = { r, unit, peer, cell, runs, spread, ratio }
        end
      end
    end
  end
  local tlines = {}
  for _, t in ipairs(TARGETS) do
    if (t[5] == 'both' or t[5] == cfg.name) and results[t[1]]
      and (not ONLY or ONLY[t[1]:gsub('_rss$', ''):gsub('_wall$', '')]) then
      local x = RATIO[t[1]] and RATIO[t[1]][t[2]]
      local l = { t[1], t[2], t[4], x and fmt(x) or '—', ('%.3g'):format(t[3]),
        x == nil and 'n/a' or x >= t[3] and 'met' or 'MISSED' }
      if BASE then
        local y = BRATIO[t[1]] and BRATIO[t[1]][t[2]]
        l[#l + 1] = y and fmt(y) or '—'
        l[#l + 1] = y == nil and 'n/a' or y >= t[3] and 'met' or 'MISSED'
      end
      tlines[#tlines + 1] = l
    end
  end
  return lines, tlines
end
local TH = { 'benchmark', 'against', 'target', 'ratio', 'needed', '' }
if BASE then TH[#TH + 1] = 'base ratio'; TH[#TH + 1] = 'base' end

local H = { 'benchmark', 'unit', 'peer', 'median', 'rounds', 'spread', 'childproc ratio' }
local out = {}
local function w(s) out[#out + 1] = s end
local function title(cfg)
  return cfg.cpus and ('pinned: every program and its children on CPU ' .. cfg.cpus)
    or 'unpinned: both CPUs, as users run it (the headline)'
end
if opts.markdown then
  w('# childproc benchmarks')
  w('')
  for _, h in ipairs(header) do w(('- %s: %s'):format(h[1], h[2])) end
  w('')
  for _, n in ipairs(notes) do w('> ' .. n .. '  ') end
  for _, cfg in ipairs(CONFIGS) do
    local lines, tlines = tables(cfg)
    w('')
    w('## ' .. title(cfg))
    w('')
    w('| ' .. table.concat(H, ' | ') .. ' |')
    w('| --- | --- | --- | ---: | ---: | ---: | ---: |')
    local last
    for _, l in ipairs(lines) do
      local bn = l[1] ~= last and ('**' .. l[1] .. '**') or ''
      local un = l[1] ~= last and l[2] or ''
      last = l[1]
      w(('| %s | %s | %s | %s | %s | %s | %s |'):format(bn, un, l[3], l[4], l[5], l[6], l[7]))
    end
    w('')
    w('Targets, ' .. cfg.name .. ' (ratio as above, needed: the least ratio that meets the target):')
    w('')
    w('| ' .. table.concat(TH, ' | ') .. ' |')
    w('| --- | --- | --- | ---: | ---: | --- |' .. (BASE and ' ---: | --- |' or ''))
    for _, l in ipairs(tlines) do w('| ' .. table.concat(l, ' | ') .. ' |') end
  end
  w('')
  w('Work per program (BENCH_SCALE=' .. SCALE .. '):')
  w('')
  for _, b in ipairs(BENCHES) do
    if not ONLY or ONLY[b.name] then w(('- %s: %s'):format(b.name, b.what)) end
  end
else
  for _, h in ipairs(header) do w(('%-16s %s'):format(h[1] .. ':', h[2])) end
  for _, n in ipairs(notes) do w('* ' .. n:gsub('%*%*', '')) end
  for _, cfg in ipairs(CONFIGS) do
    local lines, tlines = tables(cfg)
    w('')
    w('== ' .. title(cfg))
    w('')
    local width = {}
    for i, h in ipairs(H) do width[i] = utf8.len(h) end
    for _, l in ipairs(lines) do
      for i, v in ipairs(l) do width[i] = math.max(width[i], utf8.len(v) or #v) end
    end
    local function row(l)
      local cells = {}
      for i, v in ipairs(l) do
        local pad = (' '):rep(width[i] - (utf8.len(v) or #v))
        cells[i] = (i >= 4) and (pad .. v) or (v .. pad)
      end
      return table.concat(cells, '  ')
    end
    w(row(H))
    local last
    for _, l in ipairs(lines) do
      if last and l[1] ~= last then w('') end
      local shown = { l[1] ~= last and l[1] or '', l[1] ~= last and l[2] or '', l[3], l[4], l[5], l[6], l[7] }
      last = l[1]
      w(row(shown))
    end
    w('')
    w('Targets, ' .. cfg.name .. ' (ratio as above; needed: the least ratio that meets the target):')
    for _, l in ipairs(tlines) do
      w(('  %-19s %-14s %-38s %8s  needed %-6s %-6s'):format(table.unpack(l))
        .. (BASE and ('  base %8s %s'):format(l[7], l[8]) or ''))
    end
  end
end
io.stdout:write(table.concat(out, '\n') .. '\n')
log('suite wall time: %d s', elapsed)

-- }============================================================
