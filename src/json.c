/*
** json.c: the 'json' serialization of the IPC channel, which is Node's
** own fork() protocol: each message is JSON.stringify(message) + "\n",
** so a Lua parent can talk to a Node child and the other way round.
**
** Lua -> JSON (core.json_encode):
**   nil            refused (at the top; it cannot occur inside tables)
**   boolean        true / false
**   integer        its decimal text (Node reads it as a double)
**   float          shortest text that reads back as the same double,
**                  with ".0" added when it looks like an integer, so a
**                  Lua peer gets a float back; NaN, inf, -inf -> null
**                  (as JSON.stringify does)
**   string         must be valid UTF-8 (else refused, so each line is
**                  valid JSON); '"', '\' and control characters escaped
**   core.json_null null
**   table          keys exactly 1..n (n >= 1) -> array; any other
**                  table, the empty one included -> object, whose keys
**                  are strings, or numbers written as their text (as JS
**                  does); other key types are refused
**   other types    refused: functions, userdata, threads
**   cycles are refused ("cycle in message"); a table shared by two
**   fields is written twice, as JSON.stringify does. Nesting deeper
**   than CP_MAX_DEPTH is refused. No raw newline is ever written
**   before the final one.
**
** JSON -> Lua (one line, see cp_json_decode):
**   object -> table with string keys (a null member leaves the key
**   absent); array -> sequence 1..n, with null members kept as
**   core.json_null so the length is kept; top-level null ->
**   core.json_null; an integer literal that fits in 64 bits -> integer,
**   other numbers -> float ("-0" -> -0.0); strings are unescaped to
**   UTF-8 (a lone surrogate escape becomes U+FFFD, as Node's UTF-8
**   writer does) and raw bytes must be valid UTF-8.
*/

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "json.h"

/* Its address is the identity of JSON null */
static const char json_null_anchor = 0;

CP_API void *cp_json_nullp(void) {
  return (void *)&json_null_anchor;
}


/*
** Length of the valid UTF-8 sequence starting at p (whose first byte
** is >= 0x80), or 0: no overlong forms, no surrogates, nothing above
** U+10FFFF, which is what JSON (and Node's decoder) accept.
*/
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
  size_t avail = (size_t)(end - p);
  unsigned c = p[0];
  if (c >= 0xC2 && c <= 0xDF)
    return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
      return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
      return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
        (p[3] & 0xC0) != 0x80)
      return 0;
    if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
      return 0;
    return 4;
  }
  return 0;
}


/*
** {======================================================
** Encoder
** =======================================================
*/
static int jput(cp_enc *e, const char *s, size_t n) {
  char *p = cp_wbuf_reserve(e->b, n);
  if (p == NULL)
    return cp_enc_fail(e, 0, "not enough memory");
  memcpy(p, s, n);
  e->b->n += n;
  return 0;
}

/* Writes runs of plain bytes in one copy; escapes what JSON requires */
static int jenc_string(cp_enc *e, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  const unsigned char *end = p + len, *run = p;
  if (jput(e, "\"", 1)) return 1;
  while (p < end) {
    unsigned c = *p;
    char esc[8];
    size_t elen = 2;
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      p++;
      continue;
    }
    if (c >= 0x80) {
      size_t k = utf8_seq(p, end);
      if (k == 0)
        return cp_enc_fail(e, 1, "cannot send a string that is not "
                           "valid UTF-8 in JSON");
      p += k;
      continue;
    }
    if (jput(e, (const char *)run, (size_t)(p - run))) return 1;
    esc[0] = '\\';
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default:
        memcpy(esc + 1, "u00", 3);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        elen = 6;
    }
    if (jput(e, esc, elen)) return 1;
    run = ++p;
  }
  if (jput(e, (const char *)run, (size_t)(p - run))) return 1;
  return jput(e, "\"", 1);
}

