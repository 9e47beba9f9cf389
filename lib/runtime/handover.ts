/**
 * The handover between `calf run -d` (or `calf start`) and the container's monitor (level 15):
 * the monitor starts in the background, and `calf run -d` may print the id and exit 0 only once
 * the container's command runs, or must report, with Docker's exit code, why it never did.
 *
 * The channel is a socket pair, the monitor's fd 3 ({@link HANDOVER_STDIO}); its fds 0–2 are
 * `/dev/null`, so nothing ties it to the terminal `calf run -d` was typed in. One line, once:
 *
 * ```
 *   calf run -d                                     calf monitor DIR run (its own session)
 *   ───────────                                     ──────────────────────────────────────
 *   create the container: rootfs, config.json,
 *   the record (owner: this calf run)
 *   spawn(monitor, detached, fd 3 = socket) ──────▶ take charge (owner: the monitor)
 *   awaitHandover(): wait                           start(): network, cgroup, init stage,
 *                                                   the handshake; execed(): the command runs
 *     print the id, exit 0        "running\n"    ◀─ handOver(): then close fd 3, log, wait…
 *     or say MESSAGE, exit CODE   "failed CODE MESSAGE\n"
 *                                                ◀─ it never started (a missing command: 127);
 *                                                   the monitor removes the container, exits
 *     or, at end-of-file: the monitor died; calf run takes charge back, removes the container
 * ```
 *
 * Until "running" comes, `calf run -d` is still the container's creator: whatever goes wrong,
 * someone in charge removes it. After it, `calf run -d` exits and the monitor is alone with the
 * container, in a session of its own: a closed terminal (SIGHUP) never reaches it.
 * @module
 */
import fs from 'node:fs';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { CalfError, messageOf, exitCodeOf } from '../core/errors.js';
import { takeCharge } from './state.js';
import { faultPoint } from '../core/faults.js';

/** `spawn` stdio for a monitor: no terminal (fds 0–2 are /dev/null), and the handover socket as fd 3. */
export const HANDOVER_STDIO: StdioOptions = ['ignore', 'ignore', 'ignore', 'pipe'];

/** The monitor's end of the handover socket. */
export const HANDOVER_FD = 3;

/** How long `calf run -d` waits for the monitor's word. */
export const HANDOVER_TIMEOUT_MS = 120_000;

/**
 * `calf run -d`'s side: wait for the monitor's one line. Then the monitor is on its own: its
 * process and the socket no longer keep this process alive.
 * @param dir the container's directory: taken back in charge (and so removed as this process
 *   exits) if the monitor dies without a word
 * @throws CalfError with the monitor's exit code and message when the container did not start
 */
export async function awaitHandover(monitor: ChildProcess, dir?: string): Promise<void> {
  const socket = monitor.stdio[HANDOVER_FD] as (NodeJS.ReadableStream & { destroy(): void; unref?(): void }) | null | undefined;
  if (!socket) throw new CalfError('the monitor has no handover channel: spawn it with stdio: HANDOVER_STDIO');
  const line = await new Promise<string | undefined>((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve(undefined), HANDOVER_TIMEOUT_MS);
    const done = (value: string | undefined): void => {
      clearTimeout(timer);
      resolve(value);
    };
    socket.on('data', (chunk: Buffer) => {
      text += String(chunk);
      if (text.includes('\n')) done(text.slice(0, text.indexOf('\n')));
    });
    socket.on('end', () => done(undefined));
    socket.on('error', () => done(undefined));
  });
  socket.destroy();
  monitor.unref();
  if (line === 'running') return;
  const failed = /^failed (\d+) (.*)$/.exec(line ?? '');
  if (failed) throw new CalfError(failed[2]!, { exitCode: Number(failed[1]) });
  if (dir) takeCharge(dir); // its exit handler removes it, and what it ran
  throw new CalfError(`the container's monitor (pid ${monitor.pid}) ended before the container started`);
}

/** The monitor's side: the container runs. Once only; the socket is closed after it. */
export function handOver(): void {
  faultPoint('before-handover');
  say('running');
}

/** The monitor's side: the container never started, because of `err` (its exit code and message). */
export function handOverFailure(err: unknown): void {
  say(`failed ${exitCodeOf(err)} ${messageOf(err).split('\n')[0]}`);
}

let said = false;

function say(line: string): void {
  if (said) return;
  said = true;
  try {
    fs.writeSync(HANDOVER_FD, `${line}\n`);
    fs.closeSync(HANDOVER_FD);
  } catch {
    // calf run -d is gone (killed): nobody is waiting for the word
  }
}

/** Has the monitor said its word yet? */
export function handedOver(): boolean {
  return said;
}
