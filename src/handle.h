/*
** handle.h: the fds that come over a channel's socket (src/handle.c),
** for the framing decoder (src/frame.c), which gives each to the
** message it came with.
*/
#ifndef CP_HANDLE_H
#define CP_HANDLE_H

#include <stdint.h>
#include <sys/types.h>

#include "cp.h"

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

#endif
