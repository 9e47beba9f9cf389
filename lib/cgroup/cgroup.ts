/**
 * A container's cgroup, on cgroup v1 and on cgroup v2, behind one small interface: create it,
 * write its files ({@link Cgroup.set}: both versions' spellings side by side, so a level shows
 * both), read one, remove it. The version is chosen once, when it is created (runc picks its fs
 * or fs2 manager once; crun's backends are four function pointers).
 *
 * Where it goes, as Docker's cgroupfs driver: `calf/<id>` at the root of each v1 hierarchy
 * (`/sys/fs/cgroup/memory/calf/<id>`, `/sys/fs/cgroup/cpu/calf/<id>`…) or of the v2 tree
 * (`/sys/fs/cgroup/calf/<id>`), never below the cgroup calf itself runs in, which another manager
 * (systemd, a CI runner) made. `--cgroup-parent` names another parent. calf writes only in the
 * directories it made, plus, on v2, a missing controller in the root's `cgroup.subtree_control`
 * (a bare VM without systemd enables none). v2's "no internal processes" rule: a cgroup holding
 * processes cannot hand controllers to its children, so `calf/` itself never holds one.
 *
 * Each cgroup calf makes is recorded under `<calf root>/cgroups/` with its owner's pid, so
 * `calf cleanup` can remove the ones a killed calf left (registered below as a leftover kind).
 * @see https://docs.kernel.org/admin-guide/cgroup-v2.html
 * @see https://docs.kernel.org/admin-guide/cgroup-v1/cgroups.html
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { calfRoot } from '../core/root.js';
import { CalfError } from '../core/errors.js';
import type { LeftoverKind } from '../core/leftovers.js';
import { readMountInfo } from '../core/mountinfo.js';
import { processStartTime, sleep } from '../core/process.js';
import { readJson, writeJson, TEMP_SUFFIX } from '../core/record.js';
import { faultPoint } from '../core/faults.js';

/** Where the v2 tree is mounted, or, on v1, the folder holding one mount per hierarchy. */
export const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * The controllers a container's cgroup uses (cpuacct: v1's CPU usage counter, which v2 keeps in
 * cpu.stat; devices: v1's device policy, level 12, which v2 does with a BPF program instead).
 */
const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids', 'devices'];
const V2_CONTROLLERS = ['cpu', 'memory', 'pids'];

/**
 * A cgroup file's value for each version: `{ v1: { 'cpu.shares': 512 }, v2: { 'cpu.weight': 20 } }`.
 * A list is written one value at a time (v1's `devices.allow` takes one rule per write).
 */
export interface CgroupFiles {
  v1: Record<string, string | number | readonly string[]>;
  v2: Record<string, string | number | readonly string[]>;
}

/** A cgroup calf made for one container. */
export interface Cgroup {
  readonly version: 'v1' | 'v2';
  /** its path from the root of the tree (v2) or of each hierarchy (v1): `/calf/<id>` */
  readonly path: string;
  /** its directories: one per v1 hierarchy, or one */
  readonly dirs: readonly string[];
  /**
   * Write files, in the order given, from this version's half of `files` (the other half is for
   * the other version). On v1 a file goes to the hierarchy its prefix names (`memory.…` to
   * memory's), and `cgroup.procs` to every one of them: a v1 process is in one cgroup per hierarchy.
   */
  set(files: CgroupFiles): void;
  /** The text of one file: this version's name of it (on v1, from the hierarchy its prefix names). */
  read(file: { v1: string; v2: string }): string;
  /** End every process left in it, remove its directories and the parents calf made. Idempotent. */
  remove(): void;
}

/** Which cgroup version this machine runs: v2 when /sys/fs/cgroup is the unified tree itself. */
export function cgroupVersion(): 'v1' | 'v2' {
  // A hybrid host (v1 hierarchies plus a cgroup2 mount at /sys/fs/cgroup/unified, as this one)
  // counts as v1: its unified tree holds no controllers.
  return fs.existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers')) ? 'v2' : 'v1';
}

/** Each v1 controller's hierarchy: where it is mounted (cpu and cpuacct may share one). */
function v1Hierarchies(): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of readMountInfo()) {
    if (m.fsType !== 'cgroup') continue;
    for (const option of m.superOptions) if (V1_CONTROLLERS.includes(option)) found.set(option, m.mountPoint);
  }
  return found;
}

/**
 * Make the cgroup `<parent>/<id>` (parent: `calf`, or `--cgroup-parent`'s), record it for
 * `calf cleanup`, and return it. Nothing is in it yet and nothing is limited.
 */
