/**
 * Pull throughput: `calf pull` from a local registry (Debian's docker-registry, token auth, in a
 * network namespace of its own) next to `skopeo copy` of the same image into an OCI directory,
 * and a second pull of the same image (nothing to fetch). The image is busybox plus one
 * uncompressed layer of random bytes (`--megabytes`, 100 by default), built in a temp directory
 * and never kept. Runs interleave (calf, skopeo, calf again, skopeo again), each from an empty
 * store or directory, with a clean environment.
 *
 *   npx tsx bench/pull.ts [--runs 5] [--megabytes 100] [--entry solutions/NN-name/calf.ts]   (default: the last solution)
 *
 * The goal (issue 17): calf at 0.8× skopeo's speed or better.
 * @module
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestRegistry, REGISTRY, type TestRegistry } from '../test/support/registry.js';
import { bigLayout } from '../test/support/registry-images.js';
import { repo } from '../test/support/paths.js';
import { LEVELS, levelDir } from '../ladder/ladder.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    megabytes: { type: 'string', default: '100' },
    entry: { type: 'string', default: path.join(levelDir(LEVELS.at(-1)!, 'solutions'), 'calf.ts') },
  },
});
const runs = Number(values.runs);
const megabytes = Number(values.megabytes);
const entry = path.resolve(repo, values.entry!);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-bench-pull-'));
const holder = spawn('unshare', ['--net', 'sleep', '3600'], { stdio: 'ignore' });
let reg: TestRegistry | undefined;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

try {
  const own = fs.readlinkSync('/proc/self/ns/net');
  while (fs.readlinkSync(`/proc/${holder.pid}/ns/net`) === own) await new Promise((r) => setTimeout(r, 10));
  const nsenter = [`--net=/proc/${holder.pid}/ns/net`, '--'];
  execFileSync('nsenter', [...nsenter, 'ip', 'link', 'set', 'lo', 'up']);
  reg = await startTestRegistry({ nsenter });

  const image = await bigLayout(path.join(repo, 'build/images/busybox'), path.join(tmp, 'layout'), megabytes);
  const pushMs = await reg.push(image.dir, 'bench/big:latest', { preserveDigests: true }); // as it is: no gzip on the way
  const ref = `${REGISTRY}/bench/big:latest`;
  const mb = image.bytes / 1e6;

  const cache = path.join(tmp, 'cache');
  const clean = (root: string) => ({ PATH: process.env.PATH!, HOME: tmp, CALF_ROOT: root, CALF_CACHE: cache, CALF_FAST_ENTRY: entry });
  const skopeoEnv = { PATH: process.env.PATH!, HOME: tmp, XDG_DATA_HOME: path.join(tmp, 'xdg'), XDG_RUNTIME_DIR: path.join(tmp, 'xdg'), _CONTAINERS_ROOTLESS_UID: '1000', TMPDIR: tmp };
  // Wall time, and CPU time (user + system, from time(1)): on a busy machine the wall time
  // stretches with the load, the CPU time much less, so both are reported.
  const cpu: Record<string, number[]> = {};
  const timed = (cmd: string[], env: Record<string, string>, name?: string): number => {
    const usage = path.join(tmp, 'usage');
    const t = performance.now();
    const r = spawnSync('nsenter', [...nsenter, '/usr/bin/time', '-f', '%U %S', '-o', usage, ...cmd], { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr}`);
    const [user, sys] = fs.readFileSync(usage, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
    if (name) (cpu[name] ??= []).push((user! + sys!) * 1000);
    return ms;
  };
  const calfPull = (root: string, name: string) => timed([process.execPath, path.join(repo, 'bin/calf.cjs'), 'pull', '-q', ref], clean(root), name);
  const skopeo = (dir: string, name: string) => timed(['skopeo', '--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:latest`], skopeoEnv, name);
  const calfStart = (name?: string) => timed([process.execPath, path.join(repo, 'bin/calf.cjs'), 'images'], clean(path.join(tmp, 'empty')), name);

  calfStart(); // builds the bundle once, outside the measurements
  const rows = { calf: [] as number[], skopeo: [] as number[], calfAgain: [] as number[], skopeoAgain: [] as number[], start: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const root = path.join(tmp, `root-${i}`);
    const dir = path.join(tmp, `oci-${i}`);
    rows.calf.push(calfPull(root, 'calf'));
    rows.skopeo.push(skopeo(dir, 'skopeo'));
    rows.calfAgain.push(calfPull(root, 'calfAgain'));
    rows.skopeoAgain.push(skopeo(dir, 'skopeoAgain'));
    rows.start.push(calfStart('start'));
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const m = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)])) as Record<keyof typeof rows, number>;
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`pull bench · ${runs} runs each, interleaved · image ${mb.toFixed(1)} MB (busybox + ${megabytes} MB uncompressed random) · Node ${process.version} · load ${load}`);
  console.log(`registry start (two docker-registry processes, to /v2/ answering): ${reg.startMs.toFixed(0)} ms; skopeo push of the image: ${pushMs.toFixed(0)} ms`);
  const c = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, median(v)])) as Record<keyof typeof rows, number>;
  console.log('| | wall, median | MB/s | × skopeo\'s speed | CPU (user+sys), median |');
  console.log('|---|---:|---:|---:|---:|');
  const row = (name: string, key: keyof typeof rows, ref?: keyof typeof rows) =>
    console.log(`| ${name} | ${m[key].toFixed(0)} ms | ${(mb / (m[key] / 1000)).toFixed(0)} | ${ref ? `${(m[ref] / m[key]).toFixed(2)}×` : ''} | ${c[key].toFixed(0)} ms |`);
  row('calf pull (fast entry), empty store', 'calf', 'skopeo');
  row('skopeo copy docker:// → oci:, empty dir', 'skopeo');
  row('calf pull again (nothing to fetch)', 'calfAgain', 'skopeoAgain');
  row('skopeo copy again (blobs there)', 'skopeoAgain');
  console.log(`| calf images (start-up alone) | ${m.start.toFixed(0)} ms | | | ${c.start.toFixed(0)} ms |`);
  console.log(`calf pull less its start-up: ${(mb / ((m.calf - m.start) / 1000)).toFixed(0)} MB/s wall, ${(c.calf - c.start).toFixed(0)} ms CPU for ${mb.toFixed(0)} MB (skopeo: ${c.skopeo.toFixed(0)} ms CPU in all)`);
} finally {
  await reg?.stop();
  holder.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
}
