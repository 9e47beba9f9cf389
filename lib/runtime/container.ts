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
import { CalfError } from './errors.js';

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
  try {
    fs.mkdirSync(path.join(temp, 'rootfs'), { recursive: true, mode: 0o755 });
    // calf.pid first, then the name: a concurrent cleanup never sees a container without its owner
    fs.writeFileSync(path.join(temp, 'calf.pid'), `${process.pid}\n`);
    fs.renameSync(temp, dir);
  } catch (err) {
    // Half made (a full disk takes calf.pid, or rootfs/): nobody's exit handler knows it yet.
    fs.rmSync(temp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'EACCES' || code === 'EPERM') && process.getuid?.() !== 0) {
      throw new CalfError(`needs root (namespaces, mounts, chroot): run calf with sudo, or as root (${code}: cannot create ${dir})`, { cause: err });
    }
    throw new CalfError(`cannot create the container directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  return { id, dir, rootfs: path.join(dir, 'rootfs') };
}

/**
 * Remove a container directory: first detach anything still mounted below it (only a
 * container whose mounts leaked into the host's namespace has any), then delete the files.
 * Files are deleted only once no mount is left below: deleting recursively through a mount
 * would delete whatever it shows (a bind-mounted host directory, say).
 * @throws CalfError, one line naming what is left, when a mount can't be detached or a file removed
 */
export function removeContainerDir(dir: string): void {
  const { left, errors } = unmountUnder(dir);
  if (left.length) {
    const why = [...errors.values()][0];
    throw new CalfError(`could not remove ${dir}: ${left.length} mount${left.length > 1 ? 's' : ''} left under it (${left[0]}${left.length > 1 ? ', …' : ''})${why ? `: ${why}` : ''}`);
  }
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    throw new CalfError(`could not remove ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Remove a container's directory as calf exits (`process.on('exit', …)` in a level file). It
 * never throws, since an exception in an exit handler prints a stack trace over the command's
 * output: what it could not remove it names in one line on stderr, with the command that does.
 */
export function removeContainer(container: Pick<Container, 'dir'>): void {
  try {
    removeContainerDir(container.dir);
  } catch (err) {
    const message = err instanceof CalfError ? err.message : `could not remove ${container.dir}: ${String(err)}`;
    try {
      fs.writeSync(2, `calf: ${message}; \`calf cleanup\` removes it\n`);
    } catch {
      // stderr is closed: nothing left to tell anyone
    }
  }
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
      const rootMount = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
      return rootMount !== undefined && `${rootMount}/`.includes(marker);
    } catch {
      return false; // gone meanwhile, or a kernel thread
    }
  });
}

/**
 * End a container that outlived its calf process (a SIGKILL of calf leaves it running): SIGKILL
 * to each of its processes; from level 06 on, its PID 1's death ends all the rest too.
 */
export function killContainer(dir: string): number[] {
  const pids = containerProcesses(dir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // it ended meanwhile
    }
  }
  return pids;
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
    remove: () => {
      killContainer(dir);
      removeContainerDir(dir);
    },
  })),
});

// Mounts under containers/ that outlived their directory's removal (a mount propagated back
// from a container that forgot MS_PRIVATE shows up here). Not containers/ itself, which may be
// a mount of its own (the tests' store makes it one).
registerLeftovers({
  kind: 'mount',
  find: (root) => {
    const containers = containersDir(root);
    const owners = new Map(listContainerDirs(root).map(({ dir, owner }) => [dir, owner]));
    return [...new Set(mountsUnder(containers))].filter((point) => point !== containers).map((point) => {
      const owner = owners.get(path.join(containers, path.relative(containers, point).split(path.sep)[0]!));
      return {
        what: `mount ${point}`,
        ...(owner === undefined ? {} : { owner }),
        remove: () => {
          const { left, errors } = unmountUnder(point);
          if (left.includes(point)) throw new CalfError(`still mounted${errors.has(point) ? `: ${errors.get(point)}` : ''}`);
        },
      };
    });
  },
});
