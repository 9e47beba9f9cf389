/**
 * `npm run soak`: the last solution doing what users do, many times, concurrently, killed at
 * random points, and after every batch of runs nothing may be left and the store must be whole.
 *
 *   npm run soak -- [--runs N] [--seed S] [--parallel P] [--kill-share F] [--timeout SECONDS] [--json]
 *   npm run soak -- --burst N [--json]     N containers started at once on one network, then N in a row
 *   npm run soak -- --skip-cleanup …       no calf cleanup after a batch: a kill must then be found (the checker's check)
 *
 * Runs go in batches of `--parallel` on one shared calf root (test images loaded, as
 * test/support/store.ts makes it for the board) inside a network namespace of the soak's own,
 * through the fast entry (bin/calf.cjs, plain node). After each batch: what a user does after a
 * crash (`calf rm -f` of a named container whose run was killed, then `calf cleanup` on every
 * root), then the leftover detector (test/support/leftovers.ts, plus the veths and bridges in
 * the soak's netns) and the store check (lib/image/check.ts) on every root. Any finding, and
 * any run that failed without a kill, stops the soak with the seed, the runs of the batch and
 * their kill points. Batches, not a rolling pool: the checks need a quiet store, and the
 * seed's batches replay the same runs side by side.
 *
 * Every scratch thing (calf roots, the netns, the registry) is removed at the end, also on a
 * finding, an error or SIGINT/SIGTERM. Exit 0: nothing found; 1: a finding; 2: bad usage.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { prepareStore, removeStore } from '../support/store.js';
import { imagesDir } from '../support/images.js';
import { snapshot, newSince, settled } from '../support/leftovers.js';
import { startTestRegistry, REGISTRY, type TestRegistry } from '../support/registry.js';
import { checkStore } from '../../lib/image/check.js';
import '../../lib/image/blob-writer.js'; // registers half-downloaded blobs as a kind of leftover
import { makeNetns, lastSolution, peakRssKb, processesOf, type Netns } from './host.js';
import { soakRun, plan, containerName, type RunContext, type RunResult } from './runs.js';
import { repo } from '../support/paths.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function numberOption(name: string, fallback: number): number {
  const v = option(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) usage(`--${name} takes a number, not ${v}`);
  return n;
}
function usage(message: string): never {
  console.error(`npm run soak: ${message}`);
  process.exit(2);
}

if (process.getuid?.() !== 0) usage('run it as root (calf makes namespaces, mounts and cgroups)');
const seed = option('seed') ?? randomBytes(4).toString('hex');
const runs = numberOption('runs', 200);
const parallel = Math.max(1, numberOption('parallel', 8));
const killShare = numberOption('kill-share', 0.25);
const burst = option('burst') === undefined ? undefined : numberOption('burst', 50);
const json = process.argv.includes('--json');
const timeoutMs = numberOption('timeout', 90) * 1000;
// The checker's own positive control: without calf cleanup after a batch, a killed run's
// remains must be found (a soak that finds nothing then is a broken detector, not a good calf).
const skipCleanup = process.argv.includes('--skip-cleanup');
if (killShare > 1) usage('--kill-share is a share of the runs, 0 to 1');
const log = (line: string) => { if (!json) console.log(line); };

// ---- the scratch: everything made here is listed, to be removed whatever happens ----------
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-soak-'));
let root: string | undefined;
let netns: Netns | undefined;
let registry: TestRegistry | undefined;
const spawned = new Set<number>();
const extraRoots = new Set<string>();
let sampler: NodeJS.Timeout | undefined;
let tornDown = false;

/** Remove everything the soak made: its processes, containers (through calf cleanup), roots, registry, netns. */
async function teardown(): Promise<string[]> {
  if (tornDown) return [];
  tornDown = true;
  if (sampler) clearInterval(sampler);
  const roots = [...(root ? [root] : []), ...extraRoots];
  const problems: string[] = [];
  for (const pid of [...spawned, ...processesOf(roots)]) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  await new Promise((r) => setTimeout(r, 200));
  if (netns) for (const r of roots) await calf(r, ['cleanup', '-f'], 60_000).catch(() => undefined);
  for (const r of roots) problems.push(...removeStore(r));
  await registry?.stop().catch(() => undefined);
  netns?.remove();
  fs.rmSync(scratch, { recursive: true, force: true });
  return problems;
}

