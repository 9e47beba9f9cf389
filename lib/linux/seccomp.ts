/**
 * Seccomp filters through libseccomp (`<seccomp.h>`): it resolves syscall names for the running
 * architecture, and compiles the rules into the BPF program that `seccomp(2)` loads.
 *
 * libseccomp returns a negative errno on failure (it does not set `errno`), so these wrappers
 * throw a {@link SyscallError} from that number.
 * @see https://man7.org/linux/man-pages/man3/seccomp_init.3.html
 * @module
 */
import koffi from 'koffi';
import { libc } from './libc.js';
import { SyscallError } from './syscall-error.js';

const strerror = libc.func('const char *strerror(int errnum)');

/**
 * libseccomp, loaded at import: the init stage loads its filter after pivot_root, when the host's
 * /usr/lib is out of reach. A host without it only fails when a filter is asked for.
 */
function load() {
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libseccomp.so.2');
  } catch (err) {
    return err as Error;
  }
  return {
    init: lib.func('void *seccomp_init(uint32_t def_action)'),
    ruleAddArray: lib.func('int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const uint8_t *arg_array)'),
    load: lib.func('int seccomp_load(void *ctx)'),
    release: lib.func('void seccomp_release(void *ctx)'),
    resolveName: lib.func('int seccomp_syscall_resolve_name(const char *name)'),
    archAdd: lib.func('int seccomp_arch_add(void *ctx, uint32_t arch_token)'),
    archResolveName: lib.func('uint32_t seccomp_arch_resolve_name(const char *arch_name)'),
  };
}
const loaded = load();
function seccomp() {
  if (loaded instanceof Error) throw new Error(`libseccomp.so.2 could not be loaded (install libseccomp2): ${loaded.message}`);
  return loaded;
}

/** Filter actions. */
export const SCMP_ACT_ALLOW = 0x7fff0000;
/** Fail the syscall with `errno` instead of running it. */
export const SCMP_ACT_ERRNO = (errno: number) => 0x00050000 | (errno & 0xffff);

/** Kill the thread that made the syscall. */
export const SCMP_ACT_KILL = 0x00000000;
/** Kill the whole process. */
export const SCMP_ACT_KILL_PROCESS = 0x80000000;
/** Send SIGSYS. */
export const SCMP_ACT_TRAP = 0x00030000;
/** Run it, and log it. */
export const SCMP_ACT_LOG = 0x7ffc0000;

/** Argument comparisons (`enum scmp_compare`). */
export const SCMP_CMP_NE = 1;
export const SCMP_CMP_LT = 2;
export const SCMP_CMP_LE = 3;
export const SCMP_CMP_EQ = 4;
export const SCMP_CMP_GE = 5;
export const SCMP_CMP_GT = 6;
/** `(arg & datum_a) == datum_b` */
export const SCMP_CMP_MASKED_EQ = 7;

const ACTIONS: Record<string, number> = {
  SCMP_ACT_ALLOW, SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD: SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG,
};
const COMPARISONS: Record<string, number> = {
  SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ,
};

/**
 * An action by its name in a seccomp profile (the OCI runtime-spec uses libseccomp's names):
 * `SCMP_ACT_ERRNO` fails the call with `errnoRet` (EPERM when none is given).
 * @throws Error naming an action calf does not know
 */
export function scmpAction(name: string, errnoRet = 1): number {
  if (name === 'SCMP_ACT_ERRNO') return SCMP_ACT_ERRNO(errnoRet);
  const action = ACTIONS[name];
  if (action === undefined) throw new Error(`seccomp: unknown action ${name}`);
  return action;
}

/** An argument comparison as a profile writes it (`{ index, value, valueTwo, op: 'SCMP_CMP_MASKED_EQ' }`). */
export function scmpArgCmp(arg: { index: number; value: number; valueTwo?: number; op: string }): ScmpArgCmp {
  const op = COMPARISONS[arg.op];
  if (op === undefined) throw new Error(`seccomp: unknown comparison ${arg.op}`);
  return { arg: arg.index, op, datumA: BigInt(arg.value), datumB: BigInt(arg.valueTwo ?? 0) };
}

/** One `struct scmp_arg_cmp`: compare syscall argument `arg` (0–5) with `op`. */
export interface ScmpArgCmp {
  arg: number;
  op: number;
  datumA: bigint;
  datumB?: bigint;
}

/** A filter being built: the `scmp_filter_ctx` of libseccomp. */
export type ScmpFilterCtx = unknown;

