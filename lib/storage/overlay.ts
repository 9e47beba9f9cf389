/**
 * The `overlay` storage driver (Docker's overlay2): the image's layer directories, as they are in
 * the graph, become overlayfs's read-only lower directories; each container gets an empty upper
 * directory for its writes and a work directory, both in its container directory, so they go
 * when it goes. Preparing a container copies nothing, however large the image.
 * @see https://docs.kernel.org/filesystems/overlayfs.html
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensureLayers } from '../image/layers.js';
import { terminalProgress } from '../image/progress.js';
import type { StorageDriver } from './driver.js';

export const overlay: StorageDriver = {
  name: 'overlay',
  async prepare(image, container) {
    const lower = await ensureLayers(image, terminalProgress());
    const upper = path.join(container.dir, 'upper');
    const work = path.join(container.dir, 'work');
    fs.mkdirSync(upper, { mode: 0o755 });
    fs.mkdirSync(work, { mode: 0o700 });
    return { rootfs: container.rootfs, overlay: { lower, upper, work } };
  },
};
