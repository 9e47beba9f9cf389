/**
 * A real registry for the pull tests, offline: Debian's `docker-registry` (distribution 2.8)
 * inside a network namespace the test made, with token auth as Docker Hub has it.
 *
 * ```
 *  calf (in the test's netns)                            the test (jest worker, host netns)
 *    │ GET /v2/…/manifests/… ──► registry 127.0.0.1:5000 ◄── started by pid, stdout = access log
 *    │ ◄── 401 WWW-Authenticate: Bearer realm=…/token,service=…,scope=repository:…:pull
 *    │ GET /token?scope=… ─────► token server 127.0.0.1:5001 ┐ the agent: one node process in
 *    │ GET /v2/…/blobs/… ──────► registry 127.0.0.1:5002     │ the netns, driven over IPC
 *    │ ◄── 307 Location: http://127.0.0.2:8080/docker/…/data │ (test/support/registry-agent.ts)
 *    │ GET (no Authorization!) ► the CDN 127.0.0.2:8080 ─────┘ records headers, stalls, fakes
 * ```
 * Both registries share one storage directory: `:5000` serves blobs itself, `:5002` redirects
 * blob downloads to the CDN host (distribution's `redirect` storage middleware), as Docker Hub
 * sends them to its CDN. The registry trusts one self-signed certificate (openssl), whose EC key
 * the token server signs JWTs with; the registry checks signature, issuer, audience, expiry and
 * that the token's `access` covers the repository and action.
 *
 * Everything lives in one temp directory and the netns; `stop()` ends the processes by pid and
 * removes the directory, and is safe to call twice or after a failed start.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repo } from './paths.js';
import { slow } from './host.js';
import type { TestNetns } from './netns.js';
import type { CdnRequest, IssuedToken } from './registry-agent.js';
export type { CdnRequest, IssuedToken };

const run = promisify(execFile);

/** The registry serving its blobs itself. */
export const REGISTRY = '127.0.0.1:5000';
/** The same storage, its blob downloads redirected to {@link CDN}. */
export const REDIRECTING = '127.0.0.1:5002';
/** The second host: another loopback address, so another origin (and no registry: no token for it). */
export const CDN = '127.0.0.2:8080';
const TOKEN_PORT = 5001;
const SERVICE = 'calf-test-registry';
const ISSUER = 'calf-test-token-server';

/** One line of a registry's access log. */
export interface AccessLine {
  registry: string;
  method: string;
  path: string;
  status: number;
}

/** What an HTTP request made from inside the namespace got. */
export interface Got {
  status: number;
  headers: Record<string, string>;
  body: string;
  sha256: string;
}

/** A running test registry. */
export interface TestRegistry {
  /** the storage directory (distribution's `rootdirectory`) */
  storage: string;
  /** milliseconds from spawning both registries to both answering `/v2/` */
  startMs: number;
  /** `skopeo copy` of a local OCI layout to `<registry>/<ref>`, inside the namespace; returns its milliseconds */
  push(layout: string, ref: string, options?: { format?: 'oci' | 'v2s2'; all?: boolean; preserveDigests?: boolean; registry?: string }): Promise<number>;
  /** the registry's file holding blob `digest` */
  blobFile(digest: string): string;
  /** change one byte in the middle of the stored blob (size unchanged), as a bad disk or a bad mirror would */
  tamper(digest: string): void;
  /** a GET from inside the namespace (no redirects followed) */
  get(url: string, headers?: Record<string, string>): Promise<Got>;
  /** what both registries' access logs say so far */
  accessLog(): AccessLine[];
  /** the registries' own log lines (stderr), for a failure message */
  errorLog(): string;
  /** the tokens the token server signed and every request the CDN host saw */
  log(): Promise<{ tokens: IssuedToken[]; cdn: CdnRequest[] }>;
  /** from now on, sign tokens valid for `lifetime` seconds, and answer with `token`, `access_token` or both */
  tokens(settings: { lifetime?: number; field?: 'token' | 'access_token' | 'both' }): Promise<void>;
  /** make the CDN send the first `afterBytes` of blob `digest`, then hold the rest until `release` (or `ms`) */
  stall(digest: string, afterBytes: number, ms?: number): Promise<void>;
  release(digest: string): Promise<void>;
  /** make the CDN host answer `path` with this response: a fake registry for the fault checks */
  fake(path: string, status: number, headers: Record<string, string>, body: Buffer | string): Promise<void>;
  /** an https server on `host:port` (an address of the netns) with a self-signed certificate */
  tls(host: string, port: number): Promise<void>;
  stop(): Promise<void>;
}

