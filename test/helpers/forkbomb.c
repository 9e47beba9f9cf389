/*
 * forkbomb: a fork bomb with a counter and a brake. It forks children that each sleep, until
 * fork fails (a pids limit: EAGAIN) or it has made MAX of them, then prints "forked N" and the
 * error, kills and reaps its children, and exits 0. Without any limit it stops at MAX, and every
 * child exits by itself after a few seconds, so it never threatens the host.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX 200

int main(void) {
  pid_t kids[MAX];
  int n = 0;
  const char *why = "reached the brake";
  while (n < MAX) {
    pid_t pid = fork();
    if (pid < 0) {
      why = strerror(errno);
      break;
    }
    if (pid == 0) {
      sleep(5);
      _exit(0);
    }
    kids[n++] = pid;
  }
  printf("forked %d\n%s\n", n, why);
  fflush(stdout);
  for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
  for (int i = 0; i < n; i++) waitpid(kids[i], NULL, 0);
  return 0;
}
