/**
 * Level 13: `calf pull` from a real registry, offline. Debian's `docker-registry` (distribution
 * 2.8) runs in a network namespace this file made, with token auth (a token server the test
 * runs signs the JWTs the registry verifies), and a second host its blob downloads can be
 * redirected to (test/support/registry.ts draws the setup). The test images are pushed to it
 * with skopeo: as OCI manifests, as Docker v2 schema 2, as an OCI index with another platform and
 * an attestation, as a Docker manifest list.
 *
 * Every check pulls into a calf root of its own, empty: the board's store has the test images
 * loaded already, and a pull would find all their blobs there. Those loaded images are the
 * reference: what a pull gives must run like them, file for file.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from '@jest/globals';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';
import path from 'node:path';
import { run, expectExit } from '../support/target.js';
import { createTestNetns, type TestNetns } from '../support/netns.js';
import { startTestRegistry, REGISTRY, REDIRECTING, CDN, type TestRegistry } from '../support/registry.js';
import { multiPlatformLayout, thisPlatform, otherPlatform, type MultiPlatform } from '../support/registry-images.js';
import { imagesDir } from '../support/images.js';
import { removeStore } from '../support/store.js';
import { mountPoints } from '../support/mounts.js';
import { slow } from '../support/host.js';
import { token } from '../support/canary.js';
import { findLeftovers } from '../../lib/runtime/leftovers.js';
import '../../lib/image/blob-writer.js'; // registers half-downloaded blobs as a kind of leftover

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
/** Node's zstd compressor: Node 22.15 and later have one, Node 20 has none. */
const zstdCompress = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;

let ns: TestNetns;
let reg: TestRegistry;
let work: string;
let index: MultiPlatform;
let elsewhere: MultiPlatform;
let list: MultiPlatform;
/** what the test images are, as `calf load` put them in the board's store */
const loaded = { layeredId: '', layeredDigest: '', busyboxDigest: '' };

