/**
 * The storage-driver seam: how a container's root is made out of the layer graph
 * (lib/image/layers.ts). Docker's words: the *graph* stores the layers, each unpacked once; the
 * *storage driver* (overlay2, vfs, btrfs…) stacks them into a container's filesystem and gives it
 * a writable layer of its own. Like containerd's snapshotters, a driver does not mount anything
 * itself: it says what to mount, and the container's init stage mounts it inside its own mount
 * namespace, where the mount vanishes with the container. Everything a driver makes for a
 * container is inside the container's directory, so the directory's removal (the first step of
 * its teardown list) removes it too: unlike Docker's drivers, calf's need no `Remove`.
 * @see https://docs.docker.com/engine/storage/drivers/select-storage-driver/
 * @module
 */
import type { ResolvedImage } from '../image/store.js';

/** The directories of one container a driver works in: `dir` is its own, `rootfs` becomes its `/`. */
export interface ContainerDirs {
  id: string;
  dir: string;
  rootfs: string;
}

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
  prepare(image: ResolvedImage, container: ContainerDirs): Promise<PreparedRootfs>;
}
