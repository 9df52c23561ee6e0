-- File descriptors: a child gets only what it was given; this process
-- keeps no fd of a child that closed.
local cp = require 'childproc'

-- the fds a shell child sees (its own, from /proc/$$/fd)
local function child_fds(opts)
  local r = collect('sh', { '-c', 'ls /proc/$$/fd; true' }, opts)
  assert.equal(0, r.code, r.stderr)
  local list = {}
  for l in r.stdout:gmatch('[^\n]+') do list[#list + 1] = tonumber(l) end
  table.sort(list)
  return list
end

describe('fds', function()
  leakcheck()

  it('a spawned child sees only 0-2', function()
    assert.same({ 0, 1, 2 }, child_fds())
  end)

  it('a child sees only 0-2 even when we hold fds without close-on-exec', function()
    -- io.open uses fopen without "e": the fd is inheritable
    local path = tmpname()
    local f = assert(io.open(path, 'w'))
    local fd = fd_of(path)
    assert.is_truthy(fd)
    -- that fd really is inheritable: a plain shell from io.popen sees it
    local seen_by_popen = shell('ls /proc/$$/fd')
    assert.is_truthy(('\n' .. seen_by_popen):find('\n' .. fd .. '\n', 1, true),
      'setup: fd ' .. fd .. ' is close-on-exec already')
    -- but not our child
    assert.same({ 0, 1, 2 }, child_fds())
    f:close()
    os.remove(path)
  end)

  it('extra stdio entries give exactly those fds', function()
    assert.same({ 0, 1, 2, 3 }, child_fds({ stdio = { 'pipe', 'pipe', 'pipe', 'pipe' } }))
  end)

  it('a fresh interpreter started with stray inherited fds does not pass them on', function()
    -- 7 and 9 are open (not close-on-exec) in that interpreter from the start
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      -- setup check: they are open here
      assert(io.open('/proc/self/fd/7') and io.open('/proc/self/fd/9'))
      local c = cp.spawn('sh', { '-c', 'ls /proc/$$/fd; true' })
      local got = ''
      c.stdout:on('data', function(d) got = got .. d end)
      c:wait()
      io.write((got:gsub('\n', ' ')))
    ]], { pre = 'exec 7</dev/null 9>/dev/null;' })
    assert.equal(0, status, err)
    assert.equal('0 1 2 ', out)
  end)

  it('children start with no ignored signals and an empty mask', function()
    -- the interpreter ignores PIPE, INT and USR1 (inherited through exec);
    -- its child must not
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      local function get(s, k) return s:match(k .. ':%s*(%x+)') end
      local me = io.open('/proc/self/status'):read('*a')
      local c = cp.spawn('cat', { '/proc/self/status' })
      local st = ''
      c.stdout:on('data', function(d) st = st .. d end)
      c:wait()
      local after = io.open('/proc/self/status'):read('*a')
      print(get(me, 'SigIgn'), get(st, 'SigIgn'), get(st, 'SigBlk'),
            get(after, 'SigIgn'))
    ]], { pre = "trap '' PIPE INT USR1;" })
    assert.equal(0, status, err)
    local parent_ign, child_ign, child_blk, parent_after = out:match('(%x+)\t(%x+)\t(%x+)\t(%x+)')
    assert.is_truthy(parent_ign, out)
    assert.is_true(tonumber(parent_ign, 16) ~= 0, 'setup: the parent ignores nothing')
    assert.equal(0, tonumber(child_ign, 16))
    assert.equal(0, tonumber(child_blk, 16))
    -- and the module changed nothing in the host
    assert.equal(parent_ign, parent_after)
  end)

  it("after 'close', this process holds no fd of the child (no GC needed)", function()
    collectgarbage(); collectgarbage()
    local before = fds()
    for i = 1, 20 do
      local c = cp.spawn('sh', { '-c', 'echo out; echo err >&2' },
                         i % 2 == 0 and { stdio = { 'pipe', 'pipe', 'pipe', 'pipe' } } or nil)
      c.stdout:on('data', function() end)
      wait_close(c)
    end
    local function failing(...)
      local c = cp.spawn(...)
      c:on('error', function() end)
      return c
    end
    for _ = 1, 20 do wait_close(failing('nosuchcmd-fds')) end
    for _ = 1, 5 do wait_close(failing('pwd', {}, { cwd = '/nonexistent-fds' })) end
    local after = fds()
    assert.same(before, after, 'left open: ' .. fds_desc(after))
  end)

  it('spawning many children one after another leaks nothing', function()
    collectgarbage(); collectgarbage()
    local before = fds()
    for _ = 1, 200 do
      local c = cp.spawn('true')
      wait_close(c)
    end
    collectgarbage(); collectgarbage()
    assert.same(before, fds())
  end)
end)
