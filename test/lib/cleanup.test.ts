/**
 * Cleanup survives any mount table a half-done level can leave (issue 7, defect 1): a container
 * that forgot MS_PRIVATE propagates its bind mount, /proc, /sys and /dev back into a shared
 * containers/ mount, twice over, and stacks or hides mounts under each other. This test makes
 * that mess on purpose, under a temp dir of its own, and proves that `calf cleanup`, the exit
 * path's teardown list and the board's removeStore all end with nothing mounted and nothing
 * left, without a stack trace. Everything it mounts is under its own temp dir, detached in afterAll.
 */
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { execa } from 'execa';
import { LEVELS, levelDir } from '../../ladder/ladder.js';
import { repo } from '../support/paths.js';
import { mountPoints } from '../support/mounts.js';
import { removeStore } from '../support/store.js';
import { mount, umount2, MS_BIND, MS_SHARED, MNT_DETACH } from '../../lib/linux/mount.js';
import { runTeardown } from '../../lib/runtime/teardown.js';

const calfTs = path.join(repo, levelDir(LEVELS.at(-1)!, 'solutions'), 'calf.ts');

/** Mount points at or under `dir` in this process's table, read without lib's helpers. */
function mountedUnder(dir: string): string[] {
  return mountPoints(fs.readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** A pid that belongs to no process: the calf that made the container is gone. */
function deadPid(): number {
  return spawnSync('true').pid!;
}

let root: string;
let containers: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-mess-'));
  containers = path.join(root, 'containers');
  fs.mkdirSync(containers);
  // as the tests' store does (and systemd does for /): containers/ is a shared mount
  mount(containers, containers, null, MS_BIND);
  mount(null, containers, null, MS_SHARED);
});

afterEach(() => {
  // Only what is under our own temp dir, shallowest first, as often as it takes.
  for (let i = 0; i < 50 && mountedUnder(root).length; i++) {
    for (const point of mountedUnder(root)) {
      try {
        umount2(point, MNT_DETACH);
      } catch {
        // gone with its parent or a peer
      }
    }
  }
  if (!mountedUnder(root).length) fs.rmSync(root, { recursive: true, force: true });
});

/**
 * A container directory as a level-03 attempt without MS_PRIVATE leaves it, made the way calf's
 * init stage makes it (a mount namespace whose mounts propagate back), plus more: a tmpfs stacked
 * twice on one point, a mount hidden under another, a peer-group bind that receives copies.
 */
function makeMess(): string {
  const dir = path.join(containers, Math.random().toString(16).slice(2, 14).padEnd(12, '0'));
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['proc', 'sys', 'dev', 'hidden/deep', 'stack', 'peer']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  // its state record, as createContainer writes it: a calf that is gone, and the one teardown step level 03 registers
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({
    id: path.basename(dir).padEnd(64, '0'), name: null, image: null, owner: { pid: deadPid(), startTime: 1 }, process: null,
    status: 'running', created: new Date().toISOString(), started: null, finished: null, exitCode: null,
    teardown: [{ step: 'removeContainerDir', args: [dir] }],
  }));
  const script = [
    `mount --bind ${rootfs} ${rootfs}`,
    `mount -t proc proc ${rootfs}/proc`,
    `mount -t sysfs -o ro sysfs ${rootfs}/sys`,
    `mount -t tmpfs tmpfs ${rootfs}/dev`,
    `mkdir ${rootfs}/dev/shm`,
    `mount -t tmpfs shm ${rootfs}/dev/shm`,
    `mount -t tmpfs one ${rootfs}/stack`,
    `mount -t tmpfs two ${rootfs}/stack`,
    `mount -t tmpfs deep ${rootfs}/hidden/deep`,
    `mount -t tmpfs cover ${rootfs}/hidden`,
    `mount --bind ${rootfs}/dev ${rootfs}/peer`,
    `mkdir ${rootfs}/dev/late`,
    `mount -t tmpfs late ${rootfs}/dev/late`,
  ].join(' && ');
  // `--propagation unchanged`: the namespace keeps the shared peer groups, as calf's init stage
  // does without mount(null, '/', null, MS_REC | MS_PRIVATE)
  execFileSync('unshare', ['--mount', '--propagation', 'unchanged', 'sh', '-ec', script], { stdio: 'pipe' });
  return dir;
}

describe('cleaning up a mount mess', () => {
  it('leaves a mess worth cleaning: mounts propagated back, stacked and hidden', () => {
    const dir = makeMess();
    const points = mountedUnder(dir);
    expect(points.length).toBeGreaterThanOrEqual(10);
    expect(points.filter((p) => p === path.join(dir, 'rootfs/proc')).length).toBeGreaterThanOrEqual(2); // a copy per peer
  });

  it('calf cleanup removes every mount and the container directory, in one line each', async () => {
    const dir = makeMess();
    const r = await execa(process.execPath, ['--import', 'tsx', calfTs, 'cleanup'], { cwd: repo, reject: false, env: { CALF_ROOT: root } });
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' });
    expect(r.stdout).toContain(`removed container ${path.basename(dir)} (${dir})`);
    expect(r.stdout).not.toMatch(/could not|Error|    at /);
    expect(mountedUnder(containers)).toEqual([containers]); // only the test's own shared mount
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('the teardown list (what calf runs as it exits) never throws and leaves nothing', () => {
    const dir = makeMess();
    expect(runTeardown(dir)).toEqual([]);
    expect(mountedUnder(dir)).toEqual([]);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('the board’s removeStore detaches everything under the store and removes it', () => {
    makeMess();
    makeMess();
    expect(removeStore(root)).toEqual([]);
    expect(mountedUnder(root)).toEqual([]);
    expect(fs.existsSync(root)).toBe(false);
  });
});
