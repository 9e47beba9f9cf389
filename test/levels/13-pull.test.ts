/**
 * Level 13: `calf pull` from a real registry, offline. Debian's `docker-registry` (distribution
 * 2.8) runs in a network namespace this file made, with token auth (a token server the test
 * runs signs the JWTs the registry verifies), and a second host its blob downloads can be
 * redirected to (test/support/registry.ts draws the setup). The test images are pushed to it
 * with skopeo: as OCI manifests, as Docker v2 schema 2, as an OCI index with another platform and
 * an attestation, as a Docker manifest list.
 *
 * Every pull goes into a calf root of its own, empty: the board's store has the test images
 * loaded already, and a pull would find all their blobs there. Those loaded images are the
 * reference: what a pull gives must run like them, file for file.
 *
 * Cost: each calf started here is a Node start with tsx (~0.5 s of CPU), and npm test runs this
 * file four times. So the registry starts once, everything is pushed once (at once), and where
 * two checks look at the same pull from different sides (its output and files; the tokens it
 * asked for) they share it: `shared()` runs it the first time a check needs it, alone, and keeps
 * what the registry and the token server saw of it. `calf images` is read through lib's
 * `listImages` (what the command prints, without starting a calf), except where `--digests`'
 * output is the claim.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from '@jest/globals';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { run, expectExit, calfNode } from '../support/target.js';
import { createTestNetns, type TestNetns } from '../support/netns.js';
import { startTestRegistry, REGISTRY, REDIRECTING, CDN, type TestRegistry, type AccessLine, type CdnRequest, type IssuedToken } from '../support/registry.js';
import { multiPlatformLayout, thisPlatform, otherPlatform, type MultiPlatform } from '../support/registry-images.js';
import { imagesDir } from '../support/images.js';
import { removeStore } from '../support/store.js';
import { mountPoints } from '../support/mounts.js';
import { slow } from '../support/host.js';
import { token } from '../support/canary.js';
import { findLeftovers } from '../../lib/runtime/leftovers.js';
import { listImages, resolveImage } from '../../lib/image/store.js';
import '../../lib/image/blob-writer.js'; // registers half-downloaded blobs as a kind of leftover

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
/**
 * A zstd compressor when the Node that runs calf has zstd (Node 22.15 and later; Node 20 has
 * none): calf must then unpack a zstd layer, else refuse it. calf's Node may be another than
 * these tests' (npm test runs the last solution on Node 24 too): it compresses then.
 */
const zstdCompress = ((): ((b: Buffer) => Buffer) | undefined => {
  const here = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;
  const script = "const z = require('node:zlib'); if (!z.zstdCompressSync) process.exit(3); process.stdout.write(z.zstdCompressSync(require('node:fs').readFileSync(0)))";
  const inCalfNode = (b: Buffer) => execFileSync(calfNode, ['-e', script], { input: b, maxBuffer: 64 << 20 });
  if (calfNode === process.execPath) return here;
  return spawnSync(calfNode, ['-e', script], { input: '' }).status === 0 ? inCalfNode : undefined;
})();

let ns: TestNetns;
let reg: TestRegistry;
let work: string;
let index: MultiPlatform;
let elsewhere: MultiPlatform;
let list: MultiPlatform;
/** what the test images are, as `calf load` put them in the board's store */
const loaded = { layeredId: '', layeredDigest: '', busyboxDigest: '', layers: [] as string[] };
/** the images made for single checks, pushed with the rest */
const made = {} as Record<'intact' | 'tampered' | 'foreign' | 'zstd', ReturnType<typeof singleFileImage> & { content: string; where: string }>;
/** `calf run layered sh -c LISTING` on the board's store, started in beforeAll */
let reference: Promise<Awaited<ReturnType<typeof run>>>;

