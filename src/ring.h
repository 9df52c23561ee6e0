/*
** ring.h: the rings of a 'lua' channel (src/ring.c): a memfd shared with
** the peer, one ring per direction. The framing decoder (src/frame.c)
** holds a channel's rings and takes the peer's frames; the channel's
** writer (src/channel.c) writes into ours.
*/
#ifndef CP_RING_H
#define CP_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <lua.h>

#include "cp.h"

/* A frame length that means: skip to the ring's start (padding), so a
** frame sent through a ring is shorter */
#define CP_RING_PAD UINT32_MAX

typedef struct cp_ring {
  unsigned char *base;   /* mapping: header, half 0, half 1; NULL: none */
  size_t half;           /* bytes per ring */
  int side;              /* 0 parent, 1 child: the half this side writes */
  int broken;            /* the peer broke the rules: no more use */
  int rbroken;           /* the peer's half broke them: no more reading
                         ** (ours is still written: replies to what came
                         ** before the fault go out before the close) */
  int bell;              /* the peer's doorbell, or -1 */
  int mybell;            /* ours (the loop reports it when it arms us) */
  uint64_t head;         /* next free position of our ring */
  uint64_t rtail;        /* next position to read in the peer's ring */
  size_t needroom;       /* bytes of room our next write waits for, or 0 */
  unsigned char *gbuf;   /* a frame longer than the ring, gathered here */
  size_t glen, gcap;     /* (apart from the socket's buffer: a peer that
                         ** also writes to the socket mixes nothing up) */
} cp_ring;

/* Maps fd (core.ring_new's) as side's rings (0 the parent, 1 the child:
** the half it writes); bell: the peer's doorbell, mybell: ours (-1:
** none). 0 or an errno */
CP_API int cp_ring_map(cp_ring *r, int fd, int side, int bell, int mybell);
/* Unmaps the rings and frees what they hold (a ring never mapped too) */
CP_API void cp_ring_unmap(cp_ring *r);
/* Writes what fits of the frame's bytes from 'from' on (the frame is len
** bytes, in k pieces) into our ring; the bytes taken, or -1 (broken) */
CP_API ssize_t cp_ring_write(cp_ring *r, const struct iovec *iov, int k,
                             size_t len, size_t from);
/* Decodes the frames the peer's ring holds into the table at stack index
** out (see src/ring.c) */
CP_API int cp_ring_take(lua_State *L, cp_ring *r, size_t max, int *ballast,
                        int self, lua_Integer *np, int out, char *err,
                        size_t errsz);
/* Before the loop sleeps: asks the peer to ring our doorbell when it
** writes; 1 when there is news already (data, or the room a write
** waits for) */
CP_API int cp_ring_arm(cp_ring *r);
/* For the loop's spin, without arming (see src/ring.c) */
CP_API int cp_ring_poll(cp_ring *r, int cpu, int *bell, int *active);
/* Our doorbell, or -1 when not mapped */
CP_API int cp_ring_bell(const cp_ring *r);

#endif
