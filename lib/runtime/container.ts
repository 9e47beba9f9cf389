/**
 * Containers on disk. Layout: `<calf root>/containers/<short id>/`, holding `state.json` (the
 * state record: lib/runtime/state.ts, with the teardown list), `config.json` (the config the
 * init stage got, in the OCI runtime-spec's names) and `rootfs/`: an OCI bundle, plus state.
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { calfRoot } from '../core/root.js';
import { mountsUnder, readMountInfo, unmountUnder } from '../core/mountinfo.js';
import type { LeftoverKind } from '../core/leftovers.js';
import { CalfError } from '../core/errors.js';
import { alive, processRef, type ProcessRef } from '../core/process.js';
import { removeTree } from '../core/tree.js';
import { writeJson } from '../core/record.js';
import { conditionOf, inCharge, readState, takeCharge, updateState, writeState, type ContainerState } from './state.js';
import { describeFailure, momentOf, runTeardown, teardownOf, type Teardown } from './teardown.js';

/** A container's identity, its directories on the host, and its teardown list. */
export interface Container {
  /** 64 hex digits, like Docker's; the directory uses the first 12 */
  id: string;
  /** `<calf root>/containers/<short id>` */
  dir: string;
  /** the directory that becomes the container's `/` */
  rootfs: string;
  /** what to undo when it ends: `container.teardown.add('removeCgroup', id)` */
  teardown: Teardown;
}

/** Where container directories live. */
export function containersDir(root = calfRoot()): string {
  return path.join(root, 'containers');
}

/**
 * Make a new container: its directory with an empty `rootfs/` and its state record, owned by
 * this process, whose teardown list lib runs when this process exits (however it exits: an
 * error, a signal calf dies of). The directory is made as `.new-<pid>-<id>` and renamed once
 * the record is in it: a `calf cleanup` running meanwhile never sees one without its owner.
 */
export function createContainer(image?: { name: string; id: string }, root = calfRoot()): Container {
  const id = randomBytes(32).toString('hex');
  const dir = path.join(containersDir(root), id.slice(0, 12));
  const temp = path.join(containersDir(root), `.new-${process.pid}-${id.slice(0, 12)}`);
  try {
    fs.mkdirSync(path.join(temp, 'rootfs'), { recursive: true, mode: 0o755 });
    // the record first, then the name: a concurrent cleanup never sees a container without its owner
    writeState(temp, {
      id, name: null, image: image ? { name: image.name, id: image.id } : null, owner: processRef()!, process: null,
      status: 'created', created: new Date().toISOString(), started: null, finished: null, exitCode: null, teardown: [],
    });
    fs.renameSync(temp, dir);
  } catch (err) {
    // Half made (a full disk takes the record, or rootfs/): no exit handler knows it yet.
    fs.rmSync(temp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'EACCES' || code === 'EPERM') && process.getuid?.() !== 0) {
      throw new CalfError(`needs root (namespaces, mounts, chroot): run calf with sudo, or as root (${code}: cannot create ${dir})`, { cause: err });
    }
    throw new CalfError(`cannot create the container directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  process.on('exit', () => tearDown(dir)); // sync, so it runs however calf exits
  return { id, dir, rootfs: path.join(dir, 'rootfs'), teardown: teardownOf(dir) };
}

/**
 * The container in `dir`, made earlier by another calf process, with this process now in charge
 * of it (a monitor, level 15). As this process exits still in charge (it failed), it ends what
 * runs of the container, and removes it as `calf run` would have, or with `keep` (a `calf start`)
 * runs only the stop moment of its teardown list and leaves it stopped, in charge of nobody.
 * @throws CalfError when `dir` holds no container record, or a dead one (exit 1)
 */
export function takeOver(dir: string, { keep = false } = {}): Container & { state: ContainerState } {
  const found = readState(dir);
  if (!found) throw new CalfError(`no container in ${dir}`);
  // Docker's words: its removal failed halfway (lib/runtime/teardown.ts), only rm or cleanup finish it
  if (found.dead) throw new CalfError(`container ${found.id.slice(0, 12)} is marked for removal and cannot be started`, { exitCode: 1 });
  takeCharge(dir);
  process.on('exit', () => tearDown(dir, keep ? 'stopped' : 'removed'));
  const state = readState(dir)!;
  return { id: state.id, dir, rootfs: path.join(dir, 'rootfs'), teardown: teardownOf(dir), state };
}

/** The container in `dir`, as it is (no change of who is in charge), with its record. */
export function openContainer(dir: string): Container & { state: ContainerState } {
  const state = readState(dir);
  if (!state) throw new CalfError(`no container in ${dir}`);
  return { id: state.id, dir, rootfs: path.join(dir, 'rootfs'), teardown: teardownOf(dir), state };
}

/**
 * The exit path: unless this process handed the container over (to a monitor) or let go of it
 * (stopped, kept: level 15), end what still runs of it and run its teardown list, all of it or
 * `until` its stop moment; what failed is one line each on stderr, and stays for `calf cleanup`.
 */
function tearDown(dir: string, until: 'stopped' | 'removed' = 'removed'): void {
  const state = readState(dir);
  if (!inCharge(state)) return;
  if (state!.status === 'running') killContainer(dir, state!.process);
  for (const failure of runTeardown(dir, { until })) {
    try {
      fs.writeSync(2, `calf: ${describeFailure(failure)}; \`calf cleanup\` removes what is left\n`);
    } catch {
      // stderr is closed: nothing left to tell anyone
    }
  }
  if (until === 'stopped') updateState(dir, { status: 'stopped', owner: null, endpoint: null });
}

