/**
 * Signals: `kill(2)` from `<signal.h>`.
 * @module
 */
import os from 'node:os';
import { libc, check, Bare } from './libc.js';

const _kill = libc.func('int kill(int pid, int sig)');

/** `SIGTERM`… by number, for error messages. */
export function signalName(sig: number): string {
  if (sig === 0) return '0';
  return Object.entries(os.constants.signals).find(([, n]) => n === sig)?.[0] ?? String(sig);
}

/**
 * Send signal `sig` (a number: `os.constants.signals.SIGTERM`; 0 only checks that the process
 * exists and may be signalled) to process `pid`, or to process group `-pid`, or (`-1`) to every
 * process the caller may signal. Node's `process.kill` is this call with a name for `sig`.
 *
 * A pid is only a number: once its process was reaped the number may be a new process's, so a
 * pid read from a file (calf's state record) can name a stranger. Check the process's start time
 * first, or better, use `pidfd_open` and `pidfd_send_signal`, which cannot hit a recycled pid.
 * The first process of a PID namespace gets only the signals it has a handler for, from inside;
 * from outside, SIGKILL and SIGSTOP always, the others only if it has a handler.
 * @see https://man7.org/linux/man-pages/man2/kill.2.html
 */
export function kill(pid: number, sig: number): void {
  check(_kill(pid, sig), 'kill', [pid, new Bare(signalName(sig))]);
}
