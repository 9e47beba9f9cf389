/**
 * What `calf pull` prints, as `docker pull` does: a line per step, and one line per layer whose
 * status changes in place on a terminal (`Pulling fs layer` → `Downloading [==>   ] 1.2MB/3.4MB`
 * → `Download complete`). Off a terminal each status is a line of its own and there are no
 * bars, so a log reads top to bottom. `-q` prints only the image's name, at the end.
 * @module
 */

/** Where a pull reports what it does. */
export interface PullOutput {
  /** a line of its own: `latest: Pulling from library/busybox`, `Digest: sha256:…` */
  line(text: string): void;
  /** layer `id`'s status (`Pulling fs layer`, `Download complete`, `Already exists`) */
  layer(id: string, status: string): void;
  /** layer `id` has `done` of its `total` bytes: a bar on a terminal, nothing elsewhere */
  bytes(id: string, done: number, total: number): void;
  /** the last line, printed even with `-q`: the image's full name */
  result(text: string): void;
}

/** A {@link PullOutput} writing to `stream`: bars only when it is a terminal, only the result when `quiet`. */
export function pullOutput(stream: NodeJS.WriteStream, options: { quiet?: boolean } = {}): PullOutput {
  if (options.quiet) {
    return { line() {}, layer() {}, bytes() {}, result: (text) => { stream.write(`${text}\n`); } };
  }
  if (!stream.isTTY) {
    return {
      line: (text) => { stream.write(`${text}\n`); },
      layer: (id, status) => { stream.write(`${id}: ${status}\n`); },
      bytes() {},
      result: (text) => { stream.write(`${text}\n`); },
    };
  }
  // On a terminal: every line printed so far, by layer id (null for a plain line), so a layer's
  // line can be rewritten where it is: cursor up, clear, write, cursor back down.
  const lines: (string | null)[] = [];
  const drawn = new Map<string, number>();
  const draw = (id: string, text: string): void => {
    const at = lines.indexOf(id);
    if (at === -1) {
      lines.push(id);
      stream.write(`${id}: ${text}\n`);
      return;
    }
    const up = lines.length - at;
    stream.write(`\x1b[${up}A\r\x1b[2K${id}: ${text}\x1b[${up}B\r`);
  };
  return {
    line: (text) => {
      lines.push(null);
      stream.write(`${text}\n`);
    },
    layer: (id, status) => draw(id, status),
    bytes: (id, done, total) => {
      const now = Date.now();
      if (done < total && now - (drawn.get(id) ?? 0) < 100) return; // ten redraws a second is smooth enough
      drawn.set(id, now);
      draw(id, `Downloading ${bar(done, total)} ${size(done)}/${size(total)}`);
    },
    result: (text) => {
      lines.push(null);
      stream.write(`${text}\n`);
    },
  };
}

/** Docker's bar: `[=====>        ]`, 50 columns. */
function bar(done: number, total: number): string {
  const width = 50;
  const filled = total > 0 ? Math.min(width, Math.floor((done / total) * width)) : 0;
  return `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === width ? '=' : '>') : ''}${' '.repeat(width - filled)}]`;
}

/** Docker's sizes: decimal units, three significant digits (`1.23MB`). */
function size(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB'];
  let n = bytes;
  let u = 0;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return `${u === 0 ? n : n.toPrecision(3)}${units[u]}`;
}
