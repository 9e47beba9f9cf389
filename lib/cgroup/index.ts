/**
 * What a level file uses of cgroups: the container's cgroup on v1 or v2, Docker's resource flags
 * and the spec's resources they become, and the v1 device policy.
 * @module
 */
export { createCgroup, cgroupVersion, cgroupDirsOf, removeCgroupOf, type Cgroup, type CgroupFiles } from './cgroup.js';
export {
  parseMemory, parseMemorySwap, checkMemory, parseCpus, parseCpuShares, parsePidsLimit, sharesToWeight, resourcesOf,
  CPU_PERIOD_US, type ResourceFlags,
} from './limits.js';
export { limitDevices, hasDevicesController } from './devices.js';