const onSignal = (signal: NodeJS.Signals): void => {
  console.error(`\nnpm run soak: ${signal}, removing what the soak made…`);
  void teardown().finally(() => process.exit(128 + os.constants.signals[signal]));
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

/** One calf command in the soak's netns on `r`, outside any run (cleanup, rm, ps). */
function calf(r: string, args: string[], timeout = timeoutMs): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [...netns!.nsenter, process.execPath, path.join(repo, 'bin/calf.cjs'), ...args], {
      cwd: repo, stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/root', CALF_ROOT: r, CALF_FAST_ENTRY: entry, CALF_SOAK_RUN: 'soak' },
    });
    spawned.add(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => { stdout += String(c); });
    child.stderr!.on('data', (c: Buffer) => { stderr += String(c); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`calf ${args.join(' ')} still running after ${timeout / 1000} s (a deadlock?)`)); }, timeout);
    child.once('exit', (code) => {
      clearTimeout(timer);
      spawned.delete(child.pid!);
      setTimeout(() => resolve({ code, stdout, stderr }), 20);
    });
  });
}

const entry = lastSolution();
let peakKb = 0;
/** short ids of every container the soak's roots held: its cgroups are calf/<id> */
const ids = new Set<string>();

function sample(): void {
  peakKb = Math.max(peakKb, peakRssKb('CALF_SOAK_RUN='));
  for (const r of [...(root ? [root] : []), ...extraRoots]) {
    try { for (const d of fs.readdirSync(path.join(r, 'containers'))) ids.add(d); } catch { /* not yet */ }
  }
}

/**
 * What the soak's runs left on the host, judged by what they made: mounts, container
 * directories, processes and lib's leftover kinds under its roots; calf/<id> cgroups of its
 * containers; links in its netns. (The host's own links, netns and IPC objects are other
 * sessions' on a shared machine: the soak's containers live in its netns and their own IPC
 * namespaces.)
 */
async function leftovers(baseline: string[], roots: string[]): Promise<string[]> {
  const ours = (thing: string): boolean => {
    if (thing.startsWith('cgroup ')) return [...ids].some((id) => path.basename(thing.slice(7)).startsWith(id));
    return !/^(link|netns|ipc) /.test(thing);
  };
  const found = await settled(newSince(baseline, snapshot(roots)).filter(ours), roots);
  for (const link of netns!.links()) if (link !== 'lo') found.push(`link ${link} (in the soak's netns)`);
  return found;
}

interface Finding {
  batch: number;
  runs: { index: number; kind: string; planned?: string; killed?: string; failure?: string }[];
  what: string[];
}

