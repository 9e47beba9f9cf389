//@ Level 16's lesson, in a file of its own beside calf.ts: written out as levels/16-exec/exec.ts
//@ (skeleton) and solutions/16-exec/exec.ts, with the tags of ladder/calf.ts (only s16, 16 and
//@ todo16: everything here is new in level 16). calf.ts wires it: exec() and execStage().
/**
 * `calf exec`: one more process in a running container, as `docker exec` starts one.
 *
 * The kernel knows no containers: one is a first process's namespaces, its cgroup, its root and
 * its privileges. To run a command "in" it, calf re-executes itself once more, as an exec stage
 * that joins each of them from the outside, then becomes the command the way init did:
 *
 * ```
 *   calf exec (parent, on the host)                 exec stage (re-executed: calf:[exec])
 *   ───────────────────────────────                 ──────────────────────────────────────
 *   find the container: its record, its PID 1
 *   setns(PID 1's pid ns) ── spawn ───────────────▶ born in the container's PID namespace
 *   setns(back to the host's)                       open /proc/PID/ns/{ipc,uts,net,mnt}; still PID 1?
 *                                                   join its cgroup: "0" > cgroup.procs
 *                                                   unshare(CLONE_FS); setns ipc, uts, net, then mnt
 *                              -t: the pty master ◀ a pty of the container's devpts (-t)
 *   relay: signals; the terminal with -t            chdir; capabilities, user, no_new_privs, seccomp
 *   exit code: the command's, or 128+N              execve(COMMAND): the stage becomes the command
 * ```
 * Synchronous from the first setns to execve, as init is: setns, like unshare, moves the calling
 * thread only. The steps after the joins (the privileges, the user, the filter, execve) are
 * init's own: calf.ts's startProcess(), shared by both stages.
 * @see https://man7.org/linux/man-pages/man2/setns.2.html
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import * as linux from '../lib/linux/index.js';
import {
  CalfError, EXIT_ERROR, alive, processStartTime, initEntry, initEnv, mergeEnv, readConfig, hasNamespace, consoleSizeOf,
  type ExecOptions, type Found, type NamespaceType, type ProcessRef, type Spec,
} from '../lib/runtime/index.js';
import { cgroupDirsOf } from '../lib/cgroup/index.js';
import { receiveFd, relayTerminal } from '../lib/runtime/terminal.js';

/** The hidden command that starts the exec stage: `node <bundle> exec-stage '<config as JSON>'`. */
export const EXEC_STAGE = 'exec-stage';

/** The exec stage's fd on which monitor.ts's openTerminal() sends calf exec the pty's master (-t), as the init stage sends it to the monitor. */
const CONSOLE_FD = 4;

/** What the exec stage gets: an OCI config, and the container it is for. */
export interface ExecConfig extends Spec {
  /** the container: its id, and its first process as the host sees it, whose namespaces linux.namespaces names */
  container: ProcessRef & { id: string };
  /** its cgroup's directories on the host: one per v1 hierarchy, or one (v2) */
  cgroup: string[];
}

/**
 * The namespaces the exec stage joins, in this order: their OCI type, their file in
 * `/proc/PID/ns/`, their `CLONE_NEW*` flag. The PID namespace is not here: the stage is born in it.
 */
const NAMESPACES: readonly { type: NamespaceType; file: string; flag: number }[] = [
  { type: 'ipc', file: 'ipc', flag: linux.CLONE_NEWIPC },
  { type: 'uts', file: 'uts', flag: linux.CLONE_NEWUTS },
  { type: 'network', file: 'net', flag: linux.CLONE_NEWNET },
  { type: 'mount', file: 'mnt', flag: linux.CLONE_NEWNS }, // last: see joinNamespaces()
];

// ─── Parent side: calf exec, on the host ──────────────────────────────────────────────────────

/**
 * The exec stage's config: the container's own (its config.json, as init got it), the process
 * replaced by this one, which is as confined as its PID 1 (the same user, capabilities,
 * no_new_privs and seccomp filter), with exec's flags over it, and PID 1's namespaces to join,
 * by path: `linux.namespaces[].path` is how the OCI spec says "join this one, don't make one".
 */
export function execConfig(container: Found & { process: ProcessRef }, options: ExecOptions): ExecConfig {
  const config = readConfig(container.dir);
  if (!config) throw new CalfError(`container ${container.state.id} has no readable config.json`);
  const pid = container.process.pid;
  if (options.workdir !== undefined && !options.workdir.startsWith('/')) {
    throw new CalfError(`the working directory '${options.workdir}' is invalid, it needs to be an absolute path`);
  }
  return {
    ociVersion: config.ociVersion,
    process: {
      ...config.process, // user, capabilities, noNewPrivileges
      args: options.command,
      env: mergeEnv(config.process.env, options.env), // the container's environment, -e over it
      cwd: options.workdir ?? config.process.cwd,
      ...(options.user === undefined ? {} : { user: { uid: 0, gid: 0, username: options.user } }),
      terminal: options.tty,
      ...(options.tty ? consoleSizeOf() : {}), // calf's terminal's: the stage sizes the pty before the command starts
    },
    linux: {
      namespaces: NAMESPACES.filter((ns) => hasNamespace(config, ns.type)).map((ns) => ({ type: ns.type, path: `/proc/${pid}/ns/${ns.file}` })),
      ...(config.linux?.seccomp ? { seccomp: config.linux.seccomp } : {}),
    },
    container: { id: container.state.id, ...container.process },
    cgroup: cgroupDirsOf(container.state.id),
  };
}

