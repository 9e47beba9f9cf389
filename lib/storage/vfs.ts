/**
 * The `vfs` storage driver (Docker's name for it): no union filesystem, just copies. The
 * container's root is a full copy of the image's layer directories, applied bottom first, with
 * overlay-format whiteouts applied as the OCI spec says (a device 0/0 deletes the name below it,
 * an opaque directory empties what was below). Slow and large, but it works on any filesystem
 * and in places where overlayfs cannot be mounted (inside some containers, on an overlay upper).
 * @see https://docs.docker.com/engine/storage/drivers/vfs-driver/
 * @module
 */
import { ensureLayers } from '../image/layers.js';
import { terminalProgress } from '../image/progress.js';
import { copyTree } from './copy-tree.js';
import type { StorageDriver } from './driver.js';

export const vfs: StorageDriver = {
  name: 'vfs',
  async prepare(image, container) {
    const layers = await ensureLayers(image, terminalProgress());
    for (const layer of layers) copyTree(layer, container.rootfs, { whiteouts: true }); // bottom layer first: each one's whiteouts delete from those below
    return { rootfs: container.rootfs };
  },
};
