/* spawn_seq, spawn_par32, spawn_heap2g: /bin/true with posix_spawn or
** fork+execve, children inherit stdio, each one reaped.
** usage: spawn posix_spawn|fork seq|par32|heap2g N [HEAPBYTES] */
#include "common.h"

static int use_fork;

static pid_t start(void) {
  char *argv[] = {"/bin/true", NULL};
  pid_t pid;
  if (!use_fork) {
    int e = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
    if (e) die("posix_spawn", e);
  } else {
    pid = fork();
    if (pid < 0) die("fork", errno);
    if (pid == 0) { execve(argv[0], argv, environ); _exit(127); }
  }
  return pid;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: spawn posix_spawn|fork seq|par32|heap2g N [HEAPBYTES]\n"); return 2; }
  use_fork = !strcmp(argv[1], "fork");
  const char *mode = argv[2];
  long n = atol(argv[3]);
  char bench[64], peer[64];
  snprintf(bench, sizeof bench, "spawn_%s", mode);
  snprintf(peer, sizeof peer, "c-%s", use_fork ? "fork" : "posix_spawn");
  if (!strcmp(mode, "heap2g")) {
    size_t bytes = (size_t)arg_long(argc, argv, 4, 2L << 30);
    char *heap = malloc(bytes);
    if (!heap) die("malloc", ENOMEM);
    memset(heap, 1, bytes);   /* touch every page */
  }
  double t0 = now();
  if (!strcmp(mode, "par32")) {
    long started = 0, done = 0;
    while (done < n) {
      while (started < n && started - done < 32) { start(); started++; }
      int st;
      pid_t p = wait(&st);
      if (p < 0) die("wait", errno);
      if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "child failed\n"); return 1; }
      done++;
    }
  } else {
    for (long i = 0; i < n; i++) reap(start());
  }
  out(bench, peer, n / (now() - t0), "spawns/s");
  return 0;
}
