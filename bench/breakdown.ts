/**
 * Where a container's start goes: `calf run busybox true` through the fast entry, cut into its
 * phases. Two sources, merged on one clock: the system calls that begin each phase, as strace(1)
 * sees them from outside (`--seccomp-bpf`: it stops only at the seven calls listed, not at the
 * thousands of reads and opens), and, for what no system call shows (where Node's own work
 * ends), calf's marks (`CALF_TIMINGS`, lib/core/timing.ts: a line per mark, nothing without it).
 * The traced total is a little over the untraced one; the table shows both.
 *
 *   npx tsx bench/breakdown.ts [--runs 10] [--level 12] [--out bench/results]   (npm run bench -- --breakdown)
 *
 * A phase ends where the next begins (calf is P, its init stage C; marks in quotes): P's execve
 * → "entry" (bin/calf.cjs runs) → "checked" (its bundle is fresh) → "bundle" (Node runs the
 * bundle's first line) → "main" (its modules are loaded) → "run" (the command line is parsed)
 * → "before-cgroup" → P's unshare(CLONE_NEWPID) → C's execve → C's "bundle" → C's "main" →
 * "init-waiting" (P hears C's namespaces are made) → "after-host-side" (P joined C to the cgroup
 * and network) → C's rmdir of the old root (after pivot_root) → C's seccomp() → C's execve of
 * the command → its exit_group → P's first umount2/rmdir (teardown) → P's exit_group.
 * @module
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { findLevel, levelDir, LEVELS } from '../ladder/ladder.js';
import { prepareStore, removeStore } from '../test/support/store.js';
import { repo } from '../test/support/paths.js';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    level: { type: 'string', default: '12' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const runs = Math.max(1, Number(opts.runs));
const level = findLevel(opts.level!) ?? LEVELS.at(-1)!;
const entry = path.join(repo, levelDir(level, 'solutions'), 'calf.ts');
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const TRACED = 'execve,rmdir,unshare,umount2,seccomp,prctl,exit_group';

/** One system call strace printed: who, when (seconds), which, and its first argument's text. */
interface Event { pid: number; t: number; call: string; args: string }

/** The phases, in order: a name, and the test that finds the event that ends it (after the previous one). */
type Finder = (e: Event, p: number, c: number | undefined) => boolean;
const isMark = (e: Event, name: string) => e.call === 'mark' && e.args === name;
const PHASES: [string, Finder][] = [
  ['Node starts (calf)', (e, p) => e.pid === p && isMark(e, 'entry')],
  ['bundle freshness check', (e, p) => e.pid === p && isMark(e, 'checked')],
  ['Node reads and compiles the bundle', (e, p) => e.pid === p && isMark(e, 'bundle')],
  ['modules run: koffi, libc, libseccomp', (e, p) => e.pid === p && isMark(e, 'main')],
  ['command line (commander)', (e, p) => e.pid === p && isMark(e, 'run')],
  ['image lookup, container dir, config', (e, p) => e.pid === p && isMark(e, 'before-cgroup')],
  ['cgroup: create, limits', (e, p) => e.pid === p && e.call === 'unshare' && e.args.includes('CLONE_NEWPID')],
  ['spawn the init stage', (e, p) => e.pid !== p && e.call === 'execve'],
  ['Node starts (init stage)', (e, p) => e.pid !== p && isMark(e, 'bundle')],
  ['init stage modules (bundle, koffi)', (e, p) => e.pid !== p && isMark(e, 'main')],
  ['namespaces, overlay mount', (e, p) => e.pid === p && isMark(e, 'init-waiting')],
  ['handshake: cgroup join, network', (e, p) => e.pid === p && isMark(e, 'after-host-side')],
  ['/proc, /sys, masks, /dev, pivot_root', (e, _p, c) => e.pid === c && e.call === 'rmdir'],
  ['capabilities, user', (e, _p, c) => e.pid === c && (e.call === 'seccomp' || (e.call === 'prctl' && e.args.startsWith('PR_SET_SECCOMP')))],
  ['seccomp filter', (e, _p, c) => e.pid === c && e.call === 'execve'],
  ['the command (busybox true)', (e, _p, c) => e.pid === c && e.call === 'exit_group'],
  ['calf sees the exit', (e, p) => e.pid === p && (e.call === 'umount2' || e.call === 'rmdir')],
  ['teardown', (e, p) => e.pid === p && e.call === 'exit_group'],
];

