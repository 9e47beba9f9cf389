/**
 * Acting on containers that outlive `calf run` (level 15), from any calf process: what their
 * records say (`calf ps`, `calf inspect`), signalling their first process (`calf kill`, and the
 * lesson's `calf stop`), waiting for their monitor to record an exit (`calf wait`), removing them
 * (`calf rm`), committing their writable layer (`calf commit`), reading their log (`calf logs`).
 * Policy, not a lesson: the level's monitor (its `monitor.ts`) is the lesson, these read and act
 * on what it records.
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { constants } from 'node:os';
import { CalfError } from '../core/errors.js';
import { alive, processStartTime, sleep, type ProcessRef } from '../core/process.js';
import { calfRoot } from '../core/root.js';
import { readJson } from '../core/record.js';
import type { Spec } from '../core/spec.js';
import { pidfd_open, pidfd_send_signal } from '../linux/pidfd.js';
import { conditionOf, readState, type Condition, type ContainerState } from './state.js';
import { listContainerDirs, removeContainer, findContainer } from './container.js';
import { logPath } from './log.js';
import type { PortMapping } from '../network/publish.js';

/** A container, as a command found it: its directory and record. */
export interface Found {
  dir: string;
  state: ContainerState;
}

/** The config.json of the container in `dir` (what its init stage got), if it has one. */
export function readConfig(dir: string): Spec | undefined {
  return readJson<Spec>(path.join(dir, 'config.json'));
}

/** containerd's exit status for "unknown" (a container whose monitor died without recording one). */
export const UNKNOWN_EXIT_STATUS = 255;

// ─── Time, as Docker words it ────────────────────────────────────────────────────────────────

/** go-units' HumanDuration, which `docker ps` uses: `Less than a second`, `3 seconds`, `About a minute`… */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(seconds / 3600);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

const since = (iso: string | null, now: number) => humanDuration(now - Date.parse(iso ?? new Date(now).toISOString()));

/** `docker ps`'s STATUS column: `Up 3 seconds`, `Exited (137) 2 minutes ago`, `Created`, `Dead`. */
export function statusText(state: ContainerState, condition: Condition = conditionOf(state), now = Date.now()): string {
  switch (condition) {
    case 'created': return 'Created';
    case 'running': return `Up ${since(state.started ?? state.created, now)}`;
    case 'orphaned': return `Up ${since(state.started ?? state.created, now)} (monitor gone)`;
    case 'lost': return 'Exited (unknown)';
    case 'exited': return state.exitCode === null ? 'Exited (unknown)' : `Exited (${state.exitCode}) ${since(state.finished, now)} ago`;
    case 'dead': return 'Dead';
  }
}

/** `docker ps`'s COMMAND column: the command (an argument with a space in single quotes), quoted, cut at 20 characters. */
function commandText(args: readonly string[]): string {
  const quoted = JSON.stringify(args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' '));
  return quoted.length > 20 ? `${quoted.slice(0, 19)}…` : quoted;
}

/** `127.0.0.1:8080->80/tcp`, for each `-p`. */
function portsText(state: ContainerState): string {
  return publishedPorts(state).map((p) => `127.0.0.1:${p.hostPort}->${p.containerPort}/tcp`).join(', ');
}

function publishedPorts(state: ContainerState): PortMapping[] {
  return (state.options?.flags.publish as PortMapping[] | undefined) ?? [];
}

/** The rows of `docker ps` (`all`: `-a`), newest first, with its header. */
export function psRows(options: { all?: boolean; root?: string } = {}): string[][] {
  const now = Date.now();
  const rows = listContainerDirs(options.root ?? calfRoot())
    .filter((c): c is Found => c.state !== undefined)
    .map((c) => ({ ...c, condition: conditionOf(c.state) }))
    .filter((c) => options.all || c.condition === 'running' || c.condition === 'orphaned')
    .sort((a, b) => Date.parse(b.state.created) - Date.parse(a.state.created));
  return [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'], ...rows.map(({ dir, state, condition }) => [
    state.id.slice(0, 12), state.image?.name.replace(/:latest$/, '') ?? '', commandText(readConfig(dir)?.process.args ?? []),
    `${since(state.created, now)} ago`, statusText(state, condition, now), portsText(state), state.name ?? '',
  ])];
}

// ─── Signals and exits ───────────────────────────────────────────────────────────────────────

