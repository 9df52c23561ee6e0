-- A wait spins on its channel's rings while the peer is awake on another
-- CPU (src/loop.c spin_rings): a peer that answers within the spin is
-- read without either side sleeping or ringing a doorbell. On one CPU
-- it never spins (the peer could not run meanwhile).
local ncpu = tonumber((shell('nproc'))) or 1

-- the parent's figures of N round trips with the child on CPU childcpu
local function pair(n, childcpu)
  local out, status, err = luaproc(readfile('spec/fixtures/spin_pair.lua'),
    { args = { 'parent', tostring(n), tostring(childcpu) } })
  assert.equal(0, status, err)
  local rtt, writes, cpu = out:match('rtt=(%d+) writes=(%d+) cpu_us=([%d.]+)')
  assert(rtt, 'no figures: ' .. out .. err)
  return tonumber(rtt), tonumber(writes), tonumber(cpu)
end

describe('a wait on a channel', function()
  it('spins instead of sleeping while the peer answers from another CPU #timing', function()
    if ncpu < 2 then return pending('one CPU here') end
    -- a round trip writes a doorbell each way when either side sleeps:
    -- 2000 writes for 2000 round trips; spinning, nearly none (a
    -- descheduled peer, the first messages: a few)
    local rtt, writes = pair(2000, 1)
    assert.equal(2000, rtt)
    assert.is_true(writes < 400, ('%d doorbell writes for %d round trips'):format(writes, rtt))
  end)

  it('never spins when both sides share one CPU #timing', function()
    -- spinning there would only delay the peer: each round trip would
    -- cost a whole spin (50 us) of this process's CPU time
    local rtt, writes, cpu = pair(1000, 0)
    assert.equal(1000, rtt)
    assert.is_true(writes >= 500, ('%d doorbell writes: the doorbells were not used'):format(writes))
    assert.is_true(cpu < 40, ('%.1f us of CPU time per round trip'):format(cpu))
  end)
end)
