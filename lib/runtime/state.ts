/**
 * A container's state record: `<calf root>/containers/<short id>/state.json`, what calf knows of
 * a container on disk, so that another calf process (`calf cleanup` today; `calf ps`, `rm`,
 * `exec` later) can act on it. Written whole and renamed (lib/core/record.ts) at every change.
 *
 * It names the calf process in charge of the container and the container's first process each
 * with its start time (runc's check: a pid is reused once its process is gone), and the
 * teardown steps registered so far (lib/runtime/teardown.ts), so a crash's `calf cleanup` undoes
 * exactly what the run would have undone.
 * @module
 */
import path from 'node:path';
import { readJson, writeJson } from '../core/record.js';
import { processRef, type ProcessRef } from '../core/process.js';
import type { TeardownStep } from './teardown.js';

/** What state.json holds. */
export interface ContainerState {
  /** 64 hex digits, like Docker's */
  id: string;
  /** `--name`; none yet (calf has no names before level 15) */
  name: string | null;
  /** the image it runs: as it was asked for, and its id */
  image: { name: string; id: string } | null;
  /** the calf process in charge of it: while that lives, the container is not a leftover */
  owner: ProcessRef;
  /** its first process (the init stage, which becomes the command), once started */
  process: ProcessRef | null;
  /** Docker's: created (not started yet), running, or stopped (exited) */
  status: 'created' | 'running' | 'stopped';
  created: string;
  started: string | null;
  finished: string | null;
  /** Docker's exit code: the command's status, 128+N for signal N; null while it runs */
  exitCode: number | null;
  /** what to undo when it is removed, in the order registered: run last first */
  teardown: TeardownStep[];
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

/** Record that the container stopped, and its exit code (Docker's: 128+N for signal N). */
export function containerStopped(dir: string, exitCode: number): void {
  updateState(dir, { status: 'stopped', finished: new Date().toISOString(), exitCode });
}
