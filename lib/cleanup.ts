/**
 * `calf cleanup`: remove what calf made and a crashed or half-finished run left behind.
 * Each later level that creates something new on the host (cgroups, network devices) adds
 * its step here, so an attendee can always start clean.
 * @module
 */
import { calfRoot } from './image-store.js';
import { listContainerDirs, removeContainer } from './container.js';
import { unmountUnder } from './mountinfo.js';
import path from 'node:path';

/** Is process `pid` alive (and ours to ask about)? */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove every container directory whose calf process is gone (all of them with `force`),
 * after detaching mounts below it.
 * @returns one line per thing removed or kept, for the user
 */
export function cleanup(options: { force?: boolean; root?: string } = {}): string[] {
  const root = options.root ?? calfRoot();
  const report: string[] = [];
  for (const { dir, owner } of listContainerDirs(root)) {
    if (!options.force && owner !== undefined && owner !== process.pid && alive(owner)) {
      report.push(`kept ${dir}: calf process ${owner} is still running (use --force)`);
      continue;
    }
    removeContainer({ dir });
    report.push(`removed ${dir}`);
  }
  for (const mp of unmountUnder(path.join(root, 'containers'))) report.push(`unmounted ${mp}`);
  return report;
}
