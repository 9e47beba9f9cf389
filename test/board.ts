/**
 * The test board: `npm run level N` runs levels 00…N's checks against levels/N-* (your work),
 * `-- --solution` against solutions/N-*, and `npm run level` alone shows every level against its
 * own directory. Exit code 0 only when every level shown passes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LEVELS, levelDir, findLevel, type Level } from '../ladder/ladder.js';
import { runChecks, passed, pointer, type LevelOutcome } from './support/checks.js';
import { prepareStore, removeStore } from './support/store.js';
import { snapshot, newSince } from './support/leftovers.js';
import { cgroupVersion, cannotRun, unexpectedCgroup } from './support/host.js';

const tty = process.stdout.isTTY === true;
const paint = (code: string) => (text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
const green = paint('32');
const red = paint('31');
const yellow = paint('33');
const dim = paint('2');

function usage(message: string): never {
  console.error(`${message}\nusage: npm run level [N] [-- --solution]   (N is 0…${LEVELS.length - 1})`);
  process.exit(2);
}

const args = process.argv.slice(2);
const solution = args.includes('--solution');
const refs = args.filter((a) => a !== '--solution');
if (refs.some((a) => a.startsWith('-')) || refs.length > 1) usage(`unknown arguments: ${args.join(' ')}`);
const chosen = refs[0] === undefined ? undefined : findLevel(refs[0]) ?? usage(`no level ${refs[0]}`);
const kind = solution ? 'solutions' : 'levels';

const why = cannotRun() ?? unexpectedCgroup();
if (why) {
  console.error(why);
  process.exit(1);
}

/** One jest run: levels 0…N against one directory, or (whole board) each level against its own. */
const runs: { target: string; levels: Level[] }[] = chosen
  ? [{ target: levelDir(chosen, kind), levels: LEVELS.slice(0, LEVELS.indexOf(chosen) + 1) }]
  : LEVELS.map((l) => ({ target: levelDir(l, kind), levels: [l] }));

const log = path.join(os.tmpdir(), 'calf-board.log');
fs.writeFileSync(log, '');
console.log(`calf test board · ${chosen ? runs[0]!.target : `every level against its own ${kind}/ directory`}`);
console.log(dim(`Linux ${os.release()} · ${process.arch} · Node ${process.version} · cgroup ${cgroupVersion()} · jest log: ${log}`));

const root = await prepareStore();
const before = snapshot([root]);
const outcomes: { target: string; outcome: LevelOutcome }[] = [];
try {
  for (const r of runs) {
    process.stderr.write(dim(`running ${r.levels.length > 1 ? `levels 00–${r.levels.at(-1)!.id}` : `level ${r.levels[0]!.id}`} against ${r.target}…\n`));
    for (const outcome of await runChecks({ ...r, root, log })) outcomes.push({ target: r.target, outcome });
  }
} finally {
  removeStore(root);
}
const leftovers = newSince(before, snapshot([root]));

let allPassed = leftovers.length === 0;
for (const { outcome } of outcomes) {
  const { level, checks } = outcome;
  const ok = passed(outcome);
  allPassed &&= ok;
  const counted = checks.filter((c) => c.status !== 'skipped');
  const score = `${counted.filter((c) => c.status === 'passed').length}/${counted.length}`;
  console.log(`${ok ? green('✓') : red('✗')} ${level.id} ${level.name.padEnd(18)} ${score.padStart(5)}  ${dim(level.goal)}`);
  if (outcome.error) {
    console.log(`    ${red('✗')} the tests could not run:\n${indent(outcome.error, 8)}`);
    console.log(`      → ${levelDir(level, 'levels')}/README.md`);
  }
  for (const check of checks) {
    if (check.status === 'skipped') continue;
    const warning = check.title.startsWith('⚠');
    const mark = check.status === 'failed' ? red('✗') : warning ? yellow('⚠') : green('✓');
    console.log(`    ${mark} ${warning ? check.title.slice(1).trim() : check.title}`);
    if (check.status === 'failed') {
      console.log(indent(check.reason ?? '', 8));
      console.log(`        → ${pointer(level, check.section)}`);
    }
  }
}
if (leftovers.length) {
  console.log(`${red('✗')} left behind after the run: calf must clean up after itself (\`tsx ${runs[0]!.target}/calf.ts cleanup\` removes container dirs and mounts)`);
  for (const thing of leftovers) console.log(`    ${thing}`);
}
const levelsPassed = outcomes.filter((o) => passed(o.outcome)).length;
console.log(allPassed ? green(`all ${outcomes.length} levels pass`) : `${levelsPassed} of ${outcomes.length} levels pass`);
// The closing line CI logs are read by: checks, plus one failure for a run that could not start or left things behind.
const checks = outcomes.flatMap((o) => o.outcome.checks).filter((c) => c.status !== 'skipped');
const broken = outcomes.filter((o) => o.outcome.error).length + (leftovers.length ? 1 : 0);
console.log(`${checks.filter((c) => c.status === 'passed').length} passed, ${checks.filter((c) => c.status === 'failed').length + broken} failed`);
process.exit(allPassed ? 0 : 1);

function indent(text: string, n: number): string {
  return text.split('\n').map((l) => ' '.repeat(n) + l).join('\n');
}

