/**
 * Docker's container network model (CNM) in miniature. A **network** is a Linux bridge and an
 * address pool; an **endpoint** is one container's attachment to it: an address leased from the
 * pool (IPAM) and a veth pair, one end on the bridge; the **sandbox** is the container's network
 * namespace, where the other end goes.
 *
 * State lives under the calf root, so one `CALF_ROOT` moves it with the rest:
 * ```
 * <root>/networks/.lock                       flock(2)ed while a pool or the list changes
 * <root>/networks/<name>/network.json         the definition: bridge name, subnet, gateway
 * <root>/networks/<name>/leases/<address>     one per endpoint: its veth and the calf pid that owns it
 * ```
 * Bridges and veths live in a network namespace, and the root's files don't say which: the bridge
 * is made again, from its definition, in whatever namespace calf runs when it is first needed
 * there. So one root serves one "host" at a time, as one Docker daemon does; the tests, which run
 * calf in namespaces of their own, use networks of their own.
 * @module
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { calfRoot } from '../core/root.js';
import { CalfError } from '../core/errors.js';
import type { LeftoverKind } from '../core/leftovers.js';
import { alive } from '../core/process.js';
import { readJson, writeJson } from '../core/record.js';
import { flock, LOCK_EX, LOCK_UN } from '../linux/file.js';
import { ip, linkExists, deleteLink } from './ip.js';
import { parseSubnet, formatSubnet, formatAddress, host, size, overlaps, type Subnet } from './cidr.js';
import { NETWORK_MODES } from './mode.js';

/** A network's definition, as `network.json` holds it. */
export interface Network {
  name: string;
  /** 64 hex digits, like Docker's network ids */
  id: string;
  /** the Linux bridge: `calf0`, or `calf-` and 10 digits of the id (15 bytes: IFNAMSIZ) */
  bridge: string;
  /** `10.89.0.0/24` */
  subnet: string;
  /** the bridge's own address: the subnet's first host address */
  gateway: string;
  created: string;
}

/** One container's place on a network. */
export interface Endpoint {
  network: string;
  bridge: string;
  /** the host-side end of the veth pair: `veth` and 8 hex digits */
  veth: string;
  /** the container's address, and the subnet's prefix length */
  address: string;
  prefix: number;
  gateway: string;
}

/** What a lease file says: who holds the address. */
interface Lease {
  veth: string;
  /** the `calf run` process: while it lives, the address is taken */
  pid: number;
}

/** The network every calf root has, made on first use (Docker's is `bridge`, on `docker0`). */
export const DEFAULT_NETWORK = 'calf0';
const DEFAULT_SUBNET = '10.88.0.0/16';
/** Where `calf network create` without `--subnet` takes its /24s from, as Podman does. */
const POOL = { base: parseSubnet('10.89.0.0/16').base, step: 256, count: 256 };
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

export function networksDir(root = calfRoot()): string {
  return path.join(root, 'networks');
}

/**
 * Run `fn` holding the root's network lock: an exclusive flock(2) on `networks/.lock`. Parallel
 * `calf run`s wait for each other here, so two never lease the same address; the kernel drops the
 * lock of a calf that dies, even of SIGKILL.
 */
function locked<T>(root: string, fn: () => T): T {
  fs.mkdirSync(networksDir(root), { recursive: true });
  const fd = fs.openSync(path.join(networksDir(root), '.lock'), 'a');
  try {
    flock(fd, LOCK_EX);
    return fn();
  } finally {
    try { flock(fd, LOCK_UN); } finally { fs.closeSync(fd); }
  }
}

/** Every network defined under the root; the default one is defined on first use. */
function definitions(root: string): Network[] {
  if (!fs.existsSync(path.join(networksDir(root), DEFAULT_NETWORK, 'network.json'))) {
    define(root, DEFAULT_NETWORK, parseSubnet(DEFAULT_SUBNET), DEFAULT_NETWORK);
  }
  return fs.readdirSync(networksDir(root), { withFileTypes: true }).filter((e) => e.isDirectory())
    .map((e) => readJson<Network>(path.join(networksDir(root), e.name, 'network.json')))
    .filter((n): n is Network => n !== undefined)
    .sort((a, b) => (a.name === DEFAULT_NETWORK ? -1 : b.name === DEFAULT_NETWORK ? 1 : a.created.localeCompare(b.created)));
}

function define(root: string, name: string, subnet: Subnet, bridge?: string): Network {
  const id = randomBytes(32).toString('hex');
  const network: Network = {
    name, id, bridge: bridge ?? `calf-${id.slice(0, 10)}`, subnet: formatSubnet(subnet),
    gateway: formatAddress(host(subnet, 1)), created: new Date().toISOString(),
  };
  const dir = path.join(networksDir(root), name);
  fs.mkdirSync(path.join(dir, 'leases'), { recursive: true });
  writeJson(path.join(dir, 'network.json'), network); // whole, then renamed: a calf killed halfway leaves no half of it
  return network;
}

