/** What the test images contain, read from their OCI layouts with the system's tar (not calf's code). */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repo } from './paths.js';

/** Where `npm run setup` (scripts/build-images.ts) writes the test images' OCI layouts. */
export const imagesDir = path.join(repo, 'build/images');

function blob(layout: string, digest: string): string {
  return path.join(layout, 'blobs', ...digest.split(':'));
}

/** The layer blobs of a test image, base first. */
function layerBlobs(name: string): string[] {
  const layout = path.join(imagesDir, name);
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(fs.readFileSync(blob(layout, index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  return manifest.layers.map((l) => blob(layout, l.digest));
}

/** The top-level names in the image's root directory (one-layer images only). */
export function topLevelNames(name: string): string[] {
  const [layer, ...more] = layerBlobs(name);
  if (more.length) throw new Error(`${name} has several layers`);
  const names = execFileSync('tar', ['-tzf', layer!], { encoding: 'utf8' })
    .split('\n')
    .map((p) => p.replace(/^\.?\//, '').split('/')[0]!)
    .filter((n) => n && n !== '.');
  return [...new Set(names)].sort();
}
