/**
 * `calf cleanup`: remove what calf made and a crashed or half-finished run left behind, by
 * asking every kind of leftover (lib/runtime/leftovers.ts) what exists.
 * @module
 */
import { calfRoot } from '../core/root.js';
import { alive } from '../core/process.js';
import { LEFTOVER_KINDS } from './leftovers.js';

/**
 * Remove every leftover whose calf process is gone (all of them with `force`), kind by kind.
 * A thing that cannot be removed is reported, and the others are still removed.
 * @returns one line per thing removed, kept or failed, for the user
 */
export function cleanup(options: { force?: boolean; root?: string; kinds?: typeof LEFTOVER_KINDS } = {}): string[] {
  const root = options.root ?? calfRoot();
  const report: string[] = [];
  // Each owner is judged once, the first time it is asked about: a calf that dies while this
  // runs then keeps all its things for the next cleanup, instead of losing its cgroup and
  // endpoint here but keeping its container (asked about earlier, while it lived).
  const living = new Map<string, boolean>();
  const running = (pid: number, startTime?: number) => {
    const key = `${pid}/${startTime ?? ''}`;
    return living.get(key) ?? living.set(key, alive(pid, startTime)).get(key)!;
  };
  for (const kind of options.kinds ?? LEFTOVER_KINDS) {
    for (const thing of kind.find(root)) {
      if (!options.force && thing.owner !== undefined && thing.owner !== process.pid && running(thing.owner, thing.ownerStartTime)) {
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