export function createCgroup(parent: string, id: string): Cgroup {
  const cgPath = path.posix.join('/', parent, id);
  if (parent.split('/').includes('..') || !/^[\w./@:-]+$/.test(cgPath)) throw new CalfError(`invalid cgroup parent ${JSON.stringify(parent)}`);
  const version = cgroupVersion();
  let roots: string[];
  if (version === 'v2') {
    roots = [CGROUP_ROOT];
  } else {
    const hierarchies = v1Hierarchies();
    const missing = V1_CONTROLLERS.filter((c) => !hierarchies.has(c));
    if (missing.length) throw new CalfError(`cgroup v1: no hierarchy for ${missing.join(', ')} is mounted (see /proc/self/mountinfo)`);
    roots = [...new Set(hierarchies.values())];
  }
  faultPoint('before-cgroup');
  const record: CgroupRecord = {
    owner: process.pid, ownerStartTime: processStartTime(process.pid), version, path: cgPath, dirs: roots.map((r) => path.join(r, cgPath)), made: [],
    controllers: version === 'v1' ? Object.fromEntries([...v1Hierarchies()].map(([c, r]) => [c, path.join(r, cgPath)])) : {},
  };
  writeRecord(id, record); // first: a calf killed halfway through leaves nothing cleanup can't find
  const cgroup = cgroupOf(id, record);
  try {
    makeDirs(record, roots, cgPath);
  } catch (err) {
    cgroup.remove(); // what was made of it: the caller gets no cgroup to remove
    throw err;
  }
  return cgroup;
}

