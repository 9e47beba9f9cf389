/**
 * Capabilities and process attributes: `<sys/prctl.h>`, `<linux/capability.h>`.
 * @module
 */
import fs from 'node:fs';
import koffi from 'koffi';
import { libc, check, Bare } from './libc.js';

/** `prctl(2)` options calf uses. */
export const PR_CAPBSET_READ = 23;
export const PR_CAPBSET_DROP = 24;
/**
 * Make the caller a child subreaper (`arg2` 1) or not (0): an orphan among its descendants is
 * re-parented to it instead of to init, so it can learn that orphan's exit status (a monitor
 * does this). Its children then include processes Node did not spawn: see `reapAdopted`.
 */
export const PR_SET_CHILD_SUBREAPER = 36;
/** Whether the caller is a child subreaper: {@link prctl} returns it (the kernel writes it through `arg2`). */
export const PR_GET_CHILD_SUBREAPER = 37;
export const PR_SET_NO_NEW_PRIVS = 38;
export const PR_GET_NO_NEW_PRIVS = 39;
export const PR_CAP_AMBIENT = 47;
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;

/**
 * Capability names by number (`CAP_*` from `<linux/capability.h>`, the same on every
 * architecture). The running kernel may know fewer: see {@link capLastCap}.
 */
export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN',
  'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

/** A capability's name, `CAP_CHOWN`… */
export type Capability = (typeof CAPABILITIES)[number];

/**
 * The highest capability number the running kernel knows.
 * @see https://man7.org/linux/man-pages/man7/capabilities.7.html (`/proc/sys/kernel/cap_last_cap`)
 */
export function capLastCap(): number {
  return Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
}

/** A set of capabilities as the kernel's 64-bit mask (what `/proc/PID/status` prints in hex). */
export function capMask(caps: Iterable<Capability>): bigint {
  let mask = 0n;
  for (const cap of caps) mask |= 1n << BigInt(CAPABILITIES.indexOf(cap));
  return mask;
}

const _prctl = libc.func('int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)');
// the options that answer through a pointer in arg2 instead of the return value
const _prctlOut = libc.func('prctl', 'int', ['int', koffi.out(koffi.pointer('int')), 'unsigned long', 'unsigned long', 'unsigned long']);
const ANSWER_IN_ARG2 = new Set([PR_GET_CHILD_SUBREAPER]);
// capget/capset take a header and two 32-bit data structs (version 3: 64 capabilities): raw bytes
const _capget = libc.func('int capget(_Inout_ uint8_t *hdrp, _Out_ uint8_t *datap)');
const _capset = libc.func('int capset(uint8_t *hdrp, const uint8_t *datap)');

/**
 * Operations on the calling process (or, for capabilities, the calling **thread**). Returns the
 * call's result (the value asked for, with the `GET`/`READ` options).
 * @see https://man7.org/linux/man-pages/man2/prctl.2.html
 */
export function prctl(option: number, arg2 = 0, arg3 = 0, arg4 = 0, arg5 = 0): number {
  if (ANSWER_IN_ARG2.has(option)) {
    const answer = [0];
    check(_prctlOut(option, answer, arg3, arg4, arg5) as number, 'prctl', [option]);
    return answer[0]!;
  }
  return check(_prctl(option, arg2, arg3, arg4, arg5) as number, 'prctl', [option, arg2, arg3]);
}

/** A thread's three capability sets, as masks. */
export interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;

function header(): Buffer {
  const hdr = Buffer.alloc(8); // { u32 version; int pid } — pid 0: the calling thread
  hdr.writeUInt32LE(_LINUX_CAPABILITY_VERSION_3, 0);
  return hdr;
}

/**
 * The calling thread's effective, permitted and inheritable sets.
 * @see https://man7.org/linux/man-pages/man2/capget.2.html
 */
export function capget(): CapSets {
  const data = Buffer.alloc(24); // two { u32 effective, permitted, inheritable }: low and high words
  check(_capget(header(), data) as number, 'capget');
  const word = (i: number) => BigInt(data.readUInt32LE(i)) | (BigInt(data.readUInt32LE(12 + i)) << 32n);
  return { effective: word(0), permitted: word(4), inheritable: word(8) };
}

/**
 * Set the calling **thread**'s effective, permitted and inheritable sets. A set may only
 * shrink (permitted), or stay within permitted (effective) and the bounding set (inheritable).
 * In Node, the other threads keep theirs: they end at `execve`.
 * @see https://man7.org/linux/man-pages/man2/capset.2.html
 */
export function capset(sets: CapSets): void {
  const data = Buffer.alloc(24);
  for (const [i, set] of [sets.effective, sets.permitted, sets.inheritable].entries()) {
    data.writeUInt32LE(Number(set & 0xffffffffn), 4 * i);
    data.writeUInt32LE(Number(set >> 32n), 12 + 4 * i);
  }
  check(_capset(header(), data) as number, 'capset', [new Bare(`{ effective: 0x${sets.effective.toString(16)}, permitted: 0x${sets.permitted.toString(16)}, inheritable: 0x${sets.inheritable.toString(16)} }`)]);
}