/** A signal as `docker kill -s` takes it: `KILL`, `SIGKILL`, `9`. */
export function signalArg(text: string): number {
  if (/^\d+$/.test(text) && Number(text) > 0 && Number(text) < 65) return Number(text);
  const name = text.toUpperCase().replace(/^(SIG)?/, 'SIG') as keyof typeof constants.signals;
  const n = constants.signals[name];
  if (n === undefined) throw new CalfError(`invalid signal: ${text}`, { exitCode: 1 });
  return n;
}

/**
 * Send signal `sig` to the container's first process (its PID 1), through a pidfd opened while
 * the process was checked to be the one the record names (a pid may have been reused since).
 * @throws CalfError (exit 1) when it is not running
 */
export function signalContainer({ state }: Found, sig: number): void {
  const first = state.process;
  const notRunning = new CalfError(`cannot kill container ${state.id.slice(0, 12)}: it is not running`, { exitCode: 1 });
  if (!first || state.status !== 'running' || !alive(first.pid, first.startTime)) throw notRunning;
  let pidfd: number;
  try {
    pidfd = pidfd_open(first.pid);
  } catch {
    throw notRunning; // gone meanwhile
  }
  try {
    if (processStartTime(first.pid) !== first.startTime) throw notRunning; // the pid is another process's now
    pidfd_send_signal(pidfd, sig);
  } catch (err) {
    if ((err as { code?: string }).code === 'ESRCH') throw notRunning;
    throw err;
  } finally {
    fs.closeSync(pidfd);
  }
}

/** Is the container's first process (still) running? */
export function isRunning(state: ContainerState): boolean {
  return state.status === 'running' && state.process != null && alive(state.process.pid, state.process.startTime);
}

/**
 * The container `ref` names ({@link findContainer}), which must be running: its record says so,
 * and its first process is still that process (its start time). `calf exec` (level 16).
 * @throws CalfError (exit 1, Docker's): no such container, or `container ID is not running`
 */
export function runningContainer(ref: string, root = calfRoot()): Found & { process: ProcessRef } {
  const found = findContainer(ref, root);
  if (!isRunning(found.state)) throw new CalfError(`container ${found.state.id} is not running`, { exitCode: 1 });
  return { ...found, process: found.state.process! };
}

/**
 * Wait until the container has stopped and its monitor has finished with it (its exit recorded,
 * its stop moment torn down), or it is gone, or `timeoutMs` has passed.
 * @returns its record then (undefined: removed meanwhile), and whether it stopped
 */
export function waitForExit(dir: string, timeoutMs = Infinity): { state: ContainerState | undefined; stopped: boolean } {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const state = readState(dir);
    const condition = state && conditionOf(state);
    if (!state || condition === 'exited' || condition === 'lost' || condition === 'dead') return { state, stopped: true };
    if (Date.now() >= until) return { state, stopped: false };
    sleep(Math.min(50, until - Date.now()));
  }
}

/** The exit code `calf wait` prints: the recorded one, or {@link UNKNOWN_EXIT_STATUS}. */
export function exitCodeOf(state: ContainerState | undefined): number {
  return state?.exitCode ?? UNKNOWN_EXIT_STATUS;
}

// ─── Removing ────────────────────────────────────────────────────────────────────────────────

/**
 * `calf rm [-f]`: remove a stopped container; with `force`, a running one too: SIGKILL to its
 * first process, then (its monitor records the exit and tears down its stop moment) the rest.
 * A container whose monitor is gone is ended and removed by this process instead.
 * @throws CalfError (exit 1) for a running container without `force`
 */
export function removeFound(found: Found, force: boolean): void {
  const { dir, state } = found;
  const condition = conditionOf(state);
  if ((condition === 'running' || condition === 'orphaned' || condition === 'created') && !force) {
    throw new CalfError(`cannot remove container "/${state.name ?? state.id.slice(0, 12)}": container is running: stop the container before removing or force remove`, { exitCode: 1 });
  }
  if (condition === 'running') {
    try {
      signalContainer(found, constants.signals.SIGKILL);
    } catch {
      // it ended meanwhile
    }
    const { stopped } = waitForExit(dir, 10_000);
    if (!stopped && state.owner && alive(state.owner.pid, state.owner.startTime)) process.kill(state.owner.pid, 'SIGKILL'); // a monitor that hangs
  }
  removeContainer(dir);
}

// ─── inspect ─────────────────────────────────────────────────────────────────────────────────

