/*
** fuzz_frame.c: libFuzzer target for the framing decoder (src/frame.c)
** of both formats, the rings (src/ring.c) and the channel's writer
** (src/channel.c). Each input is one byte choosing the format (bit 0:
** 'json', else 'lua'; bit 7, 'lua': the rest after the slicing byte is
** one payload, given a correct header, since random bytes rarely carry
** a length that matches what follows), one byte choosing how to slice
** the rest, then the bytes fed to a decoder made by core.decoder,
** exactly as the channel does. Every
** value decoded is encoded again, and that must decode to an equal
** value ('lua': core.lua_send's pieces must make the same frame as
** core.lua_encode; build with -DCP_SEG_MIN=4 so that most strings become
** pieces of their own); any Lua error in this check (not a nil, msg from
** feed or take, which is the expected answer to bad bytes) aborts, so
** libFuzzer reports it.
** 'lua' also fuzzes the rings (src/ring.c), of 4096 bytes each
** (-DCP_RING_MIN=16 lets core.ring_new make them that small):
** - the bytes are written raw into a peer's ring as another process
**   could, its tail and head set from the input's last 4 bytes (see
**   fuzz_peer), and a decoder takes from it: values (checked as the
**   others) or an error, never a crash;
** - every value goes through a writer's ring and must come back equal,
**   in order, the reader taking after every few values (1 to 8, see
**   fuzz_peer): values wrap, pad to the ring's start, wait for room, or
**   are streamed (when longer than the ring).
*/
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static const char fuzz_driver[] =
  "local core, kind, slices, ring, ptail, phead, pwtail, raw, every = ...\n"
  "local null = core.json_null\n"
  FUZZ_EQUAL
  "local got, out = {}, {}\n"
  /* (a ring's handle marker is no value: lua/handle.lua replaces it) */
  "local function add(t, n)\n"
  "  for i = 1, n do\n"
  "    if t[i] ~= core.handle_mark then got[#got + 1] = t[i] end\n"
  "  end\n"
  "end\n"
  "local dec = core.decoder(kind, 1 << 20)\n"
  "for _, s in ipairs(slices) do\n"
  "  local n, err, m = dec:feed(s, out)\n"
  "  if n == nil then\n"
  "    assert(type(err) == 'string' and math.type(m) == 'integer')\n"
  "    add(out, m)\n"
  "    local n2, err2 = dec:feed('x', {})\n"
  "    assert(n2 == nil and err2 == err, 'decoder not dead')\n"
  "    break\n"
  "  end\n"
  "  add(out, n)\n"
  "end\n"
  /* the bytes as a peer's ring 0 holds them: taken, the values checked */
  "local w, r, wfd\n"
  "if kind == 'lua' then\n"
  "  local pfd = assert(core.ring_new(ring))\n"
  "  core.fill(pfd, ptail, phead, pwtail, raw)\n"
  "  local pd = core.decoder('lua', 1 << 20)\n"
  "  assert(pd:ring(pfd, 1))\n"
  "  core.close(pfd)\n"
  "  for _ = 1, 2 do\n"
  "    local o = {}\n"
  "    local n, err, m = pd:take(o)\n"
  "    if n == nil then\n"
  "      assert(type(err) == 'string' and math.type(m) == 'integer')\n"
  "      add(o, m)\n"
  "      local n2, err2 = pd:take({})\n"
  "      assert(n2 == nil and err2 == err, 'decoder not dead')\n"
  "      break\n"
  "    end\n"
  "    add(o, n)\n"
  "  end\n"
  /* our own ring, whose tail the peer may have made nonsense */
  "  local st = core.lua_send(0, true, pd)\n"
  "  assert(st == -71 or (st == 5 and pwtail == 0), 'status ' .. st)\n"
  "  pd:unring()\n"
  "  wfd = assert(core.ring_new(ring))\n"
  "  w, r = core.decoder('lua'), core.decoder('lua')\n"
  "  assert(w:ring(wfd, 0) and r:ring(wfd, 1))\n"
  "end\n"
  /* the writer's queue, as lua/ipc.lua keeps it: frame, bytes written */
  "local sent, back, qf, qo, qh, qt = {}, {}, {}, {}, 1, 0\n"
  /* what the ring did not take: a string, or the frame's pieces (n) */
  "local function flen(f) return type(f) == 'table' and f.n or #f end\n"
  "local function join(f)\n"
  "  if type(f) ~= 'table' then return f end\n"
  "  local t = ''\n"
  "  for i = 1, #f do t = t .. f[i] end\n"
  "  return t\n"
  "end\n"
  "local function flush()\n"
  "  while qh <= qt do\n"
  "    local n = w:put(qf[qh], qo[qh])\n"
  "    assert(n ~= nil, 'the ring broke')\n"
  "    if not n then return end\n"
  "    qo[qh] = qo[qh] + n\n"
  "    if qo[qh] < flen(qf[qh]) then return end\n"
  "    qf[qh], qo[qh], qh = nil, nil, qh + 1\n"
  "  end\n"
  "end\n"
  "local function take()\n"
  "  local o = {}\n"
  "  local n, err = r:take(o)\n"
  "  assert(n, err)\n"
  "  for i = 1, n do back[#back + 1] = o[i] end\n"
  "end\n"
  "local function queue(t, off) qt = qt + 1; qf[qt], qo[qt] = t, off end\n"
  "local encode = kind == 'lua' and core.lua_encode or core.json_encode\n"
  "for _, v in ipairs(got) do\n"
  "  local ok, s = pcall(encode, v)\n"
  /* a shared table may be reached by a deeper path when re-encoded */
  "  if not ok then\n"
  "    assert(kind == 'lua' and s == 'excessive nesting (200)', s)\n"
  "  else\n"
  "    local d2, o2 = core.decoder(kind), {}\n"
  "    local n, err = d2:feed(s, o2)\n"
  "    assert(n == 1, err or 'not one value')\n"
  "    assert(d2:pending() == 0, 'bytes left')\n"
  "    assert(equal(v, o2[1], {}), 'round trip changed the value')\n"
  /* lua_send's pieces (long strings left as they are) make the same frame */
  "    if kind == 'lua' then\n"
  "      local function cat(st, off, ...)\n"
  "        local t = ''\n"
  "        for i = 1, select('#', ...) do t = t .. select(i, ...) end\n"
  "        return st, off, t\n"
  "      end\n"
  "      local st, off, t = cat(core.lua_send(false, v))\n"
  "      assert(st == 0 and off == 0 and t == s, 'lua_send differs')\n"
  /* with a ring, the whole frame as one value (pieces: joined) */
  "      st, off, t = core.lua_send(false, v, w)\n"
  "      assert(st == 0 and off == 0 and join(t) == s, 'lua_send differs (ring)')\n"
  /* into the ring: at once when nothing waits, else queued */
  "      flush()\n"
  "      sent[#sent + 1] = v\n"
  "      if qh <= qt then queue(t, 0)\n"
  "      else\n"
  "        local piece\n"
  "        st, off, piece = core.lua_send(wfd, v, w)\n"
  "        assert(st >= 0, 'ring write failed')\n"
  "        if piece then\n"
  "          assert(join(piece) == s and off == st and st < #s, 'ring piece')\n"
  "          queue(piece, off)\n"
  "        else assert(st == #s, 'ring status') end\n"
  "      end\n"
  "      if #sent % every == 0 then take() end\n"
  "    end\n"
  "  end\n"
  "end\n"
  /* the reader catches up: everything comes back, in order */
  "if kind == 'lua' then\n"
  "  local spins = 0\n"
  "  while qh <= qt or #back < #sent do\n"
  "    spins = spins + 1\n"
  "    assert(spins < 100000, 'the ring is stuck')\n"
  "    take()\n"
  "    flush()\n"
  "  end\n"
  "  assert(#back == #sent, 'more values than were sent')\n"
  "  for i = 1, #sent do\n"
  "    assert(equal(sent[i], back[i], {}), 'the ring changed the value')\n"
  "  end\n"
  "  w:unring(); r:unring()\n"
  "  core.close(wfd)\n"
  "end\n";

