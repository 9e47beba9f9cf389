//@ Level 13's lesson, in a file of its own beside calf.ts: written out as levels/13-pull/pull.ts
//@ (skeleton) and solutions/13-pull/pull.ts, with the tags of ladder/calf.ts (only s13, 13 and
//@ todo13: everything here is new in level 13).
/**
 * calf's registry client: `calf pull`, and `calf run` pulling an image it does not have yet.
 *
 * A registry speaks HTTP (the OCI distribution spec, born as Docker's registry API v2):
 * ```
 * GET /v2/<name>/manifests/<tag|digest>   Accept: the manifest types we read
 *   ◄ 401  WWW-Authenticate: Bearer realm="https://auth…/token",service="…",scope="repository:<name>:pull"
 * GET <realm>?service=…&scope=…            ◄ {"token": "eyJ…", "expires_in": 300}
 * GET /v2/<name>/manifests/<tag>           Authorization: Bearer eyJ…
 *   ◄ 200  Content-Type: application/vnd.oci.image.index.v1+json      (one manifest per platform)
 * GET /v2/<name>/manifests/<digest>        ◄ the manifest for linux on this machine's CPU
 * GET /v2/<name>/blobs/<digest>            the config, then each layer, base first
 *   ◄ 307 to a CDN (no Authorization there) ◄ 200 the bytes: hashed while they are written
 * ```
 * Lib gives the HTTP (redirects that keep the token home, one-line errors), the checking blob
 * writer, the progress lines and the store; this file is the protocol.
 * @see https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
 * @module
 */
import { CalfError } from '../lib/runtime/index.js';
import { resolveImage, ImageNotFoundError, type ResolvedImage } from '../lib/image/index.js';
import {
  MediaType, addBlobBytes, isIndexMediaType, normalizeName, type Descriptor, type ImageIndex, type ImageManifest,
} from '../lib/image/store.js';
import { tagImage } from '../lib/image/store.js'; //@13
import { shortDigest, shortId } from '../lib/image/digest.js';
import { sha256Digest } from '../lib/image/digest.js'; //@13
import { getFollowing, registryBase, registryError, type RegistryResponse } from '../lib/image/registry-http.js';
import { readLimited } from '../lib/image/registry-http.js'; //@13
import { hasBlob, removeDeadDownloads } from '../lib/image/blob-writer.js';
import { writeBlob } from '../lib/image/blob-writer.js'; //@13
import { withStoreLock } from '../lib/image/lock.js';
import { namedDigest } from '../lib/image/tag.js';
import { CONFIG_TYPES, SCHEMA1_TYPES, isNonDistributable, layerCompression, zstdRefusal } from '../lib/image/media-types.js';
import { pullOutput, type PullOutput } from '../lib/image/pull-progress.js';
import type { PullPolicy } from '../lib/image/commands.js';

// ─── 1. A reference: which registry, which repository, which tag or digest ────────────────────

/** Where an image lives: `docker.io` + `library/busybox` + `latest`, or + a digest that pins it. */
export interface Reference {
  /** `docker.io`, `ghcr.io`, `localhost:5000` */
  registry: string;
  /** `library/busybox`, `calf/tools` */
  repository: string;
  /** `latest` when neither a tag nor a digest was given */
  tag?: string;
  /** `sha256:…`: this exact manifest, whatever the tags say now */
  digest?: string;
  /** no tag was given: Docker then says "Using default tag: latest" */
  defaultTag: boolean;
}

/**
 * Parse a reference as Docker does. The first path component is a registry only if it looks
 * like a host (a `.` or a `:port`, or `localhost`); otherwise the image is on Docker Hub, whose
 * official images live under `library/`: `alpine` is `docker.io/library/alpine:latest`.
 */
export function parseReference(text: string): Reference {
  const [name, digest] = text.split('@') as [string, string | undefined];
  if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new CalfError(`invalid reference format: "${text}" (a digest is sha256: and 64 hex digits)`);
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  const registry = hasRegistry ? first : 'docker.io';
  let path = hasRegistry ? name.slice(slash + 1) : name;
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon !== -1) [path, tag] = [path.slice(0, colon), path.slice(colon + 1)];
  if (registry === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(path)) {
    throw new CalfError(`invalid reference format: "${text}"${path !== path.toLowerCase() ? ' (repository name must be lowercase)' : ''}`);
  }
  if (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag)) throw new CalfError(`invalid reference format: "${text}" (bad tag "${tag}")`);
  const defaultTag = tag === undefined && digest === undefined;
  return { registry, repository: path, ...(digest ? { digest } : { tag: tag ?? 'latest' }), defaultTag };
}

