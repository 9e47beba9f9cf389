/**
 * A throwaway "host" for the network tests: a network namespace the test makes (`ip netns add`),
 * with calf run inside it (`ip netns exec`), so bridges, veths and addresses exist only there and
 * every packet stays in it. Removing the namespace removes whatever calf made in it.
 */
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { execFileSync } from 'node:child_process';
import { target, calfRoot, repo } from './target.js';
import { token } from './canary.js';
import { slow } from './host.js';

/** A network namespace made by a test, and ways to run things in it. */
export interface TestNetns {
  /** `calf-test-<token>`: what `ip netns list` shows */
  name: string;
  /** `calf ARGS…`, the target's calf, run inside the namespace */
  calf(args: readonly string[], options?: { input?: string; timeout?: number }): ResultPromise<{ reject: false }>;
  /** a host command run inside the namespace (busybox nc, ip …), as the "host" side of a check */
  exec(command: readonly string[], options?: { timeout?: number }): ResultPromise<{ reject: false }>;
  /** `ip -o link` in the namespace: the interface names */
  links(): string[];
  /** `readlink /proc/self/ns/net` of a process in the namespace */
  inode(): string;
  /** delete the namespace (and with it every interface in it) */
  remove(): void;
}

const made = new Set<string>();

/** Make a network namespace with lo up. Remove it in afterAll (or a finally) with `remove()`. */
export function createTestNetns(): TestNetns {
  const name = `calf-test-${token()}`;
  execFileSync('ip', ['netns', 'add', name]);
  made.add(name);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const inNs = (file: string, args: readonly string[], timeout: number, input?: string) => execa('ip', ['netns', 'exec', name, file, ...args], {
    cwd: repo, reject: false, timeout: timeout * slow, stripFinalNewline: false,
    env: { CALF_ROOT: calfRoot() }, ...(input === undefined ? {} : { input }),
  });
  return {
    name,
    calf: (args, options = {}) => inNs(process.execPath, ['--import', 'tsx', path.join(target.dir, 'calf.ts'), ...args], options.timeout ?? 45_000, options.input),
    exec: (command, options = {}) => inNs(command[0]!, command.slice(1), options.timeout ?? 20_000),
    links: () => execFileSync('ip', ['-n', name, '-o', 'link', 'show'], { encoding: 'utf8' })
      .split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.replace(/@.*$/, '')),
    inode: () => execFileSync('ip', ['netns', 'exec', name, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' }).trim(),
    remove: () => {
      if (!made.delete(name)) return;
      execFileSync('ip', ['netns', 'delete', name]);
    },
  };
}

// A test interrupted by Ctrl-C still deletes its namespaces.
process.once('exit', () => {
  for (const name of made) {
    try {
      execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
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
