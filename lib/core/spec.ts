/**
 * The config the parent hands the init stage, in the OCI runtime-spec's names and shapes: the
 * part of `config.json` calf implements. Each level fills what it teaches (level 01 `root.path`
 * and `process.cwd`, level 05 `hostname`, level 09 `linux.resources`…); the README of the level
 * that introduces a field says which it is. An engine (podman, containerd) writes the same file
 * into a bundle for runc, crun, or, at level 17, calf.
 * @see https://github.com/opencontainers/runtime-spec/blob/main/config.md
 * @see https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md
 * @module
 */

/** The version of the runtime-spec these names follow. */
export const OCI_VERSION = '1.0.2';

/** The whole config: `config.json`. */
export interface Spec {
  ociVersion: string;
  process: Process;
  /** absent only at level 00, which runs the command on the host's own root */
  root?: Root;
  hostname?: string;
  mounts?: Mount[];
  linux?: Linux;
  annotations?: Record<string, string>;
  /**
   * calf-runtime's (level 17): the exec FIFO in the container's state directory, on which the
   * init stage blocks before `execve` until `calf-runtime start` opens its other end.
   */
  execFifo?: string;
  /**
   * calf-runtime's (level 17): the kernel filesystems an engine's `mounts` ask for that calf's
   * levels don't make, an mqueue on /dev/mqueue and the cgroup tree on /sys/fs/cgroup, which the
   * init stage mounts after /dev (lib/runtime/oci.ts, mountKernelFilesystems).
   */
  kernelMounts?: Mount[];
}

/** The container's first process. */
export interface Process {
  args: string[];
  /** KEY=VALUE, the whole environment */
  env: string[];
  /** its working directory, a path in the container */
  cwd: string;
  user?: User;
  capabilities?: Capabilities;
  noNewPrivileges?: boolean;
  terminal?: boolean;
  /**
   * The terminal's size in characters (with `terminal`): the stage that opens the pty sets it
   * before the command starts, whose first `stty size` would otherwise race with calf's own
   * resize (runc does the same; Docker sends its client's size).
   */
  consoleSize?: ConsoleSize;
  /** resource limits: `RLIMIT_NOFILE`…, soft and hard (calf-runtime's engines set them) */
  rlimits?: { type: string; soft: number; hard: number }[];
}

/** `process.consoleSize`: rows and columns. */
export interface ConsoleSize {
  height: number;
  width: number;
}

/** `consoleSize` for a config, from a terminal calf writes to: none when `stream` is not one. */
export function consoleSizeOf(stream: NodeJS.WriteStream = process.stdout): { consoleSize?: ConsoleSize } {
  return stream.isTTY ? { consoleSize: { height: stream.rows, width: stream.columns } } : {};
}

/**
 * Who it runs as. The spec's fields are numbers, which an engine resolves before it writes the
 * config; calf is its own engine, and resolves a name in the image's own /etc/passwd from inside
 * the container (as runc's libcontainer once did with its User string): `username` is calf's, a
 * `name|uid[:group|gid]` still to look up. When it is there, uid and gid are filled in from it.
 */
export interface User {
  uid: number;
  gid: number;
  additionalGids?: number[];
  /** the file mode creation mask, umask(2) (podman: 18, i.e. 022) */
  umask?: number;
  username?: string;
}

/** The capability sets, by name (`CAP_CHOWN`…). */
export interface Capabilities {
  bounding?: string[];
  effective?: string[];
  permitted?: string[];
  inheritable?: string[];
  ambient?: string[];
}

/**
 * The container's root filesystem. `overlay` is calf's: the directories a storage driver wants
 * stacked on `path` first (containerd hands a runtime's shim the same thing apart from
 * config.json, as the rootfs mounts of its create request).
 */
export interface Root {
  path: string;
  readonly?: boolean;
  overlay?: { lower: string[]; upper: string; work: string };
}

/** A mount inside the container: `destination` is a path in it. */
export interface Mount {
  destination: string;
  source?: string;
  type?: string;
  options?: string[];
}

export type NamespaceType = 'mount' | 'uts' | 'ipc' | 'network' | 'pid' | 'cgroup' | 'user';

export interface Linux {
  /** the namespaces to create (no `path`) or join (`path`); one not listed is the host's */
  namespaces?: { type: NamespaceType; path?: string }[];
  resources?: Resources;
  cgroupsPath?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  seccomp?: Seccomp;
}

/** What the container's cgroup limits (levels 09, 10, 12). */
export interface Resources {
  /** shares: a weight (v1's cpu.shares); quota µs of CPU time per period µs */
  cpu?: { shares?: number; quota?: number; period?: number };
  /** bytes; swap is memory plus swap, -1 for no limit (runc's meaning) */
  memory?: { limit?: number; swap?: number };
  pids?: { limit: number };
  /** the device cgroup's rules, in order: the first denies everything, the rest allow */
  devices?: DeviceRule[];
}

export interface DeviceRule {
  allow: boolean;
  type?: 'a' | 'b' | 'c';
  major?: number;
  minor?: number;
  /** `rwm`: read, write, mknod */
  access?: string;
}

/** A seccomp profile: the default action, and rules that differ from it. */
export interface Seccomp {
  defaultAction: string;
  /** the errno of a default action SCMP_ACT_ERRNO (1, EPERM, when absent; podman's: 38, ENOSYS) */
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls?: SeccompRule[];
}

export interface SeccompRule {
  names: string[];
  /** `SCMP_ACT_ERRNO`, `SCMP_ACT_ALLOW`… */
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
}

/** Does the config ask for a new namespace of this type? */
export function hasNamespace(spec: Pick<Spec, 'linux'>, type: NamespaceType): boolean {
  return spec.linux?.namespaces?.some((ns) => ns.type === type) ?? false;
}