/** The whole name, as `docker pull` ends with it: `docker.io/library/busybox:latest`. */
export function fullName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag}`}`;
}

/** The name the store (and `calf images`) shows: `busybox:latest`, `localhost:5000/tools@sha256:…`. */
function storeName(ref: Reference): string {
  return normalizeName(fullName(ref));
}

// ─── 2. Talking to a registry: Accept, and a Bearer token from the 401's challenge ────────────

/** The manifests calf reads, in the order it prefers them: a multi-platform index, then one image. */
export const MANIFEST_TYPES = [
  MediaType.index, // OCI image index
  MediaType.dockerManifestList, // Docker's manifest list
  MediaType.manifest, // OCI image manifest
  MediaType.dockerManifest, // Docker's image manifest, schema 2
];

/** A manifest may be at most 4 MiB: the distribution spec's limit, and what registries enforce. */
export const MAX_MANIFEST = 4 * 1024 * 1024;

/** One repository on one registry, and the token that lets us read it. */
class Registry {
  readonly base: URL;
  private token: string | undefined;

  constructor(readonly ref: Reference) {
    this.base = registryBase(ref.registry); // https, or http for a loopback registry; a mirror for docker.io
  }

  /**
   * GET `/v2/<repository>/<path>` with our token. A 401 means we have no token yet, or it has
   * expired (tokens live minutes; a big pull lasts longer): get a new one and ask again, once.
   */
  async get(path: string, headers: Record<string, string> = {}): Promise<RegistryResponse> {
    const url = new URL(`/v2/${this.ref.repository}/${path}`, this.base);
    let response = await getFollowing(url, { headers: this.withToken(headers) });
    if (response.status === 401) {
      response.discard();
      this.token = await this.authenticate(response.headers.get('www-authenticate') ?? '');
      response = await getFollowing(url, { headers: this.withToken(headers) });
    }
    return response;
  }

  private withToken(headers: Record<string, string>): Record<string, string> {
    return this.token ? { ...headers, authorization: `Bearer ${this.token}` } : headers;
  }

  /** Get a token for pulling this repository from the token server the challenge names. */
  private async authenticate(challenge: string): Promise<string> {
    //@todo13 {
    // TODO(13.2): the 401 says where tokens come from: `Bearer realm="…",service="…",scope="…"`.
    // GET the realm with `service` and `scope` as query parameters (getFollowing: no login,
    // calf pulls public images); the JSON answer holds the token as `token` or `access_token`.
    // Why does the registry send you to another server for it, and why may the token you got
    // stop working in the middle of a pull?
    //@todo13: throw new CalfError(`TODO(13.2): ${this.ref.registry} wants a token (${challenge})`);
    //@}
    //@13 {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (!/^Bearer /i.test(challenge) || !params.realm) {
      throw new CalfError(`${this.ref.registry} wants a login (${challenge.split(' ')[0] || 'no challenge'}): calf pulls public images only`);
    }
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? `repository:${this.ref.repository}:pull`);
    const response = await getFollowing(url);
    if (!response.ok) throw await registryError(response, `token from ${url.host}`);
    const body = (await response.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new CalfError(`token from ${url.host}: its answer has no token`);
    return token;
    //@}
  }
}

