/**
 * Level 15: a monitor per container. `calf run -d` returns while the container runs, its first
 * process the child of a monitor in a session of its own; the monitor keeps the log, records the
 * exit and undoes what a stopped container no longer holds; the container stays until `calf rm`.
 * Observed from the host (processes, sessions, cgroups, files, the image store's OCI layout) and
 * from inside (what the container prints, its terminal), beside what calf's commands say.
 *
 * Containers are few and shared where a check builds on the one before (the long-running
 * `svc`); the crash checks use a calf root of their own, so that a `calf cleanup` in a test file
 * running in parallel cannot remove the crashed container they look at.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { calf, calfRoot, calfEnv, calfShellCommand, CALF_ARGS, calfNode, expectExit, target, repo } from '../support/target.js';
import { token } from '../support/canary.js';
import { waitFor, childrenOf } from '../support/procs.js';
import { cgroupPathOf, hostDirs } from '../support/cgroups.js';
import { prepareStore, removeStore } from '../support/store.js';
import { createTestNetns, randomPort, type TestNetns } from '../support/netns.js';
import { slow } from '../support/host.js';
import * as linux from '../../lib/linux/index.js';

const ID = /^[0-9a-f]{64}\n$/;

/** The containers each check named, by calf root: one `calf rm -f` each in afterAll, whatever happened. */
const named = new Map<string, Set<string>>();
const toRemove = (name: string, root = calfRoot()) => named.set(root, (named.get(root) ?? new Set()).add(name));
afterAll(async () => {
  for (const [root, names] of named) await calf(['rm', '-f', ...names], { env: { CALF_ROOT: root } });
}, 120_000);

/** `calf run -d ARGS…` with a name of its own, removed in afterAll. */
async function detached(name: string, args: string[], env?: Record<string, string>) {
  toRemove(name, env?.CALF_ROOT);
  return calf(['run', '-d', '--name', name, ...args], env ? { env } : {});
}

/** /proc/PID/stat's fields after the command name: state, ppid, pgrp, session, tty_nr… (proc(5), from field 3). */
function stat(pid: number): { ppid: number; pgrp: number; session: number; ttyNr: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), ttyNr: Number(f[4]) };
  } catch {
    return undefined;
  }
}

const cmdline = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
};

/** The host pid of the container's first process: the `sh` whose command line has `mark`. */
function commandPid(mark: string): number | undefined {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)
    .find((pid) => cmdline(pid).startsWith('sh -c') && cmdline(pid).includes(mark));
}

const alive = (pid: number) => stat(pid) !== undefined && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));

/** The host directories of the cgroup process `pid` is in (its /proc/PID/cgroup, read on the host). */
function cgroupDirs(pid: number): string[] {
  const cg = cgroupPathOf(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), 'memory') ?? '';
  return cg.startsWith('/calf/') ? hostDirs(cg).filter((d) => fs.existsSync(d)) : [];
}

/** `calf ps [-a]`'s row for `name`, split into its columns (three spaces or more apart). */
async function psRow(name: string, all = false, env?: Record<string, string>): Promise<string[] | undefined> {
  const r = await calf(['ps', ...(all ? ['-a'] : [])], env ? { env } : {});
  expectExit(r, 0);
  return r.stdout.split('\n').map((l) => l.split(/ {3,}/)).find((cols) => cols.at(-1) === name);
}

/** The container directory of the container with id `id` (level 15's README: containers/<short id>/). */
const dirOf = (id: string, root = calfRoot()) => path.join(root, 'containers', id.trim().slice(0, 12));

