/**
 * Level 14: volumes. A host directory bound into the container (`-v HOST:PATH[:ro]`), named
 * volumes under the calf root (`-v NAME:PATH`, `calf volume …`), `--tmpfs` and `--read-only`.
 * Looked at from inside (what the command reads, writes and finds in its mount table) and from
 * the host (the directory's files, the host's own mount table, paths a symlink would lead to).
 * The destinations that try to lead out of the rootfs use the calf-test image's traps
 * (scripts/build-images.ts): `/trap/etc -> /etc`, `/trap/up -> ../../…` (to `/`).
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run, calf, calfRoot, expectExit, startContainer } from '../support/target.js';
import { token } from '../support/canary.js';
import { mount, umount2, MS_BIND, MS_NODEV, MS_NOSUID, MS_SHARED, MNT_DETACH } from '../../lib/linux/mount.js';

const made: string[] = []; // host directories this file made, removed at the end
const volumes: string[] = []; // volumes it named

/** A new host directory with a file `marker` holding a random token. */
function hostDir(): { dir: string; marker: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-vol-'));
  made.push(dir);
  const marker = `marker ${token()}`;
  fs.writeFileSync(path.join(dir, 'marker'), `${marker}\n`);
  return { dir, marker };
}

/** A path on the host that doesn't exist yet (removed at the end if something made it). */
function missingPath(): string {
  const dir = path.join(os.tmpdir(), `calf-test-vol-${token()}`);
  made.push(dir);
  return dir;
}

/** A volume name nothing has used. */
function volumeName(): string {
  const name = `calf-test-${token()}`;
  volumes.push(name);
  return name;
}

/** Where the README says a named volume's files are. */
const volumeData = (name: string) => path.join(calfRoot(), 'volumes', name, '_data');

/** The lines of a mountinfo text that mention one of `needles` (a path, a token). */
const mentioning = (mountinfo: string, needles: string[]) => mountinfo.split('\n').filter((l) => needles.some((n) => l.includes(n)));
const hostMountinfo = () => fs.readFileSync('/proc/self/mountinfo', 'utf8');

