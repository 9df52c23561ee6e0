-- spec/codec_spec.lua: the two message codecs of the IPC channel
-- (src/lua_encode.c, src/lua_decode.c, src/json.c) and their framing
-- (src/frame.c), through the module's internal table.
local core = core()

local MAX_DEPTH = 200

-- Feeds bytes (a string, or a list of chunks) to a new decoder.
-- Returns the feed results of the last chunk and the list of values.
local function feed_all(kind, chunks, max)
  if type(chunks) == 'string' then chunks = {chunks} end
  local dec = core.decoder(kind, max)
  local got, out = {}, {}
  local n, err, m
  for _, c in ipairs(chunks) do
    n, err, m = dec:feed(c, out)
    for i = 1, n or m do got[#got + 1] = out[i] end
    if not n then break end
  end
  return got, n, err, dec
end

local function lua_rt(v)
  local got, n, err = feed_all('lua', core.lua_encode(v))
  assert.equal(1, n, err)
  return got[1]
end

local function json_rt(v)
  local got, n, err = feed_all('json', core.json_encode(v))
  assert.equal(1, n, err)
  return got[1]
end

-- A frame with the given payload, for hand-made (bad) messages
local function frame(payload)
  return string.pack('<s4', payload)
end

local function nest(depth)
  local root = {}
  local t = root
  for _ = 2, depth do
    t[1] = {}
    t = t[1]
  end
  return root
end

local function bytes(from, to)
  local t = {}
  for i = from, to do t[#t + 1] = string.char(i % 256) end
  return table.concat(t)
end

describe("'lua' serialization", function()
  only_if(INTEGERS, 'its numbers are doubles: spec/versions_spec.lua')('round-trips booleans and integers, all 64 bits', function()
    for _, v in ipairs{true, false, 0, 1, -1, 127, 128, -128, -129,
                       math.floor(2^31) - 1, math.floor(2^31), -math.floor(2^31), -math.floor(2^31) - 1,
                       math.maxinteger, math.mininteger} do
      local r = lua_rt(v)
      assert.equal(v, r)
      assert.equal(math.type(v), math.type(r))
    end
  end)

  it('keeps floats bit for bit, and a float stays a float', function()
    local r = lua_rt(3.0)
    if INTEGERS then assert.equal('float', math.type(r)) end
    assert.equal(3.0, r)
    assert.equal(-math.huge, 1 / lua_rt(-0.0))
    assert.equal(math.huge, lua_rt(math.huge))
    assert.equal(-math.huge, lua_rt(-math.huge))
    local nan = lua_rt(0 / 0)
    assert.is_true(nan ~= nan)
    for _, x in ipairs{0.1, 1e-310, 1e308, math.pi, -2.5} do
      assert.equal(x, lua_rt(x))
    end
  end)

  it('keeps binary strings, NULs included, of any size', function()
    local all = bytes(0, 255)
    assert.equal(all, lua_rt(all))
    assert.equal('', lua_rt(''))
    assert.equal('a\0b\0', lua_rt('a\0b\0'))
    local big = ('\0\1\2\3xyz\255'):rep(128 * 1024)  -- 1 MiB
    assert.equal(big, lua_rt(big))
  end)

  it('round-trips nested tables with any key types', function()
    local r = lua_rt({1, 2, 'three', n = {m = {o = {true}}}, [2.5] = 'f',
                      [true] = false, [-7] = 'neg', [10] = 'gap'})
    assert.same({1, 2, 'three', n = {m = {o = {true}}}, [2.5] = 'f',
                 [true] = false, [-7] = 'neg', [10] = 'gap'}, r)
  end)

  it('keeps shared references and cycles', function()
    local shared = {x = 1}
    local t = {a = shared, b = shared, list = {shared}}
    t.self = t
    t.list.up = t
    local r = lua_rt(t)
    assert.is_true(rawequal(r.a, r.b))
    assert.is_true(rawequal(r.a, r.list[1]))
    assert.is_true(rawequal(r, r.self))
    assert.is_true(rawequal(r, r.list.up))
    assert.equal(1, r.a.x)
  end)

  it('keeps tables used as keys', function()
    local k = {name = 'key'}
    local r = lua_rt({[k] = k, other = k})
    local key = next(r, nil)
    if key == 'other' then key = next(r, key) end
    assert.equal('key', key.name)
    assert.is_true(rawequal(r[key], key))
    assert.is_true(rawequal(r.other, key))
  end)

  it('sends raw fields only, without metatables', function()
    local mt = {__index = function() error('no __index') end,
                __pairs = function() error('no __pairs') end}
    local r = lua_rt(setmetatable({a = 1, 2}, mt))
    assert.is_nil(getmetatable(r))
    assert.same({2, a = 1}, r)
  end)

  it('refuses what cannot be sent, saying where', function()
    local cases = {
      {print, '^cannot send a function$'},
      {io.stdout, '^cannot send a userdata$'},
      {coroutine.create(function() end), '^cannot send a thread$'},
      {nil, '^cannot send a nil$'},
      {{a = {b = {print}}}, '^cannot send a function %(at msg%.a%.b%[1%]%)$'},
      {{[print] = 1}, '^cannot send a function %(at msg%[<key>%]%)$'},
      {{['not a name'] = io.stdout},
       '^cannot send a userdata %(at msg%["not a name"%]%)$'},
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(core.lua_encode, c[1])
      assert.is_false(ok)
      assert.matches(c[2], err)
    end
  end)

  it('refuses nesting deeper than ' .. MAX_DEPTH, function()
    assert.is_table(lua_rt(nest(MAX_DEPTH)))
    local ok, err = pcall(core.lua_encode, nest(MAX_DEPTH + 1))
    assert.is_false(ok)
    assert.equal('excessive nesting (200)', err)
    -- and the decoder refuses a frame made by hand that nests deeper
    local payload = ('\9\1\0\0\0\0\0\0\0'):rep(MAX_DEPTH) ..
                    '\9\0\0\0\0\0\0\0\0'
    local got, n, e = feed_all('lua', frame(payload))
    assert.same({}, got)
    assert.is_nil(n)
    assert.equal('excessive nesting (200)', e)
  end)

  it('frames: 4-byte little-endian length, then the payload', function()
    local f = core.lua_encode('abc')
    local len = string.unpack('<I4', f)
    assert.equal(#f - 4, len)
  end)

  it('decodes a stream fed byte by byte, and several frames at once',
     function()
    local vals = {1, 'two', {3, {4}}, 5.5, false}
    local parts = {}
    for i, v in ipairs(vals) do parts[i] = core.lua_encode(v) end
    local stream = table.concat(parts)
    local chunks = {}
    for i = 1, #stream do chunks[i] = stream:sub(i, i) end
    for _, c in ipairs{chunks, {stream}} do
      local got, n, err = feed_all('lua', c)
      assert.is_not_nil(n, err)
      assert.same(vals, got)
    end
  end)

  it('keeps a partial frame pending', function()
    local f = core.lua_encode(('x'):rep(100))
    local dec, out = core.decoder('lua'), {}
    assert.equal(0, dec:feed(f:sub(1, 50), out))
    assert.equal(50, dec:pending())
    assert.equal(1, dec:feed(f:sub(51) .. f:sub(1, 3), out))
    assert.equal(('x'):rep(100), out[1])
    assert.equal(3, dec:pending())
  end)

  it('answers nil, msg to bad frames, and stays dead', function()
    local bad = {
      frame('\99'),                              -- bad type tag
      frame('\1\1'),                             -- trailing bytes
      frame('\8\255\255\255\255'),               -- string beyond payload
      frame('\4\1\2'),                           -- truncated integer
      frame('\10\1\0\0\0'),                      -- bad back-reference
      frame('\9\0\0\0\0\1\0\0\0\6' .. string.pack('<d', 0 / 0) .. '\1'),
      frame('\9\255\255\255\0\0\0\0\0'),         -- array beyond payload
      frame(''),                                 -- no value
    }
    for _, f in ipairs(bad) do
      local dec, out = core.decoder('lua', 1000), {}
      local n, err = dec:feed(f, out)
      assert.is_nil(n)
      assert.is_string(err)
      local n2, err2 = dec:feed(core.lua_encode(1), out)
      assert.is_nil(n2)
      assert.equal(err, err2)
    end
  end)

  it('delivers the messages that came before a bad frame', function()
    local dec, out = core.decoder('lua'), {}
    local n, err, m = dec:feed(core.lua_encode('ok') .. frame('\99'), out)
    assert.is_nil(n)
    assert.matches('bad type tag', err)
    assert.equal(1, m)
    assert.equal('ok', out[1])
  end)

  it('refuses an oversized frame from its header alone', function()
    local dec = core.decoder('lua', 1000)
    local n, err = dec:feed(string.pack('<I4', 0xffffffff), {})
    assert.is_nil(n)
    assert.matches('exceeds the limit of 1000 bytes', err)
    assert.equal(0, dec:pending())
    -- at the limit is fine
    local f = core.lua_encode(('y'):rep(995))
    assert.equal(1000, #f - 4)
    assert.equal(1, core.decoder('lua', 1000):feed(f, {}))
  end)
end)

describe("'json' serialization", function()
  it('writes arrays, objects and scalars as JSON.stringify does', function()
    assert.equal('[1,2,3]\n', core.json_encode({1, 2, 3}))
    assert.equal('{}\n', core.json_encode({}))
    assert.equal('{"a":[true,false,null]}\n',
                 core.json_encode({a = {true, false, core.json_null}}))
    assert.equal('"s"\n', core.json_encode('s'))
    assert.equal('null\n', core.json_encode(core.json_null))
    if INTEGERS then
      assert.equal('9223372036854775807\n', core.json_encode(math.maxinteger))
    end
    assert.equal('[null,null,null]\n',
                 core.json_encode({0 / 0, math.huge, -math.huge}))
    assert.equal(INTEGERS and '[0.1,3.0,-0.0,1e+300]\n' or '[0.1,3,-0.0,1e+300]\n',
                 core.json_encode({0.1, 3.0, -NEGZ, 1e300}))
  end)

  it('writes non-sequences as objects, number keys as text', function()
    local r = json_rt({[1] = 'a', [3] = 'c', [2.5] = 'f'})
    assert.same({['1'] = 'a', ['3'] = 'c', ['2.5'] = 'f'}, r)
    assert.same({['0'] = 0}, json_rt({[0] = 0}))
  end)

  it('escapes what JSON needs and never writes a raw newline', function()
    local raw = '"\\\n\r\t\b\f\0\31/\127é'
    local s = core.json_encode(raw)
    assert.equal('"\\"\\\\\\n\\r\\t\\b\\f\\u0000\\u001f/\127é"\n', s)
    assert.equal('\n', s:match('\n.*'))
    assert.equal(raw, json_rt(raw))
  end)

  it('refuses strings that are not valid UTF-8', function()
    for _, bad in ipairs{'\255', '\192\128', '\237\160\128', 'ab\226\130',
                         '\244\144\128\128'} do
      local ok, err = pcall(core.json_encode, {k = bad})
      assert.is_false(ok)
      assert.matches('not valid UTF%-8', err)
    end
    assert.equal('\244\143\191\191', json_rt('\244\143\191\191'))
  end)

  it('refuses cycles, but writes shared tables twice', function()
    local t = {}
    t.a = {t}
    local ok, err = pcall(core.json_encode, t)
    assert.is_false(ok)
    assert.matches('^cycle in message', err)
    local s = {1}
    assert.equal('[[1],[1]]\n', core.json_encode({s, s}))
  end)

  it('refuses functions, odd keys and excessive nesting', function()
    assert.is_false(pcall(core.json_encode, {f = print}))
    assert.is_false(pcall(core.json_encode, {[true] = 1}))
    assert.is_false(pcall(core.json_encode, coroutine.create(function() end)))
    assert.is_table(json_rt(nest(MAX_DEPTH)))
    local ok, err = pcall(core.json_encode, nest(MAX_DEPTH + 1))
    assert.is_false(ok)
    assert.equal('excessive nesting (200)', err)
    local _, n, e = feed_all('json', ('['):rep(201) .. (']'):rep(201) .. '\n')
    assert.is_nil(n)
    assert.equal('excessive nesting (200)', e)
  end)

  only_if(INTEGERS, 'its numbers are doubles: spec/versions_spec.lua')('decodes objects, arrays, nulls and numbers', function()
    local got, n, err = feed_all('json',
      '{"a":[1,null,-2.5,{"x":null}],"b":{"c":"d"},"i":-9223372036854775808,'
      .. '"big":12345678901234567890,"z":-0,"e":1E2}\n')
    assert.equal(1, n, err)
    local v = got[1]
    assert.equal(4, #v.a)
    assert.equal(core.json_null, v.a[2])
    assert.same({}, v.a[4])
    assert.equal('d', v.b.c)
    assert.equal(math.mininteger, v.i)
    assert.equal('float', math.type(v.big))
    assert.equal(-math.huge, 1 / v.z)
    assert.equal('float', math.type(v.e))
    assert.equal(100, v.e)
    assert.equal(core.json_null, feed_all('json', 'null\n')[1])
  end)

  it('unescapes \\u escapes and surrogate pairs to UTF-8', function()
    local got = feed_all('json', '"\\u00e9\\u20AC\\ud83d\\ude00\\ud800x\\/"\n')
    assert.equal('é€😀\239\191\189x/', got[1])
  end)

  it('takes lines split across feeds, CRLF and empty lines', function()
    local got, n = feed_all('json', {'{"a"', ':1}\r', '\n\n\r\n[2', ',3]\n4',
                                     '\n'})
    assert.equal(1, n)
    assert.same({{a = 1}, {2, 3}, 4}, got)
  end)

  it('answers nil, msg to bad lines, and stays dead', function()
    for _, line in ipairs{'{', '[1,]', '{"a" 1}', 'tru', '01', '1.', '-',
                          '"\255"', '"a\tb"', '"\\x"', '[1] x', ' ',
                          '{"a":1,}', 'NaN'} do
      local dec = core.decoder('json')
      local n, err = dec:feed(line .. '\n', {})
      assert.is_nil(n, line)
      assert.matches('^malformed JSON message', err)
      local n2, err2 = dec:feed('1\n', {})
      assert.is_nil(n2)
      assert.equal(err, err2)
    end
  end)

  it('refuses a line longer than the limit, newline or not', function()
    local dec = core.decoder('json', 10)
    assert.equal(0, dec:feed('"123456', {}))
    local n, err = dec:feed('7890', {})
    assert.is_nil(n)
    assert.matches('line longer than the limit of 10 bytes', err)
    local _, n2 = feed_all('json', '"1234567890"\n', 10)
    assert.is_nil(n2)
  end)

  it('agrees with Node when node is installed', function()
    if not os.execute('node --version >/dev/null 2>&1') then
      return pending('node is not installed')
    end
    local msg = {a = {1, 2.5, 'é\n😀', core.json_null}, b = {c = true},
                 n = -3, f = 3.0, h = 1 / 0}
    local name = os.tmpname()
    local f = assert(io.open(name, 'wb'))
    f:write(core.json_encode(msg))
    f:close()
    local p = assert(io.popen(
      "node -e 'const fs = require(\"fs\");" ..
      " for (const l of fs.readFileSync(process.argv[1], \"utf8\")" ..
      ".split(\"\\n\")) if (l) process.stdout.write(" ..
      "JSON.stringify(JSON.parse(l)) + \"\\n\")' " .. name))
    local line = p:read('*a')
    p:close()
    os.remove(name)
    local got, n, err = feed_all('json', line)
    assert.equal(1, n, err)
    msg.f = 3  -- Node has no integer/float distinction
    msg.h = nil  -- inf is null, and a null member is an absent key
    assert.same(msg, got[1])
  end)
end)

describe('the decoders on the fuzz corpus', function()
  it('answer every seed and regression without raising', function()
    -- fuzz_frame's inputs: a byte for the format (bit 0: 'json'), a
    -- slicing byte, the bytes
    local p = io.popen('ls fuzz/corpus/frame 2>/dev/null')
    local seen = 0
    for name in p:lines() do
      local f = assert(io.open('fuzz/corpus/frame/' .. name, 'rb'))
      local data = f:read('*a')
      f:close()
      local kind = data:byte(1) % 2 == 1 and 'json' or 'lua'
      local dec = core.decoder(kind, 1048576)
      local n, err = dec:feed(data:sub(3), {})
      assert.is_true(n ~= nil or type(err) == 'string')
      seen = seen + 1
    end
    p:close()
    assert.is_true(seen > 0)
  end)
end)
