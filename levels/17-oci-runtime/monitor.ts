/**
 * calf, level 17 (oci-runtime), monitor.ts: your starting point: level 16's solution plus TODOs.
 * Goal: calf-runtime: runc's command line over an OCI bundle, so that podman and containerd run their containers on calf.
 * Lesson: levels/17-oci-runtime/README.md · check: npm run level 17
 * Run it as root: tsx levels/17-oci-runtime/calf.ts run busybox sh
 *
 * Generated from ladder/monitor.ts by `npm run generate` (instructors: edit that file, not this one).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import { constants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import type { Command } from 'commander';
import * as linux from '../../lib/linux/index.js';
import {
  initEntry, initEnv, execed, takeOver, openContainer, readConfig, runTeardown, releaseContainer, keepOptions, openLog, passOn,
  HANDOVER_STDIO, awaitHandover, handOver, eachContainer, isRunning, signalContainer, waitForExit, CalfError,
  type Container, type Spec, type Flags, type RunOptions, type StartOptions, type MonitorMode, type LogWriter, type LogOptions, type Found,
  type ConsoleSize,
} from '../../lib/runtime/index.js';

// ─── A monitor per container ───────────────────────────────────────────────────────────────────
// Our job: be the parent of the container's first process for as long as it runs (only a parent
// learns how a process ended), keep what it writes in its log, record how it ended, and undo what
// a stopped container no longer needs. `calf run` is that monitor, in the foreground; `calf run
// -d` and `calf start` start one in the background, in a session of its own, and hand over to it.

/** What calf.ts's start() gives the monitor: the container's first process, and its exit code to come. */
export interface Started {
  child: ChildProcess;
  exitCode: Promise<number>;
}

/** calf.ts's start(): the container's network, cgroup and first process (on `stdio`), up to the handshake. */
export type Start<F extends Flags> = (container: Container, config: Spec, options: StartOptions<F>, stdio: StdioOptions) => Promise<Started>;

/** `calf run`, once the container exists: be its monitor here, attached, or start one in the background (-d). */
export async function runContainer<F extends Flags>(container: Container, options: RunOptions<F>, start: Start<F>): Promise<number> {
  keepOptions(container, options); // in its record: what calf start runs it with again
  if (!(options.flags as { detach?: boolean }).detach) return monitor(container.dir, 'run', start, true);
  await startMonitor(container.dir, 'run');
  process.stdout.write(`${container.id}\n`); // only once it runs: docker run -d prints the id then
  return 0;
}

/** Start the container's monitor in the background, and wait until it says the container runs, or why not. */
export async function startMonitor(dir: string, mode: MonitorMode): Promise<void> {
  const monitor = spawn(process.execPath, [initEntry(), 'monitor', dir, mode], {
    detached: true, // setsid() in the child: a session of its own, without a controlling terminal
    stdio: HANDOVER_STDIO, // /dev/null on 0–2: nothing of the terminal; fd 3: the socket it answers on
    env: initEnv(),
  });
  await awaitHandover(monitor, mode === 'run' ? dir : undefined); // "running", or why not (its exit code)
}

/**
 * The monitor: the container's parent from its start to its end. Attached (`calf run`), it is this
 * calf process, in charge since it made the container; else the hidden stage `monitor`, which
 * takes charge from the `calf run -d` or `calf start` waiting for its word.
 */
export async function monitor<F extends Flags>(dir: string, mode: MonitorMode, start: Start<F>, attached = false): Promise<number> {
  becomeSubreaper();
  const container = attached ? openContainer(dir) : takeOver(dir, { keep: mode === 'start' }); // in charge: if we fail, it goes
  const options = container.state.options as StartOptions<F>;
  const config = readConfig(dir)!;
  const log = openLog(dir, (options.flags as { logOpt?: Partial<LogOptions> }).logOpt);
  const terminal = config.process.terminal ? consoleSocket() : undefined; // -t: the command's 0–2 will be a pty
  const stdio: StdioOptions = terminal
    ? ['ignore', 'ignore', 'pipe', 'pipe', terminal.theirs] // stderr: the init stage's own errors, until the pty replaces it
    : [attached ? 'inherit' : 'ignore', 'pipe', 'pipe', 'pipe']; // stdout and stderr through us, into the log
  const { child, exitCode } = await start(container, config, options, stdio).finally(() => terminal?.close());
  reapOrphans(child);
  const piped = relayOutput(child, log, attached);
  const failed = await execed(child); // sync 3: the command runs, or the init stage says why not
  const master = terminal?.receive(); // -t: sent before execve, unless the init stage failed before its pty
  const output = master === undefined ? piped : Promise.all([piped, relayTerminal(master, log, attached)]);
  if (failed) {
    await output; // its error: on its stderr before it had its pty, on the pty after
    if (attached) return failed.exitCode; // it said why on our stderr; calf run removes the container as it exits
    throw new CalfError(failed.message ?? `the container's command did not start (exit ${failed.exitCode})`, { exitCode: failed.exitCode });
  }
  if (terminal && master === undefined) throw new CalfError('-t: the init stage sent no terminal');
  if (!attached) handOver(); // calf run -d prints the id and exits: we are on our own now
  const code = await exitCode; // the init stage's end, which only its parent learns (libuv's waitpid)
  await output; // all it wrote is in the log
  log.close();
  stopped(container, options.rm);
  return code;
}

