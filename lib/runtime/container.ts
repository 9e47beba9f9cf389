/**
 * Container directories: where a container's root filesystem lives while it runs.
 * Layout: `<calf root>/containers/<id>/rootfs`, plus `calf.pid` naming the calf process that
 * owns it, so `calf cleanup` can tell a crashed run's leftovers from a running container.
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { calfRoot } from './root.js';
import { mountsUnder, unmountUnder } from './mountinfo.js';
import { registerLeftovers } from './leftovers.js';

/** A container's identity and its directories on the host. */
export interface Container {
  /** 64 hex digits, like Docker's; the directory uses the first 12 */
  id: string;
  /** `<calf root>/containers/<short id>` */
  dir: string;
  /** the directory that becomes the container's `/` */
  rootfs: string;
}

/** Where container directories live. */
export function containersDir(root = calfRoot()): string {
  return path.join(root, 'containers');
}

/**
 * Make a new container directory with an empty `rootfs/`, owned by this process. It is made as
 * `.new-<pid>-<id>` and renamed once `calf.pid` is in it: a `calf cleanup` running meanwhile never
 * sees a container directory without its owner (and would otherwise remove it as a dead run's).
 */
export function createContainer(root = calfRoot()): Container {
  const id = randomBytes(32).toString('hex');
  const dir = path.join(containersDir(root), id.slice(0, 12));
  const temp = path.join(containersDir(root), `.new-${process.pid}-${id.slice(0, 12)}`);
  fs.mkdirSync(path.join(temp, 'rootfs'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(temp, 'calf.pid'), `${process.pid}\n`);
  fs.renameSync(temp, dir);
  return { id, dir, rootfs: path.join(dir, 'rootfs') };
}

/**
 * Remove a container directory: first detach anything still mounted below it (only a
 * container whose mounts leaked into the host's namespace has any), then delete the files.
 */
export function removeContainer(container: Pick<Container, 'dir'>): void {
  unmountUnder(container.dir);
  fs.rmSync(container.dir, { recursive: true, force: true });
}

/** The container directories that exist, with the pid of the calf process that made each. */
export function listContainerDirs(root = calfRoot()): { dir: string; owner?: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(containersDir(root));
  } catch {
    return [];
  }
  return names.map((name) => {
    const dir = path.join(containersDir(root), name);
    const unfinished = /^\.new-(\d+)-/.exec(name); // a createContainer() in progress, or killed in it
    if (unfinished) return { dir, owner: Number(unfinished[1]) };
    try {
      return { dir, owner: Number(fs.readFileSync(path.join(dir, 'calf.pid'), 'utf8')) };
    } catch {
      return { dir };
    }
  });
}

registerLeftovers({
  kind: 'container dir',
  find: (root) => listContainerDirs(root).map(({ dir, owner }) => ({
    what: `container dir ${dir}`,
    ...(owner === undefined ? {} : { owner }),
    remove: () => removeContainer({ dir }),
  })),
});

// Mounts under containers/ that outlived their directory's removal (a mount propagated back
// from a container that forgot MS_PRIVATE shows up here). containers/ itself may be a mount the
// admin made (a disk of its own; the test board's shared bind mount): that one is not calf's.
registerLeftovers({
  kind: 'mount',
  find: (root) => mountsUnder(containersDir(root)).filter((point) => point !== containersDir(root)).map((point) => ({
    what: `mount ${point}`,
    remove: () => void unmountUnder(point),
  })),
});
