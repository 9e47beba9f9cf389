/**
 * Sockets: `<sys/socket.h>`.
 * @module
 */
import { libc, check, flagNames } from './libc.js';

/** IPv4 (`AF_INET` from `<sys/socket.h>`). */
export const AF_INET = 2;
/** A datagram socket: no connection, which is all an interface ioctl needs. */
export const SOCK_DGRAM = 2;
/** Or'ed into `type`: the socket is closed on `execve`, so the command never inherits it. */
export const SOCK_CLOEXEC = 0o2000000;

const _socket = libc.func('int socket(int domain, int type, int protocol)');

/**
 * Create a socket, an endpoint for communication, and return its file descriptor. It lives in
 * the network namespace of the calling thread, for good: an ioctl on it acts on that namespace.
 * @see https://man7.org/linux/man-pages/man2/socket.2.html
 */
export function socket(domain: number, type: number, protocol: number): number {
  return check(_socket(domain, type, protocol), 'socket', [domain === AF_INET ? flagNames(AF_INET, { AF_INET }) : domain, type, protocol]);
}
