/**
 * The stages' housekeeping: around a re-executed stage (a level's `init()`, and from level 16
 * its exec stage), what every container process needs before its command starts, and what
 * happens when the stage fails before `execve`; around a level's monitor (level 15), what
 * happens when it fails.
 * @module
 */
import fs from 'node:fs';
import { fcntl, F_SETFD, F_GETFL, F_SETFL, FD_CLOEXEC, O_NONBLOCK } from '../linux/fcntl.js';
import { exitCodeOf, messageOf } from '../core/errors.js';
import { fail } from '../core/fail.js';
import { reportFailure } from './sync.js';
import { handOverFailure } from './handover.js';
import { prepareInitEntry } from './bundle.js';

/**
 * Run a level's container side as a re-executed stage: `init`, or a hidden stage a level adds
 * (`exec-stage`). Every failure before `execve` becomes one line on stderr and Docker's exit code
 * (127 not found, 126 not executable, 125 otherwise, or the error's own).
 * @param title what `ps` shows for it: `calf:[init]`, `calf:[exec]`
 */
export function runInitStage<Config>(init: (config: Config) => never, configJson: string, title = 'calf:[init]'): never {
  process.title = title; // ps shows which stage is which, as runc's runc:[2:INIT]
  try {
    closeInheritedFds();
    blockingStdio();
    init(JSON.parse(configJson) as Config);
  } catch (err) {
    reportFailure(exitCodeOf(err), messageOf(err)); // sync 3, after a handshake: the command never started
    fail(messageOf(err), exitCodeOf(err));
  }
}

/**
 * Mark every fd above stderr close-on-exec. Node's own fds already are, but whatever calf's
 * caller left open (a shell's, a CI runner's) would otherwise reach the container: runc's
 * CVE-2024-21626 was such a leaked fd. The sync socket (fd 3) is closed by the same rule.
 */
function closeInheritedFds(): void {
  for (const name of fs.readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (fd <= 2) continue;
    try {
      fcntl(fd, F_SETFD, FD_CLOEXEC);
    } catch {
      // the directory handle readdirSync just closed: nothing to do
    }
  }
}

/**
 * Put stdin/stdout/stderr back in blocking mode. libuv (Node's I/O layer, and tsx through it)
 * makes a pipe non-blocking when it opens it as a stream; the flag belongs to the pipe, not to
 * the process, so a command that inherits it gets `EAGAIN` ("Resource temporarily unavailable")
 * as soon as its reader falls behind. libuv clears it for the children Node spawns; execve
 * does not.
 */
function blockingStdio(): void {
  for (const fd of [0, 1, 2]) {
    const flags = fcntl(fd, F_GETFL);
    if (flags & O_NONBLOCK) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
}

/**
 * How a monitor was started: by `calf run` (a container that never starts is removed, as `calf
 * run` leaves nothing behind on an error) or by `calf start` (it stays, stopped).
 */
export type MonitorMode = 'run' | 'start';

/**
 * Run a level's monitor as the hidden `monitor` stage: exit with the container's exit code once it
 * has ended. A failure before the container ran is handed over to the `calf run -d` (or `calf
 * start`) waiting for it: one line, Docker's exit code. Its stdout and stderr are /dev/null.
 */
export async function runMonitorStage(monitor: (dir: string, mode: MonitorMode) => Promise<number>, dir: string, mode: MonitorMode): Promise<void> {
  process.title = 'calf:[monitor]'; // ps shows it, as conmon shows itself
  try {
    await prepareInitEntry(); // the monitor runs from the bundle: the init stage's script is this one
    process.exitCode = await monitor(dir, mode);
  } catch (err) {
    handOverFailure(err);
    fail(messageOf(err), exitCodeOf(err));
  }
}
