/**
 * Level 17: `calf-runtime`, runc's command line over an OCI bundle. The test makes the bundles
 * itself (the busybox test image unpacked with tar, a config.json written here, as an engine
 * writes one) and drives the lifecycle by hand, as conmon and containerd's shim do: create →
 * state "created" (the command has not run: its marker file is absent) → start → "running" →
 * kill → "stopped" → delete. What it observes is on the host: the marker file, the process the
 * pid file names, the cgroup calf-runtime made, the state directory; and what the command printed.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { execa } from 'execa';
import { calfRoot, target, repo } from '../support/target.js';
import { token } from '../support/canary.js';
import { imagesDir } from '../support/images.js';
import { slow } from '../support/host.js';
import { CLEAN_PATH } from '../support/engine-sandbox.js';
import { startPodman, type Podman } from '../support/podman.js';
import { startContainerd, type Containerd } from '../support/containerd.js';

const installed = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { PATH: CLEAN_PATH } }).status === 0;
const havePodman = ['podman', 'conmon'].every(installed);
const haveContainerd = ['containerd', 'ctr', 'containerd-shim-runc-v2'].every(installed);

let work: string;
let rootfs: string;
/** calf-runtime's --root: every container's state directory. */
let stateRoot: string;
/** Containers a check created: delete --force'd in afterAll, whatever happened. */
const made = new Set<string>();

// calf-runtime as engines run it: its bin, the target's bundle under plain node (built on first use)
const RUNTIME = () => [path.join(repo, 'bin/calf-runtime.cjs')];
const env = () => ({ CALF_ROOT: calfRoot(), CALF_FAST_ENTRY: path.join(target.dir, 'calf.ts') });

/**
 * An executable named calf-runtime for an engine (podman gives `--log-format json` only to
 * runtimes by that name): node's absolute path and the environment baked in, since engines
 * call their runtime without PATH or HOME.
 */
function launcher(): string {
  const file = path.join(work, 'calf-runtime');
  const vars = Object.entries(env()).map(([k, v]) => `export ${k}='${v}'`).join('\n');
  fs.writeFileSync(file, `#!/bin/sh\n${vars}\nexec '${process.execPath}' '${RUNTIME()[0]}' "$@"\n`, { mode: 0o755 });
  return file;
}

/** `calf-runtime --root <stateRoot> ARGS…`, waited for (not for create: its stdout is the container's). */
function runtime(args: readonly string[]) {
  return execa(process.execPath, [...RUNTIME(), '--root', stateRoot, ...args], { cwd: repo, reject: false, env: env(), timeout: 60_000 * slow, stdin: 'ignore' });
}

/**
 * `calf-runtime create --bundle B --pid-file B/pid ID`, its stdout and stderr (the container's
 * too, once it runs) into B/output: create returns while the container lives on with them.
 */
async function create(bundle: string, id: string) {
  made.add(id);
  const output = path.join(bundle, 'output');
  const fd = fs.openSync(output, 'a');
  const child = spawn(process.execPath, [...RUNTIME(), '--root', stateRoot, 'create', '--bundle', bundle, '--pid-file', path.join(bundle, 'pid'), id], {
    cwd: repo, env: { ...process.env, ...env() }, stdio: ['ignore', fd, fd], timeout: 60_000 * slow,
  });
  fs.closeSync(fd);
  const [code] = (await once(child, 'exit')) as [number | null];
  const r = { exitCode: code ?? -1 };
  return { exitCode: r.exitCode, output: () => fs.readFileSync(output, 'utf8'), pidFile: () => fs.readFileSync(path.join(bundle, 'pid'), 'utf8') };
}

/** The spec's state of a container, parsed; or the failed run. */
async function state(id: string): Promise<{ status: string; pid: number; id: string; bundle: string; ociVersion: string; annotations: object }> {
  const r = await runtime(['state', id]);
  if (r.exitCode !== 0) throw new Error(`calf-runtime state ${id}: exit ${r.exitCode}: ${r.stderr}`);
  return JSON.parse(r.stdout) as never;
}

