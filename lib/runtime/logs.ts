/**
 * `calf logs [-f] [--tail N] [-t]` (level 15): a container's log (lib/runtime/log.ts) back on
 * stdout and stderr, each line on the stream it was written to, as `docker logs` does.
 * @module
 */
import fs from 'node:fs';
import { sleep } from '../core/process.js';
import { logFiles, logPath, parseRecords, type LogRecord } from './log.js';
import { conditionOf, readState } from './state.js';

/**
 * Print the log of the container in `dir`: the last `tail` lines, each with its time when
 * `timestamps`; with `follow`, then what it writes next, until it has stopped (or is removed).
 * Synchronous: a follower polls the file every 100 ms, and keeps reading a file that was
 * rotated away under it until its end before it opens the new one.
 */
export function showLog(dir: string, options: { follow: boolean; tail: number; timestamps: boolean }): void {
  const print = (r: LogRecord): void => {
    fs.writeSync(r.stream === 'stderr' ? 2 : 1, options.timestamps ? `${r.time} ${r.log}` : r.log);
  };
  // Open the current file first: everything before its present end is printed now, the rest followed.
  let fd = openOrUndefined(logPath(dir));
  let offset = fd === undefined ? 0 : fs.fstatSync(fd).size;
  const older = logFiles(dir).filter((f) => f !== logPath(dir)).map((f) => fs.readFileSync(f, 'utf8')).join('');
  const current = fd === undefined ? '' : readRange(fd, 0, offset);
  const records = parseRecords(older + current);
  offset = Buffer.byteLength(current.slice(0, current.lastIndexOf('\n') + 1)); // a half-written last line is read again
  for (const r of options.tail === Infinity ? records : records.slice(Math.max(0, records.length - options.tail))) print(r);
  if (!options.follow) {
    if (fd !== undefined) fs.closeSync(fd);
    return;
  }
  for (;;) {
    const state = readState(dir);
    const done = !state || ['exited', 'lost', 'dead'].includes(conditionOf(state));
    if (fd !== undefined) {
      const size = fs.fstatSync(fd).size;
      const text = readRange(fd, offset, size);
      for (const r of parseRecords(text)) print(r);
      offset += Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1));
      const now = openOrUndefined(logPath(dir));
      if (now !== undefined && fs.fstatSync(now).ino !== fs.fstatSync(fd).ino && offset >= fs.fstatSync(fd).size) {
        fs.closeSync(fd); // rotated, and read to its end: go on with the new file
        fd = now;
        offset = 0;
        continue;
      }
      if (now !== undefined) fs.closeSync(now);
    } else {
      fd = openOrUndefined(logPath(dir));
    }
    if (done) break; // checked before the last read: nothing it wrote before it stopped is missed
    sleep(100);
  }
  if (fd !== undefined) fs.closeSync(fd);
}

function openOrUndefined(file: string): number | undefined {
  try {
    return fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
}

function readRange(fd: number, from: number, to: number): string {
  if (to <= from) return '';
  const buffer = Buffer.alloc(to - from);
  const n = fs.readSync(fd, buffer, 0, buffer.length, from);
  return buffer.toString('utf8', 0, n);
}
