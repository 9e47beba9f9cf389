/**
 * Level 04: each image layer is unpacked once into the layer graph (`<calf root>/layers/<diff_id>`,
 * in overlayfs's format), and a storage driver makes each container's root out of those
 * directories: `overlay` stacks them under a per-container upper directory, `vfs` copies them.
 * Most checks run once per driver (CALF_STORAGE_DRIVER), as the board must pass on both.
 *
 * `it.concurrent`: a check that looks only at its own containers and images, and at layers no
 * other check changes, may run beside the others of its section (jest's maxConcurrency:
 * jest.config.js). The container's own layer is checked alone: its checks compare the host's
 * mount table and run `calf cleanup`, which sees every container of the store.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { run, calf, expectExit, calfRoot, calfEnv, CALF_ARGS, calfNode, repo } from '../support/target.js';
import { waitForOutput } from '../support/background.js';
import { fsTypeAt, mountAt, mountPoints, mountTable } from '../support/mounts.js';
import { childrenOf, comm, waitFor } from '../support/procs.js';
import {
  testImageLayers, diffIds, layerDir, treeHash, identity, xattr, umociImage, bigImage, type MadeImage,
} from '../support/layers.js';

const DRIVERS = ['overlay', 'vfs'] as const;
type Driver = (typeof DRIVERS)[number];
const using = (driver: Driver) => ({ env: { CALF_STORAGE_DRIVER: driver } });
const token = () => randomBytes(6).toString('hex');

/** The container directory whose state record names the calf process `pid` as its owner (level 01's layout). */
function containerDirOf(pid: number): string | undefined {
  const dir = path.join(calfRoot(), 'containers');
  return (fs.existsSync(dir) ? fs.readdirSync(dir) : []).map((d) => path.join(dir, d)).find((d) => {
    try {
      return (JSON.parse(fs.readFileSync(path.join(d, 'state.json'), 'utf8')) as { owner: { pid: number } }).owner.pid === pid;
    } catch {
      return false;
    }
  });
}

/** The overlay options of the `/` line of a mountinfo text: `{ lowerdir, upperdir, workdir }`. */
function overlayOptions(mountinfo: string): Record<string, string> {
  const options = mountAt(mountinfo, '/')?.superOptions ?? [];
  return Object.fromEntries(options.map((o) => [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)]));
}

/** Mount points under the calf root, in the host's mount table. */
const hostMountsUnderRoot = () => mountTable().map((m) => m.split(' ')[0]!).filter((p) => p.startsWith(`${calfRoot()}/`));

/** The image's layers are in the graph: the positive control of checks a level-01 copy would also pass. */
function expectLayers(name: string): void {
  expect(testImageLayers(name).filter((dir) => !fs.existsSync(dir)).map((dir) => `missing layer directory ${dir}`)).toEqual([]);
}

async function load(image: MadeImage): Promise<void> {
  expectExit(await calf(['load', '-i', image.layout]), 0);
}

