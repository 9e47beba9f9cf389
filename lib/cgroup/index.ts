/**
 * What a level file uses of cgroups: the container's cgroup on v1 or v2, and Docker's resource flags.
 * @module
 */
export { createCgroup, cgroupVersion, type Cgroup, type CgroupFiles } from './cgroup.js';
export {
  parseMemory, parseMemorySwap, checkMemory, parseCpus, parseCpuShares, parsePidsLimit, sharesToWeight, CPU_PERIOD_US,
} from './limits.js';
