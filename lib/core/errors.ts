/**
 * Docker's exit codes, and the errors that carry them. A failure knows its own exit code, so
 * the CLI turns any error into one line and one number without a list of error classes.
 * @module
 */
import { SyscallError } from '../linux/syscall-error.js';

/**
 * An error Docker's daemon answers about a container (`No such container`, `is not running`):
 * Docker's CLI exits 1 for it, keeping 125 for its own (podman uses 125, and 126 for a stopped one).
 */
export const EXIT_ERROR = 1;
/** calf itself failed: a bad flag, an unknown image, a syscall before the command started. */
export const EXIT_CALF_ERROR = 125;
/** The command exists but cannot be executed. */
export const EXIT_CANNOT_EXECUTE = 126;
/** The command was not found. */
export const EXIT_NOT_FOUND = 127;

/** An error with the exit code `docker run` would give for it (125 unless a subclass says otherwise). */
export class CalfError extends Error {
  readonly exitCode: number = EXIT_CALF_ERROR;
  constructor(message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.exitCode !== undefined) this.exitCode = options.exitCode;
  }
}

/**
 * The exit code for `err`: its own `exitCode`, or, for a failed `execve`, 127 (no such file) or
 * 126 (not executable) as a shell gives; 125 for anything else.
 */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CalfError) return err.exitCode;
  if (err instanceof SyscallError && err.syscall === 'execve') {
    return err.code === 'ENOENT' || err.code === 'ENOTDIR' ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
  }
  return EXIT_CALF_ERROR;
}

/**
 * `action` with every error it throws (or its promise rejects with) given exit code 1, the
 * message kept: Docker's code for its `network`, `volume`, `pull` and `tag` commands, where
 * `docker run` says 125.
 */
export function exitingOne<A extends unknown[], R>(action: (...args: A) => R): (...args: A) => R {
  const one = (err: unknown): never => {
    throw new CalfError(messageOf(err), { exitCode: EXIT_ERROR, cause: err });
  };
  return (...args) => {
    try {
      const result = action(...args);
      return (result instanceof Promise ? result.catch(one) : result) as R;
    } catch (err) {
      return one(err);
    }
  };
}

/** The one line calf prints for `err` (its stack too with `CALF_DEBUG`). */
export function messageOf(err: unknown): string {
  if (process.env.CALF_DEBUG && err instanceof Error && err.stack) return err.stack;
  if (err instanceof SyscallError && err.syscall === 'execve') {
    return `exec: ${JSON.stringify(err.path)}: ${err.description.toLowerCase()}`;
  }
  return oneLine(err instanceof Error ? err.message : String(err));
}

/**
 * `text` as one line: control characters shown escaped (`\n`, `\u001b`), C1 ones too. A message may
 * quote what an image or a user supplied (a file name in a layer can hold a newline), and
 * calf's errors are one line.
 */
export function oneLine(text: string): string {
  const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
