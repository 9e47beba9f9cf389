/**
 * The lib side of pulling (lib/image/registry-http.ts, blob-writer.ts, lock.ts, tag.ts): what
 * the level's pull.ts relies on, checked without a registry. Servers listen on 127.0.0.0/8 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { getFollowing, isLoopback, readLimited, registryBase, registryError } from '../../lib/image/registry-http.js';
import { BlobMismatchError, hasBlob, removeDeadDownloads, storedBlobPath, writeBlob } from '../../lib/image/blob-writer.js';
import { withIndexLock, withStoreLock, withStoreLockSync } from '../../lib/image/lock.js';
import { readIndex, REF_NAME } from '../../lib/image/store.js';
import { checkStore } from '../../lib/image/check.js';
import { findLeftovers } from '../../lib/runtime/leftovers.js';
import { repo } from '../support/paths.js';

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'calf-test-pull-lib-'));
});
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

let roots = 0;
function root(): string {
  const dir = path.join(work, `root-${++roots}`);
  fs.mkdirSync(dir);
  return dir;
}

const sha = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** An HTTP server on a loopback address that records what it was sent; closed by `close()`. */
async function server(host: string, handle: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen: { url: string; authorization: string | undefined }[] = [];
  const s = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    handle(req, res);
  });
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as { port: number }).port;
  return { url: `http://${host}:${port}`, seen, close: () => new Promise((r) => { s.closeAllConnections(); s.close(r); }) };
}

