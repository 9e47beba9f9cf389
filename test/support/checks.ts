/**
 * Running the level tests with jest against one target and reading back what each check did.
 * Shared by the test board (`npm run level`) and the proof that tests can fail (`npm test`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { type Level, levelDir } from '../../ladder/ladder.js';
import { repo } from './paths.js';
import type { RunRecord } from './target.js';

export type Status = 'passed' | 'failed' | 'skipped';

/** One check (a jest test) of one level. */
export interface Check {
  level: string;
  /** the README section that teaches it (the test's `describe`) */
  section: string;
  title: string;
  status: Status;
  /** why it failed, a few lines */
  reason?: string;
  /** calf's own error line (`calf: …`) from a run of this check that failed, if any */
  calfSaid?: string;
  /** a calf run of this check that Node itself crashed in (SIGSEGV…), not calf's answer */
  crashed?: { signal: string; command: string };
}

/** The outcome of one level's test file. */
export interface LevelOutcome {
  level: Level;
  checks: Check[];
  /** the file could not run at all (syntax error, import failure, …) */
  error?: string;
  /** how long its test file ran, in seconds (two files may run side by side: jest's maxWorkers) */
  seconds?: number;
  /** the jest process running its checks crashed (SIGSEGV…): its checks did not run to the end */
  crashed?: { signal: string; process: string };
}

/**
 * Signals a process crashes by (a bad memory access, an illegal instruction, a failed assertion),
 * as opposed to being ended by someone (SIGKILL: a timeout, the OOM killer; SIGTERM, SIGINT).
 */
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGTRAP', 'SIGABRT', 'SIGSYS']);
/** `signal=SIGSEGV` in jest-worker's message about a worker process that died. */
const workerSignal = (message: string | undefined) => /\bsignal=(SIG[A-Z]+)/.exec(message ?? '')?.[1];

interface JestJson {
  testResults: {
    name: string;
    message: string;
    startTime: number;
    endTime: number;
    assertionResults: { ancestorTitles: string[]; title: string; fullName: string; status: string; failureMessages: string[] }[];
  }[];
}

/** The test file of a level. */
export function testFile(level: Level): string {
  return path.join(repo, 'test/levels', `${level.id}-${level.name}.test.ts`);
}

/** GitHub's anchor for a heading. */
export function slug(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-');
}

/** Where the README teaches a check: `levels/NN-name/README.md#section`. */
export function pointer(level: Level, section: string): string {
  return `${levelDir(level, 'levels')}/README.md#${slug(section)}`;
}

const ANSI = /\x1b\[[0-9;]*m/g;

/** The part of a jest failure message an attendee can act on: the assertion, without the stack. */
function reasonOf(message: string): string {
  const lines = message.replace(ANSI, '').split('\n');
  const stack = lines.findIndex((l) => /^\s+at /.test(l));
  return lines.slice(0, stack === -1 ? undefined : stack).map((l) => l.trimEnd().replace(/^Error: /, ''))
    .filter((l) => l.trim()).slice(0, 8).join('\n');
}

/** calf's own error line in a run's stderr: `calf: …` (its one-line errors), else the first line of a trace. */
function calfLine(run: RunRecord): string | undefined {
  if (run.exitCode === 0) return undefined;
  const lines = run.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => l.startsWith('calf: ')) ?? lines.find((l) => /^\w*Error\b|^\w+Error:/.test(l));
}

/**
 * Run the test files of `levels` against `target` (a directory relative to the repo), with the
 * calf root `root` (`checks`: only the checks whose full name matches this regular expression).
 * Jest's own output goes to `log`; the outcome is read from its JSON report.
 * It never throws: a jest that could not run becomes an `error` on every level.
 */
