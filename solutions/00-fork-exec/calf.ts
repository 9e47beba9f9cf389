/**
 * calf, level 00 (fork-exec): the reference solution.
 * Goal: run a command as a child process: re-exec an init stage that execve()s it.
 * Lesson: levels/00-fork-exec/README.md · check: npm run level 0 -- --solution
 * Run it as root: tsx solutions/00-fork-exec/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import * as linux from '../../lib/linux/index.js';
import {
  main, exited, lookPath, mergeEnv, DEFAULT_PATH, CalfError, initEntry, initEnv, OCI_VERSION, type RunOptions, type Spec,
} from '../../lib/runtime/index.js';

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container and its config (a Spec: the OCI runtime-spec's config.json, as
// far as this level fills it), start its first process, wait for it, report how it ended.

async function run(options: RunOptions): Promise<number> {
  const config: Spec = { ociVersion: OCI_VERSION, process: { args: options.command, env: mergeEnv([`PATH=${DEFAULT_PATH}`], options.env), cwd: process.cwd() } };
  if (config.process.args.length === 0) throw new CalfError('no command specified');
  const child = startInit(config);
  return exitStatus(await exited(child));
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

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: become the container, then the command (execve). All synchronous: unshare() moves this thread only.

function init(config: Spec): never {
  execCommand(config.process.args, config.process.env);
}

/** Become the command: same process, same pid, same stdin/stdout/stderr, new program. */
function execCommand(argv: string[], env: string[]): never {
  for (const fd of [0, 1, 2]) linux.fcntl(fd, linux.F_SETFD, 0);
  linux.execve(lookPath(argv[0]!, env), argv, env);
}

main({ run, init });
