/**
 * Pseudo-terminals: the `<stdlib.h>` calls that open a pty master and name its slave.
 *
 * A pty is a pair: the master (calf keeps it, reads what the command writes, writes what the user
 * types) and the slave, `/dev/pts/N`, which the command gets as its stdin, stdout, stderr and
 * controlling terminal. Each devpts mount with `newinstance` (a container's `/dev/pts`) numbers
 * its own ptys, through its own `ptmx`.
 * @module
 */
import { libc, check, flagNames } from './libc.js';
import { O_CLOEXEC, O_NOCTTY, O_RDWR } from './fcntl.js';

const _posix_openpt = libc.func('int posix_openpt(int flags)');
const _grantpt = libc.func('int grantpt(int fd)');
const _unlockpt = libc.func('int unlockpt(int fd)');
const _ptsname_r = libc.func('int ptsname_r(int fd, _Out_ uint8_t *buf, size_t buflen)');

/**
 * Open a new pty master through `/dev/ptmx`: as the caller's mount namespace resolves it, so after
 * `pivot_root` in a container whose `/dev/ptmx` links to `pts/ptmx`, a pty of the container's own
 * devpts. `flags`: `O_RDWR`, and `O_NOCTTY` (else a session leader without a terminal acquires
 * it), and `O_CLOEXEC`, which Node would have set. Then `unlockpt`, then open the slave.
 * @returns the master's fd
 * @see https://man7.org/linux/man-pages/man3/posix_openpt.3.html
 */
export function posix_openpt(flags = O_RDWR | O_NOCTTY | O_CLOEXEC): number {
  return check(_posix_openpt(flags) as number, 'posix_openpt', [flagNames(flags, { O_RDWR, O_NOCTTY, O_CLOEXEC })]);
}

/**
 * Give the slave of master `fd` the caller's uid and the `tty` group. With devpts (every Linux
 * since 2.6) the kernel already did; glibc keeps it as a check that `fd` is a pty master.
 * @see https://man7.org/linux/man-pages/man3/grantpt.3.html
 */
export function grantpt(fd: number): void {
  check(_grantpt(fd) as number, 'grantpt', [fd]);
}

/**
 * Unlock the slave of master `fd` so that it can be opened (`ioctl(fd, TIOCSPTLCK, 0)`): a new
 * pty's slave is locked until then.
 * @see https://man7.org/linux/man-pages/man3/unlockpt.3.html
 */
export function unlockpt(fd: number): void {
  check(_unlockpt(fd) as number, 'unlockpt', [fd]);
}

/**
 * The path of the slave of master `fd`: glibc asks its number (`TIOCGPTN`) and writes
 * `/dev/pts/N`, whichever devpts the master came from. For a master opened through another
 * devpts (`<rootfs>/dev/pts/ptmx`, seen from the host) that path names the host's pty N, not it:
 * there, open the slave with `ioctl(fd, TIOCGPTPEER, flags)`, or as `<that devpts>/N`.
 * @see https://man7.org/linux/man-pages/man3/ptsname_r.3.html
 */
export function ptsname_r(fd: number): string {
  const buffer = Buffer.alloc(64);
  const err = _ptsname_r(fd, buffer, buffer.length) as number;
  // returns the error number (0 on success); glibc sets errno to it too
  if (err !== 0) check(-1, 'ptsname_r', [fd]);
  return buffer.toString('latin1', 0, buffer.indexOf(0));
}
