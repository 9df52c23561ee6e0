/* ipc_rtt floor: fork a child, ping-pong 8-byte messages over a
** SOCK_STREAM socketpair. The child first says "ready" (1 byte), then
** echoes until EOF; the clock starts at "ready".
** Mode "block": blocking read and write, the floor of any design.
** Mode "epoll": both sides non-blocking, each read preceded by an
** epoll_wait, as an event loop does it (the floor of an event loop).
** usage: ipc_rtt N [block|epoll] */
#include "common.h"
#include <stdint.h>
#include <sys/epoll.h>

static int epfd = -1;   /* set in "epoll" mode: wait before each read */

static ssize_t rd(int fd, void *b, size_t n) {
  if (epfd >= 0) {
    struct epoll_event ev;
    for (;;) {
      ssize_t r = read(fd, b, n);
      if (r >= 0 || errno != EAGAIN) return r;
      while (epoll_wait(epfd, &ev, 1, -1) < 0)
        if (errno != EINTR) return -1;
    }
  }
  return read(fd, b, n);
}

/* epoll mode: fd non-blocking, watched for reading (level-triggered) */
static void use_epoll(int fd) {
  struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
  if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1", errno);
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) die("epoll_ctl", errno);
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) die("fcntl", errno);
}

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
  int epoll = argc > 2 && strcmp(argv[2], "epoll") == 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) die("socketpair", errno);
  pid_t pid = fork();
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    close(sv[0]);
    if (epoll) use_epoll(sv[1]);
    char r = 'r';
    uint64_t m;
    if (full(wr, sv[1], &r, 1) != 1) _exit(1);
    while (full(rd, sv[1], &m, sizeof m) == 1)
      if (full(wr, sv[1], &m, sizeof m) != 1) _exit(1);
    _exit(0);
  }
  close(sv[1]);
  if (epoll) use_epoll(sv[0]);
  char r;
  if (full(rd, sv[0], &r, 1) != 1) die("ready", EPIPE);
  double t0 = now();
  for (uint64_t i = 0; i < (uint64_t)n; i++) {
    uint64_t m = i;
    if (full(wr, sv[0], &m, sizeof m) != 1) die("write", errno);
    if (full(rd, sv[0], &m, sizeof m) != 1 || m != i) die("read", errno ? errno : EPROTO);
  }
  double t = now() - t0;
  close(sv[0]);
  reap(pid);
  out("ipc_rtt", epoll ? "c-epoll" : "c-fork", n / t, "rt/s");
  return 0;
}
