/**
 * The servers a test registry needs beside `docker-registry` itself, run as one process inside
 * the test's network namespace (the jest worker is not in it, so it cannot listen there):
 *
 * - the **token server** the registry trusts (`auth: token`): it signs ES256 JWTs granting the
 *   scope asked for, to anyone, for `lifetime` seconds, as Docker Hub's auth service does for
 *   public images;
 * - a **second host** (127.0.0.2, "the CDN"): the registry's blob downloads can be redirected to
 *   it (distribution's `redirect` storage middleware), and it serves them from the registry's
 *   storage directory. It records every request's headers, can stall a blob (to kill calf, or to
 *   let a token expire, in the middle of a pull), and serves canned responses for the fault
 *   checks (a schema-1 manifest, a 429);
 * - `get`: an HTTP request made from inside the namespace, for the test to see what calf sees.
 *
 * The test (test/support/registry.ts) drives it over Node's IPC channel: `{ id, op, …args }` in,
 * `{ id, result }` or `{ id, error }` out.
 */
import { createHash, createSign, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

/** One request the CDN host saw. */
export interface CdnRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** what it answered: a status, or `stalled` while it holds the response */
  status: number | 'stalled';
}

/** One token the token server signed. */
export interface IssuedToken {
  scope: string;
  /** seconds it is valid for, from the registry's point of view */
  lifetime: number;
  at: number;
  /** whether the client asked with an Authorization header (it never should need one here) */
  authorization: boolean;
}

/** How the CDN treats one blob: hold it after `afterBytes` bytes until released (or `ms` passed). */
interface Stall {
  afterBytes: number;
  ms?: number;
  waiting: (() => void)[];
  released: boolean;
}

/** A response the CDN host gives for an exact path: the fault checks' fake registry. */
interface Canned {
  status: number;
  headers: Record<string, string>;
  body: string; // base64
}

interface Settings {
  /** where distribution keeps its files: the CDN serves `<storage><url path>` */
  storage: string;
  /** PEM of the EC P-256 key the registry's rootcertbundle certificate holds */
  key: string;
  /** that certificate (self-signed): also what the `tls` server shows, which calf must refuse */
  cert: string;
  /** distribution's key id for it (libtrust fingerprint) */
  kid: string;
  issuer: string;
  service: string;
  tokenPort: number;
  cdnHost: string;
  cdnPort: number;
}

/** distribution 2.8 accepts a token up to this long after its `exp` (token.Leeway): subtract it to make `lifetime` real. */
const LEEWAY = 60;

