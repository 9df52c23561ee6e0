-- The rings of a 'lua' channel (src/ring.c): once mapped, every
-- frame of the channel goes through its writer's ring in shared memory,
-- none through the socket (which then only tells of the peer's end).
-- First the rings alone, both ends in this process (one memfd mapped by
-- two decoders, each with the other's doorbell); then through fork,
-- where the bytes the processes read(2) show the way taken.
local cp = require 'childproc'
local core = core()

local KiB, MiB = 1024, 1024 * 1024
local SIZE = 4 * MiB          -- the ring size lua/ipc_stdio.lua uses
local HDR = 4096              -- the header before the rings
local PAD = 0xFFFFFFFF        -- a frame length that says: go to the start
local ONE = string.pack('<I8', 1)  -- an eventfd read after one ring

-- what the spec's loopbacks need undone (busted keeps one finally per
-- spec: this one undoes them all)
local opened = {}
local function cleanup()
  for i = #opened, 1, -1 do
    opened[i]()
    opened[i] = nil
  end
end

-- a ring shared by a writer `w` (side 0, ringing the reader's bell rb)
-- and a reader `r` (side 1, ringing the writer's bell wb) whose limit is
-- max; unmapped and closed when the spec ends, whether it passes or not
local function loopback(max)
  local fd = assert(core.ring_new(SIZE))
  local wb, rb = assert(core.eventfd()), assert(core.eventfd())
  local w, r = core.decoder('lua'), core.decoder('lua', max)
  opened[#opened + 1] = function()
    w:unring(); r:unring()
    core.close(fd); core.close(wb); core.close(rb)
  end
  finally(cleanup)
  assert.is_true(w:ring(fd, 0, rb))
  assert.is_true(r:ring(fd, 1, wb))
  return w, r, fd, wb, rb
end

-- the whole frame of v, as core.lua_send(false, v, w) gives it (its
-- pieces joined: a long string of v comes as a piece of its own)
local function frame(v, w)
  local st, off, f = core.lua_send(false, v, w)
  assert(st == 0 and off == 0)
  if type(f) == 'table' then f = table.concat(f) end
  assert(type(f) == 'string')
  return f
end

-- the length of what core.lua_send left to write: a string, or the
-- pieces of a frame holding long strings by reference (n: their length)
local function flen(f) return type(f) == 'table' and f.n or #f end

-- the messages the reader takes from the writer's ring now
local function take(r)
  local out = {}
  local n, err = r:take(out)
  assert(n, err)
  assert.equal(n, #out)
  return out
end

-- the memfd's bytes [at, at + n), and writing over them, through a file
-- of our own (the rings' memory as the peer process would see it)
local function peek(fd, at, n)
  local f = assert(io.open('/proc/self/fd/' .. fd, 'rb'))
  f:seek('set', at)
  local s = f:read(n)
  f:close()
  return s
end

local function poke(fd, at, bytes)
  local f = assert(io.open('/proc/self/fd/' .. fd, 'r+b'))
  f:seek('set', at)
  f:write(bytes)
  f:close()
end

-- head (written up to) and tail (read up to) of ring 0, the writer's
local function head(fd) return (string.unpack('<I8', peek(fd, 64, 8))) end
local function tail(fd) return (string.unpack('<I8', peek(fd, 0, 8))) end

-- got holds exactly the messages of want (compared without printing
-- megabytes when they differ)
local function same(want, got)
  assert.equal(#want, #got, 'how many messages')
  for i = 1, #want do
    if type(want[i]) == 'table' then assert.same(want[i], got[i])
    else assert.is_true(want[i] == got[i], 'message ' .. i .. ' differs') end
  end
end

-- a string of n bytes that differs from any other this spec makes
local function payload(n, tag)
  return (tag .. ('%08d'):format(n)):rep(math.floor(n / 9) + 1):sub(1, n)
end

describe('the rings, in one process', function()
  leakcheck()

  it('takes frames of every size whole, one after the other in the ring', function()
    local w, r, fd = loopback()
    -- the exactly fitting one first: it needs the whole ring, from its start
    local values = { payload(SIZE - 9, 'a'), { 1, 'two', { three = 3.5 } },
                     'small', payload(64 * KiB, 'b'), payload(MiB, 'c') }
    assert.equal(SIZE, #frame(values[1], w))
    for i, v in ipairs(values) do
      local f, at = frame(v, w), head(fd)
      local st, off, piece = core.lua_send(fd, v, w)
      assert.equal(#f, st, 'message ' .. i)
      assert.equal(0, off)
      assert.is_nil(piece)
      -- in one piece, just before the new head (where the old one was,
      -- or at the ring's start: see the padding spec below)
      local now = head(fd)
      assert.is_true(now - #f >= at and (now - #f) % SIZE + #f <= SIZE,
        ('message %d: head %d -> %d'):format(i, at, now))
      assert.is_true(peek(fd, HDR + (now - #f) % SIZE, #f) == f, 'the bytes of message ' .. i)
      same({ v }, take(r))
      assert.equal(now, tail(fd))
    end
  end)

  it('streams a frame longer than the ring, across its end, as the reader takes', function()
    local w, r, fd = loopback()
    local v = payload(10 * MiB, 'e')
    local f = frame(v, w)
    -- a small one left unread: the long one begins mid-ring and wraps
    assert.equal(11, (core.lua_send(fd, 'small', w)))
    local st, off, piece = core.lua_send(fd, v, w)
    assert.equal(SIZE - 11, st)
    assert.equal(st, off)
    assert.is_true(table.concat(piece) == f, 'the pieces are the whole frame')
    assert.is_false(w:put(piece, off))  -- full: the reader is behind
    same({ 'small' }, take(r))
    local got, puts = {}, 0
    while off < flen(piece) do
      local n = w:put(piece, off)
      assert.is_true(mtype(n) == 'integer' and n > 0, 'put took nothing')
      off, puts = off + n, puts + 1
      local out = take(r)
      if off < flen(piece) then assert.equal(0, #out, 'a message before its end') end
      for _, m in ipairs(out) do got[#got + 1] = m end
    end
    assert.equal(2, puts)  -- 10 MiB: one ring's worth at a time
    same({ v }, got)
    assert.equal(11 + #f, head(fd))
    assert.equal(11 + #f, tail(fd))
  end)

  it('keeps order when the writer runs ahead round the ring', function()
    local w, r, fd = loopback()
    -- the writer's queue, as lua/ipc.lua keeps it: {frame, bytes written}
    local queue, sent, got, at_once, waited = {}, {}, {}, 0, 0
    local function flush()
      while queue[1] do
        local q = queue[1]
        local n = w:put(q[1], q[2])
        assert.is_not_nil(n, 'the ring broke')
        if not n then return end
        q[2] = q[2] + n
        if q[2] < #q[1] then return end
        table.remove(queue, 1)
      end
    end
    local function read()
      for _, m in ipairs(take(r)) do got[#got + 1] = m end
    end
    for i = 1, 40 do
      flush()
      local v = i % 4 == 0 and ('small ' .. i)
        or payload(200 * KiB + (i * 7919) % 1336 * KiB, 'h' .. i)
      sent[i] = v
      if queue[1] then  -- behind what waits: only encoded
        queue[#queue + 1] = { frame(v, w), 0 }
        waited = waited + 1
      else
        local st, off, piece = core.lua_send(fd, v, w)
        assert.is_true(st >= 0, 'status ' .. st)
        if piece then
          queue[1] = { piece, off }
          waited = waited + 1
        else
          at_once = at_once + 1
        end
      end
      if i % 6 == 0 then read() end  -- the reader catches up now and then
    end
    for _ = 1, 100 do
      if not queue[1] and #got == #sent then break end
      flush()
      read()
    end
    same(sent, got)
    -- the ring went round (some 25 MiB through 4), both ways were taken
    assert.is_true(head(fd) > 4 * SIZE, 'head ' .. head(fd))
    assert.is_true(at_once > 0 and waited > 0,
      ('%d went at once, %d waited'):format(at_once, waited))
  end)

  it('pads to the ring\'s start, and starts over there when all was taken', function()
    local w, r, fd = loopback()
    local a, b, d = payload(3 * MiB, 'k'), payload(3 * MiB, 'l'), payload(3 * MiB, 'm')
    local e = payload(MiB, 'n')
    local F, G = #frame(a, w), #frame(e, w)
    assert.equal(F, (core.lua_send(fd, a, w)))
    same({ a }, take(r))
    -- b does not fit before the end: padding there, b at the start
    assert.equal(F, (core.lua_send(fd, b, w)))
    assert.equal(SIZE + F, head(fd))
    assert.equal(PAD, (string.unpack('<I4', peek(fd, HDR + F, 4))))
    same({ b }, take(r))
    -- 'small' would fit before the end, but all was taken: the start
    assert.equal(11, (core.lua_send(fd, 'small', w)))
    assert.equal(2 * SIZE + 11, head(fd))
    same({ 'small' }, take(r))
    -- d goes after it (it does not fit before the old tail), unread;
    -- then e fits neither before the end nor at the start: refused, the
    -- padding alone published for the reader to pass
    assert.equal(F, (core.lua_send(fd, d, w)))
    assert.equal(2 * SIZE + 11 + F, head(fd))
    local st, off, piece = core.lua_send(fd, e, w)
    assert.equal(0, st)
    assert.equal(0, off)
    assert.equal(G, flen(piece))
    assert.equal(3 * SIZE, head(fd))
    assert.is_false(w:put(piece, 0))
    same({ d }, take(r))
    assert.equal(3 * SIZE, tail(fd))
    -- the reader passed the padding: e lands at the ring's start
    assert.equal(G, w:put(piece, 0))
    assert.equal(3 * SIZE + G, head(fd))
    assert.is_true(peek(fd, HDR, G) == table.concat(piece))
    same({ e }, take(r))
  end)

  it('rings a doorbell only for a side that waits', function()
    local w, r, fd, wb, rb = loopback()
    -- the reader goes to sleep: the next write rings it, once
    assert.is_false(r:arm())
    assert.is_false(core.read(rb))
    assert.equal(#frame(1, w), (core.lua_send(fd, 1, w)))
    assert.equal(#frame(2, w), (core.lua_send(fd, 2, w)))
    assert.equal(ONE, core.read(rb))
    -- awake (not armed): no ring, the data waits to be found by arm
    assert.equal(#frame(3, w), (core.lua_send(fd, 3, w)))
    assert.is_false(core.read(rb))
    assert.is_true(r:arm())
    same({ 1, 2, 3 }, take(r))
    -- a taker rings no one while the writer does not wait for room
    assert.is_false(core.read(wb))
    local a, b = payload(3 * MiB, 'o'), payload(3 * MiB, 'p')
    assert.equal(#frame(a, w), (core.lua_send(fd, a, w)))
    local st, off, piece = core.lua_send(fd, b, w)
    assert.equal(0, st)
    assert.is_false(w:put(piece, off))
    assert.equal(1, (string.unpack('<I4', peek(fd, 192, 4))))  -- side 0 waits
    assert.is_false(core.read(wb))
    -- the reader makes room: the writer's bell rings
    same({ a }, take(r))
    assert.equal(ONE, core.read(wb))
    assert.equal(0, (string.unpack('<I4', peek(fd, 192, 4))))
    assert.equal(flen(piece), w:put(piece, off))
    same({ b }, take(r))
    assert.is_false(core.read(wb))
  end)

  it('finds, when it arms, the room a write waits for, as it finds data', function()
    local w, r, fd, wb = loopback()
    local a, b = payload(3 * MiB, 'o'), payload(3 * MiB, 'p')
    assert.equal(#frame(a, w), (core.lua_send(fd, a, w)))
    local st, off, piece = core.lua_send(fd, b, w)
    assert.equal(0, st)
    assert.is_false(w:arm())        -- no data for w, no room for b yet
    -- the reader makes room and rings; that ring goes unheard (a loop
    -- that stopped at an error before the doorbell's handler)
    same({ a }, take(r))
    assert.equal(ONE, core.read(wb))
    assert.is_true(w:arm())         -- the wait reports w's doorbell anyway
    assert.equal(flen(piece), w:put(piece, off))
    assert.is_false(w:arm())        -- written: no more waiting
    same({ b }, take(r))
  end)

  it('breaks the channel on a peer that broke the rules, and says why', function()
    -- a head beyond what the ring can hold
    local w, r, fd = loopback()
    local _  -- (what a case below does not use of its loopback)
    assert.equal(11, (core.lua_send(fd, 'small', w)))
    poke(fd, 64, string.pack('<I8', SIZE + 11))
    local n, err = r:take({})
    assert.is_nil(n)
    assert.matches('out of bounds', err)
    local n2, err2 = r:take({})  -- dead from then on
    assert.is_nil(n2)
    assert.equal(err, err2)
    -- a header or a frame longer than what was written
    for _, cut in ipairs({ { 2, 'a header cut' }, { 10, 'a frame cut' } }) do
      _, r, fd = loopback()
      poke(fd, HDR, string.pack('<I4', 100) .. ('x'):rep(100))
      poke(fd, 64, string.pack('<I8', cut[1]))
      n, err = r:take({})
      assert.is_nil(n)
      assert.matches(cut[2], err, 1, true)
    end
    -- the writer's tail set by the reader beyond its head: EPROTO
    w, _, fd = loopback()
    poke(fd, 0, string.pack('<I8', 2^40))
    local st, off, piece = core.lua_send(fd, 'small', w)
    assert.equal(-71, st)
    assert.equal(0, off)
    assert.equal(11, flen(piece))
    assert.is_nil(w:put(piece, 0))
    -- a frame over the reader's limit
    w, r, fd = loopback(1000)
    assert.equal(2009, (core.lua_send(fd, payload(2000, 'q'), w)))
    n, err = r:take({})
    assert.is_nil(n)
    assert.matches('exceeds the limit of 1000 bytes', err, 1, true)
    -- padding whose skip the writer never published (head before the end)
    _, r, fd = loopback()
    poke(fd, HDR, string.pack('<I4', PAD))
    poke(fd, 64, string.pack('<I8', 8))
    n, err = r:take({})
    assert.is_nil(n)
    assert.matches('a skip past the head', err, 1, true)
    -- 0x0b, the old ring reference, is a tag like any unknown one
    local ref = string.pack('<I4BI8I4', 13, 11, 0, 10)
    n, err = core.decoder('lua'):feed(ref, {})
    assert.is_nil(n)
    assert.matches('malformed', err)
    _, r, fd = loopback()
    poke(fd, HDR, ref)
    poke(fd, 64, string.pack('<I8', #ref))
    n, err = r:take({})
    assert.is_nil(n)
    assert.matches('malformed', err)
  end)

  it('keeps a long frame apart from bytes a peer wrote to the socket', function()
    -- a peer may write frames to the socket too (a program that is not
    -- childproc): what the decoder holds from there is not the ring's
    local w, r, fd = loopback()
    assert.equal(0, r:feed('\5\0', {}))   -- half a socket frame's header
    assert.equal(11, (core.lua_send(fd, 'hello', w)))
    same({ 'hello' }, take(r))
    local big = payload(SIZE + MiB, 'm')   -- gathered in pieces
    local st, off, piece = core.lua_send(fd, big, w)
    assert.is_true(st > 0 and off == st and piece.n == #big + 9)
    assert.equal(0, #take(r))
    local rounds = 0
    repeat
      local put = w:put(piece, off)
      if put then off = off + put end
      local got = take(r)
      if off == flen(piece) then same({ big }, got) else assert.equal(0, #got) end
      rounds = rounds + 1
      assert.is_true(rounds <= 8, 'the long frame made no progress')  -- 2 needed
    until off == flen(piece)
    assert.equal(2, r:pending())           -- the socket's bytes, untouched
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

describe('the rings between a parent and a forked child', function()
  leakcheck()

  -- bytes this thread has read with read(2) and the like (sockets too):
  -- a 'lua' channel's messages come through the rings, so what the
  -- socket gives stays small whatever the messages weigh
  local function rchar() return thread_io('rchar') end

  -- the child is let go when the spec ends, whether it passes or not
  local function fork_child()
    local child = cp.fork(ROOT .. '/spec/fixtures/fork_ring.lua')
    local box = {}
    child:on('message', function(m) box[#box + 1] = m end)
    finally(function()
      child:disconnect()
      wait_close(child)
    end)
    return child, box
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
  end)

  it('queues a burst behind a full ring without copying its long strings', function()
    -- 12 sends of one 1 MiB string at once: the ring takes the first
    -- few, the rest wait in the channel's queue holding the string
    -- itself (a copy each would be 8 MiB of this process's heap)
    local child, box = fork_child()
    local big = payload(MiB, 'q')
    collectgarbage()
    local before = collectgarbage('count')
    for _ = 1, 12 do child:send(big) end
    local grown = (collectgarbage('count') - before) / 1024
    assert.is_true(grown < 4, ('the queue took %.1f MiB'):format(grown))
    run_until(function() return #box == 12 end, 30000, 'the echoes')
    for i = 1, 12 do assert.is_true(box[i] == big, 'message ' .. i) end
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
    -- megabytes echoed, all through the rings: the parent's reads
    -- stayed under 64 KiB
    assert.is_true(total > 4 * SIZE, 'the echoes went round the rings')
    assert.is_true(got < 64 * KiB, ('the parent read %d bytes while %d were echoed')
      :format(got, total))
  end)

  it('keeps order and bytes of many mixed messages, longer than the ring too, both ways', function()
    -- small ones, ones of a few hundred KiB and a few longer than a ring
    -- (streamed), sent while the loop also runs now and then: both the
    -- doorbells for data and for room are rung, both ways
    local child, box = fork_child()
    local list = {}
    for i = 1, 300 do
      local n = i % 100 == 50 and SIZE + i * KiB or i % 7 == 0 and 200 * KiB + i
        or i % 13
      list[i] = { i = i, s = payload(n, 'k' .. i) }
      child:send(list[i])
      if i % 20 == 0 then cp.run('nowait') end
    end
    run_until(function() return #box == #list end, 60000, 'the echoes')
    for i = 1, #list do
      assert.equal(i, box[i].i)
      assert.is_true(box[i].s == list[i].s, 'message ' .. i .. ' differs')
    end
  end)
end)
