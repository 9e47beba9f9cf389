/**
 * Every kind of thing calf makes on the host that a killed or broken run can leave, in the order
 * `calf cleanup` removes them: containers first (their teardown lists remove most of the rest),
 * then what a list never got to record. One explicit list, so what cleanup knows never depends
 * on which modules a level file happens to import.
 * @module
 */
import type { Leftover, LeftoverKind } from '../core/leftovers.js';
import { layerLeftovers } from '../image/layers.js';
import { downloadLeftovers } from '../image/blob-writer.js';
import { storeTempLeftovers } from '../image/store.js';
import { cgroupLeftovers } from '../cgroup/cgroup.js';
import { defaultBridgeLeftovers, endpointLeftovers } from '../network/networks.js';
import { containerLeftovers, mountLeftovers } from './container.js';

export const LEFTOVER_KINDS: readonly LeftoverKind[] = [
  containerLeftovers, // a container's record: its processes, then its teardown list
  mountLeftovers, // mounts under containers/ that outlived their directory
  endpointLeftovers, // a lease (and veth) leased before its teardown step was recorded
  defaultBridgeLeftovers, // calf0's bridge while no container uses it (after the endpoints: their leases are gone then)
  cgroupLeftovers, // a cgroup whose record outlived its container's list (a step that failed)
  layerLeftovers, // a layer half-unpacked by a calf killed meanwhile
  downloadLeftovers, // a blob half-downloaded by a pull killed meanwhile
  storeTempLeftovers, // index.json, a small blob or a new store's layout half-written by a calf killed meanwhile
];

/** Everything every kind finds for `root`. */
export function findLeftovers(root: string): Leftover[] {
  return LEFTOVER_KINDS.flatMap((k) => k.find(root));
}
