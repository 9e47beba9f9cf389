/**
 * Looking at the layer graph from the host (level 04 on): which directories an image's layers
 * unpack to, what is in them, and images made for a test with umoci. Reads OCI layouts and the
 * disk directly, never calf's own code: the tests don't trust what they check.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import koffi from 'koffi';
import { calfRoot } from './target.js';
import { imagesDir } from './images.js';

function blob(layout: string, digest: string): string {
  return path.join(layout, 'blobs', ...digest.split(':'));
}

/** The diff_ids of the (first) image of an OCI layout, base layer first. */
export function diffIds(layout: string): string[] {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(fs.readFileSync(blob(layout, index.manifests.at(-1)!.digest), 'utf8')) as { config: { digest: string } };
  const config = JSON.parse(fs.readFileSync(blob(layout, manifest.config.digest), 'utf8')) as { rootfs: { diff_ids: string[] } };
  return config.rootfs.diff_ids;
}

/** Where level 04's README says a layer is unpacked: `<calf root>/layers/<diff_id hex>`. */
export function layerDir(diffId: string): string {
  return path.join(calfRoot(), 'layers', diffId.replace(/^sha256:/, ''));
}

/** The layer directories of a test image in build/images (busybox, layered, calf-test), base first. */
export function testImageLayers(name: string): string[] {
  return diffIds(path.join(imagesDir, name)).map(layerDir);
}

const libc = koffi.load('libc.so.6');
const lgetxattr = libc.func('long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)');

/** The value of an extended attribute, or undefined when the file has none of that name. */
export function xattr(file: string, name: string): string | undefined {
  const buffer = Buffer.alloc(256);
  const n = Number(lgetxattr(file, name, buffer, buffer.length));
  return n < 0 ? undefined : buffer.subarray(0, n).toString();
}

/** Everything about a directory tree that a write could change: names, types, modes, owners, contents, devices. */
export function treeHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      hash.update(`${path.relative(dir, p)} ${st.mode} ${st.uid} ${st.gid} ${st.size} ${st.rdev} ${st.mtimeMs} ${st.ino}\n`);
      if (st.isFile()) hash.update(fs.readFileSync(p));
      else if (st.isSymbolicLink()) hash.update(fs.readlinkSync(p));
      else if (st.isDirectory()) {
        hash.update(`opaque=${xattr(p, 'trusted.overlay.opaque') ?? ''}\n`);
        walk(p);
      }
    }
  };
  walk(dir);
  return hash.digest('hex');
}

/** A layer directory's identity: a new inode or birth time means it was unpacked again. */
export function identity(dir: string): string {
  const st = fs.statSync(dir);
  return `${st.ino} ${st.birthtimeMs} ${st.ctimeMs}`;
}

/** An OCI layout made by a test, and the name `calf load` gives it. */
export interface MadeImage {
  layout: string;
  name: string;
  remove(): void;
}

/** umoci, failing with its stderr. (`umoci insert` 0.4.7 leaves its layer tars without their end blocks: not used.) */
function umoci(...args: string[]): void {
  execFileSync('umoci', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A layer tar of `dir`'s contents made by GNU tar, for `umoci raw add-layer`. */
function tarOf(dir: string, tar: string): string {
  execFileSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '-C', dir, '-cf', tar, '.']);
  return tar;
}

/** Copy the busybox test image's layout; umoci works on it as `<layout>:busybox:latest`. */
function busyboxCopy(dir: string): { layout: string; image: string } {
  const layout = path.join(dir, 'layout');
  fs.cpSync(path.join(imagesDir, 'busybox'), layout, { recursive: true });
  return { layout, image: `${layout}:busybox:latest` };
}

/** Name the image `name` and drop the busybox tag: `calf load` loads every image of a layout. */
function rename(layout: string, image: string, name: string): void {
  umoci('tag', '--image', image, name);
  umoci('rm', '--image', image);
}

/**
 * An image made with umoci on top of the busybox test image (so its base layer is busybox's):
 * layer 2 adds /data/{keep,gone}.txt and /data/opaque/old.txt (`umoci repack`), layer 3 deletes
 * /data/gone.txt (umoci writes the whiteout), layer 4 replaces /data/opaque with new.txt alone
 * (an opaque directory: umoci's repack writes a whiteout per file instead, so this layer is a
 * tar added with `umoci raw add-layer`). `token` goes into keep.txt: every image is new to calf.
 */
export function umociImage(token: string): MadeImage {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-umoci-'));
  const { layout, image } = busyboxCopy(dir);
  const bundle = path.join(dir, 'bundle');
  umoci('unpack', '--image', image, bundle);
  const data = path.join(bundle, 'rootfs/data');
  fs.mkdirSync(path.join(data, 'opaque'), { recursive: true });
  fs.writeFileSync(path.join(data, 'keep.txt'), `${token}\n`);
  fs.writeFileSync(path.join(data, 'gone.txt'), 'whited out by the next layer\n');
  fs.writeFileSync(path.join(data, 'opaque/old.txt'), 'hidden by the opaque directory\n');
  umoci('repack', '--refresh-bundle', '--image', image, bundle);
  fs.rmSync(path.join(data, 'gone.txt'));
  umoci('repack', '--image', image, bundle);
  const opaque = path.join(dir, 'opaque/data/opaque');
  fs.mkdirSync(opaque, { recursive: true });
  fs.writeFileSync(path.join(opaque, '.wh..wh..opq'), '');
  fs.writeFileSync(path.join(opaque, 'new.txt'), 'the only file of the opaque directory\n');
  umoci('raw', 'add-layer', '--image', image, tarOf(path.join(dir, 'opaque'), path.join(dir, 'opaque.tar')));
  const name = `calf-umoci-${token}:latest`;
  rename(layout, image, name);
  return { layout, name, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A large image new to calf: busybox's layer plus one of `megabytes` of random bytes (random, so
 * gzip cannot shrink it and its unpack takes a while).
 */
export function bigImage(token: string, megabytes = 24): MadeImage {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-big-'));
  const { layout, image } = busyboxCopy(dir);
  fs.mkdirSync(path.join(dir, 'big/big'), { recursive: true });
  const file = fs.openSync(path.join(dir, 'big/big/random'), 'w');
  for (let i = 0; i < megabytes; i++) fs.writeSync(file, randomBytes(1 << 20));
  fs.closeSync(file);
  umoci('raw', 'add-layer', '--image', image, tarOf(path.join(dir, 'big'), path.join(dir, 'big.tar')));
  fs.rmSync(path.join(dir, 'big'), { recursive: true });
  fs.rmSync(path.join(dir, 'big.tar'));
  const name = `calf-big-${token}:latest`;
  rename(layout, image, name);
  return { layout, name, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
