/**
 * The mount table: the one parser of `/proc/PID/mountinfo` in lib (cgroup hierarchies, container
 * roots and cleanup all read it through this), and the detaching of what is mounted under a
 * directory.
 * @see https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { umount2, MNT_DETACH, UMOUNT_NOFOLLOW } from '../linux/mount.js';

/** One line of `/proc/PID/mountinfo`. */
export interface MountInfo {
  id: number;
  parent: number;
  /** path inside the filesystem that is mounted (`/` unless a bind mount of a subdirectory) */
  root: string;
  /** where it is mounted, relative to the reader's root */
  mountPoint: string;
  /** per-mount options: `rw,nosuid,relatime` */
  options: string[];
  fsType: string;
  source: string;
  /** per-superblock options: for a v1 cgroup hierarchy, its controllers (`rw,cpu,cpuacct`) */
  superOptions: string[];
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
    const [fsType = '', source = '', superOptions = ''] = after.split(' ');
    return {
      id: Number(f[0]), parent: Number(f[1]), root: unescape(f[3]!), mountPoint: unescape(f[4]!),
      options: f[5]!.split(','), fsType, source: unescape(source), superOptions: superOptions.split(','),
    };
  });
}

/** Mount points at or below `dir` in the caller's mount namespace, shallowest first (a point stacked n times is listed n times). */
export function mountsUnder(dir: string): string[] {
  return mountInfoUnder(dir).map((m) => m.mountPoint);
}

function mountInfoUnder(dir: string): MountInfo[] {
  const prefix = path.resolve(dir);
  return readMountInfo()
    .filter((m) => m.mountPoint === prefix || m.mountPoint.startsWith(prefix + '/'))
    .sort((a, b) => depth(a.mountPoint) - depth(b.mountPoint));
}

function depth(mountPoint: string): number {
  return mountPoint.split('/').length;
}

/** What {@link unmountUnder} did: the points it detached, and the mounts still there. */
export interface Unmounted {
  detached: string[];
  /** mount points still at or below the directory (empty when it worked) */
  left: string[];
  /** why the last attempt on a point that is still there failed, by point */
  errors: Map<string, string>;
}

/**
 * Lazily detach every mount at or below `dir`, so that removing `dir` can never reach into a
 * filesystem mounted there (a bind mount of a host directory, say). It never throws: it returns
 * what it detached and what is left.
 *
 * A half-done level leaves odd mount tables: a mount propagated back from a container that
 * forgot `MS_PRIVATE` appears twice (under its parent and under the shared `containers/`
 * mount, hidden below the first), mounts stack on one point, and detaching one member of a
 * peer group detaches its peers' copies too, so a point read a moment ago may be gone. Hence:
 * shallowest first (`MNT_DETACH` takes a mount's whole subtree with it), then read the table
 * again, until nothing is left under `dir` or a whole pass changes nothing. `EINVAL` (no longer a
 * mount point) and `ENOENT` (its directory went with a parent) just mean gone; `UMOUNT_NOFOLLOW`
 * keeps a symlink a container planted from redirecting the unmount out of `dir`.
 */
export function unmountUnder(dir: string): Unmounted {
  const detached: string[] = [];
  const errors = new Map<string, string>();
  let seen = '';
  for (let pass = 0; pass < 100; pass++) { // bounded, should something keep mounting meanwhile
    const mounts = mountInfoUnder(dir);
    const table = mounts.map((m) => m.id).join(' ');
    if (!mounts.length || table === seen) break; // done, or a whole pass changed nothing
    seen = table;
    errors.clear();
    for (const { mountPoint: mp } of mounts) {
      try {
        umount2(mp, MNT_DETACH | UMOUNT_NOFOLLOW);
        detached.push(mp);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EINVAL' && code !== 'ENOENT') errors.set(mp, (err as Error).message);
      }
    }
  }
  const left = mountsUnder(dir);
  for (const mp of errors.keys()) if (!left.includes(mp)) errors.delete(mp);
  return { detached, left, errors };
}
