/*
 * sysv-queue KEY: create a System V message queue with the given key (decimal) in the caller's
 * IPC namespace, and print its id. busybox has no ipcmk; level 05's tests use this to make an
 * IPC object inside a container and look for it from the host (in /proc/sysvipc/msg).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: sysv-queue KEY\n");
    return 2;
  }
  int id = msgget((key_t)strtol(argv[1], NULL, 10), IPC_CREAT | 0600);
  if (id == -1) {
    perror("msgget");
    return 1;
  }
  printf("%d\n", id);
  return 0;
}
