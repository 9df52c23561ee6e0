/*
** serialize.c: the rings of a 'lua' channel, the incremental decoder
** (core.decoder) used by both serializations, and the channel's writer
** (core.lua_send, the ring sender).
*/

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "codec.h"
#include "lua_encode.h"
#include "lua_wire.h"
#include "compat.h"
#include "cp.h"

/* the value a ring's 0x0c marker decodes to (core.handle_mark) */
static const char handle_mark = 0;




/*
** {======================================================
** The rings: a 'lua' channel's bytes in shared memory
**
** A memfd, made by the parent for each 'lua' channel and inherited by
** the child, holds a header and two rings, one per direction (half 0
** is written by the parent, half 1 by the child). Once mapped, every
** frame of the channel goes through the writer's ring, none through
** the socket (which stays, for its end of file when a side goes):
** - A frame of at most a ring's size (r->half: each ring is half of the
**   mapping after the header) is copied in whole, in one piece, and
**   decoded by the reader where it lies. Where it would not fit
**   before the ring's end, the writer marks the rest of the ring as
**   padding (a length of RING_PAD) and begins at its start; it also
**   begins at the start whenever the reader has taken everything, so
**   the memory it writes is the memory just used (still in cache).
** - A longer frame goes in as a stream, as much as there is room for;
**   the reader gathers it in a buffer of the ring's own.
** - A frame header never straddles the ring's end: fewer than 4 bytes
**   left before it are skipped by both sides.
** The header holds each ring's head (written up to) and tail (read up
** to), and a flag per side for each way it can wait: for data (set
** before its loop sleeps) and for room (set when a write did not fit).
** Whoever moves a head or tail then takes the peer's flag and, if it
** was set, rings the peer's doorbell: an eventfd its loop watches
** (edge-triggered: it is never read). A message costs one write(2)
** on a doorbell when its reader sleeps, and no system call when it is
** busy. Each side trusts nothing of the other's: a head or tail out
** of bounds, a frame not where the rules put it, breaks the channel.
** =======================================================
*/
#define RING_HDR ((size_t)4096)
#define H_TAIL(h) ((size_t)(8 * (h)))           /* u64: read up to */
#define H_HEAD(h) ((size_t)(64 + 8 * (h)))      /* u64: written up to */
#define H_WDATA(s) ((size_t)(128 + 4 * (s)))    /* u32: s sleeps */
#define H_WROOM(s) ((size_t)(192 + 4 * (s)))    /* u32: s waits for room */
#define H_CPU(s) ((size_t)(256 + 4 * (s)))      /* u32: 1 + the CPU s last
                                                ** waited on (see cp_ring_poll) */
#define RING_PAD UINT32_MAX                     /* skip to the start */
#ifndef CP_RING_MIN                   /* (the fuzz build sets it small) */
#define CP_RING_MIN ((size_t)64 << 10)
#endif
#define RING_MIN CP_RING_MIN           /* smallest ring */

typedef struct cp_ring {
  unsigned char *base;   /* mapping: header, half 0, half 1; NULL: none */
  size_t half;           /* bytes per ring */
  int side;              /* 0 parent, 1 child: the half this side writes */
  int broken;            /* the peer broke the rules: no more use */
  int bell;              /* the peer's doorbell, or -1 */
  int mybell;            /* ours (the loop reports it when it arms us) */
  uint64_t head;         /* next free position of our ring */
  uint64_t rtail;        /* next position to read in the peer's ring */
  size_t needroom;       /* bytes of room our next write waits for, or 0 */
  unsigned char *gbuf;   /* a frame longer than the ring, gathered here */
  size_t glen, gcap;     /* (apart from the socket's buffer: a peer that
                         ** also writes to the socket mixes nothing up) */
} cp_ring;

static _Atomic uint64_t *ring_u64(const cp_ring *r, size_t at) {
  return (_Atomic uint64_t *)(void *)(r->base + at);
}

static _Atomic uint32_t *ring_u32(const cp_ring *r, size_t at) {
  return (_Atomic uint32_t *)(void *)(r->base + at);
}

static unsigned char *ring_half(const cp_ring *r, int h) {
  return r->base + RING_HDR + (size_t)h * r->half;
}

