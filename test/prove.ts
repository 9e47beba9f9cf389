/**
 * `npm test`: proves that the level tests can fail, and that the references pass them:
 *   - the generated files are up to date; the TypeScript compiles; lib's own tests pass;
 *   - the ladder (below): every solution passes, every skeleton fails its own level check by
 *     check, and a calf that crashes at once fails every check of every level;
 *   - nothing is left behind on the host.
 * Ends with a line "N passed, N failed" counting those claims.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { LEVELS, levelDir, type Level } from '../ladder/ladder.js';
import { runChecks, passed, type LevelOutcome, type Check } from './support/checks.js';
import { prepareStore, removeStore } from './support/store.js';
import { snapshot, newSince, settled } from './support/leftovers.js';
import { cgroupVersion, cannotRun, unexpectedCgroup, runLog } from './support/host.js';
import { repo } from './support/paths.js';

/** `npm test` that cannot start says why in one line, and what to do. */
function cannotStart(message: string): never {
  console.error(`calf: npm test cannot run: ${message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const why = cannotRun() ?? unexpectedCgroup();
if (why) cannotStart(why);

const log = runLog('calf-test');
const started = Date.now();
const results: { claim: string; ok: boolean; detail?: string }[] = [];
function claim(text: string, ok: boolean, detail?: string): void {
  results.push({ claim: text, ok, ...(detail ? { detail } : {}) });
  console.log(`${ok ? '✓' : '✗'} ${text}${ok || !detail ? '' : `\n${detail.replace(/^/gm, '    ')}`}`);
}
console.log(`calf: proving the level tests (Linux ${os.release()}, ${process.arch}, Node ${process.version}, cgroup ${cgroupVersion()}; jest log ${log})`);

// 1. One source of truth: the committed skeletons and solutions are what the ladder generates.
const generate = await execa(process.execPath, ['--import', 'tsx', 'scripts/generate.ts', '--check'], { cwd: repo, reject: false, all: true });
claim('levels/ and solutions/ are generated from ladder/calf.ts', generate.exitCode === 0, generate.all);

// 2. Strict TypeScript everywhere, skeletons included (an attendee's starting point compiles).
const tsc = await execa(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit'], { cwd: repo, reject: false, all: true });
claim('tsc --noEmit is clean', tsc.exitCode === 0, tsc.all);

// 3. lib's own tests (image store, unpacking, loading, cleanup of a mount mess).
const lib = await execa(process.execPath, [
  '--experimental-vm-modules', 'node_modules/jest/bin/jest.js', '--config', 'jest.config.js', 'test/lib',
], { cwd: repo, reject: false, all: true, env: { NODE_NO_WARNINGS: '1' } });
fs.appendFileSync(log, `\n$ jest test/lib\n${lib.all}\n`);
claim("lib's own tests pass", lib.exitCode === 0, lib.all?.split('\n').filter((l) => /✕|●|Tests:/.test(l)).slice(0, 20).join('\n'));

// ─── 4. The ladder ──────────────────────────────────────────────────────────────────────────────
//
// What it proves, and why these runs are enough (each jest run of a level costs the same, so
// the cost is the number of level runs; this plan is linear in the number of levels, where
// running every earlier level against every solution and skeleton was quadratic):
//
//   a. The last solution passes every level, 00…L: all checks can pass together, and the
//      finished calf keeps every earlier behaviour.                           L+1 level runs
//   b. Each other solution N passes level N: the reference an attendee compares with works.
//      (Its earlier levels are covered by b/c of those levels and by a: what the skeleton
//      N+1 — solution N plus TODOs — passes, solution N passes.)             L level runs
//   c. Each skeleton N fails every check of level N, one by one (a check that passes on an
//      untouched skeleton tests nothing), except the few in SKELETON_PASSES, and passes level
//      N-1 (the starting point works: it is solution N-1 plus TODOs).         2L+1 level runs
//   d. A calf that writes one error line and exits 125 at once fails every check of every level:
//      no check passes by observing an absence that a crash also produces. Cheap (nothing
//      runs), and one jest run for all levels: its directory is `00-crash`, so the checks that
//      run only below some level (the ⚠ breakout) run too; a check it skips that the last
//      solution runs would be unproven, and fails the claim.               L+1 level runs
//
// Jest starts once per target: 2L+3 times (about 4 s each here); the level runs are 5L+3, of
// which L+1 are the crash's (fast). At 13 levels that is 27 starts instead of the 26 runs of
// 1…13 levels each (182 level runs) of the quadratic plan.
//
// Not re-proven: solution N against levels below N-1 (only a and b's neighbours), which the
// old quadratic plan did; a level that broke an earlier one and a later level that repaired it
// would slip through, which the ladder's one-source generation makes unlikely.
//
// How calf is started: a runs the last solution the attendee's way, `node --import tsx calf.ts`,
// on Node 24 (the workshop VM's); b, c and d on this machine's Node through the fast entry
// (bin/calf.cjs: the level file bundled by esbuild, which is also what tsx compiles with, run by
// plain node). Every level's checks run both ways, on both Nodes (a, and b of its own solution),
// and tsx's start-up (~200 ms of CPU per calf call) was most
// of those runs' CPU and half their time: level 15's checks took 71 s through tsx, 35 s through
// the bundle (user+sys 75 s against 27 s), which is what lets b and c run three at a time on
// two CPUs.

/**
 * Checks of level N that pass on the untouched skeleton of level N by design, with why. Each
 * must still fail against the crashing calf (d), so it can fail.
 */
const SKELETON_PASSES: Record<string, string> = {
  'returns 125 with a one-line message for a flag it does not know':
    "flags are parsed by lib's CLI (lib/runtime/cli.ts) before the level's code runs: a level 00 attendee inherits it",
  'fails with 125 for an --env-file that does not exist':
    "--env-file is read by lib's CLI before the level's code runs",
  'refuses to remove an image a running container uses':
    "the container's state record names its image (lib's createContainer) and rmi reads the records: the check guards that level 04's storage driver keeps the image rmi refuses",
  'refuses a host name that is not one, with 125 and one line':
    "level 05's skeleton declares --hostname with its check (not a TODO): the lesson is the namespaces",
  'refuses an unknown network with 125 and one line, and runs nothing':
    "level 07's skeleton declares --network with its check (not a TODO): the lesson is the namespace",
  'creates a network with its bridge on the host, lists it, and removes both':
    "calf network (create, ls, rm) is lib's command in skeleton 08: the lesson is the endpoint, the sandbox and -p",
  'refuses a bad subnet, an overlapping one and a taken name with one line and exit 1':
    "calf network create's checks are lib's, given in skeleton 08",
  'refuses a malformed -p with 125 and one line':
    "level 08's skeleton declares -p with its parser (not a TODO)",
  'refuses to open a block device that --privileged opens (an unattached loop device)':
    "level 12's device policy (a devices cgroup) is given code in its skeleton: the TODOs are masks, capabilities and seccomp",
  'refuses to open the host’s root disk (…':
    "the device policy is given code in skeleton 12 (see above)",
  'puts the container in a devices cgroup of its own, gone after it exits':
    "the device policy is given code in skeleton 12 (see above)",
  'gives --privileged every capability, and neither no_new_privs nor a filter':
    "an untouched skeleton 12 drops nothing: it is what --privileged asks for; the check guards that the flag keeps it so",
  'refuses an unknown capability with one line and exit 125, before anything runs':
    "level 12's skeleton declares --cap-add/--cap-drop with their parser (not a TODO)",
  'keeps the chroot breakout inside the container':
    "guards level 03's pivot_root under level 12's capabilities: it passes on every skeleton from 03 on by design",
  'leads /proc/1/root to the container’s own root, not the host’s':
    "guards levels 03 and 06 (pivot_root, the PID namespace) under level 12's capabilities, by design",
  'keeps the host’s network namespace and interfaces with --network host':
    'a calf without a network namespace already shares the host\'s: the check guards that --network host keeps it so',
};

/** Checks that may pass against a calf that exits 125 at once: none so far. */
const CRASH_PASSES: Record<string, string> = {};

const last = LEVELS.at(-1)!;
const root = await prepareStore().catch((err: Error) => cannotStart(err.message));
const before = snapshot([root]);
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-prove-'));
const notRemoved: string[] = [];
const skeletonRoots: string[] = [];
/** b, c and d's way to start calf (see "How calf is started"), its bundles kept in the scratch directory. */
const FAST = { CALF_ENTRY: 'fast', CALF_CACHE: path.join(scratch, 'bundles') };
try {
  // a. the last solution, every level, the attendee's way (`node --import tsx calf.ts`) on the
  // Node the workshop VM installs, 24 (scripts/node24.sh: the official binary, pinned, cached
  // outside the checkout): calf and its stages run on it, the checks on this machine's Node.
  // This machine's own Node runs b, c and d. (Until 2026-12-04 a ran on this Node, and a second
  // run of the last solution, a', on Node 24: a fifth of npm test's time for a Node 20 run of
  // every level that b already makes.)
  const final = levelDir(last, 'solutions');
  const node24 = await execa('bash', ['scripts/node24.sh', 'sh', '-c', 'command -v node'], { cwd: repo, reject: false, all: true });
  const node24Path = node24.stdout.trim().split('\n').at(-1) ?? '';
  const finalOutcomes: LevelOutcome[] = node24.exitCode === 0
    ? await runChecks({ target: final, levels: LEVELS, root, log, env: { CALF_NODE: node24Path } })
    : LEVELS.map((level) => ({ level, checks: [], error: `no Node 24 to run them on: ${node24.all}` }));
  for (const o of finalOutcomes) claim(`${final} passes level ${o.level.id} on Node 24 (${node24Path})`, passed(o), failures(o));

  // b and c run three jest processes at a time (most of a level run is waiting: a container's
  // sleep, a skeleton's check timing out), never two that run the same level's tests at once (a
  // level's tests share names within a run, and two runs of one file would see each other's). Their
  // claims are printed in the plan's order, each as soon as it and those before it are in.
  const jobs: { levels: readonly Level[]; run: () => Promise<() => void> }[] = [];
  for (const [i, level] of LEVELS.entries()) {
    // b. each other solution, its own level
    if (level !== last) {
      const solution = levelDir(level, 'solutions');
      jobs.push({
        levels: [level],
        run: async () => {
          const [o] = await runChecks({ target: solution, levels: [level], root, log, env: FAST });
          return () => claim(`${solution} passes level ${level.id}`, passed(o!), failures(o!));
        },
      });
    }

    // c. each skeleton: the previous level passes, its own fails check by check. In a store of
    // its own, as an attendee's board runs: what the solutions left in the shared one (level 04's
    // unpacked layers) must not make a skeleton's check pass.
    const skeleton = levelDir(level, 'levels');
    const upTo = LEVELS.slice(Math.max(0, i - 1), i + 1);
    jobs.push({
      levels: upTo,
      run: async () => {
        const own = await prepareStore();
        skeletonRoots.push(own);
        try {
          const outcomes = await runChecks({ target: skeleton, levels: upTo, root: own, log, env: FAST });
          return () => {
            for (const o of outcomes) {
              if (o.level !== level) claim(`${skeleton} passes level ${o.level.id}`, passed(o), failures(o));
              else everyCheckFails(`${skeleton} (untouched)`, o, SKELETON_PASSES);
            }
          };
        } finally {
          notRemoved.push(...removeStore(own));
        }
      },
    });
  }
  for (const done of inLanes(jobs, 3)) (await done)();

  // d. a calf that crashes at once, against every level
  const crashed = await runChecks({ target: crashingCalf(), levels: LEVELS, root, log, env: FAST });
  for (const o of crashed) {
    const ranOnFinal = new Set(finalOutcomes.find((f) => f.level === o.level)?.checks.filter((c) => c.status !== 'skipped').map((c) => c.title));
    everyCheckFails('a calf that exits 125 at once', o, CRASH_PASSES, o.checks.filter((c) => c.status === 'skipped' && ranOnFinal.has(c.title)));
  }
} finally {
  notRemoved.push(...removeStore(root));
  fs.rmSync(scratch, { recursive: true, force: true });
}

// 4b. Workshop materials: the decks render in a real browser without overflow (and that check
// can fail), and every level's "Check it by hand" transcript replays against its solution (and
// that replay can fail). After the test store is gone: a transcript greps the host's mount table.
{
  const tsx = (args: string[]) => execa(process.execPath, ['--import', 'tsx', ...args], { cwd: repo, reject: false, all: true, env: { FORCE_COLOR: '0' } });
  // The browser and the demos run side by side: the demos spend most of their time waiting.
  const slidesRun = tsx(['scripts/slides-check.ts']);
  // Every level's demo. Each runs in PID and network namespaces of its own, with a store of its
  // own (and a TMPDIR of its own: see scripts/demo.ts), so four run at once: they spend most of
  // their time waiting (a container's sleep, a timeout), and one after the other they took about
  // 8 minutes here; three at a time 170 s in CI, four at a time 173–175 s (2026-12-04). A block of a cgroup version
  // this machine doesn't have is skipped, saying so; the VM board replays it (CALF_VM_DEMOS).
  const demoLevels = LEVELS;
  const demos: Awaited<ReturnType<typeof tsx>>[] = [];
  const demosStarted = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < demoLevels.length) {
      const i = next++;
      demos[i] = await tsx(['scripts/demo.ts', demoLevels[i]!.id, '--check']);
    }
  }));
  const demoSeconds = Math.round((Date.now() - demosStarted) / 1000);
  const drift = await tsx(['scripts/demo.ts', '0', '--check', '--level-dir', levelDir(LEVELS[0]!, 'levels')]);
  const slides = await slidesRun;
  fs.appendFileSync(log, `\n$ npm run slides:check\n${slides.all}\n`);
  if (slides.exitCode === 3) console.log(slides.stdout.trim());
  else claim(`every slide renders in Chromium without overflow or a broken image (${slides.stdout.split('\n').at(-1)?.replace(/^\S+ /, '')})`, slides.exitCode === 0, slides.all);
  if (slides.exitCode !== 3) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'slides-fixture-'));
    try {
      const fixture = await tsx(['scripts/slides-check.ts', '--out', out, 'test/materials/overflow-fixture.md']);
      const named = [/slide 2 .*taller than the slide/, /slide 3 .*cut off on the right/, /slide 4 .*broken image/].every((re) => re.test(fixture.stdout));
      claim('the slide check fails on a too-tall slide, cut-off code and a broken image, naming each', fixture.exitCode === 1 && named, fixture.all);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }
  console.log(`(every demo replayed in ${demoSeconds} s, four at a time)`);
  for (const [i, level] of demoLevels.entries()) {
    const demo = demos[i]!;
    fs.appendFileSync(log, `\n$ npm run demo ${level.id}\n${demo.all}\n`);
    claim(`npm run demo ${Number(level.id)} replays ${levelDir(level, 'levels')}/README.md's check-by-hand transcript against ${levelDir(level, 'solutions')}`,
      demo.exitCode === 0, demo.all?.split('\n').filter((l) => !l.startsWith('✓')).join('\n'));
    // what it could not replay here, and why (a cgroup v2 column on a v1 machine)
    for (const skipped of (demo.all ?? '').split('\n').filter((l) => l.startsWith('⚠'))) console.log(`    ${skipped}`);
  }
  claim(`npm run demo 0 fails against ${levelDir(LEVELS[0]!, 'levels')} (its output differs from the README)`, drift.exitCode === 1, drift.all);
}

