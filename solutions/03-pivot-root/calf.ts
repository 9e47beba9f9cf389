/**
 * calf, level 03 (pivot-root): the reference solution.
 * Goal: pivot_root into the image and detach the host root.
 * Lesson: levels/03-pivot-root/README.md · check: npm run level 3 -- --solution
 * Run it as root: tsx solutions/03-pivot-root/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { constants } from 'node:os';
import { main, type RunOptions } from '../../lib/runtime/cli.js';
import { exited } from '../../lib/runtime/process.js';
import { lookPath, mergeEnv, DEFAULT_PATH } from '../../lib/runtime/exec.js';
import { execve, fcntl, F_SETFD } from '../../lib/linux/index.js';
import { resolveImage } from '../../lib/image/store.js';
import { unpackImage } from '../../lib/image/unpack.js';
import { createContainer, removeContainer } from '../../lib/runtime/container.js';
import { chdir } from '../../lib/linux/index.js';
import { unshare, CLONE_NEWNS, mount, MS_REC, MS_PRIVATE, MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_STRICTATIME } from '../../lib/linux/index.js';
import { mknod, makedev, S_IFCHR } from '../../lib/linux/index.js';
import { pivot_root, umount2, MS_BIND, MNT_DETACH } from '../../lib/linux/index.js';

/** What the parent side hands to the init stage, as JSON on its command line. */
interface InitConfig {
  /** the command and its arguments */
  argv: string[];
  /** its whole environment, `KEY=VALUE` */
  env: string[];
  /** the directory that becomes the container's `/` */
  rootfs: string;
  /** working directory inside the container */
  cwd: string;
}

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container, start its first process, wait for it, report how it ended.

async function run(options: RunOptions): Promise<number> {
  const image = resolveImage(options.image);
  const container = createContainer();
  process.on('exit', () => removeContainer(container)); // sync, so it also runs when calf fails
  await unpackImage(image, container.rootfs);
  const defaults = image.config.config ?? {};
  const config: InitConfig = {
    argv: [...(defaults.Entrypoint ?? []), ...(options.command.length ? options.command : defaults.Cmd ?? [])],
    env: mergeEnv(defaults.Env ?? [`PATH=${DEFAULT_PATH}`], options.env),
    rootfs: container.rootfs,
    cwd: defaults.WorkingDir || '/',
  };
  if (config.argv.length === 0) throw new Error('no command specified');

  // No fork() in Node: re-execute this file (keeping execArgv, so tsx loads it again) as `init`.
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'init', JSON.stringify(config)], {
    stdio: 'inherit', // the command reads and writes calf's own stdin/stdout/stderr, byte for byte
  });
  const [code, signal] = await exited(child);
  return signal === null ? code! : 128 + constants.signals[signal];
}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: turn this process into the container, then become the command with execve().
// Everything here is synchronous: after unshare() only this thread is in the new namespaces.

function init(config: InitConfig): never {
  const { rootfs } = config;
  unshare(CLONE_NEWNS); // the calling thread only: Node's other threads stay in the host's
  mount(null, '/', null, MS_REC | MS_PRIVATE); // shared mounts would propagate to the host
  mount(rootfs, rootfs, null, MS_BIND | MS_REC); // pivot_root needs a mount point
  mount('proc', `${rootfs}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);
  mount('sysfs', `${rootfs}/sys`, 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  makeDev(`${rootfs}/dev`);
  fs.mkdirSync(`${rootfs}/.oldroot`);
  pivot_root(rootfs, `${rootfs}/.oldroot`); // the host's root is now at /.oldroot...
  umount2('/.oldroot', MNT_DETACH); // ...and now nowhere: lazily detached
  fs.rmdirSync('/.oldroot');
  chdir(config.cwd);
  for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, 0); // keep stdio across execve
  execve(lookPath(config.argv[0]!, config.env), config.argv, config.env);
}

/** Character devices every container gets (Docker's set): name, major, minor. */
const DEVICES: [string, number, number][] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

/** A fresh /dev: a tmpfs with device nodes, a private devpts and a /dev/shm of its own. */
function makeDev(dev: string): void {
  mount('tmpfs', dev, 'tmpfs', MS_NOSUID | MS_STRICTATIME, 'mode=755,size=65536k');
  for (const [name, major, minor] of DEVICES) {
    mknod(`${dev}/${name}`, S_IFCHR | 0o666, makedev(major, minor));
    fs.chmodSync(`${dev}/${name}`, 0o666);
  }
  fs.mkdirSync(`${dev}/pts`);
  mount('devpts', `${dev}/pts`, 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620');
  fs.symlinkSync('pts/ptmx', `${dev}/ptmx`);
  fs.mkdirSync(`${dev}/shm`);
  mount('shm', `${dev}/shm`, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=1777,size=65536k');
  for (const [fd, name] of ['stdin', 'stdout', 'stderr'].entries()) fs.symlinkSync(`/proc/self/fd/${fd}`, `${dev}/${name}`);
  fs.symlinkSync('/proc/self/fd', `${dev}/fd`);
}

main({ run, init });
