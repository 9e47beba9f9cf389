/**
 * Level 03: pivot_root makes the image the root mount of the container's namespace and the
 * host's root is detached, so nothing — not even the chroot breakout — can reach it.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { run, expectExit, startContainer } from '../support/target.js';
import { hostCanary } from '../support/canary.js';
import { mountPoints, fsTypeAt } from '../support/mounts.js';

/** What a container's mount table may hold at this level and later ones. */
const CONTAINER_MOUNTS = ['/', '/proc', '/sys', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue'];

describe('03 pivot-root', () => {
  describe('pivot_root', () => {
    it('makes the container’s / a mount of its own', async () => {
      const r = await run(['busybox', 'cat', '/proc/self/mountinfo']);
      expectExit(r, 0);
      expect(mountPoints(r.stdout)).toContain('/');
      expect(fsTypeAt(r.stdout, '/proc')).toBe('proc');
    });
  });

  describe('Detaching the old root', () => {
    // Seen from the host: nsenter into the container's mount namespace reads its whole mount
    // table. From inside, a chroot hides the host's mounts without removing them.
    it('shows no mount of the host in the container’s mount table', async () => {
      const container = await startContainer('busybox');
      let table: string;
      try {
        table = namespaceMounts(container.pid);
      } finally {
        expectExit(await container.finish(), 0);
      }
      const points = mountPoints(table);
      const foreign = points.filter((m) => !CONTAINER_MOUNTS.includes(m) && !m.startsWith('/proc/') && !m.startsWith('/sys/'));
      if (foreign.length) {
        throw new Error(`the container's mount namespace still holds ${foreign.length} mount${foreign.length > 1 ? 's' : ''} of the host (nsenter --mount=/proc/${container.pid}/ns/mnt … cat /proc/self/mountinfo):\n${foreign.slice(0, 6).join('\n')}${foreign.length > 6 ? '\n…' : ''}`);
      }
      expect(points).toContain('/'); // the control: it is the container's table, with its root
    });

    it('leaves no directory behind where the old root was', async () => {
      const container = await startContainer('busybox', 'ls -a /');
      let root: string;
      try {
        root = fs.readlinkSync(`/proc/${container.pid}/root`);
      } finally {
        expectExit(await container.finish(), 0);
      }
      // Until pivot_root, the host can name the container's root by its host path (a chroot);
      // after it, the root is a mount of another namespace, shown as "/".
      if (root !== '/') throw new Error(`the container's root is still the host directory ${root} (/proc/PID/root): pivot_root has not happened yet (TODO 03.2), so there is no old root to clean up`);
      const listing = container.output.trim().split('\n');
      expect(listing).toEqual(expect.arrayContaining(['bin', 'etc'])); // the control: ls ran in the image
      expect(listing).not.toContain('.oldroot');
    });
  });

  describe('The breakout, closed', () => {
    const canary = hostCanary();
    afterAll(() => canary.remove());

    it('stops the chroot-cwd breakout from reaching the host', async () => {
      const r = await run(['calf-test', 'breakout', 'sh', '-c', `cat ${canary.path}; echo "cat exited $?"`]);
      expectExit(r, 0);
      expect(r.stdout).not.toContain(canary.content);
      // the control: the helper climbed, and cat ran wherever it landed (and found nothing)
      expect(r.stdout).toMatch(/^cat exited [1-9]\d*$/m);
    });
  });
});

/**
 * The whole mount table of the namespace process `pid` is in, read from inside it with nsenter.
 * Its PID namespace too: from level 06 on, the container's /proc shows only its own processes,
 * and `cat` needs to be one of them for /proc/self to exist.
 */
function namespaceMounts(pid: number): string {
  const args = [`--mount=/proc/${pid}/ns/mnt`, `--pid=/proc/${pid}/ns/pid`, 'cat', '/proc/self/mountinfo'];
  try {
    return execFileSync('nsenter', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`nsenter ${args.join(' ')} failed (nsenter is in util-linux): ${(err as Error).message}`);
  }
}
