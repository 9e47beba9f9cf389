/**
 * `npm run bench`: how long a container takes to start, next to what Node itself costs.
 * Medians of wall time over N runs (default 10: `npm run bench -- 20`), sequential, as root.
 * Numbers, not assertions: the tests never time anything.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { LEVELS, levelDir } from '../ladder/ladder.js';
import { prepareStore, removeStore } from '../test/support/store.js';
import { repo } from '../test/support/paths.js';

const runs = Number(process.argv[2] ?? 10);
const root = await prepareStore();
const empty = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'calf-bench-')), 'empty.ts');
fs.writeFileSync(empty, '');

function median(cmd: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: repo, env: { ...process.env, CALF_ROOT: root }, stdio: 'ignore' });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status}`);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const node = process.execPath;
const rows: [string, number][] = [];
try {
  rows.push(['node -e 0', median([node, '-e', '0'])]);
  rows.push(['node --import tsx (empty file)', median([node, '--import', 'tsx', empty])]);
  for (const level of LEVELS) {
    const calf = path.join(levelDir(level, 'solutions'), 'calf.ts');
    rows.push([`calf run busybox true  (solution ${level.id})`, median([node, '--import', 'tsx', calf, 'run', 'busybox', 'true'])]);
  }
} finally {
  removeStore(root);
  fs.rmSync(path.dirname(empty), { recursive: true, force: true });
}
console.log(`median wall time of ${runs} runs · ${os.cpus().length} CPUs · Node ${process.version} · Linux ${os.release()}`);
for (const [what, ms] of rows) console.log(`${ms.toFixed(0).padStart(6)} ms  ${what}`);