/*
** Shortest of %.15g..%.17g that reads back as d. snprintf follows the
** C locale's decimal point, which may not be '.', so anything that is
** not a digit, sign or exponent is turned back into '.'.
*/
static size_t fmt_float(char *out, double d, int mark) {
  char tmp[48];
  int prec;
  size_t i, n = 0;
  int isfloat = 0, indot = 0;
  for (prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  for (i = 0; tmp[i]; i++) {
    char c = tmp[i];
    if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
      out[n++] = c;
      indot = 0;
      if (c == 'e') isfloat = 1;
    }
    else if (!indot) {
      out[n++] = '.';
      indot = isfloat = 1;
    }
  }
  if (mark && !isfloat) {
    out[n++] = '.';
    out[n++] = '0';
  }
  out[n] = '\0';
  return n;
}

/* A number as a value, or (quoted) as an object key */
static int jenc_number(cp_enc *e, int idx, int iskey) {
  char buf[64];
  size_t n;
  if (lua_isinteger(e->L, idx))
    n = (size_t)snprintf(buf + 1, sizeof(buf) - 2, LUA_INTEGER_FMT,
                         (LUAI_UACINT)lua_tointeger(e->L, idx));
  else {
    double d = (double)lua_tonumber(e->L, idx);
    if (isfinite(d))
      n = fmt_float(buf + 1, d, !iskey);
    else if (iskey)  /* NaN cannot be a key; JS spells the others so */
      n = (size_t)snprintf(buf + 1, sizeof(buf) - 2, "%s",
                           d > 0 ? "Infinity" : "-Infinity");
    else
      return jput(e, "null", 4);
  }
  if (!iskey)
    return jput(e, buf + 1, n);
  buf[0] = '"';
  buf[n + 1] = '"';
  return jput(e, buf, n + 2);
}

static int jenc_value(cp_enc *e, int idx);

/*
** The seen table marks the tables being written (the current path):
** meeting one again is a cycle; a table met again after it is done is
** just shared and written again.
*/
static int jenc_table(cp_enc *e, int idx) {
  lua_State *L = e->L;
  lua_Integer count = 0, maxk = 0;
  int isarr = 1;
  if (!lua_checkstack(L, 8))
    return cp_enc_fail(e, 0, "not enough stack space");
  if (e->depth >= CP_MAX_DEPTH)
    return cp_enc_fail(e, 0, "excessive nesting (%d)", CP_MAX_DEPTH);
  if (lua_isnil(L, e->seen)) {
    lua_newtable(L);
    lua_replace(L, e->seen);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->seen) != LUA_TNIL)
    return cp_enc_fail(e, 1, "cycle in message");
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, e->seen);
  e->depth++;
  lua_pushnil(L);  /* array iff the keys are exactly 1..count */
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (isarr) {
      lua_Integer k = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
      if (k < 1) isarr = 0;
      else if (k > maxk) maxk = k;
    }
  }
  if (isarr && count > 0 && maxk == count) {
    lua_Integer i;
    int top = lua_gettop(L);
    if (jput(e, "[", 1)) return 1;
    for (i = 1; i <= count; i++) {
      if (i > 1 && jput(e, ",", 1)) return 1;
      lua_rawgeti(L, idx, i);
      if (jenc_value(e, lua_gettop(L))) {
        lua_settop(L, top + 1);  /* drop what inner levels left */
        lua_pushinteger(L, i);
        cp_enc_addpath(e, lua_gettop(L), 0);
        return 1;
      }
      lua_pop(L, 1);
    }
    if (jput(e, "]", 1)) return 1;
  }
  else {
    int first = 1;
    if (jput(e, "{", 1)) return 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      int top = lua_gettop(L);
      if (!first && jput(e, ",", 1)) return 1;
      first = 0;
      switch (lua_type(L, top - 1)) {
        case LUA_TSTRING: {
          size_t klen;
          const char *k = lua_tolstring(L, top - 1, &klen);
          if (jenc_string(e, k, klen)) {
            cp_enc_addpath(e, top - 1, 1);
            return 1;
          }
          break;
        }
        case LUA_TNUMBER:
          if (jenc_number(e, top - 1, 1)) return 1;
          break;
        default:
          cp_enc_fail(e, 1, "cannot send a %s key in JSON",
                      luaL_typename(L, top - 1));
          cp_enc_addpath(e, top - 1, 1);
          return 1;
      }
      if (jput(e, ":", 1)) return 1;
      if (jenc_value(e, top)) {
        lua_settop(L, top);
        cp_enc_addpath(e, top - 1, 0);
        return 1;
      }
      lua_pop(L, 1);
    }
    if (jput(e, "}", 1)) return 1;
  }
  lua_pushvalue(L, idx);  /* done: no longer on the path */
  lua_pushnil(L);
  lua_rawset(L, e->seen);
  e->depth--;
  return 0;
}

