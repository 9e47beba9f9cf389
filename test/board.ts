/**
 * The test board: `npm run level N` runs levels 00…N's checks against levels/N-* (your work),
 * `-- --solution` against solutions/N-*, and `npm run level` alone shows every level against its
 * own directory. `npm run level path/to/NN-name` runs levels 00…NN against any directory
 * holding a calf.ts (a copy you are experimenting with). Exit code 0 only when every level shown
 * passes.
 *
 * Whatever the code under test does (crash, hang, leak mounts), the board prints its results,
 * names what was left behind, and ends with the line `N passed, N failed` that CI reads.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { execa } from 'execa';
import { LEVELS, levelDir, findLevel, type Level } from '../ladder/ladder.js';
import { runChecks, passed, pointer, sharedCause, nodeCrashes, type LevelOutcome, type Check } from './support/checks.js';
import { prepareStore, removeStore } from './support/store.js';
import { snapshot, newSince, removalCommand, settled } from './support/leftovers.js';
import { descendants } from './support/background.js';
import { cgroupVersion, cannotRun, unexpectedCgroup, runLog } from './support/host.js';
import { repo } from './support/paths.js';

// `npm run level 6 | head -1`: once the reader has gone, a write fails with EPIPE. Stop as Ctrl-C
// does, instead of crashing and leaving the test store behind: no more levels are started, and
// SIGINT goes to the board's own descendants (jest, and the calfs it runs, which pass it on and
// clean up); the run then ends the normal way, removing its store. (Not SIGINT to the process
// group: without job control, a script's pipeline shares the script's group.)
let piped = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  if (piped) return;
  piped = true;
  for (const pid of descendants(process.pid)) {
    try { process.kill(pid, 'SIGINT'); } catch { /* gone */ }
  }
});