describe('04 overlay', () => {
  describe('The layer graph', () => {
    it.concurrent('unpacks each layer into layers/<diff_id>, with overlay whiteouts and opaque directories', async () => {
      const r = await run(['layered', 'cat', '/etc/motd'], using('overlay'));
      expectExit(r, 0);
      expect(r.stdout).toBe('layered image, layer 3\n');
      const [base, second, top] = testImageLayers('layered');
      expect(fs.existsSync(path.join(base!, 'bin/busybox'))).toBe(true);
      expect(fs.readFileSync(path.join(second!, 'data/gone.txt'), 'utf8')).toBe('this file is deleted by layer 3\n');
      const whiteout = fs.lstatSync(path.join(top!, 'data/gone.txt'));
      expect({ char: whiteout.isCharacterDevice(), rdev: whiteout.rdev }).toEqual({ char: true, rdev: 0 });
      expect(fs.existsSync(path.join(top!, 'data/.wh.gone.txt'))).toBe(false);
      expect(xattr(path.join(top!, 'data/opaque'), 'trusted.overlay.opaque')).toBe('y');
      expect(fs.readdirSync(path.join(top!, 'data/opaque'))).toEqual(['new.txt']);
    });

    for (const driver of DRIVERS) {
      it.concurrent(`unpacks nothing for a second container of an image (${driver})`, async () => {
        expectExit(await run(['busybox', 'true'], using(driver)), 0);
        const dirs = testImageLayers('busybox');
        const before = dirs.map((d) => `${identity(d)} ${identity(path.join(d, 'bin/busybox'))}`);
        const t = token();
        const r = await run(['busybox', 'echo', t], using(driver));
        expectExit(r, 0);
        expect(r.stdout).toBe(`${t}\n`);
        expect(dirs.map((d) => `${identity(d)} ${identity(path.join(d, 'bin/busybox'))}`)).toEqual(before);
      });
    }

    it.concurrent('shows unpack progress on a terminal, and nothing when stderr is not one', async () => {
      // new images (their first unpack), small: the line is drawn when the unpack starts
      const [a, b] = [bigImage(token(), 4), bigImage(token(), 4)];
      try {
        await load(a);
        await load(b);
        const t = token();
        const command = [calfNode, ...CALF_ARGS(), 'run', a.name, 'echo', t].join(' ');
        // script(1) gives the command a pseudo-terminal as stdin, stdout and stderr.
        const tty = await execa('script', ['-qec', command, '/dev/null'], { cwd: repo, reject: false, env: calfEnv() });
        expect(tty.stdout).toContain(t);
        expect(tty.stdout).toMatch(/Unpacking \d+ layers?/);
        const piped = await run([b.name, 'echo', t]);
        expectExit(piped, 0);
        expect(piped.stdout).toBe(`${t}\n`);
        expect(piped.stderr).toBe('');
        expect(fs.existsSync(layerDir(diffIds(b.layout).at(-1)!))).toBe(true);
      } finally {
        await calf(['rmi', a.name, b.name]);
        a.remove();
        b.remove();
      }
    });
  });

  describe('The overlay mount', () => {
    for (const driver of DRIVERS) {
      it.concurrent(driver === 'overlay' ? 'makes / an overlay of the image’s layers, top layer first' : 'makes / a copy of the image’s layers with vfs', async () => {
        const r = await run(['layered', 'sh', '-c', 'cat /etc/motd; cat /proc/self/mountinfo'], using(driver));
        expectExit(r, 0);
        expect(r.stdout.startsWith('layered image, layer 3\n')).toBe(true);
        const layers = testImageLayers('layered');
        for (const dir of layers) expect(fs.existsSync(dir)).toBe(true);
        if (driver === 'overlay') {
          expect(fsTypeAt(r.stdout, '/')).toBe('overlay');
          expect(overlayOptions(r.stdout).lowerdir).toBe([...layers].reverse().join(':'));
        } else {
          expect(fsTypeAt(r.stdout, '/')).not.toBe('overlay');
          expect(r.stdout).not.toContain(' - overlay ');
        }
      });

      it.concurrent(`keeps the container’s writes out of the layer directories (${driver})`, async () => {
        expectExit(await run(['layered', 'true'], using(driver)), 0);
        const layers = testImageLayers('layered');
        const before = layers.map(treeHash);
        const t = token();
        const script = [
          `echo ${t} > /etc/motd`, `echo ${t} > /bin/new-${t}`, 'rm /data/keep.txt', 'rm -r /data/opaque',
          'chmod 600 /etc/passwd', `mkdir /data/opaque; echo ${t} > /data/opaque/old.txt`,
          'cat /etc/motd; ls /data; cat /data/opaque/old.txt; stat -c %a /etc/passwd',
        ].join('; ');
        const r = await run(['layered', 'sh', '-c', script], using(driver));
        expectExit(r, 0);
        expect(r.stdout).toBe(`${t}\nopaque\n${t}\n600\n`);
        expect(layers.map(treeHash)).toEqual(before);
      });

      it.concurrent(`keeps two containers of one image from seeing each other’s writes (${driver})`, async () => {
        const [ta, tb] = [token(), token()];
        const a = run(['busybox', 'sh', '-c', `echo ${ta} > /shared; echo written; read x; cat /shared`], using(driver));
        try {
          await waitForOutput(a, /written/);
          const b = await run(['busybox', 'sh', '-c', `cat /shared 2>/dev/null || echo none; echo ${tb} > /shared; cat /shared`], using(driver));
          expectExit(b, 0);
          expect(b.stdout).toBe(`none\n${tb}\n`);
        } finally {
          a.stdin!.end('\n');
        }
        const ra = await a;
        expectExit(ra, 0);
        expect(ra.stdout).toBe(`written\n${ta}\n`);
        expectLayers('busybox');
      });
    }
  });

  describe('Whiteouts and opaque directories', () => {
    let umoci: MadeImage;
    beforeAll(async () => {
      umoci = umociImage(token());
      await load(umoci);
    });
    afterAll(async () => {
      await calf(['rmi', umoci.name]);
      umoci.remove();
    });
    const listing = 'ls -a /data; echo --; ls -a /data/opaque; echo --; cat /data/keep.txt';

    for (const driver of DRIVERS) {
      it.concurrent(`hides what the layered test image deletes (${driver})`, async () => {
        const r = await run(['layered', 'sh', '-c', `${listing}; cat /etc/motd`], using(driver));
        expectExit(r, 0);
        expect(r.stdout).toBe('.\n..\nkeep.txt\nopaque\n--\n.\n..\nnew.txt\n--\nthis file survives every layer\nlayered image, layer 3\n');
        const top = testImageLayers('layered').at(-1)!;
        expect(fs.lstatSync(path.join(top, 'data/gone.txt')).isCharacterDevice()).toBe(true);
      });

      it.concurrent(`hides what an image made by umoci deletes (${driver})`, async () => {
        const r = await run([umoci.name, 'sh', '-c', listing], using(driver));
        expectExit(r, 0);
        const keep = fs.readFileSync(path.join(layerDir(diffIds(umoci.layout)[1]!), 'data/keep.txt'), 'utf8');
        expect(r.stdout).toBe(`.\n..\nkeep.txt\nopaque\n--\n.\n..\nnew.txt\n--\n${keep}`);
        const whiteout = fs.lstatSync(path.join(layerDir(diffIds(umoci.layout)[2]!), 'data/gone.txt'));
        expect({ char: whiteout.isCharacterDevice(), rdev: whiteout.rdev }).toEqual({ char: true, rdev: 0 });
        expect(xattr(path.join(layerDir(diffIds(umoci.layout)[3]!), 'data/opaque'), 'trusted.overlay.opaque')).toBe('y');
      });
    }
  });

  describe('The container’s own layer', () => {
    for (const driver of DRIVERS) {
      it(`removes the container’s writable layer when it exits (${driver})`, async () => {
        const t = token();
        // --rm: from level 15 on, as in Docker, a container is kept without it (until calf rm)
        const proc = run(['--rm', 'busybox', 'sh', '-c', `echo ${t} > /f-${t}; cat /proc/self/mountinfo; echo ready; read x`], using(driver));
        let written: string[];
        try {
          const out = await waitForOutput(proc, /ready/);
          const dir = containerDirOf(proc.pid!);
          expect(dir).toBeDefined();
          if (driver === 'overlay') {
            const { upperdir, workdir } = overlayOptions(out);
            expect(fs.readFileSync(path.join(upperdir!, `f-${t}`), 'utf8')).toBe(`${t}\n`);
            expect(fs.existsSync(workdir!)).toBe(true);
            written = [dir!, upperdir!, workdir!];
          } else {
            expect(fs.readFileSync(path.join(dir!, 'rootfs', `f-${t}`), 'utf8')).toBe(`${t}\n`);
            written = [dir!];
          }
        } finally {
          proc.stdin!.end('\n');
        }
        expectExit(await proc, 0);
        expect(written.filter((p) => fs.existsSync(p))).toEqual([]);
        expectLayers('busybox');
      });

      it(`leaves only the layers behind when calf is killed and calf cleanup runs (${driver})`, async () => {
        const mountsBefore = hostMountsUnderRoot();
        const t = token();
        const proc = run(['busybox', 'sh', '-c', `echo ${t} > /f-${t}; echo ready; exec sleep 600`], using(driver));
        let command: number | undefined;
        try {
          const out = await waitForOutput(proc, /ready/);
          command = await waitFor('the container’s command', () => childrenOf(proc.pid!).find((pid) => comm(pid) === 'sleep')); // not esbuild's service (tsx)
          const dir = containerDirOf(proc.pid!);
          expect(dir).toBeDefined();
          const overlay = overlayOptions(fs.readFileSync(`/proc/${command}/mountinfo`, 'utf8'));
          const left = [dir!, ...(driver === 'overlay' ? [overlay.upperdir!, overlay.workdir!] : [])];
          expect(out).toBe('ready\n');
          process.kill(proc.pid!, 'SIGKILL');
          // Not `await proc`: the command still holds calf's stdout open, so the pipe never ends.
          await waitFor('calf to die', () => (proc.exitCode !== null || proc.signalCode !== null ? true : undefined));
          expect(left.filter((p) => !fs.existsSync(p))).toEqual([]); // calf died before it could remove them
          expectExit(await calf(['cleanup']), 0);
          expect(left.filter((p) => fs.existsSync(p))).toEqual([]);
          expect(hostMountsUnderRoot()).toEqual(mountsBefore);
          expect(fs.readdirSync(path.join(calfRoot(), 'layers')).filter((n) => n.startsWith('.'))).toEqual([]);
          for (const layer of testImageLayers('busybox')) expect(fs.existsSync(path.join(layer, 'bin/busybox'))).toBe(true);
        } finally {
          if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, 'SIGKILL');
          if (command && fs.existsSync(`/proc/${command}`)) process.kill(command, 'SIGKILL'); // no PID namespace yet: the command outlives calf
          await proc;
        }
      });
    }

    it('leaves no half-unpacked layer when calf is killed while unpacking and calf cleanup runs', async () => {
      const big = bigImage(token(), 48);
      const layers = path.join(calfRoot(), 'layers');
      try {
        await load(big);
        const proc = run([big.name, 'true'], using('overlay'));
        const temp = await waitFor('a layer being unpacked', () => (fs.existsSync(layers) ? fs.readdirSync(layers).find((n) => n.startsWith('.tmp-')) : undefined) ?? (proc.exitCode === null ? undefined : 'exited'));
        expect(temp).not.toBe('exited');
        process.kill(proc.pid!, 'SIGKILL');
        await proc;
        expect(fs.existsSync(path.join(layers, temp))).toBe(true);
        expectExit(await calf(['cleanup']), 0);
        expect(fs.readdirSync(layers).filter((n) => n.startsWith('.'))).toEqual([]);
        expect(containerDirOf(proc.pid!)).toBeUndefined();
      } finally {
        await calf(['rmi', big.name]);
        big.remove();
      }
    });
  });

  describe('Removing images', () => {
    it.concurrent('removes an image with calf rmi, and the layers only it used', async () => {
      const image = umociImage(token());
      try {
        await load(image);
        expectExit(await run([image.name, 'true']), 0);
        const [base, ...own] = diffIds(image.layout).map(layerDir);
        expect([base, ...own].filter((d) => !fs.existsSync(d!))).toEqual([]);
        const images = await calf(['images']);
        expect(images.stderr).toMatch(/unpacked layers: \d+/);
        const r = await calf(['rmi', image.name]);
        expectExit(r, 0);
        expect(r.stdout).toContain(`Untagged: ${image.name}`);
        expect(own.filter((d) => fs.existsSync(d))).toEqual([]);
        expect(fs.existsSync(base!)).toBe(true); // busybox still uses it
        expect((await calf(['images'])).stdout).not.toContain(image.name.split(':')[0]);
        expectExit(await run(['busybox', 'true']), 0);
        const again = await calf(['rmi', image.name]);
        expectExit(again, 1);
        expect(again.stderr.trim().split('\n')).toHaveLength(1);
      } finally {
        await calf(['rmi', image.name]); // when a check above failed
        image.remove();
      }
    });

    it.concurrent('refuses to remove an image a running container uses', async () => {
      const image = bigImage(token(), 1); // not a second umoci image: the two could share a layer, which rmi rightly keeps
      try {
        await load(image);
        const proc = run([image.name, 'sh', '-c', 'echo ready; read x']);
        try {
          await waitForOutput(proc, /ready/);
          const refused = await calf(['rmi', image.name]);
          expectExit(refused, 1);
          expect(refused.stderr).toMatch(/conflict: .*container/);
        } finally {
          proc.stdin!.end('\n');
        }
        expectExit(await proc, 0);
        expectExit(await calf(['rmi', image.name]), 0);
      } finally {
        await calf(['rmi', image.name]);
        image.remove();
      }
    });
  });

  describe('Choosing a driver', () => {
    it.concurrent('takes the driver from --storage-driver, else from CALF_STORAGE_DRIVER', async () => {
      const mounts = 'grep " / " /proc/self/mountinfo';
      const flagWins = await run(['--storage-driver', 'overlay', 'busybox', 'sh', '-c', mounts], using('vfs'));
      expectExit(flagWins, 0);
      expect(fsTypeAt(flagWins.stdout, '/')).toBe('overlay');
      const vfs = await run(['--storage-driver', 'vfs', 'busybox', 'sh', '-c', mounts], using('overlay'));
      expectExit(vfs, 0);
      expect(mountPoints(vfs.stdout)).toContain('/');
      expect(fsTypeAt(vfs.stdout, '/')).not.toBe('overlay');
      const env = await run(['busybox', 'sh', '-c', mounts], using('vfs'));
      expectExit(env, 0);
      expect(mountPoints(env.stdout)).toContain('/');
      expect(fsTypeAt(env.stdout, '/')).not.toBe('overlay');
    });

    it.concurrent('refuses an unknown driver in one line, with exit code 125', async () => {
      const t = token();
      const good = await run(['--storage-driver', 'vfs', 'busybox', 'echo', t]);
      expectExit(good, 0);
      expect(good.stdout).toBe(`${t}\n`);
      for (const r of [await run(['--storage-driver', `nope${t}`, 'busybox', 'true']), await run(['busybox', 'true'], { env: { CALF_STORAGE_DRIVER: `nope${t}` } })]) {
        expectExit(r, 125);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toContain(`nope${t}`);
      }
    });
  });
});
