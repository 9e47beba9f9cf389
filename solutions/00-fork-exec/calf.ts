/**
 * calf, level 00 (fork-exec): the reference solution.
 * Goal: run a command as a child process: re-exec an init stage that execve()s it.
 * Lesson: levels/00-fork-exec/README.md · check: npm run level 0 -- --solution
 * Run it as root: tsx solutions/00-fork-exec/calf.ts run busybox sh
 *
 * Generated from ladder/calf.ts by `npm run generate`.
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
  for (const fd of [0, 1, 2]) fcntl(fd, F_SETFD, 0); // keep stdio across execve
  execve(lookPath(config.argv[0]!, config.env), config.argv, config.env);
}

main({ run, init });
