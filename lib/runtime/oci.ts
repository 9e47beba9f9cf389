/**
 * What `calf-runtime` (level 17) needs that is not its lesson: runc's command line, the state
 * directory under `--root`, the OCI state the `state` command prints, and an engine's
 * `config.json` checked and turned into the config calf's init stage reads.
 *
 * An engine (podman through conmon, containerd through its shim) runs the runtime once per
 * call: `create`, `start`, `state`, `kill`, `delete` are separate processes, and all that passes
 * between them is in `<root>/<id>/` (state.json and the exec FIFO). docs/notes/oci-engines.md has
 * every call the engines make.
 * @see https://github.com/opencontainers/runtime-spec/blob/main/runtime.md
 * @see https://github.com/opencontainers/runc/blob/main/man/runc.8.md
 * @module
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { constants } from 'node:os';
import { CalfError, EXIT_CALF_ERROR, EXIT_CANNOT_EXECUTE, EXIT_ERROR, EXIT_NOT_FOUND, messageOf } from '../core/errors.js';
import { readJson, writeFileAtomic, writeJson } from '../core/record.js';
import { alive } from '../core/process.js';
import { OCI_VERSION, type Mount, type NamespaceType, type Spec } from '../core/spec.js';
import type { ChildProcess } from 'node:child_process';
import { DEVICE_RULES } from './security.js';
import { CGROUP_ROOT, cgroupVersion } from '../cgroup/cgroup.js';
import { readMountInfo } from '../core/mountinfo.js';
import { mountOptions } from '../storage/volume-spec.js';
import * as linux from '../linux/index.js';

/** Where calf-runtime keeps its containers' state when no `--root` is given (runc: /run/runc). */
export const DEFAULT_RUNTIME_ROOT = '/run/calf-runtime';

/** The FIFO in a container's state directory that its init stage blocks on until `start`. */
export const EXEC_FIFO = 'exec.fifo';

/** What calf-runtime keeps of a container between calls: `<root>/<id>/state.json`. */
export interface RuntimeRecord {
  id: string;
  /** the bundle's absolute path */
  bundle: string;
  /** the init stage's pid (the command's, after start), as the host sees it, and its start time */
  pid: number;
  startTime: number;
  /** ISO 8601, when create ran */
  created: string;
  annotations: Record<string, string>;
  /** the cgroup calf made for it: `parent` and `name` as createCgroup() took them, and the record's id */
  cgroup?: { parent: string; name: string };
}

/** The spec's State, what `calf-runtime state` prints. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped';
  pid: number;
  bundle: string;
  annotations: Record<string, string>;
}

/** A container's state directory, with its record and exec FIFO. */
export interface RuntimeContainer {
  id: string;
  dir: string;
  fifo: string;
  record: RuntimeRecord | undefined;
}

/** The global flags every subcommand gets. */
export interface RuntimeGlobals {
  root: string;
  log?: string;
  logFormat: 'text' | 'json';
}

/** The container `id` under `root`, whether or not it exists (record undefined then). */
export function runtimeContainer(globals: RuntimeGlobals, id: string): RuntimeContainer {
  if (!/^[\w+.-]+$/.test(id) || id === '.' || id === '..') throw new CalfError(`invalid container id ${JSON.stringify(id)}`, { exitCode: EXIT_ERROR });
  const dir = path.join(globals.root, id);
  return { id, dir, fifo: path.join(dir, EXEC_FIFO), record: readJson<RuntimeRecord>(path.join(dir, 'state.json')) };
}

/** The container `id`, which must exist: runc's "container does not exist" otherwise (engines match those words). */
export function existingContainer(globals: RuntimeGlobals, id: string): RuntimeContainer & { record: RuntimeRecord } {
  const container = runtimeContainer(globals, id);
  if (!container.record) throw new CalfError(`container ${id} does not exist`, { exitCode: EXIT_ERROR });
  return container as RuntimeContainer & { record: RuntimeRecord };
}

