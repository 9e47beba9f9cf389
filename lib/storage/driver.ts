/**
 * The storage-driver seam: how a container's root is made out of the layer graph
 * (lib/image/layers.ts). Docker's words: the *graph* stores the layers, each unpacked once; the
 * *storage driver* (overlay2, vfs, btrfs…) stacks them into a container's filesystem and gives it
 * a writable layer of its own. Like containerd's snapshotters, a driver does not mount anything
 * itself: it says what to mount, and the container's init stage mounts it inside its own mount
 * namespace, where the mount vanishes with the container.
 * @see https://docs.docker.com/engine/storage/drivers/select-storage-driver/
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedImage } from '../image/store.js';
import type { Container } from '../runtime/container.js';

/** What a driver prepared for one container. */
export interface PreparedRootfs {
  /** the directory that becomes the container's `/` */
  rootfs: string;
  /**
   * For overlay: the directories to stack on `rootfs`. `lower` is the image's layers in the
   * image's order, bottom layer first; `upper` takes the container's writes, `work` is
   * overlayfs's scratch space (same filesystem as `upper`). Absent when `rootfs` is complete as it is.
   */
  overlay?: { lower: string[]; upper: string; work: string };
}

/** One way of making container roots out of image layers. */
export interface StorageDriver {
  /** `overlay`, `vfs`: what `--storage-driver` and `CALF_STORAGE_DRIVER` call it */
  readonly name: string;
  /** Make `container`'s root from `image`: unpack what the graph lacks, then whatever this driver needs. */
  prepare(image: ResolvedImage, container: Container): Promise<PreparedRootfs>;
  /** Remove everything `prepare` made for `container` (never the shared layers). Synchronous: it runs on exit. */
  remove(container: Pick<Container, 'dir'>): void;
}

/** Note which image a container runs, so `calf rmi` can refuse to remove an image in use. */
export function recordImage(container: Container, image: ResolvedImage): void {
  fs.writeFileSync(path.join(container.dir, 'image'), `${image.id}\n`);
}

/** The image id a container directory says it runs, if it says. */
export function imageOf(containerDir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(containerDir, 'image'), 'utf8').trim();
  } catch {
    return undefined;
  }
}
