/**
 * `calf cleanup` judges each owner once. A calf that dies while a cleanup runs (a test that
 * SIGKILLs it while a parallel test file cleans the same root, or a user's Ctrl-\) must keep all
 * its things for the next cleanup, not lose its endpoint but keep its container directory.
 */
import { describe, it, expect, afterEach } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { cleanup } from '../../lib/runtime/cleanup.js';
import type { LeftoverKind } from '../../lib/core/leftovers.js';

let root: string | undefined;
let owner: number | undefined;

afterEach(() => {
  if (owner !== undefined && fs.existsSync(`/proc/${owner}`)) process.kill(owner, 'SIGKILL');
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** A process that is nobody's child here (init reaps it): once killed, it is gone, not a zombie. */
function orphan(): number {
  return Number(execFileSync('sh', ['-c', 'sleep 600 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim());
}

/** Kill `pid` and wait, synchronously, until it is gone. */
function killAndWait(pid: number): void {
  process.kill(pid, 'SIGKILL');
  const until = Date.now() + 5_000;
  while (fs.existsSync(`/proc/${pid}`) && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
}

describe('calf cleanup and a calf that dies meanwhile', () => {
  it('keeps all of its things when it was alive as the first was found, and removes them all once it is dead', () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-owners-'));
    const pid = orphan();
    owner = pid;
    const removed: string[] = [];
    let dies = true;
    const kinds: LeftoverKind[] = [
      { kind: 'test thing a', find: () => [{ what: 'thing a', owner: pid, remove: () => void removed.push('a') }] },
      {
        kind: 'test thing b',
        find: () => {
          if (dies) killAndWait(pid); // the owner dies between the two kinds
          return [{ what: 'thing b', owner: pid, remove: () => void removed.push('b') }];
        },
      },
    ];
    const first = cleanup({ root, kinds });
    expect({ gone: !fs.existsSync(`/proc/${pid}`), removed: [...removed], report: first.filter((l) => l.includes('thing')) }).toEqual({
      gone: true,
      removed: [],
      report: [
        `kept thing a: calf process ${pid} is still running (use --force)`,
        `kept thing b: calf process ${pid} is still running (use --force)`,
      ],
    });
    dies = false;
    expect(cleanup({ root, kinds }).filter((l) => l.includes('thing'))).toEqual(['removed thing a', 'removed thing b']);
    expect(removed).toEqual(['a', 'b']);
  });
});
