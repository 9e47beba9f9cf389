/**
 * A calf killed with SIGKILL anywhere in a run leaves only what its container's state record
 * names, and `calf cleanup` removes all of it from that record. The same for `calf exec` (level
 * 16): its exec stage killed once it has joined the container's cgroup and namespaces, and
 * calf exec itself killed while its command runs, leave nothing the container's own end (its
 * calf killed, then `calf cleanup`) does not remove. The last solution runs a
 * level-12 container (a network, a cgroup with limits, the security setup) in a network
 * namespace this test made, and dies at five points: before its cgroup exists, while the init
 * stage waits in the handshake, after the parent's host side (veth and cgroup join), after the
 * command's execve (killed from outside, the container running on), and halfway through its
 * teardown list. Each time, the test first sees what was left (the positive control: the
 * container's record and the things it names are there), then runs `calf cleanup`, and checks
 * that cleanup found everything through the container's record (it reports nothing but the
 * container) and that nothing is left: no directory, cgroup, lease, veth or process.
 *
 * From level 15 on a container that stopped is kept until `calf rm` (its exit recorded): killed
 * halfway through its stop moment, cleanup finishes the stop moment and keeps it. And a `-d`
 * container's monitor dies at the same points: before it has said "running", `calf run -d`
 * notices, takes the container back and removes it all by itself (no cleanup); after it, the
 * container runs on without a monitor and cleanup removes it all.
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
  owner: { pid: number };
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

const alive = (pid: number) => {
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
};
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

/** The steps a level-15 record holds (its name from level 15 on), for those of the run's own. */
const ALL = ['removeContainerDir', 'releaseName', 'removeEndpoint', 'removeCgroup'];

describe('calf killed with SIGKILL, then calf cleanup', () => {
  it.each([
    ['before its cgroup exists', 'before-cgroup', ALL],
    ['while the init stage waits in the handshake', 'init-waiting', ALL],
    ['after the host side: veth made, cgroup joined', 'after-host-side', ALL],
    ['after the command’s execve, the container running on', undefined, ALL],
  ])('leaves only what the record names when killed %s, and cleanup removes it through the record', async (_, point, steps) => {
    const leasedBefore = leases();
    const { run } = await killedAt(RUN, point);
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
    expect(removed(r.stdout)).toEqual([`removed container ${id.slice(0, 12)} (${left!.dir})`]);
    expectNothingLeft(id, leasedBefore, command);
  }, 180_000 * slow);

  it('keeps a container killed halfway through its stop moment, stopped; cleanup finishes the stop moment, calf rm the rest', async () => {
    const leasedBefore = leases();
    const { run } = await killedAt([...RUN.slice(0, -3), 'true'], 'during-teardown'); // the container must end for its teardown to start
    const [left, ...more] = containers();
    expect(more).toEqual([]);
    expect(left?.state?.teardown.map((s) => s.step)).toEqual(['removeContainerDir', 'releaseName', 'removeEndpoint']); // removeCgroup ran
    const id = left!.state!.id;
    expect(leases().length).toBe(leasedBefore.length + 1);
    const r = await netns.calf(['cleanup']);
    await run;
    expect({ exitCode: r.exitCode, stderr: r.stderr, stdout: removed(r.stdout) })
      .toEqual({ exitCode: 0, stderr: '', stdout: [`removed stopped container ${id.slice(0, 12)}'s removeEndpoint (${left!.dir})`] });
    expect({ kept: containers().map((c) => c.state?.teardown.map((s) => s.step)), leases: leases(), veths: netns.links().filter((l) => l.startsWith('veth')) })
      .toEqual({ kept: [['removeContainerDir', 'releaseName']], leases: leasedBefore, veths: [] });
    expect((await netns.calf(['rm', id])).exitCode).toBe(0);
    expectNothingLeft(id, leasedBefore, undefined);
  }, 180_000 * slow);

  // Found by the soak (npm run soak -- --seed soak200, run 111): a `--rm` run killed there was
  // kept as a stopped container, which `calf ps -a` then showed and nothing would ever remove.
  it('removes a --rm container killed halfway through its teardown entirely: --rm is never kept', async () => {
    const leasedBefore = leases();
    const { run } = await killedAt(['run', '--rm', ...RUN.slice(1, -3), 'true'], 'during-teardown');
    const [left, ...more] = containers();
    expect(more).toEqual([]);
    expect(left?.state?.teardown.map((s) => s.step)).toEqual(['removeContainerDir', 'releaseName', 'removeEndpoint']); // positive control: it was left
    const id = left!.state!.id;
    const r = await netns.calf(['cleanup']);
    await run;
    expect({ exitCode: r.exitCode, stderr: r.stderr, stdout: removed(r.stdout) })
      .toEqual({ exitCode: 0, stderr: '', stdout: [`removed container ${id.slice(0, 12)} (${left!.dir})`] });
    expectNothingLeft(id, leasedBefore, undefined);
  }, 180_000 * slow);
});

