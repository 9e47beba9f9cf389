/**
 * `npm run hint N [K]` (scripts/hint.ts): every level's README has, for each TODO, its three
 * hints in order, and the script hands them out one at a time, remembering what it showed.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { LEVELS, levelDir } from '../../ladder/ladder.js';
import { readHints } from '../../scripts/hint.js';
import { repo } from '../support/paths.js';

const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-hints-'));
afterAll(() => fs.rmSync(cache, { recursive: true, force: true }));
const hint = (...args: string[]) => execa(process.execPath, ['--import', 'tsx', 'scripts/hint.ts', ...args], { cwd: repo, reject: false, env: { CALF_CACHE: cache } });

describe('npm run hint', () => {
  it('finds three hints, a nudge, the call and the answer, for every TODO of every level', () => {
    for (const level of LEVELS) {
      const todos = readHints(path.join(repo, levelDir(level, 'levels'), 'README.md'));
      expect([level.id, todos.length > 0]).toEqual([level.id, true]);
      for (const todo of todos) {
        expect([todo.id, todo.hints.map((h) => h.title)]).toEqual([todo.id, ['Hint 1: a nudge', 'Hint 2: the call', 'Hint 3: the answer']]);
        for (const h of todo.hints) expect([todo.id, h.text.length > 0]).toEqual([todo.id, true]);
      }
    }
  });

  it('shows the next hint each time, the answer third, and then the next TODO', async () => {
    const first = await hint('9');
    const second = await hint('9');
    const third = await hint('9');
    const fourth = await hint('9');
    expect([first, second, third, fourth].map((r) => r.stdout.split('\n')[0])).toEqual([
      expect.stringMatching(/^TODO\(09\.1\), hint 1 of 3: a nudge/),
      expect.stringMatching(/^TODO\(09\.1\), hint 2 of 3: the call/),
      expect.stringMatching(/^TODO\(09\.1\), hint 3 of 3: the answer/),
      expect.stringMatching(/^TODO\(09\.2\), hint 1 of 3: a nudge/),
    ]);
    expect(first.stdout).not.toContain('cgroup.procs\': pid'); // the nudge is not the answer
    expect(third.stdout).toContain("'cgroup.procs': pid");
    expect((await hint('9', '1')).stdout).toMatch(/hint 3 of 3: the answer[\s\S]*last one again/);
    const reset = await hint('9', '1', '--reset');
    expect(reset.exitCode).toBe(0);
    expect((await hint('9', '1')).stdout).toMatch(/^TODO\(09\.1\), hint 1 of 3/);
    const wrong = await hint('9', '7');
    expect({ exit: wrong.exitCode, said: wrong.stderr }).toEqual({ exit: 2, said: expect.stringContaining('no TODO(09.7)') });
  }, 180_000); // seven tsx starts, on a machine that may be busy
});
