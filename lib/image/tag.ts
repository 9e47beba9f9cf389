/**
 * Names in the store: `calf tag SOURCE TARGET` (another name for an image, as `docker tag`), and
 * what a name points to now (a pull asks, to say "Image is up to date").
 * @module
 */
import { CalfError } from '../core/errors.js';
import { calfRoot } from '../core/root.js';
import { withIndexLock } from './lock.js';
import { checkReference } from './reference.js';
import { normalizeName, platformManifest, readIndex, resolveImage, tagImage, REF_NAME, type Descriptor } from './store.js';

/** `docker tag` exits 1 on every error. */
const EXIT_TAG = 1;

/**
 * `calf tag SOURCE TARGET`: give the image SOURCE (a name or an id) the name TARGET too,
 * moving TARGET away from whatever image had it, as `docker tag` does.
 * @returns the normalised target name
 */
export function tagReference(source: string, target: string, root = calfRoot()): string {
  checkReference(target, EXIT_TAG);
  if (target.includes('@')) throw new CalfError(`refusing to create a tag with a digest reference: ${target}`, { exitCode: EXIT_TAG });
  return withIndexLock(() => {
    let image;
    try {
      image = resolveImage(source, root);
    } catch {
      throw new CalfError(`No such image: ${source}`, { exitCode: EXIT_TAG });
    }
    const entries = readIndex(root).manifests;
    // The entry SOURCE's name points to; for an id, any entry leading to that config.
    const entry = entries.find((e) => e.annotations?.[REF_NAME] === image.name) ?? entries.find((e) => idOf(e, root) === image.id);
    if (!entry) throw new CalfError(`No such image: ${source}`, { exitCode: EXIT_TAG });
    const name = normalizeName(target);
    tagImage(name, entry, root);
    return name;
  }, root);
}

/** The digest (manifest or index) the store's `name` points to now, if it has that name. */
export function namedDigest(name: string, root = calfRoot()): string | undefined {
  const normalised = normalizeName(name);
  return readIndex(root).manifests.find((e) => e.annotations?.[REF_NAME] === normalised)?.digest;
}

function idOf(entry: Descriptor, root: string): string | undefined {
  try {
    return platformManifest(entry, entry.digest, root).config.digest;
  } catch {
    return undefined;
  }
}
