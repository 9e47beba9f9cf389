/*
 * slow-go.so, for LD_PRELOAD into `calf run`: a host where calf's parent is slow to go on right
 * after it released the init stage. It wraps write(2) and writev(2); after a write of exactly
 * "go\n" to a socket (the handshake's release: lib/runtime/sync.ts) it sleeps CALF_SLOW_GO_MS
 * milliseconds (default 500) before returning. Level 09's check then sees whether the container
 * was put into its cgroup before the release, as the lesson says, or only after it: a
 * joinCgroup() placed after syncWithInit() runs once the command has already started, outside.
 * Nothing else changes: every other write goes through untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int is_go(int fd, const void *buf, size_t n) {
  struct stat st;
  return n == 3 && memcmp(buf, "go\n", 3) == 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void pause_after_go(void) {
  const char *text = getenv("CALF_SLOW_GO_MS");
  long ms = text ? strtol(text, NULL, 10) : 500;
  struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&t, &t) == -1) {
  }
}

ssize_t write(int fd, const void *buf, size_t n) {
  static ssize_t (*real)(int, const void *, size_t);
  if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
  ssize_t written = real(fd, buf, n);
  if (written == 3 && is_go(fd, buf, n)) pause_after_go();
  return written;
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
  static ssize_t (*real)(int, const struct iovec *, int);
  if (!real) real = (ssize_t (*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
  ssize_t written = real(fd, iov, count);
  if (written == 3 && count == 1 && is_go(fd, iov[0].iov_base, iov[0].iov_len)) pause_after_go();
  return written;
}
