/**
 * A container's log (level 15): what its command wrote on stdout and stderr, kept by its monitor
 * in `<container dir>/container.log`, in **Docker's json-file format**: one JSON object per line
 * of output, `{"log":"hello\n","stream":"stdout","time":"2026-12-05T10:00:00.123Z"}` (Docker
 * writes nanoseconds; Node's clock gives milliseconds). podman's k8s-file format says the same
 * in plain text (`2026-12-05T10:00:00.123Z stdout F hello`); JSON costs a few bytes more per line
 * and needs no escaping rules of our own. The monitor writes it, `calf logs` reads it, and it
 * stays after the container stops, until `calf rm` removes the directory.
 *
 * Rotated by size, as Docker's `--log-opt max-size=10m --log-opt max-file=3`: when the next
 * record would take the file past `max-size`, it is renamed `container.log.1` (the older ones
 * `.2`, … up to `max-file - 1`, the oldest dropped) and a new one begun. calf's defaults: 10 MB, 2
 * files (Docker's json-file keeps everything unless told).
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { CalfError } from '../core/errors.js';
import { parseBytes } from '../cgroup/limits.js';
import { poll, POLLOUT } from '../linux/poll.js';

/** One record of the log: a line of output (with its newline, if it had one), which stream, when. */
export interface LogRecord {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

/** The log file of the container in `dir`. */
export function logPath(dir: string): string {
  return path.join(dir, 'container.log');
}

/** `--log-opt`'s options, as calf understands them. */
export interface LogOptions {
  /** rotate past this many bytes */
  maxSize: number;
  /** keep this many files, the current one included */
  maxFile: number;
}

export const DEFAULT_LOG_OPTIONS: LogOptions = { maxSize: 10 * 1024 * 1024, maxFile: 2 };

/** `--log-opt KEY=VALUE`'s parser: `max-size=10m`, `max-file=3`; repeatable. */
export function logOptArg(text: string, previous: Partial<LogOptions> = {}): Partial<LogOptions> {
  const [key, value = ''] = text.split(/=(.*)/s);
  if (key === 'max-size') return { ...previous, maxSize: parseBytes('--log-opt max-size', value) };
  if (key === 'max-file') {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1) throw new CalfError(`invalid --log-opt max-file=${value}: a number of files, at least 1`);
    return { ...previous, maxFile: n };
  }
  throw new CalfError(`unknown --log-opt ${key}: calf knows max-size and max-file`);
}

/** The monitor's end of a log: `append` one record's line (`JSON…\n`), rotating by size. */
export interface LogWriter {
  append(line: string): void;
  close(): void;
}

/** Open the container's log for appending, as its monitor does. */
export function openLog(dir: string, options: Partial<LogOptions> = {}): LogWriter {
  const { maxSize, maxFile } = { ...DEFAULT_LOG_OPTIONS, ...options };
  const file = logPath(dir);
  let fd = fs.openSync(file, 'a', 0o640);
  let size = fs.fstatSync(fd).size;
  return {
    append(line) {
      const bytes = Buffer.from(line);
      if (size > 0 && size + bytes.length > maxSize) {
        fs.closeSync(fd);
        rotate(file, maxFile);
        fd = fs.openSync(file, 'a', 0o640);
        size = 0;
      }
      fs.writeSync(fd, bytes);
      size += bytes.length;
    },
    close() {
      fs.closeSync(fd);
    },
  };
}

/** `log` → `log.1` → `log.2`…, keeping `maxFile` files in all. */
function rotate(file: string, maxFile: number): void {
  if (maxFile < 2) {
    fs.rmSync(file, { force: true });
    return;
  }
  for (let n = maxFile - 1; n >= 1; n--) {
    const from = n === 1 ? file : `${file}.${n - 1}`;
    try {
      fs.renameSync(from, `${file}.${n}`);
    } catch {
      // not there yet
    }
  }
}

/** The log's files, oldest first: `container.log.N` … `container.log.1`, `container.log`. */
export function logFiles(dir: string): string[] {
  const file = logPath(dir);
  const rotated = (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
    .map((n) => /^container\.log\.(\d+)$/.exec(n)).filter((m) => m !== null).map((m) => Number(m![1])).sort((a, b) => b - a);
  return [...rotated.map((n) => `${file}.${n}`), ...(fs.existsSync(file) ? [file] : [])];
}

/** Every record in the log, oldest first; a line that is not a record (a monitor killed mid-write) is skipped. */
export function readLog(dir: string): LogRecord[] {
  return logFiles(dir).flatMap((f) => parseRecords(readOrEmpty(f)));
}

/** The records in `text`, one per line; a last line without its newline is not one yet. */
export function parseRecords(text: string): LogRecord[] {
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a record still being written
  return lines.flatMap((line) => {
    try {
      const r = JSON.parse(line) as LogRecord;
      return typeof r.log === 'string' && (r.stream === 'stdout' || r.stream === 'stderr') ? [r] : [];
    } catch {
      return [];
    }
  });
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Pass a chunk of the container's output on to calf's own stdout (1) or stderr (2), all of it
 * (waiting while a non-blocking pipe is full).
 * @returns false when nobody reads it any more (EPIPE): the caller stops passing it on
 */
export function passOn(fd: 1 | 2, chunk: Buffer): boolean {
  for (let at = 0; at < chunk.length;) {
    try {
      at += fs.writeSync(fd, chunk, at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') poll(fd, POLLOUT, 1000);
      else if (code === 'EPIPE') return false;
      else throw err;
    }
  }
  return true;
}
