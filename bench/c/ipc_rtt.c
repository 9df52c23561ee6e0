/* ipc_rtt floor: fork a child, ping-pong 8-byte messages over a
** SOCK_STREAM socketpair. The child first says "ready" (1 byte), then
** echoes until EOF; the clock starts at "ready".
** usage: ipc_rtt N */
#include "common.h"
#include <stdint.h>

static int full(ssize_t (*op)(int, void *, size_t), int fd, void *b, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = op(fd, (char *)b + done, n - done);
    if (r < 0) { if (errno == EINTR) continue; return -1; }
    if (r == 0) return 0;
    done += r;
  }
  return 1;
}
static ssize_t wr(int fd, void *b, size_t n) { return write(fd, b, n); }

int main(int argc, char **argv) {
  long n = arg_long(argc, argv, 1, 20000);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) die("socketpair", errno);
  pid_t pid = fork();
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    close(sv[0]);
    char r = 'r';
    uint64_t m;
    if (full(wr, sv[1], &r, 1) != 1) _exit(1);
    while (full(read, sv[1], &m, sizeof m) == 1)
      if (full(wr, sv[1], &m, sizeof m) != 1) _exit(1);
    _exit(0);
  }
  close(sv[1]);
  char r;
  if (full(read, sv[0], &r, 1) != 1) die("ready", EPIPE);
  double t0 = now();
  for (uint64_t i = 0; i < (uint64_t)n; i++) {
    uint64_t m = i;
    if (full(wr, sv[0], &m, sizeof m) != 1) die("write", errno);
    if (full(read, sv[0], &m, sizeof m) != 1 || m != i) die("read", errno ? errno : EPROTO);
  }
  double t = now() - t0;
  close(sv[0]);
  reap(pid);
  out("ipc_rtt", "c-fork", n / t, "rt/s");
  return 0;
}
