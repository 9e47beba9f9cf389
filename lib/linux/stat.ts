/**
 * Special files: `<sys/stat.h>` and `<sys/sysmacros.h>`.
 * @module
 */
import { libc, check, Bare } from './libc.js';

/** File type bits of a mode (`S_IF*`). */
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

const _mknod = libc.func('int mknod(const char *pathname, uint32_t mode, uint64_t dev)');
const _mkfifo = libc.func('int mkfifo(const char *pathname, uint32_t mode)');

/**
 * The device number for `major`/`minor`, as glibc's `makedev(3)` encodes it.
 * @see https://man7.org/linux/man-pages/man3/makedev.3.html
 */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/**
 * Create a device node or FIFO. `mode` is the type (`S_IFCHR`…) or'ed with the permissions
 * (the umask applies).
 * @see https://man7.org/linux/man-pages/man2/mknod.2.html
 */
export function mknod(pathname: string, mode: number, dev: bigint = 0n): void {
  check(_mknod(pathname, mode, dev), 'mknod', [pathname, new Bare(`0${mode.toString(8)}`), new Bare(`makedev(${major(dev)}, ${minor(dev)})`)], { path: pathname });
}

/**
 * Create a FIFO (named pipe) at `pathname` with permissions `mode` (the umask applies). Opening
 * it waits for the other end: `open` for writing blocks until a reader opens it, and the reverse
 * (runc's exec FIFO: `create` leaves the init stage blocked in its open, `start` opens the other
 * end). In Node, open it with `fs.openSync` in the stage that must wait (the main thread blocks,
 * as wanted); an async `fs.open` would block one of libuv's four pool threads instead.
 * @see https://man7.org/linux/man-pages/man3/mkfifo.3.html
 */
export function mkfifo(pathname: string, mode: number): void {
  check(_mkfifo(pathname, mode), 'mkfifo', [pathname, new Bare(`0${mode.toString(8)}`)], { path: pathname });
}

function major(dev: bigint): bigint {
  return ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
}

function minor(dev: bigint): bigint {
  // glibc masks to 32 bits ((unsigned int) (dev >> 12) & ~0xff): above them is the major's high part.
  return (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
}
