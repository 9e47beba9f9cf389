/**
 * Terminal attributes: `<termios.h>`.
 *
 * Node has most of this for its own stdin: `process.stdin.setRawMode(true)` is `cfmakeraw` and
 * `tcsetattr` through libuv, and Node saves the attributes of fds 0–2 at start-up and restores them
 * when it exits (normally, or on SIGINT/SIGTERM; never on SIGKILL). These calls are for the other
 * terminals: a pty calf opened for a container, or a terminal fd Node did not open.
 * @module
 */
import { libc, check, flagNames, Bare, type Layout } from './libc.js';

/** `tcsetattr` `optional_actions`: now. */
export const TCSANOW = 0;
/** Once the output written so far is transmitted. */
export const TCSADRAIN = 1;
/** Once the output is transmitted, discarding input not read yet. */
export const TCSAFLUSH = 2;

/** `c_lflag`: generate SIGINT, SIGQUIT, SIGTSTP from ^C, ^\, ^Z. */
export const ISIG = 0o1;
/** `c_lflag`: canonical mode, input line by line with editing. */
export const ICANON = 0o2;
/** `c_lflag`: echo input. */
export const ECHO = 0o10;
/** `c_lflag`: implementation-defined input processing (^V…). */
export const IEXTEN = 0o100000;
/** `c_iflag`: map CR to NL on input. */
export const ICRNL = 0o400;
/** `c_iflag`: XON/XOFF flow control (^S, ^Q). */
export const IXON = 0o2000;
/** `c_oflag`: post-process output (NL → CR NL with `ONLCR`). */
export const OPOST = 0o1;
/** `c_oflag`: map NL to CR NL on output. */
export const ONLCR = 0o4;
/** Indices into `c_cc`: a non-canonical read returns after `VMIN` bytes or `VTIME` tenths of a second. */
export const VTIME = 5;
export const VMIN = 6;
/** glibc's `c_cc` length (the kernel's own `struct termios` has 19: glibc converts). */
export const NCCS = 32;

/**
 * glibc's `struct termios` (not the kernel's, which `TCGETS` fills in: `tcgetattr` converts):
 * four `tcflag_t`, `c_line`, `c_cc[NCCS]`, then the two speeds after 3 bytes of padding. 60 bytes on
 * x86_64 and arm64 alike (other architectures differ: powerpc, sparc, mips, alpha).
 */
export const TERMIOS = {
  type: 'struct termios', sizeof: 60,
  offsets: { c_iflag: 0, c_oflag: 4, c_cflag: 8, c_lflag: 12, c_line: 16, c_cc: 17, c_ispeed: 52, c_ospeed: 56 },
} as const satisfies Layout;

/** A terminal's attributes, as `tcgetattr` returns them: change the flags, hand it to `tcsetattr`. */
export interface Termios {
  c_iflag: number;
  c_oflag: number;
  c_cflag: number;
  c_lflag: number;
  c_line: number;
  /** `NCCS` special characters, indexed by `VMIN`, `VTIME`… */
  c_cc: number[];
  c_ispeed: number;
  c_ospeed: number;
}

const FLAGS = ['c_iflag', 'c_oflag', 'c_cflag', 'c_lflag', 'c_ispeed', 'c_ospeed'] as const;

function encode(t: Termios): Buffer {
  const buffer = Buffer.alloc(TERMIOS.sizeof);
  for (const f of FLAGS) buffer.writeUInt32LE(t[f] >>> 0, TERMIOS.offsets[f]);
  buffer.writeUInt8(t.c_line, TERMIOS.offsets.c_line);
  Buffer.from(t.c_cc.slice(0, NCCS)).copy(buffer, TERMIOS.offsets.c_cc);
  return buffer;
}

function decode(buffer: Buffer, into: Partial<Termios> = {}): Termios {
  for (const f of FLAGS) into[f] = buffer.readUInt32LE(TERMIOS.offsets[f]);
  into.c_line = buffer.readUInt8(TERMIOS.offsets.c_line);
  into.c_cc = [...buffer.subarray(TERMIOS.offsets.c_cc, TERMIOS.offsets.c_cc + NCCS)];
  return into as Termios;
}

const _tcgetattr = libc.func('int tcgetattr(int fd, _Out_ uint8_t *termios_p)');
const _tcsetattr = libc.func('int tcsetattr(int fd, int optional_actions, const uint8_t *termios_p)');
const _cfmakeraw = libc.func('void cfmakeraw(_Inout_ uint8_t *termios_p)');

/**
 * The attributes of the terminal `fd` (`ENOTTY`: not a terminal).
 * @see https://man7.org/linux/man-pages/man3/tcgetattr.3.html
 */
export function tcgetattr(fd: number): Termios {
  const buffer = Buffer.alloc(TERMIOS.sizeof);
  check(_tcgetattr(fd, buffer) as number, 'tcgetattr', [fd]);
  return decode(buffer);
}

/**
 * Set the attributes of the terminal `fd`, when `optional_actions` says (`TCSANOW`…). Succeeds if
 * **any** of the changes could be made: read them back with {@link tcgetattr} when it matters.
 * On a terminal that is not the caller's, nothing undoes it when calf dies: keep the old
 * attributes and restore them on every exit path.
 * @see https://man7.org/linux/man-pages/man3/tcsetattr.3.html
 */
export function tcsetattr(fd: number, optional_actions: number, termios: Termios): void {
  check(_tcsetattr(fd, optional_actions, encode(termios)) as number, 'tcsetattr',
    [fd, new Bare(['TCSANOW', 'TCSADRAIN', 'TCSAFLUSH'][optional_actions] ?? String(optional_actions)), flagNames(termios.c_lflag, { ISIG, ICANON, ECHO, IEXTEN })]);
}

/**
 * Change `termios` in place to raw mode: input byte by byte, no echo, no signals from ^C, no
 * output processing. calf puts its own terminal in raw mode for `-t`, so that every key goes to
 * the container's pty and the pty's line discipline, not calf's, does the echo and ^C.
 * @see https://man7.org/linux/man-pages/man3/cfmakeraw.3.html
 */
export function cfmakeraw(termios: Termios): void {
  const buffer = encode(termios);
  _cfmakeraw(buffer);
  decode(buffer, termios);
}
