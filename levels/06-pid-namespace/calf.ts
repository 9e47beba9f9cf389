/**
 * calf, level 06 (pid-namespace): your starting point: level 05's solution plus TODOs.
 * Goal: the command is PID 1 of its own PID namespace.
 * Lesson: levels/06-pid-namespace/README.md · check: npm run level 6
 * Run it as root: tsx levels/06-pid-namespace/calf.ts run busybox sh
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
  type Root, flag,
  hostnameArg,
} from '../../lib/runtime/index.js';
import type { ResolvedImage } from '../../lib/image/index.js';
import { resolveImage } from '../../lib/image/index.js'; // level 13 pulls what the store lacks first
import { storageDriver, checkDriverName } from '../../lib/storage/index.js';

/** The `calf run` flags this level adds to Docker's common ones (-e, --env-file…). */
const flags = {
  storageDriver: flag('--storage-driver <name>', 'overlay or vfs (default: $CALF_STORAGE_DRIVER, else overlay)', (name: string) => checkDriverName(name)),
  hostname: flag('--hostname <name>', "the container's host name (default: its short id)", hostnameArg),
};

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container and its config (a Spec: the OCI runtime-spec's config.json, as
// far as this level fills it), start its first process, wait for it, report how it ended.

async function run(options: RunOptions<typeof flags>): Promise<number> {
  const { image, container, overlay } = await prepareRootfs(options.image, options.flags.storageDriver);
  const config = containerConfig(options, image, container, overlay);
  if (config.process.args.length === 0) throw new CalfError('no command specified');
  saveConfig(container, config); // config.json beside rootfs/: the container's directory is an OCI bundle
  const child = inNewPidNamespace(() => startInit(config));
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

/** Find the image, and have a storage driver make the container's root out of its layers. */
async function prepareRootfs(ref: string, driverName: string | undefined): Promise<{ image: ResolvedImage; container: Container; overlay?: Root['overlay'] }> {
  const driver = storageDriver(driverName); // first: a bad name leaves nothing behind
  const image = resolveImage(ref);
  const container = createContainer(image);
  container.teardown.add('removeContainerDir', container.dir); // before prepare(): it can fail halfway
  return { image, container, ...(await driver.prepare(image, container)) };
}

/** The init stage's config, in the OCI runtime-spec's names: the command and environment over the image's defaults. */
function containerConfig(options: RunOptions<typeof flags>, image: ResolvedImage, container: Container, overlay?: Root['overlay']): Spec {
  const defaults = image.config.config ?? {};
  return {
    ociVersion: OCI_VERSION,
    process: {
      args: [...(defaults.Entrypoint ?? []), ...(options.command.length ? options.command : defaults.Cmd ?? [])],
      env: mergeEnv(defaults.Env ?? [`PATH=${DEFAULT_PATH}`], options.env),
      cwd: defaults.WorkingDir || '/',
    },
    root: { path: container.rootfs, overlay },
    hostname: options.flags.hostname ?? container.id.slice(0, 12), // Docker's default: the short id
    linux: {
      namespaces: [
        { type: 'mount' },
        { type: 'uts' }, { type: 'ipc' },
        { type: 'pid' },
      ],
    },
  };
}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: become the container, then the command (execve). All synchronous: unshare() moves this thread only.

function init(config: Spec): never {
  const rootfs = config.root!.path; // calf's config has a root from level 01 on
  enterMountNamespace(); // first: every mount below then stays in the container
  mountOverlay(rootfs, config.root!.overlay); // before the others: they go on top of it
  enterUtsAndIpcNamespaces(config.hostname!);
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

/** Stack the image's layers under the container's own writable directory, on rootfs: one overlay mount. */
function mountOverlay(rootfs: string, overlay: Root['overlay']): void {
  if (!overlay) return; // the vfs driver copied the layers into rootfs: nothing to stack
  const lowerdir = overlay.lower.toReversed().join(':'); // the top layer first: it hides the ones after it
  linux.mount('overlay', rootfs, 'overlay', 0, `lowerdir=${lowerdir},upperdir=${overlay.upper},workdir=${overlay.work}`);
}

/** Make rootfs the root mount of this mount namespace, and the host's root unreachable. */
function pivotInto(rootfs: string, cwd: string): void {
  linux.mount(rootfs, rootfs, null, linux.MS_BIND | linux.MS_REC); // a mount point, with /proc, /sys, /dev along
  fs.mkdirSync(`${rootfs}/.oldroot`);
  linux.pivot_root(rootfs, `${rootfs}/.oldroot`); // the host's root is now at /.oldroot...
  linux.umount2('/.oldroot', linux.MNT_DETACH); // ...and now nowhere: lazily detached
  fs.rmdirSync('/.oldroot');
  linux.chdir(cwd);
}

/** Become the command: same process, same pid, same stdin/stdout/stderr, new program. */
function execCommand(argv: string[], env: string[]): never {
  for (const fd of [0, 1, 2]) linux.fcntl(fd, linux.F_SETFD, 0);
  linux.execve(lookPath(argv[0]!, env), argv, env);
}

/** A host name and System V IPC objects of its own: what `hostname` and `ipcs` see. */
function enterUtsAndIpcNamespaces(hostname: string): void {
  linux.unshare(linux.CLONE_NEWUTS | linux.CLONE_NEWIPC);
  linux.sethostname(hostname);
}

/** Start the init stage as PID 1 of a new PID namespace, and keep calf's later children in the host's. */
function inNewPidNamespace<T>(start: () => T): T {
  // TODO(06.1): a process cannot change its own PID namespace: unshare(2) with CLONE_NEWPID puts
  // the *next children* of the calling thread into a new one, the first of them as its PID 1.
  // Do it around start(), then send this thread's later children back to the host's namespace
  // (setns(2) on an fd of /proc/self/ns/pid, opened before). What would a second child of calf
  // be, if you didn't?
  return start();
}

main({ run, init, flags });
