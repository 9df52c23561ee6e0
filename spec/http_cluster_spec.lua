-- examples/http_cluster.lua under load: wrk on 127.0.0.1, bounded in
-- time (1-2 s each: the reason this file takes ~5 s).  Every worker
-- serves; a worker killed in the middle loses only its connections and
-- the pool is back to N.  Skipped without wrk.
local cp = require 'childproc'
local core = core()

local has_wrk = os.execute('command -v wrk >/dev/null 2>&1')
local describe_wrk = has_wrk and describe or pending

local function cluster(args)
  local child = cp.spawn(LUA, { ROOT .. '/examples/http_cluster.lua',
    table.unpack(args) }, { env = childenv({ LUA_CPATH = CPATH }) })
  local out = {}
  child.stdout:on('data', function(d) out[#out + 1] = d end)
  local function text() return table.concat(out) end
  run_until(function() return text():find('pool 2\n') end, 10000, 'the pool')
  local port = tonumber(text():match('listening on 127%.0%.0%.1:(%d+)'))
  return child, text, port
end

-- close: a new connection for each request (wrk reconnects), so the
-- workers' accepts race all along, not only in the first burst
local function wrk(port, secs, close)
  local args = { '-t2', '-c8', '-d' .. secs .. 's' }
  if close then args[#args + 1] = '-H'; args[#args + 1] = 'Connection: close' end
  args[#args + 1] = 'http://127.0.0.1:' .. port .. '/'
  local child = cp.spawn('wrk', args)
  local out = {}
  child.stdout:on('data', function(d) out[#out + 1] = d end)
  return child, function() return table.concat(out) end
end

local function errors(report)
  local n = 0
  local line = report:match('Socket errors:([^\n]*)') or ''
  for k in line:gmatch('(%d+)') do n = n + tonumber(k) end
  return n
end

describe_wrk('examples/http_cluster.lua under wrk', function()
  leakcheck()

  it('shared socket: every worker accepts and serves, with no errors', function()
    local child, text, port = cluster({ '--workers', '2', '--duration', '2' })
    local w, report = wrk(port, 1, true)
    wait_close(w)
    wait_close(child, 15000)
    local served = {}
    for _, n in text():gmatch('worker (%d+) served (%d+)') do served[#served + 1] = tonumber(n) end
    assert.equal(2, #served, text())
    for _, n in ipairs(served) do assert.is_true(n > 0, text()) end
    assert.truthy(report():find('requests in'), report())
    assert.equal(0, errors(report()), report())
  end)

  it('round robin: a worker killed in the middle; the pool is back to 2', function()
    local child, text, port = cluster({ '--workers', '2', '--mode', 'rr', '--duration', '3' })
    local victim = tonumber(text():match('worker (%d+) ready'))
    local w, report = wrk(port, 2)
    local t = cp.setTimeout(function() core.kill(victim, 15) end, 700)
    wait_close(w)
    t:close()
    wait_close(child, 15000)
    local out = text()
    assert.truthy(out:find(('worker %d died'):format(victim), 1, true), out)
    local _, pools = out:gsub('pool 2\n', '')
    assert.equal(2, pools, out)                 -- ready again after the kill
    local served = 0
    for _ in out:gmatch('worker %d+ served %d+') do served = served + 1 end
    assert.equal(2, served, out)
    -- only the connections the victim held (4 of 8) can have failed
    assert.is_true(errors(report()) <= 4, report())
    assert.truthy(report():find('requests in'), report())
  end)
end)
