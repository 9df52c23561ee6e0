/* exec_echo floor: run `sh -c 'echo hello'` N times, capturing its stdout
** through a pipe, with posix_spawn or fork+execve.
** usage: exec_echo posix_spawn|fork N */
#include "common.h"

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: exec_echo posix_spawn|fork N\n"); return 2; }
  int use_fork = !strcmp(argv[1], "fork");
  long n = atol(argv[2]);
  char *cargv[] = {"/bin/sh", "-c", "echo hello", NULL};
  double t0 = now();
  for (long i = 0; i < n; i++) {
    int p[2];
    pid_t pid;
    if (pipe2(p, O_CLOEXEC)) die("pipe2", errno);
    if (!use_fork) {
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_adddup2(&fa, p[1], 1);
      int e = posix_spawn(&pid, cargv[0], &fa, NULL, cargv, environ);
      if (e) die("posix_spawn", e);
      posix_spawn_file_actions_destroy(&fa);
    } else {
      pid = fork();
      if (pid < 0) die("fork", errno);
      if (pid == 0) {
        dup2(p[1], 1);
        execve(cargv[0], cargv, environ);
        _exit(127);
      }
    }
    close(p[1]);
    char buf[64];
    size_t got = 0;
    for (;;) {
      ssize_t r = read(p[0], buf + got, sizeof buf - 1 - got);
      if (r < 0) { if (errno == EINTR) continue; die("read", errno); }
      if (r == 0) break;
      got += r;
    }
    close(p[0]);
    reap(pid);
    buf[got] = 0;
    if (strcmp(buf, "hello\n")) { fprintf(stderr, "bad output '%s'\n", buf); return 1; }
  }
  out("exec_echo", use_fork ? "c-fork" : "c-posix_spawn", n / (now() - t0), "execs/s");
  return 0;
}