describe('a -d container’s monitor killed with SIGKILL', () => {
  const RUN_D = ['run', '-d', ...RUN.slice(1)];

  it.each([
    ['before its cgroup exists', 'before-cgroup'],
    ['while the init stage waits in the handshake', 'init-waiting'],
    ['once the container runs, before its word to calf run -d', 'before-handover'],
  ])('makes calf run -d exit 125 and remove everything itself when killed %s', async (_, point) => {
    const leasedBefore = leases();
    const r = await netns.calf(RUN_D, { env: { CALF_FAULT: point } });
    expect({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }).toEqual({
      exitCode: 125, stdout: '', stderr: expect.stringMatching(/^calf: the container's monitor \(pid \d+\) ended before the container started\n$/),
    });
    expect(containers()).toEqual([]);
    expectNothingLeft(undefined, leasedBefore, undefined);
  }, 180_000 * slow);

  it('leaves the container running without a monitor when killed after its word, and cleanup removes it through the record', async () => {
    const leasedBefore = leases();
    const r = await netns.calf(RUN_D);
    expect(r.exitCode).toBe(0);
    const [left, ...more] = containers();
    expect(more).toEqual([]);
    const { id, process: first } = left!.state!;
    const monitor = (JSON.parse(fs.readFileSync(path.join(left!.dir, 'state.json'), 'utf8')) as { owner: { pid: number } }).owner.pid;
    process.kill(monitor, 'SIGKILL');
    await waitUntil(() => !alive(monitor));
    // Positive control: the container runs on, with its cgroup and its lease, and the record names them
    expect({ running: alive(first!.pid), cgroups: cgroupDirs(id).length > 0, leased: leases().length, steps: left!.state!.teardown.map((s) => s.step) })
      .toEqual({ running: true, cgroups: true, leased: leasedBefore.length + 1, steps: ALL });
    const cleanup = await netns.calf(['cleanup']);
    expect({ exitCode: cleanup.exitCode, stdout: removed(cleanup.stdout) }).toEqual({ exitCode: 0, stdout: [`removed container ${id.slice(0, 12)} (${left!.dir})`] });
    expectNothingLeft(id, leasedBefore, first!.pid);
  }, 180_000 * slow);
});

/** What `calf cleanup` says it removed, but calf0's bridge: no container owns it, cleanup removes it once none uses it. */
function removed(stdout: string): string[] {
  return stdout.trim().split('\n').filter((l) => l !== 'removed bridge calf0 of network calf0 (no container uses it)');
}

/** No container directory, cgroup, lease, cgroup record or veth of the run is left, and its command is gone. */
function expectNothingLeft(id: string | undefined, leasedBefore: string[], command: number | undefined): void {
  expect({
    containers: containers(), cgroups: id ? cgroupDirs(id) : [], leases: leases(), records: cgroupRecords(),
    veths: netns.links().filter((l) => l.startsWith('veth')), commandAlive: command !== undefined && alive(command),
  }).toEqual({ containers: [], cgroups: [], leases: leasedBefore, records: [], veths: [], commandAlive: false });
}

async function waitUntil(done: () => boolean, ms = 10_000): Promise<void> {
  for (const until = Date.now() + ms * slow; !done();) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A process by pid and start time (this machine reuses pids within minutes: pid_max 32768), or undefined when gone. */
function startOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** The pids in the container's cgroup (its memory hierarchy on v1: any one has them all). */
function cgroupProcs(id: string): number[] {
  const dir = cgroupDirs(id).find((d) => d.includes('/memory/')) ?? cgroupDirs(id)[0];
  return dir ? fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number) : [];
}

describe('calf exec killed with SIGKILL, then its container killed, then calf cleanup', () => {
  it.each([
    ['its exec stage, once it has joined the container’s cgroup and namespaces', 'exec-joined'],
    ['calf exec itself, while its command runs in the container', undefined],
  ])('leaves nothing when %s', async (_, point) => {
    const leasedBefore = leases();
    const { run } = await startedThen(RUN);
    const [left, ...more] = containers();
    expect(more).toEqual([]);
    const id = left!.state!.id;
    const pid1 = left!.state!.process!.pid;
    const pid1Start = startOf(pid1);
    expect(cgroupProcs(id)).toEqual([pid1]); // the container's cgroup holds its PID 1, alone

    const exec = netns.calf(['exec', id.slice(0, 12), 'sh', '-c', 'echo exec-ready; exec sleep 600'], point ? { env: { CALF_FAULT: point } } : {});
    let execed: { pid: number; start: number | undefined } | undefined;
    if (point) {
      const r = await exec;
      expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 137, stdout: '' }); // the stage died before the command
      expect(cgroupProcs(id)).toEqual([pid1]); // nothing of it is left in the container
    } else {
      await new Promise<void>((resolve) => exec.stdout!.on('data', (c: Buffer) => String(c).includes('exec-ready') && resolve()));
      const gone = new Promise<string | null>((resolve) => exec.once('exit', (_code: number | null, signal: string | null) => resolve(signal)));
      process.kill(exec.pid!, 'SIGKILL');
      expect(await gone).toBe('SIGKILL'); // (not `await exec`: the command holds its stdout until the container ends)
      // Positive control: the command runs on in the container, without its calf exec
      const pid = cgroupProcs(id).find((p) => p !== pid1);
      expect(pid).toBeDefined();
      execed = { pid: pid!, start: startOf(pid!) };
      expect(execed.start).toBeDefined();
    }

    process.kill(left!.state!.owner.pid, 'SIGKILL'); // the container's own calf
    const r = await netns.calf(['cleanup']);
    await run;
    await exec; // its stdout closed: the command that held it is gone with the container
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' });
    expect(removed(r.stdout)).toEqual([`removed container ${id.slice(0, 12)} (${left!.dir})`]);
    // A killed PID 1 finishes exiting only once every other process of its PID namespace has been
    // reaped (pid_namespaces(7)). The exec'd command, orphaned by calf exec's death, went to the
    // host's init (a parent outside the namespace), which reaps it when it gets to it.
    const until = Date.now() + 10_000 * slow;
    while (startOf(pid1) === pid1Start && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    expect({
      containers: containers(), cgroups: cgroupDirs(id), leases: leases(), records: cgroupRecords(),
      veths: netns.links().filter((l) => l.startsWith('veth')), pid1Alive: startOf(pid1) === pid1Start, execedAlive: execed !== undefined && startOf(execed.pid) === execed.start,
    }).toEqual({ containers: [], cgroups: [], leases: leasedBefore, records: [], veths: [], pid1Alive: false, execedAlive: false });
  }, 180_000 * slow);
});

/** Start calf run and wait until its command printed `ready`; the returned run ends once the container is gone. */
async function startedThen(args: readonly string[]): Promise<{ run: ReturnType<TestNetns['calf']> }> {
  const child = netns.calf(args);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += String(c);
      if (out.includes('ready\n')) resolve();
    });
    child.once('exit', () => reject(new Error(`calf run ended before its container was ready: ${out}`)));
  });
  return { run: child };
}
