/**
 * A full disk: CALF_ROOT on a small tmpfs this file mounts (and unmounts, however it ends). calf
 * load and calf run on it fail with one line naming ENOSPC and exit 125, whichever write the disk
 * refuses, and leave a store that passes the store check and nothing else behind. Each check
 * runs the last solution (or CALF_TARGET) from outside, as a user would, through bin/calf.cjs.
 *
 * calf pull and calf commit (part 2) write blobs and index.json through the same store
 * functions: their full-disk checks go here, one `it` each, on the same tmpfs.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkStore } from '../../lib/image/check.js';
import { findLeftovers } from '../../lib/runtime/leftovers.js';
import { mount, umount2, MNT_DETACH } from '../../lib/linux/mount.js';
import '../../lib/runtime/cleanup.js'; // registers every kind of leftover calf cleanup knows
import { imagesDir } from '../support/images.js';
import { newSince, snapshot } from '../support/leftovers.js';
import { repo, target } from '../support/target.js';

const SIZE = 8 << 20;
let disk: string;
let root: string;
let mounted = false;

beforeAll(() => {
  disk = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-full-disk-'));
  // nr_inodes bounds the inodes as size bounds the bytes: either can be what runs out.
  mount('calf-full-disk', disk, 'tmpfs', 0, `size=${SIZE},nr_inodes=4000,mode=0755`);
  mounted = true;
});

afterAll(() => {
  if (mounted) umount2(disk, MNT_DETACH);
  fs.rmSync(disk, { recursive: true, force: true });
});

beforeEach(() => {
  for (const name of fs.readdirSync(disk)) fs.rmSync(path.join(disk, name), { recursive: true, force: true });
  root = path.join(disk, 'root');
});

/** The calf under test through the fast entry (its bundle, plain node: a third of tsx's start-up, and this file starts ~30). */
function calf(...args: string[]) {
  return execa(process.execPath, [path.join(repo, 'bin/calf.cjs'), ...args], {
    reject: false, timeout: 60_000, env: { CALF_ROOT: root, CALF_FAST_ENTRY: path.join(target.dir, 'calf.ts'), NODE_NO_WARNINGS: '1' },
  });
}

const busybox = path.join(imagesDir, 'busybox');

/**
 * Take the disk's free space down to `leave` bytes, or its free inodes down to `leave` inodes.
 * @returns how to give it back
 */
function fill(what: 'bytes' | 'inodes', leave: number): () => void {
  const filler = path.join(disk, 'filler');
  fs.mkdirSync(filler);
  const fs0 = fs.statfsSync(disk);
  if (what === 'bytes') {
    const take = fs0.bavail * fs0.bsize - leave;
    if (take > 0) fs.writeFileSync(path.join(filler, 'bytes'), Buffer.alloc(take));
  } else {
    for (let i = 0; fs.statfsSync(disk).ffree > leave; i++) fs.writeFileSync(path.join(filler, String(i)), '');
  }
  return () => fs.rmSync(filler, { recursive: true, force: true });
}

/**
 * What calf left: leftovers calf cleanup would find that were not there before (some kinds, the
 * devices cgroups, are the host's and not the root's: other runs' may be there), and what the
 * store check finds.
 */
function leftBehind(before: readonly string[] = [], stderr = ''): string[] {
  // Devices cgroups (level 12) are found host-wide, by emptiness: another test run's, emptied
  // meanwhile, would show here. Ours are the ones named after an id this run printed.
  const ids = stderr.match(/[0-9a-f]{12,64}/g) ?? [];
  const ours = (what: string): boolean => !what.startsWith('devices cgroup ') || ids.some((id) => path.basename(what).startsWith(id));
  return [...newSince(before, findLeftovers(root).map((l) => l.what)).filter(ours), ...checkStore(root)];
}

/**
 * What the leftover detector found new that is this file's: under the root, a process of the
 * root, or a cgroup named after an id the run printed (cgroups, netns and links are host-wide,
 * and other test runs share the host).
 */
function ours(found: string[], stderr: string): string[] {
  const ids = stderr.match(/[0-9a-f]{12,64}/g) ?? [];
  return found.filter((what) => what.includes(root) || what.startsWith('process ') || (/cgroup /.test(what) && ids.some((id) => what.includes(`/${id}`))));
}

