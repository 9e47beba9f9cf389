/**
 * Unpack image layers into a directory: the flat rootfs a container starts from.
 *
 * A layer is a tar (usually gzipped) of what changed: new and modified files, plus OCI
 * *whiteouts* for what was deleted (`.wh.NAME` hides NAME, `.wh..wh..opq` hides everything the
 * layers below put in its directory). Applying the layers in order gives the image's filesystem.
 *
 * A layer is untrusted input, so every entry's destination is worked out the way the kernel would
 * resolve it, symlinks included, and the entry is refused if that leaves the target directory:
 * otherwise an image could write `/etc/cron.d/x` on the host.
 * @see https://github.com/opencontainers/image-spec/blob/main/layer.md
 * @module
 */
import {
  chmodSync, closeSync, createReadStream, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync,
  lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, unlinkSync,
  writeSync, constants, type Stats,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { extract as tarExtract, Header } from 'tar-stream';
import type { ResolvedImage } from './store.js';
import { shortDigest, sniffCompression } from './digest.js';
import { zstdDecompressor, zstdRefusal } from './media-types.js';
import { mknod, makedev, S_IFBLK, S_IFCHR, S_IFIFO } from '../linux/stat.js';
import { lsetxattr } from '../linux/xattr.js';

/** A layer entry that would be written outside the directory being unpacked into. */
export class UnsafeLayerError extends Error {
  constructor(
    /** what was being unpacked: `layer sha256:ab12…` */
    readonly source: string,
    /** the entry's name as the tar gives it */
    readonly entry: string,
    reason: string,
  ) {
    super(`${source}: entry ${showName(entry)} ${reason}`);
    this.name = 'UnsafeLayerError';
  }
}

/**
 * Apply one layer blob (tar, or gzip-compressed tar) on top of `target`, creating it if needed:
 * files keep their mode, owner and mtime; whiteouts delete what earlier layers put there.
 * @throws UnsafeLayerError for an entry that would land outside `target`
 */
export async function unpackLayer(blobPath: string, target: string): Promise<void> {
  const hex = basename(blobPath);
  const source = /^[0-9a-f]{64}$/.test(hex) ? `layer sha256:${hex.slice(0, 12)}…` : `layer ${blobPath}`;
  await extractInto(blobPath, target, { source, whiteouts: true, owners: true });
}

/**
 * Unpack one layer blob on its own into the empty directory `target`, the way overlayfs wants a
 * lower layer: `.wh.NAME` becomes a character device 0/0 named NAME, `.wh..wh..opq` becomes the
 * `trusted.overlay.opaque=y` attribute on its directory. The uncompressed tar must hash to
 * `diffId` (the image config's `rootfs.diff_ids` entry), or this throws and `target` is half done.
 * `onRead` hears how many bytes of the blob have been read, for a progress display.
 * @see https://docs.kernel.org/filesystems/overlayfs.html#whiteouts-and-opaque-directories
 */
export async function unpackLayerDir(
  blobPath: string,
  target: string,
  diffId: string,
  onRead?: (bytes: number) => void,
): Promise<void> {
  const source = `layer ${shortDigest(diffId)}`;
  await extractInto(blobPath, target, { source, whiteouts: true, owners: true, overlay: true, diffId, ...(onRead ? { onRead } : {}) });
}

/** Unpack all of an image's layers, bottom first, into one directory. */
export async function unpackImage(image: ResolvedImage, target: string): Promise<void> {
  mkdirSync(target, { recursive: true });
  for (const layer of image.layers) await unpackLayer(layer.path, target);
}

/**
 * Extract a plain archive (an `oci-archive` or `docker save` tar, maybe gzipped) with the same
 * safety checks, but no whiteouts and no ownership: `.wh.` names are ordinary files there.
 */
export async function extractArchive(archivePath: string, target: string): Promise<void> {
  await extractInto(archivePath, target, { source: `archive ${archivePath}`, whiteouts: false, owners: false, specials: false });
}

/** An entry name as a message shows it: quoted, and cut when it is very long. */
function showName(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

interface Options {
  /** names what is being unpacked, for messages */
  source: string;
  whiteouts: boolean;
  owners: boolean;
  /** whether device nodes and FIFOs may be created (not for an image archive: it holds files, directories and links) */
  specials?: boolean;
  /** write whiteouts as overlayfs does (device 0/0, opaque xattr) instead of applying them */
  overlay?: boolean;
  /** the digest the uncompressed tar must have */
  diffId?: string;
  onRead?: (bytes: number) => void;
}

/** What one layer did, needed once all its entries are in. */
interface LayerState {
  root: string;
  options: Options;
  /** host paths this layer wrote, with their ancestors: whiteouts never delete these */
  touched: Set<string>;
  /** host paths named by `.wh.NAME` entries */
  whiteouts: string[];
  /** directories marked opaque by `.wh..wh..opq` */
  opaque: string[];
  /** directory mtimes, set last: creating entries inside a directory changes its mtime */
  dirTimes: [path: string, mtime: Date][];
}

/** One entry of a tar being read: its header, and a stream of its content. */
type TarEntry = ReturnType<typeof tarExtract> extends AsyncIterable<infer E> ? E : never;

/** Pax extended headers (`uid`, `gid` too large for the ustar fields) ride along on the header. */
type PaxRecords = Record<string, string> | null | undefined;

async function extractInto(path: string, target: string, options: Options): Promise<void> {
  mkdirSync(target, { recursive: true });
  const state: LayerState = {
    root: realpathSync(target), options, touched: new Set(), whiteouts: [], opaque: [], dirTimes: [],
  };
  try {
    const extract = (await tarStream()).extract();
    const hash = createHash('sha256');
    const feeding = pipeline([
      createReadStream(path),
      ...(options.onRead ? [tap((chunk) => options.onRead!(chunk.length))] : []),
      ...(await decompressor(path, options.source)),
      ...(options.diffId ? [tap((chunk) => hash.update(chunk))] : []),
      extract,
    ]);
    // A read or gunzip error also fails the loop below, which reports it; this just keeps it handled.
    feeding.catch(() => {});
    for await (const entry of extract) {
      await applyEntry(entry, state);
      entry.resume();
    }
    await feeding;
    if (options.diffId) {
      const diffId = `sha256:${hash.digest('hex')}`;
      if (diffId !== options.diffId) throw new Error(`its content hashes to ${shortDigest(diffId)}, the image config says ${shortDigest(options.diffId)}: the layer is corrupt`);
    }
    if (options.overlay) writeOverlayWhiteouts(state);
    else applyWhiteouts(state);
    // Deepest first is not needed: setting a directory's times does not touch its parent's.
    for (const [dir, mtime] of state.dirTimes) lutimesSync(dir, mtime, mtime);
  } catch (error) {
    if (error instanceof UnsafeLayerError) throw error;
    // Node's errors quote the whole path, and a layer's paths run up to PATH_MAX: keep its two ends.
    const message = (error as Error).message.replace(/'([^']{300,})'/g, (_, p: string) => `'${p.slice(0, 150)}…${p.slice(-100)}'`);
    throw new Error(message.startsWith(options.source) ? message : `${options.source}: ${message}`, { cause: error });
  }
}

/** A pass-through stream that shows each chunk to `see`. */
function tap(see: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      see(chunk);
      done(null, chunk);
    },
  });
}