const tty = process.stdout.isTTY === true;
const paint = (code: string) => (text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
const green = paint('32');
const red = paint('31');
const yellow = paint('33');
const dim = paint('2');

function usage(message: string): never {
  console.error(`${message}\nusage: npm run level [N] [-- --solution] [--tsx] [--only 0,4,…] [--checks REGEX]   (N is one of ${LEVELS.map((l) => Number(l.id)).join(' ')}; or a directory NN-name/ with a calf.ts)`);
  process.exit(2);
}

/** A board that cannot start says so in one line, what to do included, and no stack trace. */
function cannotStart(message: string): never {
  console.error(`calf test board: ${message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// `npm run level 3 --solution` (without `--`) reaches us as npm_config_solution=true, not as an argument.
const argv = process.argv.slice(2);
// `--only 0,4,9`: of levels 00…N, check only these against the target (the VM board under
// emulation runs the levels whose behaviour depends on the kernel's cgroup version, and a smoke test).
const onlyAt = argv.indexOf('--only');
const only = onlyAt === -1 ? undefined : (argv[onlyAt + 1] ?? '').split(',').filter(Boolean).map((ref) => findLevel(ref) ?? usage(`--only: no level ${ref}`));
// `--checks REGEX`: of those levels' checks, only the ones whose full name ("16 exec The cgroup
// is in …": level, section, check) it matches; the others do not run. The
// VM board in CI uses it for the levels of which only a part depends on the guest's kernel.
const namesAt = argv.indexOf('--checks');
const names = namesAt === -1 ? undefined : argv[namesAt + 1] ?? usage('--checks needs a regular expression');
if (names !== undefined) {
  try {
    new RegExp(names);
  } catch (err) {
    usage(`--checks: ${(err as Error).message}`);
  }
}
const taken = new Set([onlyAt, namesAt].filter((at) => at !== -1).flatMap((at) => [at, at + 1]));
const args = argv.filter((_, i) => !taken.has(i));
const solution = args.includes('--solution') || process.env.npm_config_solution === 'true';
// How the checks start calf: through the fast entry (bin/calf.cjs runs the level file bundled by
// esbuild, plain node: ~2.5× faster a start, so a level's verdict comes in seconds), or with
// `--tsx` as `tsx levels/NN-*/calf.ts` does (TypeScript compiled at every start). Same code,
// same checks; CI runs both ways.
const viaTsx = args.includes('--tsx') || process.env.npm_config_tsx === 'true' || process.env.CALF_ENTRY === 'tsx';
const entryEnv: Record<string, string> = viaTsx ? {} : { CALF_ENTRY: 'fast' };
const bundled = new Set<string>(); // the targets bundleOnce() has bundled
// `npm run level -1` reaches us as npm_config_1=true (npm takes -1 for one of its own flags).
const swallowed = Object.keys(process.env).map((k) => /^npm_config_(\d+)$/.exec(k)?.[1]).filter((n) => n !== undefined);
const refs = [...args.filter((a) => a !== '--solution' && a !== '--tsx'), ...swallowed.map((n) => `-${n}`)];
if (refs.some((a) => a.startsWith('-') && !/^-\d+$/.test(a)) || refs.length > 1) usage(`unknown arguments: ${args.join(' ')}`);
const kind = solution ? 'solutions' : 'levels';

/** The level a reference names, and the directory to check: `3`, `03`, `pivot-root`, or a path to a `NN-name` directory. */
function choose(ref: string): { level: Level; target: string } {
  if (/^-\d+$/.test(ref)) usage(`no level ${ref}`);
  const level = findLevel(ref);
  if (level) return { level, target: levelDir(level, kind) };
  const dir = path.resolve(ref);
  const own = /^(\d\d)-[\w-]+$/.exec(path.basename(dir));
  const ofDir = own ? LEVELS.find((l) => l.id === own[1]) : undefined;
  if (ofDir && fs.existsSync(path.join(dir, 'calf.ts'))) return { level: ofDir, target: path.relative(repo, dir) || '.' };
  return usage(`no level ${ref}`);
}
const chosen = refs[0] === undefined ? undefined : choose(refs[0]);

const why = cannotRun() ?? unexpectedCgroup();
if (why) cannotStart(why);

/**
 * The jest runs, in order. Levels 0…N against one directory: level N's own checks first, alone,
 * and its verdict printed as soon as they end (what the attendee is working on: seconds, not the
 * whole board), then levels 0…N-1 in one run (a level never breaks what came before; the exit
 * code covers both). The whole board: each level against its own directory.
 */
const runs: { target: string; levels: Level[] }[] = chosen
  ? ((levels) => [levels.slice(-1), levels.slice(0, -1)].filter((l) => l.length).map((l) => ({ target: chosen.target, levels: l })))(
      LEVELS.slice(0, LEVELS.indexOf(chosen.level) + 1).filter((l) => !only || only.includes(l)))
  : LEVELS.map((l) => ({ target: levelDir(l, kind), levels: [l] }));

// One log per board (the last ten kept); calf-board.log links to the latest (the VM runner copies it from there).
const log = runLog('calf-board');
try {
  const latest = path.join(os.tmpdir(), 'calf-board.log');
  fs.symlinkSync(path.basename(log), `${latest}.${process.pid}`);
  fs.renameSync(`${latest}.${process.pid}`, latest);
} catch {
  // a shared /tmp where the link isn't ours to replace: the header names the log anyway
}
console.log(`calf test board · ${chosen ? runs[0]!.target : `every level against its own ${kind}/ directory`}`);
console.log(dim(`Linux ${os.release()} · ${process.arch} · Node ${process.version} · cgroup ${cgroupVersion()} · calf ${viaTsx ? 'through tsx' : 'bundled (--tsx: through tsx)'} · jest log: ${log}`));

let root: string;
try {
  root = await prepareStore();
} catch (err) {
  cannotStart((err as Error).message);
}
const before = snapshot([root]);
const outcomes: { target: string; run: number; outcome: LevelOutcome }[] = [];
let notRemoved: string[] = [];
let after: string[] = [];
let cleaned: string[] = [];
let still: string[] = [];
try {
  for (const [i, r] of runs.entries()) {
    if (piped) break; // nobody reads the board any more
    const which = r.levels.length === 1 ? `level ${r.levels[0]!.id}` : only ? `levels ${r.levels.map((l) => l.id).join(', ')}` : `levels 00–${r.levels.at(-1)!.id}`;
    process.stderr.write(dim(`running ${which} against ${r.target}…\n`));
    if (!viaTsx) bundleOnce(r.target);
    // The level being worked on, alone: its checks marked `it.concurrent` two at a time (two
    // cores; its verdict sooner). One at a time under emulation (CALF_TEST_SLOW: the test VM).
    const atOnce: Record<string, string> = chosen && i === 0 && !process.env.CALF_TEST_SLOW ? { CALF_CHECKS_AT_ONCE: '2' } : {};
    const mine = await runChecks({ ...r, root, log, env: { ...entryEnv, ...atOnce }, ...(names ? { checks: names } : {}) });
    for (const outcome of mine) outcomes.push({ target: r.target, run: i, outcome });
    report(mine, chosen?.level ?? r.levels.at(-1)!);
  }
} finally {
  // what calf left is seen before the store (and everything mounted in it) is removed
  after = await settled(newSince(before, snapshot([root])), [root]);
  // then the target's own `calf cleanup` gets its chance at it, with the store's records (which
  // name its cgroups and endpoints), before the store goes
  if (after.length) cleaned = await cleanupWith(runs.at(-1)!.target, root);
  notRemoved = removeStore(root);
  still = newSince(before, snapshot([root]));
}
const leftovers = [...after, ...notRemoved.map((m) => `mount ${m} (could not be detached)`).filter((m) => !after.some((a) => m.startsWith(a)))];

let allPassed = leftovers.length === 0 && outcomes.every((o) => passed(o.outcome));
if (leftovers.length) {
  const target = chosen ? runs[0]!.target : levelDir(LEVELS.at(-1)!, kind);
  console.log(`${red('✗')} left behind after the run: calf must clean up after itself`);
  // by kind (`mount …`, `container dir …`, `process …`), a few of each: a leaky level leaves hundreds
  const kinds = new Map<string, string[]>();
  for (const thing of leftovers) {
    const k = /^(container dir|ipc \w+( \w+)*? (?=\d)|\w+)/.exec(thing)![1]!.trim();
    kinds.set(k, [...(kinds.get(k) ?? []), thing]);
  }
  const isStill = (thing: string) => still.includes(thing) || thing.endsWith('(could not be detached)');
  for (const [k, things] of kinds) {
    for (const thing of things.slice(0, 5)) console.log(`    ${thing}${isStill(thing) ? '' : dim(' (gone now)')}`);
    if (things.length > 5) console.log(`    … ${things.length} ${k}s in all`);
  }
  if (cleaned.length) console.log(dim(`    \`tsx ${target}/calf.ts cleanup\` on the test's store, before the board removed it: ${cleaned.length} line${cleaned.length > 1 ? 's' : ''} (${cleaned.slice(0, 3).join('; ')}${cleaned.length > 3 ? '; …' : ''})`));
  const byHand = leftovers.filter(isStill);
  if (byHand.length) {
    console.log(`    still there now, with the test's store gone (its records with it); remove ${byHand.length > 1 ? 'them' : 'it'} by hand:`);
    for (const thing of byHand.slice(0, 10)) console.log(`      ${removalCommand(thing.replace(/ \(could not be detached\)$/, '')) ?? thing}`);
    if (byHand.length > 10) console.log(`      … ${byHand.length} in all`);
  } else {
    console.log(dim('    nothing of it is left now: the board removed its test store, and calf cleanup the rest'));
  }
}
const levelsPassed = outcomes.filter((o) => passed(o.outcome)).length;
console.log(allPassed ? green(`all ${outcomes.length} levels pass`) : `${levelsPassed} of ${outcomes.length} levels pass`);
// The closing line CI logs are read by: checks, plus one failure for a run that could not start or left things behind.
const checks = outcomes.flatMap((o) => o.outcome.checks).filter((c) => c.status !== 'skipped');
const broken = outcomes.filter((o) => o.outcome.error).length + (leftovers.length ? 1 : 0);
console.log(`${checks.filter((c) => c.status === 'passed').length} passed, ${checks.filter((c) => c.status === 'failed').length + broken} failed`);
process.exit(allPassed ? 0 : 1);

