/**
 * File descriptor flags and open flags: `<fcntl.h>`.
 * @module
 */
import fs from 'node:fs';
import { libc, check } from './libc.js';

export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
/** Duplicate the fd onto the lowest free number ≥ `arg`, close-on-exec (`dup` would not set it). */
export const F_DUPFD_CLOEXEC = 1030;
/** File status flag: I/O returns `EAGAIN` instead of waiting (the same value on x86_64 and arm64). */
export const O_NONBLOCK = 0o4000;
/** Close this fd on `execve`. Node sets it on every fd it opens, stdin/stdout/stderr included. */
export const FD_CLOEXEC = 1;

/** `open(2)` access modes (the same on x86_64 and arm64). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
/** Opening a terminal does not make it the caller's controlling terminal. */
export const O_NOCTTY = 0o400;
/** Set `FD_CLOEXEC` on the new fd, atomically: Node does it on every fd it opens; a koffi call must ask. */
export const O_CLOEXEC = 0o2000000;
/**
 * An fd that only names a place in the filesystem (for `*at()` calls, `fchdir`, or a mount target
 * through `/proc/self/fd/N`): no read or write, and no permission on the file itself is needed.
 */
export const O_PATH = 0o10000000;
/** `dirfd` meaning "the current working directory" for the `*at()` calls. */
export const AT_FDCWD = -100;

/**
 * The open flags whose numbers differ per architecture (x86_64 kept i386's; arm64 took the
 * ones ARM had), keyed by `process.arch`. Elsewhere, Node's own `fs.constants` (compiled from
 * that machine's headers) have them.
 */
export const OPEN_FLAGS_BY_ARCH: Readonly<Record<string, { readonly O_DIRECTORY: number; readonly O_NOFOLLOW: number }>> = {
  // include/uapi/asm-generic/fcntl.h (x86 has no fcntl.h of its own)
  x64: { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 },
  // arch/arm64/include/uapi/asm/fcntl.h
  arm64: { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 },
};
const openFlags = OPEN_FLAGS_BY_ARCH[process.arch] ?? fs.constants;
/** Fail with `ENOTDIR` unless the path is a directory (differs per architecture: {@link OPEN_FLAGS_BY_ARCH}). */
export const O_DIRECTORY = openFlags.O_DIRECTORY;
/** Fail with `ELOOP` if the last component is a symlink (differs per architecture: {@link OPEN_FLAGS_BY_ARCH}). */
export const O_NOFOLLOW = openFlags.O_NOFOLLOW;

const _fcntl = libc.func('int fcntl(int fd, int cmd, ...)');

/**
 * Get or set a file descriptor's flags (`F_GETFD`/`F_SETFD` for `FD_CLOEXEC`) or its open file
 * description's status flags (`F_GETFL`/`F_SETFL` for `O_NONBLOCK`), which every process sharing
 * that description sees.
 * @see https://man7.org/linux/man-pages/man2/fcntl.2.html
 */
export function fcntl(fd: number, cmd: number, arg = 0): number {
  return check(_fcntl(fd, cmd, 'int', arg) as number, 'fcntl', [fd, cmd, arg]);
}
