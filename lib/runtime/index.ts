/**
 * What a level file uses of calf's runtime: the command line, the container (its directory,
 * state record and teardown list), waiting for the init stage, finding the command, the
 * parent↔init handshake, and the policy that is not a lesson (users, security defaults).
 * @module
 */
export { main, flag, containerExecCommand, type Flag, type Flags, type FlagValues, type RunOptions, type StartOptions, type ExecOptions, type Stages } from './cli.js';
export { createContainer, takeOver, openContainer, saveConfig, type Container } from './container.js';
export { exited } from './process.js';
export { lookPath, mergeEnv, DEFAULT_PATH, CommandNotFoundError } from './exec.js';
export { syncWithInit, syncWithParent, execed, createdInit, notifyCreated, SYNC_STDIO } from './sync.js';
export { readState, keepOptions, releaseContainer, type ContainerState, type KeptOptions } from './state.js';
export { runTeardown } from './teardown.js';
export { type MonitorMode } from './stage.js';
export { HANDOVER_STDIO, awaitHandover, handOver } from './handover.js';
export { openLog, logOptArg, passOn, type LogWriter, type LogOptions } from './log.js';
export { nameContainer, nameArg } from './names.js';
export { containerCommands, eachContainer } from './commands.js';
export { readConfig, isRunning, runningContainer, signalContainer, waitForExit, type Found } from './containers.js';
export { CalfError, EXIT_ERROR } from '../core/errors.js';
export { alive, processStartTime, sleep, type ProcessRef } from '../core/process.js';
export { faultPoint } from '../core/faults.js';
export { OCI_VERSION, hasNamespace, consoleSizeOf, type ConsoleSize, type Spec, type Root, type Mount, type Capabilities, type Resources, type Seccomp, type NamespaceType } from '../core/spec.js';
export { lookupUser, type ExecUser } from './user.js';
export { initEntry, initEnv } from './bundle.js';
export { hostnameArg } from './hostname.js';
export { joinNetwork } from './network.js';
export { volumeMounts, volumeUsers, volumeCommand } from './volumes.js';
export { DOCKER_CAPABILITIES, capabilityArg, containerCapabilities, securityConfig } from './security.js';
export {
  readBundle, applyProcessLimits, joinNamespacePaths, mountKernelFilesystems, runtimeExecConfig, untilExecuted, connectConsole, runtimeContainer, existingContainer, saveRecord, statusOf, ociState, writePidFile,
  type RuntimeCommands, type RuntimeContainer, type RuntimeGlobals, type RuntimeRecord, type OciState,
} from './oci.js';