static int jenc_value(cp_enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) ? jput(e, "true", 4)
                                   : jput(e, "false", 5);
    case LUA_TNUMBER:
      return jenc_number(e, idx, 0);
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      return jenc_string(e, s, len);
    }
    case LUA_TTABLE:
      return jenc_table(e, idx);
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == cp_json_nullp())
        return jput(e, "null", 4);
      /* FALLTHROUGH */
    default:
      return cp_enc_fail(e, 1, "cannot send a %s", luaL_typename(L, idx));
  }
}

/* core.json_encode(value) -> one line of JSON, "\n" included */
CP_API int cp_json_encode(lua_State *L) {
  cp_enc e;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  cp_enc_init(&e, L, SIZE_MAX);
  if (jenc_value(&e, 1) || jput(&e, "\n", 1)) {
    lua_settop(L, e.path);
    return cp_enc_raise(&e);
  }
  lua_pushlstring(L, e.b->p, e.b->n);
  cp_wbuf_free(e.b);
  return 1;
}
/* }====================================================== */


/*
** {======================================================
** Decoder of one line
** =======================================================
*/
typedef struct jdec {
  lua_State *L;
  const unsigned char *start, *p, *end;
  int depth;
  char *err;
  size_t errsz;
} jdec;

static int jfail(jdec *d, const char *what) {
  snprintf(d->err, d->errsz, "malformed JSON message: %s at column %zu",
           what, (size_t)(d->p - d->start) + 1);
  return 1;
}

static void skip_ws(jdec *d) {
  while (d->p < d->end &&
         (*d->p == ' ' || *d->p == '\t' || *d->p == '\r' || *d->p == '\n'))
    d->p++;
}

static int hex4(const unsigned char *p) {
  int i, v = 0;
  for (i = 0; i < 4; i++) {
    int c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if ((c | 32) >= 'a' && (c | 32) <= 'f') v |= (c | 32) - 'a' + 10;
    else return -1;
  }
  return v;
}

static void add_utf8(luaL_Buffer *B, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  }
  else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  }
  else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  luaL_addlstring(B, u, n);
}

