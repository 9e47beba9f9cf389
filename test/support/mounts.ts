/**
 * Reading mountinfo texts (the host's, or one a container printed) the way the tests compare
 * them. Deliberately not lib/mountinfo.ts: the tests don't trust the code they check.
 * @see https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html
 */
import fs from 'node:fs';

/** Mount point (field 5), filesystem type and source (the fields after ` - `) of each line. */
function parse(mountinfo: string): { point: string; fsType: string; source: string }[] {
  return mountinfo.trim().split('\n').filter(Boolean).map((line) => ({
    point: line.split(' ')[4]!,
    fsType: line.split(' - ')[1]?.split(' ')[0] ?? '',
    source: line.split(' - ')[1]?.split(' ')[1] ?? '',
  }));
}

/** A process's mounts as `"<mount point> <fs type> <source>"` strings. */
export function mountsWithSource(pid: number | 'self' = 'self'): string[] {
  return parse(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8')).map((m) => `${m.point} ${m.fsType} ${m.source}`);
}

/** A process's mount table (`/proc/PID/mountinfo`) as `"<mount point> <fs type>"` strings. */
export function mountTable(pid: number | 'self' = 'self'): string[] {
  return parse(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8')).map((m) => `${m.point} ${m.fsType}`);
}

/** Mount points listed in a mountinfo text. */
export function mountPoints(mountinfo: string): string[] {
  return parse(mountinfo).map((m) => m.point);
}

/** The filesystem type mounted at `point` in a mountinfo text (the last mount there wins). */
export function fsTypeAt(mountinfo: string, point: string): string | undefined {
  return parse(mountinfo).filter((m) => m.point === point).at(-1)?.fsType;
}
