/**
 * Docker's default confinement, as data and finished helpers for level 12: the capability set
 * and `--cap-add`/`--cap-drop`, the masked and read-only paths of `/proc` and `/sys`, the
 * seccomp deny-list, and the device policy (a v1 `devices` cgroup per container).
 *
 * Sources: moby's `oci/caps/defaults.go` and `oci/caps/utils.go` (capabilities),
 * `oci/defaults.go` (masked and read-only paths, device rules), `profiles/seccomp/default.json`.
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { CAPABILITIES, PR_CAPBSET_READ, capLastCap, prctl, type Capability } from '../linux/capability.js';
import { CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET } from '../linux/sched.js';
import { SCMP_CMP_MASKED_EQ, type ScmpArgCmp } from '../linux/seccomp.js';
import { CalfError } from './errors.js';
import { registerLeftovers } from './leftovers.js';
import { calfRoot } from './root.js';

/** The 14 capabilities a Docker container's root keeps (moby's `oci/caps/defaults.go`). */
export const DOCKER_CAPABILITIES: readonly Capability[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/**
 * Every capability calf itself may hand on: those the running kernel knows, that are in calf's
 * own bounding set (a host may have dropped some for everyone: then `--privileged` can't have them).
 */
export function allCapabilities(): Capability[] {
  return CAPABILITIES.slice(0, capLastCap() + 1).filter((_, cap) => prctl(PR_CAPBSET_READ, cap) === 1);
}

/**
 * `--cap-add`/`--cap-drop`'s parser: `net_admin`, `CAP_NET_ADMIN` or `ALL`, repeatable; an
 * unknown name is a bad value (exit 125), as in Docker.
 */
export function capabilityArg(text: string, previous: string[] | undefined): string[] {
  const upper = text.trim().toUpperCase();
  const name = upper === 'ALL' || upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (name !== 'ALL' && !(CAPABILITIES as readonly string[]).includes(name)) throw new CalfError(`unknown capability: ${JSON.stringify(text)}`);
  return [...(previous ?? []), name];
}

/**
 * The capabilities a container gets, as Docker's `TweakCapabilities` computes them: every one
 * with `--privileged`; with `--cap-add ALL` every one but the dropped; with `--cap-drop ALL`
 * only the added; otherwise Docker's 14, minus the dropped, plus the added.
 */
export function containerCapabilities(add: readonly string[] = [], drop: readonly string[] = [], privileged = false): Capability[] {
  const all = allCapabilities();
  if (privileged) return all;
  if (add.includes('ALL')) return all.filter((c) => !drop.includes(c));
  const added = add.filter((c): c is Capability => all.includes(c as Capability));
  const base = drop.includes('ALL') ? [] : DOCKER_CAPABILITIES.filter((c) => !drop.includes(c));
  return [...new Set([...base, ...added])];
}

/** Files and directories a container must not read: files get /dev/null, directories an empty tmpfs (moby's `oci/defaults.go`). */
export const MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** Paths a container may read but not write: kernel tunables and triggers that are not namespaced. */
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** One seccomp rule of the deny-list: the syscall, the errno it fails with, and when (always, without `args`). */
export interface DenyRule {
  syscall: string;
  errno: number;
  args?: ScmpArgCmp[];
}

const EPERM = 1;
const ENOSYS = 38;
const deny = (errno: number, ...syscalls: string[]): DenyRule[] => syscalls.map((syscall) => ({ syscall, errno }));
const NAMESPACE_FLAGS = [CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET];

/**
 * What the seccomp filter refuses: at least what Docker's default profile refuses a container
 * without `CAP_SYS_ADMIN` and friends, by family. clone() is refused only with a namespace flag
 * (its first argument on x86_64 and arm64; one rule per flag, as libseccomp matches one mask);
 * clone3() passes its flags in memory a filter cannot read, so it gets `ENOSYS` and libc falls
 * back to clone(), as under Docker.
 */
export const SECCOMP_DENY: readonly DenyRule[] = [
  ...deny(EPERM, 'unshare', 'setns'), // namespaces
  ...NAMESPACE_FLAGS.map((flag) => ({ syscall: 'clone', errno: EPERM, args: [{ arg: 0, op: SCMP_CMP_MASKED_EQ, datumA: BigInt(flag), datumB: BigInt(flag) }] })),
  ...deny(ENOSYS, 'clone3'),
  ...deny(EPERM, 'mount', 'umount', 'umount2', 'pivot_root', 'mount_setattr', // mounts, old and new API
    'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree'),
  ...deny(EPERM, 'keyctl', 'add_key', 'request_key'), // keyrings: not namespaced
  ...deny(EPERM, 'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp'), // other processes' memory
  ...deny(EPERM, 'init_module', 'finit_module', 'delete_module', 'create_module', 'query_module', 'get_kernel_syms'), // kernel modules
  ...deny(EPERM, 'kexec_load', 'kexec_file_load', 'reboot'), // another kernel, or none
  ...deny(EPERM, 'bpf', 'perf_event_open', 'userfaultfd'), // programs in the kernel, and its observers
  ...deny(EPERM, 'acct', 'swapon', 'swapoff', 'settimeofday', 'clock_settime', 'clock_adjtime', 'syslog', 'iopl', 'ioperm',
    'open_by_handle_at', 'lookup_dcookie', 'nfsservctl', 'quotactl', 'uselib', 'vhangup', 'ustat', 'sysfs', '_sysctl'),
];

// ─── The device policy: a v1 devices cgroup per container ──────────────────────────────────────

/**
 * Docker's device rules: create any device node (`m`), but read and write only these: null,
 * zero, full, random, urandom, tty, console, ptmx, the pseudo-terminals, tun.
 */
export const DEVICE_RULES: readonly string[] = [
  'c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm',
  'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm', 'c 10:200 rwm',
];

/** Where the v1 `devices` controller is mounted, or undefined (cgroup v2 has none: a BPF program does its job). */
export function devicesHierarchy(): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [before, after = ''] = line.split(' - ');
    const [fsType, , options = ''] = after.split(' ');
    if (fsType === 'cgroup' && options.split(',').includes('devices')) return before!.split(' ')[4];
  }
  return undefined;
}

