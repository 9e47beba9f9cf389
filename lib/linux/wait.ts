/**
 * Waiting for children: `<sys/wait.h>`, and how to do it next to libuv.
 *
 * libuv (so Node) reaps the children it spawned itself: on SIGCHLD it calls
 * `waitpid(pid, WNOHANG)` for each pid of its own `child_process` handles, and never
 * `waitpid(-1)`. Whoever else reaps one of those pids first steals its exit status: libuv then
 * gets `ECHILD`, skips it, and that child's `'exit'` event never comes. So in Node, wait only for
 * a pid Node did not spawn, by number ({@link waitpid} with that pid, or `P_PID`/`P_PIDFD`),
 * never for "any child" (`-1`, `P_ALL`, `P_PGID`) unless the wait leaves it a zombie (`WNOWAIT`).
 * A subreaper's adopted orphans are such pids: {@link reapAdopted}.
 * @module
 */
import fs from 'node:fs';
import { libc, check, flagNames, Bare, type Layout } from './libc.js';

/** `waitpid`/`waitid` option: return at once when no child has changed state. */
export const WNOHANG = 1;
/** `waitid` option: wait for children that have stopped (`waitpid`'s `WUNTRACED`). */
export const WSTOPPED = 2;
/** `waitid` option: wait for children that have exited. */
export const WEXITED = 4;
/** `waitid` option: report the child but leave it a zombie, to be waited for again. */
export const WNOWAIT = 0x01000000;

/** `waitid`'s `idtype` (`idtype_t`). */
export const P_ALL = 0;
export const P_PID = 1;
export const P_PGID = 2;
/** `id` is a pidfd (Linux 5.4): see `pidfd_open`. */
export const P_PIDFD = 3;

/** `si_code` of a SIGCHLD `siginfo_t` (what `waitid` fills in). */
export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const CLD_DUMPED = 3;

const WAIT_FLAGS = { WNOHANG, WSTOPPED, WEXITED, WNOWAIT };
const IDTYPES = ['P_ALL', 'P_PID', 'P_PGID', 'P_PIDFD'];

/** Child exited normally: {@link WEXITSTATUS} has its code. */
export function WIFEXITED(status: number): boolean {
  return (status & 0x7f) === 0;
}
/** The exit code (0–255) of a child that exited. */
export function WEXITSTATUS(status: number): number {
  return (status & 0xff00) >> 8;
}
/** Child was killed by a signal: {@link WTERMSIG} has it. */
export function WIFSIGNALED(status: number): boolean {
  return ((status & 0x7f) + 1) >> 1 > 0 && (status & 0x7f) !== 0x7f;
}
/** The signal that killed a child. */
export function WTERMSIG(status: number): number {
  return status & 0x7f;
}

const _waitpid = libc.func('int waitpid(int pid, _Out_ int *wstatus, int options)');
const _waitid = libc.func('int waitid(int idtype, uint32_t id, _Out_ uint8_t *infop, int options)');

/**
 * Wait for child `pid` to change state (`-1`: any child; see the module's note for why not in
 * Node), blocking the calling thread (Node's event loop too) unless `WNOHANG`. Reaps it: its pid is
 * free for reuse afterwards.
 * @returns `{ pid, status }` (decode `status` with {@link WIFEXITED}…), or `pid` 0 with `WNOHANG`
 *   when it has not changed state yet
 * @see https://man7.org/linux/man-pages/man2/waitpid.2.html
 */
export function waitpid(pid: number, options = 0): { pid: number; status: number } {
  const status = [0];
  const waited = check(_waitpid(pid, status, options) as number, 'waitpid', [pid, flagNames(options, WAIT_FLAGS)]);
  return { pid: waited, status: status[0]! };
}

/**
 * `siginfo_t` as `waitid` fills it in for a child: 128 bytes, the SIGCHLD fields in its union at
 * 16 on 64-bit Linux (the union holds pointers).
 */
export const SIGINFO = {
  type: 'siginfo_t', sizeof: 128, offsets: { si_signo: 0, si_errno: 4, si_code: 8, si_pid: 16, si_uid: 20, si_status: 24 },
} as const satisfies Layout;

/** What {@link waitid} reports about a child. */
export interface ChildInfo {
  si_pid: number;
  si_uid: number;
  /** `CLD_EXITED`, `CLD_KILLED`, `CLD_DUMPED`… */
  si_code: number;
  /** the exit code with `CLD_EXITED`, else the signal */
  si_status: number;
}

/**
 * Wait for a child picked by `idtype`/`id` (`P_PID` and a pid, `P_PIDFD` and a pidfd) to change
 * state as `options` say (`WEXITED` and/or `WSTOPPED`, plus `WNOHANG`, `WNOWAIT`). Blocks the
 * calling thread unless `WNOHANG`. `WNOWAIT` leaves the child a zombie: a way to look without
 * taking its status from whoever else waits for it (libuv).
 * @returns the child's info, or `undefined` with `WNOHANG` when no child qualified yet
 * @see https://man7.org/linux/man-pages/man2/waitid.2.html
 */
export function waitid(idtype: number, id: number, options: number): ChildInfo | undefined {
  const info = Buffer.alloc(SIGINFO.sizeof);
  check(_waitid(idtype, id, info, options) as number, 'waitid', [new Bare(IDTYPES[idtype] ?? String(idtype)), id, flagNames(options, WAIT_FLAGS)]);
  const at = SIGINFO.offsets;
  const si_pid = info.readInt32LE(at.si_pid!);
  if (si_pid === 0) return undefined; // WNOHANG, nothing yet: the kernel zeroed si_pid
  return { si_pid, si_uid: info.readUInt32LE(at.si_uid!), si_code: info.readInt32LE(at.si_code!), si_status: info.readInt32LE(at.si_status!) };
}

/** The pid, state letter and parent pid in `/proc/PID/stat`, or undefined when it is gone. */
function stat(pid: number): { state: string; ppid: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // "pid (comm) S ppid …": comm may hold spaces and parentheses, so split after the last ")"
  const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: state!, ppid: Number(ppid) };
}

/**
 * Reap this process's exited children that Node did not spawn: the orphans a child subreaper
 * (`prctl(PR_SET_CHILD_SUBREAPER)`) adopted. Call it on `process.on('SIGCHLD')` (libuv delivers
 * the signal to every listener; its own handler reaps its own children). `spawned` are the pids of
 * the `child_process` children whose `'exit'` has not come yet: their zombies are left to libuv.
 *
 * Finds them by reading `/proc/PID/stat` (a zombie whose parent is this process), then
 * `waitpid(pid, WNOHANG)` each by number, so it never takes a status libuv waits for. A pid Node
 * spawns is known as soon as `spawn()` returns, before any callback runs, so the set is exact at
 * every callback.
 * @returns each child reaped, with its wait status
 */
export function reapAdopted(spawned: Iterable<number>): { pid: number; status: number }[] {
  const ours = new Set(spawned);
  const reaped: { pid: number; status: number }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || ours.has(pid)) continue;
    const s = stat(pid);
    if (s?.ppid !== process.pid || s.state !== 'Z') continue;
    try {
      const r = waitpid(pid, WNOHANG);
      if (r.pid === pid) reaped.push(r);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ECHILD') throw err; // someone else reaped it meanwhile
    }
  }
  return reaped;
}
