/**
 * Device control: `<sys/ioctl.h>`, with the network-interface requests of `<linux/sockios.h>`
 * and `struct ifreq` from `<net/if.h>`.
 * @module
 */
import { libc, check, Bare } from './libc.js';

/** Read an interface's flags into `ifr_flags` (the same number on x86_64 and arm64). */
export const SIOCGIFFLAGS = 0x8913;
/** Set an interface's flags from `ifr_flags`. */
export const SIOCSIFFLAGS = 0x8914;
/** Interface flag: the interface is up (administratively), as `ip link set X up` makes it. */
export const IFF_UP = 0x1;
/** Interface flag: a loopback interface. */
export const IFF_LOOPBACK = 0x8;
/** Interface names are at most 15 bytes and a NUL. */
export const IFNAMSIZ = 16;

const REQUESTS: Record<number, string> = { [SIOCGIFFLAGS]: 'SIOCGIFFLAGS', [SIOCSIFFLAGS]: 'SIOCSIFFLAGS' };

// ioctl is variadic in C; the third argument is passed as a pointer to the caller's buffer,
// which the kernel reads (the SET requests) or fills in (the GET requests).
const _ioctl = libc.func('int ioctl(int fd, unsigned long request, ...)');

/**
 * A `struct ifreq` for interface `name`, as a Buffer: `char ifr_name[IFNAMSIZ]`, then a union
 * whose first member is `short ifr_flags`; 40 bytes on 64-bit Linux. Pass it to {@link ioctl}.
 * @see https://man7.org/linux/man-pages/man7/netdevice.7.html
 */
export function ifreq(name: string, flags = 0): Buffer {
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new RangeError(`interface name too long (${IFNAMSIZ - 1} bytes at most): ${name}`);
  const ifr = Buffer.alloc(40);
  ifr.write(name, 0);
  ifr.writeInt16LE(flags, IFNAMSIZ);
  return ifr;
}

/** The `ifr_flags` of a `struct ifreq` made by {@link ifreq}, as SIOCGIFFLAGS filled them in. */
export function ifr_flags(ifr: Buffer): number {
  return ifr.readUInt16LE(IFNAMSIZ);
}

/**
 * Control a device through its file descriptor; `argp` is the request's structure (for the
 * interface requests, a {@link ifreq} on any socket: netdevice(7)).
 * @see https://man7.org/linux/man-pages/man2/ioctl.2.html
 */
export function ioctl(fd: number, request: number, argp: Buffer): number {
  const name = REQUESTS[request] ?? `0x${request.toString(16)}`;
  const what = argp.length === 40 ? [new Bare(`{ ifr_name: ${JSON.stringify(argp.toString('latin1', 0, IFNAMSIZ).replace(/\0.*$/s, ''))} }`)] : [];
  return check(_ioctl(fd, request, 'uint8_t *', argp) as number, 'ioctl', [fd, new Bare(name), ...what]);
}
