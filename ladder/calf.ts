//@ This is the one source of every levels/*/calf.ts and solutions/*/calf.ts: `npm run generate`
//@ writes them, `npm run generate -- --check` fails when they are stale. Fix a bug here, once.
//@
//@ A line ending in `//@TAG`, or a block between `//@TAG {` and `//@}`, exists only in some files.
//@ The files come in this order: s00 (level 00's skeleton), 00 (its solution), s01, 01, s02, 02…
//@ TAG is a range over that order, the end excluded:
//@   //@01        from solution 01 on (so also in skeleton 02 and later: each skeleton = the
//@                previous solution plus TODOs)
//@   //@s01       from skeleton 01 on (an import or a type the attendee needs to do the TODO)
//@   //@..01      until solution 01, which replaces it
//@   //@01..03    solutions 01 and 02 (and skeletons 02 and 03); solution 03 replaces it
//@   //@todo01    only in skeleton 01: the TODOs, and a stub that keeps the skeleton running
//@ Lines starting with `//@ ` (like these) are never copied.
import { spawn } from 'node:child_process';
import fs from 'node:fs'; //@s02
import { constants } from 'node:os';
import { main, type RunOptions } from '../../lib/runtime/cli.js';
import { exited } from '../../lib/runtime/process.js';
import { lookPath, mergeEnv, DEFAULT_PATH } from '../../lib/runtime/exec.js';
import { execve, fcntl, F_SETFD } from '../../lib/linux/index.js';
import { resolveImage } from '../../lib/image/store.js'; //@s01
import { unpackImage } from '../../lib/image/unpack.js'; //@s01
import { createContainer, removeContainer } from '../../lib/runtime/container.js'; //@s01
import { chroot, chdir } from '../../lib/linux/index.js'; //@s01..03
import { chdir } from '../../lib/linux/index.js'; //@03
import { unshare, CLONE_NEWNS, mount, MS_REC, MS_PRIVATE, MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_STRICTATIME } from '../../lib/linux/index.js'; //@s02
import { mknod, makedev, S_IFCHR } from '../../lib/linux/index.js'; //@s02
import { pivot_root, umount2, MS_BIND, MNT_DETACH } from '../../lib/linux/index.js'; //@s03

/** What the parent side hands to the init stage, as JSON on its command line. */
interface InitConfig {
  /** the command and its arguments */
  argv: string[];
  /** its whole environment, `KEY=VALUE` */
  env: string[];
  /** the directory that becomes the container's `/` */ //@s01
  rootfs: string; //@s01
  /** working directory inside the container */ //@s01
  cwd: string; //@s01
}

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container, start its first process, wait for it, report how it ended.

async function run(options: RunOptions): Promise<number> {
  //@todo01 {
  // TODO(01.1): the image is ignored so far. Find it (resolveImage), make a container directory
  // (createContainer), remove it when calf exits (process.on('exit', …) + removeContainer), and
  // unpack the image's layers into container.rootfs (unpackImage).
  //@}
  const image = resolveImage(options.image); //@01
  const container = createContainer(); //@01
  process.on('exit', () => removeContainer(container)); // sync, so it also runs when calf fails //@01
  await unpackImage(image, container.rootfs); //@01
  const defaults = image.config.config ?? {}; //@01
  //@todo01 {
  // TODO(01.2): an image brings defaults, as Docker applies them: Entrypoint + (COMMAND or Cmd),
  // Env under the -e values, WorkingDir (else "/"). Where in image.config do they live?
  //@}
  const config: InitConfig = {
    argv: options.command, //@..01
    env: mergeEnv([`PATH=${DEFAULT_PATH}`], options.env), //@..01
    rootfs: '', // TODO(01.1): container.rootfs //@todo01
    cwd: '/', //@todo01
    argv: [...(defaults.Entrypoint ?? []), ...(options.command.length ? options.command : defaults.Cmd ?? [])], //@01
    env: mergeEnv(defaults.Env ?? [`PATH=${DEFAULT_PATH}`], options.env), //@01
    rootfs: container.rootfs, //@01
    cwd: defaults.WorkingDir || '/', //@01
  };
  if (config.argv.length === 0) throw new Error('no command specified');

  //@todo00 {
  // TODO(00.1): Node can't fork(), so start the container side by re-executing this very file
  // with the hidden `init` command: spawn(process.execPath, [...process.execArgv,
  // process.argv[1]!, 'init', JSON.stringify(config)], { stdio: 'inherit' }).
  // Why keep process.execArgv?
  // TODO(00.2): wait for it with `await exited(child)` and return Docker's exit code: the child's
  // code, or 128 + N when signal N killed it (constants.signals maps names to numbers).
  throw new Error('level 00 is not done yet: start the init stage (TODO 00.1 in calf.ts)');
  //@}
  //@00 {
  // No fork() in Node: re-execute this file (keeping execArgv, so tsx loads it again) as `init`.
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'init', JSON.stringify(config)], {
    stdio: 'inherit', // the command reads and writes calf's own stdin/stdout/stderr, byte for byte
  });
  const [code, signal] = await exited(child);
  return signal === null ? code! : 128 + constants.signals[signal];
  //@}
}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: turn this process into the container, then become the command with execve().
// Everything here is synchronous: after unshare() only this thread is in the new namespaces.

