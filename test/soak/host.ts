/**
 * What the soak runs calf in and on: a network namespace of its own (so calf0's bridge and every
 * veth exist only there), the last solution through the fast entry, and a way to see and kill
 * the calf processes one run started.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { repo } from '../support/paths.js';

/** The last solution (the highest-numbered directory under solutions/), as bin/calf.cjs picks it. */
export function lastSolution(): string {
  const dir = path.join(repo, 'solutions');
  const name = fs.readdirSync(dir).filter((n) => /^\d\d-/.test(n)).sort().at(-1)!;
  return path.join(dir, name, 'calf.ts');
}

/**
 * A network namespace held by `unshare --net sleep` (not `ip netns add`: that bind-mounts it on
 * /run/netns, a change of the host's mount table). Its holder carries no CALF_ROOT, so the
 * leftover detector never counts it as a calf process.
 */
export interface Netns {
  holder: ChildProcess;
  nsenter: readonly string[];
  /** interface names inside the namespace */
  links(): string[];
  remove(): void;
}

export async function makeNetns(): Promise<Netns> {
  const holder = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore', env: { PATH: process.env.PATH } });
  const own = fs.readlinkSync('/proc/self/ns/net');
  const until = Date.now() + 10_000;
  const nsOf = () => { try { return fs.readlinkSync(`/proc/${holder.pid}/ns/net`); } catch { return undefined; } };
  while (nsOf() === undefined || nsOf() === own) {
    if (Date.now() > until || holder.exitCode !== null) throw new Error('unshare --net did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  const nsenter = [`--net=/proc/${holder.pid}/ns/net`, '--'];
  const ip = (args: string[]) => execFileSync('nsenter', [...nsenter, 'ip', ...args], { encoding: 'utf8' });
  ip(['link', 'set', 'lo', 'up']);
  return {
    holder, nsenter,
    links: () => ip(['-o', 'link', 'show']).split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.replace(/@.*$/, '')),
    remove: () => { if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL'); },
  };
}

/** A calf process (a node process running bin/calf.cjs's bundle) and what it is in a run. */
export interface CalfProcess {
  pid: number;
  /** `CLI run`, `CLI exec`, `CLI pull`, …, `monitor`, `init stage`, `exec stage` */
  role: string;
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The calf processes of one run: node processes whose environment carries the run's marker
 * (calf passes its environment on to the monitor and its stages). The container's own command
 * is not one of them once the init stage has execve'd it (it is busybox then, not node).
 */
export function calfProcesses(marker: string): CalfProcess[] {
  const found: CalfProcess[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (!read(`/proc/${pid}/environ`).split('\0').includes(marker)) continue;
    let exe = '';
    try { exe = fs.readlinkSync(`/proc/${pid}/exe`); } catch { continue; }
    if (exe !== process.execPath) continue;
    // the stages retitle themselves (lib/runtime/stage.ts: `calf:[init]`, `calf:[monitor]`,
    // `calf:[exec]`), which rewrites their cmdline; before that, argv[2] says which it is
    const argv = read(`/proc/${pid}/cmdline`).split('\0');
    const title = /^calf:\[(\w+)\]/.exec(argv[0] ?? '')?.[1] ?? argv[2] ?? '';
    const role = title === 'init' ? 'init stage' : title === 'monitor' ? 'monitor' : /^exec(-stage)?$/.test(title) && argv[0]!.startsWith('calf:') || title.endsWith('-stage') ? 'exec stage' : `CLI ${title}`;
    found.push({ pid: Number(pid), role });
  }
  return found;
}

/** The peak resident set (VmHWM, kB) of every node process carrying `CALF_ROOT=<one of roots>`, right now. */
export function peakRssKb(markerPrefix: string): number {
  let peak = 0;
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const env = read(`/proc/${pid}/environ`);
    if (!env.includes(markerPrefix)) continue;
    const m = /^VmHWM:\s+(\d+) kB/m.exec(read(`/proc/${pid}/status`));
    if (m) peak = Math.max(peak, Number(m[1]));
  }
  return peak;
}

/** Every process whose environment names one of `roots` as CALF_ROOT, or whose root directory is inside one. */
export function processesOf(roots: readonly string[]): number[] {
  const pids: number[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const env = read(`/proc/${pid}/environ`).split('\0');
    let rootDir = '';
    try { rootDir = fs.readlinkSync(`/proc/${pid}/root`); } catch { /* gone */ }
    if (roots.some((r) => env.includes(`CALF_ROOT=${r}`) || rootDir.startsWith(`${r}/`))) pids.push(Number(pid));
  }
  return pids.filter((p) => p !== process.pid);
}
