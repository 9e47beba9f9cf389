/**
 * lib/network's pure parts: subnets and addresses as numbers (the pools' arithmetic), and what a
 * `-p` value says. The networks themselves are level 08's tests, in a test-made namespace.
 */
import { describe, it, expect } from '@jest/globals';
import { parseAddress, formatAddress, parseSubnet, formatSubnet, host, size, overlaps } from '../../lib/network/cidr.js';
import { parsePublish } from '../../lib/network/publish.js';
import { networkMode } from '../../lib/network/mode.js';

describe('subnets and addresses', () => {
  it('turns addresses into numbers and back', () => {
    expect(parseAddress('10.88.0.5')).toBe(0x0a580005);
    expect(formatAddress(0x0a580005)).toBe('10.88.0.5');
    expect(formatAddress(parseAddress('255.255.255.255'))).toBe('255.255.255.255');
    expect(() => parseAddress('10.88.0.256')).toThrow('invalid IPv4 address');
  });

  it('parses a subnet, and names its gateway, size and overlaps', () => {
    const s = parseSubnet('10.89.7.0/24');
    expect({ subnet: formatSubnet(s), gateway: formatAddress(host(s, 1)), size: size(s) })
      .toEqual({ subnet: '10.89.7.0/24', gateway: '10.89.7.1', size: 256 });
    expect(overlaps(s, parseSubnet('10.89.0.0/16'))).toBe(true);
    expect(overlaps(s, parseSubnet('10.89.8.0/24'))).toBe(false);
  });

  it('refuses a subnet that is not one: bad syntax, a host address, a prefix out of range', () => {
    expect(() => parseSubnet('nonsense')).toThrow('invalid subnet nonsense');
    expect(() => parseSubnet('10.89.7.1/24')).toThrow('it should be 10.89.7.0/24');
    expect(() => parseSubnet('10.0.0.0/31')).toThrow('between /8 and /30');
  });
});

describe('-p values', () => {
  it('reads HOSTPORT:CONTAINERPORT, with 127.0.0.1: and /tcp allowed, and collects repeats', () => {
    expect(parsePublish('8000:80')).toEqual([{ hostPort: 8000, containerPort: 80 }]);
    expect(parsePublish('127.0.0.1:8001:81/tcp', [{ hostPort: 8000, containerPort: 80 }]))
      .toEqual([{ hostPort: 8000, containerPort: 80 }, { hostPort: 8001, containerPort: 81 }]);
  });

  it('refuses anything else with calf’s exit code', () => {
    for (const bad of ['80', 'a:80', '80:70000', '0.0.0.0:80:80', '80:80/udp']) {
      expect(() => parsePublish(bad)).toThrow(expect.objectContaining({ exitCode: 125 }));
    }
  });
});

describe('--network at level 07', () => {
  it('knows none and host, and nothing else', () => {
    expect([networkMode('none'), networkMode('host')]).toEqual(['none', 'host']);
    expect(() => networkMode('bridge')).toThrow('network bridge not found');
  });
});
