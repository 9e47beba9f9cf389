/**
 * The device policy on cgroup v1: the `devices` controller's allow and deny lists, written in
 * the container's own cgroup (lib/cgroup/cgroup.ts makes it in every v1 hierarchy, devices
 * included). cgroup v2 has no such files: there a `BPF_PROG_TYPE_CGROUP_DEVICE` program does the
 * job (runc compiles the same rules into one).
 * @see https://docs.kernel.org/admin-guide/cgroup-v1/devices.html
 * @module
 */
import { readMountInfo } from '../core/mountinfo.js';
import type { Cgroup } from './cgroup.js';

/** One rule of the spec's `linux.resources.devices`, the fields this needs. */
export interface DeviceRule {
  allow: boolean;
  type?: 'a' | 'b' | 'c';
  major?: number;
  minor?: number;
  access?: string;
}

/** Is a v1 `devices` controller mounted (the only kind of device policy calf writes)? */
export function hasDevicesController(): boolean {
  return readMountInfo().some((m) => m.fsType === 'cgroup' && m.superOptions.includes('devices'));
}

/** A rule as v1's devices.allow and devices.deny take it: `c 1:3 rwm`, `a` for everything. */
function ruleText(rule: DeviceRule): string {
  const type = rule.type ?? 'a';
  if (type === 'a') return 'a';
  return `${type} ${rule.major ?? '*'}:${rule.minor ?? '*'} ${rule.access ?? 'rwm'}`;
}

/** Write the rules, in order, into the container's devices cgroup (v1; on v2 nothing). */
export function limitDevices(cgroup: Cgroup, rules: readonly DeviceRule[] = []): void {
  for (const rule of rules) {
    cgroup.set({ v1: { [rule.allow ? 'devices.allow' : 'devices.deny']: ruleText(rule) }, v2: {} });
  }
}
