/* stdin_1g floor: posix_spawn `cat` (stdout /dev/null), write BYTES to its
** stdin through a plain pipe in blocking 64 KiB writes.
** usage: stdin_write BYTES */
#include "common.h"

int main(int argc, char **argv) {
  long long bytes = argc > 1 ? atoll(argv[1]) : (1LL << 30);
  char *cargv[] = {"cat", NULL};
  int p[2];
  double t0 = now();
  if (pipe2(p, O_CLOEXEC)) die("pipe2", errno);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[0], 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int e = posix_spawnp(&pid, "cat", &fa, NULL, cargv, environ);
  if (e) die("posix_spawnp cat", e);
  close(p[0]);
  static char buf[65536];
  memset(buf, 'x', sizeof buf);
  long long sent = 0;
  while (sent < bytes) {
    size_t want = bytes - sent < (long long)sizeof buf ? (size_t)(bytes - sent) : sizeof buf;
    ssize_t w = write(p[1], buf, want);
    if (w < 0) { if (errno == EINTR) continue; die("write", errno); }
    sent += w;
  }
  close(p[1]);
  reap(pid);
  out("stdin_1g", "c-posix_spawn", bytes / 1e6 / (now() - t0), "MB/s");
  return 0;
}
