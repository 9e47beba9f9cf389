/**
 * HTTP for a registry client, the part that is policy rather than protocol: which URL a
 * registry's API is at, following redirects without leaking credentials, reading a body with
 * a limit, and turning what went wrong into one line.
 *
 * - **Where**: `docker.io` is served at `registry-1.docker.io` (or at `CALF_REGISTRY_MIRROR`, as
 *   Docker's `registry-mirrors`); any other registry at its own name. TLS always, except for a
 *   loopback registry (`localhost`, 127.0.0.0/8, ::1), which is plain HTTP: Docker's default
 *   insecure range, where a test or a local `docker-registry` listens.
 * - **Redirects**: registries send blob downloads elsewhere (Docker Hub to its CDN, others to S3)
 *   with a 307 and a signed URL. The token is for the registry only: a redirect to another origin
 *   goes without `Authorization`. Node's `fetch` drops it on a cross-origin redirect too (the
 *   Fetch standard says so; undici did not always), but calf follows redirects itself, so the
 *   rule is written here, is the same on every Node, and is checked by the tests; and so a
 *   redirect from https to plain http is refused rather than followed.
 * - **node:http, not fetch**: a blob is hundreds of megabytes streamed into a hash and a file.
 *   `fetch` hands its body over as a WHATWG stream, each chunk a promise and a copy on the way
 *   to a Node stream; `http.request`'s response *is* a Node stream. Measured on a 100 MB layer
 *   from a local registry (bench/pull.ts): half the wall time, 40% less CPU. It also sends no
 *   `Accept-Encoding` (fetch asks for gzip and unpacks it: a blob's digest is of the bytes as
 *   sent) and refuses no port (fetch's "bad ports" include 6000 and 5060).
 * @see https://distribution.github.io/distribution/spec/api/
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { CalfError } from '../core/errors.js';

/** Where Docker Hub's registry API is, for images named `docker.io/…` (or with no registry at all). */
export const DOCKER_HUB_API = 'registry-1.docker.io';

/** How many redirects a request may follow (Fetch's limit is 20; a registry needs one). */
const MAX_REDIRECTS = 10;

/** How long a connection may stay silent (no answer, or no byte of a body) before calf gives up. */
const IDLE_TIMEOUT_MS = 60_000;

/** Whether `host` (a host name or address, with or without `:port`) is this machine's loopback. */
export function isLoopback(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/**
 * The base URL of the registry `registry`'s API (`https://host`, `http://127.0.0.1:5000`).
 * `docker.io` goes to `CALF_REGISTRY_MIRROR` when it is set.
 * @throws CalfError for a mirror that is not an http(s) URL, or plain http to a non-loopback host
 */
export function registryBase(registry: string, env: NodeJS.ProcessEnv = process.env): URL {
  if (registry === 'docker.io' && env.CALF_REGISTRY_MIRROR) {
    let mirror: URL;
    try {
      mirror = new URL(env.CALF_REGISTRY_MIRROR);
    } catch {
      throw new CalfError(`CALF_REGISTRY_MIRROR=${env.CALF_REGISTRY_MIRROR} is not a URL (e.g. https://mirror.example.com)`);
    }
    if (mirror.protocol !== 'https:' && mirror.protocol !== 'http:') throw new CalfError(`CALF_REGISTRY_MIRROR=${env.CALF_REGISTRY_MIRROR}: not an http(s) URL`);
    if (mirror.protocol === 'http:' && !isLoopback(mirror.host)) {
      throw new CalfError(`CALF_REGISTRY_MIRROR=${env.CALF_REGISTRY_MIRROR}: plain http only to a loopback mirror; use https`);
    }
    return new URL(mirror.origin);
  }
  const host = registry === 'docker.io' ? DOCKER_HUB_API : registry;
  return new URL(`${isLoopback(host) ? 'http' : 'https'}://${host}`);
}

/** A request {@link getFollowing} makes: a method and headers (registries need no body to pull). */
export interface RegistryRequest {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
}

/**
 * A response's headers, `get(name)` as the Fetch API's `Headers` has it: case-insensitive, and
 * repeated headers joined with ", ". Not the global `Headers` itself: its first use loads
 * undici, Node's fetch, ~10 ms of every pull's start-up for one lookup table.
 */
export class ResponseHeaders {
  private readonly byName = new Map<string, string>();

  /** @param raw Node's `rawHeaders`: name, value, name, value… */
  constructor(raw: readonly string[]) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const seen = this.byName.get(name);
      this.byName.set(name, seen === undefined ? raw[i + 1]! : `${seen}, ${raw[i + 1]!}`);
    }
  }

  /** The value of header `name` (any case), or null when the response has none. */
  get(name: string): string | null {
    return this.byName.get(name.toLowerCase()) ?? null;
  }
}

