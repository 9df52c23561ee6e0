/*
** frame.h: the framing decoder (src/frame.c, core.decoder): a channel's
** incoming bytes cut into the frames of either serialization and
** decoded. It also holds the channel's rings and the fds that came with
** its messages, so the channel's writer (src/channel.c) reaches the
** rings through it.
*/
#ifndef CP_FRAME_H
#define CP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "cp.h"
#include "handle.h"
#include "ring.h"

/* Metatable name of the decoder userdata made by core.decoder */
#define CP_DECODER_MT "childproc.Decoder"

/* The incremental decoder is also the channel's codec state: it holds
** the rings, which core.lua_send writes into (src/channel.c). */
typedef struct cp_decoder {
  char *buf;
  size_t r, w, scan, cap;
  size_t max;      /* largest payload (lua) or line (json) */
  int kind;
  int dead;        /* after an error: the message is in UV_ERROR */
  int ballast;     /* UV_BALLAST holds the ballast (cp_lua_ballast) */
  int fast;        /* dec:fast(): the channel is ringed, open, and nothing
                   ** waits to be written: the ring sender may write */
  cp_ring ring;    /* the channel's rings ('lua'), if mapped */
  cp_fdq fdq;      /* fds that came on the socket, not yet claimed */
  uint64_t spos;   /* stream position of buf[r] */
} cp_decoder;

#endif