/** The leftovers there are now, for {@link leftBehind}. */
function leftovers(): string[] {
  return findLeftovers(root).map((l) => l.what);
}

/** calf failed as it should on a full disk: 125, one line on stderr naming ENOSPC, nothing on stdout. */
function expectENOSPC(result: { exitCode?: number; stdout: string; stderr: string }): void {
  expect({ exitCode: result.exitCode, stdout: result.stdout, lines: result.stderr.split('\n').filter(Boolean).length, stderr: result.stderr })
    .toEqual({ exitCode: 125, stdout: '', lines: 1, stderr: expect.stringMatching(/^calf: .*ENOSPC/) });
}

describe('a full disk', () => {
  it('calf load fails with one line naming ENOSPC, whatever room is left, and the store stays whole', async () => {
    const lines: string[] = [];
    for (const [what, leave] of [['bytes', 0], ['bytes', 8192], ['bytes', 256 << 10], ['bytes', 1 << 20], ['inodes', 0], ['inodes', 2], ['inodes', 5]] as const) {
      const before = leftovers();
      const release = fill(what, leave);
      const result = await calf('load', '-i', busybox);
      release();
      expectENOSPC(result);
      lines.push(result.stderr.trim());
      expect(leftBehind(before, result.stderr)).toEqual([]);
      expect((await calf('images')).exitCode).toBe(0);
      fs.rmSync(root, { recursive: true, force: true });
    }
    // Positive control: with the room back, the same load succeeds and the store is still whole.
    const before = leftovers();
    const loaded = await calf('load', '-i', busybox);
    expect([loaded.exitCode, loaded.stdout]).toEqual([0, 'Loaded image: busybox:latest']);
    expect(leftBehind(before)).toEqual([]);
    console.log(`calf load on a full disk:\n${lines.join('\n')}`);
  }, 300_000);

  it('calf run with no room to unpack the image fails with one line and leaves no half layer', async () => {
    expect((await calf('load', '-i', busybox)).exitCode).toBe(0);
    const before = snapshot([root]);
    const had = leftovers();
    const release = fill('bytes', 64 << 10);
    const result = await calf('run', 'busybox', 'echo', 'hi');
    release();
    expectENOSPC(result);
    expect(result.stderr).toMatch(/^calf: layer sha256:[0-9a-f]{12}…: ENOSPC/);
    expect(fs.readdirSync(path.join(root, 'layers'))).toEqual([]);
    expect(leftBehind(had, result.stderr)).toEqual([]);
    expect(ours(newSince(before, snapshot([root])), result.stderr)).toEqual([]);
    // Positive control: the same run with the room back.
    const ran = await calf('run', 'busybox', 'echo', 'hi');
    expect([ran.exitCode, ran.stdout, ran.stderr]).toEqual([0, 'hi', '']);
  }, 300_000);

  it('calf run with the image unpacked but no room for the container fails with one line at each step, and leaves nothing', async () => {
    expect((await calf('load', '-i', busybox)).exitCode).toBe(0);
    const first = await calf('run', 'busybox', 'echo', 'hi');
    expect([first.exitCode, first.stdout]).toEqual([0, 'hi']); // the layer is unpacked now
    const before = snapshot([root]);
    const failed: string[] = [];
    // Inodes first, one more each time: each step of making a container (its directory, calf.pid,
    // the image record, upper/, work/, the cgroup record, the overlay mount) meets a full disk in turn.
    for (const [what, leave] of [...Array.from({ length: 14 }, (_, k) => ['inodes', k] as const), ['bytes', 0] as const]) {
      const had = leftovers();
      const release = fill(what, leave);
      const result = await calf('run', 'busybox', 'echo', 'hi');
      release();
      if (result.exitCode === 0) expect([result.stdout, result.stderr]).toEqual(['hi', '']);
      else {
        expectENOSPC(result);
        failed.push(`${leave} ${what} left: ${result.stderr.trim()}`);
      }
      expect(leftBehind(had, result.stderr)).toEqual([]);
      expect(ours(newSince(before, snapshot([root])), result.stderr)).toEqual([]);
    }
    console.log(`calf run on a full disk:\n${failed.join('\n')}`);
    expect(failed.some((line) => line.includes('/upper'))).toBe(true); // the container's upper directory was one of them
    expect(failed.length).toBeGreaterThan(5);
  }, 600_000);
});
