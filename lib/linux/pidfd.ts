/**
 * Process file descriptors: `pidfd_open(2)` and `pidfd_send_signal(2)` (`<sys/pidfd.h>`, Linux
 * 5.3). glibc has them only since 2.36: these go through `syscall(2)`.
 * @module
 */
import { check, Bare } from './libc.js';
import { syscall, syscallNumber } from './syscall.js';
import { O_NONBLOCK } from './fcntl.js';
import { signalName } from './signal.js';

/** {@link pidfd_open} flag: `waitid(P_PIDFD, …)` on it returns `EAGAIN` instead of waiting (Linux 5.10). */
export const PIDFD_NONBLOCK = O_NONBLOCK;

/**
 * A file descriptor that refers to process `pid` itself, not to the number: it keeps referring to
 * that process after the pid is reused. Open it while the process is known to be the right one
 * (its start time matches the record), then signal or wait through the fd without a race. It is
 * close-on-exec, and readable (`poll` `POLLIN`) once the process has exited. `ESRCH`: no such
 * process (or one already reaped).
 * @returns the pidfd (close it with `fs.closeSync`)
 * @see https://man7.org/linux/man-pages/man2/pidfd_open.2.html
 */
export function pidfd_open(pid: number, flags = 0): number {
  return check(Number(syscall(syscallNumber('pidfd_open'), 'int', pid, 'unsigned int', flags)), 'pidfd_open', [pid, flags]);
}

/**
 * Send signal `sig` to the process behind `pidfd` (`ESRCH` once it has exited, even before it is
 * reaped). `info` is not supported: the kernel fills it in as `kill(2)` would.
 * @see https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html
 */
export function pidfd_send_signal(pidfd: number, sig: number, flags = 0): void {
  check(Number(syscall(syscallNumber('pidfd_send_signal'), 'int', pidfd, 'int', sig, 'void *', null, 'unsigned int', flags)),
    'pidfd_send_signal', [pidfd, new Bare(signalName(sig)), null, flags]);
}
