-- fuzz/gen_corpus.lua: writes the seed corpora of fuzz_lua (payloads),
-- fuzz_json (lines) and fuzz_frame (fuzz/fuzz_frame.c: a byte choosing
-- the format, 1 for 'json' and 0x80 for a 'lua' payload given its header,
-- a slicing byte, then the bytes; named lua-* and json-*).
-- Run from the repository root once the module builds:
--   lua5.4 fuzz/gen_corpus.lua
local core = require('childproc.internal').core

-- pairs in name order, so the files do not change from run to run
local function sorted(t)
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  local i = 0
  return function()
    i = i + 1
    return names[i], t[names[i]]
  end
end

local function put(dir, name, bytes)
  local f = assert(io.open(('fuzz/corpus/%s/%s'):format(dir, name), 'wb'))
  f:write(bytes)
  f:close()
end

-- a frame seed: kind 'lua' or 'json' ('lua' with the slicing byte's high
-- bit: a payload, fuzz_frame adds the header), and for 'json' the line
-- alone for fuzz_json too
local function write(kind, name, slicing, bytes)
  local k = kind == 'json' and 1 or slicing >= 128 and 0x80 or 0
  put('frame', kind .. '-' .. name, string.char(k, slicing) .. bytes)
  if kind == 'json' then put('json', name, bytes) end
end

local shared = {x = 1}
local cyc = {1, 2}
cyc.self = cyc
local lua_seeds = {
  scalars = {true, false, 0, -1, 127, 128, -129, 70000, math.mininteger,
             math.maxinteger, 3.0, -0.0, 1/0, -1/0, 0/0, 0.1},
  strings = {'', 'a\0b', ('x'):rep(300), 'caf\xc3\xa9'},
  nested = {a = {b = {c = {d = {'deep'}}}}, [1] = {}, [2.5] = 'f'},
  shared = {shared, shared, s = shared},
  cycle = cyc,
  tablekey = {[{}] = 1, [shared] = shared},
  mixed = {1, 2, 3, nil, 5, n = 5, [-1] = true},
}
local i = 0
for name, v in sorted(lua_seeds) do
  i = i + 1
  write('lua', name, (i * 37) % 128, core.lua_encode(v))
  -- high bit: fuzz_frame.c adds the header itself, so mutations of the
  -- payload keep a frame whose length is right
  write('lua', name .. '-payload', 128 + (i * 37) % 128,
        core.lua_encode(v):sub(5))
  put('lua', name, core.lua_encode(v):sub(5))
end
-- payloads at the format's edges: a table cut short, trailing bytes, a
-- reference to a table not yet seen, a handle's tag, a ring's marker
put('lua', 'badtag', '\9\0')
put('lua', 'trailing', '\1\1')
put('lua', 'badref', '\9\1\0\0\0\0\0\0\0\10\2\0\0\0')
put('lua', 'handle', '\11\7\1x')
put('lua', 'mark', '\12')
-- several frames in one input, sliced byte by byte
write('lua', 'frames', 1, core.lua_encode(1) .. core.lua_encode({'a'}) ..
  core.lua_encode('z'))
-- regressions of the format's edges: bad tag, truncated, trailing bytes
write('lua', 'badtag', 0, '\2\0\0\0\9\0')
write('lua', 'truncated', 0, core.lua_encode({1, 2, 3}):sub(1, -2))
write('lua', 'trailing', 0, '\2\0\0\0\1\1')
write('lua', 'badref', 0, '\14\0\0\0\9\1\0\0\0\0\0\0\0\10\2\0\0\0')
-- the rings (fuzz_peer in fuzz/fuzz_frame.c): the bytes also go into a
-- peer's ring from its tail on, the last 4 (u16 a, b) setting tail and
-- head: tail at offset a % 4096, a >> 12 the head's mode (0: all the
-- bytes, 10: b past the tail, 12: behind it, 13: all, and a nonsense
-- tail of the reader's own ring)
local function peer(a, b) return string.pack('<I2I2', a, b) end
local e = core.lua_encode
-- fewer than 4 bytes before the ring's end: skipped, the frames at its start
write('lua', 'ring-wrap', 0, 'xx' .. e(1) .. e({'a'}) .. e(('y'):rep(300)) ..
  peer(4094, 0))
-- a frame, then padding to the ring's start (3 bytes more of it), a frame
local one, two = e('one'), e({ring = 'pad'})
write('lua', 'ring-pad', 0, one .. string.pack('<I4', 0xFFFFFFFF) .. 'ppp' ..
  two .. peer(4096 - #one - 4 - 3, 0))
-- frames longer than the ring: streamed through the writer's ring
write('lua', 'ring-long', 0, e(('z'):rep(5000)) .. e(('w'):rep(9000)) ..
  e('after'))
-- the writer's ring full (the reader takes after every 4 values: b = 3):
-- 'x' ends where 1500 bytes were taken; a and b wrap, padding between;
-- c fits neither before the end nor after the padding: it waits
local function str(n, c) return e((c):rep(n - 9)) end
write('lua', 'ring-full', 0, e('w1') .. e('w2') .. e('w3') .. str(1476, 'x') ..
  str(2000, 'a') .. str(1000, 'b') .. str(3200, 'c') .. peer(0, 3))
-- a head past the ring, one behind the tail, a nonsense tail of ours
write('lua', 'ring-past', 0, e('x') .. peer(10 << 12 | 100, 4100))
write('lua', 'ring-behind', 0, e('x') .. peer(12 << 12 | 100, 5))
write('lua', 'ring-wtail', 0, e('x') .. peer(13 << 12 | 100, 1))

local json_seeds = {
  object = '{"a":1,"b":[true,false,null],"c":{"d":"e"}}\n',
  array = '[1,-2,3.5,1e300,-0,12345678901234567890,9223372036854775807]\n',
  strings = '"\\u00e9\\ud83d\\ude00\\ud800\\n\\t\\"\\\\\\/ caf\xc3\xa9"\n',
  crlf = '{"x":[]}\r\n\r\n{}\n',
  nested = ('['):rep(50) .. (']'):rep(50) .. '\n',
  literals = 'true\nfalse\nnull\n0\n-1.5e-7\n',
  node = '{"cmd":"NODE_HANDLE_ACK"}\n{"counter":3}\n',
  bad = '{"a":}\n',
  badutf8 = '"\xff"\n',
  spaces = ' [ 1 , { "k" : [ ] } ] \n',
}
i = 0
for name, s in sorted(json_seeds) do
  i = i + 1
  write('json', name, (i * 41) % 256, s)
end
write('json', 'encoded', 2, core.json_encode({1, 'two', {three = 3.0},
  core.json_null, 1/0}))
write('json', 'bytewise', 1, '{"a":"b"}\n[1]\n')
