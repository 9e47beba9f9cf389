/** The host's mount table, as the tests compare it. */
import fs from 'node:fs';

/** Mount points and filesystem types of a process's mount table (`/proc/PID/mountinfo`), one string each. */
export function mountTable(pid: number | 'self' = 'self'): string[] {
  return fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n').map((line) => {
    const f = line.split(' ');
    return `${f[4]} ${line.split(' - ')[1]?.split(' ')[0]}`;
  });
}

/** Mount points listed in a mountinfo text (field 5). */
export function mountPoints(mountinfo: string): string[] {
  return mountinfo.trim().split('\n').filter(Boolean).map((line) => line.split(' ')[4]!);
}

/** The filesystem type mounted at `point` in a mountinfo text (the last mount there wins). */
export function fsTypeAt(mountinfo: string, point: string): string | undefined {
  return mountinfo.trim().split('\n').filter((l) => l.split(' ')[4] === point).map((l) => l.split(' - ')[1]!.split(' ')[0]!).at(-1);
}