/**
 * A monitor is a child subreaper (prctl(2)): a process below it that loses its parent is adopted
 * by the monitor, not by the host's init, so the monitor can still learn how it ended. calf's own
 * init stage is the monitor's child already; an OCI runtime's `create` is not (it forks the
 * container and exits), which is why conmon and containerd's shim are subreapers (level 17).
 */
function becomeSubreaper(): void {
  linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1);
}

/** Reap what the monitor adopts, by pid: its own child's status is libuv's (lib/linux/wait.ts). */
function reapOrphans(child: ChildProcess): void {
  process.on('SIGCHLD', () => linux.reapAdopted(child.exitCode === null && child.signalCode === null ? [child.pid!] : []));
}

/** The container's stdout and stderr: into its log, and on to calf's own stdout and stderr when attached. */
function relayOutput(child: ChildProcess, log: LogWriter, attached: boolean): Promise<void> {
  const relays = ([[child.stdout, 'stdout', 1], [child.stderr, 'stderr', 2]] as const).map(([from, stream, fd]) => new Promise<void>((resolve) => {
    if (!from) return resolve(); // -t: the command's stdout is the terminal
    const into = logStream(log, stream);
    from.on('data', (chunk: Buffer) => {
      into.write(chunk);
      if (attached && !passOn(fd, chunk)) from.destroy(); // our reader is gone (EPIPE): so is the command's
    });
    from.on('close', () => {
      into.end();
      resolve();
    });
  }));
  return Promise.all(relays).then(() => undefined);
}

/** One of the container's output streams into its log: Docker's json-file, one record per line. */
function logStream(log: LogWriter, stream: 'stdout' | 'stderr'): { write(chunk: Buffer): void; end(): void } {
  const decoder = new StringDecoder('utf8'); // a character cut in two by a chunk waits for its second half
  let partial = '';
  const record = (line: string) => log.append(`${JSON.stringify({ log: line, stream, time: new Date().toISOString() })}\n`);
  return {
    write(chunk) {
      const lines = (partial + decoder.write(chunk)).split(/(?<=\n)/);
      partial = lines.at(-1)!.endsWith('\n') ? '' : lines.pop()!;
      for (const line of lines) record(line);
    },
    end() {
      const rest = partial + decoder.end();
      if (rest) record(rest);
    },
  };
}

/** The container has stopped: Docker keeps it, stopped, until `calf rm`, unless it was run with --rm. */
function stopped(container: Container, rm: boolean): void {
  runTeardown(container.dir, { until: rm ? 'removed' : 'stopped' }); // its cgroup and address go; with --rm, all
  if (!rm) releaseContainer(container.dir); // stopped, kept: calf logs, start, commit, rm still find it
}

// ─── -t: a terminal for the command ────────────────────────────────────────────────────────────

/** The init stage's fd that carries the pty master to the monitor: runc's --console-socket, as a socketpair. */
const CONSOLE_FD = 4;

/**
 * Init-stage side of `-t`, after the pivot: a pseudo-terminal from the container's own devpts as
 * the command's stdin, stdout, stderr and controlling terminal, `size` big (calf's terminal's:
 * the config's consoleSize); its master end to the monitor.
 */
export function openTerminal(size?: ConsoleSize): void {
  const master = linux.posix_openpt(); // /dev/ptmx → pts/ptmx: the container's own devpts
  linux.unlockpt(master);
  const slave = linux.ioctl(master, linux.TIOCGPTPEER, linux.O_RDWR | linux.O_NOCTTY); // /dev/pts/N, in here
  if (size) linux.ioctl(master, linux.TIOCSWINSZ, linux.winsize({ ws_row: size.height, ws_col: size.width })); // before the command can ask
  linux.setsid(); // a session of our own, with no terminal yet…
  linux.ioctl(slave, linux.TIOCSCTTY, 0); // …now this one: ^C on it is SIGINT to the command
  for (const fd of [0, 1, 2]) linux.dup2(slave, fd);
  linux.sendmsg(CONSOLE_FD, { iov: [Buffer.from('pty')], control: [linux.scm_rights([master])] });
  linux.close(master);
  linux.close(slave);
}

