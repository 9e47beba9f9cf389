/**
 * What a level file uses of calf's runtime: the command line, the container directory, waiting
 * for the init stage, finding the command, and the parent↔init handshake.
 * @module
 */
export { main, flag, type Flag, type Flags, type FlagValues, type RunOptions, type Stages } from './cli.js';
export { createContainer, removeContainer, type Container } from './container.js';
export { exited } from './process.js';
export { lookPath, mergeEnv, DEFAULT_PATH, CommandNotFoundError } from './exec.js';
export { syncWithInit, syncWithParent, SYNC_STDIO } from './sync.js';
export { CalfError } from './errors.js';
export { lookupUser, type ExecUser } from './user.js';
export { initEntry, initEnv } from './bundle.js';
export {
  DOCKER_CAPABILITIES, MASKED_PATHS, READONLY_PATHS, SECCOMP_DENY, capabilityArg, containerCapabilities,
  deviceCgroupPath, enterDeviceCgroup, removeDeviceCgroup,
} from './security.js';
