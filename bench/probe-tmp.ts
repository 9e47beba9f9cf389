import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
const B = '/tmp/calf-fast-cache/3425b1ba79c256b6/8662af356adf799a.cjs';
const env = { PATH: '/usr/bin:/bin' };
const cases: Record<string, string[]> = {
  node: ['node', '-e', '0'],
  koffi: ['node', '-e', "require('/work/wt-fast/node_modules/koffi')"],
  koffiLoad: ['node', '-e', "require('/work/wt-fast/node_modules/koffi').load('libc.so.6')"],
  initBadJson: ['node', B, 'init', '{}'],
};
const t: Record<string, number[]> = {};
for (let i = 0; i < 15; i++) for (const [k, c] of Object.entries(cases)) {
  const t0 = performance.now(); spawnSync(c[0]!, c.slice(1), { env, stdio: ['ignore', 'ignore', 'ignore'] }); (t[k] ??= []).push(performance.now() - t0);
}
for (const [k, v] of Object.entries(t)) { v.sort((a, b) => a - b); console.log(k.padEnd(12), 'median', v[7]!.toFixed(0), 'min', v[0]!.toFixed(0)); }
