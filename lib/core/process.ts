/**
 * Processes calf made, as the host sees them: is one still there, and is it still the same one.
 * @module
 */
import fs from 'node:fs';

/**
 * Is process `pid` alive (and, given its start time, still the process it was)? A pid is reused
 * once its process is gone: runc compares the start time from `/proc/PID/stat` for the same
 * reason, so a record naming a dead calf never takes a stranger for its owner.
 */
export function alive(pid: number, startTime?: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return startTime === undefined || processStartTime(pid) === startTime;
}

/**
 * When process `pid` started, in clock ticks since boot (field 22 of `/proc/PID/stat`), or
 * undefined when it is gone. The command name (field 2) may hold spaces and parentheses: the
 * fields are counted from its last `)`.
 * @see https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html
 */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** A process as a record names it: its pid and its start time, so a reused pid is told apart. */
export interface ProcessRef {
  pid: number;
  startTime: number;
}

/** This process, or `pid`, as a {@link ProcessRef}; undefined when it is gone. */
export function processRef(pid = process.pid): ProcessRef | undefined {
  const startTime = processStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

/**
 * Block this thread for `ms`. Teardown runs in process 'exit' handlers, which must be
 * synchronous; Atomics.wait on a buffer nobody notifies is a sleep that needs no timer.
 */
export function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
