-- The bulk ring of a 'lua' channel (src/serialize.c): big payloads go
-- through shared memory, the socket carries a reference.  First the ring
-- alone, both ends in this process (one memfd mapped by two decoders);
-- then through fork, where the socket's byte counts show the way taken.
local cp = require 'childproc'
local core = cp._core

local KiB, MiB = 1024, 1024 * 1024
local SIZE = 4 * MiB          -- the ring size lua/ipc.lua uses
local REF = 17                -- a reference frame: 4 + 13 bytes

-- a ring shared by a writer (side 0) and a reader (side 1), plus the fd;
-- unmapped and closed when the spec ends, whether it passes or not
local function loopback()
  local fd = assert(core.ring_new(SIZE))
  local w, r = core.decoder('lua'), core.decoder('lua')
  finally(function() w:unring(); r:unring(); core.close(fd) end)
  assert.is_true(w:ring(fd, 0))
  assert.is_true(r:ring(fd, 1))
  return w, r, fd
end

-- what core.lua_send(false, v, w) queues for the socket, as one string
local function frame(v, w)
  local t = table.pack(core.lua_send(false, v, w))
  return table.concat(t, '', 3, t.n)
end

-- the messages the reader decodes from bytes
local function read(r, bytes)
  local out = {}
  local n, err = r:feed(bytes, out)
  assert(n, err)
  return out
end

