/**
 * The store check: is the image store under a calf root whole? Every blob hashes to its name,
 * every image's manifest, config and layers are there, no temp file is left by a calf that is gone,
 * and no half-unpacked layer sits where a finished one would. `calf load` on a full disk, a calf
 * killed mid-load, and the soak (issue 20) all end with this check.
 *
 * Where the writers are: blobs and index.json (store.ts: temp file + rename, the temp named
 * `.tmp-<pid>-…`), unpacked layers (layers.ts: `layers/.tmp-<pid>-…`, renamed into place). A new
 * writer (pull, commit) that follows the same two conventions is checked by this as it stands;
 * one that writes elsewhere under the root needs a line here.
 * @module
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { calfRoot } from '../core/root.js';
import { imagesDir, readIndex, REF_NAME, resolveEntry, type ImageIndex } from './store.js';
import { layersDir } from './layers.js';

export interface StoreCheckOptions {
  /**
   * Whether process `pid` is alive. A temp file of a live calf is work in progress, not an
   * orphan. By default no process counts as alive: the check is for a quiet store, nothing
   * running on it (after a run, after a kill).
   */
  alive?: (pid: number) => boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** `…tmp-<pid>-<random>` or `….tmp-<pid>` (lib/core/record.ts): the temp files and directories calf's writers make. */
const TEMP = /(?:^|\.)tmp-(\d+)(?:-[0-9a-f]+)?$/;

/**
 * Check the store under `root`.
 * @returns one line per problem (`<path>: <what is wrong>`); empty when the store is whole
 */
export function checkStore(root = calfRoot(), options: StoreCheckOptions = {}): string[] {
  const alive = options.alive ?? (() => false);
  const problems: string[] = [];
  const images = imagesDir(root);
  const inUse = (name: string): boolean => {
    const match = TEMP.exec(name);
    return Boolean(match && alive(Number(match[1])));
  };

  // Blobs: each one hashes to its name; anything else in the directory is a temp file or a stranger.
  const blobDir = path.join(images, 'blobs', 'sha256');
  for (const name of list(path.join(images, 'blobs'))) {
    if (name !== 'sha256') problems.push(`${path.join(images, 'blobs', name)}: not a sha256 blob directory`);
  }
  for (const name of list(blobDir)) {
    const file = path.join(blobDir, name);
    if (!HEX64.test(name)) {
      if (!inUse(name)) problems.push(`${file}: ${name.includes('tmp-') ? 'a temp file left behind' : 'not a blob (its name is not a sha256)'}`);
      continue;
    }
    const st = fs.lstatSync(file);
    if (!st.isFile()) {
      problems.push(`${file}: not a regular file`);
      continue;
    }
    const actual = hashFile(file);
    if (actual !== name) problems.push(`${file}: its content hashes to sha256:${actual.slice(0, 12)}…`);
  }

  // A layout being made (store.ts's initStore) by a calf that is gone.
  for (const name of list(root)) {
    if (/^images\.tmp-\d+-/.test(name) && !inUse(name)) problems.push(`${path.join(root, name)}: a temp file left behind`);
  }

  // The layout's own files, and temp files beside them.
  if (fs.existsSync(images)) {
    for (const name of list(images)) {
      if (name.includes('.tmp-') && !inUse(name)) problems.push(`${path.join(images, name)}: a temp file left behind`);
    }
    const layoutFile = path.join(images, 'oci-layout');
    try {
      const layout = JSON.parse(fs.readFileSync(layoutFile, 'utf8')) as { imageLayoutVersion?: unknown } | null;
      if (typeof layout?.imageLayoutVersion !== 'string') problems.push(`${layoutFile}: no imageLayoutVersion`);
    } catch (error) {
      problems.push(`${layoutFile}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `not valid JSON (${(error as Error).message})`}`);
    }
  }

  // Every image of index.json, read as `calf run` reads it: manifest (through an index, for
  // this platform), config and layers, each checked; blobs that hash wrong were reported above.
  const indexPath = path.join(images, 'index.json');
  let index: ImageIndex | undefined;
  if (fs.existsSync(images)) {
    try {
      index = readIndex(root);
    } catch (error) {
      problems.push(`${indexPath}: ${(error as Error).message}`);
    }
  }
  const names = new Set<string>();
  for (const entry of index?.manifests ?? []) {
    const name = entry.annotations?.[REF_NAME];
    if (name !== undefined) {
      if (names.has(name)) problems.push(`${indexPath}: image ${name} is listed twice`);
      names.add(name);
    }
    try {
      resolveEntry(entry, name ?? entry.digest, root);
    } catch (error) {
      problems.push(`${indexPath}: ${(error as Error).message}`);
    }
  }

  // The layer graph: finished layers are named by their diff_id; a temp directory is half a layer.
  const layers = layersDir(root);
  for (const name of list(layers)) {
    const dir = path.join(layers, name);
    if (HEX64.test(name)) {
      if (!fs.lstatSync(dir).isDirectory()) problems.push(`${dir}: a layer that is not a directory`);
    } else if (TEMP.test(name)) {
      if (!inUse(name)) problems.push(`${dir}: a half-unpacked layer left behind`);
    } else {
      problems.push(`${dir}: not a layer (its name is not a diff_id)`);
    }
  }
  return problems;
}

function list(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function hashFile(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(1 << 20);
    for (let n; (n = fs.readSync(fd, buffer)) > 0;) hash.update(buffer.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}
