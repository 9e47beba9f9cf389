/**
 * Container names (level 15): `--name web`, or one made up, as Docker makes up `eager_turing`.
 * A name is unique in a calf root: `<calf root>/names/<name>` holds the id of the container that
 * has it, created with `O_EXCL` (the `wx` flag), so of two `calf run --name web` at once exactly
 * one gets it, without a lock. The container's teardown list frees it when the container is
 * removed (`calf rm`), not when it stops: a stopped container keeps its name, as in Docker.
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { calfRoot } from '../core/root.js';
import { CalfError } from '../core/errors.js';
import { readState, updateState } from './state.js';

/** Where the names are kept. */
export function namesDir(root = calfRoot()): string {
  return path.join(root, 'names');
}

/** Docker's rule for a container name (a leading `/`, as `docker inspect` shows names, is dropped). */
const VALID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** `--name`'s parser: the name, if Docker would take it; one line and 125 otherwise. */
export function nameArg(text: string): string {
  const name = text.replace(/^\//, '');
  if (!VALID.test(name)) throw new CalfError(`invalid container name "${text}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return name;
}

// A few of Docker's own words (moby's pkg/namesgenerator), for names like `eager_turing`.
const ADJECTIVES = ['admiring', 'bold', 'brave', 'busy', 'calm', 'clever', 'eager', 'focused', 'gallant', 'happy', 'jolly', 'keen', 'kind', 'lucid', 'modest', 'nifty', 'quirky', 'serene', 'sharp', 'stoic', 'tender', 'vibrant', 'wizardly', 'zealous'];
const SURNAMES = ['babbage', 'bohr', 'curie', 'darwin', 'dijkstra', 'euler', 'fermi', 'gauss', 'hopper', 'hypatia', 'kepler', 'knuth', 'lamport', 'lovelace', 'mccarthy', 'noether', 'pike', 'ritchie', 'shannon', 'thompson', 'torvalds', 'turing', 'wozniak', 'yalow'];

function madeUpName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${SURNAMES[randomInt(SURNAMES.length)]}`;
}

/**
 * Give the container `container` the name `name` (a made-up one when undefined), in its record
 * and in `names/`; its teardown list frees it when the container is removed.
 * @throws CalfError (125) when another container has that name
 */
export function nameContainer(container: { id: string; dir: string; teardown: { add(step: 'releaseName', name: string, id: string): void } }, name?: string, root = calfRoot()): string {
  fs.mkdirSync(namesDir(root), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    const chosen = name ?? (attempt < 20 ? madeUpName() : `${madeUpName()}_${attempt}`);
    container.teardown.add('releaseName', chosen, container.id); // first: a calf killed in between leaves nothing unfound
    if (claim(chosen, container.id, root)) {
      updateState(container.dir, { name: chosen });
      return chosen;
    }
    if (name !== undefined) {
      const holder = holderOf(name, root)!;
      throw new CalfError(`the container name "/${name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name`);
    }
  }
}

/** Take `name` for container `id`: true when it is ours now (it was free, or its holder is gone). */
function claim(name: string, id: string, root: string): boolean {
  const file = path.join(namesDir(root), name);
  try {
    fs.writeFileSync(file, id, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const holder = holderOf(name, root);
  if (holder && readState(path.join(root, 'containers', holder.slice(0, 12)))) return false;
  // its container is gone without freeing it (a crash before its record existed): take it over
  fs.rmSync(file, { force: true });
  try {
    fs.writeFileSync(file, id, { flag: 'wx' });
    return true;
  } catch {
    return false; // another calf took it over first
  }
}

/** The id of the container that has `name`, if one does. */
export function holderOf(name: string, root = calfRoot()): string | undefined {
  try {
    return fs.readFileSync(path.join(namesDir(root), name), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Free `name`, if container `id` has it (a teardown step: idempotent). */
export function releaseName(name: string, id: string, root = calfRoot()): void {
  if (holderOf(name, root) === id) fs.rmSync(path.join(namesDir(root), name), { force: true });
}
