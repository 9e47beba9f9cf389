/**
 * Capabilities and process attributes: `<sys/prctl.h>`, `<linux/capability.h>`.
 * @module
 */
import fs from 'node:fs';
import koffi from 'koffi';
import { libc, check, Bare, type Layout } from './libc.js';

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

/**
 * A set of capabilities, by name, as the kernel's 64-bit mask (what `/proc/PID/status` prints in hex).
 * @throws Error naming a capability this table does not know
 */
export function capMask(caps: Iterable<string>): bigint {
  let mask = 0n;
  for (const cap of caps) {
    const bit = (CAPABILITIES as readonly string[]).indexOf(cap);
    if (bit === -1) throw new Error(`unknown capability ${cap}`);
    mask |= 1n << BigInt(bit);
  }
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

/** `capget`/`capset` version 3: 64 capabilities, in two 32-bit data structs. */
export const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;
/** `struct __user_cap_header_struct { __u32 version; int pid; }`: 8 bytes. */
export const CAP_USER_HEADER = { type: 'struct __user_cap_header_struct', sizeof: 8, offsets: { version: 0, pid: 4 } } as const satisfies Layout;
/** `struct __user_cap_data_struct { __u32 effective, permitted, inheritable; }`: 12 bytes; version 3 takes two (low and high words). */
export const CAP_USER_DATA = { type: 'struct __user_cap_data_struct', sizeof: 12, offsets: { effective: 0, permitted: 4, inheritable: 8 } } as const satisfies Layout;

function header(): Buffer {
  const hdr = Buffer.alloc(CAP_USER_HEADER.sizeof); // pid 0: the calling thread
  hdr.writeUInt32LE(_LINUX_CAPABILITY_VERSION_3, CAP_USER_HEADER.offsets.version);
  return hdr;
}

/**
 * The calling thread's effective, permitted and inheritable sets.
 * @see https://man7.org/linux/man-pages/man2/capget.2.html
 */
export function capget(): CapSets {
  const data = Buffer.alloc(2 * CAP_USER_DATA.sizeof); // low words, then high words
  check(_capget(header(), data) as number, 'capget');
  const word = (i: number) => BigInt(data.readUInt32LE(i)) | (BigInt(data.readUInt32LE(CAP_USER_DATA.sizeof + i)) << 32n);
  const at = CAP_USER_DATA.offsets;
  return { effective: word(at.effective!), permitted: word(at.permitted!), inheritable: word(at.inheritable!) };
}

/**
 * Set the calling **thread**'s effective, permitted and inheritable sets. A set may only
 * shrink (permitted), or stay within permitted (effective) and the bounding set (inheritable).
 * In Node, the other threads keep theirs: they end at `execve`.
 * @see https://man7.org/linux/man-pages/man2/capset.2.html
 */
export function capset(sets: CapSets): void {
  const data = Buffer.alloc(2 * CAP_USER_DATA.sizeof);
  for (const field of ['effective', 'permitted', 'inheritable'] as const) {
    data.writeUInt32LE(Number(sets[field] & 0xffffffffn), CAP_USER_DATA.offsets[field]);
    data.writeUInt32LE(Number(sets[field] >> 32n), CAP_USER_DATA.sizeof + CAP_USER_DATA.offsets[field]);
  }
  check(_capset(header(), data) as number, 'capset', [new Bare(`{ effective: 0x${sets.effective.toString(16)}, permitted: 0x${sets.permitted.toString(16)}, inheritable: 0x${sets.inheritable.toString(16)} }`)]);
}