/** Start the registries, the token server and the CDN host in `ns`. Call `stop()` in afterAll. */
export async function startTestRegistry(ns: Pick<TestNetns, 'nsenter'>): Promise<TestRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-registry-'));
  const storage = path.join(dir, 'storage');
  fs.mkdirSync(storage);
  const processes: ChildProcess[] = [];
  const access: AccessLine[] = [];
  let errors = '';
  let agent: Agent | undefined;
  let stopped = false;

  // A jest worker that ends without afterAll (Ctrl-C, a crash) still ends what it started.
  const onExit = (): void => {
    for (const child of processes) {
      try {
        if (child.pid && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    await agent?.call('stop').catch(() => undefined);
    for (const child of processes) {
      if (!child?.pid || child.exitCode !== null || child.signalCode !== null) continue;
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // ended meanwhile
      }
      await new Promise((r) => { if (child.exitCode !== null || child.signalCode !== null) r(null); else child.once('exit', r); });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    // The token signing key and the certificate the registry trusts for it.
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', path.join(dir, 'token.key'), '-out', path.join(dir, 'token.crt'), '-days', '2', '-subj', `/CN=${ISSUER}`]);
    const key = fs.readFileSync(path.join(dir, 'token.key'), 'utf8');
    const cert = fs.readFileSync(path.join(dir, 'token.crt'), 'utf8');

    agent = startAgent(ns);
    processes.push(agent.child);
    await agent.call('start', {
      settings: { storage, key, cert, kid: libtrustKeyId(key), issuer: ISSUER, service: SERVICE, tokenPort: TOKEN_PORT, cdnHost: CDN.split(':')[0], cdnPort: Number(CDN.split(':')[1]) },
    });

    const started = performance.now();
    for (const [addr, redirect] of [[REGISTRY, false], [REDIRECTING, true]] as const) {
      const config = path.join(dir, `config-${addr.split(':')[1]}.yml`);
      fs.writeFileSync(config, registryConfig({ addr, storage, bundle: path.join(dir, 'token.crt'), redirect }));
      const child = spawn('nsenter', [...ns.nsenter, 'docker-registry', 'serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
      processes.push(child);
      lines(child.stdout!, (line) => {
        // the access log, Apache's combined format: 127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 401 87 "" "agent"
        const m = /"(\w+) (\S+) HTTP\/[\d.]+" (\d+)/.exec(line);
        if (m) access.push({ registry: addr, method: m[1]!, path: m[2]!, status: Number(m[3]) });
      });
      lines(child.stderr!, (line) => { errors += `${addr}: ${line}\n`; });
    }
    for (const addr of [REGISTRY, REDIRECTING]) {
      const until = Date.now() + 15_000 * slow;
      for (;;) {
        const r = await agent.call<Got>('get', { url: `http://${addr}/v2/` }).catch(() => undefined);
        if (r?.status === 401) break;
        if (Date.now() > until || processes.some((p) => p.exitCode !== null)) {
          throw new Error(`docker-registry on ${addr} did not start (last answer: ${r ? r.status : 'none'}); its log:\n${errors.slice(-2000)}`);
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    const startMs = performance.now() - started;
    const a = agent;

    const blobFile = (digest: string): string => {
      const hex = digest.replace(/^sha256:/, '');
      return path.join(storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    };
    return {
      storage,
      startMs,
      async push(layout, ref, options = {}) {
        const args = ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', '--retry-times', '0'];
        if (options.format) args.push('--format', options.format);
        if (options.all) args.push('--all');
        if (options.preserveDigests) args.push('--preserve-digests');
        const t = performance.now();
        // skopeo runs as root would keep a blob info cache in /var/lib/containers: a rootless
        // uid (as containers/image reads it) sends it to our temp directory instead.
        await run('nsenter', [...ns.nsenter, 'skopeo', ...args, `oci:${layout}`, `docker://${options.registry ?? REGISTRY}/${ref}`], {
          env: { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: path.join(dir, 'xdg'), XDG_RUNTIME_DIR: path.join(dir, 'xdg'), _CONTAINERS_ROOTLESS_UID: '1000', TMPDIR: dir },
        }).catch((err: Error & { stderr?: string }) => {
          throw new Error(`skopeo copy oci:${layout} → ${ref} failed: ${err.stderr?.trim() || err.message}\nthe registry's log ends:\n${errors.split('\n').filter((l) => /level=(error|warn)/.test(l)).slice(-3).join('\n')}`);
        });
        return performance.now() - t;
      },
      blobFile,
      tamper(digest) {
        const file = blobFile(digest);
        const fd = fs.openSync(file, 'r+');
        try {
          const at = Math.floor(fs.fstatSync(fd).size / 2);
          const byte = Buffer.alloc(1);
          fs.readSync(fd, byte, 0, 1, at);
          byte[0] = byte[0]! ^ 0xff;
          fs.writeSync(fd, byte, 0, 1, at);
        } finally {
          fs.closeSync(fd);
        }
      },
      get: (url, headers) => a.call<Got>('get', { url, headers }),
      accessLog: () => [...access],
      errorLog: () => errors,
      log: () => a.call('log'),
      tokens: (settings) => a.call('settings', settings),
      stall: (digest, afterBytes, ms) => a.call('stall', { hex: digest.replace(/^sha256:/, ''), afterBytes, ...(ms === undefined ? {} : { ms }) }),
      release: (digest) => a.call('release', { hex: digest.replace(/^sha256:/, '') }),
      tls: (host, port) => a.call('tls', { host, port }),
      fake: (p, status, headers, body) => a.call('canned', { path: p, status, headers, body: Buffer.from(body).toString('base64') }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function registryConfig(o: { addr: string; storage: string; bundle: string; redirect: boolean }): string {
  return `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${o.storage}
  maintenance:
    uploadpurging:
      enabled: false
validation:
  manifests:
    urls:
      allow:
        - ^http://${CDN.replaceAll('.', '\\.')}/
${o.redirect ? `middleware:
  storage:
    - name: redirect
      options:
        baseurl: http://${CDN}
` : ''}http:
  addr: ${o.addr}
  secret: calf-test-shared-secret
auth:
  token:
    realm: http://127.0.0.1:${TOKEN_PORT}/token
    service: ${SERVICE}
    issuer: ${ISSUER}
    rootcertbundle: ${o.bundle}
`;
}

/**
 * distribution's id for a key (libtrust's fingerprint): the SHA-256 of its DER public key, cut
 * to 240 bits, in base32, in twelve groups of four: `PYYO:TEWU:…`. The JWT's `kid` names it.
 */
function libtrustKeyId(privateKeyPem: string): string {
  const der = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' });
  const bytes = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let text = '';
  for (let i = 0; i < bits.length; i += 5) text += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return text.match(/.{4}/g)!.join(':');
}

interface Agent {
  child: ChildProcess;
  call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T>;
}

function startAgent(ns: Pick<TestNetns, 'nsenter'>): Agent {
  const child = spawn('nsenter', [...ns.nsenter, process.execPath, '--import', 'tsx', path.join(repo, 'test/support/registry-agent.ts')], {
    cwd: repo, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1' },
  });
  const pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: { id: string; result?: unknown; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(`registry agent: ${m.error}`));
    else p?.resolve(m.result);
  });
  child.on('exit', () => {
    for (const p of pending.values()) p.reject(new Error('the registry agent ended'));
    pending.clear();
  });
  return {
    child,
    call: <T>(op: string, args: Record<string, unknown> = {}) => new Promise<T>((resolve, reject) => {
      if (!child.connected) {
        reject(new Error('the registry agent is not running'));
        return;
      }
      const id = randomBytes(6).toString('hex');
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, op, ...args });
    }),
  };
}

function lines(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    rest += String(chunk);
    const parts = rest.split('\n');
    rest = parts.pop()!;
    for (const line of parts) each(line);
  });
}
