/** Facts about the machine the board runs on, for its header and its refusals. */
import fs from 'node:fs';
import os from 'node:os';

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
