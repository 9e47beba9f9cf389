/**
 * The engine harness (test/support/podman.ts, containerd.ts) with Debian's runc: podman and
 * containerd run containers from the test images, and once stopped leave nothing on the host:
 * no process, no cgroup, no mount, none of the fixed paths they would write to (their state is
 * the sandbox's). Level 17 points the same harness at calf-runtime.
 *
 * Skipped, with the reason in its name, where podman or containerd is not installed (the
 * workshop VM installs neither by default: `apt-get install podman containerd`).
 */
import { describe, it, expect, afterAll, beforeAll } from '@jest/globals';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { startPodman, type Podman } from '../support/podman.js';
import { startContainerd, type Containerd } from '../support/containerd.js';
import { CLEAN_PATH, type EngineSandbox } from '../support/engine-sandbox.js';
import { cgroupVersion } from '../support/host.js';

const installed = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { PATH: CLEAN_PATH } }).status === 0;
const havePodman = ['podman', 'conmon', 'runc'].every(installed);
const haveContainerd = ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc'].every(installed);

/** Fixed paths the engines write to when not sandboxed, and whatever libpod_parent cgroup podman makes by default. */
const FIXED = ['/var/lib/containers', '/var/lib/cni', '/run/runc', '/run/containerd', '/run/netns', '/opt/containerd', '/dev/shm/libpod_lock', '/etc/cni/net.d', '/sys/fs/cgroup/memory/libpod_parent', '/sys/fs/cgroup/libpod_parent'];

/** What each fixed path holds now: a directory's entries, `['file']`, or null when it does not exist. */
function fixedPaths(): Record<string, string[] | null> {
  return Object.fromEntries(FIXED.map((p) => {
    try {
      return [p, fs.statSync(p).isDirectory() ? fs.readdirSync(p).sort() : ['file']];
    } catch {
      return [p, null];
    }
  }));
}

/** A process's start time (field 22 of /proc/PID/stat), to tell a pid from its reuse. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The host's mount points at or under `dir`. */
function hostMountsUnder(dir: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p === dir || p.startsWith(`${dir}/`));
}

/**
 * The engine's things while a container runs (the positive control: the checks after stop()
 * look for exactly these), then stop() and the proof that none of them is left.
 */
async function expectStopLeavesNothing(sandbox: EngineSandbox, stop: () => Promise<string[]>, before: Record<string, string[] | null>, engineProcess: RegExp): Promise<void> {
  const pids = sandbox.processes().map((pid) => ({ pid, start: startTime(pid), comm: fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() }));
  const cgroups = sandbox.cgroups();
  // while it runs: the engine, a container's sleep, their cgroups, the rootfs mounted in the
  // sandbox's mount table and in none of the host's
  expect(pids.map((p) => p.comm)).toEqual(expect.arrayContaining([expect.stringMatching(engineProcess), 'sleep']));
  expect(cgroups.length).toBeGreaterThan(0);
  expect(sandbox.mounts().filter((m) => m.startsWith(`${sandbox.dir}/`)).length).toBeGreaterThan(0);
  expect(hostMountsUnder(sandbox.dir)).toEqual([]);

  expect(await stop()).toEqual([]);
  expect(pids.filter((p) => p.start !== undefined && startTime(p.pid) === p.start).map((p) => `${p.pid} ${p.comm}`)).toEqual([]);
  expect(cgroups.filter((cg) => fs.existsSync(cg))).toEqual([]);
  expect(fs.existsSync(sandbox.dir)).toBe(false);
  expect(fixedPaths()).toEqual(before);
  expect(await stop()).toEqual([]); // idempotent
}

/** The container's memory limit and pids limit, as it reads them in its own cgroup. */
const LIMITS = cgroupVersion() === 'v2'
  ? 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max'
  : 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max';