/** Write a container's record. */
export function saveRecord(container: RuntimeContainer, record: RuntimeRecord): void {
  writeJson(path.join(container.dir, 'state.json'), record);
  container.record = record;
}

/**
 * The spec's status: `created` while the init stage waits on the exec FIFO (it exists until
 * `start` has opened it), `running` once it ran on, `stopped` once the process is gone (a
 * zombie counts as gone: its parent, the engine, has not reaped it yet).
 */
export function statusOf(container: RuntimeContainer & { record: RuntimeRecord }): OciState['status'] {
  if (!alive(container.record.pid, container.record.startTime)) return 'stopped';
  return fs.existsSync(container.fifo) ? 'created' : 'running';
}

/** The spec's State of a container. */
export function ociState(container: RuntimeContainer & { record: RuntimeRecord }): OciState {
  const status = statusOf(container);
  const { id, bundle, annotations } = container.record;
  return { ociVersion: OCI_VERSION, id, status, pid: status === 'stopped' ? 0 : container.record.pid, bundle, annotations };
}

/** A pid file as the engines read it: decimal, no newline (containerd's Atoi refuses one). */
export function writePidFile(file: string, pid: number): void {
  writeFileAtomic(path.resolve(file), String(pid));
}

/** A signal as `kill` takes it: a number (`15`), a name (`TERM`, `SIGTERM`); SIGTERM by default, as runc. */
export function parseSignal(text = 'SIGTERM'): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n > 0 && n < 65) return n;
  }
  const name = text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`;
  const n = (constants.signals as Record<string, number | undefined>)[name];
  if (n === undefined) throw new CalfError(`unknown signal ${JSON.stringify(text)}`, { exitCode: EXIT_ERROR });
  return n;
}

// ─── config.json ──────────────────────────────────────────────────────────────────────────────

/** The fields of config.json calf-runtime implements, per object; anything else is refused by name. */
const KNOWN: Record<string, readonly string[]> = {
  '': ['ociVersion', 'process', 'root', 'hostname', 'mounts', 'linux', 'annotations'],
  process: ['args', 'env', 'cwd', 'user', 'capabilities', 'noNewPrivileges', 'terminal', 'consoleSize', 'rlimits'],
  'process.user': ['uid', 'gid', 'additionalGids', 'umask'],
  root: ['path', 'readonly'],
  linux: ['namespaces', 'resources', 'cgroupsPath', 'maskedPaths', 'readonlyPaths', 'seccomp'],
  'linux.resources': ['devices', 'memory', 'pids', 'cpu'],
};

/** The mounts calf's init stage makes itself (levels 02 and 12): the engines' defaults for them are taken as such. */
const INIT_MOUNTS: Record<string, string[]> = {
  '/proc': ['proc'], '/sys': ['sysfs'], '/dev': ['tmpfs'], '/dev/pts': ['devpts'], '/dev/shm': ['tmpfs', 'bind'],
};

/**
 * The kernel filesystems engines ask for that calf's levels don't make, where calf-runtime makes
 * them ({@link mountKernelFilesystems}): only there, inside a /dev and a /sys the init stage
 * mounted itself, so no path through the image's own files is followed.
 */
const KERNEL_MOUNTS: Record<string, string[]> = { '/dev/mqueue': ['mqueue'], '/sys/fs/cgroup': ['cgroup', 'cgroup2'] };

function refuseUnknown(value: unknown, where: string): void {
  if (!value || typeof value !== 'object') return;
  for (const key of Object.keys(value)) {
    if (!KNOWN[where]!.includes(key)) throw new CalfError(`config.json: ${where ? `${where}.` : ''}${key} is not implemented by calf-runtime`, { exitCode: EXIT_ERROR });
  }
}

/**
 * Read `<bundle>/config.json` and make it the init stage's config: `root.path` resolved against
 * the bundle, the mounts the init stage makes itself (/proc, /sys, /dev…) left to it, the
 * others (binds, tmpfs) kept in order; a field calf does not implement is refused, naming it.
 */
export function readBundle(bundle: string): Spec {
  let config: Spec;
  try {
    config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as Spec;
  } catch (err) {
    throw new CalfError(`cannot read the bundle's config.json: ${messageOf(err)}`, { exitCode: EXIT_ERROR });
  }
  refuseUnknown(config, '');
  refuseUnknown(config.process, 'process');
  refuseUnknown(config.process?.user, 'process.user');
  refuseUnknown(config.root, 'root');
  refuseUnknown(config.linux, 'linux');
  refuseUnknown(config.linux?.resources, 'linux.resources');
  if (!config.process?.args?.length) throw new CalfError('config.json: process.args is empty', { exitCode: EXIT_ERROR });
  if (!config.root?.path) throw new CalfError('config.json: root.path is missing', { exitCode: EXIT_ERROR });
  for (const ns of config.linux?.namespaces ?? []) {
    if (ns.path && ns.type !== 'network') throw new CalfError(`config.json: linux.namespaces: joining a ${ns.type} namespace by path is not implemented by calf-runtime`, { exitCode: EXIT_ERROR });
    if (!['mount', 'uts', 'ipc', 'network', 'pid', 'cgroup'].includes(ns.type)) throw new CalfError(`config.json: linux.namespaces: a ${ns.type} namespace is not implemented by calf-runtime`, { exitCode: EXIT_ERROR });
  }
  for (const ns of ['mount', 'uts', 'ipc'] as const) {
    if (!config.linux?.namespaces?.some((n) => n.type === ns)) throw new CalfError(`config.json: linux.namespaces: calf-runtime needs a ${ns} namespace of the container's own`, { exitCode: EXIT_ERROR });
  }
  const mounts: Mount[] = [];
  const kernelMounts: Mount[] = [];
  for (const mount of config.mounts ?? []) {
    if (INIT_MOUNTS[mount.destination]?.includes(mount.type ?? 'bind')) continue; // the init stage's own
    if (KERNEL_MOUNTS[mount.destination]?.includes(mount.type ?? 'bind')) {
      kernelMounts.push(mount);
      continue;
    }
    if (mount.type === 'tmpfs' || mount.type === 'bind' || mount.options?.includes('bind') || mount.options?.includes('rbind')) {
      mounts.push({ ...mount, type: mount.type === 'tmpfs' ? 'tmpfs' : 'bind' });
      continue;
    }
    throw new CalfError(`config.json: mounts: a ${mount.type ?? 'typeless'} mount on ${mount.destination} is not implemented by calf-runtime`, { exitCode: EXIT_ERROR });
  }
  const seccomp = config.linux?.seccomp;
  const unknownArch = seccomp?.architectures?.find((arch) => linux.scmpArch(arch) === 0);
  if (unknownArch !== undefined) throw new CalfError(`config.json: linux.seccomp.architectures: ${unknownArch} is not an architecture libseccomp knows`, { exitCode: EXIT_ERROR });
  if (seccomp) {
    // libseccomp refuses a rule whose action is the default one (EACCES): runc leaves those out too
    const same = (action: string, errno?: number) => action === seccomp.defaultAction && (action !== 'SCMP_ACT_ERRNO' || (errno ?? 1) === (seccomp.defaultErrnoRet ?? 1));
    seccomp.syscalls = seccomp.syscalls?.filter((rule) => !same(rule.action, rule.errnoRet));
  }
  const devices = config.linux?.resources?.devices;
  // runc's default devices: what the init stage's /dev holds stays usable under an engine's "deny all"
  const resources = devices ? { ...config.linux!.resources, devices: [...devices, ...DEVICE_RULES.slice(1)] } : config.linux?.resources;
  return {
    ...config,
    ...(config.linux ? { linux: { ...config.linux, ...(resources ? { resources } : {}) } } : {}),
    root: { path: path.resolve(bundle, config.root.path), readonly: config.root.readonly ?? false },
    hostname: config.hostname ?? os.hostname(), // none: the new UTS namespace keeps the host's name
    mounts,
    kernelMounts,
    process: { ...config.process, cwd: config.process.cwd || '/', env: config.process.env ?? [] },
  };
}