/**
 * Print one jest run's levels and checks, as soon as it ends. A node process killed by SIGSEGV
 * fails the checks it was in, yet says nothing about calf (the test VM's emulated CPU has done
 * it): said first, so that it is not read as calf's behaviour. When most failures share one calf
 * error, it is the cause: said once, on top, with the Pitfalls of `current`, the level being
 * worked on (not those of the earlier levels whose checks tripped).
 */
function report(mine: readonly LevelOutcome[], current: Level): void {
  const crashes = nodeCrashes(mine);
  if (crashes.length) {
    console.log(`${red('✗')} Node itself crashed in ${crashes.length} run${crashes.length === 1 ? '' : 's'}: not calf's behaviour, run the board again (a crash that repeats in the same check is calf's: a native call)`);
    for (const crash of crashes.slice(0, 5)) console.log(`    ${crash}`);
    if (crashes.length > 5) console.log(`    … ${crashes.length} in all`);
  }
  const shared = sharedCause(mine);
  if (shared) {
    const n = mine.flatMap((o) => o.checks).filter((c) => c.status === 'failed').length;
    console.log(`${red('✗')} calf fails in ${shared.checks.length} of the ${n} failing checks, with:`);
    console.log(`    ${shared.line}`);
    console.log(`    → ${levelDir(current, 'levels')}/README.md#pitfalls`);
  }
  for (const outcome of mine) {
    const { level, checks } = outcome;
    const counted = checks.filter((c) => c.status !== 'skipped');
    const score = `${counted.filter((c) => c.status === 'passed').length}/${counted.length}`;
    const took = outcome.seconds === undefined ? '' : ` (${Math.round(outcome.seconds)} s)`;
    console.log(`${passed(outcome) ? green('✓') : red('✗')} ${level.id} ${level.name.padEnd(18)} ${score.padStart(5)}  ${dim(level.goal + took)}`);
    if (outcome.error) {
      console.log(`    ${red('✗')} the tests could not run:\n${indent(outcome.error, 8)}`);
      console.log(`      → ${levelDir(level, 'levels')}/README.md`);
    }
    for (const check of checks) printCheck(level, check, shared?.checks.includes(check) ?? false);
  }
}

