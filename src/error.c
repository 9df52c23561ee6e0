/*
** errno values by name, as Node reports them in err.code (the same table
** gives the Lua layer its numbers: core.errno), and a binding's `nil, errno`.
*/
#include <errno.h>
#include <stdio.h>

#include "cp.h"

#define CP_ERRNOS(X) \
  X(EPERM) X(ENOENT) X(ESRCH) X(EINTR) X(EIO) X(ENXIO) X(E2BIG) \
  X(ENOEXEC) X(EBADF) X(ECHILD) X(EAGAIN) X(ENOMEM) X(EACCES) X(EFAULT) \
  X(EBUSY) X(EEXIST) X(EXDEV) X(ENODEV) X(ENOTDIR) X(EISDIR) X(EINVAL) \
  X(ENFILE) X(EMFILE) X(ENOTTY) X(ETXTBSY) X(EFBIG) X(ENOSPC) X(ESPIPE) \
  X(EROFS) X(EMLINK) X(EPIPE) X(ERANGE) X(ENAMETOOLONG) X(ENOSYS) \
  X(ELOOP) X(ENOBUFS) X(ENOTSOCK) X(ECONNRESET) X(ECONNREFUSED) \
  X(ETIMEDOUT) X(ENOTCONN) X(EADDRINUSE) X(ECANCELED) X(EOVERFLOW) \
  X(ELIBBAD) X(EPROTO) X(EMSGSIZE) X(EOPNOTSUPP)

CP_API const char *cp_errname(int err) {
  static char buf[24];
  switch (err) {
#define CP_ERRCASE(e) case e: return #e;
    CP_ERRNOS(CP_ERRCASE)
#undef CP_ERRCASE
    default:
      snprintf(buf, sizeof buf, "E%d", err);
      return buf;
  }
}

CP_API int cp_fail(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushinteger(L, err);
  return 2;
}

/* pushes { EPERM = 1, ENOENT = 2, ... }: the names above, this system's
** numbers */
CP_API void cp_push_errnos(lua_State *L) {
  lua_newtable(L);
#define CP_ERRFIELD(e) lua_pushinteger(L, e); lua_setfield(L, -2, #e);
  CP_ERRNOS(CP_ERRFIELD)
#undef CP_ERRFIELD
}
