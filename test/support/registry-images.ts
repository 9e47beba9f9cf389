/**
 * OCI layouts the pull tests push that `npm run images` does not build: a multi-platform index
 * as BuildKit makes them (this machine's platform, another one, and an attestation manifest
 * for `unknown/unknown`), and a big image for the throughput bench. Built into temp directories
 * from the test images, with plain fs and node:crypto (no calf code), and removed by the caller.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pack as tarPack } from 'tar-stream';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

/** This machine's platform as an image index names it (what calf must pick). */
export function thisPlatform(): { os: string; architecture: string; variant?: string } {
  return process.arch === 'arm64' ? { os: 'linux', architecture: 'arm64', variant: 'v8' } : { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch };
}

/** A platform that is not this machine's: the one calf must skip. */
export function otherPlatform(): { os: string; architecture: string; variant?: string } {
  return process.arch === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64', variant: 'v8' };
}

const sha = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

class Layout {
  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  blob(bytes: Buffer | string, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
    const buffer = Buffer.from(bytes);
    const digest = sha(buffer);
    fs.writeFileSync(path.join(this.dir, 'blobs', 'sha256', digest.slice(7)), buffer);
    return { mediaType, digest, size: buffer.length, ...extra };
  }

  copy(from: string, descriptor: Descriptor): void {
    const hex = descriptor.digest.slice(7);
    fs.copyFileSync(path.join(from, 'blobs', 'sha256', hex), path.join(this.dir, 'blobs', 'sha256', hex));
  }

  index(manifests: Descriptor[], ref: string): Descriptor {
    const top = this.blob(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }), OCI_INDEX);
    fs.writeFileSync(path.join(this.dir, 'index.json'), JSON.stringify({
      schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': ref } }],
    }));
    return top;
  }
}

function readLayout(dir: string): { manifest: { config: Descriptor; layers: Descriptor[] }; manifestDescriptor: Descriptor; config: Record<string, unknown> } {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const manifestDescriptor = index.manifests[0]!;
  const blob = (d: Descriptor) => fs.readFileSync(path.join(dir, 'blobs', 'sha256', d.digest.slice(7)), 'utf8');
  const manifest = JSON.parse(blob(manifestDescriptor)) as { config: Descriptor; layers: Descriptor[] };
  return { manifest, manifestDescriptor, config: JSON.parse(blob(manifest.config)) as Record<string, unknown> };
}

/** What {@link multiPlatformLayout} built. */
export interface MultiPlatform {
  dir: string;
  /** the index's digest: what the registry serves for the tag */
  index: string;
  /** this machine's manifest: the test image's own, byte for byte (when the index has one) */
  mine?: string;
  /** the other platform's manifest: the same layers under a config of its own */
  other: string;
  /** the other platform's config digest: an image id calf must never show */
  otherConfig: string;
  attestation: string;
}

/**
 * An OCI layout at `out` whose one image is an index, ordered so that taking the first entry,
 * or the first `unknown` one, is wrong: [another platform, an attestation manifest, this
 * platform]. With `mine: false` this platform is left out, and an s390x entry put in (an index
 * calf must refuse, naming what it has); with `attestation: false` there is none (a Docker
 * manifest list cannot hold one).
 */
export function multiPlatformLayout(source: string, out: string, options: { mine?: boolean; attestation?: boolean } = {}): MultiPlatform {
  const { manifest, manifestDescriptor, config } = readLayout(source);
  const layout = new Layout(out);
  for (const layer of manifest.layers) layout.copy(source, layer);

  const other = otherPlatform();
  const otherConfig = layout.blob(JSON.stringify({
    ...config, architecture: other.architecture, ...(other.variant ? { variant: other.variant } : {}),
    config: { ...(config.config as object), Env: [...((config.config as { Env?: string[] }).Env ?? []), `CALF_PLATFORM=${other.os}/${other.architecture}`] },
  }), OCI_CONFIG);
  const otherManifest = layout.blob(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: otherConfig, layers: manifest.layers }), OCI_MANIFEST, { platform: other });

  // BuildKit's attestation: an image manifest for unknown/unknown whose one layer is an in-toto statement.
  const statement = layout.blob(JSON.stringify({
    _type: 'https://in-toto.io/Statement/v0.1', predicateType: 'https://spdx.dev/Document',
    subject: [{ name: 'calf-test', digest: { sha256: manifestDescriptor.digest.slice(7) } }], predicate: { spdxVersion: 'SPDX-2.3' },
  }), 'application/vnd.in-toto+json', { annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' } });
  const attestationConfig = layout.blob(JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [statement.digest] } }), OCI_CONFIG);
  const attestation = layout.blob(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: attestationConfig, layers: [statement] }), OCI_MANIFEST, {
    platform: { os: 'unknown', architecture: 'unknown' },
    annotations: { 'vnd.docker.reference.digest': manifestDescriptor.digest, 'vnd.docker.reference.type': 'attestation-manifest' },
  });

  const entries: Descriptor[] = options.attestation === false ? [otherManifest] : [otherManifest, attestation];
  let mine: string | undefined;
  if (options.mine === false) {
    const s390xConfig = layout.blob(JSON.stringify({ ...config, architecture: 's390x' }), OCI_CONFIG);
    const s390x = layout.blob(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: s390xConfig, layers: manifest.layers }), OCI_MANIFEST, { platform: { os: 'linux', architecture: 's390x' } });
    entries.push(s390x);
  } else {
    layout.copy(source, manifest.config);
    layout.copy(source, manifestDescriptor);
    entries.push({ mediaType: OCI_MANIFEST, digest: manifestDescriptor.digest, size: manifestDescriptor.size, platform: thisPlatform() });
    mine = manifestDescriptor.digest;
  }
  const top = layout.index(entries, 'latest');
  return { dir: out, index: top.digest, ...(mine ? { mine } : {}), other: otherManifest.digest, otherConfig: otherConfig.digest, attestation: attestation.digest };
}

/**
 * A big image for the throughput bench: the busybox layer, then one uncompressed layer holding
 * `megabytes` MB of random bytes (random data does not compress: gzip would only cost time).
 */
export async function bigLayout(busybox: string, out: string, megabytes: number): Promise<{ dir: string; bytes: number }> {
  const { manifest, config } = readLayout(busybox);
  const layout = new Layout(out);
  for (const layer of manifest.layers) layout.copy(busybox, layer);
  const pack = tarPack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((r) => { pack.on('end', () => r()); });
  const content = randomBytes(megabytes * 1_000_000);
  pack.entry({ name: 'big.bin', mode: 0o644, mtime: new Date('2024-01-01T00:00:00Z'), uid: 0, gid: 0 }, content);
  pack.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  const layer = layout.blob(tar, 'application/vnd.oci.image.layer.v1.tar');
  const rootfs = config.rootfs as { diff_ids: string[] };
  const bigConfig = layout.blob(JSON.stringify({ ...config, rootfs: { ...rootfs, diff_ids: [...rootfs.diff_ids, layer.digest] } }), OCI_CONFIG);
  const bigManifest = layout.blob(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: bigConfig, layers: [...manifest.layers, layer] }), OCI_MANIFEST);
  fs.writeFileSync(path.join(out, 'index.json'), JSON.stringify({
    schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...bigManifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  const bytes = [...manifest.layers, layer, bigConfig].reduce((n, d) => n + d.size, 0);
  return { dir: out, bytes };
}
