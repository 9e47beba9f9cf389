/**
 * Level 10: --memory, --memory-swap and --pids-limit become the memory and pids controllers'
 * limits (v1 or v2); a container that allocates past its memory is OOM-killed, and calf says
 * so and exits 137; a fork bomb stops at the pids limit. Bad values are refused as Docker does.
 */
import { randomInt } from 'node:crypto';
import { describe, it, expect } from '@jest/globals';
import { run, expectExit, startContainer } from '../support/target.js';
import { version, startWaiting, expectCalfCgroup, readCgroupFile } from '../support/cgroups.js';


const MiB = 1024 * 1024;

describe('10 memory-pids-cgroup', () => {
  describe('Memory limit and the OOM killer', () => {
    it('ends a container that allocates past --memory with 137 and says it was OOM-killed, and says nothing of the kind for a plain kill -9', async () => {
      const ok = await run(['--memory', '32m', 'calf-test', 'memhog', '8']); // positive control: within the limit
      expectExit(ok, 0, 'within the limit (memhog 8)');
      expect(ok.stdout).toContain('touched 8 MB');
      const r = await run(['--memory', '32m', 'calf-test', 'memhog', '256']);
      expect(r.stdout).toContain('touched 8 MB'); // it ran, and was stopped partway
      expect(r.stdout).not.toContain('touched 256 MB');
      expectExit(r, 137, 'past the limit (memhog 256)');
      expect(r.stderr).toMatch(/OOM[- ]kill/i);
      // The same 137 from a SIGKILL sent by the host: the OOM counter says no, and so must calf.
      const killed = await startContainer(['--memory', '32m', 'busybox']);
      process.kill(killed.pid, 'SIGKILL');
      const plain = await killed.finish();
      expectExit(plain, 137, 'killed with kill -9 from the host');
      if (/OOM[- ]kill/i.test(plain.stderr)) {
        throw new Error(`a container killed from the host with SIGKILL, well within --memory, was reported as OOM-killed: read the cgroup's OOM counter, not the exit code:\n${plain.stderr.trim()}`);
      }
    });

    it(`writes --memory and --memory-swap as ${version === 'v2' ? 'memory.max and memory.swap.max (swap alone)' : 'memory.limit_in_bytes and memory.memsw.limit_in_bytes (memory plus swap)'}`, async () => {
      const memory = randomInt(16, 128) * MiB;
      const swap = randomInt(0, 64) * MiB;
      const w = await startWaiting(['--memory', `${memory / MiB}m`, '--memory-swap', `${(memory + swap) / MiB}m`]);
      try {
        expectCalfCgroup(w);
        expect(readCgroupFile(w.cgPath, { v1: 'memory.limit_in_bytes', v2: 'memory.max' })).toBe(String(memory));
        expect(readCgroupFile(w.cgPath, { v1: 'memory.memsw.limit_in_bytes', v2: 'memory.swap.max' })).toBe(String(version === 'v2' ? swap : memory + swap));
      } finally {
        expectExit(await w.finish(), 0);
      }
    });

    it('allows as much swap as memory when --memory-swap is not given, as Docker does', async () => {
      const memory = randomInt(16, 128) * MiB;
      const w = await startWaiting(['--memory', `${memory / MiB}m`]);
      try {
        expectCalfCgroup(w);
        expect(readCgroupFile(w.cgPath, { v1: 'memory.limit_in_bytes', v2: 'memory.max' })).toBe(String(memory));
        expect(readCgroupFile(w.cgPath, { v1: 'memory.memsw.limit_in_bytes', v2: 'memory.swap.max' })).toBe(String(version === 'v2' ? memory : 2 * memory));
      } finally {
        expectExit(await w.finish(), 0);
      }
    });
  });

  describe('Pids limit', () => {
    it('stops a fork bomb at --pids-limit, and the host is fine', async () => {
      const limit = randomInt(20, 60);
      const r = await run(['--pids-limit', String(limit), 'calf-test', 'forkbomb']);
      expectExit(r, 0);
      const forked = Number(/^forked (\d+)$/m.exec(r.stdout)?.[1]);
      // The bomb itself is one of the container's processes: it can make limit - 1 more.
      expect({ forked, stopped: r.stdout.split('\n')[1] }).toEqual({ forked: limit - 1, stopped: 'Resource temporarily unavailable' });
      const after = await run(['busybox', 'echo', 'host still forks']);
      expect(after.stdout).toBe('host still forks\n');
    });

    it('writes --pids-limit N as pids.max, and nothing for 0 or -1 (no limit, as in Docker)', async () => {
      const limit = randomInt(20, 100);
      const limited = await startWaiting(['--pids-limit', String(limit)]); // positive control: a limit is written
      try {
        expectCalfCgroup(limited);
        expect(readCgroupFile(limited.cgPath, { v1: 'pids.max', v2: 'pids.max' })).toBe(String(limit));
      } finally {
        expectExit(await limited.finish(), 0, `--pids-limit ${limit}`);
      }
      for (const none of ['0', '-1']) {
        const w = await startWaiting(['--pids-limit', none], 'cat >/dev/null; sh -c "echo forked"');
        try {
          if (!w.procSelfCgroup.trim()) throw new Error(`--pids-limit ${none}: the container could not even fork its first command (cat /proc/self/cgroup printed nothing): ${none} means no limit, and calf writes nothing for it`);
          expectCalfCgroup(w);
          expect([none, readCgroupFile(w.cgPath, { v1: 'pids.max', v2: 'pids.max' })]).toEqual([none, 'max']);
        } finally {
          const r = await w.finish();
          expectExit(r, 0, `--pids-limit ${none}`);
          expect([none, r.stdout.split('\n').at(-2)]).toEqual([none, 'forked']); // the container can still fork
        }
      }
    });
  });

  describe('Docker’s values', () => {
    it('refuses --memory 12XB and --memory below 6MB with 125 and one line, and leaves nothing behind', async () => {
      const applied = await startWaiting(['--memory', '64m']); // positive control: a good value is applied
      try {
        expect(readCgroupFile(applied.cgPath, { v1: 'memory.limit_in_bytes', v2: 'memory.max' })).toBe(String(64 * MiB));
      } finally {
        expectExit(await applied.finish(), 0);
      }
      const bad = await run(['--memory', '12XB', 'busybox', 'true']);
      expectExit(bad, 125);
      expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/12XB.*invalid size|invalid size.*12XB/)]);
      const small = await run(['--memory', '4m', 'busybox', 'true']);
      expectExit(small, 125);
      expect(small.stderr).toMatch(/minimum memory limit/i);
    });

    it('refuses --memory-swap without --memory, or below it', async () => {
      const fine = await startWaiting(['--memory', '32m', '--memory-swap', '-1']); // positive control: -1 is unlimited swap
      try {
        expect(readCgroupFile(fine.cgPath, { v1: 'memory.limit_in_bytes', v2: 'memory.max' })).toBe(String(32 * MiB));
        expect(readCgroupFile(fine.cgPath, { v1: 'memory.memsw.limit_in_bytes', v2: 'memory.swap.max' })).toMatch(version === 'v2' ? /^max$/ : /^\d{16,}$/);
      } finally {
        expectExit(await fine.finish(), 0);
      }
      const alone = await run(['--memory-swap', '64m', 'busybox', 'true']);
      expectExit(alone, 125);
      expect(alone.stderr).toMatch(/--memory/);
      const below = await run(['--memory', '64m', '--memory-swap', '32m', 'busybox', 'true']);
      expectExit(below, 125);
      expect(below.stderr).toMatch(/memoryswap|memory-swap/i);
    });
  });
});
