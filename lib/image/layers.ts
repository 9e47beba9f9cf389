/**
 * The layer graph: every layer unpacked once, into `<calfRoot()>/layers/<diff_id hex>/`, and
 * shared by every image and every container that uses it. Docker calls this the *graph* (its
 * original `graph/` package, now the layer store); the *storage driver* (lib/storage/) then
 * makes a container's root out of these directories.
 *
 * A layer directory is named by its diff_id, the digest of the uncompressed tar that the image
 * config lists in `rootfs.diff_ids`, and is checked against it while unpacking. The directory is
 * in overlayfs's format (whiteouts are device 0/0 files, opaque directories carry
 * `trusted.overlay.opaque=y`), so overlay can stack it as it is.
 *
 * Unpacking is atomic: into `layers/.tmp-<pid>-<random>/`, then renamed into place. A reader never
 * sees half a layer, two calfs unpacking the same layer at once both succeed (the second rename
 * fails, and its copy is dropped), and a calf killed mid-unpack leaves only a temp directory that
 * `calf cleanup` removes (its pid is in the name).
 * @see https://docs.docker.com/engine/storage/drivers/
 * @module
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CalfError } from '../core/errors.js';
import { splitDigest } from './digest.js';
import type { ResolvedImage } from './store.js';
import { unpackLayerDir } from './unpack.js';
import { calfRoot } from '../core/root.js';
import type { LeftoverKind } from '../core/leftovers.js';

/** Where unpacked layers live. */
export function layersDir(root = calfRoot()): string {
  return path.join(root, 'layers');
}

/** The directory of the layer with this diff_id (`sha256:…`), whether or not it is unpacked yet. */
export function layerDir(diffId: string, root = calfRoot()): string {
  return path.join(layersDir(root), splitDigest(diffId)[1]);
}

/** How {@link ensureLayers} reports what it does. */
export interface UnpackListener {
  /** `count` layers, `bytes` compressed bytes in all, are about to be unpacked */
  start?(count: number, bytes: number): void;
  /** `bytes` more of a blob have been read */
  read?(bytes: number): void;
  /** all of them are in place */
  done?(): void;
}

/**
 * Make sure each of the image's layers is unpacked, unpacking only those that are not.
 * @returns the layer directories, bottom layer first (the image's order)
 */
export async function ensureLayers(image: ResolvedImage, listener: UnpackListener = {}, root = calfRoot()): Promise<string[]> {
  const diffIds = image.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== image.layers.length) {
    throw new CalfError(`image ${image.name}: its config lists ${diffIds.length} diff_ids for ${image.layers.length} layers`);
  }
  const dirs = diffIds.map((d) => layerDir(d, root));
  const missing = image.layers.map((layer, i) => ({ layer, diffId: diffIds[i]!, dir: dirs[i]! })).filter(({ dir }) => !fs.existsSync(dir));
  if (missing.length === 0) return dirs;
  listener.start?.(missing.length, missing.reduce((sum, m) => sum + m.layer.size, 0));
  fs.mkdirSync(layersDir(root), { recursive: true });
  for (const { layer, diffId, dir } of missing) {
    const temp = path.join(layersDir(root), `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await unpackLayerDir(layer.path, temp, diffId, listener.read);
      fs.renameSync(temp, dir);
    } catch (error) {
      fs.rmSync(temp, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      // Another calf unpacked the same layer meanwhile: its copy is as good as ours.
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && fs.existsSync(dir)) continue;
      throw error;
    }
  }
  listener.done?.();
  return dirs;
}

/** One unpacked layer: its diff_id and how many bytes its files take. */
export interface LayerSummary {
  diffId: string;
  dir: string;
  /** the apparent size of its regular files and symlinks */
  size: number;
}

/** Every unpacked layer under `root`. */
export function listLayers(root = calfRoot()): LayerSummary[] {
  let names: string[];
  try {
    names = fs.readdirSync(layersDir(root));
  } catch {
    return [];
  }
  return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((hex) => {
    const dir = path.join(layersDir(root), hex);
    return { diffId: `sha256:${hex}`, dir, size: treeSize(dir) };
  });
}

/** Remove an unpacked layer. Its files may be read-only; as root that does not matter. */
export function removeLayer(diffId: string, root = calfRoot()): void {
  fs.rmSync(layerDir(diffId, root), { recursive: true, force: true });
}

function treeSize(dir: string): number {
  let size = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) size += treeSize(full);
    else if (entry.isFile() || entry.isSymbolicLink()) size += fs.lstatSync(full).size;
  }
  return size;
}

/** `calf cleanup`: a calf killed while unpacking leaves its temp directory; the finished layers are the cache and stay. */
export const layerLeftovers: LeftoverKind = {
  kind: 'layer unpack',
  find: (root) => {
    let names: string[];
    try {
      names = fs.readdirSync(layersDir(root));
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      const match = /^\.tmp-(\d+)-/.exec(name);
      if (!match) return [];
      const dir = path.join(layersDir(root), name);
      return [{ what: `half-unpacked layer ${dir}`, owner: Number(match[1]), remove: () => fs.rmSync(dir, { recursive: true, force: true }) }];
    });
  },
};
