-- Runs each examples/*.lua (the Lua ports of the article's snippets) in a
-- fresh $LUA under `timeout 30` and asserts on what it prints.
-- Output goes to files, not pipes, so a stray grandchild holding stdout
-- open can never make a read wait: every wait here is bounded by timeout.

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read('*a')
  p:close()
  return out
end

-- shq, readfile, writefile and ROOT (the repository) come from spec/helper.lua
local EXAMPLES = ROOT .. '/examples'

-- Examples that are not run on their own: children started by others.
local HELPERS = { ['child.lua'] = true, ['timer.lua'] = true,
                  ['compute.lua'] = true }

local function list_examples()
  local names = {}
  for name in capture('ls ' .. shq(EXAMPLES)):gmatch('[^\n]+') do
    if name:match('%.lua$') then names[#names + 1] = name end
  end
  return names
end

-- run(script, {args=, cwd=, input=}) --> {out=, err=, code=}
-- cwd defaults to the repo root; stdin is /dev/null unless input is given.
local function run(script, opts)
  opts = opts or {}
  local tmp = capture('mktemp -d'):gsub('\n$', '')
  local stdin = '/dev/null'
  if opts.input then
    stdin = tmp .. '/in'
    writefile(stdin, opts.input)
  end
  local args = {}
  for i, a in ipairs(opts.args or {}) do args[i] = shq(a) end
  local cmd = table.concat({
    'cd', shq(opts.cwd or ROOT), '&&',
    'env -u LUA_CPATH_5_4', shq('LUA_CPATH=' .. CPATH),
    'timeout -k 5 30 ' .. LUA, shq(EXAMPLES .. '/' .. script),
    table.concat(args, ' '),
    '<', shq(stdin), '>', shq(tmp .. '/out'), '2>', shq(tmp .. '/err'),
  }, ' ')
  local st, _, code = os.execute(cmd)
  if code == nil then code = math.floor(st / 256) end  -- 5.1, LuaJIT: a wait status
  local r = { out = readfile(tmp .. '/out') or '',
              err = readfile(tmp .. '/err') or '', code = code }
  os.execute('rm -rf ' .. shq(tmp))
  return r
end

local function show(r)
  return ('exit status %s\n--- stdout:\n%s\n--- stderr:\n%s')
    :format(r.code, r.out, r.err)
end

local function assert_ok(r)
  assert(r.code == 0, 'example failed: ' .. show(r))
end

local function assert_has(r, text)
  assert(r.out:find(text, 1, true),
         ('expected %q in the output; got %s'):format(text, show(r)))
end

local function shell_count(dir)
  return capture('cd ' .. shq(dir) .. ' && find . -type f | wc -l')
    :match('%d+')
end

describe('examples/run_all.sh', function()
  local script = readfile(EXAMPLES .. '/run_all.sh') or ''

  it('exists and is valid bash', function()
    assert.truthy(script:find('timeout', 1, true))
    assert.truthy(os.execute('bash -n ' .. shq(EXAMPLES .. '/run_all.sh')))
  end)

  it('lists every example that is not a helper child', function()
    local missing = {}
    for _, name in ipairs(list_examples()) do
      if not HELPERS[name] and
         not script:find('examples/' .. name, 1, true) then
        missing[#missing + 1] = name
      end
    end
    assert.same({}, missing)
  end)

  it('lists only examples that exist', function()
    for path in script:gmatch('examples/([%w_]+%.lua)') do
      assert(readfile(EXAMPLES .. '/' .. path), path .. ' does not exist')
    end
  end)
end)

describe('every example', function()
  it('compiles and says in a leading comment which snippet it ports',
     function()
    for _, name in ipairs(list_examples()) do
      local path = EXAMPLES .. '/' .. name
      assert(loadfile(path))
      assert((readfile(path) or ''):match('^%-%- %S'),
             name .. ' does not start with a comment')
    end
  end)
end)

describe('examples', function()
  local fixture   -- a directory with exactly 3 files, for the find examples

  setup(function()
    assert(readfile(SOPATH), SOPATH .. ' is missing: run make LUA=' .. LUA)
    fixture = capture('mktemp -d'):gsub('\n$', '')
    fixture = capture('cd ' .. shq(fixture) .. ' && pwd -P'):gsub('\n$', '')
    assert(os.execute('mkdir -p ' .. shq(fixture .. '/sub/deeper') ..
                      ' ' .. shq(fixture .. '/empty')))
    writefile(fixture .. '/a.txt', 'a\n')
    writefile(fixture .. '/sub/b.txt', 'b\n')
    writefile(fixture .. '/sub/deeper/c.txt', 'c\n')
    assert.equal('3', shell_count(fixture))
  end)

  teardown(function()
    if fixture then os.execute('rm -rf ' .. shq(fixture)) end
  end)

  it('spawn_pwd.lua prints the exit line with code 0 and signal nil',
     function()
    local r = run('spawn_pwd.lua')
    assert_ok(r)
    assert.equal('child process exited with code 0 and signal nil\n', r.out)
  end)

  it('spawn_stdio_handlers.lua logs pwd through the stdout handler',
     function()
    local r = run('spawn_stdio_handlers.lua')
    assert_ok(r)
    assert_has(r, 'child stdout:\n' .. ROOT .. '\n')
    assert_has(r, 'child process exited with code 0 and signal nil')
    assert.equal('', r.err)
  end)

  it('spawn_find.lua lists the files of the current directory', function()
    local r = run('spawn_find.lua', { cwd = fixture })
    assert_ok(r)
    assert_has(r, 'child stdout:\n')
    for _, f in ipairs({ './a.txt', './sub/b.txt', './sub/deeper/c.txt' }) do
      assert_has(r, f .. '\n')
    end
    assert.is_nil(r.out:find('./empty', 1, true))
    assert_has(r, 'child process exited with code 0 and signal nil')
  end)

  it('spawn_find_error.lua shows find\'s stderr and exit code 1', function()
    local r = run('spawn_find_error.lua')
    assert_ok(r)
    assert_has(r, 'child stderr:\n')
    assert_has(r, 'nonexistent-childproc-demo-dir')
    assert_has(r, 'child process exited with code 1 and signal nil')
  end)

  it('stdin_wc.lua counts the lines, words and bytes piped into it',
     function()
    local r = run('stdin_wc.lua', { input = 'hello world from stdin\n' })
    assert_ok(r)
    assert(r.out:match('^child stdout:\n%s*1%s+4%s+23\n'),
           'unexpected wc output: ' .. show(r))
  end)

  it('find_wc_pipe.lua prints the same count as the shell pipeline',
     function()
    local r = run('find_wc_pipe.lua', { cwd = fixture })
    assert_ok(r)
    assert.equal('Number of files ' .. shell_count(fixture) .. '\n', r.out)
  end)

  it('exec_find_wc.lua prints the same count as the shell pipeline',
     function()
    local r = run('exec_find_wc.lua', { cwd = fixture })
    assert_ok(r)
    assert.equal('Number of files ' .. shell_count(fixture) .. '\n', r.out)
  end)

  it('shell_inherit.lua lets the shell pipeline write to our stdout',
     function()
    local r = run('shell_inherit.lua', { cwd = fixture })
    assert_ok(r)
    assert.equal(shell_count(fixture) .. '\n', r.out)
  end)

  it('shell_cwd.lua counts the files of the cwd it is given', function()
    local r = run('shell_cwd.lua', { args = { fixture } })
    assert_ok(r)
    assert.equal(shell_count(fixture) .. '\n', r.out)
  end)

  it('shell_cwd.lua counts the examples directory by default', function()
    local r = run('shell_cwd.lua')
    assert_ok(r)
    assert.equal(shell_count(EXAMPLES) .. '\n', r.out)
  end)

  it('shell_env.lua prints 42', function()
    local r = run('shell_env.lua')
    assert_ok(r)
    assert.equal('42\n', r.out)
  end)

  it('detached.lua returns while its detached child still runs', function()
    local r = run('detached.lua', { args = { '10' } })
    assert_ok(r)
    local pid = r.out:match('pid (%d+)')
    assert(pid, 'no pid printed: ' .. show(r))
    local proc = '/proc/' .. pid
    finally(function()
      -- kill only if it is still our timer.lua (the pid may be reused)
      if (readfile(proc .. '/cmdline') or ''):find('timer.lua', 1, true) then
        os.execute('kill ' .. pid)
      end
    end)
    -- The parent has exited; the child must still be there, running timer.lua
    local cmdline = readfile(proc .. '/cmdline')
    assert(cmdline, 'the detached child ' .. pid .. ' is gone: did' ..
           ' detached.lua wait for it (unref not honoured) or did' ..
           ' timer.lua fail?\n' .. show(r))
    assert.truthy(cmdline:find('timer.lua', 1, true))
    local stat = assert(readfile(proc .. '/stat'))
    local state, _, pgrp, session =
      stat:match('%) (%S) (%d+) (%d+) (%d+)')
    assert.are_not.equal('Z', state)
    assert.equal(pid, session)      -- it leads a new session...
    assert.equal(pid, pgrp)         -- ...and process group
    -- stdio = 'ignore': its fds 0-2 are /dev/null
    for fd = 0, 2 do
      local target = capture('readlink ' .. proc .. '/fd/' .. fd)
      assert.equal('/dev/null\n', target)
    end
  end)

  it('execfile.lua prints what `ls -l` prints', function()
    local r = run('execfile.lua', { cwd = fixture })
    assert_ok(r)
    assert.equal(capture('cd ' .. shq(fixture) .. ' && ls -l'), r.out)
  end)

  it('sync.lua runs spawnSync, execSync and execFileSync', function()
    local r = run('sync.lua', { cwd = fixture })
    assert_ok(r)
    assert_has(r, 'spawnSync: status 0, stdout ' .. fixture .. '\n')
    assert_has(r, 'execSync: Number of files ' .. shell_count(fixture) ..
                  '\n')
    assert_has(r, 'execFileSync: uname -s says ' .. capture('uname -s'))
    assert_has(r, 'execSync of a failing command: ok false, status 3\n')
  end)

  it('pty.lua drives an interactive shell on a terminal, resizes it', function()
    local r = run('pty.lua')
    assert_ok(r)
    assert.equal('window: 24 80 (rows cols)\nafter resize: 30 100\n' ..
                 'its terminal is in /dev/pts/\nshell exited with code 3\n', r.out)
  end)

  it('parent.lua exchanges messages with child.lua, then both end',
     function()
    local r = run('parent.lua', { args = { '3' } })
    assert_ok(r)
    assert_has(r, 'Message from parent: { hello = "world" }\n')
    local counters = {}
    for line in r.out:gmatch('Message from child [^\n]*') do
      counters[#counters + 1] = line
    end
    assert.same({
      'Message from child { counter = 0 }',
      'Message from child { counter = 1 }',
      'Message from child { counter = 2 }',
    }, counters)
    assert_has(r, 'child process exited with code 0 and signal nil\n')
  end)
end)
