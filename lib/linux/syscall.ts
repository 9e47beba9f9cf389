/**
 * Raw syscalls, for the calls glibc has no wrapper for: `syscall(2)` and the numbers it takes.
 * The numbers differ per architecture (x86_64 kept the old i386-derived table; arm64 uses the
 * generic one), so they are looked up by `process.arch` and never written as a bare constant.
 * @see https://man7.org/linux/man-pages/man2/syscall.2.html
 * @module
 */
import { libc } from './libc.js';

/**
 * `long syscall(long number, ...)`: each further argument is a koffi type name followed by its
 * value, e.g. `syscall(nr, 'const char *', path)`. Returns -1 and sets errno on failure, as in C:
 * pass the result to `check`.
 */
export const syscall = libc.func('long syscall(long number, ...)') as (number: number, ...typesAndArgs: unknown[]) => number | bigint;

/**
 * Syscalls calf makes through `syscall(2)`: those glibc has no wrapper for (`pivot_root`,
 * `openat2`), and those it got only recently (`pidfd_open`, `close_range`: glibc 2.36 and 2.34),
 * so that calf runs on an older libc too (koffi fails at import on a missing symbol).
 */
export type RawSyscall = 'pivot_root' | 'openat2' | 'pidfd_open' | 'pidfd_send_signal' | 'close_range';

/**
 * The numbers, by `process.arch`. Since Linux 5.1 (`pidfd_send_signal`, 424) a new syscall gets
 * the same number on every architecture; older ones differ.
 */
export const SYSCALLS: Readonly<Record<string, Readonly<Record<RawSyscall, number>>>> = {
  // arch/x86/entry/syscalls/syscall_64.tbl
  x64: { pivot_root: 155, openat2: 437, pidfd_open: 434, pidfd_send_signal: 424, close_range: 436 },
  // include/uapi/asm-generic/unistd.h
  arm64: { pivot_root: 41, openat2: 437, pidfd_open: 434, pidfd_send_signal: 424, close_range: 436 },
};

/**
 * The number of `name` on this machine's architecture.
 * @throws Error on an architecture calf has no table for
 */
export function syscallNumber(name: RawSyscall, arch: string = process.arch): number {
  const table = SYSCALLS[arch];
  if (!table) throw new Error(`no syscall table for architecture ${arch} (calf knows ${Object.keys(SYSCALLS).join(', ')})`);
  return table[name];
}
