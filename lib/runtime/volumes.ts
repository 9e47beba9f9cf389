/**
 * Volumes from the container's side of calf (level 14): the `-v` and `--tmpfs` flags made into
 * the spec's `mounts` (making what they name on the host first), and which containers use a
 * volume, which only this layer can tell (lib/storage keeps the volumes, not the containers).
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { calfRoot } from '../core/root.js';
import { CalfError } from '../core/errors.js';
import { readJson } from '../core/record.js';
import type { Mount, Spec } from '../core/spec.js';
import { createVolume, volumeCommands, type TmpfsSpec, type VolumeSpec, type VolumeUsers } from '../storage/index.js';
import { listContainerDirs, type Container } from './container.js';

/**
 * The spec's `mounts` for a container's `-v` and `--tmpfs` flags, in the order they can be
 * mounted (a destination after the ones it lies under, as Docker sorts them). What they name on
 * the host is made now, as Docker makes it: a bind's missing host directory, a named volume on
 * first use, an anonymous volume (`-v /path`), whose removal goes on the container's teardown
 * list. Each bind is `rbind` (the mounts under its source come along) and `rprivate`; a named
 * volume's asks the init stage to `copy` the image's files into it while it is empty.
 * @throws CalfError (exit 125) for two mounts on one destination
 */
export function volumeMounts(flags: { volume?: VolumeSpec[]; tmpfs?: TmpfsSpec[] }, container: Pick<Container, 'teardown'>): Mount[] {
  const specs = [...flags.volume ?? [], ...(flags.tmpfs ?? []).map((t) => ({ ...t, kind: 'tmpfs' as const }))];
  const seen = new Set<string>();
  for (const { destination } of specs) {
    if (seen.has(destination)) throw new CalfError(`duplicate mount point: ${destination}`);
    seen.add(destination);
  }
  const depth = (m: Mount) => m.destination.split('/').length;
  return specs.map((spec): Mount => {
    if (spec.kind === 'tmpfs') return { destination: spec.destination, type: 'tmpfs', source: 'tmpfs', options: spec.options };
    const ro = spec.readonly ? ['ro'] : [];
    if (spec.kind === 'bind') {
      fs.mkdirSync(spec.source, { recursive: true }); // Docker's -v makes a missing host directory (its --mount refuses)
      return { destination: spec.destination, type: 'bind', source: spec.source, options: ['rbind', 'rprivate', ...ro] };
    }
    let name = spec.name;
    if (name === undefined) { // anonymous: its removal is registered before it exists, so a calf killed in between leaves nothing unfound
      name = randomBytes(32).toString('hex');
      container.teardown.add('removeAnonymousVolume', name);
    }
    const { volume } = createVolume(name, { anonymous: spec.name === undefined });
    return { destination: spec.destination, type: 'bind', source: volume.Mountpoint, options: ['rbind', 'rprivate', ...ro, ...(spec.copy ? ['copy'] : [])] };
  }).sort((a, b) => depth(a) - depth(b)); // stable: same depth, command-line order
}

/**
 * Who uses a volume: every container whose config.json mounts it, running or not (a kept or a
 * crashed container still holds its volume: Docker refuses to remove a volume any container
 * names, and `calf cleanup` frees a crashed one's).
 */
export function volumeUsers(root = calfRoot()): VolumeUsers {
  const containers = listContainerDirs(root).flatMap(({ dir, state }) => {
    const config = readJson<Spec>(path.join(dir, 'config.json'));
    return config ? [{ id: state?.id.slice(0, 12) ?? path.basename(dir), mounts: config.mounts ?? [] }] : [];
  });
  return (volume) => containers.filter((c) => c.mounts.some((m) => m.source === volume.Mountpoint)).map((c) => c.id);
}

/** `calf volume …`: pass it in `main({ commands: [networkCommand, volumeCommand] })`. */
export function volumeCommand(program: Command): void {
  volumeCommands(() => volumeUsers())(program);
}
