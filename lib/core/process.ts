/**
 * Processes calf made, as the host sees them: is one still there, and is it still the same one.
 * @module
 */
import fs from 'node:fs';

/**
 * Is process `pid` alive (and, given its start time, still the process it was)? A pid is reused
 * once its process is gone: runc compares the start time from `/proc/PID/stat` for the same
 * reason, so a record naming a dead calf never takes a stranger for its owner. A zombie is not
 * alive: it has ended, and only waits for its parent to reap it (a `-d` monitor's parent, once
 * `calf run -d` has exited, is init or a subreaper, which may take its time).
 */
export function alive(pid: number, startTime?: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const fields = statFields(pid);
  if (!fields || fields[0] === 'Z' || fields[0] === 'X') return false; // state: zombie, or dead
  return startTime === undefined || Number(fields[19]) === startTime;
}

/**
 * When process `pid` started, in clock ticks since boot (field 22 of `/proc/PID/stat`), or
 * undefined when it is gone. The command name (field 2) may hold spaces and parentheses: the
 * fields are counted from its last `)`.
 * @see https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html
 */
export function processStartTime(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields && Number(fields[19]);
}

/** `/proc/PID/stat`'s fields from the third on (state, ppid, …), or undefined when it is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
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
