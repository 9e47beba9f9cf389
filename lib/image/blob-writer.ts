/**
 * Writing a blob into the store from a stream (a registry's response, a file), checked on the
 * way: its bytes are hashed and counted while they are written under a temporary name in
 * `blobs/sha256/`, and only when the sha256 and the size are what the descriptor promised is
 * the file renamed to its digest. A blob's name in the store is therefore a promise kept: any
 * file named `blobs/sha256/<hex>` has that content, and a later pull can reuse it unread.
 *
 * ```
 * blobs/sha256/.tmp-<pid>-<random>   being written (its owner's pid: `calf cleanup` knows it)
 *        │ sha256 and size match ──► fsync, rename(2) ──► blobs/sha256/<hex>
 *        └ anything else (a wrong byte, one byte too many, calf killed) ──► never named
 * ```
 * @see https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { shortDigest, splitDigest } from './digest.js';
import { CalfError } from '../core/errors.js';
import { calfRoot } from '../core/root.js';
import type { LeftoverKind } from '../core/leftovers.js';
import { initStore } from './store.js';

/** How many bytes of a blob are written between two background flushes (see {@link writeBlob}). */
const FLUSH_EVERY = 8 << 20;

/** What a blob must be: its digest and size from the descriptor that named it. */
export interface ExpectedBlob {
  digest: string;
  size: number;
  /** names it in errors: `layer`, `config` */
  what?: string;
}

/** A blob whose content is not what its descriptor says: nothing was stored under its name. */
export class BlobMismatchError extends CalfError {
  constructor(readonly expected: ExpectedBlob, readonly got: { digest?: string; size: number; more?: boolean }) {
    const what = `${expected.what ?? 'blob'} ${shortDigest(expected.digest)}`;
    super(got.more || got.size !== expected.size
      ? `${what} is corrupt: ${got.more ? `more than ${expected.size} bytes` : `${got.size} bytes`} where its descriptor says ${expected.size}`
      : `${what} is corrupt: its content hashes to ${shortDigest(got.digest!)}`);
  }
}

/** The store's directory of sha256 blobs. */
function blobsDir(root: string): string {
  return path.join(root, 'images', 'blobs', 'sha256');
}

/** Where blob `digest` lives in the store (whether it is there or not). */
export function storedBlobPath(digest: string, root = calfRoot()): string {
  return path.join(blobsDir(root), splitDigest(digest)[1]);
}

/**
 * Whether the store has blob `expected`, with its size: it was verified when it went in (see
 * the module doc), so a pull can skip it without reading it again.
 */
export function hasBlob(expected: ExpectedBlob, root = calfRoot()): boolean {
  try {
    return fs.statSync(storedBlobPath(expected.digest, root)).size === expected.size;
  } catch {
    return false;
  }
}

/** Anything that yields bytes: a Node stream, a fetch Response's body (a web stream), an async iterable. */
export type ByteSource = NodeJS.ReadableStream | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Stream `source` into the store as the blob `expected`, verifying it on the way. Reading stops
 * as soon as the source gives more bytes than `expected.size` (a registry sending a gigabyte
 * for a 2 kB config is refused at 2 kB + 1). `onBytes` hears every chunk's length, for progress.
 * @throws BlobMismatchError when the digest or size differ; nothing is stored then
 */
