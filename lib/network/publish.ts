/**
 * `-p HOSTPORT:CONTAINERPORT`: what the flag says, and the plumbing of the userspace proxy that
 * publishes the port on the host's 127.0.0.1 (as docker-proxy does for loopback).
 * @module
 */
import type net from 'node:net';
import { CalfError } from '../core/errors.js';

/** One `-p`: TCP connections to 127.0.0.1:hostPort on the host reach containerPort in the container. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
}

function port(text: string, spec: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) throw new CalfError(`invalid port ${JSON.stringify(text)} in -p ${spec}: expected 1…65535`);
  return n;
}

/**
 * Parse a `-p` value, `HOSTPORT:CONTAINERPORT` or `127.0.0.1:HOSTPORT:CONTAINERPORT`, with an
 * optional `/tcp`; calf publishes TCP on the host's loopback only. For commander: `previous` is
 * the list so far (the flag repeats).
 */
export function parsePublish(spec: string, previous: PortMapping[] = []): PortMapping[] {
  const parts = spec.replace(/\/tcp$/, '').split(':');
  if (parts.length === 3 && parts[0] === '127.0.0.1') parts.shift();
  if (parts.length !== 2) throw new CalfError(`invalid -p ${spec}: expected HOSTPORT:CONTAINERPORT (TCP, published on 127.0.0.1)`);
  return [...previous, { hostPort: port(parts[0]!, spec), containerPort: port(parts[1]!, spec) }];
}

/** Start `server` listening on host:port; a port that is taken is calf's error (125), named. */
export function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new CalfError(`-p ${port}: cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`));
    });
    server.listen(port, host, () => resolve());
  });
}

/**
 * Join two sockets both ways: what one sends, the other gets, and the end of one direction (a
 * FIN) is passed on as such. A failure on either side closes both. Neither keeps calf alive:
 * calf's lifetime is the container's.
 */
export function splice(a: net.Socket, b: net.Socket): void {
  a.pipe(b).pipe(a);
  for (const s of [a, b]) {
    s.unref();
    s.on('error', () => { a.destroy(); b.destroy(); });
  }
}
