-- Every public function and method, every argument position, each wrong
-- type (luaposix's badargs habit): the error is luaL_typeerror's, with
-- the argument's number, and it is reported at the caller's line (this
-- file's), never at a line of the module.
local cp = require 'childproc'

local unpack = table.unpack or unpack
local HERE = 'spec/argtypes_spec.lua'
local NOOP = function() end

-- one value of each type, and the name luaL_typeerror gives it
local VALUES = {
  { 'nil', nil }, { 'boolean', true }, { 'number', 42 }, { 'float', 1.5 },
  { 'string', 'x' }, { 'table', {} }, { 'function', function() end },
  { 'FILE*', io.stderr }, { 'thread', coroutine.create(function() end) },
}
-- (a file's type name is its metatable's __name, where Lua gives one:
-- 5.3 and later; before, luaL_typeerror says 'userdata')
local FILE_NAME = rawget(getmetatable(io.stderr), '__name') or 'userdata'
local function gotname(kind)
  if kind == 'float' then return 'number' end
  if kind == 'FILE*' then return FILE_NAME end
  return kind
end

-- kind -> { accepted = {value kinds}, expected = 'what the message says' }
-- (a float with an integral value counts as an integer: 42 is one too)
local KINDS = {
  string = { ok = { string = true, number = true, float = true }, want = 'string' },
  integer = { ok = { number = true }, want = 'integer', int = true },
  number = { ok = { number = true, float = true }, want = 'number' },
  func = { ok = { ['function'] = true }, want = 'function' },
  table = { ok = { table = true }, want = 'table' },
  -- the args position: an array or the options (or nil)
  args = { ok = { table = true, ['nil'] = true }, want = 'table' },
  -- execFile's args position may be the callback
  argsf = { ok = { table = true, ['nil'] = true, ['function'] = true }, want = 'table' },
  -- exec's options position may be the callback
  optsf = { ok = { table = true, ['nil'] = true, ['function'] = true }, want = 'table' },
  signal = { ok = { string = true, number = true, float = true, ['nil'] = true }, want = 'string' },
  dest = { ok = { table = true, FILE = true }, want = 'childproc.Writable' },
  fd = { ok = { number = true, FILE = true }, want = 'fd or object with getfd or fileno',
         int = true },
  -- cp.process:exit(code): os.exit's (true and false too)
  exitcode = { ok = { number = true, boolean = true, ['nil'] = true }, want = 'integer',
               int = true },
  any = { ok = {} },
}

-- the message luaL_typeerror gives for value kind vk at position n
local function message(fname, n, want, vk, int)
  if vk == 'float' and int then
    return ("bad argument #%d to '%s' (number has no integer representation)")
      :format(n, fname)
  end
  return ("bad argument #%d to '%s' (%s expected, got %s)")
    :format(n, fname, want, gotname(vk))
end

-- call f with args (n of them), from this line: the line every error must name
local CALL_LINE = debug.getinfo(1, 'l').currentline + 2
local function call(f, args, n)
  local r = f(unpack(args, 1, n)); return r
end

-- Check one function: params is a list of { kind, valid value }, where
-- kind may end in '?' (nil is taken).  Self (a method's object) has
-- kind 'self:<class>'.
local function check(fname, f, params, made)
  local n = #params
  local valid = {}
  for i, p in ipairs(params) do valid[i] = p[2] end
  local count = 0
  for i, p in ipairs(params) do
    local kind = p[1]
    local optional = kind:sub(-1) == '?'
    if optional then kind = kind:sub(1, -2) end
    local class = kind:match('^self:(.*)')
    local spec = class and { ok = {}, want = 'childproc.' .. class } or KINDS[kind]
    assert(spec, kind)
    if spec.want then
      for _, v in ipairs(VALUES) do
        local vk = v[1]
        local ok = spec.ok[vk] or (vk == 'nil' and optional)
          or (vk == 'FILE*' and spec.ok.FILE)
        if not ok then
          local args = { unpack(valid, 1, n) }
          args[i] = v[2]
          local good, err = pcall(call, f, args, n)
          assert.is_false(good, ('%s with a %s at #%d did not raise'):format(fname, vk, i))
          if made and good then made(err) end
          assert.equal(HERE .. ':' .. CALL_LINE .. ': ' .. message(fname, i, spec.want, vk, spec.int),
            tostring(err))
          count = count + 1
        end
      end
    end
  end
  -- nothing at all, when the first argument is needed: 'no value'
  local first = params[1] and params[1][1]
  if first and first:sub(-1) ~= '?' and first ~= 'any' then
    local class = first:match('^self:(.*)')
    local want = class and 'childproc.' .. class or KINDS[first].want
    local good, err = pcall(call, f, {}, 0)
    assert.is_false(good)
    -- (self, checked in C from a Lua method, sees the nil it was passed;
    -- a method in C sees no value)
    local got = (class and debug.getinfo(f, 'S').what ~= 'C') and 'nil' or 'no value'
    assert.equal(HERE .. ':' .. CALL_LINE .. ': '
      .. ("bad argument #1 to '%s' (%s expected, got %s)"):format(fname, want, got),
      tostring(err))
  end
  return count
end

describe('argument types', function()
  leakcheck()

  local SPAWN = { { 'string', 'true' }, { 'args', {} }, { 'table?', {} } }
  local FUNCTIONS = {
    { 'spawn', cp.spawn, SPAWN },
    { 'spawnSync', cp.spawnSync, SPAWN },
    { 'execFileSync', cp.execFileSync, SPAWN },
    { 'fork', cp.fork, { { 'string', 'x.lua' }, { 'args', {} }, { 'table?', {} } } },
    { 'exec', cp.exec, { { 'string', 'true' }, { 'optsf', {} }, { 'func?', nil } } },
    { 'execFile', cp.execFile, { { 'string', 'true' }, { 'argsf', {} }, { 'optsf', {} },
                                 { 'func?', nil } } },
    { 'execSync', cp.execSync, { { 'string', 'true' }, { 'table?', {} } } },
    { 'kill', cp.kill, { { 'integer', MYPID }, { 'signal', 0 } } },
    { 'run', cp.run, { { 'string?', 'nowait' } } },
    { 'setTimeout', cp.setTimeout, { { 'func', NOOP }, { 'number?', 1 } } },
    { 'setInterval', cp.setInterval, { { 'func', NOOP }, { 'number?', 1 } } },
    { 'setImmediate', cp.setImmediate, { { 'func', NOOP } } },
    { 'watch', cp.watch, { { 'fd', -1 }, { 'string', 'r' }, { 'func', NOOP } } },
    { 'async', cp.async, { { 'func', NOOP } } },
    { 'sleep', cp.sleep, { { 'number', 0 } } },
  }
  -- (cp.clear* below)
  local CLEARS = { 'clearTimeout', 'clearInterval', 'clearImmediate' }

  it('covers every function of the module', function()
    local covered = {}
    for _, k in ipairs(FUNCTIONS) do covered[k[1]] = true end
    for _, k in ipairs(CLEARS) do covered[k] = true end
    local missing = {}
    for k, v in pairs(cp) do
      if type(v) == 'function' and k:sub(1, 1) ~= '_' and not covered[k] then
        missing[#missing + 1] = k
      end
    end
    assert.same({}, missing)
  end)
  for _, k in ipairs(FUNCTIONS) do
    it(k[1], function()
      local made = {}
      check(k[1], k[2], k[3], function(x) made[#made + 1] = x end)
      assert.same({}, made)
    end)
  end

  it('clearTimeout, clearInterval, clearImmediate', function()
    for _, name in ipairs(CLEARS) do
      check(name, cp[name], { { 'self:Timer?', nil } })
    end
  end)

  -- the methods of a class, called on a valid object o: self, then the
  -- arguments of each
  local EMITTER = {
    on = { { 'string', 'x' }, { 'func', NOOP } },
    once = { { 'string', 'x' }, { 'func', NOOP } },
    off = { { 'string', 'x' }, { 'func', NOOP } },
    addListener = { { 'string', 'x' }, { 'func', NOOP } },
    removeListener = { { 'string', 'x' }, { 'func', NOOP } },
    removeAllListeners = { { 'string?', 'x' } },
    listenerCount = { { 'string', 'x' } },
    emit = { { 'string', 'x' } },
  }
  -- skip: methods left out (and why)
  local function methods(class, o, own, noemitter, skip)
    local n = 0
    local list = {}
    if not noemitter then for m, ps in pairs(EMITTER) do list[m] = ps end end
    for m, ps in pairs(own) do list[m] = ps end
    -- every method of the class is here (its methods table is the first
    -- upvalue of its __index)
    -- (5.1's debug.getupvalue cannot read a C function's upvalues: the
    -- coverage check runs on the other Luas)
    local _, all = debug.getupvalue(getmetatable(o).__index, 1)
    local missing = {}
    for m, f in pairs(all or {}) do
      if type(f) == 'function' and not list[m] and not (skip and skip[m]) then
        missing[#missing + 1] = class .. ':' .. m
      end
    end
    assert.same({}, missing)
    for m, ps in pairs(list) do
      local f = o[m]
      assert.is_function(f, m)
      local params = { { 'self:' .. class, o } }
      for _, p in ipairs(ps) do params[#params + 1] = p end
      n = n + check(m, f, params)
    end
    return n
  end

  it('ChildProcess, Readable and Writable methods', function()
    local c = cp.spawn('cat')
    finally(function() c.stdin:close(); c:wait() end)
    methods('ChildProcess', c, {
      kill = { { 'signal', 0 }, { 'table?', nil } }, ref = {}, unref = {},
      disconnect = {}, send = {}, resize = { { 'integer', 80 }, { 'integer', 24 } },
    }, false, { wait = 'spec/helper.lua wraps it: its errors are the wrapper\'s' })
    methods('Readable', c.stdout, {
      pause = {}, resume = {}, isPaused = {}, fileno = {}, destroy = {},
      pipe = { { 'dest', c.stdin }, { 'table?', nil } }, unpipe = {},
    })
    methods('Writable', c.stdin, {
      write = { { 'string', '' }, { 'func?', nil } },
      close = { { 'any', nil }, { 'func?', nil } },
      ['end'] = { { 'any', nil }, { 'func?', nil } },
      destroy = {}, fileno = {},
    })
  end)

  it('Timer, Watcher, cp.process and cp.loop methods', function()
    local t = cp.setTimeout(function() end, 100000)
    methods('Timer', t, { close = {}, ref = {}, unref = {}, hasRef = {}, refresh = {} }, true)
    t:close()
    local r, w = core().pipe()
    local wt = cp.watch(r, 'r', function() end)
    methods('Watcher', wt, { stop = {}, start = {}, ref = {}, unref = {}, hasRef = {},
                             isActive = {}, fileno = {} }, true)
    wt:stop()
    core().close(r)
    core().close(w)
    methods('Process', cp.process, {
      exit = { { 'exitcode', nil } }, cwd = {}, disconnect = {}, send = {},
    })
    methods('Loop', cp.loop, { pollfd = {}, events = {}, timeout = {} }, true)
  end)

  it('counts as Lua does when called as a method (self not counted)', function()
    local c = cp.spawn('true')
    local line = debug.getinfo(1, 'l').currentline
    local ok1, e1 = pcall(function() c:on('exit', 5) end)
    local ok2, e2 = pcall(function() c.stdout:pipe(5) end)
    local ok3, e3 = pcall(function() c:kill({}) end)
    local fake = setmetatable({}, { __index = { kill = c.kill } })
    local ok4, e4 = pcall(function() fake:kill() end)
    local ok5, e5 = pcall(function() c.stdin:write('x', 'y') end)
    assert.is_false(ok1 or ok2 or ok3 or ok4 or ok5)
    local at = function(k) return HERE .. ':' .. (line + k) .. ': ' end
    assert.equal(at(1) .. "bad argument #2 to 'on' (function expected, got number)", e1)
    assert.equal(at(2) .. "bad argument #1 to 'pipe' (childproc.Writable expected, got number)", e2)
    assert.equal(at(3) .. "bad argument #1 to 'kill' (string expected, got table)", e3)
    assert.equal(at(5) .. "calling 'kill' on bad self (childproc.ChildProcess expected, got table)", e4)
    assert.equal(at(6) .. "bad argument #2 to 'write' (function expected, got string)", e5)
    c:wait()
  end)

  it('reports an option at the caller line, numbered as its table', function()
    local line = debug.getinfo(1, 'l').currentline
    local _, e1 = pcall(function() cp.spawn('true', {}, { timeout = 'x' }) end)
    local _, e2 = pcall(function() cp.spawnSync('true', { env = 5 }) end)
    local _, e3 = pcall(function() cp.exec('true', { maxBuffer = 1.5 }) end)
    local _, e4 = pcall(function() cp.fork('x.lua', function() end) end)
    local _, e5 = pcall(function() cp.spawn('true', { 'a', {} }) end)
    local at = function(k) return HERE .. ':' .. (line + k) .. ': ' end
    assert.equal(at(1) .. "bad argument #3 to 'spawn' (option 'timeout': integer expected, got string)", e1)
    assert.equal(at(2) .. "bad argument #2 to 'spawnSync' (option 'env': table expected, got number)", e2)
    assert.equal(at(3) .. "bad argument #2 to 'exec' (option 'maxBuffer': number has no integer representation)", e3)
    assert.equal(at(4) .. "bad argument #2 to 'fork' (table expected, got function)", e4)
    assert.equal(at(5) .. "bad argument #2 to 'spawn' (args[2]: string expected, got table)", e5)
  end)

  it('takes a float with an integral value wherever an integer goes', function()
    local c = cp.spawn('true', {}, { timeout = 2 ^ 30 })
    assert.same({ 0, nil }, { c:wait() })
    local done
    cp.exec('echo hi', { maxBuffer = 1e6, timeout = 1e4 }, function(err, out)
      done = { err, out }
    end)
    run_until(function() return done end, 5000, 'exec')
    assert.same({ nil, 'hi\n' }, done)
    assert.equal('hi\n', cp.execSync('echo hi', { maxBuffer = 1e6 }))
    assert.is_true(cp.kill(MYPID + 0.0, 0))
  end)
end)
