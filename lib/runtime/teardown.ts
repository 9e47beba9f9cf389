/**
 * A container's teardown list: what calf made for it (its directory, its writable layer, its
 * endpoint, its cgroup…), recorded as it is made, and undone last-in-first-out when the
 * container is removed. A level registers a step in one line next to the thing it undoes:
 *
 * ```ts
 * container.teardown.add('removeEndpoint', endpoint); // runs removeEndpoint(endpoint) at the end
 * ```
 *
 * The steps live in the container's state record (lib/runtime/state.ts) as plain data, a
 * function's name and its arguments, so any calf process can run them: the `calf run` that made
 * the container as it exits, and `calf cleanup` after that calf was killed. Both call
 * {@link runTeardown}, so a cleanup does exactly what the run would have done.
 *
 * Every step is idempotent ("already gone" is success) and isolated: one that fails is reported
 * and kept in the record for the next cleanup, and the others still run. Steps are synchronous
 * (they run in Node's 'exit' handler) and bound their own waiting (a cgroup whose processes are
 * still exiting: 5 s).
 *
 * Two moments (level 15). A container has what it holds while it runs (its cgroup, its endpoint:
 * an address and a veth) and what it *is* (its directory: rootfs, writable layer, config, log;
 * its name). Until level 14 both go at once, when `calf run` exits. From level 15 on a stopped
 * container is kept, as Docker keeps it: its monitor runs the list `until: 'stopped'` (only the
 * steps whose moment is `stopped`, and leaves the others in the record), `calf rm` runs the rest.
 * Each step's moment is part of its definition below, not of the line that registers it, so a
 * level's `teardown.add(…)` lines stay as they were.
 * @module
 */
import fs from 'node:fs';
import { faultPoint } from '../core/faults.js';
import { messageOf } from '../core/errors.js';
import { removeTree } from '../core/tree.js';
import { removeCgroupOf } from '../cgroup/cgroup.js';
import { removeEndpoint, type Endpoint } from '../network/networks.js';
import { removeAnonymousVolume } from '../storage/volumes.js';
import { readState, stateFile, writeState } from './state.js';
import { releaseName } from './names.js';

/** When a step runs: once the container has stopped, or only once it is removed (`calf rm`). */
export type Moment = 'stopped' | 'removed';

/** Every step a teardown list can hold, by name: `calf cleanup` knows them all, whatever a level imports. */
export const STEPS = {
  /** the container's directory (its rootfs, a driver's upper and work, its log), and the mounts left under it */
  removeContainerDir: { at: 'removed', run: (dir: string) => removeTree(dir) },
  /** its name, free for another container (level 15) */
  releaseName: { at: 'removed', run: (name: string, id: string) => releaseName(name, id) },
  /** an endpoint: the veth, if still there, and the address lease (level 08) */
  removeEndpoint: { at: 'stopped', run: (endpoint: Endpoint) => removeEndpoint(endpoint) },
  /** a cgroup: what is left in it is killed, its directories removed (level 09) */
  removeCgroup: { at: 'stopped', run: (id: string) => removeCgroupOf(id) },
  /** an anonymous volume (`-v /path`), which goes with its container, not when it stops; a named one never does (level 14) */
  removeAnonymousVolume: { at: 'removed', run: (name: string) => removeAnonymousVolume(name) },
} satisfies Record<string, { at: Moment; run: (...args: never[]) => void }>;

/** A step's name: one of the functions above. */
export type StepName = keyof typeof STEPS;

/** The moment step `name` runs at. */
export function momentOf(name: string): Moment | undefined {
  return (STEPS as Record<string, { at: Moment }>)[name]?.at;
}

/** One step of a teardown list, as the record keeps it: the function and its arguments. */
export interface TeardownStep {
  step: StepName;
  args: unknown[];
}

