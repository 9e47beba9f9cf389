/**
 * Content addresses and compression, the small things every part of the image code needs:
 * the `sha256:<hex>` digest of some bytes, a short form of it for messages and ids, and which
 * compression a blob uses, from its first bytes.
 * @see https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests
 * @module
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { CalfError } from '../core/errors.js';

/** `sha256:<64 hex>` of `bytes`. */
export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Split `sha256:<64 hex>` into its algorithm and hex, rejecting anything else. */
export function splitDigest(digest: string): [string, string] {
  const match = /^(sha256):([0-9a-f]{64})$/.exec(digest);
  if (!match) throw new CalfError(`invalid digest "${digest}": calf expects sha256:<64 hex digits>`);
  return [match[1]!, match[2]!];
}

/** The first 12 hex digits of a digest or id, as Docker shows ids: `efe4ce6692b1`. */
export function shortId(digestOrHex: string): string {
  return digestOrHex.replace(/^sha256:/, '').slice(0, 12);
}

/** `sha256:ab12cd34ef56…`: a digest short enough for an error message. */
export function shortDigest(digest: string): string {
  const [algorithm] = splitDigest(digest);
  return `${algorithm}:${shortId(digest)}…`;
}

/** How a blob is compressed, from its magic number. */
export type Compression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

const MAGIC: [Compression, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['bzip2', [0x42, 0x5a, 0x68]],
];

/** The compression of the file at `path`, read from its first six bytes. */
export async function sniffCompression(path: string): Promise<Compression> {
  const file = await open(path, 'r');
  const { buffer, bytesRead } = await file.read(Buffer.alloc(6), 0, 6, 0).finally(() => file.close());
  const head = buffer.subarray(0, bytesRead);
  return MAGIC.find(([, bytes]) => bytes.every((b, i) => head[i] === b))?.[0] ?? 'none';
}
