/**
 * Level 08: networks (a bridge and an address pool), endpoints (a veth pair into the container's
 * namespace, an address, a route), published ports. Every check runs calf inside a network
 * namespace the test made (its throwaway "host"): the bridges, veths and addresses exist only
 * there, and every packet is between that namespace and the containers it holds.
 *
 * `it.concurrent`: a check on networks and containers of its own may run beside the others of its
 * section (jest's maxConcurrency: jest.config.js). A check that counts the namespace's bridges or
 * veths, or runs `calf cleanup`, runs alone: another check's would be in its count.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { expectExit, calfRoot } from '../support/target.js';
import { token } from '../support/canary.js';
import { waitFor } from '../support/procs.js';
import { slow } from '../support/host.js';
import { inBackground, waitForOutput, terminate, howItEnded } from '../support/background.js';
import { createTestNetns, randomPort, eth0Address, type TestNetns } from '../support/netns.js';

let ns: TestNetns;
const networks: string[] = [];

beforeAll(async () => {
  ns = await createTestNetns();
});
afterAll(async () => {
  try {
    // one calf for all of them (`network rm` takes several names): a dozen calf starts on a busy machine overran the hook's minute
    if (networks.length) await ns.calf(['network', 'rm', ...networks]);
  } finally {
    ns?.remove(); // the namespace, and every bridge and veth in it, whatever calf did
  }
}, 120_000 * slow);

/** A network of this test run's own, removed in afterAll; returns its name. */
async function network(subnet?: string): Promise<string> {
  const name = `t${token()}`;
  const r = await ns.calf(['network', 'create', name, ...(subnet ? ['--subnet', subnet] : [])]);
  expectExit(r, 0);
  networks.push(name);
  return name;
}

let shared: Promise<string> | undefined;
/**
 * One network for the checks that need a network but look at nothing of it (each at its own
 * containers, veths and ports): a network less to create per check. A check that reads the
 * network's addresses or leases makes its own.
 */
const sharedNetwork = () => (shared ??= network());

/** A random /24 in 10.100.0.0–10.199.255.0, for a test that names its subnet. */
function randomSubnet(): { subnet: string; prefix: string } {
  const prefix = `10.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 256)}`;
  return { subnet: `${prefix}.0/24`, prefix };
}

/** Shell: try nc up to 20 times (about 4 s) while a server may not listen yet. */
const connect = (host: string, port: number | string, nc = 'nc') =>
  `for i in $(seq 20); do ${nc} -w 2 ${host} ${port} </dev/null && exit 0; sleep 0.2; done; exit 1`;

/**
 * The container's address, then a TCP server answering `answer` on port 8080. Without an eth0 it
 * ends at once. Its PID 1 is a shell that traps SIGTERM: a PID 1 without a handler ignores it
 * (nc has none), and every `stop()` would wait out the 3 s before its SIGKILL; with the trap, a
 * SIGTERM to calf (passed on) ends the container at once, and the nc with it (the kernel kills
 * the rest of a PID namespace when its init exits).
 */
const SERVE = (answer: string) => ['busybox', 'sh', '-c', `ip -o -4 addr show dev eth0 || exit 1; trap 'exit 0' TERM; nc -ll -p 8080 -e echo ${answer} & wait`];

/** What `ip -o -4 addr show dev eth0` prints: the container is on its network. */
const ETH0 = /\d+: eth0\s+inet \d+\.\d+\.\d+\.\d+\//;

/** Wait until a background `calf run` has printed its eth0 address; fail as soon as it ends without one. */
async function addressOf(child: ReturnType<TestNetns['calf']>, timeoutMs?: number): Promise<string> {
  return eth0Address(await waitForOutput(child, ETH0, { what: 'its eth0 address', ...(timeoutMs ? { timeoutMs } : {}) }))!;
}

/**
 * Start `calf run ARGS…` in the background and wait for the eth0 address it prints first.
 * `stop()` ends it with SIGTERM (calf passes it on to the container, then cleans up), and a
 * SIGKILL to the container 3 s later if it ignores that, and returns how calf ended; `end()`
 * SIGKILLs the container from the host at once (calf itself gets no signal). Never SIGKILL calf
 * itself: the container would outlive it.
 */
async function startContainer(args: string[]) {
  const started = await inBackground(ns.calf(['run', ...args]), ETH0, { what: 'its eth0 address' });
  // stop(): as docker stop; end(): the container ends by itself, as far as calf can tell (SIGKILL from the host)
  return { ...started, address: eth0Address(started.output)!, stop: () => started.stop({ term: true }), end: () => started.stop() };
}

