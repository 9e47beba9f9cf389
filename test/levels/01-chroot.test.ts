/**
 * Level 01: the image is unpacked into a container directory and becomes the command's root.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { run, calfRoot, below, expectExit } from '../support/target.js';
import { hostCanary, token } from '../support/canary.js';
import { topLevelNames } from '../support/images.js';

describe('01 chroot', () => {
  const canary = hostCanary();
  afterAll(() => canary.remove());

  describe('chroot', () => {
    it("shows the image's root directory as /", async () => {
      const r = await run(['busybox', 'ls', '-1', '/']);
      expectExit(r, 0);
      // /proc, /sys, /dev may be mount points later, but they are in the image too
      expect(r.stdout.trim().split('\n').sort()).toEqual(topLevelNames('busybox'));
    });

    it('cannot see a file that exists on the host', async () => {
      const r = await run(['busybox', 'cat', canary.path]);
      expect(r.stdout).not.toContain(canary.content);
      expect(r.exitCode).not.toBe(0);
    });

    it('starts the command in / when the image sets no WorkingDir', async () => {
      const r = await run(['busybox', 'pwd']);
      expect(r.stdout).toBe('/\n');
    });
  });

  describe('Image defaults', () => {
    it("runs the image's Cmd in its WorkingDir with its Env when no command is given", async () => {
      const r = await run(['layered']);
      expectExit(r, 0);
      expect(r.stdout).toBe('layered image, layer 3\n');
      const env = await run(['layered', 'sh', '-c', 'echo "$LAYERED $(pwd)"']);
      expect(env.stdout).toBe('3 /data\n');
    });

    it("lets -e override the image's Env", async () => {
      const value = token();
      const r = await run(['-e', `LAYERED=${value}`, 'layered', 'sh', '-c', 'echo $LAYERED']);
      expect(r.stdout).toBe(`${value}\n`);
    });
  });

  describe('Unpacking the image', () => {
    it('applies every layer in order, with whiteouts and opaque directories', async () => {
      const r = await run(['layered', 'sh', '-c', 'ls /data; echo --; ls /data/opaque']);
      expect(r.stdout).toBe('keep.txt\nopaque\n--\nnew.txt\n');
    });

    it('fails with 125 and a clear message for an image it does not have', async () => {
      const name = `no-such-image-${token()}`;
      const calf = run([name, 'true']);
      const r = await calf;
      expectExit(r, 125);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(name);
      expect(containerDirs().filter((d) => ownerOf(d) === calf.pid)).toEqual([]);
    });
  });

  describe('Cleaning up', () => {
    // in /tmp, so a calf that does not chroot yet litters only the host's /tmp, which we clean
    const marker = `/tmp/calf-marker-${token()}`;
    afterAll(() => fs.rmSync(marker, { force: true }));

    it('removes the container directory when the command exits', async () => {
      const r = await run(['busybox', 'touch', marker]);
      expectExit(r, 0);
      const left = containerDirs().filter((d) => fs.existsSync(path.join(d, 'rootfs', marker)));
      expect(left).toEqual([]);
    });
  });

  describe('The chroot breakout', () => {
    let escape: { path: string; content: string; remove(): void };
    beforeAll(() => { escape = hostCanary(); });
    afterAll(() => escape.remove());

    (below(3) ? it : it.skip)('⚠ lets the chroot-cwd breakout reach the host (level 03 closes this hole)', async () => {
      const r = await run(['calf-test', 'breakout', 'cat', escape.path]);
      expect(r.stdout).toBe(`${escape.content}\n`);
    });
  });
});

/** The pid of the calf process that made a container directory (lib/container.ts writes it). */
function ownerOf(dir: string): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(dir, 'calf.pid'), 'utf8'));
  } catch {
    return undefined;
  }
}

function containerDirs(): string[] {
  const dir = path.join(calfRoot(), 'containers');
  return fs.existsSync(dir) ? fs.readdirSync(dir).map((d) => path.join(dir, d)) : [];
}