/* core.close for the driver (the codecs' core has no fd functions) */
static int fuzz_close(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

#define FUZZ_RING 4096   /* bytes per ring: the smallest ring_new makes */

/*
** core.fill(fd, tail, head, wtail, bytes): writes a ring memfd
** (core.ring_new's) as the peer on side 0 could: ring 0's tail and head,
** ring 1's tail (the peer's own), and bytes into ring 0 from position
** tail on, wrapping at its end (a ring's worth at most). The header's
** offsets are src/ring.c's (H_TAIL, H_HEAD).
*/
static void fuzz_pwrite(lua_State *L, int fd, const void *p, size_t n,
                        off_t at) {
  if (pwrite(fd, p, n, at) != (ssize_t)n)
    luaL_error(L, "fill: pwrite failed");
}

static int fuzz_fill(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  uint64_t tail = (uint64_t)luaL_checkinteger(L, 2);
  uint64_t head = (uint64_t)luaL_checkinteger(L, 3);
  uint64_t wtail = (uint64_t)luaL_checkinteger(L, 4);
  size_t len, half, off, n, done = 0;
  const char *s = luaL_checklstring(L, 5, &len);
  struct stat st;
  if (fstat(fd, &st) != 0) return luaL_error(L, "fill: fstat failed");
  half = ((size_t)st.st_size - 4096) / 2;
  fuzz_pwrite(L, fd, &tail, 8, 0);
  fuzz_pwrite(L, fd, &wtail, 8, 8);
  fuzz_pwrite(L, fd, &head, 8, 64);
  if (len > half) len = half;
  for (off = (size_t)(tail % half); done < len; off = 0) {
    n = half - off < len - done ? half - off : len - done;
    fuzz_pwrite(L, fd, s + done, n, (off_t)(4096 + off));
    done += n;
  }
  return 0;
}

/*
** The peer ring's positions, from the input's last 4 bytes p (when it
** has them): a = p[0] | p[1] << 8, b = p[2] | p[3] << 8. The tail is a
** round in (a head behind it stays >= 0), at offset a % FUZZ_RING; a >> 12
** picks the head: mostly tail + the bytes written (all readable), else
** tail + b % (FUZZ_RING + 64) (some past the ring), tail - 1 - b % 64
** (behind it), or the bytes again with a nonsense tail of the peer's own
** ring (for our writes into it). b also sets how many values the writer
** sends between two takes of its reader: 1 + b % 8.
*/
static void fuzz_peer(const uint8_t *p, size_t len, lua_Integer *tail,
                      lua_Integer *head, lua_Integer *wtail,
                      lua_Integer *every) {
  unsigned a, b, mode;
  size_t all = len < FUZZ_RING ? len : FUZZ_RING;
  *tail = FUZZ_RING;
  *head = FUZZ_RING + (lua_Integer)all;
  *wtail = 0;
  *every = 1;
  if (len < 4) return;
  p += len - 4;
  a = p[0] | (unsigned)p[1] << 8;
  b = p[2] | (unsigned)p[3] << 8;
  mode = a >> 12;
  *every = 1 + (lua_Integer)(b % 8);
  *tail = FUZZ_RING + (lua_Integer)(a % FUZZ_RING);
  *head = *tail + (lua_Integer)all;
  if (mode == 10 || mode == 11)
    *head = *tail + (lua_Integer)(b % (FUZZ_RING + 64));
  else if (mode == 12)
    *head = *tail - 1 - (lua_Integer)(b % 64);
  else if (mode == 13)
    *wtail = 1 + (lua_Integer)b;
}

/*
** data[0] & 3 picks the slicing: whole, byte by byte, chunks of
** (data[0] >> 2) + 1 bytes, or two pieces cut at a point set by
** data[0] >> 2; slicing must never change what is decoded.
*/
static int fuzz_run(const char *kind, const uint8_t *data, size_t size) {
  lua_State *L;
  size_t i, step, cut;
  lua_Integer n = 0, tail, head, wtail, every;
  if (size < 1) return 0;
  fuzz_peer(data + 1, size - 1, &tail, &head, &wtail, &every);
  L = fuzz_state(fuzz_driver, sizeof(fuzz_driver) - 1);
  lua_newtable(L);
  cp_lua_encode_open(L);
  cp_json_open(L);
  cp_ring_open(L);
  cp_frame_open(L);
  cp_channel_open(L);
  lua_pushcfunction(L, fuzz_close);
  lua_setfield(L, -2, "close");
  lua_pushcfunction(L, fuzz_fill);
  lua_setfield(L, -2, "fill");
  lua_pushstring(L, kind);
  lua_newtable(L);
  data++;
  size--;
  switch (data[-1] & 3) {
    case 0: step = size ? size : 1; cut = 0; break;
    case 1: step = size > 4096 ? 64 : 1; cut = 0; break;
    case 2: step = (size_t)(data[-1] >> 2) + 1; cut = 0; break;
    default: step = 0; cut = size * (size_t)(data[-1] >> 2) / 64; break;
  }
  if (step == 0) {
    lua_pushlstring(L, (const char *)data, cut);
    lua_rawseti(L, -2, ++n);
    lua_pushlstring(L, (const char *)data + cut, size - cut);
    lua_rawseti(L, -2, ++n);
  }
  else {
    for (i = 0; i < size; i += step) {
      lua_pushlstring(L, (const char *)data + i,
                      size - i < step ? size - i : step);
      lua_rawseti(L, -2, ++n);
    }
  }
  lua_pushinteger(L, FUZZ_RING);
  lua_pushinteger(L, tail);
  lua_pushinteger(L, head);
  lua_pushinteger(L, wtail);
  lua_pushlstring(L, (const char *)data, size);
  lua_pushinteger(L, every);
  fuzz_call(L, 9);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *kind;
  uint8_t *framed;
  size_t plen;
  if (size < 2) return 0;
  kind = data[0] & 1 ? "json" : "lua";
  data++;
  size--;
  if (!(data[-1] & 0x80) || data[-1] & 1)
    return fuzz_run(kind, data, size);
  plen = size - 1;
  if ((framed = (uint8_t *)malloc(size + 4)) == NULL)
    return 0;
  framed[0] = data[0];
  framed[1] = (uint8_t)plen;
  framed[2] = (uint8_t)(plen >> 8);
  framed[3] = (uint8_t)(plen >> 16);
  framed[4] = (uint8_t)(plen >> 24);
  memcpy(framed + 5, data + 1, plen);
  fuzz_run(kind, framed, size + 4);
  free(framed);
  return 0;
}
