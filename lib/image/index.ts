/**
 * What a level file uses of calf's images: find an image in the store, unpack it.
 * @module
 */
import type { ResolvedImage } from './store.js';
export { resolveImage, ImageNotFoundError, type ResolvedImage, type ImageConfigFile } from './store.js';

/**
 * Unpack all of an image's layers, bottom first, into one directory. The unpacker (and
 * tar-stream under it) loads only here: the init stage, and a level that mounts layers
 * instead of unpacking them, never pay for it.
 */
export async function unpackImage(image: ResolvedImage, target: string): Promise<void> {
  const unpack = await import('./unpack.js');
  return unpack.unpackImage(image, target);
}