/** Start the exec stage inside the container's PID namespace: the only way into one is to be born there. */
export function inPidNamespaceOf<T>(container: ProcessRef, start: () => T): T {
  //@todo16 {
  // TODO(16.1): a process never changes its PID namespace. setns(2) with CLONE_NEWPID, like
  // level 06's unshare, changes only the namespace of the calling thread's *next children*. Join
  // the container's (PID 1's /proc/PID/ns/pid, opened, then checked with alive()) around start(),
  // and go back to the host's afterwards, as inNewPidNamespace() does in calf.ts. What would
  // `echo $$` print, and what would `ps` show, if the exec stage joined it itself?
  //@}
  //@todo16: return start();
  //@16 {
  const host = fs.openSync('/proc/self/ns/pid', 'r');
  const target = fs.openSync(`/proc/${container.pid}/ns/pid`, 'r');
  try {
    if (!alive(container.pid, container.startTime)) throw new CalfError('the container stopped', { exitCode: EXIT_ERROR }); // the fd may be another process's
    linux.setns(target, linux.CLONE_NEWPID); // this thread's next child: in the container's namespace
    return start();
  } finally {
    linux.setns(host, linux.CLONE_NEWPID); // and its later ones in the host's again
    fs.closeSync(target);
    fs.closeSync(host);
  }
  //@}
}

/**
 * Spawn the exec stage: this file's bundle again, as `exec-stage`, with calf's stdout and
 * stderr; its stdin too with -i (without it, /dev/null: docker exec attaches stdin only with -i).
 * With -t, fd 4 (CONSOLE_FD) is a socket on which the stage sends the master of the pty it opens, and calf
 * relays between its own terminal and that master.
 */
export function startExecStage(config: ExecConfig, interactive: boolean): ChildProcess {
  const args = [initEntry(), EXEC_STAGE, JSON.stringify(config)];
  if (!config.process.terminal) {
    return spawn(process.execPath, args, { stdio: [interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'], env: initEnv() });
  }
  const [ours, theirs] = linux.socketpair(linux.AF_UNIX, linux.SOCK_STREAM | linux.SOCK_CLOEXEC);
  try {
    const stdio: ('ignore' | 'inherit' | number)[] = ['ignore', 'inherit', 'inherit', 'ignore', 'ignore'];
    stdio[CONSOLE_FD] = theirs; // where openTerminal() sends the master
    const child = spawn(process.execPath, args, { stdio, env: initEnv() });
    linux.close(theirs); // the stage's now: its exit ends our wait
    const master = receiveFd(ours);
    if (master !== undefined) relayTerminal(master, child, interactive);
    return child;
  } finally {
    linux.close(ours);
  }
}

// ─── Container side: the exec stage, re-executed by calf exec ─────────────────────────────────

/** Open PID 1's namespaces, all of them first; then make sure they are PID 1's. */
export function openNamespaces(config: ExecConfig): { type: NamespaceType; fd: number }[] {
  //@todo16 {
  // TODO(16.2): a namespace is joined through a file that stands for it (namespaces(7)):
  // config.linux.namespaces lists PID 1's, /proc/PID/ns/*, by path. Open every one of them,
  // then check that config.container is still the container's first process: a pid is reused
  // once its process is gone, a start time is not (lib's processStartTime() reads it from
  // /proc/PID/stat). Why check after opening, and not before? And why can't the stage ask
  // kill(2) whether that pid is alive, as lib's alive() does?
  //@}
  //@todo16: throw new Error('level 16 is not done yet: open the container\'s namespaces (TODO 16.2 in exec.ts)');
  //@16 {
  const opened = (config.linux?.namespaces ?? []).map((ns) => ({ type: ns.type, fd: fs.openSync(ns.path!, 'r') }));
  // Still PID 1? Not with kill(pid, 0): the stage is in the container's PID namespace, where PID 1's
  // number is 1. /proc is still the host's (until the mount namespace), with host pids.
  if (processStartTime(config.container.pid) !== config.container.startTime) {
    throw new CalfError(`container ${config.container.id} is not running`, { exitCode: EXIT_ERROR }); // what we opened may be a stranger's
  }
  return opened;
  //@}
}

/** Join the container's cgroup, so that its limits and its accounting cover the command too. */
export function enterCgroup(dirs: readonly string[]): void {
  //@todo16 {
  // TODO(16.3): the command must count against the container's --memory and --pids-limit. Move
  // this process into each directory of its cgroup, `dirs` (one per v1 hierarchy, or one on
  // v2), through their cgroup.procs (cgroups(7)), as level 09 moved the init stage. Here the
  // stage moves itself: which pid does it write? Why before it joins the mount namespace, and
  // why not from calf exec, after the spawn?
  //@}
  //@16 {
  for (const dir of dirs) fs.writeFileSync(`${dir}/cgroup.procs`, '0'); // 0: the writer, in whatever PID namespace it is
  //@}
}

/** Move this thread into each namespace opened, in order: ipc, uts, net, and the mount namespace last. */
export function joinNamespaces(namespaces: readonly { type: NamespaceType; fd: number }[]): void {
  //@todo16 {
  // TODO(16.4): setns(2) moves the calling thread into the namespace behind an fd (NAMESPACES
  // gives each type's CLONE_NEW* flag, which setns checks). The mount namespace refuses a thread
  // that shares its root and working directory with other threads, as Node's do (EINVAL), until
  // it has a copy of its own (unshare(2), CLONE_FS). Then join each, closing its fd. Why must the
  // mount namespace come last?
  //@}
  //@todo16: throw new Error('level 16 is not done yet: join the container\'s namespaces (TODO 16.4 in exec.ts)');
  //@16 {
  linux.unshare(linux.CLONE_FS); // a root and cwd of this thread's own: setns(mnt) replaces them
  for (const { type, fd } of namespaces) {
    linux.setns(fd, NAMESPACES.find((ns) => ns.type === type)!.flag);
    linux.close(fd);
  }
  //@}
}