export async function runChecks(options: { target: string; levels: readonly Level[]; root: string; log: string; env?: Record<string, string>; checks?: string }): Promise<LevelOutcome[]> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-jest-'));
  const report = path.join(tmp, 'report.json');
  const runsLog = path.join(tmp, 'runs.jsonl');
  try {
    const jest = await execa(process.execPath, [
      '--experimental-vm-modules', path.join(repo, 'node_modules/jest/bin/jest.js'),
      '--config', path.join(repo, 'jest.config.js'), '--json', '--outputFile', report, '--colors=false',
      ...(options.checks ? ['--testNamePattern', options.checks] : []),
      ...options.levels.map(testFile),
    ], {
      cwd: repo, reject: false, all: true,
      // CALF_REGISTRY_MIRROR: from level 13 on, calf run pulls an image it lacks from docker.io; a
      // check's unknown image must never send a packet off this machine (a closed loopback port)
      env: {
        CALF_TARGET: options.target, CALF_ROOT: options.root, CALF_RUNS_LOG: runsLog, NODE_NO_WARNINGS: '1', FORCE_COLOR: '0',
        CALF_REGISTRY_MIRROR: 'http://127.0.0.1:2', ...options.env,
      },
    });
    fs.appendFileSync(options.log, `\n$ jest (CALF_TARGET=${options.target}${options.env ? ` ${Object.entries(options.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''})\n${jest.all ?? ''}\n`);
    if (!fs.existsSync(report) && jest.signal && CRASH_SIGNALS.has(jest.signal)) {
      const crashed = { signal: jest.signal, process: 'jest (the process running the checks)' };
      return options.levels.map((level) => ({ level, checks: [], error: `jest was killed by ${jest.signal}: Node itself crashed`, crashed }));
    }
    if (!fs.existsSync(report)) {
      throw new Error(`jest did not run (exit ${jest.exitCode}); its output is in ${options.log}:\n${(jest.all ?? '').split('\n').slice(-15).join('\n')}`);
    }
    const json = JSON.parse(fs.readFileSync(report, 'utf8')) as JestJson;
    const runs = fs.existsSync(runsLog)
      ? fs.readFileSync(runsLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunRecord)
      : [];
    return options.levels.map((level) => {
      const file = json.testResults.find((r) => r.name === testFile(level));
      if (!file) return { level, checks: [], error: 'its test file did not run' };
      const checks = file.assertionResults.map((a): Check => {
        const failed = a.status === 'failed';
        const mine = runs.filter((r) => r.test === a.fullName);
        const said = failed ? mine.map(calfLine).find((l) => l !== undefined) : undefined;
        const crash = mine.find((r) => r.signal !== undefined && CRASH_SIGNALS.has(r.signal));
        return {
          level: level.id,
          section: a.ancestorTitles[1] ?? a.ancestorTitles[0] ?? '',
          title: a.title,
          status: a.status === 'passed' ? 'passed' : failed ? 'failed' : 'skipped',
          ...(a.failureMessages.length ? { reason: reasonOf(a.failureMessages.join('\n')) } : {}),
          ...(said ? { calfSaid: said } : {}),
          ...(crash ? { crashed: { signal: crash.signal!, command: crash.command } } : {}),
        };
      });
      const error = file.message && !checks.some((c) => c.status === 'failed') ? reasonOf(file.message) : undefined;
      const signal = workerSignal(file.message);
      const crashed = signal && CRASH_SIGNALS.has(signal) ? { signal, process: `the jest worker running level ${level.id}'s checks` } : undefined;
      return { level, checks, seconds: (file.endTime - file.startTime) / 1000, ...(error ? { error } : {}), ...(crashed ? { crashed } : {}) };
    });
  } catch (err) {
    const error = (err as Error).message;
    return options.levels.map((level) => ({ level, checks: [], error }));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The calf error line most failing checks share, when it is most of them (two or more, and at
 * least half): one cause the board prints once, above the checks, instead of under each.
 * Container ids and random tokens differ between runs, so lines are compared without them.
 */
export function sharedCause(outcomes: readonly LevelOutcome[]): { line: string; checks: Check[] } | undefined {
  const failed = outcomes.flatMap((o) => o.checks).filter((c) => c.status === 'failed');
  const groups = new Map<string, Check[]>();
  for (const c of failed) {
    if (!c.calfSaid) continue;
    const key = normalized(c.calfSaid);
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const [best] = [...groups.values()].sort((a, b) => b.length - a.length);
  return best && best.length >= 2 && best.length * 2 >= failed.length ? { line: best[0]!.calfSaid!, checks: best } : undefined;
}

/** A calf error line without what differs from run to run (container ids, random tokens, pids). */
export function normalized(line: string): string {
  return line.replace(/\b[0-9a-f]{12,64}\b/g, '<id>').replace(/-[A-Za-z0-9]{6}\b/g, '-<tmp>').replace(/\b\d{2,}\b/g, '<n>');
}

/**
 * Where Node itself crashed during a board, one line each: a calf run killed by SIGSEGV (or
 * another crash signal) is a crash of the node process, not an answer calf gave; nor is a
 * jest process that died. Under emulation (the test VM) that has been Node or the emulator;
 * on a real machine, a crash that repeats in the same check points at a native call of calf's.
 */
export function nodeCrashes(outcomes: readonly LevelOutcome[]): string[] {
  return outcomes.flatMap((o) => [
    ...(o.crashed ? [`${o.crashed.process} was killed by ${o.crashed.signal}`] : []),
    ...o.checks.filter((c) => c.crashed).map((c) => `${c.crashed!.command} was killed by ${c.crashed!.signal} (level ${c.level}: ${c.title})`),
  ]);
}

/** Did every check of the level pass (skipped ones aside), and did its file run? */
export function passed(outcome: LevelOutcome): boolean {
  return !outcome.error && outcome.checks.length > 0 && outcome.checks.every((c) => c.status !== 'failed');
}
