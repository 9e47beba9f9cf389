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
}

/** The outcome of one level's test file. */
export interface LevelOutcome {
  level: Level;
  checks: Check[];
  /** the file could not run at all (syntax error, import failure, …) */
  error?: string;
}

interface JestJson {
  testResults: {
    name: string;
    message: string;
    assertionResults: { ancestorTitles: string[]; title: string; status: string; failureMessages: string[] }[];
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

/**
 * Run the test files of `levels` against `target` (a directory relative to the repo), with the
 * calf root `root`. Jest's own output goes to `log`; the outcome is read from its JSON report.
 */
export async function runChecks(options: { target: string; levels: readonly Level[]; root: string; log: string }): Promise<LevelOutcome[]> {
  const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'calf-jest-')), 'report.json');
  try {
    const jest = await execa(process.execPath, [
      '--experimental-vm-modules', path.join(repo, 'node_modules/jest/bin/jest.js'),
      '--config', path.join(repo, 'jest.config.js'), '--json', '--outputFile', report, '--colors=false',
      ...options.levels.map(testFile),
    ], {
      cwd: repo, reject: false, all: true,
      env: { CALF_TARGET: options.target, CALF_ROOT: options.root, NODE_NO_WARNINGS: '1', FORCE_COLOR: '0' },
    });
    fs.appendFileSync(options.log, `\n$ jest (CALF_TARGET=${options.target})\n${jest.all ?? ''}\n`);
    if (!fs.existsSync(report)) {
      throw new Error(`jest did not run (exit ${jest.exitCode}); its output is in ${options.log}:\n${(jest.all ?? '').split('\n').slice(-15).join('\n')}`);
    }
    const json = JSON.parse(fs.readFileSync(report, 'utf8')) as JestJson;
    return options.levels.map((level) => {
      const file = json.testResults.find((r) => r.name === testFile(level));
      if (!file) return { level, checks: [], error: 'its test file did not run' };
      const checks = file.assertionResults.map((a): Check => ({
        level: level.id,
        section: a.ancestorTitles[1] ?? a.ancestorTitles[0] ?? '',
        title: a.title,
        status: a.status === 'passed' ? 'passed' : a.status === 'failed' ? 'failed' : 'skipped',
        ...(a.failureMessages.length ? { reason: reasonOf(a.failureMessages.join('\n')) } : {}),
      }));
      const error = file.message && !checks.some((c) => c.status === 'failed') ? reasonOf(file.message) : undefined;
      return { level, checks, ...(error ? { error } : {}) };
    });
  } finally {
    fs.rmSync(path.dirname(report), { recursive: true, force: true });
  }
}

/** Did every check of the level pass (skipped ones aside), and did its file run? */
export function passed(outcome: LevelOutcome): boolean {
  return !outcome.error && outcome.checks.length > 0 && outcome.checks.every((c) => c.status !== 'failed');
}
