/*
** ring.c: the rings of a 'lua' channel (ring.h): the memfd's header
** layout, mapping, writing a frame, taking the peer's frames (decoded by
** src/lua_decode.c), arming and polling for the loop, the doorbells.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "lua_wire.h"
#include "ring.h"

/* the value a ring's 0x0c marker decodes to (core.handle_mark) */
static const char handle_mark = 0;

/* a frame longer than the ring is gathered in a block of at least
** GATHER_MIN bytes, freed once used when larger than GATHER_KEEP */
#define GATHER_MIN ((size_t)256 << 10)
#define GATHER_KEEP ((size_t)4 << 20)

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
**   padding (a length of CP_RING_PAD) and begins at its start; it also
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
#ifndef CP_RING_MIN                   /* (the fuzz build sets it small) */
#define CP_RING_MIN ((size_t)64 << 10)
#endif
#define RING_MIN CP_RING_MIN           /* smallest ring */

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

CP_API void cp_ring_unmap(cp_ring *r) {
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
CP_API int cp_ring_map(cp_ring *r, int fd, int side, int bell, int mybell) {
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
  cp_ring_unmap(r);
  r->base = (unsigned char *)p;
  r->half = half;
  r->side = side;
  r->broken = r->rbroken = 0;
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
      if (end >= 4) put_u32(ring_half(r, r->side) + off, CP_RING_PAD);
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
CP_API ssize_t cp_ring_write(cp_ring *r, const struct iovec *iov, int k,
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
    size_t ncap = r->gcap ? r->gcap : GATHER_MIN;
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
** Decodes what the peer's ring holds into the table at stack index out,
** counting messages in *np, taking about a ring's worth of bytes (the
** rest waits for the next call: the loop has other work). 0, or 1 with
** the error in err (the ring is then broken). A payload over max is an
** error; big ones give the object at stack index self its ballast
** (cp_lua_ballast, *ballast: it has one).
*/
CP_API int cp_ring_take(lua_State *L, cp_ring *r, size_t max, int *ballast,
                        int self, lua_Integer *np, int out, char *err,
                        size_t errsz) {
  const unsigned char *ring = ring_half(r, 1 - r->side);
  uint64_t head = atomic_load(ring_u64(r, H_HEAD(1 - r->side)));
  uint64_t start = r->rtail;
  const char *fault = NULL;
  if (r->broken || r->rbroken)
    return ring_broken(err, errsz, "an earlier fault");
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
      cp_lua_ballast(L, ballast, self, plen);
      if (cp_lua_decode(L, (const char *)r->gbuf + 4, plen, err, errsz))
        { r->rbroken = 1; return 1; }
      lua_rawseti(L, out, ++*np);
      r->glen = 0;
      if (r->gcap > GATHER_KEEP) {
        free(r->gbuf);
        r->gbuf = NULL;
        r->gcap = 0;
      }
      continue;
    }
    /* a frame's start: skipped bytes were published with what follows */
    if (end < 4 || (plen = get_u32(ring + off)) == CP_RING_PAD) {
      if (avail < end) fault = "a skip past the head";
      else r->rtail += end;
      continue;
    }
    if (avail < 4) fault = "a header cut";
    else if (plen > max) {
      r->rbroken = 1;
      return cp_lua_too_large(err, errsz, plen, max);
    }
    else if (4 + plen <= r->half) {
      if (4 + plen > end || 4 + plen > avail) {
        fault = "a frame cut";
        break;
      }
      if (plen == 1 && ring[off + 4] == T_MARK)
        lua_pushlightuserdata(L, (void *)&handle_mark);
      else {
        cp_lua_ballast(L, ballast, self, plen);
        if (cp_lua_decode(L, (const char *)ring + off + 4, plen, err,
                               errsz))
          { r->rbroken = 1; return 1; }
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
    r->rbroken = 1;
    return ring_broken(err, errsz, fault);
  }
  if (r->rtail != start) ring_consumed(r);
  return 0;
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

CP_API int cp_ring_arm(cp_ring *r) {
  if (r->base == NULL) return 0;
  atomic_store(ring_u32(r, H_WDATA(r->side)), 1);
  return ring_news(r);
}

/* For the loop's spin (src/loop.c), without arming: says that we wait on
** CPU cpu; 1 with *bell = our doorbell when the peer's ring holds data
** or our waiting write has its room; else 0, with *active set when the
** peer is awake (not waiting for data) on another CPU, so that an answer
** may come within microseconds. */
CP_API int cp_ring_poll(cp_ring *r, int cpu, int *bell, int *active) {
  unsigned peer;
  *active = 0;
  if (r->base == NULL) return 0;
  *bell = r->mybell;
  atomic_store(ring_u32(r, H_CPU(r->side)), (uint32_t)cpu + 1);
  if (ring_news(r)) return 1;
  peer = atomic_load(ring_u32(r, H_CPU(1 - r->side)));
  *active = peer != 0 && peer != (unsigned)cpu + 1 &&
            !atomic_load(ring_u32(r, H_WDATA(1 - r->side)));
  return 0;
}

CP_API int cp_ring_bell(const cp_ring *r) {
  return r->base != NULL ? r->mybell : -1;
}
/* }====================================================== */


CP_API void cp_ring_open(lua_State *L) {
  lua_pushcfunction(L, l_ring_new);
  lua_setfield(L, -2, "ring_new");
  lua_pushlightuserdata(L, (void *)&handle_mark);
  lua_setfield(L, -2, "handle_mark");
}
