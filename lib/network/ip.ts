/**
 * iproute2's `ip`, run from the parent side. calf sets up bridges and veths with the same
 * commands you type by hand (see level 08's README for why not netlink), and runs them in a
 * container's network namespace through `nsenter --net`, which needs no name for it in
 * `/run/netns` (that name would be one more thing to clean up).
 * @module
 */
import { execFileSync } from 'node:child_process';
import { CalfError } from '../core/errors.js';

/** Run `ip ARGS…` in calf's own network namespace; throws with ip's own message when it fails. */
export function ip(args: readonly string[]): string {
  return exec('ip', args);
}

/** Run `ip ARGS…` in the network namespace of process `pid` (the container's init stage). */
export function ipIn(pid: number, args: readonly string[]): string {
  return exec('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', ...args]);
}

/** Does calf's network namespace have an interface called `name`? (Not /sys/class/net: that is the netns sysfs was mounted in.) */
export function linkExists(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Delete interface `name` (a veth goes with its peer); already gone is success. A veth also
 * vanishes on its own when the network namespace of its peer dies, at any moment: so no "does
 * it exist?" first, which would race with that. ip looks the name up, then asks the kernel to
 * delete that interface: gone before the lookup, ip says "Cannot find device"; gone in between
 * (a container that has just died), the kernel's ENODEV, "RTNETLINK answers: No such device".
 * Both mean done.
 */
export function deleteLink(name: string): void {
  try {
    ip(['link', 'delete', name]);
  } catch (err) {
    if (!/Cannot find device|No such device/.test((err as Error).message)) throw err;
  }
}

function exec(file: string, args: readonly string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const { stderr, message } = err as { stderr?: string; message: string };
    const why = stderr?.trim().split('\n')[0] || message;
    throw new CalfError(`${file === 'nsenter' ? 'nsenter … ip' : 'ip'} ${args.filter((a) => !a.startsWith('--net=')).join(' ')}: ${why}`);
  }
}
