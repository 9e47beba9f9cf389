/**
 * The shape checks for the JSON calf reads from an image: an OCI layout's `index.json`, image
 * indexes, manifests, image configs, a docker archive's `manifest.json`, and image names. An
 * image is untrusted input: each document is checked once, where it comes in, so the code after
 * can use it as typed, and a bad one is refused in one line that names the document, the field
 * and what is wrong with it (`manifest blob sha256:ab12…: layers[2].digest is a number (5), not
 * a digest`), as `docker load` refuses it, instead of failing later on a field that is not there.
 * @see https://github.com/opencontainers/image-spec/blob/main/manifest.md
 * @see https://github.com/opencontainers/image-spec/blob/main/config.md
 * @module
 */
import fs from 'node:fs';
import { CalfError } from '../core/errors.js';
import type { Descriptor, ImageConfigFile, ImageIndex, ImageManifest } from './store.js';

/**
 * The largest JSON document calf reads from an image. Registries refuse manifests over 4 MiB;
 * a config is usually a few kB. The limit bounds what a hostile file can make calf hold in memory.
 */
export const MAX_DOCUMENT_BYTES = 8 << 20;
/** The most images one layout or archive may hold, and manifests one index may list. */
export const MAX_ENTRIES = 1024;
/** The most layers an image may have: far more than any real image (Docker stops near 125). */
export const MAX_LAYERS = 256;

/** Media types of what a descriptor in an index may point to: an image, or another index. */
export const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json',
] as const;
export const INDEX_TYPES = [
  'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
] as const;
const CONFIG_TYPES = ['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json'];
const LAYER_TYPES = [
  'application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar', 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
];

/** A refusal of a document calf read: one line, exit 125. */
export class BadDocumentError extends CalfError {}

/** A value as a message shows it: its type, and a short form of it. */
function show(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  switch (typeof value) {
    case 'string': return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
    case 'number': return `a number (${value})`;
    case 'boolean': return `${value}`;
    case 'object': return 'an object';
    default: return 'missing';
  }
}

/** Reading one document: what it is called in messages. */
class Reader {
  constructor(readonly doc: string) {}

  fail(where: string, problem: string): never {
    throw new BadDocumentError(`${this.doc}${where ? `: ${where}` : ''} ${problem}`);
  }

  object(value: unknown, where: string): Record<string, unknown> {
    if (!value || typeof value !== 'object' || Array.isArray(value)) this.fail(where, `is ${show(value)}, not an object`);
    return value as Record<string, unknown>;
  }

  string(value: unknown, where: string): string {
    if (typeof value !== 'string') this.fail(where, `is ${show(value)}, not a string`);
    return value;
  }

  optionalString(value: unknown, where: string): void {
    if (value !== undefined && value !== null) this.string(value, where);
  }

  array(value: unknown, where: string, max: number): unknown[] {
    if (!Array.isArray(value)) this.fail(where, `is ${show(value)}, not a list`);
    if (value.length > max) this.fail(where, `lists ${value.length} entries, more than calf takes (${max})`);
    return value;
  }

  /** A list of strings, or null (Docker writes `"Cmd": null`). */
  strings(value: unknown, where: string, max = 65_536): void {
    if (value === undefined || value === null) return;
    this.array(value, where, max).forEach((s, i) => this.string(s, `${where}[${i}]`));
  }

  digest(value: unknown, where: string): string {
    const digest = this.string(value, where);
    if (/^sha256:[0-9a-f]{64}$/.test(digest)) return digest;
    const algorithm = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):[a-zA-Z0-9=_-]+$/.exec(digest)?.[1];
    if (algorithm && algorithm !== 'sha256') this.fail(where, `is a ${algorithm} digest: calf supports sha256 only`);
    this.fail(where, `is ${show(digest)}, not a digest (sha256:<64 hex digits>)`);
  }

  mediaType(value: unknown, where: string, allowed: readonly string[], kind: string): string {
    const mediaType = this.string(value, where);
    if (!allowed.includes(mediaType)) this.fail(where, `${JSON.stringify(mediaType.slice(0, 100))} is not ${kind} calf knows`);
    return mediaType;
  }

  descriptor(value: unknown, where: string, allowed?: readonly string[], kind?: string): Descriptor {
    const d = this.object(value, where);
    if (allowed) this.mediaType(d.mediaType, `${where}.mediaType`, allowed, kind!);
    else this.string(d.mediaType, `${where}.mediaType`);
    this.digest(d.digest, `${where}.digest`);
    if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) this.fail(`${where}.size`, `is ${show(d.size)}, not a size in bytes`);
    if (d.annotations !== undefined) {
      const annotations = this.object(d.annotations, `${where}.annotations`);
      for (const [key, v] of Object.entries(annotations)) this.string(v, `${where}.annotations[${JSON.stringify(key)}]`);
    }
    if (d.platform !== undefined) {
      const platform = this.object(d.platform, `${where}.platform`);
      this.string(platform.os, `${where}.platform.os`);
      this.string(platform.architecture, `${where}.platform.architecture`);
      this.optionalString(platform.variant, `${where}.platform.variant`);
    }
    return d as unknown as Descriptor;
  }
}

/**
 * The bytes of the regular file `path`, refusing anything else (a FIFO would block calf forever,
 * a device like /dev/zero never ends) and anything over {@link MAX_DOCUMENT_BYTES}.
 * `doc` names the file in messages.
 */
