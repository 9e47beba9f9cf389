/**
 * calf, level 01 (chroot): the reference solution.
 * Goal: unpack an image and chroot into it.
 * Lesson: levels/01-chroot/README.md · check: npm run level 1 -- --solution
 * Run it as root: tsx solutions/01-chroot/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { constants } from 'node:os';
import * as linux from '../../lib/linux/index.js';
import {
  main, flag, exited, lookPath, mergeEnv, DEFAULT_PATH, createContainer, removeContainer, lookupUser, CalfError,
  initEntry, initEnv, type Container, type RunOptions,
} from '../../lib/runtime/index.js';
import { resolveImage, unpackImage, type ResolvedImage } from '../../lib/image/index.js';

/** What the parent side hands to the init stage, as JSON on its command line. */
interface InitConfig {
  argv: string[]; // the command and its arguments
  env: string[]; // its whole environment, KEY=VALUE
  rootfs: string; // the directory that becomes the container's /
  cwd: string; // the working directory inside the container
}

/** The `calf run` flags this level adds to Docker's common ones (-e, --env-file…). */
const flags = {
};

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container, start its first process, wait for it, report how it ended.

async function run(options: RunOptions<typeof flags>): Promise<number> {
  const { image, container } = await createRootfs(options.image);
  const config = containerConfig(options, image, container);
  if (config.argv.length === 0) throw new CalfError('no command specified');
  const child = startInit(config);
  return exitStatus(await exited(child));
}

/** No fork() in Node: start the container side by running this file again, as the hidden `init` command. */
function startInit(config: InitConfig): ChildProcess {
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
  const container = createContainer();
  process.on('exit', () => removeContainer(container)); // sync, so it also runs when calf fails
  await unpackImage(image, container.rootfs);
  return { image, container };
}

/** The init stage's config: the command line's command and environment over the image's defaults. */
function containerConfig(options: RunOptions<typeof flags>, image: ResolvedImage, container: Container): InitConfig {
  const defaults = image.config.config ?? {};
  return {
    argv: [...(defaults.Entrypoint ?? []), ...(options.command.length ? options.command : defaults.Cmd ?? [])],
    env: mergeEnv(defaults.Env ?? [`PATH=${DEFAULT_PATH}`], options.env),
    rootfs: container.rootfs,
    cwd: defaults.WorkingDir || '/',
  };
}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: turn this process into the container, then become the command with execve().
// Everything here is synchronous: after unshare() only this thread is in the new namespaces.

function init(config: InitConfig): never {
  chrootInto(config.rootfs, config.cwd); // after the mounts: they are made through host paths
  execCommand(config.argv, config.env);
}

/** Make rootfs this process's root directory, and cwd (a path in the image) its working directory. */
function chrootInto(rootfs: string, cwd: string): void {
  linux.chroot(rootfs);
  linux.chdir(cwd);
}

/** Become the command: same process, same pid, same stdin/stdout/stderr, new program. */
function execCommand(argv: string[], env: string[]): never {
  for (const fd of [0, 1, 2]) linux.fcntl(fd, linux.F_SETFD, 0);
  linux.execve(lookPath(argv[0]!, env), argv, env);
}

main({ run, init, flags });