/**
 * Write the config the init stage gets into the container's directory as `config.json`, as an
 * OCI bundle holds it (level 17 runs bundles like this one; `calf inspect` shows it).
 */
export function saveConfig(container: Pick<Container, 'dir'>, config: object): void {
  writeJson(path.join(container.dir, 'config.json'), config);
}

/**
 * The host pids of the processes running in the container whose directory is `dir`, found the
 * way the host sees them: a process whose root directory is inside `dir` (chroot, levels 01–02),
 * or whose own mount table has a `/` made from `dir` (pivot_root, overlay: level 03 on).
 */
export function containerProcesses(dir: string): number[] {
  const marker = `/containers/${path.basename(dir)}/`;
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    if (pid === process.pid) return false;
    try {
      if (`${fs.readlinkSync(`/proc/${pid}/root`)}/`.startsWith(`${dir}/`)) return true;
      const rootMount = readMountInfo(pid).find((m) => m.mountPoint === '/');
      return rootMount !== undefined && [rootMount.root, rootMount.source, ...rootMount.superOptions].some((f) => `${f}/`.includes(marker));
    } catch {
      return false; // gone meanwhile, or a kernel thread
    }
  });
}

/**
 * End a container that outlived its calf process (a SIGKILL of calf leaves it running): SIGKILL
 * to its first process (when the record names it and it is still that process) and to every
 * process the host sees in it; from level 06 on, its PID 1's death ends all the rest too.
 */
export function killContainer(dir: string, first?: ProcessRef | null): void {
  const pids = new Set(containerProcesses(dir));
  if (first && alive(first.pid, first.startTime)) pids.add(first.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // it ended meanwhile
    }
  }
}

/**
 * The container `ref` names, found as Docker finds one: by its full id, by its name, or by a
 * prefix of its id that no other container's id has.
 * @throws CalfError, exit 1 (Docker's for its other commands): no such container, or a prefix
 *   several ids share
 */
