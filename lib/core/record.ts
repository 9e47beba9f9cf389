/**
 * Records on disk that other calf processes read while they change: container states, cgroup
 * and network definitions, leases. Written whole under a temporary name, then renamed, so a
 * reader sees the old record or the new one, never half of one (rename(2) is atomic within a
 * filesystem), and a calf killed in between leaves only a temporary file named after its pid.
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';

/** The temporary name a record is written under by process `pid`: `<file>.tmp-<pid>`. */
export const TEMP_SUFFIX = /\.tmp-(\d+)$/;

/**
 * Write `data` to `file` atomically: to `<file>.tmp-<pid>`, then rename(2) over `file`. On a
 * failure (a full disk: ENOSPC) the temporary file goes, and `file` is as it was.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(temp, data);
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}

/** Write `value` as JSON to `file`, atomically. */
export function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** The JSON in `file`, or undefined when it is missing or not JSON (a record from a killed calf). */
export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