/**
 * Given code for the init stage (level 17): what an engine asks for beyond calf's own /proc, /sys
 * and /dev. A cgroup namespace (podman's default on cgroup v2): after the handshake, where the
 * parent has put this process in its cgroup, which the new namespace makes the root of what it
 * sees in /proc/self/cgroup and in a cgroup2 mount. Then, as runc makes them: an mqueue on
 * /dev/mqueue (the POSIX message queues of the IPC namespace this process is in: the one it
 * unshared), and the cgroup tree on /sys/fs/cgroup, read-only when asked (engines do): on v2 a
 * cgroup2 mount (the whole tree without a cgroup namespace, the container's cgroup with one), on
 * v1 a tmpfs holding a bind of the container's own cgroup from each hierarchy, named as the
 * host's are (`memory`, `cpu,cpuacct`, the host's links beside them).
 * @see https://man7.org/linux/man-pages/man7/cgroup_namespaces.7.html
 * @see https://man7.org/linux/man-pages/man7/mq_overview.7.html
 */
export function mountKernelFilesystems(rootfs: string, config: Spec): void {
  if (config.linux?.namespaces?.some((ns) => ns.type === 'cgroup')) linux.unshare(linux.CLONE_NEWCGROUP);
  for (const mount of config.kernelMounts ?? []) {
    const target = path.join(rootfs, mount.destination); // inside the init stage's own /dev or /sys (KERNEL_MOUNTS)
    const { flags } = mountOptions(mount.options);
    fs.mkdirSync(target, { recursive: true });
    if (mount.type === 'mqueue') linux.mount('mqueue', target, 'mqueue', flags);
    else if (cgroupVersion() === 'v2') linux.mount('cgroup2', target, 'cgroup2', flags);
    else mountCgroupV1(target, flags);
  }
}

