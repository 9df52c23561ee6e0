/* stdout_2g floor: posix_spawn `head -c BYTES /dev/zero` with its stdout
** on a plain pipe (default size), read() it in 64 KiB pieces.
** usage: stdout_read BYTES */
#include "common.h"

int main(int argc, char **argv) {
  long long bytes = argc > 1 ? atoll(argv[1]) : (2LL << 30);
  char count[32];
  snprintf(count, sizeof count, "%lld", bytes);
  char *cargv[] = {"head", "-c", count, "/dev/zero", NULL};
  int p[2];
  double t0 = now();
  if (pipe2(p, O_CLOEXEC)) die("pipe2", errno);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  pid_t pid;
  int e = posix_spawnp(&pid, "head", &fa, NULL, cargv, environ);
  if (e) die("posix_spawnp head", e);
  close(p[1]);
  static char buf[65536];
  long long got = 0;
  for (;;) {
    ssize_t r = read(p[0], buf, sizeof buf);
    if (r < 0) { if (errno == EINTR) continue; die("read", errno); }
    if (r == 0) break;
    got += r;
  }
  close(p[0]);
  reap(pid);
  if (got != bytes) { fprintf(stderr, "got %lld of %lld bytes\n", got, bytes); return 1; }
  out("stdout_2g", "c-posix_spawn", bytes / 1e6 / (now() - t0), "MB/s");
  return 0;
}
