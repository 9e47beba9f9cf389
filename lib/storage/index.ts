/**
 * What a level file uses of calf's storage: a driver by name, `overlay` or `vfs`; and volumes
 * (level 14): `-v`/`--tmpfs` parsed, the volume store, and the init stage's side of a mount.
 * @module
 */
import fs from 'node:fs';
import { CalfError } from '../core/errors.js';
import { overlay } from './overlay.js';
import { vfs } from './vfs.js';
import type { StorageDriver } from './driver.js';

export type { StorageDriver, PreparedRootfs } from './driver.js';
export { createVolume, findVolume, listVolumes, removeVolume, removeAnonymousVolume, volumesDir, type Volume, type VolumeUsers } from './volumes.js';
export { parseVolume, parseTmpfs, mountOptions, containerPath, type VolumeSpec, type TmpfsSpec } from './volume-spec.js';
export { prepareMountPoint, makeMountPoint, fillVolume, mountFlagsOf, mountError } from './mount-point.js';
export { volumeCommands } from './volume-commands.js';

const DRIVERS: Record<string, StorageDriver> = { overlay, vfs };

/** The driver names calf knows, for `--storage-driver`'s help and errors. */
export const STORAGE_DRIVERS = Object.keys(DRIVERS);

/** `name` if it is a driver calf knows; what `--storage-driver`'s parser calls. */
export function checkDriverName(name: string, from = '--storage-driver'): string {
  if (!DRIVERS[name]) throw new CalfError(`${from}: unknown storage driver "${name}" (calf has ${STORAGE_DRIVERS.join(', ')})`);
  return name;
}

/**
 * The storage driver called `name`; without one, `$CALF_STORAGE_DRIVER`, else `overlay` where
 * the kernel has overlayfs (as Docker prefers overlay2) and `vfs` where it has not.
 * @throws CalfError (exit 125) for a name calf does not know
 */
export function storageDriver(name?: string): StorageDriver {
  const chosen = name ?? (process.env.CALF_STORAGE_DRIVER
    ? checkDriverName(process.env.CALF_STORAGE_DRIVER, 'CALF_STORAGE_DRIVER')
    : hasOverlayfs() ? 'overlay' : 'vfs');
  return DRIVERS[checkDriverName(chosen)]!;
}

function hasOverlayfs(): boolean {
  try {
    return /\toverlay$/m.test(fs.readFileSync('/proc/filesystems', 'utf8'));
  } catch {
    return false;
  }
}