// The long-running container most checks look at: prints on both streams, then waits; a trap
// for TERM (exit 7) and USR1 (a line in its log). Started by the first check that needs it.
const svc = { name: `svc-${token()}`, mark: `svc-${token()}`, id: '' };
let svcStarted: Promise<void> | undefined;
function startSvc(): Promise<void> {
  svcStarted ??= (async () => {
    const script = `echo out-${svc.mark}; echo err-${svc.mark} >&2; trap 'echo usr1; wait' USR1; trap 'exit 7' TERM; while true; do sleep 1 & wait; done`;
    const r = await detached(svc.name, ['busybox', 'sh', '-c', script]);
    expectExit(r, 0);
    svc.id = r.stdout.trim();
    await waitFor('svc’s first output in its log', () => (fs.existsSync(path.join(dirOf(svc.id), 'container.log'))
      && fs.readFileSync(path.join(dirOf(svc.id), 'container.log'), 'utf8').includes(`err-${svc.mark}`) ? true : undefined), 10_000);
  })();
  return svcStarted;
}

describe('15 detach', () => {
  describe('A monitor per container', () => {
    it('returns from run -d with the id while the container runs, its first process the child of a monitor in a session of its own, without a terminal', async () => {
      await startSvc();
      expect(svc.id).toMatch(/^[0-9a-f]{64}$/);
      const pid = commandPid(svc.mark);
      expect(pid).toBeDefined();
      const monitor = stat(pid!)!.ppid;
      const m = stat(monitor)!;
      expect({
        monitor: cmdline(monitor),
        ownSession: m.session === monitor,
        testSession: m.session === stat(process.pid)!.session,
        tty: m.ttyNr,
        stdio: [0, 1, 2].map((fd) => fs.readlinkSync(`/proc/${monitor}/fd/${fd}`)),
      }).toEqual({ monitor: 'calf:[monitor]', ownSession: true, testSession: false, tty: 0, stdio: ['/dev/null', '/dev/null', '/dev/null'] });
    });

    it('keeps a -d container running when SIGHUP reaches the process group calf ran in, as when its terminal closes', async () => {
      const name = `hup-${token()}`;
      const mark = token();
      toRemove(name);
      // calf run -d in a process group of its own, like a shell's job; SIGHUP to that group is
      // what a closing terminal sends. The container would die of it (a trap: exit 9) if it came.
      const run = spawn(calfNode, [...CALF_ARGS(), 'run', '-d', '--name', name, 'busybox', 'sh', '-c', `trap 'exit 9' HUP; echo ${mark}; while true; do sleep 1 & wait; done`], {
        cwd: repo, detached: true, stdio: 'ignore', env: { ...process.env, ...calfEnv() },
      });
      const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
      expect(code).toBe(0);
      const pid = await waitFor('the container', () => commandPid(mark), 10_000);
      try {
        process.kill(-run.pid!, 'SIGHUP'); // calf run -d has exited: only what stayed in its group gets it
      } catch {
        // nothing stayed in it (ESRCH)
      }
      await new Promise((r) => setTimeout(r, 1000));
      expect({ running: alive(pid), row: (await psRow(name))?.[4] }).toEqual({ running: true, row: expect.stringMatching(/^Up /) });
      // positive control: the container does die of a SIGHUP that reaches it
      expectExit(await calf(['kill', '-s', 'HUP', name]), 0);
      expect((await calf(['wait', name])).stdout).toBe('9\n');
    });
  });

  describe('Handing over', () => {
    it('exits 127 naming a missing command, leaving no container and no name; 125 for a name in use', async () => {
      const name = `n-${token()}`;
      const missing = `no-such-${token()}`;
      const failed = await detached(name, ['busybox', missing]);
      expectExit(failed, 127);
      expect({ stdout: failed.stdout, lines: failed.stderr.trim().split('\n').length, named: failed.stderr.includes(missing) }).toEqual({ stdout: '', lines: 1, named: true });
      expect(await psRow(name, true)).toBeUndefined();
      expect(fs.existsSync(path.join(calfRoot(), 'names', name))).toBe(false);
      // the name is free: a good command takes it, and then it is taken
      const ok = await detached(name, ['busybox', 'sleep', '600']);
      expectExit(ok, 0);
      expect(ok.stdout).toMatch(ID);
      const taken = await calf(['run', '-d', '--name', name, 'busybox', 'true']);
      expectExit(taken, 125);
      expect({ stdout: taken.stdout, lines: taken.stderr.trim().split('\n').length, named: taken.stderr.includes(name) }).toEqual({ stdout: '', lines: 1, named: true });
    });
  });

  describe('The log', () => {
    it('keeps stdout and stderr apart in a json-file log, which calf logs prints on the right streams, with -t and --tail', async () => {
      await startSvc();
      const lines = fs.readFileSync(path.join(dirOf(svc.id), 'container.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
      expect(lines.map((l) => [l.stream, l.log])).toEqual([['stdout', `out-${svc.mark}\n`], ['stderr', `err-${svc.mark}\n`]]);
      expect(lines.every((l) => !Number.isNaN(Date.parse(l.time!)))).toBe(true);
      const [plain, stamped, tail] = await Promise.all([calf(['logs', svc.name]), calf(['logs', '-t', svc.id.slice(0, 8)]), calf(['logs', '--tail', '1', svc.name])]);
      expect({ stdout: plain.stdout, stderr: plain.stderr }).toEqual({ stdout: `out-${svc.mark}\n`, stderr: `err-${svc.mark}\n` });
      expect(stamped.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d+Z out-${svc.mark}\\n$`));
      expect({ stdout: tail.stdout, stderr: tail.stderr }).toEqual({ stdout: '', stderr: `err-${svc.mark}\n` });
    });

    it('follows the log with -f until the container stops, and rotates it past --log-opt max-size', async () => {
      const name = `log-${token()}`;
      const script = 'i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done; sleep 2; echo last';
      const r = await detached(name, ['--log-opt', 'max-size=4k', 'busybox', 'sh', '-c', script]);
      expectExit(r, 0);
      const follow = await calf(['logs', '-f', name]); // returns once the container has stopped
      expectExit(follow, 0);
      const files = fs.readdirSync(dirOf(r.stdout)).filter((f) => f.startsWith('container.log'));
      const sizes = files.map((f) => fs.statSync(path.join(dirOf(r.stdout), f)).size);
      expect({ files: files.sort(), big: sizes.filter((s) => s > 4096) }).toEqual({ files: ['container.log', 'container.log.1'], big: [] });
      const shown = follow.stdout.trim().split('\n');
      expect({ last: shown.at(-1), before: shown.at(-2), rotatedAway: shown.includes('line-0') }).toEqual({ last: 'last', before: 'line-299', rotatedAway: false });
    });
  });

  describe('Stopping: signals and PID 1', () => {
    it('passes calf kill -s on to PID 1, stops one that handles SIGTERM with it, and one that ignores it with SIGKILL', async () => {
      await startSvc();
      const sleeper = `sleep-${token()}`;
      const started = await detached(sleeper, ['busybox', 'sleep', '600']); // PID 1 without a handler: SIGTERM is ignored
      expectExit(started, 0);
      expectExit(await calf(['kill', '-s', 'USR1', svc.name]), 0);
      await waitFor('usr1 in the log', () => (fs.readFileSync(path.join(dirOf(svc.id), 'container.log'), 'utf8').includes('usr1') ? true : undefined), 5_000);
      const [stopped, stoppedSleeper] = await Promise.all([calf(['stop', svc.name]), calf(['stop', '-t', '1', sleeper])]);
      expect([stopped.stdout, stoppedSleeper.stdout]).toEqual([`${svc.name}\n`, `${sleeper}\n`]);
      const [svcCode, sleeperCode] = await Promise.all([calf(['wait', svc.name]), calf(['wait', sleeper])]);
      expect({ svc: svcCode.stdout, sleeper: sleeperCode.stdout }).toEqual({ svc: '7\n', sleeper: '137\n' });
      expect((await psRow(svc.name, true))?.[4]).toMatch(/^Exited \(7\) .* ago$/);
    });
  });

  describe('Two moments: stop and rm', () => {
    it('removes a stopped container’s cgroup but keeps its directory, log and writable layer; calf start runs it again; calf rm removes it', async () => {
      const name = `keep-${token()}`;
      const mark = token();
      const r = await detached(name, ['busybox', 'sh', '-c', `echo ${mark} >> /runs; wc -l < /runs; trap 'exit 3' TERM; while true; do sleep 1 & wait; done`]);
      expectExit(r, 0);
      const dir = dirOf(r.stdout);
      const pid = await waitFor('the container', () => commandPid(mark), 10_000);
      const cgroups = cgroupDirs(pid);
      expect(cgroups.length).toBeGreaterThan(0);
      expectExit(await calf(['stop', name]), 0);
      const cleanup = await calf(['cleanup']); // a stopped container is no leftover
      expectExit(cleanup, 0);
      expect({ cgroups: cgroups.filter((d) => fs.existsSync(d)), dir: fs.existsSync(dir), status: (await psRow(name, true))?.[4] })
        .toEqual({ cgroups: [], dir: true, status: expect.stringMatching(/^Exited \(3\)/) });
      expectExit(await calf(['start', name]), 0);
      await waitFor('the second run', () => commandPid(mark), 10_000);
      const logs = await calf(['logs', name]);
      expect(logs.stdout.split('\n').map((l) => l.trim())).toEqual(['1', '2', '']); // the writable layer kept its /runs
      const refused = await calf(['rm', name]);
      expectExit(refused, 1); // running: only with -f
      expectExit(await calf(['rm', '-f', name]), 0);
      expect({ dir: fs.existsSync(dir), listed: await psRow(name, true) }).toEqual({ dir: false, listed: undefined });
    }, 120_000 * slow); // ten calf commands one after the other: past 60 s on a loaded machine

    it('removes a --rm container, directory and all, as soon as it stops', async () => {
      const name = `rm-${token()}`;
      const r = await detached(name, ['--rm', 'busybox', 'sh', '-c', 'sleep 1']);
      expectExit(r, 0);
      expect(fs.existsSync(dirOf(r.stdout))).toBe(true);
      await waitFor('the container to be removed', () => (fs.existsSync(dirOf(r.stdout)) ? undefined : true), 15_000);
      expect(await psRow(name, true)).toBeUndefined();
    });
  });

  describe('Crashes and reboots', () => {
    let root: string;
    let env: Record<string, string>;
    beforeAll(async () => {
      root = await prepareStore();
      env = { CALF_ROOT: root };
    }, 60_000);
    afterAll(async () => {
      if (!root) return;
      await calf(['cleanup', '--force'], { env }); // what a failed check left running
      expect(removeStore(root)).toEqual([]);
    });

    it('shows a container whose monitor was killed with -9 as running without one, and calf rm -f removes all of it', async () => {
      const name = `m9-${token()}`;
      const mark = token();
      expectExit(await detached(name, ['busybox', 'sh', '-c', `echo ${mark}; while true; do sleep 1 & wait; done`], env), 0);
      const pid = await waitFor('the container', () => commandPid(mark), 10_000);
      const cgroups = cgroupDirs(pid);
      const dir = fs.readdirSync(path.join(root, 'containers')).map((d) => path.join(root, 'containers', d));
      const monitor = stat(pid)!.ppid;
      process.kill(monitor, 'SIGKILL');
      await waitFor('the monitor to be gone', () => (alive(monitor) ? undefined : true), 5_000);
      expect({ status: (await psRow(name, false, env))?.[4], running: alive(pid), cgroups: cgroups.length > 0 })
        .toEqual({ status: expect.stringMatching(/^Up .*\(monitor gone\)$/), running: true, cgroups: true });
      expectExit(await calf(['rm', '-f', name], { env }), 0);
      expect({ running: alive(pid), cgroups: cgroups.filter((d) => fs.existsSync(d)), dirs: dir.filter((d) => fs.existsSync(d)) })
        .toEqual({ running: false, cgroups: [], dirs: [] });
    });

    it('shows a container whose monitor and processes vanished without a trace (a reboot) as exited, status unknown; calf rm removes it', async () => {
      const name = `boot-${token()}`;
      const mark = token();
      expectExit(await detached(name, ['busybox', 'sh', '-c', `echo ${mark}; while true; do sleep 1 & wait; done`], env), 0);
      const pid = await waitFor('the container', () => commandPid(mark), 10_000);
      const monitor = stat(pid)!.ppid;
      process.kill(monitor, 'SIGKILL'); // first, so that nobody records the exit…
      await waitFor('the monitor to be gone', () => (alive(monitor) ? undefined : true), 5_000);
      process.kill(pid, 'SIGKILL'); // …of the container, killed from the host
      await waitFor('the container to be gone', () => (alive(pid) ? undefined : true), 5_000);
      const [row, waited] = [await psRow(name, true, env), await calf(['wait', name], { env })];
      expect({ status: row?.[4], waited: waited.stdout }).toEqual({ status: 'Exited (unknown)', waited: '255\n' });
      expectExit(await calf(['rm', name], { env }), 0);
      expect({ listed: await psRow(name, true, env), dirs: fs.readdirSync(path.join(root, 'containers')) }).toEqual({ listed: undefined, dirs: [] });
    });

    it('starts 20 -d containers at once: all run, and one calf rm -f removes them all', async () => {
      const t = token();
      const names = Array.from({ length: 20 }, (_, i) => `many-${t}-${i}`);
      for (const n of names) toRemove(n, root);
      // through the level file's bundle (bin/calf.cjs, as CALF_ENTRY=fast does): 20 at once through
      // tsx would test tsx's start-up on two CPUs, not the monitors
      const fast = (args: string[]) => execa(calfNode, [path.join(repo, 'bin/calf.cjs'), ...args], {
        reject: false, timeout: 90_000, env: { ...env, CALF_FAST_ENTRY: path.join(target.dir, 'calf.ts') },
      });
      const runs = await Promise.all(names.map((n) => fast(['run', '-d', '--name', n, 'busybox', 'sleep', '600'])));
      expect(runs.map((r) => r.exitCode)).toEqual(names.map(() => 0));
      const ps = await calf(['ps'], { env });
      expect(names.filter((n) => !new RegExp(`Up .* ${n}$`, 'm').test(ps.stdout))).toEqual([]);
      const rm = await fast(['rm', '-f', ...names]);
      expectExit(rm, 0);
      expect({ left: fs.readdirSync(path.join(root, 'containers')), names: fs.readdirSync(path.join(root, 'names')) }).toEqual({ left: [], names: [] });
    }, 120_000 * slow);
  });

  describe('A terminal: -t', () => {
    it('gives a -d -t container’s pty the size of the terminal calf run started on, with no monitor attached to pass it on', async () => {
      // Detached, the monitor has no terminal to copy a size from: only the config's consoleSize,
      // applied by openTerminal() before the command starts, gives the pty one. (tty: it ran on one.)
      const name = `tty-${token()}`;
      toRemove(name);
      const { command, env } = calfShellCommand(['run', '-d', '-t', '--name', name, 'busybox', 'sh', '-c', 'tty; stty size']);
      const started = await execa('script', ['-qefc', `stty rows 33 cols 111; exec ${command}`, '/dev/null'], { env, reject: false, timeout: 45_000 * slow });
      expect({ exit: started.exitCode, said: started.stderr }).toEqual({ exit: 0, said: '' });
      expectExit(await calf(['wait', name]), 0);
      const logs = await calf(['logs', name]);
      expect(logs.stdout.replaceAll('\r', '').split('\n').slice(0, 2)).toEqual(['/dev/pts/0', '33 111']);
    });

    it('gives -t a pty of the container’s own devpts, calf’s terminal raw and its size passed on, and keeps the exit code', async () => {
      // a terminal of the test's own: calf's controlling terminal (setsid -c), 30 rows, 100 columns
      const master = linux.posix_openpt();
      linux.grantpt(master);
      linux.unlockpt(master);
      const slave = fs.openSync(linux.ptsname_r(master), fs.constants.O_RDWR | fs.constants.O_NOCTTY);
      try {
        linux.ioctl(master, linux.TIOCSWINSZ, linux.winsize({ ws_row: 30, ws_col: 100 }));
        const name = `tty-${token()}`;
        toRemove(name);
        const child = spawn('setsid', ['-c', calfNode, ...CALF_ARGS(), 'run', '-it', '--name', name, 'busybox', 'sh'], {
          cwd: repo, stdio: [slave, slave, slave], env: { ...process.env, ...calfEnv() },
        });
        const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
        let out = '';
        const read = () => {
          while (linux.poll(master, linux.POLLIN, 0) & linux.POLLIN) {
            const buffer = Buffer.alloc(4096);
            out += buffer.toString('utf8', 0, fs.readSync(master, buffer));
          }
        };
        const until = (text: string) => waitFor(`${JSON.stringify(text)} on the terminal (so far: ${JSON.stringify(out)})`, () => (read(), out.includes(text) ? true : undefined), 20_000);
        const lflag = () => linux.tcgetattr(slave).c_lflag & (linux.ICANON | linux.ECHO);
        await until('# '); // the shell's prompt
        const during = lflag();
        fs.writeSync(master, 'tty; stty size; echo $((6*7))\n');
        await until('42');
        // from the host: the shell's terminal is a pty of a devpts of its own, not one of the host's /dev/pts
        // (the shell is one of calf's children: through tsx on Node 24, esbuild's service can be another)
        const shell = childrenOf(child.pid!).find((pid) => cmdline(pid) === 'sh');
        const own = shell !== undefined && fs.statSync(`/proc/${shell}/fd/0`).dev !== fs.statSync('/dev/pts/ptmx').dev;
        linux.ioctl(master, linux.TIOCSWINSZ, linux.winsize({ ws_row: 40, ws_col: 120 })); // SIGWINCH to calf
        await new Promise((r) => setTimeout(r, 500));
        fs.writeSync(master, 'stty size; exit 3\n');
        const code = await exit;
        read();
        expect({ tty: /\/dev\/pts\/0\r\n/.test(out), own, first: /\b30 100\r\n/.test(out), resized: /\b40 120\r\n/.test(out), code, rawDuring: during, after: lflag() })
          .toEqual({ tty: true, own: true, first: true, resized: true, code: 3, rawDuring: 0, after: linux.ICANON | linux.ECHO });
      } finally {
        fs.closeSync(slave);
        fs.closeSync(master);
      }
    });
  });

  describe('Commit', () => {
    it('commits a container’s changes as a layer of whiteouts and opaque directories, and the new image shows them', async () => {
      const name = `c-${token()}`;
      const image = `committed-${token()}`;
      toRemove(name);
      // layered's /data: keep.txt and opaque/new.txt (level 04); delete one, empty and refill the other
      const r = await calf(['run', '--name', name, 'layered', 'sh', '-c', 'echo added > /data/added.txt; rm /data/keep.txt; rm -r /data/opaque; mkdir /data/opaque; echo fresh > /data/opaque/fresh.txt']);
      expectExit(r, 0);
      const committed = await calf(['commit', name, image]);
      expectExit(committed, 0);
      expect(committed.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
      const shown = await calf(['run', '--rm', image, 'sh', '-c', 'ls /data; echo --; ls /data/opaque; echo --; cat /data/added.txt']);
      expect({ exit: shown.exitCode, stdout: shown.stdout }).toEqual({ exit: 0, stdout: 'added.txt\nopaque\n--\nfresh.txt\n--\nadded\n' });
      // from the host: the new image's top layer in the store (an OCI layout) carries OCI whiteouts
      const store = path.join(calfRoot(), 'images');
      const blob = (digest: string) => path.join(store, 'blobs', ...digest.split(':'));
      const index = JSON.parse(fs.readFileSync(path.join(store, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
      const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === `${image}:latest`)!;
      const manifest = JSON.parse(fs.readFileSync(blob(entry.digest), 'utf8')) as { layers: { digest: string }[] };
      const files = execFileSync('tar', ['-tzf', blob(manifest.layers.at(-1)!.digest)], { encoding: 'utf8' }).split('\n');
      expectExit(await calf(['rm', name]), 0);
      expectExit(await calf(['rmi', image]), 0);
      expect(files).toEqual(expect.arrayContaining(['data/.wh.keep.txt', 'data/opaque/.wh..wh..opq', 'data/opaque/fresh.txt', 'data/added.txt']));
    });
  });

  describe('Publishing a port: -p', () => {
    let ns: TestNetns;
    beforeAll(async () => { ns = await createTestNetns(); });
    afterAll(() => ns?.remove());

    it('serves -p from a -d container on the host’s 127.0.0.1, on calf0 without --network, until it is removed', async () => {
      const port = randomPort();
      const name = `web-${token()}`;
      const r = await ns.calf(['run', '-d', '--name', name, '-p', `${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www; hostname > /www/index.html; exec httpd -f -p 80 -h /www']);
      let answer;
      let ps;
      try {
        expectExit(r, 0);
        answer = await ns.exec(['curl', '-s', '--retry', '20', '--retry-connrefused', '--retry-delay', '0', '--max-time', '10', `http://127.0.0.1:${port}/`]);
        ps = await ns.calf(['ps']);
      } finally {
        expectExit(await ns.calf(['rm', '-f', name]), 0);
      }
      expect({ body: answer.stdout.trim().split('\n').at(-1), ports: ps.stdout.includes(`127.0.0.1:${port}->80/tcp`), bridge: ns.links().includes('calf0') })
        .toEqual({ body: r.stdout.slice(0, 12), ports: true, bridge: true });
      expect(ns.links().filter((l) => l.startsWith('veth'))).toEqual([]);
    });
  });

  describe('Names, ids, ps and inspect', () => {
    it('finds a container by name and by a prefix of its id, and inspect shows what the host sees', async () => {
      const name = `i-${token()}`;
      const mark = token();
      const r = await detached(name, ['busybox', 'sh', '-c', `echo ${mark}; while true; do sleep 1 & wait; done`]);
      expectExit(r, 0);
      const id = r.stdout.trim();
      const pid = await waitFor('the container', () => commandPid(mark), 10_000);
      const [byName, byPrefix, quiet, unknown] = await Promise.all([
        calf(['inspect', name]), calf(['inspect', id.slice(0, 7)]), calf(['ps', '-q']), calf(['inspect', `nope-${token()}`]),
      ]);
      const [shown] = JSON.parse(byName.stdout) as { Id: string; Name: string; State: { Running: boolean; Pid: number }; Config: { Cmd: string[] }; OCIConfig: { process: { args: string[] } } }[];
      expect({ same: byPrefix.stdout === byName.stdout, quiet: quiet.stdout.split('\n').includes(id.slice(0, 12)), unknown: unknown.exitCode, said: unknown.stderr.trim().split('\n').length })
        .toEqual({ same: true, quiet: true, unknown: 1, said: 1 });
      expect({ id: shown!.Id, name: shown!.Name, running: shown!.State.Running, pid: shown!.State.Pid, args: shown!.OCIConfig.process.args.at(-1) })
        .toEqual({ id, name: `/${name}`, running: true, pid, args: expect.stringContaining(mark) });
      const row = await psRow(name);
      expect(row?.slice(0, 2)).toEqual([id.slice(0, 12), 'busybox']);
    });
  });
});
