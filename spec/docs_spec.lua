-- The reference in docs/ names every function the module exports.
local cp = require 'childproc'

local function docs_text()
  local parts = {}
  local p = io.popen('ls docs/*.md')
  for name in p:lines() do
    parts[#parts + 1] = readfile(name)
  end
  p:close()  -- (reaps the shell: LuaJIT's collector may be late to)
  return table.concat(parts, '\n')
end

describe('docs/', function()
  local text = docs_text()

  it('documents every function of the module table', function()
    local missing = {}
    for k, v in pairs(cp) do
      if type(v) == 'function' and k:sub(1, 1) ~= '_'
          and not text:find('cp.' .. k, 1, true) then
        missing[#missing + 1] = 'cp.' .. k
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it('documents every method of the objects users get', function()
    local child = cp.spawn('true')
    local objects = {
      ChildProcess = child, Readable = child.stdout, Writable = child.stdin,
      Timer = cp.setTimeout(function() end, 1),
    }
    local names = {
      ChildProcess = { 'on', 'once', 'off', 'kill', 'ref', 'unref', 'wait' },
      Readable = { 'pause', 'resume', 'pipe', 'unpipe', 'destroy', 'fileno' },
      Writable = { 'write', 'close', 'destroy', 'fileno' },
      Timer = { 'ref', 'unref', 'close' },
    }
    local missing = {}
    for class, list in pairs(names) do
      for _, m in ipairs(list) do
        assert.is_function(objects[class][m], class .. ':' .. m)
        if not text:find(m .. '(', 1, true) then
          missing[#missing + 1] = class .. ':' .. m
        end
      end
    end
    assert.same({}, missing)
    child:wait()
    objects.Timer:close()
  end)
end)
