/**
 * openat2(2) and openInRoot (lib/linux/openat2.ts): a path inside a container's rootfs is
 * resolved without leaving it, whatever the image's symlinks and `..` say, and the fd it gives is a
 * mount target that stays where it was resolved (level 14's volumes). Root only (the mount).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as linux from '../../lib/linux/index.js';

let base: string; // the test's own directory: rootfs/ (an image's tree), volume/ (a host directory)
let rootfs: string;
const where = (fd: number) => fs.readlinkSync(`/proc/self/fd/${fd}`);

/** Open `p` in the rootfs, say where the fd points, close it. */
function resolved(p: string, resolve?: number): string {
  const fd = resolve === undefined ? linux.openInRoot(rootfs, p) : linux.openInRoot(rootfs, p, linux.O_PATH, resolve);
  try {
    return where(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The error code `fn` throws (or 'no error'). */
function code(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

beforeAll(() => {
  base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-openat2-')));
  rootfs = path.join(base, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'var/lib'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'etc/hostname'), 'the image’s\n');
  fs.symlinkSync('/etc', path.join(rootfs, 'data')); // the runc CVE's image: /data → /etc
  fs.symlinkSync('../../../../../..', path.join(rootfs, 'var/lib/up')); // a relative way out
  fs.symlinkSync('lib', path.join(rootfs, 'var/inside')); // a harmless relative link
  fs.mkdirSync(path.join(base, 'volume'));
  fs.writeFileSync(path.join(base, 'volume/from-the-volume'), 'volume\n');
});
afterAll(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

describe('openInRoot with RESOLVE_IN_ROOT (the default)', () => {
  it('resolves an absolute symlink inside the rootfs, where a plain path would reach the host', () => {
    expect(fs.realpathSync(path.join(rootfs, 'data'))).toBe('/etc'); // the trap is real
    expect(resolved('/data')).toBe(path.join(rootfs, 'etc'));
  });

  it('keeps .. and a relative symlink that climbs out at the rootfs', () => {
    expect(resolved('/../../../etc')).toBe(path.join(rootfs, 'etc'));
    expect(resolved('var/lib/up/etc')).toBe(path.join(rootfs, 'etc'));
    expect(resolved('/var/inside')).toBe(path.join(rootfs, 'var/lib'));
  });

  it('fails with ENOENT for what the rootfs does not have, without looking at the host', () => {
    expect(fs.existsSync('/etc/passwd')).toBe(true);
    expect(code(() => resolved('/data/passwd'))).toBe('ENOENT');
  });
});

describe('the other resolve flags', () => {
  it('RESOLVE_BENEATH refuses an absolute symlink or a .. above the root with EXDEV, and allows what stays', () => {
    const beneath = linux.RESOLVE_BENEATH | linux.RESOLVE_NO_MAGICLINKS;
    expect(code(() => resolved('/data', beneath))).toBe('EXDEV');
    expect(code(() => resolved('var/lib/up', beneath))).toBe('EXDEV');
    expect(code(() => resolved('../etc', beneath))).toBe('EXDEV');
    expect(resolved('/var/inside', beneath)).toBe(path.join(rootfs, 'var/lib'));
  });

  it('RESOLVE_NO_SYMLINKS refuses any symlink with ELOOP, and allows a path without one', () => {
    expect(code(() => resolved('var/inside', linux.RESOLVE_NO_SYMLINKS))).toBe('ELOOP');
    expect(resolved('etc/hostname', linux.RESOLVE_NO_SYMLINKS)).toBe(path.join(rootfs, 'etc/hostname'));
  });

  it('RESOLVE_NO_MAGICLINKS refuses /proc/self/fd/N with ELOOP, which opens without it', () => {
    const fd = linux.openInRoot(rootfs, 'etc');
    try {
      const magic = `/proc/self/fd/${fd}`;
      const plain = linux.openat2(linux.AT_FDCWD, magic, { flags: linux.O_PATH | linux.O_CLOEXEC });
      expect(where(plain)).toBe(path.join(rootfs, 'etc'));
      fs.closeSync(plain);
      expect(code(() => linux.openat2(linux.AT_FDCWD, magic, { flags: linux.O_PATH | linux.O_CLOEXEC, resolve: linux.RESOLVE_NO_MAGICLINKS }))).toBe('ELOOP');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('says what failed in one line: the call, the root, the path, the flags and the errno', () => {
    expect(() => linux.openInRoot(rootfs, '/data', linux.O_PATH, linux.RESOLVE_BENEATH)).toThrow(
      `openat2(${JSON.stringify(rootfs)}, "data", { flags: O_CLOEXEC|O_PATH, resolve: RESOLVE_BENEATH }): EXDEV (Invalid cross-device link)`);
  });

  it('gives fds that are close-on-exec, as Node’s own', () => {
    const fd = linux.openInRoot(rootfs, 'etc');
    try {
      expect(linux.fcntl(fd, linux.F_GETFD) & linux.FD_CLOEXEC).toBe(linux.FD_CLOEXEC);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('a volume mounted through the fd', () => {
  it('lands on the rootfs’s /etc for an image whose /data is a symlink to /etc, never on the host’s', () => {
    const fd = linux.openInRoot(rootfs, '/data');
    const target = path.join(rootfs, 'etc');
    try {
      linux.mount(path.join(base, 'volume'), `/proc/self/fd/${fd}`, null, linux.MS_BIND);
      try {
        const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]);
        expect(mountinfo).toContain(target);
        expect(fs.readFileSync(path.join(target, 'from-the-volume'), 'utf8')).toBe('volume\n');
        expect(fs.existsSync('/etc/from-the-volume')).toBe(false);
      } finally {
        linux.umount2(target, linux.MNT_DETACH);
      }
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.readFileSync(path.join(target, 'hostname'), 'utf8')).toBe('the image’s\n');
  });
});