async function main(): Promise<number> {
  const t0 = performance.now();
  log(`calf soak · seed ${seed} · ${burst !== undefined ? `burst ${burst}` : `${runs} runs, ${parallel} at once, kill share ${killShare}`} · ${path.relative(repo, entry)} via bin/calf.cjs`);
  root = await prepareStore();
  // prepareStore removes its store on a signal and exits: the soak's handler does that and more
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) for (const l of process.listeners(signal)) if (l !== onSignal) process.off(signal, l);
  netns = await makeNetns();
  sampler = setInterval(sample, 200);
  sampler.unref();
  const baseline = snapshot([root]);
  if (burst !== undefined) return burstMode(burst, baseline, t0);

  registry = await startTestRegistry(netns);
  await registry.push(path.join(imagesDir, 'busybox'), 'library/busybox:latest', { format: 'oci' });
  const ctx: RunContext = { seed, killShare, root, scratch, netns, entry, registry: REGISTRY, timeoutMs };

  const results: RunResult[] = [];
  let storeErrors = 0;
  let leftoverCount = 0;
  let finding: Finding | undefined;
  for (let first = 0, batch = 0; first < runs && !finding; first += parallel, batch++) {
    const indices = Array.from({ length: Math.min(parallel, runs - first) }, (_, i) => first + i);
    for (const i of indices) { const p = plan(ctx, i).pullRoot; if (p) extraRoots.add(p); }
    const done = await Promise.all(indices.map((i) => soakRun(ctx, i, (pid) => spawned.add(pid))));
    results.push(...done);
    for (const r of done) for (const id of r.ids) ids.add(id); // (the sampler may miss a short-lived one)
    const what: string[] = done.filter((r) => r.failure).map((r) => `run ${r.index} failed: ${r.failure}`);

    // what a user does after a crash: remove the container by name, then calf cleanup
    for (const r of done) {
      if (r.killed && r.kind === 'detach') await calf(root, ['rm', '-f', containerName(seed, r.index)]).catch((e: Error) => { what.push(e.message); });
    }
    const roots = [root, ...done.flatMap((r) => r.roots).filter((r) => fs.existsSync(r))];
    for (const r of skipCleanup ? [] : roots) {
      const c = await calf(r, ['cleanup']).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
      if (c.code !== 0) what.push(`calf cleanup (${r}) exit ${c.code}: ${c.stderr.trim()}`);
    }
    for (const r of done) {
      if (r.killed && r.kind === 'volumes') await calf(root, ['volume', 'rm', `soakvol-${r.index}`]).catch(() => undefined);
    }
    sample();
    const left = await leftovers(baseline, roots);
    leftoverCount += left.length;
    what.push(...left.map((l) => `left: ${l}`));
    for (const r of roots) {
      const problems = checkStore(r);
      storeErrors += problems.length;
      what.push(...problems.map((p) => `store: ${p}`));
    }
    // the containers kept on purpose (stopped, killed while stopping): removed, as a user would
    const kept = await calf(root, ['ps', '-aq']);
    if (kept.stdout.trim()) {
      const rm = await calf(root, ['rm', '-f', ...kept.stdout.trim().split('\n')]);
      if (rm.code !== 0) what.push(`calf rm -f of the kept containers: exit ${rm.code}: ${rm.stderr.trim()}`);
    }
    // a pull's root goes once it is clean; on a finding, teardown's calf cleanup -f goes first
    // (removing the root with its records would orphan what they name)
    if (!what.length) for (const r of roots.slice(1)) { what.push(...removeStore(r).map((m) => `left: mount ${m}`)); extraRoots.delete(r); }
    for (const r of done) fs.rmSync(path.join(scratch, `host-${r.index}`), { recursive: true, force: true });
    if (what.length) finding = { batch, runs: done.map(({ index, kind, planned, killed, failure }) => ({ index, kind, planned, killed, failure })), what };
    else if (!json && results.length % 20 < parallel) log(`  … ${results.length}/${runs} runs, ${Math.round((performance.now() - t0) / 1000)} s`);
  }

  const startups = results.flatMap((r) => r.startupMs).sort((a, b) => a - b);
  const q = (p: number) => (startups.length ? Math.round(startups[Math.min(startups.length - 1, Math.ceil(p * startups.length) - 1)]!) : null);
  const kills: Record<string, number> = {};
  for (const r of results) if (r.killed) kills[r.killed] = (kills[r.killed] ?? 0) + 1;
  const summary = {
    seed, runs: results.length, parallel, killShare, seconds: Math.round((performance.now() - t0) / 1000),
    kinds: Object.fromEntries(['run', 'detach', 'pull', 'volumes'].map((k) => [k, results.filter((r) => r.kind === k).length])),
    killed: results.filter((r) => r.killed).length,
    plannedNotReached: results.filter((r) => r.planned && !r.killed).length,
    kills, leftovers: leftoverCount, storeErrors,
    startupMs: { median: q(0.5), p99: q(0.99), n: startups.length },
    peakRssMb: Math.round(peakKb / 1024),
    finding: finding ? { ...finding, replay: `npm run soak -- --seed ${seed} --runs ${(finding.batch + 1) * parallel} --parallel ${parallel} --kill-share ${killShare}` } : null,
  };
  if (json) console.log(JSON.stringify(summary, null, 2));
  else {
    console.log(`\n${'runs'.padEnd(28)} ${summary.runs} (${Object.entries(summary.kinds).map(([k, n]) => `${k} ${n}`).join(', ')}) in ${summary.seconds} s`);
    console.log(`${'kills'.padEnd(28)} ${summary.killed} (${summary.plannedNotReached} planned kills found nothing to kill)`);
    for (const [point, n] of Object.entries(kills).sort()) console.log(`  ${point.padEnd(26)} ${n}`);
    console.log(`${'leftovers (goal 0)'.padEnd(28)} ${summary.leftovers}`);
    console.log(`${'store errors (goal 0)'.padEnd(28)} ${summary.storeErrors}`);
    console.log(`${'start-up median / p99'.padEnd(28)} ${summary.startupMs.median} ms / ${summary.startupMs.p99} ms (${summary.startupMs.n} starts)`);
    console.log(`${'peak RSS of a calf process'.padEnd(28)} ${summary.peakRssMb} MB`);
    if (finding) {
      console.log(`\n✗ batch ${finding.batch} (seed ${seed}):`);
      for (const r of finding.runs) console.log(`    run ${r.index} ${r.kind}${r.killed ? `, killed at ${r.killed}` : r.planned ? `, planned ${r.planned} (not reached)` : ''}${r.failure ? `: ${r.failure}` : ''}`);
      for (const w of finding.what) console.log(`  ${w}`);
      console.log(`  replay: ${summary.finding!.replay}`);
    } else console.log('\n✓ nothing found');
  }
  return finding ? 1 : 0;
}