/** mkdir the cgroup in each root, parents first, noting each directory this call made. */
function makeDirs(record: CgroupRecord, roots: string[], cgPath: string): void {
  const id = path.basename(cgPath);
  for (const root of roots) {
    for (let attempt = 1; ; attempt++) {
      try {
        let dir = root;
        for (const part of cgPath.split('/').filter(Boolean)) {
          dir = path.join(dir, part);
          if (record.version === 'v2') delegate(path.dirname(dir), root, record.made);
          if (mkdirOwn(dir)) record.made.push(dir);
          writeRecord(id, record);
        }
        break;
      } catch (err) {
        // ENOENT: the last container in `calf/` removed it between our two mkdirs. Once more.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 5) {
          throw new CalfError(`cannot create cgroup ${path.join(root, cgPath)}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
  }
}

/** mkdir, true when this call made it (false: it was there, e.g. `calf/` of another container). */
function mkdirOwn(dir: string): boolean {
  try {
    fs.mkdirSync(dir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * v2: make sure `dir` hands the controllers down to its children (`cgroup.subtree_control`).
 * calf enables them only in the root, in `calf/` and in the parents it made (`made`); any other
 * cgroup is another manager's, and one that does not delegate them is an error.
 */
function delegate(dir: string, root: string, made: readonly string[]): void {
  const enabled = fs.readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
  const missing = V2_CONTROLLERS.filter((c) => !enabled.includes(c));
  if (!missing.length) return;
  const ours = dir === root || dir === path.join(root, 'calf') || made.includes(dir);
  if (!ours) throw new CalfError(`cgroup ${dir} does not delegate ${missing.join(', ')} to its children (cgroup.subtree_control), and calf does not write in cgroups it did not make`);
  writeFile(path.join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
}

/** Write one cgroup file; the error names the value and the path (youki's style). */
function writeFile(file: string, value: string | number): void {
  try {
    fs.writeFileSync(file, String(value));
  } catch (err) {
    throw new CalfError(`cannot write ${JSON.stringify(String(value))} to ${file}: ${(err as Error).message.replace(/, write$/, '')}`, { cause: err });
  }
}

/** What `<calf root>/cgroups/<id>.json` holds about a cgroup calf made. */
interface CgroupRecord {
  owner: number;
  ownerStartTime?: number | undefined;
  version: 'v1' | 'v2';
  path: string;
  /** the cgroup's own directories (the leaves) */
  dirs: string[];
  /** every directory calf made for it, parents (`calf/`, --cgroup-parent's) first */
  made: string[];
  /** v1: each controller's directory of the cgroup */
  controllers: Record<string, string>;
}

const recordsDir = (root = calfRoot()): string => path.join(root, 'cgroups');

/** Write the record, whole then renamed: a `calf cleanup` running meanwhile never reads half of one. */
function writeRecord(id: string, record: CgroupRecord, root = calfRoot()): void {
  writeJson(path.join(recordsDir(root), `${id}.json`), record);
}

function cgroupOf(id: string, record: CgroupRecord, root = calfRoot()): Cgroup {
  const { version, dirs } = record;
  /** v1: the directory of the hierarchy that holds `file`'s controller. */
  const dirFor = (file: string): string => {
    if (version === 'v2') return dirs[0]!;
    const dir = record.controllers[file.split('.')[0]!];
    if (!dir) throw new CalfError(`cgroup v1: no hierarchy for ${file}`);
    return dir;
  };
  return {
    version,
    path: record.path,
    dirs,
    set(files) {
      for (const [file, value] of Object.entries(files[version])) {
        const targets = version === 'v1' && file.startsWith('cgroup.') ? dirs : [dirFor(file)];
        for (const dir of targets) for (const one of [value].flat()) writeFile(path.join(dir, file), one);
      }
    },
    read(file) {
      return fs.readFileSync(path.join(dirFor(file[version]), file[version]), 'utf8');
    },
    remove() {
      removeCgroup(record);
      fs.rmSync(path.join(recordsDir(root), `${id}.json`), { force: true });
    },
  };
}

/** The pids in a cgroup directory (none when it is gone). */
function procs(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Kill what is left in the cgroup (v2 5.14+: `cgroup.kill`; else SIGKILL to each pid in
 * `cgroup.procs`), rmdir its directories once empty, then the parents calf made, when empty.
 */
function removeCgroup(record: CgroupRecord): void {
  const until = Date.now() + 5000;
  for (const dir of record.dirs) {
    // Never kill in anything but a container's own cgroup (its last component is the id, or calf made it: calf-runtime's engine-named ones): a
    // damaged record must not make `calf cleanup` kill the processes of a cgroup it did not make.
    if (!/\/[0-9a-f]{64}$/.test(dir) && !record.made.includes(dir)) throw new CalfError(`refusing to empty ${dir}: not a container's cgroup`);
    for (;;) {
      const pids = procs(dir);
      if (pids.length) {
        if (record.version === 'v2' && fs.existsSync(path.join(dir, 'cgroup.kill'))) writeFile(path.join(dir, 'cgroup.kill'), 1);
        else for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
      }
      try {
        fs.rmdirSync(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        // EBUSY: killed processes still exiting (a zombie leaves its cgroup only once reaped)
        if (code !== 'EBUSY' || Date.now() > until) throw new CalfError(`cannot remove cgroup ${dir}: ${(err as Error).message}`, { cause: err });
        sleep(20);
      }
    }
  }
  // Parents: the deepest first. Another container may be in `calf/` right now: then rmdir fails
  // with EBUSY or ENOTEMPTY, and that container's calf removes it later. Same for `calf/` made by
  // another calf that has gone: the leftover detector would see it otherwise.
  const calfParents = record.dirs.map((d) => path.join(d.slice(0, -record.path.length), 'calf'));
  const parents = [...record.made.filter((d) => !record.dirs.includes(d)), ...calfParents];
  for (const dir of [...new Set(parents)].sort((a, b) => b.length - a.length)) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // not empty, busy, or gone: all fine
    }
  }
}

/**
 * Remove container `id`'s cgroup, as its record under the calf root describes it: a teardown
 * step. No record, nothing to do: a calf killed before it wrote one made no directory either.
 */
export function removeCgroupOf(id: string, root = calfRoot()): void {
  const record = readJson<CgroupRecord>(path.join(recordsDir(root), `${id}.json`));
  if (record) cgroupOf(id, record, root).remove();
}

/**
 * The directories of container `id`'s cgroup, one per v1 hierarchy or one on v2, as its record
 * under the calf root names them: what a process joins to be in it (`calf exec`). None when calf
 * made no cgroup for it.
 */
export function cgroupDirsOf(id: string, root = calfRoot()): string[] {
  return readJson<CgroupRecord>(path.join(recordsDir(root), `${id}.json`))?.dirs ?? [];
}

/** `calf cleanup`: a cgroup whose record outlived its container's teardown (a step that failed, say). */
export const cgroupLeftovers: LeftoverKind = {
  kind: 'cgroup',
  find: (root) => {
    let names: string[];
    try {
      names = fs.readdirSync(recordsDir(root));
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      const file = path.join(recordsDir(root), name);
      const writing = TEMP_SUFFIX.exec(name); // a record being written, by that calf
      if (writing) return [{ what: `cgroup record ${file}`, owner: Number(writing[1]), remove: () => fs.rmSync(file, { force: true }) }];
      if (!name.endsWith('.json')) return [];
      const record = readJson<CgroupRecord>(file);
      if (!record) return [{ what: `cgroup record ${file}`, remove: () => fs.rmSync(file, { force: true }) }];
      const cgroup = cgroupOf(name.slice(0, -'.json'.length), record, root);
      return [{
        what: `cgroup ${record.path} (${record.version}: ${record.dirs.join(' ')})`,
        owner: record.owner, ...(record.ownerStartTime === undefined ? {} : { ownerStartTime: record.ownerStartTime }),
        remove: () => cgroup.remove(),
      }];
    });
  },
};
