/**
 * `calf cleanup`: remove what calf made and a crashed or half-finished run left behind, by
 * asking every registered kind of leftover (lib/runtime/leftovers.ts) what exists.
 * @module
 */
import { calfRoot } from './root.js';
import { leftoverKinds } from './leftovers.js';
import './container.js'; // registers container directories and their mounts
import '../cgroup/cgroup.js'; // registers cgroups (a level before 09 may clean up after one that made them)
import '../image/layers.js'; // registers half-unpacked layers (level 04)
import '../image/store.js'; // registers temp files of a blob or index.json being written

/** Is process `pid` alive (and ours to ask about)? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove every leftover whose calf process is gone (all of them with `force`), kind by kind.
 * A thing that cannot be removed is reported, and the others are still removed.
 * @returns one line per thing removed, kept or failed, for the user
 */
export function cleanup(options: { force?: boolean; root?: string } = {}): string[] {
  const root = options.root ?? calfRoot();
  const report: string[] = [];
  // Each owner is judged once, the first time it is asked about: a calf that dies while this
  // runs then keeps all its things for the next cleanup, instead of losing its cgroup and
  // endpoint here but keeping its container directory (asked about earlier, while it lived).
  const living = new Map<number, boolean>();
  const running = (pid: number) => living.get(pid) ?? living.set(pid, alive(pid)).get(pid)!;
  for (const kind of leftoverKinds()) {
    for (const thing of kind.find(root)) {
      if (!options.force && thing.owner !== undefined && thing.owner !== process.pid && running(thing.owner)) {
        report.push(`kept ${thing.what}: calf process ${thing.owner} is still running (use --force)`);
        continue;
      }
      try {
        thing.remove();
        report.push(`removed ${thing.what}`);
      } catch (err) {
        report.push(`could not remove ${thing.what}: ${(err as Error).message}`);
      }
    }
  }
  return report;
}
