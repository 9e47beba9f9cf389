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

/** Host pids of the processes in the PID namespace named `name` (`pid:[4026…]`), zombies included. */
export function pidsInNamespace(name: string): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/pid`) === name;
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** A PID namespace a check holds open while it looks at it: see {@link holdPidNamespace}. */
export interface HeldPidNamespace {
  /** its name, as readlink(2) of `/proc/PID/ns/pid` shows it: `pid:[4026…]` */
  readonly name: string;
  /** host pids of the processes in it now (zombies included); none once it has ended */
  members(): number[];
  /** close the descriptor that holds it; idempotent */
  release(): void;
}

/**
 * Hold open the PID namespace process `pid` is in, so a check can tell when it is empty.
 *
 * A namespace's name is the number of its nsfs inode, and the kernel gives a freed number to the
 * next namespace anyone makes: a container that a check in another test file (jest runs two side
 * by side) starts just after this one ended would show up as "still in" it. An open descriptor
 * keeps the namespace, and so its number, until {@link HeldPidNamespace.release}.
 * @see https://man7.org/linux/man-pages/man7/namespaces.7.html
 */
export function holdPidNamespace(pid: number): HeldPidNamespace {
  const fd = fs.openSync(`/proc/${pid}/ns/pid`, 'r');
  let open = true;
  const name = fs.readlinkSync(`/proc/self/fd/${fd}`); // the namespace that was opened, whatever pid became since
  return {
    name,
    members: () => pidsInNamespace(name),
    release: () => {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}
