/**
 * lib's volume parts (level 14), in-process: `-v` and `--tmpfs` parsing, mount options, the
 * volume store under a throwaway root, and the init stage's helpers on a rootfs with symlink
 * traps (making mount points and filling a volume never leave it). One mount, of the test's own
 * (mountFlagsOf); level 14's board checks calf's mounts from inside containers.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  parseVolume, parseTmpfs, mountOptions, createVolume, findVolume, listVolumes, removeVolume, makeMountPoint, fillVolume, mountFlagsOf,
} from '../../lib/storage/index.js';
import { mount, umount2, MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY } from '../../lib/linux/mount.js';
import { openInRoot } from '../../lib/linux/openat2.js';

let base: string;
let root: string; // a calf root
let rootfs: string; // an image's tree, with traps

/** The one-line message `fn` throws (or 'no error'). */
function message(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return (err as Error).message;
  }
}

beforeAll(() => {
  base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-volumes-')));
  root = path.join(base, 'root');
  rootfs = path.join(base, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'srv/seed/sub'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'srv/seed/a.txt'), 'a\n');
  fs.symlinkSync('/etc/passwd', path.join(rootfs, 'srv/seed/link')); // copied as a link, never followed
  fs.chownSync(path.join(rootfs, 'srv/seed'), 1000, 1000);
  fs.chmodSync(path.join(rootfs, 'srv/seed'), 0o750);
  fs.symlinkSync('/etc', path.join(rootfs, 'data'));
  fs.symlinkSync('../'.repeat(12), path.join(rootfs, 'up'));
  fs.symlinkSync('/nowhere/at/all', path.join(rootfs, 'dangling'));
});
afterAll(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

describe('parsing -v and --tmpfs', () => {
  it('tells a bind (an absolute source) from a named volume and an anonymous one, with their options', () => {
    expect(parseVolume('/srv/x:/data:ro')).toEqual([{ kind: 'bind', source: '/srv/x', destination: '/data', readonly: true }]);
    expect(parseVolume('db:/var/lib/db/')).toEqual([{ kind: 'volume', name: 'db', destination: '/var/lib/db', readonly: false, copy: true }]);
    expect(parseVolume('db:/d:nocopy,rw', parseVolume('/a'))).toEqual([
      { kind: 'volume', destination: '/a', readonly: false, copy: true },
      { kind: 'volume', name: 'db', destination: '/d', readonly: false, copy: false },
    ]);
  });

  it('refuses, in one line naming the flag, a relative or root destination, .., a bad name or mode', () => {
    expect(message(() => parseVolume('/x:data'))).toBe('-v /x:data: invalid mount path "data": it must be absolute');
    expect(message(() => parseVolume('/x:/'))).toBe('-v /x:/: invalid mount path "/": it cannot be "/"');
    expect(message(() => parseVolume('/x:/a/../../etc'))).toBe('-v /x:/a/../../etc: invalid mount path "/a/../../etc": ".." is not allowed in a container path');
    expect(message(() => parseVolume('./x:/a'))).toContain('-v ./x:/a: "./x" includes invalid characters for a local volume name');
    expect(message(() => parseVolume('/x:/a:rx'))).toBe('-v /x:/a:rx: invalid mode "rx": calf knows ro, rw and nocopy');
    expect(message(() => parseVolume('/x:/a:nocopy'))).toBe('-v /x:/a:nocopy: nocopy is for volumes, and /x is a host path');
    expect(message(() => parseTmpfs('/t:size=1m,suid,bogus'))).toContain('--tmpfs /t:size=1m,suid,bogus: unknown tmpfs option "bogus"');
  });

  it('gives --tmpfs Docker’s defaults, and mount(2) the flags and data, a later option winning', () => {
    const [tmpfs] = parseTmpfs('/run:exec,size=64m');
    expect(tmpfs).toEqual({ destination: '/run', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', 'exec', 'size=64m'] });
    expect(mountOptions(tmpfs!.options)).toEqual({ flags: MS_NOSUID | MS_NODEV, data: 'mode=1777,size=64m' });
    expect(mountOptions(['rbind', 'rprivate', 'ro', 'copy'])).toEqual({ flags: MS_RDONLY, data: '' });
    expect(mountOptions(['noexec'])).toEqual({ flags: MS_NOEXEC, data: '' });
  });
});

describe('the volume store', () => {
  it('makes a volume once, lists and finds it, and removes it only when nobody uses it', () => {
    const made = createVolume('data', {}, root);
    expect(made.created).toBe(true);
    expect(made.volume).toMatchObject({ Name: 'data', Driver: 'local', Mountpoint: path.join(root, 'volumes/data/_data') });
    expect(fs.statSync(made.volume.Mountpoint).isDirectory()).toBe(true);
    expect(createVolume('data', {}, root)).toEqual({ volume: made.volume, created: false });
    const anonymous = createVolume(undefined, { anonymous: true }, root).volume;
    expect(anonymous.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(listVolumes(root).map((v) => v.Name)).toEqual([anonymous.Name, 'data'].sort());
    expect(message(() => removeVolume('data', () => ['abc123def456'], root))).toBe('remove data: volume is in use - [abc123def456]');
    expect(findVolume('data', root)).toBeDefined();
    removeVolume('data', () => [], root);
    expect(fs.existsSync(path.join(root, 'volumes/data'))).toBe(false);
    expect(message(() => removeVolume('data', () => [], root))).toBe('no such volume: data');
  });
});

describe('mount points and filling a volume, inside the rootfs', () => {
  it('makes missing directories where the image’s symlinks lead inside it, never on the host', () => {
    makeMountPoint(rootfs, '/data/calf-made/deeper', 'directory');
    expect(fs.statSync(path.join(rootfs, 'etc/calf-made/deeper')).isDirectory()).toBe(true);
    expect(fs.existsSync('/etc/calf-made')).toBe(false);
    makeMountPoint(rootfs, '/up/tmp/calf-test-volumes-escape/file', 'file');
    expect(fs.statSync(path.join(rootfs, 'tmp/calf-test-volumes-escape/file')).isFile()).toBe(true);
    expect(fs.existsSync('/tmp/calf-test-volumes-escape')).toBe(false);
  });

  it('refuses a mount point that is a symlink to a path the image lacks', () => {
    expect(message(() => makeMountPoint(rootfs, '/dangling', 'directory')))
      .toBe("cannot make the mount point: /dangling is a symlink to a path the container doesn't have");
  });

  it('fills an empty volume with the image’s files, owner and mode; not one in use, nor with nocopy', () => {
    const volume = createVolume('seeded', {}, root).volume.Mountpoint;
    fillVolume(rootfs, { destination: '/srv/seed', type: 'bind', source: volume, options: ['rbind', 'copy'] });
    expect(fs.readdirSync(volume).sort()).toEqual(['a.txt', 'link', 'sub']);
    expect(fs.readlinkSync(path.join(volume, 'link'))).toBe('/etc/passwd');
    expect(fs.statSync(volume)).toMatchObject({ uid: 1000, gid: 1000 });
    expect(fs.statSync(volume).mode & 0o7777).toBe(0o750);
    fs.rmSync(path.join(volume, 'a.txt'));
    fillVolume(rootfs, { destination: '/srv/seed', type: 'bind', source: volume, options: ['rbind', 'copy'] });
    expect(fs.existsSync(path.join(volume, 'a.txt'))).toBe(false); // in use: never filled again
    const fresh = createVolume('fresh', {}, root).volume.Mountpoint;
    fillVolume(rootfs, { destination: '/srv/seed', type: 'bind', source: fresh, options: ['rbind'] });
    fillVolume(rootfs, { destination: '/nothing/here', type: 'bind', source: fresh, options: ['rbind', 'copy'] });
    expect(fs.readdirSync(fresh)).toEqual([]);
  });

  it('fills through the rootfs’s symlinks inside it: a volume on /data gets the image’s /etc, not the host’s', () => {
    fs.writeFileSync(path.join(rootfs, 'etc/hostname'), 'the image’s\n');
    const volume = createVolume('etc', {}, root).volume.Mountpoint;
    fillVolume(rootfs, { destination: '/data', type: 'bind', source: volume, options: ['copy'] });
    expect(fs.readFileSync(path.join(volume, 'hostname'), 'utf8')).toBe('the image’s\n');
    expect(fs.existsSync(path.join(volume, 'passwd'))).toBe(false); // the host's /etc has one
  });
});

describe('mountFlagsOf', () => {
  it('reads the flags of the mount an fd is on, which a remount must repeat, leaving MS_RDONLY to the caller', () => {
    const dir = path.join(base, 'flags');
    fs.mkdirSync(dir);
    mount('tmpfs', dir, 'tmpfs', MS_NOSUID | MS_NODEV | MS_RDONLY, 'size=64k');
    try {
      const fd = openInRoot(dir, '/');
      try {
        expect(mountFlagsOf(fd)).toBe(MS_NOSUID | MS_NODEV);
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      umount2(dir, MNT_DETACH);
    }
  });
});
