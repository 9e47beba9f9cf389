/**
 * calf's image store: one OCI image layout at `<calfRoot()>/images` (the same shape as
 * `skopeo copy … oci:DIR`), holding every image calf knows. Each stored image is an entry of its
 * `index.json`: a manifest (or multi-platform index) descriptor annotated with
 * `org.opencontainers.image.ref.name` = the full normalised name, `busybox:latest`.
 *
 * Blobs are content-addressed and written once (temp file + rename), so readers never see half a
 * blob; `index.json` is replaced the same way, so readers see the old list or the new one.
 * @see https://github.com/opencontainers/image-spec/blob/main/image-layout.md
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { sha256Digest, shortDigest, splitDigest } from './digest.js';
import { calfRoot } from '../core/root.js';
import { CalfError } from '../core/errors.js';
import type { LeftoverKind } from '../core/leftovers.js';
import { writeFileAtomic } from '../core/record.js';
import { withIndexLock } from './lock.js';
import { checkConfig, checkIndex, checkManifest, parseDocument } from './validate.js';
import {
  createReadStream, createWriteStream, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync,
  statSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Media types calf reads and writes. Docker's schema-2 types are read as their OCI twins. */
export const MediaType = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/** The annotation that names an image in an OCI layout's `index.json`. */
export const REF_NAME = 'org.opencontainers.image.ref.name';

/** A pointer to a blob: what it is, its digest and its size in bytes. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
}

/** An image manifest: one config and the layers, bottom first. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** An image index: a list of manifests (one per platform), or the layout's own `index.json`. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The image config file: how to run the image and which layers make its rootfs. */
export interface ImageConfigFile {
  architecture: string;
  os: string;
  created?: string;
  config?: {
    Cmd?: string[];
    Entrypoint?: string[];
    Env?: string[];
    WorkingDir?: string;
    User?: string;
  };
  rootfs: { type?: string; diff_ids: string[] };
  history?: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[];
}

/** A stored image, ready to unpack: its config and the paths of its layer blobs, bottom first. */
export interface ResolvedImage {
  /** the normalised name it was found by (or its first name, when found by id) */
  name: string;
  /** the image id: the config's digest, `sha256:…` */
  id: string;
  config: ImageConfigFile;
  layers: { digest: string; mediaType: string; size: number; path: string }[];
}

/** One line of {@link listImages}. */
export interface ImageSummary {
  /** normalised name, or `<none>` for an image stored only under its id */
  name: string;
  /** config digest, `sha256:…` */
  id: string;
  /** the digest its name points to: the manifest's, or the index's for a multi-platform image (Docker's repo digest) */
  digest: string;
  created?: string;
  /** bytes the image's blobs take in the store (compressed layers + config) */
  size: number;
}

/** The image asked for is not in the store. */
export class ImageNotFoundError extends CalfError {
  constructor(readonly ref: string) {
    super(`unable to find image '${ref}' locally (calf images lists the stored images)`);
  }
}

/** The store's OCI layout directory under `root`. */
export function imagesDir(root = calfRoot()): string {
  return join(root, 'images');
}

/** Where the blob `digest` lives (or would live) in the store. */
export function blobPath(digest: string, root = calfRoot()): string {
  return join(imagesDir(root), 'blobs', ...splitDigest(digest));
}

/** The OCI architecture name of a Node `process.arch`. */
export function ociArchitecture(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[arch] ?? arch;
}

/** An image's platform, as an index's entries name theirs. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The platform this machine runs: `linux` and its CPU; ARM64 is `arm64` with variant `v8`. */
export function thisPlatform(arch: string = process.arch): Platform {
  return { os: 'linux', architecture: ociArchitecture(arch), ...(arch === 'arm64' ? { variant: 'v8' } : {}) };
}

