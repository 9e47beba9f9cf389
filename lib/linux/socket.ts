/**
 * Sockets: `<sys/socket.h>`, with `struct sockaddr_un` from `<sys/un.h>`.
 * @module
 */
import koffi from 'koffi';
import { libc, check, flagNames, Bare, type Layout } from './libc.js';

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

// ─── Unix sockets, and file descriptors sent over them ───────────────────────────────────────────

/** Local (Unix domain) sockets: a path, or a socketpair (`AF_UNIX`, also called `AF_LOCAL`). */
export const AF_UNIX = 1;
/** A byte stream with a connection. */
export const SOCK_STREAM = 1;
/** Messages, connected, kept apart, in order. */
export const SOCK_SEQPACKET = 5;
/** The socket level, for `cmsg_level` (and `setsockopt`). */
export const SOL_SOCKET = 1;
/** `cmsg_type` at `SOL_SOCKET`: the data is an array of `int` file descriptors. */
export const SCM_RIGHTS = 1;
/** `recvmsg` flag: the received fds get `FD_CLOEXEC`, as every fd Node opens has. */
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** `msg_flags` after `recvmsg`: the control buffer was too small; what did not fit is lost (fds closed). */
export const MSG_CTRUNC = 0x8;
/** `msg_flags` after `recvmsg`: the datagram was longer than the buffers. */
export const MSG_TRUNC = 0x20;

const _socketpair = libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)');
const _connect = libc.func('int connect(int sockfd, const uint8_t *addr, uint32_t addrlen)');
const _bind = libc.func('int bind(int sockfd, const uint8_t *addr, uint32_t addrlen)');
const _listen = libc.func('int listen(int sockfd, int backlog)');
const _accept4 = libc.func('int accept4(int sockfd, void *addr, void *addrlen, int flags)');
const _sendmsg = libc.func('long sendmsg(int sockfd, void *msg, int flags)');
const _recvmsg = libc.func('long recvmsg(int sockfd, void *msg, int flags)');

const TYPES = { SOCK_DGRAM, SOCK_STREAM, SOCK_SEQPACKET, SOCK_CLOEXEC };
const MSG_FLAGS = { MSG_CMSG_CLOEXEC, MSG_CTRUNC, MSG_TRUNC };

/**
 * A pair of connected sockets (`AF_UNIX` only). Node has none: its `net` sockets can't carry fds.
 * `type` with `SOCK_CLOEXEC`, or the fds leak into every command execve'd later.
 * @see https://man7.org/linux/man-pages/man2/socketpair.2.html
 */
export function socketpair(domain: number, type: number, protocol = 0): [number, number] {
  const sv = [-1, -1];
  check(_socketpair(domain, type, protocol, sv) as number, 'socketpair', [domain === AF_UNIX ? new Bare('AF_UNIX') : domain, flagNames(type, TYPES), protocol]);
  return [sv[0]!, sv[1]!];
}

/** `struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }`: 110 bytes. */
export const SOCKADDR_UN = { type: 'struct sockaddr_un', sizeof: 110, offsets: { sun_family: 0, sun_path: 2 } } as const satisfies Layout;

/**
 * The address of the Unix socket at `path`, as a Buffer for {@link connect} and {@link bind}: at
 * most 107 bytes (a longer path: `connect` to `/proc/self/fd/N/name`, N an `O_PATH` fd of its
 * directory).
 * @see https://man7.org/linux/man-pages/man7/unix.7.html
 */
export function sockaddr_un(path: string): Buffer {
  const max = SOCKADDR_UN.sizeof - SOCKADDR_UN.offsets.sun_path - 1;
  if (Buffer.byteLength(path) > max) throw new RangeError(`socket path too long (${max} bytes at most): ${path}`);
  const addr = Buffer.alloc(SOCKADDR_UN.offsets.sun_path + Buffer.byteLength(path) + 1);
  addr.writeUInt16LE(AF_UNIX, SOCKADDR_UN.offsets.sun_family);
  addr.write(path, SOCKADDR_UN.offsets.sun_path);
  return addr;
}

function addressShown(addr: Buffer): unknown {
  return addr.readUInt16LE(0) === AF_UNIX ? addr.toString('utf8', SOCKADDR_UN.offsets.sun_path).replace(/\0.*$/s, '') : new Bare(`<${addr.length}-byte address>`);
}

/**
 * Connect socket `sockfd` to `addr` (a {@link sockaddr_un}: how `calf-runtime` reaches the
 * engine's `--console-socket`).
 * @see https://man7.org/linux/man-pages/man2/connect.2.html
 */
export function connect(sockfd: number, addr: Buffer): void {
  const shown = addressShown(addr);
  check(_connect(sockfd, addr, addr.length) as number, 'connect', [sockfd, shown], typeof shown === 'string' ? { path: shown } : {});
}

/**
 * Give socket `sockfd` the address `addr` (a {@link sockaddr_un} creates the socket file; it stays
 * after close: remove it).
 * @see https://man7.org/linux/man-pages/man2/bind.2.html
 */