/** A bundle: config.json with `process.args` = sh -c SCRIPT over the shared rootfs, `extra` merged in. */
function bundle(id: string, script: string, extra: Record<string, unknown> = {}): string {
  const dir = path.join(work, `bundle-${id}`);
  fs.mkdirSync(dir, { recursive: true });
  const config = {
    ociVersion: '1.0.2',
    process: { args: ['sh', '-c', script], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', `CALF_ID=${id}`], cwd: '/', user: { uid: 0, gid: 0 } },
    root: { path: rootfs },
    hostname: `h-${id}`,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }], cgroupsPath: `/calf-runtime-test-${id}/${id}` },
    ...extra,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const isAlive = (pid: number) => {
  try {
    return !/^\S+ \(.*\) [ZX]/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Wait until `check()` holds, polling; false after the timeout. */
async function until(check: () => boolean, ms = 10_000 * slow): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) if (check()) return true;
  return check();
}

/** The directory of the container's cgroup in the pids hierarchy (v1) or the unified one (v2). */
function cgroupDir(id: string): string {
  const v1 = `/sys/fs/cgroup/pids/calf-runtime-test-${id}/${id}`;
  return fs.existsSync('/sys/fs/cgroup/pids') ? v1 : `/sys/fs/cgroup/calf-runtime-test-${id}/${id}`;
}

beforeAll(() => {
  execFileSync(process.execPath, [...RUNTIME(), '--version'], { cwd: repo, env: { ...process.env, ...env() }, stdio: 'ignore' }); // builds the bundle once
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-oci-'));
  stateRoot = path.join(work, 'state');
  rootfs = path.join(work, 'rootfs');
  fs.mkdirSync(rootfs);
  // the busybox test image, unpacked as an engine's storage would: a plain directory
  const layout = path.join(imagesDir, 'busybox');
  const blob = (digest: string) => path.join(layout, 'blobs', ...digest.split(':'));
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(fs.readFileSync(blob(index.manifests.at(-1)!.digest), 'utf8')) as { layers: { digest: string }[] };
  for (const layer of manifest.layers) execFileSync('tar', ['-xzf', blob(layer.digest), '-C', rootfs]);
});

afterAll(async () => {
  await Promise.all([...made].map((id) => runtime(['delete', '--force', id])));
  fs.rmSync(work, { recursive: true, force: true });
});