/** `docker inspect`'s object for one container, in Docker's field names, with calf's config.json as `OCIConfig`. */
export function inspectContainer({ dir, state }: Found): Record<string, unknown> {
  const config = readConfig(dir);
  const condition = conditionOf(state);
  const args = config?.process.args ?? [];
  const running = condition === 'running' || condition === 'orphaned';
  const ports = publishedPorts(state);
  const endpoint = running ? state.endpoint ?? null : null;
  const flags = state.options?.flags ?? {};
  const exitCode = condition === 'lost' ? UNKNOWN_EXIT_STATUS : state.exitCode ?? (running || condition === 'created' ? 0 : UNKNOWN_EXIT_STATUS);
  const error = condition === 'lost' ? 'exit status unknown: its monitor ended without recording one (killed, or a reboot)'
    : condition === 'orphaned' ? 'its monitor is gone: nobody will record its exit; calf rm -f removes it' : state.error ?? '';
  return {
    Id: state.id,
    Created: state.created,
    Path: args[0] ?? '',
    Args: args.slice(1),
    State: {
      Status: condition === 'orphaned' ? 'running' : condition === 'lost' ? 'exited' : condition,
      Running: running,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: condition === 'dead',
      Pid: running ? state.process?.pid ?? 0 : 0,
      ExitCode: running ? 0 : exitCode,
      Error: error,
      StartedAt: state.started ?? '0001-01-01T00:00:00Z',
      FinishedAt: state.finished ?? '0001-01-01T00:00:00Z',
      Monitor: state.owner && alive(state.owner.pid, state.owner.startTime) ? { Pid: state.owner.pid } : null,
    },
    Image: state.image?.id ?? '',
    LogPath: logPath(dir),
    Name: `/${state.name ?? ''}`,
    HostConfig: {
      NetworkMode: flags.network ?? (ports.length ? 'calf0' : 'none'),
      PortBindings: portMap(ports, (p) => [{ HostIp: '127.0.0.1', HostPort: String(p.hostPort) }]),
      AutoRemove: state.options?.rm ?? false,
      CgroupParent: flags.cgroupParent ?? '',
      Memory: config?.linux?.resources?.memory?.limit ?? 0,
      PidsLimit: config?.linux?.resources?.pids?.limit ?? 0,
      Privileged: flags.privileged === true,
    },
    Mounts: (config?.mounts ?? []).filter((m) => m.type === 'bind').map((m) => ({
      Type: 'bind', Source: m.source, Destination: m.destination, RW: !(m.options ?? []).includes('ro'),
    })),
    Config: {
      Hostname: config?.hostname ?? '',
      User: config?.process.user?.username ?? '',
      Tty: config?.process.terminal ?? false,
      Env: config?.process.env ?? [],
      Cmd: args,
      Image: state.image?.name ?? '',
      WorkingDir: config?.process.cwd ?? '',
    },
    NetworkSettings: {
      Ports: portMap(ports, (p) => (running ? [{ HostIp: '127.0.0.1', HostPort: String(p.hostPort) }] : null)),
      IPAddress: endpoint?.address ?? '',
      IPPrefixLen: endpoint?.prefix ?? 0,
      Gateway: endpoint?.gateway ?? '',
      Networks: endpoint ? { [endpoint.network]: { IPAddress: endpoint.address, IPPrefixLen: endpoint.prefix, Gateway: endpoint.gateway } } : {},
    },
    OCIConfig: config ?? null,
  };
}

function portMap<T>(ports: PortMapping[], value: (p: PortMapping) => T): Record<string, T> {
  return Object.fromEntries(ports.map((p) => [`${p.containerPort}/tcp`, value(p)]));
}

// ─── commit ──────────────────────────────────────────────────────────────────────────────────

/** `calf commit`: the container's writable layer (overlay's upper directory) on top of its image, as image `name`. */
export async function commitFound({ dir, state }: Found, name: string): Promise<string> {
  const config = readConfig(dir);
  const upper = config?.root?.overlay?.upper;
  if (!upper || !state.image) {
    throw new CalfError(`cannot commit container ${state.id.slice(0, 12)}: it has no writable layer of its own (commit needs the overlay storage driver)`, { exitCode: 1 });
  }
  if (!fs.existsSync(upper)) throw new CalfError(`cannot commit container ${state.id.slice(0, 12)}: its writable layer ${upper} is gone`, { exitCode: 1 });
  const { commitImage } = await import('../image/commit.js');
  return commitImage({ upper, imageId: state.image.id, containerId: state.id, command: config?.process.args ?? [] }, name);
}

export { findContainer };
