/**
 * Path resolution that stays under a directory: `openat2(2)` and `struct open_how` from
 * `<linux/openat2.h>` (Linux 5.6). glibc has no wrapper: this goes through `syscall(2)`.
 * @module
 */
import { check, flagNames, Bare, type Layout } from './libc.js';
import { syscall, syscallNumber } from './syscall.js';
import { close } from './unistd.js';
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_NOCTTY, O_NOFOLLOW, O_PATH, O_RDWR, O_WRONLY } from './fcntl.js';

/** `resolve` flag of {@link OpenHow}: refuse (`EXDEV`) to cross a mount point, bind mounts included. */
export const RESOLVE_NO_XDEV = 0x01;
/** Refuse (`ELOOP`) the "magic links" of `/proc` (`/proc/PID/root`, `/proc/PID/fd/N`, `/proc/PID/exe`), which jump anywhere. */
export const RESOLVE_NO_MAGICLINKS = 0x02;
/** Refuse (`ELOOP`) every symlink, the last component's too. */
export const RESOLVE_NO_SYMLINKS = 0x04;
/** Refuse (`EXDEV`) whatever leaves `dirfd`: an absolute path or symlink, a `..` above it, a magic link. */
export const RESOLVE_BENEATH = 0x08;
/** Resolve as if `dirfd` were `/`: absolute symlinks and `..` stay inside it, as `chroot` would see them. */
export const RESOLVE_IN_ROOT = 0x10;

const RESOLVE_FLAGS = { RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH, RESOLVE_IN_ROOT };
const OPEN_FLAGS = { O_WRONLY, O_RDWR, O_NOCTTY, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC, O_PATH };

/** `struct open_how { __u64 flags; __u64 mode; __u64 resolve; }`: 24 bytes on every architecture. */
export const OPEN_HOW = { type: 'struct open_how', sizeof: 24, offsets: { flags: 0, mode: 8, resolve: 16 } } as const satisfies Layout;

/** What {@link openat2} takes: `open(2)`'s flags and mode, and the `RESOLVE_*` flags. */
export interface OpenHow {
  flags: number;
  /** only with `O_CREAT`/`O_TMPFILE` (openat2 refuses a mode otherwise, with `EINVAL`) */
  mode?: number;
  resolve?: number;
}

/**
 * Open `pathname` relative to the directory `dirfd` (or {@link AT_FDCWD}), as `openat(2)` does,
 * with `how.resolve` restricting how the path may be walked. Unlike `openat`, unknown flags are
 * an error (`EINVAL`), and nothing adds `O_CLOEXEC` for you: Node opens every fd close-on-exec,
 * a koffi call must ask for it. Linux 5.6 or later (`ENOSYS` before).
 * @returns the new file descriptor (close it with `fs.closeSync` or {@link close})
 * @see https://man7.org/linux/man-pages/man2/openat2.2.html
 */
export function openat2(dirfd: number, pathname: string, how: OpenHow): number {
  return openat2Shown(dirfd, dirfd === AT_FDCWD ? new Bare('AT_FDCWD') : dirfd, pathname, how);
}

function openat2Shown(dirfd: number, shown: unknown, pathname: string, how: OpenHow): number {
  const buffer = Buffer.alloc(OPEN_HOW.sizeof);
  buffer.writeBigUInt64LE(BigInt(how.flags), OPEN_HOW.offsets.flags);
  buffer.writeBigUInt64LE(BigInt(how.mode ?? 0), OPEN_HOW.offsets.mode);
  buffer.writeBigUInt64LE(BigInt(how.resolve ?? 0), OPEN_HOW.offsets.resolve);
  const fd = syscall(syscallNumber('openat2'), 'int', dirfd, 'const char *', pathname, 'uint8_t *', buffer, 'size_t', buffer.length);
  const resolve = how.resolve ? `, resolve: ${flagNames(how.resolve, RESOLVE_FLAGS)}` : '';
  return check(Number(fd), 'openat2', [shown, pathname, new Bare(`{ flags: ${flagNames(how.flags, OPEN_FLAGS)}${resolve} }`)], { path: pathname });
}

/**
 * Open `path`, a path **inside a container** (`/data`, `etc/passwd`), under the directory `root`
 * (its rootfs, on the host) without ever leaving it: with the default `RESOLVE_IN_ROOT`, `..` and
 * absolute symlinks are resolved as the container will see them after `pivot_root` (an image whose
 * `/data` is a symlink to `/etc` gets `<root>/etc`, never the host's `/etc`); with
 * `RESOLVE_BENEATH` they are refused (`EXDEV`). Magic links are refused either way.
 *
 * Use the fd, not a path string: mount onto `/proc/self/fd/N` (the kernel follows that magic link to
 * the file opened, whatever was renamed or swapped for a symlink since), then close it. Checking a
 * path and then mounting onto it by name is the race of runc's CVE-2021-30465.
 *
 * @param flags `O_PATH` by default: a mount target needs no permission on the file itself
 * @returns the fd, close-on-exec (close it with `fs.closeSync` or {@link close})
 * @see https://man7.org/linux/man-pages/man2/openat2.2.html
 */
export function openInRoot(root: string, path: string, flags = O_PATH, resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): number {
  const rootfd = openat2(AT_FDCWD, root, { flags: O_PATH | O_DIRECTORY | O_CLOEXEC });
  try {
    // relative to root: RESOLVE_BENEATH refuses an absolute path, RESOLVE_IN_ROOT reads it so anyway
    return openat2Shown(rootfd, root, path.replace(/^\/+/, '') || '.', { flags: flags | O_CLOEXEC, resolve });
  } finally {
    close(rootfd);
  }
}
