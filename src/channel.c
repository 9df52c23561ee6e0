/*
** channel.c: a channel's writer, where the socket, the rings and the
** framing meet: core.lua_send (a 'lua' message written at once: into
** the channel's ring, or to its socket with one sendmsg straight from
** the encoder's buffer and the value's strings), dec:put (a queued
** frame into the ring), dec:fast, and core.ring_sender (a 'send' method
** that writes into the ring itself). The decoder (src/frame.c) holds the
** channel's rings.
*/
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <lauxlib.h>

#include "buf.h"
#include "compat.h"
#include "frame.h"
#include "lua_encode.h"
#include "ring.h"

/* (the functions have the decoder's metatable as upvalue 1) */
static cp_decoder *check_decoder(lua_State *L) {
  return (cp_decoder *)cp_checkclass(L, 1, 1, CP_DECODER_MT);
}


/*
** Pushes what a ring did not take of the frame as one value for the
** channel's queue: a string, or a table of its pieces (n: their length)
** that holds each long string of the value by reference, so a message
** queued behind a full ring is not copied until the ring takes it.
*/
static void push_ring_rest(lua_State *L, const cp_enc *e) {
  size_t off;
  int i, np = cp_lua_rest(L, e, 0, &off);
  if (np == 1) return;
  lua_createtable(L, np, 1);
  lua_insert(L, -np - 1);
  for (i = np; i >= 1; i--) lua_rawseti(L, -i - 1, i);
  lua_pushinteger(L, (lua_Integer)(e->b->n + e->extra));
  lua_setfield(L, -2, "n");
}

/* Raises the message on top as send()'s bad argument, at stack level
** 'where' (the line that called send) */
static int send_error(lua_State *L, int where) {
  luaL_where(L, where);
  lua_pushfstring(L, "%sbad argument #1 to 'send' (%s)", lua_tostring(L, -1),
                  lua_tostring(L, -2));
  return lua_error(L);
}

/*
** Encodes the value at vidx into a frame (cp_lua_frame), or raises: for a
** value that cannot be sent, or a frame too long for a ring's length
** field (ring), send()'s "bad argument #1" at stack level 'where' (the
** line that called send()), or the bare error when where <= 0.
*/
static void encode_or_raise(lua_State *L, cp_enc *e, struct cp_seg *segs,
                            int vidx, int ring, int where) {
  if (cp_lua_frame(L, e, segs, vidx, 0)) {
    if (where <= 0) cp_enc_raise(e);          /* (these do not return) */
    else { cp_enc_pushmsg(e); send_error(L, where); }
  }
  else if (ring && e->b->n - 4 + e->extra >= CP_RING_PAD) {
    cp_wbuf_free(e->b);
    lua_pushliteral(L, "message too large for the channel");
    if (where <= 0) lua_error(L);
    else send_error(L, where);
  }
}

