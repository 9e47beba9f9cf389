/**
 * What a registry may send for an image, by media type: which manifests calf reads, which
 * configs are container images, and how each kind of layer is compressed. OCI and Docker spell
 * the same things differently (Docker's schema 2 came first; OCI standardised it), and a pull
 * meets both.
 * @see https://github.com/opencontainers/image-spec/blob/main/media-types.md
 * @see https://distribution.github.io/distribution/spec/manifest-v2-2/
 * @module
 */
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { CalfError } from '../core/errors.js';
import { MediaType, type ImageManifest } from './store.js';
import { shortDigest, type Compression } from './digest.js';

/** A schema-1 manifest (signed or not): what registries served before 2016, and mocker still asks for. */
export const SCHEMA1_TYPES = [
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
];

/** Image configs: what makes a manifest a container image rather than, say, a Helm chart or an attestation. */
export const CONFIG_TYPES = [MediaType.config, 'application/vnd.docker.container.image.v1+json'];

/** Every layer media type calf unpacks, and its compression. */
const LAYER_TYPES: Record<string, Exclude<Compression, 'xz' | 'bzip2'>> = {
  [MediaType.layer]: 'none',
  [MediaType.layerGzip]: 'gzip',
  [MediaType.layerZstd]: 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
  // Non-distributable ("foreign") layers: registries may not have them, and a descriptor may say
  // where to get them instead (`urls`). Deprecated, but "such a media type SHOULD NOT affect
  // whether an implementation downloads the layer" (image-spec, layer.md): they are pulled too.
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
};

/** How a layer of this media type is compressed; undefined when it is not a layer calf knows. */
export function layerCompression(mediaType: string): Exclude<Compression, 'xz' | 'bzip2'> | undefined {
  return LAYER_TYPES[mediaType];
}

/** Whether a layer may be missing from the registry and be fetched from its descriptor's `urls`. */
export function isNonDistributable(mediaType: string): boolean {
  return mediaType.includes('.nondistributable.') || mediaType.includes('.foreign.');
}

/** Node's zstd decompressor, in Node 22.15+ and 23.8+; undefined in older Nodes (20 has none). */
export function zstdDecompressor(): (() => Transform) | undefined {
  const create = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  return typeof create === 'function' ? create : undefined;
}

/** Why this Node cannot unpack zstd layers, in one line; undefined when it can. */
export function zstdRefusal(): string | undefined {
  return zstdDecompressor() ? undefined : `zstd-compressed layers need Node 22.15 or later (zlib.createZstdDecompress), and this is Node ${process.versions.node}`;
}

/**
 * Which manifest format `bytes` are, by the Content-Type they came with, or, when a registry
 * sends a generic `application/json`, their own `mediaType` field: one of `accepted` (what the
 * client asked for), or a one-line refusal. Schema 1 gets its own: registries stopped serving it
 * (Docker Hub in 2024); a registry that still does is too old.
 */
export function manifestMediaType(bytes: Buffer, contentType: string, accepted: readonly string[], what: string): string {
  const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; schemaVersion?: number };
  const type = [...accepted, ...SCHEMA1_TYPES].includes(contentType) ? contentType : parsed.mediaType ?? '';
  if (SCHEMA1_TYPES.includes(type) || parsed.schemaVersion === 1) throw new CalfError(`${what}: schema 1 is not supported: the registry is too old`);
  if (!accepted.includes(type)) throw new CalfError(`${what}: calf does not read manifests of type ${type || 'unknown'}`);
  return type;
}

/**
 * Refuse, before downloading anything, what calf could not run: a manifest whose config is not
 * a container image's (a Helm chart, an attestation), or a layer calf cannot unpack.
 */
export function checkRunnable(manifest: ImageManifest, what: string): void {
  if (!CONFIG_TYPES.includes(manifest.config?.mediaType as never)) {
    throw new CalfError(`${what} is not a container image (its config is ${manifest.config?.mediaType ?? 'missing'})`);
  }
  for (const layer of manifest.layers) {
    const compression = layerCompression(layer.mediaType);
    if (compression === undefined) throw new CalfError(`${what}: calf cannot unpack layers of type ${layer.mediaType}`);
    if (compression === 'zstd' && zstdRefusal()) throw new CalfError(`${what}: layer ${shortDigest(layer.digest)}: ${zstdRefusal()}`);
  }
}