/** `linux/arm64/v8`, `linux/amd64`: a platform as Docker's `--platform` spells it. */
export function platformName(platform: Platform | undefined): string {
  return platform ? [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/') : 'unknown';
}

/**
 * Whether an index entry's platform runs here: the same os and architecture, and the same
 * variant when both name one (most arm64 images name none).
 */
export function runsHere(platform: Platform | undefined, here: Platform = thisPlatform()): boolean {
  return platform?.os === here.os && platform.architecture === here.architecture
    && (!here.variant || !platform.variant || platform.variant === here.variant);
}

/**
 * Normalise an image reference the way Docker displays it: `busybox` → `busybox:latest`,
 * `docker.io/library/busybox:1.36` → `busybox:1.36`, `localhost/foo` → `foo:latest`.
 * A digest reference (`name@sha256:…`) keeps its digest and gets no tag.
 */
export function normalizeName(ref: string): string {
  let name = ref.trim();
  if (!name) throw new CalfError('invalid image reference "": empty name');
  for (const prefix of ['docker.io/library/', 'index.docker.io/library/', 'docker.io/', 'index.docker.io/', 'localhost/']) {
    if (name.startsWith(prefix)) {
      name = name.slice(prefix.length);
      break;
    }
  }
  if (name.includes('@')) return name;
  // A colon after the last slash is a tag; one before it is a registry port (localhost:5000/x).
  const lastSlash = name.lastIndexOf('/');
  if (!name.slice(lastSlash + 1).includes(':')) name += ':latest';
  return name;
}

/**
 * Find an image in the store by name (`busybox`, `busybox:1.36`, `name@sha256:…`) or by id
 * (`sha256:…`, or a prefix of at least 6 hex digits), as `docker run` does. A multi-platform
 * image resolves to the manifest for `linux` on this machine's architecture.
 *
 * Synchronous on purpose: calf calls it after `unshare`, where async I/O is off limits.
 * @throws ImageNotFoundError when nothing matches; Error when a blob the image needs is missing
 */
export function resolveImage(ref: string, root = calfRoot()): ResolvedImage {
  const entries = readIndex(root).manifests;
  const idRef = parseIdRef(ref);
  // A full id or `sha256:` is always an id; a short hex string is a name first (Docker's rule).
  if (!idRef?.definite) {
    const name = normalizeName(ref);
    const entry = entries.find((e) => e.annotations?.[REF_NAME] === name) ?? findByDigestRef(entries, name);
    if (entry) return resolveEntry(entry, name, root);
  }
  if (idRef) {
    const matches = new Map<string, Descriptor>();
    for (const entry of entries) {
      const id = imageId(entry, root);
      if (id?.startsWith(`sha256:${idRef.hex}`) && !matches.has(id)) matches.set(id, entry);
    }
    if (matches.size > 1) {
      throw new CalfError(`image id prefix '${ref}' is ambiguous: it matches ${[...matches.keys()].map(shortDigest).join(', ')}`);
    }
    const [match] = matches.entries();
    if (match) {
      const [id, entry] = match;
      const named = entries.find((e) => e.annotations?.[REF_NAME] && imageId(e, root) === id);
      return resolveEntry(entry, named?.annotations?.[REF_NAME] ?? id, root);
    }
  }
  throw new ImageNotFoundError(idRef ? ref : normalizeName(ref));
}

/** Every image in the store, sorted by name; `size` is what its blobs take on disk. */
export function listImages(root = calfRoot()): ImageSummary[] {
  const images = readIndex(root).manifests.map((entry): ImageSummary => {
    const name = entry.annotations?.[REF_NAME] ?? entry.digest;
    const manifest = platformManifest(entry, name, root);
    const config = imageConfig(manifest, name, root);
    const size = manifest.config.size + manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
    return {
      name: entry.annotations?.[REF_NAME] ?? '<none>',
      id: manifest.config.digest,
      digest: entry.digest,
      ...(config.created ? { created: config.created } : {}),
      size,
    };
  });
  return images.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Create the store's layout (`oci-layout`, an empty `index.json`, `blobs/sha256/`) if it is not
 * there yet. Safe to call every time, and from calfs running at once: another pull may name its
 * image in a new index meanwhile, so a missing file is only ever created, never written over.
 * Every writer into the store calls it first (blob-writer.ts too: a pull killed after making
 * `blobs/sha256/` by itself, before any layout, left a store without its oci-layout, which the
 * 1,000-run soak found).
 */
export function initStore(root = calfRoot()): void {
  const dir = imagesDir(root);
  if (existsSync(join(dir, 'index.json'))) return;
  if (!existsSync(dir)) {
    // Made whole beside it, then renamed into place: a full disk (or a kill) midway leaves a temp
    // directory, never a layout without its oci-layout or index.json.
    mkdirSync(root, { recursive: true });
    const temp = `${dir}.tmp-${process.pid}-${randomBytes(8).toString('hex')}`;
    try {
      mkdirSync(join(temp, 'blobs', 'sha256'), { recursive: true });
      writeFileSync(join(temp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      writeFileSync(join(temp, 'index.json'), JSON.stringify(EMPTY_INDEX));
      renameSync(temp, dir);
      return;
    } catch (error) {
      rmSync(temp, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      // Another calf made the directory meanwhile (its layout, or only the blobs of its first
      // download): complete it below.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
  }
  // A layout some other tool, an older calf or another calf's first download began: complete it
  // where it is, each file only if it is still missing.
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  createFileAtomic(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  createFileAtomic(join(dir, 'index.json'), JSON.stringify(EMPTY_INDEX));
}

const EMPTY_INDEX: ImageIndex = { schemaVersion: 2, mediaType: MediaType.index, manifests: [] };

/**
 * Create `file` with `data` unless it exists, atomically: written under a temp name, then
 * link(2)ed to its name, which fails with EEXIST where rename(2) would replace what another
 * calf wrote since (a two-pull race lost an image's name that way: its index replaced by an empty one).
 */
function createFileAtomic(file: string, data: string): void {
  const temp = `${file}.tmp-${process.pid}-${randomBytes(8).toString('hex')}`;
  try {
    writeFileSync(temp, data);
    linkSync(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    rmSync(temp, { force: true });
  }
}

/**
 * Copy a stream into the store as a blob, hashing it on the way. With `expected`, the content must
 * have that digest (and size, when given), or nothing is stored and this throws naming the blob.
 * @returns the blob's digest and size
 */
async function addBlob(
  source: Readable,
  expected: { digest?: string; size?: number; what?: string } = {},
  root = calfRoot(),
): Promise<{ digest: string; size: number }> {
  try {
    initStore(root);
    if (expected.digest) splitDigest(expected.digest); // reject a malformed digest before copying
  } catch (error) {
    // The stream is open (or opening): close it, and hear its error (its file may be gone by
    // then, as calf load removes its temp directory), or that error comes later, uncaught.
    source.on('error', () => {});
    source.destroy();
    throw error;
  }
  const temp = join(imagesDir(root), 'blobs', 'sha256', `.tmp-${process.pid}-${randomBytes(8).toString('hex')}`); // blob-writer.ts's leftover kind knows the name
  const hash = createHash('sha256');
  let size = 0;
  try {
    await pipeline(
      source,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(temp, { flags: 'wx' }),
    );
    const digest = `sha256:${hash.digest('hex')}`;
    checkBlob(digest, size, expected);
    const final = blobPath(digest, root);
    if (existsSync(final)) rmSync(temp);
    else renameSync(temp, final);
    return { digest, size };
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/** `addBlob` for a file on disk. */
export async function addBlobFromFile(
  path: string,
  expected: { digest?: string; size?: number; what?: string } = {},
  root = calfRoot(),
): Promise<{ digest: string; size: number }> {
  if (expected.digest) splitDigest(expected.digest); // before the file is opened
  return addBlob(createReadStream(path), expected, root);
}

/** Store bytes already in memory (a manifest, a config) as a blob. */
export function addBlobBytes(bytes: Buffer | string, root = calfRoot()): { digest: string; size: number } {
  initStore(root);
  const buffer = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const digest = sha256Digest(buffer);
  const final = blobPath(digest, root);
  if (!existsSync(final)) writeFileAtomic(final, buffer);
  return { digest, size: buffer.length };
}

/**
 * Record an image in the store's `index.json`: under `name` (replacing whatever had that name,
 * as `docker tag` moves a tag), or with `name` null as an unnamed image (once per digest).
 */
export function tagImage(name: string | null, descriptor: Descriptor, root = calfRoot()): void {
  initStore(root);
  withIndexLock(() => tagLocked(name, descriptor, root), root); // a read-change-write: two calfs at once would lose a name
}

function tagLocked(name: string | null, descriptor: Descriptor, root: string): void {
  const index = readIndex(root);
  const entry: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
  if (name === null) {
    if (index.manifests.some((e) => e.digest === descriptor.digest)) return;
    index.manifests.push(entry);
  } else {
    const normalised = normalizeName(name);
    index.manifests = index.manifests.filter((e) => e.annotations?.[REF_NAME] !== normalised);
    // An unnamed entry for this image is redundant once the image has a name.
    index.manifests = index.manifests.filter((e) => e.annotations?.[REF_NAME] || e.digest !== descriptor.digest);
    index.manifests.push({ ...entry, annotations: { [REF_NAME]: normalised } });
  }
  writeFileAtomic(join(imagesDir(root), 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
}

/** Throw unless `digest`/`size` are what `expected` says (used while copying blobs). */
export function checkBlob(
  digest: string,
  size: number,
  expected: { digest?: string; size?: number; what?: string },
): void {
  const what = expected.what ?? 'blob';
  if (expected.digest && expected.digest !== digest) {
    throw new CalfError(`${what} ${shortDigest(expected.digest)} is corrupt: its content hashes to ${shortDigest(digest)}`);
  }
  if (expected.size !== undefined && expected.size !== size) {
    throw new CalfError(`${what} ${shortDigest(expected.digest ?? digest)} is corrupt: ${size} bytes where its descriptor says ${expected.size}`);
  }
}

/**
 * Pick the manifest for `linux` on this machine's architecture out of an image index (one the
 * store has: a pull chose the same one). `unknown/unknown` entries are BuildKit's attestations.
 */
export function pickPlatform(index: ImageIndex, what: string): Descriptor {
  const match = index.manifests.find((m) => runsHere(m.platform));
  if (match) return match;
  const platforms = index.manifests.filter((m) => m.platform?.os !== 'unknown').map((m) => platformName(m.platform));
  throw new CalfError(`image ${what} has no manifest for ${platformName(thisPlatform())} (it has ${platforms.join(', ') || 'none'})`);
}

/** Whether a media type is an index (OCI or Docker's manifest list). */
export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.index || mediaType === MediaType.dockerManifestList;
}

/** The store's `index.json` (an empty one when the store does not exist yet). */
export function readIndex(root: string): ImageIndex {
  const path = join(imagesDir(root), 'index.json');
  if (!existsSync(path)) return { schemaVersion: 2, manifests: [] };
  // calf wrote it, but a full disk, an editor or a bad copy may have been there since: check it like any other.
  const doc = `the image store's index.json (${path})`;
  return checkIndex(parseDocument(readFileSync(path), doc), doc);
}

/**
 * A JSON blob of the store, parsed, not yet checked; `what` names it in messages. Its bytes
 * hashed right when they went in; what is checked here is that they are still there and JSON.
 */
export function readJsonBlob<T = unknown>(digest: string, root: string, what: string): T {
  const path = blobPath(digest, root);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CalfError(`${what} blob ${shortDigest(digest)} is missing from the image store (${path})`);
    }
    throw error;
  }
  return parseDocument(bytes, `${what} blob ${shortDigest(digest)} (${path})`) as T;
}

/** The manifest an index.json entry stands for on this platform. */
export function platformManifest(entry: Descriptor, what: string, root: string, depth = 0): ImageManifest {
  if (isIndexMediaType(entry.mediaType)) {
    if (depth >= 4) throw new Error(`image ${what}: indexes nested more than 4 deep`);
    const doc = `image ${what}: index`;
    const index = checkIndex(readJsonBlob(entry.digest, root, doc), `${doc} blob ${shortDigest(entry.digest)}`);
    return platformManifest(pickPlatform(index, what), what, root, depth + 1);
  }
  const doc = `image ${what}: manifest`;
  return checkManifest(readJsonBlob(entry.digest, root, doc), `${doc} blob ${shortDigest(entry.digest)}`);
}

/** The config of an image whose manifest is `manifest`, checked. */
function imageConfig(manifest: ImageManifest, what: string, root: string): ImageConfigFile {
  const doc = `image ${what}: config`;
  return checkConfig(readJsonBlob(manifest.config.digest, root, doc), `${doc} blob ${shortDigest(manifest.config.digest)}`, manifest.layers.length);
}

function imageId(entry: Descriptor, root: string): string | undefined {
  try {
    return platformManifest(entry, entry.digest, root).config.digest;
  } catch {
    // An entry we cannot read has no id to match; resolving it by name reports why.
    return undefined;
  }
}

/**
 * Read the image an entry of the store's index.json stands for, as `calf run` does: its manifest
 * (for this platform), its config, and its layer blobs, each there with the size it should have.
 * `name` is what messages call it.
 */
export function resolveEntry(entry: Descriptor, name: string, root: string): ResolvedImage {
  const manifest = platformManifest(entry, name, root);
  const config = imageConfig(manifest, name, root);
  const layers = manifest.layers.map((layer) => {
    const path = blobPath(layer.digest, root);
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      throw new CalfError(`image ${name}: layer blob ${shortDigest(layer.digest)} is missing from the image store (${path})`);
    }
    if (size !== layer.size) {
      throw new CalfError(`image ${name}: layer blob ${shortDigest(layer.digest)} is ${size} bytes, its manifest says ${layer.size}`);
    }
    return { digest: layer.digest, mediaType: layer.mediaType, size: layer.size, path };
  });
  return { name, id: manifest.config.digest, config, layers };
}

function findByDigestRef(entries: Descriptor[], ref: string): Descriptor | undefined {
  const at = ref.indexOf('@');
  if (at < 0) return undefined;
  const repo = ref.slice(0, at);
  const digest = ref.slice(at + 1);
  return entries.find((e) => e.digest === digest && repository(e.annotations?.[REF_NAME] ?? '') === repo);
}

/** `name:tag` → `name` (a colon before the last slash is a registry port, not a tag). */
function repository(name: string): string {
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
}

function parseIdRef(ref: string): { hex: string; definite: boolean } | undefined {
  const match = /^(sha256:)?([0-9a-f]{6,64})$/.exec(ref);
  if (!match) return undefined;
  return { hex: match[2]!, definite: Boolean(match[1]) || match[2]!.length === 64 };
}

/**
 * `calf cleanup`: a calf killed while it wrote index.json, a small blob or a new store's layout
 * leaves the temp file (its pid in the name); what was renamed into place is whole, and stays.
 * (Half-written streamed blobs, `.tmp-<pid>-<hex>`, are blob-writer.ts's `downloadLeftovers`.)
 */
export const storeTempLeftovers: LeftoverKind = {
  kind: 'image store temp file',
  find: (root) => [root, imagesDir(root), join(imagesDir(root), 'blobs', 'sha256')].flatMap((dir) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      // in the root, only the store's own (`images.tmp-…`, a layout being made): other modules own the rest
      const match = (dir === root ? /^images\.tmp-(\d+)-[0-9a-f]+$/ : /.\.tmp-(\d+)$/).exec(name);
      if (!match) return [];
      const file = join(dir, name);
      return [{ what: `image store temp file ${file}`, owner: Number(match[1]), remove: () => rmSync(file, { recursive: true, force: true }) }];
    });
  }),
};
