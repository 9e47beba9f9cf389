/*
 * forbidden OP...: try each operation a container must not be able to do, each in a child
 * process of its own, and print one line per operation: "OP: ok" when it worked, or
 * "OP: ERRNAME" (EPERM, EROFS…) when it failed. Level 12 runs it in a default container (each
 * must fail) and with --privileged (each must work: proof that the helper itself works).
 * Nothing it does reaches the host: mounts stay in the container's mount namespace, the
 * keyring is a new session keyring, files are only opened (never written), the traced process
 * is its own child.
 *
 *   mount       mount a tmpfs on /mnt                  userns    unshare(CLONE_NEWUSER)
 *   unshare     unshare(CLONE_NEWNS)                    keyctl    join a new session keyring
 *   ptrace      PTRACE_ATTACH to a child of its own     sysrq     open /proc/sysrq-trigger for writing
 *   procsys     open /proc/sys/kernel/domainname for writing
 *   kcore       read /proc/kcore: "kcore: N bytes"     cgroupfs  mount a cgroup2 filesystem on /mnt
 *   block:MAJ:MIN  mknod a block device MAJ:MIN in /tmp, then open it for reading (never read):
 *                  "block:MAJ:MIN: mknod EPERM" or "…: open EPERM" says which step failed
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EROFS: return "EROFS";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EBUSY: return "EBUSY";
    case ENOSPC: return "ENOSPC";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case EEXIST: return "EEXIST";
    default: {
      static char buf[32];
      snprintf(buf, sizeof buf, "errno %d", e);
      return buf;
    }
  }
}

/* 0 when the operation worked, else an errno; runs in a child of its own. */
static int attempt(const char *op) {
  if (!strcmp(op, "mount") || !strcmp(op, "cgroupfs")) {
    mkdir("/mnt", 0755);
    int cg = !strcmp(op, "cgroupfs");
    if (mount(cg ? "cgroup2" : "tmpfs", "/mnt", cg ? "cgroup2" : "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == -1) return errno;
    umount2("/mnt", MNT_DETACH);
    return 0;
  }
  if (!strcmp(op, "unshare")) return unshare(CLONE_NEWNS) == -1 ? errno : 0;
  if (!strcmp(op, "userns")) return unshare(CLONE_NEWUSER) == -1 ? errno : 0;
  if (!strcmp(op, "keyctl")) return syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) == -1 ? errno : 0;
  if (!strcmp(op, "ptrace")) {
    pid_t child = fork();
    if (child == 0) {
      pause();
      _exit(0);
    }
    int err = ptrace(PTRACE_ATTACH, child, NULL, NULL) == -1 ? errno : 0;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return err;
  }
  if (!strcmp(op, "sysrq") || !strcmp(op, "procsys")) {
    int fd = open(!strcmp(op, "sysrq") ? "/proc/sysrq-trigger" : "/proc/sys/kernel/domainname", O_WRONLY);
    if (fd == -1) return errno;
    close(fd); /* never written: opening for writing is the test */
    return 0;
  }
  if (!strncmp(op, "block:", 6)) {
    unsigned maj, min;
    if (sscanf(op + 6, "%u:%u", &maj, &min) != 2) return EINVAL;
    unlink("/tmp/forbidden-block");
    if (mknod("/tmp/forbidden-block", S_IFBLK | 0600, makedev(maj, min)) == -1) {
      printf("%s: mknod %s\n", op, errname(errno));
      return -1;
    }
    int fd = open("/tmp/forbidden-block", O_RDONLY); /* opened, never read */
    int err = fd == -1 ? errno : 0;
    if (fd != -1) close(fd);
    unlink("/tmp/forbidden-block");
    if (err) {
      printf("%s: open %s\n", op, errname(err));
      return -1;
    }
    return 0;
  }
  return EINVAL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: forbidden OP...\n");
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    const char *op = argv[i];
    if (!strcmp(op, "kcore")) { /* read, in this process: nothing to undo */
      int fd = open("/proc/kcore", O_RDONLY);
      if (fd == -1) {
        printf("kcore: %s\n", errname(errno));
        continue;
      }
      char buf[64];
      ssize_t n = read(fd, buf, sizeof buf);
      close(fd);
      if (n == -1) printf("kcore: %s\n", errname(errno));
      else printf("kcore: %zd bytes\n", n);
      continue;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      int err = attempt(op);
      if (err != -1) printf("%s: %s\n", op, err ? errname(err) : "ok"); /* -1: it printed its own line */
      fflush(stdout);
      _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status)) printf("%s: killed by signal %d\n", op, WTERMSIG(status));
  }
  return 0;
}
