/**
 * Level 03: pivot_root makes the image the root mount of the container's namespace and the
 * host's root is detached, so nothing — not even the chroot breakout — can reach it.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { run, expectExit } from '../support/target.js';
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
    it('shows no mount of the host in the container’s mount table', async () => {
      const r = await run(['busybox', 'cat', '/proc/self/mountinfo']);
      const foreign = mountPoints(r.stdout).filter((m) => !CONTAINER_MOUNTS.includes(m) && !m.startsWith('/proc/') && !m.startsWith('/sys/'));
      expect(foreign).toEqual([]);
    });

    it('leaves no directory behind where the old root was', async () => {
      const r = await run(['busybox', 'ls', '-a', '/']);
      expect(r.stdout.split('\n')).not.toContain('.oldroot');
    });
  });

  describe('The breakout, closed', () => {
    const canary = hostCanary();
    afterAll(() => canary.remove());

    it('stops the chroot-cwd breakout from reaching the host', async () => {
      const r = await run(['calf-test', 'breakout', 'cat', canary.path]);
      expect(r.stdout).not.toContain(canary.content);
      expect(r.exitCode).not.toBe(0);
    });
  });
});
