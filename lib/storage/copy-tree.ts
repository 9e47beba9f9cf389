/**
 * Copying a directory tree the way a filesystem layer needs it: owners, modes, times, symlinks
 * as symlinks, device nodes and FIFOs as such, hard links kept. The `vfs` driver applies layers
 * with it; a new named volume gets the image's files with it (level 14).
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { OVERLAY_OPAQUE } from '../image/unpack.js';
import { lgetxattr } from '../linux/xattr.js';
import { mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../linux/stat.js';

/**
 * Copy what the directory `src` holds into the directory `dest`, over what `dest` has. With
 * `whiteouts`, `src` is a layer directory and applies as a layer: its overlay-format whiteouts
 * delete (a character device 0/0 removes the name from `dest`, an opaque directory empties what
 * `dest` had there). Symlinks are copied, never followed: a link in `src` pointing anywhere is a
 * link in `dest` pointing there. Hard links inside `src` stay hard links.
 */
export function copyTree(src: string, dest: string, options: { whiteouts?: boolean } = {}): void {
  copyInto(src, dest, options.whiteouts ?? false, new Map());
}

/** `links` maps a source inode to its first copy. */
function copyInto(src: string, dest: string, whiteouts: boolean, links: Map<string, string>): void {
  if (whiteouts && lgetxattr(src, OVERLAY_OPAQUE)?.toString() === 'y') {
    for (const name of fs.readdirSync(dest)) fs.rmSync(path.join(dest, name), { recursive: true, force: true });
  }
  for (const name of fs.readdirSync(src)) {
    const from = path.join(src, name);
    const to = path.join(dest, name);
    const st = fs.lstatSync(from);
    if (whiteouts && st.isCharacterDevice() && st.rdev === 0) {
      fs.rmSync(to, { recursive: true, force: true }); // a whiteout: the name is gone from here up
      continue;
    }
    if (st.isDirectory()) {
      const existing = lstatOrUndefined(to);
      if (existing && !existing.isDirectory()) fs.unlinkSync(to);
      if (!existing?.isDirectory()) fs.mkdirSync(to);
      copyInto(from, to, whiteouts, links);
      copyAttributes(to, st); // after its entries: creating them changed its mtime
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
    copyAttributes(to, st);
  }
}

/** Give `to` the owner, then the mode (chown clears set-uid bits), then the times of `st`; a symlink's mode is not its own. */
export function copyAttributes(to: string, st: fs.Stats): void {
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
