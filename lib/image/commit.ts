/**
 * `calf commit` (level 15): a container's writable layer becomes an image layer on top of its
 * image's, and the result a new image in the store. With the overlay driver the writable layer is
 * overlayfs's upper directory, which records a change the way overlayfs needs it, not the way an
 * image layer does (the OCI layer spec), so two kinds of entries are translated back, the reverse
 * of what unpacking a lower layer did (lib/image/unpack.ts):
 *
 * | in the upper directory | in the layer tar |
 * |---|---|
 * | `name`, a character device 0/0 (a whiteout: deleted) | `.wh.name`, an empty file |
 * | a directory with `trusted.overlay.opaque=y` (emptied, then refilled) | the directory, and `dir/.wh..wh..opq` in it |
 *
 * Everything else is copied as it is: files, directories, symlinks, hard links (as tar links),
 * devices and FIFOs, with their mode, owner and modification time. The tar is gzipped; its
 * uncompressed sha256 is the new layer's diff_id, appended to the image config's `rootfs.diff_ids`
 * with a `history` entry.
 * @see https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts
 * @see https://docs.kernel.org/filesystems/overlayfs.html#whiteouts-and-opaque-directories
 * @module
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { pack as tarPack, Header } from 'tar-stream';
import { tarStream } from './unpack.js';
import { lgetxattr } from '../linux/xattr.js';
import { CalfError } from '../core/errors.js';
import { calfRoot } from '../core/root.js';
import {
  addBlobBytes, addBlobFromFile, MediaType, platformManifest, readIndex, resolveImage, tagImage,
  type ImageConfigFile, type ImageManifest,
} from './store.js';
import { OVERLAY_OPAQUE } from './unpack.js';

/** What to commit: a container's writable layer and the image it runs. */
export interface CommitSource {
  /** overlayfs's upper directory of the container */
  upper: string;
  /** the id of the image the container runs (`sha256:…`) */
  imageId: string;
  /** the container's id, for the history entry */
  containerId: string;
  /** the command the container runs, for the history entry (Docker's `created_by`) */
  command: string[];
}

/**
 * Make a new image of `source`'s image plus its writable layer, and name it `name`.
 * @returns the new image's id (`sha256:…`, its config's digest)
 */
export async function commitImage(source: CommitSource, name: string, root = calfRoot()): Promise<string> {
  const base = resolveImage(source.imageId, root);
  const entry = readIndex(root).manifests.find((e) => platformManifestOrUndefined(e, root)?.config.digest === base.id);
  if (!entry) throw new CalfError(`image ${base.name} is no longer in the store: cannot commit a container of it`);
  const manifest = platformManifest(entry, base.name, root);

  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-commit-'));
  try {
    const tgz = path.join(temp, 'layer.tar.gz');
    const diffId = await writeLayer(source.upper, tgz);
    const layer = await addBlobFromFile(tgz, {}, root);
    const config: ImageConfigFile = {
      ...base.config,
      created: new Date().toISOString(),
      rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, diffId] },
      history: [...(base.config.history ?? []), {
        created: new Date().toISOString(),
        created_by: `calf commit ${source.containerId.slice(0, 12)}: ${source.command.join(' ')}`,
      }],
    };
    const configBlob = addBlobBytes(JSON.stringify(config), root);
    const newManifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.manifest,
      config: { mediaType: MediaType.config, digest: configBlob.digest, size: configBlob.size },
      layers: [...manifest.layers, { mediaType: MediaType.layerGzip, digest: layer.digest, size: layer.size }],
    };
    const manifestBlob = addBlobBytes(JSON.stringify(newManifest), root);
    tagImage(name, { mediaType: MediaType.manifest, digest: manifestBlob.digest, size: manifestBlob.size }, root);
    return configBlob.digest;
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

function platformManifestOrUndefined(entry: Parameters<typeof platformManifest>[0], root: string): ImageManifest | undefined {
  try {
    return platformManifest(entry, entry.digest, root);
  } catch {
    return undefined;
  }
}

/**
 * Write the upper directory `upper` as a gzipped OCI layer tar to `file`.
 * @returns its diff_id: the sha256 of the tar before compression
 */
export async function writeLayer(upper: string, file: string): Promise<string> {
  const pack = (await tarStream()).pack();
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const written = pipeline(pack, hashing, createGzip(), fs.createWriteStream(file));
  try {
    await addTree(pack, upper, '', new Map());
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
  }
  await written;
  return `sha256:${hash.digest('hex')}`;
}

/** Add what is in `dir` (at `rel` in the layer) to the tar, sorted by name, translating whiteouts. */
async function addTree(pack: ReturnType<typeof tarPack>, dir: string, rel: string, links: Map<string, string>): Promise<void> {
  for (const name of fs.readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    const entryName = rel ? `${rel}/${name}` : name;
    const st = fs.lstatSync(full);
    const common = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
    if (st.isCharacterDevice() && st.rdev === 0) { // overlayfs's whiteout: the layer's `.wh.name`
      await entry(pack, { ...common, name: rel ? `${rel}/.wh.${name}` : `.wh.${name}`, type: 'file', size: 0, mode: 0o644 });
      continue;
    }
    if (st.isDirectory()) {
      await entry(pack, { ...common, name: `${entryName}/`, type: 'directory' });
      if (lgetxattr(full, OVERLAY_OPAQUE)?.toString() === 'y') {
        await entry(pack, { ...common, name: `${entryName}/.wh..wh..opq`, type: 'file', size: 0, mode: 0o644 });
      }
      await addTree(pack, full, entryName, links);
      continue;
    }
    const inode = `${st.dev}:${st.ino}`;
    if (st.nlink > 1 && !st.isDirectory()) {
      const first = links.get(inode);
      if (first) {
        await entry(pack, { ...common, name: entryName, type: 'link', linkname: first });
        continue;
      }
      links.set(inode, entryName);
    }
    if (st.isFile()) await entry(pack, { ...common, name: entryName, type: 'file', size: st.size }, fs.readFileSync(full));
    else if (st.isSymbolicLink()) await entry(pack, { ...common, name: entryName, type: 'symlink', linkname: fs.readlinkSync(full) });
    else if (st.isCharacterDevice() || st.isBlockDevice()) {
      await entry(pack, {
        ...common, name: entryName, type: st.isCharacterDevice() ? 'character-device' : 'block-device',
        devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00),
      });
    } else if (st.isFIFO()) await entry(pack, { ...common, name: entryName, type: 'fifo' });
    // sockets are not in layers
  }
}

function entry(pack: ReturnType<typeof tarPack>, headers: Partial<Header> & { name: string }, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(headers as Header, body ?? '', (err) => (err ? reject(err) : resolve()));
  });
}
