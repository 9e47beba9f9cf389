/**
 * Reading the mount table, for cleanup and for tests that compare it.
 * @see https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { umount2, MNT_DETACH } from '../linux/mount.js';

/** One line of `/proc/PID/mountinfo`. */
export interface MountInfo {
  id: number;
  parent: number;
  /** path inside the filesystem that is mounted (`/` unless a bind mount of a subdirectory) */
  root: string;
  /** where it is mounted, relative to the reader's root */
  mountPoint: string;
  fsType: string;
  source: string;
}

/** Undo mountinfo's octal escapes (`\040` is a space). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The mounts of process `pid` (default: the caller), in mount order. */
export function readMountInfo(pid: number | 'self' = 'self'): MountInfo[] {
  return fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trimEnd().split('\n').map((line) => {
    const [before, after = ''] = line.split(' - ');
    const f = before!.split(' ');
    const [fsType = '', source = ''] = after.split(' ');
    return {
      id: Number(f[0]), parent: Number(f[1]), root: unescape(f[3]!), mountPoint: unescape(f[4]!),
      fsType, source: unescape(source),
    };
  });
}

/** Mount points at or below `dir` in the caller's mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const prefix = path.resolve(dir);
  return readMountInfo()
    .map((m) => m.mountPoint)
    .filter((mp) => mp === prefix || mp.startsWith(prefix + '/'))
    .sort((a, b) => b.length - a.length);
}

/**
 * Lazily detach every mount at or below `dir` (deepest first), so that removing `dir` can never
 * reach into a filesystem mounted there — a bind mount of a host directory, say.
 * @returns the mount points it detached
 */
export function unmountUnder(dir: string): string[] {
  const detached: string[] = [];
  // Stacked mounts show up once per layer: repeat until nothing is left.
  for (let points = mountsUnder(dir); points.length; points = mountsUnder(dir)) {
    for (const mp of points) {
      umount2(mp, MNT_DETACH);
      detached.push(mp);
    }
  }
  return detached;
}
