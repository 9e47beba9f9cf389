/** Looking at processes from the host side. */
import fs from 'node:fs';
import { slow } from './host.js';

/** The direct children of process `pid`, from `/proc/PID/task/TID/children`. */
export function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) kids.push(...text.split(' ').map(Number));
    }
  } catch {
    // the process (or one of its threads) has just exited: it has no children any more
  }
  return kids;
}

/** The command name the kernel shows for `pid` (`/proc/PID/comm`). */
export function comm(pid: number): string {
  return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

/** Poll `probe` until it returns a value (not undefined), or fail after `ms`. */
export async function waitFor<T>(what: string, probe: () => T | undefined, ms = 20_000): Promise<T> {
  const until = Date.now() + ms * slow;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
