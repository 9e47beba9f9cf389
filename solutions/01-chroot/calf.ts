/**
 * calf, level 01 (chroot): the reference solution.
 * Goal: unpack an image and chroot into it.
 * Lesson: levels/01-chroot/README.md · check: npm run level 1 -- --solution
 * Run it as root: tsx solutions/01-chroot/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
  };
}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: become the container, then the command (execve). All synchronous: unshare() moves this thread only.

function init(config: Spec): never {
  const rootfs = config.root!.path; // calf's config has a root from level 01 on
  chrootInto(rootfs, config.process.cwd); // after the mounts: they are made through host paths
  execCommand(config.process.args, config.process.env);
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

main({ run, init });
