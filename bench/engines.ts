/**
 * How long podman and containerd take to run `busybox true` with runc and crun as their OCI
 * runtime, through the test harness (each engine hermetic, in a sandbox of its own: see
 * test/support/engine-sandbox.ts). The numbers level 17 puts calf-runtime next to.
 *
 *   npx tsx bench/engines.ts [--runs 10] [--runtime NAME=PATH ...]
 *
 * Each case runs once to warm up, then `runs` rounds, each case once per round (a busy
 * neighbour slows all of them alike). The engines get PATH and their configuration only (no
 * NODE_OPTIONS, no CA bundle). crun refuses this hybrid host's cgroup2 mount, so its sandboxes
 * cover /sys/fs/cgroup/unified with a tmpfs; runc is timed both ways, to show that this alone
 * changes nothing. Every time includes nsenter into the sandbox: the `true` row measures that.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { startPodman, type Podman } from '../test/support/podman.js';
import { startContainerd, type Containerd } from '../test/support/containerd.js';
import { createEngineSandbox, type EngineSandbox } from '../test/support/engine-sandbox.js';
import { imagesDir } from '../test/support/images.js';

const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '10' }, runtime: { type: 'string', multiple: true, default: [] } } });
const runs = Math.max(1, Number(opts.runs));
const builtin: [string, string][] = [['runc', '/usr/bin/runc'], ['crun', '/usr/bin/crun']];
const extra = (opts.runtime as string[]).map((r): [string, string] => [r.slice(0, r.indexOf('=')), r.slice(r.indexOf('=') + 1)]);
const runtimes = [...builtin, ...extra].filter(([, p]) => fs.existsSync(p));

interface Case { name: string; run: (i: number) => Promise<{ exitCode?: number; stderr: string }> }
const cases: Case[] = [];
const engines: { stop(): Promise<string[]> }[] = [];
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };

try {
  const bare: EngineSandbox = await createEngineSandbox();
  engines.push({ stop: () => bare.remove() });
  cases.push({ name: 'nsenter into a sandbox + true (overhead in every row)', run: () => bare.exec('true', []) });
  // runc alone on a bundle of busybox (runc spec, without a terminal): the anchor the engines add to
  const bundle = path.join(bare.dir, 'bundle');
  fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
  const layout = path.join(imagesDir, 'busybox');
  const blob = (digest: string) => path.join(layout, 'blobs', ...digest.split(':'));
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  for (const layer of manifest.layers) execFileSync('tar', ['-xzf', blob(layer.digest), '-C', path.join(bundle, 'rootfs')]);
  execFileSync('runc', ['spec'], { cwd: bundle });
  const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { process: { terminal: boolean; args: string[] }; linux: { cgroupsPath?: string } };
  spec.process.terminal = false;
  spec.process.args = ['true'];
  spec.linux.cgroupsPath = `${bare.cgroupParent}/runc`;
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
  cases.push({ name: 'runc run busybox true (no engine)', run: (i) => bare.exec('runc', ['run', '--bundle', bundle, `b${i}`]) });
  for (const [name, path] of runtimes) {
    for (const hide of name === 'runc' ? [false, true] : [true]) {
      const p: Podman = await startPodman({ runtime: path, hideCgroup2: hide });
      engines.push(p);
      const note = hide ? ', cgroup2 hidden' : '';
      cases.push({ name: `podman --runtime ${name} run --rm --network none busybox true${note}`, run: () => p.podman(['run', '--rm', '--network', 'none', p.image, 'true']) });
      cases.push({ name: `podman --runtime ${name} run --rm busybox true (CNI bridge)${note}`, run: () => p.podman(['run', '--rm', p.image, 'true']) });
    }
    const c: Containerd = await startContainerd({ runtime: path, hideCgroup2: name !== 'runc' });
    engines.push(c);
    cases.push({ name: `ctr run --runc-binary ${name} --rm busybox true`, run: (i) => c.ctr(['run', '--rm', c.image, `b${i}`, 'true']) });
  }
  const times = new Map(cases.map((c) => [c, [] as number[]]));
  let n = 0;
  const time = async (c: Case) => {
    const t0 = performance.now();
    const r = await c.run(n++);
    const ms = performance.now() - t0;
    if (r.exitCode !== 0) throw new Error(`${c.name}: exit ${r.exitCode}: ${r.stderr.trim()}`);
    return ms;
  };
  for (const c of cases) await time(c);
  for (let i = 0; i < runs; i++) for (const c of cases) times.get(c)!.push(await time(c));
  const w = Math.max(...cases.map((c) => c.name.length));
  console.log(`${'case'.padEnd(w)}  median     min     max   (ms, ${runs} runs)`);
  for (const c of cases) {
    const t = times.get(c)!;
    console.log(`${c.name.padEnd(w)}  ${median(t).toFixed(0).padStart(6)}  ${Math.min(...t).toFixed(0).padStart(6)}  ${Math.max(...t).toFixed(0).padStart(6)}`);
  }
} finally {
  for (const e of engines.reverse()) {
    const left = await e.stop();
    if (left.length) console.error(`left: ${left.join(', ')}`);
  }
}
