/*
** buf.h: the output buffer and the encoder state and errors that both
** message encoders use (src/lua_encode.c for 'lua', src/json.c for
** 'json'); src/buf.c holds them.
*/
#ifndef CP_BUF_H
#define CP_BUF_H

#include <stddef.h>

#include <lua.h>

#include "cp.h"

struct cp_seg;   /* a long string left out of the buffer (lua_encode.h) */

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
/* Frees the buffer and pushes the recorded error's message */
CP_API void cp_enc_pushmsg(cp_enc *e);
/* Frees the buffer and raises the recorded error */
CP_API int cp_enc_raise(cp_enc *e);
/* }====================================================== */

#endif
