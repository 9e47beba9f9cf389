/**
 * Named volumes: directories under the calf root that outlive the containers using them, as
 * Docker's `local` volume driver keeps them. Layout (Docker's, under `/var/lib/docker/volumes`):
 * ```
 * <root>/volumes/.lock                 flock(2)ed while a volume is made or removed
 * <root>/volumes/<name>/volume.json    its record: name, creation time, anonymous or not
 * <root>/volumes/<name>/_data/         what a container sees on the volume's destination
 * ```
 * A volume is made whole under a temporary name and renamed, so no reader sees half of one.
 * A container's teardown never removes a named volume (an anonymous one, made for a single
 * container by `-v /path`, goes with it, as with `docker run --rm`). Which containers use a
 * volume is known only above this layer (lib/runtime reads their config.json): `calf volume rm`
 * is handed that knowledge as a function ({@link VolumeUsers}).
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { calfRoot } from '../core/root.js';
import { CalfError } from '../core/errors.js';
import { readJson, writeJson } from '../core/record.js';
import { removeTree } from '../core/tree.js';
import { flock, LOCK_EX, LOCK_UN } from '../linux/file.js';

/** A volume, as `calf volume inspect` shows it (Docker's fields, without its driver options). */
export interface Volume {
  Name: string;
  Driver: 'local';
  /** the directory a container's destination shows: `<root>/volumes/<name>/_data` */
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string>;
  /** made by `-v /path` for one container, and removed with it */
  Anonymous?: boolean;
}

/** Who uses a volume: the short ids of the containers whose config mounts it. */
export type VolumeUsers = (volume: Volume) => string[];

/** Docker's rule for a local volume's name. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Where volumes live. */
export function volumesDir(root = calfRoot()): string {
  return path.join(root, 'volumes');
}

/** `name` if it can name a volume; else calf's one-line error, which says how to give a host directory instead. */
export function checkVolumeName(name: string): string {
  if (!NAME.test(name)) {
    throw new CalfError(`"${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; to bind a host directory, give its absolute path`);
  }
  return name;
}

/**
 * Run `fn` holding the volumes' lock (an exclusive flock(2) on `volumes/.lock`): two `calf run`s
 * that make the same new volume make it once, and `calf volume rm` never removes one while it is
 * being made. The kernel drops the lock of a calf that dies.
 */
function locked<T>(root: string, fn: () => T): T {
  fs.mkdirSync(volumesDir(root), { recursive: true, mode: 0o700 }); // Docker's is 0700 too: volumes may hold secrets
  const fd = fs.openSync(path.join(volumesDir(root), '.lock'), 'a');
  try {
    flock(fd, LOCK_EX);
    return fn();
  } finally {
    try { flock(fd, LOCK_UN); } finally { fs.closeSync(fd); }
  }
}

function read(root: string, name: string): Volume | undefined {
  return readJson<Volume>(path.join(volumesDir(root), name, 'volume.json'));
}

/**
 * The volume `name`, made now if it does not exist (`calf volume create`, and `-v NAME:/path` on
 * first use, as Docker makes it). Without a name, a new one with 64 random hex digits, as
 * Docker names anonymous volumes.
 * @returns the volume, and whether this call made it
 */
export function createVolume(name?: string, options: { anonymous?: boolean } = {}, root = calfRoot()): { volume: Volume; created: boolean } {
  const chosen = name === undefined ? randomBytes(32).toString('hex') : checkVolumeName(name);
  return locked(root, () => {
    const existing = read(root, chosen);
    if (existing) return { volume: existing, created: false };
    const dir = path.join(volumesDir(root), chosen);
    const volume: Volume = {
      Name: chosen, Driver: 'local', Mountpoint: path.join(dir, '_data'), CreatedAt: new Date().toISOString(),
      Labels: {}, Scope: 'local', Options: {}, ...(options.anonymous ? { Anonymous: true } : {}),
    };
    const temp = path.join(volumesDir(root), `.new-${process.pid}-${chosen}`);
    fs.rmSync(temp, { recursive: true, force: true });
    fs.mkdirSync(path.join(temp, '_data'), { recursive: true, mode: 0o755 });
    writeJson(path.join(temp, 'volume.json'), volume);
    fs.rmSync(dir, { recursive: true, force: true }); // a directory without a record: a calf killed in here before its rename
    fs.renameSync(temp, dir);
    return { volume, created: true };
  });
}

/** The volume `name`, if there is one. */
export function findVolume(name: string, root = calfRoot()): Volume | undefined {
  return NAME.test(name) ? read(root, name) : undefined;
}

/** Every volume, by name. */
export function listVolumes(root = calfRoot()): Volume[] {
  let names: string[];
  try {
    names = fs.readdirSync(volumesDir(root));
  } catch {
    return [];
  }
  return names.filter((n) => NAME.test(n)).map((n) => read(root, n)).filter((v): v is Volume => v !== undefined)
    .sort((a, b) => a.Name.localeCompare(b.Name));
}

/**
 * `calf volume rm NAME`: remove the volume and everything in it, unless a container uses it
 * (Docker refuses too, naming them: a volume's data is the one thing `rm` can't give back).
 * A `calf run` still between making its config and saving it is not seen: it then fails to
 * mount, with one line, and loses nothing, since the volume had nothing of it yet.
 */
export function removeVolume(name: string, users: VolumeUsers, root = calfRoot()): void {
  locked(root, () => {
    const volume = findVolume(name, root);
    if (!volume) throw new CalfError(`no such volume: ${name}`);
    const using = users(volume);
    if (using.length) throw new CalfError(`remove ${name}: volume is in use - [${using.join(', ')}]`);
    removeTree(path.join(volumesDir(root), name));
  });
}

/**
 * A container's teardown step for its anonymous volume (`-v /path`): the volume goes with the
 * container that made it. Already gone is success.
 */
export function removeAnonymousVolume(name: string, root = calfRoot()): void {
  locked(root, () => removeTree(path.join(volumesDir(root), checkVolumeName(name))));
}
