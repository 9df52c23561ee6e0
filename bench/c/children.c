/* children_1000 floor: posix_spawn N `cat`s, each blocked on a stdin pipe
** (stdout, stderr /dev/null); once all are started, note RSS; then close
** every stdin and reap them all.
** usage: children N */
#include "common.h"

int main(int argc, char **argv) {
  long n = arg_long(argc, argv, 1, 1000);
  char *cargv[] = {"cat", NULL};
  int *w = calloc(n, sizeof *w);
  pid_t *pids = calloc(n, sizeof *pids);
  long rss0 = rss_kib();
  double t0 = now();
  for (long i = 0; i < n; i++) {
    int p[2];
    if (pipe2(p, O_CLOEXEC)) die("pipe2", errno);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int e = posix_spawnp(&pids[i], "cat", &fa, NULL, cargv, environ);
    if (e) die("posix_spawnp cat", e);
    posix_spawn_file_actions_destroy(&fa);
    close(p[0]);
    w[i] = p[1];
  }
  long rss1 = rss_kib();
  for (long i = 0; i < n; i++) close(w[i]);
  for (long i = 0; i < n; i++) reap(pids[i]);
  double t = now() - t0;
  out("children_1000_rss", "c-posix_spawn", (double)(rss1 - rss0) / n, "KiB/child");
  out("children_1000_wall", "c-posix_spawn", t * 1000, "ms");
  return 0;
}
