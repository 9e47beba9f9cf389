/**
 * Containers that outlive `calf run` (level 15), as lib sees their records: the teardown list's
 * two moments, what a record and the processes it names make of a container (its condition),
 * which containers `calf cleanup` takes for leftovers, a removal that fails halfway (Docker's Dead), names, and
 * the json-file log's rotation.
 * Records are written by hand in a temp calf root; no container runs.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { processRef } from '../../lib/core/process.js';
import { writeState, readState, conditionOf, type ContainerState } from '../../lib/runtime/state.js';
import { runTeardown, teardownOf } from '../../lib/runtime/teardown.js';
import { containerLeftovers, findContainer, takeOver } from '../../lib/runtime/container.js';
import { psRows, inspectContainer } from '../../lib/runtime/containers.js';
import { nameContainer, holderOf } from '../../lib/runtime/names.js';
import { openLog, readLog, parseRecords, logFiles } from '../../lib/runtime/log.js';

let root: string;
let previous: string | undefined;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-containers-'));
  previous = process.env.CALF_ROOT;
  process.env.CALF_ROOT = root; // the steps' default root (names, cgroup records)
});
afterAll(() => {
  if (previous === undefined) delete process.env.CALF_ROOT;
  else process.env.CALF_ROOT = previous;
  fs.rmSync(root, { recursive: true, force: true });
});

/** A pid that belongs to no process any more, with the start time it had. */
function dead(): { pid: number; startTime: number } {
  return { pid: spawnSync('true').pid!, startTime: 1 };
}

/** A container record of our own, in `root`; `change` overrides fields. */
function container(change: Partial<ContainerState> = {}): { id: string; dir: string } {
  const id = randomBytes(32).toString('hex');
  const dir = path.join(root, 'containers', id.slice(0, 12));
  fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
  writeState(dir, {
    id, name: null, image: null, owner: null, process: null, status: 'stopped', created: new Date().toISOString(),
    started: null, finished: null, exitCode: 0, teardown: [], ...change,
  });
  return { id, dir };
}

describe('the teardown list’s two moments', () => {
  it('runs only the stop moment with until: stopped, keeps the rest in order, and runs it later', () => {
    const c = container();
    const teardown = teardownOf(c.dir);
    teardown.add('removeContainerDir', c.dir);
    teardown.add('releaseName', 'n', c.id);
    teardown.add('removeCgroup', c.id); // no cgroup record in this root: already gone, success
    expect(runTeardown(c.dir, { until: 'stopped' })).toEqual([]);
    expect(readState(c.dir)!.teardown.map((s) => s.step)).toEqual(['removeContainerDir', 'releaseName']);
    expect(fs.existsSync(c.dir)).toBe(true);
    expect(runTeardown(c.dir)).toEqual([]);
    expect(fs.existsSync(c.dir)).toBe(false);
  });
});

describe('a container’s condition, and calf cleanup', () => {
  const me = processRef()!;
  it('tells running, orphaned (no monitor), lost (nothing left, no exit) and exited (kept) apart', () => {
    const cases = {
      running: container({ status: 'running', owner: me, process: me }),
      orphaned: container({ status: 'running', owner: dead(), process: me }),
      lost: container({ status: 'running', owner: dead(), process: dead() }),
      exited: container({ status: 'stopped', owner: null, exitCode: 137 }),
      stopping: container({ status: 'stopped', owner: me, exitCode: 0 }),
    };
    expect(Object.fromEntries(Object.entries(cases).map(([k, c]) => [k, conditionOf(readState(c.dir)!)])))
      .toEqual({ running: 'running', orphaned: 'orphaned', lost: 'lost', exited: 'exited', stopping: 'running' });
    const found = containerLeftovers.find(root);
    const named = (c: { id: string }) => found.filter((f) => f.what.includes(c.id.slice(0, 12)));
    // a lost one is a leftover; an exited one with only its removal steps is not
    expect({ lost: named(cases.lost).length, exited: named(cases.exited).length }).toEqual({ lost: 1, exited: 0 });
    for (const c of Object.values(cases)) fs.rmSync(c.dir, { recursive: true });
  });

  it('takes only the failed stop moment of a stopped container for a leftover, and keeps the container', () => {
    const c = container({ status: 'stopped', owner: null, exitCode: 0 });
    teardownOf(c.dir).add('removeContainerDir', c.dir);
    teardownOf(c.dir).add('removeCgroup', c.id);
    const [leftover, ...more] = containerLeftovers.find(root).filter((f) => f.what.includes(c.id.slice(0, 12)));
    expect({ what: leftover?.what, more }).toEqual({ what: `stopped container ${c.id.slice(0, 12)}'s removeCgroup (${c.dir})`, more: [] });
    leftover!.remove();
    expect({ kept: fs.existsSync(c.dir), steps: readState(c.dir)!.teardown.map((s) => s.step) }).toEqual({ kept: true, steps: ['removeContainerDir'] });
    fs.rmSync(c.dir, { recursive: true });
  });
});

