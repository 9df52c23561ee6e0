/*
** handle.c: file descriptors passed over the IPC channel (SCM_RIGHTS),
** and what kind of thing an fd is.
**
** The sender attaches a handle's fd to the sendmsg that writes the first
** byte of its frame. On a Unix stream socket the kernel delivers the fds
** with the read that brings that byte, and a read never goes past the
** end of the write that carried fds (it stops there). So the fd belongs
** to the frame that holds the last byte of the read that brought it:
** the decoder (src/frame.c) notes, for each fd, the stream position
** where that read ended (a cp_fdq), and each frame it decodes claims the
** fds noted within it.
*/

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <netinet/in.h>

#include "cp.h"
#include "handle.h"

#define FDS_PER_READ 8     /* more in one read is a peer breaking rules */

static int fail(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushinteger(L, err);
  return 2;
}


/* {====================================================== receiving */

CP_API ssize_t cp_fdq_recv(cp_fdq *q, int sock, char *buf, size_t len,
                           uint64_t pos) {
  union {
    char b[CMSG_SPACE(sizeof(int) * FDS_PER_READ)];
    struct cmsghdr align;
  } ctl;
  struct iovec iov;
  struct msghdr m;
  struct cmsghdr *c;
  ssize_t got;
  if (q->notsock)
    goto plain;
  iov.iov_base = buf;
  iov.iov_len = len;
  memset(&m, 0, sizeof m);
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.b;
  m.msg_controllen = sizeof ctl.b;
  do got = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  if (got < 0 && errno == ENOTSOCK) {  /* a launcher's pipes: no fds */
    q->notsock = 1;
    goto plain;
  }
  if (got <= 0) return got;
  for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
    const unsigned char *data;
    size_t i, n;
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    data = CMSG_DATA(c);
    n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, data + i * sizeof(int), sizeof fd);
      if (q->n < CP_FDQ_MAX) {
        q->fd[q->n] = fd;
        q->pos[q->n++] = pos + (uint64_t)got;
      }
      else close(fd);       /* (its frame then finds none: an error) */
    }
  }
  return got;
plain:
  do got = read(sock, buf, len); while (got < 0 && errno == EINTR);
  return got;
}

CP_API int cp_fdq_claim(cp_fdq *q, uint64_t end, int *fd) {
  int n = 0, i;
  while (n < q->n && q->pos[n] <= end) n++;
  *fd = n > 0 ? q->fd[0] : -1;
  for (i = 1; i < n; i++) close(q->fd[i]);
  for (i = n; i < q->n; i++) {
    q->fd[i - n] = q->fd[i];
    q->pos[i - n] = q->pos[i];
  }
  q->n -= n;
  return n;
}

CP_API void cp_fdq_clear(cp_fdq *q) {
  int i;
  for (i = 0; i < q->n; i++) close(q->fd[i]);
  q->n = 0;
}

/* }====================================================== */


/* {====================================================== core functions */

/*
** core.sendfd(sock, data, off, fd) -> n | false | nil, errno: one
** sendmsg of data from byte off, carrying fd (SCM_RIGHTS); false when
** the socket is full (nothing went, the fd neither).
*/
static int l_sendfd(lua_State *L) {
  int sock = (int)luaL_checkinteger(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  lua_Integer off = luaL_checkinteger(L, 3);
  int fd = (int)luaL_checkinteger(L, 4);
  union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov;
  struct msghdr m;
  struct cmsghdr *c;
  ssize_t r;
  luaL_argcheck(L, off >= 0 && (size_t)off < len, 3, "out of range");
  iov.iov_base = (void *)(s + off);
  iov.iov_len = len - (size_t)off;
  memset(&m, 0, sizeof m);
  memset(&ctl, 0, sizeof ctl);
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl.b;
  m.msg_controllen = sizeof ctl.b;
  c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  do r = sendmsg(sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      lua_pushboolean(L, 0);
      return 1;
    }
    return fail(L, errno);
  }
  lua_pushinteger(L, (lua_Integer)r);
  return 1;
}

static const char *family_name(int family) {
  return family == AF_INET ? "inet" : family == AF_INET6 ? "inet6"
       : family == AF_UNIX ? "unix" : "other";
}

/*
** core.fdkind(fd) -> kind, family, connected | nil, errno. kind:
** 'tcp-server', 'tcp', 'udp', 'unix' (any Unix socket), 'pipe', 'file'
** (a regular file), 'fd' (anything else: a tty, a device, another
** socket); family: 'inet' | 'inet6' | 'unix' | 'other' for a socket;
** connected: a socket has a peer (getpeername); listening; the socket's
** type ('stream', 'dgram', 'other'); for another fd, how it is open
** ('r', 'w', 'rw').
*/
static int l_fdkind(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  struct stat st;
  struct sockaddr_storage ss, peer;
  socklen_t sl = sizeof ss, pl = sizeof peer, il = sizeof(int);
  int type = 0, acc = 0;
  const char *kind = "fd";
  if (fstat(fd, &st) != 0) return fail(L, errno);
  if (S_ISFIFO(st.st_mode)) kind = "pipe";
  else if (S_ISREG(st.st_mode)) kind = "file";
  if (!S_ISSOCK(st.st_mode)) {
    int fl = fcntl(fd, F_GETFL);
    lua_pushstring(L, kind);
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    lua_pushboolean(L, 0);
    lua_pushnil(L);
    fl = fl < 0 ? O_RDWR : (fl & O_ACCMODE);
    lua_pushstring(L, fl == O_RDONLY ? "r" : fl == O_WRONLY ? "w" : "rw");
    return 6;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
    return fail(L, errno);
  il = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &il) != 0) acc = 0;
  if (ss.ss_family == AF_UNIX) kind = "unix";
  else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
    if (type == SOCK_STREAM) kind = acc ? "tcp-server" : "tcp";
    else if (type == SOCK_DGRAM) kind = "udp";
  }
  lua_pushstring(L, kind);
  lua_pushstring(L, family_name(ss.ss_family));
  lua_pushboolean(L, getpeername(fd, (struct sockaddr *)&peer, &pl) == 0);
  lua_pushboolean(L, acc);
  lua_pushstring(L, type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM
                      ? "dgram" : "other");
  return 5;
}

/* core.setclass(udata, name) -> true | false: gives a userdata the
** metatable registered as name (luasocket's classes: 'tcp{server}') */
static int l_setclass(lua_State *L) {
  const char *name = luaL_checkstring(L, 2);
  luaL_checktype(L, 1, LUA_TUSERDATA);
  luaL_getmetatable(L, name);   /* (a value only since 5.3) */
  if (!lua_istable(L, -1)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_setmetatable(L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.shutdown(fd): no more writes (a duplex stream's close) */
static int l_shutdown(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  if (shutdown(fd, SHUT_WR) != 0) return fail(L, errno);
  lua_pushboolean(L, 1);
  return 1;
}

CP_API void cp_handle_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"sendfd", l_sendfd},
    {"fdkind", l_fdkind},
    {"setclass", l_setclass},
    {"shutdown", l_shutdown},
    {NULL, NULL}
  };
  cp_setfuncs(L, fns);
}

/* }====================================================== */
