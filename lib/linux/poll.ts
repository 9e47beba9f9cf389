/**
 * Waiting for a file descriptor: `<poll.h>`.
 * @module
 */
import { libc, check, type Layout } from './libc.js';

/** There is data to read (`events`/`revents` bits of {@link poll}). */
export const POLLIN = 0x001;
/** Writing will not block (a pipe has room again). */
export const POLLOUT = 0x004;
/** The other end hung up. */
export const POLLHUP = 0x010;

/** `struct pollfd { int fd; short events; short revents; }`: 8 bytes, passed as a buffer. */
export const POLLFD = { type: 'struct pollfd', sizeof: 8, offsets: { fd: 0, events: 4, revents: 6 } } as const satisfies Layout;

const _poll = libc.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)');

/**
 * Wait until `fd` has one of `events`, or `timeout` milliseconds pass (-1: forever). Blocks the
 * calling thread, which is what the init stage wants: after `unshare` it must not hand work to
 * Node's other threads.
 * @returns the `revents` bits that happened, 0 on timeout
 * @see https://man7.org/linux/man-pages/man2/poll.2.html
 */
export function poll(fd: number, events: number, timeout: number): number {
  const pollfd = Buffer.alloc(POLLFD.sizeof);
  pollfd.writeInt32LE(fd, POLLFD.offsets.fd);
  pollfd.writeInt16LE(events, POLLFD.offsets.events);
  const ready = check(_poll(pollfd, 1, timeout), 'poll', [fd, events, timeout]);
  return ready === 0 ? 0 : pollfd.readInt16LE(POLLFD.offsets.revents);
}
