/**
 * Finding the command to run, as a shell would, but with the container's `PATH`.
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { CalfError, EXIT_NOT_FOUND } from '../core/errors.js';

/** The `PATH` a container gets when neither the image nor `-e` sets one (Docker's default). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The command is not in any directory of `PATH`: Docker's exit code 127. */
export class CommandNotFoundError extends CalfError {
  override readonly exitCode = EXIT_NOT_FOUND;
  constructor(readonly command: string) {
    super(`exec: ${JSON.stringify(command)}: executable file not found in $PATH`);
  }
}

/**
 * The file `execve(2)` should run for `command`: `command` itself when it contains a slash,
 * else the first executable regular file named `command` in `PATH` (taken from `env`, the
 * environment the command will get, so it is the container's `PATH`, not calf's).
 *
 * Synchronous on purpose: it runs in the init stage after `unshare`/`chroot`, where only the
 * main thread sees the container's filesystem.
 * @throws CommandNotFoundError
 */
export function lookPath(command: string, env: readonly string[]): string {
  if (command.includes('/')) return command;
  const pathVar = env.findLast((kv) => kv.startsWith('PATH='))?.slice('PATH='.length) ?? DEFAULT_PATH;
  for (const dir of pathVar.split(':')) {
    const candidate = path.join(dir || '.', command);
    try {
      if (fs.statSync(candidate).isFile()) {
        fs.accessSync(candidate, fs.constants.X_OK);
        return candidate;
      }
    } catch {
      // not here (or not executable): keep looking, as execvp(3) does
    }
  }
  throw new CommandNotFoundError(command);
}

/**
 * `base` with `overrides` applied, both as `KEY=VALUE` lists: a key set again replaces the
 * earlier value in place (image `Env` first, then `-e`/`--env-file`, as Docker does).
 */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const merged = new Map<string, string>();
  for (const kv of [...base, ...overrides]) {
    const eq = kv.indexOf('=');
    merged.set(eq === -1 ? kv : kv.slice(0, eq), kv);
  }
  return [...merged.values()];
}
