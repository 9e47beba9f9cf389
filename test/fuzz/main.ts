/**
 * `npm run fuzz`: feed calf hostile layers and images, seeded, and report what it found.
 *
 *   npm run fuzz -- [--seed S] [--cases N] [--from N] [--only N,M] [--target layer,image,store]
 *                   [--scale short|full] [--timeout SECONDS] [--cli-every N] [--json]
 *
 * Every case ends in success or in one clean error line (the line `calf` would print with exit
 * 125), with the canary tree around the target unchanged, the store whole and nothing left in
 * the temp directory; anything else is a finding, printed with the command that replays it.
 * Exits 1 when there is a finding. test/lib/fuzz.test.ts runs a short one inside `npm test`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { fuzz, type FuzzReport } from './run.js';
import type { CaseResult, Target } from './cases.js';
import type { Scale } from './layer-cases.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.getuid?.() !== 0) {
  console.error('npm run fuzz: run it as root (calf unpacks device nodes and sets owners)');
  process.exit(2);
}
const seed = option('seed') ?? randomBytes(4).toString('hex');
const ALL: Target[] = ['layer', 'image', 'store'];
const targets = (option('target')?.split(',') ?? ALL) as Target[];
if (targets.some((t) => !ALL.includes(t))) {
  console.error(`npm run fuzz: --target takes ${ALL.join(', ')} (or several, comma-separated)`);
  process.exit(2);
}
const only = option('only')?.split(',').map(Number);
const json = process.argv.includes('--json');
const total = only?.length ?? Number(option('cases') ?? 1000);
let seen = 0;

if (!json) console.log(`calf fuzz · seed ${seed} · ${total} cases · ${targets.join(' + ')}`);
const report = await fuzz({
  seed, cases: Number(option('cases') ?? 1000), from: Number(option('from') ?? 0), ...(only ? { only } : {}), targets,
  scale: (option('scale') ?? 'full') as Scale, timeout: Number(option('timeout') ?? 60) * 1000,
  cliEvery: Number(option('cli-every') ?? 10), repo,
  onResult: (r) => {
    seen++;
    if (json) return;
    if (r.outcome === 'finding') console.log(`✗ case ${r.index} (${r.target}): ${r.findings.join(' · ')}\n    input: ${r.input}${r.line ? `\n    line: ${JSON.stringify(r.line.slice(0, 300))}` : ''}\n    replay: npm run fuzz -- --seed ${seed} --only ${r.index}`);
    else if (seen % 100 === 0) console.log(`  … ${seen}/${total}`);
  },
});

if (json) console.log(JSON.stringify(summary(report), null, 2));
else print(report);
process.exit(report.findings.length || report.errors.length ? 1 : 0);

function summary(r: FuzzReport) {
  const count = (t: Target, o: CaseResult['outcome']) => r.results.filter((x) => x.target === t && x.outcome === o).length;
  return {
    seed: r.seed, cases: r.results.length, seconds: Math.round(r.ms / 1000),
    byTarget: Object.fromEntries(targets.map((t) => [t, { ok: count(t, 'ok'), refused: count(t, 'refused'), findings: count(t, 'finding') }])),
    findings: r.findings.map((f) => ({ case: f.index, target: f.target, findings: f.findings, input: f.input })),
    errors: r.errors,
    slowest: [...r.results].sort((a, b) => b.ms - a.ms).slice(0, 5).map((x) => ({ case: x.index, ms: x.ms, input: x.input })),
  };
}

function print(r: FuzzReport): void {
  const s = summary(r);
  console.log(`\n${s.cases} cases in ${s.seconds} s, seed ${s.seed}`);
  console.log('target   ok  refused  findings');
  for (const [t, c] of Object.entries(s.byTarget)) console.log(`${t.padEnd(6)} ${String(c.ok).padStart(4)} ${String(c.refused).padStart(8)} ${String(c.findings).padStart(9)}`);
  // What the refusals say, most common first, with numbers and digests folded, so a reader can judge the lines.
  const lines = new Map<string, number>();
  for (const x of r.results) {
    if (!x.line) continue;
    const shape = x.line.replace(/sha256:[0-9a-f]{6,}…?/g, 'sha256:…').replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N').slice(0, 140);
    lines.set(shape, (lines.get(shape) ?? 0) + 1);
  }
  console.log('\nrefusals, by shape:');
  for (const [shape, n] of [...lines].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${String(n).padStart(5)}  ${shape}`);
  console.log('\nslowest:');
  for (const x of s.slowest) console.log(`${String(x.ms).padStart(7)} ms  case ${x.case}: ${x.input.slice(0, 120)}`);
  for (const e of r.errors) console.log(`✗ ${e}`);
  console.log(r.findings.length || r.errors.length ? `\n✗ ${r.findings.length} findings` : '\n✓ nothing found');
}
