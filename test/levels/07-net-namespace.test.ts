/**
 * Level 07: the container gets a network namespace of its own, whose only interface is lo, up;
 * `--network host` keeps the host's. Every check runs calf inside a network namespace the test
 * made (its throwaway "host"), so nothing touches the machine's own network.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { expectExit } from '../support/target.js';
import { token } from '../support/canary.js';
import { createTestNetns, randomPort, type TestNetns } from '../support/netns.js';

let ns: TestNetns;
/** An interface only the test's "host" has: a bridge with a random name. */
const marker = `calfm${token().slice(0, 8)}`;

beforeAll(async () => {
  ns = await createTestNetns();
  ns.ip(['link', 'add', marker, 'type', 'bridge']);
});
afterAll(() => ns?.remove());

/** A shell loop that tries `nc` up to 20 times (about 4 s), for a server that may not listen yet. */
const connect = (host: string, port: number, nc = 'nc') => `for i in $(seq 20); do ${nc} -w 2 ${host} ${port} </dev/null && break; sleep 0.2; done`;

describe('07 net-namespace', () => {
  describe('The network namespace', () => {
    it('gives the container a network namespace other than its host’s', async () => {
      const r = await ns.calf(['run', 'busybox', 'readlink', '/proc/self/ns/net']);
      expectExit(r, 0);
      expect(r.stdout.trim()).toMatch(/^net:\[\d+\]$/);
      expect(r.stdout.trim()).not.toBe(ns.inode());
    });

    it('shows the container no interface but lo, in ip link and in /sys/class/net', async () => {
      expect(ns.links()).toContain(marker);
      const r = await ns.calf(['run', 'busybox', 'sh', '-c', 'ip -o link | cut -d: -f2; echo --; ls /sys/class/net']);
      expectExit(r, 0);
      const [links, sysfs] = r.stdout.split('--\n').map((part) => part.split(/\s+/).filter(Boolean));
      expect({ links, sysfs }).toEqual({ links: ['lo'], sysfs: ['lo'] });
    });
  });

  describe('Bringing lo up', () => {
    it('brings lo up', async () => {
      const r = await ns.calf(['run', 'busybox', 'sh', '-c', 'readlink /proc/self/ns/net; ip -o link show lo']);
      expectExit(r, 0);
      const [inode, lo] = r.stdout.split('\n');
      expect(inode).not.toBe(ns.inode()); // the container's own lo, not its host's (which is up)
      expect(lo).toMatch(/^1: lo: <[A-Z_,]*\bUP\b[A-Z_,]*>/);
    });

    it('answers on 127.0.0.1 inside the container, and not with the host’s listener there', async () => {
      const mine = token();
      const hosts = token();
      const port = randomPort();
      const host = ns.exec(['busybox', 'nc', '-ll', '-p', String(port), '-e', 'echo', hosts]);
      try {
        // the host's listener answers on the host's 127.0.0.1 (the control for the check below)
        const seen = await ns.exec(['sh', '-c', connect('127.0.0.1', port, 'busybox nc')]);
        expect(seen.stdout).toContain(hosts);
        const r = await ns.calf(['run', 'busybox', 'sh', '-c',
          `nc -w 2 127.0.0.1 ${port} </dev/null; echo "port ${port}: $?"; ` +
          `nc -ll -p ${port + 1} -e echo ${mine} & s=$!; ${connect('127.0.0.1', port + 1)}; kill $s`]);
        expectExit(r, 0);
        expect(r.stdout).toContain(mine);
        expect(r.stdout).not.toContain(hosts);
      } finally {
        host.kill('SIGKILL');
        await host;
      }
    });
  });

  describe('Network modes', () => {
    it('keeps the host’s network namespace and interfaces with --network host', async () => {
      const r = await ns.calf(['run', '--network', 'host', 'busybox', 'sh', '-c', 'readlink /proc/self/ns/net; ls /sys/class/net']);
      expectExit(r, 0);
      const [inode, ...links] = r.stdout.trim().split(/\s+/);
      expect(inode).toBe(ns.inode());
      expect(links).toEqual(expect.arrayContaining(['lo', marker]));
    });

    it('gives --network none the same namespace of its own as the default', async () => {
      const r = await ns.calf(['run', '--network', 'none', 'busybox', 'sh', '-c', 'readlink /proc/self/ns/net; ls /sys/class/net']);
      expectExit(r, 0);
      const [inode, ...links] = r.stdout.trim().split(/\s+/);
      expect(inode).toMatch(/^net:\[\d+\]$/);
      expect({ sameAsHost: inode === ns.inode(), links }).toEqual({ sameAsHost: false, links: ['lo'] });
    });

    it('refuses an unknown network with 125 and one line, and runs nothing', async () => {
      const name = `nosuch${token()}`;
      const r = await ns.calf(['run', '--network', name, 'busybox', 'echo', 'ran']);
      expectExit(r, 125);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining(name)]);
    });
  });
});