/** Where level 08's README says an address's lease is: `<root>/networks/<name>/leases/<address>`. */
const leaseFile = (network: string, address: string) => path.join(calfRoot(), 'networks', network, 'leases', address);

/** The interfaces in the test's namespace whose names calf gives veths. */
const veths = () => ns.links().filter((l) => l.startsWith('veth'));

describe('08 networking', () => {
  describe('Networks', () => {
    it('creates a network with its bridge on the host, lists it, and removes both', async () => {
      const { subnet } = randomSubnet();
      const name = `t${token()}`;
      const before = ns.links();
      const created = await ns.calf(['network', 'create', name, '--subnet', subnet]);
      expectExit(created, 0);
      expect(created.stdout).toMatch(/^[0-9a-f]{64}\n$/);
      const bridges = ns.links().filter((l) => !before.includes(l));
      const ls = await ns.calf(['network', 'ls']);
      expectExit(ls, 0);
      const row = ls.stdout.split('\n').find((l) => l.split(/\s+/).includes(name));
      const removed = await ns.calf(['network', 'rm', name]);
      expectExit(removed, 0);
      const after = await ns.calf(['network', 'ls']);
      expect({ bridges: bridges.length, listed: row?.includes(subnet), relisted: after.stdout.includes(name), left: ns.links().filter((l) => bridges.includes(l)) })
        .toEqual({ bridges: 1, listed: true, relisted: false, left: [] });
    });

    it.concurrent('refuses a bad subnet, an overlapping one and a taken name with one line and exit 1', async () => {
      const { subnet, prefix } = randomSubnet();
      const name = await network(subnet);
      const tries = await Promise.all([
        ns.calf(['network', 'create', `t${token()}`, '--subnet', 'nonsense']),
        ns.calf(['network', 'create', `t${token()}`, '--subnet', `${prefix}.128/25`]),
        ns.calf(['network', 'create', name]),
      ]);
      expect(tries.map((r) => ({ exit: r.exitCode, lines: r.stderr.trim().split('\n').length }))).toEqual([
        { exit: 1, lines: 1 }, { exit: 1, lines: 1 }, { exit: 1, lines: 1 },
      ]);
    });

    it.concurrent('makes the default network calf0 on first use, with a bridge of that name', async () => {
      const r = await ns.calf(['run', '--network', 'calf0', 'busybox', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
      expectExit(r, 0);
      expect(eth0Address(r.stdout)).toMatch(/^10\.88\./);
      expect(ns.links()).toContain('calf0');
    });
  });

  describe('Endpoints and the sandbox', () => {
    it.concurrent('gives the container eth0 with an address of the subnet, and a default route via its gateway', async () => {
      const { subnet, prefix } = randomSubnet();
      const name = await network(subnet);
      const r = await ns.calf(['run', '--network', name, 'busybox', 'sh', '-c', 'ip -o -4 addr show dev eth0; ip route']);
      expectExit(r, 0);
      const address = eth0Address(r.stdout);
      expect(address).toMatch(new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.\\d+$`));
      expect(address).not.toBe(`${prefix}.1`);
      expect(r.stdout).toContain(`default via ${prefix}.1 dev eth0`);
    });

    it('lets the host and the container reach each other over TCP, and removes the veth after', async () => {
      const name = await sharedNetwork();
      const hostAnswer = token();
      const port = randomPort();
      const host = ns.exec(['busybox', 'nc', '-ll', '-p', String(port), '-e', 'echo', hostAnswer]);
      try {
        const out = await ns.calf(['run', '--network', name, 'busybox', 'sh', '-c', `${connect('$(ip route | awk \'/^default/ {print $3}\')', port)}`]);
        expectExit(out, 0);
        expect(out.stdout).toContain(hostAnswer);
      } finally {
        host.kill('SIGKILL');
        await host;
      }
      const answer = token();
      const c = await startContainer(['--network', name, ...SERVE(answer)]);
      const running = veths();
      const seen = await ns.exec(['sh', '-c', connect(c.address, 8080, 'busybox nc')]);
      // calf removes the veth before it exits: wait for that exit, and make sure calf had one (a
      // calf killed by a signal removes nothing, and its container lives on with the veth)
      const stopped = await c.stop();
      expect({ reply: seen.stdout.trim(), vethsWhileRunning: running.length, calf: stopped.exitCode === undefined ? howItEnded(stopped)[0] : 'exited', vethsAfter: veths().filter((v) => running.includes(v)) })
        .toEqual({ reply: answer, vethsWhileRunning: 1, calf: 'exited', vethsAfter: [] });
    });
  });

  describe('Two containers: one network, and two', () => {
    it.concurrent('lets two containers on one network reach each other by address over TCP', async () => {
      const name = await sharedNetwork();
      const answer = token();
      const server = await startContainer(['--network', name, ...SERVE(answer)]);
      try {
        const r = await ns.calf(['run', '--network', name, 'busybox', 'sh', '-c', connect(server.address, 8080)]);
        expectExit(r, 0);
        expect(r.stdout.trim()).toBe(answer);
      } finally {
        await server.stop();
      }
    });

    it.concurrent('keeps containers on two networks from reaching each other', async () => {
      const [one, two] = await Promise.all([network(), network()]);
      const answer = token();
      const server = await startContainer(['--network', one, ...SERVE(answer)]);
      // The host answers on network one's gateway too: a container of network two reaches it
      // through its default route, which proves that route exists (without it, nothing off its
      // subnet is reachable, and the server below would be unreachable for the wrong reason).
      const hostAnswer = token();
      const port = randomPort();
      const host = ns.exec(['busybox', 'nc', '-ll', '-p', String(port), '-e', 'echo', hostAnswer]);
      const gatewayOfOne = server.address.replace(/\.\d+$/, '.1');
      try {
        const [same, other] = await Promise.all([
          ns.calf(['run', '--network', one, 'busybox', 'sh', '-c', connect(server.address, 8080)]),
          // a server it can reach answers within milliseconds (the container on network one shows
          // it answers): a second's timeout (× the machine's slowness) is ample
          ns.calf(['run', '--network', two, 'busybox', 'sh', '-c',
            `ip -o -4 addr show dev eth0; (${connect(gatewayOfOne, port)}); nc -w ${Math.ceil(slow)} ${server.address} 8080 </dev/null; echo "exit $?"`]),
        ]);
        expectExit(same, 0, 'a container on the server’s own network');
        expectExit(other, 0, 'a container on the other network');
        expect(same.stdout.trim()).toBe(answer); // the server answers on its own network...
        expect(eth0Address(other.stdout)).toBeDefined(); // ...the other container is on a network...
        if (!other.stdout.includes(hostAnswer)) { // ...with a route off it...
          throw new Error(`the container on network ${two} cannot reach the host at ${gatewayOfOne} (network ${one}'s gateway) either: without its default route nothing off its own subnet is reachable, so this isolation proves nothing; its output:\n${other.stdout}${other.stderr}`);
        }
        expect(other.stdout).not.toContain(answer); // ...and cannot reach the server
        expect(other.stdout).not.toContain('exit 0');
      } finally {
        host.kill('SIGKILL');
        await host;
        await server.stop();
      }
    }, 120_000 * slow); // two networks, three containers and a listener
  });

  describe('IPAM: an address each, under a lock', () => {
    // Not in the test VM (scripts/vm): the lock and the pool are calf's, whatever the guest's
    // kernel, and ten calfs at once are its slowest check there by far (emulated, ~15x); the host's
    // board runs it.
    (process.env.CALF_IN_VM ? it.skip : it)('gives 10 containers started together 10 addresses, and takes them back when they end', async () => {
      const name = await network();
      // all 10 hold their address until every one has printed it: a container that ended early
      // would rightly give its address back to the next one. One without an address ends at once
      // (`|| exit 1`), so the check fails then instead of waiting out its timeout.
      const children = Array.from({ length: 10 }, () =>
        ns.calf(['run', '--network', name, 'busybox', 'sh', '-c', 'ip -o -4 addr show dev eth0 || exit 1; read line'], { timeout: 120_000 }));
      let addresses: (string | undefined)[];
      try {
        addresses = await Promise.all(children.map((child) => addressOf(child, 120_000)));
      } finally {
        for (const child of children) child.stdin!.end('\n');
      }
      for (const r of await Promise.all(children)) expectExit(r, 0);
      expect(new Set(addresses).size).toBe(10);
      // calf hands out the lowest free address: with all 10 back in the pool, the next run gets the lowest again
      const next = await ns.calf(['run', '--network', name, 'busybox', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
      const lowest = [...addresses].sort((a, b) => Number(a!.split('.')[3]) - Number(b!.split('.')[3]))[0];
      expect({ next: eth0Address(next.stdout), veths: veths() }).toEqual({ next: lowest, veths: [] });
    }, 180_000 * slow);
  });

  describe('Published ports', () => {
    it.concurrent('answers on the host’s 127.0.0.1 at the published port, and calf still ends with its container', async () => {
      const name = await sharedNetwork();
      const answer = token();
      const port = randomPort();
      const c = await startContainer(['--network', name, '-p', `${port}:8080`, ...SERVE(answer)]);
      const seen = await ns.exec(['sh', '-c', connect('127.0.0.1', port, 'busybox nc')]);
      // The container ends by itself (killed from the host, not through calf): calf must follow.
      const stopped = c.end();
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([stopped, new Promise((r) => { timer = setTimeout(r, 15_000 * slow); })]);
      clearTimeout(timer); // or jest waits it out after the last check: 13 s before the board's verdict
      if (ended === undefined) {
        terminate(c.calf); // SIGTERM alone (not execa's kill, which adds a SIGKILL 5 s later)
        await stopped;
        throw new Error('calf did not end when its container did (15 s): the published port\'s server keeps Node\'s event loop alive (server.unref())');
      }
      expect(seen.stdout.trim()).toBe(answer);
    }, 120_000 * slow);

    it.concurrent('refuses a malformed -p with 125 and one line', async () => {
      const name = await sharedNetwork();
      const [ok, ...bad] = await Promise.all([`${randomPort()}:80`, '8080', 'a:80', '80:70000'].map((p) =>
        ns.calf(['run', '--network', name, '-p', p, 'busybox', 'echo', 'ran'])));
      expectExit(ok!, 0, 'a well-formed -p (the positive control)');
      expect(ok!.stdout).toBe('ran\n');
      expect(bad.map((r) => ({ exit: r.exitCode, stdout: r.stdout, lines: r.stderr.trim().split('\n').length })))
        .toEqual(Array(3).fill({ exit: 125, stdout: '', lines: 1 }));
    });

    it.concurrent('refuses a host port that is taken with 125, and runs nothing', async () => {
      const name = await sharedNetwork();
      const port = randomPort();
      const taker = ns.exec(['busybox', 'nc', '-ll', '-p', String(port), '-e', 'true']);
      try {
        await ns.exec(['sh', '-c', connect('127.0.0.1', port, 'busybox nc')]); // it listens now
        const [free, taken] = await Promise.all([
          ns.calf(['run', '--network', name, '-p', `${port + 1}:80`, 'busybox', 'echo', 'ran']),
          ns.calf(['run', '--network', name, '-p', `${port}:80`, 'busybox', 'echo', 'ran']),
        ]);
        expect(free.stdout).toBe('ran\n');
        expectExit(taken, 125);
        expect({ stdout: taken.stdout, stderr: taken.stderr.trim().split('\n').length }).toEqual({ stdout: '', stderr: 1 });
        expect(taken.stderr).toContain(String(port));
      } finally {
        taker.kill('SIGKILL');
        await taker;
      }
    });
  });

  describe('The sync handshake', () => {
    it('has the network ready before the command’s first instruction', async () => {
      const name = await sharedNetwork();
      // No waiting, no retry: what the command sees at once (eth0, its address, its routes) is
      // what it sees half a second later, when calf's few `ip` calls (tens of ms) are long done.
      // (Whether the routes are right is the endpoint's check.)
      const look = 'ip -o -4 addr show dev eth0; ip route';
      const r = await ns.calf(['run', '--network', name, 'busybox', 'sh', '-c', `${look}; echo ---; sleep ${slow / 2}; ${look}`]);
      expectExit(r, 0);
      const [first = '', later = ''] = r.stdout.split('---\n');
      expect({ address: eth0Address(first) !== undefined, first }).toEqual({ address: true, first: later });
    });
  });

  describe('Cleaning up after a crash', () => {
    it('removes the veth and frees the address of a calf killed with SIGKILL', async () => {
      const name = await network();
      const child = ns.calf(['run', '--network', name, 'busybox', 'sh', '-c', 'ip -o -4 addr show dev eth0 || exit 1; read line']);
      let address: string | undefined;
      let during: string[] = [];
      let leasedDuring = false;
      let cleanup;
      try {
        address = await addressOf(child);
        during = veths();
        leasedDuring = fs.existsSync(leaseFile(name, address)); // calf lives: no cleanup may take it
        child.kill('SIGKILL'); // calf dies at once: no exit handler runs; the container lives on
        await waitFor('calf to die', () => (child.exitCode === null && child.signalCode === null ? undefined : true)).catch(() => undefined);
        cleanup = await ns.calf(['cleanup']);
      } finally {
        child.stdin!.end(); // the container's `read` ends, and the container with it
        await child;
      }
      expectExit(cleanup!, 0);
      // What is gone, not what this cleanup said: a `calf cleanup` in a test file running in
      // parallel (same calf root) may have removed the endpoint first, and reported it itself.
      const leasedAfter = fs.existsSync(leaseFile(name, address));
      const again = await ns.calf(['run', '--network', name, 'busybox', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
      expect({ vethDuring: during.length, leasedDuring, vethsAfter: veths(), leasedAfter, reused: eth0Address(again.stdout) })
        .toEqual({ vethDuring: 1, leasedDuring: true, vethsAfter: [], leasedAfter: false, reused: address });
    });
  });
});
