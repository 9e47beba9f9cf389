/**
 * `--hostname`'s parser.
 * @module
 */
import { CalfError } from '../core/errors.js';

/** `--hostname`: what sethostname(2) takes, and what a resolver would (RFC 1123: letters, digits, -, .). */
export function hostnameArg(name: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(name)) throw new CalfError(`invalid hostname ${JSON.stringify(name)}: use letters, digits, '-' and '.', at most 63`);
  return name;
}