export function readDocument(path: string, doc: string): Buffer {
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer; this way fstat can refuse it.
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (error) {
    throw new BadDocumentError(`${doc}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new BadDocumentError(`${doc} is ${fileKind(st)}, not a file`);
    if (st.size > MAX_DOCUMENT_BYTES) throw new BadDocumentError(`${doc} is ${st.size} bytes, more than calf reads for a JSON document (${MAX_DOCUMENT_BYTES})`);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** What kind of file `st` is, for a message: `a directory`, `a FIFO`. */
export function fileKind(st: fs.Stats): string {
  if (st.isFile()) return 'a file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symlink';
  return 'not a regular file';
}

/** Parse `bytes` as one JSON document named `doc`, refusing what is not UTF-8 JSON. */
export function parseDocument(bytes: Buffer, doc: string): unknown {
  if (bytes.length > MAX_DOCUMENT_BYTES) throw new BadDocumentError(`${doc} is ${bytes.length} bytes, more than calf reads for a JSON document (${MAX_DOCUMENT_BYTES})`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new BadDocumentError(`${doc} is not valid JSON: it is not UTF-8 text`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new BadDocumentError(`${doc} is not valid JSON: ${(error as Error).message}`);
  }
}

/** An image index (a layout's `index.json`, or a multi-platform index blob). */
export function checkIndex(value: unknown, doc: string): ImageIndex {
  const r = new Reader(doc);
  const index = r.object(value, '');
  if (index.schemaVersion !== undefined && index.schemaVersion !== 2) r.fail('schemaVersion', `is ${show(index.schemaVersion)}: calf reads version 2`);
  if (index.mediaType !== undefined) r.mediaType(index.mediaType, 'mediaType', INDEX_TYPES, 'an index type');
  r.array(index.manifests, 'manifests', MAX_ENTRIES).forEach((m, i) => r.descriptor(m, `manifests[${i}]`));
  return index as unknown as ImageIndex;
}

/** An image manifest: a config and layers of media types calf knows. */
export function checkManifest(value: unknown, doc: string): ImageManifest {
  const r = new Reader(doc);
  const manifest = r.object(value, '');
  if (manifest.schemaVersion !== 2) r.fail('schemaVersion', `is ${show(manifest.schemaVersion)}: calf reads version 2`);
  if (manifest.mediaType !== undefined) r.mediaType(manifest.mediaType, 'mediaType', MANIFEST_TYPES, 'an image manifest type');
  r.descriptor(manifest.config, 'config', CONFIG_TYPES, 'an image config type');
  r.array(manifest.layers, 'layers', MAX_LAYERS).forEach((l, i) => r.descriptor(l, `layers[${i}]`, LAYER_TYPES, 'a layer type'));
  return manifest as unknown as ImageManifest;
}

/**
 * An image config, the parts calf uses: the platform, the run defaults (`config`), and
 * `rootfs.diff_ids`, one per layer of the manifest (`layers`).
 */
export function checkConfig(value: unknown, doc: string, layers: number): ImageConfigFile {
  const r = new Reader(doc);
  const config = r.object(value, '');
  r.string(config.architecture, 'architecture');
  r.string(config.os, 'os');
  r.optionalString(config.created, 'created');
  if (config.config !== undefined && config.config !== null) {
    const run = r.object(config.config, 'config');
    r.strings(run.Cmd, 'config.Cmd');
    r.strings(run.Entrypoint, 'config.Entrypoint');
    r.strings(run.Env, 'config.Env');
    r.optionalString(run.WorkingDir, 'config.WorkingDir');
    r.optionalString(run.User, 'config.User');
  }
  const rootfs = r.object(config.rootfs, 'rootfs');
  if (rootfs.type !== 'layers') r.fail('rootfs.type', `is ${show(rootfs.type)}, not "layers"`);
  const diffIds = r.array(rootfs.diff_ids, 'rootfs.diff_ids', MAX_LAYERS);
  diffIds.forEach((d, i) => r.digest(d, `rootfs.diff_ids[${i}]`));
  if (diffIds.length !== layers) r.fail('rootfs.diff_ids', `lists ${diffIds.length} layers, the manifest ${layers}`);
  if (config.history !== undefined && config.history !== null) r.array(config.history, 'history', 65_536);
  return config as unknown as ImageConfigFile;
}

/** One image of a docker archive's `manifest.json`. */
export interface DockerArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** A docker archive's `manifest.json`: a list of images, each a config file, tags and layer files. */
export function checkDockerManifest(value: unknown, doc: string): DockerArchiveEntry[] {
  const r = new Reader(doc);
  const entries = r.array(value, '', MAX_ENTRIES);
  if (entries.length === 0) r.fail('', 'lists no images');
  entries.forEach((e, i) => {
    const entry = r.object(e, `[${i}]`);
    r.string(entry.Config, `[${i}].Config`);
    r.strings(entry.RepoTags, `[${i}].RepoTags`, MAX_ENTRIES);
    r.array(entry.Layers, `[${i}].Layers`, MAX_LAYERS).forEach((l, j) => r.string(l, `[${i}].Layers[${j}]`));
  });
  return entries as DockerArchiveEntry[];
}

/**
 * Refuse an image name that is not a reference Docker would take: `[registry[:port]/]path[:tag][@digest]`,
 * path components lowercase letters and digits with `.`, `_`, `__` or `-` between them.
 * @see https://github.com/distribution/reference/blob/main/reference.go
 */
export function checkReference(name: unknown, doc: string, where: string): string {
  const r = new Reader(doc);
  const ref = r.string(name, where);
  const component = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
  const domain = '(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?';
  const grammar = new RegExp(`^${domain}${component}(?:/${component})*(?::[\\w][\\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`);
  if (ref.length > 512 || !grammar.test(ref)) r.fail(where, `${JSON.stringify(ref.length > 60 ? `${ref.slice(0, 60)}…` : ref)} is not a valid image name`);
  return ref;
}
