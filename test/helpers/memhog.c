/*
 * memhog MB: allocate MB mebibytes one at a time and touch every page, so the memory is really
 * used (an untouched malloc costs nothing). Prints "touched N MB" after each 8 MB and at the end.
 * Under a memory cgroup limit the kernel's OOM killer ends it with SIGKILL partway through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: memhog MB\n");
    return 2;
  }
  long mb = atol(argv[1]);
  long page = sysconf(_SC_PAGESIZE);
  for (long i = 1; i <= mb; i++) {
    char *chunk = malloc(1 << 20);
    if (!chunk) {
      perror("malloc");
      return 1;
    }
    for (long off = 0; off < (1 << 20); off += page) chunk[off] = 1;
    if (i % 8 == 0 || i == mb) {
      printf("touched %ld MB\n", i);
      fflush(stdout);
    }
  }
  return 0;
}
