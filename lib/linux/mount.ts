/**
 * Mounts: `<sys/mount.h>` and `pivot_root(2)`.
 * @module
 */
import { libc, check, flagNames } from './libc.js';
import { syscall, syscallNumber } from './syscall.js';

/** `mount(2)` flags (`MS_*` from `<sys/mount.h>`). */
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MS_NOATIME = 1024;
export const MS_BIND = 4096;
export const MS_MOVE = 8192;
export const MS_REC = 16384;
export const MS_PRIVATE = 1 << 18;
export const MS_SLAVE = 1 << 19;
export const MS_SHARED = 1 << 20;
export const MS_STRICTATIME = 1 << 24;

/** `umount2(2)` flags. */
export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const MNT_EXPIRE = 4;
export const UMOUNT_NOFOLLOW = 8;

const MS_FLAGS = {
  MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_NOATIME, MS_BIND, MS_MOVE, MS_REC,
  MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_STRICTATIME,
};

const _mount = libc.func(
  'int mount(const char *source, const char *target, const char *filesystemtype, unsigned long mountflags, const char *data)',
);
const _umount2 = libc.func('int umount2(const char *target, int flags)');

/**
 * Attach a filesystem (or, with `MS_BIND`, a directory; with `MS_PRIVATE`…, change propagation).
 * `source`, `fstype` and `data` may be `null`, as in C.
 * @see https://man7.org/linux/man-pages/man2/mount.2.html
 */
export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null = null,
): void {
  check(_mount(source, target, fstype, flags, data), 'mount',
    [source, target, fstype, flagNames(flags, MS_FLAGS), ...(data === null ? [] : [data])],
    { path: source ?? target, dest: target });
}

/**
 * Detach the filesystem mounted at `target`. `MNT_DETACH` makes it lazy: gone from the tree now,
 * cleaned up when nothing uses it.
 * @see https://man7.org/linux/man-pages/man2/umount2.2.html
 */
export function umount2(target: string, flags: number): void {
  check(_umount2(target, flags), 'umount2', [target, flagNames(flags, { MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW })],
    { path: target });
}

/**
 * Make `new_root` the root mount of the calling process's mount namespace and move the old root
 * to `put_old` (which must be at or under `new_root`). `new_root` must be a mount point, and
 * neither may be on a shared mount. glibc has no wrapper: this goes through `syscall(2)`.
 * @see https://man7.org/linux/man-pages/man2/pivot_root.2.html
 */
export function pivot_root(new_root: string, put_old: string): void {
  const nr = syscallNumber('pivot_root');
  check(Number(syscall(nr, 'const char *', new_root, 'const char *', put_old)), 'pivot_root',
    [new_root, put_old], { path: new_root, dest: put_old });
}