/** The streams that turn the blob into a tar: gunzip for gzip, zstd where Node has it, none for a plain tar. */
async function decompressor(path: string, source: string): Promise<Transform[]> {
  const compression = await sniffCompression(path);
  if (compression === 'gzip') return [createGunzip()];
  if (compression === 'zstd') {
    const zstd = zstdDecompressor();
    if (zstd) return [zstd()];
    throw new Error(`${source}: ${zstdRefusal()}`);
  }
  if (compression !== 'none') throw new Error(`${source}: ${compression}-compressed layers are not supported (calf unpacks tar, tar+gzip and tar+zstd)`);
  return [];
}

async function applyEntry(entry: TarEntry, state: LayerState): Promise<void> {
  const { header } = entry;
  const pax = header.pax as PaxRecords;
  const { root, options } = state;
  const { mode, uid, gid } = headerFields(header, pax, options);
  const rel = entryPath(header.name, state);
  const name = posix.basename(rel);

  if (options.whiteouts && name.startsWith('.wh.')) return recordWhiteout(rel, header.name, state);

  // A time the tar cannot say (garbage) or utimensat cannot take becomes the epoch, as Docker does.
  const mtime = header.mtime && Number.isFinite(header.mtime.getTime()) ? header.mtime : new Date(0);
  const type = header.type === 'file' && header.name.endsWith('/') ? 'directory' : header.type;

  if (rel === '') {
    // `./` is the rootfs itself: take its mode and owner, never replace it.
    if (type === 'directory') setAttributes(root, { mode, uid, gid, options }, state, mtime);
    return;
  }

  const parent = hostPath(rel === name ? '' : posix.dirname(rel), true, header.name, state);
  mkdirSync(parent, { recursive: true });
  const dest = join(parent, name);
  touch(dest, state);

  switch (type) {
    case 'directory': {
      const existing = lstatOrUndefined(dest);
      if (!existing?.isDirectory()) {
        if (existing) unlinkSync(dest);
        mkdirSync(dest, { mode });
      }
      setAttributes(dest, { mode, uid, gid, options }, state, mtime);
      return;
    }
    case 'file':
    case 'contiguous-file': {
      clear(dest);
      // O_EXCL|O_NOFOLLOW: we just removed whatever was there, so anything there now is hostile.
      // Synchronous calls: a layer is mostly small files, and six trips through libuv's thread
      // pool per file made calf several times slower than tar (more so on a busy machine).
      const fd = openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        // streamx streams are async iterable; its type declarations just do not say so.
        for await (const chunk of entry as unknown as AsyncIterable<Buffer>) {
          for (let at = 0; at < chunk.length;) at += writeSync(fd, chunk, at);
        }
        // chown before chmod: chown clears the setuid and setgid bits.
        if (options.owners) fchownSync(fd, uid, gid);
        fchmodSync(fd, mode);
        futimesSync(fd, mtime, mtime);
      } finally {
        closeSync(fd);
      }
      return;
    }
    case 'symlink':
      clear(dest);
      symlinkSync(header.linkname ?? '', dest);
      if (options.owners) lchownSync(dest, uid, gid);
      lutimesSync(dest, mtime, mtime);
      return;
    case 'link': {
      const linkRel = entryPath(header.linkname ?? '', state, header.name);
      const existing = hostPath(linkRel, false, header.name, state);
      if (!lstatOrUndefined(existing)) {
        throw new Error(`entry ${showName(header.name)} is a hard link to ${showName(header.linkname ?? '')}, which is not in the layer`);
      }
      if (existing === dest) return;
      clear(dest);
      linkSync(existing, dest);
      return;
    }
    case 'character-device':
    case 'block-device':
    case 'fifo': {
      if (options.specials === false) {
        throw new Error(`entry ${showName(header.name)} is a ${type.replace('-', ' ')}: an image archive holds only files, directories and links`);
      }
      clear(dest);
      const kind = type === 'fifo' ? S_IFIFO : type === 'block-device' ? S_IFBLK : S_IFCHR;
      mknod(dest, kind | mode, makedev(header.devmajor ?? 0, header.devminor ?? 0));
      if (options.owners) lchownSync(dest, uid, gid);
      chmodSync(dest, mode); // mknod's mode went through the umask
      lutimesSync(dest, mtime, mtime);
      return;
    }
    default:
      // tar-stream names the types it knows; GNU sparse files, volume headers and the like come as null.
      throw new Error(`entry ${showName(header.name)} is of a tar entry type calf cannot unpack (${type ?? 'not a file, directory, link, device or FIFO'})`);
  }
}