export async function writeBlob(
  source: ByteSource,
  expected: ExpectedBlob,
  options: { root?: string; onBytes?: (bytes: number) => void } = {},
): Promise<void> {
  const root = options.root ?? calfRoot();
  const final = storedBlobPath(expected.digest, root); // also rejects a malformed digest, before any byte
  initStore(root); // the whole layout first, atomically: never a blobs/ without its oci-layout
  fs.mkdirSync(blobsDir(root), { recursive: true }); // a layout another tool made may lack it
  const temp = path.join(blobsDir(root), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const hash = createHash('sha256');
  let size = 0;
  // The fsync(2) below waits for every byte to reach the disk (~100 ms for 100 MB here). Most of
  // that wait is moved into the download: every FLUSH_EVERY bytes, an fdatasync(2) in the
  // background (one at a time) starts the writeback of what is written so far, so the last
  // sync finds little left to do. The end waits for it: the file is never closed under it.
  let flushed = 0;
  let flushing: Promise<void> | undefined;
  let fd: number | undefined;
  const flushSoFar = () => {
    if (flushing || fd === undefined || size - flushed < FLUSH_EVERY) return;
    flushed = size;
    flushing = new Promise<void>((resolve) => fs.fdatasync(fd!, () => resolve())).finally(() => (flushing = undefined));
  };
  // Hash and count each chunk on its way to the file, and stop at the first byte too many.
  const check = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > expected.size) {
        done(new BlobMismatchError(expected, { size, more: true }));
        return;
      }
      hash.update(chunk);
      options.onBytes?.(chunk.length);
      flushSoFar();
      done(null, chunk);
    },
    flush(done) {
      void (flushing ?? Promise.resolve()).then(() => done());
    },
  });
  const out = fs.createWriteStream(temp, { flags: 'wx', highWaterMark: 1 << 20 });
  out.once('open', (opened: number) => (fd = opened));
  try {
    // One pipeline, not an await per chunk: the writes queue up while the next bytes arrive.
    await pipeline(iterate(source), check, out);
    const digest = `sha256:${hash.digest('hex')}`;
    if (digest !== expected.digest || size !== expected.size) throw new BlobMismatchError(expected, { digest, size });
    // On disk before it has its name: after a crash, a named blob is a whole blob (fsync(2)
    // flushes the file, whichever descriptor asks).
    const file = await fs.promises.open(temp, 'r');
    await file.sync().finally(() => file.close());
    // Another calf may have stored the same blob meanwhile: rename(2) replaces it with equal bytes.
    fs.renameSync(temp, final);
  } catch (err) {
    // The file opens asynchronously: a source failing at once could beat the open(2), and the
    // file would appear after its removal. The pipeline destroyed it: wait until it is closed.
    if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
    await flushing;
    fs.rmSync(temp, { force: true });
    if (err instanceof CalfError || (err as NodeJS.ErrnoException).syscall) throw err; // ours, or the disk's
    // the source broke off (a connection reset mid-body: Node says "aborted"): one line
    throw new CalfError(`${expected.what ?? 'blob'} ${shortDigest(expected.digest)}: the download broke off after ${size} of ${expected.size} bytes (${(err as Error).message})`, { cause: err });
  }
}

function iterate(source: ByteSource): NodeJS.ReadableStream | AsyncIterable<Uint8Array> {
  if (typeof (source as ReadableStream).getReader === 'function') return Readable.fromWeb(source as import('node:stream/web').ReadableStream<Uint8Array>);
  return source as NodeJS.ReadableStream | AsyncIterable<Uint8Array>;
}

/** The temp files of calf processes no longer alive: what a killed pull or load left. */
function deadDownloads(root: string): { file: string; owner: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(blobsDir(root));
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const match = /^\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
    return match ? [{ file: path.join(blobsDir(root), name), owner: Number(match[1]) }] : [];
  });
}

/**
 * Remove the half-written blobs of calfs that are gone (a pull killed with SIGKILL): a new pull
 * calls it first, so one crash does not leave its partial download behind for ever.
 */
export function removeDeadDownloads(root = calfRoot()): void {
  for (const { file, owner } of deadDownloads(root)) {
    if (owner === process.pid) continue;
    try {
      process.kill(owner, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(file, { force: true });
    }
  }
}

/** `calf cleanup`: a blob half-downloaded by a pull that was killed. */
export const downloadLeftovers: LeftoverKind = {
  kind: 'blob download',
  find: (root) => deadDownloads(root).map(({ file, owner }) => ({
    what: `half-downloaded blob ${file}`, owner, remove: () => fs.rmSync(file, { force: true }),
  })),
};
