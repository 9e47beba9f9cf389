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

const shown = (command: string) => command.replace(/^\S+ (--import tsx \S+\/calf\.ts|\S+\/bin\/calf\.cjs)/, 'calf');

/** `node --import tsx <target>/calf.ts ARGS…`, the way an attendee runs it (`tsx calf.ts`), minus tsx's extra wrapper process. */
export function calf(args: readonly string[], options: RunOptions = {}) {
  return record(execa(process.execPath, [...CALF_ARGS(), ...args], {
    ...common(options.env),
    ...(options.input === undefined ? {} : { input: options.input }),
  }));
}

/** `calf run ARGS…` */
export function run(args: readonly string[], options: RunOptions = {}) {
  return calf(['run', ...args], options);
}

/** `calf run ARGS…` with binary stdin and stdout. */
export function runBytes(args: readonly string[], input: Uint8Array) {
  return record(execa(process.execPath, [...CALF_ARGS(), 'run', ...args], { ...common(), input, encoding: 'buffer' }));
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
 * what is missing (a TODO's stub, a SyscallError) better than any assertion could.
 */
export function expectExit(r: Finished, code: number): void {
  if (r.exitCode === code) return;
  const [ended, said] = howItEnded(r);
  throw new Error(`${shown(r.command)}\n${ended}, expected ${code}${said}`);
}

/**
 * How a calf run ended, for a failure message: `exited 1` or `was killed by SIGSEGV` (no exit
 * code: calf itself was killed, timed out, or never started), then the start of its stderr.
 */
export function howItEnded(r: Finished): [ended: string, said: string] {
  const stderr = (r.stderr instanceof Uint8Array ? Buffer.from(r.stderr).toString() : String(r.stderr ?? '')).trim();
  const ended = r.exitCode !== undefined ? `exited ${r.exitCode}` : r.signal ? `was killed by ${r.signal}` : `did not exit (${r.shortMessage ?? 'no exit code'})`;
  return [ended, stderr ? `; its stderr:\n${stderr.split('\n').slice(0, 6).join('\n')}` : ' (nothing on stderr)'];
}

/** A container that is running: its command's pid (seen from the host), and how to end it. */
export interface Running {
  /** the calf process */
  calfPid: number;
  /** the container's command (the init stage after execve), a child of calf */
  pid: number;
  /** what it printed before it was ready */
  output: string;
  /** Let the command finish (it reads one line) and wait for calf. */
  finish(): Promise<Awaited<ReturnType<typeof run>>>;
}

/** Wait until `child` printed the line `line` on stdout (`up`), or exited first; and what it printed. */
export function untilLine(child: { stdout: NodeJS.ReadableStream | null; once(event: 'exit', listener: () => void): unknown }, line: string): Promise<{ up: boolean; output: string }> {
  let output = '';
  return new Promise((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += String(chunk);
      if (output.includes(`${line}\n`)) resolve({ up: true, output });
    });
    child.once('exit', () => resolve({ up: false, output }));
  });
}

/**
 * Start `calf run IMAGE sh -c 'SETUP; echo ready; read line'` and wait until the container is
 * ready: the host can then look at it (`/proc/PID/…`, `nsenter`) while it runs. A calf that
 * exits first fails with its exit code and stderr. Call `finish()` in a `finally`.
 */
export async function startContainer(image: string | readonly string[], setup = 'true', options: RunOptions = {}): Promise<Running> {
  const ready = `calf-ready-${Math.random().toString(16).slice(2)}`;
  const child = run([...[image].flat(), 'sh', '-c', `${setup}\necho ${ready}; read line`], options); // image: or [flags…, image]
  const finish = async () => {
    child.stdin?.end('\n');
    return await child;
  };
  const { up, output } = await untilLine(child, ready);
  if (!up) {
    const r = await child;
    expectExit(r, 0); // says how calf ended
    throw new Error(`${shown(r.command)}\nended before the container was ready; its stdout:\n${output}`);
  }
  // the command is calf's child (the init stage became it), and its command line has our token
  const cmdline = (pid: number) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { return ''; } };
  const kids = childrenOf(child.pid!);
  const pid = kids.find((k) => cmdline(k).includes(ready));
  if (pid === undefined) {
    await finish();
    throw new Error(`none of calf's child processes is the container's command (sh -c '…'): ${kids.map((k) => `${k} ${cmdline(k).slice(0, 80)}`).join('; ') || 'it has none'}`);
  }
  return { calfPid: child.pid!, pid, output: output.replace(`${ready}\n`, ''), finish };
}