/*
** Strings without escapes (the usual case) are pushed straight from
** the input; the others go through a luaL_Buffer, used while nothing
** else is pushed, as its protocol requires.
*/
static int jdec_string(jdec *d) {
  lua_State *L = d->L;
  const unsigned char *p = d->p + 1, *end = d->end, *run = p;
  luaL_Buffer B;
  for (;;) {
    if (p >= end) { d->p = p; return jfail(d, "unterminated string"); }
    if (*p == '"') {
      lua_pushlstring(L, (const char *)run, (size_t)(p - run));
      d->p = p + 1;
      return 0;
    }
    if (*p == '\\') break;
    if (*p < 0x20) { d->p = p; return jfail(d, "control character"); }
    if (*p >= 0x80) {
      size_t k = utf8_seq(p, end);
      if (k == 0) { d->p = p; return jfail(d, "invalid UTF-8"); }
      p += k;
    }
    else p++;
  }
  luaL_buffinit(L, &B);
  for (;;) {
    if (p >= end) { d->p = p; return jfail(d, "unterminated string"); }
    if (*p == '"' || *p == '\\') {
      luaL_addlstring(&B, (const char *)run, (size_t)(p - run));
      if (*p == '"') break;
      if (p + 1 >= end) { d->p = p; return jfail(d, "unterminated string"); }
      switch (p[1]) {
        case '"': case '\\': case '/': luaL_addchar(&B, (char)p[1]); break;
        case 'b': luaL_addchar(&B, '\b'); break;
        case 'f': luaL_addchar(&B, '\f'); break;
        case 'n': luaL_addchar(&B, '\n'); break;
        case 'r': luaL_addchar(&B, '\r'); break;
        case 't': luaL_addchar(&B, '\t'); break;
        case 'u': {
          long cp;
          if (end - p < 6 || (cp = hex4(p + 2)) < 0) {
            d->p = p;
            return jfail(d, "bad \\u escape");
          }
          p += 6;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  /* wants a low half next */
            long lo;
            if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                (lo = hex4(p + 2)) >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              p += 6;
            }
            else cp = 0xFFFD;
          }
          else if (cp >= 0xDC00 && cp <= 0xDFFF)
            cp = 0xFFFD;
          add_utf8(&B, (unsigned long)cp);
          run = p;
          continue;
        }
        default:
          d->p = p;
          return jfail(d, "bad escape");
      }
      p += 2;
      run = p;
    }
    else if (*p < 0x20) { d->p = p; return jfail(d, "control character"); }
    else if (*p >= 0x80) {
      size_t k = utf8_seq(p, end);
      if (k == 0) { d->p = p; return jfail(d, "invalid UTF-8"); }
      p += k;
    }
    else p++;
  }
  luaL_pushresult(&B);
  d->p = p + 1;
  return 0;
}

#define ISDIGIT(c) ((c) >= '0' && (c) <= '9')

/*
** Checks the JSON number grammar, then converts: integer literals that
** fit in 64 bits exactly, the rest through lua_stringtonumber (which
** copes with the locale's decimal point).
*/
static int jdec_number(jdec *d) {
  lua_State *L = d->L;
  const unsigned char *s = d->p, *p = s, *end = d->end;
  int isint = 1, neg = (*p == '-');
  size_t len;
  if (neg) p++;
  if (p >= end || !ISDIGIT(*p)) { d->p = p; return jfail(d, "bad number"); }
  if (*p == '0') p++;
  else while (p < end && ISDIGIT(*p)) p++;
  if (p < end && *p == '.') {
    isint = 0;
    p++;
    if (p >= end || !ISDIGIT(*p)) { d->p = p; return jfail(d, "bad number"); }
    while (p < end && ISDIGIT(*p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    isint = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || !ISDIGIT(*p)) { d->p = p; return jfail(d, "bad number"); }
    while (p < end && ISDIGIT(*p)) p++;
  }
  len = (size_t)(p - s);
  d->p = p;
  if (isint) {
    uint64_t v = 0;
    const unsigned char *q;
    int ok = 1;
    for (q = s + neg; q < p; q++) {
      unsigned dig = (unsigned)(*q - '0');
      if (v > (UINT64_MAX - dig) / 10) { ok = 0; break; }
      v = v * 10 + dig;
    }
    if (ok && neg && v == 0) {
      lua_pushnumber(L, -0.0);  /* keep the sign, as JS does */
      return 0;
    }
    if (ok && !neg && v <= (uint64_t)INT64_MAX)
      return cp_pushint64(L, (int64_t)v, d->err, d->errsz);
    if (ok && neg && v <= (uint64_t)INT64_MAX + 1)
      return cp_pushint64(L, v == (uint64_t)INT64_MAX + 1
                             ? INT64_MIN : -(int64_t)v, d->err, d->errsz);
  }
  if (len < 64) {
    char buf[64];
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (lua_stringtonumber(L, buf) == 0) return jfail(d, "bad number");
  }
  else {
    lua_pushlstring(L, (const char *)s, len);
    if (lua_stringtonumber(L, lua_tostring(L, -1)) == 0)
      return jfail(d, "bad number");
    lua_remove(L, -2);
  }
  if (lua_isinteger(L, -1)) {  /* cannot happen now; keep it a float */
    lua_Number x = (lua_Number)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushnumber(L, x);
  }
  return 0;
}

static int jdec_literal(jdec *d, const char *lit, size_t len) {
  if ((size_t)(d->end - d->p) < len || memcmp(d->p, lit, len) != 0)
    return jfail(d, "unexpected character");
  d->p += len;
  return 0;
}

static int jdec_value(jdec *d);

static int jdec_array(jdec *d) {
  lua_State *L = d->L;
  lua_Integer n = 0;
  d->p++;
  lua_newtable(L);
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    return 0;
  }
  for (;;) {
    if (jdec_value(d)) return 1;
    lua_rawseti(L, -2, ++n);  /* null stays, as json_null */
    skip_ws(d);
    if (d->p >= d->end) return jfail(d, "unterminated array");
    if (*d->p == ']') { d->p++; return 0; }
    if (*d->p != ',') return jfail(d, "expected ',' or ']'");
    d->p++;
  }
}

