/**
 * What `-v`/`--volume` and `--tmpfs` say, parsed and checked before anything is made (a bad one
 * is calf's one-line error, exit 125, as `docker run` gives), and the mount options of the
 * spec's `mounts` as `mount(2)` takes them.
 * @module
 */
import path from 'node:path';
import { CalfError } from '../core/errors.js';
import { MS_NOATIME, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_STRICTATIME } from '../linux/mount.js';
import { checkVolumeName } from './volumes.js';

/** One `-v`: a host path bound on a destination, or a named volume (no name: an anonymous one, `-v /path`). */
export type VolumeSpec =
  | { kind: 'bind'; source: string; destination: string; readonly: boolean }
  | { kind: 'volume'; name?: string; destination: string; readonly: boolean; copy: boolean };

/** One `--tmpfs`: its destination, and its mount options as given (`size=64m`, `exec`…). */
export interface TmpfsSpec {
  destination: string;
  options: string[];
}

/**
 * A destination in the container, as typed: absolute, not `/`, and without a `..` component. `..`
 * is refused rather than cleaned away as Docker does: cleaning reads `/data/..` as `/` while the
 * kernel, should `/data` be a symlink, would climb from wherever it points; refusing it leaves
 * one reading, the kernel's, done inside the rootfs (lib/linux's openInRoot). `//` and a
 * trailing `/` go.
 */
export function containerPath(text: string, flag: string): string {
  if (!text.startsWith('/')) throw new CalfError(`${flag}: invalid mount path "${text}": it must be absolute`);
  const parts = text.split('/').filter((p) => p && p !== '.');
  if (parts.includes('..')) throw new CalfError(`${flag}: invalid mount path "${text}": ".." is not allowed in a container path`);
  if (!parts.length) throw new CalfError(`${flag}: invalid mount path "${text}": it cannot be "/"`);
  return `/${parts.join('/')}`;
}

/**
 * Parse a `-v` value: `/dest` (an anonymous volume), `SOURCE:/dest` or `SOURCE:/dest:OPTIONS`.
 * An absolute SOURCE is a host path (a bind mount), anything else a volume's name. OPTIONS:
 * `ro` or `rw`, and for volumes `nocopy` (don't fill a new volume with the image's files).
 * For commander: `previous` is the list so far (the flag repeats).
 */
export function parseVolume(text: string, previous: VolumeSpec[] = []): VolumeSpec[] {
  const flag = `-v ${text}`;
  const parts = text.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new CalfError(`${flag}: invalid volume specification: expected [SOURCE:]DESTINATION[:OPTIONS]`);
  const [first, second, third] = parts as [string, string?, string?];
  if (second === undefined) return [...previous, { kind: 'volume', destination: containerPath(first, flag), readonly: false, copy: true }];
  const options = third?.split(',') ?? [];
  const unknown = options.filter((o) => !['ro', 'rw', 'nocopy'].includes(o));
  if (unknown.length) throw new CalfError(`${flag}: invalid mode "${unknown.join(',')}": calf knows ro, rw and nocopy`);
  const readonly = options.includes('ro');
  const destination = containerPath(second, flag);
  if (path.isAbsolute(first)) {
    if (options.includes('nocopy')) throw new CalfError(`${flag}: nocopy is for volumes, and ${first} is a host path`);
    return [...previous, { kind: 'bind', source: path.resolve(first), destination, readonly }];
  }
  try {
    checkVolumeName(first);
  } catch (err) {
    throw new CalfError(`${flag}: ${(err as Error).message}`);
  }
  return [...previous, { kind: 'volume', name: first, destination, readonly, copy: !options.includes('nocopy') }];
}

/** Flags a mount option sets, and the flags it clears. */
const FLAG_OPTIONS: Record<string, [set: number, clear: number]> = {
  ro: [MS_RDONLY, 0], rw: [0, MS_RDONLY],
  nosuid: [MS_NOSUID, 0], suid: [0, MS_NOSUID],
  nodev: [MS_NODEV, 0], dev: [0, MS_NODEV],
  noexec: [MS_NOEXEC, 0], exec: [0, MS_NOEXEC],
  noatime: [MS_NOATIME, 0], strictatime: [MS_STRICTATIME, 0],
};
/** tmpfs's own options, which go to the filesystem as mount(2)'s data string. */
const TMPFS_DATA = ['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks'];

/** Docker's defaults for `--tmpfs`: no set-uid programs, no devices, no executables; everyone may write, as in /tmp. */
const TMPFS_DEFAULTS = ['nosuid', 'nodev', 'noexec', 'mode=1777'];

/** Parse a `--tmpfs` value, `/dest` or `/dest:OPTIONS` (mount(8)'s tmpfs options: `size=64m,exec`). */
export function parseTmpfs(text: string, previous: TmpfsSpec[] = []): TmpfsSpec[] {
  const flag = `--tmpfs ${text}`;
  const at = text.indexOf(':');
  const destination = containerPath(at === -1 ? text : text.slice(0, at), flag);
  const given = at === -1 ? [] : text.slice(at + 1).split(',').filter(Boolean);
  const unknown = given.filter((o) => !(o in FLAG_OPTIONS) && !TMPFS_DATA.includes(o.split('=')[0]!));
  if (unknown.length) throw new CalfError(`${flag}: unknown tmpfs option "${unknown[0]}" (calf knows ${[...Object.keys(FLAG_OPTIONS), ...TMPFS_DATA.map((k) => `${k}=`)].join(', ')})`);
  return [...previous, { destination, options: [...TMPFS_DEFAULTS, ...given] }];
}

/**
 * A spec mount's options as `mount(2)` takes them: the `MS_*` flags (a later option wins over
 * an earlier one: `noexec,exec` is exec) and the data string for the filesystem (`mode=1777,size=64m`).
 * Options for calf or the runtime itself (`rbind`, `rprivate`, `copy`) are neither.
 */
export function mountOptions(options: readonly string[] = []): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const option of options) {
    const effect = FLAG_OPTIONS[option];
    if (effect) flags = (flags | effect[0]) & ~effect[1];
    else if (TMPFS_DATA.includes(option.split('=')[0]!)) data.push(option);
  }
  return { flags, data: data.join(',') };
}