describe('17 oci-runtime', () => {
  describe('create and start', () => {
    it('create leaves the command waiting (state "created", its marker file absent) until start runs it; exec ID COMMAND runs beside it', async () => {
      const id = `c-${token()}`;
      const marker = path.join(rootfs, 'tmp', `marker-${id}`);
      const b = bundle(id, `touch /tmp/marker-${id}; echo started $(hostname); exec sleep 1000`);
      const c = await create(b, id);
      expect({ exit: c.exitCode, said: c.output() }).toEqual({ exit: 0, said: '' });
      const pid = Number(c.pidFile());
      expect(c.pidFile()).toMatch(/^\d+$/); // no newline: containerd's Atoi refuses one
      expect(isAlive(pid)).toBe(true);
      expect(await state(id)).toMatchObject({ id, status: 'created', pid, bundle: b });
      await new Promise((r) => setTimeout(r, 300)); // a command that ran anyway has touched its marker by now
      expect(fs.existsSync(marker)).toBe(false);
      const s = await runtime(['start', id]);
      expect({ exit: s.exitCode, stderr: s.stderr }).toEqual({ exit: 0, stderr: '' });
      expect(await until(() => fs.existsSync(marker))).toBe(true); // the positive control: start ran it
      expect(await until(() => c.output().includes('\n'))).toBe(true);
      expect(c.output()).toBe(`started h-${id}\n`);
      expect(await state(id)).toMatchObject({ status: 'running', pid });
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toBe('sleep\u00001000\u0000'); // the pid file's process became the command
      const e = await runtime(['exec', id, 'sh', '-c', 'echo in $(hostname) $(tr "\\0" " " < /proc/1/cmdline); exit 3']); // runc's by-hand form
      expect({ exit: e.exitCode, out: e.stdout, err: e.stderr }).toEqual({ exit: 3, out: `in h-${id} sleep 1000`, err: '' });
    }, 90_000 * slow);
  });

  describe('state, kill and delete', () => {
    it('kill stops it (state "stopped", pid 0), delete removes its state directory and its cgroup', async () => {
      const id = `k-${token()}`;
      const c = await create(bundle(id, 'exec sleep 1000', { linux: { namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }], cgroupsPath: `/calf-runtime-test-${id}/${id}`, resources: { pids: { limit: 42 } } } }), id);
      expect(c.exitCode).toBe(0);
      const pid = Number(c.pidFile());
      expect((await runtime(['start', id])).exitCode).toBe(0);
      expect(await state(id)).toMatchObject({ status: 'running', pid });
      // its cgroup, with the bundle's limit, holds the command
      expect(fs.readFileSync(path.join(cgroupDir(id), 'pids.max'), 'utf8').trim()).toBe('42');
      expect(fs.readFileSync(path.join(cgroupDir(id), 'cgroup.procs'), 'utf8').split('\n')).toContain(String(pid));
      const k = await runtime(['kill', id, 'KILL']);
      expect({ exit: k.exitCode, stderr: k.stderr }).toEqual({ exit: 0, stderr: '' });
      expect(await until(() => !isAlive(pid))).toBe(true);
      expect(await state(id)).toMatchObject({ status: 'stopped', pid: 0 });
      const d = await runtime(['delete', id]);
      expect({ exit: d.exitCode, stderr: d.stderr }).toEqual({ exit: 0, stderr: '' });
      expect(fs.existsSync(path.join(stateRoot, id))).toBe(false);
      expect(fs.existsSync(cgroupDir(id))).toBe(false);
    }, 90_000 * slow);

    it('kill and delete of a created container end its waiting init stage; the command never ran', async () => {
      const id = `d-${token()}`;
      const marker = path.join(rootfs, 'tmp', `marker-${id}`);
      const c = await create(bundle(id, `touch /tmp/marker-${id}`), id);
      expect(c.exitCode).toBe(0);
      const pid = Number(c.pidFile());
      expect(isAlive(pid)).toBe(true); // the positive control: the init stage waits
      const d = await runtime(['delete', id]);
      expect({ exit: d.exitCode, stderr: d.stderr }).toEqual({ exit: 0, stderr: '' });
      expect(isAlive(pid)).toBe(false);
      expect(fs.existsSync(marker)).toBe(false);
      expect(fs.existsSync(path.join(stateRoot, id))).toBe(false);
      expect(fs.existsSync(cgroupDir(id))).toBe(false);
    }, 90_000 * slow);
  });

  describe('What the spec calls an error', () => {
    it('refuses no id, an unknown id, a duplicate id, a second start, and delete of a running container without --force (exit 1, one line)', async () => {
      const id = `e-${token()}`;
      const b = bundle(id, 'exec sleep 1000');
      const c = await create(b, id);
      expect(c.exitCode).toBe(0); // the positive control: the same commands work on a container that exists
      expect((await runtime(['start', id])).exitCode).toBe(0);
      const unknown = `u-${token()}`;
      const [noId, st, sta, ki, de, again, delRunning, dup, forced] = await Promise.all([
        runtime(['state']), runtime(['state', unknown]), runtime(['start', unknown]), runtime(['kill', unknown, '9']), runtime(['delete', unknown]),
        runtime(['start', id]), runtime(['delete', id]), create(bundle(`${id}-dup`, 'true'), id), runtime(['delete', '--force', unknown]),
      ]);
      for (const r of [noId, st, sta, ki, de, again, delRunning]) {
        expect({ command: r.command, exit: r.exitCode, lines: r.stderr.split('\n').length }).toEqual({ command: r.command, exit: 1, lines: 1 });
      }
      expect(st.stderr).toContain('does not exist'); // the words engines match
      expect(dup.exitCode).toBe(1);
      expect(dup.output()).toContain('already exists');
      expect(forced.exitCode).toBe(0); // delete --force of an unknown id: engines delete twice
      expect(await state(id)).toMatchObject({ status: 'running' }); // none of it touched the running one
      expect((await runtime(['delete', '--force', id])).exitCode).toBe(0);
      expect(fs.existsSync(path.join(stateRoot, id))).toBe(false);
    }, 90_000 * slow);

    it('refuses a config.json field it does not implement, naming it, and leaves nothing', async () => {
      const id = `f-${token()}`;
      const c = await create(bundle(id, 'true', { hooks: { prestart: [{ path: '/bin/true' }] } }), id);
      expect(c.exitCode).toBe(1);
      expect(c.output()).toMatch(/hooks/);
      expect(fs.existsSync(path.join(stateRoot, id))).toBe(false);
      const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
      const arch = await create(bundle(`${id}-a`, 'true', { linux: { namespaces, seccomp: { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_NOPE'] } } }), `${id}-a`);
      expect({ exit: arch.exitCode, said: arch.output() }).toEqual({ exit: 1, said: expect.stringMatching(/SCMP_ARCH_NOPE/) }); // a profile's architecture libseccomp lacks
      expect(fs.existsSync(path.join(stateRoot, `${id}-a`))).toBe(false);
      const ok = await create(bundle(`${id}-ok`, 'true'), `${id}-ok`); // the positive control: without it, created
      expect(ok.exitCode).toBe(0);
      expect(await state(`${id}-ok`)).toMatchObject({ status: 'created' });
    }, 90_000 * slow);
  });

  (havePodman ? describe : describe.skip)(`Under podman${havePodman ? '' : ' (skipped: podman or conmon not installed)'}`, () => {
    let p: Podman | undefined;
    const podman = (args: readonly string[]) => {
      if (!p) throw new Error('podman did not start (see beforeAll)');
      return p.podman(args);
    };
    beforeAll(async () => {
      p = await startPodman({ runtime: launcher() });
    }, 120_000 * slow);
    afterAll(async () => {
      const left = await p?.stop();
      if (left?.length) throw new Error(`podman's sandbox left: ${left.join(', ')}`);
    }, 120_000 * slow);

    it('runs podman run --rm busybox echo on calf-runtime, with --network none and on podman\'s default bridge, and -t with a pty', async () => {
      const word = token();
      const [none, bridge, tty] = await Promise.all([
        podman(['run', '--rm', '--network', 'none', p!.image, 'sh', '-c', `echo ${word}; ip -o link | wc -l`]),
        podman(['run', '--rm', p!.image, 'sh', '-c', `echo ${word}; ip -o -4 addr show dev eth0 | wc -l`]),
        podman(['run', '--rm', '-t', '--network', 'none', p!.image, 'sh', '-c', `echo ${word}; tty`]), // --console-socket
      ]);
      expect({ exit: none.exitCode, out: none.stdout, err: none.stderr }).toEqual({ exit: 0, out: `${word}\n1\n`, err: '' }); // lo only
      expect({ exit: bridge.exitCode, out: bridge.stdout, err: bridge.stderr }).toEqual({ exit: 0, out: `${word}\n1\n`, err: '' }); // an address on eth0
      expect({ exit: tty.exitCode, out: tty.stdout, err: tty.stderr }).toEqual({ exit: 0, out: `${word}\r\n/dev/pts/0\r\n`, err: '' }); // the container's own devpts, a terminal's line endings
    }, 120_000 * slow);

    it('runs podman run -d with --memory and --pids-limit in the cgroup calf-runtime made; ps, logs, stop and rm work', async () => {
      const name = `calf-${token()}`;
      const d = await podman(['run', '-d', '--name', name, '--network', 'none', '--memory', '64m', '--pids-limit', '50', p!.image,
        'sh', '-c', 'trap "exit 0" TERM; grep -E "(memory|pids):" /proc/self/cgroup; echo up; sleep 1000 & wait']);
      expect({ exit: d.exitCode, err: d.stderr }).toEqual({ exit: 0, err: '' });
      let logs = '';
      for (const end = Date.now() + 20_000 * slow; !logs.includes('up') && Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
        logs = (await podman(['logs', name])).stdout;
      }
      expect(logs).toContain('up\n');
      const ps = await podman(['ps', '--format', '{{.Names}} {{.Status}}']);
      expect(ps.stdout).toMatch(new RegExp(`^${name} Up`, 'm'));
      const cgroupOf = (controller: string) => new RegExp(`^\\d+:[\\w,]*\\b${controller}\\b[\\w,]*:(.*)$`, 'm').exec(logs)?.[1];
      if (fs.existsSync('/sys/fs/cgroup/memory')) {
        expect(fs.readFileSync(`/sys/fs/cgroup/memory${cgroupOf('memory')}/memory.limit_in_bytes`, 'utf8').trim()).toBe(String(64 * 1024 * 1024));
        expect(fs.readFileSync(`/sys/fs/cgroup/pids${cgroupOf('pids')}/pids.max`, 'utf8').trim()).toBe('50');
      }
      const stop = await podman(['stop', '-t', '5', name]);
      expect({ exit: stop.exitCode, err: stop.stderr }).toEqual({ exit: 0, err: '' });
      const rm = await podman(['rm', name]);
      expect({ exit: rm.exitCode, err: rm.stderr }).toEqual({ exit: 0, err: '' });
      expect((await podman(['ps', '-a', '--format', '{{.Names}}'])).stdout).not.toContain(name);
    }, 120_000 * slow);

    it('runs podman exec in a running container: its host name, its PID 1, its cgroup; the exit code comes back; exec -t gets a pty', async () => {
      const name = `calf-${token()}`;
      const d = await podman(['run', '-d', '--name', name, '--network', 'none', '--memory', '64m', p!.image,
        'sh', '-c', 'trap "exit 0" TERM; hostname; echo up; sleep 1000 & wait']);
      try {
        expect({ exit: d.exitCode, err: d.stderr }).toEqual({ exit: 0, err: '' });
        let logs = '';
        for (const end = Date.now() + 20_000 * slow; !logs.includes('up') && Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
          logs = (await podman(['logs', name])).stdout;
        }
        expect(logs).toContain('up\n');
        const limit = fs.existsSync('/sys/fs/cgroup/memory') ? '/sys/fs/cgroup/memory/memory.limit_in_bytes' : '/sys/fs/cgroup/memory.max';
        const e = await podman(['exec', name, 'sh', '-c', `hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; cat ${limit}; exit 7`]);
        expect({ exit: e.exitCode, err: e.stderr }).toEqual({ exit: 7, err: '' });
        const [host, pid1, memory] = e.stdout.trim().split('\n');
        expect(host).toBe(logs.split('\n')[0]); // the container's UTS namespace
        expect(pid1?.trim()).toBe('sh -c trap "exit 0" TERM; hostname; echo up; sleep 1000 & wait'); // its PID namespace and /proc
        expect(memory).toBe(String(64 * 1024 * 1024)); // its cgroup (v2: its cgroup namespace too)
        const t = await podman(['exec', '-t', name, 'sh', '-c', 'tty; exit 4']); // --console-socket: the pty's master to conmon
        expect({ exit: t.exitCode, out: t.stdout, err: t.stderr }).toMatchObject({ exit: 4, out: expect.stringMatching(/^\/dev\/pts\/\d+\r\n$/), err: '' });
      } finally {
        await podman(['rm', '-f', '-t', '0', name]);
      }
    }, 120_000 * slow);

    it('mounts the /dev/mqueue and the read-only /sys/fs/cgroup podman asks for: the container reads its own --memory there', async () => {
      // v1 (podman's cgroupns=host): the container's cgroup of each hierarchy, bound into a tmpfs;
      // v2 (podman's default cgroupns=private): a cgroup2 mount whose root is the container's cgroup
      const v1 = fs.existsSync('/sys/fs/cgroup/memory');
      const limit = v1 ? '/sys/fs/cgroup/memory/memory.limit_in_bytes' : '/sys/fs/cgroup/memory.max';
      const r = await podman(['run', '--rm', '--network', 'none', '--memory', '64m', p!.image, 'sh', '-c',
        `awk '$2 == "/dev/mqueue" || $2 == "/sys/fs/cgroup" {print $2, $3}' /proc/self/mounts | sort; cat ${limit}; mkdir ${path.dirname(limit)}/calf-probe 2>&1 || true`]);
      expect({ exit: r.exitCode, err: r.stderr, out: r.stdout }).toMatchObject({ exit: 0, err: '' });
      const [mqueue, cgroupMount, read, refused] = r.stdout.trim().split('\n');
      expect({ mqueue, cgroupMount }).toEqual({ mqueue: '/dev/mqueue mqueue', cgroupMount: `/sys/fs/cgroup ${v1 ? 'tmpfs' : 'cgroup2'}` });
      expect(read).toBe(String(64 * 1024 * 1024)); // the positive control: its own cgroup, not the host's root
      expect(refused).toMatch(/Read-only file system/);
    }, 120_000 * slow);

    it('runs podman run --read-only -v HOST:/data: the root refuses a write, the bind takes one the host sees', async () => {
      const host = fs.mkdtempSync(path.join(p!.dir, 'bind-'));
      const word = token();
      const r = await podman(['run', '--rm', '--network', 'none', '--read-only', '-v', `${host}:/data`, p!.image, 'sh', '-c',
        `echo ${word} > /data/f && cat /data/f; touch /probe 2>&1 || true`]);
      expect({ exit: r.exitCode, err: r.stderr, out: r.stdout }).toMatchObject({ exit: 0, err: '' });
      const [written, refused] = r.stdout.trim().split('\n');
      expect(written).toBe(word); // the positive control: the command ran, and wrote through the bind
      expect(fs.readFileSync(path.join(host, 'f'), 'utf8')).toBe(`${word}\n`);
      expect(refused).toMatch(/Read-only file system/);
    }, 120_000 * slow);
  });

  (haveContainerd ? describe : describe.skip)(`Under containerd${haveContainerd ? '' : ' (skipped: containerd, ctr or its runc shim not installed)'}`, () => {
    let c: Containerd | undefined;
    beforeAll(async () => {
      c = await startContainerd({ runtime: launcher() });
    }, 120_000 * slow);
    afterAll(async () => {
      const left = await c?.stop();
      if (left?.length) throw new Error(`containerd's sandbox left: ${left.join(', ')}`);
    }, 120_000 * slow);

    it('runs ctr run --runc-binary calf-runtime --rm (output and exit code through the shim), -t with a pty; task exec and ps in a detached task, which kill --all ends and delete removes', async () => {
      const ctr = (args: readonly string[]) => c!.ctr(args);
      const word = token();
      const id = `calf-${token()}`;
      // ctr run -t wants a terminal of its own (it panics on a pipe): script(1) gives it one
      const tty = ['ctr', '--address', c!.address, '--namespace', c!.namespace, 'run', '--runc-binary', c!.runtime, '--rm', '-t', 'busybox:latest', `t-${id}`, 'sh', '-c', "'tty; exit 2'"].join(' ');
      const [once, detached, terminal] = await Promise.all([
        ctr(['run', '--rm', 'busybox:latest', `r-${id}`, 'sh', '-c', `echo ${word} $(hostname); exit 3`]),
        ctr(['run', '-d', 'busybox:latest', id, 'sleep', '1000']),
        c!.sandbox.exec('script', ['-qefc', tty, '/dev/null']), // --console-socket: the shim's
      ]);
      expect({ exit: once.exitCode, out: once.stdout.split(' ')[0], err: once.stderr }).toEqual({ exit: 3, out: word, err: '' });
      expect({ exit: terminal.exitCode, out: terminal.stdout }).toMatchObject({ exit: 2, out: expect.stringMatching(/\/dev\/pts\/0\r/) });
      expect({ exit: detached.exitCode, err: detached.stderr }).toEqual({ exit: 0, err: '' });
      expect((await ctr(['task', 'ls'])).stdout).toMatch(new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, 'm'));
      const exec = await ctr(['task', 'exec', '--exec-id', `e-${word}`, id, 'sh', '-c', `echo ${word} $(cat /proc/1/cmdline | tr '\\0' ' '); exit 5`]);
      expect({ exit: exec.exitCode, out: exec.stdout.trim(), err: exec.stderr }).toEqual({ exit: 5, out: `${word} sleep 1000`, err: '' }); // in its PID namespace
      const pid = new RegExp(`^${id}\\s+(\\d+)\\s+RUNNING`, 'm').exec((await ctr(['task', 'ls'])).stdout)?.[1];
      expect((await ctr(['task', 'ps', id])).stdout).toMatch(new RegExp(`^${pid}\\b`, 'm')); // ps --format json: its cgroup's pids
      expect((await ctr(['task', 'kill', '--all', '-s', 'KILL', id])).exitCode).toBe(0); // kill --all: every process of its cgroup
      let tasks = '';
      for (const end = Date.now() + 20_000 * slow; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
        tasks = (await ctr(['task', 'ls'])).stdout;
        if (new RegExp(`^${id}\\s+\\d+\\s+STOPPED`, 'm').test(tasks)) break;
      }
      expect(tasks).toMatch(new RegExp(`^${id}\\s+\\d+\\s+STOPPED`, 'm'));
      const del = await ctr(['task', 'delete', id]);
      expect(del.exitCode).toBe(0);
      expect(del.stderr).toMatch(/exit code 137|^$/); // ctr's warning: the shim saw SIGKILL's 128+9
      expect((await ctr(['container', 'rm', id])).exitCode).toBe(0);
      expect((await ctr(['task', 'ls'])).stdout).not.toContain(id);
    }, 120_000 * slow);
  });
});