(havePodman ? describe : describe.skip)(`podman with Debian's runc, through the harness${havePodman ? '' : ' (skipped: podman, conmon or runc not installed)'}`, () => {
  let p: Podman;
  let before: Record<string, string[] | null>;
  beforeAll(async () => {
    before = fixedPaths();
    p = await startPodman();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('runs busybox echo hi with --rm', async () => {
    const r = await p.podman(['run', '--rm', '--network', 'none', p.image, 'echo', 'hi']);
    expect({ exit: r.exitCode, stdout: r.stdout, stderr: r.stderr }).toEqual({ exit: 0, stdout: 'hi\n', stderr: '' });
  });

  it('runs a detached container: ps, logs, exec, stop (its TERM trap runs), rm', async () => {
    const d = await p.podman(['run', '-d', '--name', 'd1', '--network', 'none', p.image, 'sh', '-c', 'echo started; trap "echo got TERM; exit 3" TERM; while :; do sleep 0.1; done']);
    expect(d.exitCode).toBe(0);
    expect((await p.podman(['ps', '--format', '{{.Names}} {{.Status}}'])).stdout).toMatch(/^d1 Up /m);
    expect((await p.podman(['exec', 'd1', 'sh', '-c', 'echo in exec; exit 7'])).exitCode).toBe(7);
    expect((await p.podman(['stop', '-t', '5', 'd1'])).exitCode).toBe(0);
    expect((await p.podman(['inspect', '--format', '{{.State.ExitCode}}', 'd1'])).stdout.trim()).toBe('3');
    expect((await p.podman(['logs', 'd1'])).stdout).toBe('started\ngot TERM\n');
    expect((await p.podman(['rm', 'd1'])).exitCode).toBe(0);
  });

  it('gives a -t container a terminal', async () => {
    const r = await p.podman(['run', '--rm', '-t', '--network', 'none', p.image, 'tty'], { tty: true });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
  });

  it('attaches the default network (CNI bridge in the sandbox), and --network none leaves only lo', async () => {
    const bridged = await p.podman(['run', '--rm', p.image, 'ip', '-o', '-4', 'addr']);
    expect(bridged.stdout).toMatch(/eth0\s+inet 10\.88\.\d+\.\d+\/16/);
    const none = await p.podman(['run', '--rm', '--network', 'none', p.image, 'ip', '-o', 'link']);
    expect(none.stdout.trim().split('\n').map((l) => l.split(': ')[1])).toEqual(['lo']);
  });

  it('honours --memory and --pids-limit', async () => {
    const r = await p.podman(['run', '--rm', '--network', 'none', '--memory', '64m', '--pids-limit', '50', p.image, 'sh', '-c', LIMITS]);
    expect(r.stdout.trim().split('\n')).toEqual(['67108864', '50']);
  });

  it('stop() ends a container still running and leaves nothing: no process, cgroup, mount or state', async () => {
    expect((await p.podman(['run', '-d', '--network', 'none', p.image, 'sleep', '600'])).exitCode).toBe(0);
    await expectStopLeavesNothing(p.sandbox, p.stop, before, /^conmon$/);
  });
});

(haveContainerd ? describe : describe.skip)(`containerd and ctr with Debian's runc, through the harness${haveContainerd ? '' : ' (skipped: containerd, ctr or runc not installed)'}`, () => {
  let c: Containerd;
  let before: Record<string, string[] | null>;
  beforeAll(async () => {
    before = fixedPaths();
    c = await startContainerd();
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('runs busybox echo hi with --rm, and passes the exit code on', async () => {
    const r = await c.ctr(['run', '--rm', c.image, 'c1', 'echo', 'hi']);
    expect({ exit: r.exitCode, stdout: r.stdout }).toEqual({ exit: 0, stdout: 'hi\n' });
    expect((await c.ctr(['run', '--rm', c.image, 'c2', 'sh', '-c', 'exit 3'])).exitCode).toBe(3);
  });

  it('runs a detached task: exec, kill, delete', async () => {
    expect((await c.ctr(['run', '-d', c.image, 'd1', 'sleep', '600'])).exitCode).toBe(0);
    expect((await c.ctr(['task', 'ls'])).stdout).toMatch(/^d1\s+\d+\s+RUNNING/m);
    expect((await c.ctr(['task', 'exec', '--exec-id', 'e1', 'd1', 'sh', '-c', 'exit 7'])).exitCode).toBe(7);
    expect((await c.ctr(['task', 'kill', '-s', 'KILL', 'd1'])).exitCode).toBe(0);
    // the shim reaps the task and records its exit; delete waits for nothing
    for (let i = 0; i < 100 && !/STOPPED/.test((await c.ctr(['task', 'ls'])).stdout); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await c.ctr(['task', 'delete', 'd1'])).exitCode).toBe(0);
    expect((await c.ctr(['container', 'delete', 'd1'])).exitCode).toBe(0);
  });

  it('gives a -t task a terminal', async () => {
    const r = await c.ctr(['run', '--rm', '-t', c.image, 't1', 'tty'], { tty: true });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
  });

  it('stop() ends a task still running and leaves nothing: no process, cgroup, mount or state', async () => {
    expect((await c.ctr(['run', '-d', c.image, 'd2', 'sleep', '600'])).exitCode).toBe(0);
    await expectStopLeavesNothing(c.sandbox, c.stop, before, /^containerd$/);
  });
});
