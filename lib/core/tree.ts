/**
 * Removing a directory calf made, which may still have mounts below it.
 * @module
 */
import fs from 'node:fs';
import { CalfError } from './errors.js';
import { unmountUnder } from './mountinfo.js';

/**
 * Remove `dir` and everything in it: first detach anything still mounted below it (only a
 * container whose mounts leaked into the host's namespace has any), then delete the files.
 * Files are deleted only once no mount is left below: deleting recursively through a mount
 * would delete whatever it shows (a bind-mounted host directory, say). Already gone is success.
 * @throws CalfError, one line naming what is left, when a mount can't be detached or a file removed
 */
export function removeTree(dir: string): void {
  const { left, errors } = unmountUnder(dir);
  if (left.length) {
    const why = [...errors.values()][0];
    throw new CalfError(`could not remove ${dir}: ${left.length} mount${left.length > 1 ? 's' : ''} left under it (${left[0]}${left.length > 1 ? ', …' : ''})${why ? `: ${why}` : ''}`);
  }
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    throw new CalfError(`could not remove ${dir}: ${(err as Error).message}`, { cause: err });
  }
}
