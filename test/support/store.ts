/** A throwaway calf root with the test images loaded, for one run of the test board. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadImages } from '../../lib/image-load.js';
import { imagesDir } from './images.js';

export const TEST_IMAGES = ['busybox', 'layered', 'calf-test'];

/** Make a new calf root under the temp dir and load the test images into it. */
export async function prepareStore(): Promise<string> {
  const missing = TEST_IMAGES.filter((name) => !fs.existsSync(path.join(imagesDir, name, 'index.json')));
  if (missing.length) {
    throw new Error(`test images not built (${missing.join(', ')}): run npm run setup, or npm run images`);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-root-'));
  try {
    for (const name of TEST_IMAGES) await loadImages(path.join(imagesDir, name), root);
  } catch (err) {
    removeStore(root);
    throw err;
  }
  return root;
}

/** Remove a calf root made by {@link prepareStore}. */
export function removeStore(root: string): void {
  fs.rmSync(root, { recursive: true, force: true });
}
