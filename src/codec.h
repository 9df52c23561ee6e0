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

#ifndef CP_API
#define CP_API __attribute__((visibility("hidden")))
#endif

/*
** One nesting limit for both codecs, encode and decode alike: a table
** (JSON array or object) at the top level has depth 1, and a message
** with a table nested deeper than CP_MAX_DEPTH is refused with
** "excessive nesting (200)". It bounds the C recursion of the encoders
** and decoders (each level uses a few hundred bytes of C stack and a
** few Lua stack slots), so hostile input cannot overflow either stack.
*/
#define CP_MAX_DEPTH 200

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


/*
** fds that came over the channel's socket (src/handle.c), each with the
** stream position where the read that brought it ended; a frame claims
** those noted within it
*/
#define CP_FDQ_MAX 16
typedef struct cp_fdq {
  int fd[CP_FDQ_MAX];
  uint64_t pos[CP_FDQ_MAX];
  int n;
  int notsock;     /* the channel is not a socket: plain reads */
} cp_fdq;

/* One read of at most len bytes from sock into buf (recvmsg, fds
** close-on-exec, noted at pos + bytes read); read(2)'s result */
CP_API ssize_t cp_fdq_recv(cp_fdq *q, int sock, char *buf, size_t len,
                           uint64_t pos);
/* Takes the fds noted up to end: returns how many, the first in *fd
** (the others are closed) */
CP_API int cp_fdq_claim(cp_fdq *q, uint64_t end, int *fd);
/* Closes every fd still noted */
CP_API void cp_fdq_clear(cp_fdq *q);

/* Registry name of the metatable of { message, fd }: a decoded message
** that came with a handle */
#define CP_HANDLEMSG_MT "childproc.handlemsg"

/*
** {======================================================
** Output buffer owned by a userdata, so a Lua error raised while a
** message is being built (out of memory in the Lua API) leaks nothing:
** its __gc frees the block. The encoders also free it explicitly
** before raising their own errors.
** =======================================================
*/
typedef struct cp_wbuf {
  char *p;        /* block (malloc) or NULL */
  size_t n;       /* bytes used */
  size_t cap;     /* bytes allocated */
  size_t limit;   /* largest allowed n */
  int kept;       /* the state's reusable buffer (see cp_wbuf_get) */
  int busy;       /* the kept buffer is in use by an encoder */
} cp_wbuf;

/* Pushes a new empty buffer userdata; returns it */
CP_API cp_wbuf *cp_wbuf_new(lua_State *L, size_t limit);
/*
** Pushes an empty buffer: the state's kept one when no encoder uses it
** (an encoder run by a __gc during another's gets a new one), so a
** message costs no userdata and no malloc. cp_wbuf_free gives it back.
*/
CP_API cp_wbuf *cp_wbuf_get(lua_State *L, size_t limit);
/* Room for 'need' more bytes at p + n, or NULL (out of memory/limit) */
CP_API char *cp_wbuf_reserve(cp_wbuf *b, size_t need);
/* Frees the block (the kept buffer keeps a small one) and lets go */
CP_API void cp_wbuf_free(cp_wbuf *b);
/* }====================================================== */


/*
** {======================================================
** Encoder state and error reporting shared by both encoders. Encoding
** functions return 0 on success and non-zero after recording the error
** in the state; each table level on the way back adds its key to the
** path so the message says where the bad value was.
** =======================================================
*/
typedef struct cp_enc {
  lua_State *L;
  cp_wbuf *b;
  int seen;          /* stack slot of the seen table (nil until used) */
  int path;          /* stack slot of the error path (nil until used) */
  int npath;         /* segments in the path table */
  int depth;         /* current table depth */
  lua_Integer nseen; /* tables numbered so far ('lua' back-references) */
  const void *first; /* table number 1 ('lua'): kept out of the seen table
                        so a message of one table makes no seen table */
  int withpath;      /* does the error message take a path? */
  char msg[96];      /* error message, without the path */
  /*
  ** 'lua' encoder for core.lua_send only (NULL/0 otherwise): long strings
  ** are not copied into b but recorded here, to be written from the Lua
  ** strings themselves; they stay anchored in the table at stack slot
  ** 'anchors' (nil until used), in the order of 'seg'.
  */
  struct cp_seg *seg;
  int nseg;          /* segments recorded */
  int anchors;       /* stack slot of the anchoring table (0: none) */
  size_t extra;      /* frame bytes held in segments, not in b */
} cp_enc;

/* Reserves the stack slots and the buffer; pushes 3 values */
CP_API void cp_enc_init(cp_enc *e, lua_State *L, size_t limit);
/* Records an error; returns 1 so callers can 'return cp_enc_fail(...)' */
CP_API int cp_enc_fail(cp_enc *e, int withpath, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
/*
** Records that the failing value sits under the key at stack index
** 'kidx' ('iskey': the key itself is what failed)
*/
CP_API void cp_enc_addpath(cp_enc *e, int kidx, int iskey);
/* Frees the buffer and raises the recorded error */
CP_API int cp_enc_raise(cp_enc *e);
/* }====================================================== */


/*
** {======================================================
** JSON pieces used by the decoder in serialize.c
** =======================================================
*/
CP_API int cp_json_encode(lua_State *L);
/*
** Decodes the JSON text p[0..n) (one line) and pushes its value;
** returns 0, or 1 after writing a message into errbuf, with the stack
** as it was.
*/
CP_API int cp_json_decode(lua_State *L, const char *p, size_t n,
                          char *errbuf, size_t errsz);
/* The unique light userdata standing for JSON null */
CP_API void *cp_json_nullp(void);
/* }====================================================== */

#endif
