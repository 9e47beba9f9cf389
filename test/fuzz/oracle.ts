/**
 * What counts as a clean refusal. calf turns any error into `calf: <message>` and exit 125
 * (lib/runtime/cli.ts), so an error is clean when that line is one line that says what was wrong,
 * and the error is not a programming error that happened to be caught: a TypeError, RangeError,
 * ReferenceError or an unwrapped SyntaxError means calf went on with input it should have refused.
 */
import { exitCodeOf, messageOf } from '../../lib/core/errors.js';

/** Kinds of error that mean calf did not check its input (anywhere in the `cause` chain). */
const BUG_CLASSES = ['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'AssertionError', 'EvalError'];

/** Node error codes that mean an argument calf passed was malformed (a NUL in a path, NaN for a uid). */
const BUG_CODES = /^ERR_(INVALID_ARG|OUT_OF_RANGE|ASSERTION|INTERNAL)/;

/**
 * Why `error` is not a clean one-line refusal, or undefined when it is. `prefix` is how the line
 * must start; `exitCodes` what calf may exit with for it (`docker rmi` exits 1, not 125).
 */
export function unclean(error: unknown, prefix?: string, exitCodes: readonly number[] = [125]): string | undefined {
  if (!(error instanceof Error)) return `threw a non-Error: ${String(error)}`;
  const line = messageOf(error);
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (BUG_CLASSES.includes(e.name) || (typeof code === 'string' && BUG_CODES.test(code))) {
      return `${e === error ? '' : 'caused by '}${e.name}${code ? ` ${code}` : ''}: ${e.message.split('\n')[0]}`;
    }
  }
  if (!exitCodes.includes(exitCodeOf(error))) return `exit code ${exitCodeOf(error)}, not ${exitCodes.join(' or ')}`;
  if (!line.trim()) return 'an empty message';
  if (/[\n\r]/.test(line)) return `a message of ${line.split(/\r?\n|\r/).length} lines`;
  if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(line)) return 'control characters in the message';
  if (line.length > 2000) return `a message of ${line.length} characters`;
  if (/\bundefined\b|\[object Object\]/.test(line)) return `a message that shows an unset value: ${line.slice(0, 200)}`;
  if (prefix && !line.startsWith(prefix)) return `a message that does not start with "${prefix}": ${line.slice(0, 200)}`;
  return undefined;
}
