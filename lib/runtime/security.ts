/**
 * Docker's default confinement, as data and finished helpers for level 12: the capability set
 * and `--cap-add`/`--cap-drop`, the masked and read-only paths of `/proc` and `/sys`, the
 * seccomp profile, and the device rules (for a v1 `devices` cgroup per container), all in the
 * OCI runtime-spec's shapes (lib/core/spec.ts).
 *
 * Sources: moby's `oci/caps/defaults.go` and `oci/caps/utils.go` (capabilities),
 * `oci/defaults.go` (masked and read-only paths, device rules), `profiles/seccomp/default.json`.
 * @module
 */
import { CAPABILITIES, PR_CAPBSET_READ, capLastCap, prctl, type Capability } from '../linux/capability.js';
import { CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET } from '../linux/sched.js';
import { CalfError } from '../core/errors.js';
import { hasDevicesController } from '../cgroup/devices.js';
import type { DeviceRule, Linux, Process, Seccomp, SeccompRule } from '../core/spec.js';

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

const EPERM = 1;
const ENOSYS = 38;
const NAMESPACE_FLAGS = [CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET];
const deny = (errnoRet: number, ...names: string[]): SeccompRule => ({ names, action: 'SCMP_ACT_ERRNO', errnoRet });

/**
 * The seccomp profile: allow everything but what Docker's default profile refuses a container
 * without `CAP_SYS_ADMIN` and friends, by family. clone() is refused only with a namespace flag
 * (its first argument on x86_64 and arm64; one rule per flag, as libseccomp matches one mask);
 * clone3() passes its flags in memory a filter cannot read, so it gets `ENOSYS` and libc falls
 * back to clone(), as under Docker.
 */
export const SECCOMP_PROFILE: Seccomp = {
  defaultAction: 'SCMP_ACT_ALLOW',
  syscalls: [
    deny(EPERM, 'unshare', 'setns'), // namespaces
    ...NAMESPACE_FLAGS.map((flag) => ({ ...deny(EPERM, 'clone'), args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }] })),
    deny(ENOSYS, 'clone3'),
    deny(EPERM, 'mount', 'umount', 'umount2', 'pivot_root', 'mount_setattr', // mounts, old and new API
      'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree'),
    deny(EPERM, 'keyctl', 'add_key', 'request_key'), // keyrings: not namespaced
    deny(EPERM, 'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp'), // other processes' memory
    deny(EPERM, 'init_module', 'finit_module', 'delete_module', 'create_module', 'query_module', 'get_kernel_syms'), // kernel modules
    deny(EPERM, 'kexec_load', 'kexec_file_load', 'reboot'), // another kernel, or none
    deny(EPERM, 'bpf', 'perf_event_open', 'userfaultfd'), // programs in the kernel, and its observers
    deny(EPERM, 'acct', 'swapon', 'swapoff', 'settimeofday', 'clock_settime', 'clock_adjtime', 'syslog', 'iopl', 'ioperm',
      'open_by_handle_at', 'lookup_dcookie', 'nfsservctl', 'quotactl', 'uselib', 'vhangup', 'ustat', 'sysfs', '_sysctl'),
  ],
};

// ─── The device policy: a v1 devices cgroup per container ──────────────────────────────────────

const chr = (major: number, minor?: number): DeviceRule => ({ allow: true, type: 'c', major, ...(minor === undefined ? {} : { minor }), access: 'rwm' });

/**
 * Docker's device rules: deny everything, then create any device node (`m`), but read and write
 * only these: null, zero, full, random, urandom, tty, console, ptmx, the pseudo-terminals, tun.
 */
export const DEVICE_RULES: readonly DeviceRule[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', access: 'm' }, { allow: true, type: 'b', access: 'm' },
  chr(1, 3), chr(1, 5), chr(1, 7), chr(1, 8), chr(1, 9), chr(5, 0), chr(5, 1), chr(5, 2), chr(136), chr(10, 200),
];

/** The flags level 12 reads. */
export interface SecurityFlags {
  privileged?: boolean | undefined;
  capAdd?: string[] | undefined;
  capDrop?: string[] | undefined;
}

/**
 * What the container may do, as the spec's fields: Docker's defaults, or what `--privileged`,
 * `--cap-add` and `--cap-drop` make of them. `devices` are the device cgroup's rules for
 * `linux.resources`. Without a v1 devices controller (cgroup v2 needs a BPF program instead, a
 * bonus of level 12), no device rules, and no CAP_MKNOD in their place.
 */
export function securityConfig(flags: SecurityFlags, devicePolicy = hasDevicesController()): {
  process: Pick<Process, 'capabilities' | 'noNewPrivileges'>;
  linux: Pick<Linux, 'maskedPaths' | 'readonlyPaths' | 'seccomp'>;
  devices?: DeviceRule[];
} {
  const privileged = flags.privileged ?? false;
  const caps: string[] = containerCapabilities(flags.capAdd, flags.capDrop, privileged)
    .filter((cap) => privileged || devicePolicy || cap !== 'CAP_MKNOD');
  const process = { capabilities: { bounding: caps, effective: caps, permitted: caps }, noNewPrivileges: !privileged };
  if (privileged) return { process, linux: {} };
  return {
    process,
    linux: { maskedPaths: [...MASKED_PATHS], readonlyPaths: [...READONLY_PATHS], seccomp: SECCOMP_PROFILE },
    ...(devicePolicy ? { devices: [...DEVICE_RULES] } : {}),
  };
}