/** The largest uid or gid: 2³²−1 is (uid_t)−1, which chown takes as "leave it as it is". */
const MAX_ID = 0xfffffffe;

/**
 * The numeric fields of a header, refusing what tar cannot mean: a name with a NUL byte, a mode,
 * owner or device number that is not a number (tar-stream gives NaN for a field of garbage) or
 * is out of range. A uid or gid in a PAX record is decimal text.
 */
function headerFields(header: Header, pax: PaxRecords, options: Options): { mode: number; uid: number; gid: number } {
  const refuse = (what: string): never => {
    throw new Error(`entry ${showName(header.name)} has ${what}`);
  };
  if (header.name.includes('\0')) refuse('a NUL byte in its name');
  if (header.linkname?.includes('\0')) refuse('a NUL byte in its link target');
  // tar-stream takes a base-256 size it cannot decode as null, and then waits for the end of an
  // entry that never comes: the extraction stalls and Node exits quietly, nothing left to run.
  if (!Number.isSafeInteger(header.size) || header.size! < 0) refuse(`an invalid size (${header.size})`);
  const mode = header.mode ?? 0o644;
  if (!Number.isInteger(mode) || mode < 0) refuse(`an invalid mode (${mode})`);
  const id = (field: 'uid' | 'gid'): number => {
    const text = pax?.[field];
    const value = text === undefined ? header[field] ?? 0 : /^\d{1,10}$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(value) || value < 0 || value > MAX_ID) refuse(`an invalid ${field} (${JSON.stringify(text ?? value)})`);
    return value;
  };
  // A plain archive's owners are not used: their fields do not matter.
  const [uid, gid] = options.owners ? [id('uid'), id('gid')] : [0, 0];
  if (header.type === 'character-device' || header.type === 'block-device') {
    for (const field of ['devmajor', 'devminor'] as const) {
      const value = header[field] ?? 0;
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) refuse(`an invalid ${field} (${value})`);
    }
  }
  return { mode: mode & 0o7777, uid, gid };
}