/**
 * A registry's answer: the status and headers, and the body as a Node stream, not read yet.
 * Read it (`json()`, `text()`, {@link readLimited}, or pipe `body`), or `discard()` it.
 */
export class RegistryResponse {
  readonly status: number;
  readonly statusText: string;
  /** the headers, looked up case-insensitively: `headers.get('www-authenticate')` */
  readonly headers: ResponseHeaders;

  constructor(readonly url: URL, readonly body: Readable & http.IncomingMessage) {
    this.status = body.statusCode ?? 0;
    this.statusText = body.statusMessage ?? '';
    this.headers = new ResponseHeaders(body.rawHeaders);
  }

  /** 200–299 */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The whole body (for small answers: a token, an error; {@link readLimited} for a manifest). */
  async bytes(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async text(): Promise<string> {
    return (await this.bytes()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /**
   * Drop the body unread (a 401 before the retry, a redirect). A short one is read to its end,
   * so that its connection can serve the next request; anything else closes the connection.
   */
  discard(): void {
    const length = Number(this.headers.get('content-length') ?? NaN);
    if (length <= 65_536) this.body.resume();
    else this.body.destroy();
  }
}

/**
 * GET `url`, following redirects itself: `Authorization` is sent to `url`'s origin only, never
 * to another one a redirect leads to (and not back either, once dropped), and a redirect from
 * https to http is refused. `onRedirect` hears each hop, for a test or `CALF_DEBUG`.
 * A network failure becomes one line naming the host (see {@link networkError}).
 * @returns the last response: not a redirect
 */
export async function getFollowing(url: string | URL, request: RegistryRequest = {}, onRedirect?: (from: URL, to: URL) => void): Promise<RegistryResponse> {
  let current = new URL(url);
  if (current.protocol !== 'https:' && !(current.protocol === 'http:' && isLoopback(current.host))) {
    throw new CalfError(`${current.href}: calf speaks https to registries (plain http only to loopback hosts)`);
  }
  const origin = current.origin;
  const headers: Record<string, string> = { 'user-agent': `calf (Node.js ${process.version})`, ...request.headers };
  for (let hop = 0; ; hop++) {
    if (current.origin !== origin) {
      for (const name of Object.keys(headers)) if (name.toLowerCase() === 'authorization') delete headers[name];
    }
    const response = await requestOnce(current, request.method ?? 'GET', headers);
    const location = response.headers.get('location');
    if (![301, 302, 303, 307, 308].includes(response.status) || !location) return response;
    response.discard();
    if (hop >= MAX_REDIRECTS) throw new CalfError(`${origin}: more than ${MAX_REDIRECTS} redirects (last to ${current.host})`);
    const next = new URL(location, current);
    if (current.protocol === 'https:' && next.protocol !== 'https:') {
      throw new CalfError(`${current.host} redirected to ${next.protocol}//${next.host}: refusing to leave TLS`);
    }
    if (next.protocol !== 'https:' && !(next.protocol === 'http:' && isLoopback(next.host))) {
      throw new CalfError(`${current.host} redirected to ${next.protocol}//${next.host}: plain http only to loopback hosts`);
    }
    onRedirect?.(current, next);
    current = next;
  }
}

/** One request, no redirects followed: resolves with the response once its headers are in. */
function requestOnce(url: URL, method: string, headers: Record<string, string>): Promise<RegistryResponse> {
  return new Promise((resolve, reject) => {
    // Node's global agents keep connections alive for the next request to the same host (one
    // TLS handshake per host, not per blob), and unref idle ones: they never hold calf open.
    const req = (url.protocol === 'https:' ? https : http).request(url, { method, headers });
    let res: http.IncomingMessage | undefined;
    req.setTimeout(IDLE_TIMEOUT_MS, () => {
      const err = Object.assign(new Error(`nothing for ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' });
      if (res) res.destroy(new CalfError(`${url.host} stopped sending: ${reason(url, err)}`));
      else req.destroy(err);
    });
    req.once('error', (err) => {
      // Before the answer: no answer at all. After it, the body breaks off, in one line.
      if (res) res.destroy(new CalfError(`${url.host} stopped sending: ${reason(url, err)}`, { cause: err }));
      else reject(networkError(url, err));
    });
    req.once('response', (answer) => {
      res = answer;
      resolve(new RegistryResponse(url, answer));
    });
    req.end();
  });
}

/** TLS failures, by the codes Node's tls module and OpenSSL give them. */
const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|UNABLE_TO_|EPROTO$|HOSTNAME_MISMATCH$)/;

/** Why a connection failed, in a few words. */
function reason(url: URL, err: unknown): string {
  const cause = err as NodeJS.ErrnoException;
  const code = cause?.code ?? '';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_FAIL') return `unknown host ${url.hostname} (${code})`;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (TLS_CODES.test(code)) return `TLS failure: ${cause.message}`;
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'the connection was reset';
  if (code === 'ETIMEDOUT') return `timed out (${cause.message})`;
  if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') return `no route to ${url.hostname} (${code})`;
  return cause?.message ?? String(err);
}

/** One line for a request that got no HTTP answer at all: unknown host, refused, TLS, reset, timeout. */
export function networkError(url: URL, err: unknown): CalfError {
  return err instanceof CalfError ? err : new CalfError(`cannot reach ${url.host}: ${reason(url, err)}`, { cause: err });
}

/**
 * A response's body, refused past `limit` bytes (a manifest may be at most 4 MiB: a registry
 * that sends more is broken or hostile, and calf holds manifests in memory).
 */
export async function readLimited(response: RegistryResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    response.discard();
    throw new CalfError(`${what} is ${declared} bytes, over the ${limit / 1048576} MiB a manifest may be`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      response.discard();
      throw new CalfError(`${what} is over the ${limit / 1048576} MiB a manifest may be`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The `errors` a registry puts in an error response's JSON body (the distribution spec's format). */
interface RegistryErrors {
  errors?: { code?: string; message?: string; detail?: unknown }[];
}

/**
 * One line for a registry's error response: its own error code and message when it sent them
 * (`MANIFEST_UNKNOWN: manifest unknown`), the HTTP status otherwise; a 429 says when to retry.
 */
export async function registryError(response: RegistryResponse, what: string): Promise<CalfError> {
  let detail = '';
  try {
    const body = (await readLimited(response, 1 << 20, 'an error')).toString('utf8');
    detail = ((JSON.parse(body) as RegistryErrors).errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).filter(Boolean).join('; ');
  } catch {
    // not JSON, or too big: the status says it
  }
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  if (response.status === 429) {
    const after = response.headers.get('retry-after');
    return new CalfError(`${what}: the registry says too many requests (429)${after ? `; retry after ${/^\d+$/.test(after) ? `${after} s` : after}` : ''}${detail ? ` (${detail})` : ''}`);
  }
  return new CalfError(`${what}: ${detail || status}`);
}
