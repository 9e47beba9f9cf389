/**
 * calf, level 17 (oci-runtime), runtime.ts: your starting point: do the TODOs.
 * Goal: calf-runtime: runc's command line over an OCI bundle, so that podman and containerd run their containers on calf.
 * Lesson: levels/17-oci-runtime/README.md · check: npm run level 17
 * Run it as root: tsx levels/17-oci-runtime/calf.ts run busybox sh
 *
 * Generated from ladder/runtime.ts by `npm run generate` (instructors: edit that file, not this one).
 */
/**
 * `calf-runtime`: calf as an OCI runtime, the program podman (through conmon) and containerd
 * (through its shim) run for every step of a container's life, as they run runc or crun.
 *
 * Each call is a process of its own, and the engine, not calf, waits for the container's
 * process: all that passes between the calls is the state directory, `<root>/<id>/`.
 * ```
 *   create --bundle B ID                         the init stage (re-executed: calf:[init])
 *   ────────────────────                         ─────────────────────────────────────────
 *   read B/config.json; mkfifo <root>/ID/exec.fifo
 *   cgroup; spawn ─────────────────────────────▶ open exec.fifo (O_PATH: its host path works now)
 *   handshake: join the cgroup                   namespaces, mounts, pivot_root
 *                                ◀── "created" ─ open /proc/self/fd/N for writing: blocks
 *   write the pid file, exit: the engine
 *   (a subreaper) inherits the init stage
 *
 *   start ID: open exec.fifo for reading ──────▶ the open returns: write one byte
 *   read that byte, remove the FIFO              privileges, user, seccomp; execve(process.args)
 *
 *   state ID: created while the FIFO exists, running while the pid lives, stopped after
 *   kill ID SIG: kill(2) the pid (--all: every process of its cgroup)
 *   delete ID: once stopped (--force: SIGKILL first); its cgroup and state directory go
 *   exec --process F --detach ID: level 16's exec stage, in the container; the pid file; exit
 *   once the stage is the command, which the engine (a subreaper) then inherits and waits for
 * ```
 * @see https://github.com/opencontainers/runtime-spec/blob/main/runtime.md (the lifecycle)
 * @see https://man7.org/linux/man-pages/man7/fifo.7.html
 * @module
 */
import fs from 'node:fs';
import { once } from 'node:events';
import { constants } from 'node:os';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Socket } from 'node:net';
import * as linux from '../../lib/linux/index.js';
import {
  CalfError, EXIT_ERROR, alive, processStartTime, createdInit, notifyCreated, readBundle, runtimeContainer, existingContainer,
  saveRecord, statusOf, ociState, writePidFile, sleep, runtimeExecConfig, untilExecuted, connectConsole, initEntry, initEnv,
  type RuntimeCommands, type RuntimeContainer, type RuntimeGlobals, type Spec,
} from '../../lib/runtime/index.js';
import { EXEC_STAGE, inPidNamespaceOf, type ExecConfig } from './exec.js';
import { cgroupDirsOf, removeCgroupOf } from '../../lib/cgroup/index.js';

/** calf.ts's part of create: the container's cgroup `where` with the spec's limits, its init stage (SYNC_STDIO), the handshake. */
export type CreateInit = (config: Spec, where: { parent: string; name: string }, console?: number) => Promise<ChildProcess>;

/** The subcommands, for lib's runc command line (lib/runtime/oci.ts's runtimeMain). */
export function runtimeCommands(createInit: CreateInit): RuntimeCommands {
  return { create: (globals, id, options) => create(globals, id, options, createInit), start, state, kill, delete: remove, exec,
    ps: (globals, id) => processesOf(existingContainer(globals, id), true) }; // containerd's `ctr task ps`
}

/** Where the container's cgroup goes: the spec's cgroupsPath (`/libpod_parent/libpod-ID`), else calf-runtime/ID. */
function cgroupOf(config: Spec, id: string): { parent: string; name: string } {
  const parts = (config.linux?.cgroupsPath ?? `/calf-runtime/${id}`).split('/').filter(Boolean);
  if (parts.some((p) => p.includes(':'))) throw new CalfError(`linux.cgroupsPath ${config.linux!.cgroupsPath}: systemd's slice:prefix:name is not implemented by calf-runtime`, { exitCode: EXIT_ERROR });
  return { parent: parts.slice(0, -1).join('/') || 'calf-runtime', name: parts.at(-1) ?? id };
}