beforeAll(async () => {
  ns = await createTestNetns();
  reg = await startTestRegistry(ns);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-pull-'));
  const manifestOf = (name: string) => JSON.parse(fs.readFileSync(path.join(imagesDir, name, 'index.json'), 'utf8')).manifests[0].digest as string;
  loaded.layeredDigest = manifestOf('layered');
  loaded.busyboxDigest = manifestOf('busybox');
  const manifest = JSON.parse(fs.readFileSync(path.join(imagesDir, 'layered', 'blobs', 'sha256', loaded.layeredDigest.slice(7)), 'utf8'));
  loaded.layeredId = manifest.config.digest;
  loaded.layers = manifest.layers.map((l: { digest: string }) => l.digest);
  reference = run(['layered', 'sh', '-c', LISTING]); // the board's store, beside the pushes

  const layered = path.join(imagesDir, 'layered');
  index = multiPlatformLayout(layered, path.join(work, 'index'));
  list = multiPlatformLayout(layered, path.join(work, 'list'), { attestation: false });
  elsewhere = multiPlatformLayout(layered, path.join(work, 'elsewhere'), { mine: false });
  for (const name of ['intact', 'tampered', 'foreign', 'zstd'] as const) {
    const content = `${name} ${token()}\n`.repeat(name === 'intact' || name === 'tampered' ? 1000 : 1);
    const where = `/foreign/${token()}`; // where the foreign layer is, on the CDN host
    const image = singleFileImage(path.join(work, name), content, name === 'foreign' ? { foreign: `http://${CDN}${where}` } : { zstd: name === 'zstd' });
    made[name] = { ...image, content, where };
  }
  await reg.fake(made.foreign.where, 200, { 'content-type': 'application/octet-stream' }, made.foreign.bytes);
  // --preserve-digests: skopeo would otherwise gzip the uncompressed layers on the way (and it
  // skips the foreign layer: the registry never has it)
  const preserve = { format: 'oci', preserveDigests: true } as const;
  // Repositories in parallel, one push at a time into each: two pushes of the same blobs into
  // one repository race in the registry ("manifest blob unknown").
  const inOrder = async (pushes: (() => Promise<unknown>)[]) => { for (const push of pushes) await push(); };
  await Promise.all([
    inOrder([
      () => reg.push(layered, 'library/layered:oci', { format: 'oci' }),
      () => reg.push(layered, 'library/layered:v2s2', { format: 'v2s2' }),
      () => reg.push(index.dir, 'library/layered:index', { all: true, preserveDigests: true }),
      () => reg.push(list.dir, 'library/layered:list', { all: true, format: 'v2s2' }),
      () => reg.push(elsewhere.dir, 'library/layered:elsewhere', { all: true, preserveDigests: true }),
    ]),
    reg.push(path.join(imagesDir, 'busybox'), 'library/busybox:latest', { format: 'oci' }),
    inOrder([
      () => reg.push(made.intact.dir, 'library/intact:oci', preserve),
      () => reg.push(made.intact.dir, 'library/intact:v2s2', { format: 'v2s2', preserveDigests: true }),
    ]),
    reg.push(made.tampered.dir, 'library/tampered:oci', preserve),
    reg.push(made.foreign.dir, 'library/foreign:oci', preserve),
    reg.push(made.zstd.dir, 'library/zstd:oci', preserve),
  ]);
  reg.tamper(made.tampered.layer); // one byte in the registry's storage, size unchanged
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  ns?.remove();
  for (const root of sharedRoots.splice(0)) removeStore(root);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** The calf roots of single checks (removed after the check), and those shared pulls made (kept to the end). */
const roots: string[] = [];
const sharedRoots: string[] = [];

afterEach(() => {
  const problems: string[] = [];
  for (const root of sharedRoots) problems.push(...leftoversIn(root));
  for (const root of roots.splice(0)) {
    problems.push(...leftoversIn(root));
    problems.push(...removeStore(root).map((m) => `mount ${m} (could not be detached)`));
  }
  if (problems.length) throw new Error(`left behind in the check's calf root:\n${problems.join('\n')}`);
});

/** What calf left in a root of ours: mounts, container directories, registered leftovers, processes. */
function leftoversIn(root: string): string[] {
  const found = mountPoints(fs.readFileSync('/proc/self/mountinfo', 'utf8')).filter((p) => p.startsWith(`${root}/`)).map((p) => `mount ${p}`);
  const containers = path.join(root, 'containers');
  if (fs.existsSync(containers)) found.push(...fs.readdirSync(containers).map((d) => `container dir ${d}`));
  found.push(...findLeftovers(root).map((l) => l.what));
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`CALF_ROOT=${root}`)) found.push(`process ${pid}`);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

type Store = ReturnType<typeof freshStore>;

/** An empty calf root, and calf run inside the test's netns against it. */
function freshStore(options: { shared?: boolean } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-root-pull-'));
  (options.shared ? sharedRoots : roots).push(root);
  // --rm: from level 15 on a stopped container stays until calf rm (Docker's rule); these checks look at images
  const calf = (args: readonly string[], env: Record<string, string> = {}, timeout?: number) => ns.calf(args[0] === 'run' ? ['run', '--rm', ...args.slice(1)] : args, { env: { CALF_ROOT: root, ...env }, ...(timeout ? { timeout } : {}) });
  const blobsDir = path.join(root, 'images', 'blobs', 'sha256');
  return {
    root,
    calf,
    /** what `calf images --digests` lists: name, digest (of what the name points to), image id */
    images: () => listImages(root).map((i) => ({ name: i.name, digest: i.digest, id: i.id })),
    /** the files in the store's blob directory: names, and whether each one's content has its name */
    blobs: () => (fs.existsSync(blobsDir) ? fs.readdirSync(blobsDir) : []).map((name) => ({
      name,
      intact: /^[0-9a-f]{64}$/.test(name) && createHash('sha256').update(fs.readFileSync(path.join(blobsDir, name))).digest('hex') === name,
    })),
  };
}

/** One pull, and what the registries, the token server and the CDN host saw of it. */
interface Pulled {
  store: Store;
  result: Awaited<ReturnType<Store['calf']>>;
  access: AccessLine[];
  tokens: IssuedToken[];
  cdn: CdnRequest[];
}

/** `calf pull REF` into `store`, alone: the logs' new lines are its. */
async function pullAlone(store: Store, ref: string, env: Record<string, string> = {}): Promise<Pulled> {
  const seen = reg.accessLog().length;
  const before = await reg.log();
  const [tokens, cdn] = [before.tokens.length, before.cdn.length];
  const result = await store.calf(['pull', ref], env);
  await accessLogSettled();
  const after = await reg.log();
  return { store, result, access: reg.accessLog().slice(seen), tokens: after.tokens.slice(tokens), cdn: after.cdn.slice(cdn) };
}

/**
 * The registry writes a request's access-log line after its response, and the line reaches this
 * process through a pipe: calf may have exited first. Wait until no line came for 50 ms.
 */
async function accessLogSettled(): Promise<void> {
  for (let n = -1, end = Date.now() + 2_000 * slow; n !== reg.accessLog().length && Date.now() < end;) {
    n = reg.accessLog().length;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A pull that several checks look at: made the first time one asks, into a root kept to the end. */
function shared(ref: string): () => Promise<Pulled> {
  let pulled: Promise<Pulled> | undefined;
  return () => (pulled ??= pullAlone(freshStore({ shared: true }), ref));
}
/** REGISTRY/library/layered:oci: its output and files (Manifests), its tokens (Bearer), --pull always and tag in its root. */
const pulledOci = shared(`${REGISTRY}/library/layered:oci`);
/** The same through the redirecting registry: its digest (Accept), what the CDN host saw (no Authorization). */
const pulledRedirected = shared(`${REDIRECTING}/library/layered:oci`);
/** An index without this platform, refused, then one with it, into the same root. */
let platforms: Promise<{ refused: Pulled; storedAfterRefusal: ReturnType<Store['images']>; pulled: Pulled }> | undefined;
const pulledIndexes = () => (platforms ??= (async () => {
  const store = freshStore({ shared: true });
  const refused = await pullAlone(store, `${REGISTRY}/library/layered:elsewhere`);
  const storedAfterRefusal = store.images();
  return { refused, storedAfterRefusal, pulled: await pullAlone(store, `${REGISTRY}/library/layered:index`) };
})());

/**
 * `calf run --pull never` of an image the (empty) root lacks, then the same run without it:
 * what each asked the registry and its token server (busybox's repository: no other check
 * pulls it meanwhile).
 */
let missingRuns: Promise<{ never: Awaited<ReturnType<Store['calf']>>; missing: Awaited<ReturnType<Store['calf']>>; asked: Record<'byNever' | 'byMissing', { requests: number; tokens: number }> }> | undefined;
const runsOfMissing = () => (missingRuns ??= (async () => {
  const store = freshStore({ shared: true });
  const image = `${REGISTRY}/library/busybox`;
  const count = async () => {
    await accessLogSettled();
    return { requests: requestsFor('/v2/library/busybox/').length, tokens: (await reg.log()).tokens.filter((t) => t.scope.includes('library/busybox')).length };
  };
  const diff = (a: { requests: number; tokens: number }, b: { requests: number; tokens: number }) => ({ requests: b.requests - a.requests, tokens: b.tokens - a.tokens });
  const start = await count();
  const never = await store.calf(['run', '--pull', 'never', image, 'true']);
  const between = await count();
  const missing = await store.calf(['run', image, 'echo', 'pulled']);
  return { never, missing, asked: { byNever: diff(start, between), byMissing: diff(between, await count()) } };
})());

/** A shell script that lists a container's whole filesystem: names, modes, owners, sizes, link targets, and each file's sha256. */
const LISTING = [
  'cd /',
  'list() { find . -xdev \\( -path ./proc -o -path ./sys -o -path ./dev \\) -prune -o "$@" -print | sort; }',
  'list | xargs stat -c "%n %a %u:%g %F %s"',
  'list -type l | xargs stat -c "%N"',
  'list -type f | grep -v -e ^./etc/hostname -e ^./etc/hosts -e ^./etc/resolv.conf | xargs sha256sum',
  'echo "env LAYERED=$LAYERED CALF_PLATFORM=$CALF_PLATFORM; cwd $OLDPWD"',
].join('\n');

/** The listing of `ref` run from `store`, next to the `layered` image the board loaded (calf load): they must be equal. */
async function listings(store: Store, ref: string): Promise<[string, string]> {
  const [ran, loadedRun] = await Promise.all([store.calf(['run', ref, 'sh', '-c', LISTING]), reference]);
  expectExit(loadedRun, 0);
  expect(loadedRun.stdout.split('\n').length).toBeGreaterThan(300); // busybox's applets, at least
  expectExit(ran, 0);
  return [ran.stdout, loadedRun.stdout];
}

/** Run `tasks`, at most `n` at a time; their results in order. */
async function atMost<T>(n: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  }));
  return results;
}

