/**
 * The tests' one reader of mountinfo texts (the host's, or one a container printed), and the
 * ways the checks compare them. Deliberately not lib's parser: the tests don't trust the code
 * they check.
 * @see https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html
 */
import fs from 'node:fs';

/** One line of mountinfo, field by field. */
export interface Mount {
  /** mount id and parent id (fields 1 and 2) */
  id: number;
  parent: number;
  /** `major:minor` of the filesystem's device (field 3) */
  device: string;
  /** the directory of the filesystem that is mounted here (field 4) */
  root: string;
  /** where it is mounted (field 5) */
  point: string;
  /** per-mount options: `ro`/`rw`, `nosuid`, `nodev`, `noexec`, `relatime`… (field 6) */
  options: string[];
  /** the filesystem type and source after the ` - ` separator */
  fsType: string;
  source: string;
  /** per-superblock options: an overlay's `lowerdir=…`, a cgroup's controllers */
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash in paths as `\NNN` (octal). */
const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** Every line of a mountinfo text, in order (a later mount at a point hides an earlier one). */
export function parseMountinfo(mountinfo: string): Mount[] {
  return mountinfo.split('\n').filter((line) => / - /.test(line)).map((line) => {
    const [before, after = ''] = line.split(' - ');
    const f = before!.split(' ');
    const [fsType = '', source = '', superOptions = ''] = after.split(' ');
    return {
      id: Number(f[0]), parent: Number(f[1]), device: f[2] ?? '', root: unescape(f[3] ?? ''), point: unescape(f[4] ?? ''),
      options: (f[5] ?? '').split(','), fsType, source: unescape(source), superOptions: superOptions.split(','),
    };
  });
}

/** A process's mount table, parsed: `/proc/PID/mountinfo`. */
export function readMountinfo(pid: number | 'self' = 'self'): Mount[] {
  return parseMountinfo(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
}

/** A process's mounts as `"<mount point> <fs type> <source>"` strings. */
export function mountsWithSource(pid: number | 'self' = 'self'): string[] {
  return readMountinfo(pid).map((m) => `${m.point} ${m.fsType} ${m.source}`);
}

/** A process's mount table (`/proc/PID/mountinfo`) as `"<mount point> <fs type>"` strings. */
export function mountTable(pid: number | 'self' = 'self'): string[] {
  return readMountinfo(pid).map((m) => `${m.point} ${m.fsType}`);
}

/** Mount points listed in a mountinfo text. */
export function mountPoints(mountinfo: string): string[] {
  return parseMountinfo(mountinfo).map((m) => m.point);
}

/** The mount that shows at `point` in a mountinfo text (the last one mounted there). */
export function mountAt(mountinfo: string, point: string): Mount | undefined {
  return parseMountinfo(mountinfo).filter((m) => m.point === point).at(-1);
}

/** The filesystem type mounted at `point` in a mountinfo text (the last mount there wins). */
export function fsTypeAt(mountinfo: string, point: string): string | undefined {
  return mountAt(mountinfo, point)?.fsType;
}

/** Where this machine mounts the cgroup v1 hierarchy of `controller`, if it has one. */
export function v1Hierarchy(controller: string): string | undefined {
  return readMountinfo().find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller))?.point;
}
