/**
 * calf's numbers against the C headers (issue 20): every constant, syscall number, ioctl request
 * and struct layout lib/linux/ hands the kernel or libc, as one C file of `_Static_assert`s per
 * architecture, compiled with `-fsyntax-only` by that architecture's compiler against its own
 * headers (glibc's and the kernel's: Debian's `libc6-dev-<arch>-cross`, `linux-libc-dev-<arch>-cross`).
 *
 * What is checked is found, not listed: every export of lib/linux/*.ts that is an UPPER_CASE number
 * (a C macro or enum of the same name), a {@link Layout} (`sizeof` and every `offsetof`), a
 * `*_BY_ARCH` table or `SYSCALLS` (per architecture), and the function-like macros calf
 * re-implements (`CMSG_*`, `W*`) on sample inputs. A new constant is checked the day it is added,
 * or the check fails naming it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { repo } from './paths.js';

/** The architectures calf has tables for, with their GNU triplet and Debian's name for them. */
export const ARCHES = {
  x64: { triplet: 'x86_64-linux-gnu', debian: 'amd64', cross: 'x86-64-linux-gnu' },
  arm64: { triplet: 'aarch64-linux-gnu', debian: 'arm64', cross: 'aarch64-linux-gnu' },
} as const;
export type Arch = keyof typeof ARCHES;

/** One claim: the C expression `expr` equals `value`, as lib/linux/`file` has it. */
export interface Assertion {
  expr: string;
  value: number;
  file: string;
}

/** The headers every assertion may use (glibc's where calf calls glibc, the kernel's where it goes raw). */
const HEADERS = [
  'stddef.h', 'fcntl.h', 'sched.h', 'signal.h', 'poll.h', 'termios.h', 'stdlib.h', 'unistd.h',
  'sys/file.h', 'sys/ioctl.h', 'sys/mount.h', 'sys/prctl.h', 'sys/resource.h', 'sys/socket.h', 'sys/stat.h', 'sys/un.h',
  'sys/wait.h', 'net/if.h', 'asm/unistd.h', 'linux/capability.h', 'linux/openat2.h', 'linux/seccomp.h',
];

/** Exports that are not C names, with the C expression that must equal them, or why none. */
const RENAMED: Record<string, string> = {
  SCMP_ACT_ALLOW: 'SECCOMP_RET_ALLOW', // libseccomp defines these so
  SCMP_ACT_KILL: 'SECCOMP_RET_KILL_THREAD',
  SCMP_ACT_KILL_PROCESS: 'SECCOMP_RET_KILL_PROCESS',
  SCMP_ACT_TRAP: 'SECCOMP_RET_TRAP',
  SCMP_ACT_LOG: 'SECCOMP_RET_LOG',
  PIDFD_NONBLOCK: 'O_NONBLOCK', // <linux/pidfd.h> defines it so; that header clashes with glibc's <fcntl.h>
};
const NOT_IN_HEADERS: Record<string, string> = {
  SCMP_CMP_EQ: "libseccomp's enum scmp_compare: the library's ABI (the same on every arch), not in the kernel's headers",
  SCMP_CMP_MASKED_EQ: "libseccomp's enum scmp_compare",
  SCMP_CMP_NE: "libseccomp's enum scmp_compare",
  SCMP_CMP_LT: "libseccomp's enum scmp_compare",
  SCMP_CMP_LE: "libseccomp's enum scmp_compare",
  SCMP_CMP_GE: "libseccomp's enum scmp_compare",
  SCMP_CMP_GT: "libseccomp's enum scmp_compare",
};

