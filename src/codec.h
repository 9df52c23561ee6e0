/*
** codec.h: private interface shared by the two message codecs of the
** IPC channel (src/serialize.c for the 'lua' serialization, src/json.c
** for Node's 'json' serialization) and by their fuzz targets.
** Nothing here is part of the module's public API.
*/
#ifndef CP_CODEC_H
#define CP_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lua.h>
#include <lauxlib.h>

#include "buf.h"
#include "handle.h"
#include "json.h"

/* Metatable name of the decoder userdata made by core.decoder */
#define CP_DECODER_MT "childproc.Decoder"

/* Adds lua_encode, lua_send, json_encode, decoder, json_null to the table
** on top */
CP_API int cp_codec_open(lua_State *L);

/* For the loop (src/loop.c), before it sleeps: arms the ring of the
** decoder dec (the peer rings our doorbell when it writes); 1 with
** *bell = our doorbell when the peer's ring already holds data */
CP_API int cp_ring_arm(void *dec, int *bell);
/* ... or first, for the loop's spin: see src/serialize.c */
CP_API int cp_ring_poll(void *dec, int cpu, int *bell, int *active);
CP_API int cp_ring_bell(void *dec);

#endif
