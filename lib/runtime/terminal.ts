/**
 * `-t`'s plumbing on calf's side: the pty master a stage made travels over a socket
 * (`SCM_RIGHTS`), and calf relays between its own terminal and that master until the command
 * ends: raw mode, the window size, its changes (`SIGWINCH`), the output still buffered at the end.
 * Which pty, and why from the container's own devpts, is a level's lesson (level 16's exec stage).
 * @module
 */
import fs from 'node:fs';
import tty from 'node:tty';
import type { ChildProcess } from 'node:child_process';
import { recvmsg, scm_rights_fds, CMSG_SPACE, MSG_CMSG_CLOEXEC } from '../linux/socket.js';
import { poll, POLLIN } from '../linux/poll.js';
import { ioctl, winsize, TIOCSWINSZ } from '../linux/ioctl.js';
import { fcntl, F_DUPFD_CLOEXEC } from '../linux/fcntl.js';
import { close } from '../linux/unistd.js';
import { CalfError } from '../core/errors.js';

/**
 * Wait for the fd a stage sends on `socket`, blocking calf (for the few milliseconds the stage
 * takes): undefined when the stage closed its end first (it failed, and said why on stderr).
 * @throws CalfError when nothing came within `timeoutMs`
 */
export function receiveFd(socket: number, timeoutMs = 60_000): number | undefined {
  if (poll(socket, POLLIN, timeoutMs) === 0) throw new CalfError(`no terminal from the exec stage within ${timeoutMs / 1000} s`);
  const { data, control } = recvmsg(socket, 1, CMSG_SPACE(8), MSG_CMSG_CLOEXEC);
  const [fd, ...more] = scm_rights_fds(control);
  for (const extra of more) close(extra);
  return data.length === 0 ? undefined : fd;
}

/**
 * Relay between calf's terminal and the pty `master` until `child` (the command) has exited:
 * the master's output to calf's stdout; with `input`, calf's stdin to the master, calf's
 * terminal in raw mode meanwhile (keys go to the command as typed: ^C is the container's); the
 * window size now and at every change. When the command exits, what it wrote and calf has not
 * read yet is read (until `EIO`, once nothing holds the other side, or a quarter second without
 * more), then everything is closed, so a process the command left behind in the background
 * cannot keep calf waiting.
 */
export function relayTerminal(master: number, child: ChildProcess, input: boolean): void {
  const stdin = process.stdin;
  const raw = input && stdin.isTTY;
  const resize = (): void => {
    if (process.stdout.isTTY) ioctl(master, TIOCSWINSZ, winsize({ ws_row: process.stdout.rows, ws_col: process.stdout.columns }));
  };
  resize();
  process.stdout.on('resize', resize);
  // libuv's stream gets an fd of its own, and may close it early: it takes a hangup (POLLHUP) that
  // follows a short read for the end, as on a socket, but a pty reports one as soon as the command
  // has closed its side, while the kernel may still be moving the last of its output to this side
  // (a work queue). What the stream leaves, drain() reads from `master` once the command has exited.
  const output = new tty.ReadStream(fcntl(master, F_DUPFD_CLOEXEC, 3));
  output.on('data', (chunk: Buffer) => fs.writeSync(1, chunk));
  output.on('error', () => undefined); // EIO: the command and everything it started closed the terminal
  const writer = input ? new tty.WriteStream(fcntl(master, F_DUPFD_CLOEXEC, 3)) : undefined; // its own fd: one libuv handle per fd
  const forward = (chunk: Buffer): void => void writer!.write(chunk);
  if (raw) stdin.setRawMode(true);
  if (writer) stdin.on('data', forward);
  child.once('exit', () => {
    drain(master);
    process.stdout.off('resize', resize);
    if (writer) {
      stdin.off('data', forward);
      stdin.pause();
      writer.destroy();
    }
    if (raw) stdin.setRawMode(false);
    output.destroy();
    close(master);
  });
}

/**
 * How long {@link drain} waits for more of the command's output: the pty hands what the other
 * side wrote to this one asynchronously (a kernel work queue), so at the command's exit some of
 * it may not be readable yet; end-of-file (EIO) comes once all of it has been read.
 */
const DRAIN_WAIT_MS = 250;

/**
 * Copy what is left of the command's output on `master` to stdout, each read after a poll that
 * found some (or the hangup): until EIO (nothing holds the other side any more, and everything it
 * wrote has been read: the kernel moves what is still on its way first), or until nothing more
 * comes for {@link DRAIN_WAIT_MS} (a process left in the background holds it).
 */
function drain(master: number): void {
  const buffer = Buffer.alloc(65536);
  for (const until = Date.now() + 10 * DRAIN_WAIT_MS; Date.now() < until;) {
    if (poll(master, POLLIN, DRAIN_WAIT_MS) === 0) return; // quiet: what still runs keeps its terminal
    let n: number;
    try {
      n = fs.readSync(master, buffer, 0, buffer.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue; // not pushed to this side yet
      return; // EIO: all of it read, and nothing holds the other side
    }
    if (n === 0) return;
    fs.writeSync(1, buffer.subarray(0, n));
  }
}
