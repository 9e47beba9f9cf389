/**
 * calf's state root: where images, layers and containers live. Everything calf keeps on disk is
 * under it, so one variable (`CALF_ROOT`, as the tests set it) moves all of it.
 * @module
 */

/** calf's state directory: `$CALF_ROOT`, or `/var/lib/calf` (Docker keeps `/var/lib/docker`). */
export function calfRoot(): string {
  return process.env.CALF_ROOT || '/var/lib/calf';
}