/**
 * Make the network's bridge in calf's network namespace, unless it is there: the gateway address
 * on it, and forwarding off, so its containers reach the host and each other, and no other
 * network (Docker, which forwards for NAT, drops that traffic with iptables instead).
 */
function ensureBridge(network: Network): void {
  if (linkExists(network.bridge)) return;
  const { prefix } = parseSubnet(network.subnet);
  ip(['link', 'add', network.bridge, 'type', 'bridge']);
  ip(['address', 'add', `${network.gateway}/${prefix}`, 'dev', network.bridge]);
  fs.writeFileSync(`/proc/sys/net/ipv4/conf/${network.bridge}/forwarding`, '0'); // this netns's, like all of /proc/sys/net
  ip(['link', 'set', network.bridge, 'up']);
}

/** The leases of a network: address → lease. */
function leases(root: string, name: string): Map<string, Lease & { file: string }> {
  const dir = path.join(networksDir(root), name, 'leases');
  const found = new Map<string, Lease & { file: string }>();
  for (const address of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (address.includes('.tmp')) continue;
    const file = path.join(dir, address);
    found.set(address, { ...(readJson<Lease>(file) ?? { veth: '', pid: 0 }), file });
  }
  return found;
}

/** Delete an endpoint's veth (its peer goes with it), then its lease: in that order, so no veth is ever left without a lease naming it. */
function release(lease: Lease & { file: string }): void {
  if (lease.veth) deleteLink(lease.veth);
  fs.rmSync(lease.file, { force: true });
}

/** Find a network by name (`calf0` always exists). */
export function findNetwork(name: string, root = calfRoot()): Network | undefined {
  return locked(root, () => definitions(root).find((n) => n.name === name));
}

/** Every network of the root, the default one first. */
export function listNetworks(root = calfRoot()): Network[] {
  return locked(root, () => definitions(root));
}

/**
 * `calf network create NAME [--subnet CIDR]`: define a network and make its bridge. Without a
 * subnet, the first free /24 of 10.89.0.0/16.
 */
export function createNetwork(name: string, subnetText?: string, root = calfRoot()): Network {
  if (!NAME.test(name)) throw new CalfError(`invalid network name ${JSON.stringify(name)}: letters, digits, _ . - (64 at most)`);
  if ((NETWORK_MODES as readonly string[]).includes(name)) throw new CalfError(`network name ${name} is reserved for --network ${name}`);
  let subnet: Subnet | undefined;
  try {
    subnet = subnetText === undefined ? undefined : parseSubnet(subnetText);
  } catch (err) {
    throw new CalfError((err as Error).message);
  }
  const network = locked(root, () => {
    const existing = definitions(root);
    if (existing.some((n) => n.name === name)) throw new CalfError(`network with name ${name} already exists`);
    const taken = existing.map((n) => ({ n, s: parseSubnet(n.subnet) }));
    if (subnet) {
      const clash = taken.find(({ s }) => overlaps(s, subnet!));
      if (clash) throw new CalfError(`subnet ${formatSubnet(subnet)} overlaps with network ${clash.n.name} (${clash.n.subnet})`);
    } else {
      for (let i = 0; i < POOL.count && !subnet; i++) {
        const candidate = { base: POOL.base + i * POOL.step, prefix: 24 };
        if (!taken.some(({ s }) => overlaps(s, candidate))) subnet = candidate;
      }
      if (!subnet) throw new CalfError('no free /24 left in 10.89.0.0/16: give one with --subnet');
    }
    return define(root, name, subnet);
  });
  ensureBridge(network);
  return network;
}

/** `calf network rm NAME`: remove its bridge from calf's namespace and its definition. Not while a running container uses it. */
export function removeNetwork(name: string, root = calfRoot()): void {
  if (name === DEFAULT_NETWORK) throw new CalfError(`${DEFAULT_NETWORK} is a pre-defined network and cannot be removed (\`calf network prune\` or \`calf cleanup\` removes its bridge while no container uses it)`);
  locked(root, () => {
    const network = definitions(root).find((n) => n.name === name);
    if (!network) throw new CalfError(`network ${name} not found`);
    const held = [...leases(root, name)].filter(([, l]) => alive(l.pid));
    if (held.length) throw new CalfError(`network ${name} has active endpoints (${held.map(([a, l]) => `${a}, calf pid ${l.pid}`).join('; ')})`);
    for (const lease of leases(root, name).values()) release(lease);
    deleteLink(network.bridge);
    fs.rmSync(path.join(networksDir(root), name), { recursive: true, force: true });
  });
}