/** cgroup v1's tree as runc shows it: a tmpfs, and in it the container's cgroup of each hierarchy, bound from the host's. */
function mountCgroupV1(target: string, flags: number): void {
  linux.mount('tmpfs', target, 'tmpfs', linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, 'mode=755');
  // this process's cgroup in each hierarchy, by the hierarchy's controllers ("memory", "cpu,cpuacct", "name=systemd", "" for v2's)
  const own = new Map(fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n').map((l) => {
    const [, controllers, where] = /^\d+:([^:]*):(.*)$/.exec(l)!;
    return [controllers!, where!] as const;
  }));
  for (const m of readMountInfo()) {
    if (path.dirname(m.mountPoint) !== CGROUP_ROOT || (m.fsType !== 'cgroup' && m.fsType !== 'cgroup2')) continue;
    const controllers = m.fsType === 'cgroup2' ? '' : [...own.keys()].find((c) => c && c.split(',').every((x) => m.superOptions.includes(x)));
    const where = controllers === undefined ? undefined : own.get(controllers);
    if (where === undefined) continue;
    const into = path.join(target, path.basename(m.mountPoint));
    fs.mkdirSync(into);
    linux.mount(path.join(m.mountPoint, where), into, null, linux.MS_BIND);
    if (flags & linux.MS_RDONLY) linux.mount(null, into, null, linux.MS_BIND | linux.MS_REMOUNT | flags);
  }
  for (const entry of fs.readdirSync(CGROUP_ROOT, { withFileTypes: true })) {
    if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(path.join(CGROUP_ROOT, entry.name)), path.join(target, entry.name));
  }
  if (flags & linux.MS_RDONLY) linux.mount(null, target, null, linux.MS_REMOUNT | flags, 'mode=755');
}

