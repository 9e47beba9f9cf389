/**
 * `calf rmi` and `calf image prune`: take names off images, and remove what no image needs any
 * more — blobs in the store and unpacked layers in the layer graph. The store is reference-counted
 * by reachability: a blob or layer stays while some name (or unnamed entry) in `index.json` leads
 * to it, so an image sharing its base layer with another never takes that layer along.
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { shortId } from './digest.js';
import {
  imagesDir, blobPath, readIndex, readJsonBlob, platformManifest, resolveImage, REF_NAME,
  isIndexMediaType, type ImageConfigFile, type ImageIndex,
} from './store.js';
import { listLayers, removeLayer } from './layers.js';
import { CalfError } from '../core/errors.js';
import { calfRoot } from '../core/root.js';
import { writeFileAtomic } from '../core/record.js';
import { withIndexLock, withStoreLockSync, type OnWait } from './lock.js';

/** `docker rmi` exits 1 on every error, not `docker run`'s 125. */
const EXIT_RMI = 1;

/**
 * Remove the name `ref` (or, for an id, the image's only name) from the store; when no name is
 * left, remove the image and whatever of it no other image uses. `inUse(id)` names a running
 * container that uses the image: then the image's last name stays, as Docker refuses.
 * @returns the lines `docker rmi` prints: `Untagged: …`, `Deleted: …`
 */
export function removeImage(ref: string, inUse: (imageId: string) => string | undefined, root = calfRoot(), onWait?: OnWait): string[] {
  // Exclusive: a pull or load running now has blobs in the store that no name leads to yet.
  return withStoreLockSync('exclusive', () => withIndexLock(() => removeLocked(ref, inUse, root), root), { root, ...(onWait ? { onWait } : {}) });
}

function removeLocked(ref: string, inUse: (imageId: string) => string | undefined, root: string): string[] {
  let image;
  try {
    image = resolveImage(ref, root);
  } catch {
    throw new CalfError(`No such image: ${ref}`, { exitCode: EXIT_RMI });
  }
  const index = readIndex(root);
  const idOf = (d: ImageIndex['manifests'][number]): string | undefined => {
    try {
      return platformManifest(d, d.digest, root).config.digest;
    } catch {
      return undefined;
    }
  };
  const same = index.manifests.filter((d) => idOf(d) === image.id);
  const byName = same.filter((d) => d.annotations?.[REF_NAME] === image.name);
  const names = same.map((d) => d.annotations?.[REF_NAME]).filter((n): n is string => Boolean(n));
  if (byName.length === 0 && names.length > 1) {
    throw new CalfError(`conflict: unable to delete ${shortId(image.id)} (must be forced) - image is referenced in multiple repositories`, { exitCode: EXIT_RMI });
  }
  const going = byName.length ? byName : same;
  const last = going.length === same.length;
  const user = last ? inUse(image.id) : undefined;
  if (user) {
    throw new CalfError(`conflict: unable to remove repository reference "${ref}" (must force) - container ${user} is using its referenced image ${shortId(image.id)}`, { exitCode: EXIT_RMI });
  }
  index.manifests = index.manifests.filter((d) => !going.includes(d));
  writeFileAtomic(path.join(imagesDir(root), 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  const lines = going.flatMap((d) => (d.annotations?.[REF_NAME] ? [`Untagged: ${d.annotations[REF_NAME]}`] : []));
  if (last) lines.push(`Deleted: ${image.id}`, ...pruneStore(root).map((what) => `Deleted: ${what}`));
  return lines;
}

/**
 * Remove every blob and unpacked layer that no entry of `index.json` leads to (what `calf load`
 * replacing a tag, or an interrupted load, leaves behind).
 * @returns what it removed: blob digests and layer diff_ids
 */
export function pruneStore(root = calfRoot(), onWait?: OnWait): string[] {
  return withStoreLockSync('exclusive', () => pruneLocked(root), { root, ...(onWait ? { onWait } : {}) });
}

function pruneLocked(root: string): string[] {
  const blobs = new Set<string>();
  const diffIds = new Set<string>();
  for (const entry of readIndex(root).manifests) {
    blobs.add(entry.digest);
    try {
      if (isIndexMediaType(entry.mediaType)) {
        for (const m of readJsonBlob<ImageIndex>(entry.digest, root, 'index').manifests) blobs.add(m.digest);
      }
      const manifest = platformManifest(entry, entry.digest, root);
      blobs.add(manifest.config.digest);
      for (const layer of manifest.layers) blobs.add(layer.digest);
      for (const d of readJsonBlob<ImageConfigFile>(manifest.config.digest, root, 'config').rootfs?.diff_ids ?? []) diffIds.add(d);
    } catch {
      // A broken entry keeps what it still names; `calf run` of it reports what is missing.
    }
  }
  const removed: string[] = [];
  for (const layer of listLayers(root)) {
    if (diffIds.has(layer.diffId)) continue;
    removeLayer(layer.diffId, root);
    removed.push(layer.diffId);
  }
  const dir = path.join(imagesDir(root), 'blobs', 'sha256');
  for (const hex of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (!/^[0-9a-f]{64}$/.test(hex) || blobs.has(`sha256:${hex}`)) continue;
    fs.rmSync(blobPath(`sha256:${hex}`, root), { force: true });
  }
  return removed;
}

/** The unpacked layers, and which of them no image in the store uses. */
export function layerUsage(root = calfRoot()): { count: number; size: number; unused: { count: number; size: number } } {
  const used = new Set<string>();
  for (const entry of readIndex(root).manifests) {
    try {
      const manifest = platformManifest(entry, entry.digest, root);
      for (const d of readJsonBlob<ImageConfigFile>(manifest.config.digest, root, 'config').rootfs?.diff_ids ?? []) used.add(d);
    } catch {
      // counted as unused: nothing readable leads to its layers
    }
  }
  const layers = listLayers(root);
  const unused = layers.filter((l) => !used.has(l.diffId));
  const sum = (ls: typeof layers): number => ls.reduce((n, l) => n + l.size, 0);
  return { count: layers.length, size: sum(layers), unused: { count: unused.length, size: sum(unused) } };
}