// ─── create: everything up to the command, then wait for start ────────────────────────────────

async function create(globals: RuntimeGlobals, id: string, options: { bundle: string; pidFile?: string; consoleSocket?: string }, createInit: CreateInit): Promise<void> {
  const container = runtimeContainer(globals, id);
  if (container.record || fs.existsSync(container.dir)) throw new CalfError(`container with id ${id} already exists`, { exitCode: EXIT_ERROR });
  const config = readBundle(options.bundle); // first: a field calf refuses leaves nothing behind
  const where = cgroupOf(config, id);
  const console = connectConsole(config.process.terminal, options.consoleSocket); // -t: the init stage's fd 4, where openTerminal() sends the pty (given)
  fs.mkdirSync(globals.root, { recursive: true, mode: 0o700 });
  fs.mkdirSync(container.dir, { mode: 0o711 }); // EEXIST if another create won the race
  let child: ChildProcess | undefined;
  try {
    // TODO(17.1): between create and start the init stage must be set up and yet not have
    // run process.args. runc parks it on a FIFO in the state directory: make one at
    // container.fifo (mknod(2) with S_IFIFO: fifo(7)) that anyone may write (0622: after
    // start the container may run as another user), and tell the init stage where it is
    // (config.execFifo). Once createInit() has spawned it and the handshake is over, wait for
    // its "created" (createdInit(): undefined, or how it failed), then record the container
    // (saveRecord: its pid and that pid's start time) and write the pid file the engine asked
    // for (writePidFile). Why may this process exit now, and who waits for the container then?
    throw new CalfError('level 17 is not done yet: create the container (TODO 17.1 in runtime.ts)', { exitCode: EXIT_ERROR });
  } catch (err) {
    if (child?.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
    removeCgroupOf(where.name);
    fs.rmSync(container.dir, { recursive: true, force: true });
    throw err;
  } finally {
    if (console !== undefined) linux.close(console); // the init stage has its own copy
  }
}

/** Init side, first thing: the FIFO's host path is gone after pivot_root, so keep a handle on it (O_PATH: no open(2) that blocks). None under calf run. */
export function openExecFifo(fifo: string | undefined): number | undefined {
  return fifo === undefined ? undefined : fs.openSync(fifo, linux.O_PATH | linux.O_CLOEXEC);
}

/** Init side, last thing before the privileges and execve: say "created", then block until `start` (calf-runtime's containers only). */
export function awaitStart(fifo: number | undefined): void {
  if (fifo === undefined) return; // calf run: no start to wait for
  notifyCreated(); // create exits: the container is "created"
  // TODO(17.2): block here until `calf-runtime start`. Opening a FIFO for writing blocks until
  // a reader opens it (fifo(7)): open this fd's file for writing through /proc/self/fd/N (the
  // container's /proc now), write one byte for start to read, close both fds. Node's fs is
  // synchronous here on purpose: why would an asynchronous open not do, in this stage?
  throw new CalfError('level 17 is not done yet: wait for start on the exec FIFO (TODO 17.2 in runtime.ts)');
}

// ─── start, state, kill, delete ────────────────────────────────────────────────────────────────

function start(globals: RuntimeGlobals, id: string): void {
  const container = existingContainer(globals, id);
  const status = statusOf(container);
  if (status !== 'created') throw new CalfError(status === 'running' ? 'cannot start an already running container' : `cannot start a container that has ${status}`, { exitCode: EXIT_ERROR });
  // TODO(17.3): let the init stage go on. Open container.fifo for reading: without O_NONBLOCK
  // that open would block for ever if the init stage had died. Wait until the byte it writes
  // can be read (poll(2), POLLIN), checking meanwhile that record.pid is alive(); read it,
  // close, remove the FIFO (from now on statusOf() says running). Why does the spec want
  // start to return only once the process runs?
  throw new CalfError('level 17 is not done yet: start the container (TODO 17.3 in runtime.ts)', { exitCode: EXIT_ERROR });
}

function state(globals: RuntimeGlobals, id: string): ReturnType<typeof ociState> {
  return ociState(existingContainer(globals, id));
}

/** The container's processes: its first (the init stage, or the command it became), or with `all` every process in its cgroup. */
function processesOf(container: RuntimeContainer & { record: NonNullable<RuntimeContainer['record']> }, all: boolean): number[] {
  if (!all || !container.record.cgroup) return [container.record.pid];
  const pids = cgroupDirsOf(container.record.cgroup.name).flatMap((dir) => {
    try {
      return fs.readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
  return [...new Set(pids)];
}

function kill(globals: RuntimeGlobals, id: string, signal: number, all: boolean): void {
  const container = existingContainer(globals, id);
  if (statusOf(container) === 'stopped') throw new CalfError('container not running', { exitCode: EXIT_ERROR });
  // TODO(17.4): send signal to the container's processes (processesOf: its first, or with --all
  // every process of its cgroup): kill(2). One may have ended meanwhile (ESRCH): that is no
  // error. Why does a SIGTERM to a created container's init stage, PID 1 of its namespace, not
  // end it, when SIGKILL does (pid_namespaces(7))?
}

async function remove(globals: RuntimeGlobals, id: string, force: boolean): Promise<void> {
  const container = runtimeContainer(globals, id);
  if (!container.record) {
    if (force) return fs.rmSync(container.dir, { recursive: true, force: true }); // engines delete twice, and after every failed create
    throw new CalfError(`container ${id} does not exist`, { exitCode: EXIT_ERROR });
  }
  const found = container as RuntimeContainer & { record: NonNullable<RuntimeContainer['record']> };
  const status = statusOf(found);
  if (status === 'running' && !force) throw new CalfError(`cannot delete container ${id} that is not stopped: ${status}`, { exitCode: EXIT_ERROR });
  // TODO(17.5): a created container (its init stage waits on the FIFO), or with --force a
  // running one, is killed first: SIGKILL to every process of its cgroup; then wait until its
  // first process is gone (alive(), polled: it is the engine's child, not ours). Then remove
  // its cgroup (removeCgroupOf(record.cgroup.name)) and its state directory. Why must the
  // processes be gone before the cgroup's rmdir?
}

// ─── exec: one more process in the container (podman exec, ctr task exec) ─────────────────────

/**
 * `exec --process F [--pid-file P] [--detach] ID` (or `exec ID COMMAND…` by hand): the engine's
 * process.json, run in the container by level 16's exec stage. With --detach (both engines),
 * return once it runs: the engine waits for it, not us.
 */
async function exec(globals: RuntimeGlobals, id: string, options: { process: string | string[]; pidFile?: string; consoleSocket?: string; detach: boolean }): Promise<number | undefined> {
  const container = existingContainer(globals, id);
  const status = statusOf(container);
  if (status !== 'running') throw new CalfError(`cannot exec in a ${status} container`, { exitCode: EXIT_ERROR });
  const cgroup = container.record.cgroup ? cgroupDirsOf(container.record.cgroup.name) : [];
  const config = runtimeExecConfig(container, options.process, cgroup); // given: process.json, the container's namespaces by path, its filter
  const console = connectConsole(config.process.terminal, options.consoleSocket); // -t: as for create (given)
  // TODO(17.6): podman exec and ctr task exec. Start level 16's exec stage with config, inside
  // the container's PID namespace (inPidNamespaceOf; spawnExecStage below gives it the
  // engine's stdio, and the console). Then, as create did for the init stage: write its pid to
  // the pid file, and with --detach return once the stage has become the command
  // (untilExecuted), without waiting for it; without --detach, wait and return its exit code.
  // Once this call has exited, who is the command's parent, and how does the engine learn its
  // exit code?
  throw new CalfError('level 17 is not done yet: exec (TODO 17.6 in runtime.ts)', { exitCode: EXIT_ERROR });
}

/**
 * Given: the exec stage (exec.ts's), with the engine's stdin, stdout and stderr as its own, and
 * with -t the engine's console socket as its fd 4, where openTerminal() sends the pty's master.
 */
function spawnExecStage(config: ExecConfig, console: number | undefined): ChildProcess {
  const stdio: StdioOptions = console === undefined ? 'inherit' : ['inherit', 'inherit', 'inherit', 'ignore', console];
  return spawn(process.execPath, [initEntry(), EXEC_STAGE, JSON.stringify(config)], { stdio, env: initEnv() });
}
