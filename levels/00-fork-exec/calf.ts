/**
 * calf, level 00 (fork-exec): your starting point: do the TODOs.
 * Goal: run a command as a child process: re-exec an init stage that execve()s it.
 * Lesson: levels/00-fork-exec/README.md · check: npm run level 0
 * Run it as root: tsx levels/00-fork-exec/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate` (instructors: edit that file, not this one).
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
  // TODO(00.1): Node can't fork(): run this very file again as a child (child_process.spawn),
  // with the hidden command `init`, the config as JSON, and calf's own stdin/stdout/stderr.
  // process.execPath is node; initEntry() is this file (with all it imports) compiled to one
  // plain-JavaScript file, initEnv() calf's environment minus NODE_OPTIONS & co. Why not run
  // process.argv[1] again, with process.execArgv (tsx) along?
  throw new Error('level 00 is not done yet: start the init stage (TODO 00.1 in calf.ts)');
}

/** Docker's exit code for how the init stage (by then, the command) ended. */
function exitStatus([code, signal]: [number | null, NodeJS.Signals | null]): number {
  // TODO(00.2): calf exits with the command's status, or 128 + N when signal N killed it, as a
  // shell does. os.constants.signals maps signal names to numbers.
  throw new Error('level 00 is not done yet: report how the command ended (TODO 00.2 in calf.ts)');
}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: become the container, then the command (execve). All synchronous: unshare() moves this thread only.

function init(config: Spec): never {
  execCommand(config.process.args, config.process.env);
}

/** Become the command: same process, same pid, same stdin/stdout/stderr, new program. */
function execCommand(argv: string[], env: string[]): never {
  // TODO(00.3): execve closes every fd marked close-on-exec, and Node marks even 0, 1 and 2:
  // clear the flag on those three (fcntl(2), F_SETFD). What would the command see otherwise?
  // TODO(00.4): replace this process with the command (execve(2)); lookPath finds argv[0] in the
  // container's PATH. Why replace the init stage instead of spawning one more child?
  throw new Error('level 00 is not done yet: execve the command (TODO 00.4 in calf.ts)');
}

main({ run, init });
