/**
 * A tar writer that writes what it is told, valid or not: any typeflag, numeric fields in octal,
 * base-256 or garbage, a wrong checksum, PAX and GNU long-name records, sizes that lie. tar-stream's
 * packer refuses most of that, and a fuzzer needs exactly that.
 * @see https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_06
 */

/** A numeric header field: a number (written in octal, or base-256 when it does not fit), or raw bytes. */
export type NumberField = number | Buffer;

/** One header block and its content. */
export interface RawEntry {
  /** written into the 100-byte name field (and, when longer and `prefix` is unset, split into the ustar prefix) */
  name: string | Buffer;
  /** the typeflag byte: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, 'x' pax, 'L' GNU long name… */
  type: string;
  data?: Buffer;
  mode?: NumberField;
  uid?: NumberField;
  gid?: NumberField;
  /** the header's size; by default the data's length */
  size?: NumberField;
  mtime?: NumberField;
  linkname?: string | Buffer;
  devmajor?: NumberField;
  devminor?: NumberField;
  prefix?: string | Buffer;
  /** 'ustar' (default), 'gnu' (`ustar  \0`), 'v7' (no magic) */
  format?: 'ustar' | 'gnu' | 'v7';
  /** write a wrong checksum */
  badChecksum?: boolean;
  /** how many data bytes to write (default: all of `data`, padded to 512); fewer makes a lying header */
  writeData?: number;
}

const BLOCK = 512;

function field(buf: Buffer, offset: number, length: number, value: NumberField | undefined, fallback: number): void {
  const v = value ?? fallback;
  if (Buffer.isBuffer(v)) {
    v.copy(buf, offset, 0, Math.min(v.length, length));
    return;
  }
  const octal = Math.trunc(Math.abs(v)).toString(8);
  if (v >= 0 && octal.length <= length - 1) {
    buf.write(octal.padStart(length - 1, '0'), offset, 'latin1');
    return;
  }
  // base-256: the first byte 0x80 (positive) or 0xff (negative, two's complement)
  let n = BigInt(Math.trunc(v));
  if (n < 0n) n = (1n << BigInt(8 * length)) + n;
  for (let i = length - 1; i >= 0; i--) {
    buf[offset + i] = Number(n & 0xffn);
    n >>= 8n;
  }
  buf[offset] = v < 0 ? 0xff : 0x80;
}

function text(buf: Buffer, offset: number, length: number, value: string | Buffer | undefined): void {
  if (value === undefined) return;
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value);
  bytes.copy(buf, offset, 0, Math.min(bytes.length, length));
}

/** The 512-byte header of `entry`. */
export function header(entry: RawEntry): Buffer {
  const buf = Buffer.alloc(BLOCK);
  let name = Buffer.isBuffer(entry.name) ? entry.name : Buffer.from(entry.name);
  let prefix = entry.prefix === undefined ? undefined : Buffer.isBuffer(entry.prefix) ? entry.prefix : Buffer.from(entry.prefix);
  if (prefix === undefined && name.length > 100 && (entry.format ?? 'ustar') === 'ustar') {
    // Split at a slash so that the last part fits, as ustar does; what does not fit is cut.
    const slash = name.lastIndexOf('/', name.length - 2);
    if (slash > 0 && name.length - slash - 1 <= 100) {
      prefix = name.subarray(0, slash);
      name = name.subarray(slash + 1);
    }
  }
  text(buf, 0, 100, name);
  field(buf, 100, 8, entry.mode, 0o644);
  field(buf, 108, 8, entry.uid, 0);
  field(buf, 116, 8, entry.gid, 0);
  field(buf, 124, 12, entry.size, entry.data?.length ?? 0);
  field(buf, 136, 12, entry.mtime, 1_600_000_000);
  buf.write(entry.type.slice(0, 1), 156, 'latin1');
  text(buf, 157, 100, entry.linkname);
  const format = entry.format ?? 'ustar';
  if (format === 'ustar') buf.write('ustar\u000000', 257, 'latin1');
  if (format === 'gnu') buf.write('ustar  \u0000', 257, 'latin1');
  field(buf, 329, 8, entry.devmajor, 0);
  field(buf, 337, 8, entry.devminor, 0);
  text(buf, 345, 155, prefix);
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of buf) sum += byte;
  if (entry.badChecksum) sum += 1;
  buf.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return buf;
}

/** Header, data and padding of one entry. */
export function entryBytes(entry: RawEntry): Buffer {
  const data = entry.data ?? Buffer.alloc(0);
  const written = data.subarray(0, entry.writeData ?? data.length);
  const pad = (BLOCK - (written.length % BLOCK)) % BLOCK;
  return Buffer.concat([header(entry), written, Buffer.alloc(pad)]);
}

/** A PAX extended header (`x`, or `g` for global) carrying `records`, `key=value` each. */
export function pax(records: [string, string | Buffer][], global = false, lengths: 'right' | 'wrong' = 'right'): RawEntry {
  const parts = records.map(([key, value]) => {
    const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    if (lengths === 'wrong') len += 3;
    return Buffer.concat([Buffer.from(String(len)), body]);
  });
  return { name: 'PaxHeaders/x', type: global ? 'g' : 'x', data: Buffer.concat(parts) };
}

/** A GNU long name (`L`) or long link name (`K`) record for the entry after it. */
export function gnuLong(kind: 'L' | 'K', value: string | Buffer): RawEntry {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value);
  return { name: '././@LongLink', type: kind, data: Buffer.concat([bytes, Buffer.alloc(1)]), format: 'gnu' };
}

/** A tar of `entries`, with the two zero blocks that end an archive unless `end` is false. */
export function tar(entries: RawEntry[], end = true): Buffer {
  return Buffer.concat([...entries.map(entryBytes), ...(end ? [Buffer.alloc(2 * BLOCK)] : [])]);
}
