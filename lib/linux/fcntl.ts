/**
 * File descriptor flags: `<fcntl.h>`.
 * @module
 */
import { libc, check } from './libc.js';

export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
/** File status flag: I/O returns `EAGAIN` instead of waiting (the same value on x86_64 and arm64). */
export const O_NONBLOCK = 0o4000;
/** Close this fd on `execve`. Node sets it on every fd it opens, stdin/stdout/stderr included. */
export const FD_CLOEXEC = 1;

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