/**
 * Bundle `target`'s calf.ts before its checks start, once (else the first checks, side by side,
 * each bundle it). A level file esbuild cannot compile is said here, once: every check would
 * fail with it.
 */
function bundleOnce(target: string): void {
  if (bundled.has(target)) return;
  bundled.add(target);
  const r = spawnSync(process.execPath, [path.join(repo, 'bin/calf.cjs'), '--help'], {
    cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...process.env, CALF_FAST_ENTRY: path.join(repo, target, 'calf.ts') },
  });
  if (r.status !== 0 && /could not bundle/.test(r.stderr)) console.log(`${red('✗')} ${target}/calf.ts does not compile:\n${indent(r.stderr.trim(), 4)}`);
}

/** `calf cleanup --force` of `target` on the test store `root`: the lines it printed. Never throws. */
async function cleanupWith(target: string, root: string): Promise<string[]> {
  const r = await execa(process.execPath, ['--import', 'tsx', path.join(repo, target, 'calf.ts'), 'cleanup', '--force'],
    { cwd: repo, reject: false, all: true, timeout: 120_000, env: { CALF_ROOT: root } });
  return (r.all ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
}

function printCheck(level: Level, check: Check, causeShown: boolean): void {
  if (check.status === 'skipped') return;
  const warning = check.title.startsWith('⚠');
  const mark = check.status === 'failed' ? red('✗') : warning ? yellow('⚠') : green('✓');
  const title = warning ? check.title.slice(1).trim() : check.title;
  if (check.status !== 'failed') {
    console.log(`    ${mark} ${title}`);
  } else if (causeShown) {
    console.log(`    ${mark} ${title} ${dim('(calf failed as above)')}`);
  } else {
    console.log(`    ${mark} ${title}`);
    console.log(indent(check.reason ?? '', 8));
    if (check.calfSaid && !(check.reason ?? '').includes(check.calfSaid)) console.log(indent(`calf said: ${check.calfSaid}`, 8));
    console.log(`        → ${pointer(level, check.section)}`);
  }
}

function indent(text: string, n: number): string {
  return text.split('\n').map((l) => ' '.repeat(n) + l).join('\n');
}