/*
** core.lua_send(fd | false, value [, dec [, where]]) -> status, off, piece...
** Encodes the value as lua_encode does (raising, before anything is
** written, on a value that cannot be sent), then with an fd writes the
** frame at once: into the channel's ring when dec has one, else to the
** socket fd (one sendmsg, MSG_NOSIGNAL, non-blocking), straight from
** the encoder's buffer and from the long strings of the value
** themselves: no frame string is made. status: bytes written (0 when
** it would block, or without an fd), or -errno when the write failed
** (EPROTO: the peer broke the ring's rules). The pieces are what is
** left to write, in order (none when all went), the first to be
** resumed at offset 'off'. For the socket they hold no copy of a long
** string (those are the value's own strings); for a ring they are the
** whole frame as one value (push_ring_rest), 'off' bytes of it written
** (the ring takes a frame's start only whole). With 'where', a value
** that cannot be sent raises send()'s "bad argument #1" error located
** at that stack level (the caller of send(): no pcall needed).
*/
static int l_lua_send(lua_State *L) {
  cp_enc e;
  struct cp_seg segs[CP_SEG_MAX];
  struct iovec iov[2 * CP_SEG_MAX + 1];
  int fd = lua_toboolean(L, 1) ? (int)luaL_checkinteger(L, 1) : -1;
  lua_Integer status = 0;
  size_t written = 0, off;
  int base, np, k;
  cp_decoder *d = lua_isnoneornil(L, 3) ? NULL
             : (cp_decoder *)cp_checkclass(L, 3, 1, CP_DECODER_MT);
  cp_ring *ring = d != NULL && d->ring.base != NULL ? &d->ring : NULL;
  int where = (int)luaL_optinteger(L, 4, 0);
  luaL_checkany(L, 2);
  lua_settop(L, 3);
  encode_or_raise(L, &e, segs, 2, ring != NULL, where);
  k = cp_lua_iov(&e, iov);
  if (fd >= 0 && ring != NULL) {
    ssize_t r = cp_ring_write(ring, iov, k, e.b->n + e.extra, 0);
    if (r >= 0) status = (lua_Integer)(written = (size_t)r);
    else status = -(lua_Integer)EPROTO;
  }
  else if (fd >= 0) {
    struct msghdr m;
    ssize_t r;
    memset(&m, 0, sizeof(m));
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)k;
    do r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r >= 0)
      status = (lua_Integer)(written = (size_t)r);
    else if (errno != EAGAIN && errno != EWOULDBLOCK)
      status = -(lua_Integer)errno;
  }
  luaL_checkstack(L, 2 * CP_SEG_MAX + 4, "cannot send");
  base = lua_gettop(L);
  lua_pushinteger(L, status);
  lua_pushinteger(L, 0);
  if (ring == NULL) {
    np = cp_lua_rest(L, &e, written, &off);
    lua_pushinteger(L, (lua_Integer)off);
  }
  else if (written < e.b->n + e.extra) {
    push_ring_rest(L, &e);
    np = 1;
    lua_pushinteger(L, (lua_Integer)written);
  }
  else {
    np = 0;
    lua_pushinteger(L, 0);
  }
  cp_wbuf_free(e.b);
  lua_replace(L, base + 2);
  return 2 + np;
}

