/**
 * calf's own commands, the same at every level (lib/runtime/cli.ts): load, images, cleanup, and the
 * init stage's hygiene. Run against the last solution.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { LEVELS, levelDir } from '../../ladder/ladder.js';
import { repo } from '../support/paths.js';
import { imagesDir } from '../support/images.js';
import { mountTable } from '../support/mounts.js';

const calfTs = path.join(repo, levelDir(LEVELS.at(-1)!, 'solutions'), 'calf.ts');
let root: string;

function calf(args: string[]) {
  return execa(process.execPath, ['--import', 'tsx', calfTs, ...args], {
    cwd: repo, reject: false, env: { CALF_ROOT: root }, timeout: 60_000,
  });
}

beforeAll(() => {
  if (!fs.existsSync(path.join(imagesDir, 'busybox', 'index.json'))) throw new Error('test images not built: run npm run images');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-cli-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('calf load and calf images', () => {
  it('loads an OCI layout and lists it like docker images', async () => {
    const load = await calf(['load', '-i', path.join(imagesDir, 'busybox')]);
    expect(load.exitCode).toBe(0);
    expect(load.stdout).toBe('Loaded image: busybox:latest');
    const images = await calf(['images']);
    expect(images.stdout.split('\n')[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(images.stdout).toMatch(/^busybox\s+latest\s+[0-9a-f]{12}\s/m);
  });

  it('runs an image loaded in an earlier invocation, by name and by id prefix', async () => {
    await calf(['load', '-i', path.join(imagesDir, 'busybox')]);
    const id = /^busybox\s+latest\s+([0-9a-f]{12})/m.exec((await calf(['images'])).stdout)![1]!;
    for (const ref of ['busybox', 'busybox:latest', id]) {
      const r = await calf(['run', ref, 'echo', 'hello']);
      expect({ ref, stdout: r.stdout, exitCode: r.exitCode }).toEqual({ ref, stdout: 'hello', exitCode: 0 });
    }
  });

  it('fails with 125 and one line for input that is not an image', async () => {
    const r = await calf(['load', '-i', path.join(root, 'nothing-here')]);
    expect(r.exitCode).toBe(125);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('nothing-here');
  });
});

describe('calf cleanup', () => {
  it('removes a dead run’s container directory and detaches what is mounted in it', async () => {
    const dir = path.join(root, 'containers', 'deadbeef0000');
    fs.mkdirSync(path.join(dir, 'rootfs/tmp'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'state.json'), '{"owner": '); // a record half-written by a calf killed meanwhile
    await execa('mount', ['-t', 'tmpfs', 'calf-test', path.join(dir, 'rootfs/tmp')]);
    try {
      const r = await calf(['cleanup']);
      expect(r.exitCode).toBe(0);
      expect(fs.existsSync(dir)).toBe(false);
      expect(mountTable().filter((m) => m.startsWith(dir))).toEqual([]);
    } finally {
      await execa('umount', [path.join(dir, 'rootfs/tmp')], { reject: false });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the directory of a container whose calf is still running', async () => {
    const dir = path.join(root, 'containers', 'a11ve0000000');
    fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const startTime = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]); // field 22: this process's start time
    fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({
      id: 'a11ve0000000'.padEnd(64, '0'), owner: { pid: process.pid, startTime }, teardown: [{ step: 'removeContainerDir', args: [dir] }],
    }));
    try {
      const r = await calf(['cleanup']);
      expect(r.stdout).toContain(`kept container a11ve0000000 (${dir})`);
      expect(fs.existsSync(dir)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the init stage', () => {
  it('passes the container no file descriptor but stdin, stdout and stderr', async () => {
    await calf(['load', '-i', path.join(imagesDir, 'busybox')]);
    // bash leaves fd 200 open in calf, as a terminal or CI runner might (libuv only closes low
    // fds in the children Node spawns); the command must not get it
    const r = await execa('bash', ['-c', 'exec 200</dev/null; exec "$@"', 'bash', process.execPath, '--import', 'tsx', calfTs,
      'run', 'busybox', 'ls', '/proc/self/fd'], { cwd: repo, reject: false, env: { CALF_ROOT: root } });
    // ls itself holds one fd for the directory it lists
    expect(r.stdout.split('\n').map(Number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
  });

  it('hands the command a blocking stdout, so a slow reader gets every byte', async () => {
    await calf(['load', '-i', path.join(imagesDir, 'busybox')]);
    // 1 MiB is far more than a pipe holds: with a non-blocking stdout, cat fails with EAGAIN
    const r = await execa('sh', ['-c', '"$@" | (sleep 1; wc -c)', 'sh', process.execPath, '--import', 'tsx', calfTs,
      'run', 'busybox', 'head', '-c', '1048576', '/dev/zero'], { cwd: repo, reject: false, env: { CALF_ROOT: root } });
    expect({ bytes: r.stdout.trim(), stderr: r.stderr }).toEqual({ bytes: '1048576', stderr: '' });
  });
});
