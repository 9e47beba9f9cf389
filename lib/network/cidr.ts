/**
 * IPv4 addresses and subnets as numbers, for the address pools (IPAM) of calf's networks.
 * @module
 */

/** An IPv4 subnet: its first address as a 32-bit number, and the prefix length. */
export interface Subnet {
  base: number;
  prefix: number;
}

/** `10.88.0.5` → 0x0a580005; throws on anything but four decimal bytes. */
export function parseAddress(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new Error(`invalid IPv4 address: ${text}`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** 0x0a580005 → `10.88.0.5`. */
export function formatAddress(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/**
 * `10.88.0.0/16` → a {@link Subnet}. calf's pools want room for a gateway and containers, and
 * the address written must be the subnet's first one (Docker refuses `10.88.0.1/16` too).
 */
export function parseSubnet(text: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  if (!m) throw new Error(`invalid subnet ${text}: expected an IPv4 CIDR like 10.89.0.0/24`);
  const base = parseAddress(m[1]!);
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) throw new Error(`invalid subnet ${text}: the prefix must be between /8 and /30`);
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) throw new Error(`invalid subnet ${text}: it should be ${formatAddress(base - (base % size))}/${prefix}`);
  return { base, prefix };
}

/** `10.88.0.0/16` */
export function formatSubnet(s: Subnet): string {
  return `${formatAddress(s.base)}/${s.prefix}`;
}

/** The number of addresses in the subnet, network and broadcast addresses included. */
export function size(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

/** The subnet's `n`th address: 1 is the gateway's, 2… the containers'. */
export function host(s: Subnet, n: number): number {
  return s.base + n;
}

/** Do two subnets share an address? */
export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.base < b.base + size(b) && b.base < a.base + size(a);
}
