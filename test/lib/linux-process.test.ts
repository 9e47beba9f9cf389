/**
 * The process calls of lib/linux/ that a monitor and an OCI runtime need (levels 15–17): a child
 * subreaper that reaps adopted orphans next to libuv, sessions, signals by pid and by pidfd,
 * waiting without stealing, the exec FIFO, close_range. What jest's worker must not do to itself
 * runs in test/lib/fixtures/process-probe.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import * as linux from '../../lib/linux/index.js';
import { repo } from '../support/paths.js';
import { waitFor } from '../support/procs.js';

let dir: string;
const started: number[] = []; // every process a test started, killed at the end whatever happened
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-process-'));
});
afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

async function probe(...args: string[]): Promise<Record<string, unknown>> {
  const r = await execa(process.execPath, ['--import', 'tsx', path.join(repo, 'test/lib/fixtures/process-probe.ts'), ...args], { cwd: repo, reject: false, timeout: 60_000 });
  if (r.exitCode !== 0) throw new Error(`process-probe ${args.join(' ')} ended ${r.exitCode ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const exitOf = (child: ReturnType<typeof spawn>) => new Promise<{ code: number | null; signal: string | null }>((resolve) => {
  child.on('exit', (code, signal) => resolve({ code, signal }));
});

/** The error code `fn` throws (or 'no error'). */
function code(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('a child subreaper in Node', () => {
  it('adopts an orphan and reaps it, while Node’s own children keep their exit statuses for libuv', async () => {
    const r = await probe('subreaper', path.join(dir, 'orphan.pid'));
    expect({ before: r.before, after: r.after }).toEqual({ before: 0, after: 1 });
    expect(r.adoptedBy).toBe(r.self); // PR_SET_CHILD_SUBREAPER at work: not init
    expect(r.reaped).toEqual([{ pid: r.orphan, exited: true, code: 0 }]); // only the orphan
    expect(r.nodeZombiesLeft).toBe(true); // Node's three zombies were left alone…
    expect(r.nodeExits).toEqual([{ code: 7, signal: null }, { code: null, signal: 'SIGTERM' }, { code: 0, signal: null }]); // …and libuv got them
    expect({ secondExit: r.secondExit, secondOrphanReaped: r.secondOrphanReaped }).toEqual({ secondExit: { code: 0, signal: null }, secondOrphanReaped: true });
  });

  it('waits for one pid by number, and says when it has nothing yet (WNOHANG) or no such child (ECHILD)', async () => {
    const child = spawn('sleep', ['30']);
    started.push(child.pid!);
    const exit = exitOf(child);
    expect(linux.waitpid(child.pid!, linux.WNOHANG)).toEqual({ pid: 0, status: 0 }); // running: nothing taken
    child.kill('SIGKILL');
    expect(await exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(code(() => linux.waitpid(1, linux.WNOHANG))).toBe('ECHILD'); // init is nobody's child here
    expect(() => linux.waitpid(1, linux.WNOHANG)).toThrow('waitpid(1, WNOHANG): ECHILD (No child processes)');
  });
});

describe('sessions and process groups', () => {
  it('setsid makes a session and group of one with no terminal; a second setsid fails with EPERM', async () => {
    const r = await probe('session');
    expect(r.leaderBefore).toBe(false);
    expect({ sid: r.sid, getsid: r.getsid, pgid: r.pgid, again: r.again }).toEqual({ sid: r.pid, getsid: r.pid, pgid: r.pid, again: 'EPERM' });
    expect(r.ppid).toBe(process.pid);
  });

  it('setpgid(0, 0) makes a group of its own, whose leader setsid then refuses (EPERM)', async () => {
    const r = await probe('pgid');
    expect({ pgid: r.pgid, setsid: r.setsid }).toEqual({ pgid: r.pid, setsid: 'EPERM' });
  });
});

describe('signals', () => {
  it('kill() signals a process, and names an absent one ESRCH with the signal’s name', async () => {
    const child = spawn('sleep', ['30']);
    started.push(child.pid!);
    const exit = exitOf(child);
    linux.kill(child.pid!, os.constants.signals.SIGTERM);
    expect(await exit).toEqual({ code: null, signal: 'SIGTERM' });
    // a pid beyond pid_max: no process can have it
    const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    expect(() => linux.kill(pidMax + 1, os.constants.signals.SIGKILL)).toThrow(`kill(${pidMax + 1}, SIGKILL): ESRCH (No such process)`);
  });

  it('a pidfd signals its process, lets waitid(P_PIDFD, WNOWAIT) see the end without taking it from libuv, and refuses once it is gone', async () => {
    const child = spawn('sleep', ['30']);
    started.push(child.pid!);
    const exit = exitOf(child);
    const pidfd = linux.pidfd_open(child.pid!);
    try {
      expect(linux.fcntl(pidfd, linux.F_GETFD) & linux.FD_CLOEXEC).toBe(linux.FD_CLOEXEC);
      linux.pidfd_send_signal(pidfd, os.constants.signals.SIGKILL);
      // synchronous: libuv cannot reap in between; WNOWAIT leaves the zombie for it
      const info = linux.waitid(linux.P_PIDFD, pidfd, linux.WEXITED | linux.WNOWAIT);
      expect(info).toEqual({ si_pid: child.pid, si_uid: 0, si_code: linux.CLD_KILLED, si_status: os.constants.signals.SIGKILL });
      expect(await exit).toEqual({ code: null, signal: 'SIGKILL' });
      expect(code(() => linux.pidfd_send_signal(pidfd, os.constants.signals.SIGKILL))).toBe('ESRCH');
    } finally {
      fs.closeSync(pidfd);
    }
  });
});

describe('the exec FIFO (runc’s create/start)', () => {
  it('blocks the writer’s open until start opens the other end, then passes the bytes', async () => {
    const fifo = path.join(dir, 'exec.fifo');
    linux.mkfifo(fifo, 0o600);
    expect(fs.statSync(fifo).isFIFO()).toBe(true);
    expect((fs.statSync(fifo).mode & 0o777).toString(8)).toBe('600');
    const init = spawn('sh', ['-c', `echo started > ${fifo}; echo exec`], { stdio: ['ignore', 'pipe', 'inherit'] });
    started.push(init.pid!);
    let out = '';
    init.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exit = exitOf(init);
    // "created": the init side waits in the open (the kernel's wait_for_partner), the command has not run
    await waitFor('the writer to wait in open', () => (fs.readFileSync(`/proc/${init.pid}/wchan`, 'utf8') === 'wait_for_partner' ? true : undefined));
    expect(out).toBe('');
    // "start": open the other end (blocking is fine: the writer is there)
    const fd = fs.openSync(fifo, 'r');
    try {
      expect(fs.readFileSync(fd, 'utf8')).toBe('started\n');
    } finally {
      fs.closeSync(fd);
    }
    expect(await exit).toEqual({ code: 0, signal: null });
    expect(out).toBe('exec\n');
    expect(() => linux.mkfifo(fifo, 0o600)).toThrow(`mkfifo(${JSON.stringify(fifo)}, 0600): EEXIST (File exists)`);
  });
});

describe('file descriptors', () => {
  it('dup2 gives a copy without FD_CLOEXEC, and close_range(CLOSE_RANGE_CLOEXEC) puts it back', () => {
    const fd = fs.openSync(path.join(dir, 'f'), 'w');
    const copy = linux.dup2(fd, 200);
    try {
      expect(copy).toBe(200);
      expect(linux.fcntl(copy, linux.F_GETFD) & linux.FD_CLOEXEC).toBe(0);
      linux.close_range(200, 200, linux.CLOSE_RANGE_CLOEXEC);
      expect(linux.fcntl(copy, linux.F_GETFD) & linux.FD_CLOEXEC).toBe(linux.FD_CLOEXEC);
    } finally {
      fs.closeSync(copy);
      fs.closeSync(fd);
    }
  });
});