/** What a level uses to register steps on its container's list. */
export interface Teardown {
  /** Register `step(...args)` to run when the container is torn down. The arguments must be plain data (JSON). */
  add<K extends StepName>(step: K, ...args: Parameters<(typeof STEPS)[K]['run']>): void;
}

/**
 * Steps this process registered but could not record (a full disk refused the record): its own
 * exit still runs them, as it runs the recorded ones. Only `calf cleanup` after a kill misses
 * them, and it removes the container's directory in any case.
 */
const unrecorded = new Map<string, TeardownStep[]>();

/** The teardown list of the container whose directory is `dir` (its state record must exist). */
export function teardownOf(dir: string): Teardown {
  return {
    add(step, ...args) {
      const state = readState(dir);
      if (!state) throw new Error(`${stateFile(dir)}: no state record to add the teardown step ${step} to`);
      try {
        writeState(dir, { ...state, teardown: [...state.teardown, { step, args }] });
      } catch (err) {
        unrecorded.set(dir, [...(unrecorded.get(dir) ?? []), { step, args }]);
        throw err;
      }
    },
  };
}

/** Write the record back, if there is still a directory and room for it: the steps are idempotent, so a stale list is harmless. */
function rewrite(dir: string, state: NonNullable<ReturnType<typeof readState>>, teardown: TeardownStep[]): void {
  try {
    if (fs.existsSync(dir)) writeState(dir, { ...state, teardown });
  } catch {
    // a full disk: the next run of the list finds steps already done, which succeed
  }
}

/** A step that failed, and why. */
export interface TeardownFailure {
  step: TeardownStep;
  error: string;
}

/**
 * Run the teardown list of the container directory `dir`, last step first: every step (the
 * container is removed), or with `until: 'stopped'` only those whose moment is `stopped` (the
 * container is kept, stopped: the others stay in the list for `calf rm`). Each step that
 * succeeds leaves the record; one that fails stays in it (the record is written back even when
 * an earlier-registered step removed the directory), so `calf cleanup` can try it again.
 * @returns the steps that failed; empty when everything asked for is gone
 */
export function runTeardown(dir: string, { until = 'removed' }: { until?: Moment } = {}): TeardownFailure[] {
  const state = readState(dir);
  if (!state) return [];
  const pending = [...state.teardown, ...(unrecorded.get(dir) ?? [])];
  unrecorded.delete(dir);
  const kept: TeardownStep[] = [];
  const failed: TeardownFailure[] = [];
  while (pending.length) {
    const step = pending.pop()!;
    if (until === 'stopped' && momentOf(step.step) !== 'stopped') {
      kept.unshift(step);
      continue;
    }
    try {
      (STEPS[step.step].run as (...args: unknown[]) => void)(...step.args);
    } catch (err) {
      failed.unshift({ step, error: messageOf(err) });
    }
    rewrite(dir, readState(dir) ?? state, [...pending, ...kept, ...failed.map((f) => f.step)]); // the record as it is now: the monitor or calf rm may have written it meanwhile
    faultPoint('during-teardown');
  }
  if (failed.length && !fs.existsSync(stateFile(dir))) {
    // The directory went and a step failed: the record comes back to keep that step for `calf
    // cleanup`, and the directory's own removal with it (it is back); dead, so that nothing takes
    // it for a stopped container to keep (an endpoint's failed step had that happen: the
    // container's directory stayed for good, record only).
    fs.mkdirSync(dir, { recursive: true });
    rewrite(dir, { ...state, dead: true }, [{ step: 'removeContainerDir', args: [dir] }, ...failed.map((f) => f.step)]);
  }
  return failed;
}

/** One line for a failed step: `removeEndpoint 10.88.0.2: ip link delete …: …`. */
export function describeFailure({ step, error }: TeardownFailure): string {
  const what = step.args.map((a) => (typeof a === 'object' && a !== null ? (a as { address?: string }).address ?? '…' : String(a))).join(' ');
  return `${step.step} ${what}: ${error}`;
}
