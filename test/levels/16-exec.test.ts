/**
 * Level 16: `calf exec` runs one more process in a running container: in its namespaces (it
 * sees the container's host name, files, processes and address), in its cgroup (its memory
 * limit holds), with its PID 1's user, capabilities, no_new_privs and seccomp filter, and
 * nowhere else (the breakouts stay inside). One container serves most checks: started in a
 * network namespace this test made, on calf0, under --memory 32m and --cap-drop chown, so that
 * its PID 1 differs from Docker's defaults in ways a calf exec that ignored it would show. Its
 * PID 1 prints what it sees first; each check compares what the exec'd process sees with that.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { calf, run, expectExit, startContainer, calfRoot, calfShellCommand, type Running } from '../support/target.js';
import { waitForOutput } from '../support/background.js';
import { createTestNetns, eth0Address, type TestNetns } from '../support/netns.js';
import { hostCanary, token } from '../support/canary.js';
import { slow } from '../support/host.js';
import { holdPidNamespace, type HeldPidNamespace } from '../support/procs.js';

let netns: TestNetns;
/** The shared container: `calf run` in the test's netns, until afterAll lets it end. */
let main: { finish(): Promise<unknown>; id: string; address: string; status: Record<string, string>; ready: string } | undefined;
const RUN_VAR = token();
const FILE_TOKEN = token();
const canary = hostCanary();

/** The capability, no_new_privs and seccomp lines of a /proc/PID/status, by field. */
const STATUS_FIELDS = /^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):\s+(\S+)$/gm;
const statusOf = (text: string) => Object.fromEntries([...text.matchAll(STATUS_FIELDS)].map((m) => [m[1]!, m[2]!]));

beforeAll(async () => {
  netns = await createTestNetns();
  const ready = `calf-ready-${token()}`;
  // PID 1 writes a file, then prints its host name (the short id, Docker's default), its address and its privileges
  const setup = `echo ${FILE_TOKEN} > /tmp/token; hostname; ip -o -4 addr show dev eth0; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; echo ${ready}; read line`;
  const child = netns.calf(['run', '--rm', '--network', 'calf0', '--memory', '32m', '--cap-drop', 'chown', '-e', `CALF_RUN_VAR=${RUN_VAR}`, 'calf-test', 'sh', '-c', setup], { timeout: 600_000 });
  const finish = async () => { child.stdin?.end('\n'); return await child; };
  const output = await waitForOutput(child, ready, { what: 'that the container is ready' });
  main = { finish, id: output.split('\n')[0]!.trim(), address: eth0Address(output) ?? '?', status: statusOf(output), ready };
}, 120_000 * slow);

afterAll(async () => {
  await main?.finish();
  await (await second?.catch(() => undefined))?.finish();
  netns?.remove();
  canary.remove();
});

/**
 * A second container, `-u calf busybox` on the host's network, started on first use: for -u's
 * check, then ended by "Nothing left after" (whose first look also finds nothing left of -u's execs).
 */
let second: Promise<Running> | undefined;
const secondContainer = () => (second ??= startContainer(['--rm', '-u', 'calf', 'busybox']));

/** The shared container's id, as a user types it: a prefix of it. */
const ref = () => {
  if (!main) throw new Error('the shared container did not start (see beforeAll)');
  return main.id.slice(0, 8);
};

/** The short id of the container whose first process is `pid` (host pid), as `calf ps` would show it. */
function idOf(pid: number): string {
  const dir = path.join(calfRoot(), 'containers');
  const name = fs.readdirSync(dir).find((n) => {
    try { return JSON.parse(fs.readFileSync(path.join(dir, n, 'state.json'), 'utf8')).process?.pid === pid; } catch { return false; }
  });
  if (!name) throw new Error(`no container record under ${dir} names process ${pid}`);
  return name;
}

/** `calf exec ARGS… <shared container> COMMAND…` */
const exec = (args: readonly string[], command: readonly string[], input?: string) =>
  calf(['exec', ...args, ref(), ...command], input === undefined ? {} : { input });

