/**
 * calf, level 03 (pivot-root): your starting point: level 02's solution plus TODOs.
 * Goal: pivot_root into the image and detach the host root.
 * Lesson: levels/03-pivot-root/README.md · check: npm run level 3
 * Run it as root: tsx levels/03-pivot-root/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate` (instructors: edit that file, not this one).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { constants } from 'node:os';
import * as linux from '../../lib/linux/index.js';
import {
  main, exited, lookPath, mergeEnv, DEFAULT_PATH, CalfError, initEntry, initEnv, OCI_VERSION, type RunOptions, type Spec,
  createContainer, saveConfig, type Container,
} from '../../lib/runtime/index.js';
import type { ResolvedImage } from '../../lib/image/index.js';
import { resolveImage } from '../../lib/image/index.js'; // level 13 pulls what the store lacks first
import { unpackImage } from '../../lib/image/index.js'; // level 04's storage drivers unpack layers themselves

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container and its config (a Spec: the OCI runtime-spec's config.json, as
// far as this level fills it), start its first process, wait for it, report how it ended.

async function run(options: RunOptions): Promise<number> {
  const { image, container } = await createRootfs(options.image);
  const config = containerConfig(options, image, container);
  if (config.process.args.length === 0) throw new CalfError('no command specified');
  saveConfig(container, config); // config.json beside rootfs/: the container's directory is an OCI bundle
  const child = startInit(config);
  return exitStatus(await exited(child, container)); // exited() also records it in the container's state
}

/** No fork() in Node: start the container side by running this file again, as the hidden `init` command. */
function startInit(config: Spec): ChildProcess {
  return spawn(process.execPath, [initEntry(), 'init', JSON.stringify(config)], {
    stdio: 'inherit', // the command reads and writes calf's own stdin/stdout/stderr, byte for byte
    env: initEnv(), // the command's environment is in config; Node's own variables only slow this stage
  }); // initEntry(): no tsx to load, no TypeScript to compile: the stage starts several times faster
}

/** Docker's exit code for how the init stage (by then, the command) ended. */
function exitStatus([code, signal]: [number | null, NodeJS.Signals | null]): number {
  return signal === null ? code! : 128 + constants.signals[signal];
}

/** Find the image, unpack it into a new container directory, and have that directory removed when calf exits. */
async function createRootfs(ref: string): Promise<{ image: ResolvedImage; container: Container }> {
  const image = resolveImage(ref);
  const container = createContainer(image);
  container.teardown.add('removeContainerDir', container.dir); // runs as calf exits, and in calf cleanup after a crash
  await unpackImage(image, container.rootfs);
  return { image, container };
}

/** The init stage's config, in the OCI runtime-spec's names: the command and environment over the image's defaults. */
function containerConfig(options: RunOptions, image: ResolvedImage, container: Container): Spec {
  const defaults = image.config.config ?? {};
  return {
    ociVersion: OCI_VERSION,
    process: {
      args: [...(defaults.Entrypoint ?? []), ...(options.command.length ? options.command : defaults.Cmd ?? [])],
      env: mergeEnv(defaults.Env ?? [`PATH=${DEFAULT_PATH}`], options.env),
      cwd: defaults.WorkingDir || '/',
    },
    root: { path: container.rootfs },
    linux: {
      namespaces: [
        { type: 'mount' },
      ],
    },
  };
}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: become the container, then the command (execve). All synchronous: unshare() moves this thread only.

function init(config: Spec): never {
  const rootfs = config.root!.path; // calf's config has a root from level 01 on
  enterMountNamespace(); // first: every mount below then stays in the container
  mountProcAndSys(rootfs);
  populateDev(`${rootfs}/dev`);
  pivotInto(rootfs, config.process.cwd); // after the mounts: they move along with the new root
  execCommand(config.process.args, config.process.env);
}

/** A mount namespace of its own, whose mounts never reach the host's. */
function enterMountNamespace(): void {
  linux.unshare(linux.CLONE_NEWNS); // the calling thread only: Node's other threads stay in the host's
  linux.mount(null, '/', null, linux.MS_REC | linux.MS_PRIVATE); // shared mounts would propagate to the host
}

/** The kernel's views of processes and devices: proc on /proc, a read-only sysfs on /sys. */
function mountProcAndSys(rootfs: string): void {
  linux.mount('proc', `${rootfs}/proc`, 'proc', linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC);
  linux.mount('sysfs', `${rootfs}/sys`, 'sysfs', linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC);
}

const DEVICES: [string, number, number][] = [ // the character devices of Docker's /dev: name, major, minor
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

/** A fresh /dev: a tmpfs with device nodes, a private devpts and a /dev/shm of its own. */
function populateDev(dev: string): void {
  linux.mount('tmpfs', dev, 'tmpfs', linux.MS_NOSUID | linux.MS_STRICTATIME, 'mode=755,size=65536k');
  for (const [name, major, minor] of DEVICES) {
    linux.mknod(`${dev}/${name}`, linux.S_IFCHR | 0o666, linux.makedev(major, minor));
    fs.chmodSync(`${dev}/${name}`, 0o666); // mknod's mode passes through the umask
  }
  fs.mkdirSync(`${dev}/pts`);
  linux.mount('devpts', `${dev}/pts`, 'devpts', linux.MS_NOSUID | linux.MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620');
  fs.symlinkSync('pts/ptmx', `${dev}/ptmx`);
  fs.mkdirSync(`${dev}/shm`);
  linux.mount('shm', `${dev}/shm`, 'tmpfs', linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, 'mode=1777,size=65536k');
  for (const [fd, name] of ['stdin', 'stdout', 'stderr'].entries()) fs.symlinkSync(`/proc/self/fd/${fd}`, `${dev}/${name}`);
  fs.symlinkSync('/proc/self/fd', `${dev}/fd`);
}

/** Make rootfs this process's root directory, and cwd (a path in the image) its working directory. */
function chrootInto(rootfs: string, cwd: string): void {
  linux.chroot(rootfs);
  linux.chdir(cwd);
}

/** Make rootfs the root mount of this mount namespace, and the host's root unreachable. */
function pivotInto(rootfs: string, cwd: string): void {
  // TODO(03.1): pivot_root(2) wants a new root that is a mount point: make rootfs one, with the
  // mounts already under it (mount(2): which flags mount a directory onto a directory?).
  // TODO(03.2): chroot can be escaped. Swap the root mount (pivot_root(2)), detach the host's old
  // root lazily (umount2(2)) and remove its directory. Which paths are the host's, which yours?
  chrootInto(rootfs, cwd); // level 02's way, until you replace it
}

/** Become the command: same process, same pid, same stdin/stdout/stderr, new program. */
function execCommand(argv: string[], env: string[]): never {
  for (const fd of [0, 1, 2]) linux.fcntl(fd, linux.F_SETFD, 0);
  linux.execve(lookPath(argv[0]!, env), argv, env);
}

main({ run, init });
