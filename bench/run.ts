/**
 * `npm run bench`: how long a container takes to start with calf, next to what Node itself
 * costs and next to runc, crun and podman (when installed: `npm run bench -- --install-peers`
 * installs them from Debian). Numbers, not assertions: the tests never time anything.
 *
 * Every command runs with a clean environment (PATH, CALF_ROOT, CALF_CACHE only: no
 * NODE_OPTIONS, no NODE_EXTRA_CA_CERTS, which alone costs each Node start ~37 ms), and the
 * timed cases run interleaved, one round after the other, so a busy neighbour slows all of them
 * alike. Output: a table here, and bench/results/bench.{json,svg}. Then, unless
 * `--skip-pull`, bench/pull.ts (`calf pull` from a local registry next to `skopeo copy`, at most 5
 * runs), and unless `--skip-engines`, bench/engines.ts's table: podman and containerd (`ctr run`)
 * running `busybox true` on runc, crun and calf-runtime (level 17), each engine in a sandbox of its own.
 *
 *   npm run bench -- [--runs 10] [--install-peers] [--baseline REF] [--out bench/results] [--readme] [--skip-pull] [--skip-engines]
 *   npm run bench -- --breakdown [--runs 10] [--readme]   (bench/breakdown.ts: a level-12 start, phase by phase)
 *
 * `--baseline REF` also times `tsx … calf.ts` of a git revision (e.g. the commit before the
 * bundled init stage), extracted with `git archive` into a temp dir. `--readme` puts the table
 * and the chart into README.md, between its bench markers.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { LEVELS, levelDir, findLevel } from '../ladder/ladder.js';
import { prepareStore, removeStore } from '../test/support/store.js';
import { repo } from '../test/support/paths.js';
import { resolveImage } from '../lib/image/store.js';
import { unpackImage, unpackLayer } from '../lib/image/unpack.js';
import { unmountUnder } from '../lib/core/mountinfo.js';
import { chart } from './chart.js';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    'install-peers': { type: 'boolean', default: false },
    baseline: { type: 'string' },
    out: { type: 'string', default: 'bench/results' },
    readme: { type: 'boolean', default: false },
    'skip-engines': { type: 'boolean', default: false },
    'skip-pull': { type: 'boolean', default: false },
    breakdown: { type: 'boolean', default: false },
  },
});
const runs = Math.max(1, Number(opts.runs));

// `--breakdown`: only where a level-12 start goes, phase by phase (bench/breakdown.ts); with
// `--readme`, into README.md between its breakdown markers.
if (opts.breakdown) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/breakdown.ts', '--runs', String(runs), '--out', opts.out],
    { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(r.stdout);
  if (r.status === 0 && opts.readme) replaceBetween('<!-- breakdown:start -->', '<!-- breakdown:end -->', r.stdout.trim().split('\n'));
  process.exit(r.status ?? 1);
}
/** The pull section's title line, in the report and in README.md. */
const PULL_TITLE = 'Pulling from a local registry (bench/pull.ts, the same run: Debian\'s docker-registry with token auth, in a network namespace of its own; calf through the fast entry)';
/** The engines table's title line, in the report and in README.md. */
const ENGINES_TITLE = 'Engines on each OCI runtime (bench/engines.ts, the same runs: each engine in a sandbox of its own, reached through nsenter; calf-runtime is the last solution through the fast entry)';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const node = process.execPath;
const level = LEVELS.at(-1)!;
const entry = path.join(repo, levelDir(level, 'solutions'), 'calf.ts');
const tsxBin = path.join(repo, 'node_modules/.bin/tsx');

if (opts['install-peers']) {
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'runc', 'crun', 'podman'], {
    stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) throw new Error('apt-get install runc crun podman failed');
}
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { PATH } }).status === 0;

