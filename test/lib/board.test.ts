/**
 * The board's reading of failures: one calf error shared by most failing checks is their cause,
 * printed once (issue 7, defect 3). Pure functions of test/support/checks.ts, no calf involved.
 */
import { describe, it, expect } from '@jest/globals';
import { LEVELS } from '../../ladder/ladder.js';
import { sharedCause, nodeCrashes, type Check, type LevelOutcome } from '../support/checks.js';

const pivot = (id: string) =>
  `calf: pivot_root("/tmp/calf-test-root-Ab12Cd/containers/${id}/rootfs", "/tmp/calf-test-root-Ab12Cd/containers/${id}/rootfs/.oldroot"): EINVAL (Invalid argument)`;

function check(title: string, status: Check['status'], calfSaid?: string): Check {
  return { level: '00', section: 's', title, status, ...(calfSaid ? { calfSaid } : {}) };
}

function outcome(checks: Check[]): LevelOutcome {
  return { level: LEVELS[0]!, checks };
}

describe('the board’s shared cause', () => {
  it('is the calf error most failing checks share, whatever container id each run had', () => {
    const shared = sharedCause([outcome([
      check('a', 'failed', pivot('0123456789ab')),
      check('b', 'failed', pivot('ba9876543210')),
      check('c', 'failed', 'calf: something else'),
      check('d', 'passed'),
    ])]);
    expect(shared?.checks.map((c) => c.title)).toEqual(['a', 'b']);
    expect(shared?.line).toBe(pivot('0123456789ab'));
  });

  it('is none when the failures have different causes, or only one fails', () => {
    expect(sharedCause([outcome([check('a', 'failed', 'calf: x'), check('b', 'failed', 'calf: y'), check('c', 'failed')])])).toBeUndefined();
    expect(sharedCause([outcome([check('a', 'failed', 'calf: x'), check('b', 'passed')])])).toBeUndefined();
  });
});

describe('the board’s account of Node crashes (issue 22)', () => {
  it('names each crashed calf run and jest process, with the signal and the check', () => {
    const crashed = { ...check('runs echo', 'failed'), crashed: { signal: 'SIGSEGV', command: 'calf run busybox echo hi' } };
    const lost: LevelOutcome = { ...outcome([]), error: 'A jest worker process … signal=SIGSEGV', crashed: { signal: 'SIGSEGV', process: "the jest worker running level 00's checks" } };
    expect(nodeCrashes([outcome([crashed, check('other', 'failed', 'calf: x'), check('fine', 'passed')]), lost])).toEqual([
      'calf run busybox echo hi was killed by SIGSEGV (level 00: runs echo)',
      "the jest worker running level 00's checks was killed by SIGSEGV",
    ]);
  });

  it('is empty when nothing crashed, failures or not', () => {
    expect(nodeCrashes([outcome([check('a', 'failed', 'calf: x'), check('b', 'passed')])])).toEqual([]);
  });
});
