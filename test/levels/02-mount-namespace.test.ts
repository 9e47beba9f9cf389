/**
 * Level 02: the container gets a mount namespace of its own, with /proc, /sys and a /dev of
 * its own inside, and nothing of it shows in the host's mount table.
 */
import { describe, it, expect } from '@jest/globals';
import fs from 'node:fs';
import { run, expectExit } from '../support/target.js';
import { mountTable, fsTypeAt } from '../support/mounts.js';

describe('02 mount-namespace', () => {
  describe('The mount namespace', () => {
    it('gives the container a mount namespace other than the host’s', async () => {
      const host = fs.readlinkSync('/proc/self/ns/mnt');
      const r = await run(['busybox', 'readlink', '/proc/self/ns/mnt']);
      expectExit(r, 0);
      expect(r.stdout.trim()).toMatch(/^mnt:\[\d+\]$/);
      expect(r.stdout.trim()).not.toBe(host);
    });
  });

  describe('Mount propagation', () => {
    it('leaves the host’s mount table unchanged while the container runs and after', async () => {
      const before = mountTable();
      const child = run(['busybox', 'sh', '-c', 'echo ready; read line']);
      let during: string[] = [];
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', () => reject(new Error('the container exited before it was ready')));
      });
      during = mountTable();
      child.stdin!.end('\n');
      const r = await child;
      expect(r.stdout).toBe('ready\n');
      const changes = (now: string[]) => ({
        appeared: now.filter((m) => !before.includes(m)),
        vanished: before.filter((m) => !now.includes(m)),
      });
      expect({ whileRunning: changes(during), afterExit: changes(mountTable()) })
        .toEqual({ whileRunning: { appeared: [], vanished: [] }, afterExit: { appeared: [], vanished: [] } });
    });
  });

  describe('/proc, /sys and /dev', () => {
    it('mounts proc, a read-only sysfs, and a tmpfs /dev with devpts and shm', async () => {
      const r = await run(['busybox', 'sh', '-c', 'cat /proc/self/mountinfo; echo x > /sys/calf-test 2>/dev/null && echo sys-writable']);
      const info = r.stdout;
      expect(fsTypeAt(info, '/proc')).toBe('proc');
      expect(fsTypeAt(info, '/sys')).toBe('sysfs');
      expect(fsTypeAt(info, '/dev')).toBe('tmpfs');
      expect(fsTypeAt(info, '/dev/pts')).toBe('devpts');
      expect(fsTypeAt(info, '/dev/shm')).toBe('tmpfs');
      expect(info).not.toContain('sys-writable');
    });

    it('makes /dev/null the character device 1,3, writable by everyone', async () => {
      const r = await run(['busybox', 'sh', '-c', 'stat -c "%F %t,%T %a" /dev/null && echo gone > /dev/null && echo ok']);
      expect(r.stdout).toBe('character special file 1,3 666\nok\n');
    });

    it('has its own /dev: the standard devices, none of the host’s disks', async () => {
      const hostOnly = fs.readdirSync('/dev').filter((d) => /^(sd|vd|nvme|xvd|loop)/.test(d));
      const r = await run(['busybox', 'ls', '/dev']);
      const inside = r.stdout.trim().split('\n');
      expect(inside).toEqual(expect.arrayContaining(['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'ptmx']));
      expect(inside.filter((d) => hostOnly.includes(d))).toEqual([]);
    });

    it('gives the container working random and zero devices', async () => {
      const r = await run(['busybox', 'sh', '-c', 'head -c 16 /dev/urandom | wc -c; head -c 4 /dev/zero | od -An -tx1']);
      expect(r.stdout.replace(/\s+/g, ' ').trim()).toBe('16 00 00 00 00');
    });
  });
});
