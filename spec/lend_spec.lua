-- A childproc stream given as a stdio entry is lent, as in Node: the
-- child gets the same pipe and the stream stays this process's.  The
-- child's end is blocking, this process's is not.
local cp = require 'childproc'

local function lines(s)
  local t = {}
  for l in s:gmatch('[^\n]+') do t[#t + 1] = l end
  table.sort(t)
  return t
end

describe('a stream lent to children', function()
  leakcheck()

  it('may be lent to several: two producers and this process write into one stdin', function()
    local consumer = cp.spawn('cat')
    local out = ''
    consumer.stdout:on('data', function(d) out = out .. d end)
    local p1 = cp.spawn('echo', { 'one' }, { stdio = { 'ignore', consumer.stdin, 'inherit' } })
    local p2 = cp.spawn('echo', { 'two' }, { stdio = { 'ignore', consumer.stdin, 'inherit' } })
    assert.is_true(consumer.stdin:write('mine\n'))
    assert.same({ 0, nil }, { p1:wait() })
    assert.same({ 0, nil }, { p2:wait() })
    -- still ours: this process closes it, and the consumer sees the end
    consumer.stdin:write('last\n')
    consumer.stdin:close()
    assert.same({ 0, nil }, { consumer:wait() })
    assert.same({ 'last', 'mine', 'one', 'two' }, lines(out))
  end)

  it('is read here again once the borrower has exited', function()
    local prod = cp.spawn('cat')
    local b = cp.spawn('head', { '-c', '3' }, { stdio = { prod.stdout, 'pipe', 'inherit' } })
    local bout = ''
    b.stdout:on('data', function(d) bout = bout .. d end)
    prod.stdin:write('abc')
    assert.same({ 0, nil }, { b:wait() })
    assert.equal('abc', bout)
    local got = ''
    prod.stdout:on('data', function(d) got = got .. d end)
    prod.stdin:write('def')
    prod.stdin:close()
    assert.same({ 0, nil }, { prod:wait() })
    assert.equal('def', got)
  end)

  it('that nobody here reads does not hold back its owner, and is not drained here', function()
    local find = cp.spawn('sh', { '-c', 'seq 1 20000' })
    local wc = cp.spawn('wc', { '-l' }, { stdio = { find.stdout, 'pipe', 'inherit' } })
    local out = ''
    wc.stdout:on('data', function(d) out = out .. d end)
    assert.same({ 0, nil }, { find:wait() })  -- closes by itself
    assert.same({ 0, nil }, { wc:wait() })
    assert.equal('20000', out:match('%d+'))    -- every line went to wc
  end)

  -- In a process of its own, bounded by `timeout`: a read or write that
  -- blocks here would hang it, not the specs.
  it("is blocking at the child's end and never blocks this process", function()
    local out, status, err = luaproc([==[
      local cp = require 'childproc'
      local core = require('childproc.internal').core
      local NONBLOCK = 2048   -- O_NONBLOCK, 04000
      local function flags(text)
        local f = assert(text:match('flags:%s*(%d+)'), text)
        return math.floor(tonumber(f, 8) / NONBLOCK) % 2 == 1 and 'nonblocking' or 'blocking'
      end
      local function myflags(fd)
        local f = assert(io.open('/proc/self/fdinfo/' .. fd))
        local t = f:read('*a')
        f:close()
        return flags(t)
      end
      -- (listening at once: output nobody listens to is drained at exit)
      local function collect(c)
        local t = ''
        c.stdout:on('data', function(d) t = t .. d end)
        return function() c:wait(); return t end
      end
      local SHOW0 = { 'sh', '-c', 'grep ^flags: /proc/self/fdinfo/0; exec cat >/dev/null' }

      -- a pipe (a child's stdout) lent as a borrower's stdin
      local prod = cp.spawn('cat')
      local b = cp.spawn(SHOW0[1], { SHOW0[2], SHOW0[3] }, { stdio = { prod.stdout, 'pipe', 'inherit' } })
      local bout = collect(b)
      local fd = prod.stdout:fileno()
      print('pipe here', myflags(fd))
      -- the borrower took what there was: a read here finds nothing, at once
      print('pipe read', tostring(core.read(fd)))
      -- both read, the borrower faster (this process is slow at each chunk)
      local got = 0
      prod.stdout:on('data', function(d)
        got = got + #d
        local t = os.clock() + 0.0005
        repeat until os.clock() > t
      end)
      local chunk = string.rep('x', 65536)
      for _ = 1, 64 do prod.stdin:write(chunk) end
      prod.stdin:close()
      prod:wait()
      print('pipe there', flags(bout()))

      -- a socket (an extra 'pipe' fd) lent as a borrower's stdin
      local prod3 = cp.spawn('sleep', { '30' }, { stdio = { 'ignore', 'ignore', 'ignore', 'pipe' } })
      local b3 = cp.spawn(SHOW0[1], { SHOW0[2], SHOW0[3] },
        { stdio = { prod3.stdio[3], 'pipe', 'inherit' } })
      local b3out = collect(b3)
      print('socket read', tostring(core.read(prod3.stdio[3]:fileno())))
      prod3:kill()
      prod3:wait()
      print('socket there', flags(b3out()))

      -- a socket (a child's stdin) lent as a producer's stdout; the
      -- consumer does not read: writes here queue, they never block
      local consumer = cp.spawn('sleep', { '30' })
      local p = cp.spawn('sh', { '-c', 'grep ^flags: /proc/self/fdinfo/1 >&2' },
        { stdio = { 'ignore', consumer.stdin, 'pipe' } })
      local shown = ''
      p.stderr:on('data', function(d) shown = shown .. d end)
      p:wait()
      print('stdin there', flags(shown))
      local big = string.rep('y', 4 * 1024 * 1024)
      print('stdin write', tostring(consumer.stdin:write(big)))
      consumer.stdin:on('error', function() end)
      consumer:kill()
      consumer:wait()
      print('done')
    ]==], { timeout = 20 })
    assert.equal(0, status, err)
    assert.equal(table.concat({
      'pipe here\tnonblocking',
      'pipe read\tfalse',
      'pipe there\tblocking',
      'socket read\tfalse',
      'socket there\tblocking',
      'stdin there\tblocking',
      'stdin write\tfalse',
      'done', '' }, '\n'), out)
  end)
end)