/** Sample inputs for the function-like macros calf re-implements. */
const MACRO_SAMPLES: Record<string, readonly number[]> = {
  CMSG_ALIGN: [0, 1, 4, 7, 8, 9, 16, 100],
  CMSG_SPACE: [0, 1, 4, 8, 12, 16, 100],
  CMSG_LEN: [0, 1, 4, 8, 12, 16, 100],
  // exited 0 and 7, killed by SIGKILL and SIGSEGV with a core, stopped by SIGSTOP, continued
  WIFEXITED: [0, 0x0700, 0x0009, 0x008b, 0x137f, 0xffff],
  WEXITSTATUS: [0, 0x0700, 0xff00],
  WIFSIGNALED: [0, 0x0700, 0x0009, 0x008b, 0x137f, 0xffff],
  WTERMSIG: [0x0009, 0x008b, 0x000f],
};

function isLayout(v: unknown): v is { type: string; sizeof: number; offsets: Record<string, number> } {
  return typeof v === 'object' && v !== null && 'type' in v && 'sizeof' in v && 'offsets' in v;
}

/** Every assertion about `arch`, from the modules of lib/linux/. */
export async function assertions(arch: Arch): Promise<Assertion[]> {
  const dir = path.join(repo, 'lib/linux');
  const out: Assertion[] = [];
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'index.ts').sort()) {
    const file = `lib/linux/${name}`;
    const module = (await import(path.join(dir, name))) as Record<string, unknown>;
    // a constant taken from a per-arch table is this machine's: the table is checked instead, for every arch
    const perArch = new Set(Object.entries(module).filter(([k]) => k.endsWith('_BY_ARCH'))
      .flatMap(([, table]) => Object.values(table as Record<string, object>).flatMap((t) => Object.keys(t))));
    for (const [key, value] of Object.entries(module)) {
      if (typeof value === 'number' && /^_?[A-Z][A-Z0-9_]*$/.test(key)) {
        if (key in NOT_IN_HEADERS || perArch.has(key)) continue;
        out.push({ expr: RENAMED[key] ?? key, value, file });
      } else if (isLayout(value)) {
        const t = value.type;
        out.push({ expr: `sizeof(${t})`, value: value.sizeof, file });
        for (const [member, offset] of Object.entries(value.offsets)) out.push({ expr: `offsetof(${t}, ${member})`, value: offset, file });
      } else if (key === 'SYSCALLS' || key.endsWith('_BY_ARCH')) {
        const table = (value as Record<string, Record<string, number>>)[arch];
        if (!table) throw new Error(`${file}: ${key} has no entry for ${arch}`);
        for (const [c, n] of Object.entries(table)) out.push({ expr: key === 'SYSCALLS' ? `__NR_${c}` : c, value: n, file });
      } else if (key === 'CAPABILITIES') {
        (value as string[]).forEach((cap, i) => out.push({ expr: cap, value: i, file }));
      } else if (typeof value === 'function' && key in MACRO_SAMPLES) {
        for (const x of MACRO_SAMPLES[key]!) out.push({ expr: `${key}(${x})`, value: Number((value as (n: number) => number | boolean)(x)), file });
      }
    }
  }
  return out;
}

/** The C file for `list`: one `_Static_assert` per line, from line {@link FIRST_LINE} on. */
export function source(list: readonly Assertion[]): string {
  const head = ['#define _GNU_SOURCE', ...HEADERS.map((h) => `#include <${h}>`)];
  const lines = list.map((a, i) => `_Static_assert((long long)(${a.expr}) == ${a.value}LL, "#${i} ${a.expr}: calf has ${a.value} (${a.file})");`);
  return [...head, ...lines, ''].join('\n');
}
export const FIRST_LINE = HEADERS.length + 2;