beforeAll(async () => {
  ns = await createTestNetns();
  reg = await startTestRegistry(ns);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-pull-'));
  const layered = path.join(imagesDir, 'layered');
  index = multiPlatformLayout(layered, path.join(work, 'index'));
  list = multiPlatformLayout(layered, path.join(work, 'list'), { attestation: false });
  elsewhere = multiPlatformLayout(layered, path.join(work, 'elsewhere'), { mine: false });
  await reg.push(layered, 'library/layered:oci', { format: 'oci' });
  await reg.push(layered, 'library/layered:v2s2', { format: 'v2s2' });
  await reg.push(index.dir, 'library/layered:index', { all: true, preserveDigests: true });
  await reg.push(list.dir, 'library/layered:list', { all: true, format: 'v2s2' });
  await reg.push(elsewhere.dir, 'library/layered:elsewhere', { all: true, preserveDigests: true });
  await reg.push(path.join(imagesDir, 'busybox'), 'library/busybox:latest', { format: 'oci' });
  const manifestOf = (name: string) => JSON.parse(fs.readFileSync(path.join(imagesDir, name, 'index.json'), 'utf8')).manifests[0].digest as string;
  loaded.layeredDigest = manifestOf('layered');
  loaded.busyboxDigest = manifestOf('busybox');
  const manifest = JSON.parse(fs.readFileSync(path.join(imagesDir, 'layered', 'blobs', 'sha256', loaded.layeredDigest.slice(7)), 'utf8'));
  loaded.layeredId = manifest.config.digest;
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  ns?.remove();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** The calf roots the checks made; each is checked for leftovers and removed after its check. */
const roots: string[] = [];

afterEach(() => {
  const problems: string[] = [];
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

/** An empty calf root for one check, and calf run inside the test's netns against it. */
function freshStore() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-root-pull-'));
  roots.push(root);
  const calf = (args: readonly string[], env: Record<string, string> = {}, timeout?: number) => ns.calf(args, { env: { CALF_ROOT: root, ...env }, ...(timeout ? { timeout } : {}) });
  const blobsDir = path.join(root, 'images', 'blobs', 'sha256');
  return {
    root,
    calf,
    /** `calf images --digests`, as rows of words */
    images: async () => {
      const r = await calf(['images', '--digests']);
      expectExit(r, 0);
      return r.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    },
    /** the files in the store's blob directory: names, and whether each one's content has its name */
    blobs: () => (fs.existsSync(blobsDir) ? fs.readdirSync(blobsDir) : []).map((name) => ({
      name,
      intact: /^[0-9a-f]{64}$/.test(name) && createHash('sha256').update(fs.readFileSync(path.join(blobsDir, name))).digest('hex') === name,
    })),
  };
}

/** A shell script that lists a container's whole filesystem: names, modes, owners, sizes, link targets, and each file's sha256. */
const LISTING = [
  'cd /',
  'list() { find . -xdev \\( -path ./proc -o -path ./sys -o -path ./dev \\) -prune -o "$@" -print | sort; }',
  'list | xargs stat -c "%n %a %u:%g %F %s"',
  'list -type l | xargs stat -c "%N"',
  'list -type f | grep -v -e ^./etc/hostname -e ^./etc/hosts -e ^./etc/resolv.conf | xargs sha256sum',
  'echo "env LAYERED=$LAYERED CALF_PLATFORM=$CALF_PLATFORM; cwd $OLDPWD"',
].join('\n');

let reference: string | undefined;
/** The listing of the `layered` image the board loaded (calf load), the reference every pull must match. */
async function loadedListing(): Promise<string> {
  if (reference === undefined) {
    const r = await run(['layered', 'sh', '-c', LISTING]);
    expectExit(r, 0);
    reference = r.stdout;
  }
  expect(reference.split('\n').length).toBeGreaterThan(300); // busybox's applets, at least
  return reference;
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
      ['an OCI image manifest', 'oci', () => loaded.layeredDigest],
      ['a Docker v2 schema 2 manifest', 'v2s2', undefined],
    ] as const;
    for (const [what, tag, digest] of formats) {
      it(`pulls ${what}, and the image runs with the same files as the one calf load gave`, async () => {
        const store = freshStore();
        const ref = `${REGISTRY}/library/layered:${tag}`;
        const pulled = await store.calf(['pull', ref]);
        expectExit(pulled, 0);
        const lines = pulled.stdout.trim().split('\n');
        expect(lines[0]).toBe(`${tag}: Pulling from library/layered`);
        expect(lines.at(-3)).toMatch(digest ? `Digest: ${digest()}` : /^Digest: sha256:[0-9a-f]{64}$/);
        expect(lines.at(-2)).toBe(`Status: Downloaded newer image for ${ref}`);
        expect(lines.at(-1)).toBe(ref);
        expect(lines.filter((l) => l.endsWith(': Download complete'))).toHaveLength(3);
        const [row] = await store.images();
        expect(row?.slice(0, 2)).toEqual([`${REGISTRY}/library/layered`, tag]);
        expect(row?.[3]).toBe(loaded.layeredId.slice(7, 19)); // the same config: the same image id
        const ran = await store.calf(['run', ref, 'sh', '-c', LISTING]);
        expectExit(ran, 0);
        expect(ran.stdout).toBe(await loadedListing());
      });
    }

    it('asks for the manifest with an Accept header naming the OCI and Docker formats (without one, this registry refuses)', async () => {
      const store = freshStore();
      const ref = `${REDIRECTING}/library/layered:oci`;
      // the positive control: asked without Accept, the registry has nothing to give
      const tokenAnswer = await reg.get(`http://127.0.0.1:5001/token?service=calf-test-registry&scope=repository:library/layered:pull`);
      const bare = await reg.get(`http://${REDIRECTING}/v2/library/layered/manifests/oci`, { authorization: `Bearer ${JSON.parse(tokenAnswer.body).token}` });
      expect(bare.status).toBe(404);
      const pulled = await store.calf(['pull', ref]);
      expectExit(pulled, 0);
      expect(pulled.stdout).toContain(`Digest: ${loaded.layeredDigest}`);
    });
  });

  describe('Bearer tokens', () => {
    it('gets a token from the realm the 401 names, for the pull scope of the repository, and the registry accepts it', async () => {
      const store = freshStore();
      const before = (await reg.log()).tokens.length;
      const seen = reg.accessLog().length;
      const pulled = await store.calf(['pull', `${REGISTRY}/library/layered:oci`]);
      expectExit(pulled, 0);
      const tokens = (await reg.log()).tokens.slice(before);
      expect(tokens.map((t) => t.scope)).toContain('repository:library/layered:pull');
      const requests = reg.accessLog().slice(seen).filter((l) => l.path.startsWith('/v2/library/layered/'));
      // a 401 first (no token yet), then the manifest and every blob with one
      expect(requests[0]?.status).toBe(401);
      expect(requests.filter((l) => l.status === 200 && l.path.includes('/blobs/'))).toHaveLength(4);
    });

    it('takes the token from access_token when the server names it so (as OAuth2 servers do)', async () => {
      const store = freshStore();
      await reg.tokens({ field: 'access_token' });
      try {
        const pulled = await store.calf(['pull', `${REGISTRY}/library/layered:v2s2`]);
        expectExit(pulled, 0);
        expect(pulled.stdout).toContain('Status: Downloaded newer image');
      } finally {
        await reg.tokens({ field: 'both' });
      }
    });

    it('gets a new token when its token expires in the middle of a pull', async () => {
      const store = freshStore();
      const config = loaded.layeredId;
      const seen = reg.accessLog().length;
      const before = (await reg.log()).tokens.length;
      await reg.tokens({ lifetime: 2 }); // the registry accepts each token for 2 s
      await reg.stall(config, 0, 3_500); // the CDN holds the config 3.5 s: the layers come after it expired
      try {
        const pulled = await store.calf(['pull', `${REDIRECTING}/library/layered:oci`]);
        expectExit(pulled, 0);
        const blobs = reg.accessLog().slice(seen).filter((l) => l.registry === REDIRECTING && l.path.includes('/blobs/'));
        // the positive control: the registry did refuse the first token on a later request
        expect(blobs.some((l) => l.status === 401)).toBe(true);
        expect((await reg.log()).tokens.length - before).toBeGreaterThanOrEqual(2);
        expect((await store.images()).map((r) => r[1])).toEqual(['oci']);
      } finally {
        await reg.tokens({ lifetime: 60 });
        await reg.release(config);
      }
    });
  });

  describe('An index and its platforms', () => {
    for (const [what, tag, layout] of [['an OCI index with an attestation', 'index', () => index], ['a Docker manifest list', 'list', () => list]] as const) {
      it(`pulls linux/${thisPlatform().architecture} out of ${what}, though another platform comes first`, async () => {
        const store = freshStore();
        const ref = `${REGISTRY}/library/layered:${tag}`;
        const pulled = await store.calf(['pull', ref]);
        expectExit(pulled, 0);
        if (tag === 'index') expect(pulled.stdout).toContain(`Digest: ${layout().index}`); // the name points at the index
        const [row] = await store.images();
        expect(row?.[3]).toBe(loaded.layeredId.slice(7, 19)); // not the other platform's config
        expect(row?.[3]).not.toBe(layout().otherConfig.slice(7, 19));
        const ran = await store.calf(['run', ref, 'sh', '-c', LISTING]);
        expectExit(ran, 0);
        expect(ran.stdout).toBe(await loadedListing()); // CALF_PLATFORM= (empty): this platform's config
      });
    }

    it('refuses an index without this platform in one line that lists the platforms it has, and stores nothing', async () => {
      const store = freshStore();
      const pulled = await store.calf(['pull', `${REGISTRY}/library/layered:elsewhere`]);
      expect(pulled.exitCode).toBe(1);
      const line = pulled.stderr.trim();
      expect(line.split('\n')).toHaveLength(1);
      const other = otherPlatform();
      expect(line).toContain(`linux/${thisPlatform().architecture}`);
      expect(line).toContain([other.os, other.architecture, other.variant].filter(Boolean).join('/'));
      expect(line).toContain('linux/s390x');
      expect(line).not.toContain('unknown');
      expect(await store.images()).toEqual([]);
      // the positive control: this root and this calf do pull an index that has this platform
      expectExit(await store.calf(['pull', `${REGISTRY}/library/layered:index`]), 0);
    });
  });

  describe('Verified blobs', () => {
    it('refuses a layer whose bytes are not what its digest says, and stores nothing of it', async () => {
      const store = freshStore();
      const [good, bad] = [`intact ${token()}\n`, `tampered ${token()}\n`];
      const intact = singleFileImage(path.join(work, `intact-${token()}`), good.repeat(1000));
      const tampered = singleFileImage(path.join(work, `tampered-${token()}`), bad.repeat(1000));
      // --preserve-digests: skopeo would otherwise gzip these uncompressed layers on the way
      await reg.push(intact.dir, 'library/intact:oci', { format: 'oci', preserveDigests: true });
      await reg.push(intact.dir, 'library/intact:v2s2', { format: 'v2s2', preserveDigests: true });
      await reg.push(tampered.dir, 'library/tampered:oci', { format: 'oci', preserveDigests: true });
      reg.tamper(tampered.layer); // one byte in the registry's storage, size unchanged
      const pulled = await store.calf(['pull', `${REGISTRY}/library/tampered:oci`]);
      expect(pulled.exitCode).toBe(1);
      expect(pulled.stderr.trim().split('\n')).toHaveLength(1);
      expect(pulled.stderr).toContain(tampered.layer.slice(7, 19));
      expect(pulled.stderr).toMatch(/corrupt|digest|sha256 mismatch/i);
      expect(await store.images()).toEqual([]);
      const blobs = store.blobs();
      expect(blobs.map((b) => b.name)).not.toContain(tampered.layer.slice(7));
      expect(blobs.filter((b) => !b.intact)).toEqual([]); // no half-written file either
      // the positive control: the same calf pulls and runs the untampered twin, uncompressed
      // layer and all, in both media-type spellings
      for (const tag of ['oci', 'v2s2']) {
        const ran = await store.calf(['run', `${REGISTRY}/library/intact:${tag}`]);
        expectExit(ran, 0);
        expect(ran.stdout).toBe(good.repeat(1000));
      }
    });

    it('downloads a non-distributable layer the registry does not have from the URL its descriptor gives, checked like any blob', async () => {
      const store = freshStore();
      const content = `foreign ${token()}\n`;
      const where = `/foreign/${token()}`;
      const image = singleFileImage(path.join(work, `foreign-${token()}`), content, { foreign: `http://${CDN}${where}` });
      await reg.fake(where, 200, { 'content-type': 'application/octet-stream' }, image.bytes);
      await reg.push(image.dir, 'library/foreign:oci', { format: 'oci', preserveDigests: true }); // skopeo skips the layer
      const ran = await store.calf(['run', `${REGISTRY}/library/foreign:oci`]);
      expectExit(ran, 0);
      expect(ran.stdout).toBe(content);
      const asked = reg.accessLog().filter((l) => l.path === `/v2/library/foreign/blobs/${image.layer}`);
      expect(asked.map((l) => l.status)).toContain(404); // the registry was asked first, and has no such blob
      expect((await reg.log()).cdn.filter((r) => r.url === where).map((r) => r.headers.authorization)).toEqual([undefined]);
    });

    it(zstdCompress ? 'pulls and runs an image with a zstd layer (this Node has zstd)' : 'refuses an image with a zstd layer before downloading it, naming the Node it needs (this one has no zstd)', async () => {
      const store = freshStore();
      const content = `zstd ${token()}\n`;
      const image = singleFileImage(path.join(work, `zstd-${token()}`), content, { zstd: true });
      await reg.push(image.dir, 'library/zstd:oci', { format: 'oci', preserveDigests: true });
      const seen = reg.accessLog().length;
      const ran = await store.calf(['run', `${REGISTRY}/library/zstd:oci`]);
      if (zstdCompress) {
        expectExit(ran, 0);
        expect(ran.stdout).toBe(content);
      } else {
        expect(ran.exitCode).toBe(125);
        expect(ran.stderr.trim().split('\n').at(-1)).toMatch(/zstd.*Node 22\.15/);
        expect(reg.accessLog().slice(seen).filter((l) => l.path.endsWith(image.layer))).toEqual([]); // not even asked for
        expect(reg.accessLog().slice(seen).some((l) => l.path.includes('/library/zstd/manifests/'))).toBe(true); // but the manifest was
        expect(await store.images()).toEqual([]);
        // the positive control: this calf pulls what it can unpack, into this root
        expectExit(await store.calf(['pull', `${REGISTRY}/library/layered:oci`]), 0);
      }
    });

    it('sends no Authorization to the host a blob download is redirected to, and the registry got one', async () => {
      const store = freshStore();
      const before = (await reg.log()).cdn.length;
      const seen = reg.accessLog().length;
      const pulled = await store.calf(['pull', `${REDIRECTING}/library/layered:oci`]);
      expectExit(pulled, 0);
      const cdn = (await reg.log()).cdn.slice(before);
      const redirected = reg.accessLog().slice(seen).filter((l) => l.path.includes('/blobs/') && l.status === 307);
      expect(redirected).toHaveLength(4); // the config and three layers, each sent on to the CDN host…
      expect(cdn.filter((r) => r.url.endsWith('/data') && r.method === 'GET')).toHaveLength(4); // …which calf followed…
      expect(cdn.map((r) => r.headers.authorization?.replace(/ .*/, ' …'))).toEqual(cdn.map(() => undefined)); // …without the token
      const ran = await store.calf(['run', `${REDIRECTING}/library/layered:oci`]);
      expectExit(ran, 0);
      expect(ran.stdout).toBe('layered image, layer 3\n');
    });
  });

  describe('Crashes and concurrent pulls', () => {
    it('shows nothing of a pull killed with SIGKILL, and the next pull completes reusing the blobs already verified', async () => {
      const store = freshStore();
      const ref = `${REDIRECTING}/library/layered:oci`;
      const manifest = JSON.parse(fs.readFileSync(path.join(imagesDir, 'layered', 'blobs', 'sha256', loaded.layeredDigest.slice(7)), 'utf8'));
      const [first, second, last] = manifest.layers.map((l: { digest: string }) => l.digest) as [string, string, string];
      const fetches = async (digest: string) => (await reg.log()).cdn.filter((r) => r.method === 'GET' && r.url.includes(digest.slice(7))).length;
      const before = { first: await fetches(first), last: await fetches(last) };
      await reg.stall(last, 100, undefined); // the top layer stops after 100 bytes: calf is mid-blob
      try {
        const killed = store.calf(['pull', ref]);
        await until('the pull to reach the top layer', async () => (await reg.log()).cdn.some((r) => r.status === 'stalled' && r.url.includes(last.slice(7))));
        process.kill(killed.pid!, 'SIGKILL');
        const r = await killed;
        expect(r.signal).toBe('SIGKILL');
      } finally {
        await reg.release(last);
      }
      expect(await store.images()).toEqual([]);
      const again = await store.calf(['pull', ref]);
      expectExit(again, 0);
      expect(again.stdout).toContain(`${first.slice(7, 19)}: Already exists`);
      expect(again.stdout).toContain(`${second.slice(7, 19)}: Already exists`);
      expect(await fetches(first) - before.first).toBe(1); // once, by the pull that was killed
      expect(await fetches(last) - before.last).toBe(2); // killed halfway, so fetched again
      expect(store.blobs().filter((b) => !b.intact)).toEqual([]); // and its half-written file is gone
      const ran = await store.calf(['run', ref]);
      expect(ran.stdout).toBe('layered image, layer 3\n');
    }, 120_000);

    it('lets two pulls of one image, and one of another name for it, run at once: all succeed, one consistent store', async () => {
      const store = freshStore();
      const refs = [`${REDIRECTING}/library/layered:oci`, `${REDIRECTING}/library/layered:oci`, `${REDIRECTING}/library/layered:v2s2`];
      const manifest = JSON.parse(fs.readFileSync(path.join(imagesDir, 'layered', 'blobs', 'sha256', loaded.layeredDigest.slice(7)), 'utf8'));
      const last = manifest.layers.at(-1).digest as string;
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
      expect((await store.images()).map((r) => r.slice(0, 2).join(':')).sort()).toEqual([`${REDIRECTING}/library/layered:oci`, `${REDIRECTING}/library/layered:v2s2`]);
      expect(store.blobs().filter((b) => !b.intact)).toEqual([]);
      const ran = await store.calf(['run', `${REDIRECTING}/library/layered:v2s2`]);
      expect(ran.stdout).toBe('layered image, layer 3\n');
    }, 120_000);
  });

  describe('calf run --pull', () => {
    it('pulls a missing image first, printing the pull on stderr so stdout stays the command\'s', async () => {
      const store = freshStore();
      const ran = await store.calf(['run', `${REGISTRY}/library/layered:oci`]);
      expectExit(ran, 0);
      expect(ran.stdout).toBe('layered image, layer 3\n');
      expect(ran.stderr).toContain(`Unable to find image '${REGISTRY}/library/layered:oci' locally`);
      expect(ran.stderr).toContain('Status: Downloaded newer image');
    });

    it('with --pull never, fails on a missing image with 125 without asking the registry anything', async () => {
      const store = freshStore();
      const repoPath = `/v2/library/busybox/`;
      const seen = requestsFor(repoPath).length;
      const tokens = (await reg.log()).tokens.length;
      const never = await store.calf(['run', '--pull', 'never', `${REGISTRY}/library/busybox`, 'true']);
      expect(never.exitCode).toBe(125);
      expect(never.stderr.trim().split('\n')).toHaveLength(1);
      expect(requestsFor(repoPath).length).toBe(seen);
      expect((await reg.log()).tokens.length).toBe(tokens);
      // the positive control: the same run without --pull never asks, pulls and runs
      const missing = await store.calf(['run', `${REGISTRY}/library/busybox`, 'echo', 'pulled']);
      expectExit(missing, 0);
      expect(missing.stdout).toBe('pulled\n');
      expect(requestsFor(repoPath).length).toBeGreaterThan(seen);
    });

    it('with --pull always, asks the registry even for an image it has, and runs it', async () => {
      const store = freshStore();
      const ref = `${REGISTRY}/library/layered:oci`;
      expectExit(await store.calf(['pull', ref]), 0);
      const seen = requestsFor('/v2/library/layered/manifests/oci').length;
      const ran = await store.calf(['run', '--pull', 'always', ref]);
      expectExit(ran, 0);
      expect(ran.stdout).toBe('layered image, layer 3\n');
      expect(ran.stderr).toContain(`Status: Image is up to date for ${ref}`);
      expect(requestsFor('/v2/library/layered/manifests/oci').length).toBeGreaterThan(seen);
      const bad = await store.calf(['run', '--pull', 'sometimes', ref]);
      expect(bad.exitCode).toBe(125);
    });
  });

  describe('References, tags and digests', () => {
    it('reads a bare name as docker.io/library/NAME:latest, sent to CALF_REGISTRY_MIRROR', async () => {
      const store = freshStore();
      const mirror = { CALF_REGISTRY_MIRROR: `http://${REGISTRY}` };
      const pulled = await store.calf(['pull', 'busybox'], mirror);
      expectExit(pulled, 0);
      expect(pulled.stdout.split('\n').slice(0, 2)).toEqual(['Using default tag: latest', 'latest: Pulling from library/busybox']);
      expect(pulled.stdout.trim().split('\n').at(-1)).toBe('docker.io/library/busybox:latest');
      expect((await store.images()).map((r) => r.slice(0, 3))).toEqual([['busybox', 'latest', loaded.busyboxDigest]]);
      const quiet = await store.calf(['pull', '-q', `busybox@${loaded.busyboxDigest}`], mirror);
      expectExit(quiet, 0);
      expect(quiet.stdout).toBe(`docker.io/library/busybox@${loaded.busyboxDigest}\n`);
      const ran = await store.calf(['run', `busybox@${loaded.busyboxDigest}`, 'echo', 'pinned']);
      expect(ran.stdout).toBe('pinned\n');
    });

    it('names an image again with calf tag, and lists every name with its digest', async () => {
      const store = freshStore();
      const ref = `${REGISTRY}/library/layered:index`;
      expectExit(await store.calf(['pull', '-q', ref]), 0);
      const tagged = await store.calf(['tag', ref, 'mine/layered:v1']);
      expectExit(tagged, 0);
      const rows = await store.images();
      expect(rows.map((r) => r.slice(0, 4)).sort()).toEqual([
        [`${REGISTRY}/library/layered`, 'index', index.index, loaded.layeredId.slice(7, 19)],
        ['mine/layered', 'v1', index.index, loaded.layeredId.slice(7, 19)],
      ]);
      expect((await store.calf(['run', 'mine/layered:v1'])).stdout).toBe('layered image, layer 3\n');
      const bad = await store.calf(['tag', ref, 'Mine/Layered']);
      expect(bad.exitCode).toBe(1);
      expect(bad.stderr).toMatch(/invalid reference format/);
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
      const cases: [string, RegExp][] = [
        [`${REGISTRY}/library/layered:no-such-tag`, /manifest unknown/i],
        [`${REGISTRY}/no/such-image:latest`, /unknown/i],
        ['127.0.0.1:5999/any/image:latest', /connection refused/],
        ['no-such-registry.invalid/any/image:latest', /unknown host no-such-registry\.invalid/],
        ['192.0.2.10/any/image:latest', /TLS failure/],
        [`${CDN}/busy/box:crowded`, /429.*retry after 30 s/],
        [`${CDN}/busy/box:ancient`, /schema 1 is not supported: the registry is too old/],
        [`${CDN}/busy/box:huge`, /4 MiB/],
        ['UPPER/case', /invalid reference format/],
      ];
      const results = await Promise.all(cases.map(([ref]) => store.calf(['pull', ref])));
      const seen = results.map((r, i) => ({ ref: cases[i]![0], exit: r.exitCode, lines: r.stderr.trim().split('\n').length, says: cases[i]![1].test(r.stderr) ? 'as expected' : r.stderr.trim() }));
      expect(seen).toEqual(cases.map(([ref]) => ({ ref, exit: 1, lines: 1, says: 'as expected' })));
      const ran = await store.calf(['run', '127.0.0.1:5999/any/image', 'true']);
      expect({ exit: ran.exitCode, says: ran.stderr.trim().split('\n').at(-1) }).toEqual({ exit: 125, says: expect.stringMatching(/connection refused/) });
      expect(await store.images()).toEqual([]);
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