/**
 * An entry's name as a clean relative path (`''` for the root itself), refusing absolute names
 * and `..` that climbs out. `of` names the entry a hard link target belongs to.
 */
function entryPath(name: string, state: LayerState, of?: string): string {
  const entry = of ?? name;
  const what = of ? `is a hard link to ${showName(name)}, which` : '';
  if (name.startsWith('/')) {
    throw new UnsafeLayerError(state.options.source, entry, `${what} is an absolute path: layer entries must be relative to the root`.trim());
  }
  const normal = posix.normalize(name).replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../')) {
    throw new UnsafeLayerError(state.options.source, entry, `${what} would land outside the root`.trim());
  }
  return normal === '.' ? '' : normal;
}

/**
 * Follow `rel` from the root one component at a time as the host would (a symlink's absolute
 * target restarts from the host's `/`, a relative one from the link's directory) and return the
 * host path it reaches, which must be inside the root. The last component is followed only with
 * `followLast`; components that do not exist yet are taken as they are.
 */
function hostPath(rel: string, followLast: boolean, entry: string, state: LayerState): string {
  const { root } = state;
  const pending = rel.split('/').filter((part) => part && part !== '.');
  let current = root;
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      current = dirname(current);
      continue;
    }
    const next = join(current, part);
    if ((pending.length > 0 || followLast) && lstatOrUndefined(next)?.isSymbolicLink()) {
      if (++links > 40) throw new UnsafeLayerError(state.options.source, entry, 'goes through more than 40 symlinks');
      const link = readlinkSync(next);
      pending.unshift(...link.split('/').filter((p) => p && p !== '.'));
      if (link.startsWith('/')) current = '/';
      continue;
    }
    current = next;
  }
  if (!isInside(root, current)) {
    throw new UnsafeLayerError(state.options.source, entry, `would land outside the root (a symlink leads it to ${current})`);
  }
  return current;
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root === '/' ? '/' : `${root}/`);
}

