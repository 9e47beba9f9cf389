/**
 * `npm test`: proves that the tests can fail. For every level N:
 *   - solutions/N passes the checks of levels 00…N;
 *   - levels/N (the skeleton) fails level N's checks and passes those of every earlier level;
 * the last solution passes every level; the generated files are up to date; the TypeScript
 * compiles; lib's own tests pass; and nothing is left behind on the host.
 * Ends with a line "N passed, N failed" counting those claims.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { LEVELS, levelDir } from '../ladder/ladder.js';
import { runChecks, passed, type LevelOutcome } from './support/checks.js';
import { prepareStore, removeStore } from './support/store.js';
import { snapshot, newSince } from './support/leftovers.js';
import { cgroupVersion, cannotRun, unexpectedCgroup } from './support/host.js';
import { repo } from './support/paths.js';

const why = cannotRun() ?? unexpectedCgroup();
if (why) {
  console.error(why);
  process.exit(1);
}

const log = path.join(os.tmpdir(), 'calf-test.log');
fs.writeFileSync(log, '');
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

// 3. lib's own tests (image store, unpacking, loading).
const lib = await execa(process.execPath, [
  '--experimental-vm-modules', 'node_modules/jest/bin/jest.js', '--config', 'jest.config.js', 'test/lib',
], { cwd: repo, reject: false, all: true, env: { NODE_NO_WARNINGS: '1' } });
fs.appendFileSync(log, `\n$ jest test/lib\n${lib.all}\n`);
claim("lib's own tests pass", lib.exitCode === 0, lib.all?.split('\n').filter((l) => /✕|●|Tests:/.test(l)).slice(0, 20).join('\n'));

// 4. The ladder: each solution passes, each skeleton fails its own level only.
const root = await prepareStore();
const before = snapshot([root]);
try {
  for (const [i, level] of LEVELS.entries()) {
    const upTo = LEVELS.slice(0, i + 1);
    const solution = levelDir(level, 'solutions');
    const skeleton = levelDir(level, 'levels');
    const solved = await runChecks({ target: solution, levels: upTo, root, log });
    for (const o of solved) claim(`${solution} passes level ${o.level.id}`, passed(o), failures(o));
    const skel = await runChecks({ target: skeleton, levels: upTo, root, log });
    for (const o of skel) {
      if (o.level === level) {
        const failing = o.checks.filter((c) => c.status === 'failed').length;
        claim(`${skeleton} fails level ${o.level.id} (${failing} of ${o.checks.filter((c) => c.status !== 'skipped').length} checks fail)`, !passed(o) && !o.error, o.error ?? 'every check passed on the skeleton: a test that cannot fail');
      } else {
        claim(`${skeleton} passes level ${o.level.id}`, passed(o), failures(o));
      }
    }
  }
} finally {
  removeStore(root);
}

// 5. Nothing left behind.
const left = newSince(before, snapshot([root]));
claim('nothing is left behind (mounts, container dirs, cgroups, netns, links, processes)', left.length === 0, left.join('\n'));

const failed = results.filter((r) => !r.ok).length;
console.log(`\nwall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

function failures(o: LevelOutcome): string {
  if (o.error) return o.error;
  return o.checks.filter((c) => c.status === 'failed').map((c) => `${c.title}\n${(c.reason ?? '').replace(/^/gm, '  ')}`).join('\n');
}