/** Where container `id`'s devices cgroup is: `calf/<short id>` at the root of the hierarchy, as Docker's cgroupfs layout. */
function devicesDir(id: string, hierarchy = devicesHierarchy()): string | undefined {
  return hierarchy && path.join(hierarchy, 'calf', id.slice(0, 12));
}

/**
 * The record that says the devices cgroup of container `short` is this calf root's:
 * `<calf root>/cgroups/devices-<short id>`, holding the pid of the calf that made it. `calf
 * cleanup` removes only the devices cgroups its root has records of: other roots' (another
 * user's, another test run's) live in the same hierarchy, and one of a container starting right
 * now is empty for a moment.
 */
const deviceRecord = (short: string, root = calfRoot()) => path.join(root, 'cgroups', `devices-${short}`);

/**
 * The devices cgroup of container `id` (`calf/<short id>` at the root of the hierarchy), or
 * undefined without a v1 devices controller. The parent calls it before the init stage makes the
 * cgroup: it records the cgroup under the calf root first, so `calf cleanup` finds it whatever
 * happens next.
 */
export function deviceCgroupPath(id: string, hierarchy = devicesHierarchy()): string | undefined {
  const dir = devicesDir(id, hierarchy);
  if (dir) {
    const record = deviceRecord(id.slice(0, 12));
    fs.mkdirSync(path.dirname(record), { recursive: true });
    fs.writeFileSync(`${record}.tmp-${process.pid}`, `${process.pid}\n`);
    fs.renameSync(`${record}.tmp-${process.pid}`, record);
  }
  return dir;
}

function write(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch (err) {
    throw new CalfError(`failed to write ${JSON.stringify(value)} to ${file}: ${(err as NodeJS.ErrnoException).code}`, { cause: err });
  }
}

/**
 * Make the devices cgroup `dir`, deny every device, allow {@link DEVICE_RULES}, and move the
 * calling process into it (writing 0 to `cgroup.procs` means "me"). Its children inherit it.
 * `null`: nothing to do.
 */
export function enterDeviceCgroup(dir: string | null): void {
  if (dir === null) return; // --privileged, or no devices controller
  fs.mkdirSync(dir, { recursive: true });
  write(path.join(dir, 'devices.deny'), 'a');
  for (const rule of DEVICE_RULES) write(path.join(dir, 'devices.allow'), rule);
  write(path.join(dir, 'cgroup.procs'), '0');
}

/** The pids in the cgroup `dir`, or none when it is gone. */
function members(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process that is exiting already: a zombie, or SIGKILL pending (`calf cleanup` just sent it). */
function dying(pid: number): boolean {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const killed = ['SigPnd', 'ShdPnd'].some((f) => (BigInt(`0x${new RegExp(`^${f}:\\s+(\\w+)`, 'm').exec(status)?.[1] ?? '0'}`) & (1n << 8n)) !== 0n);
    return killed || /^State:\s+[ZX]/m.test(status);
  } catch {
    return true; // gone already
  }
}

/**
 * Remove container `id`'s devices cgroup (and `calf/` when it is the last), once its processes are
 * gone: they may still be exiting, so wait for that, a few seconds at most.
 */
export function removeDeviceCgroup(id: string, root = calfRoot()): void {
  const dir = devicesDir(id);
  if (!dir) return;
  for (let waited = 0; members(dir).length > 0 && waited < 5_000; waited += 20) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  for (const d of [dir, path.dirname(dir)]) {
    try {
      fs.rmdirSync(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || d !== dir) continue; // gone already; or calf/ still holds another container's
      throw new CalfError(`failed to remove devices cgroup ${d}: ${code}`, { cause: err });
    }
  }
  fs.rmSync(deviceRecord(id.slice(0, 12), root), { force: true }); // last: while the cgroup is there, so is its record
}

registerLeftovers({
  kind: 'devices cgroup',
  find: (root) => {
    const hierarchy = devicesHierarchy();
    if (!hierarchy) return [];
    let names: string[];
    try {
      names = fs.readdirSync(path.join(root, 'cgroups'));
    } catch {
      return [];
    }
    // Only this root's, by its records (see deviceRecord): the hierarchy is the whole machine's.
    return names.flatMap((name) => {
      const record = /^devices-([0-9a-f]{12})(?:\.tmp-(\d+))?$/.exec(name);
      if (!record) return [];
      const file = path.join(root, 'cgroups', name);
      if (record[2] !== undefined) return [{ what: `devices cgroup record ${file}`, owner: Number(record[2]), remove: () => fs.rmSync(file, { force: true }) }];
      let owner = NaN;
      try {
        owner = Number(fs.readFileSync(file, 'utf8'));
      } catch {
        return []; // removed meanwhile, with its cgroup
      }
      return [{
        what: `devices cgroup ${devicesDir(record[1]!, hierarchy)}`,
        ...(Number.isInteger(owner) && owner > 0 ? { owner } : {}),
        remove: () => removeDeviceCgroup(record[1]!, root),
      }];
    });
  },
});