/**
 * The spec's process.rlimits and process.user.umask, for the init stage to apply before its
 * `execve` (both are kept across it). An unknown rlimit type is refused by name.
 */
export function applyProcessLimits(config: Spec): void {
  for (const { type, soft, hard } of config.process.rlimits ?? []) {
    const resource = (linux as unknown as Record<string, unknown>)[type];
    if (!/^RLIMIT_[A-Z]+$/.test(type) || typeof resource !== 'number') throw new CalfError(`config.json: process.rlimits: ${type} is not a resource limit calf-runtime knows`);
    linux.setrlimit(resource, BigInt(soft), BigInt(hard));
  }
  if (config.process.user?.umask !== undefined) process.umask(config.process.user.umask);
}

/**
 * `exec --process F`'s process (podman's and containerd's exec `process.json`, the spec's Process),
 * or `exec ID COMMAND…`'s (the container's own process with that command, runc's by-hand form),
 * in the container's bundle config: the config exec.ts's exec stage takes, with the container's
 * namespaces by path (its first process's, `/proc/PID/ns/*`), its seccomp filter and its cgroup.
 * Given code (level 17); a field calf does not implement is refused by name, as in config.json.
 */
export function runtimeExecConfig(container: RuntimeContainer & { record: RuntimeRecord }, source: string | string[], cgroup: string[]): Spec & { container: { id: string; pid: number; startTime: number }; cgroup: string[] } {
  const config = readBundle(container.record.bundle);
  let proc: Spec['process'];
  if (Array.isArray(source)) {
    proc = { ...config.process, args: source, terminal: false };
  } else {
    try {
      proc = JSON.parse(fs.readFileSync(source, 'utf8')) as Spec['process'];
    } catch (err) {
      throw new CalfError(`exec: cannot read --process ${source}: ${messageOf(err)}`, { exitCode: EXIT_ERROR });
    }
    refuseUnknown(proc, 'process');
    refuseUnknown(proc.user, 'process.user');
  }
  if (!proc.args?.length) throw new CalfError('exec: process.args is empty', { exitCode: EXIT_ERROR });
  const { pid, startTime } = container.record;
  const files: Partial<Record<string, string>> = { ipc: 'ipc', uts: 'uts', network: 'net', mount: 'mnt' }; // in exec.ts's order; pid: the stage is born in it
  return {
    ociVersion: config.ociVersion,
    process: { ...proc, cwd: proc.cwd || '/', env: proc.env ?? [] },
    linux: {
      namespaces: Object.keys(files).filter((type) => config.linux?.namespaces?.some((ns) => ns.type === type))
        .map((type) => ({ type: type as NamespaceType, path: `/proc/${pid}/ns/${files[type]}` })),
      ...(config.linux?.seccomp ? { seccomp: config.linux.seccomp } : {}),
    },
    container: { id: container.id, pid, startTime },
    cgroup,
  };
}

/**
 * `--console-socket PATH` (`-t`): a connection to the engine's socket, for the stage that opens
 * the pty (init, or exec) as its fd 4, where level 15's openTerminal() sends the master
 * (SCM_RIGHTS): the engine then owns the terminal, as calf's monitor did. runc refuses a
 * terminal without a socket, and so does calf-runtime: the master would have nowhere to go.
 * @see https://github.com/opencontainers/runc/blob/main/docs/terminals.md
 */
export function connectConsole(terminal: boolean | undefined, socketPath: string | undefined): number | undefined {
  if (!terminal) {
    if (socketPath !== undefined) throw new CalfError('--console-socket needs process.terminal: true', { exitCode: EXIT_ERROR });
    return undefined;
  }
  if (socketPath === undefined) throw new CalfError('process.terminal needs --console-socket: the engine\'s socket for the pty', { exitCode: EXIT_ERROR });
  const fd = linux.socket(linux.AF_UNIX, linux.SOCK_STREAM | linux.SOCK_CLOEXEC, 0);
  try {
    linux.connect(fd, linux.sockaddr_un(socketPath));
  } catch (err) {
    linux.close(fd);
    throw new CalfError(`--console-socket ${socketPath}: ${messageOf(err)}`, { exitCode: EXIT_ERROR });
  }
  return fd;
}

