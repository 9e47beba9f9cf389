/**
 * Timestamps for `npm run bench -- --breakdown` (bench/breakdown.ts): with `CALF_TIMINGS=FILE`,
 * each {@link mark} appends `pid epoch-ms name` to FILE; without it a mark costs one comparison.
 * The breakdown merges these with the system calls strace(1) sees, so only what no system call
 * shows is marked here: where a Node process's own work (loading the bundle, parsing the command
 * line) ends. The fault points (lib/core/faults.ts) are marks too.
 * @module
 */
import fs from 'node:fs';

const file = process.env.CALF_TIMINGS;

/** Set by the bundle's first line (lib/runtime/bundle.ts's banner): when Node began to run it. */
declare global {
  var CALF_BUNDLE_T0: number | undefined; // eslint-disable-line no-var
}

let first = true;

/** Note that this process got to `name` now, when `CALF_TIMINGS` names a file. */
export function mark(name: string): void {
  if (!file) return;
  const lines: string[] = [];
  if (first && typeof globalThis.CALF_BUNDLE_T0 === 'number') lines.push(`${process.pid} ${(performance.timeOrigin + globalThis.CALF_BUNDLE_T0).toFixed(3)} bundle`);
  first = false;
  lines.push(`${process.pid} ${(performance.timeOrigin + performance.now()).toFixed(3)} ${name}`);
  fs.appendFileSync(file, `${lines.join('\n')}\n`);
}