afterAll(async () => {
  for (const name of volumes) fs.rmSync(path.join(calfRoot(), 'volumes', name), { recursive: true, force: true });
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

describe('14 volumes', () => {
  describe('Bind mounts', () => {
    it('binds a host directory on the container path: a write inside is on the host after the container is gone, and a missing directory is made', async () => {
      const { dir, marker } = hostDir();
      const missing = missingPath();
      const t = token();
      const r = await run(['-v', `${dir}:/data`, '-v', `${missing}:/made/here`, 'busybox', 'sh', '-c',
        `cat /data/marker; echo ${t} > /data/written; echo ${t} > /made/here/written`]);
      expectExit(r, 0);
      expect(r.stdout).toBe(`${marker}\n`); // the host's file, seen inside
      expect(fs.readFileSync(path.join(dir, 'written'), 'utf8')).toBe(`${t}\n`);
      expect(fs.statSync(missing).isDirectory()).toBe(true);
      expect(fs.readFileSync(path.join(missing, 'written'), 'utf8')).toBe(`${t}\n`);
    });

    it('makes a :ro bind read-only inside (EROFS), keeping its source’s nosuid and nodev, and leaves the host’s files as they were', async () => {
      // the host directory is a nosuid,nodev tmpfs of the test's: a remount that forgot them would drop them
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-vol-'));
      made.push(dir);
      mount('tmpfs', dir, 'tmpfs', MS_NOSUID | MS_NODEV, 'size=1m');
      try {
        const marker = `marker ${token()}`;
        fs.writeFileSync(path.join(dir, 'marker'), `${marker}\n`);
        const r = await run(['-v', `${dir}:/data:ro`, 'busybox', 'sh', '-c',
          'cat /data/marker; echo changed > /data/marker; echo "write $?"; touch /data/new; echo "touch $?"; grep " /data " /proc/self/mountinfo']);
        expectExit(r, 0);
        const [shown, write, touch, mountLine] = r.stdout.trimEnd().split('\n');
        expect([shown, write, touch]).toEqual([marker, 'write 1', 'touch 1']);
        expect(r.stderr).toContain('Read-only file system');
        expect(mountLine?.split(' ')[5]?.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
        expect(fs.readFileSync(path.join(dir, 'marker'), 'utf8')).toBe(`${marker}\n`);
        expect(fs.readdirSync(dir)).toEqual(['marker']);
      } finally {
        umount2(dir, MNT_DETACH);
      }
    });
  });

  describe('Named volumes', () => {
    it('starts a new volume with the image’s files and owner, and carries what one container writes to the next', async () => {
      const data = volumeName();
      const home = volumeName();
      const t = token();
      // layered's /data, as the image shows it: keep.txt and opaque/ (its layer 3 deleted gone.txt and emptied opaque/)
      // --rm here and below: from level 15 on a stopped container is kept until calf rm, and keeps its volumes in use
      const first = await run(['--rm', '-v', `${data}:/data`, '-v', `${home}:/home/calf`, 'layered', 'sh', '-c',
        `ls -A /data /data/opaque; stat -c '%u %a' /home/calf; echo ${t} > /data/mine; rm /data/keep.txt`]);
      expectExit(first, 0);
      expect(first.stdout).toBe('/data:\nkeep.txt\nopaque\n\n/data/opaque:\nnew.txt\n1000 755\n');
      const second = await run(['--rm', '-v', `${data}:/data`, 'layered', 'sh', '-c', 'ls -A /data; cat /data/mine']);
      expectExit(second, 0);
      expect(second.stdout).toBe(`mine\nopaque\n${t}\n`); // a volume in use is never filled again: keep.txt stays deleted
      // on the host: the volume's directory, under the calf root, with the container's file and the image's owner
      expect(fs.readFileSync(path.join(volumeData(data), 'mine'), 'utf8')).toBe(`${t}\n`);
      expect(fs.statSync(volumeData(home)).uid).toBe(1000);
      const [inspect, ls] = await Promise.all([calf(['volume', 'inspect', data]), calf(['volume', 'ls'])]);
      expectExit(inspect, 0);
      expect(JSON.parse(inspect.stdout)).toEqual([expect.objectContaining({ Name: data, Driver: 'local', Mountpoint: volumeData(data) })]);
      expect(ls.stdout).toMatch(new RegExp(`^local\\s+${data}$`, 'm'));
      const rm = await calf(['volume', 'rm', data, home]);
      expectExit(rm, 0);
      expect(rm.stdout).toBe(`${data}\n${home}\n`);
      expect(fs.existsSync(path.dirname(volumeData(data)))).toBe(false);
      expect(fs.existsSync(path.dirname(volumeData(home)))).toBe(false);
    });

    it('refuses calf volume rm of a volume a running container uses, naming it; removes it once the container is gone', async () => {
      const name = volumeName();
      const t = token();
      const container = await startContainer(['--rm', '-v', `${name}:/data`, 'busybox'], `echo ${t} > /data/alive; hostname`);
      let refused;
      try {
        expect(fs.readFileSync(path.join(volumeData(name), 'alive'), 'utf8')).toBe(`${t}\n`); // the container writes into the volume
        refused = await calf(['volume', 'rm', name]);
      } finally {
        expectExit(await container.finish(), 0);
      }
      expectExit(refused, 1);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toContain(name);
      expect(refused.stderr).toContain(container.output.trim()); // its short id (its host name)
      expect(fs.existsSync(path.join(volumeData(name), 'alive'))).toBe(true);
      const removed = await calf(['volume', 'rm', name]);
      expectExit(removed, 0);
      expect(fs.existsSync(volumeData(name))).toBe(false);
    });
  });

  describe('The destination, resolved inside the rootfs', () => {
    it('binds on /trap/etc, a symlink to /etc, over the image’s /etc and never the host’s', async () => {
      const { dir, marker } = hostDir();
      const r = await run(['-v', `${dir}:/trap/etc`, 'calf-test', 'sh', '-c', 'cat /etc/marker /trap/etc/marker; ls /etc']);
      expectExit(r, 0);
      expect(r.stdout).toBe(`${marker}\n${marker}\nmarker\n`); // the container's /etc is the host directory now
      expect(fs.existsSync('/etc/marker')).toBe(false);
      expect(mentioning(hostMountinfo(), [dir])).toEqual([]);
    });

    it('makes a missing mount point under /trap/up (a symlink climbing out with ..) inside the rootfs, never on the host', async () => {
      const { dir, marker } = hostDir();
      const name = `calf-test-vol-${token()}`;
      made.push(path.join('/tmp', name)); // where a runtime that follows the symlink on the host would make it
      const r = await run(['-v', `${dir}:/trap/up/tmp/${name}`, 'calf-test', 'sh', '-c', `cat /tmp/${name}/marker`]);
      expectExit(r, 0);
      expect(r.stdout).toBe(`${marker}\n`);
      expect(fs.existsSync(path.join('/tmp', name))).toBe(false);
    });

    it('resolves a nested destination through a volume’s symlinks inside the rootfs: one container can’t send another’s mount out (CVE-2021-30465)', async () => {
      const shared = volumeName();
      const { dir, marker } = hostDir();
      const name = `calf-test-vol-${token()}`;
      made.push(path.join('/tmp', name));
      const plant = await run(['-v', `${shared}:/v`, 'busybox', 'sh', '-c', `ln -s /etc /v/link; ln -s ${'../'.repeat(16)} /v/up; ls /v`]);
      expectExit(plant, 0);
      expect(plant.stdout).toBe('link\nup\n');
      const victim = await run(['-v', `${shared}:/v`, '-v', `${dir}:/v/link`, '-v', `${dir}:/v/up/tmp/${name}`, 'busybox', 'sh', '-c',
        `cat /etc/marker /tmp/${name}/marker`]);
      expectExit(victim, 0);
      expect(victim.stdout).toBe(`${marker}\n${marker}\n`);
      expect(fs.existsSync('/etc/marker')).toBe(false);
      expect(fs.existsSync(path.join('/tmp', name))).toBe(false);
    });

    it('refuses a container path with .. in one line and 125, making nothing; the same mount without .. works', async () => {
      const missing = missingPath();
      const { dir, marker } = hostDir();
      const [bind, tmpfs, ok] = await Promise.all([
        run(['-v', `${missing}:/../../etc`, 'busybox', 'echo', 'ran']),
        run(['--tmpfs', '/tmp/../etc', 'busybox', 'echo', 'ran']),
        run(['-v', `${dir}:/etc/mine`, 'busybox', 'cat', '/etc/mine/marker']), // control: the flag works where the path is plain
      ]);
      expectExit(ok, 0);
      expect(ok.stdout).toBe(`${marker}\n`);
      for (const r of [bind, tmpfs]) {
        expectExit(r, 125);
        expect(r.stdout).toBe('');
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toContain('..');
      }
      expect(fs.existsSync(missing)).toBe(false);
    });
  });

  describe('tmpfs and a read-only root', () => {
    it('mounts a tmpfs of its own on --tmpfs, with Docker’s options and the size asked for, in no directory of the host', async () => {
      const t = token();
      const container = await startContainer(['--tmpfs', '/scratch:size=1m', 'busybox'],
        `grep ' /scratch ' /proc/self/mountinfo; echo ${t} > /scratch/f-${t}; cat /scratch/f-${t}; dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null; echo "dd $?"`);
      let found: string[];
      try {
        found = findFiles(path.join(calfRoot(), 'containers'), `f-${t}`);
      } finally {
        expectExit(await container.finish(), 0);
      }
      expect(container.output).toMatch(new RegExp(`^[^\\n]* /scratch [^\\n]* - tmpfs [^\\n]*\\bsize=1024k\\b[^\\n]*\\n${t}\\ndd 1\\n$`)); // 2 MB don't fit in 1 MB
      const options = container.output.split(' ')[5]!.split(',');
      expect(options).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev', 'noexec']));
      expect(found).toEqual([]); // not in the container's directory (its upper layer) on the host
    });

    it('makes --read-only’s root refuse writes (EROFS), while its volumes, --tmpfs and /dev/shm take them', async () => {
      const { dir } = hostDir();
      const t = token();
      const r = await run(['--read-only', '--tmpfs', '/tmp', '-v', `${dir}:/data`, 'busybox', 'sh', '-c',
        `touch /x; echo "root $?"; touch /tmp/y; echo "tmp $?"; echo ${t} > /data/z; echo "data $?"; touch /dev/shm/s; echo "shm $?"`]);
      expectExit(r, 0);
      expect(r.stdout).toBe('root 1\ntmp 0\ndata 0\nshm 0\n');
      expect(r.stderr).toContain('Read-only file system');
      expect(fs.readFileSync(path.join(dir, 'z'), 'utf8')).toBe(`${t}\n`);
    });
  });

  describe('Nothing reaches the host', () => {
    it('leaves the host’s mount table as it was while the container runs and after, even for a mount made inside a bind of a shared mount', async () => {
      // The host directory is a shared mount of its own (as much of a systemd host is): a bind of it
      // that were shared too would carry the container's mounts under it back to the host.
      const { dir, marker } = hostDir();
      mount(dir, dir, null, MS_BIND);
      try {
        mount(null, dir, null, MS_SHARED);
        const volume = volumeName();
        const ours = [dir, path.join(calfRoot(), 'volumes'), path.join(calfRoot(), 'containers/')];
        const before = mentioning(hostMountinfo(), ours);
        const container = await startContainer(['--privileged', '-v', `${dir}:/data`, '-v', `${volume}:/vol:ro`, '--tmpfs', '/scratch', 'busybox'],
          'mkdir -p /data/sub && mount -t tmpfs inside /data/sub && echo "mounted $?" && echo x > /data/sub/in-tmpfs && cat /proc/self/mountinfo');
        let during: string[];
        let sub: string[];
        try {
          during = mentioning(hostMountinfo(), ours);
          sub = fs.existsSync(path.join(dir, 'sub')) ? fs.readdirSync(path.join(dir, 'sub')) : ['(no sub: /data is not this directory)'];
        } finally {
          expectExit(await container.finish(), 0);
        }
        // inside: the bind, the volume, the tmpfs, and the mount the container made
        expect(container.output).toContain('mounted 0\n');
        const points = container.output.split('\n').filter((l) => l.includes(' - ')).map((l) => l.split(' ')[4]);
        expect(points).toEqual(expect.arrayContaining(['/data', '/vol', '/scratch', '/data/sub']));
        expect(fs.readFileSync(path.join(dir, 'marker'), 'utf8')).toBe(`${marker}\n`);
        // the host: no new mount anywhere near what the container used, then or now
        expect(during).toEqual(before);
        expect(sub).toEqual([]); // the directory the container made, without the tmpfs it mounted there
        expect(mentioning(hostMountinfo(), ours)).toEqual(before);
      } finally {
        umount2(dir, MNT_DETACH);
      }
    });
  });
});

/** Paths under `dir` whose name is `name` (a bounded walk, not following symlinks). */
function findFiles(dir: string, name: string, depth = 8): string[] {
  if (depth < 0) return [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = path.join(dir, e.name);
    return [...(e.name === name ? [p] : []), ...(e.isDirectory() ? findFiles(p, name, depth - 1) : [])];
  });
}
