/* ipc_burst floor: fork a child, write N frames (8-byte length + 1 MiB)
** over a SOCK_STREAM socketpair all at once; the child reads each whole
** and answers with its length (8 bytes). The clock runs from the child's
** "ready" to the last answer. Blocking reads and writes: the answers are
** small enough to wait in the socket while the parent is still writing.
** usage: ipc_burst N */
#include "common.h"
#include <stdint.h>

#define MSG (1u << 20)

static int full(int wr, int fd, void *b, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = wr ? write(fd, (char *)b + done, n - done) : read(fd, (char *)b + done, n - done);
    if (r < 0) { if (errno == EINTR) continue; return -1; }
    if (r == 0) return 0;
    done += r;
  }
  return 1;
}

int main(int argc, char **argv) {
  long n = arg_long(argc, argv, 1, 200);
  int sv[2];
  char *buf = malloc(MSG);
  if (!buf) die("malloc", ENOMEM);
  memset(buf, 'x', MSG);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) die("socketpair", errno);
  pid_t pid = fork();
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    close(sv[0]);
    char r = 'r';
    uint64_t len;
    if (full(1, sv[1], &r, 1) != 1) _exit(1);
    while (full(0, sv[1], &len, sizeof len) == 1) {
      if (len != MSG || full(0, sv[1], buf, len) != 1) _exit(1);
      if (full(1, sv[1], &len, sizeof len) != 1) _exit(1);
    }
    _exit(0);
  }
  close(sv[1]);
  char r;
  if (full(0, sv[0], &r, 1) != 1) die("ready", EPIPE);
  double t0 = now();
  for (long i = 0; i < n; i++) {
    uint64_t len = MSG;
    if (full(1, sv[0], &len, sizeof len) != 1 || full(1, sv[0], buf, MSG) != 1) die("write", errno);
  }
  for (long i = 0; i < n; i++) {
    uint64_t len;
    if (full(0, sv[0], &len, sizeof len) != 1 || len != MSG) die("read", errno ? errno : EPROTO);
  }
  double t = now() - t0;
  close(sv[0]);
  reap(pid);
  out("ipc_burst", "c-socketpair", n * (double)MSG / 1e6 / t, "MB/s");
  free(buf);
  return 0;
}
