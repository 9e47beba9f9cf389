/**
 * The handshake between `calf run` (the parent) and the init stage it spawned, for the levels
 * where the parent must act on the container after its namespaces exist and before its command
 * runs: put its pid into a cgroup, move a veth into its network namespace, write its uid map.
 *
 * The channel is a socket pair: the parent spawns the init stage with `stdio: SYNC_STDIO`, so the
 * init stage finds its end at fd 3 ({@link SYNC_FD}). Messages are one word and a newline.
 *
 * ```
 *   calf run (parent)                              calf init (init stage)
 *   ─────────────────                              ──────────────────────
 *   spawn(init, fd 3 = socket) ──────────────────▶ unshare(…): its namespaces exist
 *                                                  syncWithParent():
 *   syncWithInit():                 "ready\n"   ◀─ sync 1. write, then block in read
 *     wait for "ready"
 *     hostSide(child.pid): cgroup, veth, uid map
 *     ─▶ sync 2. "go\n" ─────────────────────────▶ read returns
 *                                                  pivot_root, …, execve(command)
 *                                                  (fd 3 is close-on-exec: the command never sees it)
 *   execed() (level 15, a monitor):   end-of-file ◀─ sync 3. execve closed fd 3: the command runs
 *                  or "error CODE MESSAGE\n"     ◀─         or it failed first, and said why
 *   exited(child)
 * ```
 *
 * Either side may fail at any point, and neither waits forever:
 * - the init stage fails before sync 1 (a syscall error): it prints its one-line error and exits
 *   125; the parent reads end-of-file instead of "ready", so `syncWithInit` returns false and the
 *   parent reports the init stage's exit code.
 * - the parent's host-side work throws: it kills the init stage (by pid, SIGKILL), waits for it,
 *   and throws on, so calf exits 125 with that error and its exit handlers remove the container.
 * - the parent dies: the init stage reads end-of-file instead of "go" and exits 125. It also
 *   gives up after {@link SYNC_TIMEOUT_MS} without an answer.
 * - the init stage fails after sync 2 (pivot_root, the user, a command not found): it writes
 *   "error CODE MESSAGE" before it exits, so a parent that must know whether the command started (a
 *   monitor handing over to `calf run -d`, level 15) tells that from a command that exits at once.
 * - an unexpected message names what was expected and what came.
 * @see https://github.com/opencontainers/runc/blob/main/libcontainer/sync.go (runc's version)
 * @module
 */
import fs from 'node:fs';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { poll, POLLIN } from '../linux/poll.js';
import { CalfError } from '../core/errors.js';
import { faultPoint } from '../core/faults.js';

/** `spawn` stdio for an init stage that takes part in the handshake: calf's own stdio, plus the socket as fd 3. */
export const SYNC_STDIO: StdioOptions = ['inherit', 'inherit', 'inherit', 'pipe'];

/** The init stage's end of the socket. */
export const SYNC_FD = 3;

/** How long the init stage waits for the parent before it gives up. */
export const SYNC_TIMEOUT_MS = 120_000;

/**
 * Parent side: wait until the init stage says "ready" (its namespaces exist), run `hostSide`,
 * then tell it to "go" on.
 * @returns false when the init stage ended before it was ready (it has said why on stderr:
 *   report its exit code); true once it was told to go on
 * @throws whatever `hostSide` throws, after the init stage was killed and has exited
 */
export async function syncWithInit(child: ChildProcess, hostSide: (pid: number) => void | Promise<void>): Promise<boolean> {
  const socket = child.stdio[SYNC_FD] as (NodeJS.ReadableStream & NodeJS.WritableStream) | null | undefined;
  if (!socket) throw new CalfError(`the init stage has no sync channel: spawn it with stdio: SYNC_STDIO`);
  const message = await readMessage(socket).catch(() => undefined);
  if (message === undefined) { // end-of-file: the init stage failed and said why
    failedEarly.add(child);
    return false;
  }
  if (message !== 'ready') {
    await kill(child);
    throw new CalfError(`sync with the init stage: expected "ready", got ${JSON.stringify(message)}`);
  }
  faultPoint('init-waiting');
  try {
    await hostSide(child.pid!);
  } catch (err) {
    await kill(child);
    throw err;
  }
  faultPoint('after-host-side');
  socket.write('go\n');
  return true;
}

/** Init stages whose handshake ended before "ready": they failed, and {@link execed} says so. */
const failedEarly = new WeakSet<ChildProcess>();

/**
 * Parent side, after {@link syncWithInit} (sync 3): wait until the init stage's command runs, or
 * the init stage has failed before its `execve`.
 * @returns undefined once the command runs; else how the init stage ended: its exit code, and its
 *   one-line error (it said it on its stderr too), unless it failed before the handshake
 */
