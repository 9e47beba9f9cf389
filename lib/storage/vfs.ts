/**
 * The `vfs` storage driver (Docker's name for it): no union filesystem, just copies. The
 * container's root is a full copy of the image's layer directories, applied bottom first, with
 * overlay-format whiteouts applied as the OCI spec says (a device 0/0 deletes the name below it,
 * an opaque directory empties what was below). Slow and large, but it works on any filesystem
 * and in places where overlayfs cannot be mounted (inside some containers, on an overlay upper).
 * @see https://docs.docker.com/engine/storage/drivers/vfs-driver/
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensureLayers } from '../image/layers.js';
import { terminalProgress } from '../image/progress.js';
import { OVERLAY_OPAQUE } from '../image/unpack.js';
import { lgetxattr } from '../linux/xattr.js';
import { mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../linux/stat.js';
import type { StorageDriver } from './driver.js';

export const vfs: StorageDriver = {
  name: 'vfs',
  async prepare(image, container) {
    const layers = await ensureLayers(image, terminalProgress());
    for (const layer of layers) copyLayer(layer, container.rootfs, new Map());
    return { rootfs: container.rootfs };
  },
};

/**
 * Apply the layer directory `src` onto `dest`. `links` maps a source inode to the first copy of
 * it, so hard links inside a layer stay hard links.
 */
function copyLayer(src: string, dest: string, links: Map<string, string>): void {
  if (lgetxattr(src, OVERLAY_OPAQUE)?.toString() === 'y') {
    for (const name of fs.readdirSync(dest)) fs.rmSync(path.join(dest, name), { recursive: true, force: true });
  }
  for (const name of fs.readdirSync(src)) {
    const from = path.join(src, name);
    const to = path.join(dest, name);
    const st = fs.lstatSync(from);
    if (st.isCharacterDevice() && st.rdev === 0) {
      fs.rmSync(to, { recursive: true, force: true }); // a whiteout: the name is gone from here up
      continue;
    }
    if (st.isDirectory()) {
      const existing = lstatOrUndefined(to);
      if (existing && !existing.isDirectory()) fs.unlinkSync(to);
      if (!existing?.isDirectory()) fs.mkdirSync(to);
      copyLayer(from, to, links);
      setAttributes(to, st); // after its entries: creating them changed its mtime
      continue;
    }
    fs.rmSync(to, { recursive: true, force: true });
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(key) : undefined;
    if (first) {
      fs.linkSync(first, to);
      continue;
    }
    if (st.nlink > 1) links.set(key, to);
    if (st.isFile()) fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE); // a reflink where the filesystem can
    else if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(from), to);
    else {
      const type = st.isFIFO() ? S_IFIFO : st.isBlockDevice() ? S_IFBLK : S_IFCHR;
      mknod(to, type | (st.mode & 0o7777), BigInt(st.rdev));
    }
    setAttributes(to, st);
  }
}

/** Owner, then mode (chown clears set-uid bits), then times; a symlink's mode is not its own. */
function setAttributes(to: string, st: fs.Stats): void {
  fs.lchownSync(to, st.uid, st.gid);
  if (!st.isSymbolicLink()) fs.chmodSync(to, st.mode & 0o7777);
  fs.lutimesSync(to, st.atime, st.mtime);
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}