/** The exit codes of a stage that failed before execve: its errors' (1 for calf-runtime's), Docker's 125, 126 and 127. */
const STAGE_FAILURES: readonly number[] = [EXIT_ERROR, EXIT_CALF_ERROR, EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND];

/**
 * Wait until an exec stage this process spawned has become the command (execve: its
 * /proc/PID/exe is no longer this Node) or has ended, which is an error: runc's `exec --detach`
 * returns once the process runs, and the engine then waits for it. A stage that fails before
 * execve exits with one of {@link STAGE_FAILURES} (lib/runtime/stage.ts); any other exit code is
 * the command's own, one that ran and ended between two looks (`sh -c '…; exit 3'` takes a few
 * ms, and a busy machine can keep this loop from looking for longer than that).
 */
export async function untilExecuted(child: ChildProcess): Promise<void> {
  const node = fs.realpathSync(process.execPath);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      if (child.exitCode !== null && !STAGE_FAILURES.includes(child.exitCode)) return; // ran, and ended already
      throw new CalfError(`exec: the exec stage ended (${child.signalCode ?? `exit ${child.exitCode}`}) before the command ran`, { exitCode: EXIT_ERROR });
    }
    let exe: string | undefined;
    try {
      exe = fs.readlinkSync(`/proc/${child.pid}/exe`);
    } catch {
      // gone (a zombie has no exe): the exit event says how, next time round
    }
    if (exe !== undefined && exe !== node) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * Join the namespaces the config names by `path` (podman's network namespace, which CNI has set
 * up): setns(2) moves the calling thread, which is all the init stage needs (a network namespace
 * may be joined by a multithreaded process).
 */
export function joinNamespacePaths(config: Spec): void {
  for (const ns of config.linux?.namespaces ?? []) {
    if (!ns.path) continue;
    if (ns.type !== 'network') throw new CalfError(`joining a ${ns.type} namespace by path is not implemented by calf-runtime`);
    const fd = fs.openSync(ns.path, 'r');
    try {
      linux.setns(fd, linux.CLONE_NEWNET);
    } finally {
      fs.closeSync(fd);
    }
  }
}

// ─── The command line ─────────────────────────────────────────────────────────────────────────

/** What a level gives {@link runtimeMain}: one function per subcommand. */
export interface RuntimeCommands {
  create(globals: RuntimeGlobals, id: string, options: { bundle: string; pidFile?: string; consoleSocket?: string }): Promise<void>;
  start(globals: RuntimeGlobals, id: string): void;
  state(globals: RuntimeGlobals, id: string): OciState;
  kill(globals: RuntimeGlobals, id: string, signal: number, all: boolean): void;
  delete(globals: RuntimeGlobals, id: string, force: boolean): Promise<void>;
  /** `exec --process F ID`: the command's exit code, or undefined with `--detach` (the engine waits for it) */
  exec(globals: RuntimeGlobals, id: string, options: { process: string | string[]; pidFile?: string; consoleSocket?: string; detach: boolean }): Promise<number | undefined>;
  /** `ps --format json ID`: the pids of the container's processes, as the caller's PID namespace numbers them */
  ps(globals: RuntimeGlobals, id: string): number[];
}

/** Flags that take a value, per subcommand ('' for the globals). */
const VALUE_FLAGS: Record<string, readonly string[]> = {
  '': ['root', 'log', 'log-format', 'criu', 'rootless'],
  create: ['bundle', 'b', 'pid-file', 'console-socket', 'preserve-fds'],
  run: ['bundle', 'b', 'pid-file', 'console-socket', 'preserve-fds'],
  kill: ['signal', 's'],
  exec: ['process', 'p', 'pid-file', 'console-socket', 'preserve-fds'],
  ps: ['format', 'f'],
  state: [], start: [], delete: [], features: [],
};

