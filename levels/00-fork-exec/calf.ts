/**
 * calf, level 00 (fork-exec): your starting point: do the TODOs.
 * Goal: run a command as a child process: re-exec an init stage that execve()s it.
 * Lesson: levels/00-fork-exec/README.md · check: npm run level 0
 * Run it as root: tsx levels/00-fork-exec/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate` (instructors: edit that file, not this one).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { main, type RunOptions } from '../../lib/runtime/cli.js';
import { exited } from '../../lib/runtime/process.js';
import { lookPath, mergeEnv, DEFAULT_PATH } from '../../lib/runtime/exec.js';
import { execve, fcntl, F_SETFD } from '../../lib/linux/index.js';

/** What the parent side hands to the init stage, as JSON on its command line. */
interface InitConfig {
  /** the command and its arguments */
  argv: string[];
  /** its whole environment, `KEY=VALUE` */
  env: string[];
}

// ─── Parent side: runs on the host ─────────────────────────────────────────────────────────────
// Our job: prepare the container, start its first process, wait for it, report how it ended.

async function run(options: RunOptions): Promise<number> {
  const config: InitConfig = {
    argv: options.command,
    env: mergeEnv([`PATH=${DEFAULT_PATH}`], options.env),
  };
  if (config.argv.length === 0) throw new Error('no command specified');

  // TODO(00.1): Node can't fork(), so start the container side by re-executing this very file
  // with the hidden `init` command: spawn(process.execPath, [...process.execArgv,
  // process.argv[1]!, 'init', JSON.stringify(config)], { stdio: 'inherit' }).
  // Why keep process.execArgv?
  // TODO(00.2): wait for it with `await exited(child)` and return Docker's exit code: the child's
  // code, or 128 + N when signal N killed it (constants.signals maps names to numbers).
  throw new Error('level 00 is not done yet: start the init stage (TODO 00.1 in calf.ts)');
}

// ─── Container side: `calf init`, re-executed by the parent ───────────────────────────────────
// Our job: turn this process into the container, then become the command with execve().
// Everything here is synchronous: after unshare() only this thread is in the new namespaces.

function init(config: InitConfig): never {
  // TODO(00.3): Node opens everything close-on-exec, stdin/stdout/stderr included. Clear the flag
  // on fds 0, 1 and 2 with fcntl(fd, F_SETFD, 0). What would the command see if you didn't?
  // TODO(00.4): become the command: execve(lookPath(argv[0], env), argv, env). lookPath searches
  // the container's PATH, as execvp(3) would.
  throw new Error('level 00 is not done yet: execve the command (TODO 00.4 in calf.ts)');
}

main({ run, init });
