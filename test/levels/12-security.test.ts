/**
 * Level 12: a container's root is confined as Docker confines it: Docker's 14 capabilities,
 * no_new_privs, a seccomp filter, masked and read-only paths in /proc and /sys, and a device
 * policy. Every refusal is checked against `--privileged`, where the same helper must succeed:
 * proof that the helper works and that calf, not the host, refuses.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import fs from 'node:fs';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { run, expectExit } from '../support/target.js';
import { hostCanary, token } from '../support/canary.js';
import { version } from '../support/cgroups.js';
import { parseMountinfo, readMountinfo, v1Hierarchy } from '../support/mounts.js';

/** Docker's default set (moby's oci/caps/defaults.go), as the kernel prints it in /proc/PID/status. */
const DOCKER_CAPS = 0xa80425fbn;
const CAP_CHOWN = 0;
const CAP_NET_RAW = 13;
const CAP_MKNOD = 27;
/** Every capability the host lets root have: the tests' own bounding set (a host may lack some). */
const ALL_CAPS = BigInt(`0x${/^CapBnd:\s+(\w+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]}`);

/** A v1 devices controller on the host: calf's device policy needs one; without it, calf drops CAP_MKNOD (see the README). */
const devicesV1 = v1Hierarchy('devices') !== undefined;
const EXPECTED_CAPS = devicesV1 ? DOCKER_CAPS : DOCKER_CAPS & ~(1n << BigInt(CAP_MKNOD));

/** The five capability sets and NoNewPrivs/Seccomp of a container's first process. */
async function status(flags: string[] = []): Promise<Record<string, string>> {
  const r = await run([...flags, 'busybox', 'cat', '/proc/self/status']);
  expectExit(r, 0);
  const fields = Object.fromEntries(r.stdout.split('\n').map((l) => l.split(':\t')).filter((f) => f.length === 2).map(([k, v]) => [k, v!.trim()]));
  expect(Object.keys(fields)).toEqual(expect.arrayContaining(['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp']));
  return fields as Record<string, string>;
}

/**
 * Shell that tries what a contained process would: mount the cgroup filesystem and write "no
 * limit" into its own cgroup's pids and memory limits (the path /proc/self/cgroup names: no cgroup
 * namespace hides it). Prints `lifted CONTROLLER` for each it lifted. v1 raises memory+swap before
 * memory (the kernel keeps memsw ≥ memory); v2 has one tree and `max`.
 */
const LIFT_LIMITS = version === 'v2'
  ? `mkdir -p /tmp/cg && mount -t cgroup2 none /tmp/cg && mine=/tmp/cg$(sed -n 's/^0:://p' /proc/self/cgroup) &&
     echo max > $mine/pids.max && echo lifted pids && echo max > $mine/memory.max && echo lifted memory; echo max > $mine/memory.swap.max`
  : `lift() { # CONTROLLER FILE VALUE…: mount the controller's hierarchy, write each FILE of our own cgroup
       line=$(grep -E ":([^:]*,)?$1(,[^:]*)?:" /proc/self/cgroup); mine=$(echo "$line" | cut -d: -f3)
       mkdir -p /tmp/$1 && mount -t cgroup -o "$(echo "$line" | cut -d: -f2)" none /tmp/$1 || return
       c=$1; shift; while [ $# -gt 1 ]; do echo "$2" > "/tmp/$c$mine/$1" || return; shift 2; done; echo "lifted $c"
     }
     lift pids pids.max max; lift memory memory.memsw.limit_in_bytes -1 memory.limit_in_bytes -1`;

const hex = (mask: bigint) => mask.toString(16).padStart(16, '0');

/** `forbidden OP…` in a container: `{ OP: 'EPERM' | 'ok' | … }`. */
async function forbidden(flags: string[], ops: string[]): Promise<Record<string, string>> {
  const r = await run([...flags, 'calf-test', 'forbidden', ...ops]);
  expectExit(r, 0);
  const lines = Object.fromEntries(r.stdout.trim().split('\n').map((l) => { const at = l.lastIndexOf(': '); return [l.slice(0, at), l.slice(at + 2)]; }));
  expect(Object.keys(lines).sort()).toEqual([...ops].sort()); // the helper ran every operation
  return lines;
}

/** The host's root filesystem device, major:minor, from its mount table. */
const rootDevice = readMountinfo().find((m) => m.point === '/')!.device;