/** strace -f -ttt lines into events (an unfinished call counts from its start; "resumed" halves are skipped). */
function parse(text: string): Event[] {
  const events: Event[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(\w+)\((.*)$/.exec(line);
    if (m && !line.includes('resumed>')) events.push({ pid: Number(m[1]), t: Number(m[2]), call: m[3]!, args: m[4]! });
  }
  return events;
}

/**
 * calf's marks (`pid epoch-ms name`) as events. The init stage's marks carry its pid in its own
 * PID namespace (1): any pid but calf's is the init stage's.
 */
function marks(text: string): Event[] {
  return text.split('\n').filter(Boolean).map((line) => {
    const [pid, ms, name] = line.split(' ');
    return { pid: Number(pid), t: Number(ms) / 1000, call: 'mark', args: name! };
  });
}

/** One traced run's phases (ms), or why they could not be read. */
function phases(traced: Event[], marked: Event[]): number[] | string {
  const p = traced.find((e) => e.call === 'execve')?.pid;
  if (p === undefined) return 'no execve traced';
  const c = traced.find((e) => e.pid !== p && e.call === 'execve')?.pid;
  // the init stage's marks under its host pid, so that a phase can name it either way
  const events = [...traced, ...marked.map((e) => (e.pid === p ? e : { ...e, pid: c ?? e.pid }))].sort((a, b) => a.t - b.t);
  return cut(events, p);
}

function cut(events: Event[], p: number): number[] | string {
  let c: number | undefined;
  let at = events.findIndex((e) => e.pid === p && e.call === 'execve');
  const out: number[] = [];
  for (const [name, ends] of PHASES) {
    const next = events.findIndex((e, i) => i > at && ends(e, p, c));
    if (next === -1) return `no event ends the phase "${name}"`;
    if (name === 'spawn the init stage') c = events[next]!.pid;
    out.push((events[next]!.t - events[at]!.t) * 1000);
    at = next;
  }
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-breakdown-'));
const root = await prepareStore();
try {
  const env = { PATH, HOME: tmp, CALF_ROOT: root, CALF_CACHE: path.join(tmp, 'cache'), CALF_FAST_ENTRY: entry };
  const run = (traced: boolean): { ms: number; trace?: string; timings?: string } => {
    const trace = path.join(tmp, 'trace');
    const timings = path.join(tmp, 'timings');
    fs.rmSync(timings, { force: true });
    const cmd = [process.execPath, path.join(repo, 'bin/calf.cjs'), 'run', 'busybox', 'true'];
    const argv = traced ? ['strace', '-f', '--seccomp-bpf', '-ttt', '-s', '96', '-o', trace, '-e', `trace=${TRACED}`, ...cmd] : cmd;
    const t0 = performance.now();
    const r = spawnSync(argv[0]!, argv.slice(1), { cwd: repo, env: traced ? { ...env, CALF_TIMINGS: timings } : env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
    return { ms, ...(traced ? { trace: fs.readFileSync(trace, 'utf8'), timings: fs.readFileSync(timings, 'utf8') } : {}) };
  };
  run(false); // builds the bundle, outside the measurements
  const plain: number[] = [];
  const tracedTotals: number[] = [];
  const byPhase: number[][] = PHASES.map(() => []);
  for (let i = 0; i < runs; i++) {
    plain.push(run(false).ms);
    const { ms, trace, timings } = run(true);
    const got = phases(parse(trace!), marks(timings!));
    if (typeof got === 'string') throw new Error(`run ${i + 1}: ${got} (strace's output kept in ${tmp}/trace)`);
    tracedTotals.push(ms);
    got.forEach((ms, k) => byPhase[k]!.push(ms));
  }
  const medians = byPhase.map(median);
  const sum = medians.reduce((a, b) => a + b, 0);
  const width = 40;
  const scale = width / Math.max(...medians);
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const lines = [
    `calf run busybox true, level ${level.id} (${levelDir(level, 'solutions')}) through the fast entry, ${runs} runs · ${os.cpus()[0]?.model.trim()} ×${os.cpus().length}, Linux ${os.release()}, Node ${process.version}, cgroup ${fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : 'v1'} · load ${load}`,
    `untraced: median ${median(plain).toFixed(0)} ms; traced: ${median(tracedTotals).toFixed(0)} ms; the phases' medians add up to ${sum.toFixed(0)} ms`,
    '',
    '```',
    ...PHASES.map(([name], k) => `${name.padEnd(38)} ${medians[k]!.toFixed(1).padStart(6)} ms  ${'█'.repeat(Math.max(medians[k]! > 0.5 ? 1 : 0, Math.round(medians[k]! * scale)))}`),
    '```',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  fs.mkdirSync(path.resolve(repo, opts.out!), { recursive: true });
  fs.writeFileSync(path.resolve(repo, opts.out!, 'breakdown.md'), `${lines.join('\n')}\n`);
} finally {
  removeStore(root);
  fs.rmSync(tmp, { recursive: true, force: true });
}
