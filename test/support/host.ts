/** Facts about the machine the board runs on, for its header and its refusals; the runs' log files. */
import fs from 'node:fs';
import os from 'node:os';
import { alive } from '../../lib/core/process.js';

/** `v2` when /sys/fs/cgroup is a cgroup2 mount (unified), `v1` when it holds v1 controllers, else `none`. */
export function cgroupVersion(): 'v1' | 'v2' | 'none' {
  try {
    if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) return 'v2';
    return fs.readdirSync('/sys/fs/cgroup').some((d) => ['memory', 'cpu', 'pids'].includes(d)) ? 'v1' : 'none';
  } catch {
    return 'none';
  }
}

/** Why calf can't run its checks here, or undefined when it can. */
export function cannotRun(): string | undefined {
  const inVm = 'run it inside the workshop VM: vagrant up, vagrant ssh, sudo -i, cd /calf, then the same command';
  if (process.platform !== 'linux') return `calf needs Linux namespaces, and this is ${os.type()}: ${inVm}`;
  if (process.getuid?.() !== 0) return `calf needs root (namespaces, mounts, chroot): ${inVm.replace('run it inside the workshop VM: vagrant up, vagrant ssh, ', 'run it as root, e.g. in the VM: ')}`;
  return undefined;
}

/**
 * How many times slower than a workstation this machine runs calf: `CALF_TEST_SLOW`, which
 * `npm run test:vm` sets under emulation. The tests stretch their timeouts by it.
 */
export const slow = Number(process.env.CALF_TEST_SLOW) || 1;

/** Why the board refuses this machine: `CALF_EXPECT_CGROUP` (`npm run test:vm` sets v2) names the version it must find. */
export function unexpectedCgroup(): string | undefined {
  const expected = process.env.CALF_EXPECT_CGROUP;
  const found = cgroupVersion();
  return expected && expected !== found ? `expected cgroup ${expected} (CALF_EXPECT_CGROUP), and this machine has cgroup ${found}` : undefined;
}

/**
 * A new, empty log file `$TMPDIR/<prefix>-<pid>.log` for this run (one per run, so two runs at
 * once don't write over each other's), and the older ones of the same prefix removed but the last
 * `keep`: an attendee's day of boards would otherwise leave hundreds. A log whose run still
 * goes (its pid lives) is never removed.
 */
export function runLog(prefix: 'calf-board' | 'calf-test', keep = 10): string {
  const dir = os.tmpdir();
  const log = `${dir}/${prefix}-${process.pid}.log`;
  fs.writeFileSync(log, '');
  const pattern = new RegExp(`^${prefix}-(\\d+)\\.log$`);
  const older = fs.readdirSync(dir).flatMap((name) => {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) return [];
    try {
      return [{ file: `${dir}/${name}`, mtime: fs.statSync(`${dir}/${name}`).mtimeMs }];
    } catch {
      return []; // another run removed it first
    }
  }).sort((a, b) => b.mtime - a.mtime);
  for (const { file } of older.slice(keep)) fs.rmSync(file, { force: true });
  return log;
}
