-- ENOMEM: spec/host/enomem_host (make host; ASan + UBSan, and LSan at its
-- exit) runs the core scenarios (module load, spawn, a pty, exec, fork round
-- trip, timers, a watcher, spawnSync) in a lua_State whose allocator
-- fails the n-th allocation.  Every failure must be a Lua error "not
-- enough memory" (or absorbed by Lua's emergency collection), and leave
-- the loop working, no fd open and no child unreaped.  Here at most
-- ENOMEM_MAX_RUNS points a scenario (a different sample each run:
-- ENOMEM_SEED); `make enomem` tries every point (26 s).
describe('ENOMEM in the host', function()
  it('every failing allocation is a clean "not enough memory"', function()
    if (os.getenv('CHILDPROC_LUA') or 'lua5.4') ~= 'lua5.4' then
      pending('the host is built for Lua 5.4 (make test LUA=lua5.4 runs it)')
      return
    end
    local host = ROOT .. '/spec/host/build/enomem_host'
    assert.is_truthy(readfile(host), 'make host builds ' .. host)
    local preload = shell('printf "%s %s" "$(cc -print-file-name=libasan.so)" "$(cc -print-file-name=libubsan.so)"')
    local cmd = table.concat({
      'cd', shq(ROOT), '&&', 'env',
      'ASAN_OPTIONS=detect_leaks=1:abort_on_error=1',
      'ENOMEM_PRELOAD=' .. shq(preload),
      'ENOMEM_CPATH=' .. shq(ROOT .. '/spec/host/build/?.so'),
      'LUA_CPATH=' .. shq(ROOT .. '/?.so;;'),
      'ENOMEM_MAX_RUNS=' .. (os.getenv('ENOMEM_MAX_RUNS') or '30'),
      'ENOMEM_SEED=' .. os.time(),
      'timeout 120', shq(host) }, ' ')
    local out, status, err = shell(cmd)
    assert.equal(0, status, out .. err)
    local n = 0
    for name, wrong in out:gmatch('(%a+)%s+%d+ allocations[^\n]*, (%d+) wrong\n') do
      assert.equal('0', wrong, name)
      n = n + 1
    end
    assert.equal(8, n, out)
  end)
end)
