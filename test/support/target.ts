/**
 * The calf under test: a level or solution directory chosen by `CALF_TARGET` (the board and
 * `npm test` set it), and a way to run it as a user would, from outside.
 */
import path from 'node:path';
import fs from 'node:fs';
import { execa } from 'execa';
import { expect } from '@jest/globals';
import { LEVELS, levelDir } from '../../ladder/ladder.js';

import { repo } from './paths.js';
import { slow } from './host.js';
import { childrenOf } from './procs.js';
import { inBackground, howItEnded, shown, type Background } from './background.js';
export { repo, howItEnded };

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
  /** ms until calf is killed (default 45 s, stretched by CALF_TEST_SLOW) */
  timeout?: number;
}

// CALF_ENTRY=fast: run the target as the fast entry does (bin/calf.cjs: its bundle, plain node, no tsx).
const fast = process.env.CALF_ENTRY === 'fast';
/** The node that runs calf: this one, or `$CALF_NODE` (npm test runs the last solution on Node 24 too). */
export const calfNode = process.env.CALF_NODE || process.execPath;
/** node's arguments that run the target: its calf.ts through tsx, or (CALF_ENTRY=fast) bin/calf.cjs. */
export const CALF_ARGS = () => (fast ? [path.join(repo, 'bin/calf.cjs')] : ['--import', 'tsx', path.join(target.dir, 'calf.ts')]);
/** The environment that makes {@link CALF_ARGS} run the target: the calf root, and the fast entry's level file. */
export const calfEnv = () => ({ CALF_ROOT: calfRoot(), ...(fast ? { CALF_FAST_ENTRY: path.join(target.dir, 'calf.ts') } : {}) });
const common = (env?: Record<string, string>, timeout = 45_000) => ({
  cwd: repo, reject: false, timeout: timeout * slow, stripFinalNewline: false,
  env: { ...calfEnv(), ...env },
}) as const;

/**
 * One calf run as the board reads it back: which check ran it, how calf ended, what it said.
 * The board (test/support/checks.ts) sets `CALF_RUNS_LOG`; each run appends one JSON line.
 */
export interface RunRecord {
  /** the check's full name, as jest's report spells it (`fullName`) */
  test: string;
  command: string;
  exitCode: number | undefined;
  /** the signal that killed calf itself (no exit code then) */
  signal?: string | undefined;
  stderr: string;
}

/** Remember how a run ended, for the board: calf's own stderr often says more than a check. */
function record<T extends PromiseLike<{ exitCode?: number | undefined; signal?: string | undefined; stderr: unknown; command: string }>>(subprocess: T): T {
  const log = process.env.CALF_RUNS_LOG;
  if (!log) return subprocess;
  const test = expect.getState().currentTestName ?? '';
  subprocess.then((r) => {
    const stderr = typeof r.stderr === 'string' ? r.stderr : Buffer.from(r.stderr as Uint8Array).toString();
    const line: RunRecord = { test, command: shown(r.command), exitCode: r.exitCode, signal: r.signal, stderr: stderr.slice(0, 2000) };
    fs.appendFileSync(log, `${JSON.stringify(line)}\n`);
  }, () => undefined);
  return subprocess;
}

/**
 * The calf under test as a shell command line (node and its arguments, quoted) and the
 * environment it needs, for a test that starts it through another program (`script`, for a pty).
 */
export function calfShellCommand(args: readonly string[]): { command: string; env: Record<string, string> } {
  const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
  return { command: [calfNode, ...CALF_ARGS(), ...args].map(quote).join(' '), env: common().env };
}

/** `node --import tsx <target>/calf.ts ARGS…`, the way an attendee runs it (`tsx calf.ts`), minus tsx's extra wrapper process. */
export function calf(args: readonly string[], options: RunOptions = {}) {
  return record(execa(calfNode, [...CALF_ARGS(), ...args], {
    ...common(options.env, options.timeout),
    ...(options.input === undefined ? {} : { input: options.input }),
  }));
}

/** `calf run ARGS…` */
export function run(args: readonly string[], options: RunOptions = {}) {
  return calf(['run', ...args], options);
}

/** `calf run ARGS…` with binary stdin and stdout. */
export function runBytes(args: readonly string[], input: Uint8Array) {
  return record(execa(calfNode, [...CALF_ARGS(), 'run', ...args], { ...common(), input, encoding: 'buffer' }));
}

/** Run only for targets below `level` (checks that show what a later level fixes). */
export const below = (level: number) => target.level < level;

/** What a finished calf run looks like to the tests. */
interface Finished {
  exitCode?: number | undefined;
  /** the signal that ended calf itself (execa's), when one did */
  signal?: string | undefined;
  /** execa's own account of a run that did not exit normally (a timeout, a spawn error) */
  shortMessage?: string | undefined;
  stderr?: unknown;
  command: string;
}

/**
 * Fail unless calf exited with `code`; the message quotes calf's stderr, which usually says
 * what is missing (a TODO's stub, a SyscallError) better than any assertion could. `what` names
 * the run when a check makes several (its positive control, say), so the failure says which.
 */
export function expectExit(r: Finished, code: number, what?: string): void {
  if (r.exitCode === code) return;
  const [ended, said] = howItEnded(r);
  throw new Error(`${what ? `${what}: ` : ''}${shown(r.command)}\n${ended}, expected ${code}${said}`);
}

/** A container that is running: its command's pid (seen from the host), and how to end it. */
export interface Running extends Background<ReturnType<typeof run>> {
  /** the calf process */
  calfPid: number;
  /** the container's command (the init stage after execve), a child of calf */
  pid: number;
}

/**
 * Start `calf run IMAGE sh -c 'SETUP; echo ready; read line'` and wait until the container is
 * ready: the host can then look at it (`/proc/PID/…`, `nsenter`) while it runs. A calf that
 * exits first fails with its exit code and stderr. Call `finish()` in a `finally`; `output` is
 * what SETUP printed.
 */
export async function startContainer(image: string | readonly string[], setup = 'true', options: RunOptions = {}): Promise<Running> {
  const ready = `calf-ready-${Math.random().toString(16).slice(2)}`;
  // A container some checks share lives as long as they need it (finish() ends it), not only
  // the 45 s a single run may take: on a busy machine the checks between its uses took longer.
  const child = run([...[image].flat(), 'sh', '-c', `${setup}\necho ${ready}; read line`], { timeout: 600_000, ...options }); // image: or [flags…, image]
  const started = await inBackground(child, ready, { what: 'that the container is ready' });
  // the command is calf's child (the init stage became it), and its command line has our token
  const pid = started.childWith(ready);
  if (pid === undefined) {
    const kids = childrenOf(child.pid!);
    await started.finish('\n');
    throw new Error(`none of calf's child processes is the container's command (sh -c '…'): ${kids.join(', ') || 'it has none'}`);
  }
  return { ...started, output: started.output.replace(`${ready}\n`, ''), calfPid: child.pid!, pid, finish: (input = '\n') => started.finish(input) };
}
