/**
 * `calf load`: bring images into the store from the formats other tools write, like
 * `docker load -i`. The format is told by content, never by file name:
 *
 * - an OCI image layout (a directory with `oci-layout` and `index.json`: `skopeo copy … oci:DIR`,
 *   umoci, `docker save` since Docker 25), or an `oci-archive` tar of one;
 * - a docker archive (`manifest.json` listing `Config`, `RepoTags`, `Layers`: `docker save`,
 *   `podman save`, `skopeo copy … docker-archive:`), as a tar or extracted into a directory.
 *
 * Tars may be gzip-compressed. Every blob is hashed while it is copied and must match its digest.
 * @module
 */
import { existsSync, mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import {
  addBlobBytes, addBlobFromFile, blobPath, checkBlob, isIndexMediaType, MediaType,
  normalizeName, pickPlatform, REF_NAME, tagImage, type Descriptor, type ImageManifest,
} from './store.js';
import { CalfError } from '../core/errors.js';
import { extractArchive, UnsafeLayerError } from './unpack.js';
import { calfRoot } from '../core/root.js';
import { withStoreLock, type OnWait } from './lock.js';
import { sha256Digest, shortDigest, sniffCompression, splitDigest } from './digest.js';
import {
  checkConfig, checkDockerManifest, checkIndex, checkManifest, checkReference, fileKind, MANIFEST_TYPES,
  parseDocument, readDocument,
} from './validate.js';

/** containerd's (and Docker 25's `docker save`) annotation for an image's full name. */
const CONTAINERD_NAME = 'io.containerd.image.name';

/** An image copied into the store, not yet named there. */
interface Loaded {
  names: string[] | null;
  descriptor: Descriptor;
  id: string;
}

/**
 * Load every image in `input` (a directory or a tar, see the module doc) into the store.
 * Images are named after their tags; an image without any is stored unnamed, under its id.
 * @returns the names loaded, normalised (`busybox:latest`), or `sha256:<id>` for an unnamed image
 */
export async function loadImages(input: string, root = calfRoot(), onWait?: OnWait): Promise<string[]> {
  // Shared: loads and pulls run side by side; an rmi or prune (exclusive) waits for them.
  return withStoreLock('shared', () => loadLocked(input, root), { root, ...(onWait ? { onWait } : {}) });
}

async function loadLocked(input: string, root: string): Promise<string[]> {
  let stats;
  try {
    stats = statSync(input);
  } catch {
    throw new CalfError(`cannot load "${input}": no such file or directory`);
  }
  const base = imageBaseName(input);
  try {
    let loaded: Loaded[];
    if (stats.isDirectory()) {
      loaded = await loadDirectory(input, base, root);
    } else if (stats.isFile()) {
      const temp = mkdtempSync(join(tmpdir(), 'calf-load-'));
      try {
        await extractArchive(input, temp).catch((error: Error) => {
          if (error instanceof UnsafeLayerError) throw error;
          throw new CalfError(`not an image archive: ${error.message.replace(`archive ${input}: `, '')}`);
        });
        loaded = await loadDirectory(temp, base, root);
      } finally {
        rmSync(temp, { recursive: true, force: true });
      }
    } else {
      throw new CalfError('not a file or a directory');
    }
    // Name the images only once all their blobs are safely in: a failed load tags nothing.
    const names: string[] = [];
    for (const image of loaded) {
      if (image.names === null) {
        tagImage(null, image.descriptor, root);
        names.push(image.id);
      }
      for (const name of image.names ?? []) {
        tagImage(name, image.descriptor, root);
        names.push(name);
      }
    }
    return names;
  } catch (error) {
    throw new CalfError(`cannot load "${input}": ${(error as Error).message}`, { cause: error });
  }
}

async function loadDirectory(dir: string, base: string, root: string): Promise<Loaded[]> {
  if (existsSync(join(dir, 'oci-layout'))) return loadOciLayout(dir, base, root);
  if (existsSync(join(dir, 'manifest.json'))) return loadDockerArchive(dir, root);
  throw new CalfError('neither an OCI image layout (no oci-layout file) nor a docker archive (no manifest.json)');
}

async function loadOciLayout(dir: string, base: string, root: string): Promise<Loaded[]> {
  const index = checkIndex(readJson(dir, 'index.json'), 'index.json');
  if (!index.manifests.length) throw new CalfError('its index.json lists no images');
  const loaded: Loaded[] = [];
  for (const [i, descriptor] of index.manifests.entries()) {
    const names = ociName(descriptor, base, `manifests[${i}]`);
    const id = await copyImage(dir, descriptor, names?.[0] ?? descriptor.digest, root, `index.json: manifests[${i}]`);
    loaded.push({ names, descriptor, id });
  }
  return loaded;
}

/**
 * The name an OCI layout gives an image. `ref.name` may be a whole reference or, as skopeo's
 * `oci:DIR:tag` and umoci write it, just a tag: then the layout's own name is the repository.
 */
function ociName(descriptor: Descriptor, base: string, where: string): string[] | null {
  const full = descriptor.annotations?.[CONTAINERD_NAME];
  if (full) return [normalizeName(checkReference(full, 'index.json', `${where}'s ${CONTAINERD_NAME}`))];
  const ref = descriptor.annotations?.[REF_NAME];
  if (!ref) return null;
  const name = /[:/@]/.test(ref) ? ref : `${base}:${ref}`;
  return [normalizeName(checkReference(name, 'index.json', `${where}'s name (${REF_NAME})`))];
}

/**
 * Copy the image `descriptor` points to (manifest, config, layers) from an OCI layout into the
 * store. Of a multi-platform index only this machine's platform is copied; the others' blobs are
 * often not in the layout at all.
 * @returns the image id (the config digest)
 */
async function copyImage(dir: string, descriptor: Descriptor, name: string, root: string, where: string, depth = 0): Promise<string> {
  if (isIndexMediaType(descriptor.mediaType)) {
    // An index may list indexes; a real image nests one deep (Docker 25's save: index → index → manifest).
    if (depth >= 4) throw new CalfError(`${where}: indexes nested more than 4 deep`);
    const index = copyJsonBlob(dir, descriptor, 'index', root, checkIndex);
    const chosen = pickPlatform(index, name);
    return copyImage(dir, chosen, name, root, `index blob ${shortDigest(descriptor.digest)}: manifests[${index.manifests.indexOf(chosen)}]`, depth + 1);
  }
  if (!(MANIFEST_TYPES as readonly string[]).includes(descriptor.mediaType)) {
    throw new CalfError(`${where}.mediaType ${JSON.stringify(descriptor.mediaType.slice(0, 100))} is not an image manifest or index calf knows`);
  }
  const manifest = copyJsonBlob(dir, descriptor, 'manifest', root, checkManifest);
  copyJsonBlob(dir, manifest.config, 'config', root, (value, doc) => checkConfig(value, doc, manifest.layers.length));
  for (const layer of manifest.layers) await copyBlob(dir, layer, 'layer', root);
  return manifest.config.digest;
}

/** Read a JSON blob of the layout, check its digest, size and shape, and only then store it. */
function copyJsonBlob<T>(dir: string, descriptor: Descriptor, what: string, root: string, check: (value: unknown, doc: string) => T): T {
  const doc = `${what} blob ${shortDigest(descriptor.digest)}`;
  const bytes = readDocument(layoutBlob(dir, descriptor, what), doc);
  checkBlob(sha256Digest(bytes), bytes.length, { digest: descriptor.digest, size: descriptor.size, what: `${what} blob` });
  const value = check(parseDocument(bytes, doc), doc);
  addBlobBytes(bytes, root);
  return value;
}

async function copyBlob(dir: string, descriptor: Descriptor, what: string, root: string): Promise<void> {
  const stored = blobPath(descriptor.digest, root);
  // Already in the store: it was verified when it went in.
  if (existsSync(stored) && statSync(stored).size === descriptor.size) return;
  await addBlobFromFile(layoutBlob(dir, descriptor, what), { digest: descriptor.digest, size: descriptor.size, what: `${what} blob` }, root);
}

function layoutBlob(dir: string, descriptor: Descriptor, what: string): string {
  const [algorithm, hex] = splitDigest(descriptor.digest);
  try {
    return fileIn(dir, `blobs/${algorithm}/${hex}`);
  } catch {
    throw new CalfError(`${what} blob ${shortDigest(descriptor.digest)} is missing from the layout`);
  }
}

/**
 * Load a docker archive: turn each `manifest.json` entry into an OCI manifest whose config is the
 * archive's config file, byte for byte, so the image id stays the one Docker showed.
 */
async function loadDockerArchive(dir: string, root: string): Promise<Loaded[]> {
  const entries = checkDockerManifest(readJson(dir, 'manifest.json'), 'manifest.json');
  const loaded: Loaded[] = [];
  for (const [i, entry] of entries.entries()) {
    const names = entry.RepoTags?.length ? entry.RepoTags.map((tag, j) => normalizeName(checkReference(tag, 'manifest.json', `[${i}].RepoTags[${j}]`))) : null;
    const doc = `config ${JSON.stringify(entry.Config)}`;
    const configBytes = readDocument(fileIn(dir, entry.Config), doc);
    const configDigest = sha256Digest(configBytes);
    // Docker names the config file after its digest: a file that disagrees is corrupt.
    checkBlob(configDigest, configBytes.length, { digest: digestInName(entry.Config), what: `config ${entry.Config}` });
    const config = checkConfig(parseDocument(configBytes, doc), doc, entry.Layers.length);
    addBlobBytes(configBytes, root);

    const layers: Descriptor[] = [];
    for (const [i, layerPath] of entry.Layers.entries()) {
      const path = fileIn(dir, layerPath);
      const mediaType = await sniffLayerType(path);
      // An uncompressed layer's digest is its diff_id, which the config records.
      const expected = digestInName(layerPath) ?? (mediaType === MediaType.layer ? config.rootfs?.diff_ids?.[i] : undefined);
      const { digest, size } = await addBlobFromFile(path, { ...(expected ? { digest: expected } : {}), what: `layer ${layerPath}` }, root);
      layers.push({ mediaType, digest, size });
    }

    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.manifest,
      config: { mediaType: MediaType.config, digest: configDigest, size: configBytes.length },
      layers,
    };
    const { digest, size } = addBlobBytes(JSON.stringify(manifest), root);
    loaded.push({ names, descriptor: { mediaType: MediaType.manifest, digest, size }, id: configDigest });
  }
  return loaded;
}