/* Takes the flag at 'at' and rings the peer's doorbell if it was set.
** (The store before this one and this exchange are sequentially
** consistent, as are the peer's flag store and its load after: one of
** the two sees the other.) */
static void ring_wake(cp_ring *r, size_t at) {
  if (atomic_exchange(ring_u32(r, at), 0) && r->bell >= 0) {
    uint64_t one = 1;
    ssize_t n;
    do n = write(r->bell, &one, sizeof one); while (n < 0 && errno == EINTR);
  }
}

/* The incremental decoder (below) is also the channel's codec state: it
** holds the rings, which core.lua_send writes into. */
enum { K_LUA, K_JSON };

typedef struct decoder {
  char *buf;
  size_t r, w, scan, cap;
  size_t max;      /* largest payload (lua) or line (json) */
  int kind;
  int dead;        /* after an error: the message is in UV_ERROR */
  int ballast;     /* UV_BALLAST holds the ballast (see dec_ballast) */
  int fast;        /* dec:fast(): the channel is ringed, open, and nothing
                   ** waits to be written: the ring sender may write */
  cp_ring ring;    /* the channel's rings ('lua'), if mapped */
  cp_fdq fdq;      /* fds that came on the socket, not yet claimed */
  uint64_t spos;   /* stream position of buf[r] */
} decoder;

/* a decoder's user value is a table: */
#define UV_BALLAST 1   /* see dec_ballast */
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