describe('a removal that fails halfway', () => {
  it('brings the record back dead, with the failed step and the directory’s removal, and calf cleanup finishes it', () => {
    const c = container({ status: 'stopped', owner: null, exitCode: 0 });
    const teardown = teardownOf(c.dir);
    teardown.add('removeContainerDir', c.dir);
    // runs first (last registered) and fails: `ip link delete` refuses a name with a space
    const endpoint = { network: 'n', bridge: 'b', veth: 'veth bad', address: '10.0.0.2', prefix: 24, gateway: '10.0.0.1' };
    teardown.add('removeEndpoint', endpoint);
    const failed = runTeardown(c.dir);
    expect(failed.map((f) => f.step.step)).toEqual(['removeEndpoint']);
    const record = readState(c.dir);
    expect({ dead: record?.dead, steps: record?.teardown.map((s) => s.step), files: fs.readdirSync(c.dir) })
      .toEqual({ dead: true, steps: ['removeContainerDir', 'removeEndpoint'], files: ['state.json'] });
    // Docker's Dead: shown by ps -a, not ps; never started again
    const row = (all: boolean) => psRows({ all, root }).find((r) => r[0] === c.id.slice(0, 12));
    const state = inspectContainer({ dir: c.dir, state: record! }).State as Record<string, unknown>;
    expect({ condition: conditionOf(record!), all: row(true)?.[4], running: row(false), status: state.Status, dead: state.Dead })
      .toEqual({ condition: 'dead', all: 'Dead', running: undefined, status: 'dead', dead: true });
    expect(() => takeOver(c.dir, { keep: true })).toThrow(`container ${c.id.slice(0, 12)} is marked for removal and cannot be started`);
    expect(readState(c.dir)!.owner).toBeNull(); // refused before taking charge
    // not a stopped container to keep: a leftover, whose removal takes the directory too once the step succeeds
    writeState(c.dir, { ...record!, teardown: record!.teardown.map((s) => (s.step === 'removeEndpoint' ? { ...s, args: [{ ...endpoint, veth: 'vethcalfgone0' }] } : s)) });
    const found = containerLeftovers.find(root).filter((f) => f.what.includes(c.id.slice(0, 12)));
    expect(found.map((f) => f.what)).toEqual([`container ${c.id.slice(0, 12)} (${c.dir})`]);
    found[0]!.remove();
    expect(fs.existsSync(c.dir)).toBe(false);
  });
});

describe('names and ids', () => {
  it('gives a name to one container only, frees it with its removal step, and finds containers by name and id prefix', () => {
    const a = container();
    const b = container();
    const name = `web-${randomBytes(3).toString('hex')}`;
    expect(nameContainer({ ...a, teardown: teardownOf(a.dir) }, name)).toBe(name);
    expect(() => nameContainer({ ...b, teardown: teardownOf(b.dir) }, name)).toThrow(`the container name "/${name}" is already in use`);
    expect(findContainer(name).state.id).toBe(a.id);
    expect(findContainer(a.id.slice(0, 10)).dir).toBe(a.dir);
    expect(() => findContainer(`nope-${name}`)).toThrow(`no such container: nope-${name}`);
    // b is its own name now: a made-up one
    expect(nameContainer({ ...b, teardown: teardownOf(b.dir) })).toMatch(/^[a-z]+_[a-z]+/);
    runTeardown(a.dir);
    expect(holderOf(name)).toBeUndefined();
    runTeardown(b.dir);
  });
});

describe('the json-file log', () => {
  it('rotates past max-size, keeps max-file files, and reads back whole records only', () => {
    const c = container();
    const log = openLog(c.dir, { maxSize: 200, maxFile: 2 });
    for (let i = 0; i < 20; i++) log.append(`${JSON.stringify({ log: `line ${i}\n`, stream: i % 2 ? 'stderr' : 'stdout', time: new Date().toISOString() })}\n`);
    log.close();
    const files = logFiles(c.dir).map((f) => path.basename(f));
    const records = readLog(c.dir);
    expect({ files, sizes: logFiles(c.dir).every((f) => fs.statSync(f).size <= 200), last: records.at(-1)?.log, first: records[0]?.log === 'line 0\n' })
      .toEqual({ files: ['container.log.1', 'container.log'], sizes: true, last: 'line 19\n', first: false });
    expect(parseRecords('{"log":"a\\n","stream":"stdout","time":"t"}\n{"log":"b')).toEqual([{ log: 'a\n', stream: 'stdout', time: 't' }]);
    fs.rmSync(c.dir, { recursive: true });
  });
});