export async function execed(child: ChildProcess): Promise<{ exitCode: number; message?: string } | undefined> {
  return awaitInit(child, undefined);
}

/**
 * Parent side of calf-runtime's create (level 17), after {@link syncWithInit}: wait until the init
 * stage says "created" (it is set up, and blocks on the exec FIFO until `start`), or has failed.
 * @returns undefined once it waits; else how it ended, as {@link execed} says
 */
export async function createdInit(child: ChildProcess): Promise<{ exitCode: number; message?: string } | undefined> {
  return awaitInit(child, 'created');
}

/** Init-stage side of {@link createdInit}: say "created", right before blocking on the exec FIFO. */
export function notifyCreated(): void {
  if (connected) fs.writeSync(SYNC_FD, 'created\n');
}

/** The next message: `expected` (or end-of-file when undefined) means all is well; "error CODE MESSAGE" how the stage failed. */
async function awaitInit(child: ChildProcess, expected: string | undefined): Promise<{ exitCode: number; message?: string } | undefined> {
  const socket = child.stdio[SYNC_FD] as NodeJS.ReadableStream | null | undefined;
  const message = failedEarly.has(child) || !socket ? 'error' : await readMessage(socket).catch(() => undefined);
  if (message === expected) return undefined; // end-of-file: execve closed the socket; or the word we wait for
  const error = /^error(?: (\d+) ?(.*))?$/.exec(message ?? 'error');
  if (!error) throw new CalfError(`sync with the init stage: expected ${expected ? `"${expected}"` : 'end-of-file'} or "error CODE MESSAGE", got ${JSON.stringify(message)}`);
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  const exitCode = child.exitCode ?? Number(error[1] ?? 125);
  return error[2] ? { exitCode, message: error[2] } : { exitCode };
}

/** Set in the init stage once the handshake began: fd 3 is the sync socket, a failure may be reported on it. */
let connected = false;

/**
 * Init-stage side, when it fails after the handshake and before `execve` (sync 3): tell the
 * parent, so it knows the command never started. Nothing before the handshake (fd 3 may be
 * anything calf's caller left open then: a level without the handshake has no socket there).
 */
export function reportFailure(exitCode: number, message: string): void {
  if (!connected) return;
  try {
    fs.writeSync(SYNC_FD, `error ${exitCode} ${message.split('\n')[0]}\n`);
  } catch {
    // the parent is gone: nobody to tell
  }
}

/**
 * Init-stage side: say "ready" and block until the parent says "go". Synchronous on purpose:
 * after `unshare` only this thread is in the container's namespaces.
 * @throws CalfError when the parent went away, timed out, or said something else
 */
export function syncWithParent(): void {
  connected = true;
  const gone = 'calf run went away before the container started';
  try {
    fs.writeSync(SYNC_FD, 'ready\n');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') throw new CalfError(`${gone} (EPIPE on the sync channel)`, { cause: err });
    throw err;
  }
  const got = readLineSync(SYNC_FD, SYNC_TIMEOUT_MS);
  if (got === undefined) throw new CalfError(`${gone} (end of file on the sync channel)`);
  if (got !== 'go') throw new CalfError(`sync with calf run: expected "go", got ${JSON.stringify(got)}`);
}

/**
 * One message from the parent's end of the socket, or undefined at end-of-file. (Not `for await`:
 * leaving that loop destroys the stream, and the "go" still has to go out on it.)
 */
function readMessage(socket: NodeJS.ReadableStream): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (value: string | undefined): void => {
      socket.off('data', onData).off('end', onEnd).off('error', reject);
      socket.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      text += String(chunk);
      const newline = text.indexOf('\n');
      if (newline !== -1) done(text.slice(0, newline));
    };
    const onEnd = (): void => done(text || undefined);
    socket.on('data', onData).on('end', onEnd).on('error', reject);
    socket.resume(); // done() paused it after the previous message: an explicitly paused stream stays so
  });
}

/** Read up to a newline from `fd`, blocking; undefined at end-of-file. */
function readLineSync(fd: number, timeoutMs: number): string | undefined {
  let text = '';
  const buffer = Buffer.alloc(64);
  const until = Date.now() + timeoutMs;
  for (;;) {
    const left = until - Date.now();
    if (left <= 0 || poll(fd, POLLIN, left) === 0) {
      throw new CalfError(`calf run did not answer within ${timeoutMs / 1000} s (sync channel)`);
    }
    const n = fs.readSync(fd, buffer, 0, buffer.length, null);
    if (n === 0) return text || undefined;
    text += buffer.subarray(0, n).toString();
    const newline = text.indexOf('\n');
    if (newline !== -1) return text.slice(0, newline);
  }
}

/** End the init stage by pid and wait until it has exited, so nothing of it is left. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGKILL');
  await gone;
}