/* core.ring_new(size) -> fd: a memfd for two rings of size bytes each */
static int l_ring_new(lua_State *L) {
  lua_Integer size = luaL_checkinteger(L, 1);
  int fd;
  luaL_argcheck(L, size >= (lua_Integer)RING_MIN &&
                size <= ((lua_Integer)1 << 30) && size % 4096 == 0, 1,
                "bad ring size");
  fd = memfd_create("childproc-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) { lua_pushnil(L); lua_pushinteger(L, errno); return 2; }
  if (ftruncate(fd, (off_t)(RING_HDR + 2 * (size_t)size)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    int err = errno;
    close(fd);
    lua_pushnil(L);
    lua_pushinteger(L, err);
    return 2;
  }
  lua_pushinteger(L, fd);
  return 1;
}

static void ring_unmap(cp_ring *r) {
  if (r->base != NULL)
    munmap(r->base, RING_HDR + 2 * r->half);
  r->base = NULL;
  r->bell = r->mybell = -1;
  free(r->gbuf);
  r->gbuf = NULL;
  r->glen = r->gcap = 0;
}

/*
** Maps fd as side's rings; 0 or an errno. Only a memfd sealed against
** resizing (what ring_new makes) is taken: no other file, and no
** mapping that the other side could shrink under us (SIGBUS).
*/
static int ring_map(cp_ring *r, int fd, int side, int bell, int mybell) {
  struct stat st;
  int seals = fcntl(fd, F_GET_SEALS);
  void *p;
  size_t half;
  if (seals < 0) return errno;  /* EINVAL: not a memfd */
  if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
    return EINVAL;
  if (fstat(fd, &st) != 0) return errno;
  if (st.st_size < (off_t)(RING_HDR + 2 * RING_MIN) ||
      st.st_size > (off_t)(RING_HDR + ((size_t)2 << 30)) ||
      (st.st_size - (off_t)RING_HDR) % 8192 != 0)
    return EINVAL;
  half = ((size_t)st.st_size - RING_HDR) / 2;
  p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
           fd, 0);
  if (p == MAP_FAILED) return errno;
  ring_unmap(r);
  r->base = (unsigned char *)p;
  r->half = half;
  r->side = side;
  r->broken = 0;
  r->bell = bell;
  r->mybell = mybell;
  r->head = atomic_load(ring_u64(r, H_HEAD(side)));
  r->rtail = atomic_load(ring_u64(r, H_TAIL(1 - side)));
  return 0;
}

/* Copies frame bytes [from, from + n) (the frame given as pieces) into
** our ring at position pos, wrapping at its end */
static void ring_copy(cp_ring *r, uint64_t pos, const struct iovec *iov,
                      int k, size_t from, size_t n) {
  unsigned char *ring = ring_half(r, r->side);
  size_t off = (size_t)(pos % r->half), at = 0;  /* at: where iov[i] starts */
  int i;
  for (i = 0; i < k && n > 0; at += iov[i].iov_len, i++) {
    const char *p = (const char *)iov[i].iov_base;
    size_t len = iov[i].iov_len;
    if (at + len <= from) continue;
    if (from > at) { p += from - at; len -= from - at; }
    if (len > n) len = n;
    from += len;
    n -= len;
    while (len > 0) {
      size_t m = r->half - off < len ? r->half - off : len;
      memcpy(ring + off, p, m);
      p += m;
      len -= m;
      off = (off + m) % r->half;
    }
  }
}

/* Makes positions [r->head, upto) readable and wakes a sleeping reader */
static void ring_publish(cp_ring *r, uint64_t upto) {
  r->head = upto;
  atomic_store(ring_u64(r, H_HEAD(r->side)), upto);
  ring_wake(r, H_WDATA(1 - r->side));
}

/*
** One attempt to write the frame's bytes from 'from' on (the frame is
** len bytes, in pieces) into our ring, by the rules above. Returns the
** bytes taken (0: no room), or -1 when the peer's tail makes no sense.
*/
static ssize_t ring_write1(cp_ring *r, const struct iovec *iov, int k,
                           size_t len, size_t from) {
  uint64_t tail = atomic_load(ring_u64(r, H_TAIL(r->side)));
  size_t room, n, first = len <= r->half ? len : 4;  /* first: at once */
  uint64_t at = r->head;
  if (tail > r->head || r->head - tail > r->half) {
    r->broken = 1;
    return -1;
  }
  room = r->half - (size_t)(r->head - tail);
  if (from == 0) {  /* a frame's start: skip to the ring's start? */
    size_t off = (size_t)(at % r->half), end = r->half - off;
    if (off != 0 && (end < 4 || (len <= r->half && len > end) ||
                     (room == r->half && len <= room - end))) {
      if (end > room) return 0;
      if (end >= 4) put_u32(ring_half(r, r->side) + off, RING_PAD);
      at += end;
      room -= end;
      if (first > room) {  /* the padding alone, for the reader to pass */
        ring_publish(r, at);
        return 0;
      }
    }
    if (first > room) return 0;
  }
  n = len - from < room ? len - from : room;
  if (n == 0) return 0;
  ring_copy(r, at, iov, k, from, n);
  ring_publish(r, at + n);
  return (ssize_t)n;
}

/*
** Writes what fits; returns the bytes taken or -1 (broken). When not
** all fit, the room flag is set (and room looked for once more after
** it): the reader rings our doorbell when it has taken some.
*/
static ssize_t ring_write(cp_ring *r, const struct iovec *iov, int k,
                          size_t len, size_t from) {
  size_t done = 0;
  int flagged = 0;
  if (r->base == NULL || r->broken) return -1;
  for (;;) {
    ssize_t n = ring_write1(r, iov, k, len, from + done);
    if (n < 0) return -1;
    done += (size_t)n;
    if (from + done == len) {
      r->needroom = 0;
      return (ssize_t)done;
    }
    if (n == 0) {
      if (flagged) {  /* a frame's start goes in whole (a long one's 4) */
        r->needroom = from + done > 0 ? 1 : len <= r->half ? len : 4;
        return (ssize_t)done;
      }
      atomic_store(ring_u32(r, H_WROOM(r->side)), 1);
      flagged = 1;
    }
  }
}
/* }====================================================== */


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
** Encodes the value at vidx into a frame (encode_frame), or raises: for a
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
  else if (ring && e->b->n - 4 + e->extra >= RING_PAD) {
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
  decoder *d = lua_isnoneornil(L, 3) ? NULL
             : (decoder *)cp_checkclass(L, 3, 1, CP_DECODER_MT);
  cp_ring *ring = d != NULL && d->ring.base != NULL ? &d->ring : NULL;
  int where = (int)luaL_optinteger(L, 4, 0);
  luaL_checkany(L, 2);
  lua_settop(L, 3);
  encode_or_raise(L, &e, segs, 2, ring != NULL, where);
  k = cp_lua_iov(&e, iov);
  if (fd >= 0 && ring != NULL) {
    ssize_t r = ring_write(ring, iov, k, e.b->n + e.extra, 0);
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
/* }====================================================== */


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
** (The decoder struct is defined with the rings, above.)
** =======================================================
*/

/* Above this, an emptied buffer is given back to the system */
#define KEEP_MAX ((size_t)4 << 20)   /* a larger idle buffer is freed */
#define READ_CHUNK ((size_t)256 << 10) /* readfd's usual read */
#define READ_BIG ((size_t)4 << 20)     /* its read for a known big frame */

/* (the decoder's functions have its metatable as upvalue 1) */
static decoder *check_decoder(lua_State *L) {
  return (decoder *)cp_checkclass(L, 1, 1, CP_DECODER_MT);
}

/*
** Compacts when what was consumed at the front is at least what must
** move (so each byte is moved at most once per byte consumed), and
** grows geometrically otherwise: appends stay linear.
*/
/* room for n more bytes at d->buf + d->w; NULL when out of memory */
static char *dec_reserve(decoder *d, size_t n) {
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

static int dec_append(decoder *d, const char *s, size_t n) {
  char *p = dec_reserve(d, n);
  if (p == NULL) return 1;
  memcpy(p, s, n);
  d->w += n;
  return 0;
}

/* Kills the decoder at idx, keeping msg as its error */
static void dec_kill(lua_State *L, decoder *d, int idx, const char *msg) {
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
static int dec_die(lua_State *L, decoder *d, const char *msg, lua_Integer n) {
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

/* The message for a payload over the decoder's limit; returns 1 */
static int too_large(char *err, size_t errsz, size_t n, size_t max) {
  snprintf(err, errsz, "message of %zu bytes exceeds the limit of %zu bytes",
           n, max);
  return 1;
}

/*
** A big string decoded into a small Lua heap doubles it, and Lua 5.4's
** generational collector then does a full collection (every live object
** marked) for each such message. The first big payload a decoder sees
** gives it a ballast: a userdata of BALLAST bytes that Lua counts in its
** heap but nothing ever touches (malloc maps it; the pages stay out of
** memory), so big strings are young garbage for minor collections.
** It goes with the decoder (or when it dies: the user value then holds
** the error).
*/
#define BALLAST ((size_t)8 << 20)
#define BALLAST_MIN ((size_t)64 << 10)   /* payloads that get it */

static void dec_ballast(lua_State *L, decoder *d, int idx, size_t plen) {
  if (plen < BALLAST_MIN || d->ballast || !lua_checkstack(L, 3)) return;
  d->ballast = 1;
  cp_newuserdata(L, BALLAST, 0);
  dec_setuv(L, idx, UV_BALLAST);
}

/*
** Decode every complete message in the buffer into out (stack index 3),
** counting them in *n.  Returns the number of results pushed on an error
** (nil, msg, n), else 0.
*/
static int decode_all(lua_State *L, decoder *d, lua_Integer *np) {
  lua_Integer n = *np;
  char err[160];
  for (;;) {
    if (d->r == d->w) break;  /* nothing (buf may even be NULL) */
    if (d->kind == K_LUA) {
      size_t plen;
      if (d->w - d->r < 4) break;
      plen = get_u32((const unsigned char *)d->buf + d->r);
      if (plen > d->max && too_large(err, sizeof(err), plen, d->max))
        { *np = n; return dec_die(L, d, err, n); }
      if (d->w - d->r - 4 < plen) break;
      dec_ballast(L, d, 1, plen);
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
  decoder *d = check_decoder(L);
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
  decoder *d = check_decoder(L);
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
  decoder *d = check_decoder(L);
  lua_pushinteger(L, (lua_Integer)(d->w - d->r));
  return 1;
}

/* dec:ring(fd, side [, bell, mybell]) -> true | nil, errno: use fd
** (core.ring_new's) as the channel's rings, this side writing half
** 'side' (0 parent, 1 child); bell: the peer's doorbell (an eventfd),
** mybell: ours (see cp_ring_arm) */
static int l_ring(lua_State *L) {
  decoder *d = check_decoder(L);
  int fd = (int)luaL_checkinteger(L, 2);
  int side = (int)luaL_checkinteger(L, 3), err;
  int bell = (int)luaL_optinteger(L, 4, -1);
  int mybell = (int)luaL_optinteger(L, 5, -1);
  luaL_argcheck(L, side == 0 || side == 1, 3, "0 or 1 expected");
  luaL_argcheck(L, d->kind == K_LUA, 1, "a 'lua' decoder expected");
  if ((err = ring_map(&d->ring, fd, side, bell, mybell)) != 0) {
    lua_pushnil(L);
    lua_pushinteger(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* The reader has taken bytes up to r->rtail: say so, and wake a writer
** that waits for room */
static void ring_consumed(cp_ring *r) {
  atomic_store(ring_u64(r, H_TAIL(1 - r->side)), r->rtail);
  ring_wake(r, H_WROOM(1 - r->side));
}

static int ring_broken(char *err, size_t errsz, const char *what) {
  snprintf(err, errsz, "malformed 'lua' message: %s in the ring", what);
  return 1;
}

/* Appends n bytes to the gathered long frame; 0, or 1 out of memory.
** Grows as bytes come (never by what a header only claims). */
static int ring_gather(cp_ring *r, const unsigned char *p, size_t n) {
  if (n > r->gcap - r->glen) {
    size_t ncap = r->gcap ? r->gcap : READ_CHUNK;
    unsigned char *nb;
    while (ncap < r->glen + n) ncap *= 2;
    if ((nb = (unsigned char *)realloc(r->gbuf, ncap)) == NULL) return 1;
    r->gbuf = nb;
    r->gcap = ncap;
  }
  memcpy(r->gbuf + r->glen, p, n);
  r->glen += n;
  return 0;
}

/*
** Decodes what the peer's ring holds (the decoder is at stack index
** self) into the table at stack index out, counting messages in *np,
** taking about a ring's worth of bytes (the rest waits for the next
** call: the loop has other work). 0, or 1 with the error in err (the
** ring is then broken).
*/
static int ring_take(lua_State *L, decoder *d, int self, lua_Integer *np,
                     int out, char *err, size_t errsz) {
  cp_ring *r = &d->ring;
  const unsigned char *ring = ring_half(r, 1 - r->side);
  uint64_t head = atomic_load(ring_u64(r, H_HEAD(1 - r->side)));
  uint64_t start = r->rtail;
  const char *fault = NULL;
  if (r->broken) return ring_broken(err, errsz, "an earlier fault");
  if (head < r->rtail || head - r->rtail > r->half)
    fault = "a head out of bounds";
  while (fault == NULL && r->rtail < head && r->rtail - start < r->half) {
    size_t off = (size_t)(r->rtail % r->half), end = r->half - off;
    size_t avail = (size_t)(head - r->rtail), plen, n;
    if (r->glen > 0) {  /* a frame longer than the ring, in pieces */
      size_t need;
      plen = get_u32(r->gbuf);
      need = 4 + plen - r->glen;
      n = need < avail ? need : avail;
      if (n > end) n = end;
      if (ring_gather(r, ring + off, n))
        return snprintf(err, errsz, "not enough memory") > 0;
      r->rtail += n;
      if (n < need) continue;
      ring_consumed(r);
      dec_ballast(L, d, self, plen);
      if (cp_lua_decode(L, (const char *)r->gbuf + 4, plen, err, errsz))
        { r->broken = 1; return 1; }
      lua_rawseti(L, out, ++*np);
      r->glen = 0;
      if (r->gcap > KEEP_MAX) {
        free(r->gbuf);
        r->gbuf = NULL;
        r->gcap = 0;
      }
      continue;
    }
    /* a frame's start: skipped bytes were published with what follows */
    if (end < 4 || (plen = get_u32(ring + off)) == RING_PAD) {
      if (avail < end) fault = "a skip past the head";
      else r->rtail += end;
      continue;
    }
    if (avail < 4) fault = "a header cut";
    else if (plen > d->max) {
      r->broken = 1;
      return too_large(err, errsz, plen, d->max);
    }
    else if (4 + plen <= r->half) {
      if (4 + plen > end || 4 + plen > avail) {
        fault = "a frame cut";
        break;
      }
      if (plen == 1 && ring[off + 4] == T_MARK)
        lua_pushlightuserdata(L, (void *)&handle_mark);
      else {
        dec_ballast(L, d, self, plen);
        if (cp_lua_decode(L, (const char *)ring + off + 4, plen, err,
                               errsz))
          { r->broken = 1; return 1; }
      }
      lua_rawseti(L, out, ++*np);
      r->rtail += 4 + plen;
    }
    else {  /* the start of a long one */
      n = avail < end ? avail : end;
      if (ring_gather(r, ring + off, n))
        return snprintf(err, errsz, "not enough memory") > 0;
      r->rtail += n;
    }
  }
  if (fault != NULL) {
    r->broken = 1;
    return ring_broken(err, errsz, fault);
  }
  if (r->rtail != start) ring_consumed(r);
  return 0;
}

/*
** dec:take(out) -> n: decodes the messages the peer's ring holds into
** out[1..n]; nil, msg, n as feed on a fault (the decoder is then dead).
*/
static int l_take(lua_State *L) {
  decoder *d = check_decoder(L);
  lua_Integer n = 0;
  char err[160];
  int r;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (d->dead) return dead_result(L);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);  /* out at index 3, as decode_all wants it */
  if (d->ring.base == NULL) { lua_pushinteger(L, 0); return 1; }
  r = ring_take(L, d, 1, &n, 3, err, sizeof(err));
  if (r != 0) return dec_die(L, d, err, n);
  lua_pushinteger(L, n);
  return 1;
}

/*
** dec:put(frame, off) -> n | false | nil: writes frame (from byte off)
** into our ring: bytes taken, false when there is no room now (the
** peer rings our doorbell when it has made some), nil when the peer
** broke the rules. frame: a string, or a table of pieces whose field n
** is their length (push_ring_rest).
*/
static int l_put(lua_State *L) {
  decoder *d = check_decoder(L);
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
  n = ring_write(&d->ring, iov, k, len, (size_t)off);
  if (n < 0) lua_pushnil(L);
  else if (n == 0) lua_pushboolean(L, 0);
  else lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* Before the loop sleeps: ask the peer to ring our doorbell when it
** writes; 1 if the peer's ring already holds data (the flag then stays
** set: at worst one ring more), or our ring has the room a write waits
** for. So a doorbell's edge lost (the loop stopped at an error before
** its handler) is found again at the next wait, for either reason. */
static int ring_news(const cp_ring *r) {
  if (atomic_load(ring_u64(r, H_HEAD(1 - r->side))) != r->rtail) return 1;
  if (r->needroom > 0 && !r->broken) {
    uint64_t tail = atomic_load(ring_u64(r, H_TAIL(r->side)));
    return tail <= r->head && r->half - (size_t)(r->head - tail) >= r->needroom;
  }
  return 0;
}

static int ring_arm(decoder *d) {
  cp_ring *r = &d->ring;
  if (r->base == NULL || d->dead) return 0;
  atomic_store(ring_u32(r, H_WDATA(r->side)), 1);
  return ring_news(r);
}

/* dec:arm() -> boolean: ring_arm */
static int l_arm(lua_State *L) {
  lua_pushboolean(L, ring_arm(check_decoder(L)));
  return 1;
}

CP_API int cp_ring_arm(void *dec, int *bell) {
  decoder *d = (decoder *)dec;
  if (!ring_arm(d)) return 0;
  *bell = d->ring.mybell;
  return 1;
}

/* For the loop's spin (src/loop.c), without arming: says that we wait on
** CPU cpu; 1 with *bell = our doorbell when the peer's ring holds data
** or our waiting write has its room; else 0, with *active set when the
** peer is awake (not waiting for data) on another CPU, so that an answer
** may come within microseconds. */
CP_API int cp_ring_poll(void *dec, int cpu, int *bell, int *active) {
  decoder *d = (decoder *)dec;
  cp_ring *r = &d->ring;
  unsigned peer;
  *active = 0;
  if (r->base == NULL || d->dead) return 0;
  *bell = r->mybell;
  atomic_store(ring_u32(r, H_CPU(r->side)), (uint32_t)cpu + 1);
  if (ring_news(r)) return 1;
  peer = atomic_load(ring_u32(r, H_CPU(1 - r->side)));
  *active = peer != 0 && peer != (unsigned)cpu + 1 &&
            !atomic_load(ring_u32(r, H_WDATA(1 - r->side)));
  return 0;
}

CP_API int cp_ring_bell(void *dec) {
  decoder *d = (decoder *)dec;
  return d->ring.base != NULL ? d->ring.mybell : -1;
}

/*
** dec:fast(on): the channel is ringed, open, not disconnecting, and
** nothing waits to be written (lua/ipc.lua says so whenever that
** changes): the ring sender may then write a message into the ring at
** once, ahead of nothing.
*/
static int l_fast(lua_State *L) {
  decoder *d = check_decoder(L);
  d->fast = lua_toboolean(L, 2) && d->ring.base != NULL && !d->dead;
  return 0;
}

/*
** The ring sender's short way (l_ring_send): encodes the message at 2
** into d's ring; true, or rest(obj, status, off, piece)'s result when
** not all of it went (status, off, piece as core.lua_send's). A message
** that cannot be sent raises send()'s error at the caller's line.
*/
static int ring_send(lua_State *L, decoder *d) {
  cp_enc e;
  struct cp_seg segs[CP_SEG_MAX];
  struct iovec iov[2 * CP_SEG_MAX + 1];
  size_t len;
  ssize_t w;
  int k;
  encode_or_raise(L, &e, segs, 2, 1, 1);
  len = e.b->n + e.extra;
  k = cp_lua_iov(&e, iov);
  w = ring_write(&d->ring, iov, k, len, 0);
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
  decoder *d = NULL;
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
    d = (decoder *)cp_testclass(L, -1, 1);
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

/* dec:unring(): unmap the rings and close the fds not claimed (the
** channel is closed) */
static int l_unring(lua_State *L) {
  decoder *d = check_decoder(L);
  ring_unmap(&d->ring);
  cp_fdq_clear(&d->fdq);
  return 0;
}

static int l_decoder_gc(lua_State *L) {
  decoder *d = check_decoder(L);
  ring_unmap(&d->ring);
  cp_fdq_clear(&d->fdq);
  free(d->buf);
  d->buf = NULL;
  d->r = d->w = d->scan = d->cap = 0;
  return 0;
}

static int l_decoder_tostring(lua_State *L) {
  decoder *d = check_decoder(L);
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
  decoder *d;
  luaL_argcheck(L, max >= 0, 2, "must not be negative");
  d = (decoder *)cp_newuserdata(L, sizeof(*d), 1);
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


CP_API int cp_codec_open(lua_State *L) {
  static const luaL_Reg core_fns[] = {
    {"lua_send", l_lua_send},
    {"ring_new", l_ring_new},
    {"ring_sender", l_ring_sender},
    {"json_encode", cp_json_encode},
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
    {"put", l_put},
    {"arm", l_arm},
    {"fast", l_fast},
    {NULL, NULL}
  };
  static const luaL_Reg dec_meta[] = {
    {"__gc", l_decoder_gc},
    {"__tostring", l_decoder_tostring},
    {NULL, NULL}
  };
  luaL_checkstack(L, 4, "cannot open the codecs");
  /* every function gets the decoder's metatable as upvalue 1 */
  luaL_newmetatable(L, CP_DECODER_MT);
  luaL_newlibtable(L, dec_methods);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, dec_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -1);
  luaL_setfuncs(L, dec_meta, 1);
  luaL_setfuncs(L, core_fns, 1);   /* pops the metatable */
  lua_pushlightuserdata(L, cp_json_nullp());
  lua_setfield(L, -2, "json_null");
  lua_pushlightuserdata(L, (void *)&handle_mark);
  lua_setfield(L, -2, "handle_mark");
  luaL_newmetatable(L, CP_HANDLEMSG_MT);
  lua_setfield(L, -2, "handlemsg_mt");
  return 0;
}
