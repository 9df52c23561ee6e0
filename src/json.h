/*
** json.h: the 'json' codec (src/json.c), Node's serialization: for the
** framing decoder (src/frame.c) and the fuzz targets.
*/
#ifndef CP_JSON_H
#define CP_JSON_H

#include <stddef.h>

#include <lua.h>

#include "cp.h"

/* core.json_encode(value) -> one line of JSON, "\n" included */
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

#endif
