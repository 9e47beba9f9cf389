/**
 * How long `calf run -d` takes until the container runs (it returns then: see the handover in
 * lib/runtime/handover.ts), next to `podman run -d` (conmon, Debian's runc, hermetic: see
 * test/support/podman.ts), and what the monitor did to the foreground path (`calf run --rm
 * busybox true` at level 15 against level 12), and `calf exec` into a running container (level 16)
 * next to `podman exec`. calf runs through its fast entry (bin/calf.cjs:
 * the level's bundle, plain node) with a clean environment, as `npm run bench` does.
 *
 *   npx tsx bench/detach.ts [--runs 10]
 *
 * Each case runs once to warm up, then `runs` rounds, each case once per round; the container a
 * `-d` case started is removed after it is timed (`rm -f`, not timed). Both engines see
 * `--network none`: the point is the monitor and the handover, not the network.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { startPodman, type Podman } from '../test/support/podman.js';
import { prepareStore, removeStore } from '../test/support/store.js';
import { repo } from '../test/support/paths.js';

const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const runs = Math.max(1, Number(opts.runs));
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };

const root = await prepareStore();
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-bench-cache-'));
const env = (level: string) => ({ PATH: process.env.PATH!, CALF_ROOT: root, CALF_CACHE: cache, CALF_FAST_ENTRY: path.join(repo, 'solutions', level, 'calf.ts') });
const calf = (level: string, args: string[]) => execa(process.execPath, [path.join(repo, 'bin/calf.cjs'), ...args], { reject: false, env: env(level), extendEnv: false });
let podman: Podman | undefined;

interface Case { name: string; run(i: number): Promise<{ exitCode?: number; stderr: string }>; after?(i: number): Promise<unknown> }
try {
  podman = await startPodman({ runtime: '/usr/bin/runc' });
  const p = podman;
  // the containers the exec cases go into, one per engine, removed at the end
  for (const r of [await calf('16-exec', ['run', '-d', '--name', 'target', 'busybox', 'sleep', '600']), await p.podman(['run', '-d', '--name', 'target', '--network', 'none', p.image, 'sleep', '600'])]) {
    if (r.exitCode !== 0) throw new Error(`the exec cases' container: exit ${r.exitCode}: ${r.stderr.trim()}`);
  }
  const cases: Case[] = [
    { name: 'calf run -d --network none busybox sleep 600 (fast entry, level 15)', run: (i) => calf('15-detach', ['run', '-d', '--name', `d${i}`, 'busybox', 'sleep', '600']), after: (i) => calf('15-detach', ['rm', '-f', `d${i}`]) },
    { name: 'podman run -d --network none busybox sleep 600', run: (i) => p.podman(['run', '-d', '--name', `d${i}`, '--network', 'none', p.image, 'sleep', '600']), after: (i) => p.podman(['rm', '-f', '-t', '0', `d${i}`]) },
    { name: 'calf run --rm busybox true (fast entry, level 15: monitor in the foreground)', run: () => calf('15-detach', ['run', '--rm', 'busybox', 'true']) },
    { name: 'calf run busybox true (fast entry, level 12)', run: () => calf('12-security', ['run', 'busybox', 'true']) },
    { name: 'podman run --rm --network none busybox true', run: () => p.podman(['run', '--rm', '--network', 'none', p.image, 'true']) },
    { name: 'calf exec target true (fast entry, level 16)', run: () => calf('16-exec', ['exec', 'target', 'true']) },
    { name: 'podman exec target true', run: () => p.podman(['exec', 'target', 'true']) },
  ];
  const times = new Map(cases.map((c) => [c, [] as number[]]));
  let n = 0;
  const time = async (c: Case) => {
    const i = n++;
    const t0 = performance.now();
    const r = await c.run(i);
    const ms = performance.now() - t0;
    if (r.exitCode !== 0) throw new Error(`${c.name}: exit ${r.exitCode}: ${r.stderr.trim()}`);
    await c.after?.(i);
    return ms;
  };
  for (const c of cases) await time(c);
  for (let i = 0; i < runs; i++) for (const c of cases) times.get(c)!.push(await time(c));
  const w = Math.max(...cases.map((c) => c.name.length));
  console.log(`${'case'.padEnd(w)}  median     min     max   (ms, ${runs} runs; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  for (const c of cases) {
    const t = times.get(c)!;
    console.log(`${c.name.padEnd(w)}  ${median(t).toFixed(0).padStart(6)}  ${Math.min(...t).toFixed(0).padStart(6)}  ${Math.max(...t).toFixed(0).padStart(6)}`);
  }
} finally {
  await calf('16-exec', ['rm', '-f', 'target']);
  await podman?.podman(['rm', '-f', '-t', '0', 'target']);
  const left = await podman?.stop();
  if (left?.length) console.error(`podman left: ${left.join(', ')}`);
  const notRemoved = removeStore(root);
  if (notRemoved.length) console.error(`not removed: ${notRemoved.join(', ')}`);
  fs.rmSync(cache, { recursive: true, force: true });
}