export function bind(sockfd: number, addr: Buffer): void {
  const shown = addressShown(addr);
  check(_bind(sockfd, addr, addr.length) as number, 'bind', [sockfd, shown], typeof shown === 'string' ? { path: shown } : {});
}

/**
 * Accept connections on `sockfd`, up to `backlog` waiting.
 * @see https://man7.org/linux/man-pages/man2/listen.2.html
 */
export function listen(sockfd: number, backlog: number): void {
  check(_listen(sockfd, backlog) as number, 'listen', [sockfd, backlog]);
}

/**
 * The next connection on listening socket `sockfd`, as a new fd (`flags`: `SOCK_CLOEXEC`). Blocks
 * the calling thread until one comes.
 * @see https://man7.org/linux/man-pages/man2/accept4.2.html
 */
export function accept4(sockfd: number, flags = SOCK_CLOEXEC): number {
  return check(_accept4(sockfd, null, null, flags) as number, 'accept4', [sockfd, new Bare('NULL'), new Bare('NULL'), flagNames(flags, TYPES)]);
}

// struct msghdr, iovec and cmsghdr: glibc's (socklen_t is 32 bits, the lengths size_t; the
// kernel's own struct user_msghdr is the same on 64-bit).
/** `struct msghdr`: 56 bytes. */
export const MSGHDR = {
  type: 'struct msghdr', sizeof: 56,
  offsets: { msg_name: 0, msg_namelen: 8, msg_iov: 16, msg_iovlen: 24, msg_control: 32, msg_controllen: 40, msg_flags: 48 },
} as const satisfies Layout;
/** `struct iovec { void *iov_base; size_t iov_len; }`: 16 bytes. */
export const IOVEC = { type: 'struct iovec', sizeof: 16, offsets: { iov_base: 0, iov_len: 8 } } as const satisfies Layout;
/** `struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }`: 16 bytes, then the data. */
export const CMSGHDR = { type: 'struct cmsghdr', sizeof: 16, offsets: { cmsg_len: 0, cmsg_level: 8, cmsg_type: 12 } } as const satisfies Layout;

/** `CMSG_ALIGN(3)`: control messages are aligned to `size_t` (8 bytes on 64-bit; 4 on 32-bit). */
export function CMSG_ALIGN(len: number): number {
  return (len + 7) & ~7;
}
/** `CMSG_SPACE(3)`: the room one control message with `len` bytes of data takes, padding included. */
export function CMSG_SPACE(len: number): number {
  return CMSG_ALIGN(len) + CMSG_ALIGN(CMSGHDR.sizeof);
}
/** `CMSG_LEN(3)`: the `cmsg_len` of a control message with `len` bytes of data (no trailing padding). */
export function CMSG_LEN(len: number): number {
  return CMSG_ALIGN(CMSGHDR.sizeof) + len;
}

/** One control message ("ancillary data"): `SOL_SOCKET`/`SCM_RIGHTS` and an array of fds… */
export interface Cmsg {
  cmsg_level: number;
  cmsg_type: number;
  data: Buffer;
}

/** An `SCM_RIGHTS` control message carrying `fds`. */
export function scm_rights(fds: readonly number[]): Cmsg {
  const data = Buffer.alloc(4 * fds.length);
  fds.forEach((fd, i) => data.writeInt32LE(fd, 4 * i));
  return { cmsg_level: SOL_SOCKET, cmsg_type: SCM_RIGHTS, data };
}

/** The fds of every `SCM_RIGHTS` message in `control` (from {@link recvmsg}). */
export function scm_rights_fds(control: readonly Cmsg[]): number[] {
  return control.filter((c) => c.cmsg_level === SOL_SOCKET && c.cmsg_type === SCM_RIGHTS)
    .flatMap((c) => Array.from({ length: Math.floor(c.data.length / 4) }, (_, i) => c.data.readInt32LE(4 * i)));
}

/**
 * One `struct msghdr` with its iovecs, their data and the control buffer, in memory koffi
 * allocated (the kernel follows the pointers in it, so they must be real addresses, which a Node
 * Buffer's are not to be relied on): `write` puts the fields in, `free` must follow the call.
 */
function nativeMsghdr(lengths: readonly number[], controllen: number) {
  const iovAt = MSGHDR.sizeof;
  const controlAt = CMSG_ALIGN(iovAt + IOVEC.sizeof * lengths.length);
  const dataAt = controlAt + CMSG_ALIGN(controllen);
  const size = dataAt + lengths.reduce((a, b) => a + b, 0) || 1;
  const memory = koffi.alloc('uint8_t', size);
  const base = koffi.address(memory);
  const view = Buffer.from(koffi.view(memory, size));
  view.fill(0);
  const word = (at: number, value: bigint | number) => view.writeBigUInt64LE(BigInt(value), at);
  word(MSGHDR.offsets.msg_iov, lengths.length ? base + BigInt(iovAt) : 0n);
  word(MSGHDR.offsets.msg_iovlen, lengths.length);
  word(MSGHDR.offsets.msg_control, controllen ? base + BigInt(controlAt) : 0n);
  word(MSGHDR.offsets.msg_controllen, controllen);
  const data: { at: number; length: number }[] = [];
  let at = dataAt;
  for (const [i, length] of lengths.entries()) {
    word(iovAt + IOVEC.sizeof * i + IOVEC.offsets.iov_base, base + BigInt(at));
    word(iovAt + IOVEC.sizeof * i + IOVEC.offsets.iov_len, length);
    data.push({ at, length });
    at += length;
  }
  return { memory, view, controlAt, data, free: () => koffi.free(memory) };
}

