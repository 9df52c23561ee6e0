-- The reference in docs/ names every method of every object users get
-- (the module table's names: spec/module_spec.lua).
local cp = require 'childproc'

describe('docs/', function()
  leakcheck()
  local text = docs_text()

  -- the methods of obj's class, as obj finds them: core.class (src/object.c)
  -- keeps the class's table as the first upvalue of the metatable's
  -- __index, a C function, so from outside it is reached through the
  -- debug library; a table __index is the table; a table the methods
  -- fall back to (their metatable's table __index) counts too
  local function methods_of(obj)
    local idx = getmetatable(obj).__index
    local t = idx
    if type(idx) == 'function' then t = select(2, debug.getupvalue(idx, 1)) end
    assert.is_table(t, tostring(obj) .. ': no methods table')
    local names = {}
    while type(t) == 'table' do
      for k, v in pairs(t) do
        if type(k) == 'string' and type(v) == 'function' then
          assert.equal(v, obj[k], tostring(obj) .. ':' .. k .. ' is not what the object finds')
          names[k] = true
        end
      end
      local mt = getmetatable(t)
      t = mt and mt.__index
    end
    return names
  end

  -- name( as a word of the docs (so 'end(' is not found in 'send(')
  local function documented(name)
    return ('\n' .. text):find('[^%w_]' .. name:gsub('%p', '%%%0') .. '%(') ~= nil
  end

  -- (5.1's debug.getupvalue does not read a C function's upvalues: the
  -- docs are the same on every Lua, the other four look)
  local reach = select(2, debug.getupvalue(getmetatable(cp.loop).__index, 1)) ~= nil
  only_if(reach, "debug.getupvalue cannot reach core.class's methods table")(
      'documents every method of the objects users get', function()
    -- one object of each class a user meets, made as a user makes them
    local child = cp.spawn('cat')
    local forked = cp.fork(ROOT .. '/spec/fixtures/handle_peer.lua')
    local ptychild = cp.spawn('cat', {}, { pty = true })
    local objects = {
      { 'ChildProcess (spawn)', child }, { 'ChildProcess (fork)', forked },
      { 'ChildProcess (pty)', ptychild }, { 'Readable', child.stdout },
      { 'Readable (pty)', ptychild.stdout }, { 'Writable', child.stdin },
      { 'Writable (pty)', ptychild.stdin },
      { 'Timer', cp.setTimeout(function() end, 1000) },
      { 'Timer (immediate)', cp.setImmediate(function() end) },
      { 'Watcher', cp.watch(child.stdout, 'r', function() end) },
      { 'Loop', cp.loop }, { 'Process', cp.process },
    }
    -- a Handle (a pipe's end the forked peer sends back) and its stream
    local handle
    forked:on('message', function(_, h) if h then handle = h:keep() end end)
    local r = cp.spawn('true', {}, { stdio = { 'ignore', 'pipe', 'ignore' } })
    finally(function()
      for _, o in ipairs(objects) do
        if o[1]:match('^Timer') then o[2]:close() end
        if o[1] == 'Watcher' then o[2]:stop() end
      end
      if handle then handle:stream():destroy() end
      child.stdin:close()
      ptychild:kill('SIGKILL')
      forked:disconnect()
      for _, c in ipairs({ child, forked, ptychild, r }) do c:wait() end
    end)
    forked:send({ op = 'back' }, r.stdout)
    run_until(function() return handle ~= nil end, 10000, 'the handle back')
    objects[#objects + 1] = { 'Handle', handle }
    objects[#objects + 1] = { 'Duplex', handle:stream() }

    local missing, classes = {}, {}
    for _, o in ipairs(objects) do
      local mt = getmetatable(o[2])
      assert.is_table(mt, o[1])
      assert.matches('^childproc%.', mt.__name, 1, false, o[1])
      classes[mt.__name] = true
      for name in pairs(methods_of(o[2])) do
        if name:sub(1, 1) ~= '_' and not documented(name) then
          missing[mt.__name .. ':' .. name] = true
        end
      end
    end
    local list = {}
    for k in pairs(missing) do list[#list + 1] = k end
    table.sort(list)
    assert.same({}, list)
    -- every class a user gets was looked at
    for _, name in ipairs({ 'ChildProcess', 'Readable', 'Writable', 'Timer', 'Watcher',
                            'Loop', 'Process', 'Handle', 'Duplex' }) do
      assert.is_true(classes['childproc.' .. name], name)
    end
  end)
end)