static int jdec_object(jdec *d) {
  lua_State *L = d->L;
  d->p++;
  lua_newtable(L);
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    return 0;
  }
  for (;;) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"') return jfail(d, "expected a key");
    if (jdec_string(d)) return 1;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') return jfail(d, "expected ':'");
    d->p++;
    if (jdec_value(d)) return 1;
    if (lua_touserdata(L, -1) == cp_json_nullp()) {
      lua_pop(L, 1);  /* a null member is an absent key */
      lua_pushnil(L);
    }
    lua_rawset(L, -3);
    skip_ws(d);
    if (d->p >= d->end) return jfail(d, "unterminated object");
    if (*d->p == '}') { d->p++; return 0; }
    if (*d->p != ',') return jfail(d, "expected ',' or '}'");
    d->p++;
  }
}

static int jdec_value(jdec *d) {
  int r;
  if (!lua_checkstack(d->L, 6)) return jfail(d, "not enough stack space");
  skip_ws(d);
  if (d->p >= d->end) return jfail(d, "unexpected end");
  switch (*d->p) {
    case '{': case '[':
      if (d->depth >= CP_MAX_DEPTH) {
        snprintf(d->err, d->errsz, "excessive nesting (%d)", CP_MAX_DEPTH);
        return 1;
      }
      d->depth++;
      r = *d->p == '{' ? jdec_object(d) : jdec_array(d);
      d->depth--;
      return r;
    case '"':
      return jdec_string(d);
    case 't':
      if (jdec_literal(d, "true", 4)) return 1;
      lua_pushboolean(d->L, 1);
      return 0;
    case 'f':
      if (jdec_literal(d, "false", 5)) return 1;
      lua_pushboolean(d->L, 0);
      return 0;
    case 'n':
      if (jdec_literal(d, "null", 4)) return 1;
      lua_pushlightuserdata(d->L, cp_json_nullp());
      return 0;
    default:
      if (*d->p == '-' || ISDIGIT(*d->p))
        return jdec_number(d);
      return jfail(d, "unexpected character");
  }
}

CP_API int cp_json_decode(lua_State *L, const char *p, size_t n,
                          char *errbuf, size_t errsz) {
  jdec d;
  int base = lua_gettop(L);
  d.L = L;
  d.start = d.p = (const unsigned char *)p;
  d.end = d.start + n;
  d.depth = 0;
  d.err = errbuf;
  d.errsz = errsz;
  if (jdec_value(&d)) {
    lua_settop(L, base);
    return 1;
  }
  skip_ws(&d);
  if (d.p != d.end) {
    jfail(&d, "trailing characters");
    lua_settop(L, base);
    return 1;
  }
  return 0;
}
/* }====================================================== */


CP_API void cp_json_open(lua_State *L) {
  lua_pushcfunction(L, cp_json_encode);
  lua_setfield(L, -2, "json_encode");
  lua_pushlightuserdata(L, cp_json_nullp());
  lua_setfield(L, -2, "json_null");
}
