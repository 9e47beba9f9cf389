/**
 * Level 06: the command is PID 1 of a PID namespace of its own: it sees only its own processes,
 * the host sees them under host pids, and they all end with it.
 */
import { describe, it, expect } from '@jest/globals';
import fs from 'node:fs';
import { run, calf, expectExit, startContainer } from '../support/target.js';
import { waitFor, childrenOf, pidsInNamespace, holdPidNamespace, type HeldPidNamespace } from '../support/procs.js';
import { waitForOutput } from '../support/background.js';

const hostNamespace = fs.readlinkSync('/proc/self/ns/pid');

/** `pid` and every process below it, children first. */
function tree(pid: number): number[] {
  return [...childrenOf(pid).flatMap(tree), pid];
}

function startTime(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Wait until the running container printed its PID namespace (a line `pid:[…]`), and return it. */
async function namespaceOf(child: ReturnType<typeof run>): Promise<string> {
  const out = await waitForOutput(child, /^pid:\[\d+\]$/m, { what: 'its PID namespace (readlink /proc/self/ns/pid)' });
  return /^(pid:\[\d+\])$/m.exec(out)![1]!;
}

/**
 * Start a container running `script` (which prints its PID namespace when ready) and hand it to
 * `body`. Whatever happens, every process it started is ended afterwards: a container may
 * outlive a failing check, or calf.
 */
async function withContainer(script: string, body: (child: ReturnType<typeof run>, ns: string) => Promise<void>): Promise<void> {
  const child = run(['busybox', 'sh', '-c', script]);
  const seen = new Map<number, string | undefined>(); // pid → start time, so a reused pid is left alone
  const look = () => { for (const pid of tree(child.pid!).slice(0, -1)) if (!seen.has(pid)) seen.set(pid, startTime(pid)); };
  const watch = setInterval(look, 50);
  let held: HeldPidNamespace | undefined;
  try {
    const ns = await namespaceOf(child);
    expect(ns).not.toBe(hostNamespace); // a namespace of its own, or the checks below prove nothing
    // held open while the check looks: once it ends, a namespace another test file makes could get its name
    const members = pidsInNamespace(ns);
    const inside = tree(child.pid!).find((pid) => members.includes(pid));
    if (inside === undefined) throw new Error(`no process below calf is in ${ns}, the PID namespace the container printed`);
    held = holdPidNamespace(inside);
    await body(child, ns);
  } finally {
    held?.release();
    clearInterval(watch);
    look();
    child.kill('SIGKILL');
    for (const [pid, started] of seen) {
      if (started !== undefined && startTime(pid) === started) process.kill(pid, 'SIGKILL');
    }
    await child;
  }
}

describe('06 pid-namespace', () => {
  describe('PID 1', () => {
    it('runs the command as PID 1', async () => {
      const r = await run(['busybox', 'sh', '-c', 'echo $$; cut -d" " -f1 /proc/self/stat']);
      expectExit(r, 0);
      expect(r.stdout.split('\n')[0]).toBe('1');
    });

    it('shows only the container’s processes in /proc', async () => {
      const r = await run(['busybox', 'sh', '-c', 'sleep 30 & ps -o pid,comm; kill $!']);
      expectExit(r, 0);
      const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      // sh, the background sleep (busybox may show it as "exe"), and ps itself: nothing of the host's
      expect(rows).toHaveLength(3);
      expect(rows).toContainEqual(['1', 'sh']);
      expect(rows.map(([, comm]) => comm)).toContain('ps');
    });

    it('keeps calf’s own later children in the host’s PID namespace (the setns back)', async () => {
      const container = await startContainer('busybox', 'readlink /proc/self/ns/pid');
      try {
        // the container is in a namespace of its own (the unshare worked)...
        expect({ container: container.output.trim() === hostNamespace ? 'the host’s' : 'its own' }).toEqual({ container: 'its own' });
        // ...and a process calf starts now (an ip, a cleanup) would be born in the host's, as before:
        // /proc/PID/ns/pid_for_children is the namespace of the children calf's main thread makes
        const forChildren = fs.readlinkSync(`/proc/${container.calfPid}/ns/pid_for_children`);
        if (forChildren !== hostNamespace) {
          throw new Error(`calf's next child would be born in the container's PID namespace (${forChildren}, the container's is ${container.output.trim()}): setns(2) back into the host's after the spawn`);
        }
      } finally {
        expectExit(await container.finish(), 0);
      }
    });
  });

  describe('Seen from the host', () => {
    it('shows the host the container’s processes under host pids, in another PID namespace', async () => {
      await withContainer('sleep 300 & readlink /proc/self/ns/pid; read line; kill $!', async (child, ns) => {
        const pids = await waitFor('both container processes', () => {
          const found = pidsInNamespace(ns);
          return found.length === 2 ? found : undefined;
        });
        // NSpid: the host pid, then the pid inside; the shell is 1 inside, neither is 1 outside
        const nspid = pids.map((pid) => fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^NSpid:\s+(.*)$/m)![1]!.split(/\s+/).map(Number));
        child.stdin!.end('\n');
        expectExit(await child, 0);
        expect(nspid.map(([, inside]) => inside).sort()).toEqual([1, expect.any(Number)]);
        expect(nspid.every(([outside]) => outside! > 1)).toBe(true);
      });
    });

    it('ends every process in the container when PID 1 exits', async () => {
      await withContainer('sleep 300 & readlink /proc/self/ns/pid; read line', async (child, ns) => {
        await waitFor('the background sleep', () => (pidsInNamespace(ns).length === 2 ? true : undefined));
        child.stdin!.end('\n');
        expectExit(await child, 0);
        expect(await waitFor('the namespace to empty', () => (pidsInNamespace(ns).length === 0 ? [] : undefined), 5_000)).toEqual([]);
      });
    });
  });

  describe('Signals', () => {
    for (const [signal, code] of [['SIGTERM', 7], ['SIGINT', 8]] as const) {
      it(`passes ${signal} sent to calf on to the container’s PID 1`, async () => {
        const name = signal.slice(3);
        await withContainer(`trap "echo got ${name} as \\$\\$; exit ${code}" ${name}; readlink /proc/self/ns/pid; while :; do sleep 0.1; done`, async (child) => {
          process.kill(child.pid!, signal); // the signal alone: execa's child.kill('SIGTERM') SIGKILLs calf 5 s later
          const r = await child;
          expect(r.stdout).toContain(`got ${name} as 1\n`);
          expectExit(r, code);
        });
      });
    }

    it('exits 128+9 when the container’s PID 1 is killed by SIGKILL', async () => {
      await withContainer('readlink /proc/self/ns/pid; read line', async (child, ns) => {
        // one look at /proc, not two: the namespace may change between them
        const [pid1] = await waitFor('PID 1', () => { const found = pidsInNamespace(ns); return found.length === 1 ? found : undefined; });
        process.kill(pid1!, 'SIGKILL');
        expectExit(await child, 137);
      });
    });
  });

  describe('Cleaning up after calf is killed', () => {
    it('lets calf cleanup end the container’s processes and remove its directory after a SIGKILL of calf', async () => {
      // `wait`, not `read`: calf's death must not end the container by closing its input
      await withContainer('sleep 300 & readlink /proc/self/ns/pid; wait', async (child, ns) => {
        await waitFor('the background sleep', () => (pidsInNamespace(ns).length === 2 ? true : undefined));
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL'); // calf itself: its exit handlers never run
        await exited; // (not `await child`: the container still holds calf's stdout open)
        expect(pidsInNamespace(ns)).toHaveLength(2); // the container outlived calf
        const r = await calf(['cleanup']);
        expectExit(r, 0); // (what it reports may have been done by a cleanup in a parallel test file)
        expect(await waitFor('the container’s processes to end', () => (pidsInNamespace(ns).length === 0 ? [] : undefined), 5_000)).toEqual([]);
      });
    });
  });
});
