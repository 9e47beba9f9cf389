/**
 * A damaged store: a good image loaded, then one of the store's own JSON documents mutated
 * (in place, so its blob no longer hashes to its name; or re-hashed, with its parents made to
 * point at it, as a store some older calf wrote would be), or one of its files broken. What
 * reads the store (lib/image/store.ts: resolveImage, listImages, tagImage by the next load, rmi,
 * prune) must end in success or one clean line, and the store check must report the damage that
 * makes any of them fail.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Rng } from './rng.js';
import { tar } from './tar.js';
import { mutateAt, type Json } from './image-cases.js';
import type { Sandbox } from './sandbox.js';
import type { Scale } from './layer-cases.js';
import { ociArchitecture } from '../../lib/image/store.js';

export interface StoreCase {
  /** the image to load first, as OCI layout files */
  layout: Map<string, Buffer>;
  tag: string;
  /** damage the store under `root` (after the load) */
  damage(root: string): void;
  notes: string[];
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A small valid OCI layout with one image called `tag`. */
export function goodLayout(tag: string, content: string): Map<string, Buffer> {
  const layer = tar([{ name: 'bin/', type: '5' }, { name: 'bin/hello', type: '0', data: Buffer.from(content), mode: 0o755 }]);
  const config = Buffer.from(JSON.stringify({
    architecture: ociArchitecture(), os: 'linux', config: { Cmd: ['/bin/hello'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer)}`] },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha(layer)}`, size: layer.length }],
  }));
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  return new Map([
    ['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')], ['index.json', index],
    ...[layer, config, manifest].map((b): [string, Buffer] => [`blobs/sha256/${sha(b)}`, b]),
  ]);
}

export function storeCase(seed: number | string, index: number, box: Sandbox, scale: Scale): StoreCase {
  const rng = new Rng(seed, index);
  const notes: string[] = [];
  const tag = `fuzz-store-${index}:v1`;
  const layout = goodLayout(tag, `hello ${rng.next()}\n`);
  const kind = rng.weighted([[3, 'in-place'], [5, 'rehashed'], [2, 'file']] as const);
  const which = rng.pick(['index', 'manifest', 'config'] as const);
  // Decided now, so that the case is the same whatever the store looks like when it runs.
  const mutationSeed = rng.next();
  const fileDamage = rng.pick(['delete-blob', 'truncate-index', 'empty-index', 'blob-dir', 'no-layout', 'temp-file', 'index-dir', 'zero-blob'] as const);
  const blobPick = rng.next();
  notes.push(kind === 'file' ? `file: ${fileDamage}` : `${kind} ${which}`);

  return {
    layout, tag, notes,
    damage(root: string) {
      const images = path.join(root, 'images');
      const indexFile = path.join(images, 'index.json');
      const blob = (digest: string): string => path.join(images, 'blobs/sha256', digest.slice(7));
      const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { manifests: { digest: string; size: number }[] };
      const entry = index.manifests.at(-1)!;
      const manifest = JSON.parse(fs.readFileSync(blob(entry.digest), 'utf8')) as { config: { digest: string; size: number } };
      if (kind === 'file') {
        const blobs = fs.readdirSync(path.join(images, 'blobs/sha256'));
        const victim = path.join(images, 'blobs/sha256', blobs[blobPick % blobs.length]!);
        switch (fileDamage) {
          case 'delete-blob': fs.rmSync(victim); break;
          case 'truncate-index': fs.truncateSync(indexFile, Math.floor(fs.statSync(indexFile).size / 2)); break;
          case 'empty-index': fs.writeFileSync(indexFile, ''); break;
          case 'blob-dir': fs.rmSync(victim); fs.mkdirSync(victim); break;
          case 'no-layout': fs.rmSync(path.join(images, 'oci-layout')); break;
          case 'temp-file': fs.writeFileSync(path.join(images, 'blobs/sha256', '.tmp-999999-abcdef'), 'half'); break;
          case 'index-dir': fs.rmSync(indexFile); fs.mkdirSync(indexFile); break;
          case 'zero-blob': fs.truncateSync(victim, 0); break;
        }
        return;
      }
      const docRng = new Rng(mutationSeed);
      const file = which === 'index' ? indexFile : which === 'manifest' ? blob(entry.digest) : blob(manifest.config.digest);
      const [value, note] = mutateAt(JSON.parse(fs.readFileSync(file, 'utf8')) as Json, docRng, box, scale, true);
      notes.push(note);
      const bytes = Buffer.from(JSON.stringify(value) ?? 'null');
      if (kind === 'in-place' || which === 'index') {
        fs.writeFileSync(file, bytes);
        return;
      }
      // Re-hashed: the document under its new digest, and its parents pointing at it.
      const write = (b: Buffer): { digest: string; size: number } => {
        fs.writeFileSync(blob(`sha256:${sha(b)}`), b);
        return { digest: `sha256:${sha(b)}`, size: b.length };
      };
      let top = write(bytes);
      if (which === 'config') top = write(Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, ...top } })));
      Object.assign(entry, top);
      fs.writeFileSync(indexFile, JSON.stringify(index));
    },
  };
}
