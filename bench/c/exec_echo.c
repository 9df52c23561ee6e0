/* exec_echo floor: run `sh -c 'echo hello'` N times doing what exec()
** does: the child gets a pipe on each of stdin, stdout and stderr; stdout
** and stderr are both read to their end (through poll, as any program
** that reads two pipes must, or one full pipe could stall the child), and
** stdin is closed once the child has exited.  With posix_spawn or
** fork+execve.
** usage: exec_echo posix_spawn|fork N */
#include "common.h"
#include <poll.h>

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: exec_echo posix_spawn|fork N\n"); return 2; }
  int use_fork = !strcmp(argv[1], "fork");
  long n = atol(argv[2]);
  char *cargv[] = {"/bin/sh", "-c", "echo hello", NULL};
  double t0 = now();
  for (long i = 0; i < n; i++) {
    int in[2], o[2], e[2];
    pid_t pid;
    if (pipe2(in, O_CLOEXEC) || pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC))
      die("pipe2", errno);
    if (!use_fork) {
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_adddup2(&fa, in[0], 0);
      posix_spawn_file_actions_adddup2(&fa, o[1], 1);
      posix_spawn_file_actions_adddup2(&fa, e[1], 2);
      int err = posix_spawn(&pid, cargv[0], &fa, NULL, cargv, environ);
      if (err) die("posix_spawn", err);
      posix_spawn_file_actions_destroy(&fa);
    } else {
      pid = fork();
      if (pid < 0) die("fork", errno);
      if (pid == 0) {
        dup2(in[0], 0); dup2(o[1], 1); dup2(e[1], 2);
        execve(cargv[0], cargv, environ);
        _exit(127);
      }
    }
    close(in[0]); close(o[1]); close(e[1]);
    char buf[2][64];
    size_t got[2] = {0, 0};
    struct pollfd pf[2] = {{o[0], POLLIN, 0}, {e[0], POLLIN, 0}};
    int open = 2;
    while (open > 0) {
      if (poll(pf, 2, -1) < 0) { if (errno == EINTR) continue; die("poll", errno); }
      for (int k = 0; k < 2; k++) {
        if (pf[k].fd < 0 || !pf[k].revents) continue;
        ssize_t r = read(pf[k].fd, buf[k] + got[k], sizeof buf[k] - 1 - got[k]);
        if (r < 0) { if (errno == EINTR) continue; die("read", errno); }
        if (r == 0) { close(pf[k].fd); pf[k].fd = -1; open--; }
        else got[k] += r;
      }
    }
    reap(pid);
    close(in[1]);
    buf[0][got[0]] = 0;
    if (strcmp(buf[0], "hello\n") || got[1]) {
      fprintf(stderr, "bad output '%s'\n", buf[0]);
      return 1;
    }
  }
  out("exec_echo", use_fork ? "c-fork" : "c-posix_spawn", n / (now() - t0), "execs/s");
  return 0;
}
