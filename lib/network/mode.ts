/**
 * `--network` at level 07, before there are networks to name: `none` or `host`.
 * @module
 */
import { CalfError } from '../core/errors.js';

/** The network modes that need no network definition, as Docker spells them. */
export const NETWORK_MODES = ['none', 'host'] as const;

/**
 * Check a `--network` value of level 07: `none` (a namespace with only `lo`) or `host` (no
 * namespace of its own). Anything else is a network that does not exist (yet): 125, as
 * `docker run --network nosuch` says `network nosuch not found`.
 */
export function networkMode(text: string): string {
  if (!(NETWORK_MODES as readonly string[]).includes(text)) throw new CalfError(`network ${text} not found`);
  return text;
}