/*
** dec:put(frame, off) -> n | false | nil: writes frame (from byte off)
** into our ring: bytes taken, false when there is no room now (the
** peer rings our doorbell when it has made some), nil when the peer
** broke the rules. frame: a string, or a table of pieces whose field n
** is their length (push_ring_rest).
*/
static int l_put(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  struct iovec iov[2 * CP_SEG_MAX + 1];
  size_t len = 0;
  lua_Integer off = luaL_optinteger(L, 3, 0);
  ssize_t n;
  int k = 0;
  if (lua_type(L, 2) == LUA_TTABLE) {
    int i, np = (int)lua_rawlen(L, 2);
    luaL_argcheck(L, np >= 1 && np <= 2 * CP_SEG_MAX + 1, 2, "too many pieces");
    for (i = 1; i <= np; i++, k++) {
      lua_rawgeti(L, 2, i);
      iov[k].iov_base = (void *)luaL_checklstring(L, -1, &iov[k].iov_len);
      len += iov[k].iov_len;
      lua_pop(L, 1);                  /* (the table keeps it) */
    }
  }
  else {
    iov[0].iov_base = (void *)luaL_checklstring(L, 2, &iov[0].iov_len);
    len = iov[0].iov_len;
    k = 1;
  }
  luaL_argcheck(L, off >= 0 && (size_t)off < len, 3, "out of range");
  n = cp_ring_write(&d->ring, iov, k, len, (size_t)off);
  if (n < 0) lua_pushnil(L);
  else if (n == 0) lua_pushboolean(L, 0);
  else lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/*
** dec:fast(on): the channel is ringed, open, not disconnecting, and
** nothing waits to be written (lua/ipc.lua says so whenever that
** changes): the ring sender may then write a message into the ring at
** once, ahead of nothing.
*/
static int l_fast(lua_State *L) {
  cp_decoder *d = check_decoder(L);
  d->fast = lua_toboolean(L, 2) && d->ring.base != NULL && !d->dead;
  return 0;
}

/*
** The ring sender's short way (l_ring_send): encodes the message at 2
** into d's ring; true, or rest(obj, status, off, piece)'s result when
** not all of it went (status, off, piece as core.lua_send's). A message
** that cannot be sent raises send()'s error at the caller's line.
*/
static int ring_send(lua_State *L, cp_decoder *d) {
  cp_enc e;
  struct cp_seg segs[CP_SEG_MAX];
  struct iovec iov[2 * CP_SEG_MAX + 1];
  size_t len;
  ssize_t w;
  int k;
  encode_or_raise(L, &e, segs, 2, 1, 1);
  len = e.b->n + e.extra;
  k = cp_lua_iov(&e, iov);
  w = cp_ring_write(&d->ring, iov, k, len, 0);
  if (w == (ssize_t)len) {
    cp_wbuf_free(e.b);
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_checkstack(L, 2 * CP_SEG_MAX + 8, "cannot send");
  lua_pushvalue(L, lua_upvalueindex(4));
  lua_pushvalue(L, 1);
  lua_pushinteger(L, w >= 0 ? (lua_Integer)w : -(lua_Integer)EPROTO);
  lua_pushinteger(L, w >= 0 ? (lua_Integer)w : 0);
  push_ring_rest(L, &e);
  cp_wbuf_free(e.b);
  lua_call(L, 4, 1);
  return 1;
}

/*
** obj:send(message): with nothing but a message, for an object of the
** class (metatable: upvalue 2) whose fields (user value) hold a fast
** decoder at key upvalue 5, the message is encoded into the ring at
** once: true. What did not fit goes to rest(obj, status, off, piece)
** (upvalue 4: the Lua side queues it), whose result is returned.
** Anything else (a callback, a channel that is not fast) is the Lua
** method's (upvalue 3), called as it is; another object is an error.
*/
static int l_ring_send(lua_State *L) {
  int nargs = lua_gettop(L);
  cp_decoder *d = NULL;
  if (cp_testclass(L, 1, 2) == NULL) {
    const char *tname;
    lua_getfield(L, lua_upvalueindex(2), "__name");
    tname = lua_tostring(L, -1);   /* (the metatable keeps it) */
    lua_pop(L, 1);                 /* index 1 is the argument, or none */
    return cp_self_error(L, tname, 0, "send");
  }
  if (nargs == 2 && !lua_isnil(L, 2) && cp_getuservalue(L, 1) == LUA_TTABLE) {
    lua_pushvalue(L, lua_upvalueindex(5));
    lua_rawget(L, -2);
    d = (cp_decoder *)cp_testclass(L, -1, 1);
    if (d != NULL && (!d->fast || d->ring.base == NULL || d->ring.broken))
      d = NULL;
    lua_settop(L, 2);
  }
  if (d == NULL) {
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_insert(L, 1);
    lua_call(L, nargs, LUA_MULTRET);
    return lua_gettop(L);
  }
  return ring_send(L, d);
}

/*
** core.ring_sender(class, method, rest, key) -> the 'send' method of
** class (see l_ring_send)
*/
static int l_ring_sender(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  luaL_checktype(L, 4, LUA_TSTRING);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_pushcclosure(L, l_ring_send, 5);
  return 1;
}


CP_API void cp_channel_open(lua_State *L) {
  static const luaL_Reg core_fns[] = {
    {"lua_send", l_lua_send},
    {"ring_sender", l_ring_sender},
    {NULL, NULL}
  };
  static const luaL_Reg dec_methods[] = {
    {"put", l_put},
    {"fast", l_fast},
    {NULL, NULL}
  };
  luaL_checkstack(L, 4, "cannot open the channel");
  luaL_getmetatable(L, CP_DECODER_MT);   /* cp_frame_open's */
  lua_getfield(L, -1, "__index");
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, dec_methods, 1);
  lua_pop(L, 1);
  luaL_setfuncs(L, core_fns, 1);   /* pops the metatable */
}