/** A layer's media type, from its first bytes. */
async function sniffLayerType(path: string): Promise<string> {
  const compression = await sniffCompression(path);
  return compression === 'gzip' ? MediaType.layerGzip : compression === 'zstd' ? MediaType.layerZstd : MediaType.layer;
}

/** The digest a docker archive path carries in its name (`blobs/sha256/<hex>`, `<hex>.json`), if any. */
function digestInName(path: string): string | undefined {
  const match = /(?:^|\/)([0-9a-f]{64})(?:\.json|\.tar)?$/.exec(path);
  return match ? `sha256:${match[1]}` : undefined;
}

/** The JSON document `rel` of the layout or archive, parsed but not yet checked. */
function readJson(dir: string, rel: string): unknown {
  return parseDocument(readDocument(fileIn(dir, rel), rel), rel);
}

/**
 * The real path of the file `rel` inside `dir`, refusing one that leads out of it (archives may
 * hold symlinks: old `docker save` links repeated layers, and they must not reach host files) and
 * one that is not a regular file (reading a FIFO would wait forever, a device may never end).
 */
function fileIn(dir: string, rel: string): string {
  const top = realpathSync(dir);
  const shown = JSON.stringify(rel.length > 100 ? `${rel.slice(0, 100)}…` : rel);
  let real: string;
  try {
    real = realpathSync(resolve(top, rel));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CalfError(`${shown} is missing${code === 'ENOENT' ? '' : ` (${code})`}`);
  }
  if (!real.startsWith(`${top}/`)) throw new CalfError(`${shown} leads outside the image (to ${real})`);
  const st = statSync(real);
  if (!st.isFile()) throw new CalfError(`${shown} is ${fileKind(st)}, not a file`);
  return real;
}

/** The repository a tag-only OCI layout is named after: its file name without extensions. */
function imageBaseName(input: string): string {
  return basename(resolve(input)).toLowerCase().replace(/(\.(tar|tgz|gz|oci|zst))+$/, '');
}
