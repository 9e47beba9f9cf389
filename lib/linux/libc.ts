/**
 * The one place that opens libc with koffi. The wrappers in `sched.ts`, `mount.ts`, `unistd.ts`
 * and `stat.ts` declare their functions here and turn a `-1` return into a {@link SyscallError}.
 *
 * koffi type declarations are process-global, so every prototype is declared once, at import.
 * @module
 */
import koffi from 'koffi';
import { SyscallError } from './syscall-error.js';

/** libc, loaded once per process. */
export const libc = koffi.load('libc.so.6');

const strerror = libc.func('const char *strerror(int errnum)');

/**
 * Throw a {@link SyscallError} if a libc call returned -1, reading errno right away (the next
 * koffi call may overwrite it).
 * @returns the call's result when it succeeded
 */
export function check<T extends number | bigint>(
  result: T,
  syscall: string,
  args: readonly unknown[] = [],
  paths: { path?: string; dest?: string } = {},
): T {
  if (Number(result) !== -1) return result;
  const errno = koffi.errno();
  throw new SyscallError(syscall, errno, String(strerror(errno)), args, paths);
}

/**
 * A C struct's size and its members' offsets, as calf lays the struct out in a Buffer.
 * Written down once for 64-bit Linux; test/lib/abi.test.ts checks each against the C headers of
 * x86_64 and arm64, where `type` is the struct's C name.
 */
export interface Layout {
  readonly type: string;
  readonly sizeof: number;
  readonly offsets: Readonly<Record<string, number>>;
}

/** An argument shown bare in an error message (not quoted like a string). */
export class Bare {
  constructor(private readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/**
 * Format a flag word as `A|B|C` using a table of named constants, for error messages.
 */
export function flagNames(flags: number, table: Readonly<Record<string, number>>): Bare {
  const names = Object.entries(table)
    .filter(([, bit]) => bit !== 0 && (flags & bit) === bit)
    .map(([name]) => name);
  return new Bare(names.length ? names.join('|') : String(flags));
}
