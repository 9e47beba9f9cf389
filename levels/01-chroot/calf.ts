/**
 * calf, level 01 (chroot): your starting point: level 00's solution plus TODOs.
 * Goal: unpack an image and chroot into it.
 * Lesson: levels/01-chroot/README.md · check: npm run level 1
 * Run it as root: tsx levels/01-chroot/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate` (instructors: edit that file, not this one).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { main, type RunOptions } from '../../lib/runtime/cli.js';
import { exited } from '../../lib/runtime/process.js';
import { lookPath, mergeEnv, DEFAULT_PATH } from '../../lib/runtime/exec.js';
import { execve, fcntl, F_SETFD } from '../../lib/linux/index.js';
import { resolveImage } from '../../lib/image/store.js';
import { unpackImage } from '../../lib/image/unpack.js';
import { createContainer, removeContainer } from '../../lib/runtime/container.js';
import { chroot, chdir } from '../../lib/linux/index.js';

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
  // TODO(01.1): the image is ignored so far. Find it (resolveImage), make a container directory
  // (createContainer), remove it when calf exits (process.on('exit', …) + removeContainer), and
  // unpack the image's layers into container.rootfs (unpackImage).
  // TODO(01.2): an image brings defaults, as Docker applies them: Entrypoint + (COMMAND or Cmd),
  // Env under the -e values, WorkingDir (else "/"). Where in image.config do they live?
  const config: InitConfig = {
    argv: options.command,
    env: mergeEnv([`PATH=${DEFAULT_PATH}`], options.env),
    rootfs: '', // TODO(01.1): container.rootfs
    cwd: '/',
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
  // TODO(01.3): make rootfs the root directory of this process (chroot), then chdir into
  // config.cwd. What would "." be after chroot without the chdir?
  for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, 0); // keep stdio across execve
  execve(lookPath(config.argv[0]!, config.env), config.argv, config.env);
}

main({ run, init });