/** A block device the host's root may open (an unattached loop device): the device policy's positive control. */
const loopDevice = (() => {
  try {
    const st = fs.statSync('/dev/loop0');
    if (!st.isBlockDevice()) return undefined;
    fs.closeSync(fs.openSync('/dev/loop0', 'r'));
    return '7:0';
  } catch {
    return undefined;
  }
})();

describe('12 security', () => {
  describe('Masked and read-only paths', () => {
    // Docker's masked paths that this kernel has and that tell root something on the host
    const maskedFiles = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/latency_stats', '/proc/interrupts']
      .filter((f) => { try { return f === '/proc/kcore' ? fs.existsSync(f) : fs.readFileSync(f).length > 0; } catch { return false; } }); // (kcore: as big as the address space, never read whole)
    const maskedDirs = ['/sys/firmware', '/proc/acpi', '/proc/scsi', '/proc/asound'].filter((d) => { try { return fs.readdirSync(d).length > 0; } catch { return false; } });

    it(`shows ${[...maskedFiles, ...maskedDirs].join(', ')} empty and unwritable, while --privileged sees the host’s`, async () => {
      expect(maskedFiles.length + maskedDirs.length).toBeGreaterThan(0);
      // and a directory's mask is read-only: a writable tmpfs would let root plant files there
      const probe = (d: string) => `touch ${d}/.calf-probe 2>/dev/null && echo "writable ${d}"`;
      const script = [...maskedFiles.map((f) => `echo "${f} $(head -c 64 ${f} | wc -c)"`), ...maskedDirs.map((d) => `echo "${d} $(ls -A ${d} | wc -l)"; ${probe(d)}`),
        'touch /tmp/.calf-probe && echo "writable /tmp"'].join('; ');
      const confined = await run(['busybox', 'sh', '-c', script]);
      const privileged = await run(['--privileged', 'busybox', 'sh', '-c', script]);
      expectExit(confined, 0);
      expectExit(privileged, 0);
      const writable = confined.stdout.split('\n').filter((l) => l.startsWith('writable ')).map((l) => l.slice('writable '.length));
      expect(writable).toEqual(['/tmp']); // touch works (the positive control), and not in a masked directory
      const sizes = (out: string) => Object.fromEntries(out.trim().split('\n').filter((l) => !l.startsWith('writable ')).map((l) => l.split(' ')).map(([p, n]) => [p, Number(n)]));
      const inside = sizes(confined.stdout);
      const control = sizes(privileged.stdout);
      for (const p of [...maskedFiles, ...maskedDirs]) {
        expect([p, control[p]! > 0]).toEqual([p, true]); // the host's content is there to hide
        expect([p, inside[p]]).toEqual([p, 0]);
      }
    });

    it('refuses writes to /proc/sys (and /proc/sysrq-trigger, where the kernel has one): read-only', async () => {
      const ops = ['procsys', ...(fs.existsSync('/proc/sysrq-trigger') ? ['sysrq'] : [])];
      const confined = await forbidden([], ops);
      const privileged = await forbidden(['--privileged'], ops);
      for (const op of ops) {
        expect([op, privileged[op]]).toEqual([op, 'ok']);
        expect([op, confined[op]]).toEqual([op, 'EROFS']);
      }
    });

    it('mounts /proc/sys, /proc/irq, /proc/bus and /proc/fs read-only, nosuid, nodev and noexec, and /proc itself stays writable', async () => {
      const r = await run(['busybox', 'cat', '/proc/self/mountinfo']);
      expectExit(r, 0);
      const options = Object.fromEntries(parseMountinfo(r.stdout).map((m) => [m.point, m.options]));
      expect(options['/proc']).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev', 'noexec']));
      // a bind remount sets that mount's flags exactly: the ones /proc has must be given again
      for (const p of ['/proc/sys', '/proc/irq', '/proc/bus', '/proc/fs'].filter((d) => fs.existsSync(d))) {
        expect([p, options[p]]).toEqual([p, expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec'])]);
      }
    });
  });

  describe('Capabilities', () => {
    it('gives root Docker’s 14 capabilities: effective, permitted and bounding; no inheritable, no ambient', async () => {
      const s = await status();
      expect({ CapEff: s.CapEff, CapPrm: s.CapPrm, CapBnd: s.CapBnd, CapInh: s.CapInh, CapAmb: s.CapAmb })
        .toEqual({ CapEff: hex(EXPECTED_CAPS), CapPrm: hex(EXPECTED_CAPS), CapBnd: hex(EXPECTED_CAPS), CapInh: hex(0n), CapAmb: hex(0n) });
    });

    it('lets root chown (kept) but not set the host name (CAP_SYS_ADMIN, dropped)', async () => {
      const name = `calf-${token()}`;
      const r = await run(['busybox', 'sh', '-c', `touch /tmp/f && chown 12:34 /tmp/f && stat -c %u:%g /tmp/f; hostname ${name}; echo "hostname $?"; hostname`]);
      expectExit(r, 0);
      expect(r.stdout).toContain('12:34\n');
      expect(r.stdout).toContain('hostname 1\n');
      expect(r.stdout).not.toContain(name);
    });

    it('refuses root an address on its own network (CAP_NET_ADMIN, dropped), which --privileged may add', async () => {
      // --network none: the container's own namespace with only lo, so even the control changes nothing outside
      const address = `10.${randomInt(0, 256)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
      const script = `ip addr add ${address}/32 dev lo; echo "ip $?"; ip -o addr show dev lo`;
      const confined = await run(['--network', 'none', 'busybox', 'sh', '-c', script]);
      const privileged = await run(['--network', 'none', '--privileged', 'busybox', 'sh', '-c', script]);
      expectExit(privileged, 0);
      expect(privileged.stdout).toContain('ip 0\n');
      expect(privileged.stdout).toContain(`inet ${address}/32`);
      expectExit(confined, 0);
      expect(confined.stdout).toContain('inet 127.0.0.1/8'); // ip ran and printed lo
      expect(confined.stdout).not.toContain(address);
      expect(confined.stdout).not.toContain('ip 0\n');
    });
  });

  describe('no_new_privs and seccomp', () => {
    it('sets no_new_privs and a seccomp filter (NoNewPrivs 1, Seccomp 2)', async () => {
      const s = await status();
      expect({ NoNewPrivs: s.NoNewPrivs, Seccomp: s.Seccomp }).toEqual({ NoNewPrivs: '1', Seccomp: '2' });
    });

    const ops = ['mount', 'unshare', 'userns', 'keyctl', 'ptrace', 'cgroupfs'];
    it(`refuses ${ops.join(', ')} with EPERM, which --privileged allows`, async () => {
      const privileged = await forbidden(['--privileged'], ops);
      const confined = await forbidden([], ops);
      for (const op of ops) {
        expect([op, privileged[op]]).toEqual([op, 'ok']);
        expect([op, confined[op]]).toEqual([op, 'EPERM']);
      }
    });

    it('still refuses mount and unshare with every capability added (the filter, not the capabilities)', async () => {
      const confined = await forbidden(['--cap-add', 'ALL'], ['mount', 'unshare', 'keyctl']);
      expect(confined).toEqual({ mount: 'EPERM', unshare: 'EPERM', keyctl: 'EPERM' });
    });
  });

  describe('The device policy', () => {
    const control = loopDevice ? it : it.skip; // needs a block device the host's root may open: /dev/loop0
    control('refuses to open a block device that --privileged opens (an unattached loop device)', async () => {
      const op = `block:${loopDevice}`;
      const privileged = await forbidden(['--privileged'], [op]);
      const confined = await forbidden([], [op]);
      expect(privileged[op]).toBe('ok');
      expect(confined[op]).toBe(devicesV1 ? 'open EPERM' : 'mknod EPERM');
    });

    it(`refuses to open the host’s root disk (${rootDevice}) through a device node made inside`, async () => {
      const op = `block:${rootDevice}`;
      const confined = await forbidden([], [op]);
      expect(confined[op]).toBe(devicesV1 ? 'open EPERM' : 'mknod EPERM');
    });

    (devicesV1 ? it : it.skip)('puts the container in a devices cgroup of its own, gone after it exits', async () => {
      const r = await run(['busybox', 'cat', '/proc/self/cgroup', '/proc/1/cgroup']);
      expectExit(r, 0);
      const line = /^\d+:devices:(\/calf\/[0-9a-f]{64})$/m.exec(r.stdout);
      expect(line).not.toBeNull();
      const hierarchy = v1Hierarchy('devices')!;
      expect(fs.existsSync(path.join(hierarchy, line![1]!))).toBe(false);
    });
  });

  describe('--privileged, --cap-add and --cap-drop', () => {
    it('gives --privileged every capability, and neither no_new_privs nor a filter', async () => {
      const s = await status(['--privileged']);
      expect({ CapEff: s.CapEff, CapBnd: s.CapBnd, NoNewPrivs: s.NoNewPrivs, Seccomp: s.Seccomp })
        .toEqual({ CapEff: hex(ALL_CAPS), CapBnd: hex(ALL_CAPS), NoNewPrivs: '0', Seccomp: '0' });
    });

    it('applies --cap-drop ALL --cap-add net_raw: only CAP_NET_RAW', async () => {
      const s = await status(['--cap-drop', 'ALL', '--cap-add', 'net_raw']);
      expect({ CapEff: s.CapEff, CapBnd: s.CapBnd }).toEqual({ CapEff: hex(1n << BigInt(CAP_NET_RAW)), CapBnd: hex(1n << BigInt(CAP_NET_RAW)) });
    });

    it('applies --cap-drop CAP_CHOWN and --cap-add sys_admin to Docker’s set: chown fails, hostname works', async () => {
      const name = `calf-${token()}`;
      const r = await run(['--cap-drop', 'CAP_CHOWN', '--cap-add', 'sys_admin', 'busybox', 'sh', '-c',
        `grep CapEff /proc/self/status; touch /tmp/f; chown 12:34 /tmp/f; echo "chown $?"; hostname ${name} && hostname`]);
      expectExit(r, 0);
      const expected = (EXPECTED_CAPS & ~(1n << BigInt(CAP_CHOWN))) | (1n << 21n);
      expect(r.stdout).toContain(`CapEff:\t${hex(expected)}\n`);
      expect(r.stdout).toContain('chown 1\n');
      expect(r.stdout).toContain(`${name}\n`);
    });

    it('refuses an unknown capability with one line and exit 125, before anything runs', async () => {
      const cap = `CAP_NOPE_${token()}`;
      const r = await run(['--cap-add', cap, 'busybox', 'echo', 'ran']);
      expectExit(r, 125);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(cap);
      const ok = await run(['--cap-add', 'chown', 'busybox', 'echo', 'ran']); // control: a known name works
      expectExit(ok, 0);
      expect(ok.stdout).toBe('ran\n');
    });
  });

  describe('Escapes, still closed', () => {
    const canary = hostCanary();
    afterAll(() => canary.remove());

    it('keeps the chroot breakout inside the container', async () => {
      const r = await run(['calf-test', 'breakout', 'cat', canary.path]);
      expect(r.stderr).toContain('cat:'); // the helper climbed and ran cat: it just found no host
      expect(r.stdout).not.toContain(canary.content);
      expect(r.exitCode).not.toBe(0);
    });

    it('keeps a fork bomb and a memory hog inside level 10’s limits, though they try to lift them (--privileged can)', async () => {
      const limit = randomInt(20, 60);
      // sh and the bomb are two of the container's processes: the bomb can make limit - 2 more
      const script = `${LIFT_LIMITS}\nforkbomb; memhog 96`;
      const flags = ['--pids-limit', String(limit), '--memory', '32m', '--network', 'none'];
      const confined = await run([...flags, 'calf-test', 'sh', '-c', script]);
      const privileged = await run([...flags, '--privileged', 'calf-test', 'sh', '-c', script]);
      const outcome = (r: typeof confined) => ({
        lifted: r.stdout.match(/^lifted \w+$/gm) ?? [],
        forked: Number(/^forked (\d+)$/m.exec(r.stdout)?.[1]),
        touched: r.stdout.match(/^touched \d+ MB$/gm)?.at(-1),
        exitCode: r.exitCode,
      });
      // the control: the same script lifts both limits, and then nothing stops the bomb (it brakes at 200) or the hog
      expect(outcome(privileged)).toEqual({ lifted: ['lifted pids', 'lifted memory'], forked: 200, touched: 'touched 96 MB', exitCode: 0 });
      expect(confined.stdout).toContain('touched 8 MB'); // the hog ran, and was stopped partway
      expect(outcome(confined)).toEqual({ lifted: [], forked: limit - 2, touched: expect.not.stringMatching(/96/), exitCode: 137 });
      const after = await run(['busybox', 'echo', 'host still forks']);
      expect(after.stdout).toBe('host still forks\n');
    });

    it('leads /proc/1/root to the container’s own root, not the host’s', async () => {
      const mine = token();
      const r = await run(['busybox', 'sh', '-c', `echo ${mine} > /tmp/mine; cat /proc/1/root/tmp/mine; cat /proc/1/root${canary.path}`]);
      expect(r.stdout).toContain(`${mine}\n`);
      expect(r.stdout).not.toContain(canary.content);
    });
  });
});