/** The monitor's end of the console socket: the init stage's end goes to it as fd CONSOLE_FD. */
function consoleSocket(): { theirs: number; close(): void; receive(): number | undefined } {
  const [mine, theirs] = linux.socketpair(linux.AF_UNIX, linux.SOCK_STREAM | linux.SOCK_CLOEXEC);
  return {
    theirs,
    close: () => fs.closeSync(theirs), // the init stage has its copy: end-of-file here if it dies
    receive: () => { // once the init stage has exec'd or ended: its end is closed, the pty sent or never
      const ready = linux.poll(mine, linux.POLLIN, 1_000);
      const { control } = ready ? linux.recvmsg(mine, 16, linux.CMSG_SPACE(4)) : { control: [] };
      fs.closeSync(mine);
      return linux.scm_rights_fds(control)[0];
    },
  };
}

/**
 * Attached, calf's own terminal becomes the container's: raw (every key, ^C too, goes to the
 * container's line discipline, which echoes and signals), the same size, again after each
 * SIGWINCH. Its output, like a pipe's, goes to the log (one stream: stdout) and on to calf's.
 */
function relayTerminal(master: number, log: LogWriter, attached: boolean): Promise<void> {
  const into = logStream(log, 'stdout');
  const ours = attached && process.stdin.isTTY ? linux.tcgetattr(0) : undefined;
  if (ours) {
    const raw = { ...ours, c_cc: [...ours.c_cc] };
    linux.cfmakeraw(raw); // no echo, no line editing, no ^C, no output processing: the container's pty does it all
    linux.tcsetattr(0, linux.TCSANOW, raw);
  }
  const resize = () => linux.ioctl(master, linux.TIOCSWINSZ, linux.winsize({ ws_row: process.stdout.rows, ws_col: process.stdout.columns }));
  if (attached && process.stdout.isTTY) {
    resize();
    process.stdout.on('resize', resize); // Node's SIGWINCH, with the new size read
  }
  const typed = (keys: Buffer) => fs.writeSync(master, keys);
  if (attached) process.stdin.on('data', typed);
  return new Promise((resolve) => {
    fs.createReadStream('', { fd: master }) // read on libuv's threads: a pty master is no pipe for net.Socket
      .on('data', (chunk: Buffer | string) => {
        const bytes = Buffer.from(chunk);
        into.write(bytes);
        if (attached) passOn(1, bytes);
      })
      .on('error', () => undefined) // EIO: every slave fd is closed, the container is gone
      .on('close', () => {
        into.end();
        process.stdout.off('resize', resize);
        process.stdin.off('data', typed).pause();
        if (ours) linux.tcsetattr(0, linux.TCSANOW, ours); // calf's terminal as it was
        resolve();
      });
  });
}

// ─── calf start, calf stop ─────────────────────────────────────────────────────────────────────

/** `calf start` and `calf stop`: a stopped container's monitor started again, a running container stopped. */
export function monitorCommands(program: Command): void {
  program.command('start')
    .description('start stopped containers again, in the background')
    .argument('<containers...>', 'ids, id prefixes or names')
    .action((refs: string[]) => eachContainer(refs, async ({ dir, state }, ref) => {
      if (!isRunning(state)) await startMonitor(dir, 'start');
      process.stdout.write(`${ref}\n`);
    }));
  program.command('stop')
    .description('stop running containers: SIGTERM, then SIGKILL after a grace period')
    .argument('<containers...>', 'ids, id prefixes or names')
    .option('-t, --time <seconds>', 'seconds to wait before killing it', '10')
    .action((refs: string[], opts: { time: string }) => eachContainer(refs, (found, ref) => {
      stop(found, Number(opts.time));
      process.stdout.write(`${ref}\n`);
    }));
}

/** Stop a container as `docker stop` does: SIGTERM, then SIGKILL once `seconds` have passed. */
function stop(found: Found, seconds: number): void {
  if (!isRunning(found.state)) return; // stopped already: nothing to do, as Docker
  signalContainer(found, constants.signals.SIGTERM); // PID 1 of its namespace: ignored without a handler
  if (waitForExit(found.dir, seconds * 1000).stopped) return;
  signalContainer(found, constants.signals.SIGKILL); // sent from outside its namespace: never ignored
  waitForExit(found.dir);
}