/**
 * Send the bytes of `msg.iov` (gathered in order) and the control messages `msg.control` on
 * socket `sockfd`: with `scm_rights(fds)`, the receiver gets its own fds for the same open files
 * (as `dup` would give, in its process). The fds stay open here: close them when sent. A stream
 * socket needs at least one data byte to carry control messages.
 *
 * An OCI runtime's `--console-socket`: connect to it and send one message whose control is
 * `scm_rights([ptyMaster])` (runc sends the master's path as the data).
 * @returns the number of data bytes sent
 * @see https://man7.org/linux/man-pages/man2/sendmsg.2.html
 * @see https://man7.org/linux/man-pages/man3/cmsg.3.html
 */
export function sendmsg(sockfd: number, msg: { iov: readonly Buffer[]; control?: readonly Cmsg[] }, flags = 0): number {
  const control = msg.control ?? [];
  const controllen = control.reduce((n, c) => n + CMSG_SPACE(c.data.length), 0);
  const m = nativeMsghdr(msg.iov.map((b) => b.length), controllen);
  try {
    msg.iov.forEach((b, i) => b.copy(m.view, m.data[i]!.at));
    let at = m.controlAt;
    for (const c of control) {
      m.view.writeBigUInt64LE(BigInt(CMSG_LEN(c.data.length)), at + CMSGHDR.offsets.cmsg_len);
      m.view.writeInt32LE(c.cmsg_level, at + CMSGHDR.offsets.cmsg_level);
      m.view.writeInt32LE(c.cmsg_type, at + CMSGHDR.offsets.cmsg_type);
      c.data.copy(m.view, at + CMSG_LEN(0));
      at += CMSG_SPACE(c.data.length);
    }
    const fds = scm_rights_fds(control);
    return check(Number(_sendmsg(sockfd, m.memory, flags)), 'sendmsg', [sockfd, new Bare(`{ ${msg.iov.reduce((n, b) => n + b.length, 0)} bytes${fds.length ? `, SCM_RIGHTS [${fds.join(', ')}]` : ''} }`), flags]);
  } finally {
    m.free();
  }
}

/**
 * Receive one message on socket `sockfd`: up to `length` data bytes, and control messages up to
 * `controllen` bytes (`CMSG_SPACE(4 * n)` for n fds). Blocks the calling thread until a message
 * comes, unless the socket is non-blocking or `flags` has `MSG_DONTWAIT`. Pass `MSG_CMSG_CLOEXEC`
 * so that the fds received are close-on-exec, as Node's own are; they are the caller's to close.
 * Check `msg_flags` for `MSG_CTRUNC`: fds that did not fit were closed by the kernel. The kernel
 * fills the whole buffer, padding included: `CMSG_SPACE(4)` (24 bytes on 64-bit) can bring two fds,
 * so close every fd received, not only the ones expected.
 * @returns the data (0 bytes: the peer closed a stream socket), the control messages, `msg_flags`
 * @see https://man7.org/linux/man-pages/man2/recvmsg.2.html
 * @see https://man7.org/linux/man-pages/man3/cmsg.3.html
 */
export function recvmsg(sockfd: number, length: number, controllen: number, flags = MSG_CMSG_CLOEXEC): { data: Buffer; control: Cmsg[]; msg_flags: number } {
  const m = nativeMsghdr([length], controllen);
  try {
    const n = check(Number(_recvmsg(sockfd, m.memory, flags)), 'recvmsg', [sockfd, length, controllen, flagNames(flags, MSG_FLAGS)]);
    const data = Buffer.from(m.view.subarray(m.data[0]!.at, m.data[0]!.at + Math.min(n, length)));
    // CMSG_FIRSTHDR / CMSG_NXTHDR over what the kernel wrote (msg_controllen now says how much)
    const written = Number(m.view.readBigUInt64LE(MSGHDR.offsets.msg_controllen));
    const control: Cmsg[] = [];
    for (let at = m.controlAt; at + CMSGHDR.sizeof <= m.controlAt + written;) {
      const len = Number(m.view.readBigUInt64LE(at + CMSGHDR.offsets.cmsg_len));
      if (len < CMSG_LEN(0)) break;
      control.push({
        cmsg_level: m.view.readInt32LE(at + CMSGHDR.offsets.cmsg_level),
        cmsg_type: m.view.readInt32LE(at + CMSGHDR.offsets.cmsg_type),
        data: Buffer.from(m.view.subarray(at + CMSG_LEN(0), at + len)),
      });
      at += CMSG_ALIGN(len);
    }
    return { data, control, msg_flags: m.view.readInt32LE(MSGHDR.offsets.msg_flags) };
  } finally {
    m.free();
  }
}