let settings: Settings;
let lifetime = 60; // distribution's and Docker Hub's default expires_in is 60 s (Docker Hub: 300)
let field: 'token' | 'access_token' | 'both' = 'both';
const tokens: IssuedToken[] = [];
const cdn: CdnRequest[] = [];
const stalls = new Map<string, Stall>();
const canned = new Map<string, Canned>();
const servers: (http.Server | https.Server)[] = [];

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** A JWT as distribution's token auth verifies it: ES256, `kid` naming the trusted key. */
function sign(scope: string): string {
  const now = Math.floor(Date.now() / 1000);
  const access = scope.split(' ').filter(Boolean).map((s) => {
    const [type, name, actions] = [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1, s.lastIndexOf(':')), s.slice(s.lastIndexOf(':') + 1)];
    return { type, name, actions: actions.split(',').filter(Boolean) };
  });
  const header = { typ: 'JWT', alg: 'ES256', kid: settings.kid };
  const claims = {
    iss: settings.issuer, sub: '', aud: settings.service,
    exp: now + lifetime - LEEWAY, nbf: now - 1, iat: now, jti: randomBytes(8).toString('hex'), access,
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  // JWS wants ES256 signatures as r‖s (IEEE P1363), not DER.
  const signature = createSign('SHA256').update(input).sign({ key: settings.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}

function tokenServer(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://token');
  if (url.pathname !== '/token') {
    res.writeHead(404).end();
    return;
  }
  const scope = url.searchParams.getAll('scope').join(' ');
  if (url.searchParams.get('service') !== settings.service) {
    res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ details: `unknown service ${url.searchParams.get('service')}` }));
    return;
  }
  tokens.push({ scope, lifetime, at: Date.now(), authorization: req.headers.authorization !== undefined });
  const jwt = sign(scope);
  const body: Record<string, unknown> = { expires_in: lifetime, issued_at: new Date().toISOString() };
  if (field !== 'access_token') body.token = jwt;
  if (field !== 'token') body.access_token = jwt;
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function cdnServer(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  const entry: CdnRequest = { method: req.method ?? 'GET', url, headers: req.headers, status: 200 };
  cdn.push(entry);
  const fake = canned.get(url);
  if (fake) {
    entry.status = fake.status;
    res.writeHead(fake.status, fake.headers).end(Buffer.from(fake.body, 'base64'));
    return;
  }
  // A redirected blob: /docker/registry/v2/blobs/sha256/ab/ab12…/data under the storage directory.
  const file = path.join(settings.storage, path.normalize(url.split('?')[0]!));
  if (!file.startsWith(`${settings.storage}/`) || !fs.existsSync(file)) {
    entry.status = 404;
    res.writeHead(404).end();
    return;
  }
  const data = fs.readFileSync(file);
  const hex = /\/([0-9a-f]{64})\/data$/.exec(url)?.[1];
  const stall = hex ? stalls.get(hex) : undefined;
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (!stall || stall.released) {
    res.end(data);
    return;
  }
  // Send the first bytes, then hold the rest: calf is then mid-blob, with a temp file open.
  const head = Math.min(stall.afterBytes, data.length);
  res.write(data.subarray(0, head));
  entry.status = 'stalled';
  const finish = () => {
    entry.status = 200;
    if (!res.destroyed) res.end(data.subarray(head));
  };
  stall.waiting.push(finish);
  if (stall.ms !== undefined) setTimeout(finish, stall.ms);
  res.on('close', () => { if (entry.status === 'stalled') entry.status = 499; }); // the client went away (nginx's 499)
}

function listen(server: http.Server | https.Server, port: number, host: string): Promise<void> {
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

async function handle(message: Record<string, unknown>): Promise<unknown> {
  switch (message.op) {
    case 'start': {
      settings = message.settings as Settings;
      await listen(http.createServer(tokenServer), settings.tokenPort, '127.0.0.1');
      await listen(http.createServer(cdnServer), settings.cdnPort, settings.cdnHost);
      return null;
    }
    case 'tls': {
      // A "registry" behind a certificate nobody trusts: calf must refuse it, in one line.
      await listen(https.createServer({ key: settings.key, cert: settings.cert }, (req, res) => res.end('{}')), message.port as number, message.host as string);
      return null;
    }
    case 'get': {
      const r = await fetch(message.url as string, { headers: (message.headers as Record<string, string>) ?? {}, redirect: 'manual' });
      const body = Buffer.from(await r.arrayBuffer());
      return { status: r.status, headers: Object.fromEntries([...(r.headers as unknown as Iterable<[string, string]>)]), body: body.toString('utf8'), sha256: createHash('sha256').update(body).digest('hex') };
    }
    case 'settings':
      if (typeof message.lifetime === 'number') lifetime = message.lifetime;
      if (typeof message.field === 'string') field = message.field as typeof field;
      return null;
    case 'stall':
      stalls.set(message.hex as string, { afterBytes: message.afterBytes as number, ...(typeof message.ms === 'number' ? { ms: message.ms } : {}), waiting: [], released: false });
      return null;
    case 'release': {
      const stall = stalls.get(message.hex as string);
      if (stall) {
        stall.released = true;
        for (const finish of stall.waiting.splice(0)) finish();
      }
      stalls.delete(message.hex as string);
      return null;
    }
    case 'canned':
      canned.set(message.path as string, { status: message.status as number, headers: message.headers as Record<string, string>, body: message.body as string });
      return null;
    case 'log':
      return { tokens, cdn };
    case 'stop':
      for (const server of servers) server.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      setImmediate(() => process.disconnect()); // after the reply below
      return null;
    default:
      throw new Error(`unknown op ${String(message.op)}`);
  }
}

process.on('message', (message: Record<string, unknown>) => {
  handle(message).then(
    (result) => process.connected && process.send!({ id: message.id, result }),
    (error: Error) => process.connected && process.send!({ id: message.id, error: error.message }),
  );
});
// The test went away without saying stop (a crash, a timeout): don't outlive it.
process.on('disconnect', () => process.exit(0));
