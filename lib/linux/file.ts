/**
 * Advisory locks on open files: `<sys/file.h>`.
 * @module
 */
import { libc, check, Bare } from './libc.js';

/** Shared lock. */
export const LOCK_SH = 1;
/** Exclusive lock: one holder at a time. */
export const LOCK_EX = 2;
/** Or'ed in: fail with `EWOULDBLOCK` instead of waiting. */
export const LOCK_NB = 4;
/** Release the lock. */
export const LOCK_UN = 8;

const NAMES: Record<number, string> = { [LOCK_SH]: 'LOCK_SH', [LOCK_EX]: 'LOCK_EX', [LOCK_UN]: 'LOCK_UN' };
const _flock = libc.func('int flock(int fd, int operation)');

/**
 * Apply or remove an advisory lock on the open file `fd`. Waits (blocking the calling thread)
 * while another open file description holds a conflicting lock. The kernel drops the lock when
 * the last fd of that description closes: also when its process is killed, SIGKILL included,
 * so a dead process never holds a lock.
 * @see https://man7.org/linux/man-pages/man2/flock.2.html
 */
export function flock(fd: number, operation: number): void {
  const name = `${NAMES[operation & ~LOCK_NB] ?? operation & ~LOCK_NB}${operation & LOCK_NB ? '|LOCK_NB' : ''}`;
  check(_flock(fd, operation), 'flock', [fd, new Bare(name)]);
}