/** Note `.wh.NAME` or `.wh..wh..opq`, to apply once the whole layer is in. */
function recordWhiteout(rel: string, entry: string, state: LayerState): void {
  const name = posix.basename(rel);
  const dirRel = rel === name ? '' : posix.dirname(rel);
  const dir = hostPath(dirRel, true, entry, state);
  if (name === '.wh..wh..opq') {
    // The marker says this directory exists in this layer, emptied of what was below.
    mkdirSync(dir, { recursive: true });
    touch(dir, state);
    state.opaque.push(dir);
  } else if (name.startsWith('.wh..wh.')) {
    // Other `.wh..wh.` names are aufs bookkeeping (`.wh..wh.plnk`), not whiteouts.
  } else {
    const hidden = name.slice('.wh.'.length);
    if (hidden === '' || hidden === '.' || hidden === '..') {
      throw new UnsafeLayerError(state.options.source, entry, 'whites out something that is not a name in its directory');
    }
    state.whiteouts.push(join(dir, hidden));
  }
}

/**
 * Apply the layer's whiteouts. They come last so that entry order does not matter: what this
 * layer itself wrote survives, only what the layers below left goes.
 */
function applyWhiteouts(state: LayerState): void {
  for (const path of state.whiteouts) {
    if (state.touched.has(path)) {
      // Whited out and written again in the same layer: the new one replaces the old.
      if (lstatOrUndefined(path)?.isDirectory()) pruneOlder(path, state);
    } else {
      rmSync(path, { recursive: true, force: true });
    }
  }
  for (const dir of state.opaque) pruneOlder(dir, state);
}

/**
 * Write the layer's whiteouts the way overlayfs reads them in a lower directory. What this layer
 * itself wrote under a whited-out name stays: a file simply covers the one below, and a
 * directory covers it wholly, so it is marked opaque.
 */
function writeOverlayWhiteouts(state: LayerState): void {
  for (const path of state.whiteouts) {
    const existing = lstatOrUndefined(path);
    if (existing?.isDirectory() && state.touched.has(path)) state.opaque.push(path);
    if (existing) continue;
    mkdirSync(dirname(path), { recursive: true });
    mknod(path, S_IFCHR | 0o600, makedev(0, 0)); // device 0/0: overlayfs's whiteout
  }
  for (const dir of state.opaque) lsetxattr(dir, OVERLAY_OPAQUE, 'y');
}

/** The attribute that makes a directory opaque to overlayfs: nothing below it shows through. */
export const OVERLAY_OPAQUE = 'trusted.overlay.opaque';

/** Remove from `dir` everything this layer did not write. */
function pruneOlder(dir: string, state: LayerState): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!state.touched.has(path)) rmSync(path, { recursive: true, force: true });
    else if (lstatOrUndefined(path)?.isDirectory()) pruneOlder(path, state);
  }
}

/** Record that this layer wrote `path` (and so, implicitly, its directories). */
function touch(path: string, state: LayerState): void {
  for (let p = path; p !== state.root && isInside(state.root, p); p = dirname(p)) state.touched.add(p);
}

/** Remove what is at `path` so an entry can take its place; a symlink goes, never its target. */
function clear(path: string): void {
  const existing = lstatOrUndefined(path);
  if (!existing) return;
  if (existing.isDirectory()) rmSync(path, { recursive: true });
  else unlinkSync(path);
}

function setAttributes(
  dir: string,
  { mode, uid, gid, options }: { mode: number; uid: number; gid: number; options: Options },
  state: LayerState,
  mtime: Date,
): void {
  if (options.owners) lchownSync(dir, uid, gid);
  chmodSync(dir, mode);
  state.dirTimes.push([dir, mtime]);
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    // Missing, or a component is not a directory: either way there is nothing to follow.
    return undefined;
  }
}

/**
 * tar-stream, loaded on first use: it is ~20 ms of every calf start (streamx and friends), and
 * most commands (a run of an image already unpacked, ps, pull) never read a tar.
 */
export function tarStream(): Promise<typeof import('tar-stream')> {
  return import('tar-stream');
}