export function findContainer(ref: string, root = calfRoot()): { dir: string; state: ContainerState } {
  const all = listContainerDirs(root).filter((c): c is { dir: string; state: ContainerState } => c.state !== undefined);
  const exact = all.find((c) => c.state.id === ref) ?? all.find((c) => c.state.name !== null && c.state.name === ref.replace(/^\//, ''));
  if (exact) return exact;
  const prefixed = /^[0-9a-f]+$/.test(ref) ? all.filter((c) => c.state.id.startsWith(ref)) : [];
  if (prefixed.length > 1) throw new CalfError(`multiple containers found with provided prefix: ${ref}`, { exitCode: 1 });
  if (prefixed.length === 1) return prefixed[0]!;
  throw new CalfError(`no such container: ${ref}`, { exitCode: 1 });
}

/** A container directory, with its record when it has a readable one. */
export interface ContainerDir {
  dir: string;
  state?: ContainerState;
  /** the calf process in charge: from the record, or from a `.new-<pid>-` directory's name */
  owner?: ProcessRef | { pid: number; startTime?: undefined };
}

/** The container directories that exist under `root`. */
export function listContainerDirs(root = calfRoot()): ContainerDir[] {
  let names: string[];
  try {
    names = fs.readdirSync(containersDir(root));
  } catch {
    return [];
  }
  return names.map((name) => {
    const dir = path.join(containersDir(root), name);
    const unfinished = /^\.new-(\d+)-/.exec(name); // a createContainer() in progress, or killed in it
    if (unfinished) return { dir, owner: { pid: Number(unfinished[1]) } };
    const state = readState(dir);
    return state ? { dir, state, ...(state.owner ? { owner: state.owner } : {}) } : { dir };
  });
}

/**
 * `calf cleanup`: a container whose calf is gone. Its processes are killed, then its teardown
 * list runs, the same one its calf would have run, and then its directory goes, whatever the list
 * held (a directory without a readable record: a calf killed inside createContainer).
 *
 * A stopped container that nobody is in charge of is not a leftover (level 15): it is kept, its
 * exit recorded, until `calf rm`, as Docker keeps it (but a `--rm` one, or a dead one: its removal
 * failed halfway, lib/runtime/teardown.ts). Only the steps of its stop moment that failed
 * (a cgroup that stayed busy) are. A container whose monitor died without recording an exit (killed
 * with -9, a reboot) is: nobody else would ever tear it down.
 */
export const containerLeftovers: LeftoverKind = {
  kind: 'container',
  find: (root) => listContainerDirs(root).flatMap(({ dir, state, owner }) => {
    const id = state ? state.id.slice(0, 12) : path.basename(dir);
    // A `--rm` container is never kept (Docker's daemon removes one it finds stopped on restart):
    // stopped with its calf gone, it is one killed between its end and its removal, a leftover.
    if (state && conditionOf(state) === 'exited' && !state.options?.rm) {
      const pending = state.teardown.filter((s) => momentOf(s.step) === 'stopped');
      if (!pending.length) return [];
      return [{
        what: `stopped container ${id}'s ${pending.map((s) => s.step).join(', ')} (${dir})`,
        remove: () => {
          const failed = runTeardown(dir, { until: 'stopped' });
          if (failed.length) throw new CalfError(failed.map(describeFailure).join('; '));
        },
      }];
    }
    return [{
      what: `container ${id} (${dir})`,
      ...(owner ? { owner: owner.pid } : {}),
      ...(owner?.startTime === undefined ? {} : { ownerStartTime: owner.startTime }),
      remove: () => removeContainer(dir, state),
    }];
  }),
};

/**
 * Remove a container whatever became of it: its processes killed, its whole teardown list run,
 * its directory gone (`calf rm -f` of one whose monitor is gone, and `calf cleanup`).
 * @throws CalfError naming the steps that failed (they stay in the record)
 */
export function removeContainer(dir: string, state = readState(dir)): void {
  killContainer(dir, state?.process);
  const failed = state ? runTeardown(dir) : [];
  if (failed.length) throw new CalfError(failed.map(describeFailure).join('; '));
  removeTree(dir); // gone already when its list had the step; a list without it (a level's TODO) leaves it
}

/**
 * Mounts under containers/ that outlived their directory's removal (a mount propagated back from
 * a container that forgot MS_PRIVATE shows up here). Not containers/ itself, which may be a mount
 * of its own (the tests' store makes it one).
 */
export const mountLeftovers: LeftoverKind = {
  kind: 'mount',
  find: (root) => {
    const containers = containersDir(root);
    const owners = new Map(listContainerDirs(root).map(({ dir, owner }) => [dir, owner]));
    return [...new Set(mountsUnder(containers))].filter((point) => point !== containers).map((point) => {
      const owner = owners.get(path.join(containers, path.relative(containers, point).split(path.sep)[0]!));
      return {
        what: `mount ${point}`,
        ...(owner === undefined ? {} : { owner: owner.pid }),
        ...(owner?.startTime === undefined ? {} : { ownerStartTime: owner.startTime }),
        remove: () => {
          const { left, errors } = unmountUnder(point);
          if (left.includes(point)) throw new CalfError(`still mounted${errors.has(point) ? `: ${errors.get(point)}` : ''}`);
        },
      };
    });
  },
};