-- got holds exactly the messages of want (compared without printing
-- megabytes when they differ)
local function same(want, got)
  assert.equal(#want, #got, 'how many messages')
  for i = 1, #want do
    assert.is_true(want[i] == got[i], 'message ' .. i .. ' differs')
  end
end

-- a string of n bytes that differs from any other this spec makes
local function payload(n, tag)
  return (tag .. ('%08d'):format(n)):rep(n // 9 + 1):sub(1, n)
end

describe('the bulk ring, in one process', function()
  leakcheck()

  it('takes a payload of 64 KiB or more: the socket gets a reference', function()
    local w, r = loopback()
    for _, n in ipairs({ 64 * KiB, MiB, 2 * MiB - 64 }) do
      local v = payload(n, 'a')
      local f = frame(v, w)
      assert.equal(REF, #f)
      same({ v }, read(r, f))
    end
  end)

  it('leaves small and over-large payloads to the socket, whole', function()
    local w, r = loopback()
    for _, v in ipairs({ 'small', payload(64 * KiB - 100, 'b'), payload(3 * MiB, 'c') }) do
      local f = frame(v, w)
      assert.is_true(#f > #v, 'expected the whole frame')
      same({ v }, read(r, f))
    end
  end)

  it('sends whole through the socket while the reader is behind, then uses the ring again', function()
    local w, r = loopback()
    local v1, v2, v3 = payload(1536 * KiB, 'd'), payload(1536 * KiB, 'e'), payload(1536 * KiB, 'f')
    local f1, f2, f3 = frame(v1, w), frame(v2, w), frame(v3, w)
    -- two fit in the 4 MiB ring; the third must not overwrite the first
    assert.equal(REF, #f1)
    assert.equal(REF, #f2)
    assert.is_true(#f3 > #v3)
    same({ v1, v2, v3 }, read(r, f1 .. f2 .. f3))
    -- all read: the ring takes payloads again, round and round
    for i = 1, 12 do
      local v = payload(MiB + i * 4096, 'g' .. i)
      local f = frame(v, w)
      assert.equal(REF, #f, 'message ' .. i)
      same({ v }, read(r, f))
    end
  end)

  it('keeps order when the writer runs ahead round the ring', function()
    local w, r = loopback()
    local sent, bytes, refs, whole = {}, {}, 0, 0
    for i = 1, 40 do
      local v = i % 4 == 0 and ('small ' .. i) or payload(200 * KiB + i * 1000, 'h' .. i)
      sent[#sent + 1] = v
      bytes[#bytes + 1] = frame(v, w)
      if #v > 1000 then  -- a big one: through the ring, or whole if full
        if #bytes[#bytes] == REF then refs = refs + 1 else whole = whole + 1 end
      end
      if i % 7 == 0 then  -- the reader catches up now and then
        same({ table.unpack(sent, #sent - #bytes + 1) }, read(r, table.concat(bytes)))
        bytes = {}
      end
    end
    same({ table.unpack(sent, #sent - #bytes + 1) }, read(r, table.concat(bytes)))
    -- both ways were taken, in one order
    assert.is_true(refs > 0 and whole > 0, ('%d through the ring, %d whole'):format(refs, whole))
  end)

  it('stops writing to a ring whose tail the reader made nonsense', function()
    local w, r, fd = loopback()
    local v = payload(MiB, 'i')
    assert.equal(REF, #frame(v, w))
    -- the reader's tail of the writer's ring: far beyond what was written
    local f = assert(io.open('/proc/self/fd/' .. fd, 'r+b'))
    f:write(string.pack('<I8', 1 << 40))
    f:close()
    local whole = frame(v, w)
    assert.is_true(#whole > #v)
    same({ v }, read(r, whole))
  end)

  it('refuses a reference beyond the ring, or with no ring, as a malformed message', function()
    local _, r = loopback()
    local bad = string.pack('<I4BI8I4', 13, 11, 0, SIZE + 1)
    local n, err = r:feed(bad, {})
    assert.is_nil(n)
    assert.matches('beyond the ring', err)
    n, err = core.decoder('lua'):feed(string.pack('<I4BI8I4', 13, 11, 0, 10), {})
    assert.is_nil(n)
    assert.matches('without a ring', err)
    -- nor does the tag mean anything inside a payload
    n, err = core.decoder('lua'):feed(string.pack('<I4BBI8I4', 14, 9, 11, 0, 10), {})
    assert.is_nil(n)
    assert.matches('malformed', err)
  end)

  it('maps only a sealed memfd of a ring size', function()
    local d = core.decoder('lua')
    local f = io.tmpfile()
    f:write(('x'):rep(SIZE * 2 + 4096))
    f:flush()
    local ok, err = d:ring(core.fileno(f), 0)
    assert.is_nil(ok)
    assert.equal(22, err)  -- EINVAL
    f:close()
    assert.has_error(function() core.ring_new(1000) end)
    assert.has_error(function() core.decoder('json'):ring(0, 0) end)
  end)
end)

describe('the bulk ring between a parent and a forked child', function()
  leakcheck()

  -- bytes this thread has read with read(2) and the like (sockets too)
  local function rchar() return thread_io('rchar') end

  local function fork_child()
    local child = cp.fork(ROOT .. '/spec/fixtures/fork_ring.lua')
    local box = {}
    child:on('message', function(m) box[#box + 1] = m end)
    return child, box
  end

  local function done(child)
    child:disconnect()
    wait_close(child)
  end

  it('moves a 1 MiB message each way without the socket carrying it', function()
    local child, box = fork_child()
    child:send('big')
    local before = rchar()
    run_until(function() return #box == 1 end, 10000, 'the big message')
    local got = rchar() - before
    assert.equal(MiB, #box[1])
    assert.is_true(got < 64 * KiB, ('the parent read %d bytes'):format(got))
    child:send({ op = 'measure', data = ('s'):rep(MiB) })
    run_until(function() return #box == 2 end, 10000, 'the report')
    assert.equal(MiB, box[2].size)
    assert.is_true(box[2].read < 64 * KiB, ('the child read %d bytes'):format(box[2].read))
    done(child)
  end)

  it('keeps order and every byte while the rings fill up, both ways', function()
    local child, box = fork_child()
    local list, total = {}, 0
    for i = 1, 24 do
      list[i] = i % 5 == 0 and i or payload(100 * KiB * i, 'j' .. i)
      total = total + (type(list[i]) == 'string' and #list[i] or 0)
    end
    local before = rchar()
    for i = 1, #list do child:send(list[i]) end  -- at once: the ring fills
    run_until(function() return #box == #list end, 30000, 'the echoes')
    local got = rchar() - before
    for i = 1, #list do
      assert.is_true(box[i] == list[i], 'message ' .. i)
    end
    -- the echoes came partly through the ring: the socket carried less
    assert.is_true(got < total, ('the parent read %d of %d bytes'):format(got, total))
    done(child)
  end)
end)