/** One timed command: how to run it, and which group its bar belongs to in the chart. */
interface Case {
  name: string;
  group: 'node' | 'calf' | 'baseline' | 'peer';
  cmd: () => string[];
  env?: Record<string, string>;
}
/** A measured case: wall times in ms. */
interface Row {
  name: string;
  group: Case['group'];
  times: number[];
  median: number;
  min: number;
  max: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const row = (c: Pick<Case, 'name' | 'group'>, times: number[]): Row => ({
  name: c.name, group: c.group, times, median: median(times), min: Math.min(...times), max: Math.max(...times),
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-bench-'));
const cache = path.join(tmp, 'cache');
const cleanups: (() => void)[] = [];
/** Remove what the peers left (containers, images, cgroups) and the temp dir; safe to call twice. */
function cleanUp(): void {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  unmountUnder(tmp);
  fs.rmSync(tmp, { recursive: true, force: true });
}
// Registered before prepareStore's own handlers, which remove the store and exit: these run first.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, cleanUp);
const root = await prepareStore();
const cleanEnv = { PATH, HOME: tmp, CALF_ROOT: root, CALF_CACHE: cache };
let counter = 0;

function time(c: Case): number {
  const t0 = performance.now();
  const r = spawnSync(c.cmd()[0]!, c.cmd().slice(1), { cwd: repo, env: { ...cleanEnv, ...c.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${c.name}: ${c.cmd().join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

/** Run `cmds` at once, and return the wall time until the last one ended. */
async function concurrently(cmds: string[][], env: Record<string, string> = {}): Promise<number> {
  const t0 = performance.now();
  await Promise.all(cmds.map((cmd) => new Promise<void>((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { cwd: repo, env: { ...cleanEnv, ...env }, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd.join(' ')} exited ${code}`))));
  })));
  return performance.now() - t0;
}

/** Peak RSS in kB of a command's process (GNU time's %M: the largest of it and the children it waited for). */
function peakRss(cmd: string[], env: Record<string, string> = {}): number {
  const r = spawnSync('/usr/bin/time', ['-f', '%M', ...cmd], { cwd: repo, env: { ...cleanEnv, ...env }, encoding: 'utf8' });
  return Number(r.stderr.trim().split('\n').at(-1));
}

/** How many times `x` is `y`, as text. */
const ratio = (x: number, y: number | undefined) => (y ? `${(x / y).toFixed(2)}×` : '');

const results: Record<string, unknown> = {};
try {
  // ── Set-up: the fast entry's bundle (built once, outside the timings), an OCI bundle for the peers.
  process.env.CALF_CACHE = cache;
  const { ensureBundle } = await import('../lib/runtime/bundle.js');
  await ensureBundle(entry);
  const image = resolveImage('busybox', root);

  // The init stage alone is level 03's: from level 05 on its config grows, and from level 08 on it
  // waits for the parent's handshake, so it no longer runs by itself.
  const initEntry = path.join(repo, levelDir(findLevel('03')!, 'solutions'), 'calf.ts');
  const initBundle = await ensureBundle(initEntry);
  const initRootfs = path.join(root, 'containers', 'bench-init', 'rootfs');
  await unpackImage(image, initRootfs);
  const initConfig = JSON.stringify({ ociVersion: '1.0.2', process: { args: ['/bin/true'], env: [`PATH=${PATH}`], cwd: '/' }, root: { path: initRootfs } }); // lib/core/spec.ts's shape

  const oci = path.join(tmp, 'oci');
  await unpackImage(image, path.join(oci, 'rootfs'));
  fs.writeFileSync(path.join(oci, 'config.json'), JSON.stringify(ociConfig()));

  const cases: Case[] = [
    { name: 'node -e 0', group: 'node', cmd: () => [node, '-e', '0'] },
    { name: 'calf init stage alone (level 03, node bundle init)', group: 'calf', cmd: () => [node, initBundle, 'init', initConfig] },
    { name: 'calf init stage alone (level 03), through tsx as before', group: 'baseline', cmd: () => [node, '--import', 'tsx', initEntry, 'init', initConfig] },
    { name: `calf run busybox true: fast entry (bin/calf.cjs, ${level.id})`, group: 'calf', cmd: () => [node, 'bin/calf.cjs', 'run', 'busybox', 'true'] },
    { name: `calf run busybox true: tsx ${levelDir(level, 'solutions')}/calf.ts`, group: 'calf', cmd: () => [tsxBin, entry, 'run', 'busybox', 'true'] },
    // Levels 03 and 04 side by side: 03 unpacks the image into every container, 04 mounts its shared layers.
    ...['03', '04'].map((id): Case => {
      const file = path.join(repo, levelDir(findLevel(id)!, 'solutions'), 'calf.ts');
      return { name: `calf run busybox true: tsx ${levelDir(findLevel(id)!, 'solutions')}/calf.ts`, group: 'calf', cmd: () => [tsxBin, file, 'run', 'busybox', 'true'] };
    }),
  ];
  if (opts.baseline) {
    const dir = path.join(tmp, 'baseline');
    fs.mkdirSync(dir);
    const archive = spawnSync('sh', ['-c', `git archive ${JSON.stringify(opts.baseline)} | tar -x -C ${JSON.stringify(dir)}`], { cwd: repo });
    if (archive.status !== 0) throw new Error(`git archive ${opts.baseline} failed: ${archive.stderr}`);
    fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
    const file = path.join(dir, levelDir(level, 'solutions'), 'calf.ts');
    cases.push({ name: `calf run busybox true: tsx, at ${opts.baseline}`, group: 'baseline', cmd: () => [tsxBin, file, 'run', 'busybox', 'true'] });
  }
  const peers = peerCases(oci);
  cases.push(...peers.cases);
  cleanups.push(peers.cleanup);

  // ── Start-up times: one warm-up each, then `runs` rounds, each case once per round.
  for (const c of cases) time(c);
  const times = new Map(cases.map((c) => [c, [] as number[]]));
  for (let i = 0; i < runs; i++) for (const c of cases) times.get(c)!.push(time(c));
  const rows = cases.map((c) => row(c, times.get(c)!));

  // ── 20 sequential, 20 concurrent starts: total wall time.
  const batch: { name: string; sequential: number; concurrent: number }[] = [];
  for (const c of cases.filter((x) => /fast entry|^runc|^crun|^podman/.test(x.name))) {
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) time(c);
    const sequential = performance.now() - t0;
    const concurrent = await concurrently(Array.from({ length: 20 }, () => c.cmd()), c.env);
    batch.push({ name: c.group === 'calf' ? 'calf fast entry' : c.name.split(' ')[0]!, sequential, concurrent });
  }

  // ── Memory: calf's peak RSS, as a median of 3.
  const rss = {
    fast: median([0, 1, 2].map(() => peakRss([node, 'bin/calf.cjs', 'run', 'busybox', 'true']))),
    tsx: median([0, 1, 2].map(() => peakRss([tsxBin, entry, 'run', 'busybox', 'true']))),
    node: median([0, 1, 2].map(() => peakRss([node, '-e', '0']))),
  };

  // ── Layer unpack throughput: calf's unpacker (in this process, no start-up) vs GNU tar.
  const unpack = await unpackThroughput(image.layers.at(-1)!.path);

  // ── Second container of one image: only a level with overlay mounts layers instead of unpacking them.
  const overlay = /['"]overlay['"]/.test(fs.readFileSync(entry, 'utf8'));

  // ── Engines: podman and containerd running busybox true on runc, crun and calf-runtime (level 17).
  const engines = opts['skip-engines'] ? [] : enginesTable();
  // ── Pull throughput from a local registry, next to skopeo (issue 17's goal: ≥ 0.8× its speed).
  const pulls = opts['skip-pull'] ? [] : pullLines();

  const peer = (name: string) => rows.find((r) => r.name.startsWith(name))?.median;
  const nodeMs = peer('node -e 0')!;
  const machine = `${os.cpus()[0]?.model.trim()} ×${os.cpus().length}, Linux ${os.release()}, Node ${process.version}`;
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const peerNames = ['runc', 'crun', 'podman'].filter((p) => peer(p) !== undefined);

  // ── Report.
  const header = ['', 'median', 'min', 'max', '× node -e 0', ...peerNames.map((p) => `× ${p}`)];
  const table = [header, ...rows.map((r) => [
    r.name, `${r.median.toFixed(0)} ms`, `${r.min.toFixed(0)}`, `${r.max.toFixed(0)}`, ratio(r.median, nodeMs),
    ...peerNames.map((p) => (r.group === 'calf' || r.group === 'baseline' ? ratio(r.median, peer(p)) : '')),
  ])];
  const lines = [
    `calf bench · ${date} UTC · ${machine} · load ${load}`,
    `${runs} runs each, interleaved, clean environment (PATH, CALF_ROOT, CALF_CACHE only), wall time`,
    '',
    ...markdownTable(table),
    '',
    `20 starts, total wall time: ${batch.map((b) => `${b.name} ${b.sequential.toFixed(0)} ms sequential, ${b.concurrent.toFixed(0)} ms concurrent`).join('; ')}`,
    `peak RSS: calf fast entry ${(rss.fast / 1024).toFixed(0)} MB, calf via tsx ${(rss.tsx / 1024).toFixed(0)} MB, node -e 0 ${(rss.node / 1024).toFixed(0)} MB`,
    `layer unpack (busybox, ${(unpack.bytes / 1e6).toFixed(1)} MB): calf ${unpack.calfMBps.toFixed(0)} MB/s, GNU tar ${unpack.tarMBps.toFixed(0)} MB/s (${ratio(unpack.calfMs, unpack.tarMs)} tar's time)`,
    `second container of one image: ${overlay ? 'see the rows above (overlay: nothing to unpack)' : `not measured: level ${level.id} unpacks every container (overlay comes later)`}`,
    ...(pulls.length ? ['', PULL_TITLE, '', ...pulls] : []),
    ...(engines.length ? ['', ENGINES_TITLE, '', ...engines] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  Object.assign(results, { date, machine, load, node: process.version, runs, level: level.id, env: Object.keys(cleanEnv), rows, batch, rss, unpack, overlay, pulls, engines });
  fs.mkdirSync(path.resolve(repo, opts.out), { recursive: true });
  fs.writeFileSync(path.resolve(repo, opts.out, 'bench.json'), `${JSON.stringify(results, null, 1)}\n`);
  fs.writeFileSync(path.resolve(repo, opts.out, 'bench.md'), `${lines.join('\n')}\n`);
  fs.writeFileSync(path.resolve(repo, opts.out, 'bench.svg'), chart(rows, 'Starting a container: calf run busybox true, and its peers', `${date} UTC · ${machine} · load ${load}`));
  process.stdout.write(`\nwrote ${opts.out}/bench.{json,md,svg}\n`);
  if (opts.readme) writeReadme(lines, path.join(opts.out, 'bench.svg'));
} finally {
  cleanUp();
  removeStore(root);
}

/**
 * bench/pull.ts against the last solution: its lines (a title, the registry's start, a table, a
 * note), or one saying why not (docker-registry or skopeo missing: `npm run setup` installs them).
 */
function pullLines(): string[] {
  if (!has('skopeo') || !has('docker-registry')) return ['not measured: skopeo or docker-registry is not installed (npm run setup installs them)'];
  const r = spawnSync(node, ['--import', 'tsx', 'bench/pull.ts', '--runs', String(Math.min(runs, 5)), '--entry', entry],
    { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) return [`not measured: bench/pull.ts exited ${r.status ?? r.signal}`];
  const out = r.stdout.trim().split('\n');
  return [...out.filter((l) => !l.startsWith('|')).slice(0, 2), '', ...out.filter((l) => l.startsWith('|')), '', ...out.filter((l) => !l.startsWith('|')).slice(2)];
}

/**
 * bench/engines.ts, with calf-runtime beside runc and crun: the last solution through the fast
 * entry (bin/calf-runtime.cjs), behind a launcher that names node and calf's store, since the
 * engines call their runtime without PATH. Its table's lines; a line saying why when it failed
 * (podman, conmon or containerd missing: `npm run setup` installs them).
 */
function enginesTable(): string[] {
  if (!has('podman') || !has('containerd')) return ['not measured: podman or containerd is not installed (npm run setup installs them)'];
  const launcher = path.join(tmp, 'calf-runtime');
  fs.writeFileSync(launcher, `#!/bin/sh\nexport CALF_ROOT='${root}' CALF_CACHE='${cache}' CALF_FAST_ENTRY='${entry}'\nexec '${node}' '${path.join(repo, 'bin/calf-runtime.cjs')}' "$@"\n`, { mode: 0o755 });
  const r = spawnSync(node, ['--import', 'tsx', 'bench/engines.ts', '--runs', String(runs), '--runtime', `calf-runtime=${launcher}`],
    { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) return [`not measured: bench/engines.ts exited ${r.status ?? r.signal}`];
  // its rows, `case  median  min  max`, as a table like the one above
  const rows = r.stdout.trim().split('\n').slice(1).map((l) => /^(.*?)\s{2,}(\d+)\s+(\d+)\s+(\d+)$/.exec(l)).filter((m) => m !== null)
    .map((m) => [m[1]!, `${m[2]} ms`, m[3]!, m[4]!]);
  return markdownTable([['', 'median', 'min', 'max'], ...rows]);
}

/** Put `lines` between README.md's markers `start` and `end`, as a paragraph of their own. */
function replaceBetween(start: string, end: string, lines: string[]): void {
  const file = path.join(repo, 'README.md');
  const text = fs.readFileSync(file, 'utf8');
  const [a, b] = [start, end].map((m) => text.indexOf(m));
  if (a! < 0 || b! < a!) throw new Error(`README.md has no ${start} … ${end} markers`);
  fs.writeFileSync(file, `${text.slice(0, a)}${start}\n${lines.join('\n')}\n${text.slice(b!)}`);
}

/** Put the results between README.md's bench markers: the chart, then the table and the notes. */
function writeReadme(lines: string[], svg: string): void {
  const file = path.join(repo, 'README.md');
  const text = fs.readFileSync(file, 'utf8');
  const [start, end] = ['<!-- bench:start -->', '<!-- bench:end -->'].map((m) => text.indexOf(m));
  if (start! < 0 || end! < start!) throw new Error('README.md has no <!-- bench:start --> … <!-- bench:end --> markers');
  const [title, how, , ...all] = lines;
  // the start-up table and its notes, then each section (pull, engines) as the report has it
  const at = all.findIndex((l) => l === PULL_TITLE || l === ENGINES_TITLE);
  const [rest, sections] = at === -1 ? [all, []] : [all.slice(0, at), all.slice(at)];
  const table = rest.filter((l) => l.startsWith('|'));
  const notes = rest.filter((l) => l && !l.startsWith('|'));
  const body = [
    '<!-- bench:start -->', `![${title}](${svg})`, '', `${title!.replace(/^calf bench · /, 'Measured ')}; ${how}.`, '',
    ...table, '', ...notes.map((n) => `- ${n}`), '',
    ...sections.map((l) => (l === PULL_TITLE || l === ENGINES_TITLE ? `${l}:` : l)), '',
  ].join('\n');
  fs.writeFileSync(file, text.slice(0, start) + body + text.slice(end!));
  process.stdout.write('wrote the results into README.md\n');
}

function markdownTable(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const fmt = (r: string[]) => `| ${r.map((cell, c) => (c ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join(' | ')} |`;
  return [fmt(rows[0]!), `|${widths.map((w, c) => (c ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`, ...rows.slice(1).map(fmt)];
}

/** An OCI runtime spec for busybox's `true`: runc's `runc spec` defaults, without a terminal. */
function ociConfig(): object {
  const spec = spawnSync(has('runc') ? 'runc' : 'crun', ['spec'], { cwd: tmp, env: { PATH } });
  if (spec.status !== 0) return {};
  const config = JSON.parse(fs.readFileSync(path.join(tmp, 'config.json'), 'utf8')) as { process: { args: string[]; terminal: boolean } };
  fs.rmSync(path.join(tmp, 'config.json'));
  config.process.args = ['/bin/true'];
  config.process.terminal = false;
  return config;
}

/** runc, crun and podman, those installed: their cases, and how to remove what they leave. */
function peerCases(oci: string): { cases: Case[]; cleanup: () => void } {
  const cases: Case[] = [];
  const undo: (() => void)[] = [];
  if (has('runc')) {
    const state = path.join(tmp, 'runc');
    cases.push({ name: 'runc run', group: 'peer', cmd: () => ['runc', '--root', state, 'run', '--bundle', oci, `calf-bench-${process.pid}-${counter++}`] });
  }
  if (has('crun')) {
    // crun refuses a hybrid cgroup host (v1 controllers plus /sys/fs/cgroup/unified): hide the
    // unified hierarchy under a tmpfs, in a mount namespace of crun's own (unshare's default
    // propagation is private, so the host's mounts stay untouched). Costs unshare + sh + mount.
    const state = path.join(tmp, 'crun');
    const hybrid = fs.existsSync('/sys/fs/cgroup/unified/cgroup.procs');
    cases.push({
      name: hybrid ? 'crun run (+ unshare -m to hide cgroup2)' : 'crun run', group: 'peer',
      cmd: () => {
        const crun = ['crun', '--root', state, 'run', '--bundle', oci, `calf-bench-${process.pid}-${counter++}`];
        return hybrid ? ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs none /sys/fs/cgroup/unified && exec "$@"', 'sh', ...crun] : crun;
      },
    });
  }
  if (has('podman')) {
    const dir = path.join(tmp, 'podman');
    const podman = ['podman', '--root', `${dir}/root`, '--runroot', `${dir}/run`, '--tmpdir', `${dir}/tmp`, '--storage-driver', 'overlay'];
    const before = new Set(libpodCgroups());
    const loaded = spawnSync(podman[0]!, [...podman.slice(1), 'load', '-i', path.join(repo, 'build/images/busybox')], { env: { PATH }, encoding: 'utf8' });
    const name = /Loaded image(?:\(s\))?: (\S+)/.exec(loaded.stdout)?.[1];
    if (loaded.status === 0 && name) {
      cases.push({
        name: 'podman run --network none', group: 'peer',
        cmd: () => [...podman, 'run', '--rm', '--network', 'none', '--runtime', 'runc', '--cgroup-manager=cgroupfs',
          '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096', name, 'true'],
      });
    }
    undo.push(() => {
      spawnSync(podman[0]!, [...podman.slice(1), 'rm', '-af'], { env: { PATH }, stdio: 'ignore' });
      spawnSync(podman[0]!, [...podman.slice(1), 'rmi', '-af'], { env: { PATH }, stdio: 'ignore' });
      // cgroupfs mode leaves libpod_parent/… in every hierarchy: remove those this run made, deepest first.
      for (const cg of libpodCgroups().filter((d) => !before.has(d)).sort((a, b) => b.length - a.length)) {
        try {
          fs.rmdirSync(cg);
        } catch {
          process.stderr.write(`bench: could not remove cgroup ${cg}\n`);
        }
      }
    });
  }
  return { cases, cleanup: () => { for (const u of undo) u(); } };
}

/** Every cgroup directory under a `libpod_parent`, in every hierarchy. */
function libpodCgroups(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    found.push(dir);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
  };
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    const top = path.join('/sys/fs/cgroup', h, 'libpod_parent');
    if (fs.existsSync(top)) walk(top);
  }
  return found;
}

/** Unpack one layer 5 times with calf's unpacker and with GNU tar, each into a fresh directory. */
async function unpackThroughput(blob: string) {
  const bytes = Number(spawnSync('sh', ['-c', `tar -xOf ${JSON.stringify(blob)} | wc -c`], { encoding: 'utf8' }).stdout.trim());
  const calf: number[] = [];
  const tar: number[] = [];
  for (let i = 0; i < 5; i++) {
    const a = path.join(tmp, `unpack-calf-${i}`);
    let t0 = performance.now();
    await unpackLayer(blob, a);
    calf.push(performance.now() - t0);
    const b = path.join(tmp, `unpack-tar-${i}`);
    fs.mkdirSync(b);
    t0 = performance.now();
    spawnSync('tar', ['-xf', blob, '-C', b], { env: { PATH } });
    tar.push(performance.now() - t0);
    fs.rmSync(a, { recursive: true });
    fs.rmSync(b, { recursive: true });
  }
  const calfMs = median(calf);
  const tarMs = median(tar);
  return { bytes, calfMs, tarMs, calfMBps: bytes / 1e3 / calfMs, tarMBps: bytes / 1e3 / tarMs };
}