/** How to compile for `arch` on this machine: a command line to which the C file's path is added, or why there is none. */
export function compiler(arch: Arch): string[] | { missing: string } {
  const host = process.arch === arch;
  const { triplet, debian, cross } = ARCHES[arch];
  if (host) return onPath('gcc') ? ['gcc', '-fsyntax-only'] : { missing: 'gcc (apt-get install gcc libc6-dev)' };
  if (onPath(`${triplet}-gcc`)) return [`${triplet}-gcc`, '-fsyntax-only'];
  // cpp-<arch> alone (30 MB, not the 160 MB of the whole cross gcc) has cc1, the compiler proper, with the target's
  // default include paths; gcc's own freestanding headers (stddef.h…) it lacks are the same for every target
  const cpp = versions(`${triplet}-cpp`);
  if (cpp && onPath('gcc')) {
    const cc1 = execFileSync(cpp, ['-print-prog-name=cc1'], { encoding: 'utf8' }).trim();
    const include = execFileSync('gcc', ['-print-file-name=include'], { encoding: 'utf8' }).trim();
    return [cc1, '-quiet', '-fsyntax-only', '-isystem', include];
  }
  return { missing: `a compiler for ${arch}: apt-get install cpp-${cross} libc6-dev-${debian}-cross linux-libc-dev-${debian}-cross (scripts/setup.sh does)` };
}

function pathDirs(): string[] {
  return (process.env.PATH ?? '/usr/bin').split(':').filter(Boolean);
}
function onPath(name: string): boolean {
  return pathDirs().some((d) => fs.existsSync(path.join(d, name)));
}
/** `<name>` or the highest `<name>-N` on PATH. */
function versions(name: string): string | undefined {
  if (onPath(name)) return name;
  const found = pathDirs().flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d) : []).filter((f) => new RegExp(`^${name}-\\d+$`).test(f)));
  return found.sort((a, b) => Number(b.split('-').pop()) - Number(a.split('-').pop()))[0];
}

// plain ASCII quotes in gcc's messages, which are parsed
const C_LOCALE = { ...process.env, LC_ALL: 'C' };

/** What a compile of `list` found: the assertions that failed, with the headers' own value, and anything else the compiler said. */
export interface Verdict {
  failed: { assertion: Assertion; headers?: bigint }[];
  errors: string;
}

/** Compile `list` for `arch` with `command` (from {@link compiler}); a scratch file under `dir`. */
export function check(arch: Arch, list: readonly Assertion[], command: readonly string[], dir: string): Verdict {
  const file = path.join(dir, `calf-abi-${arch}.c`);
  fs.writeFileSync(file, source(list));
  const run = spawnSync(command[0]!, [...command.slice(1), file], { encoding: 'utf8', env: C_LOCALE });
  if (run.status === 0) return { failed: [], errors: '' };
  const failedAt = new Set<number>();
  for (const m of run.stderr.matchAll(/:(\d+):\d+: error: static assertion failed/g)) failedAt.add(Number(m[1]) - FIRST_LINE);
  const failed = [...failedAt].sort((a, b) => a - b).map((i) => ({ assertion: list[i]! }));
  const other = run.stderr.split('\n').filter((l) => /error/.test(l) && !/static assertion failed/.test(l)).join('\n');
  reveal(failed, command, file);
  return { failed, errors: other || (failed.length ? '' : run.stderr) };
}

/**
 * The headers' values of the failed assertions: a pointer to an array whose length is the value
 * (shifted by 2^32, so negatives show too), initialised from an int, makes gcc print its type.
 */
function reveal(failed: { assertion: Assertion; headers?: bigint }[], command: readonly string[], file: string): void {
  if (!failed.length) return;
  const lines = failed.map((f, i) => `char (*calf_reveal_${i})[(long long)(${f.assertion.expr}) + 0x100000000LL] = 1;`);
  fs.writeFileSync(file, `${source([]).trimEnd()}\n${lines.join('\n')}\n`);
  const run = spawnSync(command[0]!, [...command.slice(1), file], { encoding: 'utf8', env: C_LOCALE });
  for (const m of run.stderr.matchAll(/:(\d+):\d+: (?:warning|error): initialization of 'char \(\*\)\[(\d+)\]'/g)) {
    const f = failed[Number(m[1]) - FIRST_LINE];
    if (f) f.headers = BigInt(m[2]!) - 0x100000000n;
  }
}
