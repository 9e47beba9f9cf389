/**
 * Level 02: the container gets a mount namespace of its own, with /proc, /sys and a /dev of
 * its own inside, and nothing of it shows in the host's mount table.
 */
import { describe, it, expect } from '@jest/globals';
import fs from 'node:fs';
import { run, expectExit, startContainer, calfRoot, target } from '../support/target.js';
import { umount2, MNT_DETACH } from '../../lib/linux/mount.js';
import { token } from '../support/canary.js';
import { mountsWithSource, fsTypeAt } from '../support/mounts.js';

describe('02 mount-namespace', () => {
  describe('The mount namespace', () => {
    // Seen from the host (/proc/PID/ns/mnt), so this needs no /proc inside (that is TODO 02.2).
    it('gives the container a mount namespace other than the host’s', async () => {
      const host = fs.readlinkSync('/proc/self/ns/mnt');
      const container = await startContainer('busybox');
      let inside: string;
      try {
        inside = fs.readlinkSync(`/proc/${container.pid}/ns/mnt`);
      } finally {
        expectExit(await container.finish(), 0);
      }
      expect(inside).toMatch(/^mnt:\[\d+\]$/);
      expect(inside).not.toBe(host);
    });
  });

  describe('Mount propagation', () => {
    it('leaves the host’s mount table unchanged while the container runs and after', async () => {
      // The container mounts a tmpfs of its own (busybox mount, as root inside): that mount, like
      // calf's /proc, /sys and /dev, must stay in the container's namespace. Mounting it ourselves
      // means the check needs no other TODO, and a calf that mounts nothing can't pass. Its
      // directory is new, so a calf that runs it on the host shadows nothing there.
      const probe = `calf-probe-${token()}`;
      const dir = `/tmp/${probe}`;
      // only what this run can cause: mounts under the test store, and the probe wherever it lands
      const ours = (m: string) => m.startsWith(`${calfRoot()}/`) || m.endsWith(` ${probe}`);
      const before = mountsWithSource().filter(ours);
      let during: string[] = [];
      let after: string[] = [];
      let inside = '';
      let pid = 0;
      try {
        // from level 12 on, mounting needs --privileged (no CAP_SYS_ADMIN, a seccomp filter)
        const image = target.level >= 12 ? ['--privileged', 'busybox'] : 'busybox';
        const container = await startContainer(image, `mkdir ${dir} && mount -t tmpfs ${probe} ${dir} || exit 99`);
        pid = container.pid;
        try {
          during = mountsWithSource().filter(ours);
          inside = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
        } finally {
          expectExit(await container.finish(), 0);
        }
        after = mountsWithSource().filter(ours);
      } finally {
        removeProbe(probe, dir);
      }
      // the positive control: the container did mount it, in the namespace it runs in
      if (!inside.includes(` ${probe} `)) throw new Error(`the container's own mount table (/proc/${pid}/mountinfo) has no ${probe}: its mount did not happen`);
      const changes = [
        ...difference(during, before).map((m) => `appeared while it ran: ${m}`),
        ...difference(before, during).map((m) => `vanished while it ran: ${m}`),
        ...difference(after, before).map((m) => `still there after it exited: ${m}`),
      ];
      if (changes.length) {
        throw new Error(`the host's mount table changed (${changes.length} mount${changes.length > 1 ? 's' : ''}):\n${changes.slice(0, 8).join('\n')}${changes.length > 8 ? `\n… and ${changes.length - 8} more` : ''}`);
      }
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

/** The mounts in `a` that `b` lacks, counting each repeat (a mount stacked twice is two). */
function difference(a: readonly string[], b: readonly string[]): string[] {
  const left = [...b];
  return a.filter((m) => {
    const i = left.indexOf(m);
    if (i === -1) return true;
    left.splice(i, 1);
    return false;
  });
}

/**
 * Undo what a calf that leaks mounts let the probe do on the host: detach every mount of the
 * probe's tmpfs (found by its unique source name, so nothing else is touched), remove its directory
 * if it was made on the host.
 */
function removeProbe(probe: string, dir: string): void {
  for (let i = 0; i < 10; i++) {
    const points = mountsWithSource().filter((m) => m.endsWith(` tmpfs ${probe}`)).map((m) => m.split(' ')[0]!);
    if (!points.length) break;
    for (const point of points) {
      try {
        umount2(point, MNT_DETACH);
      } catch {
        // a peer's detach took it already
      }
    }
  }
  try {
    fs.rmdirSync(dir); // on the host only when calf ran the command there (no chroot)
  } catch {
    // not there: it was made inside the container
  }
}
