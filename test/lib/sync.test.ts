/**
 * The parent↔init handshake (lib/runtime/sync.ts), through a minimal calf that uses it
 * (fixtures/sync-calf.ts): the command starts only after the parent's host-side work, and a
 * failure on either side ends both cleanly.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { repo } from '../support/paths.js';
import { waitFor } from '../support/procs.js';

const fixture = path.join(repo, 'test/lib/fixtures/sync-calf.ts');
let root: string;

function calf(args: string[], fault?: string) {
  return execa(process.execPath, ['--import', 'tsx', fixture, ...args], {
    cwd: repo, reject: false, timeout: 60_000, env: { CALF_ROOT: root, ...(fault ? { CALF_TEST_FAULT: fault } : {}) },
  });
}

/** Processes started with this test's calf root: calf's stages and the commands they became. */
function ourProcesses(): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`CALF_ROOT=${root}`);
    } catch {
      return false;
    }
  });
}

function containerDirs(): string[] {
  const dir = path.join(root, 'containers');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-sync-'));
});
afterAll(() => {
  for (const pid of ourProcesses()) process.kill(pid, 'SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});

describe('the parent↔init handshake', () => {
  it('starts the command only after the parent’s host-side work, in the process the parent saw', async () => {
    const r = await calf(['run', 'x', 'sh', '-c', 'test "$(cat "$SYNC_FILE")" = $$ && echo synced; ls /proc/self/fd']);
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' });
    const [synced, ...fds] = r.stdout.split('\n');
    expect(synced).toBe('synced');
    expect(fds.map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3]); // 3 is ls's own: not the socket
  });

  it('reports an init-stage error before exec with 125 and the syscall’s message, and leaves nothing', async () => {
    const r = await calf(['run', 'x', 'echo', 'never printed'], 'init');
    expect(r.exitCode).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('calf: mount("none", "/nonexistent-calf-sync-test", "tmpfs", 0): ENOENT (No such file or directory)');
    expect({ dirs: containerDirs(), processes: ourProcesses() }).toEqual({ dirs: [], processes: [] });
  });

  it('kills the init stage when the parent fails after it started, and leaves no process or directory', async () => {
    const r = await calf(['run', 'x', 'echo', 'never printed'], 'parent');
    expect(r.exitCode).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('calf: injected failure on the parent side');
    expect({ dirs: containerDirs(), processes: ourProcesses() }).toEqual({ dirs: [], processes: [] });
  });

  it('ends the init stage when calf dies while the init stage waits for it', async () => {
    const child = calf(['run', 'x', 'echo', 'never printed'], 'parent-hangs');
    // the host-side work has begun once the pid file exists: the init stage is waiting for "go"
    const initPid = await waitFor('the init stage to be ready', () => {
      const dir = containerDirs()[0];
      const file = dir && path.join(root, 'containers', dir, 'init.pid');
      return file && fs.existsSync(file) && fs.readFileSync(file, 'utf8') ? Number(fs.readFileSync(file, 'utf8')) : undefined;
    });
    expect(fs.existsSync(`/proc/${initPid}`)).toBe(true);
    child.kill('SIGKILL');
    await child;
    await waitFor('the init stage to exit', () => (ourProcesses().length === 0 ? true : undefined), 10_000);
    const cleanup = await calf(['cleanup']);
    expect(cleanup.exitCode).toBe(0);
    expect(containerDirs()).toEqual([]);
  });
});

describe('an error nothing catches', () => {
  it('is one line, and keeps the command’s exit code, when an exit handler throws', async () => {
    const r = await calf(['run', 'x', 'sh', '-c', 'echo ran; exit 3'], 'exit-handler');
    expect({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }).toEqual({
      exitCode: 3, stdout: 'ran',
      stderr: 'calf: cannot remove cgroup /sys/fs/cgroup/pids/calf/x: EBUSY; `calf cleanup` removes what is left',
    });
    expect(containerDirs()).toEqual([]); // the handler before it ran
  });

  it('is one line and 125 when a callback throws, and the exit handlers still run', async () => {
    // (calf ends at once; the command, orphaned without a PID namespace, holds the pipes a second)
    const r = await calf(['run', 'x', 'sleep', '1'], 'callback');
    expect({ exitCode: r.exitCode, stderr: r.stderr, dirs: containerDirs() }).toEqual({ exitCode: 125, stderr: 'calf: injected failure in a callback', dirs: [] });
  });
});