/** Parse `--flag value`, `--flag=value`, `-f value` and bare words, stopping at the first word when `stop`. */
function parseArgs(args: readonly string[], valued: readonly string[], stop: boolean): { flags: Map<string, string | true>; rest: string[] } {
  const flags = new Map<string, string | true>();
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') { i++; break; }
    if (!arg.startsWith('-') || arg === '-') {
      if (stop) break;
      continue;
    }
    const [name, value] = arg.replace(/^--?/, '').split(/=(.*)/s, 2) as [string, string | undefined];
    if (valued.includes(name)) {
      const v = value ?? args[++i];
      if (v === undefined) throw new CalfError(`flag needs an argument: -${name.length > 1 ? '-' : ''}${name}`, { exitCode: EXIT_ERROR });
      flags.set(name, v);
    } else {
      flags.set(name, value ?? true);
    }
  }
  const rest = stop ? args.slice(i) : args.filter((a, j) => !a.startsWith('-') && !valued.some((v) => args[j - 1] === `--${v}` || args[j - 1] === `-${v}`));
  return { flags, rest };
}

/** One error line in `--log` as the engines read it: JSON (`level`, `msg`, RFC 3339 `time`), or text. */
function logError(globals: RuntimeGlobals | undefined, message: string): void {
  if (!globals?.log) return;
  const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const line = globals.logFormat === 'json' ? JSON.stringify({ level: 'error', msg: message, time }) : `time="${time}" level=error msg=${JSON.stringify(message)}`;
  try {
    fs.appendFileSync(globals.log, `${line}\n`);
  } catch {
    // the log is the engine's: stderr still says it
  }
}

/**
 * calf-runtime's command line, runc's: `[--root DIR] [--log FILE] [--log-format text|json]
 * COMMAND [FLAGS] ID`. Errors: one line on stderr (and in `--log`), exit 1.
 * @param prepare makes the init stage's bundle current (create spawns it)
 */
