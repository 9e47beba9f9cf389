/**
 * Level 09: the container runs in a cgroup of its own, `calf/<id>` at the root of each v1
 * hierarchy or of the v2 tree, joined before its command starts, limited by --cpus and
 * --cpu-shares, and removed when it ends. Checked from inside (/proc/self/cgroup) and from the
 * host (the cgroup's own files and usage counter), on whichever version this machine runs.
 */
import fs from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { describe, it, expect } from '@jest/globals';
import { calf, expectExit } from '../support/target.js';
import { waitFor } from '../support/procs.js';
import {
  version, startWaiting, expectCalfCgroup, expectGone, hostDir, hostDirs, procsIn, readCgroupFile, cpuUsageUs,
  cgroupPathOf, killIn, slowAfterGo, MEASURE_MS,
} from '../support/cgroups.js';


describe('09 cpu-cgroup', () => {
  describe('Cgroups, v1 and v2', () => {
    it(`makes calf/<id> at the root of the cgroup ${version === 'v2' ? 'tree' : 'hierarchies'} and runs the container in it`, async () => {
      const w = await startWaiting([]);
      try {
        expectCalfCgroup(w);
        if (version === 'v1') for (const c of ['cpuacct', 'memory', 'pids']) expect(`${c}: ${cgroupPathOf(w.procSelfCgroup, c)}`).toBe(`${c}: ${w.cgPath}`);
        for (const dir of hostDirs(w.cgPath)) expect(procsIn(dir).length).toBeGreaterThan(0);
      } finally {
        expectExit(await w.finish(), 0);
      }
    });

    it('puts it under --cgroup-parent instead, and removes the parent it made', async () => {
      const parent = `calf-parent-${randomBytes(4).toString('hex')}`;
      const w = await startWaiting(['--cgroup-parent', parent]);
      try {
        expectCalfCgroup(w, parent);
        expect(fs.existsSync(hostDir(w.cgPath, 'cpu'))).toBe(true);
      } finally {
        expectExit(await w.finish(), 0);
      }
      expectGone(w.cgPath);
      expect(fs.existsSync(hostDir(`/${parent}`, 'cpu'))).toBe(false);
    });
  });

  describe('Joining the cgroup', () => {
    it('has the container’s first command in the cgroup already, even when calf is slow after releasing it, with nothing of calf’s in it', async () => {
      // calf's parent sleeps half a second right after its "go": a join placed after
      // syncWithInit() then comes long after the command started
      const w = await startWaiting([], undefined, { env: slowAfterGo() });
      try {
        if (!new RegExp('^/calf/[0-9a-f]{64}$').test(w.cgPath)) {
          throw new Error(`the container's first command ran outside its cgroup while calf was slow right after the handshake's "go" (put the pid into the cgroup in syncWithInit's hostSide, before the init stage goes on):\n${w.procSelfCgroup.trim()}`);
        }
        // Only the container's process is in it: calf itself, on the host side, never is.
        const pids = procsIn(hostDir(w.cgPath, 'cpu'));
        expect(pids.length).toBeGreaterThan(0);
        for (const pid of pids) expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain('calf.ts');
      } finally {
        expectExit(await w.finish(), 0);
      }
    });
  });

  describe('CPU quota and shares', () => {
    it('holds a busy loop under --cpus 0.5 to about half a CPU, by the cgroup’s own usage counter', async () => {
      const w = await startWaiting(['--cpus', '0.5'], 'while :; do :; done');
      let used: number;
      try {
        expectCalfCgroup(w);
        const [u0, t0] = [cpuUsageUs(w.cgPath), performance.now()];
        await new Promise((r) => setTimeout(r, MEASURE_MS));
        const [u1, t1] = [cpuUsageUs(w.cgPath), performance.now()];
        used = (u1 - u0) / ((t1 - t0) * 1000); // CPUs used on average: a ratio, never a time limit
      } finally {
        await w.stop(); // the loop never ends by itself
      }
      expect(used).toBeGreaterThan(0.02); // the loop ran, in this cgroup
      expect(used).toBeLessThanOrEqual(0.55);
    });

    it(`writes --cpu-shares as ${version === 'v2' ? 'cpu.weight, converted as runc does' : 'cpu.shares'}`, async () => {
      const shares = randomInt(2, 262145);
      const w = await startWaiting(['--cpu-shares', String(shares)]);
      try {
        expectCalfCgroup(w);
        const weight = 1 + Math.floor(((shares - 2) * 9999) / 262142);
        expect(readCgroupFile(w.cgPath, { v1: 'cpu.shares', v2: 'cpu.weight' })).toBe(String(version === 'v2' ? weight : shares));
      } finally {
        expectExit(await w.finish(), 0);
      }
    });
  });

  describe('Removing the cgroup', () => {
    it('removes the cgroup’s directories when the container ends', async () => {
      const w = await startWaiting([]);
      try {
        expectCalfCgroup(w);
      } finally {
        expectExit(await w.finish(), 0);
      }
      expectGone(w.cgPath);
    });

    it('leaves a killed calf’s cgroup to calf cleanup, which ends its processes and removes it', async () => {
      const w = await startWaiting([], 'exec sleep 600'); // not reading stdin: it outlives calf
      try {
        expectCalfCgroup(w);
        w.calf.kill('SIGKILL'); // (its promise waits for stdout, which the container still holds)
        await waitFor('calf to die', () => (gone(w.calf.pid!) ? true : undefined));
        expect(procsIn(hostDir(w.cgPath, 'cpu')).length).toBeGreaterThan(0); // the container outlived calf
        const r = await calf(['cleanup']);
        expectExit(r, 0); // (its report may be empty: a cleanup in a parallel test file may have come first)
        expectGone(w.cgPath);
      } finally {
        killIn(w.cgPath); // after calf's SIGKILL the container is nobody's child: find it by its cgroup
        await w.stop(); // before it: calf's own children
      }
    });
  });
});

/** Process `pid` has exited (a zombie counts). */
function gone(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
}