describe('registry HTTP', () => {
  it('says which registries are plain HTTP: loopback only, and docker.io goes to its API host or the mirror', () => {
    expect(['localhost:5000', '127.0.0.1', '127.9.8.7:80', '[::1]:5000'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['registry.example', '10.0.0.1:5000', '127.0.0.1.nip.io'].map(isLoopback)).toEqual([false, false, false]);
    expect(registryBase('docker.io', {}).href).toBe('https://registry-1.docker.io/');
    expect(registryBase('localhost:5000', {}).href).toBe('http://localhost:5000/');
    expect(registryBase('ghcr.io', {}).href).toBe('https://ghcr.io/');
    expect(registryBase('docker.io', { CALF_REGISTRY_MIRROR: 'https://mirror.example/' }).href).toBe('https://mirror.example/');
    expect(registryBase('ghcr.io', { CALF_REGISTRY_MIRROR: 'https://mirror.example/' }).href).toBe('https://ghcr.io/');
    expect(() => registryBase('docker.io', { CALF_REGISTRY_MIRROR: 'http://mirror.example' })).toThrow(/plain http only to a loopback mirror/);
  });

  it('follows a redirect to another host without Authorization, and keeps it on the same origin', async () => {
    const cdn = await server('127.0.0.2', (_req, res) => res.end('blob'));
    const registry = await server('127.0.0.1', (req, res) => {
      if (req.url === '/same') res.writeHead(307, { location: '/final' }).end();
      else if (req.url === '/final') res.end('same');
      else res.writeHead(307, { location: `${cdn.url}/data?sig=1` }).end();
    });
    try {
      const hops: string[] = [];
      const cross = await getFollowing(`${registry.url}/v2/x/blobs/sha256:1`, { headers: { Authorization: 'Bearer secret' } }, (from, to) => hops.push(`${from.host} → ${to.host}`));
      expect(await cross.text()).toBe('blob');
      const same = await getFollowing(`${registry.url}/same`, { headers: { authorization: 'Bearer secret' } });
      expect(await same.text()).toBe('same');
      expect(registry.seen.map((s) => s.authorization)).toEqual(['Bearer secret', 'Bearer secret', 'Bearer secret']);
      expect(cdn.seen).toEqual([{ url: '/data?sig=1', authorization: undefined }]);
      expect(hops).toEqual([`${new URL(registry.url).host} → ${new URL(cdn.url).host}`]);
    } finally {
      await registry.close();
      await cdn.close();
    }
  });

  it('refuses plain http to a host that is not loopback, and names the cause of a failed connection in one line', async () => {
    await expect(getFollowing('http://registry.example/v2/')).rejects.toThrow(/calf speaks https to registries/);
    const closed = await server('127.0.0.1', () => undefined); // a port nothing listens on once it is closed
    await closed.close();
    const port = new URL(closed.url).port;
    await expect(getFollowing(`${closed.url}/v2/`)).rejects.toThrow(new RegExp(`^cannot reach 127\\.0\\.0\\.1:${port}: connection refused$`));
  });

  it('refuses a TLS certificate nobody vouches for, in one line, and names a body that breaks off', async () => {
    const tls = await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', path.join(work, 'tls.key'), '-out', path.join(work, 'tls.crt'), '-days', '1', '-subj', '/CN=127.0.0.1'], { reject: false });
    expect(tls.exitCode).toBe(0);
    const secure = https.createServer({ key: fs.readFileSync(path.join(work, 'tls.key')), cert: fs.readFileSync(path.join(work, 'tls.crt')) }, (_req, res) => res.end('{}'));
    await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
    // a blob server that promises 1000 bytes and hangs up after 10
    const broken = await server('127.0.0.1', (_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(10), () => res.destroy());
    });
    try {
      await expect(getFollowing(`https://127.0.0.1:${(secure.address() as { port: number }).port}/v2/`)).rejects.toThrow(/^cannot reach 127\.0\.0\.1:\d+: TLS failure: self[- ]signed certificate$/);
      const response = await getFollowing(`${broken.url}/v2/x/blobs/sha256:1`);
      expect(response.status).toBe(200); // the positive control: it answered
      const r = root();
      await expect(writeBlob(response.body, { digest: sha('x'), size: 1000, what: 'layer' }, { root: r }))
        .rejects.toThrow(/^layer sha256:2d711642b726…: the download broke off after 10 of 1000 bytes \(.+\)$/);
      expect(fs.readdirSync(path.join(r, 'images', 'blobs', 'sha256'))).toEqual([]);
    } finally {
      secure.closeAllConnections();
      await new Promise((r) => secure.close(r));
      await broken.close();
    }
  });

  it('reads a manifest body only up to its limit, and turns a 429 into a line with its Retry-After', async () => {
    const big = Buffer.alloc(1024, 0x20);
    const s = await server('127.0.0.1', (req, res) => {
      if (req.url === '/chunked') { res.write(big); res.end(big); return; }
      if (req.url === '/429') { res.writeHead(429, { 'retry-after': '17', 'content-type': 'application/json' }).end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'); return; }
      res.end(big);
    });
    try {
      expect((await readLimited(await getFollowing(`${s.url}/fits`), 1024, 'm')).length).toBe(1024);
      await expect(readLimited(await getFollowing(`${s.url}/declared`), 1000, 'the manifest')).rejects.toThrow('the manifest is 1024 bytes, over the');
      await expect(readLimited(await getFollowing(`${s.url}/chunked`), 1500, 'the manifest')).rejects.toThrow('the manifest is over the');
      const error = await registryError(await getFollowing(`${s.url}/429`), 'x/y:z');
      expect(error.message).toBe('x/y:z: the registry says too many requests (429); retry after 17 s (TOOMANYREQUESTS: slow down)');
    } finally {
      await s.close();
    }
  });
});

describe('the blob writer', () => {
  const content = Buffer.from('a blob of some bytes\n'.repeat(100));
  const expected = { digest: sha(content), size: content.length, what: 'layer' };

  it('stores a blob under its digest once its sha256 and size match', async () => {
    const r = root();
    await writeBlob(Readable.from([content.subarray(0, 100), content.subarray(100)]), expected, { root: r });
    expect(fs.readFileSync(storedBlobPath(expected.digest, r))).toEqual(content);
    expect(hasBlob(expected, r)).toBe(true);
    expect(hasBlob({ ...expected, size: 1 }, r)).toBe(false);
  });

  it('stores nothing, and leaves no temp file, when a byte differs, a byte is missing, or one too many comes', async () => {
    const r = root();
    const flipped = Buffer.from(content);
    flipped[10] ^= 1;
    const cases = [flipped, content.subarray(1), Buffer.concat([content, Buffer.from('x')])];
    for (const bytes of cases) {
      await expect(writeBlob(Readable.from([bytes]), expected, { root: r })).rejects.toThrow(BlobMismatchError);
    }
    const dir = path.join(r, 'images', 'blobs', 'sha256');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('flushes a big blob to disk on the way, and still stores nothing when its last byte is wrong', async () => {
    // 20 MiB in 64 KiB chunks, as a socket gives them: two background flushes happen before the end
    const r = root();
    const big = Buffer.alloc(20 << 20, 7);
    const chunks = (bytes: Buffer) => Readable.from(Array.from({ length: bytes.length / 65536 }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536)));
    const wanted = { digest: sha(big), size: big.length, what: 'layer' };
    const wrong = Buffer.from(big);
    wrong[wrong.length - 1] = 8;
    await expect(writeBlob(chunks(wrong), wanted, { root: r })).rejects.toThrow(BlobMismatchError);
    expect(fs.readdirSync(path.join(r, 'images', 'blobs', 'sha256'))).toEqual([]);
    await writeBlob(chunks(big), wanted, { root: r });
    expect(fs.readFileSync(storedBlobPath(wanted.digest, r)).equals(big)).toBe(true);
    expect(fs.readdirSync(path.join(r, 'images', 'blobs', 'sha256'))).toEqual([wanted.digest.slice(7)]);
  });

  it('makes the whole layout (oci-layout, index.json) before its first byte: a pull killed mid-download leaves a store that passes the check', async () => {
    const r = root();
    let sawLayout: boolean[] = [];
    async function* stalls() {
      sawLayout = ['oci-layout', 'index.json'].map((f) => fs.existsSync(path.join(r, 'images', f))); // while the first download runs
      yield content.subarray(0, 100);
      throw new Error('killed'); // where a SIGKILL would stop it
    }
    await expect(writeBlob(stalls(), expected, { root: r })).rejects.toThrow('killed');
    expect(sawLayout).toEqual([true, true]); // before 2026-12-04: blobs/sha256/ alone (the 1,000-run soak found it)
    expect(checkStore(r)).toEqual([]);
  });

  it('stops reading a source that sends more than the descriptor says, at the first byte too many', async () => {
    const r = root();
    let read = 0;
    async function* endless() {
      for (;;) {
        read += 1000;
        yield Buffer.alloc(1000);
      }
    }
    await expect(writeBlob(endless(), { digest: sha('x'), size: 2500, what: 'config' }, { root: r })).rejects.toThrow('config sha256:2d711642b726… is corrupt: more than 2500 bytes where its descriptor says 2500');
    expect(read).toBe(3000);
  });

  it('leaves a killed writer\'s temp file to calf cleanup (its pid names it), and a later pull removes it', async () => {
    const r = root();
    const child = execa(process.execPath, ['-e', '0']);
    await child; // its pid names no process now
    const dir = path.join(r, 'images', 'blobs', 'sha256');
    fs.mkdirSync(dir, { recursive: true });
    const temp = path.join(dir, `.tmp-${child.pid}-0123456789ab`);
    fs.writeFileSync(temp, 'half');
    const mine = path.join(dir, `.tmp-${process.pid}-0123456789ab`);
    fs.writeFileSync(mine, 'mine, in progress');
    expect(findLeftovers(r).map((l) => [l.what, l.owner])).toEqual(expect.arrayContaining([[`half-downloaded blob ${temp}`, child.pid]]));
    removeDeadDownloads(r);
    expect([fs.existsSync(temp), fs.existsSync(mine)]).toEqual([false, true]);
  });
});

describe('the store locks', () => {
  it('let no concurrent naming lose a name: eight processes tagging at once keep all their names', async () => {
    const r = root();
    const digest = sha('m');
    const script = `
      import { tagImage } from '${path.join(repo, 'lib/image/store.ts')}';
      const [, , who] = process.argv;
      for (let i = 0; i < 15; i++) tagImage('t' + who + '-' + i + ':latest', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: '${digest}', size: 1 }, process.env.ROOT);
    `;
    fs.writeFileSync(path.join(work, 'tagger.ts'), script);
    await Promise.all(Array.from({ length: 8 }, (_, who) => execa(process.execPath, ['--import', 'tsx', path.join(work, 'tagger.ts'), String(who)], { env: { ROOT: r }, cwd: repo })));
    expect(readIndex(r).manifests.map((m) => m.annotations?.[REF_NAME]).length).toBe(8 * 15);
  }, 120_000);

  it('make a remover wait for a pull holding the store lock shared, and let two pulls share it', async () => {
    const r = root();
    const order: string[] = [];
    let release!: () => void;
    const pull = withStoreLock('shared', () => new Promise<void>((done) => { order.push('pull 1 in'); release = done; }), { root: r });
    await new Promise((res) => setTimeout(res, 20));
    await withStoreLock('shared', () => { order.push('pull 2 in'); }, { root: r }); // re-entrant in one process: the same hold
    // Another process wanting it exclusive must wait for pull 1 (it holds a shared flock).
    const remover = execa(process.execPath, ['--import', 'tsx', '-e', `
      import('${path.join(repo, 'lib/image/lock.ts')}').then((m) => {
        m.withStoreLockSync('exclusive', () => console.log('remover in'), { root: process.env.ROOT, onWait: (w) => console.log('waiting: ' + w) });
      });`], { env: { ROOT: r }, cwd: repo });
    let said = '';
    remover.stdout!.on('data', (c: Buffer) => { said += String(c); });
    for (let i = 0; i < 200 && !said.includes('waiting'); i++) await new Promise((res) => setTimeout(res, 50));
    expect(said).toMatch(/^waiting: waiting for other calfs using the image store/);
    expect(said).not.toContain('remover in');
    order.push('pull 1 out');
    release();
    await pull;
    await remover;
    expect(said).toContain('remover in');
    expect(order).toEqual(['pull 1 in', 'pull 2 in', 'pull 1 out']);
    expect(() => withStoreLockSync('shared', () => withIndexLock(() => 'nested', r), { root: r })).not.toThrow();
  }, 60_000);
});
