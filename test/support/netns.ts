/**
 * A throwaway "host" for the network tests: a network namespace the test makes, with calf run
 * inside it, so bridges, veths and addresses exist only there and every packet stays in it.
 *
 * The namespace is held by a process (`unshare --net sleep`), not by `ip netns add`: that one
 * bind-mounts the namespace on /run/netns/NAME, a change to the host's mount table that other
 * levels' checks (running in parallel) would see. Killing the holder, once the containers in the
 * namespace have ended, frees the namespace and every interface in it. The holder carries the
 * test's CALF_ROOT in its environment, so the leftover detector finds it if a run leaks it.
 */
import path from 'node:path';
import fs from 'node:fs';
import { spawn, execFileSync } from 'node:child_process';
import { execa, type ResultPromise } from 'execa';
import { calfRoot, calfEnv, calfNode, CALF_ARGS, repo } from './target.js';
import { token } from './canary.js';
import { slow } from './host.js';

/** A network namespace made by a test, and ways to run things in it. */
export interface TestNetns {
  /** `calf-test-<token>`, for messages */
  name: string;
  /** `calf ARGS…`, the target's calf, run inside the namespace (`env` adds to, or overrides, its CALF_ROOT) */
  calf(args: readonly string[], options?: { input?: string; timeout?: number; env?: Record<string, string> }): ResultPromise<{ reject: false }>;
  /** a host command run inside the namespace (busybox nc, ip …), as the "host" side of a check */
  exec(command: readonly string[], options?: { timeout?: number }): ResultPromise<{ reject: false }>;
  /** `ip ARGS…` in the namespace, synchronously; throws when ip fails */
  ip(args: readonly string[]): string;
  /** `ip -o link` in the namespace: the interface names */
  links(): string[];
  /** the namespace as `readlink /proc/PID/ns/net` shows it: `net:[4026532…]` */
  inode(): string;
  /** `nsenter` arguments that run a command in the namespace: `[...ns.nsenter, file, ...args]` */
  nsenter: readonly string[];
  /** end the holder, which frees the namespace and every interface in it */
  remove(): void;
}

const holders = new Map<string, number>();

/** Make a network namespace with lo up. Remove it in afterAll (or a finally) with `remove()`. */
export async function createTestNetns(): Promise<TestNetns> {
  const name = `calf-test-${token()}`;
  const holder = spawn('unshare', ['--net', 'sleep', '3600'], { stdio: 'ignore', env: { ...process.env, CALF_ROOT: calfRoot() } });
  const pid = holder.pid!;
  holders.set(name, pid);
  holder.unref();
  const own = fs.readlinkSync('/proc/self/ns/net');
  const until = Date.now() + 10_000 * slow;
  // unshare(1) makes the namespace, then execs sleep: wait until the process is in it
  while (safeReadlink(`/proc/${pid}/ns/net`) === own || safeReadlink(`/proc/${pid}/ns/net`) === undefined) {
    if (Date.now() > until || holder.exitCode !== null) throw new Error(`unshare --net did not start (${name})`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const nsenter = [`--net=/proc/${pid}/ns/net`, '--'];
  const inNs = (file: string, args: readonly string[], timeout: number, input?: string, env?: Record<string, string>) => execa('nsenter', [...nsenter, file, ...args], {
    cwd: repo, reject: false, timeout: timeout * slow, stripFinalNewline: false,
    env: { ...calfEnv(), ...env }, ...(input === undefined ? {} : { input }),
  });
  const ip = (args: readonly string[]) => execFileSync('nsenter', [...nsenter, 'ip', ...args], { encoding: 'utf8' });
  ip(['link', 'set', 'lo', 'up']);
  return {
    name,
    calf: (args, options = {}) => inNs(calfNode, [...CALF_ARGS(), ...args], options.timeout ?? 45_000, options.input, options.env),
    exec: (command, options = {}) => inNs(command[0]!, command.slice(1), options.timeout ?? 20_000),
    ip,
    links: () => ip(['-o', 'link', 'show']).split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.replace(/@.*$/, '')),
    inode: () => fs.readlinkSync(`/proc/${pid}/ns/net`),
    nsenter,
    remove: () => {
      if (!holders.delete(name)) return;
      process.kill(pid, 'SIGKILL');
    },
  };
}

function safeReadlink(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

// A test interrupted by Ctrl-C still ends its holders.
process.once('exit', () => {
  for (const pid of holders.values()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A random TCP port for a listener in a test namespace (each namespace has all ports free). */
export function randomPort(): number {
  return 20_000 + Math.floor(Math.random() * 40_000);
}

/** The first IPv4 address in `ip -o -4 addr show dev eth0` output, or undefined. */
export function eth0Address(text: string): string | undefined {
  return /\d+: eth0\s+inet (\d+\.\d+\.\d+\.\d+)\//.exec(text)?.[1];
}