/** Poll `probe` (async) until it is true, or fail after 20 s. */
async function until(what: string, probe: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 20_000 * slow;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The registry's access log lines for one repository path, e.g. `/v2/library/layered/`. */
const requestsFor = (prefix: string) => reg.accessLog().filter((l) => l.path.startsWith(prefix));

describe('13 pull', () => {
  describe('Manifests and the Accept header', () => {
    const formats = [
      ['an OCI image manifest', 'oci', pulledOci, () => loaded.layeredDigest],
      ['a Docker v2 schema 2 manifest', 'v2s2', shared(`${REGISTRY}/library/layered:v2s2`), undefined],
    ] as const;
    for (const [what, tag, pulled, digest] of formats) {
      it(`pulls ${what}, and the image runs with the same files as the one calf load gave`, async () => {
        const { store, result } = await pulled();
        const ref = `${REGISTRY}/library/layered:${tag}`;
        expectExit(result, 0);
        const lines = result.stdout.trim().split('\n');
        expect(lines[0]).toBe(`${tag}: Pulling from library/layered`);
        expect(lines.at(-3)).toMatch(digest ? `Digest: ${digest()}` : /^Digest: sha256:[0-9a-f]{64}$/);
        expect(lines.at(-2)).toBe(`Status: Downloaded newer image for ${ref}`);
        expect(lines.at(-1)).toBe(ref);
        expect(lines.filter((l) => l.endsWith(': Download complete'))).toHaveLength(3);
        expect(store.images().map((i) => [i.name, i.id])).toEqual([[ref, loaded.layeredId]]); // the same config: the same image id
        const [ran, fromLoad] = await listings(store, ref);
        expect(ran).toBe(fromLoad);
      });
    }

    it('asks for the manifest with an Accept header naming the OCI and Docker formats (without one, this registry refuses)', async () => {
      // the positive control: asked without Accept, the registry has nothing to give
      const tokenAnswer = await reg.get(`http://127.0.0.1:5001/token?service=calf-test-registry&scope=repository:library/layered:pull`);
      const bare = await reg.get(`http://${REDIRECTING}/v2/library/layered/manifests/oci`, { authorization: `Bearer ${JSON.parse(tokenAnswer.body).token}` });
      expect(bare.status).toBe(404);
      const { result } = await pulledRedirected();
      expectExit(result, 0);
      expect(result.stdout).toContain(`Digest: ${loaded.layeredDigest}`);
    });
  });

  describe('Bearer tokens', () => {
    it('gets a token from the realm the 401 names, for the pull scope of the repository, and the registry accepts it', async () => {
      const { result, tokens, access } = await pulledOci();
      expectExit(result, 0);
      expect(tokens.map((t) => t.scope)).toContain('repository:library/layered:pull');
      const requests = access.filter((l) => l.path.startsWith('/v2/library/layered/'));
      // a 401 first (no token yet), then the manifest and every blob with one
      expect(requests[0]?.status).toBe(401);
      expect(requests.filter((l) => l.status === 200 && l.path.includes('/blobs/'))).toHaveLength(4);
    });

    it('takes the token from access_token when the server names it so (as OAuth2 servers do)', async () => {
      const store = freshStore();
      await reg.tokens({ field: 'access_token' });
      try {
        const pulled = await store.calf(['pull', `${REGISTRY}/library/busybox`]);
        expectExit(pulled, 0);
        expect(pulled.stdout).toContain('Status: Downloaded newer image');
      } finally {
        await reg.tokens({ field: 'both' });
      }
    });

    it('gets a new token when its token expires in the middle of a pull', async () => {
      const store = freshStore();
      const config = loaded.layeredId;
      await reg.tokens({ lifetime: 2 }); // the registry accepts each token for 1 to 2 s (whole seconds)
      await reg.stall(config, 0, 2_500); // the CDN holds the config 2.5 s: the layers come after it expired
      try {
        const { result, access, tokens } = await pullAlone(store, `${REDIRECTING}/library/layered:oci`);
        expectExit(result, 0);
        const blobs = access.filter((l) => l.registry === REDIRECTING && l.path.includes('/blobs/'));
        // the positive control: the registry did refuse the first token on a later request
        expect(blobs.some((l) => l.status === 401)).toBe(true);
        expect(tokens.length).toBeGreaterThanOrEqual(2);
        expect(store.images().map((i) => i.name)).toEqual([`${REDIRECTING}/library/layered:oci`]);
      } finally {
        await reg.tokens({ lifetime: 60 });
        await reg.release(config);
      }
    });
  });

  describe('An index and its platforms', () => {
    for (const [what, tag, pulled] of [
      ['an OCI index with an attestation', 'index', async () => (await pulledIndexes()).pulled],
      ['a Docker manifest list', 'list', shared(`${REGISTRY}/library/layered:list`)],
    ] as const) {
      it(`pulls linux/${thisPlatform().architecture} out of ${what}, though another platform comes first`, async () => {
        const layout = tag === 'index' ? index : list;
        const ref = `${REGISTRY}/library/layered:${tag}`;
        const { store, result } = await pulled();
        expectExit(result, 0);
        if (tag === 'index') expect(result.stdout).toContain(`Digest: ${layout.index}`); // the name points at the index
        const image = store.images().find((i) => i.name === ref);
        expect(image?.id).toBe(loaded.layeredId); // not the other platform's config
        expect(image?.id).not.toBe(layout.otherConfig);
        const [ran, fromLoad] = await listings(store, ref);
        expect(ran).toBe(fromLoad); // CALF_PLATFORM= (empty): this platform's config
      });
    }

    it('refuses an index without this platform in one line that lists the platforms it has, and stores nothing', async () => {
      const { refused, storedAfterRefusal, pulled } = await pulledIndexes();
      expect(refused.result.exitCode).toBe(1);
      const line = refused.result.stderr.trim();
      expect(line.split('\n')).toHaveLength(1);
      const other = otherPlatform();
      expect(line).toContain(`linux/${thisPlatform().architecture}`);
      expect(line).toContain([other.os, other.architecture, other.variant].filter(Boolean).join('/'));
      expect(line).toContain('linux/s390x');
      expect(line).not.toContain('unknown');
      expect(storedAfterRefusal).toEqual([]);
      // the positive control: this root and this calf, right after, pull an index that has this platform
      expectExit(pulled.result, 0);
      expect(pulled.store.images().map((i) => i.name)).toEqual([`${REGISTRY}/library/layered:index`]);
    });
  });

  describe('Verified blobs', () => {
    it('refuses a layer whose bytes are not what its digest says, and stores nothing of it', async () => {
      const store = freshStore();
      const { tampered, intact } = made;
      const pulled = await store.calf(['pull', `${REGISTRY}/library/tampered:oci`]);
      expect(pulled.exitCode).toBe(1);
      expect(pulled.stderr.trim().split('\n')).toHaveLength(1);
      expect(pulled.stderr).toContain(tampered.layer.slice(7, 19));
      expect(pulled.stderr).toMatch(/corrupt|digest|sha256 mismatch/i);
      expect(store.images()).toEqual([]);
      const blobs = store.blobs();
      expect(blobs.map((b) => b.name)).not.toContain(tampered.layer.slice(7));
      expect(blobs.filter((b) => !b.intact)).toEqual([]); // no half-written file either
      // the positive control: the same calf pulls and runs the untampered twin, uncompressed
      // layer and all, in both media-type spellings
      const runs = await Promise.all(['oci', 'v2s2'].map((tag) => store.calf(['run', `${REGISTRY}/library/intact:${tag}`])));
      for (const ran of runs) {
        expectExit(ran, 0);
        expect(ran.stdout).toBe(intact.content);
      }
    });

    it('downloads a non-distributable layer the registry does not have from the URL its descriptor gives, checked like any blob', async () => {
      const store = freshStore();
      const { foreign } = made;
      const seen = reg.accessLog().length;
      const ran = await store.calf(['run', `${REGISTRY}/library/foreign:oci`]);
      expectExit(ran, 0);
      expect(ran.stdout).toBe(foreign.content);
      await accessLogSettled();
      const asked = reg.accessLog().slice(seen).filter((l) => l.path === `/v2/library/foreign/blobs/${foreign.layer}`);
      expect(asked.map((l) => l.status)).toContain(404); // the registry was asked first, and has no such blob
      expect((await reg.log()).cdn.filter((r) => r.url === foreign.where).map((r) => r.headers.authorization)).toEqual([undefined]);
    });

    it(zstdCompress ? 'pulls and runs an image with a zstd layer (this Node has zstd)' : 'refuses an image with a zstd layer before downloading it, naming the Node it needs (this one has no zstd)', async () => {
      const store = freshStore();
      const { zstd } = made;
      const seen = reg.accessLog().length;
      const ran = await store.calf(['run', `${REGISTRY}/library/zstd:oci`]);
      if (zstdCompress) {
        expectExit(ran, 0);
        expect(ran.stdout).toBe(zstd.content);
      } else {
        expect(ran.exitCode).toBe(125);
        expect(ran.stderr.trim().split('\n').at(-1)).toMatch(/zstd.*Node 22\.15/);
        await accessLogSettled();
        expect(reg.accessLog().slice(seen).filter((l) => l.path.endsWith(zstd.layer))).toEqual([]); // not even asked for
        expect(reg.accessLog().slice(seen).some((l) => l.path.includes('/library/zstd/manifests/'))).toBe(true); // but the manifest was
        expect(store.images()).toEqual([]); // a crash stores nothing too, but says nothing of zstd
      }
    });

    it('sends no Authorization to the host a blob download is redirected to, and the registry got one', async () => {
      const { store, result, access, cdn } = await pulledRedirected();
      expectExit(result, 0);
      const redirected = access.filter((l) => l.path.includes('/blobs/') && l.status === 307);
      expect(redirected).toHaveLength(4); // the config and three layers, each sent on to the CDN host…
      expect(cdn.filter((r) => r.url.endsWith('/data') && r.method === 'GET')).toHaveLength(4); // …which calf followed…
      expect(cdn.map((r) => r.headers.authorization?.replace(/ .*/, ' …'))).toEqual(cdn.map(() => undefined)); // …without the token
      expect(store.images().map((i) => [i.name, i.id])).toEqual([[`${REDIRECTING}/library/layered:oci`, loaded.layeredId]]);
    });
  });

  describe('Crashes and concurrent pulls', () => {
    it('shows nothing of a pull killed with SIGKILL, and the next pull completes reusing the blobs already verified', async () => {
      const store = freshStore();
      const ref = `${REDIRECTING}/library/layered:oci`;
      const [first, second, last] = loaded.layers as [string, string, string];
      const fetches = async (digest: string) => (await reg.log()).cdn.filter((r) => r.method === 'GET' && r.url.includes(digest.slice(7))).length;
      const before = { first: await fetches(first), last: await fetches(last) };
      await reg.stall(last, 100, undefined); // the top layer stops after 100 bytes: calf is mid-blob
      try {
        const killed = store.calf(['pull', ref]);
        let ended = false; // before the top layer (a calf that fails early): nothing to kill, the check fails below
        void killed.then(() => { ended = true; });
        await until('the pull to reach the top layer', async () => ended || (await reg.log()).cdn.some((r) => r.status === 'stalled' && r.url.includes(last.slice(7))));
        if (!ended) process.kill(killed.pid!, 'SIGKILL');
        const r = await killed;
        expect(r.signal).toBe('SIGKILL');
      } finally {
        await reg.release(last);
      }
      expect(store.images()).toEqual([]);
      const again = await store.calf(['pull', ref]);
      expectExit(again, 0);
      expect(again.stdout).toContain(`${first.slice(7, 19)}: Already exists`);
      expect(again.stdout).toContain(`${second.slice(7, 19)}: Already exists`);
      expect(await fetches(first) - before.first).toBe(1); // once, by the pull that was killed
      expect(await fetches(last) - before.last).toBe(2); // killed halfway, so fetched again
      expect(store.blobs().filter((b) => !b.intact)).toEqual([]); // and its half-written file is gone
      expect(resolveImage(ref, store.root).layers.map((l) => l.digest)).toEqual(loaded.layers); // whole: every layer there
    }, 120_000);

    it('lets two pulls of one image, and one of another name for it, run at once: all succeed, one consistent store', async () => {
      const store = freshStore();
      const refs = [`${REDIRECTING}/library/layered:oci`, `${REDIRECTING}/library/layered:oci`, `${REDIRECTING}/library/layered:v2s2`];
      const last = loaded.layers.at(-1)!;
      // Hold every pull at the top layer until all three are there, then let them finish together.
      await reg.stall(last, 0, undefined);
      const pulls = refs.map((ref) => store.calf(['pull', ref]));
      let ended = 0;
      for (const p of pulls) void p.then(() => { ended++; });
      try {
        // all three at the top layer; or one ended early, which the checks below explain
        await until('all three pulls to reach the top layer', async () => ended > 0 || (await reg.log()).cdn.filter((r) => r.status === 'stalled').length >= 3);
      } finally {
        await reg.release(last);
      }
      const results = await Promise.all(pulls);
      for (const r of results) expectExit(r, 0);
      expect(store.images().map((i) => i.name)).toEqual([`${REDIRECTING}/library/layered:oci`, `${REDIRECTING}/library/layered:v2s2`]);
      expect(store.blobs().filter((b) => !b.intact)).toEqual([]);
      for (const ref of refs) expect(resolveImage(ref, store.root).layers).toHaveLength(3); // each name whole, as calf run finds it
    }, 120_000);
  });

  describe('calf run --pull', () => {
    it('pulls a missing image first, printing the pull on stderr so stdout stays the command\'s', async () => {
      const { missing } = await runsOfMissing();
      expectExit(missing, 0);
      expect(missing.stdout).toBe('pulled\n');
      expect(missing.stderr).toContain(`Unable to find image '${REGISTRY}/library/busybox:latest' locally`);
      expect(missing.stderr).toContain('Status: Downloaded newer image');
    });

    it('with --pull never, fails on a missing image with 125 without asking the registry anything', async () => {
      const { never, asked, missing } = await runsOfMissing();
      expect(never.exitCode).toBe(125);
      expect(never.stderr.trim().split('\n')).toHaveLength(1);
      expect(asked.byNever).toEqual({ requests: 0, tokens: 0 });
      // the positive control: the same run without --pull never, right after, asks, pulls and runs
      expectExit(missing, 0);
      expect(asked.byMissing.requests).toBeGreaterThan(0);
    });

    it('with --pull always, asks the registry even for an image it has, and runs it', async () => {
      const { store, result } = await pulledOci(); // a root that has the image
      const ref = `${REGISTRY}/library/layered:oci`;
      expectExit(result, 0);
      const seen = requestsFor('/v2/library/layered/manifests/oci').length;
      const [ran, bad] = await Promise.all([store.calf(['run', '--pull', 'always', ref]), store.calf(['run', '--pull', 'sometimes', ref])]);
      expectExit(ran, 0);
      expect(ran.stdout).toBe('layered image, layer 3\n');
      expect(ran.stderr).toContain(`Status: Image is up to date for ${ref}`);
      await accessLogSettled();
      expect(requestsFor('/v2/library/layered/manifests/oci').length).toBeGreaterThan(seen);
      expect(bad.exitCode).toBe(125);
      expect(bad.stderr).toMatch(/pull policy/);
    });
  });

  describe('References, tags and digests', () => {
    it('reads a bare name as docker.io/library/NAME:latest, sent to CALF_REGISTRY_MIRROR', async () => {
      const store = freshStore();
      const mirror = { CALF_REGISTRY_MIRROR: `http://${REGISTRY}` };
      // the same image by tag and by digest, at once (the store's lock lets both through)
      const [pulled, quiet] = await Promise.all([store.calf(['pull', 'busybox'], mirror), store.calf(['pull', '-q', `busybox@${loaded.busyboxDigest}`], mirror)]);
      expectExit(pulled, 0);
      expect(pulled.stdout.split('\n').slice(0, 2)).toEqual(['Using default tag: latest', 'latest: Pulling from library/busybox']);
      expect(pulled.stdout.trim().split('\n').at(-1)).toBe('docker.io/library/busybox:latest');
      expect(store.images().filter((i) => !i.name.includes('@')).map((i) => [i.name, i.digest])).toEqual([['busybox:latest', loaded.busyboxDigest]]);
      expectExit(quiet, 0);
      expect(quiet.stdout).toBe(`docker.io/library/busybox@${loaded.busyboxDigest}\n`);
      const ran = await store.calf(['run', `busybox@${loaded.busyboxDigest}`, 'echo', 'pinned']);
      expect(ran.stdout).toBe('pinned\n');
    });

    it('names an image again with calf tag, and lists every name with its digest', async () => {
      const { store, result } = await pulledOci();
      const ref = `${REGISTRY}/library/layered:oci`;
      expectExit(result, 0);
      const [tagged, bad] = await Promise.all([store.calf(['tag', ref, 'mine/layered:v1']), store.calf(['tag', ref, 'Mine/Layered'])]);
      expectExit(tagged, 0);
      expect(bad.exitCode).toBe(1);
      expect(bad.stderr).toMatch(/invalid reference format/);
      const [images, ran] = await Promise.all([store.calf(['images', '--digests']), store.calf(['run', 'mine/layered:v1'])]);
      expectExit(images, 0);
      const rows = images.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/).slice(0, 4));
      expect(rows.sort()).toEqual([
        [`${REGISTRY}/library/layered`, 'oci', loaded.layeredDigest, loaded.layeredId.slice(7, 19)],
        ['mine/layered', 'v1', loaded.layeredDigest, loaded.layeredId.slice(7, 19)],
      ]);
      expect(ran.stdout).toBe('layered image, layer 3\n');
    });
  });

  describe('Errors', () => {
    it('says what went wrong in one line, exits 1 (pull) or 125 (run), and stores nothing', async () => {
      const store = freshStore();
      await reg.fake('/v2/busy/box/manifests/crowded', 429, { 'retry-after': '30', 'content-type': 'application/json' },
        JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit' }] }));
      await reg.fake('/v2/busy/box/manifests/ancient', 200, { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' },
        JSON.stringify({ schemaVersion: 1, name: 'busy/box', tag: 'ancient', architecture: 'amd64', fsLayers: [], history: [] }));
      await reg.fake('/v2/busy/box/manifests/huge', 200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        Buffer.alloc(4 * 1024 * 1024 + 1, 0x20));
      // a non-loopback address in the test's netns (a veth pair: this kernel has no dummy module)
      ns.ip(['link', 'add', 'tls0', 'type', 'veth', 'peer', 'name', 'tls1']);
      ns.ip(['addr', 'add', '192.0.2.10/32', 'dev', 'tls0']);
      ns.ip(['link', 'set', 'tls0', 'up']);
      ns.ip(['link', 'set', 'tls1', 'up']);
      await reg.tls('192.0.2.10', 443);
      // [command, what it must say, exit code]: pull exits 1 as docker pull, run 125 as docker run
      const cases: [string[], RegExp, number][] = [
        [['pull', `${REGISTRY}/library/layered:no-such-tag`], /manifest unknown/i, 1],
        [['pull', `${REGISTRY}/no/such-image:latest`], /unknown/i, 1],
        [['run', '127.0.0.1:5999/any/image', 'true'], /connection refused/, 125],
        [['pull', 'no-such-registry.invalid/any/image:latest'], /unknown host no-such-registry\.invalid/, 1],
        [['pull', '192.0.2.10/any/image:latest'], /TLS failure/, 1],
        [['pull', `${CDN}/busy/box:crowded`], /429.*retry after 30 s/, 1],
        [['pull', `${CDN}/busy/box:ancient`], /schema 1 is not supported: the registry is too old/, 1],
        [['pull', `${CDN}/busy/box:huge`], /4 MiB/, 1],
        [['pull', 'UPPER/case'], /invalid reference format/, 1],
      ];
      const results = await atMost(3, cases.map(([args]) => () => store.calf(args))); // nine calfs at once would starve each other on a busy machine
      // run also prints "Unable to find image … locally" first, as docker run does: its error is the last line
      const seen = results.map((r, i) => {
        const [args, says] = cases[i]!;
        const lines = r.stderr.trim().split('\n');
        return { args: args.join(' '), exit: r.exitCode, lines: args[0] === 'run' ? 1 : lines.length, says: says.test(lines.at(-1)!) ? 'as expected' : r.stderr.trim() };
      });
      expect(seen).toEqual(cases.map(([args, , exit]) => ({ args: args.join(' '), exit, lines: 1, says: 'as expected' })));
      expect(store.images()).toEqual([]);
      expect(store.blobs()).toEqual([]);
    });
  });
});

/**
 * busybox plus a layer of its own, uncompressed, holding one file (`content`): tampering with that
 * layer in the registry's storage touches no other image (blobs there are shared by every
 * repository), and its media type is the plain tar one.
 */
function singleFileImage(dir: string, content: string, options: { foreign?: string; zstd?: boolean } = {}): { dir: string; layer: string; bytes: Buffer } {
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (bytes: Buffer) => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    fs.writeFileSync(path.join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  // a plain tar with one file: a 512-byte header, the content padded to 512, two zero blocks
  const header = Buffer.alloc(512);
  header.write('tampered.txt', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${Buffer.byteLength(content).toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const body = Buffer.alloc(Math.ceil(Buffer.byteLength(content) / 512) * 512);
  body.write(content);
  const tar = Buffer.concat([header, body, Buffer.alloc(1024)]);
  // zstd: compressed by this Node when it can (then calf must unpack it); a Node without zstd
  // has nothing to make it with, and calf must refuse it before downloading, so any bytes do
  const blob = options.zstd ? zstdCompress?.(tar) ?? Buffer.from('not downloaded') : tar;
  const layer = put(blob);
  const busybox = path.join(imagesDir, 'busybox');
  const baseManifest = JSON.parse(fs.readFileSync(path.join(busybox, 'blobs', 'sha256', loaded.busyboxDigest.slice(7)), 'utf8'));
  const baseConfig = JSON.parse(fs.readFileSync(path.join(busybox, 'blobs', 'sha256', baseManifest.config.digest.slice(7)), 'utf8'));
  const base = baseManifest.layers[0] as { mediaType: string; digest: string; size: number };
  fs.copyFileSync(path.join(busybox, 'blobs', 'sha256', base.digest.slice(7)), path.join(blobs, base.digest.slice(7)));
  const config = put(Buffer.from(JSON.stringify({
    ...baseConfig, config: { ...baseConfig.config, Cmd: ['cat', '/tampered.txt'] },
    rootfs: { type: 'layers', diff_ids: [...baseConfig.rootfs.diff_ids, sha256(tar)] },
  })));
  const manifest = put(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [base, options.foreign
      // non-distributable: the registry never gets it; its descriptor says where it is
      ? { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar', ...layer, urls: [options.foreign] }
      : { mediaType: `application/vnd.oci.image.layer.v1.tar${options.zstd ? '+zstd' : ''}`, ...layer }],
  })));
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  return { dir, layer: layer.digest, bytes: blob };
}