/**
 * `--burst N`: N `calf run -d` on calf0 at once, each container printing its address; then the
 * same N one after another. Each half: every start succeeds within the time limit (no
 * deadlock), N distinct addresses, `calf rm -f` of all of them at once, and then nothing left
 * and the store whole.
 */
async function burstMode(n: number, baseline: string[], t0: number): Promise<number> {
  const r = root!;
  const start = (i: number, tag: string) => calf(r, ['run', '-d', '--name', `burst-${tag}-${i}`, '--network', 'calf0', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0; exec sleep 600']);
  const halves: Record<string, { ms: number; failed: string[]; addresses: number; left: string[]; store: string[]; rmMs: number }> = {};
  for (const tag of ['concurrent', 'sequential'] as const) {
    const t = performance.now();
    let ends: Awaited<ReturnType<typeof start>>[];
    if (tag === 'concurrent') ends = await Promise.all(Array.from({ length: n }, (_, i) => start(i, tag)));
    else { ends = []; for (let i = 0; i < n; i++) ends.push(await start(i, tag)); }
    const ms = Math.round(performance.now() - t);
    const failed = ends.flatMap((e, i) => (e.code === 0 ? [] : [`burst-${tag}-${i}: exit ${e.code} ${e.stderr.trim().slice(0, 200)}`]));
    const addresses = new Set<string>();
    for (let i = 0; i < n; i++) {
      const logs = await calf(r, ['logs', `burst-${tag}-${i}`]);
      const a = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(logs.stdout)?.[1];
      if (a) addresses.add(a);
    }
    const tr = performance.now();
    const removed = await Promise.all(Array.from({ length: n }, (_, i) => calf(r, ['rm', '-f', `burst-${tag}-${i}`])));
    const rmMs = Math.round(performance.now() - tr);
    failed.push(...removed.flatMap((e, i) => (e.code === 0 ? [] : [`rm -f burst-${tag}-${i}: exit ${e.code} ${e.stderr.trim().slice(0, 200)}`])));
    const c = await calf(r, ['cleanup']);
    if (c.code !== 0) failed.push(`calf cleanup: exit ${c.code} ${c.stderr.trim()}`);
    sample();
    halves[tag] = { ms, failed, addresses: addresses.size, left: await leftovers(baseline, [r]), store: checkStore(r), rmMs };
  }
  const ok = Object.values(halves).every((h) => !h.failed.length && h.addresses === n && !h.left.length && !h.store.length);
  const summary = { seed, burst: n, seconds: Math.round((performance.now() - t0) / 1000), ...halves, peakRssMb: Math.round(peakKb / 1024), ok };
  if (json) console.log(JSON.stringify(summary, null, 2));
  else {
    for (const [tag, h] of Object.entries(halves)) {
      console.log(`${n} ${tag.padEnd(10)} started in ${h.ms} ms (${Math.round(h.ms / n)} ms each), ${h.addresses} distinct addresses, removed at once in ${h.rmMs} ms; leftovers ${h.left.length}, store errors ${h.store.length}`);
      for (const line of [...h.failed, ...h.left.map((l) => `left: ${l}`), ...h.store.map((s) => `store: ${s}`)]) console.log(`  ✗ ${line}`);
    }
    console.log(ok ? '✓ nothing found' : '✗ found something (above)');
  }
  return ok ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`npm run soak: ${(err as Error).stack ?? err}`);
} finally {
  const left = await teardown();
  for (const m of left) console.error(`npm run soak: could not remove ${m}`);
}
process.exit(code);
