/**
 * What a level file uses of calf's images: find an image in the store, unpack it.
 * @module
 */
export { resolveImage, ImageNotFoundError, type ResolvedImage, type ImageConfigFile } from './store.js';
export { unpackImage } from './unpack.js';
