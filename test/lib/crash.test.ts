/**
 * A calf killed with SIGKILL anywhere in a run leaves only what its container's state record
 * names, and `calf cleanup` removes all of it from that record. The last solution runs a
 * level-12 container (a network, a cgroup with limits, the security setup) in a network
 * namespace this test made, and dies at five points: before its cgroup exists, while the init
 * stage waits in the handshake, after the parent's host side (veth and cgroup join), after the
 * command's execve (killed from outside, the container running on), and halfway through its
 * teardown list. Each time, the test first sees what was left (the positive control: the
 * container's record and the things it names are there), then runs `calf cleanup`, and checks
 * that cleanup found everything through the container's record (it reports nothing but the
 * container) and that nothing is left: no directory, cgroup, lease, veth or process.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { prepareStore, removeStore } from '../support/store.js';
import { slow } from '../support/host.js';
import type { TestNetns } from '../support/netns.js';

let root: string;
let netns: TestNetns;

beforeAll(async () => {
  root = await prepareStore();
  process.env.CALF_ROOT = root; // test/support/netns.ts runs calf with it
  const { createTestNetns } = await import('../support/netns.js');
  netns = await createTestNetns();
}, 120_000);

afterAll(() => {
  netns?.remove();
  if (root) expect(removeStore(root)).toEqual([]);
});

interface State {
  id: string;
  process: { pid: number } | null;
  teardown: { step: string; args: unknown[] }[];
}

/** The container directories under the root, with their records. */
function containers(): { dir: string; state?: State }[] {
  const dir = path.join(root, 'containers');
  return fs.readdirSync(dir).map((name) => {
    const full = path.join(dir, name);
    try {
      return { dir: full, state: JSON.parse(fs.readFileSync(path.join(full, 'state.json'), 'utf8')) as State };
    } catch {
      return { dir: full };
    }
  });
}

/** Every directory of container `id`'s cgroup that exists, in any hierarchy. */
function cgroupDirs(id: string): string[] {
  const roots = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? ['/sys/fs/cgroup']
    : fs.readdirSync('/sys/fs/cgroup').map((h) => path.join('/sys/fs/cgroup', h));
  return roots.map((r) => path.join(r, 'calf', id)).filter((d) => fs.existsSync(d));
}

/** The cgroup records under the root (lib/cgroup/cgroup.ts writes one per cgroup it makes). */
function cgroupRecords(): string[] {
  const dir = path.join(root, 'cgroups');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/** The address leases of network calf0 under the root. */
function leases(): string[] {
  const dir = path.join(root, 'networks/calf0/leases');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
const RUN = ['run', '--network', 'calf0', '--memory', '64m', '--pids-limit', '50', 'busybox', 'sh', '-c', 'echo ready; exec sleep 600'];

/**
 * Start calf with CALF_FAULT (or none), and see it killed: by itself at the fault point, or from
 * outside once the command printed `ready`. Resolves when calf is gone; the returned run ends
 * once whatever of the container holds its stdout is gone too (after cleanup).
 */
async function killedAt(args: readonly string[], point: string | undefined): Promise<{ run: ReturnType<TestNetns['calf']> }> {
  const child = netns.calf(args, point ? { env: { CALF_FAULT: point } } : {});
  const exit = new Promise<string | null>((resolve) => child.once('exit', (_code: number | null, signal: string | null) => resolve(signal)));
  if (!point) {
    let out = '';
    await Promise.race([exit, new Promise<void>((resolve) => child.stdout!.on('data', (c: Buffer) => {
      out += String(c);
      if (out.includes('ready\n')) resolve();
    }))]);
    expect(out).toBe('ready\n');
    process.kill(child.pid!, 'SIGKILL');
  }
  expect(await exit).toBe('SIGKILL');
  return { run: child }; // not the run itself: an async function would wait for it (its stdout is the container's)
}

describe('calf killed with SIGKILL, then calf cleanup', () => {
  it.each([
    ['before its cgroup exists', 'before-cgroup', ['removeContainerDir', 'removeEndpoint', 'removeCgroup']],
    ['while the init stage waits in the handshake', 'init-waiting', ['removeContainerDir', 'removeEndpoint', 'removeCgroup']],
    ['after the host side: veth made, cgroup joined', 'after-host-side', ['removeContainerDir', 'removeEndpoint', 'removeCgroup']],
    ['after the command’s execve, the container running on', undefined, ['removeContainerDir', 'removeEndpoint', 'removeCgroup']],
    ['halfway through its teardown list', 'during-teardown', ['removeContainerDir', 'removeEndpoint']],
  ])('leaves only what the record names when killed %s, and cleanup removes it through the record', async (_, point, steps) => {
    const leasedBefore = leases();
    // the container must end for its teardown to start: then a command that exits at once
    const { run } = await killedAt(point === 'during-teardown' ? [...RUN.slice(0, -3), 'true'] : RUN, point);
    // Positive control: what the killed calf left, as its record names it
    const [left, ...more] = containers();
    expect(more).toEqual([]);
    expect(left?.state?.teardown.map((s) => s.step)).toEqual(steps);
    const id = left!.state!.id;
    expect(leases().length).toBe(leasedBefore.length + 1);
    const command = left!.state!.process?.pid;
    if (!point) expect(alive(command!)).toBe(true); // the container runs on without its calf
    if (point === 'after-host-side' || !point) expect(cgroupDirs(id).length).toBeGreaterThan(0);

    const r = await netns.calf(['cleanup']);
    await run; // its stdout and stderr closed: nothing of the container holds them any more
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' });
    // everything went through the container's record: cleanup names nothing else (but calf0's
    // bridge, which no container owns, and which cleanup removes once none uses it)
    const removed = r.stdout.trim().split('\n').filter((l) => l !== 'removed bridge calf0 of network calf0 (no container uses it)');
    expect(removed).toEqual([`removed container ${id.slice(0, 12)} (${left!.dir})`]);
    expect({
      containers: containers(), cgroups: cgroupDirs(id), leases: leases(), records: cgroupRecords(),
      veths: netns.links().filter((l) => l.startsWith('veth')), commandAlive: command !== undefined && alive(command),
    }).toEqual({ containers: [], cgroups: [], leases: leasedBefore, records: [], veths: [], commandAlive: false });
  }, 180_000 * slow);
});
