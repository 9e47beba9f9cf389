/**
 * Every number lib/linux/ hands the kernel, checked against the C headers of x86_64 and of arm64
 * (what Apple Silicon attendees run), not only written down: see test/support/abi.ts. The host's
 * architecture compiles with gcc; the other one with its cross compiler (scripts/setup.sh installs
 * it: cc1 from `cpp-<arch>-linux-gnu` and the cross headers).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ARCHES, assertions, compiler, check, type Arch, type Assertion, type Verdict } from '../support/abi.js';
import { OPEN_FLAGS_BY_ARCH } from '../../lib/linux/fcntl.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-abi-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function compile(arch: Arch, list: readonly Assertion[]): Verdict {
  const command = compiler(arch);
  if (!Array.isArray(command)) throw new Error(`cannot check ${arch}: no ${command.missing}`);
  return check(arch, list, command, dir);
}

const shown = (n: number | bigint | undefined) => (n === undefined ? '(value not found)' : n > 255 ? `${n} (0x${n.toString(16)})` : String(n));

/** One line per wrong number, as an attendee or the lead would want to read it. */
function report(v: Verdict): string[] {
  return [
    ...v.failed.map(({ assertion: a, headers }) => `${a.expr}: calf has ${shown(a.value)} (${a.file}), the headers ${shown(headers)}`),
    ...(v.errors ? [v.errors] : []),
  ];
}

describe.each(Object.keys(ARCHES) as Arch[])('lib/linux on %s', (arch) => {
  it('has every syscall number, ioctl request, constant and struct layout the headers have', async () => {
    const list = await assertions(arch);
    expect(report(compile(arch, list))).toEqual([]);
  });

  it('would fail on a wrong number, and name it with the headers’ value (the check checks)', async () => {
    const wrong = (await assertions(arch)).map((a) =>
      a.expr === '__NR_openat2' ? { ...a, value: a.value + 1 }
        : a.expr === 'sizeof(struct termios)' ? { ...a, value: 36 } // the kernel's struct termios, not glibc's
          : a);
    expect(report(compile(arch, wrong))).toEqual([
      expect.stringMatching(/^__NR_openat2: calf has 438 \(0x1b6\) \(lib\/linux\/syscall\.ts\), the headers 437 \(0x1b5\)$/),
      expect.stringMatching(/^sizeof\(struct termios\): calf has 36 \(lib\/linux\/termios\.ts\), the headers 60$/),
    ]);
  });
});

describe('what the check covers', () => {
  it('finds the numbers by itself: syscalls, ioctls, flags, capabilities, layouts, macros', async () => {
    const exprs = (await assertions('arm64')).map((a) => a.expr);
    for (const expr of ['__NR_pivot_root', '__NR_openat2', 'TIOCGWINSZ', 'SIOCGIFFLAGS', 'MS_BIND', 'CLONE_NEWPID', 'O_DIRECTORY',
      'CAP_CHECKPOINT_RESTORE', 'offsetof(struct msghdr, msg_controllen)', 'sizeof(siginfo_t)', 'offsetof(struct ifreq, ifr_flags)',
      'CMSG_SPACE(4)', 'WIFSIGNALED(9)']) expect(exprs).toContain(expr);
  });

  it('takes the per-arch open flags of this machine from its table, as Node was built with them', () => {
    const table = OPEN_FLAGS_BY_ARCH[process.arch];
    expect(table).toEqual({ O_DIRECTORY: fs.constants.O_DIRECTORY, O_NOFOLLOW: fs.constants.O_NOFOLLOW });
  });
});
