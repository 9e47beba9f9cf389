/**
 * What a level file uses of calf's runtime: the command line, the container (its directory,
 * state record and teardown list), waiting for the init stage, finding the command, the
 * parent↔init handshake, and the policy that is not a lesson (users, security defaults).
 * @module
 */
export { main, flag, type Flag, type Flags, type FlagValues, type RunOptions, type Stages } from './cli.js';
export { createContainer, saveConfig, type Container } from './container.js';
export { exited } from './process.js';
export { lookPath, mergeEnv, DEFAULT_PATH, CommandNotFoundError } from './exec.js';
export { syncWithInit, syncWithParent, SYNC_STDIO } from './sync.js';
export { CalfError } from '../core/errors.js';
export { OCI_VERSION, hasNamespace, type Spec, type Root, type Mount, type Capabilities, type Resources, type Seccomp } from '../core/spec.js';
export { lookupUser, type ExecUser } from './user.js';
export { initEntry, initEnv } from './bundle.js';
export { hostnameArg } from './hostname.js';
export { joinNetwork } from './network.js';
export { volumeMounts, volumeUsers, volumeCommand } from './volumes.js';
export { DOCKER_CAPABILITIES, capabilityArg, containerCapabilities, securityConfig } from './security.js';
