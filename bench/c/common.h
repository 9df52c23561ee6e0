/* Shared bits of the plain C peers: clock, output line, RSS, dying. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void out(const char *bench, const char *peer, double value, const char *unit) {
  printf("bench=%s peer=%s value=%.6g unit=%s\n", bench, peer, value, unit);
  fflush(stdout);
}

static void die(const char *what, int err) {
  fprintf(stderr, "%s: %s\n", what, strerror(err));
  exit(1);
}

/* resident set size of this process, KiB */
static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &v) == 1) break;
  fclose(f);
  return v;
}

/* wait for pid; die unless it exited with status 0 */
static void reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) die("waitpid", errno);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "child %d failed: status 0x%x\n", (int)pid, st);
    exit(1);
  }
}

static long arg_long(int argc, char **argv, int i, long dflt) {
  return argc > i ? atol(argv[i]) : dflt;
}
