-- The stdio option: 'pipe', 'inherit', 'ignore', arrays with extra fds,
-- integer fds, Lua file handles.
local cp = require 'childproc'

describe('stdio', function()
  leakcheck()

  it("defaults to three pipes", function()
    local c = cp.spawn('cat')
    assert.is_not_nil(c.stdin)
    assert.is_not_nil(c.stdout)
    assert.is_not_nil(c.stderr)
    c.stdin:close()
    c:wait()
  end)

  it("'pipe' is a socket for stdin, a pipe for stdout and stderr", function()
    local c = cp.spawn('sh', { '-c', 'readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2' })
    local out = ''
    c.stdout:on('data', function(d) out = out .. d end)
    assert.same({ 0, nil }, { c:wait() })
    local kinds = {}
    for l in out:gmatch('[^\n]+') do kinds[#kinds + 1] = l:match('^(%a+):') end
    assert.same({ 'socket', 'pipe', 'pipe' }, kinds)
  end)

  it('extra pipe fds: the child writes to fd 3, we read child.stdio[3]', function()
    local c = cp.spawn('sh', { '-c', 'echo three >&3; echo one' },
                       { stdio = { 'pipe', 'pipe', 'pipe', 'pipe' } })
    assert.is_not_nil(c.stdio[3])
    local rec = recorder()
    c.stdio[3]:on('data', rec:data('fd3'))
    c.stdout:on('data', rec:data('fd1'))
    c:on('close', function(...) rec('close')(...) end)
    run_until(function() return rec:index('close') end)
    assert.equal('three\n', rec:text('fd3'))
    assert.equal('one\n', rec:text('fd1'))
    assert.same({ 'close', 0 }, rec.events[#rec.events])
  end)

  it("'close' waits for the extra fd to end too", function()
    -- the child closes 0-2 and exits only after a grandchild still holding
    -- fd 3 is done; 'close' must come after fd 3 ended
    local c = cp.spawn('sh', { '-c', '(sleep 0.2; echo late >&3) & exit 0' },
                       { stdio = { 'ignore', 'ignore', 'ignore', 'pipe' } })
    local rec = recorder()
    c.stdio[3]:on('data', rec:data('fd3'))
    c.stdio[3]:on('end', rec('fd3.end'))
    c:on('exit', rec('exit'))
    c:on('close', rec('close'))
    run_until(function() return rec:index('close') end)
    assert.equal('late\n', rec:text('fd3'))
    assert.is_true(rec:index('fd3.end') < rec:index('close'))
    assert.is_true(rec:index('exit') < rec:index('close'))
  end)

  it("stdio = 'ignore' gives no streams and /dev/null", function()
    local c = cp.spawn('sh', { '-c', 'cat; echo out; echo err >&2' }, { stdio = 'ignore' })
    assert.is_nil(c.stdin)
    assert.is_nil(c.stdout)
    assert.is_nil(c.stderr)
    assert.same({ n = 2, 0, nil }, table.pack(c:wait()))
  end)

  it("'inherit' and 'ignore' as seen by the parent's own stdout/stderr", function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      io.stdout:setvbuf('line')  -- (5.4's print flushes; 5.1's and LuaJIT's do not)
      local c = cp.spawn('sh', { '-c', 'echo inherited-out; echo inherited-err >&2' },
                         { stdio = 'inherit' })
      assert(c.stdout == nil)
      print(c:wait())
      c = cp.spawn('sh', { '-c', 'echo ignored-out; echo ignored-err >&2' },
                   { stdio = 'ignore' })
      print(c:wait())
      -- mixed: stdin from us, stdout inherited, stderr ignored
      c = cp.spawn('sh', { '-c', 'cat; echo mixed-err >&2' },
                   { stdio = { 'pipe', 'inherit', 'ignore' } })
      c.stdin:close('mixed-in\n')
      print(c:wait())
    ]])
    assert.equal(0, status, err)
    assert.equal('inherited-out\n0\tnil\n0\tnil\nmixed-in\n0\tnil\n', out)
    assert.equal('inherited-err\n', err)
  end)

  it("'inherit' of stdin: the child reads the parent's stdin", function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      local c = cp.spawn('cat', {}, { stdio = { 'inherit', 'pipe', 'inherit' } })
      local got = ''
      c.stdout:on('data', function(d) got = got .. d end)
      c:wait()
      io.write('[', got, ']')
    ]], { stdin = 'from parent stdin\n' })
    assert.equal(0, status, err)
    assert.equal('[from parent stdin\n]', out)
  end)

  it('an integer fd: the child writes into it', function()
    local path = tmpname()
    local f = assert(io.open(path, 'w'))
    local fd = assert(fd_of(path), 'fd of the tmp file')
    local c = cp.spawn('sh', { '-c', 'echo via-int-fd' }, { stdio = { 'ignore', fd, 'ignore' } })
    assert.same({ n = 2, 0, nil }, table.pack(c:wait()))
    f:close()
    assert.equal('via-int-fd\n', readfile(path))
    os.remove(path)
  end)

  it('integer fds 1 and 2 in a fresh interpreter', function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      cp.spawn('sh', { '-c', 'echo to-two' }, { stdio = { 'ignore', 2, 'ignore' } }):wait()
      cp.spawn('sh', { '-c', 'echo to-one >&2' }, { stdio = { 'ignore', 'ignore', 1 } }):wait()
    ]])
    assert.equal(0, status, err)
    assert.equal('to-one\n', out)
    assert.equal('to-two\n', err)
  end)

  it('a Lua file handle for output: the child writes into the file', function()
    local path = tmpname()
    local f = assert(io.open(path, 'w'))
    local c = cp.spawn('sh', { '-c', 'echo via-file; echo err-too >&2' },
                       { stdio = { 'ignore', f, f } })
    assert.same({ n = 2, 0, nil }, table.pack(c:wait()))
    f:close()
    assert.equal('via-file\nerr-too\n', readfile(path))
    os.remove(path)
  end)

  it('a Lua file handle for input: the child reads the file', function()
    local path = writefile(tmpname(), 'line a\nline b\n')
    local f = assert(io.open(path, 'r'))
    local c = cp.spawn('cat', {}, { stdio = { f, 'pipe', 'ignore' } })
    local out = ''
    c.stdout:on('data', function(d) out = out .. d end)
    assert.same({ n = 2, 0, nil }, table.pack(c:wait()))
    f:close()
    assert.equal('line a\nline b\n', out)
    os.remove(path)
  end)

  it('io.stdout as stdio in a fresh interpreter', function()
    local out, status, err = luaproc([[
      local cp = require 'childproc'
      io.stdout:write('before\n'); io.stdout:flush()
      cp.spawn('echo', { 'from-child' }, { stdio = { 'ignore', io.stdout, io.stderr } }):wait()
      io.stdout:write('after\n')
    ]])
    assert.equal(0, status, err)
    assert.equal('before\nfrom-child\nafter\n', out)
  end)

  it("an extra 'ignore' leaves that fd closed in the child", function()
    local r = collect('sh', { '-c', 'ls /proc/$$/fd; true' },
                      { stdio = { 'pipe', 'pipe', 'pipe', 'ignore', 'pipe' } })
    local c = r.child
    assert.is_nil(c.stdio[3])
    assert.is_not_nil(c.stdio[4])
    local fds = {}
    for l in r.stdout:gmatch('[^\n]+') do fds[#fds + 1] = tonumber(l) end
    table.sort(fds)
    assert.same({ 0, 1, 2, 4 }, fds)
  end)
end)