function checkNegative(result: number, call: string, args: readonly unknown[]): void {
  if (result >= 0) return;
  throw new SyscallError(call, -result, String(strerror(-result)), args);
}

/**
 * A new filter whose action for every syscall no rule names is `defAction`.
 * @see https://man7.org/linux/man-pages/man3/seccomp_init.3.html
 */
export function seccomp_init(defAction: number): ScmpFilterCtx {
  const ctx = seccomp().init(defAction);
  if (!ctx) throw new SyscallError('seccomp_init', 12, 'Cannot allocate memory');
  return ctx;
}

/**
 * Add a rule: `action` for `syscall` (a number from {@link seccomp_syscall_resolve_name}), when
 * every comparison holds (none: always).
 * @see https://man7.org/linux/man-pages/man3/seccomp_rule_add.3.html
 */
export function seccomp_rule_add_array(ctx: ScmpFilterCtx, action: number, syscall: number, args: readonly ScmpArgCmp[] = []): void {
  const array = Buffer.alloc(24 * Math.max(args.length, 1)); // { u32 arg; u32 op; u64 datum_a; u64 datum_b }
  args.forEach((a, i) => {
    array.writeUInt32LE(a.arg, 24 * i);
    array.writeUInt32LE(a.op, 24 * i + 4);
    array.writeBigUInt64LE(a.datumA, 24 * i + 8);
    array.writeBigUInt64LE(a.datumB ?? 0n, 24 * i + 16);
  });
  checkNegative(seccomp().ruleAddArray(ctx, action, syscall, args.length, array) as number, 'seccomp_rule_add', [syscall]);
}

/**
 * Compile the filter and load it into the kernel for the calling **thread** (and every process it
 * execs or forks later). Without `CAP_SYS_ADMIN` this needs `no_new_privs` first.
 * @see https://man7.org/linux/man-pages/man3/seccomp_load.3.html
 */
export function seccomp_load(ctx: ScmpFilterCtx): void {
  checkNegative(seccomp().load(ctx) as number, 'seccomp_load', []);
}

/**
 * Free a filter (a loaded one stays in the kernel).
 * @see https://man7.org/linux/man-pages/man3/seccomp_release.3.html
 */
export function seccomp_release(ctx: ScmpFilterCtx): void {
  seccomp().release(ctx);
}

/**
 * The number of the syscall `name` on this architecture, or -1 (`__NR_SCMP_ERROR`) when there is
 * no such syscall (say, `kexec_file_load` on an old arch).
 * @see https://man7.org/linux/man-pages/man3/seccomp_syscall_resolve_name.3.html
 */
export function seccomp_syscall_resolve_name(name: string): number {
  return seccomp().resolveName(name) as number;
}

/**
 * The token of the architecture `name` (`x86_64`, `x86`, `x32`, `aarch64`, `arm`…), or 0 when
 * libseccomp knows no such architecture.
 * @see https://man7.org/linux/man-pages/man3/seccomp_arch_add.3.html
 */
export function seccomp_arch_resolve_name(name: string): number {
  return seccomp().archResolveName(name) as number;
}

/**
 * Make the filter cover another architecture's ABI too (a 32-bit x86 binary on x86_64, say): its
 * rules then apply to that ABI's syscalls, translated by name. A new filter has the native one
 * only; adding it again fails with EEXIST, as in C.
 * @see https://man7.org/linux/man-pages/man3/seccomp_arch_add.3.html
 */
export function seccomp_arch_add(ctx: ScmpFilterCtx, archToken: number): void {
  checkNegative(seccomp().archAdd(ctx, archToken) as number, 'seccomp_arch_add', [archToken]);
}

/**
 * An OCI seccomp profile's architecture (`SCMP_ARCH_X86_64`, `SCMP_ARCH_X86`, `SCMP_ARCH_X32`,
 * `SCMP_ARCH_AARCH64`…) as libseccomp's token; 0 when it names none.
 */
export function scmpArch(name: string): number {
  return seccomp_arch_resolve_name(name.replace(/^SCMP_ARCH_/, '').toLowerCase());
}

/**
 * Add each of an OCI profile's `architectures` to the filter; the native one, already there, is
 * no error (runc and crun add them the same way, before the rules).
 */
export function seccompAddArchitectures(ctx: ScmpFilterCtx, names: readonly string[]): void {
  for (const name of names) {
    try {
      seccomp_arch_add(ctx, scmpArch(name));
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
  }
}
