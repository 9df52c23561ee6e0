/*
** frame.c: the framing decoder of both serializations (core.decoder,
** frame.h): the bytes a channel reads (dec:feed, dec:readfd) cut into
** 'lua' frames (a length, a payload: src/lua_decode.c decodes it) or
** 'json' lines (src/json.c), each message claiming the fds that came
** within it; the peer's ring taken (dec:take, src/ring.c); the ring
** armed and polled for the loop, as its wait source (wait.h).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "compat.h"
#include "frame.h"
#include "json.h"
#include "lua_wire.h"
#include "wait.h"

enum { K_LUA, K_JSON };

/* a decoder's user value is a table: */
#define UV_BALLAST 1   /* cp_lua_ballast's slot */
#define UV_ERROR 2     /* a dead decoder's error message */

/* pushes slot k of the user value of the decoder at idx */
static int dec_uv(lua_State *L, int idx, int k) {
  cp_getuservalue(L, idx);
  lua_rawgeti(L, -1, k);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

/* sets slot k of the user value of the decoder at idx to the value on
** top (popped) */
static void dec_setuv(lua_State *L, int idx, int k) {
  idx = lua_absindex(L, idx);
  cp_getuservalue(L, idx);
  lua_insert(L, -2);
  lua_rawseti(L, -2, k);
  lua_pop(L, 1);
}


/*
** {======================================================
** Handles claimed by decoded frames
** =======================================================
*/
/*
** The value on top decoded from a socket frame ending at stream position
** end (promised: its payload began with T_HANDLE; kind: K_LUA, K_JSON)
** takes the fds that came within it: one, promised (any, for json),
** makes it { value, fd } (CP_HANDLEMSG_MT). 0, or 1 with the value
** popped, the fds closed and the message in err.
*/
static int claim_fds(lua_State *L, cp_fdq *q, uint64_t end, int promised,
                     int kind, char *err, size_t errsz) {
  int fd, n = cp_fdq_claim(q, end, &fd);
  const char *bad = NULL;
  if (n > 1) bad = "more than one handle came with a message";
  else if (kind == K_LUA && promised && n == 0)
    bad = "a message promised a handle that did not come";
  else if (kind == K_LUA && !promised && n == 1)
    bad = "a handle came with a message that promised none";
  if (bad != NULL) {
    if (fd >= 0) close(fd);
    lua_pop(L, 1);
    snprintf(err, errsz, "%s", bad);
    return 1;
  }
  if (n == 1) {
    lua_createtable(L, 2, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, fd);
    lua_rawseti(L, -2, 2);
    luaL_setmetatable(L, CP_HANDLEMSG_MT);
  }
  return 0;
}
/* }====================================================== */


/*
** {======================================================
** Incremental decoder: core.decoder(kind, maxMessageSize)
** Bytes [r, w) of buf are pending; for 'json', [r, scan) is known to
** hold no newline, so a long line is scanned once, not once per feed.
** (The decoder struct is in frame.h.)
** =======================================================
*/

/* Above this, an emptied buffer is given back to the system */
#define KEEP_MAX ((size_t)4 << 20)   /* a larger idle buffer is freed */
#define READ_CHUNK ((size_t)256 << 10) /* readfd's usual read */
#define READ_BIG ((size_t)4 << 20)     /* its read for a known big frame */

/* (the decoder's functions have its metatable as upvalue 1) */
static cp_decoder *check_decoder(lua_State *L) {
  return (cp_decoder *)cp_checkclass(L, 1, 1, CP_DECODER_MT);
}

/*
** Compacts when what was consumed at the front is at least what must
** move (so each byte is moved at most once per byte consumed), and
** grows geometrically otherwise: appends stay linear.
*/
/* room for n more bytes at d->buf + d->w; NULL when out of memory */
static char *dec_reserve(cp_decoder *d, size_t n) {
  size_t pending = d->w - d->r;
  if (n > d->cap - d->w) {
    if (d->r > 0 && d->r >= pending && n <= d->cap - pending) {
      memmove(d->buf, d->buf + d->r, pending);
    }
    else {
      size_t ncap = d->cap ? d->cap : 4096;
      char *nb;
      if (n > SIZE_MAX / 2 - pending) return NULL;
      while (ncap < pending + n) ncap *= 2;
      if (d->r == 0) {  /* realloc can move pages instead of bytes */
        if ((nb = (char *)realloc(d->buf, ncap)) == NULL) return NULL;
      }
      else {
        if ((nb = (char *)malloc(ncap)) == NULL) return NULL;
        memcpy(nb, d->buf + d->r, pending);
        free(d->buf);
      }
      d->buf = nb;
      d->cap = ncap;
    }
    d->scan -= d->r;
    d->r = 0;
    d->w = pending;
  }
  return d->buf + d->w;
}

static int dec_append(cp_decoder *d, const char *s, size_t n) {
  char *p = dec_reserve(d, n);
  if (p == NULL) return 1;
  memcpy(p, s, n);
  d->w += n;
  return 0;
}

/* Kills the decoder at idx, keeping msg as its error */
static void dec_kill(lua_State *L, cp_decoder *d, int idx, const char *msg) {
  d->dead = 1;
  d->fast = 0;
  cp_fdq_clear(&d->fdq);
  free(d->buf);
  d->buf = NULL;
  d->r = d->w = d->scan = d->cap = 0;
  lua_pushstring(L, msg);
  dec_setuv(L, idx, UV_ERROR);
}

/* Kills the decoder (at 1): returns nil, msg, n (messages decoded before
** it) */
static int dec_die(lua_State *L, cp_decoder *d, const char *msg, lua_Integer n) {
  dec_kill(L, d, 1, msg);
  lua_pushnil(L);
  dec_uv(L, 1, UV_ERROR);
  lua_pushinteger(L, n);
  return 3;
}

/* a dead decoder's answer to every call: nil, its error, 0 */
static int dead_result(lua_State *L) {
  lua_pushnil(L);
  dec_uv(L, 1, UV_ERROR);
  lua_pushinteger(L, 0);
  return 3;
}

/*
** Decode every complete message in the buffer into out (stack index 3),
** counting them in *n.  Returns the number of results pushed on an error
** (nil, msg, n), else 0.
*/
static int decode_all(lua_State *L, cp_decoder *d, lua_Integer *np) {
  lua_Integer n = *np;
  char err[160];
  for (;;) {
    if (d->r == d->w) break;  /* nothing (buf may even be NULL) */
    if (d->kind == K_LUA) {
      size_t plen;
      if (d->w - d->r < 4) break;
      plen = get_u32((const unsigned char *)d->buf + d->r);
      if (plen > d->max && cp_lua_too_large(err, sizeof(err), plen, d->max))
        { *np = n; return dec_die(L, d, err, n); }
      if (d->w - d->r - 4 < plen) break;
      cp_lua_ballast(L, &d->ballast, 1, plen);
      {
        const char *p = d->buf + d->r + 4;
        int promised = plen > 0 && (unsigned char)p[0] == T_HANDLE;
        if (cp_lua_decode(L, p + promised, plen - (size_t)promised,
                               err, sizeof(err)) ||
            claim_fds(L, &d->fdq, d->spos + 4 + plen, promised, K_LUA, err,
                      sizeof(err)))
          { *np = n; return dec_die(L, d, err, n); }
      }
      d->spos += 4 + plen;
      d->r = d->scan = d->r + 4 + plen;
    }
    else {
      const char *nl = (const char *)memchr(d->buf + d->scan, '\n',
                                            d->w - d->scan);
      size_t llen;
      if (nl == NULL) {
        d->scan = d->w;
        if (d->w - d->r > d->max) {
          snprintf(err, sizeof(err), "line longer than the limit of "
                   "%zu bytes", d->max);
          { *np = n; return dec_die(L, d, err, n); }
        }
        break;
      }
      llen = (size_t)(nl - (d->buf + d->r));
      if (llen > 0 && d->buf[d->r + llen - 1] == '\r')
        llen--;
      if (llen > d->max) {
        snprintf(err, sizeof(err), "line longer than the limit of "
                 "%zu bytes", d->max);
        { *np = n; return dec_die(L, d, err, n); }
      }
      if (llen > 0 &&
          cp_json_decode(L, d->buf + d->r, llen, err, sizeof(err)))
        { *np = n; return dec_die(L, d, err, n); }
      if (llen == 0) lua_pushboolean(L, 0);  /* (claims, then dropped) */
      d->spos += (size_t)(nl - d->buf) + 1 - d->r;
      if (claim_fds(L, &d->fdq, d->spos, 1, K_JSON, err, sizeof(err)))
        { *np = n; return dec_die(L, d, err, n); }
      d->r = d->scan = (size_t)(nl - d->buf) + 1;
      if (llen == 0) {  /* empty lines carry nothing */
        if (lua_istable(L, -1)) {   /* but an fd: dropped, closed */
          lua_rawgeti(L, -1, 2);
          close((int)lua_tointeger(L, -1));
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
        continue;
      }
    }
    lua_rawseti(L, 3, ++n);
  }
  if (d->r == d->w) {
    d->r = d->w = d->scan = 0;
    if (d->cap > KEEP_MAX) {
      free(d->buf);
      d->buf = NULL;
      d->cap = 0;
    }
  }
  *np = n;
  return 0;
}

/*
** dec:feed(chunk, out) -> n: decodes every complete message into
** out[1..n]. On a bad frame: nil, msg, n, where out[1..n] still holds
** the messages that came before it, in order.
*/
static int l_feed(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  lua_Integer n = 0;
  int r;
  luaL_checktype(L, 3, LUA_TTABLE);
  if (d->dead) return dead_result(L);
  lua_settop(L, 3);
  if (len > 0 && dec_append(d, s, len))
    return luaL_error(L, "not enough memory");
  if ((r = decode_all(L, d, &n)) != 0) return r;
  lua_pushinteger(L, n);
  return 1;
}

/*
** dec:readfd(fd, out) -> n, got, full: one read(2) from fd straight into
** the buffer (no Lua string in between), then as feed.  got: bytes read,
** 0 at end of file, false when the read would block, or -errno.  full:
** the read took all it asked for (more may be waiting), so a short read
** means the socket is empty.  The read asks for at least READ_CHUNK, for
** the rest of a 'lua' frame whose size is known (up to READ_BIG), and
** for all the room the buffer already has: a big frame comes in with few
** calls, into memory already there.
*/
static int l_readfd(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  int fd = (int)luaL_checkinteger(L, 2);
  lua_Integer n = 0;
  size_t want = READ_CHUNK;
  ssize_t got;
  char *p;
  int r;
  luaL_checktype(L, 3, LUA_TTABLE);
  if (d->dead) return dead_result(L);
  lua_settop(L, 3);
  /* a 'lua' frame whose size is known is read in as few calls as fit */
  if (d->kind == K_LUA && d->w - d->r >= 4) {
    size_t plen = get_u32((const unsigned char *)d->buf + d->r);
    size_t rest = 4 + plen - (d->w - d->r);
    if (plen <= d->max && rest > want) want = rest < READ_BIG ? rest : READ_BIG;
  }
  if (d->cap - d->w > want) want = d->cap - d->w;
  if ((p = dec_reserve(d, want)) == NULL)
    return luaL_error(L, "not enough memory");
  got = cp_fdq_recv(&d->fdq, fd, p, want, d->spos + (d->w - d->r));
  if (got < 0) {
    lua_pushinteger(L, 0);
    if (errno == EAGAIN || errno == EWOULDBLOCK) lua_pushboolean(L, 0);
    else lua_pushinteger(L, -errno);
    return 2;
  }
  d->w += (size_t)got;
  if ((r = decode_all(L, d, &n)) != 0) return r;
  lua_pushinteger(L, n);
  lua_pushinteger(L, got);
  lua_pushboolean(L, (size_t)got == want);
  return 3;
}

/* dec:pending() -> bytes buffered: a message cut off by the peer's exit */
static int l_pending(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  lua_pushinteger(L, (lua_Integer)(d->w - d->r));
  return 1;
}

/* dec:ring(fd, side [, bell, mybell]) -> true | nil, errno: use fd
** (core.ring_new's) as the channel's rings, this side writing half
** 'side' (0 parent, 1 child); bell: the peer's doorbell (an eventfd),
** mybell: ours (the loop reports it when it arms the decoder) */
static int l_ring(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  int fd = (int)luaL_checkinteger(L, 2);
  int side = (int)luaL_checkinteger(L, 3), err;
  int bell = (int)luaL_optinteger(L, 4, -1);
  int mybell = (int)luaL_optinteger(L, 5, -1);
  luaL_argcheck(L, side == 0 || side == 1, 3, "0 or 1 expected");
  luaL_argcheck(L, d->kind == K_LUA, 1, "a 'lua' decoder expected");
  if ((err = cp_ring_map(&d->ring, fd, side, bell, mybell)) != 0) {
    lua_pushnil(L);
    lua_pushinteger(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/*
** dec:take(out) -> n: decodes the messages the peer's ring holds into
** out[1..n]; nil, msg, n as feed on a fault (the decoder is then dead).
*/
static int l_take(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  lua_Integer n = 0;
  char err[160];
  int r;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (d->dead) return dead_result(L);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);  /* out at index 3, as decode_all wants it */
  if (d->ring.base == NULL) { lua_pushinteger(L, 0); return 1; }
  r = cp_ring_take(L, &d->ring, d->max, &d->ballast, 1, &n, 3, err,
                   sizeof(err));
  if (r != 0) return dec_die(L, d, err, n);
  lua_pushinteger(L, n);
  return 1;
}

/* A live decoder's ring armed (cp_ring_arm) */
static int dec_arm(cp_decoder *d) {
  return !d->dead && cp_ring_arm(&d->ring);
}

/* dec:arm() -> boolean: dec_arm */
static int l_arm(lua_State *L) {
  lua_pushboolean(L, dec_arm(check_decoder(L)));
  return 1;
}

/* The decoder as the loop's wait source (wait.h): its ring */
static int src_arm(void *dec, int *bell) {
  cp_decoder *d = (cp_decoder *)dec;
  if (!dec_arm(d)) return 0;
  *bell = d->ring.mybell;
  return 1;
}

static int src_poll(void *dec, int cpu, int *bell, int *active) {
  cp_decoder *d = (cp_decoder *)dec;
  *active = 0;
  if (d->dead) return 0;
  return cp_ring_poll(&d->ring, cpu, bell, active);
}

static int src_bell(void *dec) {
  return cp_ring_bell(&((cp_decoder *)dec)->ring);
}

static const cp_waitsrc dec_waitsrc = {src_arm, src_poll, src_bell};

/* dec:unring(): unmap the rings and close the fds not claimed (the
** channel is closed) */
static int l_unring(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  cp_ring_unmap(&d->ring);
  cp_fdq_clear(&d->fdq);
  return 0;
}

static int l_decoder_gc(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  cp_ring_unmap(&d->ring);
  cp_fdq_clear(&d->fdq);
  free(d->buf);
  d->buf = NULL;
  d->r = d->w = d->scan = d->cap = 0;
  return 0;
}

static int l_decoder_tostring(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  lua_pushfstring(L, "childproc.Decoder (%s%s)",
                  d->kind == K_LUA ? "lua" : "json", d->dead ? ", dead" : "");
  return 1;
}

/*
** core.decoder(kind, maxMessageSize) -> decoder. The limit defaults to
** the largest payload a 'lua' frame can declare.
*/
static int l_decoder(lua_State *L) {
  static const char *const kinds[] = {"lua", "json", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  lua_Integer max = luaL_optinteger(L, 2, (lua_Integer)CP_FRAME_MAX);
  cp_decoder *d;
  luaL_argcheck(L, max >= 0, 2, "must not be negative");
  d = (cp_decoder *)cp_newuserdata(L, sizeof(*d), 1);
  d->buf = NULL;
  d->fast = 0;
  d->r = d->w = d->scan = d->cap = 0;
  d->max = (uint64_t)max > CP_FRAME_MAX && kind == K_LUA ? CP_FRAME_MAX
                                                       : (size_t)max;
  d->kind = kind;
  d->dead = 0;
  d->ballast = 0;
  memset(&d->ring, 0, sizeof(d->ring));
  memset(&d->fdq, 0, sizeof(d->fdq));
  d->spos = 0;
  luaL_setmetatable(L, CP_DECODER_MT);
  lua_createtable(L, 2, 0);
  cp_setuservalue(L, -2);
  return 1;
}
/* }====================================================== */


CP_API void cp_frame_open(lua_State *L) {
  static const luaL_Reg core_fns[] = {
    {"decoder", l_decoder},
    {NULL, NULL}
  };
  static const luaL_Reg dec_methods[] = {
    {"feed", l_feed},
    {"readfd", l_readfd},
    {"pending", l_pending},
    {"ring", l_ring},
    {"unring", l_unring},
    {"take", l_take},
    {"arm", l_arm},
    {NULL, NULL}
  };
  static const luaL_Reg dec_meta[] = {
    {"__gc", l_decoder_gc},
    {"__tostring", l_decoder_tostring},
    {NULL, NULL}
  };
  luaL_checkstack(L, 4, "cannot open the decoder");
  /* every function gets the decoder's metatable as upvalue 1 */
  luaL_newmetatable(L, CP_DECODER_MT);
  lua_createtable(L, 0, 9);   /* (src/channel.c adds put and fast) */
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, dec_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -1);
  luaL_setfuncs(L, dec_meta, 1);
  lua_pushlightuserdata(L, (void *)&dec_waitsrc);
  lua_setfield(L, -2, CP_WAITSRC);
  luaL_setfuncs(L, core_fns, 1);   /* pops the metatable */
  luaL_newmetatable(L, CP_HANDLEMSG_MT);
  lua_setfield(L, -2, "handlemsg_mt");
}
