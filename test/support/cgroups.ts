/**
 * Looking at a container's cgroup from both sides: the path its `/proc/self/cgroup` names inside,
 * and that cgroup's files on the host, on cgroup v1 (one hierarchy per controller) and v2 (one tree).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import { run, repo, type RunOptions } from './target.js';
import { cgroupVersion, slow } from './host.js';
import { inBackground, type Background } from './background.js';
import { v1Hierarchy } from './mounts.js';

/** This machine's cgroup version, as the kernel shows it (not calf's idea of it). */
export const version = cgroupVersion();

/**
 * The cgroup path `/proc/self/cgroup` names for `controller`: v2's one line `0::PATH`, or on v1
 * the line whose controller list holds `controller` (`4:memory:/calf/…`).
 */
export function cgroupPathOf(procSelfCgroup: string, controller: string): string | undefined {
  for (const line of procSelfCgroup.split('\n')) {
    const [, controllers, cgPath] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (cgPath === undefined) continue;
    if (version === 'v2' ? controllers === '' : controllers!.split(',').includes(controller)) return cgPath;
  }
  return undefined;
}

/** Where a v1 controller's hierarchy is mounted on the host. */
function v1Mount(controller: string): string {
  const point = v1Hierarchy(controller);
  if (point === undefined) throw new Error(`cgroup v1: no hierarchy for ${controller} is mounted`);
  return point;
}

/** The host directory of cgroup `cgPath` for `controller` (v2: the one tree's). */
export function hostDir(cgPath: string, controller: string): string {
  return path.join(version === 'v2' ? '/sys/fs/cgroup' : v1Mount(controller), cgPath);
}

/** Every host directory cgroup `cgPath` may have: one per controller calf limits. */
export function hostDirs(cgPath: string): string[] {
  return [...new Set(['cpu', 'cpuacct', 'memory', 'pids'].map((c) => hostDir(cgPath, c)))];
}

/** A file of the container's cgroup, read on the host: `{ v1: 'cpu.shares', v2: 'cpu.weight' }`. */
export function readCgroupFile(cgPath: string, file: { v1: string; v2: string }): string {
  const name = file[version === 'v2' ? 'v2' : 'v1'];
  return fs.readFileSync(path.join(hostDir(cgPath, name.split('.')[0]!), name), 'utf8').trim();
}

/** CPU time the cgroup's processes have used, in µs: v1 cpuacct.usage (ns), v2 cpu.stat's usage_usec. */
export function cpuUsageUs(cgPath: string): number {
  if (version === 'v2') return Number(/^usage_usec (\d+)/m.exec(readCgroupFile(cgPath, { v1: '', v2: 'cpu.stat' }))![1]);
  return Number(readCgroupFile(cgPath, { v1: 'cpuacct.usage', v2: '' })) / 1000;
}

/** The pids in a cgroup directory, none when it is gone. */
export function procsIn(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A cgroup path calf makes for a container: `/calf/<id>` or a test's `/calf-parent-…/<id>`. */
const CALF_CGROUP = /^\/calf(-parent-[0-9a-f]+)?\/[0-9a-f]{64}$/;

/**
 * SIGKILL what runs in the container's cgroup, by pid. Only in a cgroup calf made for a
 * container: a calf that never joined its cgroup shows `/` (or the caller's cgroup) in
 * /proc/self/cgroup, and the processes there are the whole machine's.
 */
export function killIn(cgPath: string): void {
  if (!CALF_CGROUP.test(cgPath)) return;
  for (const dir of hostDirs(cgPath)) {
    for (const pid of procsIn(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}

/** A container that says where it is and then waits: a test looks at its cgroup from the host meanwhile. */
export interface Waiting extends Background<ReturnType<typeof run>> {
  /** `/proc/self/cgroup` as the container printed it */
  procSelfCgroup: string;
  /** the path it names for the cpu controller (v2: the one path) */
  cgPath: string;
}

/**
 * `calf run FLAGS IMAGE sh -c 'cat /proc/self/cgroup; echo TOKEN; SCRIPT'` in the background,
 * handed back once the container has printed its cgroup. SCRIPT's default waits for stdin to
 * close (`finish()`); a busy loop runs until the test stops it (`stop()`). `options.env` goes to
 * calf's own environment.
 */
export async function startWaiting(flags: string[], script = 'cat >/dev/null', options: RunOptions = {}): Promise<Waiting> {
  const token = `up-${randomBytes(4).toString('hex')}`;
  const proc = run([...flags, 'busybox', 'sh', '-c', `cat /proc/self/cgroup; echo ${token}; ${script}`], options);
  // as long as calf run itself may take (target.ts): an emulated VM on a busy host needs it
  const started = await inBackground(proc, token, { what: `its /proc/self/cgroup (calf run ${flags.join(' ')})` });
  const procSelfCgroup = started.output.slice(0, started.output.indexOf(`${token}\n`));
  return { ...started, procSelfCgroup, cgPath: cgroupPathOf(procSelfCgroup, 'cpu') ?? '' };
}

/** The container's cgroup path looks like calf's: `/calf/<64 hex digits>` (or under `parent`). */
export function expectCalfCgroup(w: Waiting, parent = 'calf'): void {
  if (!new RegExp(`^/${parent}/[0-9a-f]{64}$`).test(w.cgPath)) {
    throw new Error(`the container's /proc/self/cgroup names no /${parent}/<id> cgroup (is the init stage put into its cgroup before execve?):\n${w.procSelfCgroup.trim()}`);
  }
}

/** None of the cgroup's host directories exist, and neither does calf's `calf/` parent when no other container uses it. */
export function expectGone(cgPath: string): void {
  expect(hostDirs(cgPath).filter((d) => fs.existsSync(d))).toEqual([]);
}

/**
 * calf's environment for a host where calf's parent is slow right after it releases the init
 * stage: test/helpers/host/slow-go.c, preloaded, sleeps half a second (× the machine's slowness)
 * after the handshake's "go". A container joined to its cgroup only after the release then
 * starts its command outside, every time, instead of losing a race by microseconds.
 */
export function slowAfterGo(): Record<string, string> {
  const library = path.join(repo, 'build/helpers/host/slow-go.so');
  if (!fs.existsSync(library)) throw new Error(`${library} is missing: run npm run images (it compiles test/helpers/host/*.c)`);
  return { LD_PRELOAD: library, CALF_SLOW_GO_MS: String(500 * slow) };
}

/** Seconds a measurement lasts: 2 s, stretched on slow machines (emulated VMs). */
export const MEASURE_MS = 2000 * slow;
