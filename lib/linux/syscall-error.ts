import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';

/**
 * A failed libc call, in the shape of Node's own system errors: `code` is the errno name,
 * `errno` the number, `syscall` the call's name, `path`/`dest` the paths it was given.
 *
 * The message names the call with the arguments that matter, then the errno name and its text:
 * `pivot_root("/x", "/x/.old"): EBUSY (Device or resource busy)`.
 */
export class SyscallError extends Error {
  /** errno name, e.g. `EBUSY`, as in Node's `err.code` */
  readonly code: string;
  /** errno number, positive as in C (Node's own errors carry it negated) */
  readonly errno: number;
  /** name of the libc function or syscall that failed */
  readonly syscall: string;
  /** first path argument, when the call took one */
  readonly path?: string;
  /** second path argument (`pivot_root`'s put_old, `mount`'s target) */
  readonly dest?: string;
  /** the errno's text from `strerror(3)`, e.g. `Device or resource busy` */
  readonly description: string;

  constructor(
    syscall: string,
    errno: number,
    description: string,
    args: readonly unknown[] = [],
    paths: { path?: string; dest?: string } = {},
  ) {
    const code = errnoName(errno);
    super(`${syscall}(${args.map(formatArg).join(', ')}): ${code} (${description})`);
    this.name = 'SyscallError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    this.description = description;
    if (paths.path !== undefined) this.path = paths.path;
    if (paths.dest !== undefined) this.dest = paths.dest;
  }
}

/**
 * Node's name for an errno where it has one (`EAGAIN`, as its own errors say), else the C name:
 * libuv names only the errnos it uses itself, and answers "Unknown system error -10" for
 * `ECHILD`, `ENOEXEC`, `EDQUOT`, `ESTALE`…
 */
function errnoName(errno: number): string {
  let name: string | undefined;
  try {
    name = getSystemErrorName(-errno);
  } catch {
    // not an errno at all
  }
  if (name && !name.startsWith('Unknown')) return name;
  return Object.entries(constants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
}

function formatArg(arg: unknown): string {
  if (typeof arg === 'string') return JSON.stringify(arg);
  if (arg === null || arg === undefined) return 'NULL';
  if (Array.isArray(arg)) return `[${arg.map(formatArg).join(', ')}]`;
  return String(arg);
}
