/**
 * Waiting for the container's first process, the way `docker run` does while attached.
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:os';
import { containerStarted, containerStopped } from './state.js';

/** Signals `docker run` passes on to the container (its `--sig-proxy`) instead of dying of them. */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/**
 * Update the state record, or not: on a full disk (ENOSPC) the container's own error is the one
 * line worth saying, and its teardown (lib/runtime/teardown.ts) needs no times or exit code.
 */
function quietly(record: () => void): void {
  try {
    record();
  } catch {
    // the record keeps what it had: status 'created', which `calf cleanup` handles as any other
  }
}

/**
 * Resolve with the child's exit code or the signal that killed it. Until then, the signals calf
 * receives are sent on to the child: a Ctrl-C or a `kill <calf>` is the container's business,
 * and calf only stops when the container's process has. Given the container, its state record
 * says when it started (and which process it is) and how it stopped.
 */
export async function exited(child: ChildProcess, container?: { dir: string }): Promise<[code: number | null, signal: NodeJS.Signals | null]> {
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  if (container && child.pid !== undefined) quietly(() => containerStarted(container.dir, child.pid!));
  const ended = (code: number | null, signal: NodeJS.Signals | null): [number | null, NodeJS.Signals | null] => {
    if (container) quietly(() => containerStopped(container.dir, signal === null ? code ?? 0 : 128 + constants.signals[signal]));
    return [code, signal];
  };
  if (child.exitCode !== null || child.signalCode !== null) return ended(child.exitCode, child.signalCode);
  for (const s of FORWARDED) process.on(s, forward);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    return ended(code, signal);
  } finally {
    for (const s of FORWARDED) process.off(s, forward);
  }
}