/** A manifest or index as the registry sent it: its exact bytes are what its digest is of. */
interface Fetched {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

/** GET a manifest by tag or digest, in one of the formats calf reads. */
async function fetchManifest(registry: Registry, reference: string, what: string): Promise<Fetched> {
  //@todo13 {
  // TODO(13.1): GET `manifests/<reference>` with an Accept header listing MANIFEST_TYPES, and read
  // at most MAX_MANIFEST bytes of the answer (readLimited). Its digest is the sha256 of exactly
  // those bytes; its Content-Type says which of the four formats it is. What does a registry
  // send a client that names no format, and what did mocker get?
  //@todo13: throw new CalfError(`TODO(13.1): ask ${registry.ref.registry} for the manifest of ${what}`);
  //@}
  //@13 {
  const response = await registry.get(`manifests/${reference}`, { accept: MANIFEST_TYPES.join(', ') });
  if (!response.ok) throw await registryError(response, what);
  const bytes = await readLimited(response, MAX_MANIFEST, `the manifest of ${what}`);
  const digest = sha256Digest(bytes);
  const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim() ?? '';
  // Asked by digest, the bytes must have it; asked by tag, they must have what the registry says.
  const promised = reference.startsWith('sha256:') ? reference : response.headers.get('docker-content-digest');
  if (promised && promised !== digest) throw new CalfError(`the manifest of ${what} is corrupt: its content hashes to ${shortDigest(digest)}, not ${shortDigest(promised)}`);
  return { bytes, mediaType, digest };
  //@}
}

/**
 * Which of the four formats a manifest is, from its Content-Type (or, when a registry sends a
 * generic `application/json`, its own `mediaType` field); schema 1 and anything else refused.
 */
function manifestType(fetched: Fetched, what: string): string {
  const parsed = JSON.parse(fetched.bytes.toString('utf8')) as { mediaType?: string; schemaVersion?: number };
  const known = [...MANIFEST_TYPES, ...SCHEMA1_TYPES] as string[];
  const type = known.includes(fetched.mediaType) ? fetched.mediaType : parsed.mediaType ?? '';
  if (SCHEMA1_TYPES.includes(type) || parsed.schemaVersion === 1) throw new CalfError(`${what}: schema 1 is not supported: the registry is too old`);
  if (!(MANIFEST_TYPES as string[]).includes(type)) throw new CalfError(`${what}: calf does not read manifests of type ${type || 'unknown'}`);
  return type;
}

// ─── 3. An index: pick the manifest for linux on this machine's CPU ───────────────────────────

/** Node's `process.arch` as OCI names it; ARM64 is `arm64` with variant `v8`. */
const PLATFORMS: Record<string, { architecture: string; variant?: string }> = {
  x64: { architecture: 'amd64' }, arm64: { architecture: 'arm64', variant: 'v8' },
  ia32: { architecture: '386' }, ppc64: { architecture: 'ppc64le' }, s390x: { architecture: 's390x' }, riscv64: { architecture: 'riscv64' },
};

/** The entry of `index` that runs here. */
function choosePlatform(index: ImageIndex, what: string): Descriptor {
  const wanted = PLATFORMS[process.arch] ?? { architecture: process.arch };
  //@todo13 {
  // TODO(13.3): an index lists one manifest per platform ({os, architecture, variant}); pick the
  // one for `linux` and `wanted`, skipping `unknown/unknown` entries (BuildKit's attestations).
  // None? Throw a one-line error that lists the platforms the index has. Why is the index's
  // first entry not good enough, even on an amd64 machine?
  //@todo13: throw new CalfError(`TODO(13.3): choose the manifest for linux/${wanted.architecture} among ${index.manifests.length}`);
  //@}
  //@13 {
  const runnable = index.manifests.filter((m) => m.platform && m.platform.os !== 'unknown');
  const match = runnable.find((m) => m.platform!.os === 'linux' && m.platform!.architecture === wanted.architecture
    && (!wanted.variant || !m.platform!.variant || m.platform!.variant === wanted.variant));
  if (match) return match;
  const has = runnable.map((m) => [m.platform!.os, m.platform!.architecture, m.platform!.variant].filter(Boolean).join('/'));
  throw new CalfError(`${what}: no manifest for linux/${[wanted.architecture, wanted.variant].filter(Boolean).join('/')} (it has ${has.join(', ') || 'none'})`);
  //@}
}

// ─── 4. Blobs: the config, then the layers base first, each checked while it streams ──────────

/**
 * Bring one blob into the store, unless it is there already (a blob in the store was checked
 * when it went in, so it is reused unread: that is what makes a pull after a crash cheap).
 * @returns false when it was there already
 */
async function fetchBlob(registry: Registry, blob: Descriptor, what: string, onBytes: (n: number) => void): Promise<boolean> {
  if (hasBlob(blob)) return false;
  let response = await registry.get(`blobs/${blob.digest}`);
  // A non-distributable layer may be missing from the registry: its descriptor says where it is.
  for (const url of response.status === 404 && isNonDistributable(blob.mediaType) ? blob.urls ?? [] : []) {
    response.discard();
    response = await getFollowing(url);
    if (response.ok) break;
  }
  if (!response.ok) throw await registryError(response, `${what} ${shortDigest(blob.digest)}`);
  //@todo13 {
  // TODO(13.4): stream response.body into the store with writeBlob, holding it to the digest and
  // size the manifest promised (it calls onBytes as bytes arrive, for the progress bar). Why must
  // the check happen while the bytes stream, before the blob has its name, and not after?
  //@todo13: throw new CalfError(`TODO(13.4): store ${what} ${shortDigest(blob.digest)}`);
  //@}
  await writeBlob(response.body, { digest: blob.digest, size: blob.size, what }, { onBytes }); //@13
  return true;
}

// ─── The pull: reference → manifest (→ index → manifest) → blobs → a name in the store ───────

/**
 * Pull `text` (`busybox`, `localhost:5000/tools:1.0`, `alpine@sha256:…`) into the store, saying
 * what it does on `out` as `docker pull` does.
 * @returns the image, as `calf run` finds it in the store
 */
export async function pull(text: string, out: PullOutput): Promise<ResolvedImage> {
  const ref = parseReference(text);
  const name = storeName(ref);
  const what = fullName(ref);
  const registry = new Registry(ref);
  if (ref.defaultTag) out.line('Using default tag: latest');

  const top = await fetchManifest(registry, ref.digest ?? ref.tag!, what);
  out.line(`${ref.digest ?? ref.tag}: Pulling from ${ref.repository}`); // as Docker: once the registry has answered
  const topType = manifestType(top, what); // dispatch on what came, not on what we hoped for
  let image = top;
  if (isIndexMediaType(topType)) {
    const chosen = choosePlatform(JSON.parse(top.bytes.toString('utf8')) as ImageIndex, what);
    image = await fetchManifest(registry, chosen.digest, `${what} (${chosen.platform?.architecture})`);
    if (isIndexMediaType(manifestType(image, what))) throw new CalfError(`${what}: its index points at another index`);
  }
  const manifest = JSON.parse(image.bytes.toString('utf8')) as ImageManifest;
  checkImage(manifest, what);

  const blobs = [manifest.config, ...manifest.layers];
  if (namedDigest(name) === top.digest && blobs.every((b) => hasBlob(b))) {
    out.line(`Digest: ${top.digest}`);
    out.line(`Status: Image is up to date for ${name}`);
    out.result(what);
    return resolveImage(name);
  }

  removeDeadDownloads(); // what a calf killed mid-pull left: its finished blobs stay, to be reused
  // Shared: other pulls may run beside this one; `calf rmi` and `image prune` wait, since the
  // blobs this pull has stored have no name yet, and would look like garbage to them.
  await withStoreLock('shared', async () => {
    for (const layer of manifest.layers) out.layer(shortId(layer.digest), hasBlob(layer) ? 'Already exists' : 'Pulling fs layer');
    await fetchBlob(registry, manifest.config, 'config', () => {});
    const fetched: string[] = [];
    for (const layer of manifest.layers) { // base first, as the config's diff_ids list them
      const id = shortId(layer.digest);
      let done = 0;
      if (await fetchBlob(registry, layer, 'layer', (n) => out.bytes(id, (done += n), layer.size))) {
        out.layer(id, 'Download complete');
        fetched.push(id);
      }
    }
    addBlobBytes(image.bytes);
    if (image !== top) addBlobBytes(top.bytes);
    //@todo13 {
    // TODO(13.5): every blob is in: now give the image its name in the store (tagImage, with a
    // descriptor of what the reference pointed to: `top`). Why only now? What would `calf images`
    // show of a pull that calf was killed in the middle of?
    //@}
    tagImage(name, { mediaType: topType, digest: top.digest, size: top.bytes.length }); //@13
    for (const id of fetched) out.layer(id, 'Pull complete');
  }, { onWait: (why) => out.line(why) });
  out.line(`Digest: ${top.digest}`);
  out.line(`Status: Downloaded newer image for ${name}`);
  out.result(what);
  return resolveImage(name);
}

/** Refuse, before downloading anything, what calf could not run: not an image, or layers it cannot unpack. */
function checkImage(manifest: ImageManifest, what: string): void {
  if (!CONFIG_TYPES.includes(manifest.config?.mediaType as never)) {
    throw new CalfError(`${what} is not a container image (its config is ${manifest.config?.mediaType ?? 'missing'})`);
  }
  for (const layer of manifest.layers) {
    const compression = layerCompression(layer.mediaType);
    if (compression === undefined) throw new CalfError(`${what}: calf cannot unpack layers of type ${layer.mediaType}`);
    if (compression === 'zstd' && zstdRefusal()) throw new CalfError(`${what}: layer ${shortDigest(layer.digest)}: ${zstdRefusal()}`);
  }
}

/**
 * The image `calf run` asked for, pulled first if the policy says so (Docker's `--pull`):
 * `missing` pulls only an image the store does not have, `always` asks the registry every time,
 * `never` only looks in the store. What a pull prints goes to stderr: stdout is the command's.
 */
export async function imageFor(ref: string, policy: PullPolicy = 'missing'): Promise<ResolvedImage> {
  if (policy !== 'always') {
    try {
      return resolveImage(ref);
    } catch (err) {
      if (!(err instanceof ImageNotFoundError) || policy === 'never') throw err;
    }
    process.stderr.write(`Unable to find image '${normalizeName(ref)}' locally\n`);
  }
  return pull(normalizeName(ref), pullOutput(process.stderr)); // with its tag: no "Using default tag" here, as docker run
}
