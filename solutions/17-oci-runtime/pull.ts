/**
 * calf, level 17 (oci-runtime), pull.ts: the reference solution.
 * Goal: calf-runtime: runc's command line over an OCI bundle, so that podman and containerd run their containers on calf.
 * Lesson: levels/17-oci-runtime/README.md · check: npm run level 17 -- --solution
 * Run it as root: tsx solutions/17-oci-runtime/calf.ts run busybox sh
 *
 * Generated from ladder/pull.ts by `npm run generate`.
 */
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
 * Lib gives the HTTP (redirects that keep the token home, one-line errors), references, the
 * checking blob writer, the progress lines and the store; this file is the protocol.
 * @see https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
 * @module
 */
import { CalfError } from '../../lib/runtime/index.js';
import { resolveImage, ImageNotFoundError, type ResolvedImage } from '../../lib/image/index.js';
import {
  MediaType, addBlobBytes, isIndexMediaType, normalizeName, platformName, runsHere, tagImage, thisPlatform,
  type Descriptor, type ImageIndex, type ImageManifest,
} from '../../lib/image/store.js';
import { sha256Digest, shortDigest, shortId } from '../../lib/image/digest.js';
import { parseReference, fullName, storeName, type Reference } from '../../lib/image/reference.js';
import { getFollowing, readLimited, registryBase, registryError, type RegistryResponse } from '../../lib/image/registry-http.js';
import { hasBlob, removeDeadDownloads, writeBlob } from '../../lib/image/blob-writer.js';
import { withStoreLock } from '../../lib/image/lock.js';
import { namedDigest } from '../../lib/image/tag.js';
import { checkRunnable, isNonDistributable, manifestMediaType } from '../../lib/image/media-types.js';
import { pullOutput, type PullOutput } from '../../lib/image/pull-progress.js';
import type { PullPolicy } from '../../lib/image/commands.js';

// ─── 1. Talking to a registry: Accept, and a Bearer token from the 401's challenge ────────────

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
  }
}

// ─── 2. A manifest, in one of the formats calf reads ──────────────────────────────────────────

/** A manifest or index as the registry sent it: its exact bytes are what its digest is of. */
interface Fetched {
  bytes: Buffer;
  /** which of MANIFEST_TYPES it is */
  mediaType: string;
  digest: string;
}

/** GET a manifest by tag or digest, in one of the formats calf reads. */
async function fetchManifest(registry: Registry, reference: string, what: string): Promise<Fetched> {
  const response = await registry.get(`manifests/${reference}`, { accept: MANIFEST_TYPES.join(', ') });
  if (!response.ok) throw await registryError(response, what);
  const bytes = await readLimited(response, MAX_MANIFEST, `the manifest of ${what}`);
  const digest = sha256Digest(bytes);
  // Asked by digest, the bytes must have it; asked by tag, they must have what the registry says.
  const promised = reference.startsWith('sha256:') ? reference : response.headers.get('docker-content-digest');
  if (promised && promised !== digest) throw new CalfError(`the manifest of ${what} is corrupt: its content hashes to ${shortDigest(digest)}, not ${shortDigest(promised)}`);
  const contentType = response.headers.get('content-type')?.split(';')[0]?.trim() ?? '';
  return { bytes, mediaType: manifestMediaType(bytes, contentType, MANIFEST_TYPES, what), digest };
}

// ─── 3. An index: pick the manifest for linux on this machine's CPU ───────────────────────────

/** The entry of `index` that runs here. */
function choosePlatform(index: ImageIndex, what: string): Descriptor {
  const here = thisPlatform(); // {os: 'linux', architecture: 'amd64'}, or arm64 with variant v8
  const match = index.manifests.find((m) => runsHere(m.platform, here));
  if (match) return match;
  const has = index.manifests.filter((m) => m.platform?.os !== 'unknown').map((m) => platformName(m.platform));
  throw new CalfError(`${what}: no manifest for ${platformName(here)} (it has ${has.join(', ') || 'none'})`);
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
  await writeBlob(response.body, { digest: blob.digest, size: blob.size, what }, { onBytes });
  return true;
}

// ─── The pull: reference → manifest (→ index → manifest) → blobs → a name in the store ───────

/**
 * Pull `text` (`busybox`, `localhost:5000/tools:1.0`, `alpine@sha256:…`) into the store, saying
 * what it does on `out` as `docker pull` does.
 * @returns the image, as `calf run` finds it in the store
 */
export async function pull(text: string, out: PullOutput): Promise<ResolvedImage> {
  const ref = parseReference(text); // alpine → docker.io + library/alpine + latest
  const name = storeName(ref);
  const what = fullName(ref);
  const registry = new Registry(ref);
  if (ref.defaultTag) out.line('Using default tag: latest');

  const top = await fetchManifest(registry, ref.digest ?? ref.tag!, what);
  out.line(`${ref.digest ?? ref.tag}: Pulling from ${ref.repository}`); // as Docker: once the registry has answered
  let image = top; // dispatch on what came, not on what we asked for
  if (isIndexMediaType(top.mediaType)) {
    const chosen = choosePlatform(JSON.parse(top.bytes.toString('utf8')) as ImageIndex, what);
    image = await fetchManifest(registry, chosen.digest, `${what} (${platformName(chosen.platform)})`);
    if (isIndexMediaType(image.mediaType)) throw new CalfError(`${what}: its index points at another index`);
  }
  const manifest = JSON.parse(image.bytes.toString('utf8')) as ImageManifest;
  checkRunnable(manifest, what); // before any download: a config that is an image, layers calf unpacks

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
    tagImage(name, { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length });
    for (const id of fetched) out.layer(id, 'Pull complete');
  }, { onWait: (why) => out.line(why) });
  out.line(`Digest: ${top.digest}`);
  out.line(`Status: Downloaded newer image for ${name}`);
  out.result(what);
  return resolveImage(name);
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