/**
 * `calf network prune`: remove every network no running container uses, as `docker network prune`
 * does: its bridge, its dead leases and its definition. Of the default network only the bridge
 * goes: calf0 is always defined, and its bridge is made again on first use.
 * @returns the names of the networks pruned
 */
export function pruneNetworks(root = calfRoot()): string[] {
  return locked(root, () => definitions(root).flatMap((network) => {
    const held = leases(root, network.name);
    if ([...held.values()].some((l) => alive(l.pid))) return [];
    for (const lease of held.values()) release(lease);
    if (network.name === DEFAULT_NETWORK) {
      if (!linkExists(network.bridge)) return [];
      deleteLink(network.bridge);
    } else {
      deleteLink(network.bridge);
      fs.rmSync(path.join(networksDir(root), network.name), { recursive: true, force: true });
    }
    return [network.name];
  }));
}

/**
 * Give a container an endpoint on network `name`: make the bridge if this namespace has none yet,
 * lease the lowest free address (IPAM), and pick the veth's name. All under the lock; a lease whose
 * calf is dead is taken back (its veth deleted first). The veth itself is made once the
 * container's namespace exists; the lease names it already, so `calf cleanup` finds it either way.
 */
export function createEndpoint(name: string, root = calfRoot()): Endpoint {
  return locked(root, () => {
    const network = definitions(root).find((n) => n.name === name);
    if (!network) throw new CalfError(`network ${name} not found`);
    ensureBridge(network);
    const subnet = parseSubnet(network.subnet);
    const held = leases(root, name);
    for (const [address, lease] of held) {
      if (!alive(lease.pid)) {
        release(lease);
        held.delete(address);
      }
    }
    let address: string | undefined;
    for (let n = 2; n < size(subnet) - 1 && !address; n++) {
      const candidate = formatAddress(host(subnet, n));
      if (!held.has(candidate)) address = candidate;
    }
    if (!address) throw new CalfError(`network ${name} has no free address left in ${network.subnet}`);
    const veth = `veth${randomBytes(4).toString('hex')}`;
    const file = path.join(networksDir(root), name, 'leases', address);
    writeJson(file, { veth, pid: process.pid } satisfies Lease);
    return { network: name, bridge: network.bridge, veth, address, prefix: subnet.prefix, gateway: network.gateway };
  });
}

/**
 * Take an endpoint down: delete its veth (the container's end goes with it) and give its address
 * back. Synchronous, for `process.on('exit')`; safe to call twice.
 */
export function removeEndpoint(endpoint: Endpoint, root = calfRoot()): void {
  release({ veth: endpoint.veth, pid: process.pid, file: path.join(networksDir(root), endpoint.network, 'leases', endpoint.address) });
}

/**
 * `calf cleanup`: an endpoint whose calf died (SIGKILL, a crash) before its teardown step was
 * recorded left its lease, and its veth while the container lives on. The lease names both.
 */
export const endpointLeftovers: LeftoverKind = {
  kind: 'endpoint',
  find: (root) => {
    const dir = networksDir(root);
    const names = fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : [];
    return names.flatMap((name) => [...leases(root, name)].map(([address, lease]) => ({
      what: `endpoint ${address} on network ${name} (veth ${lease.veth || '?'})`,
      owner: lease.pid,
      remove: () => release(lease),
    })));
  },
};

/**
 * `calf cleanup`: the default network's bridge while no container uses it. calf0 is made on first
 * use and never removed otherwise (`network rm` refuses a pre-defined network), so it would stay on
 * the host for good, with its address. Its definition stays: the next run makes the bridge again.
 * (A network made with `calf network create` is not a leftover: it stays until `network rm`.)
 */
export const defaultBridgeLeftovers: LeftoverKind = {
  kind: 'default network bridge',
  find: (root) => {
    const file = path.join(networksDir(root), DEFAULT_NETWORK, 'network.json');
    const network = readJson<Network>(file);
    if (!network || !linkExists(network.bridge)) return [];
    const live = [...leases(root, DEFAULT_NETWORK).values()].find((l) => alive(l.pid));
    return [{
      what: `bridge ${network.bridge} of network ${DEFAULT_NETWORK} (no container uses it)`,
      ...(live ? { owner: live.pid } : {}),
      remove: () => locked(root, () => {
        // again under the lock: a container may have taken an address since
        if ([...leases(root, DEFAULT_NETWORK).values()].some((l) => alive(l.pid))) throw new CalfError(`network ${DEFAULT_NETWORK} is in use again`);
        deleteLink(network.bridge);
      }),
    }];
  },
};