export async function runtimeMain(commands: RuntimeCommands, argv: readonly string[], prepare: () => Promise<void>): Promise<void> {
  let globals: RuntimeGlobals | undefined;
  try {
    const { flags, rest } = parseArgs(argv, VALUE_FLAGS['']!, true);
    const format = flags.get('log-format') ?? 'text';
    if (format !== 'text' && format !== 'json') throw new CalfError(`--log-format: ${JSON.stringify(format)} is neither text nor json`, { exitCode: EXIT_ERROR });
    globals = { root: path.resolve(String(flags.get('root') ?? DEFAULT_RUNTIME_ROOT)), logFormat: format, ...(typeof flags.get('log') === 'string' ? { log: flags.get('log') as string } : {}) };
    if (flags.has('systemd-cgroup')) throw new CalfError('--systemd-cgroup is not implemented by calf-runtime: use the cgroupfs cgroup manager', { exitCode: EXIT_ERROR });
    if (flags.has('version') || flags.has('v')) {
      process.stdout.write(`calf-runtime version 0.17\nspec: ${OCI_VERSION}\n`);
      return;
    }
    const [command, ...args] = rest;
    if (command === undefined) throw new CalfError('no command given: create, start, state, kill, delete, exec, ps, features', { exitCode: EXIT_ERROR });
    const valued = VALUE_FLAGS[command];
    if (!valued) throw new CalfError(`command ${JSON.stringify(command)} is not implemented by calf-runtime`, { exitCode: EXIT_ERROR });
    // exec's command follows its id (`exec ID sh -c …`): its flags stop at the first word, as runc's
    const { flags: opts, rest: words } = parseArgs(args, valued, command === 'exec');
    if (command === 'features') {
      process.stdout.write(`${JSON.stringify(features(), null, 2)}\n`);
      return;
    }
    const id = words[0];
    if (id === undefined || id === '') throw new CalfError(`${command} requires a container id`, { exitCode: EXIT_ERROR });
    const unknownFlag = [...opts.keys()].find((f) => !valued.includes(f) && !FLAGS_WITHOUT_VALUE[command]?.includes(f));
    if (unknownFlag) throw new CalfError(`${command}: flag --${unknownFlag} is not implemented by calf-runtime`, { exitCode: EXIT_ERROR });
    const g = globals;
    switch (command) {
      case 'create': {
        const bundle = path.resolve(String(opts.get('bundle') ?? opts.get('b') ?? '.'));
        const pidFile = opts.get('pid-file');
        const consoleSocket = opts.get('console-socket');
        await prepare(); // the init stage's bundle, current
        await commands.create(g, id, { bundle, ...(typeof pidFile === 'string' ? { pidFile } : {}), ...(typeof consoleSocket === 'string' ? { consoleSocket } : {}) });
        break;
      }
      case 'start': commands.start(g, id); break;
      case 'state': process.stdout.write(`${JSON.stringify(commands.state(g, id), null, 2)}\n`); break;
      case 'kill': commands.kill(g, id, parseSignal(String(opts.get('signal') ?? opts.get('s') ?? words[1] ?? 'SIGTERM')), opts.has('all') || opts.has('a')); break;
      case 'delete': await commands.delete(g, id, opts.has('force') || opts.has('f')); break;
      case 'ps': {
        const format = opts.get('format') ?? opts.get('f') ?? 'table';
        if (format !== 'json') throw new CalfError(`ps: --format ${String(format)} is not implemented by calf-runtime: --format json`, { exitCode: EXIT_ERROR });
        process.stdout.write(`${JSON.stringify(commands.ps(g, id))}\n`);
        break;
      }
      case 'exec': {
        const processFile = opts.get('process') ?? opts.get('p');
        const command = words.slice(1);
        if (typeof processFile !== 'string' && command.length === 0) throw new CalfError('exec: --process FILE, or a command after the id', { exitCode: EXIT_ERROR });
        if (Number(opts.get('preserve-fds') ?? 0) > 0) throw new CalfError('exec: --preserve-fds is not implemented by calf-runtime', { exitCode: EXIT_ERROR });
        const pidFile = opts.get('pid-file');
        const consoleSocket = opts.get('console-socket');
        await prepare(); // the exec stage's bundle, current
        const code = await commands.exec(g, id, {
          process: typeof processFile === 'string' ? processFile : command, detach: opts.has('detach') || opts.has('d'),
          ...(typeof pidFile === 'string' ? { pidFile } : {}), ...(typeof consoleSocket === 'string' ? { consoleSocket } : {}),
        });
        if (code !== undefined) process.exitCode = code;
        break;
      }
      default: throw new CalfError(`command ${JSON.stringify(command)} is not implemented by calf-runtime`, { exitCode: EXIT_ERROR });
    }
  } catch (err) {
    const message = messageOf(err);
    logError(globals, message);
    fs.writeSync(2, `calf-runtime: ${message}\n`);
    process.exit(err instanceof CalfError ? err.exitCode : EXIT_ERROR);
  }
}

/** Boolean flags each subcommand accepts. */
const FLAGS_WITHOUT_VALUE: Record<string, readonly string[]> = {
  create: ['no-pivot', 'no-new-keyring'], kill: ['all', 'a'], delete: ['force', 'f'], state: [], start: [],
  exec: ['detach', 'd', 'tty', 't'], ps: [],
};

/** What `calf-runtime features` prints: the runtime-spec's Features document, as far as calf goes. */
function features(): object {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: [],
    mountOptions: ['ro', 'rw', 'nosuid', 'nodev', 'noexec', 'bind', 'rbind', 'relatime', 'strictatime'],
    linux: {
      namespaces: ['mount', 'uts', 'ipc', 'network', 'pid'],
      capabilities: [],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: { enabled: true },
    },
  };
}
