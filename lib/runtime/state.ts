/**
 * A container's state record: `<calf root>/containers/<short id>/state.json`, what calf knows of
 * a container on disk, so that another calf process (`calf cleanup` today; `calf ps`, `rm`,
 * `exec` later) can act on it. Written whole and renamed (lib/core/record.ts) at every change.
 *
 * It names the calf process in charge of the container and the container's first process each
 * with its start time (runc's check: a pid is reused once its process is gone), and the
 * teardown steps registered so far (lib/runtime/teardown.ts), so a crash's `calf cleanup` undoes
 * exactly what the run would have undone.
 *
 * From level 15 on a container outlives `calf run`: the process in charge is its monitor, and a
 * stopped container is kept, in charge of nobody (`owner` null), until `calf rm`. The record then
 * also keeps what `calf start` needs of `calf run`'s options, and what `calf ps` and `calf
 * inspect` show (its name, its endpoint).
 * @module
 */
import path from 'node:path';
import { readJson, writeJson } from '../core/record.js';
import { alive, processRef, type ProcessRef } from '../core/process.js';
import type { Endpoint } from '../network/networks.js';
import type { TeardownStep } from './teardown.js';

/** What state.json holds. */
export interface ContainerState {
  /** 64 hex digits, like Docker's */
  id: string;
  /** `--name`, or a random one (level 15 on); null before level 15, where containers have no names */
  name: string | null;
  /** the image it runs: as it was asked for, and its id */
  image: { name: string; id: string } | null;
  /**
   * The calf process in charge of it: `calf run`, then (level 15) its monitor. While that lives,
   * the container is not a leftover; when it exits still in charge, it removes the container.
   * Null: nobody is, a stopped container kept until `calf rm` (level 15).
   */
  owner: ProcessRef | null;
  /** its first process (the init stage, which becomes the command), once started */
  process: ProcessRef | null;
  /** Docker's: created (not started yet), running, or stopped (exited) */
  status: 'created' | 'running' | 'stopped';
  created: string;
  started: string | null;
  finished: string | null;
  /** Docker's exit code: the command's status, 128+N for signal N; null while it runs */
  exitCode: number | null;
  /** what to undo when it stops or is removed, in the order registered: run last first */
  teardown: TeardownStep[];
  /** `calf run`'s options, which `calf start` runs it with again (level 15) */
  options?: KeptOptions;
  /** its place on a network while it runs: address, gateway… (level 08; null once stopped) */
  endpoint?: Endpoint | null;
  /** why it could not start, or why its monitor failed: `calf inspect`'s State.Error */
  error?: string;
  /**
   * Its removal began and a step of it failed (Docker's `dead`): its directory had gone, and came
   * back only to hold this record of what is left to undo. Never a stopped container to keep:
   * `calf cleanup` finishes its removal.
   */
  dead?: true;
}

/**
 * What `calf start` needs of `calf run`'s options: the level's flags (`--network`, `-p`,
 * `--cgroup-parent`… as parsed: plain data) and Docker's `-t`, `-i`, `--rm`. The rest of what
 * run was asked for is in `config.json` already (the command, its environment, the limits).
 */
export interface KeptOptions {
  flags: Record<string, unknown>;
  tty: boolean;
  interactive: boolean;
  rm: boolean;
}

/** The state record of the container directory `dir`. */
export function stateFile(dir: string): string {
  return path.join(dir, 'state.json');
}

/** The record in `dir`, or undefined when there is none or it is unreadable. */
export function readState(dir: string): ContainerState | undefined {
  return readJson<ContainerState>(stateFile(dir));
}

/** Replace the record in `dir`, atomically. */
export function writeState(dir: string, state: ContainerState): void {
  writeJson(stateFile(dir), state);
}

/** Change some fields of the record in `dir`, atomically; a record that is gone stays gone. */
export function updateState(dir: string, change: Partial<ContainerState>): ContainerState | undefined {
  const state = readState(dir);
  if (!state) return undefined;
  const next = { ...state, ...change };
  writeState(dir, next);
  return next;
}

/** Record that the container's first process started (its pid and start time), and when. */
export function containerStarted(dir: string, pid: number): void {
  updateState(dir, { process: processRef(pid) ?? { pid, startTime: 0 }, status: 'running', started: new Date().toISOString() });
}

/** Record that the container stopped, and its exit code (Docker's: 128+N for signal N). Its endpoint is gone with it. */
export function containerStopped(dir: string, exitCode: number): void {
  updateState(dir, { status: 'stopped', finished: new Date().toISOString(), exitCode, endpoint: null });
}

/** Keep in the record what `calf start` needs of `calf run`'s options (level 15). */
export function keepOptions(container: { dir: string }, { flags, tty, interactive, rm }: KeptOptions): void {
  updateState(container.dir, { options: { flags, tty, interactive, rm } });
}

/** Put this process in charge of the container in `dir` (a monitor taking over from `calf run`). */
export function takeCharge(dir: string): void {
  updateState(dir, { owner: processRef()! });
}

/**
 * Put nobody in charge of the stopped container in `dir`: it is kept, as Docker keeps it, until
 * `calf rm` (or a `calf start`). No exit handler removes it then.
 */
export function releaseContainer(dir: string): void {
  updateState(dir, { owner: null });
}

/** Is this process in charge of the container whose record is `state`? */
export function inCharge(state: ContainerState | undefined): boolean {
  return state?.owner?.pid === process.pid;
}

/**
 * What became of a container, seen from its record and the processes it names:
 * - `created`: made, not started (or starting: its `calf run` or monitor is at work);
 * - `running`: its first process runs and its monitor (the owner) lives;
 * - `orphaned`: its first process runs but nobody is in charge (a monitor killed with -9): nobody
 *   will record its exit or tear it down, `calf rm -f` (or `calf cleanup`) must;
 * - `exited`: stopped, its exit code recorded (or null: unknown), kept until `calf rm`;
 * - `lost`: the record says it runs, but its process and its owner are gone without recording an
 *   exit (a reboot, or both killed): exited, with an unknown exit code;
 * - `dead`: its removal failed halfway ({@link ContainerState.dead}, Docker's `Dead`): never
 *   started again, only removed (`calf rm`, `calf cleanup`).
 */
export type Condition = 'created' | 'running' | 'orphaned' | 'exited' | 'lost' | 'dead';

/** The {@link Condition} of the container whose record is `state`. */
export function conditionOf(state: ContainerState): Condition {
  if (state.dead) return 'dead'; // its processes ended before its removal began
  // `!= null`: a record written by hand, or by an older calf, may lack the field altogether
  const owner = state.owner != null && alive(state.owner.pid, state.owner.startTime);
  if (state.status === 'stopped' && !owner) return 'exited';
  if (state.status === 'stopped') return 'running'; // its monitor is tearing it down: still in charge
  const first = state.process != null && alive(state.process.pid, state.process.startTime);
  if (state.status === 'created') return owner ? 'created' : first ? 'orphaned' : 'lost';
  if (owner) return 'running';
  return first ? 'orphaned' : 'lost';
}
