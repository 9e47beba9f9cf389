/**
 * The container side of volumes (level 14), run by the init stage before `pivot_root`, while the
 * container's root is still a directory on the host: making a mount's destination inside the
 * rootfs when the image lacks it, and filling an empty named volume with what the image has
 * there. Every path inside the rootfs is resolved by the kernel with `RESOLVE_IN_ROOT`
 * (lib/linux's openat2): the image's symlinks and `..` can never lead out of it.
 * @module
 */
import fs from 'node:fs';
import { CalfError, messageOf } from '../core/errors.js';
import type { Mount } from '../core/spec.js';
import { readMountInfo } from '../core/mountinfo.js';
import { MS_RDONLY } from '../linux/mount.js';
import { O_DIRECTORY, O_PATH } from '../linux/fcntl.js';
import { openInRoot } from '../linux/openat2.js';
import { close } from '../linux/unistd.js';
import { copyAttributes, copyTree } from './copy-tree.js';
import { mountOptions } from './volume-spec.js';

/** Run `fn` with an fd of `path` in `root` (resolved inside it), or with undefined when `root` has no such path. */
function withFdInRoot<T>(root: string, path: string, flags: number, fn: (fd: number | undefined) => T): T {
  let fd: number | undefined;
  try {
    fd = openInRoot(root, path, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    return fn(fd);
  } finally {
    if (fd !== undefined) close(fd);
  }
}

/**
 * Make `destination` exist inside `rootfs`: each missing component is made (a directory, and the
 * last a `file` when a file is to be bound on it) in the directory its parent resolved to
 * *inside* the rootfs. Never `mkdir -p` on `<rootfs><destination>`: that follows the image's
 * symlinks on the host and makes directories there (runc's CVE-2024-45310). A component that
 * exists as a symlink to something missing is refused: what to make, and where, would be a guess.
 */
export function makeMountPoint(rootfs: string, destination: string, kind: 'directory' | 'file'): void {
  const parts = destination.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const last = i === parts.length;
    const exists = withFdInRoot(rootfs, parts.slice(0, i).join('/'), O_PATH, (fd) => fd !== undefined);
    if (exists) continue;
    withFdInRoot(rootfs, parts.slice(0, i - 1).join('/'), O_PATH | O_DIRECTORY, (parent) => {
      // the parent exists (the step before made it); its fd is where the name goes, wherever a symlink put it
      const at = `/proc/self/fd/${parent}/${parts[i - 1]}`;
      try {
        if (last && kind === 'file') fs.closeSync(fs.openSync(at, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644));
        else fs.mkdirSync(at, 0o755);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // neither made nor found: a symlink to something missing (mkdir and O_EXCL never follow one)
        throw new CalfError(`cannot make the mount point: /${parts.slice(0, i).join('/')} is a symlink to a path the container doesn't have`);
      }
    });
  }
}

/**
 * Docker's rule for a named volume: an empty one first gets a copy of what the image has at the
 * destination (its files, and the directory's owner and mode), so `-v db:/var/lib/db` starts
 * from the image's database. Only when the spec mount asks for it (`copy`, unless `-v …:nocopy`)
 * and the volume is empty: once used, a volume keeps what containers made of it. The image's
 * directory is read through an fd opened inside the rootfs, and its symlinks are copied as
 * links, never followed.
 */
export function fillVolume(rootfs: string, mount: Mount): void {
  if (!mount.options?.includes('copy') || !mount.source || fs.readdirSync(mount.source).length) return;
  withFdInRoot(rootfs, mount.destination, O_PATH | O_DIRECTORY, (fd) => {
    if (fd === undefined) return; // the image has nothing there
    const from = `/proc/self/fd/${fd}`; // the directory the fd names: nothing on the way is resolved again
    copyTree(from, mount.source!);
    copyAttributes(mount.source!, fs.statSync(from));
  });
}

/**
 * Everything a spec mount needs before it is mounted: an empty named volume filled from the
 * image (before the mount hides the image's files), and the destination made inside the rootfs,
 * a file where a file is bound.
 */
export function prepareMountPoint(rootfs: string, mount: Mount): void {
  fillVolume(rootfs, mount);
  const file = mount.type === 'bind' && !fs.statSync(mount.source!).isDirectory();
  makeMountPoint(rootfs, mount.destination, file ? 'file' : 'directory');
}

/**
 * The per-mount flags (`MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`, `MS_NOATIME`…) of the mount the fd
 * `fd` is on, read from its `mnt_id` (`/proc/self/fdinfo`) and the mount table. A remount
 * (`MS_REMOUNT | MS_BIND`) sets *all* of a mount's flags to those it is given: to make a bind
 * read-only without making it suid-capable again, it must repeat the ones it has. `MS_RDONLY`
 * is left out, for the caller to say.
 */
export function mountFlagsOf(fd: number): number {
  const id = Number(/^mnt_id:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1]);
  const mount = readMountInfo().find((m) => m.id === id);
  if (!mount) throw new CalfError(`fd ${fd} is on mount ${id}, which /proc/self/mountinfo doesn't list`);
  return mountOptions(mount.options).flags & ~MS_RDONLY;
}

/** One line for a mount that failed, naming the flag it came from: `-v /srv/data:/data: mount(…): ENOENT (…)`. */
export function mountError(mount: Mount, err: unknown): CalfError {
  const what = mount.type === 'tmpfs' ? `--tmpfs ${mount.destination}` : `-v ${mount.source}:${mount.destination}`;
  return new CalfError(`${what}: ${messageOf(err)}`, { cause: err });
}
