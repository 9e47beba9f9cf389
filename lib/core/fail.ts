/**
 * How calf ends on an error: one line on stderr, then Docker's exit code.
 * @module
 */
import fs from 'node:fs';
import { EXIT_CALF_ERROR } from './errors.js';

/** calf's own error message: `calf: <message>` on stderr, then exit with `code`. */
export function fail(message: string, code = EXIT_CALF_ERROR): never {
  fs.writeSync(2, `calf: ${message}\n`);
  process.exit(code);
}