describe('16 exec', () => {
  describe('Finding the container', () => {
    it('finds a running container by a prefix of its id, and refuses an unknown and a stopped one with Docker’s line and exit 1', async () => {
      const unknown = `${token()}${token()}`;
      const [ok, r] = await Promise.all([exec([], ['echo', 'ran']), calf(['exec', unknown, 'echo', 'ran'])]);
      expectExit(ok, 0); // control: a running one, by prefix
      expect(ok.stdout).toBe('ran\n');
      expectExit(r, 1);
      expect({ stdout: r.stdout, stderr: r.stderr }).toEqual({ stdout: '', stderr: `calf: no such container: ${unknown}\n` });

      // a container that ran and stopped: kept, as Docker keeps it, until calf rm (level 15)
      const name = `stopped-${token()}`;
      expectExit(await run(['--name', name, 'busybox', 'true']), 0);
      try {
        const stopped = await calf(['exec', name, 'echo', 'ran']);
        expectExit(stopped, 1);
        expect({ stdout: stopped.stdout, stderr: stopped.stderr }).toEqual({ stdout: '', stderr: expect.stringMatching(/^calf: container [0-9a-f]{64} is not running\n$/) });
      } finally {
        await calf(['rm', name]);
      }
    });
  });

  describe('Joining the namespaces', () => {
    it('sees the container’s host name and files (the mount and UTS namespaces)', async () => {
      const r = await exec([], ['sh', '-c', 'hostname; cat /tmp/token']);
      expectExit(r, 0);
      expect(r.stdout).toBe(`${main!.id}\n${FILE_TOKEN}\n`);
    });

    it('sees the container’s processes, PID 1 first, and is one of them (the PID namespace)', async () => {
      const r = await exec([], ['sh', '-c', 'echo "self $$"; ps -o pid,args']);
      expectExit(r, 0);
      const self = /^self (\d+)$/m.exec(r.stdout)?.[1];
      const rows = r.stdout.split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(/\s+/));
      expect(rows.find(([pid]) => pid === '1')?.join(' ')).toContain(main!.ready); // PID 1 is the container's sh
      expect(rows.map(([pid]) => pid)).toContain(self); // and the exec'd shell is in the same namespace
      expect(rows.filter(([, cmd]) => /node|jest/.test(cmd ?? ''))).toEqual([]); // no host process
    });

    it('is in PID 1’s ipc, mount, network, PID and UTS namespaces, none of them the host’s', async () => {
      const kinds = ['ipc', 'mnt', 'net', 'pid', 'uts'];
      const r = await exec([], ['sh', '-c', `for n in ${kinds.join(' ')}; do echo "$n $(readlink /proc/self/ns/$n) $(readlink /proc/1/ns/$n)"; done`]);
      expectExit(r, 0);
      const seen = r.stdout.trim().split('\n').map((l) => l.split(' '));
      expect(seen.map(([kind, self]) => [kind, self])).toEqual(seen.map(([kind, , pid1]) => [kind, pid1])); // its own links are PID 1's
      // control: PID 1's are namespaces of its own, not the host's (a calf exec on the host would match a PID 1 on the host)
      expect(seen.filter(([kind, , pid1]) => !pid1 || pid1 === fs.readlinkSync(`/proc/self/ns/${kind!}`))).toEqual([]);
      expect(seen.map(([kind]) => kind)).toEqual(kinds);
    });

    it('sees the container’s address on its network (the network namespace)', async () => {
      expect(main!.address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const r = await exec([], ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
      expectExit(r, 0);
      expect(eth0Address(r.stdout)).toBe(main!.address);
    });
  });

  describe('The cgroup', () => {
    it('is in PID 1’s cgroup and counts against its --memory 32m: a 96 MB hog is OOM-killed (137), an 8 MB one runs', async () => {
      const [cgroups, small] = await Promise.all([exec([], ['sh', '-c', 'cat /proc/self/cgroup; echo --; cat /proc/1/cgroup']), exec([], ['memhog', '8'])]);
      expectExit(cgroups, 0);
      const [self, pid1] = cgroups.stdout.split('--\n');
      expect(self).toBe(pid1);
      // control: PID 1's is calf's, not the host's (no cgroup namespace: full paths); the memory
      // hierarchy's line on cgroup v1, the one unified line (0::) on v2
      expect(pid1).toMatch(/^(\d+:memory|0:):\/calf\/\w+$/m);
      expectExit(small, 0);
      expect(small.stdout).toContain('touched 8 MB\n');
      const hog = await exec([], ['memhog', '96']);
      expect(hog.stdout).toContain('touched 8 MB\n'); // it ran, and was killed partway
      expectExit(hog, 137);
    });
  });

  describe('The same confinement as PID 1', () => {
    it('has PID 1’s capabilities, no_new_privs and seccomp filter, exactly', async () => {
      const pid1 = main!.status;
      expect(BigInt(`0x${pid1.CapEff}`) & 1n).toBe(0n); // --cap-drop chown: not Docker's default set
      expect(BigInt(`0x${pid1.CapEff}`)).not.toBe(0n);
      const r = await exec([], ['grep', '-E', '^(Cap|NoNewPrivs|Seccomp)', '/proc/self/status']);
      expectExit(r, 0);
      expect(statusOf(r.stdout)).toEqual(pid1);
      expect(Object.keys(pid1)).toHaveLength(7);
    });

    it('keeps the chroot breakout, run through exec, inside the container', async () => {
      const r = await exec([], ['breakout', 'cat', canary.path]);
      expect(r.stderr).toContain('cat:'); // the helper climbed and ran cat: it found no host
      expect(r.stdout).not.toContain(canary.content);
      expect(r.exitCode).not.toBe(0);
    });

    it('finds the container, not the host, through /proc/1/root', async () => {
      const r = await exec([], ['sh', '-c', `cat /proc/1/root/tmp/token; cat /proc/1/root${canary.path}`]);
      expect(r.stdout).toContain(`${FILE_TOKEN}\n`);
      expect(r.stdout).not.toContain(canary.content);
    });
  });

  describe('Environment, user, working directory, stdin', () => {
    it('gets the container’s environment, with -e over it', async () => {
      const mine = token();
      const r = await exec(['-e', `CALF_EXEC_VAR=${mine}`], ['sh', '-c', 'echo "$CALF_RUN_VAR $CALF_EXEC_VAR $PATH"']);
      expectExit(r, 0);
      expect(r.stdout).toBe(`${RUN_VAR} ${mine} /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n`);
    });

    it('runs in the container’s working directory, or in -w’s', async () => {
      const r = await exec(['-w', '/tmp'], ['sh', '-c', 'pwd; cat token']);
      expectExit(r, 0);
      expect(r.stdout).toBe(`/tmp\n${FILE_TOKEN}\n`);
    });

    it('runs as the container’s user (-u calf), or as -u’s', async () => {
      const name = idOf((await secondContainer()).pid);
      const [own, root] = await Promise.all([
        calf(['exec', name, 'sh', '-c', 'id; grep CapEff /proc/self/status']),
        calf(['exec', '-u', '0', name, 'id']),
      ]);
      expectExit(own, 0);
      expect(own.stdout).toBe('uid=1000(calf) gid=1000(calf)\nCapEff:\t0000000000000000\n');
      expectExit(root, 0);
      expect(root.stdout).toBe('uid=0(root) gid=0(root)\n');
    });

    it('reads calf’s stdin with -i, and /dev/null without', async () => {
      const text = `piped ${token()}\n`;
      const [attached, detached] = await Promise.all([exec(['-i'], ['cat'], text), exec([], ['sh', '-c', 'cat; echo "cat $?"'], text)]);
      expectExit(attached, 0);
      expect(attached.stdout).toBe(text);
      expectExit(detached, 0);
      expect(detached.stdout).toBe('cat 0\n');
    });
  });

  describe('Exit codes and signals', () => {
    it('exits with the command’s status, 127 and 126 for one that cannot run, 128+N for a signal N', async () => {
      const results = await Promise.all([
        exec([], ['sh', '-c', 'exit 3']),
        exec([], [`nope-${token()}`]),
        exec([], ['/etc/passwd']),
        exec([], ['sh', '-c', 'kill -TERM $$']),
      ]);
      expect(results.map((r) => r.exitCode)).toEqual([3, 127, 126, 143]);
      expect(results[1]!.stderr).toMatch(/^calf: exec: "nope-\w+": executable file not found in \$PATH\n$/);
    });

    it('passes a SIGTERM calf gets on to the command', async () => {
      const child = exec([], ['sh', '-c', 'trap "echo got TERM; exit 7" TERM; echo exec-ready; while :; do sleep 0.1; done']);
      await waitForOutput(child, 'exec-ready');
      process.kill(child.pid!, 'SIGTERM');
      const r = await child;
      expectExit(r, 7);
      expect(r.stdout).toBe('exec-ready\ngot TERM\n');
    });
  });

  describe('Nothing left after', () => {
    it('leaves nothing of an ended command in the container, and a command still running ends with the container', async () => {
      let other: Running | undefined;
      let pidNs: HeldPidNamespace | undefined;
      try {
        other = await secondContainer(); // this check ends it
        pidNs = holdPidNamespace(other.pid); // held: its name could go to a namespace made after it ends
        /** The host's pids of the processes in that container's PID namespace, seen from the host. */
        const inContainer = pidNs.members;
        const id = idOf(other.pid);

        const done = await calf(['exec', id, 'sh', '-c', 'ls / >/dev/null; true']);
        expectExit(done, 0);
        expect(inContainer()).toEqual([other.pid]); // the exec'd shell and its child are gone: PID 1 alone

        const running = calf(['exec', id, 'sh', '-c', 'echo exec-ready; exec sleep 600']);
        await waitForOutput(running, 'exec-ready');
        const during = inContainer();
        expect(during).toHaveLength(2); // control: the host sees the exec'd command in the container's PID namespace
        const finished = await other.finish();
        other = undefined;
        second = undefined;
        expectExit(finished, 0);
        const r = await running;
        expect({ exitCode: r.exitCode, left: inContainer(), alive: during.filter((p) => fs.existsSync(`/proc/${p}`)) })
          .toEqual({ exitCode: 137, left: [], alive: [] }); // the kernel killed it (SIGKILL) when PID 1 ended
      } finally {
        pidNs?.release();
        await other?.finish();
      }
    });
  });

  describe('A terminal: -t', () => {
    /** `calf exec ARGS…` on a terminal: util-linux's script gives it one, ROWS×COLS. */
    const onTerminal = (args: readonly string[], input = '') => {
      const { command, env } = calfShellCommand(['exec', ...args]);
      return execa('script', ['-qefc', `stty rows 33 cols 111; exec ${command}`, '/dev/null'], {
        input, env, reject: false, timeout: 45_000 * slow, stripFinalNewline: false,
      });
    };

    it('gives -t a pty of the container’s own devpts, as its controlling terminal, at calf’s window size', async () => {
      const r = await onTerminal(['-t', ref(), 'sh', '-c', 'tty; ls -1 /dev/pts; stty size; ps -o pid,tty,args; exit 3']);
      const lines = r.stdout.replaceAll('\r', '').split('\n');
      expect(lines.slice(0, 4)).toEqual(['/dev/pts/0', '0', 'ptmx', '33 111']); // pty 0: the container's devpts had none
      const tty = (pid: string) => lines.map((l) => l.trim().split(/\s+/)).find((f) => f[0] === pid)?.[1];
      expect(tty('1')).toBe('?'); // PID 1 has no terminal; the exec'd shell has the new one
      expect(lines.some((l) => /^\s*\d+\s+136,0\s+sh -c tty/.test(l))).toBe(true);
      expect(r.exitCode).toBe(3);
    });

    it('with -it, passes what calf reads to the command’s terminal', async () => {
      const r = await onTerminal(['-it', ref(), 'sh'], 'hostname\nexit 4\n');
      expect(r.stdout.replaceAll('\r', '').split('\n')).toContain(main!.id);
      expect(r.exitCode).toBe(4);
    });

    it('relays all of the command’s output, though it exits as soon as it has written it', async () => {
      // the pty may still be moving the last of it to calf's side when the command's side closes:
      // a relay that takes the hangup for the end loses that tail (here in 2 of 6 runs of this check)
      for (let run = 1; run <= 3; run++) {
        const r = await exec(['-t'], ['sh', '-c', 'seq 1 30000; exit 5']);
        const lines = r.stdout.replaceAll('\r', '').split('\n').filter(Boolean);
        expect({ run, exitCode: r.exitCode, lines: lines.length, last: lines.at(-1) }).toEqual({ run, exitCode: 5, lines: 30000, last: '30000' });
      }
    });
  });
});
