/**
 * The calf under test: a level or solution directory chosen by `CALF_TARGET` (the board and
 * `npm test` set it), and a way to run it as a user would, from outside.
 */
import path from 'node:path';
import fs from 'node:fs';
import { execa } from 'execa';
import { LEVELS, levelDir } from '../../ladder/ladder.js';

import { repo } from './paths.js';
import { slow } from './host.js';
export { repo };

const dir = path.resolve(repo, process.env.CALF_TARGET ?? levelDir(LEVELS.at(-1)!, 'solutions'));
const match = /(\d\d)-[\w-]+$/.exec(dir);
if (!match || !fs.existsSync(path.join(dir, 'calf.ts'))) {
  throw new Error(`CALF_TARGET=${dir} is not a level or solution directory with a calf.ts`);
}

/** The directory under test, and the level it is at. */
export const target = { dir, level: Number(match[1]) };

/** The calf root the tests run against (a throwaway store with the test images loaded). */
export function calfRoot(): string {
  const root = process.env.CALF_ROOT;
  if (!root) throw new Error('CALF_ROOT is not set: run the tests with npm test or npm run level');
  return root;
}

/** How a test runs calf: what it feeds it, and extra environment for the calf process. */
export interface RunOptions {
  input?: string;
  env?: Record<string, string>;
}

// CALF_ENTRY=fast: run the target as the fast entry does (bin/calf.cjs: its bundle, plain node, no tsx).
const fast = process.env.CALF_ENTRY === 'fast';
const CALF_ARGS = () => (fast ? [path.join(repo, 'bin/calf.cjs')] : ['--import', 'tsx', path.join(target.dir, 'calf.ts')]);
const common = (env?: Record<string, string>) => ({
  cwd: repo, reject: false, timeout: 45_000 * slow, stripFinalNewline: false,
  env: { CALF_ROOT: calfRoot(), ...(fast ? { CALF_FAST_ENTRY: path.join(target.dir, 'calf.ts') } : {}), ...env },
}) as const;

/** `node --import tsx <target>/calf.ts ARGS…`, the way an attendee runs it (`tsx calf.ts`), minus tsx's extra wrapper process. */
export function calf(args: readonly string[], options: RunOptions = {}) {
  return execa(process.execPath, [...CALF_ARGS(), ...args], {
    ...common(options.env),
    ...(options.input === undefined ? {} : { input: options.input }),
  });
}

/** `calf run ARGS…` */
export function run(args: readonly string[], options: RunOptions = {}) {
  return calf(['run', ...args], options);
}

/** `calf run ARGS…` with binary stdin and stdout. */
export function runBytes(args: readonly string[], input: Uint8Array) {
  return execa(process.execPath, [...CALF_ARGS(), 'run', ...args], { ...common(), input, encoding: 'buffer' });
}

/** Run only for targets below `level` (checks that show what a later level fixes). */
export const below = (level: number) => target.level < level;

/** What a finished calf run looks like to the tests. */
interface Finished {
  exitCode?: number | undefined;
  stderr: string | Uint8Array;
  command: string;
}

/**
 * Fail unless calf exited with `code`; the message quotes calf's stderr, which usually says
 * what is missing (a TODO's stub, a SyscallError) better than any assertion could.
 */
export function expectExit(r: Finished, code: number): void {
  if (r.exitCode === code) return;
  const stderr = (typeof r.stderr === 'string' ? r.stderr : Buffer.from(r.stderr).toString()).trim();
  const shown = r.command.replace(/^\S+ (--import tsx \S+\/calf\.ts|\S+\/bin\/calf\.cjs)/, 'calf');
  throw new Error(`${shown}\nexited ${r.exitCode}, expected ${code}${stderr ? `; its stderr:\n${stderr.split('\n').slice(0, 6).join('\n')}` : ' (nothing on stderr)'}`);
}
