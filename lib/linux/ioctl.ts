/**
 * Device control: `<sys/ioctl.h>`, with the network-interface requests of `<linux/sockios.h>`
 * and `struct ifreq` from `<net/if.h>`, and the terminal requests of `<asm/ioctls.h>` with
 * `struct winsize`.
 * @module
 */
import { libc, check, Bare, type Layout } from './libc.js';

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

/** `struct ifreq`: the name, then a union (of a `struct sockaddr`, `short ifr_flags`…): 40 bytes. */
export const IFREQ = { type: 'struct ifreq', sizeof: 40, offsets: { ifr_name: 0, ifr_flags: 16 } } as const satisfies Layout;

// Terminal requests: asm-generic/ioctls.h, which x86 and arm64 both use (alpha, mips, powerpc
// and sparc have other numbers).
/** Make the terminal the caller's controlling terminal; the caller must be a session leader without one. `argp`: 0 (1 steals it, with CAP_SYS_ADMIN). */
export const TIOCSCTTY = 0x540e;
/** Give up the controlling terminal (a session leader's: its session loses it; SIGHUP to the foreground group). */
export const TIOCNOTTY = 0x5422;
/** Read the window size into a `struct winsize` ({@link winsize}). */
export const TIOCGWINSZ = 0x5413;
/**
 * Set the window size from a `struct winsize`; the terminal's foreground process group (the
 * container's shell, for a pty master) gets SIGWINCH. calf's own side: Node handles SIGWINCH when
 * stdout is a terminal and emits `process.stdout.on('resize')` with the new `rows`/`columns`, the
 * moment to pass them on to the master.
 */
export const TIOCSWINSZ = 0x5414;
/** On a pty master: its number N, the slave being `<devpts>/N` (`_IOR('T', 0x30, unsigned int)`). */
export const TIOCGPTN = 0x80045430;
/** On a pty master: lock (`int` 1) or unlock (0) its slave; `unlockpt(3)` does this (`_IOW('T', 0x31, int)`). */
export const TIOCSPTLCK = 0x40045431;
/** On a pty master: open its slave and return the fd, `argp` being the open flags, with no path to resolve (Linux 4.13; `_IO('T', 0x41)`). */
export const TIOCGPTPEER = 0x5441;

/** `struct winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel; }`: 8 bytes. */
export const WINSIZE = { type: 'struct winsize', sizeof: 8, offsets: { ws_row: 0, ws_col: 2, ws_xpixel: 4, ws_ypixel: 6 } } as const satisfies Layout;

/** A terminal's size in characters (and pixels, which most terminals leave 0). */
export interface Winsize {
  ws_row: number;
  ws_col: number;
  ws_xpixel?: number;
  ws_ypixel?: number;
}

/**
 * A `struct winsize` as a Buffer, for {@link ioctl} `TIOCSWINSZ` (or zeroed, for `TIOCGWINSZ`
 * to fill in; read it back with {@link winsizeOf}).
 * @see https://man7.org/linux/man-pages/man2/ioctl_tty.2.html
 */
export function winsize(ws: Winsize = { ws_row: 0, ws_col: 0 }): Buffer {
  const buffer = Buffer.alloc(WINSIZE.sizeof);
  for (const field of ['ws_row', 'ws_col', 'ws_xpixel', 'ws_ypixel'] as const) buffer.writeUInt16LE(ws[field] ?? 0, WINSIZE.offsets[field]);
  return buffer;
}

/** The fields of a `struct winsize` that `TIOCGWINSZ` filled in. */
export function winsizeOf(buffer: Buffer): Required<Winsize> {
  const at = WINSIZE.offsets;
  return { ws_row: buffer.readUInt16LE(at.ws_row!), ws_col: buffer.readUInt16LE(at.ws_col!), ws_xpixel: buffer.readUInt16LE(at.ws_xpixel!), ws_ypixel: buffer.readUInt16LE(at.ws_ypixel!) };
}

const REQUESTS: Record<number, string> = {
  [SIOCGIFFLAGS]: 'SIOCGIFFLAGS', [SIOCSIFFLAGS]: 'SIOCSIFFLAGS', [TIOCSCTTY]: 'TIOCSCTTY', [TIOCNOTTY]: 'TIOCNOTTY',
  [TIOCGWINSZ]: 'TIOCGWINSZ', [TIOCSWINSZ]: 'TIOCSWINSZ', [TIOCGPTN]: 'TIOCGPTN', [TIOCSPTLCK]: 'TIOCSPTLCK', [TIOCGPTPEER]: 'TIOCGPTPEER',
};

// ioctl is variadic in C; the third argument is either a pointer to the caller's buffer, which
// the kernel reads (the SET requests) or fills in (the GET requests), or a plain integer.
const _ioctl = libc.func('int ioctl(int fd, unsigned long request, ...)');

/**
 * A `struct ifreq` for interface `name`, as a Buffer: `char ifr_name[IFNAMSIZ]`, then a union
 * whose first member is `short ifr_flags`; 40 bytes on 64-bit Linux. Pass it to {@link ioctl}.
 * @see https://man7.org/linux/man-pages/man7/netdevice.7.html
 */
export function ifreq(name: string, flags = 0): Buffer {
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new RangeError(`interface name too long (${IFNAMSIZ - 1} bytes at most): ${name}`);
  const ifr = Buffer.alloc(IFREQ.sizeof);
  ifr.write(name, 0);
  ifr.writeInt16LE(flags, IFREQ.offsets.ifr_flags);
  return ifr;
}

/** The `ifr_flags` of a `struct ifreq` made by {@link ifreq}, as SIOCGIFFLAGS filled them in. */
export function ifr_flags(ifr: Buffer): number {
  return ifr.readUInt16LE(IFREQ.offsets.ifr_flags);
}

/**
 * Control a device through its file descriptor; `argp` is the request's structure (for the
 * interface requests, a {@link ifreq} on any socket: netdevice(7); for the window size, a
 * {@link winsize}), or an integer for the requests that take one (`TIOCSCTTY`, `TIOCGPTPEER`).
 * @returns the call's result: 0, or what the request returns (`TIOCGPTPEER`: an fd)
 * @see https://man7.org/linux/man-pages/man2/ioctl.2.html
 */
export function ioctl(fd: number, request: number, argp: Buffer | number = 0): number {
  const name = REQUESTS[request] ?? `0x${request.toString(16)}`;
  if (typeof argp === 'number') return check(_ioctl(fd, request, 'unsigned long', argp) as number, 'ioctl', [fd, new Bare(name), argp]);
  const what = argp.length === IFREQ.sizeof ? [new Bare(`{ ifr_name: ${JSON.stringify(argp.toString('latin1', 0, IFNAMSIZ).replace(/\0.*$/s, ''))} }`)] : [];
  return check(_ioctl(fd, request, 'uint8_t *', argp) as number, 'ioctl', [fd, new Bare(name), ...what]);
}
