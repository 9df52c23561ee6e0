-- A child whose start failed still has the streams its stdio asked for,
-- as in Node: they end at once with no data, then 'error' and 'close'.
local cp = require 'childproc'

-- attach listeners to every stream of c right after it was made, as a
-- Node example does; run until 'close'
local function watch_failed(c)
  local rec = recorder()
  for fd, st in pairs(c.stdio) do
    local name = 'fd' .. fd
    if fd == 0 then
      rec:listen(st, { 'close', 'finish' }, name .. '.')
    else
      st:on('data', rec:data(name .. '.data'))
      rec:listen(st, { 'end', 'close' }, name .. '.')
    end
  end
  c:on('error', function(e) rec.events[#rec.events + 1] = { 'error', e.code } end)
  rec:listen(c, { 'spawn', 'exit', 'close' })
  wait_close(c, 5000)
  return rec
end

local function names_of(rec)
  local t = {}
  for _, e in ipairs(rec.events) do t[#t + 1] = e[1] end
  return t
end

describe('a failed spawn', function()
  leakcheck()

  local noexec
  setup(function()
    noexec = writefile(tmpname(), 'echo never\n')   -- mode 0600: EACCES
  end)
  teardown(function() os.remove(noexec) end)

  local cases = {
    { 'ENOENT', function(o) return cp.spawn('no-such-command-xyz', {}, o) end, 'ENOENT' },
    { 'EACCES', function(o) return cp.spawn(noexec, {}, o) end, 'EACCES' },
    { 'a bad cwd', function(o)
        o = o or {}
        o.cwd = '/no/such/dir'
        return cp.spawn('true', {}, o)
      end, 'ENOENT' },
  }
  for _, k in ipairs(cases) do
    it('has stdin, stdout, stderr that end at once (' .. k[1] .. ')', function()
      local c = k[2]()
      assert.equal(nil, c.pid)
      assert.equal('childproc.Writable', getmetatable(c.stdin).__name)
      assert.equal('childproc.Readable', getmetatable(c.stdout).__name)
      assert.equal('childproc.Readable', getmetatable(c.stderr).__name)
      assert.equal(c.stdin, c.stdio[0])
      assert.equal(c.stdout, c.stdio[1])
      local rec = watch_failed(c)
      assert.same({ 'fd0.close', 'fd1.end', 'fd1.close', 'fd2.end', 'fd2.close',
                    'error', 'close' }, names_of(rec))
      assert.equal(k[3], rec:get('error')[2])
      assert.is_nil(rec:index('fd1.data'))
      assert.is_nil(rec:index('spawn'))
      assert.is_nil(rec:index('exit'))
      -- the streams end before the child's 'close'
      assert.is_true(rec:index('fd1.close') < rec:index('close'))
    end)
  end

  it('has its extra pipes, and none for what is not a pipe', function()
    local c = cp.spawn('no-such-command-xyz', {},
      { stdio = { 'ignore', 'pipe', 'inherit', 'pipe', 'ignore', 'pipe' } })
    assert.is_nil(c.stdin)
    assert.is_nil(c.stderr)
    assert.is_nil(c.stdio[4])
    assert.is_truthy(c.stdio[3])
    assert.is_truthy(c.stdio[5])
    local rec = watch_failed(c)
    for _, n in ipairs({ 'fd1.end', 'fd3.end', 'fd5.end', 'error', 'close' }) do
      assert.is_truthy(rec:index(n), n)
    end
  end)

  it('is not started when written to: stdin takes the write as an error', function()
    local c = cp.spawn('no-such-command-xyz')
    local got
    c.stdin:on('error', function(e) got = e.code end)
    c.stdin:write('x')
    c:on('error', function() end)
    wait_close(c, 5000)
    assert.equal('EPIPE', got)
  end)

  it('of exec, execFile and fork has the streams too', function()
    local made = {}
    made[1] = cp.exec('true', { cwd = '/no/such/dir' }, function() end)
    made[2] = cp.execFile('no-such-command-xyz', {}, function() end)
    made[3] = cp.fork('x.lua', {}, { silent = true, cwd = '/no/such/dir' })
    local ended, errored = {}, {}
    for i, c in ipairs(made) do
      c.stdout:on('end', function() ended[i] = true end)
      c.stderr:on('data', function() error('data from a child that did not start') end)
      c:on('error', function() errored[i] = true end)
    end
    for i, c in ipairs(made) do
      wait_close(c, 5000)
      assert.is_true(ended[i], 'stdout end #' .. i)
      assert.is_true(errored[i], 'error #' .. i)
    end
  end)
end)