// 5. Nothing left behind.
const left = [...await settled(newSince(before, snapshot([root, ...skeletonRoots])), [root, ...skeletonRoots]), ...notRemoved.map((m) => `mount ${m} (could not be detached)`)];
claim('nothing is left behind (mounts, container dirs, cgroups, netns, links, IPC objects, processes)', left.length === 0, left.join('\n'));

const failed = results.filter((r) => !r.ok).length;
console.log(`\nwall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

/**
 * Claim that every (not skipped) check of a level failed against `what`, bar the allowed ones;
 * `unproven` are checks that were skipped here though they run elsewhere.
 */
function everyCheckFails(what: string, o: LevelOutcome, allowed: Record<string, string>, unproven: Check[] = []): void {
  const counted = o.checks.filter((c) => c.status !== 'skipped');
  const passing = counted.filter((c) => c.status === 'passed');
  // a key ending in '…' allows every title it begins (titles that name this machine's device numbers)
  const isAllowed = (title: string) => title in allowed || Object.keys(allowed).some((k) => k.endsWith('…') && title.startsWith(k.slice(0, -1)));
  const unexpected = passing.filter((c) => !isAllowed(c.title));
  const excused = passing.length - unexpected.length;
  const problems = [
    ...unexpected.map((c) => `passes against it, so it can pass without testing anything: ${c.title}`),
    ...unproven.map((c) => `skipped against it, so not proven to fail: ${c.title}`),
  ];
  claim(
    `${what} fails level ${o.level.id}: ${counted.length - passing.length} of ${counted.length} checks fail${excused ? ` (${excused} pass by design)` : ''}`,
    !o.error && counted.length > 0 && problems.length === 0,
    o.error ?? (counted.length === 0 ? 'no check ran' : problems.join('\n')),
  );
}

/**
 * Start `jobs` at most `lanes` at a time, never two whose levels overlap at once; in the list's
 * order otherwise. Returns each job's promise, in the list's order.
 */
function inLanes<T>(jobs: readonly { levels: readonly Level[]; run: () => Promise<T> }[], lanes: number): Promise<T>[] {
  const settle = jobs.map(() => {
    let resolve!: (value: T) => void;
    let reject!: (reason: unknown) => void;
    const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
    promise.catch(() => {}); // awaited in order later: a later job's failure is not unhandled meanwhile
    return { promise, resolve, reject };
  });
  const waiting = jobs.map((job, i) => ({ ...job, i }));
  const running = new Set<(typeof waiting)[number]>();
  const pump = (): void => {
    for (let k = 0; k < waiting.length && running.size < lanes;) {
      const job = waiting[k]!;
      if ([...running].some((r) => r.levels.some((l) => job.levels.includes(l)))) {
        k++;
        continue;
      }
      waiting.splice(k, 1);
      running.add(job);
      job.run().then(settle[job.i]!.resolve, settle[job.i]!.reject).finally(() => {
        running.delete(job);
        pump();
      });
    }
  };
  pump();
  return settle.map((s) => s.promise);
}

/** A target directory `00-crash/calf.ts` whose calf writes one error line and exits 125, as a broken level does. */
function crashingCalf(): string {
  const dir = path.join(scratch, '00-crash');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'calf.ts'), "process.stderr.write('calf: crashed on purpose (test/prove.ts)\\n');\nprocess.exit(125);\n");
  return dir;
}

function failures(o: LevelOutcome): string {
  if (o.error) return o.error;
  return o.checks.filter((c) => c.status === 'failed').map((c) => `${c.title}\n${(c.reason ?? '').replace(/^/gm, '  ')}`).join('\n');
}
