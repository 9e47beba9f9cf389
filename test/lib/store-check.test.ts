/**
 * The store check (lib/image/check.ts): silent on a whole store, and on a store damaged on
 * purpose it names each kind of damage (so a soak or a full-disk test that relies on it can fail).
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkStore } from '../../lib/image/check.js';
import { ensureLayers } from '../../lib/image/layers.js';
import { loadImages } from '../../lib/image/load.js';
import { resolveImage } from '../../lib/image/store.js';
import { goodLayout } from '../fuzz/store-cases.js';

let work: string;
let root: string;

beforeEach(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-'));
  root = path.join(work, 'root');
  for (const [name, content] of [['one:v1', 'one\n'], ['two:v1', 'two\n']] as const) {
    const layout = path.join(work, name.replace(':', '-'));
    for (const [rel, bytes] of goodLayout(name, content)) {
      fs.mkdirSync(path.dirname(path.join(layout, rel)), { recursive: true });
      fs.writeFileSync(path.join(layout, rel), bytes);
    }
    await loadImages(layout, root);
  }
  await ensureLayers(resolveImage('one:v1', root), {}, root);
});

afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

const blobs = (): string => path.join(root, 'images/blobs/sha256');
/** The blob of image `name`'s layer, config or manifest. */
function blobOf(name: string, what: 'layer' | 'config' | 'manifest'): string {
  const image = resolveImage(name, root);
  if (what === 'layer') return image.layers[0]!.path;
  if (what === 'config') return path.join(blobs(), image.id.slice(7));
  const index = JSON.parse(fs.readFileSync(path.join(root, 'images/index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  return path.join(blobs(), index.manifests.find((m) => m.annotations['org.opencontainers.image.ref.name'] === name)!.digest.slice(7));
}
/** A pid no process has. */
function deadPid(): number {
  for (let pid = 4_000_000; ; pid--) {
    try {
      process.kill(pid, 0);
    } catch {
      return pid;
    }
  }
}

describe('checkStore', () => {
  it('finds nothing wrong with a store calf loaded and unpacked, nor with one that does not exist', () => {
    expect(checkStore(root)).toEqual([]);
    expect(checkStore(path.join(work, 'nothing-here'))).toEqual([]);
  });

  it('names a blob whose content no longer hashes to its name', () => {
    const layer = blobOf('one:v1', 'layer');
    const bytes = fs.readFileSync(layer);
    bytes[bytes.length - 1]! ^= 0xff;
    fs.writeFileSync(layer, bytes);
    expect(checkStore(root)).toEqual([expect.stringMatching(/: its content hashes to sha256:[0-9a-f]{12}…$/)]);
    expect(checkStore(root)[0]!.startsWith(`${layer}: `)).toBe(true);
  });

  it('names an image whose config blob is gone, and no other', () => {
    const config = blobOf('two:v1', 'config');
    fs.rmSync(config);
    expect(checkStore(root)).toEqual([expect.stringMatching(/index\.json: image two:v1: config blob sha256:[0-9a-f]{12}… is missing from the image store/)]);
  });

  it('names an image whose manifest is not JSON any more (and its blob, which hashes wrong)', () => {
    const manifest = blobOf('one:v1', 'manifest');
    fs.writeFileSync(manifest, '{"schemaVersion": 2, "config": ');
    const problems = checkStore(root);
    expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^${manifest}: its content hashes to`)));
    expect(problems).toContainEqual(expect.stringMatching(/image one:v1: manifest blob sha256:.* is not valid JSON/));
    expect(problems).toHaveLength(2);
  });

  it('names a truncated index.json', () => {
    const index = path.join(root, 'images/index.json');
    fs.truncateSync(index, 20);
    expect(checkStore(root)).toEqual([expect.stringMatching(/index\.json: the image store's index\.json .* is not valid JSON/)]);
  });

  it('names temp files and half-unpacked layers of a calf that is gone, not of one that runs', () => {
    const pid = deadPid();
    fs.writeFileSync(path.join(blobs(), `.tmp-${pid}-0123abcd`), 'half a blob');
    fs.writeFileSync(path.join(root, 'images', `index.json.tmp-${pid}-0123abcd`), '{"half');
    fs.mkdirSync(path.join(root, 'layers', `.tmp-${pid}-0123abcd`, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(root, 'layers', `.tmp-${process.pid}-4567ef01`));
    expect(checkStore(root, { alive: (p) => p === process.pid }).sort()).toEqual([
      `${path.join(blobs(), `.tmp-${pid}-0123abcd`)}: a temp file left behind`,
      `${path.join(root, 'images', `index.json.tmp-${pid}-0123abcd`)}: a temp file left behind`,
      `${path.join(root, 'layers', `.tmp-${pid}-0123abcd`)}: a half-unpacked layer left behind`,
    ].sort());
    // By default nothing runs: the live calf's temp directory is an orphan too.
    expect(checkStore(root)).toHaveLength(4);
  });

  it('names what does not belong in the layer graph or the blob directory', () => {
    fs.mkdirSync(path.join(root, 'layers', 'not-a-diff-id'));
    fs.writeFileSync(path.join(blobs(), 'README'), 'hello');
    expect(checkStore(root).sort()).toEqual([
      `${path.join(blobs(), 'README')}: not a blob (its name is not a sha256)`,
      `${path.join(root, 'layers', 'not-a-diff-id')}: not a layer (its name is not a diff_id)`,
    ].sort());
  });
});
