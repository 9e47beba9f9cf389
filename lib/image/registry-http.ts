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
 *   goes without `Authorization`. Node's own `fetch` already drops it on a cross-origin redirect
 *   (the Fetch standard says so; undici did not always), but calf follows redirects itself, so
 *   the rule is written here, is the same on every Node, and is checked by the tests; and so a
 *   redirect from https to plain http is refused rather than followed.
 * @see https://distribution.github.io/distribution/spec/api/
 * @module
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { CalfError } from '../core/errors.js';

/** Where Docker Hub's registry API is, for images named `docker.io/…` (or with no registry at all). */
export const DOCKER_HUB_API = 'registry-1.docker.io';

/** How many redirects a request may follow (Fetch's limit is 20; a registry needs one). */
const MAX_REDIRECTS = 10;

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

/** A request {@link fetchFollowing} makes: a method and headers (registries need no body to pull). */
export interface RegistryRequest {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * `fetch(url)`, following redirects itself: `Authorization` is sent to `url`'s origin only,
 * never to another one a redirect leads to (and not back either, once dropped), and a redirect
 * from https to http is refused. `onRedirect` hears each hop, for a test or `CALF_DEBUG`.
 * A network failure becomes one line naming the host (see {@link networkError}).
 * @returns the last response: not a redirect
 */
export async function fetchFollowing(url: string | URL, request: RegistryRequest = {}, onRedirect?: (from: URL, to: URL) => void): Promise<Response> {
  let current = new URL(url);
  if (current.protocol !== 'https:' && !(current.protocol === 'http:' && isLoopback(current.host))) {
    throw new CalfError(`${current.href}: calf speaks https to registries (plain http only to loopback hosts)`);
  }
  const origin = current.origin;
  const headers = { ...request.headers };
  for (let hop = 0; ; hop++) {
    if (current.origin !== origin) {
      for (const name of Object.keys(headers)) if (name.toLowerCase() === 'authorization') delete headers[name];
    }
    let response: Response;
    try {
      response = await fetch(current, { method: request.method ?? 'GET', headers, redirect: 'manual', ...(request.signal ? { signal: request.signal } : {}) });
    } catch (err) {
      throw networkError(current, err);
    }
    const location = response.headers.get('location');
    if (![301, 302, 303, 307, 308].includes(response.status) || !location) return response;
    await response.body?.cancel();
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

/** Node's fetch reports every network failure as `TypeError: fetch failed`; the reason is in `cause`. */
const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|UNABLE_TO_|EPROTO$|HOSTNAME_MISMATCH$)/;

/** One line for a request that got no HTTP answer at all: unknown host, refused, TLS, reset, timeout. */
export function networkError(url: URL, err: unknown): CalfError {
  const cause = (err as { cause?: NodeJS.ErrnoException & { code?: string } }).cause ?? (err as NodeJS.ErrnoException);
  const code = cause?.code ?? '';
  const host = url.host;
  let why: string;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_FAIL') why = `unknown host ${url.hostname} (${code})`;
  else if (code === 'ECONNREFUSED') why = 'connection refused';
  else if (TLS_CODES.test(code)) why = `TLS failure: ${cause.message}`;
  else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') why = 'the connection was reset';
  else if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') why = 'timed out';
  else if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') why = `no route to ${url.hostname} (${code})`;
  else if (cause?.message === 'bad port') why = `fetch refuses port ${url.port} (a "bad port" in the Fetch standard)`;
  else why = cause?.message ?? String(err);
  return new CalfError(`cannot reach ${host}: ${why}`, { cause: err });
}

/**
 * A response's body, refused past `limit` bytes (a manifest may be at most 4 MiB: a registry
 * that sends more is broken or hostile, and calf holds manifests in memory).
 */
export async function readLimited(response: Response, limit: number, what: string): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await response.body?.cancel();
    throw new CalfError(`${what} is ${declared} bytes, over the ${limit / 1048576} MiB a manifest may be`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (!response.body) return Buffer.alloc(0);
  for await (const chunk of Readable.fromWeb(response.body as WebReadableStream<Uint8Array>) as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > limit) {
      await response.body?.cancel().catch(() => undefined);
      throw new CalfError(`${what} is over the ${limit / 1048576} MiB a manifest may be`);
    }
    chunks.push(Buffer.from(chunk));
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
export async function registryError(response: Response, what: string): Promise<CalfError> {
  let detail = '';
  try {
    const body = (await response.json()) as RegistryErrors;
    detail = (body.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).filter(Boolean).join('; ');
  } catch {
    // not JSON: the status says it
  }
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  if (response.status === 429) {
    const after = response.headers.get('retry-after');
    return new CalfError(`${what}: the registry says too many requests (429)${after ? `; retry after ${/^\d+$/.test(after) ? `${after} s` : after}` : ''}${detail ? ` (${detail})` : ''}`);
  }
  return new CalfError(`${what}: ${detail || status}`);
}