function init(config: InitConfig): never {
  const { rootfs } = config; //@01
  //@todo02 {
  // TODO(02.1): chroot alone shares the host's mount table. Move this thread into a new mount
  // namespace (unshare(CLONE_NEWNS)), then make every mount in it private (mount(null, '/', null,
  // MS_REC | MS_PRIVATE)): why would the new mounts reach the host without that?
  // TODO(02.2): mount proc on rootfs/proc and sysfs (read-only) on rootfs/sys, then fill /dev
  // with makeDev() below. Where would these mounts show up if they came before unshare?
  //@}
  unshare(CLONE_NEWNS); // the calling thread only: Node's other threads stay in the host's //@02
  mount(null, '/', null, MS_REC | MS_PRIVATE); // shared mounts would propagate to the host //@02
  //@todo03 {
  // TODO(03.1): pivot_root(2) needs the new root to be a mount point: bind-mount rootfs onto
  // itself (MS_BIND | MS_REC) before the mounts below.
  //@}
  mount(rootfs, rootfs, null, MS_BIND | MS_REC); // pivot_root needs a mount point //@03
  mount('proc', `${rootfs}/proc`, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC); //@02
  mount('sysfs', `${rootfs}/sys`, 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC); //@02
  makeDev(`${rootfs}/dev`); //@02
  //@todo01 {
  // TODO(01.3): make rootfs the root directory of this process (chroot), then chdir into
  // config.cwd. What would "." be after chroot without the chdir?
  //@}
  //@todo03 {
  // TODO(03.2): chroot can be escaped (the breakout test shows it). Replace it with
  // pivot_root(rootfs, `${rootfs}/.oldroot`) (mkdir it first), then detach the old root
  // (umount2('/.oldroot', MNT_DETACH)) and remove the directory.
  //@}
  chroot(rootfs); //@01..03
  fs.mkdirSync(`${rootfs}/.oldroot`); //@03
  pivot_root(rootfs, `${rootfs}/.oldroot`); // the host's root is now at /.oldroot... //@03
  umount2('/.oldroot', MNT_DETACH); // ...and now nowhere: lazily detached //@03
  fs.rmdirSync('/.oldroot'); //@03
  chdir(config.cwd); //@01
  //@todo00 {
  // TODO(00.3): Node opens everything close-on-exec, stdin/stdout/stderr included. Clear the flag
  // on fds 0, 1 and 2 with fcntl(fd, F_SETFD, 0). What would the command see if you didn't?
  // TODO(00.4): become the command: execve(lookPath(argv[0], env), argv, env). lookPath searches
  // the container's PATH, as execvp(3) would.
  throw new Error('level 00 is not done yet: execve the command (TODO 00.4 in calf.ts)');
  //@}
  //@00 {
  for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, 0); // keep stdio across execve
  execve(lookPath(config.argv[0]!, config.env), config.argv, config.env);
  //@}
}

//@s02 {
/** Character devices every container gets (Docker's set): name, major, minor. */
const DEVICES: [string, number, number][] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

/** A fresh /dev: a tmpfs with device nodes, a private devpts and a /dev/shm of its own. */
function makeDev(dev: string): void {
  //@todo02 {
  // TODO(02.3): mount a tmpfs on dev, create each of DEVICES with mknod(path, S_IFCHR | 0o666,
  // makedev(major, minor)) and chmod it to 0o666 (mknod obeys the umask).
  //@}
  mount('tmpfs', dev, 'tmpfs', MS_NOSUID | MS_STRICTATIME, 'mode=755,size=65536k'); //@02
  for (const [name, major, minor] of DEVICES) { //@02
    mknod(`${dev}/${name}`, S_IFCHR | 0o666, makedev(major, minor)); //@02
    fs.chmodSync(`${dev}/${name}`, 0o666); //@02
  } //@02
  fs.mkdirSync(`${dev}/pts`);
  mount('devpts', `${dev}/pts`, 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620');
  fs.symlinkSync('pts/ptmx', `${dev}/ptmx`);
  fs.mkdirSync(`${dev}/shm`);
  mount('shm', `${dev}/shm`, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=1777,size=65536k');
  for (const [fd, name] of ['stdin', 'stdout', 'stderr'].entries()) fs.symlinkSync(`/proc/self/fd/${fd}`, `${dev}/${name}`);
  fs.symlinkSync('/proc/self/fd', `${dev}/fd`);
}
//@}

main({ run, init });
